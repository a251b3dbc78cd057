//! Plans of simple-protocol queries, kept per session.
//!
//! Dashboards, pgbench, psql scripts and the HTTP API send the same query text
//! again and again without preparing it, and planning it (parse, name
//! resolution, the optimizer) was most of what a narrow query cost. A script of
//! one query whose text this session has run before is prepared
//! (`Session::prepare`) and from then on executed as a prepared statement
//! without parameters: the same kept plan and the same checks as the extended
//! protocol's (a changed table or view re-plans, `now()` is optimized at every
//! execution, each execution reads its own snapshot). A text seen once is not
//! prepared, so a one-off query costs nothing more.
//!
//! Entries hold the session's settings they were prepared under and miss when
//! those have changed since (`current_setting()` and `set_config` resolve at
//! planning). The cache is bounded: at most [`KEPT`] texts of at most
//! [`MAX_TEXT`] bytes, the least recently used one giving way.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::sql::sqlparser::ast;
use tidemark_parser::Statement;

use super::{Prepared, Session};
use crate::settings::Settings;

/// Texts kept per session.
const KEPT: usize = 32;
/// Texts remembered as seen once (their hashes), before the memory is cleared.
const SEEN: usize = 1024;
/// Longer texts are planned at every execution.
const MAX_TEXT: usize = 16 * 1024;

#[derive(Debug)]
pub(crate) struct SimplePlans {
    kept: HashMap<Arc<str>, Entry>,
    /// Hashes of texts run once and not kept yet.
    seen: HashSet<u64>,
    /// The sighting of a text at which it is prepared: 2 (1 in tests that run
    /// every query through kept plans).
    prepare_at: u8,
    /// Use counter, for least-recently-used eviction.
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    settings: Settings,
    /// `None`: the statement keeps no plan (a table function, a catalog
    /// query); it runs as planned each time, and is not prepared again.
    prepared: Option<Prepared>,
    last_used: u64,
}

impl Default for SimplePlans {
    fn default() -> Self {
        SimplePlans {
            kept: HashMap::new(),
            seen: HashSet::new(),
            prepare_at: 2,
            clock: 0,
        }
    }
}

/// What the cache knows of a text.
enum Lookup {
    /// Kept (with or without a plan).
    Kept(Option<Prepared>),
    /// Seen often enough: prepare it now.
    Prepare,
    /// Not yet.
    Wait,
}

impl SimplePlans {
    fn lookup(&mut self, text: &str, settings: &Settings) -> Lookup {
        self.clock += 1;
        if let Some(entry) = self.kept.get_mut(text) {
            if entry.settings == *settings {
                entry.last_used = self.clock;
                return Lookup::Kept(entry.prepared.clone());
            }
            return Lookup::Prepare;
        }
        if self.prepare_at <= 1 {
            return Lookup::Prepare;
        }
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        let hash = hasher.finish();
        if self.seen.remove(&hash) {
            return Lookup::Prepare;
        }
        if self.seen.len() >= SEEN {
            self.seen.clear();
        }
        self.seen.insert(hash);
        Lookup::Wait
    }

    /// The statement of `text` when it is kept with a plan for these
    /// settings: the script need not be parsed again.
    pub(crate) fn kept_statement(&self, text: &str, settings: &Settings) -> Option<Statement> {
        let entry = self.kept.get(text)?;
        if entry.settings != *settings {
            return None;
        }
        entry.prepared.as_ref()?.statement().cloned()
    }

    fn keep(&mut self, text: &str, settings: &Settings, prepared: Option<Prepared>) {
        if !self.kept.contains_key(text)
            && self.kept.len() >= KEPT
            && let Some(oldest) = self
                .kept
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(text, _)| text.clone())
        {
            self.kept.remove(&oldest);
        }
        self.kept.insert(
            Arc::from(text),
            Entry {
                settings: settings.clone(),
                prepared,
                last_used: self.clock,
            },
        );
    }

    /// Forgets the texts that kept no plan: a statement of the session may
    /// have made one plannable (`CREATE TABLE` of the table it reads).
    pub(crate) fn forget_unplanned(&mut self) {
        self.kept.retain(|_, e| e.prepared.is_some());
    }

    /// Prepares every query at its first sighting (for tests that run whole
    /// suites through kept plans).
    pub(crate) fn prepare_at_first_sight(&mut self) {
        self.prepare_at = 1;
    }

    #[cfg(test)]
    pub(crate) fn planned(&self) -> usize {
        self.kept.values().filter(|e| e.prepared.is_some()).count()
    }
}

/// Whether `statement` is a query that a kept plan could serve.
pub(super) fn is_query(statement: &Statement) -> bool {
    match statement {
        Statement::Standard(s) => matches!(s.as_ref(), ast::Statement::Query(_)),
        Statement::Sample { .. } => true,
        _ => false,
    }
}

impl Session {
    /// The prepared form of `statement`, the one statement of a simple-query
    /// script `text`, when this session keeps (or now makes) a plan for it;
    /// `None`: run it as planned now.
    pub(super) async fn simple_plan(
        &mut self,
        text: &str,
        statement: &Statement,
    ) -> Option<Prepared> {
        if text.len() > MAX_TEXT || !is_query(statement) || self.wants_catalog {
            return None;
        }
        match self.simple_plans.lookup(text, &self.settings) {
            Lookup::Kept(prepared) => prepared,
            Lookup::Wait => None,
            Lookup::Prepare => {
                // A statement that fails to prepare runs as planned now (and
                // fails there with its error), and is not remembered.
                let prepared = self.prepare(text).await.ok()?;
                let prepared = prepared.is_planned_query().then_some(prepared);
                self.simple_plans
                    .keep(text, &self.settings, prepared.clone());
                prepared
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Output;

    /// The rows of the script's last result, each as its values' text joined by `|`.
    async fn rows(s: &mut Session, sql: &str) -> Vec<String> {
        let out = s.execute(sql).await.expect(sql).pop().expect("a result");
        let Output::Rows { rows, .. } = out else {
            panic!("{out:?}")
        };
        let batches = rows.collect().await.expect("rows");
        let mut lines = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                let values: Vec<String> = b
                    .columns()
                    .iter()
                    .map(|c| {
                        crate::text::format_value(c, r)
                            .ok()
                            .flatten()
                            .unwrap_or_else(|| "NULL".into())
                    })
                    .collect();
                lines.push(values.join("|"));
            }
        }
        lines
    }

    /// A repeated query runs from a kept plan and still sees what changed:
    /// new rows, a new column, a changed setting.
    #[tokio::test]
    async fn a_repeated_query_runs_from_its_kept_plan_and_sees_changes() {
        let (mut s, _dir) = crate::session::test_session();
        s.execute(
            "CREATE TABLE q (ts TIMESTAMP, sym SYMBOL, price DOUBLE) TIMESTAMP(ts) PARTITION BY DAY;
             INSERT INTO q VALUES ('2026-11-21 10:00:00', 'a', 1.5), ('2026-11-22 10:00:00', 'b', 2.5)",
        )
        .await
        .expect("setup");
        let count = "SELECT count(*), sum(price) FROM q WHERE sym = 'a'";
        assert_eq!(rows(&mut s, count).await, ["1|1.5"]);
        assert_eq!(
            s.simple_plans.planned(),
            0,
            "a text seen once is not prepared"
        );
        assert_eq!(rows(&mut s, count).await, ["1|1.5"]);
        assert_eq!(s.simple_plans.planned(), 1);
        s.execute("INSERT INTO q VALUES ('2026-11-23 10:00:00', 'a', 4)")
            .await
            .expect("insert");
        assert_eq!(rows(&mut s, count).await, ["2|5.5"]);

        let all = "SELECT * FROM q ORDER BY ts LIMIT 1";
        assert_eq!(rows(&mut s, all).await, ["2026-11-21 10:00:00|a|1.5"]);
        assert_eq!(rows(&mut s, all).await, ["2026-11-21 10:00:00|a|1.5"]);
        s.execute("ALTER TABLE q ADD COLUMN qty BIGINT")
            .await
            .expect("alter");
        assert_eq!(rows(&mut s, all).await, ["2026-11-21 10:00:00|a|1.5|NULL"]);

        let zone = "SELECT current_setting('timezone')";
        assert_eq!(rows(&mut s, zone).await, ["UTC"]);
        assert_eq!(rows(&mut s, zone).await, ["UTC"]);
        s.execute("SET TimeZone = 'Europe/Paris'")
            .await
            .expect("set");
        assert_eq!(rows(&mut s, zone).await, ["Europe/Paris"]);
    }

    /// A query of a table that does not exist yet fails, and once the session
    /// has made it, runs.
    #[tokio::test]
    async fn a_query_of_a_missing_table_runs_once_the_table_is_made() {
        let (mut s, _dir) = crate::session::test_session();
        let count = "SELECT count(*) FROM later";
        for _ in 0..3 {
            let e = s.execute(count).await.expect_err("no table yet");
            assert_eq!(e.sqlstate, "42P01", "{e}");
        }
        s.execute("CREATE TABLE later (ts TIMESTAMP) TIMESTAMP(ts) PARTITION BY DAY")
            .await
            .expect("create");
        for _ in 0..3 {
            assert_eq!(rows(&mut s, count).await, ["0"]);
        }
        assert_eq!(s.simple_plans.planned(), 1);
    }

    #[test]
    fn a_text_is_prepared_at_its_second_sighting_and_kept() {
        let settings = Settings::default();
        let mut plans = SimplePlans::default();
        assert!(matches!(plans.lookup("SELECT 1", &settings), Lookup::Wait));
        assert!(matches!(plans.lookup("SELECT 2", &settings), Lookup::Wait));
        assert!(matches!(
            plans.lookup("SELECT 1", &settings),
            Lookup::Prepare
        ));
        plans.keep("SELECT 1", &settings, None);
        assert!(matches!(
            plans.lookup("SELECT 1", &settings),
            Lookup::Kept(None)
        ));
        let mut changed = Settings::default();
        changed
            .set("timezone", "Europe/Paris")
            .expect("a known zone");
        assert!(matches!(
            plans.lookup("SELECT 1", &changed),
            Lookup::Prepare
        ));
        plans.forget_unplanned();
        assert!(matches!(plans.lookup("SELECT 1", &settings), Lookup::Wait));
    }

    #[test]
    fn the_least_recently_used_text_gives_way() {
        let settings = Settings::default();
        let mut plans = SimplePlans::default();
        plans.prepare_at_first_sight();
        for i in 0..KEPT {
            let text = format!("SELECT {i}");
            assert!(matches!(plans.lookup(&text, &settings), Lookup::Prepare));
            plans.keep(&text, &settings, None);
        }
        // Use the first again: the second is now the oldest.
        assert!(matches!(
            plans.lookup("SELECT 0", &settings),
            Lookup::Kept(_)
        ));
        plans.lookup("SELECT new", &settings);
        plans.keep("SELECT new", &settings, None);
        assert_eq!(plans.kept.len(), KEPT);
        assert!(matches!(
            plans.lookup("SELECT 0", &settings),
            Lookup::Kept(_)
        ));
        assert!(matches!(
            plans.lookup("SELECT 1", &settings),
            Lookup::Prepare
        ));
    }
}
