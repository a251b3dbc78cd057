//! JSON and JSONB columns: documents stored as their text (VARCHAR underneath),
//! checked to be valid JSON on every way in, sent as PostgreSQL's `json` /
//! `jsonb`, and read with PostgreSQL's operators:
//! - `doc -> 'key'`, `doc -> 2`: the member or array element as a document;
//! - `doc ->> 'key'`, `doc ->> 2`: the same as text (a JSON string without its
//!   quotes, JSON `null` as SQL NULL);
//! - `doc #> '{a,0,b}'`, `doc #>> '{a,0,b}'`: the same along a path;
//! - `a @> b`, `a <@ b`: containment, `doc ? 'key'`: key existence (jsonb's);
//! - `a || b`, `doc - key`, `doc #- path`: jsonb's edits (`json_edit.rs`);
//! - `'...'::json`, `CAST(... AS JSONB)`: text marked as a document.
//!
//! A missing key or element, or a value of the wrong kind (a key into an array),
//! is NULL, as in PostgreSQL. JSONB keeps the text as given (PostgreSQL would
//! reorder keys and drop duplicates).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DFSchema, Result as DfResult, exec_err};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr, TypePlanner};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast;
use tidemark_storage::{Column, ColumnType, Values};

use crate::error::{ExecError, Result, sqlstate};
use crate::json_edit::{Edit, JsonEdit};
use crate::types::PG_TYPE_METADATA;

/// Checks that every value of `column` (a JSON or JSONB column named `name`) is
/// one JSON document: 22P02 naming the column and the first bad row otherwise.
pub(crate) fn check_column(column: &Column, t: ColumnType, name: &str) -> Result<()> {
    let Values::Varchar(texts) = &column.values else {
        return Ok(());
    };
    for row in 0..texts.len() {
        if column.is_null(row) {
            continue;
        }
        check_value(texts.get(row), t, name)?;
    }
    Ok(())
}

/// Checks one value for JSON or JSONB column `name`: 22P02 naming the column
/// unless it is one JSON document.
pub(crate) fn check_value(text: &[u8], t: ColumnType, name: &str) -> Result<()> {
    check_document(text).map_err(|detail| {
        ExecError::new(
            sqlstate::INVALID_TEXT_REPRESENTATION,
            format!(
                "invalid input syntax for type {} in column \"{name}\": {detail}",
                crate::types::pg_name(t)
            ),
        )
    })
}

/// `Err(why)` unless `text` is exactly one JSON document.
pub fn check_document(text: &[u8]) -> std::result::Result<(), String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether values of type `t` can be read as a document's text (any string
/// type, a dictionary of strings such as a SYMBOL, or NULL).
pub(crate) fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    ) || matches!(t, DataType::Dictionary(_, v) if v.is_string())
}

/// The field of a text value that is sent as `pg_type` (`json` or `jsonb`).
pub(crate) fn document_field(name: &str, pg_type: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
        .with_metadata([(PG_TYPE_METADATA.to_string(), pg_type.to_string())].into())
}

/// Plans `json`/`jsonb` in casts as text marked with its PostgreSQL type, and
/// `uuid` as a UUID column's type (`uuid_values.rs` reads text into it).
#[derive(Debug)]
pub(crate) struct JsonTypes;

/// Also QuestDB's type names in casts (`questdb_types`): a context has one
/// type planner, and this is the one every query context uses.
impl TypePlanner for JsonTypes {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> DfResult<Option<FieldRef>> {
        Ok(match sql_type {
            ast::DataType::JSON => Some(Arc::new(document_field("", "json"))),
            ast::DataType::JSONB => Some(Arc::new(document_field("", "jsonb"))),
            ast::DataType::Uuid => Some(Arc::new(Field::new("", crate::uuid_values::UUID, true))),
            other => crate::questdb_types::plan_cast_type(other),
        })
    }
}

/// [`JsonTypes`], then another planner for the types it does not know (the
/// catalog's `regclass`, `oid`, ...): a context has one type planner.
#[derive(Debug)]
pub(crate) struct JsonTypesThen(pub(crate) Arc<dyn TypePlanner>);

impl TypePlanner for JsonTypesThen {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> DfResult<Option<FieldRef>> {
        match JsonTypes.plan_type_field(sql_type)? {
            Some(field) => Ok(Some(field)),
            None => self.0.plan_type_field(sql_type),
        }
    }
}

/// Plans `->` and `->>` as [`JsonGet`] calls (and comparisons with UUIDs,
/// `uuid_values.rs`, and arithmetic on arrays, `array_arithmetic.rs`: a
/// context has one list of expression planners).
#[derive(Debug)]
pub(crate) struct JsonOperators;

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> DfResult<PlannerResult<RawBinaryExpr>> {
        let test = match expr.op {
            ast::BinaryOperator::AtArrow => Some(JsonTest::Contains),
            ast::BinaryOperator::ArrowAt => Some(JsonTest::ContainedIn),
            ast::BinaryOperator::Question => Some(JsonTest::HasKey),
            ast::BinaryOperator::QuestionPipe => Some(JsonTest::HasAnyKey),
            ast::BinaryOperator::QuestionAnd => Some(JsonTest::HasAllKeys),
            _ => None,
        };
        if let Some(test) = test {
            let udf = ScalarUDF::from(JsonPredicate::new(test));
            return Ok(PlannerResult::Planned(
                udf.call(vec![expr.left, expr.right]),
            ));
        }
        if let Some(call) = crate::array_arithmetic::plan(&expr, schema) {
            return Ok(PlannerResult::Planned(call));
        }
        let edit = match expr.op {
            ast::BinaryOperator::StringConcat => Some(Edit::Concat),
            ast::BinaryOperator::Minus => Some(Edit::Delete),
            ast::BinaryOperator::HashMinus => Some(Edit::DeletePath),
            _ => None,
        };
        if let Some(edit) = edit
            && edits_jsonb(edit, &expr, schema)
        {
            let udf = ScalarUDF::from(JsonEdit::new(edit));
            return Ok(PlannerResult::Planned(
                udf.call(vec![expr.left, expr.right]),
            ));
        }
        let (as_text, path) = match expr.op {
            ast::BinaryOperator::Arrow => (false, false),
            ast::BinaryOperator::LongArrow => (true, false),
            ast::BinaryOperator::HashArrow => (false, true),
            ast::BinaryOperator::HashLongArrow => (true, true),
            _ => return crate::uuid_values::plan_comparison(expr, schema),
        };
        let udf = ScalarUDF::from(JsonGet::new(as_text, path));
        Ok(PlannerResult::Planned(
            udf.call(vec![expr.left, expr.right]),
        ))
    }
}

/// Whether `expr` is one of jsonb's editing operators: its left side is jsonb
/// (for `||`, also a string literal before a jsonb, which PostgreSQL reads as
/// jsonb); `#-` always is, as PostgreSQL has it for jsonb only.
fn edits_jsonb(edit: Edit, expr: &RawBinaryExpr, schema: &DFSchema) -> bool {
    let is_jsonb = |e: &Expr| {
        e.to_field(schema).is_ok_and(|(_, f)| {
            f.metadata()
                .get(PG_TYPE_METADATA)
                .is_some_and(|t| t == "jsonb")
        })
    };
    match edit {
        Edit::DeletePath => true,
        Edit::Delete => is_jsonb(&expr.left),
        Edit::Concat => {
            is_jsonb(&expr.left)
                || (matches!(expr.left, Expr::Literal(..)) && is_jsonb(&expr.right))
        }
    }
}

/// What a [`JsonPredicate`] tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum JsonTest {
    /// `a @> b`: `a` contains `b`.
    Contains,
    /// `a <@ b`: `b` contains `a`.
    ContainedIn,
    /// `doc ? 'key'`: a top-level key of an object, or a string element of an array.
    HasKey,
    /// `doc ?| keys`: any of the keys (a text array) is a key of `doc`.
    HasAnyKey,
    /// `doc ?& keys`: all of them are.
    HasAllKeys,
}

/// `@>`, `<@` and `?` on documents, as PostgreSQL's jsonb operators.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonPredicate {
    test: JsonTest,
    signature: Signature,
}

impl JsonPredicate {
    fn new(test: JsonTest) -> Self {
        JsonPredicate {
            test,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonPredicate {
    fn name(&self) -> &str {
        match self.test {
            JsonTest::Contains => "@>",
            JsonTest::ContainedIn => "<@",
            JsonTest::HasKey => "?",
            JsonTest::HasAnyKey => "?|",
            JsonTest::HasAllKeys => "?&",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        let keys = matches!(self.test, JsonTest::HasAnyKey | JsonTest::HasAllKeys);
        if keys && let [_, DataType::List(_)] = args {
            // `doc ?| array['a', 'b']`: the keys as a list of text.
            return Ok(vec![
                DataType::Utf8,
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            ]);
        }
        for t in args {
            if !is_text(t) {
                return datafusion::common::plan_err!(
                    "operator does not exist: {t} {} ...: the operands must be jsonb (or text)",
                    self.name()
                );
            }
        }
        Ok(vec![DataType::Utf8; args.len()])
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = crate::call_args::arrays_of(&args)?;
        let [left, right] = arrays.as_slice() else {
            return exec_err!("{} takes two operands", self.name());
        };
        let left = left.as_string::<i32>();
        // The keys of `?|`/`?&`: a list of text, or PostgreSQL's array text ('{a,b}').
        let keys = |i: usize| -> DfResult<Vec<String>> {
            match right.as_list_opt::<i32>() {
                Some(list) => {
                    let values = list.value(i);
                    let values = values.as_string::<i32>();
                    Ok(values.iter().flatten().map(str::to_string).collect())
                }
                None => path_steps(right.as_string::<i32>().value(i)),
            }
        };
        let out: datafusion::arrow::array::BooleanArray = (0..rows)
            .map(|i| {
                if left.is_null(i) || right.is_null(i) {
                    return Ok(None);
                }
                let doc = parse_document(left.value(i))?;
                let text = || right.as_string::<i32>().value(i);
                Ok(Some(match self.test {
                    JsonTest::HasAnyKey => keys(i)?.iter().any(|k| has_key(&doc, k)),
                    JsonTest::HasAllKeys => keys(i)?.iter().all(|k| has_key(&doc, k)),
                    JsonTest::HasKey => has_key(&doc, text()),
                    JsonTest::Contains => contains(&doc, &parse_document(text())?),
                    JsonTest::ContainedIn => contains(&parse_document(text())?, &doc),
                }))
            })
            .collect::<DfResult<_>>()?;
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

/// PostgreSQL's jsonb containment: objects contain objects whose every member
/// they contain, arrays contain arrays whose every element some element of
/// theirs contains, scalars are equal; and, at the top only, an array contains
/// a scalar it holds.
fn contains(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Array(items), b) if !b.is_array() && !b.is_object() => {
            items.iter().any(|mine| mine == b)
        }
        _ => contains_nested(a, b),
    }
}

fn contains_nested(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => b
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|mine| contains_nested(mine, v))),
        (Value::Array(a), Value::Array(b)) => b
            .iter()
            .all(|v| a.iter().any(|mine| contains_nested(mine, v))),
        (a, b) => a == b,
    }
}

/// `doc ? key`.
fn has_key(doc: &serde_json::Value, key: &str) -> bool {
    match doc {
        serde_json::Value::Object(o) => o.contains_key(key),
        serde_json::Value::Array(items) => items.iter().any(|v| v.as_str() == Some(key)),
        serde_json::Value::String(s) => s == key,
        _ => false,
    }
}

/// `doc -> key` (`as_text` false) and `doc ->> key` (true); with `path`,
/// `doc #> '{a,0,b}'` and `doc #>> '{a,0,b}'`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct JsonGet {
    as_text: bool,
    path: bool,
    signature: Signature,
}

impl JsonGet {
    fn new(as_text: bool, path: bool) -> Self {
        JsonGet {
            as_text,
            path,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonGet {
    fn name(&self) -> &str {
        match (self.path, self.as_text) {
            (false, false) => "->",
            (false, true) => "->>",
            (true, false) => "#>",
            (true, true) => "#>>",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        let [doc, key] = args else {
            return exec_err!("{} takes a document and a key", self.name());
        };
        let doc = match doc {
            t if is_text(t) => DataType::Utf8,
            other => {
                return datafusion::common::plan_err!(
                    "operator does not exist: {other} {} unknown: the left side must be json or jsonb",
                    self.name()
                );
            }
        };
        let key = if key.is_integer() && !self.path {
            DataType::Int64
        } else {
            DataType::Utf8
        };
        Ok(vec![doc, key])
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        if self.as_text {
            return Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)));
        }
        // `jsonb -> k` is jsonb, `json -> k` (and text -> k) json.
        let pg_type = args
            .arg_fields
            .first()
            .and_then(|f| f.metadata().get(PG_TYPE_METADATA))
            .filter(|t| t.as_str() == "jsonb")
            .map_or("json", |_| "jsonb");
        Ok(Arc::new(document_field(self.name(), pg_type)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = crate::call_args::arrays_of(&args)?;
        let [docs, keys] = arrays.as_slice() else {
            return exec_err!("{} takes a document and a key", self.name());
        };
        let docs = docs.as_string::<i32>();
        let out: StringArray = (0..rows)
            .map(|i| {
                if docs.is_null(i) || keys.is_null(i) {
                    return Ok(None);
                }
                let doc = parse_document(docs.value(i))?;
                let member = match keys.data_type() {
                    DataType::Int64 => {
                        let k = keys.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                        element(&doc, k.value(i))
                    }
                    _ if self.path => {
                        let steps = path_steps(keys.as_string::<i32>().value(i))?;
                        let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
                        follow(&doc, &steps)
                    }
                    _ => doc.get(keys.as_string::<i32>().value(i)),
                };
                Ok(member.and_then(|v| self.render(v)))
            })
            .collect::<DfResult<_>>()?;
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

impl JsonGet {
    fn render(&self, v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Null if self.as_text => None,
            serde_json::Value::String(s) if self.as_text => Some(s.clone()),
            other => Some(pg_text(other)),
        }
    }
}

/// A document as PostgreSQL prints a `jsonb`: `{"a": 1, "b": [1, 2]}`.
pub(crate) fn pg_text(v: &serde_json::Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PgFormatter);
    match JsonbOrder(v).serialize(&mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_else(|_| v.to_string()),
        Err(_) => v.to_string(),
    }
}

/// A document serialized with its object keys in jsonb's order: shorter keys
/// first, keys of one length by their bytes (`{"b": 1, "aa": 2}`).
struct JsonbOrder<'a>(&'a serde_json::Value);

impl serde::Serialize for JsonbOrder<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            serde_json::Value::Object(members) => {
                let mut keys: Vec<&String> = members.keys().collect();
                keys.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
                let mut map = ser.serialize_map(Some(keys.len()))?;
                for k in keys {
                    map.serialize_entry(k, &JsonbOrder(&members[k]))?;
                }
                map.end()
            }
            serde_json::Value::Array(items) => {
                let mut seq = ser.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&JsonbOrder(item))?;
                }
                seq.end()
            }
            scalar => scalar.serialize(ser),
        }
    }
}

/// `", "` before every item of an array or object but the first.
fn item_separator<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

/// serde_json's compact output with PostgreSQL's `", "` and `": "` separators.
struct PgFormatter;

impl serde_json::ser::Formatter for PgFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        item_separator(writer, first)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        item_separator(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// Registers the JSON functions: `json[b]_typeof(doc)`, `json[b]_array_length(doc)`,
/// `json[b]_extract_path(doc, key, ...)` and `json[b]_extract_path_text(doc, key, ...)`.
pub(crate) fn register_functions(ctx: &datafusion::execution::context::SessionContext) {
    for prefix in ["json", "jsonb"] {
        ctx.register_udf(datafusion::logical_expr::create_udf(
            &format!("{prefix}_typeof"),
            vec![DataType::Utf8],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| {
                let kinds = each_document(args, |doc| {
                    Ok(match doc {
                        serde_json::Value::Object(_) => "object",
                        serde_json::Value::Array(_) => "array",
                        serde_json::Value::String(_) => "string",
                        serde_json::Value::Number(_) => "number",
                        serde_json::Value::Bool(_) => "boolean",
                        serde_json::Value::Null => "null",
                    })
                })?;
                let kinds: StringArray = kinds.into_iter().collect();
                Ok(ColumnarValue::Array(Arc::new(kinds) as ArrayRef))
            }),
        ));
        let name = format!("{prefix}_array_length");
        ctx.register_udf(datafusion::logical_expr::create_udf(
            &name.clone(),
            vec![DataType::Utf8],
            DataType::Int32,
            Volatility::Immutable,
            Arc::new(move |args: &[ColumnarValue]| {
                let lengths = each_document(args, |doc| match doc {
                    serde_json::Value::Array(items) => Ok(i32::try_from(items.len()).ok()),
                    _ => exec_err!("cannot get array length of a non-array ({name})"),
                })?;
                let lengths: datafusion::arrow::array::Int32Array =
                    lengths.into_iter().map(Option::flatten).collect();
                Ok(ColumnarValue::Array(Arc::new(lengths) as ArrayRef))
            }),
        ));
        for as_text in [false, true] {
            ctx.register_udf(ScalarUDF::from(ExtractPath::new(prefix, as_text)));
        }
    }
}

/// `f(doc)` for each document of the first argument (NULL stays NULL).
fn each_document<T>(
    args: &[ColumnarValue],
    f: impl Fn(&serde_json::Value) -> DfResult<T>,
) -> DfResult<Vec<Option<T>>> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let Some(docs) = arrays.first() else {
        return exec_err!("a JSON function takes a document");
    };
    let docs = docs.as_string::<i32>();
    (0..docs.len())
        .map(|i| {
            if docs.is_null(i) {
                return Ok(None);
            }
            f(&parse_document(docs.value(i))?).map(Some)
        })
        .collect()
}

pub(crate) fn parse_document(text: &str) -> DfResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| {
        datafusion::error::DataFusionError::Execution(format!(
            "invalid input syntax for type json: {e}"
        ))
    })
}

/// `json[b]_extract_path[_text](doc, key, ...)`: `#>` / `#>>` with the path as
/// arguments.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExtractPath {
    name: String,
    /// Which operator it is.
    get: JsonGet,
}

impl ExtractPath {
    fn new(prefix: &str, as_text: bool) -> Self {
        let suffix = if as_text { "_text" } else { "" };
        ExtractPath {
            name: format!("{prefix}_extract_path{suffix}"),
            get: JsonGet {
                as_text,
                path: true,
                signature: Signature::variadic_any(Volatility::Immutable),
            },
        }
    }
}

impl ScalarUDFImpl for ExtractPath {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.get.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        Ok(vec![DataType::Utf8; args.len()])
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.get.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = crate::call_args::arrays_of(&args)?;
        let Some((docs, keys)) = arrays.split_first() else {
            return exec_err!("{} takes a document and keys", self.name);
        };
        let docs = docs.as_string::<i32>();
        let keys: Vec<&StringArray> = keys.iter().map(|k| k.as_string::<i32>()).collect();
        let out: StringArray = (0..args.number_rows)
            .map(|i| {
                if docs.is_null(i) || keys.iter().any(|k| k.is_null(i)) {
                    return Ok(None);
                }
                let doc = parse_document(docs.value(i))?;
                let steps: Vec<&str> = keys.iter().map(|k| k.value(i)).collect();
                Ok(follow(&doc, &steps).and_then(|v| self.get.render(v)))
            })
            .collect::<DfResult<_>>()?;
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

/// The value at `steps` (keys, and array positions as numbers) inside `doc`.
fn follow<'a>(doc: &'a serde_json::Value, steps: &[&str]) -> Option<&'a serde_json::Value> {
    steps.iter().try_fold(doc, |at, step| match at {
        serde_json::Value::Array(_) => step.parse::<i64>().ok().and_then(|n| element(at, n)),
        _ => at.get(*step),
    })
}

/// The steps of a path given as PostgreSQL's text array (`{a,0,"b c"}`).
pub(crate) fn path_steps(text: &str) -> DfResult<Vec<String>> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| {
            datafusion::error::DataFusionError::Execution(format!(
                "malformed array literal: \"{text}\" (a JSON path is written '{{a,0,b}}')"
            ))
        })?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut steps = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in inner.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => steps.push(std::mem::take(&mut current).trim().to_string()),
            c => current.push(c),
        }
    }
    steps.push(current.trim().to_string());
    Ok(steps)
}

/// Array element `i` (negative counts from the end), as PostgreSQL's `-> int`.
fn element(doc: &serde_json::Value, i: i64) -> Option<&serde_json::Value> {
    let items = doc.as_array()?;
    let at = if i < 0 {
        items
            .len()
            .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
    } else {
        usize::try_from(i).ok()?
    };
    items.get(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_checked() {
        assert!(check_document(br#"{"a": [1, 2.5, "x", null, true]}"#).is_ok());
        assert!(check_document(b"3").is_ok());
        assert!(check_document(b"\"s\"").is_ok());
        assert!(check_document(b"{\"a\": }").is_err());
        assert!(check_document(b"{} {}").is_err());
        assert!(check_document(b"").is_err());
    }

    #[test]
    fn documents_print_as_postgresql_prints_jsonb() {
        let doc: serde_json::Value =
            serde_json::from_str(r#"{"a":[1,{"b":null}],"c":"x"}"#).expect("json");
        assert_eq!(pg_text(&doc), r#"{"a": [1, {"b": null}], "c": "x"}"#);
        assert_eq!(pg_text(&serde_json::json!([])), "[]");
    }

    #[test]
    fn containment_as_postgresql_defines_it() {
        let v = |t: &str| -> serde_json::Value { serde_json::from_str(t).expect("json") };
        let doc = v(r#"{"host": "h1", "tags": ["a", "b"], "n": {"x": 1, "y": 2}}"#);
        assert!(contains(&doc, &v(r#"{"host": "h1"}"#)));
        assert!(contains(&doc, &v(r#"{"tags": ["b"], "n": {"x": 1}}"#)));
        assert!(contains(&doc, &v("{}")));
        assert!(!contains(&doc, &v(r#"{"host": "h2"}"#)));
        assert!(!contains(&doc, &v(r#"{"tags": "a"}"#)));
        assert!(contains(&v("[1, 2, [3]]"), &v("[[3], 1]")));
        assert!(contains(&v(r#"["a", "b"]"#), &v(r#""a""#)));
        assert!(has_key(&doc, "tags") && !has_key(&doc, "a"));
        assert!(has_key(&v(r#"["a", "b"]"#), "a"));
    }

    #[test]
    fn paths_are_text_arrays() {
        assert_eq!(
            path_steps("{a, 0,\"b c\"}").expect("path"),
            ["a", "0", "b c"]
        );
        assert_eq!(path_steps("{}").expect("path"), Vec::<String>::new());
        assert!(path_steps("a,b").is_err());
    }

    #[test]
    fn elements_count_from_either_end() {
        let doc: serde_json::Value = serde_json::from_str("[10, 20, 30]").expect("json");
        assert_eq!(element(&doc, 0), Some(&serde_json::json!(10)));
        assert_eq!(element(&doc, -1), Some(&serde_json::json!(30)));
        assert_eq!(element(&doc, 3), None);
        assert_eq!(element(&doc, -4), None);
        assert_eq!(element(&serde_json::json!({"a": 1}), 0), None);
    }
}
