//! SET, RESET and `set_config` report the settings PostgreSQL reports
//! (ParameterStatus) when they change, and only those, once per change.

async fn reports_after(s: &mut tidemark_executor::Session, sql: &str) -> Vec<(String, String)> {
    s.execute(sql).await.expect("runs");
    let mut reports = s.take_changed_reports();
    reports.sort();
    reports
}

#[tokio::test]
async fn changed_reported_settings_are_reported() {
    let (mut s, _dir) = crate::session();
    assert_eq!(
        reports_after(&mut s, "SET TIME ZONE 'Europe/Berlin'").await,
        [("TimeZone".to_string(), "Europe/Berlin".to_string())]
    );
    assert_eq!(
        reports_after(&mut s, "SET application_name = 'etl'").await,
        [("application_name".to_string(), "etl".to_string())]
    );
    // The same value again, or a setting clients are not told about: nothing.
    assert!(
        reports_after(&mut s, "SET application_name = 'etl'")
            .await
            .is_empty()
    );
    assert!(
        reports_after(&mut s, "SET statement_timeout = 1000")
            .await
            .is_empty()
    );
    assert_eq!(
        reports_after(
            &mut s,
            "SELECT set_config('application_name', 'job', false)"
        )
        .await,
        [("application_name".to_string(), "job".to_string())]
    );
    assert_eq!(
        reports_after(&mut s, "RESET ALL").await,
        [
            ("TimeZone".to_string(), "UTC".to_string()),
            ("application_name".to_string(), String::new()),
        ]
    );
    // Several changes before the client is next told: the values it must know.
    s.execute("SET application_name = 'a'; SET application_name = 'b'")
        .await
        .expect("runs");
    assert_eq!(
        s.take_changed_reports(),
        [("application_name".to_string(), "b".to_string())]
    );
}
