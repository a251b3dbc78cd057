//! Turning parsed lines into one transaction: rows grouped by table, columns
//! matched to the tables as they are (or created: tags as SYMBOL, fields by
//! their line-protocol type), values converted to the columns' types.

use std::collections::HashMap;

use tidemark_storage::name::{name_key, same_name};
use tidemark_storage::{
    Batch, Column, ColumnDef, ColumnType, PartitionBy, Request, Snapshot, TableDef, TableMeta,
    Transaction, Values,
};

use super::IlpError;
use super::lines::{FieldValue, Line, LineReader, Precision};

/// The name of the designated timestamp of tables the line protocol creates.
pub(crate) const TIMESTAMP_COLUMN: &str = "timestamp";

/// What a request may do to the schema.
#[derive(Debug, Clone)]
pub(crate) struct SchemaRules {
    pub(crate) auto_create_tables: bool,
    pub(crate) auto_create_columns: bool,
    pub(crate) partition_by: PartitionBy,
}

/// A request's lines as a transaction.
#[derive(Debug)]
pub(crate) struct Planned {
    pub(crate) tx: Transaction,
    /// Data lines (blank and comment lines not counted).
    pub(crate) lines: u64,
    pub(crate) rows: u64,
    /// Whether the transaction creates tables or columns.
    pub(crate) changes_schema: bool,
}

/// Reads the lines of `body` and builds the requests that store them, rows
/// grouped by table. Lines without a timestamp get `now` (microseconds).
pub(crate) fn plan(
    body: &str,
    max_line_bytes: usize,
    snapshot: &Snapshot,
    rules: &SchemaRules,
    precision: Precision,
    now: i64,
) -> Result<Planned, IlpError> {
    let mut reader = LineReader::new(body, max_line_bytes);
    let mut line = Line::default();
    let mut tables: Vec<TableRows> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    // The table of the previous line: a body's lines mostly name one table.
    let mut previous: Option<(String, usize)> = None;
    let mut lines = 0;
    while reader.next_line(&mut line)? {
        lines += 1;
        let measurement = &*line.measurement;
        let t = match &previous {
            Some((name, t)) if name == measurement => *t,
            _ => {
                let t = match by_name.get(&name_key(measurement)) {
                    Some(&t) => t,
                    None => {
                        tables.push(table_for(&line, snapshot, rules)?);
                        by_name.insert(name_key(measurement), tables.len() - 1);
                        tables.len() - 1
                    }
                };
                previous = Some((measurement.to_string(), t));
                t
            }
        };
        tables[t]
            .push_line(&line, rules, precision, now)
            .map_err(|reason| IlpError::schema(line.number, line.text, reason))?;
    }
    let mut tx = Transaction::new();
    let mut rows = 0;
    let mut changes_schema = false;
    for t in tables {
        rows += t.rows as u64;
        changes_schema |= t.is_new || t.columns.iter().any(|c| c.is_new);
        t.into_requests(rules.partition_by, &mut tx);
    }
    Ok(Planned {
        tx,
        lines,
        rows,
        changes_schema,
    })
}

/// The rows of the table `line` names: an existing table, or a new one.
fn table_for(
    line: &Line<'_>,
    snapshot: &Snapshot,
    rules: &SchemaRules,
) -> Result<TableRows, IlpError> {
    let measurement = &*line.measurement;
    match snapshot.table(measurement) {
        Some(reader) => TableRows::existing(reader.name(), reader.meta())
            .map_err(|reason| IlpError::schema(line.number, line.text, reason)),
        None if rules.auto_create_tables => Ok(TableRows::new_table(measurement)),
        None => Err(IlpError::schema(
            line.number,
            line.text,
            format!("table \"{measurement}\" does not exist and ilp.auto_create_tables is off"),
        )),
    }
}

/// One table's rows in this request.
#[derive(Debug)]
struct TableRows {
    name: String,
    is_new: bool,
    timestamp_column: String,
    timestamps: Vec<i64>,
    /// The designated timestamp is a TIMESTAMP_NS: `timestamps` are
    /// nanoseconds (else microseconds).
    timestamps_in_nanos: bool,
    columns: Vec<ColumnRows>,
    by_name: HashMap<String, usize>,
    /// The column the `k`-th tag or field of the previous line went to, by
    /// the name it gave: lines of one source give their names in one order.
    seen: Vec<Option<(String, usize)>>,
    rows: usize,
}

impl TableRows {
    fn new_table(name: &str) -> TableRows {
        TableRows {
            name: name.to_string(),
            is_new: true,
            timestamp_column: TIMESTAMP_COLUMN.to_string(),
            timestamps: Vec::new(),
            timestamps_in_nanos: false,
            columns: Vec::new(),
            by_name: HashMap::new(),
            seen: Vec::new(),
            rows: 0,
        }
    }

    fn existing(name: &str, meta: &TableMeta) -> Result<TableRows, String> {
        let Some(timestamp_column) = meta.timestamp_name() else {
            return Err(format!(
                "table \"{name}\" has no designated timestamp: the line protocol writes only to tables that have one"
            ));
        };
        let mut t = TableRows::new_table(name);
        t.is_new = false;
        t.timestamp_column = timestamp_column.to_string();
        t.timestamps_in_nanos = meta.timestamp_type() == Some(ColumnType::TimestampNs);
        for c in &meta.columns {
            if c.name == t.timestamp_column {
                continue;
            }
            t.by_name.insert(name_key(&c.name), t.columns.len());
            t.columns
                .push(ColumnRows::new(&c.name, c.column_type, false));
        }
        Ok(t)
    }

    /// The column for the `position`-th tag or field of a line, named `name`.
    fn column_at(
        &mut self,
        position: usize,
        name: &str,
        kind: Kind,
        rules: &SchemaRules,
    ) -> Result<usize, String> {
        if let Some(Some((seen, c))) = self.seen.get(position)
            && seen == name
        {
            return Ok(*c);
        }
        let c = self.column(name, kind, rules)?;
        if self.seen.len() <= position {
            self.seen.resize(position + 1, None);
        }
        self.seen[position] = Some((name.to_string(), c));
        Ok(c)
    }

    /// The column `name` for a value of `kind`, added when the table lacks it.
    fn column(&mut self, name: &str, kind: Kind, rules: &SchemaRules) -> Result<usize, String> {
        if same_name(name, &self.timestamp_column) {
            return Err(format!(
                "\"{name}\" is the designated timestamp of table \"{}\": a line gives its time after the fields",
                self.name
            ));
        }
        let key = name_key(name);
        if let Some(&i) = self.by_name.get(&key) {
            return Ok(i);
        }
        if !self.is_new && !rules.auto_create_columns {
            return Err(format!(
                "column \"{name}\" does not exist in table \"{}\" and ilp.auto_create_columns is off",
                self.name
            ));
        }
        tidemark_storage::name::validate_name(name).map_err(|e| e.to_string())?;
        self.by_name.insert(key, self.columns.len());
        self.columns
            .push(ColumnRows::new(name, kind.new_column_type(), true));
        Ok(self.columns.len() - 1)
    }

    fn push_line(
        &mut self,
        line: &Line<'_>,
        rules: &SchemaRules,
        precision: Precision,
        now: i64,
    ) -> Result<(), String> {
        let row = self.rows;
        for (position, (name, value)) in line.tags.iter().enumerate() {
            let c = self.column_at(position, name, Kind::Tag, rules)?;
            self.columns[c].push(row, Value::Text(value), &self.name)?;
        }
        let tags = line.tags.len();
        for (position, (name, value)) in line.fields.iter().enumerate() {
            let (kind, value) = match value {
                FieldValue::I64(v) => (Kind::Integer, Value::I64(*v)),
                FieldValue::U64(v) => (Kind::Unsigned, Value::U64(*v)),
                FieldValue::F64(v) => (Kind::Float, Value::F64(*v)),
                FieldValue::String(s) => (Kind::String, Value::Text(s)),
                FieldValue::Boolean(b) => (Kind::Boolean, Value::Bool(*b)),
            };
            let c = self.column_at(tags + position, name, kind, rules)?;
            self.columns[c].push(row, value, &self.name)?;
        }
        let ts = match (line.timestamp, self.timestamps_in_nanos) {
            (None, false) => now,
            (None, true) => now.saturating_mul(1_000),
            (Some(ts), nanos) => match nanos {
                false => precision.to_micros(ts),
                true => precision.to_nanos(ts),
            }
            .ok_or_else(|| format!("timestamp {ts} is out of range for precision {precision:?}"))?,
        };
        self.timestamps.push(ts);
        self.rows += 1;
        Ok(())
    }

    fn into_requests(self, partition_by: PartitionBy, tx: &mut Transaction) {
        let rows = self.rows;
        let mut batch = Batch::new();
        let mut defs = Vec::new();
        for c in self.columns {
            if c.is_new {
                defs.push(ColumnDef::new(&c.name, c.column_type));
            }
            if c.values.is_some() {
                batch = batch.with(c.name.clone(), c.finish(rows));
            }
        }
        let timestamps = if self.timestamps_in_nanos {
            Column::new(Values::BigInt(self.timestamps))
        } else {
            Column::timestamps(self.timestamps)
        };
        batch = batch.with(self.timestamp_column.clone(), timestamps);
        if self.is_new {
            let mut columns = defs;
            columns.push(ColumnDef {
                name: self.timestamp_column.clone(),
                column_type: ColumnType::Timestamp,
                not_null: true,
                indexed: false,
            });
            tx.push(Request::CreateTable {
                def: TableDef {
                    name: self.name.clone(),
                    columns,
                    timestamp: Some(self.timestamp_column),
                    partition_by,
                },
                if_not_exists: false,
            });
        } else {
            for column in defs {
                tx.push(Request::AddColumn {
                    table: self.name.clone(),
                    column,
                });
            }
        }
        tx.push(Request::Append {
            table: self.name,
            batch,
        });
    }
}

/// What a line gives for a column.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Tag,
    Integer,
    Unsigned,
    Float,
    String,
    Boolean,
}

impl Kind {
    fn new_column_type(self) -> ColumnType {
        match self {
            Kind::Tag => ColumnType::Symbol,
            Kind::Integer | Kind::Unsigned => ColumnType::BigInt,
            Kind::Float => ColumnType::Double,
            Kind::String => ColumnType::Varchar,
            Kind::Boolean => ColumnType::Boolean,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl Value<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Value::Text(_) => "a string",
            Value::I64(_) => "an integer",
            Value::U64(_) => "an unsigned integer",
            Value::F64(_) => "a float",
            Value::Bool(_) => "a boolean",
        }
    }
}

/// One column's values in this request; rows that do not give it are NULL.
#[derive(Debug)]
struct ColumnRows {
    name: String,
    column_type: ColumnType,
    is_new: bool,
    /// `None` until a line gives the column.
    values: Option<Values>,
    nulls: Vec<bool>,
}

impl ColumnRows {
    fn new(name: &str, column_type: ColumnType, is_new: bool) -> ColumnRows {
        ColumnRows {
            name: name.to_string(),
            column_type,
            is_new,
            values: None,
            nulls: Vec::new(),
        }
    }

    /// Puts `value` at `row`, after NULLs for the rows before it that did not
    /// give this column.
    fn push(&mut self, row: usize, value: Value<'_>, table: &str) -> Result<(), String> {
        let len = self.nulls.len();
        if len > row {
            return Err(format!("column \"{}\" is given twice", self.name));
        }
        let column_type = self.column_type;
        let values = self
            .values
            .get_or_insert_with(|| Values::zeros(column_type, 0));
        pad(values, row);
        self.nulls.resize(row, true);
        let mismatch = || {
            format!(
                "{} for column \"{}\" of table \"{table}\", which is {}",
                value.describe(),
                self.name,
                column_type
            )
        };
        let out_of_range = |v: &dyn std::fmt::Display| {
            format!(
                "{v} is out of range for column \"{}\" of table \"{table}\" ({})",
                self.name, column_type
            )
        };
        match (values, value) {
            (Values::Varchar(d) | Values::Symbol(d), Value::Text(s)) => {
                // A JSON or JSONB column takes documents only, as from SQL.
                if matches!(column_type, ColumnType::Json | ColumnType::Jsonb) {
                    tidemark_executor::json::check_document(s.as_bytes()).map_err(|e| {
                        format!(
                            "invalid input syntax for type {} in column \"{}\" of table \"{table}\": {e}",
                            column_type.name().to_lowercase(),
                            self.name
                        )
                    })?;
                }
                d.push(s.as_bytes())
            }
            (Values::Boolean(v), Value::Bool(b)) => v.push(b),
            (Values::Double(v), Value::F64(x)) => v.push(x),
            (Values::Double(v), Value::I64(x)) => v.push(x as f64),
            (Values::Double(v), Value::U64(x)) => v.push(x as f64),
            (Values::Real(v), Value::F64(x)) => v.push(x as f32),
            (Values::Real(v), Value::I64(x)) => v.push(x as f32),
            (Values::Real(v), Value::U64(x)) => v.push(x as f32),
            (Values::BigInt(v), Value::I64(x)) => v.push(x),
            (Values::BigInt(v), Value::U64(x)) => {
                v.push(i64::try_from(x).map_err(|_| out_of_range(&x))?)
            }
            (Values::Int(v), Value::I64(x)) => {
                v.push(i32::try_from(x).map_err(|_| out_of_range(&x))?)
            }
            (Values::Int(v), Value::U64(x)) => {
                v.push(i32::try_from(x).map_err(|_| out_of_range(&x))?)
            }
            (Values::SmallInt(v), Value::I64(x)) => {
                v.push(i16::try_from(x).map_err(|_| out_of_range(&x))?)
            }
            (Values::SmallInt(v), Value::U64(x)) => {
                v.push(i16::try_from(x).map_err(|_| out_of_range(&x))?)
            }
            // A number into a DECIMAL column: by its shortest text (as from SQL),
            // rounded to the column's scale; one that does not fit is refused.
            (Values::Decimal(v), number @ (Value::F64(_) | Value::I64(_) | Value::U64(_))) => {
                let ColumnType::Decimal { precision, scale } = column_type else {
                    return Err(mismatch());
                };
                let text = match number {
                    Value::F64(x) => x.to_string(),
                    Value::I64(x) => x.to_string(),
                    Value::U64(x) => x.to_string(),
                    _ => return Err(mismatch()),
                };
                v.push(
                    tidemark_executor::numeric::parse(&text, precision, scale)
                        .map_err(|_| out_of_range(&text))?,
                )
            }
            _ => return Err(mismatch()),
        }
        self.nulls.push(false);
        Ok(())
    }

    fn finish(mut self, rows: usize) -> Column {
        let mut values = self
            .values
            .take()
            .unwrap_or_else(|| Values::zeros(self.column_type, 0));
        pad(&mut values, rows);
        self.nulls.resize(rows, true);
        Column::with_nulls(values, self.nulls)
    }
}

/// Extends `values` to `len` with placeholder values (the rows are NULL).
fn pad(values: &mut Values, len: usize) {
    match values {
        Values::Boolean(v) => v.resize(len, false),
        Values::SmallInt(v) => v.resize(len, 0),
        Values::Int(v) | Values::Date(v) => v.resize(len, 0),
        Values::BigInt(v) | Values::Timestamp(v) => v.resize(len, 0),
        Values::Real(v) => v.resize(len, 0.0),
        Values::Double(v) => v.resize(len, 0.0),
        Values::Uuid(v) => v.resize(len, 0),
        Values::Decimal(v) => v.resize(len, 0),
        Values::Varchar(d) | Values::Symbol(d) | Values::Binary(d) => {
            while d.len() < len {
                d.push(b"");
            }
        }
    }
}
