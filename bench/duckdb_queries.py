#!/usr/bin/env python3
"""DuckDB's side of `tidemark-bench`: loads the generated CSV, runs the query suite
(warm-up, then the median of 5 runs), and given a quotes CSV, the ASOF JOIN suite.
Input (stdin, JSON): {"csv": path, "queries": [[name, sql], ...], "quotes_csv": path
or null, "asof": [[name, sql], ...]}. Output, one figure a line: `load_s S`,
`rss_peak_bytes B`, `query I MEDIAN_MS ROWS` per query and `asof I MEDIAN_MS ROWS`
per ASOF JOIN query in input order, and `asof_answer TEXT` (the first ASOF JOIN
query's first row)."""
import json
import resource
import statistics
import sys
import time

import duckdb

spec = json.load(sys.stdin)
con = duckdb.connect()
t0 = time.monotonic()
con.execute(
    "CREATE TABLE trades AS SELECT * FROM read_csv(?, header = false, columns = "
    "{'ts': 'TIMESTAMP', 'sym': 'VARCHAR', 'side': 'VARCHAR', 'price': 'DOUBLE', 'amount': 'DOUBLE'})",
    [spec["csv"]],
)
load_s = time.monotonic() - t0


def timed(sql):
    rows = len(con.execute(sql).fetchall())
    times = []
    for _ in range(5):
        t = time.monotonic()
        con.execute(sql).fetchall()
        times.append((time.monotonic() - t) * 1000)
    return statistics.median(times), rows


out = [timed(sql) for _, sql in spec["queries"]]
asof = []
answer = None
if spec.get("quotes_csv"):
    con.execute(
        "CREATE TABLE quotes AS SELECT * FROM read_csv(?, header = false, columns = "
        "{'ts': 'TIMESTAMP', 'sym': 'VARCHAR', 'bid': 'DOUBLE'})",
        [spec["quotes_csv"]],
    )
    asof = [timed(sql) for _, sql in spec["asof"]]
    if spec["asof"]:
        row = con.execute(spec["asof"][0][1]).fetchone()
        answer = " ".join("NULL" if v is None else str(v) for v in row)
print(f"load_s {load_s}")
print(f"rss_peak_bytes {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}")
for i, (ms, rows) in enumerate(out):
    print(f"query {i} {ms} {rows}")
for i, (ms, rows) in enumerate(asof):
    print(f"asof {i} {ms} {rows}")
if answer is not None:
    print(f"asof_answer {answer}")
