#!/usr/bin/env python3
"""Checkpoint mode under churn: CHECKPOINT CREATE latency, status poll latency and
reclaim throughput while a snapshot script runs CREATE -> rsync -> RELEASE round
after round under a churning write load (issue 21).

    python3 bench/checkpoint_churn_bench.py                  # ~8 min
    python3 bench/checkpoint_churn_bench.py --write-docs     # also refresh docs/benchmarks.md

The load, on the release `tidemark` with its default configuration: four writers
committing two-table transactions (a third of the rows a day late, so every apply
rewrites a partition's tail into a new version and retires the old one), one
connection running INSERT/UPDATE/DELETE/DROP PARTITION on another table, one running
CREATE/DROP TABLE, and a monitor polling `checkpoint_status()` and `/metrics` every
20 ms. The script first holds one long mode (--hold-s) so that garbage piles up,
then runs --rounds rounds of CREATE, `rsync -a` of the root to a fresh directory
(its exit code must be 0: no file vanished), RELEASE; the first CREATE of them
meets housekeeping deleting what the long mode held. Then a second long mode, and
after its RELEASE the reclaim is timed under the load (paths per second, and the
writers' commit rate during it against before), and finally SIGTERM with the
reclaim backlog still there is timed.

Tidemark only: PostgreSQL has no equivalent of a mode that holds garbage (its
pg_backup_start is compared in the checkpoint benchmark, bench/checkpoint_bench.py).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoint_bench import Tidemark, tidemark_binary, write_section  # noqa: E402

WRITERS = 4


def writer(dsn, w, stop, commits):
    with psycopg.connect(dsn, autocommit=True) as c:
        n = 0
        while not stop.is_set():
            day = 20 if n % 3 == 2 else 21
            ts = f"2026-11-{day}T00:00:00.{n % 1_000_000:06d}"
            c.execute(f"BEGIN; INSERT INTO a{w} VALUES ('{ts}', {n}); "
                      f"INSERT INTO b{w} VALUES ('{ts}', {n}); COMMIT")
            n += 1
            commits.append(time.monotonic())


def churn(dsn, stop):
    with psycopg.connect(dsn, autocommit=True) as c:
        i = 0
        while not stop.is_set():
            day = 10 + i % 8
            for sql in (
                f"INSERT INTO c VALUES ('2026-11-{day}T01:00:00', {i}), ('2026-11-{day}T02:00:00', {i})",
                f"UPDATE c SET v = v + 1 WHERE ts >= '2026-11-{day}' AND ts < '2026-11-{day + 1}'",
                "DELETE FROM c WHERE v % 5 = 0",
                f"ALTER TABLE c DROP PARTITION LIST '2026-11-{10 + (i + 4) % 8:02d}'",
            ):
                try:
                    c.execute(sql)
                except psycopg.errors.UndefinedTable:
                    pass  # the partition was already dropped
            i += 1


def ddl(dsn, stop):
    with psycopg.connect(dsn, autocommit=True) as c:
        i = 0
        while not stop.is_set():
            c.execute(f"CREATE TABLE ddl_{i} (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY")
            c.execute(f"INSERT INTO ddl_{i} VALUES ('2026-11-21T00:00:00', {i})")
            if i > 0:
                c.execute(f"DROP TABLE ddl_{i - 1}")
            i += 1
            time.sleep(0.05)


def monitor(dsn, http, stop, polls):
    """(start, status latency, metrics latency, phase, pending paths) every 20 ms."""
    with psycopg.connect(dsn, autocommit=True) as c:
        while not stop.is_set():
            t0 = time.monotonic()
            phase, pending = c.execute(
                "SELECT phase, reclaim_pending_paths FROM checkpoint_status()").fetchone()
            t1 = time.monotonic()
            with urllib.request.urlopen(f"http://{http}/metrics", timeout=30) as r:
                r.read()
            t2 = time.monotonic()
            polls.append((t0, t1 - t0, t2 - t1, phase, pending))
            time.sleep(0.02)


def metric(http, name):
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=30) as r:
        text = r.read().decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")


def pending_paths(dsn):
    with psycopg.connect(dsn, autocommit=True) as c:
        return c.execute("SELECT reclaim_pending_paths FROM checkpoint_status()").fetchone()[0]


def rsync(root, dest):
    r = subprocess.run(["rsync", "-a", root + "/", dest], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"rsync exited {r.returncode} (24: files vanished):\n{r.stderr[-2000:]}")
    shutil.rmtree(dest)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--hold-s", type=float, default=45.0, help="length of the long modes")
    ap.add_argument("--gap-s", type=float, default=2.0,
                    help="pause between RELEASE and the next round's CREATE")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--binary", help="a tidemark binary to use instead of building the release one")
    args = ap.parse_args()
    binary = args.binary or tidemark_binary()
    base = tempfile.mkdtemp(prefix="tm-churn-")
    try:
        tm = Tidemark(binary, os.path.join(base, "root"))
        http = re.search(r"serving HTTP.*?addr=(\S+)", tm.log_text()).group(1)
        dsn = tm.dsn()
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE c (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY")
            for w in range(WRITERS):
                for t in ("a", "b"):
                    c.execute(f"CREATE TABLE {t}{w} (ts TIMESTAMP, seq BIGINT) "
                              "TIMESTAMP(ts) PARTITION BY DAY")
        stop = threading.Event()
        commits, polls = [], []
        threads = [threading.Thread(target=writer, args=(dsn, w, stop, commits))
                   for w in range(WRITERS)]
        threads += [threading.Thread(target=churn, args=(dsn, stop)),
                    threading.Thread(target=ddl, args=(dsn, stop)),
                    threading.Thread(target=monitor, args=(dsn, http, stop, polls))]
        for t in threads:
            t.start()
        time.sleep(5)
        # Outside checkpoint mode some garbage always waits (parts superseded a
        # moment ago, still pinned by readers or not yet flushed): its level under
        # this load, to tell when a mode's backlog is gone.
        steady = max(p[4] for p in polls if p[0] > polls[0][0] + 2)
        copy = os.path.join(base, "copy")
        windows, creates = [], []

        def create(c):
            t0 = time.monotonic()
            c.execute("CHECKPOINT CREATE")
            t1 = time.monotonic()
            windows.append((t0, t1))
            creates.append(t1 - t0)
            return t1 - t0

        with psycopg.connect(dsn, autocommit=True) as c:
            # A long mode first: what it holds is being reclaimed when round 1 starts.
            create(c)
            time.sleep(args.hold_s)
            held_long = pending_paths(dsn)
            rsync(tm.root, copy)
            c.execute("CHECKPOINT RELEASE")
            # Round 1's CREATE comes while housekeeping is deleting what the long
            # mode held (it has started: the backlog shrinks), and stops it.
            t0 = time.monotonic()
            while pending_paths(dsn) > held_long * 0.8 and time.monotonic() - t0 < 10:
                time.sleep(0.01)
            interrupted_at = pending_paths(dsn)
            first_after_long = None
            for r in range(args.rounds):
                took = create(c)
                if r == 0:
                    first_after_long = took
                rsync(tm.root, copy)
                c.execute("CHECKPOINT RELEASE")
                time.sleep(args.gap_s)
            # A second long mode, then the reclaim of what it held, under the load.
            create(c)
            time.sleep(args.hold_s)
            c.execute("CHECKPOINT RELEASE")
        released = time.monotonic()
        backlog = pending_paths(dsn)
        unlinked0 = metric(http, "tidemark_reclaimed_paths_total")
        while pending_paths(dsn) > steady and time.monotonic() - released < 300:
            time.sleep(0.05)
        reclaim_s = time.monotonic() - released
        unlinked = metric(http, "tidemark_reclaimed_paths_total") - unlinked0
        rate_during = sum(1 for t in commits if released <= t < released + reclaim_s) / reclaim_s
        rate_before = sum(1 for t in commits if released - 10 <= t < released) / 10
        # SIGTERM with a backlog: a third long-ish mode, RELEASE, stop at once.
        with psycopg.connect(dsn, autocommit=True) as c:
            create(c)
            time.sleep(args.hold_s / 2)
            c.execute("CHECKPOINT RELEASE")
        stop.set()
        for t in threads:
            t.join()
        stop_backlog = pending_paths(dsn)
        t0 = time.monotonic()
        tm.stop()
        stop_s = time.monotonic() - t0
        during = [p for p in polls if any(p[0] < w1 and p[0] + p[1] > w0 for (w0, w1) in windows)]
        row = {
            "creates": len(creates),
            "create_median_ms": statistics.median(creates) * 1000,
            "create_p99_ms": pct(creates, 99) * 1000,
            "create_max_ms": max(creates) * 1000,
            "first_after_long_ms": first_after_long * 1000,
            "held_long": held_long,
            "interrupted_at": interrupted_at,
            "polls": len(polls),
            "polls_during_create": len(during),
            "status_max_during_create_ms": max((p[1] for p in during), default=0) * 1000,
            "status_max_ms": max(p[1] for p in polls) * 1000,
            "metrics_max_ms": max(p[2] for p in polls) * 1000,
            "backlog": backlog,
            "steady": steady,
            "unlinked": unlinked,
            "reclaim_s": reclaim_s,
            "commit_rate_before": rate_before,
            "commit_rate_during": rate_during,
            "stop_backlog": stop_backlog,
            "stop_s": stop_s,
        }
        print(row, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    table = render(row, args)
    print(table)
    if args.write_docs:
        write_docs(table)


def render(r, args):
    return "\n".join([
        "| figure | value |",
        "|---|---:|",
        f"| CREATE, {r['creates']} rounds: median / p99 / max | "
        f"{r['create_median_ms']:.1f} / {r['create_p99_ms']:.1f} / {r['create_max_ms']:.1f} ms |",
        f"| CREATE while housekeeping reclaims what a {args.hold_s:g} s mode held "
        f"({r['held_long']} paths, {r['interrupted_at']} still to delete) | {r['first_after_long_ms']:.1f} ms |",
        f"| slowest `checkpoint_status()` poll during a CREATE ({r['polls_during_create']} polls) | "
        f"{r['status_max_during_create_ms']:.1f} ms |",
        f"| slowest `checkpoint_status()` / `/metrics` poll overall ({r['polls']} polls) | "
        f"{r['status_max_ms']:.1f} / {r['metrics_max_ms']:.1f} ms |",
        f"| reclaim after a {args.hold_s:g} s mode: {r['backlog']} paths held, time until the "
        f"backlog is back at the load's steady level ({r['steady']} paths) | {r['reclaim_s']:.2f} s "
        f"({r['unlinked']:.0f} files and directories unlinked, {r['unlinked'] / r['reclaim_s']:.0f}/s) |",
        f"| writers' commits/s before / during that reclaim | "
        f"{r['commit_rate_before']:.0f} / {r['commit_rate_during']:.0f} |",
        f"| SIGTERM to exit with {r['stop_backlog']} paths still to reclaim | {r['stop_s'] * 1000:.0f} ms |",
    ])


def write_docs(table):
    write_section("### Checkpoint under churn: figures", table)


if __name__ == "__main__":
    sys.exit(main())
