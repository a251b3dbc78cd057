"""SQLAlchemy 2 and pandas against Tidemark, with both PostgreSQL dialects
(psycopg 3 and psycopg2), as their users write it: connect, browse tables,
reflect, create, insert with bound parameters, nested transactions (savepoints),
the ORM, read back into a DataFrame with PostgreSQL's column names, and one
SQLSTATE.

Usage: sqlalchemy_check.py HOST PORT USER PASSWORD [SSLMODE]. Exits non-zero with the reason on failure.
"""
import datetime
import decimal
import sys
import uuid

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import exc, orm

host, port, user, password = sys.argv[1:5]
sslmode = sys.argv[5] if len(sys.argv) > 5 else "disable"

for dialect in ("psycopg", "psycopg2"):
    url = f"postgresql+{dialect}://{user}:{password}@{host}:{port}/tidemark?sslmode={sslmode}"
    engine = sa.create_engine(url)
    table = f"sa_{dialect}"
    frame_table = f"pd_{dialect}"

    # Connecting runs the dialect's start-up queries (version, isolation level,
    # standard_conforming_strings, type lookups).
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {frame_table}"))
        conn.execute(sa.text(
            f"CREATE TABLE {table} (ts TIMESTAMP, sym SYMBOL, price DOUBLE, qty BIGINT) "
            "TIMESTAMP(ts) PARTITION BY DAY"))

    inspector = sa.inspect(engine)
    assert table in inspector.get_table_names(), inspector.get_table_names()
    assert inspector.has_table(table)
    assert not inspector.has_table("no_such_table")
    assert "public" in inspector.get_schema_names(), inspector.get_schema_names()

    start = datetime.datetime(2026, 11, 21, 9, 0, 0)
    rows = [{"ts": start + datetime.timedelta(minutes=i), "sym": "AAPL" if i % 2 else "MSFT",
             "price": 100.0 + i, "qty": i} for i in range(10)]
    insert = sa.text(f"INSERT INTO {table} (ts, sym, price, qty) VALUES (:ts, :sym, :price, :qty)")
    with engine.begin() as conn:
        conn.execute(insert, rows)  # executemany with bound parameters

    # A nested transaction is a SAVEPOINT: rolling it back keeps the outer work.
    with engine.connect() as conn:
        with conn.begin():
            conn.execute(insert, {"ts": start + datetime.timedelta(hours=1), "sym": "IBM",
                                  "price": 1.0, "qty": 1})
            nested = conn.begin_nested()
            conn.execute(insert, {"ts": start + datetime.timedelta(hours=2), "sym": "IBM",
                                  "price": 2.0, "qty": 2})
            nested.rollback()
        count = conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE sym = 'IBM'"))
        assert count.scalar_one() == 1, "the savepoint's insert was not rolled back"

    # Reflection: the columns with their types, as Table(autoload_with=...) reads them.
    columns = {c["name"]: c for c in inspector.get_columns(table)}
    assert list(columns) == ["ts", "sym", "price", "qty"], list(columns)
    assert isinstance(columns["ts"]["type"], sa.TIMESTAMP), columns["ts"]
    assert isinstance(columns["sym"]["type"], sa.TEXT), columns["sym"]
    assert isinstance(columns["price"]["type"], sa.Float), columns["price"]
    assert isinstance(columns["qty"]["type"], sa.BIGINT), columns["qty"]
    assert inspector.get_pk_constraint(table)["constrained_columns"] == []
    assert inspector.get_indexes(table) == []
    reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        query = (sa.select(reflected.c.sym, sa.func.sum(reflected.c.qty).label("total"))
                 .where(reflected.c.price > 104.5).group_by(reflected.c.sym)
                 .order_by(reflected.c.sym))
        got = conn.execute(query).all()
        assert got == [("AAPL", 21), ("MSFT", 14)], got

    # The ORM, with the mapper's own key (a time-series table has no primary key).
    class Base(orm.DeclarativeBase):
        pass

    class Trade(Base):
        __table__ = reflected
        __mapper_args__ = {"primary_key": [reflected.c.ts, reflected.c.sym]}

    with orm.Session(engine) as session:
        session.add(Trade(ts=start + datetime.timedelta(days=1), sym="ORM", price=7.0, qty=7))
        session.commit()
        got = session.scalars(sa.select(Trade).where(Trade.sym == "ORM")).one()
        assert (got.price, got.qty) == (7.0, 7), (got.price, got.qty)

    # pandas: column names as PostgreSQL gives them, types as Python ones.
    frame = pd.read_sql(
        sa.text(f"SELECT sym, avg(price), count(*), max(ts) FROM {table} "
                "WHERE ts < :until GROUP BY sym ORDER BY sym"),
        engine, params={"until": start + datetime.timedelta(hours=1)})
    assert list(frame.columns) == ["sym", "avg", "count", "max"], list(frame.columns)
    assert frame["sym"].tolist() == ["AAPL", "MSFT"], frame
    assert frame["count"].tolist() == [5, 5], frame
    assert frame["avg"].tolist() == [105.0, 104.0], frame
    assert frame["max"].iloc[0] == pd.Timestamp(start + datetime.timedelta(minutes=9)), frame
    unnamed = pd.read_sql(sa.text("SELECT 1, 2 AS two, 'x'::text"), engine)
    assert list(unnamed.columns) == ["?column?", "two", "text"], list(unnamed.columns)

    # DataFrame.to_sql creates the table and appends to it.
    df = pd.DataFrame({"ts": [start, start + datetime.timedelta(seconds=1)],
                       "name": ["a", "b"], "value": [1.5, None]})
    df.to_sql(frame_table, engine, index=False)
    df.to_sql(frame_table, engine, index=False, if_exists="append")
    back = pd.read_sql(sa.text(f"SELECT * FROM {frame_table} ORDER BY ts, name"), engine)
    assert len(back) == 4, back
    assert back["name"].tolist() == ["a", "a", "b", "b"], back
    assert back["value"].isna().sum() == 2, back
    # Replacing reflects the table to drop it, then creates it again.
    df.to_sql(frame_table, engine, index=False, if_exists="replace")
    whole = pd.read_sql_table(frame_table, engine)
    assert list(whole.columns) == ["ts", "name", "value"], list(whole.columns)
    assert len(whole) == 2, whole

    # Time-zone-aware datetimes make a TIMESTAMP WITH TIME ZONE column: instants come
    # back aware and in UTC, and reflection says timezone=True.
    zoned_table = f"tz_{dialect}"
    zoned = pd.DataFrame({
        "time": pd.to_datetime(["2026-03-01 10:00:00+02:00", "2026-03-01 11:00:00+00:00"],
                               utc=True),
        "v": [1.0, 2.0]})
    zoned.to_sql(zoned_table, engine, index=False, if_exists="replace")
    back = pd.read_sql(sa.text(f"SELECT * FROM {zoned_table} ORDER BY time"), engine)
    assert str(back["time"].dt.tz) == "UTC", back.dtypes
    assert back["time"].tolist() == [pd.Timestamp("2026-03-01 08:00:00+00:00"),
                                     pd.Timestamp("2026-03-01 11:00:00+00:00")], back
    reflected = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns(zoned_table)}
    assert getattr(reflected["time"], "timezone", False) is True, reflected
    zt = sa.Table(zoned_table, sa.MetaData(), autoload_with=engine)
    cut = datetime.datetime(2026, 3, 1, 10, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    with engine.connect() as conn:
        later = conn.execute(sa.select(zt.c.v).where(zt.c.time > cut)).scalars().all()
    assert later == [2.0], later

    # UUID, JSON and JSONB columns reflect as their types; the ORM-style insert
    # binds `::UUID`, `::JSON`, `::JSONB` casts and a lookup by UUID finds the row.
    typed_table = f"typed_{dialect}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {typed_table}"))
        conn.execute(sa.text(f"CREATE TABLE {typed_table} (ts TIMESTAMPTZ, id UUID, doc JSON, "
                             "tags JSONB, amount NUMERIC(10,2)) TIMESTAMP(ts)"))
    columns = sa.inspect(engine).get_columns(typed_table)
    reflected = {c["name"]: type(c["type"]).__name__ for c in columns}
    assert reflected == {"ts": "TIMESTAMP", "id": "UUID", "doc": "JSON", "tags": "JSONB",
                         "amount": "NUMERIC"}, reflected
    amount = next(c["type"] for c in columns if c["name"] == "amount")
    assert (amount.precision, amount.scale) == (10, 2), (amount.precision, amount.scale)
    tt = sa.Table(typed_table, sa.MetaData(), autoload_with=engine)
    ident = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    with engine.begin() as conn:
        conn.execute(tt.insert(), [
            {"ts": datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc), "id": ident,
             "doc": {"a": [1, 2]}, "tags": {"host": "h1"}, "amount": decimal.Decimal("19.99")},
            {"ts": datetime.datetime(2026, 3, 2, tzinfo=datetime.timezone.utc), "id": uuid.uuid4(),
             "doc": None, "tags": {"host": "h2"}, "amount": None}])
        found = conn.execute(
            sa.select(tt.c.doc, tt.c.tags, tt.c.amount).where(tt.c.id == ident)).all()
        assert found == [({"a": [1, 2]}, {"host": "h1"}, decimal.Decimal("19.99"))], found
        total = conn.execute(sa.select(sa.func.sum(tt.c.amount))).scalar_one()
        assert total == decimal.Decimal("19.99") and isinstance(total, decimal.Decimal), total
        conn.execute(tt.delete().where(tt.c.id == ident))
        left = conn.execute(sa.select(sa.func.count()).select_from(tt)).scalar_one()
        assert left == 1, left
        conn.execute(sa.text(f"DROP TABLE {typed_table}"))

    # A table with a primary key (its upsert keys) and a symbol index reflects both
    # (SQLAlchemy reads them through array_agg: arrays in PostgreSQL's format), so an
    # ORM class maps the reflected table without naming its key, session.get finds
    # a row by (ts, id), and a Python list binds as an array for = ANY(...).
    keyed_table = f"keyed_{dialect}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {keyed_table}"))
        conn.execute(sa.text(f"CREATE TABLE {keyed_table} (ts TIMESTAMP, id INT, sym SYMBOL, "
                             "px DOUBLE, PRIMARY KEY (ts, id)) TIMESTAMP(ts) PARTITION BY DAY"))
        conn.execute(sa.text(f"CREATE INDEX {keyed_table}_sym ON {keyed_table} (sym)"))
        conn.execute(sa.text(f"INSERT INTO {keyed_table} VALUES (:ts, :id, :sym, :px)"), [
            {"ts": datetime.datetime(2026, 1, 1), "id": 1, "sym": "a", "px": 1.5},
            {"ts": datetime.datetime(2026, 1, 1, 0, 0, 1), "id": 2, "sym": "b c", "px": 2.0}])
    inspector = sa.inspect(engine)
    pk = inspector.get_pk_constraint(keyed_table)
    # What a BI tool's inspector asks besides (Superset, Metabase): no views, and a
    # table is no view.
    assert inspector.get_view_names() == [], inspector.get_view_names()
    try:
        inspector.get_view_definition(keyed_table)
        raise SystemExit("a table has no view definition")
    except exc.NoSuchTableError:
        pass
    assert inspector.get_foreign_keys(keyed_table) == []
    assert inspector.get_unique_constraints(keyed_table) == []
    assert pk["constrained_columns"] == ["ts", "id"], pk
    assert pk["name"] == f"{keyed_table}_pkey", pk
    indexes = inspector.get_indexes(keyed_table)
    assert [(i["name"], i["column_names"], i["unique"]) for i in indexes] == [
        (f"{keyed_table}_sym", ["sym"], False)], indexes
    kt = sa.Table(keyed_table, sa.MetaData(), autoload_with=engine)
    assert [c.name for c in kt.primary_key.columns] == ["ts", "id"], kt.primary_key

    class Base(orm.DeclarativeBase):
        pass

    class Keyed(Base):
        __table__ = kt

    with orm.Session(engine) as session:
        row = session.get(Keyed, (datetime.datetime(2026, 1, 1, 0, 0, 1), 2))
        assert row is not None and (row.sym, row.px) == ("b c", 2.0), row
    with engine.connect() as conn:
        ids = conn.execute(sa.text(f"SELECT id FROM {keyed_table} WHERE sym = ANY(:syms) "
                                   "ORDER BY id"), {"syms": ["b c", "zz"]}).scalars().all()
        assert ids == [2], ids
        aggregated = conn.execute(sa.text(
            f"SELECT array_agg(sym ORDER BY ts), array_agg(px ORDER BY ts) FROM {keyed_table}")).one()
        assert tuple(aggregated) == (["a", "b c"], [1.5, 2.0]), aggregated
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {keyed_table}"))

    # A model whose primary key is a timestamp: create_all's DDL (no TIMESTAMP(col))
    # makes it the designated timestamp and the upsert key; the ORM adds, gets,
    # updates, deletes, and `.limit()` binds `LIMIT %(param_1)s::INTEGER`; `exists()`.
    class EventBase(orm.DeclarativeBase):
        pass

    class Event(EventBase):
        __tablename__ = f"{table}_events"
        ts: orm.Mapped[datetime.datetime] = orm.mapped_column(sa.DateTime, primary_key=True)
        name: orm.Mapped[str] = orm.mapped_column(sa.String(20))
        val: orm.Mapped[float] = orm.mapped_column(sa.Float)

    EventBase.metadata.drop_all(engine)
    EventBase.metadata.create_all(engine)
    start = datetime.datetime(2026, 1, 1)
    with orm.Session(engine) as session:
        session.add_all([Event(ts=start + datetime.timedelta(seconds=i), name=f"e{i}", val=i)
                         for i in range(5)])
        session.commit()
        newest = session.scalars(sa.select(Event).order_by(Event.ts.desc()).limit(2)).all()
        assert [e.name for e in newest] == ["e4", "e3"], newest
        event = session.get(Event, start + datetime.timedelta(seconds=1))
        assert event is not None and event.name == "e1", event
        event.val = 42
        session.commit()
        assert session.scalar(sa.select(Event.val).where(Event.name == "e1")) == 42
        session.delete(event)
        session.commit()
        assert session.scalar(sa.select(sa.func.count()).select_from(Event)) == 4
        # exists() in a select list, as the ORM writes it.
        assert session.scalar(sa.select(sa.exists().where(Event.name == "e2"))) is True
        assert session.query(session.query(Event).filter(Event.name == "zz").exists()).scalar() is False
    # PostgreSQL's upsert as SQLAlchemy writes it: the key's row is replaced.
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    with engine.begin() as conn:
        for val in (1.0, 2.0):
            upsert = pg_insert(Event.__table__).values(ts=start, name="up", val=val)
            conn.execute(upsert.on_conflict_do_update(
                index_elements=["ts"],
                set_={"name": upsert.excluded.name, "val": upsert.excluded.val}))
        assert conn.execute(sa.select(Event.val).where(Event.ts == start)).scalar_one() == 2.0
    EventBase.metadata.drop_all(engine)

    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table"))
        raise SystemExit("expected an error for a missing table")
    except exc.ProgrammingError as e:
        code = getattr(e.orig, "sqlstate", None) or getattr(e.orig, "pgcode", None)
        assert code == "42P01", code
        assert "no_such_table" in str(e.orig), str(e.orig)

    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {table}"))
        conn.execute(sa.text(f"DROP TABLE {frame_table}"))
        conn.execute(sa.text(f"DROP TABLE {zoned_table}"))
    engine.dispose()

print("sqlalchemy ok")
