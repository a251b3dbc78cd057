// pgJDBC against Tidemark: every type through bound parameters, read back with a fetch
// size (portal suspension), DatabaseMetaData browsing, one SQLSTATE.
// Run: java -cp /usr/share/java/postgresql.jar DriverCheck.java HOST PORT USER PASSWORD [SSLMODE]
import java.sql.*;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.UUID;
import java.math.BigDecimal;

public class DriverCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    public static void main(String[] args) throws Exception {
        String sslmode = args.length > 4 ? args[4] : "disable";
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/tidemark?sslmode=" + sslmode;
        try (Connection conn = DriverManager.getConnection(url, args[2], args[3])) {
            try (Statement st = conn.createStatement()) {
                st.execute("DROP TABLE IF EXISTS drv_jdbc");
                st.execute("CREATE TABLE drv_jdbc (ts TIMESTAMP, b BOOLEAN, i2 SMALLINT, i4 INT,"
                        + " i8 BIGINT, f4 REAL, f8 DOUBLE, d DATE, s VARCHAR, sym SYMBOL, u UUID,"
                        + " bin BYTEA, tz TIMESTAMPTZ, n NUMERIC(12,4)) TIMESTAMP(ts) PARTITION BY DAY");
            }
            LocalDateTime ts = LocalDateTime.of(2026, 11, 21, 10, 0, 0, 123456000);
            UUID uuid = UUID.fromString("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
            byte[] bin = {0, 1, (byte) 0xfe, (byte) 0xff};
            // An instant given at +02:00 is stored as UTC and read back as the same instant.
            OffsetDateTime tz = OffsetDateTime.of(2026, 11, 21, 12, 0, 0, 0, ZoneOffset.ofHours(2));
            BigDecimal amount = new BigDecimal("-12345678.9012");
            String insert = "INSERT INTO drv_jdbc VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
            try (PreparedStatement ps = conn.prepareStatement(insert)) {
                // Enough executions that pgJDBC switches to a named server-side statement.
                for (int i = 0; i < 8; i++) {
                    ps.setObject(1, ts.plusSeconds(i));
                    ps.setBoolean(2, true);
                    ps.setShort(3, Short.MIN_VALUE);
                    ps.setInt(4, i);
                    ps.setLong(5, Long.MIN_VALUE);
                    ps.setFloat(6, 1.5f);
                    ps.setDouble(7, -2.25e300);
                    ps.setObject(8, LocalDate.of(2026, 11, 21));
                    ps.setString(9, "héllo, 'world'");
                    ps.setString(10, "AAPL");
                    ps.setObject(11, uuid);
                    ps.setBytes(12, bin);
                    ps.setObject(13, tz);
                    ps.setBigDecimal(14, amount);
                    check(ps.executeUpdate() == 1, "one row inserted");
                }
                ps.setObject(1, ts.plusDays(1));
                for (int c = 2; c <= 14; c++) {
                    ps.setNull(c, Types.NULL);
                }
                ps.executeUpdate();
            }

            // A fetch size makes pgJDBC use a named portal and Execute with a row limit;
            // it only does so inside a transaction.
            conn.setAutoCommit(false);
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT * FROM drv_jdbc WHERE ts >= ? ORDER BY ts")) {
                ps.setFetchSize(3);
                ps.setObject(1, ts);
                try (ResultSet rs = ps.executeQuery()) {
                    int n = 0;
                    while (rs.next()) {
                        if (n < 8) {
                            check(rs.getObject(1, LocalDateTime.class).equals(ts.plusSeconds(n)), "ts " + n);
                            check(rs.getBoolean(2), "bool");
                            check(rs.getShort(3) == Short.MIN_VALUE, "smallint");
                            check(rs.getInt(4) == n, "int");
                            check(rs.getLong(5) == Long.MIN_VALUE, "bigint");
                            check(rs.getFloat(6) == 1.5f, "real");
                            check(rs.getDouble(7) == -2.25e300, "double");
                            check(rs.getObject(8, LocalDate.class).equals(LocalDate.of(2026, 11, 21)), "date");
                            check(rs.getString(9).equals("héllo, 'world'"), "varchar: " + rs.getString(9));
                            check(rs.getString(10).equals("AAPL"), "symbol");
                            check(rs.getObject(11, UUID.class).equals(uuid), "uuid");
                            check(Arrays.equals(rs.getBytes(12), bin), "bytea");
                            OffsetDateTime back = rs.getObject(13, OffsetDateTime.class);
                            check(back.isEqual(tz) && back.getOffset().equals(ZoneOffset.UTC),
                                    "timestamptz: " + back);
                            check(rs.getBigDecimal(14).equals(amount), "numeric: " + rs.getBigDecimal(14));
                        } else {
                            for (int c = 2; c <= 14; c++) {
                                rs.getObject(c);
                                check(rs.wasNull(), "column " + c + " is NULL");
                            }
                        }
                        n++;
                    }
                    check(n == 9, "9 rows, got " + n);
                }
            }
            conn.commit();
            conn.setAutoCommit(true);

            // Checkpoint mode, as a backup job drives it.
            try (Statement st = conn.createStatement()) {
                st.execute("CHECKPOINT CREATE");
                try (ResultSet rs = st.executeQuery(
                        "SELECT in_progress, started_at, tables FROM checkpoint_status()")) {
                    check(rs.next() && rs.getBoolean(1) && rs.getTimestamp(2) != null
                            && rs.getInt(3) >= 1, "checkpoint in progress");
                }
                try {
                    st.execute("CHECKPOINT CREATE");
                    throw new AssertionError("expected an error for a second checkpoint");
                } catch (SQLException e) {
                    check("55000".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState());
                }
                st.execute("CHECKPOINT RELEASE");
                try (ResultSet rs = st.executeQuery("SELECT in_progress FROM checkpoint_status()")) {
                    check(rs.next() && !rs.getBoolean(1), "checkpoint released");
                }
            }

            // DatabaseMetaData, as JDBC tools (DBeaver) browse with it.
            DatabaseMetaData meta = conn.getMetaData();
            boolean listed = false;
            try (ResultSet rs = meta.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) {
                    listed |= rs.getString("TABLE_NAME").equals("drv_jdbc");
                }
            }
            check(listed, "getTables lists drv_jdbc");
            String[][] columns = {
                {"ts", "timestamp"}, {"b", "bool"}, {"i2", "int2"}, {"i4", "int4"}, {"i8", "int8"},
                {"f4", "float4"}, {"f8", "float8"}, {"d", "date"}, {"s", "text"}, {"sym", "text"},
                {"u", "uuid"}, {"bin", "bytea"}, {"tz", "timestamptz"}, {"n", "numeric"}};
            try (ResultSet rs = meta.getColumns(null, "public", "drv_jdbc", "%")) {
                for (String[] column : columns) {
                    check(rs.next(), "getColumns: " + column[0]);
                    check(rs.getString("COLUMN_NAME").equals(column[0]), "column " + rs.getString("COLUMN_NAME"));
                    check(column[1] == null || rs.getString("TYPE_NAME").equals(column[1]),
                            column[0] + " TYPE_NAME " + rs.getString("TYPE_NAME"));
                    if (column[0].equals("n")) {
                        // Precision and scale, as a tool shows them (from atttypmod).
                        check(rs.getInt("DATA_TYPE") == Types.NUMERIC && rs.getInt("COLUMN_SIZE") == 12
                                && rs.getInt("DECIMAL_DIGITS") == 4,
                                "numeric(12,4) size " + rs.getInt("COLUMN_SIZE") + "," + rs.getInt("DECIMAL_DIGITS"));
                    }
                }
                check(!rs.next(), "getColumns: no more columns");
            }
            try (ResultSet rs = meta.getSchemas()) {
                boolean found = false;
                while (rs.next()) {
                    found |= rs.getString("TABLE_SCHEM").equals("public");
                }
                check(found, "getSchemas lists public");
            }
            try (ResultSet rs = meta.getImportedKeys(null, "public", "drv_jdbc")) {
                check(!rs.next(), "no foreign keys");
            }
            // A table without upsert keys or symbol indexes has no primary key and no
            // index: DBeaver's key and index tabs are empty, as in PostgreSQL.
            try (ResultSet rs = meta.getPrimaryKeys(null, "public", "drv_jdbc")) {
                check(!rs.next(), "no primary key");
            }
            try (ResultSet rs = meta.getIndexInfo(null, "public", "drv_jdbc", false, true)) {
                check(!rs.next(), "no index");
            }
            try (ResultSet rs = meta.getBestRowIdentifier(null, "public", "drv_jdbc",
                    DatabaseMetaData.bestRowSession, true)) {
                check(!rs.next(), "no row identifier");
            }
            // pgJDBC answers ctid for every PostgreSQL table, from its type cache.
            try (ResultSet rs = meta.getVersionColumns(null, "public", "drv_jdbc")) {
                check(rs.next() && rs.getString("COLUMN_NAME").equals("ctid"), "version column");
            }
            try (ResultSet rs = meta.getTypeInfo()) {
                java.util.Map<String, Integer> types = new java.util.HashMap<>();
                while (rs.next()) {
                    types.put(rs.getString("TYPE_NAME"), rs.getInt("DATA_TYPE"));
                }
                String[][] expected = {{"int4", "" + Types.INTEGER}, {"int8", "" + Types.BIGINT},
                        {"float8", "" + Types.DOUBLE}, {"text", "" + Types.VARCHAR},
                        {"timestamp", "" + Types.TIMESTAMP}, {"bool", "" + Types.BIT},
                        {"bytea", "" + Types.BINARY}, {"date", "" + Types.DATE}};
                for (String[] type : expected) {
                    check(Integer.valueOf(type[1]).equals(types.get(type[0])),
                            "getTypeInfo " + type[0] + ": " + types.get(type[0]));
                }
            }

            // A table with a primary key (its upsert keys) and a symbol index: DBeaver's
            // key and index tabs read them through getPrimaryKeys and getIndexInfo.
            try (Statement st = conn.createStatement()) {
                st.execute("DROP TABLE IF EXISTS drv_jdbc_keyed");
                st.execute("CREATE TABLE drv_jdbc_keyed (ts TIMESTAMP, id BIGINT, sym SYMBOL, "
                        + "PRIMARY KEY (ts, id)) TIMESTAMP(ts) PARTITION BY DAY");
                st.execute("CREATE INDEX drv_jdbc_keyed_sym ON drv_jdbc_keyed (sym)");
            }
            try (ResultSet rs = meta.getPrimaryKeys(null, "public", "drv_jdbc_keyed")) {
                for (String column : new String[] {"ts", "id"}) {
                    check(rs.next(), "getPrimaryKeys: " + column);
                    check(rs.getString("COLUMN_NAME").equals(column)
                            && rs.getString("PK_NAME").equals("drv_jdbc_keyed_pkey"),
                            "primary key column " + rs.getString("COLUMN_NAME") + " of "
                                    + rs.getString("PK_NAME") + " seq " + rs.getInt("KEY_SEQ"));
                }
                check(!rs.next(), "getPrimaryKeys: two columns");
            }
            try (ResultSet rs = meta.getIndexInfo(null, "public", "drv_jdbc_keyed", false, true)) {
                // Ordered by NON_UNIQUE, TYPE, INDEX_NAME, ORDINAL_POSITION.
                String[][] expected = {{"false", "drv_jdbc_keyed_pkey", "ts"},
                        {"false", "drv_jdbc_keyed_pkey", "id"}, {"true", "drv_jdbc_keyed_sym", "sym"}};
                for (String[] row : expected) {
                    check(rs.next(), "getIndexInfo: " + row[1] + " " + row[2]);
                    String got = rs.getBoolean("NON_UNIQUE") + " " + rs.getString("INDEX_NAME") + " "
                            + rs.getString("COLUMN_NAME");
                    check(got.equals(String.join(" ", row)), "getIndexInfo row " + got);
                }
                check(!rs.next(), "getIndexInfo: three rows");
            }
            try (ResultSet rs = meta.getIndexInfo(null, "public", "drv_jdbc_keyed", true, true)) {
                int unique = 0;
                while (rs.next()) {
                    check(!rs.getBoolean("NON_UNIQUE"), "unique only: " + rs.getString("INDEX_NAME"));
                    unique++;
                }
                check(unique == 2, "getIndexInfo(unique): the primary key's two columns, got " + unique);
            }
            try (ResultSet rs = meta.getBestRowIdentifier(null, "public", "drv_jdbc_keyed",
                    DatabaseMetaData.bestRowSession, true)) {
                java.util.Set<String> names = new java.util.TreeSet<>();
                while (rs.next()) {
                    names.add(rs.getString("COLUMN_NAME"));
                }
                check(names.equals(new java.util.TreeSet<>(java.util.List.of("id", "ts"))),
                        "best row identifier " + names);
            }

            try (Statement st = conn.createStatement()) {
                st.executeQuery("SELECT * FROM no_such_table");
                throw new AssertionError("expected an error for a missing table");
            } catch (SQLException e) {
                check("42P01".equals(e.getSQLState()), "SQLSTATE " + e.getSQLState());
                check(e.getMessage().contains("no_such_table"), e.getMessage());
            }
        }
        System.out.println("pgjdbc ok");
    }
}
