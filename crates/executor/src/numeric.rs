//! NUMERIC values as PostgreSQL reads and writes them: text in (with rounding to
//! the column's scale, half away from zero), the binary wire format (base-10000
//! digits) in and out, and rescaling between scales. A value is its unscaled
//! integer (`value * 10^scale`) in an `i128`, as DECIMAL columns store it.

use std::fmt;

/// Why a value cannot be a NUMERIC of the wanted precision and scale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumericError {
    /// Not a number: PostgreSQL's 22P02.
    Syntax,
    /// More integer digits than the precision leaves room for: 22003.
    Overflow { precision: u8, scale: u8 },
    /// NaN or ±Infinity, which a DECIMAL column cannot hold: 22003.
    NotFinite(&'static str),
}

impl fmt::Display for NumericError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumericError::Syntax => f.write_str("invalid input syntax for type numeric"),
            NumericError::Overflow { precision, scale } => write!(
                f,
                "numeric field overflow: a field with precision {precision}, scale {scale} must \
                 round to an absolute value less than 10^{}",
                precision - scale
            ),
            NumericError::NotFinite(what) => {
                write!(f, "{what} cannot be stored in a NUMERIC column")
            }
        }
    }
}

/// A finite decimal as parsed: `digits * 10^exponent`, digits without leading zeros.
struct Parsed {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

/// Exponents beyond this are out of any precision's reach (PostgreSQL's own limit
/// on a NUMERIC's weight is far smaller than `i64`, larger than we need).
const EXPONENT_LIMIT: i64 = 100_000;

fn parse_parts(text: &str) -> Result<Parsed, NumericError> {
    let s = text.trim();
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "nan" {
        return Err(NumericError::NotFinite("NaN"));
    }
    if lower == "infinity" || lower == "inf" {
        return Err(NumericError::NotFinite("Infinity"));
    }
    let (mantissa, exp_text) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(NumericError::Syntax);
    }
    let mut exponent: i64 = match exp_text {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(NumericError::Syntax);
            }
            let magnitude: i64 = digits
                .parse::<i64>()
                .unwrap_or(i64::MAX)
                .min(EXPONENT_LIMIT);
            if e.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    exponent -= frac_part.len() as i64;
    let digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .skip_while(|&b| b == b'0')
        .map(|b| b - b'0')
        .collect();
    Ok(Parsed {
        negative,
        digits,
        exponent,
    })
}

/// `10^n` for `n <= 38`.
fn pow10(n: u32) -> i128 {
    10i128.pow(n)
}

impl Parsed {
    /// The unscaled value at `scale`, rounded half away from zero, if it has at
    /// most `precision` digits.
    fn unscaled(&self, precision: u8, scale: u8) -> Result<i128, NumericError> {
        let overflow = NumericError::Overflow { precision, scale };
        // The digits that stay after moving the point `scale` places right.
        let shift = self.exponent.saturating_add(i64::from(scale));
        let (kept, round_up) = if shift >= 0 {
            (&self.digits[..], false)
        } else {
            let dropped = usize::try_from(-shift).unwrap_or(usize::MAX);
            if dropped > self.digits.len() {
                (&self.digits[..0], false)
            } else {
                let cut = self.digits.len() - dropped;
                let first_dropped = self.digits.get(cut).copied().unwrap_or(0);
                (&self.digits[..cut], first_dropped >= 5)
            }
        };
        let zeros = if shift > 0 { shift as u64 } else { 0 };
        if !kept.is_empty() && kept.len() as u64 + zeros > u64::from(precision) {
            return Err(overflow);
        }
        let mut v: i128 = 0;
        for &d in kept {
            v = v * 10 + i128::from(d);
        }
        if !kept.is_empty() {
            v *= pow10(zeros as u32);
        }
        if round_up {
            v += 1;
        }
        if v >= pow10(u32::from(precision)) {
            return Err(overflow);
        }
        Ok(if self.negative { -v } else { v })
    }
}

/// Text as a NUMERIC(precision, scale): PostgreSQL's input syntax (sign, digits,
/// point, exponent, surrounding spaces), rounded to `scale` half away from zero.
pub fn parse(text: &str, precision: u8, scale: u8) -> Result<i128, NumericError> {
    parse_parts(text)?.unscaled(precision, scale)
}

/// A value of scale `from` as NUMERIC(precision, scale), rounding half away from
/// zero when the scale shrinks.
pub fn rescale(v: i128, from: i8, precision: u8, scale: u8) -> Result<i128, NumericError> {
    let overflow = NumericError::Overflow { precision, scale };
    let diff = i32::from(scale as i8) - i32::from(from);
    let r = if diff >= 0 {
        if diff > 38 {
            return if v == 0 { Ok(0) } else { Err(overflow) };
        }
        v.checked_mul(pow10(diff as u32)).ok_or(overflow.clone())?
    } else {
        let d = (-diff) as u32;
        if d > 38 {
            return Ok(0);
        }
        let p = pow10(d);
        let (q, rem) = (v / p, v % p);
        if rem.unsigned_abs() * 2 >= p.unsigned_abs() {
            q + v.signum()
        } else {
            q
        }
    };
    if r.unsigned_abs() >= pow10(u32::from(precision)).unsigned_abs() {
        return Err(overflow);
    }
    Ok(r)
}

/// An unscaled value as text with `scale` decimals (`-1.50`), as PostgreSQL prints
/// a NUMERIC of that scale.
pub fn to_text(v: i128, scale: u8) -> String {
    let digits = v.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

const SIGN_POSITIVE: u16 = 0x0000;
const SIGN_NEGATIVE: u16 = 0x4000;
const SIGN_NAN: u16 = 0xC000;
const SIGN_PLUS_INFINITY: u16 = 0xD000;
const SIGN_MINUS_INFINITY: u16 = 0xF000;

/// The binary wire form of an unscaled value of `scale`: `ndigits i16 | weight i16
/// | sign u16 | dscale u16` then base-10000 digits, most significant first.
pub fn encode_binary(v: i128, scale: u8, out: &mut Vec<u8>) {
    let digits = v.unsigned_abs().to_string();
    let scale_us = usize::from(scale);
    let digits = format!("{digits:0>width$}", width = scale_us + 1);
    let (int, frac) = digits.split_at(digits.len() - scale_us);
    // Groups of four decimal digits, aligned on the decimal point.
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let padded = format!("{}{int}{frac}{}", "0".repeat(int_pad), "0".repeat(frac_pad));
    let groups: Vec<i16> = padded
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let int_groups = (int.len() + int_pad) / 4;
    let mut weight = int_groups as i16 - 1;
    let first = groups.iter().position(|&g| g != 0);
    let last = groups.iter().rposition(|&g| g != 0);
    let kept: &[i16] = match (first, last) {
        (Some(f), Some(l)) => {
            weight -= f as i16;
            &groups[f..=l]
        }
        _ => {
            weight = 0;
            &[]
        }
    };
    let sign = if v < 0 { SIGN_NEGATIVE } else { SIGN_POSITIVE };
    out.extend_from_slice(&(kept.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&u16::from(scale).to_be_bytes());
    for g in kept {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

/// The value of a binary NUMERIC as NUMERIC(precision, scale).
pub fn decode_binary(b: &[u8], precision: u8, scale: u8) -> Result<i128, NumericError> {
    binary_parts(b)?.unscaled(precision, scale)
}

/// A binary NUMERIC as PostgreSQL's text form of it (`-12.5`, `NaN`).
pub fn binary_to_text(b: &[u8]) -> Result<String, NumericError> {
    let p = match binary_parts(b) {
        Ok(p) => p,
        Err(NumericError::NotFinite(what)) => return Ok(what.to_string()),
        Err(e) => return Err(e),
    };
    let digits: String = p.digits.iter().map(|d| char::from(b'0' + d)).collect();
    if digits.is_empty() {
        return Ok("0".to_string());
    }
    let sign = if p.negative { "-" } else { "" };
    Ok(if p.exponent >= 0 {
        format!("{sign}{digits}{}", "0".repeat(p.exponent as usize))
    } else {
        let frac = (-p.exponent) as usize;
        let padded = format!("{digits:0>width$}", width = frac + 1);
        let (int, frac) = padded.split_at(padded.len() - frac);
        format!("{sign}{int}.{frac}")
    })
}

fn binary_parts(b: &[u8]) -> Result<Parsed, NumericError> {
    let word = |i: usize| -> Result<u16, NumericError> {
        b.get(i..i + 2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
            .ok_or(NumericError::Syntax)
    };
    let ndigits = word(0)? as i16;
    let weight = word(2)? as i16;
    let sign = word(4)?;
    match sign {
        SIGN_POSITIVE | SIGN_NEGATIVE => {}
        SIGN_NAN => return Err(NumericError::NotFinite("NaN")),
        SIGN_PLUS_INFINITY | SIGN_MINUS_INFINITY => {
            return Err(NumericError::NotFinite("Infinity"));
        }
        _ => return Err(NumericError::Syntax),
    }
    if ndigits < 0 || b.len() != 8 + 2 * ndigits as usize {
        return Err(NumericError::Syntax);
    }
    let mut digits = Vec::with_capacity(4 * ndigits as usize);
    for i in 0..ndigits as usize {
        let g = word(8 + 2 * i)?;
        if g > 9999 {
            return Err(NumericError::Syntax);
        }
        digits.extend([g / 1000, g / 100 % 10, g / 10 % 10, g % 10].map(|d| d as u8));
    }
    // Group i is worth 10000^(weight - i): the last group's units are at
    // 10^(4 * (weight - ndigits + 1)).
    let exponent = 4 * (i64::from(weight) - i64::from(ndigits) + 1);
    let first = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    Ok(Parsed {
        negative: sign == SIGN_NEGATIVE,
        digits: digits[first..].to_vec(),
        exponent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_rounds_half_away_from_zero_to_the_scale() {
        assert_eq!(parse("1.235", 5, 2), Ok(124));
        assert_eq!(parse("-1.235", 5, 2), Ok(-124));
        assert_eq!(parse("1.234", 5, 2), Ok(123));
        assert_eq!(parse(" +12 ", 5, 2), Ok(1200));
        assert_eq!(parse(".5", 3, 0), Ok(1));
        assert_eq!(parse("5.", 3, 0), Ok(5));
        assert_eq!(parse("1.5e2", 5, 1), Ok(1500));
        assert_eq!(parse("15E-3", 5, 2), Ok(2));
        assert_eq!(parse("0.0000", 1, 0), Ok(0));
        assert_eq!(parse("0.004", 3, 2), Ok(0));
        assert_eq!(parse("-0.004", 3, 2), Ok(0));
        assert_eq!(
            parse("99999999999999999999999999999999999999", 38, 0),
            Ok(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
    }

    #[test]
    fn too_many_digits_bad_text_and_nan_are_errors() {
        let overflow = NumericError::Overflow {
            precision: 5,
            scale: 2,
        };
        assert_eq!(parse("1000", 5, 2), Err(overflow.clone()));
        // Rounding up can overflow, as in PostgreSQL.
        assert_eq!(parse("999.995", 5, 2), Err(overflow.clone()));
        assert_eq!(parse("999.994", 5, 2), Ok(99_999));
        assert_eq!(parse("1e400", 5, 2), Err(overflow));
        assert_eq!(parse("1e-400", 5, 2), Ok(0));
        for bad in ["", "-", ".", "1.2.3", "1e", "abc", "1,5", "0x10", "--1"] {
            assert_eq!(parse(bad, 5, 2), Err(NumericError::Syntax), "{bad:?}");
        }
        assert_eq!(parse("NaN", 5, 2), Err(NumericError::NotFinite("NaN")));
        assert_eq!(
            parse("-Infinity", 5, 2),
            Err(NumericError::NotFinite("Infinity"))
        );
    }

    #[test]
    fn rescaling_rounds_and_checks_the_precision() {
        assert_eq!(rescale(12345, 3, 5, 2), Ok(1235));
        assert_eq!(rescale(-12345, 3, 5, 2), Ok(-1235));
        assert_eq!(rescale(12344, 3, 5, 2), Ok(1234));
        assert_eq!(rescale(5, 0, 5, 2), Ok(500));
        assert_eq!(
            rescale(1000, 0, 5, 2),
            Err(NumericError::Overflow {
                precision: 5,
                scale: 2
            })
        );
    }

    #[test]
    fn text_shows_every_decimal_of_the_scale() {
        assert_eq!(to_text(1250, 2), "12.50");
        assert_eq!(to_text(-5, 3), "-0.005");
        assert_eq!(to_text(0, 2), "0.00");
        assert_eq!(to_text(42, 0), "42");
        assert_eq!(
            to_text(i128::MIN, 0),
            "-170141183460469231731687303715884105728"
        );
    }

    /// The bytes PostgreSQL 15 sends for these values (`numeric_send`).
    #[test]
    fn binary_form_is_postgresqls() {
        let enc = |v, s| {
            let mut out = Vec::new();
            encode_binary(v, s, &mut out);
            out
        };
        // 12.50 as numeric(10,2): digits [12, 5000], weight 0, dscale 2.
        assert_eq!(enc(1250, 2), [0, 2, 0, 0, 0, 0, 0, 2, 0, 12, 0x13, 0x88]);
        // -0.005: digits [50], weight -1, dscale 3.
        assert_eq!(enc(-5, 3), [0, 1, 0xff, 0xff, 0x40, 0, 0, 3, 0, 50]);
        // 0 with scale 2: no digits.
        assert_eq!(enc(0, 2), [0, 0, 0, 0, 0, 0, 0, 2]);
        // 10000: digits [1], weight 1.
        assert_eq!(enc(10000, 0), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(binary_to_text(&enc(1250, 2)), Ok("12.5000".into()));
        assert_eq!(binary_to_text(&enc(-5, 3)), Ok("-0.0050".into()));
        assert_eq!(binary_to_text(&enc(10000, 0)), Ok("10000".into()));
        assert_eq!(
            binary_to_text(&[0, 0, 0, 0, 0xc0, 0, 0, 0]),
            Ok("NaN".into())
        );
        for bad in [
            &[0u8, 1, 0, 0, 0, 0, 0, 0][..],
            &[0, 0, 0],
            &[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10],
        ] {
            assert_eq!(
                decode_binary(bad, 10, 2),
                Err(NumericError::Syntax),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn binary_and_text_roundtrip(v in any::<i64>(), extra in any::<i64>(), scale in 0u8..=20) {
            let v = i128::from(v) * i128::from(extra.rem_euclid(1 << 40));
            let precision = 38;
            let mut b = Vec::new();
            encode_binary(v, scale, &mut b);
            prop_assert_eq!(decode_binary(&b, precision, scale), Ok(v));
            prop_assert_eq!(parse(&to_text(v, scale), precision, scale), Ok(v));
        }
    }
}
