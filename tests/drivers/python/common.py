"""The table and the row both Python driver checks write and read back."""
import datetime
import decimal
import uuid

CREATE = """CREATE TABLE {name} (
    ts TIMESTAMP, b BOOLEAN, i2 SMALLINT, i4 INT, i8 BIGINT, f4 REAL, f8 DOUBLE,
    d DATE, s VARCHAR, sym SYMBOL, u UUID, bin BYTEA, n NUMERIC(12,4)
) TIMESTAMP(ts) PARTITION BY DAY"""

ROW = (
    datetime.datetime(2026, 11, 21, 10, 0, 0, 123456),
    True,
    -32768,
    2147483647,
    -9223372036854775808,
    1.5,
    -2.25e300,
    datetime.date(2026, 11, 21),
    "héllo, 'world'",
    "AAPL",
    uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    b"\x00\x01\xfe\xff",
    decimal.Decimal("-12345678.9012"),
)


def check_row(got, want, label):
    got = tuple(got)
    if len(got) != len(want):
        raise SystemExit(f"{label}: {len(got)} columns, expected {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        if isinstance(g, memoryview):
            g = bytes(g)
        if isinstance(w, uuid.UUID) and isinstance(g, str):
            g = uuid.UUID(g)
        if g != w:
            raise SystemExit(f"{label}: column {i}: got {g!r}, expected {w!r}")
