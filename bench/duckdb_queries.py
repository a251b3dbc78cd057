#!/usr/bin/env python3
"""DuckDB's side of `tidemark-bench`: loads the generated CSV, runs the query suite
(warm-up, then the median of 5 runs). Input (stdin, JSON): {"csv": path, "queries":
[[name, sql], ...]}. Output, one figure a line: `load_s S`, `rss_peak_bytes B`, and
`query I MEDIAN_MS ROWS` per query in input order."""
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
out = []
for name, sql in spec["queries"]:
    rows = len(con.execute(sql).fetchall())
    times = []
    for _ in range(5):
        t = time.monotonic()
        con.execute(sql).fetchall()
        times.append((time.monotonic() - t) * 1000)
    out.append((statistics.median(times), rows))
print(f"load_s {load_s}")
print(f"rss_peak_bytes {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}")
for i, (ms, rows) in enumerate(out):
    print(f"query {i} {ms} {rows}")
