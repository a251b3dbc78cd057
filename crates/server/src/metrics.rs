//! Counters for `/metrics` (Prometheus text format): connections, queries by
//! outcome, a query latency histogram, rows written, commits, WAL fsync
//! latency, bytes on disk, and the line protocol's lines, rows and rejections.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tidemark_storage::{CheckpointPhase, Database};

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Connections accepted and not yet closed (the connection limit counts these).
    pub(crate) connections_open: AtomicU64,
    pub(crate) connections_total: AtomicU64,
    queries_ok: AtomicU64,
    queries_error: AtomicU64,
    queries_canceled: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_sum_micros: AtomicU64,
    rows_written: AtomicU64,
    ilp: [IlpCounters; IlpProtocol::ALL.len()],
}

/// The two ways line protocol comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IlpProtocol {
    Http = 0,
    Tcp = 1,
}

impl IlpProtocol {
    const ALL: [IlpProtocol; 2] = [IlpProtocol::Http, IlpProtocol::Tcp];
    fn label(self) -> &'static str {
        match self {
            IlpProtocol::Http => "http",
            IlpProtocol::Tcp => "tcp",
        }
    }
}

/// Why line-protocol data was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Not line protocol (or not UTF-8, or a bad parameter).
    Parse = 0,
    /// Does not fit the table: a type conflict, a missing column or table.
    Schema = 1,
    /// A request or line over its size limit.
    Size = 2,
    /// No, wrong or read-only credentials.
    Auth = 3,
    /// The engine failed to store it (disk full, I/O).
    Storage = 4,
}

impl Rejection {
    const ALL: [Rejection; 5] = [
        Rejection::Parse,
        Rejection::Schema,
        Rejection::Size,
        Rejection::Auth,
        Rejection::Storage,
    ];
    fn label(self) -> &'static str {
        match self {
            Rejection::Parse => "parse",
            Rejection::Schema => "schema",
            Rejection::Size => "size",
            Rejection::Auth => "auth",
            Rejection::Storage => "storage",
        }
    }
}

#[derive(Debug, Default)]
struct IlpCounters {
    bytes: AtomicU64,
    lines: AtomicU64,
    rows: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
}

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Error,
    Canceled,
}

impl Metrics {
    pub(crate) fn query(&self, outcome: Outcome, elapsed: Duration) {
        match outcome {
            Outcome::Ok => &self.queries_ok,
            Outcome::Error => &self.queries_error,
            Outcome::Canceled => &self.queries_canceled,
        }
        .fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        for (bound, counter) in BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts the rows a command tag reports as written (`INSERT 0 n`, `COPY n`).
    pub(crate) fn command(&self, tag: &str) {
        let rows = if tag.starts_with("INSERT ") || tag.starts_with("COPY ") {
            tag.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok())
        } else {
            None
        };
        if let Some(n) = rows {
            self.rows_written.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Line-protocol bytes received (stored or not).
    pub(crate) fn ilp_received(&self, protocol: IlpProtocol, bytes: u64) {
        self.ilp[protocol as usize]
            .bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// Line-protocol lines and rows committed.
    pub(crate) fn ilp_stored(&self, protocol: IlpProtocol, lines: u64, rows: u64) {
        let c = &self.ilp[protocol as usize];
        c.lines.fetch_add(lines, Ordering::Relaxed);
        c.rows.fetch_add(rows, Ordering::Relaxed);
        self.rows_written.fetch_add(rows, Ordering::Relaxed);
    }

    /// A refused request (HTTP) or bad line (TCP).
    pub(crate) fn ilp_rejected(&self, protocol: IlpProtocol, why: Rejection) {
        self.ilp[protocol as usize].rejected[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The whole exposition.
    pub(crate) fn render(
        &self,
        db: Option<&Database>,
        backups: Option<&tidemark_backup::Backups>,
    ) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let one = |v: u64| vec![(String::new(), v.to_string())];
        metric(
            "tidemark_connections",
            "gauge",
            "Open client connections.",
            &one(get(&self.connections_open)),
        );
        metric(
            "tidemark_connections_total",
            "counter",
            "Client connections accepted since start.",
            &one(get(&self.connections_total)),
        );
        metric(
            "tidemark_queries_total",
            "counter",
            "Statements run, by outcome.",
            &[
                ("{outcome=\"ok\"}".into(), get(&self.queries_ok).to_string()),
                (
                    "{outcome=\"error\"}".into(),
                    get(&self.queries_error).to_string(),
                ),
                (
                    "{outcome=\"canceled\"}".into(),
                    get(&self.queries_canceled).to_string(),
                ),
            ],
        );
        let count = get(&self.queries_ok) + get(&self.queries_error) + get(&self.queries_canceled);
        let mut lines: Vec<(String, String)> = BUCKETS
            .iter()
            .zip(&self.latency_buckets)
            .map(|(b, c)| (format!("_bucket{{le=\"{b}\"}}"), get(c).to_string()))
            .collect();
        lines.push(("_bucket{le=\"+Inf\"}".into(), count.to_string()));
        lines.push((
            "_sum".into(),
            format!("{}", get(&self.latency_sum_micros) as f64 / 1e6),
        ));
        lines.push(("_count".into(), count.to_string()));
        metric(
            "tidemark_query_duration_seconds",
            "histogram",
            "Time from receiving a statement to its last result row.",
            &lines,
        );
        metric(
            "tidemark_rows_written_total",
            "counter",
            "Rows written by INSERT, COPY and the line protocol.",
            &one(get(&self.rows_written)),
        );
        let per_protocol = |f: &dyn Fn(&IlpCounters) -> u64| -> Vec<(String, String)> {
            IlpProtocol::ALL
                .iter()
                .map(|p| {
                    (
                        format!("{{protocol=\"{}\"}}", p.label()),
                        f(&self.ilp[*p as usize]).to_string(),
                    )
                })
                .collect()
        };
        metric(
            "tidemark_ilp_received_bytes_total",
            "counter",
            "Line-protocol bytes received (after gzip), stored or not.",
            &per_protocol(&|c| get(&c.bytes)),
        );
        metric(
            "tidemark_ilp_lines_total",
            "counter",
            "Line-protocol lines committed.",
            &per_protocol(&|c| get(&c.lines)),
        );
        metric(
            "tidemark_ilp_rows_total",
            "counter",
            "Rows committed through the line protocol.",
            &per_protocol(&|c| get(&c.rows)),
        );
        let rejected: Vec<(String, String)> = IlpProtocol::ALL
            .iter()
            .flat_map(|p| Rejection::ALL.iter().map(move |r| (*p, *r)))
            .map(|(p, r)| {
                (
                    format!("{{protocol=\"{}\",reason=\"{}\"}}", p.label(), r.label()),
                    get(&self.ilp[p as usize].rejected[r as usize]).to_string(),
                )
            })
            .collect();
        metric(
            "tidemark_ilp_rejected_total",
            "counter",
            "Line-protocol requests (HTTP) or connections (TCP) refused, by reason.",
            &rejected,
        );
        if let Some(db) = db {
            let stats = db.stats();
            metric(
                "tidemark_commits_total",
                "counter",
                "Commits since the root was created (the newest commit sequence number).",
                &one(stats.visible_seq),
            );
            metric(
                "tidemark_wal_fsyncs_total",
                "counter",
                "WAL fsyncs since start (group commit shares one among concurrent commits).",
                &one(stats.wal_fsyncs),
            );
            metric(
                "tidemark_wal_fsync_seconds_total",
                "counter",
                "Time spent in WAL fsyncs since start; divide by tidemark_wal_fsyncs_total for the mean.",
                &[(
                    String::new(),
                    format!("{}", stats.wal_fsync_micros as f64 / 1e6),
                )],
            );
            metric(
                "tidemark_write_buffer_rows",
                "gauge",
                "Rows committed but not yet moved into the column files by the apply.",
                &one(stats.buffered_rows),
            );
            metric(
                "tidemark_write_buffer_bytes",
                "gauge",
                "Memory the write buffer holds (storage.write_buffer_mb bounds it).",
                &one(stats.buffered_bytes),
            );
            metric(
                "tidemark_applies_total",
                "counter",
                "Rounds of the apply (buffered rows into the column files) since start.",
                &one(stats.applies),
            );
            metric(
                "tidemark_applied_rows_total",
                "counter",
                "Rows the apply moved into the column files since start.",
                &one(stats.applied_rows),
            );
            metric(
                "tidemark_disk_bytes",
                "gauge",
                "Bytes of files under the root directory.",
                &one(db.disk_bytes()),
            );
            let cp = db.checkpoint_status();
            metric(
                "tidemark_checkpoint_in_progress",
                "gauge",
                "1 while the root is in checkpoint mode (CHECKPOINT CREATE until RELEASE).",
                &one(u64::from(cp.in_progress)),
            );
            let age = cp
                .started_at
                .and_then(|t| t.elapsed().ok())
                .map_or(0.0, |d| d.as_secs_f64());
            metric(
                "tidemark_checkpoint_age_seconds",
                "gauge",
                "How long the checkpoint in progress has existed (0 when none).",
                &[(String::new(), format!("{age:.3}"))],
            );
            metric(
                "tidemark_checkpoint_held_bytes",
                "gauge",
                "Bytes kept on disk only because a checkpoint pauses housekeeping.",
                &one(cp.held_bytes),
            );
            metric(
                "tidemark_checkpoint_phase",
                "gauge",
                "1 for the checkpoint lifecycle's current phase (idle, creating, in_progress, releasing, reclaiming).",
                &CheckpointPhase::ALL
                    .iter()
                    .map(|p| {
                        (
                            format!("{{phase=\"{}\"}}", p.as_str()),
                            u64::from(*p == cp.phase).to_string(),
                        )
                    })
                    .collect::<Vec<_>>(),
            );
            metric(
                "tidemark_reclaim_pending_paths",
                "gauge",
                "Files and directories nothing needs any more, waiting for housekeeping to delete them.",
                &one(cp.reclaim_pending_paths),
            );
            metric(
                "tidemark_reclaim_pending_bytes",
                "gauge",
                "Bytes of those paths, as housekeeping last measured them.",
                &one(cp.reclaim_pending_bytes),
            );
            metric(
                "tidemark_reclaimed_paths_total",
                "counter",
                "Files and directories housekeeping has deleted since start (paced by storage.reclaim_paths_per_second).",
                &one(db.reclaimed_paths()),
            );
            metric(
                "tidemark_free_bytes",
                "gauge",
                "Free bytes on the root's file system.",
                &one(cp.free_bytes),
            );
        }
        if let Some(b) = backups {
            let s = b.status();
            metric(
                "tidemark_backup_phase",
                "gauge",
                "1 for the phase of the last backup since start (idle, starting, uploading, writing_manifest, done, failed, aborted).",
                &tidemark_backup::BackupPhase::ALL
                    .iter()
                    .map(|p| {
                        (
                            format!("{{phase=\"{}\"}}", p.as_str()),
                            u64::from(*p == s.phase).to_string(),
                        )
                    })
                    .collect::<Vec<_>>(),
            );
            for (name, help, value) in [
                (
                    "files_total",
                    "Files of the backup's checkpoint cut.",
                    s.files_total,
                ),
                (
                    "files_done",
                    "Files of the backup in the destination.",
                    s.files_done,
                ),
                (
                    "bytes_total",
                    "Bytes of the backup's checkpoint cut.",
                    s.bytes_total,
                ),
                (
                    "bytes_done",
                    "Bytes of the backup in the destination (uploaded or reused).",
                    s.bytes_done,
                ),
                (
                    "bytes_uploaded",
                    "Bytes the backup's current run uploaded.",
                    s.bytes_uploaded,
                ),
            ] {
                metric(
                    &format!("tidemark_backup_{name}"),
                    "gauge",
                    help,
                    &one(value),
                );
            }
            let log = b.log_status();
            if log.enabled {
                metric(
                    "tidemark_backup_log_archived_seq",
                    "gauge",
                    "The newest commit the log backup has shipped to the destination.",
                    &one(log.archived_seq),
                );
                metric(
                    "tidemark_backup_log_lag_seconds",
                    "gauge",
                    "How long the oldest commit the log backup has not shipped yet has waited (0: none waits).",
                    &[(String::new(), format!("{:.3}", log.lag.as_secs_f64()))],
                );
                metric(
                    "tidemark_backup_log_bytes_total",
                    "counter",
                    "Bytes of WAL the log backup has shipped since start.",
                    &one(log.bytes_uploaded),
                );
                metric(
                    "tidemark_backup_log_failing",
                    "gauge",
                    "1 while the log backup's last upload failed (it retries with back-off).",
                    &one(u64::from(log.last_error.is_some())),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_and_rows_are_counted() {
        let m = Metrics::default();
        m.query(Outcome::Ok, Duration::from_millis(3));
        m.query(Outcome::Error, Duration::from_secs(2));
        m.command("INSERT 0 5");
        m.command("COPY 7");
        m.command("DELETE 3");
        let text = m.render(None, None);
        assert!(
            text.contains("tidemark_queries_total{outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tidemark_query_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tidemark_query_duration_seconds_bucket{le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(text.contains("tidemark_rows_written_total 12"), "{text}");
    }
}

/// Counts one open client connection for as long as it lives, also when its task
/// ends by a panic.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    metrics: std::sync::Arc<Metrics>,
}

impl OpenConnection {
    pub(crate) fn new(metrics: std::sync::Arc<Metrics>) -> Self {
        use std::sync::atomic::Ordering;
        metrics.connections_total.fetch_add(1, Ordering::Relaxed);
        metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection { metrics }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics
            .connections_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
