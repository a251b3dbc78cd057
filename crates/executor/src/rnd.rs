//! QuestDB's random value generators (`rnd_int()`, `rnd_symbol('a', 'b')`, ...), for
//! filling test tables the way QuestDB users' scripts do:
//! `INSERT INTO t SELECT timestamp_sequence(...), rnd_double() FROM long_sequence(n)`.
//! Every call draws a new value per row. Arguments are constants; `null_rate` (QuestDB's
//! `nanRate`) n > 0 makes about one value in n NULL, 0 none. Seeded, reproducible
//! sequences (`long_sequence(n, seed1, seed2)`) are not supported.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, FixedSizeBinaryArray, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err, plan_err};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The generators, by QuestDB's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Boolean,
    Byte,
    Short,
    Int,
    Long,
    Float,
    Double,
    Timestamp,
    Date,
    Char,
    Str,
    Symbol,
    Uuid,
    Bin,
    Ipv4,
}

const GENERATORS: [(&str, Kind); 16] = [
    ("rnd_boolean", Kind::Boolean),
    ("rnd_byte", Kind::Byte),
    ("rnd_short", Kind::Short),
    ("rnd_int", Kind::Int),
    ("rnd_long", Kind::Long),
    ("rnd_float", Kind::Float),
    ("rnd_double", Kind::Double),
    ("rnd_timestamp", Kind::Timestamp),
    ("rnd_date", Kind::Date),
    ("rnd_char", Kind::Char),
    ("rnd_str", Kind::Str),
    ("rnd_varchar", Kind::Str),
    ("rnd_symbol", Kind::Symbol),
    ("rnd_uuid4", Kind::Uuid),
    ("rnd_bin", Kind::Bin),
    ("rnd_ipv4", Kind::Ipv4),
];

/// Registers every generator in `ctx`.
pub(crate) fn register(ctx: &SessionContext) {
    for (name, kind) in GENERATORS {
        ctx.register_udf(ScalarUDF::from(RandomValues {
            name,
            kind,
            // No arguments, or constants of any type (checked per generator).
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Volatile,
            ),
        }));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RandomValues {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

/// Whether a generator takes `n` arguments, and its forms as an error spells them.
fn arity(kind: Kind, n: usize) -> (bool, &'static str) {
    match kind {
        Kind::Boolean | Kind::Char | Kind::Uuid => (n == 0, "()"),
        Kind::Byte | Kind::Short => (n == 0 || n == 2, "() or (min, max)"),
        Kind::Int | Kind::Long => (n == 0 || n == 3, "() or (min, max, null_rate)"),
        Kind::Float | Kind::Double => (n <= 1, "() or (null_rate)"),
        Kind::Timestamp => (n == 3, "(min, max, null_rate)"),
        Kind::Date => (n == 0 || n == 3, "() or (min, max, null_rate)"),
        Kind::Bin => (
            n == 0 || n == 3,
            "() or (min_length, max_length, null_rate)",
        ),
        Kind::Ipv4 => (n == 0 || n == 2, "() or ('a.b.c.d/bits', null_rate)"),
        // rnd_str also takes (min_length, max_length, null_rate).
        Kind::Str | Kind::Symbol => (
            n >= 1,
            "a list of values or (count, min_length, max_length, null_rate)",
        ),
    }
}

impl RandomValues {
    fn check_arity(&self, n: usize) -> DfResult<()> {
        match arity(self.kind, n) {
            (true, _) => Ok(()),
            (false, forms) => plan_err!("{} takes {forms} ({n} arguments given)", self.name),
        }
    }
}

impl ScalarUDFImpl for RandomValues {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        self.check_arity(args.len())?;
        Ok(match self.kind {
            Kind::Boolean => DataType::Boolean,
            Kind::Byte | Kind::Short => DataType::Int16,
            Kind::Int => DataType::Int32,
            Kind::Long => DataType::Int64,
            Kind::Float => DataType::Float32,
            Kind::Double => DataType::Float64,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Date => DataType::Date32,
            // IPv4 columns are text (docs/sql.md).
            Kind::Char | Kind::Str | Kind::Ipv4 => DataType::Utf8,
            // Dictionary-encoded, so CREATE TABLE AS makes a SYMBOL column.
            Kind::Symbol => symbol_type(),
            Kind::Uuid => DataType::FixedSizeBinary(16),
            Kind::Bin => DataType::Binary,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let constants = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Ok(s.clone()),
                ColumnarValue::Array(_) => {
                    exec_err!("the arguments of {} must be constants", self.name)
                }
            })
            .collect::<DfResult<Vec<ScalarValue>>>()?;
        let rows = args.number_rows;
        let mut rng = StdRng::from_os_rng();
        let array = generate(self.kind, self.name, &constants, rows, &mut rng)?;
        if self.kind == Kind::Symbol {
            return Ok(ColumnarValue::Array(datafusion::arrow::compute::cast(
                &array,
                &symbol_type(),
            )?));
        }
        Ok(ColumnarValue::Array(array))
    }
}

fn symbol_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

fn int_arg(name: &str, args: &[ScalarValue], i: usize) -> DfResult<i64> {
    let v = args
        .get(i)
        .map(|v| v.cast_to(&DataType::Int64))
        .transpose()?;
    match v {
        Some(ScalarValue::Int64(Some(v))) => Ok(v),
        _ => exec_err!("argument {} of {name} must be a non-NULL integer", i + 1),
    }
}

fn timestamp_arg(name: &str, args: &[ScalarValue], i: usize) -> DfResult<i64> {
    let v = args
        .get(i)
        .map(|v| match v {
            ScalarValue::Int64(_) | ScalarValue::Int32(_) => Ok(v.clone()),
            _ => v.cast_to(&DataType::Timestamp(TimeUnit::Microsecond, None)),
        })
        .transpose()?;
    match v {
        Some(ScalarValue::TimestampMicrosecond(Some(v), _)) | Some(ScalarValue::Int64(Some(v))) => {
            Ok(v)
        }
        Some(ScalarValue::Int32(Some(v))) => Ok(i64::from(v)),
        _ => exec_err!("argument {} of {name} must be a non-NULL timestamp", i + 1),
    }
}

/// Days from 1970-01-01 to 2100-01-01.
const DAYS_1970_TO_2100: i32 = 47_482;

/// A date argument (a DATE, or text or a timestamp that casts to one), as days
/// since 1970-01-01.
fn date_arg(name: &str, args: &[ScalarValue], i: usize) -> DfResult<i32> {
    match args
        .get(i)
        .map(|v| v.cast_to(&DataType::Date32))
        .transpose()
    {
        Ok(Some(ScalarValue::Date32(Some(v)))) => Ok(v),
        _ => exec_err!("argument {} of {name} must be a non-NULL date", i + 1),
    }
}

fn text_args(name: &str, args: &[ScalarValue]) -> DfResult<Vec<String>> {
    args.iter()
        .map(|v| match v.cast_to(&DataType::Utf8)? {
            ScalarValue::Utf8(Some(s)) => Ok(s),
            _ => exec_err!("the values given to {name} must not be NULL"),
        })
        .collect()
}

/// A subnet `a.b.c.d/bits` as its network address and the number of host
/// bits below it (`a.b.c.d` alone: that address, no host bits).
fn subnet_arg(name: &str, subnet: &ScalarValue) -> DfResult<(u32, u32)> {
    let ScalarValue::Utf8(Some(text)) = subnet.cast_to(&DataType::Utf8)? else {
        return exec_err!("the subnet given to {name} must not be NULL");
    };
    let (address, bits) = text.split_once('/').unwrap_or((&text, "32"));
    match (address.parse::<std::net::Ipv4Addr>(), bits.parse::<u32>()) {
        (Ok(address), Ok(bits)) if bits <= 32 => {
            let host_bits = 32 - bits;
            let network = u32::from(address) & u32::MAX.checked_shl(host_bits).unwrap_or(0);
            Ok((network, host_bits))
        }
        _ => exec_err!("{name}: '{text}' is not a subnet such as '10.0.0.0/8'"),
    }
}

/// Whether this value is NULL, at one in `rate` (0: never).
fn null_at(rng: &mut StdRng, rate: i64) -> bool {
    rate > 0 && rng.random_range(0..rate) == 0
}

fn range_checked(name: &str, lo: i64, hi: i64) -> DfResult<()> {
    if lo > hi {
        return exec_err!("{name}: min {lo} is above max {hi}");
    }
    Ok(())
}

/// A random string of upper-case letters with a length in `lo..=hi`.
fn letters(rng: &mut StdRng, lo: usize, hi: usize) -> String {
    let len = rng.random_range(lo..=hi);
    (0..len)
        .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
        .collect()
}

/// QuestDB's `(count, min_length, max_length, null_rate)`: a pool of `count`
/// strings, the same for every batch of the query (drawn from a seed made of the
/// arguments), and the share of NULLs.
fn string_pool(name: &str, args: &[ScalarValue]) -> DfResult<(Vec<String>, i64)> {
    let (count, lo, hi, rate) = (
        int_arg(name, args, 0)?,
        int_arg(name, args, 1)?,
        int_arg(name, args, 2)?,
        int_arg(name, args, 3)?,
    );
    if !(1..=1_000_000).contains(&count) || lo < 0 || hi > 10_000 {
        return exec_err!(
            "{name}: count must be 1..=1000000 and lengths 0..=10000 (got {count}, {lo}, {hi})"
        );
    }
    range_checked(name, lo, hi)?;
    let seed = (count as u64) ^ ((lo as u64) << 20) ^ ((hi as u64) << 40);
    let mut pool_rng = StdRng::seed_from_u64(seed);
    let pool = (0..count)
        .map(|_| letters(&mut pool_rng, lo as usize, hi as usize))
        .collect();
    Ok((pool, rate))
}

fn generate(
    kind: Kind,
    name: &str,
    args: &[ScalarValue],
    rows: usize,
    rng: &mut StdRng,
) -> DfResult<ArrayRef> {
    Ok(match kind {
        Kind::Boolean => Arc::new(
            (0..rows)
                .map(|_| Some(rng.random::<bool>()))
                .collect::<BooleanArray>(),
        ),
        Kind::Byte | Kind::Short => {
            let (lo, hi) = if args.is_empty() {
                if kind == Kind::Byte {
                    (0, 127)
                } else {
                    (i64::from(i16::MIN), i64::from(i16::MAX))
                }
            } else {
                (int_arg(name, args, 0)?, int_arg(name, args, 1)?)
            };
            range_checked(name, lo, hi)?;
            let (lo, hi) = (
                lo.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16,
                hi.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16,
            );
            Arc::new(
                (0..rows)
                    .map(|_| Some(rng.random_range(lo..=hi)))
                    .collect::<Int16Array>(),
            )
        }
        Kind::Int | Kind::Long => {
            let (lo, hi, rate) = if args.is_empty() {
                if kind == Kind::Int {
                    (i64::from(i32::MIN), i64::from(i32::MAX), 0)
                } else {
                    (i64::MIN, i64::MAX, 0)
                }
            } else {
                (
                    int_arg(name, args, 0)?,
                    int_arg(name, args, 1)?,
                    int_arg(name, args, 2)?,
                )
            };
            range_checked(name, lo, hi)?;
            let int_range = i64::from(i32::MIN)..=i64::from(i32::MAX);
            if kind == Kind::Int && !(int_range.contains(&lo) && int_range.contains(&hi)) {
                return exec_err!("{name}: bounds {lo}, {hi} must fit an INT");
            }
            let values = (0..rows).map(|_| {
                let v = rng.random_range(lo..=hi);
                (!null_at(rng, rate)).then_some(v)
            });
            if kind == Kind::Int {
                Arc::new(values.map(|v| v.map(|v| v as i32)).collect::<Int32Array>())
            } else {
                Arc::new(values.collect::<Int64Array>())
            }
        }
        Kind::Float | Kind::Double => {
            let rate = if args.is_empty() {
                0
            } else {
                int_arg(name, args, 0)?
            };
            let values: Vec<Option<f64>> = (0..rows)
                .map(|_| {
                    let v = rng.random::<f64>();
                    (!null_at(rng, rate)).then_some(v)
                })
                .collect();
            if kind == Kind::Float {
                Arc::new(
                    values
                        .into_iter()
                        .map(|v| v.map(|v| v as f32))
                        .collect::<Float32Array>(),
                )
            } else {
                Arc::new(values.into_iter().collect::<Float64Array>())
            }
        }
        Kind::Timestamp => {
            let (lo, hi, rate) = (
                timestamp_arg(name, args, 0)?,
                timestamp_arg(name, args, 1)?,
                int_arg(name, args, 2)?,
            );
            range_checked(name, lo, hi)?;
            Arc::new(
                (0..rows)
                    .map(|_| {
                        let v = rng.random_range(lo..=hi);
                        (!null_at(rng, rate)).then_some(v)
                    })
                    .collect::<TimestampMicrosecondArray>(),
            )
        }
        Kind::Date => {
            // Without bounds: any day from 1970 through 2099.
            let (lo, hi, rate) = match args.len() {
                0 => (0, DAYS_1970_TO_2100 - 1, 0),
                _ => (
                    date_arg(name, args, 0)?,
                    date_arg(name, args, 1)?,
                    int_arg(name, args, 2)?,
                ),
            };
            if lo > hi {
                let day = |d| ScalarValue::Date32(Some(d));
                return exec_err!("{name}: min {} is above max {}", day(lo), day(hi));
            }
            Arc::new(
                (0..rows)
                    .map(|_| {
                        let v = rng.random_range(lo..=hi);
                        (!null_at(rng, rate)).then_some(v)
                    })
                    .collect::<Date32Array>(),
            )
        }
        Kind::Char => Arc::new(
            (0..rows)
                .map(|_| Some(letters(rng, 1, 1)))
                .collect::<StringArray>(),
        ),
        Kind::Str | Kind::Symbol => {
            let numeric = args.iter().all(|a| a.data_type().is_integer());
            if numeric && args.len() == 4 {
                let (pool, rate) = string_pool(name, args)?;
                Arc::new(
                    (0..rows)
                        .map(|_| {
                            let v = &pool[rng.random_range(0..pool.len())];
                            (!null_at(rng, rate)).then(|| v.clone())
                        })
                        .collect::<StringArray>(),
                )
            } else if numeric && args.len() == 3 && kind == Kind::Str {
                let (lo, hi, rate) = (
                    int_arg(name, args, 0)?,
                    int_arg(name, args, 1)?,
                    int_arg(name, args, 2)?,
                );
                if lo < 0 || hi > 10_000 {
                    return exec_err!("{name}: lengths must be 0..=10000");
                }
                range_checked(name, lo, hi)?;
                Arc::new(
                    (0..rows)
                        .map(|_| {
                            let v = letters(rng, lo as usize, hi as usize);
                            (!null_at(rng, rate)).then_some(v)
                        })
                        .collect::<StringArray>(),
                )
            } else {
                let values = text_args(name, args)?;
                Arc::new(
                    (0..rows)
                        .map(|_| Some(values[rng.random_range(0..values.len())].as_str()))
                        .collect::<StringArray>(),
                )
            }
        }
        Kind::Uuid => Arc::new(FixedSizeBinaryArray::try_from_iter((0..rows).map(|_| {
            let mut b: [u8; 16] = rng.random();
            // Version 4, RFC 4122 variant.
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            b
        }))?),
        Kind::Ipv4 => {
            let (network, host_bits, rate) = match args {
                [] => (0u32, 32u32, 0),
                [subnet, _] => {
                    let (network, host_bits) = subnet_arg(name, subnet)?;
                    (network, host_bits, int_arg(name, args, 1)?)
                }
                _ => return plan_err!("{name} takes () or ('a.b.c.d/bits', null_rate)"),
            };
            let host_mask = u32::MAX.checked_shr(32 - host_bits).unwrap_or(0);
            Arc::new(
                (0..rows)
                    .map(|_| {
                        (!null_at(rng, rate)).then(|| {
                            let address = network | (rng.random::<u32>() & host_mask);
                            std::net::Ipv4Addr::from(address).to_string()
                        })
                    })
                    .collect::<StringArray>(),
            )
        }
        Kind::Bin => {
            let (lo, hi, rate) = if args.is_empty() {
                (8, 16, 0)
            } else {
                (
                    int_arg(name, args, 0)?,
                    int_arg(name, args, 1)?,
                    int_arg(name, args, 2)?,
                )
            };
            if lo < 0 || hi > 1_000_000 {
                return exec_err!("{name}: lengths must be 0..=1000000");
            }
            range_checked(name, lo, hi)?;
            let values: Vec<Option<Vec<u8>>> = (0..rows)
                .map(|_| {
                    let len = rng.random_range(lo..=hi) as usize;
                    let v: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                    (!null_at(rng, rate)).then_some(v)
                })
                .collect();
            Arc::new(values.iter().map(|v| v.as_deref()).collect::<BinaryArray>())
        }
    })
}
