"""asyncpg against Tidemark: every type through bound (binary) parameters, read back, arrays
both ways, cursors (forward and fetch), set_config, a pool, SQLSTATEs.

asyncpg prepares every statement and binds in binary by the parameter types the server
describes, so this checks the server's parameter type inference too.
Usage: asyncpg_check.py HOST PORT USER PASSWORD [SSLMODE]. Exits non-zero with the reason on failure.
"""
import asyncio
import datetime
import sys

import asyncpg

from common import CREATE, ROW, check_row


async def main(host, port, user, password, sslmode="disable"):
    conn = await asyncpg.connect(host=host, port=int(port), user=user, password=password,
                                 database="tidemark", ssl=sslmode)
    try:
        await conn.execute("DROP TABLE IF EXISTS drv_asyncpg")
        await conn.execute(CREATE.format(name="drv_asyncpg"))
        placeholders = ", ".join(f"${i + 1}" for i in range(len(ROW)))
        insert = f"INSERT INTO drv_asyncpg VALUES ({placeholders})"
        nulls = (ROW[0] + datetime.timedelta(seconds=1),) + (None,) * (len(ROW) - 1)
        await conn.executemany(insert, [ROW, nulls])

        rows = await conn.fetch("SELECT * FROM drv_asyncpg WHERE ts >= $1 ORDER BY ts", ROW[0])
        assert len(rows) == 2, rows
        check_row(rows[0], ROW, "asyncpg")
        assert all(v is None for v in tuple(rows[1])[1:]), rows[1]

        # A prepared statement reused with another argument.
        stmt = await conn.prepare("SELECT count(*) FROM drv_asyncpg WHERE i4 = $1")
        assert await stmt.fetchval(ROW[3]) == 1
        assert await stmt.fetchval(0) == 0

        # Parameters typed by a cast are described with that type, so asyncpg
        # encodes Python values for them (it refuses anything but str for text).
        import decimal
        import uuid
        u = uuid.uuid4()
        casts = [("$1::bigint", 5), ("$1::int", 5), ("$1::double precision", 1.5),
                 ("$1::boolean", True), ("$1::date", datetime.date(2026, 1, 2)),
                 ("$1::timestamp", datetime.datetime(2026, 1, 2, 3, 4, 5, 6)),
                 ("$1::numeric", decimal.Decimal("12.5")), ("$1::bytea", b"\x00ab")]
        for expr, value in casts:
            got = await conn.fetchval(f"SELECT {expr}", value)
            assert got == value, (expr, got, value)
        # A UUID parameter binds as uuid, and `::uuid` makes a uuid, as in PostgreSQL.
        assert await conn.fetchval("SELECT $1::uuid", u) == u
        assert await conn.fetchval(f"SELECT '{u}'::uuid") == u
        zoned = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        assert await conn.fetchval("SELECT $1::timestamptz", zoned) == zoned

        # Arrays: asyncpg introspects every array type before it decodes one.
        arrays = await conn.fetchrow(
            "SELECT array_agg(i4 ORDER BY ts) AS ints, ARRAY['a', NULL, 'b c'] AS texts, "
            "ARRAY[1.5, 2.25] AS doubles, ARRAY[true, false] AS bools, "
            "'{{1,2},{3,4}}'::bigint[] AS grid FROM drv_asyncpg")
        assert arrays["ints"] == [ROW[3], None], arrays
        assert arrays["texts"] == ["a", None, "b c"], arrays
        assert arrays["doubles"] == [1.5, 2.25], arrays
        assert arrays["bools"] == [True, False], arrays
        assert arrays["grid"] == [[1, 2], [3, 4]], arrays
        # A list bound to an array parameter (binary).
        found = await conn.fetchval(
            "SELECT count(*) FROM drv_asyncpg WHERE i4 = ANY($1)", [ROW[3], -7])
        assert found == 1, found
        assert await conn.fetchval("SELECT $1::bigint[]", [3, None, 5]) == [3, None, 5]

        # A DOUBLE[] column: lists bound in binary (float8[]), read back as lists.
        await conn.execute("DROP TABLE IF EXISTS drv_asyncpg_arr")
        await conn.execute("CREATE TABLE drv_asyncpg_arr (ts TIMESTAMP, grid DOUBLE[][]) TIMESTAMP(ts)")
        await conn.executemany("INSERT INTO drv_asyncpg_arr VALUES ($1, $2)",
                               [(ROW[0], [[1.5, None], [3.0, 4.0]]), (nulls[0], None)])
        grids = [r["grid"] for r in await conn.fetch("SELECT grid FROM drv_asyncpg_arr ORDER BY ts")]
        assert grids == [[[1.5, None], [3.0, 4.0]], None], grids
        assert await conn.fetchval("SELECT array_sum(grid) FROM drv_asyncpg_arr WHERE ts = $1",
                                   ROW[0]) == 8.5
        await conn.execute("DROP TABLE drv_asyncpg_arr")

        # Intervals (binary) and TIMESTAMP_NS (binary: microseconds; ::text keeps nanoseconds).
        got = await conn.fetchrow(
            "SELECT INTERVAL '-3 months 1 second' AS i, "
            "'2026-01-02'::timestamp - '2026-01-01 00:00:01.5'::timestamp AS d, "
            "'2026-01-02T03:04:05.123456789'::timestamp_ns AS ns, "
            "'2026-01-02T03:04:05.123456789'::timestamp_ns::text AS ns_text")
        assert got["i"] == datetime.timedelta(days=-90, seconds=1), got
        assert got["d"] == datetime.timedelta(seconds=86398.5), got
        assert got["ns"] == datetime.datetime(2026, 1, 2, 3, 4, 5, 123456), got
        assert got["ns_text"] == "2026-01-02 03:04:05.123456789", got
        got = await conn.fetchval("SELECT $1::interval", datetime.timedelta(days=-2, seconds=5))
        assert got == datetime.timedelta(days=-2, seconds=5), got

        # Cursors: asyncpg binds a portal, moves it with `MOVE FORWARD n <portal>`
        # (a simple query naming the protocol's portal) and fetches with Execute.
        async with conn.transaction():
            cur = await conn.cursor("SELECT x FROM long_sequence(10) WHERE x > $1", 0)
            assert await cur.forward(3) == 3
            assert [r["x"] for r in await cur.fetch(2)] == [4, 5]
            assert await cur.forward(2) == 2
            assert (await cur.fetchrow())["x"] == 8
            assert await cur.forward(5) == 2
            assert await cur.fetch(1) == []
            assert [r["x"] async for r in conn.cursor("SELECT x FROM long_sequence(3)")] == [1, 2, 3]

        # set_config changes the session as SET does, and returns the value.
        assert await conn.fetchval("SELECT set_config('application_name', 'tm', false)") == "tm"
        assert await conn.fetchval("SHOW application_name") == "tm"
        # ... and reports the change (ParameterStatus), which asyncpg keeps.
        assert conn.get_settings().application_name == "tm", conn.get_settings()
        await conn.execute("SELECT set_config('TimeZone', 'Europe/Berlin', false)")
        assert conn.get_settings().TimeZone == "Europe/Berlin", conn.get_settings()
        await conn.execute("RESET TimeZone")
        assert conn.get_settings().TimeZone == "UTC", conn.get_settings()
        try:
            await conn.fetchval("SELECT set_config('no_such_setting', 'x', false)")
            raise SystemExit("expected an error for an unknown setting")
        except asyncpg.exceptions.UndefinedObjectError as e:
            assert e.sqlstate == "42704", e.sqlstate

        try:
            await conn.fetch("SELECT * FROM no_such_table")
            raise SystemExit("expected an error for a missing table")
        except asyncpg.exceptions.UndefinedTableError as e:
            assert e.sqlstate == "42P01", e.sqlstate
            assert "no_such_table" in str(e), str(e)
    finally:
        await conn.close()

    # A pool: every release resets the connection (`SELECT pg_advisory_unlock_all();
    # CLOSE ALL; UNLISTEN *; RESET ALL;`), and the next acquire gets it back.
    pool = await asyncpg.create_pool(host=host, port=int(port), user=user, password=password,
                                     database="tidemark", ssl=sslmode, min_size=1, max_size=2)
    try:
        for _ in range(3):
            async with pool.acquire() as pooled:
                await pooled.execute("SET application_name = 'pooled'")
                assert await pooled.fetchval("SELECT count(*) FROM long_sequence(4)") == 4
        assert await pool.fetchval("SHOW application_name") == "", "RESET ALL on release"
        counts = await asyncio.gather(*[pool.fetchval("SELECT $1::int + 1", i) for i in range(6)])
        assert counts == [1, 2, 3, 4, 5, 6], counts
    finally:
        await pool.close()
    print("asyncpg ok")


asyncio.run(main(*sys.argv[1:6]))
