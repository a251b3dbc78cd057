//! The generated trades: `ts, sym (200 values), side, price, amount`, one row every
//! 10 ms from 2026-11-21T00:00:00 (10 million rows span about 28 hours: two DAY
//! partitions), written once as CSV and loaded into every system from that file.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2026-11-21T00:00:00Z.
pub(crate) const T0_SECS: u64 = 1_795_219_200;
pub(crate) const SYMBOLS: u64 = 200;
const STEP_MICROS: u64 = 10_000;

/// One row of the generated trades.
pub(crate) struct Row {
    pub(crate) ts: SystemTime,
    pub(crate) sym: String,
    pub(crate) side: &'static str,
    pub(crate) price: f64,
    pub(crate) amount: f64,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64: cheap, deterministic, well spread.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Row `i` (the same index always gives the same row); with `late`: one row in ten is late by up to a minute (its
/// timestamp that much older than its neighbours'), as rows from many agents
/// with unsynchronised clocks and retries arrive.
pub(crate) fn row_with(i: u64, late: bool) -> Row {
    let r = mix(i);
    let sym = r % SYMBOLS;
    let mut ts = UNIX_EPOCH + Duration::from_secs(T0_SECS) + Duration::from_micros(i * STEP_MICROS);
    let l = mix(i ^ 0x5EED);
    if late && l.is_multiple_of(10) {
        ts -= Duration::from_micros((l >> 8) % 60_000_000);
    }
    Row {
        ts,
        sym: format!("S{sym}"),
        side: if (r >> 8) & 1 == 0 { "buy" } else { "sell" },
        // A price level per symbol plus a slow walk: realistic ranges for filters.
        price: 50.0 + sym as f64 + ((r >> 16) % 10_000) as f64 / 100.0,
        amount: ((r >> 32) % 1_000) as f64 / 10.0 + 0.1,
    }
}

/// `2026-11-21 00:00:00.010000`.
pub(crate) fn ts_text(t: SystemTime) -> String {
    let us = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64;
    let (secs, micros) = (us / 1_000_000, us % 1_000_000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub(crate) fn csv_line(i: u64) -> String {
    csv_line_with(i, false)
}

pub(crate) fn csv_line_with(i: u64, late: bool) -> String {
    let r = row_with(i, late);
    format!(
        "{},{},{},{},{}\n",
        ts_text(r.ts),
        r.sym,
        r.side,
        r.price,
        r.amount
    )
}

/// PostgreSQL's binary COPY stream of rows `rows` (header, tuples, trailer).
pub(crate) fn binary_copy(rows: std::ops::Range<u64>, late: bool) -> Vec<u8> {
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let mut out = b"PGCOPY\n\xff\r\n\0".to_vec();
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    for i in rows {
        let r = row_with(i, late);
        let us =
            r.ts.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros() as i64;
        out.extend_from_slice(&5i16.to_be_bytes());
        let mut field = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        field(&(us - PG_EPOCH_MICROS).to_be_bytes());
        field(r.sym.as_bytes());
        field(r.side.as_bytes());
        field(&r.price.to_be_bytes());
        field(&r.amount.to_be_bytes());
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// Writes `rows` rows to `path` as CSV (no header).
pub(crate) fn write_csv(path: &Path, rows: u64) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for i in 0..rows {
        w.write_all(csv_line(i).as_bytes())?;
    }
    w.flush()
}

/// Quote `i` of the ASOF JOIN phase as a CSV line `ts,sym,bid`: one quote every
/// 100 ms (a tenth as many as trades), 3 ms into its slot, on the same symbols.
pub(crate) fn quote_csv_line(i: u64) -> String {
    let r = mix(i ^ 0x0A50F);
    let sym = r % SYMBOLS;
    let ts = UNIX_EPOCH
        + Duration::from_secs(T0_SECS)
        + Duration::from_micros(i * 10 * STEP_MICROS + 3_000);
    let bid = 50.0 + sym as f64 + ((r >> 16) % 10_000) as f64 / 100.0;
    format!("{},S{sym},{bid}\n", ts_text(ts))
}

/// Writes `rows` quotes to `path` as CSV (no header).
pub(crate) fn write_quotes_csv(path: &Path, rows: u64) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for i in 0..rows {
        w.write_all(quote_csv_line(i).as_bytes())?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_deterministic_and_dated() {
        assert_eq!(csv_line(7), csv_line(7));
        assert!(csv_line(0).starts_with("2026-11-21 00:00:00.000000,S"));
        assert!(csv_line(1).starts_with("2026-11-21 00:00:00.010000,"));
        // 10 million rows reach into the second day.
        assert!(csv_line(9_999_999).starts_with("2026-11-22 03:46:39.990000,"));
        // One row in ten is late, by less than a minute.
        let late = (0..10_000u64)
            .filter(|&i| row_with(i, true).ts != row_with(i, false).ts)
            .count();
        assert!((800..1200).contains(&late), "{late} late rows");
        assert!((0..10_000u64).all(|i| {
            let lateness = row_with(i, false).ts.duration_since(row_with(i, true).ts);
            lateness.unwrap_or_default() < Duration::from_secs(60)
        }));
    }
}
