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
use datafusion::arrow::array::{Decimal128Array, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{Result as DfResult, ScalarValue, plan_err};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `Err` of 22023 (invalid_parameter_value): an argument a generator cannot use.
macro_rules! invalid_argument {
    ($($arg:tt)*) => {
        Err(crate::provider::to_df(crate::error::ExecError::new(
            crate::error::sqlstate::INVALID_PARAMETER_VALUE,
            format!($($arg)*),
        )))
    };
}

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
    DoubleArray,
    SymbolWeighted,
    SymbolZipf,
    TimestampNs,
    Decimal,
}

const GENERATORS: [(&str, Kind); 21] = [
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
    ("rnd_double_array", Kind::DoubleArray),
    ("rnd_symbol_weighted", Kind::SymbolWeighted),
    ("rnd_symbol_zipf", Kind::SymbolZipf),
    ("rnd_timestamp_ns", Kind::TimestampNs),
    ("rnd_decimal", Kind::Decimal),
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
        Kind::Timestamp | Kind::TimestampNs => (n == 3, "(min, max, null_rate)"),
        Kind::DoubleArray => (
            n >= 1,
            "(dims), (dims, nan_rate), (dims, nan_rate, max_length) or (dims, nan_rate, 0, \
             length1, ...)",
        ),
        Kind::SymbolWeighted => (
            n >= 2 && n.is_multiple_of(2),
            "pairs of a value and its weight",
        ),
        Kind::SymbolZipf => (n >= 2, "(value1, value2, ..., alpha) or (count, alpha)"),
        Kind::Decimal => (n == 3, "(precision, scale, null_rate)"),
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
            Kind::Symbol | Kind::SymbolWeighted | Kind::SymbolZipf => symbol_type(),
            Kind::TimestampNs => DataType::Timestamp(TimeUnit::Nanosecond, None),
            // Their types depend on their first arguments: return_field_from_args.
            Kind::DoubleArray => crate::double_array::arrow_type(1),
            Kind::Decimal => DataType::Decimal128(38, 10),
            Kind::Uuid => DataType::FixedSizeBinary(16),
            Kind::Bin => DataType::Binary,
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let literal = |i: usize| literal_int(self.name, args.scalar_arguments, i);
        let t = match self.kind {
            Kind::DoubleArray => {
                self.check_arity(types.len())?;
                let dims = literal(0)?;
                if !(1..=MAX_ARRAY_DIMS).contains(&dims) {
                    return plan_err!(
                        "{}: the number of dimensions must be 1 to {MAX_ARRAY_DIMS}, got {dims}",
                        self.name
                    );
                }
                crate::double_array::arrow_type(dims as usize)
            }
            Kind::Decimal => {
                self.check_arity(types.len())?;
                let (precision, scale) = (literal(0)?, literal(1)?);
                if !(1..=38).contains(&precision) || !(0..=precision).contains(&scale) {
                    return plan_err!(
                        "{}: precision must be 1 to 38 and scale 0 to the precision, got \
                         ({precision}, {scale})",
                        self.name
                    );
                }
                DataType::Decimal128(precision as u8, scale as i8)
            }
            _ => self.return_type(&types)?,
        };
        Ok(Arc::new(Field::new(self.name, t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let constants = args
            .args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Ok(s.clone()),
                ColumnarValue::Array(_) => {
                    invalid_argument!("the arguments of {} must be constants", self.name)
                }
            })
            .collect::<DfResult<Vec<ScalarValue>>>()?;
        let rows = args.number_rows;
        let mut rng = StdRng::from_os_rng();
        let array = generate(self.kind, self.name, &constants, rows, &mut rng)?;
        if matches!(
            self.kind,
            Kind::Symbol | Kind::SymbolWeighted | Kind::SymbolZipf
        ) {
            return Ok(ColumnarValue::Array(datafusion::arrow::compute::cast(
                &array,
                &symbol_type(),
            )?));
        }
        Ok(ColumnarValue::Array(array))
    }
}

/// The most dimensions `rnd_double_array` makes.
const MAX_ARRAY_DIMS: i64 = 16;

/// The most elements one `rnd_double_array` value may have.
const MAX_ARRAY_ELEMENTS: i64 = 1 << 24;

/// An integer literal argument, for a generator whose type depends on it.
fn literal_int(name: &str, args: &[Option<&ScalarValue>], i: usize) -> DfResult<i64> {
    match args.get(i).copied().flatten() {
        Some(v) if v.data_type().is_integer() => match v.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(n)) => Ok(n),
            _ => plan_err!("argument {} of {name} must not be NULL", i + 1),
        },
        _ => plan_err!("argument {} of {name} must be an integer literal", i + 1),
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
        _ => invalid_argument!("argument {} of {name} must be a non-NULL integer", i + 1),
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
        _ => invalid_argument!("argument {} of {name} must be a non-NULL timestamp", i + 1),
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
        _ => invalid_argument!("argument {} of {name} must be a non-NULL date", i + 1),
    }
}

fn text_args(name: &str, args: &[ScalarValue]) -> DfResult<Vec<String>> {
    args.iter()
        .map(|v| match v.cast_to(&DataType::Utf8)? {
            ScalarValue::Utf8(Some(s)) => Ok(s),
            _ => invalid_argument!("the values given to {name} must not be NULL"),
        })
        .collect()
}

/// A subnet `a.b.c.d/bits` as its network address and the number of host
/// bits below it (`a.b.c.d` alone: that address, no host bits).
fn subnet_arg(name: &str, subnet: &ScalarValue) -> DfResult<(u32, u32)> {
    let ScalarValue::Utf8(Some(text)) = subnet.cast_to(&DataType::Utf8)? else {
        return invalid_argument!("the subnet given to {name} must not be NULL");
    };
    let (address, bits) = text.split_once('/').unwrap_or((&text, "32"));
    match (address.parse::<std::net::Ipv4Addr>(), bits.parse::<u32>()) {
        (Ok(address), Ok(bits)) if bits <= 32 => {
            let host_bits = 32 - bits;
            let network = u32::from(address) & u32::MAX.checked_shl(host_bits).unwrap_or(0);
            Ok((network, host_bits))
        }
        _ => invalid_argument!("{name}: '{text}' is not a subnet such as '10.0.0.0/8'"),
    }
}

/// `rows` values drawn uniformly from `lo..=hi`, about one in `rate` NULL.
fn draws<T>(rng: &mut StdRng, rows: usize, lo: T, hi: T, rate: i64) -> Vec<Option<T>>
where
    T: rand::distr::uniform::SampleUniform + PartialOrd + Copy,
{
    (0..rows)
        .map(|_| {
            let v = rng.random_range(lo..=hi);
            (!null_at(rng, rate)).then_some(v)
        })
        .collect()
}

/// Whether this value is NULL, at one in `rate` (0: never).
fn null_at(rng: &mut StdRng, rate: i64) -> bool {
    rate > 0 && rng.random_range(0..rate) == 0
}

fn range_checked(name: &str, lo: i64, hi: i64) -> DfResult<()> {
    if lo > hi {
        return invalid_argument!("{name}: min {lo} is above max {hi}");
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
        return invalid_argument!(
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
                return invalid_argument!("{name}: bounds {lo}, {hi} must fit an INT");
            }
            let values = draws(rng, rows, lo, hi, rate).into_iter();
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
                draws(rng, rows, lo, hi, rate)
                    .into_iter()
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
                return invalid_argument!("{name}: min {} is above max {}", day(lo), day(hi));
            }
            Arc::new(
                draws(rng, rows, lo, hi, rate)
                    .into_iter()
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
                    return invalid_argument!("{name}: lengths must be 0..=10000");
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
        Kind::TimestampNs => {
            let (lo, hi, rate) = (
                timestamp_ns_arg(name, args, 0)?,
                timestamp_ns_arg(name, args, 1)?,
                int_arg(name, args, 2)?,
            );
            range_checked(name, lo, hi)?;
            Arc::new(
                draws(rng, rows, lo, hi, rate)
                    .into_iter()
                    .collect::<TimestampNanosecondArray>(),
            )
        }
        Kind::Decimal => {
            let (precision, scale, rate) = (
                int_arg(name, args, 0)?,
                int_arg(name, args, 1)?,
                int_arg(name, args, 2)?,
            );
            // Checked when the type was settled: 1..=38 digits.
            let below = 10i128.pow(precision.clamp(1, 38) as u32);
            Arc::new(
                draws(rng, rows, 0, below - 1, rate)
                    .into_iter()
                    .collect::<Decimal128Array>()
                    .with_precision_and_scale(precision as u8, scale as i8)?,
            )
        }
        Kind::SymbolWeighted => {
            let mut values = Vec::with_capacity(args.len() / 2);
            let mut cumulative = Vec::with_capacity(args.len() / 2);
            let mut total = 0.0;
            for pair in args.chunks(2) {
                let [value, weight] = pair else {
                    return plan_err!("{name} takes pairs of a value and its weight");
                };
                values.push(text_args(name, std::slice::from_ref(value))?.remove(0));
                let weight = match weight.cast_to(&DataType::Float64)? {
                    ScalarValue::Float64(Some(w)) if w >= 0.0 && w.is_finite() => w,
                    other => {
                        return invalid_argument!(
                            "{name}: a weight must be a number of 0 or more, got {other}"
                        );
                    }
                };
                total += weight;
                cumulative.push(total);
            }
            if total <= 0.0 {
                return invalid_argument!("{name}: the weights add up to 0");
            }
            pick_by_weight(&values, &cumulative, rows, rng)
        }
        Kind::SymbolZipf => {
            let (values, alpha) = match args {
                [count, _] if count.data_type().is_integer() => {
                    let count = int_arg(name, args, 0)?;
                    if !(1..=1_000_000).contains(&count) {
                        return invalid_argument!("{name}: count must be 1..=1000000, got {count}");
                    }
                    ((0..count).map(|i| format!("S{i}")).collect(), &args[1])
                }
                [values @ .., alpha] => (text_args(name, values)?, alpha),
                [] => return plan_err!("{name} takes values and an alpha"),
            };
            let alpha = match alpha.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(Some(a)) if a > 0.0 && a.is_finite() => a,
                other => return invalid_argument!("{name}: alpha must be above 0, got {other}"),
            };
            // The k-th value (from 1) weighs 1 / k^alpha.
            let mut total = 0.0;
            let cumulative: Vec<f64> = (1..=values.len())
                .map(|k| {
                    total += 1.0 / (k as f64).powf(alpha);
                    total
                })
                .collect();
            pick_by_weight(&values, &cumulative, rows, rng)
        }
        Kind::DoubleArray => random_arrays(name, args, rows, rng)?,
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
                return invalid_argument!("{name}: lengths must be 0..=1000000");
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

/// A timestamp argument in nanoseconds (TIMESTAMP_NS, or a TIMESTAMP, text or
/// a number of microseconds taken as TIMESTAMP's).
fn timestamp_ns_arg(name: &str, args: &[ScalarValue], i: usize) -> DfResult<i64> {
    if let Some(ScalarValue::TimestampNanosecond(Some(v), _)) = args.get(i) {
        return Ok(*v);
    }
    timestamp_arg(name, args, i)?.checked_mul(1000).map_or_else(
        || invalid_argument!("argument {} of {name} is out of range", i + 1),
        Ok,
    )
}

/// One of `values` per row, the i-th with the probability of its share of
/// `cumulative` (the running totals of the weights).
fn pick_by_weight(
    values: &[String],
    cumulative: &[f64],
    rows: usize,
    rng: &mut StdRng,
) -> ArrayRef {
    let total = cumulative.last().copied().unwrap_or(0.0);
    Arc::new(
        (0..rows)
            .map(|_| {
                let x = rng.random::<f64>() * total;
                let i = cumulative
                    .partition_point(|c| *c <= x)
                    .min(values.len() - 1);
                Some(values[i].as_str())
            })
            .collect::<StringArray>(),
    )
}

/// `rnd_double_array(dims [, nan_rate [, max_length]])`: arrays of random
/// lengths (1 to `max_length`, 16 by default, per dimension) of numbers in
/// [0, 1), NaN at one in `nan_rate`; `(dims, nan_rate, 0, length1, ...)`:
/// arrays of those lengths.
fn random_arrays(
    name: &str,
    args: &[ScalarValue],
    rows: usize,
    rng: &mut StdRng,
) -> DfResult<ArrayRef> {
    let dims = int_arg(name, args, 0)?;
    let rate = if args.len() > 1 {
        int_arg(name, args, 1)?
    } else {
        0
    };
    let max_length = if args.len() > 2 {
        int_arg(name, args, 2)?
    } else {
        16
    };
    let fixed: Vec<i64> = (3..args.len())
        .map(|i| int_arg(name, args, i))
        .collect::<DfResult<_>>()?;
    if !fixed.is_empty() && (max_length != 0 || fixed.len() as i64 != dims) {
        return invalid_argument!(
            "{name}: fixed lengths come after a 0 in third place, one per dimension \
             ({dims} expected, {} given)",
            fixed.len()
        );
    }
    let largest: Vec<i64> = if fixed.is_empty() {
        vec![max_length; dims as usize]
    } else {
        fixed.clone()
    };
    let elements = largest
        .iter()
        .try_fold(1i64, |n, l| (*l >= 0).then(|| n.saturating_mul(*l)));
    match elements {
        Some(n) if n <= MAX_ARRAY_ELEMENTS && (fixed.is_empty() == (max_length > 0)) => {}
        _ => {
            return invalid_argument!(
                "{name}: lengths must be positive and an array at most {MAX_ARRAY_ELEMENTS} \
                 elements (lengths {largest:?})"
            );
        }
    }
    let mut values = Vec::with_capacity(rows);
    for _ in 0..rows {
        let lens: Vec<u32> = if fixed.is_empty() {
            (0..dims)
                .map(|_| rng.random_range(1..=max_length) as u32)
                .collect()
        } else {
            fixed.iter().map(|l| *l as u32).collect()
        };
        let count: usize = lens.iter().map(|l| *l as usize).product();
        let elements = (0..count)
            .map(|_| {
                let v = rng.random::<f64>();
                Some(if null_at(rng, rate) { f64::NAN } else { v })
            })
            .collect();
        values.push(Some(crate::double_array::Shaped {
            lens,
            values: elements,
        }));
    }
    crate::double_array::lists_from_shaped(values, dims as usize).map_err(crate::provider::to_df)
}
