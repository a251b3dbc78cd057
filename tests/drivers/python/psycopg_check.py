"""psycopg 3 against Tidemark: every type through bound parameters, read back, one SQLSTATE.

Usage: psycopg_check.py HOST PORT USER PASSWORD [SSLMODE]. Exits non-zero with the reason on failure.
"""
import datetime
import sys

import psycopg
from psycopg import errors

from common import CREATE, ROW, check_row

host, port, user, password = sys.argv[1:5]
sslmode = sys.argv[5] if len(sys.argv) > 5 else "disable"

with psycopg.connect(host=host, port=port, user=user, password=password, dbname="tidemark",
                     sslmode=sslmode, autocommit=True) as conn:
    conn.execute("DROP TABLE IF EXISTS drv_psycopg")
    conn.execute(CREATE.format(name="drv_psycopg"))
    placeholders = ", ".join(["%s"] * len(ROW))
    with conn.cursor() as cur:
        # Text parameters first, then binary ones: both must be understood.
        cur.execute(f"INSERT INTO drv_psycopg VALUES ({placeholders})", ROW)
        nulls = (ROW[0] + datetime.timedelta(seconds=1),) + (None,) * (len(ROW) - 1)
        cur.execute(f"INSERT INTO drv_psycopg VALUES ({placeholders})", nulls, binary=True)

    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute("SELECT * FROM drv_psycopg WHERE ts >= %s ORDER BY ts", (ROW[0],))
            rows = cur.fetchall()
            assert len(rows) == 2, rows
            check_row(rows[0], ROW, f"psycopg binary={binary}")
            assert all(v is None for v in rows[1][1:]), rows[1]

    # COPY in binary format, as psycopg's copy writer sends it: NUMERIC in its
    # base-10000 binary form, rounded to the column's scale.
    import decimal
    conn.execute("DROP TABLE IF EXISTS drv_psycopg_copy")
    conn.execute("CREATE TABLE drv_psycopg_copy (ts TIMESTAMP, n NUMERIC(12,4)) TIMESTAMP(ts)")
    copied = [decimal.Decimal("0.00005"), decimal.Decimal("-99999999.99994"), None]
    with conn.cursor() as cur:
        with cur.copy("COPY drv_psycopg_copy (ts, n) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamp", "numeric"])
            for i, value in enumerate(copied):
                copy.write_row((ROW[0] + datetime.timedelta(seconds=i), value))
        cur.execute("SELECT n FROM drv_psycopg_copy ORDER BY ts")
        got = [r[0] for r in cur.fetchall()]
        assert got == [decimal.Decimal("0.0001"), decimal.Decimal("-99999999.9999"), None], got
    conn.execute("DROP TABLE drv_psycopg_copy")
    # A Decimal parameter keeps its own scale, as PostgreSQL's numeric does (pandas'
    # to_sql of Decimal objects into TEXT columns casts them: `%(x)s::VARCHAR`).
    for value, text in [("1.25", "1.25"), ("-0.500", "-0.500"), ("100", "100")]:
        got = conn.execute("SELECT %s::varchar", (decimal.Decimal(value),)).fetchone()[0]
        assert got == text, (value, got)
    # Two items that differ only in their parameters, bound to one value.
    same = decimal.Decimal("1.25")
    cur = conn.execute("SELECT %s::text, %s::varchar, %s + 1, %s + 1", (same, same, 2, 2))
    assert [d.name for d in cur.description] == ["text", "varchar", "?column?", "?column?"]
    assert cur.fetchone() == ("1.25", "1.25", 3, 3)

    # Reported settings: ParameterStatus at start and after SET/RESET, as psycopg
    # keeps them in conn.info (it decodes timestamps and text by them).
    assert conn.info.parameter_status("TimeZone") == "UTC", conn.info.parameter_status("TimeZone")
    conn.execute("SET application_name = 'drv_check'")
    conn.execute("SET TIME ZONE 'Europe/Berlin'")
    assert conn.info.parameter_status("application_name") == "drv_check"
    assert conn.info.parameter_status("TimeZone") == "Europe/Berlin"
    conn.execute("RESET ALL")
    assert conn.info.parameter_status("TimeZone") == "UTC"
    assert conn.info.parameter_status("application_name") == ""

    # JSON and JSONB: documents in with psycopg's Json/Jsonb wrappers (text and
    # binary, jsonb's binary form has a version byte), out as Python objects.
    from psycopg.types.json import Json, Jsonb
    conn.execute("DROP TABLE IF EXISTS drv_psycopg_json")
    conn.execute("CREATE TABLE drv_psycopg_json (ts TIMESTAMP, doc JSON, tags JSONB) TIMESTAMP(ts)")
    docs = [({"a": [1, 2.5, None]}, {"host": "h1", "up": True}), ([1, "x"], {"host": "h2"})]
    with conn.cursor() as cur:
        cur.execute("INSERT INTO drv_psycopg_json VALUES (%s, %s, %s)",
                    (ROW[0], Json(docs[0][0]), Jsonb(docs[0][1])))
        cur.execute("INSERT INTO drv_psycopg_json VALUES (%s, %s, %s)",
                    (ROW[0] + datetime.timedelta(seconds=1), Json(docs[1][0]), Jsonb(docs[1][1])),
                    binary=True)
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute("SELECT doc, tags FROM drv_psycopg_json ORDER BY ts")
            assert cur.fetchall() == docs, f"json binary={binary}"
            cur.execute("SELECT tags ->> 'host' FROM drv_psycopg_json WHERE tags -> 'up' = 'true'")
            assert cur.fetchall() == [("h1",)]
    try:
        conn.execute("INSERT INTO drv_psycopg_json (ts, doc) VALUES (%s, %s)", (ROW[0], "{oops"))
        raise SystemExit("expected an error for a malformed document")
    except errors.InvalidTextRepresentation as e:
        assert "doc" in str(e), str(e)
    conn.execute("DROP TABLE drv_psycopg_json")

    # DOUBLE[] columns: lists in (text and binary parameters, binary COPY), lists out
    # in both formats, NaN and NULL elements kept, a wrong shape refused with 2202E.
    conn.execute("DROP TABLE IF EXISTS drv_psycopg_arr")
    conn.execute("CREATE TABLE drv_psycopg_arr (ts TIMESTAMP, bids DOUBLE[], grid DOUBLE[][]) "
                 "TIMESTAMP(ts)")
    arrays = [([1.5, None, 3.0], [[1.0, 2.0], [3.0, 4.0]]), ([], [[0.25]]), ([7.0], [[8.0]])]
    with conn.cursor() as cur:
        cur.execute("INSERT INTO drv_psycopg_arr VALUES (%s, %s, %s)", (ROW[0], *arrays[0]))
        cur.execute("INSERT INTO drv_psycopg_arr VALUES (%s, %s, %s)",
                    (ROW[0] + datetime.timedelta(seconds=1), *arrays[1]), binary=True)
        with cur.copy("COPY drv_psycopg_arr FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamp", "float8[]", "float8[]"])
            copy.write_row((ROW[0] + datetime.timedelta(seconds=2), *arrays[2]))
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute("SELECT bids, grid FROM drv_psycopg_arr ORDER BY ts")
            assert cur.fetchall() == arrays, f"DOUBLE[] binary={binary}"
            cur.execute("SELECT bids[1], grid[2][1] FROM drv_psycopg_arr ORDER BY ts LIMIT 1")
            assert cur.fetchone() == (1.5, 3.0)
    nan = conn.execute("SELECT %s::double precision[]", (["NaN", "1"],)).fetchone()[0]
    assert nan[1] == 1.0 and nan[0] != nan[0], nan
    try:
        conn.execute("INSERT INTO drv_psycopg_arr VALUES (%s, %s, NULL)", (ROW[0], [[1.0]]))
        raise SystemExit("expected an error for a 2-D value in a DOUBLE[] column")
    except errors.ArraySubscriptError as e:
        assert "bids" in str(e), str(e)
    conn.execute("DROP TABLE drv_psycopg_arr")

    # TIMESTAMP_NS: nanoseconds in from text, datetimes in (binary parameters and
    # binary COPY, microseconds); out, results are datetimes of microseconds in both
    # formats (as PostgreSQL's timestamp; psycopg refuses more digits) and `::text`
    # keeps the nanoseconds.
    conn.execute("DROP TABLE IF EXISTS drv_psycopg_ns")
    conn.execute("CREATE TABLE drv_psycopg_ns (ts TIMESTAMP, exch TIMESTAMP_NS) TIMESTAMP(ts)")
    micros = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO drv_psycopg_ns VALUES (%s, %s)",
                    (ROW[0], "2026-01-02 03:04:05.123456789"))
        cur.execute("INSERT INTO drv_psycopg_ns VALUES (%s, %s)",
                    (ROW[0] + datetime.timedelta(seconds=1), micros), binary=True)
        with cur.copy("COPY drv_psycopg_ns FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamp", "timestamp"])
            copy.write_row((ROW[0] + datetime.timedelta(seconds=2), micros))
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute("SELECT exch, exch::text FROM drv_psycopg_ns ORDER BY ts")
            got = cur.fetchall()
        assert got == [
            (datetime.datetime(2026, 1, 2, 3, 4, 5, 123456), "2026-01-02 03:04:05.123456789"),
            (micros, "2026-01-02 03:04:05.678901"),
            (micros, "2026-01-02 03:04:05.678901"),
        ], (binary, got)
    conn.execute("DROP TABLE drv_psycopg_ns")

    # Intervals (and timestamp differences) read as timedeltas in both formats.
    for binary in (False, True):
        got = conn.cursor(binary=binary).execute(
            "SELECT INTERVAL '1 day 2 hours', "
            "'2026-01-02'::timestamp - '2026-01-01 00:00:01.5'::timestamp").fetchone()
        assert got == (datetime.timedelta(days=1, hours=2),
                       datetime.timedelta(seconds=86398.5)), (binary, got)
    # timedelta parameters (psycopg sends them in binary; text with %t).
    got = conn.execute("SELECT %s::interval, %t::interval, now() - %s < now()",
                       (datetime.timedelta(hours=-1, microseconds=5),
                        datetime.timedelta(days=-1, hours=3),
                        datetime.timedelta(days=400))).fetchone()
    assert got == (datetime.timedelta(hours=-1, microseconds=5),
                   datetime.timedelta(days=-1, hours=3), True), got

    try:
        conn.execute("SELECT * FROM no_such_table")
        raise SystemExit("expected an error for a missing table")
    except errors.UndefinedTable as e:
        assert e.sqlstate == "42P01", e.sqlstate
        assert "no_such_table" in str(e), str(e)

    try:
        conn.execute("CREATE TABLE drv_psycopg (x INT)")
        raise SystemExit("expected an error for a duplicate table")
    except psycopg.Error as e:
        assert e.sqlstate == "42P07", e.sqlstate

    # Checkpoint mode, as a backup script drives it.
    def status():
        return conn.execute("SELECT in_progress, started_at, tables FROM checkpoint_status()").fetchone()

    assert status() == (False, None, 0), status()
    conn.execute("CHECKPOINT CREATE")
    in_progress, started_at, tables = status()
    assert in_progress and isinstance(started_at, datetime.datetime) and tables >= 1, status()
    try:
        conn.execute("CHECKPOINT CREATE")
        raise SystemExit("expected an error for a second checkpoint")
    except psycopg.Error as e:
        assert e.sqlstate == "55000", e.sqlstate
    conn.execute("CHECKPOINT RELEASE")
    assert status() == (False, None, 0), status()
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    conn.execute("CHECKPOINT RELEASE")
    assert any("no checkpoint" in n for n in notices), notices

    # psycopg prepares statements it runs often and sends DEALLOCATE ALL after
    # DROP or ALTER: the DDL succeeds and the queries go on, prepared anew.
    conn.prepare_threshold = 0
    conn.execute("CREATE TABLE drv_prep (ts TIMESTAMP, v BIGINT) TIMESTAMP(ts) PARTITION BY DAY")
    for i in range(3):
        conn.execute("INSERT INTO drv_prep VALUES (%s, %s)", (datetime.datetime(2026, 11, 21, 0, 0, i), i))
        assert conn.execute("SELECT count(*) FROM drv_prep WHERE v >= %s", (0,)).fetchone() == (i + 1,)
    conn.execute("ALTER TABLE drv_prep ADD COLUMN note VARCHAR")
    assert conn.execute("SELECT count(*) FROM drv_prep WHERE v >= %s", (1,)).fetchone() == (2,)
    conn.execute("INSERT INTO drv_prep VALUES (%s, %s, %s)", (datetime.datetime(2026, 11, 21, 0, 0, 9), 9, "n"))
    # A server-side (named) cursor reads a result in pieces: DECLARE, Describe
    # of the cursor's portal, FETCH FORWARD n.
    with conn.transaction():
        with conn.cursor(name="drv_named") as cur:
            cur.itersize = 2
            cur.execute("SELECT v FROM drv_prep ORDER BY ts")
            assert [d.name for d in cur.description] == ["v"], cur.description
            assert cur.fetchone() == (0,)
            assert cur.fetchmany(2) == [(1,), (2,)]
            assert list(cur) == [(9,)]
    # FETCH ends with the command tag PostgreSQL sends: FETCH n.
    with conn.transaction():
        conn.execute("DECLARE drv_c CURSOR FOR SELECT v FROM drv_prep ORDER BY ts")
        cur = conn.execute("FETCH 2 FROM drv_c")
        assert cur.fetchall() == [(0,), (1,)]
        assert cur.statusmessage == "FETCH 2", cur.statusmessage
        cur = conn.execute("FETCH ALL FROM drv_c")
        assert cur.fetchall() == [(2,), (9,)]
        assert cur.statusmessage == "FETCH 2", cur.statusmessage
    # SQL PREPARE / EXECUTE through the extended protocol (Describe of EXECUTE
    # answers the prepared query's columns).
    conn.execute("PREPARE drv_q AS SELECT v FROM drv_prep WHERE v > $1 ORDER BY v")
    assert conn.execute("EXECUTE drv_q(%s)", (1,)).fetchall() == [(2,), (9,)]
    assert conn.execute("EXECUTE drv_q(8)").fetchall() == [(9,)]
    conn.execute("DEALLOCATE drv_q")
    conn.execute("DROP TABLE drv_prep")
    conn.execute("DEALLOCATE ALL")
    assert conn.execute("SELECT count(*) FROM drv_psycopg WHERE %s", (True,)).fetchone()[0] >= 0
    conn.prepare_threshold = 5

    if sslmode == "require":
        assert conn.info.pgconn.ssl_in_use, "the connection is not encrypted"

print("psycopg ok")
