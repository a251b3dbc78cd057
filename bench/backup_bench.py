#!/usr/bin/env python3
"""Built-in backup and restore throughput, beside `cp -a` of the same root, in one
run on this machine; then an incremental backup after about 1% of the rows changed.

    python3 bench/backup_bench.py                 # 2 GB root, file:// and S3 (moto)
    python3 bench/backup_bench.py --gb 10         # the issue's 10 GB (needs ~45 GB free)
    python3 bench/backup_bench.py --no-s3         # the directory destination only

What it does: starts the release `tidemark` on a temp root with 10 tables, fills them
to --gb of column data (server-side INSERT ... SELECT, one day partition per table,
then CHECKPOINT so every row is in the column files); the page cache is not dropped
(that needs privileges the bench does not assume), so every copy reads warm files. It
times `cp -a` of the root
(the external-copy workflow's copy step), and cp -a followed by `sync` (the backup
fsyncs what it writes, so that is the like-for-like copy); `BACKUP DATABASE` to a `file://` directory
on the same disk until backup_status() says done; `tidemark restore` of it into a new
root; then 1% more rows into one table's newest partition plus a new partition, and
an incremental backup (bytes uploaded, duration). With S3 (moto's server from PyPI on
a loopback port) the same backup and restore; moto is a Python test double that keeps
objects in memory, so those figures measure moto as much as Tidemark.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import psycopg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = 10
ROW_BYTES = 8 + 8 + 8


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "tidemark-server"],
                   cwd=REPO, check=True)
    return os.path.join(target, "release", "tidemark")


def clean_env(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEMARK_")}
    env["TIDEMARK_LOG_LEVEL"] = "warn"
    env.update(extra)
    return env


class Server:
    def __init__(self, bin_, root, env):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [bin_, "serve", "--root", root, "--pg-listen", f"127.0.0.1:{self.port}",
             "--http-listen", f"127.0.0.1:{free_port()}", "--ilp-listen", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env(env))
        deadline = time.monotonic() + 300
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("tidemark did not start")
                time.sleep(0.05)
        self.conn = psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=admin password=quest dbname=tidemark",
            autocommit=True)

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(timeout=120)


def du(path):
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def backup(server):
    """BACKUP DATABASE until done; (seconds, status row)."""
    started = time.monotonic()
    server.conn.execute("BACKUP DATABASE")
    while True:
        row = server.conn.execute(
            "SELECT phase, files_total, files_reused, bytes_total, bytes_uploaded, last_error "
            "FROM backup_status()").fetchone()
        if row[0] in ("done", "failed"):
            if row[0] != "done":
                raise SystemExit(f"backup failed: {row}")
            return time.monotonic() - started, row
        time.sleep(0.05)


def restore(bin_, source, root, env):
    started = time.monotonic()
    subprocess.run([bin_, "restore", "--from", source, "--root", root], check=True,
                   env=clean_env(env), stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def start_moto():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/bench", method="PUT")
            urllib.request.urlopen(req, timeout=1)
            return proc, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit("moto did not start")


def mbps(nbytes, seconds):
    return nbytes / 1e6 / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--no-s3", action="store_true")
    args = ap.parse_args()
    bin_ = binary()
    work = tempfile.mkdtemp(prefix="tidemark-backup-bench-", dir=os.environ.get("TMPDIR"))
    try:
        root = os.path.join(work, "root")
        dest_dir = os.path.join(work, "dest")
        server = Server(bin_, root, {"TIDEMARK_BACKUP_DESTINATION": f"file://{dest_dir}"})
        rows = int(args.gb * 1e9 / ROW_BYTES / TABLES)
        # The rows fill the first half of a day, so that later rows can be
        # appended to the same day partition.
        step = max(1, 43_200_000_000 // rows)
        for i in range(TABLES):
            server.conn.execute(f"CREATE TABLE t{i} (ts TIMESTAMP, price DOUBLE, amount DOUBLE) "
                                "TIMESTAMP(ts) PARTITION BY DAY")
            for lo in range(0, rows, 2_000_000):
                n = min(rows, lo + 2_000_000) - lo
                server.conn.execute(
                    f"INSERT INTO t{i} SELECT to_timestamp_micros(1795219200000000 + (x + {lo}) * {step}), "
                    f"x * 0.5, x * 0.25 FROM long_sequence({n}) q")
        server.conn.execute("CHECKPOINT")
        size = du(root)
        print(f"root: {size / 1e9:.2f} GB in {TABLES} tables", flush=True)
        results = []

        # Nothing dirty left from the load when the clocks start.
        subprocess.run(["sync"], check=True)
        started = time.monotonic()
        subprocess.run(["cp", "-a", root, os.path.join(work, "cp-copy")], check=True)
        cp_s = time.monotonic() - started
        # A backup is done when it is on disk: the file:// backup fsyncs each
        # object, so the like-for-like copy is cp -a then sync.
        subprocess.run(["sync"], check=True)
        cp_sync_s = time.monotonic() - started
        shutil.rmtree(os.path.join(work, "cp-copy"))
        subprocess.run(["sync"], check=True)
        results.append(("cp -a of the root", size, cp_s))
        results.append(("cp -a of the root, then sync", size, cp_sync_s))

        secs, row = backup(server)
        results.append(("BACKUP DATABASE to file:// (full)", row[3], secs))
        secs = restore(bin_, f"file://{dest_dir}", os.path.join(work, "r1"), {})
        results.append(("tidemark restore from file://", row[3], secs))
        shutil.rmtree(os.path.join(work, "r1"))

        # About 1% more rows as time series grow: appended in time order to
        # t0's day (its column files grow) and into a new day of t1.
        extra = max(1, rows * TABLES // 100)
        server.conn.execute(
            f"INSERT INTO t0 SELECT to_timestamp_micros(1795219200000000 + ({rows} + x) * {step}), "
            f"1, 1 FROM long_sequence({extra // 2}) q")
        server.conn.execute(
            f"INSERT INTO t1 SELECT to_timestamp_micros(1795305600000000 + x * {step}), 1, 1 "
            f"FROM long_sequence({extra // 2}) q")
        server.conn.execute("CHECKPOINT")
        incrementals = [("appended in time order (t0's day grows, t1 gets a new day)",
                         extra // 2 * 2, *backup(server))]
        # About 1% more rows out of order, between t2's existing rows: its day
        # partition is rewritten (copy-on-write), so all of it goes up again.
        server.conn.execute(
            f"INSERT INTO t2 SELECT to_timestamp_micros(1795219200000000 + x * {step * 100} + 1), "
            f"1, 1 FROM long_sequence({extra}) q")
        server.conn.execute("CHECKPOINT")
        incrementals.append(("out of order into t2's existing day", extra, *backup(server)))
        server.stop()
        shutil.rmtree(dest_dir)

        if not args.no_s3:
            moto, port = start_moto()
            s3 = {"TIDEMARK_BACKUP_S3_ENDPOINT": f"http://127.0.0.1:{port}",
                  "TIDEMARK_BACKUP_S3_ALLOW_HTTP": "true",
                  "TIDEMARK_BACKUP_S3_REGION": "us-east-1",
                  "TIDEMARK_BACKUP_S3_ACCESS_KEY_ID": "bench",
                  "TIDEMARK_BACKUP_S3_SECRET_ACCESS_KEY": "bench"}
            try:
                server = Server(bin_, root, dict(s3, TIDEMARK_BACKUP_DESTINATION="s3://bench/t"))
                secs, row = backup(server)
                results.append(("BACKUP DATABASE to S3 (moto, full)", row[3], secs))
                server.stop()
                secs = restore(bin_, "s3://bench/t", os.path.join(work, "r2"), s3)
                results.append(("tidemark restore from S3 (moto)", row[3], secs))
            finally:
                moto.kill()

        print("\n| operation | bytes | seconds | MB/s | vs cp -a | vs cp -a + sync |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, nbytes, secs in results:
            print(f"| {name} | {nbytes:,} | {secs:.2f} | {mbps(nbytes, secs):.0f} | "
                  f"{mbps(nbytes, secs) / mbps(size, cp_s):.2f}x | "
                  f"{mbps(nbytes, secs) / mbps(size, cp_sync_s):.2f}x |")
        print("\n| incremental backup after ~1% more rows | rows | seconds | bytes uploaded | "
              "of the cut's bytes | % | files reused |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, nrows, secs, row in incrementals:
            print(f"| {name} | {nrows:,} | {secs:.2f} | {row[4]:,} | {row[3]:,} | "
                  f"{100 * row[4] / row[3]:.1f}% | {row[2]} of {row[1]} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
