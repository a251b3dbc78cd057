//! PostgreSQL catalog functions that client libraries call on connect and
//! when they reflect a table, and that `datafusion-pg-catalog` does not have:
//!
//! - `to_regtype(name)`: psycopg 3 looks types up by name (SQLAlchemy asks for
//!   `hstore` on every new connection); the OID of a built-in type, NULL for a
//!   type Tidemark does not have.
//! - `pg_get_serial_sequence(table, column)`: SQLAlchemy's column reflection;
//!   always NULL, since no Tidemark column is backed by a sequence.
//! - `pg_get_function_result`/`pg_get_function_arguments`: psql's `\df`; NULL,
//!   there are no user-defined functions. `pg_get_viewdef`: NULL, no views.
//! - `pg_size_pretty(bytes)`: psql's `\dt+`.
//! - `pg_advisory_unlock_all()`: nothing to release (asyncpg's pool reset).
//! - `obj_description`, `col_description`, `shobj_description`: psql's `\d+`
//!   and `\dt+`; NULL, Tidemark keeps no comments.
//! - `pg_collation_is_visible(oid)`, `pg_function_is_visible(oid)`,
//!   `pg_type_is_visible(oid)` and the other `pg_*_is_visible`: true,
//!   everything is on the search path.
//! - `pg_tablespace_location(oid)`: empty, the default tablespace's.
//! - `json_build_object(key, value, ...)`: a JSON object as text.
//! - `pg_typeof(any)`: the PostgreSQL name of the argument's type
//!   (`integer`, `timestamp without time zone`; SYMBOL is `text`).
//! - `current_setting(name [, missing_ok])`: a setting of the session.
//! - `tidemark_expand_array(vector)`: the rows of PostgreSQL's
//!   `information_schema._pg_expandarray` (pgJDBC's `getPrimaryKeys`,
//!   `getIndexInfo`) as a list of `{x, n}` structs, which `catalog_rewrite`
//!   unnests: each element of a catalog vector column (`pg_index.indkey`, kept
//!   as space-separated numbers) with its 1-based position.
//! - `format_type(oid, typmod)`: the library's, with PostgreSQL's
//!   `numeric(p,0)`.
//! - `tidemark_sql_type_name(arrow_type)`, `tidemark_udt_name(arrow_type)`:
//!   PostgreSQL's names of a column's type, for `information_schema.columns`
//!   (see `catalog_rewrite`).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, ListArray, StringArray, StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::execution::context::SessionContext;

use crate::settings::Settings;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, create_udf,
};

/// `current_setting(name [, missing_ok])` over a copy of the session's
/// settings as the statement starts (Grafana reads `search_path` with it):
/// 42704 for an unknown name, NULL instead when `missing_ok` is true.
pub(crate) fn register_current_setting(ctx: &SessionContext, settings: Settings) {
    let settings = Arc::new(settings);
    let one = move |args: &[ColumnarValue]| {
        let args = ColumnarValue::values_to_arrays(args)?;
        let names = text_arg(&args[0])?;
        let missing_ok = args
            .get(1)
            .and_then(|a| a.as_any().downcast_ref::<BooleanArray>().cloned());
        let mut values = Vec::with_capacity(names.len());
        for row in 0..names.len() {
            if names.is_null(row) {
                values.push(None);
                continue;
            }
            match settings.get(names.value(row)) {
                Ok(v) => values.push(Some(v)),
                Err(_) if missing_ok.as_ref().is_some_and(|m| m.value(row)) => values.push(None),
                Err(e) => return Err(datafusion::error::DataFusionError::External(Box::new(e))),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(values))))
    };
    ctx.register_udf(ScalarUDF::from(CurrentSetting {
        signature: Signature::one_of(
            vec![
                datafusion::logical_expr::TypeSignature::Exact(vec![DataType::Utf8]),
                datafusion::logical_expr::TypeSignature::Exact(vec![
                    DataType::Utf8,
                    DataType::Boolean,
                ]),
            ],
            Volatility::Stable,
        ),
        run: Arc::new(one),
    }));
}

type SettingLookup = dyn Fn(&[ColumnarValue]) -> DfResult<ColumnarValue> + Send + Sync;

struct CurrentSetting {
    signature: Signature,
    run: Arc<SettingLookup>,
}

impl std::fmt::Debug for CurrentSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("current_setting")
    }
}

impl PartialEq for CurrentSetting {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.run, &other.run)
    }
}

impl Eq for CurrentSetting {}

impl std::hash::Hash for CurrentSetting {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "current_setting".hash(state);
    }
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        (self.run)(&args.args)
    }
}

/// PostgreSQL's names of the type whose Arrow name is `arrow` (as DataFusion's
/// `information_schema.columns.data_type` gives it): the SQL name that
/// `information_schema` shows (`timestamp without time zone`) and the internal
/// `udt_name` (`timestamp`). SYMBOL columns (dictionary-encoded) are `text`.
pub(crate) fn pg_type_names(arrow: &str) -> (&'static str, &'static str) {
    let base = arrow.split('(').next().unwrap_or(arrow);
    match base {
        "Boolean" => ("boolean", "bool"),
        "Int8" | "Int16" | "UInt8" => ("smallint", "int2"),
        "Int32" | "UInt16" => ("integer", "int4"),
        "Int64" | "UInt32" | "UInt64" => ("bigint", "int8"),
        "Float16" | "Float32" => ("real", "float4"),
        "Float64" => ("double precision", "float8"),
        "Utf8" | "LargeUtf8" | "Utf8View" | "Dictionary" => ("text", "text"),
        "Date32" | "Date64" => ("date", "date"),
        "Timestamp" if arrow.contains(',') => ("timestamp with time zone", "timestamptz"),
        "Timestamp" => ("timestamp without time zone", "timestamp"),
        "Time32" | "Time64" => ("time without time zone", "time"),
        "Interval" | "Duration" => ("interval", "interval"),
        "Decimal32" | "Decimal64" | "Decimal128" | "Decimal256" => ("numeric", "numeric"),
        "FixedSizeBinary" if arrow == "FixedSizeBinary(16)" => ("uuid", "uuid"),
        "Binary" | "LargeBinary" | "BinaryView" | "FixedSizeBinary" => ("bytea", "bytea"),
        // DOUBLE[] columns (lists of Float64, however nested); other lists are results.
        "List" | "LargeList" | "FixedSizeList" if arrow.contains("Float64") => ("ARRAY", "_float8"),
        "List" | "LargeList" | "FixedSizeList" => ("ARRAY", "_text"),
        _ => ("USER-DEFINED", "text"),
    }
}

/// Registers the functions above in `ctx`.
pub(crate) fn register(ctx: &SessionContext) {
    for (name, udt) in [
        ("tidemark_sql_type_name", false),
        ("tidemark_udt_name", true),
    ] {
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Utf8],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(move |args: &[ColumnarValue]| {
                let args = ColumnarValue::values_to_arrays(args)?;
                let names: StringArray = text_arg(&args[0])?
                    .iter()
                    .map(|t| {
                        t.map(|t| {
                            let (sql, udt_name) = pg_type_names(t);
                            if udt { udt_name } else { sql }
                        })
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(names)))
            }),
        ));
    }
    ctx.register_udf(create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let args = ColumnarValue::values_to_arrays(args)?;
            let names = text_arg(&args[0])?;
            let oids: Int32Array = names.iter().map(|n| n.and_then(builtin_type_oid)).collect();
            Ok(ColumnarValue::Array(Arc::new(oids)))
        }),
    ));
    // No Tidemark column is backed by a sequence: PostgreSQL answers NULL.
    ctx.register_udf(ScalarUDF::from(NullText::new("pg_get_serial_sequence")));
    // Tidemark has no views: no view has a definition (SQLAlchemy's
    // `get_view_definition` asks for one by name and finds no view).
    ctx.register_udf(ScalarUDF::from(NullText::new("pg_get_viewdef")));
    // Tidemark has no user-defined functions; psql's `\df` lists none.
    ctx.register_udf(ScalarUDF::from(NullText::new("pg_get_function_result")));
    ctx.register_udf(ScalarUDF::from(NullText::new("pg_get_function_arguments")));
    // Tidemark keeps no comments (COMMENT ON): psql's `\d+` and `\dt+` show
    // empty descriptions, as PostgreSQL does for objects without one.
    for name in ["obj_description", "col_description", "shobj_description"] {
        ctx.register_udf(ScalarUDF::from(NullText::new(name)));
    }
    ctx.register_udf(create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let args = ColumnarValue::values_to_arrays(args)?;
            let Some(sizes) = args[0]
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
            else {
                return exec_err!("pg_size_pretty expects a bigint");
            };
            let pretty: StringArray = sizes.iter().map(|n| n.map(size_pretty)).collect();
            Ok(ColumnarValue::Array(Arc::new(pretty)))
        }),
    ));
    // Every table lives in the root directory: the default tablespace, whose
    // location PostgreSQL gives as empty text (psql's `\db`).
    ctx.register_udf(create_udf(
        "pg_tablespace_location",
        vec![DataType::Int32],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|args: &[ColumnarValue]| {
            let oids = &ColumnarValue::values_to_arrays(args)?[0];
            let locations: StringArray = (0..oids.len())
                .map(|i| (!oids.is_null(i)).then_some(""))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(locations)))
        }),
    ));
    // Tidemark has no advisory locks (`pg_advisory_lock` does not exist): a
    // session holds none, and releasing all of them does nothing. asyncpg's
    // pool sends it whenever it takes a connection back. PostgreSQL's is void.
    ctx.register_udf(create_udf(
        "pg_advisory_unlock_all",
        vec![],
        DataType::Null,
        Volatility::Volatile,
        Arc::new(|_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::Null))
        }),
    ));
    // One schema of user objects and the catalog's: everything is visible.
    for name in [
        "pg_collation_is_visible",
        "pg_conversion_is_visible",
        "pg_function_is_visible",
        "pg_opclass_is_visible",
        "pg_operator_is_visible",
        "pg_opfamily_is_visible",
        "pg_statistics_obj_is_visible",
        "pg_ts_config_is_visible",
        "pg_ts_dict_is_visible",
        "pg_ts_parser_is_visible",
        "pg_ts_template_is_visible",
        "pg_type_is_visible",
    ] {
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Int32],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(|args: &[ColumnarValue]| {
                let rows = ColumnarValue::values_to_arrays(args)?[0].len();
                let all: BooleanArray = std::iter::repeat_n(Some(true), rows).collect();
                Ok(ColumnarValue::Array(Arc::new(all)))
            }),
        ));
    }
    ctx.register_udf(ScalarUDF::from(JsonBuildObject::new()));
    ctx.register_udf(ScalarUDF::from(PgTypeof::new()));
    ctx.register_udf(create_udf(
        EXPAND_ARRAY,
        vec![DataType::Utf8],
        expanded_array_type(),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let args = ColumnarValue::values_to_arrays(args)?;
            Ok(ColumnarValue::Array(Arc::new(expand_vectors(text_arg(
                &args[0],
            )?)?)))
        }),
    ));
}

/// The function `catalog_rewrite` calls for `information_schema._pg_expandarray`.
pub(crate) const EXPAND_ARRAY: &str = "tidemark_expand_array";

/// The fields of `_pg_expandarray`'s rows: an element and its 1-based position.
fn expanded_array_fields() -> Fields {
    Fields::from(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("n", DataType::Int32, false),
    ])
}

fn expanded_array_type() -> DataType {
    DataType::new_list(DataType::Struct(expanded_array_fields()), true)
}

/// Each vector (`"1 3"`, as the catalog keeps `int2vector` columns) as the list
/// `[{x: 1, n: 1}, {x: 3, n: 2}]`; NULL stays NULL, an element that is not a
/// number is an error.
fn expand_vectors(vectors: &StringArray) -> DfResult<ListArray> {
    let mut elements = Vec::new();
    let mut positions = Vec::new();
    let mut offsets = vec![0i32];
    let mut valid = Vec::with_capacity(vectors.len());
    for vector in vectors.iter() {
        if let Some(vector) = vector {
            for (i, word) in vector.split_ascii_whitespace().enumerate() {
                let Ok(element) = word.parse::<i32>() else {
                    return exec_err!("_pg_expandarray: {word:?} is not an integer");
                };
                elements.push(element);
                positions.push(i32::try_from(i + 1).unwrap_or(i32::MAX));
            }
        }
        valid.push(vector.is_some());
        offsets.push(i32::try_from(elements.len()).unwrap_or(i32::MAX));
    }
    let rows = StructArray::try_new(
        expanded_array_fields(),
        vec![
            Arc::new(Int32Array::from(elements)) as ArrayRef,
            Arc::new(Int32Array::from(positions)),
        ],
        None,
    )?;
    Ok(ListArray::try_new(
        Arc::new(Field::new_list_field(
            DataType::Struct(expanded_array_fields()),
            true,
        )),
        OffsetBuffer::new(offsets.into()),
        Arc::new(rows),
        Some(NullBuffer::from(valid)),
    )?)
}

/// A byte count as PostgreSQL's `pg_size_pretty` writes it: bytes below 10 kB,
/// then kB, MB, GB, TB, each unit while the value stays below 10,240 of it
/// (rounded half away from zero).
pub(crate) fn size_pretty(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes.unsigned_abs() < 10 * 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    for unit in UNITS {
        if value.abs() < 10.0 * 1024.0 - 0.5 || unit == "PB" {
            return format!("{} {unit}", value.round() as i64);
        }
        value /= 1024.0;
    }
    format!("{bytes} bytes")
}

fn text_arg(a: &ArrayRef) -> DfResult<&StringArray> {
    match a.as_any().downcast_ref::<StringArray>() {
        Some(s) => Ok(s),
        None => exec_err!("expected a text argument, got {}", a.data_type()),
    }
}

/// The OID PostgreSQL gives a built-in type name (its `pg_type.oid`), for the
/// types Tidemark has and their usual spellings.
fn builtin_type_oid(name: &str) -> Option<i32> {
    let name = name.trim().trim_start_matches("pg_catalog.").to_lowercase();
    let name = name.split('(').next().unwrap_or(&name).trim();
    Some(match name {
        "bool" | "boolean" => 16,
        "bytea" => 17,
        "char" => 18,
        "name" => 19,
        "int8" | "bigint" => 20,
        "int2" | "smallint" => 21,
        "int4" | "int" | "integer" => 23,
        "text" => 25,
        "oid" => 26,
        "json" => 114,
        "float4" | "real" => 700,
        "float8" | "double precision" => 701,
        "bpchar" | "character" => 1042,
        "varchar" | "character varying" => 1043,
        "date" => 1082,
        "time" | "time without time zone" => 1083,
        "timestamp" | "timestamp without time zone" => 1114,
        "timestamptz" | "timestamp with time zone" => 1184,
        "interval" => 1186,
        "numeric" | "decimal" => 1700,
        "uuid" => 2950,
        "jsonb" => 3802,
        _ => return None,
    })
}

/// A catalog function whose answer is always NULL text (see `register`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct NullText {
    name: &'static str,
    signature: Signature,
}

impl NullText {
    fn new(name: &'static str) -> Self {
        NullText {
            name,
            signature: Signature::variadic_any(Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for NullText {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Array(Arc::new(StringArray::new_null(
            args.number_rows,
        ))))
    }
}

/// `pg_typeof(value)`: PostgreSQL's name of the value's type, as
/// `information_schema` names a column of that type. PostgreSQL returns a
/// `regtype`, which prints as this name; here it is text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PgTypeof {
    signature: Signature,
}

impl PgTypeof {
    fn new() -> Self {
        PgTypeof {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for PgTypeof {
    fn name(&self) -> &str {
        "pg_typeof"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [value] = args.args.as_slice() else {
            return exec_err!("pg_typeof takes one argument");
        };
        // Text marked as another PostgreSQL type (a JSON column) names that type.
        let marked = args
            .arg_fields
            .first()
            .and_then(|f| f.metadata().get(crate::types::PG_TYPE_METADATA))
            .cloned();
        let name = match marked {
            Some(t) => t,
            None => {
                let t = value.data_type();
                let element = crate::types::innermost_element(&t);
                let name = pg_type_names(&element.to_string()).0;
                // An array names its element type: `bigint[]`, however many dimensions.
                if element == &t {
                    name.to_string()
                } else {
                    format!("{name}[]")
                }
            }
        };
        Ok(ColumnarValue::Scalar(
            datafusion::common::ScalarValue::Utf8(Some(name)),
        ))
    }
}

/// `format_type(oid, typmod)`: datafusion-pg-catalog's `library` function,
/// except for a NUMERIC of scale 0, which PostgreSQL writes `numeric(p,0)`
/// (psql's `\d`) and the library `numeric(p)`.
pub(crate) fn format_type_udf(library: ScalarUDF) -> ScalarUDF {
    ScalarUDF::new_from_impl(FormatType(library))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FormatType(ScalarUDF);

impl ScalarUDFImpl for FormatType {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn signature(&self) -> &Signature {
        self.0.signature()
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        self.0.return_type(args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::Int64Type;
        let rows = args.number_rows;
        let arrays = crate::call_args::arrays_of(&args)?;
        let [oids, typmods] = arrays.as_slice() else {
            return exec_err!("format_type takes two arguments");
        };
        let oids = datafusion::arrow::compute::cast(oids, &DataType::Int64)?;
        let typmods = datafusion::arrow::compute::cast(typmods, &DataType::Int64)?;
        let (oids, typmods) = (
            oids.as_primitive::<Int64Type>(),
            typmods.as_primitive::<Int64Type>(),
        );
        let written = self.0.invoke_with_args(args)?.into_array(rows)?;
        let written = written.as_string::<i32>();
        let fixed: StringArray = (0..written.len())
            .map(|i| {
                let typmod = (typmods.is_valid(i) && oids.is_valid(i) && oids.value(i) == 1700)
                    .then(|| typmods.value(i) - 4)
                    .filter(|m| *m >= 0 && m & 0xffff == 0);
                match typmod {
                    Some(m) => Some(format!("numeric({},0)", (m >> 16) & 0xffff)),
                    None => written.is_valid(i).then(|| written.value(i).to_string()),
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(fixed)))
    }
}

/// `json_build_object(k1, v1, k2, v2, ...)`: keys as text, values as JSON
/// (numbers and booleans bare, NULL as `null`, anything else as a string).
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl JsonBuildObject {
    fn new() -> Self {
        JsonBuildObject {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    /// Text marked as `json`: drivers decode it (psycopg gives a dict).
    fn return_field_from_args(
        &self,
        _args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> DfResult<datafusion::arrow::datatypes::FieldRef> {
        let field = datafusion::arrow::datatypes::Field::new(self.name(), DataType::Utf8, true)
            .with_metadata(
                [(
                    crate::types::PG_TYPE_METADATA.to_string(),
                    "json".to_string(),
                )]
                .into(),
            );
        Ok(Arc::new(field))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return exec_err!("json_build_object: argument list must have even number of elements");
        }
        let rows = args.number_rows;
        let arrays = crate::call_args::arrays_of(&args)?;
        let options = FormatOptions::default();
        let formatters: Vec<ArrayFormatter> = arrays
            .iter()
            .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
            .collect::<Result<_, _>>()?;
        let objects: StringArray = (0..rows)
            .map(|row| {
                let mut out = String::from("{");
                for pair in 0..arrays.len() / 2 {
                    let (k, v) = (2 * pair, 2 * pair + 1);
                    if pair > 0 {
                        out.push_str(", ");
                    }
                    if is_null(arrays[k].as_ref(), row) {
                        return Err(datafusion::error::DataFusionError::Execution(
                            "json_build_object: null value not allowed for object key".into(),
                        ));
                    }
                    out.push_str(&json_string(&formatters[k].value(row).to_string()));
                    out.push_str(" : ");
                    let value = arrays[v].as_ref();
                    if is_null(value, row) {
                        out.push_str("null");
                    } else if value.data_type().is_numeric()
                        || value.data_type() == &DataType::Boolean
                    {
                        out.push_str(&formatters[v].value(row).to_string());
                    } else {
                        out.push_str(&json_string(&formatters[v].value(row).to_string()));
                    }
                }
                out.push('}');
                Ok(Some(out))
            })
            .collect::<DfResult<_>>()?;
        Ok(ColumnarValue::Array(Arc::new(objects)))
    }
}

/// Whether `a` is NULL at `row` (a NULL literal's array has no validity bitmap).
fn is_null(a: &dyn Array, row: usize) -> bool {
    a.logical_nulls().is_some_and(|n| n.is_null(row))
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn one(sql: &str) -> String {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx
            .sql(sql)
            .await
            .expect("plans")
            .collect()
            .await
            .expect("runs");
        let column = batches[0].column(0);
        ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default().with_null("NULL"))
            .expect("formats")
            .value(0)
            .to_string()
    }

    #[tokio::test]
    async fn expand_array_gives_each_element_with_its_position() {
        assert_eq!(
            one("SELECT tidemark_expand_array('3 1')").await,
            "[{x: 3, n: 1}, {x: 1, n: 2}]"
        );
        assert_eq!(one("SELECT tidemark_expand_array('')").await, "[]");
        assert_eq!(
            one("SELECT tidemark_expand_array(CAST(NULL AS TEXT))").await,
            "NULL"
        );
        // As the catalog rewrite uses it: one row per element, fields by name.
        assert_eq!(
            one("SELECT sum(e['x'] * e['n']) FROM \
                 (SELECT unnest(tidemark_expand_array('3 1 2')) AS e)")
            .await,
            "11"
        );
        let ctx = SessionContext::new();
        register(&ctx);
        let run = async {
            ctx.sql("SELECT tidemark_expand_array('1 x')")
                .await?
                .collect()
                .await
        };
        let err = run.await.expect_err("not a number");
        assert!(err.to_string().contains("\"x\" is not an integer"), "{err}");
    }

    #[tokio::test]
    async fn current_setting_reads_the_sessions_settings() {
        let ctx = SessionContext::new();
        let mut settings = Settings::default();
        settings
            .set("application_name", "grafana")
            .expect("settable");
        register_current_setting(&ctx, settings);
        let value = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(sql).await?.collect().await?;
                Ok::<_, datafusion::error::DataFusionError>(
                    ArrayFormatter::try_new(
                        batches[0].column(0).as_ref(),
                        &FormatOptions::default().with_null("NULL"),
                    )?
                    .value(0)
                    .to_string(),
                )
            }
        };
        assert_eq!(
            value("SELECT current_setting('search_path')")
                .await
                .expect("runs"),
            "public"
        );
        assert_eq!(
            value("SELECT current_setting('application_name')")
                .await
                .expect("runs"),
            "grafana"
        );
        assert_eq!(
            value("SELECT current_setting('nope', true)")
                .await
                .expect("runs"),
            "NULL"
        );
        let err = value("SELECT current_setting('nope')")
            .await
            .expect_err("unknown");
        assert_eq!(crate::error::ExecError::from(err).sqlstate, "42704");
    }

    #[tokio::test]
    async fn client_catalog_functions_answer_as_postgresql_does() {
        assert_eq!(one("SELECT to_regtype('integer')").await, "23");
        assert_eq!(
            one("SELECT to_regtype('timestamp with time zone')").await,
            "1184"
        );
        assert_eq!(one("SELECT to_regtype('hstore')").await, "NULL");
        assert_eq!(one("SELECT pg_get_serial_sequence('t', 'x')").await, "NULL");
        assert_eq!(
            one("SELECT pg_size_pretty(CAST(8192 AS BIGINT))").await,
            "8192 bytes"
        );
        assert_eq!(
            one("SELECT pg_size_pretty(CAST(10240 AS BIGINT))").await,
            "10 kB"
        );
        assert_eq!(
            one("SELECT pg_size_pretty(CAST(1048576000 AS BIGINT))").await,
            "1000 MB"
        );
        assert_eq!(
            one("SELECT pg_size_pretty(CAST(10737418240 AS BIGINT))").await,
            "10 GB"
        );
        for (arrow, sql, udt) in [
            ("Timestamp(µs)", "timestamp without time zone", "timestamp"),
            (
                "Timestamp(µs, \"UTC\")",
                "timestamp with time zone",
                "timestamptz",
            ),
            ("Dictionary(Int32, Utf8)", "text", "text"),
            ("Float64", "double precision", "float8"),
            ("Int16", "smallint", "int2"),
            ("FixedSizeBinary(16)", "uuid", "uuid"),
            ("Binary", "bytea", "bytea"),
            ("Decimal128(10, 2)", "numeric", "numeric"),
        ] {
            assert_eq!(pg_type_names(arrow), (sql, udt), "{arrow}");
        }
        assert_eq!(
            one("SELECT json_build_object('a', 1, 'b', 'x\"y', 'c', NULL, 'd', true)").await,
            r#"{"a" : 1, "b" : "x\"y", "c" : null, "d" : true}"#
        );
        for (value, name) in [
            ("CAST(1 AS INT)", "integer"),
            ("CAST(1 AS BIGINT)", "bigint"),
            ("1.5", "double precision"),
            ("'x'", "text"),
            ("true", "boolean"),
            (
                "CAST('2026-12-04' AS TIMESTAMP)",
                "timestamp without time zone",
            ),
            ("CAST('2026-12-04' AS DATE)", "date"),
            ("CAST(NULL AS INT)", "integer"),
            ("make_array(1, 2)", "bigint[]"),
            ("make_array(make_array('a'))", "text[]"),
        ] {
            assert_eq!(
                one(&format!("SELECT pg_typeof({value})")).await,
                name,
                "{value}"
            );
        }
    }
}
