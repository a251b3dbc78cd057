#!/usr/bin/env python3
"""CHECKPOINT CREATE latency and the commit stall it causes, Tidemark against
PostgreSQL 15's nearest equivalent (pg_backup_start with a fast checkpoint), in one
run on the same machine; then Tidemark's restore time for a copy taken in the mode.

    python3 bench/checkpoint_bench.py                # 1 GB, 10 and 200 tables
    python3 bench/checkpoint_bench.py --gb 10        # the 10 GB variant
    python3 bench/checkpoint_bench.py --write-docs   # also refresh docs/benchmarks.md
    python3 bench/checkpoint_bench.py --gb 10 --no-postgres --restore-in-place   # less disk

What it does, for each table count: creates the tables on both servers and fills
them to --gb of data in total (server-side INSERT ... SELECT from generate_series,
one day partition per table); starts a steady load (one connection committing
single-row INSERTs into one table, durable defaults: Tidemark `sync`, PostgreSQL
`synchronous_commit=on`); runs CREATE/RELEASE (pg_backup_start/pg_backup_stop) five
times, 0.5 s apart, timing each; the stall is the longest commit latency of the
load while a CREATE was running, next to the load's median commit latency outside.
Restore: the Tidemark root is copied with cp -a in checkpoint mode, `_restore`
touched, and a server started on the copy; the time is the restore step's own log
figure and the time until the copy serves.
"""
import argparse
import datetime
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_BIN = "/usr/lib/postgresql/15/bin"
ROW_BYTES_ON_DISK = 8 + 8 + 8  # ts, price, amount (Tidemark, fixed width)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tidemark_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "tidemark-server"],
                   cwd=REPO, check=True)
    return os.path.join(target, "release", "tidemark")


class Tidemark:
    def __init__(self, binary, root):
        self.root = root
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEMARK_")}
        env["TIDEMARK_LOG_LEVEL"] = "info"
        self.started = time.monotonic()
        self.log = open(os.path.join(os.path.dirname(root), os.path.basename(root) + ".log"), "w+")
        self.proc = subprocess.Popen(
            [binary, "serve", "--root", root, "--pg-listen", f"127.0.0.1:{self.port}",
             "--http-listen", f"127.0.0.1:{free_port()}"],
            stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.serving_after = wait_for_port(self.port, self.proc) - self.started

    def dsn(self):
        return f"host=127.0.0.1 port={self.port} user=admin password=quest dbname=tidemark"

    def log_text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


class Postgres:
    def __init__(self, base):
        self.dir = os.path.join(base, "pg")
        os.makedirs(self.dir)
        shutil.chown(base, "postgres")
        shutil.chown(self.dir, "postgres")
        self.port = free_port()
        as_pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run(as_pg + [f"{PG_BIN}/initdb", "-D", self.dir, "-A", "trust", "-U", "bench"],
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "postgresql.conf"), "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.dir}'\nsynchronous_commit = on\n"
                    "max_wal_size = 4GB\n")
        subprocess.run(as_pg + [f"{PG_BIN}/pg_ctl", "-D", self.dir, "-l",
                                os.path.join(self.dir, "log"), "-w", "start"],
                       check=True, stdout=subprocess.DEVNULL)
        self.as_pg = as_pg

    def dsn(self):
        return f"host=127.0.0.1 port={self.port} user=bench dbname=postgres"

    def stop(self):
        subprocess.run(self.as_pg + [f"{PG_BIN}/pg_ctl", "-D", self.dir, "-m", "fast", "stop"],
                       check=False, stdout=subprocess.DEVNULL)


def wait_for_port(port, proc, limit=600):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return time.monotonic()
        except OSError:
            time.sleep(0.02)
    raise SystemExit("server did not start")


def load(dsn, system, tables, total_bytes):
    rows_per_table = max(1, total_bytes // ROW_BYTES_ON_DISK // tables)
    step_us = max(1, 86_400_000_000 // rows_per_table)  # one day per table
    with psycopg.connect(dsn, autocommit=True) as c:
        for i in range(tables):
            if system == "tidemark":
                c.execute(f"CREATE TABLE t{i} (ts TIMESTAMP, price DOUBLE, amount DOUBLE) "
                          "TIMESTAMP(ts) PARTITION BY DAY")
                ts = f"to_timestamp_micros(1795219200000000 + g * {step_us})"
            else:
                c.execute(f"CREATE TABLE t{i} (ts TIMESTAMP, price DOUBLE PRECISION, "
                          "amount DOUBLE PRECISION)")
                ts = f"to_timestamp(1795219200 + g * {step_us} / 1e6) AT TIME ZONE 'UTC'"
            # Batches keep memory flat on both servers.
            batch = 2_000_000
            for lo in range(0, rows_per_table, batch):
                hi = min(rows_per_table, lo + batch) - 1
                c.execute(f"INSERT INTO t{i} SELECT {ts}, g * 0.5, g * 0.25 "
                          f"FROM generate_series(CAST({lo} AS BIGINT), CAST({hi} AS BIGINT)) AS s(g)")
            if system == "postgres":
                c.execute(f"CREATE INDEX ON t{i} (ts)")
        c.execute("CREATE TABLE load (ts TIMESTAMP, v BIGINT)" +
                  (" TIMESTAMP(ts) PARTITION BY DAY" if system == "tidemark" else ""))
    return rows_per_table * tables


def steady_load(dsn, stop, samples):
    """Single-row autocommit INSERTs; (start, latency) per commit."""
    with psycopg.connect(dsn, autocommit=True) as c:
        n = 0
        while not stop.is_set():
            t0 = time.monotonic()
            c.execute("INSERT INTO load VALUES (%s, %s)",
                      (datetime.datetime(2026, 11, 22) + datetime.timedelta(microseconds=n), n))
            samples.append((t0, time.monotonic() - t0))
            n += 1


def measure_checkpoints(dsn, system, rounds=5):
    stop = threading.Event()
    samples = []
    loader = threading.Thread(target=steady_load, args=(dsn, stop, samples))
    loader.start()
    time.sleep(1.0)
    windows, latencies = [], []
    with psycopg.connect(dsn, autocommit=True) as c:
        for _ in range(rounds):
            t0 = time.monotonic()
            if system == "tidemark":
                c.execute("CHECKPOINT CREATE")
            else:
                c.execute("SELECT pg_backup_start('bench', true)")
            t1 = time.monotonic()
            latencies.append(t1 - t0)
            windows.append((t0, t1))
            time.sleep(0.2)
            if system == "tidemark":
                c.execute("CHECKPOINT RELEASE")
            else:
                c.execute("SELECT pg_backup_stop()")
            time.sleep(0.5)
    stop.set()
    loader.join()
    # A commit stalls on CREATE when its run overlaps a CREATE's run.
    during = [lat for (s, lat) in samples
              if any(s < w1 and s + lat > w0 for (w0, w1) in windows)]
    outside = [lat for (s, lat) in samples
               if not any(s < w1 + 0.05 and s + lat > w0 - 0.05 for (w0, w1) in windows)]
    return {
        "create_ms": statistics.median(latencies) * 1000,
        "create_max_ms": max(latencies) * 1000,
        "stall_ms": max(during, default=0.0) * 1000,
        "commit_p50_ms": statistics.median(outside) * 1000 if outside else 0.0,
        "commits": len(samples),
    }


def disk_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def measure_restore(binary, tm, base, in_place):
    """Restores a copy taken in checkpoint mode (or, `in_place`, the root itself
    after a stop: the same work without the disk for a copy)."""
    copy = tm.root if in_place else os.path.join(base, "copy")
    with psycopg.connect(tm.dsn(), autocommit=True) as c:
        c.execute("CHECKPOINT CREATE")
        # Rows after the cut, in every table, so that restore has work to undo.
        tables = c.execute("SELECT table_name FROM tables() WHERE table_name <> 'load'").fetchall()
        for (t,) in tables:
            c.execute(f"INSERT INTO {t} VALUES ('2026-11-30T00:00:00', 1, 1)")
        if not in_place:
            subprocess.run(["cp", "-a", tm.root, copy], check=True)
            c.execute("CHECKPOINT RELEASE")
    if in_place:
        tm.stop()
    open(os.path.join(copy, "_restore"), "w").close()
    restored = Tidemark(binary, copy)
    m = re.search(r"restore: done.*?elapsed_ms=(\d+)", restored.log_text())
    restore_ms = int(m.group(1)) if m else float("nan")
    with psycopg.connect(restored.dsn(), autocommit=True) as c:
        late = c.execute(f"SELECT count(*) FROM {tables[0][0]} WHERE ts = '2026-11-30T00:00:00'").fetchone()[0]
        assert late == 0, "the restored copy holds a row written after the cut"
    restored.stop()
    if not in_place:
        shutil.rmtree(copy)
    return restore_ms, restored.serving_after * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0, help="data per scenario (GB)")
    ap.add_argument("--tables", default="10,200")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--binary", help="a tidemark binary to use instead of building the release one")
    ap.add_argument("--restore-in-place", action="store_true",
                    help="restore the root itself after a stop instead of a cp -a copy (disk)")
    ap.add_argument("--no-postgres", action="store_true",
                    help="Tidemark only (PostgreSQL needs about 2.5x the disk for the same rows)")
    args = ap.parse_args()
    binary = args.binary or tidemark_binary()
    results = []
    for tables in [int(x) for x in args.tables.split(",")]:
        base = tempfile.mkdtemp(prefix="tm-bench-")
        try:
            tm = Tidemark(binary, os.path.join(base, "root"))
            pg = None if args.no_postgres else Postgres(base)
            total = int(args.gb * 1e9)
            row = {"tables": tables}
            systems = [("tidemark", tm)] + ([("postgres", pg)] if pg else [])
            for system, server in systems:
                t0 = time.monotonic()
                rows = load(server.dsn(), system, tables, total)
                row[f"{system}_load_s"] = time.monotonic() - t0
                row["rows"] = rows
                row[system] = measure_checkpoints(server.dsn(), system)
            row["tidemark_bytes"] = disk_bytes(tm.root)
            if pg:
                row["postgres_bytes"] = disk_bytes(pg.dir)
                pg.stop()
            row["restore_ms"], row["restore_serving_ms"] = measure_restore(
                binary, tm, base, args.restore_in_place)
            if not args.restore_in_place:
                tm.stop()
            results.append(row)
            print(row, flush=True)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    table = render(results, args.gb)
    print(table)
    if args.write_docs:
        write_docs(table, args.gb)


def render(results, gb):
    lines = [
        "| tables | data (Tidemark / PostgreSQL) | CREATE median (max) | PG pg_backup_start median (max) | ratio | longest commit stall: Tidemark / PG | commit p50 outside: Tidemark / PG | restore step / until serving |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        t = r["tidemark"]
        p = r.get("postgres")
        if p:
            ratio = p["create_ms"] / t["create_ms"] if t["create_ms"] else float("inf")
            pg_size = f"{r['postgres_bytes'] / 1e9:.2f} GB"
            pg_create = f"{p['create_ms']:.1f} ms ({p['create_max_ms']:.1f})"
            ratio_s = f"{ratio:.1f}x faster"
            pg_stall, pg_p50 = f"{p['stall_ms']:.1f} ms", f"{p['commit_p50_ms']:.2f} ms"
        else:
            pg_size = pg_create = ratio_s = pg_stall = pg_p50 = "not run"
        lines.append(
            f"| {r['tables']} | {r['tidemark_bytes'] / 1e9:.2f} GB / {pg_size} "
            f"| {t['create_ms']:.1f} ms ({t['create_max_ms']:.1f}) "
            f"| {pg_create} | {ratio_s} "
            f"| {t['stall_ms']:.1f} ms / {pg_stall} "
            f"| {t['commit_p50_ms']:.2f} ms / {pg_p50} "
            f"| {r['restore_ms']} ms / {r['restore_serving_ms']:.0f} ms |")
    return "\n".join(lines)


def write_docs(table, gb):
    write_section(f"### Checkpoint: {gb:g} GB", table)


def write_section(heading, table):
    """Replaces (or appends) `heading`'s section of docs/benchmarks.md with `table`
    and a line saying where and when it was measured."""
    path = os.path.join(REPO, "docs", "benchmarks.md")
    with open(path) as f:
        text = f.read()
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    section = (f"{heading}\n\nRun on {datetime.date.today()}, {os.cpu_count()} cores ({cpu}), "
               f"{platform.system()} {platform.release()}:\n\n{table}\n")
    if heading in text:
        start = text.index(heading)
        # The section ends at the next heading of level 2 or 3.
        ends = [e for e in (text.find("\n## ", start + 1), text.find("\n### ", start + 1)) if e >= 0]
        end = min(ends) + 1 if ends else len(text)
        text = text[:start] + section + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
