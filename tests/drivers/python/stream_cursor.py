"""Reads the whole of `big` through a psycopg server-side (named) cursor, as an
application reads a result too large for its memory: psycopg sends DECLARE, then
FETCH FORWARD itersize at a time. Checks every row arrives, in timestamp order.

usage: stream_cursor.py host port user password rows
"""
import sys

import psycopg

host, port, user, password, rows = sys.argv[1:6]
rows = int(rows)
with psycopg.connect(host=host, port=port, user=user, password=password,
                     dbname="tidemark", sslmode="disable") as conn:
    with conn.cursor(name="big_reader") as cur:
        cur.itersize = 10_000
        cur.execute("SELECT ts, sym, v, note FROM big")
        seen = 0
        for row in cur:
            if row[2] != seen:
                raise SystemExit(f"row {seen}: v is {row[2]}: rows missing or out of order")
            seen += 1
    if seen != rows:
        raise SystemExit(f"read {seen} rows, expected {rows}")
print(f"psycopg named cursor: {seen} rows ok")
