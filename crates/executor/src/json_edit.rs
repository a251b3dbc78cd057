//! jsonb's editing operators, as PostgreSQL has them:
//! - `a || b`: two objects merge (`b`'s value wins a shared key), two arrays
//!   concatenate, and anything else is taken as a one-element array first
//!   (`'[1]' || '2'` is `[1, 2]`, `'{"a":1}' || '[2]'` is `[{"a": 1}, 2]`);
//! - `doc - 'key'`: the object without that key, or the array without the
//!   strings equal to it; `doc - array['a', 'b']`: without any of them;
//! - `doc - 2`: the array without that element (negative counts from the end);
//! - `doc #- '{a,0}'`: without what the path leads to.
//!
//! Only jsonb has them: `json || json` is text concatenation in PostgreSQL too,
//! and so is `text || jsonb` (the planner in `json.rs` decides which applies).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

use crate::error::{ExecError, sqlstate};
use crate::json::{document_field, is_text, parse_document, path_steps, pg_text};

/// Which edit a [`JsonEdit`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Edit {
    /// `a || b`.
    Concat,
    /// `doc - key`, `doc - index`, `doc - keys`.
    Delete,
    /// `doc #- path`.
    DeletePath,
}

/// A jsonb editing operator (see the module's comment).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct JsonEdit {
    edit: Edit,
    signature: Signature,
}

impl JsonEdit {
    pub(crate) fn new(edit: Edit) -> Self {
        JsonEdit {
            edit,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// 22023, as PostgreSQL answers an edit its operand cannot take.
fn cannot(what: &str) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(ExecError::new(
        sqlstate::INVALID_PARAMETER_VALUE,
        what,
    )))
}

impl ScalarUDFImpl for JsonEdit {
    fn name(&self) -> &str {
        match self.edit {
            Edit::Concat => "||",
            Edit::Delete => "-",
            Edit::DeletePath => "#-",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        let [doc, other] = args else {
            return exec_err!("{} takes two operands", self.name());
        };
        if !is_text(doc) {
            return datafusion::common::plan_err!(
                "operator does not exist: {doc} {} {other}: the left side must be jsonb",
                self.name()
            );
        }
        let other = match (self.edit, other) {
            (Edit::Delete, t) if t.is_integer() => DataType::Int64,
            (Edit::Delete | Edit::DeletePath, DataType::List(_)) => text_list(),
            (_, t) if is_text(t) => DataType::Utf8,
            (_, t) => {
                return datafusion::common::plan_err!(
                    "operator does not exist: jsonb {} {t}",
                    self.name()
                );
            }
        };
        Ok(vec![DataType::Utf8, other])
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(document_field(self.name(), "jsonb")))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = crate::call_args::arrays_of(&args)?;
        let [docs, others] = arrays.as_slice() else {
            return exec_err!("{} takes two operands", self.name());
        };
        let docs = docs.as_string::<i32>();
        let out: StringArray = (0..rows)
            .map(|i| {
                if docs.is_null(i) || others.is_null(i) {
                    return Ok(None);
                }
                let doc = parse_document(docs.value(i))?;
                let edited = match (self.edit, others.data_type()) {
                    (Edit::Concat, _) => {
                        concat(doc, parse_document(others.as_string::<i32>().value(i))?)
                    }
                    (Edit::Delete, DataType::Int64) => {
                        delete_index(doc, others.as_primitive::<Int64Type>().value(i))?
                    }
                    (Edit::Delete, DataType::List(_)) => delete_keys(doc, &list_texts(others, i))?,
                    (Edit::Delete, _) => {
                        delete_keys(doc, &[others.as_string::<i32>().value(i).to_string()])?
                    }
                    (Edit::DeletePath, DataType::List(_)) => {
                        delete_path(doc, &list_texts(others, i))?
                    }
                    (Edit::DeletePath, _) => {
                        delete_path(doc, &path_steps(others.as_string::<i32>().value(i))?)?
                    }
                };
                Ok(Some(pg_text(&edited)))
            })
            .collect::<DfResult<_>>()?;
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    }
}

/// Row `i` of a list of text (`array['a', 'b']`), its NULL elements left out.
fn list_texts(lists: &ArrayRef, i: usize) -> Vec<String> {
    let values = lists.as_list::<i32>().value(i);
    let values = values.as_string::<i32>();
    values.iter().flatten().map(str::to_string).collect()
}

/// `a || b`.
fn concat(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                a.insert(k, v);
            }
            Value::Object(a)
        }
        (a, b) => {
            let mut items = match a {
                Value::Array(items) => items,
                other => vec![other],
            };
            match b {
                Value::Array(more) => items.extend(more),
                other => items.push(other),
            }
            Value::Array(items)
        }
    }
}

/// `doc - key` and `doc - keys`.
fn delete_keys(doc: Value, keys: &[String]) -> DfResult<Value> {
    match doc {
        Value::Object(mut members) => {
            for k in keys {
                members.remove(k);
            }
            Ok(Value::Object(members))
        }
        Value::Array(items) => Ok(Value::Array(
            items
                .into_iter()
                .filter(|v| !v.as_str().is_some_and(|s| keys.iter().any(|k| k == s)))
                .collect(),
        )),
        _ => Err(cannot("cannot delete from scalar")),
    }
}

/// `doc - index`.
fn delete_index(doc: Value, index: i64) -> DfResult<Value> {
    match doc {
        Value::Array(mut items) => {
            if let Some(at) = position(items.len(), index) {
                items.remove(at);
            }
            Ok(Value::Array(items))
        }
        Value::Object(_) => Err(cannot("cannot delete from object using integer index")),
        _ => Err(cannot("cannot delete from scalar")),
    }
}

/// Where element `index` of an array of `len` is (negative: from the end).
fn position(len: usize, index: i64) -> Option<usize> {
    let at = if index < 0 {
        len.checked_sub(usize::try_from(index.unsigned_abs()).ok()?)?
    } else {
        usize::try_from(index).ok()?
    };
    (at < len).then_some(at)
}

/// `doc #- path`: what the path leads to removed; a path that leads nowhere
/// leaves the document as it was.
fn delete_path(mut doc: Value, steps: &[String]) -> DfResult<Value> {
    if !doc.is_array() && !doc.is_object() {
        return Err(cannot("cannot delete path in scalar"));
    }
    let Some((last, parents)) = steps.split_last() else {
        return Ok(doc);
    };
    let mut at = &mut doc;
    for step in parents {
        let next = match at {
            Value::Object(members) => members.get_mut(step),
            Value::Array(items) => match step.parse::<i64>() {
                Ok(n) => position(items.len(), n).and_then(|i| items.get_mut(i)),
                Err(_) => return Err(path_not_integer(step)),
            },
            _ => None,
        };
        match next {
            Some(next) => at = next,
            None => return Ok(doc),
        }
    }
    match at {
        Value::Object(members) => {
            members.remove(last);
        }
        Value::Array(items) => {
            let n = last.parse::<i64>().map_err(|_| path_not_integer(last))?;
            if let Some(i) = position(items.len(), n) {
                items.remove(i);
            }
        }
        _ => {}
    }
    Ok(doc)
}

fn path_not_integer(step: &str) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(ExecError::new(
        sqlstate::INVALID_TEXT_REPRESENTATION,
        format!("path element \"{step}\" is not an integer: an array is indexed by position"),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn concatenation_merges_objects_and_otherwise_builds_arrays() {
        assert_eq!(
            concat(json!({"a": 1, "b": 2}), json!({"b": 3, "c": 4})),
            json!({"a": 1, "b": 3, "c": 4})
        );
        assert_eq!(concat(json!([1, 2]), json!([3])), json!([1, 2, 3]));
        assert_eq!(concat(json!([1]), json!(2)), json!([1, 2]));
        assert_eq!(concat(json!(1), json!("x")), json!([1, "x"]));
        assert_eq!(concat(json!({"a": 1}), json!([2])), json!([{"a": 1}, 2]));
    }

    #[test]
    fn deletion_by_key_index_and_path() {
        assert_eq!(
            delete_keys(json!({"a": 1, "b": 2}), &["a".into()]).expect("object"),
            json!({"b": 2})
        );
        assert_eq!(
            delete_keys(json!(["a", "b", 1, "a"]), &["a".into()]).expect("array"),
            json!(["b", 1])
        );
        assert!(delete_keys(json!(3), &["a".into()]).is_err());
        assert_eq!(
            delete_index(json!([1, 2, 3]), -1).expect("array"),
            json!([1, 2])
        );
        assert_eq!(
            delete_index(json!([1, 2, 3]), 7).expect("array"),
            json!([1, 2, 3])
        );
        assert!(delete_index(json!({"a": 1}), 0).is_err());
        assert_eq!(
            delete_path(
                json!({"a": [1, {"b": 2, "c": 3}]}),
                &["a".into(), "1".into(), "b".into()]
            )
            .expect("path"),
            json!({"a": [1, {"c": 3}]})
        );
        assert_eq!(
            delete_path(json!({"a": 1}), &["x".into(), "y".into()]).expect("nowhere"),
            json!({"a": 1})
        );
        assert!(delete_path(json!([1]), &["x".into()]).is_err());
    }
}
