// node-postgres against Tidemark: every type through bound parameters, read back, one SQLSTATE.
// Usage: node check.js HOST PORT USER PASSWORD [SSLMODE]. Exits non-zero with the reason on failure.
'use strict';
const assert = require('node:assert/strict');
const { Client, types } = require('pg');

// Read TIMESTAMP as its text, so the check does not depend on the local time zone.
types.setTypeParser(1114, (text) => text);
types.setTypeParser(1082, (text) => text);

async function main([host, port, user, password, sslmode = 'disable']) {
  // sslmode=require: encrypt, without verifying the (self-signed) certificate, as libpq does.
  const ssl = sslmode === 'require' ? { rejectUnauthorized: false } : false;
  const client = new Client({ host, port: Number(port), user, password, database: 'tidemark', ssl });
  await client.connect();
  try {
    await client.query('DROP TABLE IF EXISTS drv_node');
    await client.query(`CREATE TABLE drv_node (ts TIMESTAMP, b BOOLEAN, i2 SMALLINT, i4 INT,
      i8 BIGINT, f4 REAL, f8 DOUBLE, d DATE, s VARCHAR, sym SYMBOL, u UUID, bin BYTEA,
      n NUMERIC(12,4)) TIMESTAMP(ts) PARTITION BY DAY`);
    const row = ['2026-11-21 10:00:00.123456', true, -32768, 2147483647, '-9223372036854775808',
      1.5, -2.25e300, '2026-11-21', "héllo, 'world'", 'AAPL',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', Buffer.from([0, 1, 0xfe, 0xff]), '-12345678.9012'];
    const insert = {
      name: 'insert_drv',  // a named prepared statement, reused below
      text: 'INSERT INTO drv_node VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)',
    };
    assert.equal((await client.query({ ...insert, values: row })).rowCount, 1);
    const nulls = ['2026-11-21 10:00:01', ...Array(row.length - 1).fill(null)];
    assert.equal((await client.query({ ...insert, values: nulls })).rowCount, 1);

    const res = await client.query('SELECT * FROM drv_node WHERE ts >= $1 ORDER BY ts', [row[0]]);
    assert.equal(res.rows.length, 2);
    const got = Object.values(res.rows[0]);
    assert.equal(got[0], row[0]);
    assert.deepEqual(got.slice(1, 4), row.slice(1, 4));
    assert.equal(got[4], row[4]);                 // BIGINT arrives as text in node-postgres
    assert.deepEqual(got.slice(5, 11), row.slice(5, 11));
    assert.ok(Buffer.from(got[11]).equals(row[11]), `bytea ${got[11]}`);
    assert.equal(got[12], row[12]);               // NUMERIC arrives as its exact text
    assert.ok(Object.values(res.rows[1]).slice(1).every((v) => v === null), 'NULL row');

    // TIMESTAMPTZ reads as a Date of the same instant; JSON and JSONB as objects.
    await client.query('DROP TABLE IF EXISTS drv_node_docs');
    await client.query(`CREATE TABLE drv_node_docs (ts TIMESTAMPTZ, doc JSON, tags JSONB)
      TIMESTAMP(ts)`);
    const at = new Date('2026-11-21T10:00:00.250Z');
    await client.query('INSERT INTO drv_node_docs VALUES ($1, $2, $3)',
      [at, JSON.stringify({ a: [1, null] }), { host: 'h1' }]);
    const docs = await client.query("SELECT ts, doc, tags, tags ->> 'host' AS host FROM drv_node_docs");
    assert.equal(docs.rows[0].ts.getTime(), at.getTime());
    assert.deepEqual(docs.rows[0].doc, { a: [1, null] });
    assert.deepEqual(docs.rows[0].tags, { host: 'h1' });
    assert.equal(docs.rows[0].host, 'h1');
    await assert.rejects(client.query('INSERT INTO drv_node_docs (ts, doc) VALUES ($1, $2)',
      [at, '{oops']), (e) => {
      assert.equal(e.code, '22P02');
      return true;
    });

    // A DOUBLE[] column: JavaScript arrays in (node-postgres sends array text), numbers out.
    await client.query('DROP TABLE IF EXISTS drv_node_arr');
    await client.query('CREATE TABLE drv_node_arr (ts TIMESTAMP, bids DOUBLE[], grid DOUBLE[][]) TIMESTAMP(ts)');
    await client.query('INSERT INTO drv_node_arr VALUES ($1, $2, $3)',
      [row[0], [1.5, null, 3], [[1, 2], [3, 4]]]);
    const arr = await client.query('SELECT bids, grid, bids[1] AS first FROM drv_node_arr');
    assert.deepEqual(arr.rows[0].bids, [1.5, null, 3]);
    assert.deepEqual(arr.rows[0].grid, [[1, 2], [3, 4]]);
    assert.equal(arr.rows[0].first, 1.5);
    await client.query('DROP TABLE drv_node_arr');

    // Pages with untyped LIMIT/OFFSET parameters (node-postgres sends values as
    // untyped text): PostgreSQL types them BIGINT.
    await client.query('DROP TABLE IF EXISTS drv_node_page');
    await client.query('CREATE TABLE drv_node_page (ts TIMESTAMP, n BIGINT) TIMESTAMP(ts)');
    await client.query("INSERT INTO drv_node_page SELECT timestamp_sequence('2026-01-01', 1000000), x FROM long_sequence(10)");
    for (const [limit, offset] of [[2, 3], [3, 0]]) {
      const page = await client.query({ text: 'SELECT n FROM drv_node_page ORDER BY ts LIMIT $1 OFFSET $2',
        values: [limit, offset], rowMode: 'array' });
      assert.deepEqual(page.rows.map((r) => Number(r[0])),
        Array.from({ length: limit }, (_, i) => offset + i + 1));
    }
    // Too few values for a query's or an INSERT's parameters: 08P01, never a panic.
    for (const text of ['SELECT n FROM drv_node_page WHERE n > $1 AND n < $2',
      'INSERT INTO drv_node_page VALUES ($1, $2)']) {
      await assert.rejects(client.query({ text, values: [1] }), (e) => {
        assert.equal(e.code, '08P01');
        return true;
      });
    }
    await client.query('DROP TABLE drv_node_page');
    // A query with `$1` but no values goes as a simple query: 42P02, as PostgreSQL says.
    await assert.rejects(client.query('SELECT $1::int AS v'), (e) => {
      assert.equal(e.code, '42P02');
      return true;
    });

    await assert.rejects(client.query('SELECT * FROM no_such_table'), (e) => {
      assert.equal(e.code, '42P01');
      assert.match(e.message, /no_such_table/);
      return true;
    });
  } finally {
    await client.end();
  }
  console.log('node-postgres ok');
}

main(process.argv.slice(2)).catch((e) => {
  console.error(e);
  process.exit(1);
});
