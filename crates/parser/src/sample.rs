//! `SAMPLE BY <n><unit> [FROM '<t>' TO '<t>'] [FILL(...)]
//! [ALIGN TO CALENDAR [TIME ZONE '<tz>'] [WITH OFFSET '<+hh:mm>'] | ALIGN TO FIRST OBSERVATION]`
//! — parsed from the clause tokens that `latest::split`'s sibling cut out.

use datafusion_sql::sqlparser::dialect::Dialect;
use datafusion_sql::sqlparser::parser::{Parser, ParserError};
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// Units of SAMPLE BY: U µs, T ms, s, m, h, d, w, M months, y years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleUnit {
    Micro,
    Milli,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Align {
    /// Buckets start at multiples of the interval from the calendar origin,
    /// shifted by an offset in minutes; an optional time zone name.
    Calendar {
        time_zone: Option<String>,
        offset_minutes: i64,
    },
    /// Buckets start at the first row's timestamp.
    FirstObservation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleBy {
    pub every: i64,
    pub unit: SampleUnit,
    pub from: Option<String>,
    pub to: Option<String>,
    /// FILL values as written (NONE, NULL, PREV, LINEAR or constants).
    pub fill: Vec<String>,
    pub align: Align,
}

fn is_word(t: &TokenWithSpan, w: &str) -> bool {
    matches!(&t.token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

fn expect_word(p: &mut Parser<'_>, w: &str) -> Result<(), ParserError> {
    let t = p.next_token();
    if is_word(&t, w) {
        Ok(())
    } else {
        p.expected(w, t)
    }
}

pub(crate) fn parse_clause(
    tokens: Vec<TokenWithSpan>,
    dialect: &dyn Dialect,
) -> Result<SampleBy, ParserError> {
    let mut p = Parser::new(dialect).with_tokens_with_locations(tokens);
    p.next_token(); // SAMPLE
    p.next_token(); // BY
    let n_tok = p.next_token();
    let (every, glued_unit) = match &n_tok.token {
        Token::Number(n, _) => {
            // `1h` may tokenize as `1` `h`, or a number with the unit glued on.
            let digits: String = n.chars().take_while(|c| c.is_ascii_digit()).collect();
            let rest = n[digits.len()..].to_string();
            match digits.parse::<i64>() {
                Ok(v) if v > 0 => (v, (!rest.is_empty()).then_some(rest)),
                _ => return p.expected("a positive whole number of units", n_tok),
            }
        }
        _ => return p.expected("a sampling interval such as 1h or 15m", n_tok),
    };
    let unit_text = match glued_unit {
        Some(u) => u,
        None => {
            let u = p.next_token();
            match &u.token {
                Token::Word(w) => w.value.clone(),
                _ => return p.expected("a unit: U, T, s, m, h, d, w, M or y", u),
            }
        }
    };
    let unit = match unit_text.as_str() {
        "U" | "u" => SampleUnit::Micro,
        "T" => SampleUnit::Milli,
        "s" => SampleUnit::Second,
        "m" => SampleUnit::Minute,
        "h" => SampleUnit::Hour,
        "d" => SampleUnit::Day,
        "w" => SampleUnit::Week,
        "M" => SampleUnit::Month,
        "y" => SampleUnit::Year,
        _ => {
            return Err(ParserError::ParserError(format!(
                "unknown SAMPLE BY unit \"{unit_text}\": expected U, T, s, m, h, d, w, M or y{}",
                location(&n_tok)
            )));
        }
    };
    let mut sample = SampleBy {
        every,
        unit,
        from: None,
        to: None,
        fill: Vec::new(),
        align: Align::Calendar {
            time_zone: None,
            offset_minutes: 0,
        },
    };
    loop {
        let t = p.peek_token();
        if t.token == Token::EOF {
            break;
        }
        if is_word(&t, "FROM") {
            p.next_token();
            sample.from = Some(p.parse_literal_string()?);
            expect_word(&mut p, "TO")?;
            sample.to = Some(p.parse_literal_string()?);
        } else if is_word(&t, "FILL") {
            p.next_token();
            p.expect_token(&Token::LParen)?;
            loop {
                let v = p.next_token();
                let text = match &v.token {
                    Token::Word(w) => w.value.to_uppercase(),
                    Token::Number(n, _) => n.clone(),
                    Token::Minus => match p.next_token().token {
                        Token::Number(n, _) => format!("-{n}"),
                        _ => return p.expected("a FILL value", v),
                    },
                    _ => return p.expected("NONE, NULL, PREV, LINEAR or a number", v),
                };
                sample.fill.push(text);
                if !p.consume_token(&Token::Comma) {
                    break;
                }
            }
            p.expect_token(&Token::RParen)?;
        } else if is_word(&t, "ALIGN") {
            p.next_token();
            expect_word(&mut p, "TO")?;
            let kind = p.next_token();
            if is_word(&kind, "FIRST") {
                expect_word(&mut p, "OBSERVATION")?;
                sample.align = Align::FirstObservation;
            } else if is_word(&kind, "CALENDAR") {
                let mut time_zone = None;
                let mut offset_minutes = 0;
                loop {
                    let t = p.peek_token();
                    if is_word(&t, "TIME") {
                        p.next_token();
                        expect_word(&mut p, "ZONE")?;
                        time_zone = Some(p.parse_literal_string()?);
                    } else if is_word(&t, "WITH") {
                        p.next_token();
                        expect_word(&mut p, "OFFSET")?;
                        let at = p.peek_token();
                        let s = p.parse_literal_string()?;
                        offset_minutes = parse_offset(&s).ok_or_else(|| {
                            ParserError::ParserError(format!(
                                "invalid offset '{s}': expected +hh:mm or -hh:mm{}",
                                location(&at)
                            ))
                        })?;
                    } else {
                        break;
                    }
                }
                sample.align = Align::Calendar {
                    time_zone,
                    offset_minutes,
                };
            } else {
                return p.expected("CALENDAR or FIRST OBSERVATION", kind);
            }
        } else {
            return p.expected(
                "FROM, FILL, ALIGN TO, ORDER BY, LIMIT or the end of the statement",
                t,
            );
        }
    }
    Ok(sample)
}

fn location(t: &TokenWithSpan) -> String {
    format!(
        " at Line: {}, Column: {}",
        t.span.start.line, t.span.start.column
    )
}

fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: i64 = h.parse().ok().filter(|h: &i64| *h < 24)?;
    let m: i64 = m.parse().ok().filter(|m: &i64| *m < 60)?;
    Some(sign * (h * 60 + m))
}
