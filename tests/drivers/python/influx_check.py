"""The InfluxDB client libraries against Tidemark's line-protocol endpoints:
influxdb-client (v2 API, plain and gzip) and influxdb (v1 API, Basic auth),
each checked by reading the rows back over the PostgreSQL protocol.

usage: influx_check.py HOST HTTP_PORT PG_PORT USER PASSWORD READONLY_USER READONLY_PASSWORD
"""
import datetime
import sys

import influxdb
import influxdb_client
import psycopg
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

host, http_port, pg_port, user, password, ro_user, ro_password = sys.argv[1:8]
url = f"http://{host}:{http_port}"
pg = psycopg.connect(
    host=host, port=int(pg_port), user=user, password=password, dbname="tidemark", autocommit=True
)


def rows(sql):
    return pg.execute(sql).fetchall()


def expect(got, want, label):
    if got != want:
        raise SystemExit(f"{label}: got {got!r}, expected {want!r}")


# v2 client: health, a synchronous write with tags and every field type, gzip.
for gzip in (False, True):
    table = f"v2_{'gzip' if gzip else 'plain'}"
    with influxdb_client.InfluxDBClient(
        url=url, token=f"{user}:{password}", org="-", enable_gzip=gzip
    ) as client:
        expect(client.ping(), True, "v2 ping")
        health = client.health()
        expect(health.status, "pass", "v2 health")
        write = client.write_api(write_options=SYNCHRONOUS)
        points = [
            influxdb_client.Point(table)
            .tag("host", "web 1")
            .tag("dc", "eu,west")
            .field("load", 0.5)
            .field("procs", 12)
            .field("state", 'say "hi"')
            .field("up", True)
            .time(1_700_000_000_000_000_000 + i * 1_000_000_000)
            for i in range(1000)
        ]
        write.write(bucket="metrics", record=points)
    got = rows(f'SELECT count(*), min(host), min(dc), sum(procs), min(state), bool_and(up) FROM {table}')
    expect(got, [(1000, "web 1", "eu,west", 12000, 'say "hi"', True)], f"{table} rows")
    got = rows(f"SELECT min(timestamp) FROM {table}")
    expect(got, [(datetime.datetime(2023, 11, 14, 22, 13, 20),)], f"{table} timestamp")

# v2 client: a type conflict is an error naming the line; nothing of that write is stored.
with influxdb_client.InfluxDBClient(url=url, token=f"{user}:{password}", org="-") as client:
    write = client.write_api(write_options=SYNCHRONOUS)
    try:
        write.write(bucket="metrics", record="v2_plain,host=x load=1 1\nv2_plain,host=y load=\"high\" 2")
        raise SystemExit("a type conflict was accepted")
    except InfluxDBError as e:
        expect(e.response.status, 400, "type conflict status")
        if "line 2" not in str(e.message) or "load" not in str(e.message):
            raise SystemExit(f"type conflict message: {e.message}")
    expect(rows("SELECT count(*) FROM v2_plain WHERE host IN ('x', 'y')"), [(0,)], "nothing stored")

# v2 client: the read-only user may not write.
with influxdb_client.InfluxDBClient(url=url, token=f"{ro_user}:{ro_password}", org="-") as client:
    try:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="m", record="ro v=1")
        raise SystemExit("the read-only user wrote")
    except InfluxDBError as e:
        expect(e.response.status, 403, "read-only status")

# v1 client: Basic auth, JSON points, precision, a wrong password refused.
v1 = influxdb.InfluxDBClient(host=host, port=int(http_port), username=user, password=password, database="db")
expect(bool(v1.ping()), True, "v1 ping")
# What v1 writers (Telegraf's influxdb output too) send before writing.
v1.create_database("db")
try:
    v1.query("SELECT * FROM v1_points")
    raise SystemExit("InfluxQL was answered")
except influxdb.exceptions.InfluxDBClientError as e:
    expect(e.code, 400, "InfluxQL status")
    expect("query with SQL" in str(e.content), True, f"InfluxQL message: {e.content}")
ro_v1 = influxdb.InfluxDBClient(host=host, port=int(http_port), username=ro_user, password=ro_password)
try:
    ro_v1.create_database("db")
    raise SystemExit("the read-only user created a database")
except influxdb.exceptions.InfluxDBClientError as e:
    expect(e.code, 403, "read-only CREATE DATABASE status")
ok = v1.write_points(
    [
        {
            "measurement": "v1_points",
            "tags": {"sensor": "s=1"},
            "fields": {"temp": 21.5, "count": 3},
            "time": 1_700_000_000_000 + i,
        }
        for i in range(500)
    ],
    time_precision="ms",
)
expect(ok, True, "v1 write")
expect(
    rows("SELECT count(*), min(sensor), max(count), min(timestamp) FROM v1_points"),
    [(500, "s=1", 3, datetime.datetime(2023, 11, 14, 22, 13, 20))],
    "v1 rows",
)
bad = influxdb.InfluxDBClient(host=host, port=int(http_port), username=user, password="wrong", database="db")
try:
    bad.write_points([{"measurement": "v1_points", "fields": {"temp": 1.0}}])
    raise SystemExit("a wrong password wrote")
except influxdb.exceptions.InfluxDBClientError as e:
    expect(e.code, 401, "wrong password status")

print("influx clients ok")
