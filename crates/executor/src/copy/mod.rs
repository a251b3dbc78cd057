//! `COPY t FROM STDIN` and `COPY (query) TO STDOUT` in PostgreSQL's text and
//! CSV formats, and `COPY t FROM STDIN (FORMAT binary)` (`binary.rs`): option
//! parsing, decoding rows that arrive in arbitrary chunks, and encoding result
//! rows.
//!
//! A COPY FROM is one transaction: rows are converted to typed column batches
//! as data arrives (every [`ROWS_PER_BATCH`] rows) and committed together when
//! the client ends the copy; an error anywhere commits nothing.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast;
use tidemark_storage::{Batch, Request, TableMeta};

mod binary;

use crate::convert::array_to_column;
use crate::error::{ExecError, Result, sqlstate};
use crate::text::{TextColumn, format_value};

const ROWS_PER_BATCH: usize = 65_536;

/// Text, CSV or binary, with PostgreSQL's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    pub csv: bool,
    /// PostgreSQL's binary copy format (COPY FROM only).
    pub binary: bool,
    pub delimiter: char,
    /// The string that stands for NULL (`\N` in text, empty in CSV).
    pub null: String,
    pub header: bool,
    pub quote: char,
    pub escape: char,
}

impl Default for CopyFormat {
    fn default() -> Self {
        CopyFormat {
            csv: false,
            binary: false,
            delimiter: '\t',
            null: "\\N".into(),
            header: false,
            quote: '"',
            escape: '"',
        }
    }
}

fn not_supported(what: impl Into<String>) -> ExecError {
    ExecError::new(sqlstate::FEATURE_NOT_SUPPORTED, what)
}

impl CopyFormat {
    /// The format that COPY's options describe (new `WITH (FORMAT csv, ...)` and
    /// legacy `WITH CSV HEADER` spellings).
    pub(crate) fn from_options(
        options: &[ast::CopyOption],
        legacy: &[ast::CopyLegacyOption],
    ) -> Result<Self> {
        let mut f = CopyFormat::default();
        let mut null = None;
        let mut delimiter = None;
        let mut escape = None;
        for o in options {
            match o {
                ast::CopyOption::Format(name) => match name.value.to_lowercase().as_str() {
                    "csv" => (f.csv, f.binary) = (true, false),
                    "text" => (f.csv, f.binary) = (false, false),
                    "binary" => (f.csv, f.binary) = (false, true),
                    other => {
                        return Err(ExecError::new(
                            sqlstate::INVALID_PARAMETER_VALUE,
                            format!("COPY format \"{other}\" not recognized"),
                        ));
                    }
                },
                ast::CopyOption::Delimiter(c) => delimiter = Some(*c),
                ast::CopyOption::Null(s) => null = Some(s.clone()),
                ast::CopyOption::Header(h) => f.header = *h,
                ast::CopyOption::Quote(c) => f.quote = *c,
                ast::CopyOption::Escape(c) => escape = Some(*c),
                ast::CopyOption::Encoding(e) => {
                    let e = e.to_lowercase().replace(['-', '_'], "");
                    if e != "utf8" && e != "unicode" {
                        return Err(not_supported(format!(
                            "COPY encoding \"{e}\" is not supported; use UTF8"
                        )));
                    }
                }
                ast::CopyOption::Freeze(_) => {}
                other => {
                    return Err(not_supported(format!(
                        "COPY option {other} is not supported"
                    )));
                }
            }
        }
        for o in legacy {
            match o {
                ast::CopyLegacyOption::Csv(csv) => {
                    f.csv = true;
                    for c in csv {
                        match c {
                            ast::CopyLegacyCsvOption::Header => f.header = true,
                            ast::CopyLegacyCsvOption::Quote(q) => f.quote = *q,
                            ast::CopyLegacyCsvOption::Escape(e) => escape = Some(*e),
                            other => {
                                return Err(not_supported(format!(
                                    "COPY option {other} is not supported"
                                )));
                            }
                        }
                    }
                }
                ast::CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
                ast::CopyLegacyOption::Null(s) => null = Some(s.clone()),
                ast::CopyLegacyOption::Header => f.header = true,
                ast::CopyLegacyOption::Binary => f.binary = true,
                other => {
                    return Err(not_supported(format!(
                        "COPY option {other} is not supported"
                    )));
                }
            }
        }
        if f.binary {
            let text_only = [
                ("DELIMITER", delimiter.is_some()),
                ("NULL", null.is_some()),
                ("HEADER", f.header),
                ("ESCAPE", escape.is_some()),
            ];
            if let Some((option, _)) = text_only.iter().find(|(_, given)| *given) {
                return Err(ExecError::new(
                    sqlstate::SYNTAX_ERROR,
                    format!("cannot specify {option} in BINARY mode"),
                ));
            }
            return Ok(f);
        }
        if f.csv {
            f.delimiter = delimiter.unwrap_or(',');
            f.null = null.unwrap_or_default();
            f.escape = escape.unwrap_or(f.quote);
        } else {
            f.delimiter = delimiter.unwrap_or('\t');
            f.null = null.unwrap_or_else(|| "\\N".into());
        }
        for (what, c) in [
            ("delimiter", f.delimiter),
            ("quote", f.quote),
            ("escape", f.escape),
        ] {
            if !c.is_ascii() {
                return Err(not_supported(format!(
                    "COPY {what} must be a single one-byte character"
                )));
            }
        }
        if f.delimiter == '\n' || f.delimiter == '\r' || (f.csv && f.delimiter == f.quote) {
            return Err(ExecError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("COPY delimiter {:?} cannot be used", f.delimiter),
            ));
        }
        Ok(f)
    }

    /// CopyInResponse / CopyOutResponse overall format code: 1 for binary, else
    /// 0 (text; CSV is text too).
    pub fn wire_format(&self) -> i8 {
        i8::from(self.binary)
    }
}

/// A COPY FROM STDIN in progress: rows decoded so far, as typed batches.
#[derive(Debug)]
pub struct CopyIn {
    table: String,
    meta: TableMeta,
    /// Indexes into `meta.columns`, in the order the data carries them.
    targets: Vec<usize>,
    pub format: CopyFormat,
    /// Bytes received but not yet ending a whole row.
    pending: Vec<u8>,
    /// Decoded fields not yet turned into a batch: one builder per target column
    /// (values are copied into one buffer per column, not allocated one by one).
    columns: Vec<StringBuilder>,
    /// Binary format: the values decoded so far, one builder per target column,
    /// and where the stream is.
    binary_columns: Vec<binary::ColumnBuilder>,
    binary_stage: binary::Stage,
    /// Rows in `columns` (or `binary_columns`).
    buffered: usize,
    header_skipped: bool,
    line: u64,
    pub(crate) requests: Vec<Request>,
    pub(crate) row_count: u64,
}

impl CopyIn {
    pub(crate) fn new(
        table: String,
        meta: TableMeta,
        targets: Vec<usize>,
        format: CopyFormat,
    ) -> Self {
        let binary_columns = match format.binary {
            true => targets
                .iter()
                .map(|&i| {
                    binary::ColumnBuilder::new(&meta.columns[i].name, meta.columns[i].column_type)
                })
                .collect(),
            false => Vec::new(),
        };
        CopyIn {
            table,
            meta,
            targets,
            header_skipped: !format.header,
            format,
            pending: Vec::new(),
            columns: Vec::new(),
            binary_columns,
            binary_stage: binary::Stage::default(),
            buffered: 0,
            line: 0,
            requests: Vec::new(),
            row_count: 0,
        }
    }

    /// Bytes received that do not end a row yet: the row being assembled.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// The number of columns the data carries.
    pub fn columns(&self) -> usize {
        self.targets.len()
    }

    /// Takes one CopyData message.
    pub fn feed(&mut self, data: &[u8]) -> Result<()> {
        self.pending.extend_from_slice(data);
        if self.format.binary {
            return self.decode_binary();
        }
        let Some(end) = self.complete_prefix() else {
            return Ok(());
        };
        let chunk: Vec<u8> = self.pending.drain(..end).collect();
        self.decode(&chunk)
    }

    /// Decodes what is left (a last row without a newline) and returns the
    /// storage requests for every row.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if self.format.binary {
            self.decode_binary()?;
            // The data may end with the trailer or at a tuple boundary.
            if !self.pending.is_empty() || self.binary_stage == binary::Stage::Header {
                return Err(ExecError::new(
                    sqlstate::BAD_COPY_FILE_FORMAT,
                    format!(
                        "unexpected end of binary COPY data (COPY {}, after row {})",
                        self.table,
                        self.row_count + self.buffered as u64
                    ),
                ));
            }
            return self.flush_rows();
        }
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.decode(&rest)?;
        }
        self.flush_rows()
    }

    /// The length of the longest prefix of `pending` made of whole rows.
    fn complete_prefix(&self) -> Option<usize> {
        if !self.format.csv {
            return self
                .pending
                .iter()
                .rposition(|b| *b == b'\n')
                .map(|i| i + 1);
        }
        // In CSV a newline inside quotes belongs to the value.
        let (quote, escape) = (self.format.quote as u8, self.format.escape as u8);
        let mut in_quotes = false;
        let mut last = None;
        let mut i = 0;
        while i < self.pending.len() {
            let b = self.pending[i];
            if in_quotes {
                if b == escape && escape != quote && self.pending.get(i + 1) == Some(&quote) {
                    i += 1;
                } else if b == quote {
                    in_quotes = false;
                }
            } else if b == quote {
                in_quotes = true;
            } else if b == b'\n' {
                last = Some(i + 1);
            }
            i += 1;
        }
        last
    }

    /// Decodes the whole binary tuples received so far.
    fn decode_binary(&mut self) -> Result<()> {
        let (used, rows) = binary::decode(
            &self.pending,
            &mut self.binary_stage,
            &mut self.binary_columns,
        )
        .map_err(|mut e| {
            e.message = format!(
                "{} (COPY {}, row {})",
                e.message,
                self.table,
                self.row_count + self.buffered as u64 + 1
            );
            e
        })?;
        self.pending.drain(..used);
        self.buffered += rows;
        if self.buffered >= ROWS_PER_BATCH {
            self.flush_rows()?;
        }
        Ok(())
    }

    fn decode(&mut self, chunk: &[u8]) -> Result<()> {
        let text = std::str::from_utf8(chunk).map_err(|e| {
            ExecError::new(
                sqlstate::CHARACTER_NOT_IN_REPERTOIRE,
                format!("invalid byte sequence for encoding \"UTF8\" in COPY data: {e}"),
            )
        })?;
        if self.format.csv {
            let format = self.format.clone();
            let outcome = for_each_csv_record(text, &format, |fields| self.take_record(fields));
            match outcome {
                Ok(()) => Ok(()),
                Err(CsvError::Record(e)) => Err(e),
                Err(CsvError::Unterminated) => {
                    self.line += 1;
                    Err(self.bad_row("unterminated CSV quoted field".into()))
                }
            }
        } else {
            for line in text.split_terminator('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                // The end-of-data marker psql sends, checked before unescaping
                // (which would make it ".").
                if line == "\\." {
                    self.line += 1;
                    continue;
                }
                let fields = text_fields(line, &self.format);
                match fields {
                    Ok(fields) => {
                        let fields: Vec<Option<&str>> =
                            fields.iter().map(|f| f.as_deref()).collect();
                        self.take_record(&fields)?;
                    }
                    Err(m) => {
                        self.line += 1;
                        return Err(self.bad_row(m));
                    }
                }
            }
            Ok(())
        }
    }

    /// One decoded record: checked against the target columns and buffered.
    fn take_record(&mut self, fields: &[Option<&str>]) -> Result<()> {
        self.line += 1;
        if !self.header_skipped {
            self.header_skipped = true;
            return Ok(());
        }
        if fields.len() == 1 && fields[0] == Some("\\.") {
            return Ok(()); // the end-of-data marker psql sends
        }
        if fields.len() == 1 && self.targets.len() != 1 && fields[0] == Some("") {
            return Ok(()); // an empty line
        }
        if fields.len() > self.targets.len() {
            return Err(self.bad_row("extra data after last expected column".into()));
        }
        if fields.len() < self.targets.len() {
            let missing = &self.meta.columns[self.targets[fields.len()]].name;
            return Err(self.bad_row(format!("missing data for column \"{missing}\"")));
        }
        if self.columns.is_empty() {
            self.columns = (0..self.targets.len())
                .map(|_| StringBuilder::new())
                .collect();
        }
        for (column, value) in self.columns.iter_mut().zip(fields) {
            column.append_option(*value);
        }
        self.buffered += 1;
        if self.buffered >= ROWS_PER_BATCH {
            self.flush_rows()?;
        }
        Ok(())
    }

    fn bad_row(&self, message: String) -> ExecError {
        ExecError::new(
            sqlstate::BAD_COPY_FILE_FORMAT,
            format!("{message} (COPY {}, line {})", self.table, self.line),
        )
    }

    /// Turns decoded rows into one typed batch (text -> column type, checked).
    fn flush_rows(&mut self) -> Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.buffered);
        let mut batch = Batch::new();
        for (column, &i) in self.binary_columns.iter_mut().zip(&self.targets) {
            batch = batch.with(self.meta.columns[i].name.clone(), column.finish());
        }
        for (column, &i) in self.columns.iter_mut().zip(&self.targets) {
            let c = &self.meta.columns[i];
            let strings: ArrayRef = Arc::new(column.finish());
            let column = array_to_column(&strings, c.column_type, &c.name).map_err(|mut e| {
                e.message = format!("{} (COPY {})", e.message, self.table);
                e
            })?;
            batch = batch.with(c.name.clone(), column);
        }
        self.row_count += rows as u64;
        self.requests.push(Request::Append {
            table: self.table.clone(),
            batch,
        });
        Ok(())
    }
}

/// Splits one line of text format into fields, undoing backslash escapes.
fn text_fields(line: &str, f: &CopyFormat) -> std::result::Result<Vec<Option<String>>, String> {
    let mut out = Vec::new();
    for raw in line.split(f.delimiter) {
        if raw == f.null {
            out.push(None);
            continue;
        }
        let mut s = String::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\\' {
                s.push(c);
                continue;
            }
            match chars.next() {
                Some('b') => s.push('\u{8}'),
                Some('f') => s.push('\u{c}'),
                Some('n') => s.push('\n'),
                Some('r') => s.push('\r'),
                Some('t') => s.push('\t'),
                Some('v') => s.push('\u{b}'),
                Some(d @ '0'..='7') => {
                    let mut v = d.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match chars.peek().and_then(|c| c.to_digit(8)) {
                            Some(x) => {
                                v = v * 8 + x;
                                chars.next();
                            }
                            None => break,
                        }
                    }
                    s.push(char::from_u32(v).ok_or("invalid octal escape")?);
                }
                Some('x') => {
                    let mut v = 0;
                    let mut digits = 0;
                    while digits < 2 {
                        match chars.peek().and_then(|c| c.to_digit(16)) {
                            Some(x) => {
                                v = v * 16 + x;
                                chars.next();
                                digits += 1;
                            }
                            None => break,
                        }
                    }
                    if digits == 0 {
                        s.push('x');
                    } else {
                        s.push(char::from_u32(v).ok_or("invalid hex escape")?);
                    }
                }
                Some(other) => s.push(other),
                None => return Err("a backslash at the end of a line".into()),
            }
        }
        out.push(Some(s));
    }
    Ok(out)
}

/// The records of CSV text as owned fields (what the tests compare).
#[cfg(test)]
fn csv_records(
    text: &str,
    f: &CopyFormat,
) -> Vec<std::result::Result<Vec<Option<String>>, String>> {
    let mut records = Vec::new();
    let outcome = for_each_csv_record(text, f, |fields| {
        records.push(Ok(fields.iter().map(|s| s.map(str::to_string)).collect()));
        Ok(())
    });
    if outcome.is_err() {
        records.push(Err("unterminated CSV quoted field".to_string()));
    }
    records
}

/// Why splitting CSV stopped.
enum CsvError {
    /// The text ends inside a quoted field.
    Unterminated,
    /// `on_record` refused a record.
    Record(ExecError),
}

/// Splits CSV `text` (whole records) and calls `on_record` with each record's
/// fields. An unquoted field equal to the NULL string is NULL (`None`); a quoted
/// one is always a value. Unquoted fields are slices of `text`; only fields with
/// quotes are assembled in a scratch buffer. Delimiter, quote and escape are
/// single bytes (checked when the options are read), so every byte that matters
/// here is ASCII and slicing at them keeps UTF-8 whole.
fn for_each_csv_record(
    text: &str,
    f: &CopyFormat,
    mut on_record: impl FnMut(&[Option<&str>]) -> Result<()>,
) -> std::result::Result<(), CsvError> {
    /// Where a field's text is.
    enum Field {
        Null,
        Text(usize, usize),
        Scratch(usize, usize),
    }
    let bytes = text.as_bytes();
    let (delim, quote, escape) = (f.delimiter as u8, f.quote as u8, f.escape as u8);
    let special = |b: u8| b == delim || b == quote || b == b'\n' || b == b'\r';
    let mut scratch = String::new();
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        // One record.
        scratch.clear();
        fields.clear();
        loop {
            let start = pos;
            while pos < bytes.len() && !special(bytes[pos]) {
                pos += 1;
            }
            if pos < bytes.len() && bytes[pos] == quote {
                // A field with quotes: assembled in the scratch buffer.
                let from = scratch.len();
                scratch.push_str(&text[start..pos]);
                let mut in_quotes = false;
                while pos < bytes.len() {
                    let b = bytes[pos];
                    if in_quotes {
                        if b == escape && bytes.get(pos + 1) == Some(&quote) {
                            scratch.push(f.quote);
                            pos += 2;
                            continue;
                        }
                        if b == quote {
                            in_quotes = false;
                            pos += 1;
                            continue;
                        }
                    } else if b == quote {
                        in_quotes = true;
                        pos += 1;
                        continue;
                    } else if b == delim || b == b'\n' || b == b'\r' {
                        break;
                    }
                    // Copy the run of ordinary bytes up to the next one that matters.
                    let run = pos;
                    pos += 1;
                    while pos < bytes.len() && !special(bytes[pos]) && bytes[pos] != escape {
                        pos += 1;
                    }
                    scratch.push_str(&text[run..pos]);
                }
                if in_quotes {
                    return Err(CsvError::Unterminated);
                }
                fields.push(Field::Scratch(from, scratch.len()));
            } else if text[start..pos] == *f.null {
                fields.push(Field::Null);
            } else {
                fields.push(Field::Text(start, pos));
            }
            match bytes.get(pos) {
                Some(&b) if b == delim => pos += 1,
                Some(b'\r') => {
                    pos += 1;
                    if bytes.get(pos) == Some(&b'\n') {
                        pos += 1;
                    }
                    break;
                }
                Some(b'\n') => {
                    pos += 1;
                    break;
                }
                _ => break,
            }
        }
        let record: Vec<Option<&str>> = fields
            .iter()
            .map(|field| match *field {
                Field::Null => None,
                Field::Text(a, b) => Some(&text[a..b]),
                Field::Scratch(a, b) => Some(&scratch[a..b]),
            })
            .collect();
        on_record(&record).map_err(CsvError::Record)?;
    }
    Ok(())
}

/// Result rows as COPY TO STDOUT sends them: one CopyData message per row.
/// `COPY ... TO STDOUT` under way: the query's rows, encoded line by line as
/// the client reads them.
#[derive(Debug)]
pub struct CopyOut {
    /// Columns per line.
    pub columns: usize,
    format: CopyFormat,
    names: Vec<String>,
    rows: crate::stream::RowStream,
}

impl CopyOut {
    pub(crate) fn new(
        format: CopyFormat,
        names: Vec<String>,
        rows: crate::stream::RowStream,
    ) -> Self {
        CopyOut {
            columns: names.len(),
            format,
            names,
            rows,
        }
    }

    /// See [`crate::stream::RowStream::with_stop`].
    pub fn with_stop(
        mut self,
        stop: impl std::future::Future<Output = ExecError> + Send + 'static,
    ) -> Self {
        self.rows = self.rows.with_stop(stop);
        self
    }

    /// The lines to send, the header (when asked for) first.
    pub fn lines(self) -> impl futures::Stream<Item = Result<Vec<u8>>> + Send {
        use futures::StreamExt;
        let CopyOut {
            format,
            names,
            rows,
            ..
        } = self;
        let header = encode_rows(&format, &[], Some(&names)).unwrap_or_default();
        let body = rows.flat_map(move |batch| {
            let lines = batch.and_then(|b| encode_rows(&format, &[b], None));
            futures::stream::iter(match lines {
                Ok(lines) => lines.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
        });
        futures::stream::iter(header.into_iter().map(Ok)).chain(body)
    }
}

pub fn encode_rows(
    format: &CopyFormat,
    batches: &[RecordBatch],
    header: Option<&[String]>,
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if let (true, Some(names)) = (format.header, header) {
        let cells: Vec<Option<String>> = names.iter().map(|n| Some(n.clone())).collect();
        out.push(encode_row(format, &cells));
    }
    // The special characters are compared byte by byte when they are ASCII
    // (UTF-8 never repeats an ASCII byte inside a longer character), which
    // spares a String per value; otherwise the text of each value is escaped
    // character by character.
    let bytewise =
        format.delimiter.is_ascii() && format.quote.is_ascii() && format.escape.is_ascii();
    let mut cell = Vec::new();
    for b in batches {
        let columns: Vec<TextColumn> = b.columns().iter().map(TextColumn::for_copy).collect();
        for r in 0..b.num_rows() {
            if !bytewise {
                let cells = b
                    .columns()
                    .iter()
                    .map(|c| format_value(c, r))
                    .collect::<Result<Vec<_>>>()?;
                out.push(encode_row(format, &cells));
                continue;
            }
            let mut line = Vec::with_capacity(16 * b.num_columns());
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    line.push(format.delimiter as u8);
                }
                cell.clear();
                if c.write(&mut cell, r)? {
                    escape_cell(format, &cell, &mut line);
                } else {
                    line.extend_from_slice(format.null.as_bytes());
                }
            }
            line.push(b'\n');
            out.push(line);
        }
    }
    Ok(out)
}

/// One value's text `v` as [`encode_row`] writes it, for a format whose
/// delimiter, quote and escape are ASCII.
fn escape_cell(f: &CopyFormat, v: &[u8], line: &mut Vec<u8>) {
    let (delimiter, quote, escape) = (f.delimiter as u8, f.quote as u8, f.escape as u8);
    if f.csv {
        let needs_quotes = v.is_empty() && f.null.is_empty()
            || v == f.null.as_bytes()
            || v.iter()
                .any(|&c| c == delimiter || c == quote || c == b'\n' || c == b'\r')
            || v.starts_with(b"\\.");
        if !needs_quotes {
            return line.extend_from_slice(v);
        }
        line.push(quote);
        for &c in v {
            if c == quote || c == escape {
                line.push(escape);
            }
            line.push(c);
        }
        line.push(quote);
        return;
    }
    for &c in v {
        match c {
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            b'\t' if delimiter == b'\t' => line.extend_from_slice(b"\\t"),
            c if c == delimiter => line.extend_from_slice(&[b'\\', c]),
            c => line.push(c),
        }
    }
}

fn encode_row(f: &CopyFormat, cells: &[Option<String>]) -> Vec<u8> {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(f.delimiter);
        }
        match cell {
            None => line.push_str(&f.null),
            Some(v) if f.csv => {
                let needs_quotes = v.is_empty() && f.null.is_empty()
                    || *v == f.null
                    || v.contains([f.delimiter, f.quote, '\n', '\r'])
                    || v.starts_with("\\.");
                if needs_quotes {
                    line.push(f.quote);
                    for c in v.chars() {
                        if c == f.quote || c == f.escape {
                            line.push(f.escape);
                        }
                        line.push(c);
                    }
                    line.push(f.quote);
                } else {
                    line.push_str(v);
                }
            }
            Some(v) => {
                for c in v.chars() {
                    match c {
                        '\\' => line.push_str("\\\\"),
                        '\n' => line.push_str("\\n"),
                        '\r' => line.push_str("\\r"),
                        '\t' if f.delimiter == '\t' => line.push_str("\\t"),
                        c if c == f.delimiter => {
                            line.push('\\');
                            line.push(c);
                        }
                        c => line.push(c),
                    }
                }
            }
        }
    }
    line.push('\n');
    line.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The byte-wise escaping writes what the character-wise one does, in
        /// text and CSV, with the default and with other ASCII punctuation.
        #[test]
        fn bytewise_escaping_matches(value in "[a-z,;|\"'\\\t\n\r é.N]{0,12}", csv: bool, pick in 0usize..3) {
            let mut f = CopyFormat { csv, ..CopyFormat::default() };
            if csv {
                f.delimiter = ',';
                f.null = String::new();
            }
            match pick {
                1 => f.delimiter = ';',
                2 => {
                    f.delimiter = '|';
                    f.quote = '\'';
                    f.escape = '\\';
                }
                _ => {}
            }
            let mut line = Vec::new();
            escape_cell(&f, value.as_bytes(), &mut line);
            line.push(b'\n');
            proptest::prop_assert_eq!(line, encode_row(&f, &[Some(value.clone())]));
        }
    }

    fn csv() -> CopyFormat {
        CopyFormat {
            csv: true,
            binary: false,
            delimiter: ',',
            null: String::new(),
            header: false,
            quote: '"',
            escape: '"',
        }
    }

    #[test]
    fn text_fields_undo_escapes_and_find_nulls() {
        let f = CopyFormat::default();
        assert_eq!(
            text_fields("a\\tb\t\\N\t\\\\x\t\\101", &f).expect("test value"),
            vec![
                Some("a\tb".into()),
                None,
                Some("\\x".into()),
                Some("A".into())
            ]
        );
    }

    #[test]
    fn csv_quotes_newlines_and_nulls() {
        let recs = csv_records("1,\"a,\"\"b\"\"\nc\",\n2,\"\",x\n", &csv());
        assert_eq!(
            recs,
            vec![
                Ok(vec![Some("1".into()), Some("a,\"b\"\nc".into()), None]),
                Ok(vec![
                    Some("2".into()),
                    Some(String::new()),
                    Some("x".into())
                ]),
            ]
        );
        assert!(csv_records("1,\"open\n", &csv())[0].is_err());
    }

    #[test]
    fn encoded_rows_decode_back() {
        for f in [CopyFormat::default(), csv()] {
            let cells = vec![
                Some("a\tb\n\"c\",\\".to_string()),
                None,
                Some(String::new()),
            ];
            let line = String::from_utf8(encode_row(&f, &cells)).expect("test value");
            let back = if f.csv {
                csv_records(&line, &f)
                    .pop()
                    .expect("test value")
                    .expect("test value")
            } else {
                text_fields(line.trim_end_matches('\n'), &f).expect("test value")
            };
            assert_eq!(back, cells, "{line:?}");
        }
    }
}
