//! The executor's error: a PostgreSQL SQLSTATE, a message that names the
//! offending object or token, and (for syntax errors) a position. Every error
//! from the parser, storage and DataFusion is classified here, in one place.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use tidemark_parser::ParseError;
use tidemark_storage::{ErrorKind, StorageError};

/// SQLSTATE codes Tidemark uses (PostgreSQL's Appendix A).
pub mod sqlstate {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_PARAMETER: &str = "42P02";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const INVALID_NAME: &str = "42602";
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const CANNOT_COERCE: &str = "42846";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const ARRAY_SUBSCRIPT_ERROR: &str = "2202E";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    pub const DISK_FULL: &str = "53100";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const IO_ERROR: &str = "58030";
    pub const DATA_CORRUPTED: &str = "XX001";
    pub const INTERNAL_ERROR: &str = "XX000";
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const QUERY_CANCELED: &str = "57014";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const BAD_COPY_FILE_FORMAT: &str = "22P04";
    pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
    pub const CACHED_PLAN_CHANGED: &str = "0A000";
    pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
    pub const DUPLICATE_PREPARED_STATEMENT: &str = "42P05";
    pub const INVALID_CURSOR_STATE: &str = "24000";
    pub const INVALID_CURSOR_NAME: &str = "34000";
    pub const DUPLICATE_CURSOR: &str = "42P03";
    pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
    pub const INVALID_SAVEPOINT_SPECIFICATION: &str = "3B001";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const INVALID_OBJECT_DEFINITION: &str = "42P17";
    pub const GROUPING_ERROR: &str = "42803";
    pub const INVALID_COLUMN_REFERENCE: &str = "42P10";
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecError {
    pub sqlstate: &'static str,
    pub message: String,
    /// 1-based character offset into the statement, for syntax errors.
    pub position: Option<usize>,
}

pub type Result<T, E = ExecError> = std::result::Result<T, E>;

impl ExecError {
    pub fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        ExecError {
            sqlstate,
            message: message.into(),
            position: None,
        }
    }
}

impl From<ParseError> for ExecError {
    fn from(e: ParseError) -> Self {
        ExecError {
            sqlstate: e.sqlstate,
            message: e.message,
            position: e.position,
        }
    }
}

impl From<StorageError> for ExecError {
    fn from(e: StorageError) -> Self {
        use sqlstate::*;
        let code = match (&e, e.kind()) {
            (StorageError::TableExists(_), _) => DUPLICATE_TABLE,
            (StorageError::ColumnExists { .. }, _) => DUPLICATE_COLUMN,
            (StorageError::NotIndexable { .. }, _) => FEATURE_NOT_SUPPORTED,
            (_, ErrorKind::UndefinedTable) => UNDEFINED_TABLE,
            (_, ErrorKind::UndefinedColumn) => UNDEFINED_COLUMN,
            (_, ErrorKind::UndefinedObject) => UNDEFINED_OBJECT,
            (_, ErrorKind::DuplicateObject) => DUPLICATE_TABLE,
            (_, ErrorKind::InvalidName) => INVALID_NAME,
            (_, ErrorKind::InvalidData) => INVALID_PARAMETER_VALUE,
            (_, ErrorKind::NotNullViolation) => NOT_NULL_VIOLATION,
            (_, ErrorKind::InvalidState) => OBJECT_NOT_IN_PREREQUISITE_STATE,
            (_, ErrorKind::WrongObjectType) => WRONG_OBJECT_TYPE,
            (_, ErrorKind::DiskFull) => DISK_FULL,
            (_, ErrorKind::Corrupted) => DATA_CORRUPTED,
            (_, ErrorKind::Io) | (_, ErrorKind::Locked) => IO_ERROR,
        };
        ExecError::new(code, e.to_string())
    }
}

impl From<tidemark_backup::BackupError> for ExecError {
    fn from(e: tidemark_backup::BackupError) -> Self {
        use sqlstate::*;
        use tidemark_backup::{BackupError, ErrorKind};
        let code = match e {
            BackupError::Storage(s) => return ExecError::from(s),
            ref e => match e.kind() {
                ErrorKind::InvalidState => OBJECT_NOT_IN_PREREQUISITE_STATE,
                ErrorKind::InvalidParameter => INVALID_PARAMETER_VALUE,
                ErrorKind::Io => IO_ERROR,
                ErrorKind::Corrupted => DATA_CORRUPTED,
                ErrorKind::NotFound => UNDEFINED_OBJECT,
            },
        };
        ExecError::new(code, e.to_string())
    }
}

impl From<ArrowError> for ExecError {
    fn from(e: ArrowError) -> Self {
        use sqlstate::*;
        let code = match &e {
            ArrowError::DivideByZero => DIVISION_BY_ZERO,
            ArrowError::ArithmeticOverflow(_) => NUMERIC_VALUE_OUT_OF_RANGE,
            ArrowError::CastError(m)
                if m.contains("Can't cast value") || m.contains("overflow") =>
            {
                NUMERIC_VALUE_OUT_OF_RANGE
            }
            ArrowError::CastError(_) | ArrowError::ParseError(_) => INVALID_TEXT_REPRESENTATION,
            ArrowError::ComputeError(m) if m.to_lowercase().contains("overflow") => {
                NUMERIC_VALUE_OUT_OF_RANGE
            }
            _ => INTERNAL_ERROR,
        };
        let message = match &e {
            ArrowError::DivideByZero => "division by zero".to_string(),
            other => other.to_string(),
        };
        ExecError::new(code, message)
    }
}

impl From<DataFusionError> for ExecError {
    fn from(e: DataFusionError) -> Self {
        use sqlstate::*;
        let root = e.find_root();
        match root {
            DataFusionError::ArrowError(a, _) => return ExecError::from(clone_arrow(a)),
            DataFusionError::External(x) => {
                if let Some(inner) = x.downcast_ref::<ExecError>() {
                    return inner.clone();
                }
            }
            _ => {}
        }
        let message = root.message().to_string();
        let lower = message.to_lowercase();
        let code = match root {
            DataFusionError::SQL(..) => SYNTAX_ERROR,
            DataFusionError::SchemaError(s, _) => match s.as_ref() {
                datafusion::common::SchemaError::FieldNotFound { .. } => UNDEFINED_COLUMN,
                datafusion::common::SchemaError::AmbiguousReference { .. } => AMBIGUOUS_COLUMN,
                _ => SYNTAX_ERROR,
            },
            // `5::uuid`: PostgreSQL's "cannot cast type integer to uuid".
            DataFusionError::NotImplemented(_) if lower.starts_with("unsupported cast") => {
                CANNOT_COERCE
            }
            // `1::foo`: PostgreSQL's "type "foo" does not exist" (as CREATE TABLE says).
            DataFusionError::NotImplemented(_) if lower.starts_with("unsupported sql type ") => {
                UNDEFINED_OBJECT
            }
            DataFusionError::NotImplemented(_) => FEATURE_NOT_SUPPORTED,
            DataFusionError::ResourcesExhausted(_) => OUT_OF_MEMORY,
            _ if lower.contains("divide by zero") || lower.contains("division by zero") => {
                DIVISION_BY_ZERO
            }
            _ if lower.contains("overflow") => NUMERIC_VALUE_OUT_OF_RANGE,
            DataFusionError::Plan(_) if lower.contains("no field named") => UNDEFINED_COLUMN,
            DataFusionError::Plan(_) if lower.contains("cannot") && lower.contains("coerce") => {
                DATATYPE_MISMATCH
            }
            // `WHERE price`: PostgreSQL's "argument of WHERE must be type boolean".
            DataFusionError::Plan(_) if lower.contains("non-boolean predicate") => {
                DATATYPE_MISMATCH
            }
            // `ORDER BY 3` / `GROUP BY 3` past the select list.
            DataFusionError::Plan(_)
                if lower.starts_with("order by column out of bounds")
                    || lower.starts_with("cannot find column with position") =>
            {
                INVALID_COLUMN_REFERENCE
            }
            // A selected column neither grouped nor aggregated.
            DataFusionError::Plan(_) if lower.contains("must be in group by") => GROUPING_ERROR,
            // A function of that name, but none taking these argument types:
            // PostgreSQL's "function f(text) does not exist". (A name nothing
            // has is found by looking it up: `undefined.rs`.)
            DataFusionError::Plan(_)
                if lower.contains("no function matches")
                    || lower.contains("failed to coerce arguments to satisfy a call to") =>
            {
                UNDEFINED_FUNCTION
            }
            DataFusionError::Plan(_) => SYNTAX_ERROR,
            _ => INTERNAL_ERROR,
        };
        let message = match (code, root) {
            (DIVISION_BY_ZERO, _) => "division by zero".to_string(),
            (UNDEFINED_OBJECT, _) => match message.strip_prefix("Unsupported SQL type ") {
                Some(name) => format!("type \"{}\" does not exist", folded_type_name(name)),
                None => message,
            },
            (INVALID_COLUMN_REFERENCE, _) => position_message(&message),
            (UNDEFINED_COLUMN, DataFusionError::SchemaError(s, _)) => match s.as_ref() {
                datafusion::common::SchemaError::FieldNotFound { field, .. } => {
                    column_not_found(field, &message)
                }
                _ => message,
            },
            (AMBIGUOUS_COLUMN, DataFusionError::SchemaError(s, _)) => match s.as_ref() {
                datafusion::common::SchemaError::AmbiguousReference { field } => {
                    format!("column reference \"{}\" is ambiguous", field.name)
                }
                _ => message,
            },
            // For an aggregate DataFusion lists every signature it tried (and calls
            // it an internal error, with a plea to report a bug); say what
            // PostgreSQL says: no such function for these argument types.
            (UNDEFINED_FUNCTION, _) if lower.contains("failed to match any signature") => {
                match message
                    .split_once("argument types '")
                    .and_then(|(_, rest)| rest.split_once('\''))
                {
                    Some((call, _)) => format!(
                        "function {call} does not exist: no function matches the given name and \
                     argument types (add explicit type casts)"
                    ),
                    None => message,
                }
            }
            _ => message,
        };
        ExecError::new(code, message)
    }
}

/// A type name as PostgreSQL reports it: unquoted names folded to lower case.
fn folded_type_name(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.to_string(),
        None => name.to_lowercase(),
    }
}

/// PostgreSQL's wording for an ORDER BY or GROUP BY position past the select
/// list (`ORDER BY position 3 is not in select list`), from DataFusion's
/// "Order by column out of bounds, specified: 3, max: 1" or "Cannot find
/// column with position 3 in SELECT clause".
fn position_message(datafusion_message: &str) -> String {
    let (clause, after) = if let Some((_, rest)) = datafusion_message.split_once("specified: ") {
        ("ORDER BY", rest)
    } else if let Some((_, rest)) = datafusion_message.split_once("with position ") {
        ("GROUP BY", rest)
    } else {
        return datafusion_message.to_string();
    };
    let position: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    format!("{clause} position {position} is not in select list")
}

/// PostgreSQL's wording for a column that is not there (`column "x" does not
/// exist`, `column t.x does not exist`), with DataFusion's suggestion of the
/// nearest name when its message has one.
fn column_not_found(field: &datafusion::common::Column, datafusion_message: &str) -> String {
    let column = match &field.relation {
        Some(relation) => format!("{relation}.{}", field.name),
        None => format!("\"{}\"", field.name),
    };
    let suggestion = datafusion_message
        .split_once("Did you mean '")
        .and_then(|(_, rest)| rest.split_once("'?"))
        .map(|(name, _)| format!("; did you mean {name}?"))
        .unwrap_or_default();
    format!("column {column} does not exist{suggestion}")
}

/// `ArrowError` is not `Clone`; rebuild the variants we classify.
fn clone_arrow(a: &ArrowError) -> ArrowError {
    match a {
        ArrowError::DivideByZero => ArrowError::DivideByZero,
        ArrowError::ArithmeticOverflow(m) => ArrowError::ArithmeticOverflow(m.clone()),
        ArrowError::CastError(m) => ArrowError::CastError(m.clone()),
        ArrowError::ParseError(m) => ArrowError::ParseError(m.clone()),
        ArrowError::ComputeError(m) => ArrowError::ComputeError(m.clone()),
        other => ArrowError::ComputeError(other.to_string()),
    }
}
