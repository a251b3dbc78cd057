//! A client session: runs statements, keeps the open transaction.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast;
use tidemark_parser::Statement;
use tidemark_storage::{Batch, Database, Request, Transaction};

use crate::convert::array_to_column;
use crate::ddl;
use crate::error::{ExecError, Result, sqlstate};
use crate::provider::{ScanStats, SnapshotSchema};
use crate::system;

/// The result of one statement.
#[derive(Debug, Clone)]
pub enum Output {
    /// A result set.
    Rows {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// A command's completion tag, as PostgreSQL sends it (`INSERT 0 3`, `CREATE TABLE`, ...).
    Command { tag: String },
}

impl Output {
    pub(crate) fn command(tag: impl Into<String>) -> Self {
        Output::Command { tag: tag.into() }
    }
}

/// Transaction state, as ReadyForQuery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Idle,
    InTransaction,
    /// An error happened inside the transaction: everything until ROLLBACK fails.
    Failed,
}

/// One client's session over a shared database.
#[derive(Debug)]
pub struct Session {
    db: Arc<Database>,
    tx: Option<Transaction>,
    failed: bool,
    scans: Arc<ScanStats>,
}

impl Session {
    pub fn new(db: Arc<Database>) -> Self {
        Session {
            db,
            tx: None,
            failed: false,
            scans: Arc::new(ScanStats::default()),
        }
    }

    pub fn tx_status(&self) -> TxStatus {
        match (&self.tx, self.failed) {
            (None, _) => TxStatus::Idle,
            (Some(_), false) => TxStatus::InTransaction,
            (Some(_), true) => TxStatus::Failed,
        }
    }

    /// Partition parts opened and pruned by this session's scans so far.
    pub fn scan_stats(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering;
        (
            self.scans.parts_scanned.load(Ordering::Relaxed),
            self.scans.parts_pruned.load(Ordering::Relaxed),
        )
    }

    /// Runs the statements in `sql` until one fails: the outputs of those that
    /// ran, and the error that stopped the rest (what the simple query protocol sends).
    pub async fn execute_script(&mut self, sql: &str) -> (Vec<Output>, Option<ExecError>) {
        let mut out = Vec::new();
        let result = match tidemark_parser::parse(sql) {
            Ok(statements) => {
                let mut result = Ok(());
                for s in statements {
                    match self.execute_statement(s).await {
                        Ok(o) => out.push(o),
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                result
            }
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(()) => (out, None),
            Err(e) => {
                // An error inside a transaction aborts it until ROLLBACK.
                if self.tx.is_some() {
                    self.failed = true;
                }
                (out, Some(e))
            }
        }
    }

    /// Runs every statement in `sql`, stopping at the first error.
    pub async fn execute(&mut self, sql: &str) -> Result<Vec<Output>> {
        match self.execute_script(sql).await {
            (_, Some(e)) => Err(e),
            (out, None) => Ok(out),
        }
    }

    async fn execute_statement(&mut self, s: Statement) -> Result<Output> {
        if let Some(end) = transaction_control(&s) {
            return self.transaction_control(end);
        }
        if self.failed {
            return Err(ExecError::new(
                sqlstate::IN_FAILED_SQL_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        match s {
            Statement::CreateTable(c) => {
                let (requests, tag) = ddl::create_table(self, *c).await?;
                self.submit(requests)?;
                Ok(Output::command(tag))
            }
            Statement::DropTable { names, if_exists } => {
                self.submit(
                    names
                        .into_iter()
                        .map(|name| Request::DropTable { name, if_exists })
                        .collect(),
                )?;
                Ok(Output::command("DROP TABLE"))
            }
            Statement::Truncate { names } => {
                self.submit(
                    names
                        .into_iter()
                        .map(|table| Request::Truncate { table })
                        .collect(),
                )?;
                Ok(Output::command("TRUNCATE TABLE"))
            }
            Statement::RenameTable { from, to } => {
                self.submit(vec![Request::RenameTable { from, to }])?;
                Ok(Output::command("RENAME TABLE"))
            }
            Statement::AlterTable { table, op } => {
                let requests = ddl::alter_table(self, table, *op).await?;
                self.submit(requests)?;
                Ok(Output::command("ALTER TABLE"))
            }
            Statement::Latest { query, latest } => crate::latest::run(self, query, latest).await,
            Statement::Sample { query, sample } => crate::sample::run(self, query, sample).await,
            Statement::Standard(s) => match *s {
                ast::Statement::Insert(insert) => self.insert(insert).await,
                ast::Statement::Update(u) => crate::dml::update(self, u).await,
                ast::Statement::Delete(d) => crate::dml::delete(self, d).await,
                other => self.query(other).await,
            },
        }
    }

    fn transaction_control(&mut self, s: TxControl) -> Result<Output> {
        match s {
            TxControl::Begin => {
                if self.tx.is_none() {
                    self.tx = Some(Transaction::new());
                    self.failed = false;
                }
                Ok(Output::command("BEGIN"))
            }
            TxControl::Commit => {
                let tx = self.tx.take();
                let failed = std::mem::take(&mut self.failed);
                match tx {
                    Some(_) if failed => Ok(Output::command("ROLLBACK")),
                    Some(tx) => {
                        self.db.commit(tx)?;
                        Ok(Output::command("COMMIT"))
                    }
                    None => Ok(Output::command("COMMIT")),
                }
            }
            TxControl::Rollback => {
                self.tx = None;
                self.failed = false;
                Ok(Output::command("ROLLBACK"))
            }
        }
    }

    /// Commits `requests` now, or adds them to the open transaction.
    pub(crate) fn submit(&mut self, requests: Vec<Request>) -> Result<u64> {
        match &mut self.tx {
            Some(tx) => {
                tx.requests.extend(requests);
                Ok(0)
            }
            None => Ok(self.db.commit(Transaction { requests })?.rows_written),
        }
    }

    /// A table as this session sees it, or 42P01.
    pub(crate) fn table(&self, name: &str) -> Result<tidemark_storage::TableReader> {
        self.view()?.table(name).ok_or_else(|| {
            ExecError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("relation \"{name}\" does not exist"),
            )
        })
    }

    /// Plans and runs a query written by Tidemark itself (see `rewrite`).
    pub(crate) async fn run_sql(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.run_query(ast::Statement::Query(crate::rewrite::parse_query(sql)?))
            .await
    }

    /// What this session sees: the newest commit, plus its own open transaction's
    /// writes (a storage preview) when one is open.
    pub(crate) fn view(&self) -> Result<tidemark_storage::Snapshot> {
        match &self.tx {
            Some(tx) if !tx.requests.is_empty() => Ok(self.db.preview(tx)?),
            _ => Ok(self.db.snapshot()),
        }
    }

    /// A DataFusion context over a fresh snapshot of every table (plus `extra`,
    /// a statement's own intermediate table).
    fn context_with(
        &self,
        extra: Option<(String, Arc<dyn datafusion::catalog::TableProvider>)>,
    ) -> Result<SessionContext> {
        let snapshot = self.view()?;
        let mut config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("tidemark", "public")
            .with_create_default_catalog_and_schema(false);
        // A table scan is one stream in designated-timestamp order, and results
        // without ORDER BY keep that order: no splitting of scans and no
        // round-robin shuffles (hash-partitioned aggregation still runs in parallel).
        config.options_mut().optimizer.repartition_file_scans = false;
        config
            .options_mut()
            .optimizer
            .enable_round_robin_repartition = false;
        let ctx = SessionContext::new_with_config(config);
        let catalog = MemoryCatalogProvider::new();
        catalog
            .register_schema(
                "public",
                Arc::new(SnapshotSchema {
                    snapshot: snapshot.clone(),
                    scans: self.scans.clone(),
                    extra,
                }),
            )
            .map_err(ExecError::from)?;
        ctx.register_catalog("tidemark", Arc::new(catalog));
        system::register(&ctx, snapshot);
        Ok(ctx)
    }

    /// Plans and runs a standard statement with DataFusion.
    pub(crate) async fn run_query(
        &self,
        s: ast::Statement,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.run_query_over(s, None).await
    }

    /// Like `run_query`, with one extra in-memory table visible to the statement.
    pub(crate) async fn run_query_over(
        &self,
        s: ast::Statement,
        extra: Option<(&str, RecordBatch)>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let extra = match extra {
            Some((name, batch)) => {
                let table =
                    datafusion::datasource::MemTable::try_new(batch.schema(), vec![vec![batch]])?;
                Some((
                    name.to_string(),
                    Arc::new(table) as Arc<dyn datafusion::catalog::TableProvider>,
                ))
            }
            None => None,
        };
        let ctx = self.context_with(extra)?;
        let plan = ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(s)))
            .await?;
        let df = ctx.execute_logical_plan(plan).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok((schema, batches))
    }

    async fn query(&self, s: ast::Statement) -> Result<Output> {
        match &s {
            ast::Statement::Query(_)
            | ast::Statement::Explain { .. }
            | ast::Statement::ShowVariable { .. } => {}
            _ => {
                return Err(ExecError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    format!("statement not supported: {}", verb(&s)),
                ));
            }
        }
        let explain = matches!(s, ast::Statement::Explain { .. });
        self.scans.take_log();
        let (schema, mut batches) = self.run_query(s).await?;
        if explain {
            // Scans are planned (and pruned) during physical planning: show what
            // each opened, as rows of the EXPLAIN output.
            let log = self.scans.take_log();
            if !log.is_empty() && schema.fields().len() == 2 {
                use datafusion::arrow::array::StringArray;
                let kinds = StringArray::from_iter_values(log.iter().map(|_| "tidemark_scan"));
                let lines = StringArray::from_iter_values(log.iter());
                batches.push(RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(kinds), Arc::new(lines)],
                )?);
            }
        }
        Ok(Output::Rows { schema, batches })
    }

    async fn insert(&mut self, insert: ast::Insert) -> Result<Output> {
        let table = match &insert.table {
            ast::TableObject::TableName(n) => ddl::object_name(n)?,
            other => {
                return Err(ExecError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    format!("INSERT INTO {other} is not supported"),
                ));
            }
        };
        let reader = self.table(&table)?;
        let meta = reader.meta().clone();
        let targets: Vec<usize> = if insert.columns.is_empty() {
            (0..meta.columns.len()).collect()
        } else {
            insert
                .columns
                .iter()
                .map(|c| {
                    let name = c.to_string();
                    let name = if c.to_string().starts_with('"') {
                        name.trim_matches('"').to_string()
                    } else {
                        name
                    };
                    meta.column_index(&name).ok_or_else(|| {
                        ExecError::new(
                            sqlstate::UNDEFINED_COLUMN,
                            format!(
                                "column \"{name}\" of relation \"{}\" does not exist",
                                reader.name()
                            ),
                        )
                    })
                })
                .collect::<Result<_>>()?
        };
        let source = insert.source.ok_or_else(|| {
            ExecError::new(sqlstate::SYNTAX_ERROR, "INSERT needs VALUES or a query")
        })?;
        // Literal VALUES skip query planning; anything else is planned by DataFusion.
        let batches = match crate::values::literal_rows(&source, targets.len()) {
            Some(arrays) => {
                let fields: Vec<datafusion::arrow::datatypes::Field> = arrays
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        datafusion::arrow::datatypes::Field::new(
                            format!("column{}", i + 1),
                            a.data_type().clone(),
                            true,
                        )
                    })
                    .collect();
                let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
                vec![RecordBatch::try_new(schema, arrays)?]
            }
            None => self.run_query(ast::Statement::Query(source)).await?.1,
        };
        let mut rows = 0u64;
        let mut requests = Vec::new();
        for b in batches.iter().filter(|b| b.num_rows() > 0) {
            if b.num_columns() != targets.len() {
                let what = if b.num_columns() > targets.len() {
                    "more"
                } else {
                    "fewer"
                };
                return Err(ExecError::new(
                    sqlstate::SYNTAX_ERROR,
                    format!("INSERT has {what} expressions than target columns"),
                ));
            }
            let mut batch = Batch::new();
            for (k, &i) in targets.iter().enumerate() {
                let c = &meta.columns[i];
                batch = batch.with(
                    c.name.clone(),
                    array_to_column(b.column(k), c.column_type, &c.name)?,
                );
            }
            rows += b.num_rows() as u64;
            requests.push(Request::Append {
                table: reader.name().to_string(),
                batch,
            });
        }
        self.submit(requests)?;
        Ok(Output::command(format!("INSERT 0 {rows}")))
    }
}

#[derive(Debug, Clone, Copy)]
enum TxControl {
    Begin,
    Commit,
    Rollback,
}

fn transaction_control(s: &Statement) -> Option<TxControl> {
    match s {
        Statement::Standard(s) => match s.as_ref() {
            ast::Statement::StartTransaction { .. } => Some(TxControl::Begin),
            ast::Statement::Commit { .. } => Some(TxControl::Commit),
            ast::Statement::Rollback { .. } => Some(TxControl::Rollback),
            _ => None,
        },
        _ => None,
    }
}

/// The first words of a statement, for messages.
fn verb(s: &ast::Statement) -> String {
    s.to_string()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}
