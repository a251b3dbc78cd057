#!/usr/bin/env python3
"""What reading through a view costs, Tidemark beside PostgreSQL 15, in one run.

    python3 bench/views_bench.py                     # release binary from $CARGO_TARGET_DIR
    python3 bench/views_bench.py --binary path/to/tidemark --rows 1000000 --seconds 10

Both servers get the same trades table (--rows rows, one every 100 ms from
2026-11-21, 100 symbols; PostgreSQL with a B-tree on (sym, ts)) and two views: a
plain one (`SELECT * FROM trades`) and an hourly aggregate (Tidemark's SAMPLE BY 1h,
PostgreSQL's date_trunc + GROUP BY). Each query runs directly and through its view
under pgbench (one connection, --seconds each), with the extended protocol and
prepared statements (`-M prepared`: planned once, as drivers and dashboards run
them) and with simple queries (`-M simple`: parsed and planned every time); the
figures are pgbench's average latency. Run as root: PostgreSQL is initialised as
`postgres`.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_bench import Postgres, Tidemark  # noqa: E402

HOUR = "ts >= '2026-11-21T10:00:00' AND ts < '2026-11-21T11:00:00'"
FOUR_HOURS = "ts >= '2026-11-21T10:00:00' AND ts < '2026-11-21T14:00:00'"

# (label, Tidemark direct, PostgreSQL direct, query through the view)
QUERIES = [
    (
        "one symbol, one hour: count and mean",
        f"SELECT count(*), avg(price) FROM trades WHERE sym = 'S7' AND {HOUR}",
        f"SELECT count(*), avg(price) FROM trades WHERE sym = 'S7' AND {HOUR}",
        f"SELECT count(*), avg(price) FROM trades_v WHERE sym = 'S7' AND {HOUR}",
    ),
    (
        "hourly buckets of one symbol, four hours",
        "SELECT ts, sym, avg(price) AS avg_price, sum(qty) AS volume FROM trades "
        f"WHERE sym = 'S7' AND {FOUR_HOURS} SAMPLE BY 1h",
        "SELECT date_trunc('hour', ts) AS ts, sym, avg(price) AS avg_price, sum(qty) AS volume "
        f"FROM trades WHERE sym = 'S7' AND {FOUR_HOURS} GROUP BY 1, 2 ORDER BY 1",
        f"SELECT * FROM hourly WHERE sym = 'S7' AND {FOUR_HOURS} ORDER BY ts",
    ),
]

VIEWS = {
    "tidemark": [
        "CREATE VIEW trades_v AS SELECT * FROM trades",
        "CREATE VIEW hourly AS (SELECT ts, sym, avg(price) AS avg_price, sum(qty) AS volume "
        "FROM trades SAMPLE BY 1h)",
    ],
    "postgres": [
        "CREATE VIEW trades_v AS SELECT * FROM trades",
        "CREATE VIEW hourly AS SELECT date_trunc('hour', ts) AS ts, sym, avg(price) AS avg_price, "
        "sum(qty) AS volume FROM trades GROUP BY 1, 2",
    ],
}


def load(dsn, system, rows):
    with psycopg.connect(dsn, autocommit=True) as c:
        if system == "tidemark":
            c.execute("CREATE TABLE trades (ts TIMESTAMP, sym SYMBOL, price DOUBLE, qty BIGINT) "
                      "TIMESTAMP(ts) PARTITION BY DAY")
            c.execute("INSERT INTO trades SELECT timestamp_sequence('2026-11-21', 100000), "
                      f"'S' || (x % 100), x * 0.01, x FROM long_sequence({rows})")
            c.execute("CHECKPOINT")
        else:
            c.execute("CREATE TABLE trades (ts TIMESTAMP, sym TEXT, price DOUBLE PRECISION, qty BIGINT)")
            c.execute("INSERT INTO trades SELECT '2026-11-21'::timestamp + (x - 1) * interval '100 ms', "
                      f"'S' || (x % 100), x * 0.01, x FROM generate_series(1, {rows}) x")
            c.execute("CREATE INDEX ON trades (sym, ts)")
            c.execute("VACUUM ANALYZE trades")
        for v in VIEWS[system]:
            c.execute(v)


def latency_ms(host, port, user, password, db, sql, seconds, mode):
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(sql + ";\n")
    env = dict(os.environ, PGPASSWORD=password or "")
    out = subprocess.run(
        ["pgbench", "-n", "-h", host, "-p", str(port), "-U", user, "-f", f.name,
         "-T", str(seconds), "-M", mode, db],
        capture_output=True, text=True, env=env, check=False)
    os.unlink(f.name)
    m = re.search(r"latency average = ([0-9.]+) ms", out.stdout)
    failed = re.search(r"number of failed transactions: ([1-9][0-9]*)", out.stdout)
    if not m or failed or out.returncode != 0:
        raise SystemExit(f"pgbench failed for {sql!r}:\n{out.stdout}\n{out.stderr}")
    return float(m.group(1))


def main():
    p = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    p.add_argument("--binary", default=os.path.join(target, "release", "tidemark"))
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--seconds", type=int, default=10)
    a = p.parse_args()
    base = tempfile.mkdtemp(prefix="views-bench-")
    tm = Tidemark(a.binary, os.path.join(base, "root"))
    pg = Postgres(base)
    try:
        load(tm.dsn(), "tidemark", a.rows)
        load(pg.dsn(), "postgres", a.rows)
        print(f"{a.rows} rows, pgbench, 1 connection, {a.seconds} s per figure; "
              "average latency in ms\n")
        print("| query | protocol | Tidemark direct | Tidemark view | view / direct | "
              "PostgreSQL direct | PostgreSQL view | view / direct |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for label, tm_sql, pg_sql, view_sql in QUERIES:
            for mode in ["prepared", "simple"]:
                def tm_ms(sql):
                    return latency_ms("127.0.0.1", tm.port, "admin", "quest", "tidemark", sql,
                                      a.seconds, mode)

                def pg_ms(sql):
                    return latency_ms("127.0.0.1", pg.port, "bench", None, "postgres", sql,
                                      a.seconds, mode)

                t_direct, t_view = tm_ms(tm_sql), tm_ms(view_sql)
                p_direct, p_view = pg_ms(pg_sql), pg_ms(view_sql)
                print(f"| {label} | {mode} | {t_direct:.2f} | {t_view:.2f} | "
                      f"{t_view / t_direct:.2f}x | {p_direct:.2f} | {p_view:.2f} | "
                      f"{p_view / p_direct:.2f}x |", flush=True)
    finally:
        tm.stop()
        pg.stop()


if __name__ == "__main__":
    main()
