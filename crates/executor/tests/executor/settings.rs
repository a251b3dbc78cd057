//! SET and RESET report the settings PostgreSQL reports (ParameterStatus) when
//! they change, and only those.

use tidemark_executor::Output;

fn reports(mut outputs: Vec<Output>) -> Vec<(String, String)> {
    match outputs.pop() {
        Some(Output::Command { reports, .. }) => reports,
        other => panic!("expected a command, got {other:?}"),
    }
}

#[tokio::test]
async fn changed_reported_settings_are_reported() {
    let (mut s, _dir) = crate::session();
    assert_eq!(
        reports(
            s.execute("SET TIME ZONE 'Europe/Berlin'")
                .await
                .expect("runs")
        ),
        [("TimeZone".to_string(), "Europe/Berlin".to_string())]
    );
    assert_eq!(
        reports(
            s.execute("SET application_name = 'etl'")
                .await
                .expect("runs")
        ),
        [("application_name".to_string(), "etl".to_string())]
    );
    // The same value again, or a setting clients are not told about: nothing.
    assert!(
        reports(
            s.execute("SET application_name = 'etl'")
                .await
                .expect("runs")
        )
        .is_empty()
    );
    assert!(
        reports(
            s.execute("SET statement_timeout = 1000")
                .await
                .expect("runs")
        )
        .is_empty()
    );
    let mut reset = reports(s.execute("RESET ALL").await.expect("runs"));
    reset.sort();
    assert_eq!(
        reset,
        [
            ("TimeZone".to_string(), "UTC".to_string()),
            ("application_name".to_string(), String::new()),
        ]
    );
}
