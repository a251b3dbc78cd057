#!/usr/bin/env python3
"""Log-backup lag and its cost to ingest, in one run on this machine.

    python3 bench/log_lag_bench.py                  # 30 s per run, 16 connections
    python3 bench/log_lag_bench.py --seconds 60 --interval-ms 1000

What it does: starts the release `tidemark` twice on fresh roots with the same load,
16 connections each sending single-row INSERTs (autocommit, durable defaults):
once without log backup, once with `log_backup = true` to a `file://` directory on the
same disk (`log_flush_interval_ms` = --interval-ms). During the second run a 17th
connection samples `backup_status().log_lag_ms` (how long the oldest commit not yet
shipped has waited) every 50 ms; the report gives rows/s of both runs, their ratio,
and the lag's p50, p99 and maximum over the samples, with the objects and bytes
shipped.
"""
import argparse
import os
import statistics
import tempfile
import threading
import time

from backup_bench import Server, binary


def load(server, seconds, connections):
    """Single-row INSERTs from `connections` threads for `seconds`; rows/s."""
    import psycopg
    server.conn.execute(
        "CREATE TABLE IF NOT EXISTS ticks (ts TIMESTAMP, conn INT, n BIGINT) "
        "TIMESTAMP(ts) PARTITION BY DAY")
    stop = time.monotonic() + seconds
    counts = [0] * connections

    def worker(i):
        with psycopg.connect(
                f"host=127.0.0.1 port={server.port} user=admin password=quest dbname=tidemark",
                autocommit=True) as c:
            n = 0
            while time.monotonic() < stop:
                c.execute("INSERT INTO ticks VALUES (now(), %s, %s)", (i, n))
                n += 1
            counts[i] = n

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    return threads, counts, started


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--interval-ms", type=int, default=1000)
    args = ap.parse_args()
    bin_ = binary()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        rates = {}
        for mode in ("off", "on"):
            env = {}
            if mode == "on":
                env = {"TIDEMARK_BACKUP_DESTINATION": f"file://{tmp}/dest",
                       "TIDEMARK_BACKUP_LOG_BACKUP": "true",
                       "TIDEMARK_BACKUP_LOG_FLUSH_INTERVAL_MS": str(args.interval_ms)}
            server = Server(bin_, f"{tmp}/root-{mode}", env)
            threads, counts, started = load(server, args.seconds, args.connections)
            lags = []
            while any(t.is_alive() for t in threads):
                if mode == "on":
                    lags.append(server.conn.execute(
                        "SELECT log_lag_ms FROM backup_status()").fetchone()[0])
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            rates[mode] = sum(counts) / elapsed
            print(f"log backup {mode}: {sum(counts)} rows in {elapsed:.1f} s = "
                  f"{rates[mode]:,.0f} rows/s")
            if mode == "on":
                status = server.conn.execute(
                    "SELECT log_backup, log_archived_seq, log_last_error FROM backup_status()"
                ).fetchone()
                lags.sort()
                q = statistics.quantiles(lags, n=100)
                shipped = sum(os.path.getsize(os.path.join(d, f))
                              for d, _, fs in os.walk(f"{tmp}/dest/log") for f in fs)
                objects = sum(len(fs) for _, _, fs in os.walk(f"{tmp}/dest/log"))
                print(f"log lag over {len(lags)} samples: p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms, "
                      f"max {lags[-1]} ms (interval {args.interval_ms} ms); "
                      f"{objects} objects, {shipped / 1e6:.1f} MB shipped; status {status}")
            server.stop()
        print(f"ingest with log backup / without: {rates['on'] / rates['off']:.2f}")


if __name__ == "__main__":
    main()
