//! The result table, and its place in docs/benchmarks.md.

use crate::symbol_index::{INDEX_QUERIES, IndexFigures};
use crate::workload::{ASOF_QUERIES, QUERIES, same_answer};
use crate::{Args, Duck, Figures};

pub(crate) fn parse_duck(out: &str) -> Result<Duck, String> {
    let mut duck = Duck::default();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["load_s", v] => duck.load_s = v.parse().map_err(|_| format!("bad line {line}"))?,
            ["rss_peak_bytes", v] => {
                duck.rss = v.parse().map_err(|_| format!("bad line {line}"))?
            }
            ["query", _, ms, rows] => duck.queries_ms.push((
                ms.parse().map_err(|_| format!("bad line {line}"))?,
                rows.parse().map_err(|_| format!("bad line {line}"))?,
            )),
            ["asof", _, ms, rows] => duck.asof_ms.push((
                ms.parse().map_err(|_| format!("bad line {line}"))?,
                rows.parse().map_err(|_| format!("bad line {line}"))?,
            )),
            _ => {
                if let Some(answer) = line.strip_prefix("asof_answer ") {
                    duck.asof_answer = answer.to_string();
                }
            }
        }
    }
    if duck.queries_ms.len() != QUERIES.len() {
        return Err(format!(
            "DuckDB answered {} queries of {}",
            duck.queries_ms.len(),
            QUERIES.len()
        ));
    }
    Ok(duck)
}

fn mib(b: u64) -> String {
    format!("{} MiB", b >> 20)
}

/// Tidemark's rate `t` over `x`'s.
fn ratio(t: f64, x: f64) -> String {
    if t <= 0.0 || x <= 0.0 {
        return "-".into();
    }
    format!("{:.1}x", t / x)
}

/// How Tidemark's time `t` compares with `other` (smaller is better).
fn compare(t: f64, other: f64) -> String {
    if t <= 0.0 || other <= 0.0 {
        "-".into()
    } else if t <= other {
        format!("{:.1}x faster", other / t)
    } else {
        format!("{:.1}x slower", t / other)
    }
}

/// How a goal fared: met, missed, or not measured when the run left out a system or phase
/// it needs (a zero figure would otherwise pass or fail a goal it never ran).
fn verdict(measured: bool, ok: bool) -> &'static str {
    match (measured, ok) {
        (false, _) => "not measured",
        (true, true) => "met",
        (true, false) => "**missed**",
    }
}

fn goal(measured: bool, ok: bool, text: &str) -> String {
    format!("{text}: {}", verdict(measured, ok))
}

pub(crate) fn render(
    args: &Args,
    tm: &Figures,
    pg: &Figures,
    brin: &Figures,
    duck: &Duck,
) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{} rows by COPY ({} statement(s) of at most {} rows); {} generated rows per COPY variant \
         (CSV in order, CSV with 10% of rows late by up to a minute, binary); {} rows per batched \
         INSERT run (1,000 rows, 5,000 bound parameters per statement); single-row INSERTs from 16 \
         connections for {} s per run. Each into a fresh table. Durable defaults: Tidemark `sync`, \
         PostgreSQL `synchronous_commit=on`.\n\n",
        args.rows,
        args.rows.div_ceil(args.copy_rows_per_statement.max(1)),
        args.copy_rows_per_statement,
        args.copy_variant_rows,
        args.insert_rows,
        args.single_row_seconds
    ));
    s.push_str("| ingest | Tidemark | PostgreSQL | Tidemark / PostgreSQL | goal |\n|---|---:|---:|---:|---|\n");
    // A goal against PostgreSQL is judged only when both systems ran the phase.
    let versus = |t: f64, p: f64, factor: f64| {
        goal(
            t > 0.0 && p > 0.0,
            t >= factor * p,
            &format!(">= {factor}x"),
        )
    };
    // The late variants are held to Tidemark's own in-order figure.
    let kept = |late: f64, in_order: f64| {
        if in_order > 0.0 {
            format!("{:.0}% of in order", 100.0 * late / in_order)
        } else {
            "-".into()
        }
    };
    let mut row = |name: &str, t: f64, p: f64, judged: String| {
        s.push_str(&format!(
            "| {name} | {t:.0} | {p:.0} | {} | {judged} |\n",
            ratio(t, p)
        ));
    };
    row(
        "COPY rows/s (CSV file, all rows)",
        tm.copy_rows_s,
        pg.copy_rows_s,
        versus(tm.copy_rows_s, pg.copy_rows_s, 3.0),
    );
    row(
        &format!(
            "COPY rows/s (CSV, {} generated rows)",
            args.copy_variant_rows
        ),
        tm.copy_text_rows_s,
        pg.copy_text_rows_s,
        versus(tm.copy_text_rows_s, pg.copy_text_rows_s, 3.0),
    );
    // Line protocol beside COPY of the same rows (Tidemark's and PostgreSQL's).
    let absolute = |t: f64, at_least: f64| {
        goal(
            t > 0.0,
            t >= at_least,
            &format!(">= {:.0}M rows/s", at_least / 1e6),
        )
    };
    row(
        "line protocol over TCP rows/s (1 connection; PG column: its COPY CSV)",
        tm.ilp_tcp_rows_s,
        pg.copy_text_rows_s,
        absolute(tm.ilp_tcp_rows_s, 2e6),
    );
    row(
        "line protocol over HTTP rows/s (10,000-line requests, 1 connection; PG: COPY CSV)",
        tm.ilp_http_rows_s,
        pg.copy_text_rows_s,
        absolute(tm.ilp_http_rows_s, 1e6),
    );
    row(
        "COPY rows/s, 10% of rows late by up to 1 min",
        tm.copy_late_rows_s,
        pg.copy_late_rows_s,
        goal(
            tm.copy_late_rows_s > 0.0 && tm.copy_text_rows_s > 0.0,
            tm.copy_late_rows_s >= 0.8 * tm.copy_text_rows_s,
            &format!(
                ">= 80% of in order ({})",
                kept(tm.copy_late_rows_s, tm.copy_text_rows_s)
            ),
        ),
    );
    row(
        "COPY rows/s into a table keyed on (ts, sym) (DEDUP UPSERT KEYS / PRIMARY KEY)",
        tm.upsert_first_rows_s,
        pg.upsert_first_rows_s,
        versus(tm.upsert_first_rows_s, pg.upsert_first_rows_s, 3.0),
    );
    row(
        "the same rows again, each replacing one (COPY / COPY + INSERT ON CONFLICT)",
        tm.upsert_again_rows_s,
        pg.upsert_again_rows_s,
        versus(tm.upsert_again_rows_s, pg.upsert_again_rows_s, 3.0),
    );
    row(
        "COPY rows/s, binary format",
        tm.copy_binary_rows_s,
        pg.copy_binary_rows_s,
        "reported".into(),
    );
    row(
        "batched INSERT rows/s (1,000 rows, bound parameters)",
        tm.insert_rows_s,
        pg.insert_rows_s,
        versus(tm.insert_rows_s, pg.insert_rows_s, 4.0),
    );
    row(
        "batched INSERT rows/s, 10% late",
        tm.insert_late_rows_s,
        pg.insert_late_rows_s,
        goal(
            tm.insert_late_rows_s > 0.0 && tm.insert_rows_s > 0.0,
            tm.insert_late_rows_s >= 0.8 * tm.insert_rows_s,
            &format!(
                ">= 80% of in order ({})",
                kept(tm.insert_late_rows_s, tm.insert_rows_s)
            ),
        ),
    );
    row(
        "single-row INSERT rows/s (16 connections)",
        tm.single_rows_s,
        pg.single_rows_s,
        versus(tm.single_rows_s, pg.single_rows_s, 3.0),
    );
    row(
        "single-row INSERT rows/s, 10% late",
        tm.single_late_rows_s,
        pg.single_late_rows_s,
        goal(
            tm.single_late_rows_s > 0.0 && tm.single_rows_s > 0.0,
            tm.single_late_rows_s >= 0.8 * tm.single_rows_s,
            &format!(
                ">= 80% of in order ({})",
                kept(tm.single_late_rows_s, tm.single_rows_s)
            ),
        ),
    );
    s.push_str(&format!(
        "| single-row commit p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms | | {} |\n",
        tm.single_p50_ms,
        tm.single_p99_ms,
        pg.single_p50_ms,
        pg.single_p99_ms,
        goal(
            tm.single_p99_ms > 0.0 && pg.single_p99_ms > 0.0,
            tm.single_p99_ms <= pg.single_p99_ms,
            "p99 <= PostgreSQL's"
        )
    ));
    s.push_str(&format!(
        "| single-row commit p99, 10% late | {:.2} ms | {:.2} ms | | |\n",
        tm.single_late_p99_ms, pg.single_late_p99_ms,
    ));
    s.push_str(&format!(
        "| checkpoint: CREATE median (PG: pg_backup_start fast) | {:.1} ms | {:.1} ms | {} | {} |\n",
        tm.checkpoint_create_ms,
        pg.checkpoint_create_ms,
        compare(tm.checkpoint_create_ms, pg.checkpoint_create_ms),
        goal(args.does("checkpoint"), tm.checkpoint_create_ms < 100.0, "< 100 ms")
    ));
    s.push_str(&format!(
        "| checkpoint: longest commit overlapping CREATE (4 writers) | {:.1} ms | {:.1} ms | {} | {} |\n",
        tm.checkpoint_stall_ms,
        pg.checkpoint_stall_ms,
        compare(tm.checkpoint_stall_ms, pg.checkpoint_stall_ms),
        goal(args.does("checkpoint"), tm.checkpoint_stall_ms < 20.0, "< 20 ms")
    ));
    s.push_str(&format!(
        "| peak server RSS during ingest | {} | {} | | {} |\n",
        mib(tm.rss_ingest),
        mib(pg.rss_ingest),
        goal(tm.rss_ingest > 0, tm.rss_ingest < 1 << 30, "< 1 GiB")
    ));
    s.push_str(&format!(
        "| peak server RSS during queries | {} | {} | | |\n\n",
        mib(tm.rss_queries),
        mib(pg.rss_queries)
    ));
    if duck.load_s > 0.0 {
        s.push_str(&format!(
            "DuckDB (in-process, Python) loaded the CSV in {:.1} s; its peak RSS was {}.\n\n",
            duck.load_s,
            mib(duck.rss)
        ));
    } else {
        s.push_str("DuckDB was not run.\n\n");
    }
    s.push_str(
        "| query (median of 5, ms) | Tidemark | PG B-tree | PG BRIN | DuckDB | vs PG (best) | vs DuckDB | goal (>= 10x PG, <= 1.5x DuckDB) | same rows as PG |\n\
         |---|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    for (i, (name, _, _)) in QUERIES.iter().enumerate() {
        let at = |v: &[(f64, usize)]| v.get(i).map_or(0.0, |q| q.0);
        let t = at(&tm.queries_ms);
        let p = at(&pg.queries_ms).min(at(&brin.queries_ms));
        let d = at(&duck.queries_ms);
        let judged = verdict(t > 0.0 && p > 0.0 && d > 0.0, p >= 10.0 * t && t <= 1.5 * d);
        s.push_str(&format!(
            "| {name} | {t:.1} | {:.1} | {:.1} | {d:.1} | {} | {} | {} | {} |\n",
            at(&pg.queries_ms),
            at(&brin.queries_ms),
            compare(t, p),
            compare(t, d),
            judged,
            agreement(&tm.queries_answers, &pg.queries_answers, i)
        ));
    }
    if args.does("prepared") {
        s.push_str(&format!(
            "\nPrepared one-row statements ({} executions each after a tenth as warm-up; one \
             Bind/Execute/Sync round trip each, as drivers run a prepared statement):\n\n\
             | prepared statement (µs) | Tidemark p50 / p99 | PostgreSQL p50 / p99 | Tidemark / PostgreSQL (p50) | goal (<= 2x PostgreSQL) |\n\
             |---|---:|---:|---:|---|\n",
            args.prepared_runs
        ));
        for (name, t, p) in [
            ("`SELECT $1`", tm.prepared_select_us, pg.prepared_select_us),
            (
                "`SELECT * FROM trades WHERE ts = $1` (PG: B-tree on ts)",
                tm.prepared_lookup_us,
                pg.prepared_lookup_us,
            ),
        ] {
            let judged = goal(p.0 > 0.0 && t.0 > 0.0, t.0 <= 2.0 * p.0, "<= 2x");
            s.push_str(&format!(
                "| {name} | {:.0} / {:.0} | {:.0} / {:.0} | {} | {judged} |\n",
                t.0,
                t.1,
                p.0,
                p.1,
                ratio(t.0, p.0)
            ));
        }
    }
    if args.does("asof") {
        s.push_str(&format!(
            "\nASOF JOIN of the {} trades to {} quotes (one every 100 ms, same symbols) on \
             symbol; PostgreSQL has no ASOF JOIN:\n\n\
             | ASOF JOIN (median of 5, ms) | Tidemark | DuckDB | Tidemark vs DuckDB | goal (<= 1.5x DuckDB) |\n\
             |---|---:|---:|---:|---|\n",
            args.rows,
            args.rows / 10
        ));
        for (i, (name, _, _)) in ASOF_QUERIES.iter().enumerate() {
            let at = |v: &[(f64, usize)]| v.get(i).map_or(0.0, |q| q.0);
            let (t, d) = (at(&tm.asof_ms), at(&duck.asof_ms));
            s.push_str(&format!(
                "| {name} | {t:.1} | {d:.1} | {} | {} |\n",
                compare(t, d),
                goal(t > 0.0 && d > 0.0, t <= 1.5 * d, "<= 1.5x")
            ));
        }
        s.push_str(&format!(
            "\nThe aggregate's answer (rows, matched rows, mean price - bid): Tidemark `{}`, DuckDB `{}`.\n",
            tm.asof_answer, duck.asof_answer
        ));
    }
    if args.does("index") {
        s.push_str(&index_section(args, &tm.index, &pg.index));
    }
    s
}

/// The symbol index phase: Tidemark before and after `CREATE INDEX ON trades
/// (sym)`, PostgreSQL with a B-tree on (sym, ts).
fn index_section(args: &Args, f: &IndexFigures, pg: &IndexFigures) -> String {
    let mut s = format!(
        "\nSymbol index on `trades.sym`: COPY of {} generated rows then CHECKPOINT (the apply \
         that writes the files and the index), {:.0} rows/s into a table without an index and \
         {:.0} rows/s with one ({} the rate); `CREATE INDEX ON trades (sym)` over the {} loaded \
         rows took {:.0} ms; the index takes {} on disk beside the column's {} of keys. \
         PostgreSQL has a B-tree on (sym, ts) for these queries:\n\n\
         | query (median of 5, ms) | Tidemark, no index | Tidemark, symbol index | PostgreSQL (sym, ts) | index vs none | indexed vs PG | same rows: index as none / as PG |\n\
         |---|---:|---:|---:|---:|---:|---|\n",
        args.copy_variant_rows,
        f.copy_plain_rows_s,
        f.copy_indexed_rows_s,
        ratio(f.copy_indexed_rows_s, f.copy_plain_rows_s),
        args.rows,
        f.build_ms,
        mib(f.index_bytes),
        mib(f.key_bytes),
    );
    for (i, (name, _, _)) in INDEX_QUERIES.iter().enumerate() {
        let at = |v: &[(f64, usize)]| v.get(i).map_or(0.0, |q| q.0);
        let (before, after, p) = (at(&f.before_ms), at(&f.after_ms), at(&pg.after_ms));
        s.push_str(&format!(
            "| {name} | {before:.1} | {after:.1} | {p:.1} | {} | {} | {} / {} |\n",
            compare(after, before),
            compare(after, p),
            agreement(&f.after_answers, &f.before_answers, i),
            agreement(&f.after_answers, &pg.after_answers, i)
        ));
    }
    s
}

/// Whether answer `i` of two systems holds the same rows: `yes`, **no**, or
/// `-` when either was not run.
fn agreement(ours: &[Vec<String>], theirs: &[Vec<String>], i: usize) -> &'static str {
    match (ours.get(i), theirs.get(i)) {
        (Some(a), Some(b)) if same_answer(a, b) => "yes",
        (Some(_), Some(_)) => "**no**",
        _ => "-",
    }
}

pub(crate) fn write_docs(table: &str, rows: u64) -> Result<(), String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let heading = format!("### Side by side: {rows} rows");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| {
                    l.strip_prefix("model name")
                        .and_then(|v| v.split(':').nth(1))
                })
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let section = format!("{heading}\n\nRun on {date}, {cores} cores ({cpu}):\n\n{table}\n");
    let text = match text.find(&heading) {
        Some(start) => {
            // The section ends at the next heading of level 2 or 3.
            let rest = &text[start + 1..];
            let end = [rest.find("\n## "), rest.find("\n### ")]
                .into_iter()
                .flatten()
                .min()
                .map_or(text.len(), |e| start + 1 + e + 1);
            format!("{}{}{}", &text[..start], section, &text[end..])
        }
        None => format!("{}\n\n{section}", text.trim_end()),
    };
    std::fs::write(&path, text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A run of one phase judges only that phase's goals: the rows it never measured say so
    /// instead of passing on a zero.
    #[test]
    fn goals_of_phases_not_run_are_not_measured() {
        let args = Args::parse_from(["tidemark-bench", "--phases", "copy"]);
        let tm = Figures {
            copy_rows_s: 3_000_000.0,
            rss_ingest: 900 << 20,
            ..Figures::default()
        };
        let pg = Figures {
            copy_rows_s: 600_000.0,
            ..Figures::default()
        };
        let duck = Duck::default();
        let table = render(&args, &tm, &pg, &Figures::default(), &duck);
        let line = |start: &str| {
            table
                .lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no row {start:?} in\n{table}"))
                .to_string()
        };
        assert!(line("| COPY rows/s (CSV file").ends_with(">= 3x: met |"));
        assert!(line("| peak server RSS during ingest").ends_with("< 1 GiB: met |"));
        for row in [
            "| COPY rows/s, 10% of rows late",
            "| batched INSERT rows/s (1,000",
            "| single-row INSERT rows/s, 10% late",
            "| single-row commit p50 / p99",
            "| checkpoint: CREATE median",
            "| checkpoint: longest commit",
        ] {
            assert!(
                line(row).ends_with("not measured |"),
                "{row} should not be judged: {}",
                line(row)
            );
        }
        let query = line("| SAMPLE BY 1h avg price");
        assert!(
            query.ends_with("| not measured | - |"),
            "a query not run is neither judged nor compared: {query}"
        );
        assert!(!table.contains("Prepared one-row statements"));
    }
}
