//! infra-query: SQL over the infralog archive with DataFusion.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let ctx = infralog_query::open("./data").await?;
//! let batches = infralog_query::run_sql(&ctx, "SELECT count(*) FROM logs").await?;
//! print!("{}", infralog_query::output::format_batches(&batches, Default::default())?);
//! # Ok(()) }
//! ```
//!
//! - [`catalog`]: archive location (path or URL) and the tables registered over it;
//! - [`archive_store`]: the archive's object store, hiding files a compacted file holds;
//! - [`fresh`]: `logs` plus the rows still in a local collector's spool, each once;
//! - [`windows`]: `T_since('24h')` and `T_between(from, to)` for every table `T`;
//! - [`output`]: table / CSV / JSON-lines rendering, timestamps as RFC 3339 in a zone;
//! - [`chart`]: charts of a result, in the terminal and as PNG / SVG;
//! - [`report`]: the morning overview, as text or one HTML file;
//! - [`pg`]: `serve --pg`, the archive over the PostgreSQL wire protocol, read-only;
//! - [`search`]: the console's search syntax (`word host:h severity>=warning -x`) as SQL;
//! - [`http`]: `serve --http`, the web console and its streaming API, read-only;
//! - [`repl`] and [`complete`]: the interactive shell and its completion.

pub mod archive_store;
pub mod catalog;
pub mod chart;
pub mod complete;
pub mod fresh;
pub mod http;
pub mod output;
pub mod pg;
pub mod repl;
pub mod report;
pub mod search;
pub mod windows;

use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::dialect::dialect_from_str;

pub use catalog::{ArchiveLocation, SpoolChoice};
pub use output::OutputFormat;

/// Number of CPU cores, the default for `target_partitions`.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Session settings for a log archive: Parquet filter pushdown with filter reordering,
/// page index and row-group pruning on, one partition per core, `information_schema`
/// on (for `SHOW TABLES`, `\d`).
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_target_partitions(cores())
        .with_information_schema(true)
        .with_parquet_pruning(true);
    // Plan errors then carry the position of the offending name (see `with_position`).
    config.options_mut().sql_parser.collect_spans = true;
    // DataFusion 55 takes each file's column statistics in the file's own types and does
    // not cast them to the table's: with schema version 1 files (ns timestamps, unsigned
    // integers) beside version 2 files, `SELECT max(timestamp)` or `max(uid)` answered
    // from statistics is wrong (a u32 4294967294 loses to an i64 0; ns and µs values are
    // compared as incomparable). Without table-level statistics, every aggregate is
    // computed from the data, cast on read; row groups and pages are still pruned by
    // their statistics when a file is opened, through the same casts.
    config.options_mut().execution.collect_statistics = false;
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.pushdown_filters = true;
    parquet.reorder_filters = true;
    parquet.enable_page_index = true;
    parquet.bloom_filter_on_read = true;
    config
}

/// A session with [`session_config`] and no tables.
///
/// DataFusion 55 caches directory listings forever by default; the archive gains files
/// while a shell is open, so the listing cache is off (local listings are cheap; an S3
/// archive will want a short TTL instead).
pub fn session_context() -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
        .build_arc()?;
    Ok(SessionContext::new_with_config_rt(
        session_config(),
        runtime,
    ))
}

/// Opens the archive at `archive` (a path or a URL, see [`ArchiveLocation::parse`]) and
/// returns a session with its tables registered. Fails with a message naming the path
/// when a local archive directory does not exist.
pub async fn open(archive: &str) -> Result<SessionContext> {
    let location = ArchiveLocation::parse(archive)?;
    open_location(&location, &SpoolChoice::Beside).await
}

/// [`open`] for an already parsed location, with the rows of `spool` in `logs`.
pub async fn open_location(
    location: &ArchiveLocation,
    spool: &SpoolChoice,
) -> Result<SessionContext> {
    let ctx = session_context()?;
    // Every error of register_archive names the location.
    catalog::register_archive(&ctx, location, spool)?;
    Ok(ctx)
}

/// One line for an error and its causes, `outer: inner`, leaving out a cause whose text
/// the message already holds (DataFusion errors repeat their source in their own text).
pub fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        // DataFusion shows a parser error with its Debug form; its source says it better.
        if let Some(DataFusionError::SQL(..)) = cause.downcast_ref::<DataFusionError>() {
            continue;
        }
        let text = cause.to_string();
        if text.is_empty() || message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Where in the SQL text an error points, `(line, column)` from 1: a planning error's
/// span (unknown column, table, function) or a parser error's `Line: L, Column: C`.
pub fn error_position(error: &anyhow::Error) -> Option<(usize, usize)> {
    for cause in error.chain() {
        if let Some(df) = cause.downcast_ref::<DataFusionError>()
            && let Some(span) = df.diagnostic().and_then(|d| d.span)
            && span.start.line > 0
        {
            return Some((span.start.line as usize, span.start.column as usize));
        }
    }
    let text = format!("{error:#}");
    let at = text.rfind("Line: ")?;
    let rest = &text[at + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

/// `error` with the line of `sql` it points at and a caret under the column, when it
/// points somewhere:
///
/// ```text
/// Schema error: No field named nope. …
///   LINE 1: SELECT nope FROM logs
///                  ^
/// ```
pub fn with_position(error: anyhow::Error, sql: &str) -> anyhow::Error {
    let Some((line, column)) = error_position(&error) else {
        return error;
    };
    let Some(text) = sql.lines().nth(line.saturating_sub(1)) else {
        return error;
    };
    let prefix = format!("  LINE {line}: ");
    let pad: usize = text
        .chars()
        .take(column.saturating_sub(1))
        .map(|c| if c == '\t' { 8 } else { 1 })
        .sum();
    let text = text.replace('\t', "        ");
    anyhow::anyhow!(
        "{}\n{prefix}{text}\n{}^",
        error_message(&error),
        " ".repeat(prefix.len() + pad)
    )
}

/// What SQL may do in infra-query: queries, views, `SET`, `EXPLAIN`; no `INSERT` or
/// `COPY`, so the shell never writes into the archive.
pub fn sql_options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(true)
        .with_allow_dml(false)
        .with_allow_statements(true)
}

/// Splits `sql` into statements with the session's SQL dialect (`;`-separated; a `;`
/// inside a string literal or comment does not split). Empty input gives no statements.
pub fn parse_statements(ctx: &SessionContext, sql: &str) -> Result<Vec<Statement>> {
    let state = ctx.state();
    let options = state.config().options();
    let dialect_name = options.sql_parser.dialect;
    let dialect = dialect_from_str(dialect_name.as_ref())
        .with_context(|| format!("unsupported SQL dialect {dialect_name}"))?;
    let statements = DFParserBuilder::new(sql)
        .with_dialect(dialect.as_ref())
        .with_recursion_limit(options.sql_parser.recursion_limit.get())
        .build()?
        .parse_statements()?;
    Ok(statements.into_iter().collect())
}

/// Plans one statement (checked against [`sql_options`]) and starts it. The schema is
/// returned with the stream so that an empty result still has its column names.
pub async fn execute_statement(
    ctx: &SessionContext,
    statement: Statement,
) -> Result<(SchemaRef, SendableRecordBatchStream)> {
    let plan = ctx.state().statement_to_plan(statement).await?;
    sql_options().verify_plan(&plan)?;
    let df = ctx.execute_logical_plan(plan).await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let stream = df.execute_stream().await?;
    Ok((schema, stream))
}

/// How often a statement is started again when a file it listed was gone by the time it
/// read it (compaction deletes the files a merged file replaces; a new listing no longer
/// names them).
const ATTEMPTS: u32 = 3;

/// Whether `e` says that a listed file was deleted before it was read.
fn file_vanished(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("Object at location") && text.contains("not found")
}

/// Runs one statement to completion. The result always holds at least one batch (empty
/// when there are no rows), so the schema is known.
pub async fn run_statement(ctx: &SessionContext, statement: Statement) -> Result<Vec<RecordBatch>> {
    use futures::TryStreamExt;
    let mut attempt = 1;
    loop {
        let result = async {
            let (schema, stream) = execute_statement(ctx, statement.clone()).await?;
            let mut batches: Vec<RecordBatch> = stream.try_collect().await?;
            if batches.is_empty() {
                batches.push(RecordBatch::new_empty(schema));
            }
            Ok(batches)
        }
        .await;
        match result {
            Err(e) if attempt < ATTEMPTS && file_vanished(&e) => attempt += 1,
            r => return r,
        }
    }
}

/// Runs one statement and writes its result to `out` in `format`, streaming rows for CSV
/// and JSON. Returns the number of rows, or `None` for a statement without result
/// columns (`CREATE VIEW`, `SET`).
pub async fn print_statement<W: std::io::Write>(
    ctx: &SessionContext,
    statement: Statement,
    format: OutputFormat,
    out: W,
) -> Result<Option<usize>> {
    print_statement_with(ctx, statement, format, &output::Display::default(), out).await
}

/// [`print_statement`] with values shown as `display` says (time zone).
pub async fn print_statement_with<W: std::io::Write>(
    ctx: &SessionContext,
    statement: Statement,
    format: OutputFormat,
    display: &output::Display,
    out: W,
) -> Result<Option<usize>> {
    use futures::StreamExt;
    let mut attempt = 1;
    let (schema, first, mut stream) = loop {
        let started = execute_statement(ctx, statement.clone()).await;
        // Nothing is written before the first batch arrives, so until then a vanished
        // file can be answered by starting again.
        let (schema, mut stream) = match started {
            Err(e) if attempt < ATTEMPTS && file_vanished(&e) => {
                attempt += 1;
                continue;
            }
            r => r?,
        };
        match stream.next().await.map(|b| b.map_err(anyhow::Error::from)) {
            Some(Err(e)) if attempt < ATTEMPTS && file_vanished(&e) => attempt += 1,
            first => break (schema, first, stream),
        }
    };
    let has_columns = !schema.fields().is_empty();
    let mut writer = output::BatchWriter::with_display(out, format, schema, display.clone());
    if let Some(batch) = first {
        writer.write(&batch?)?;
    }
    while let Some(batch) = stream.next().await {
        writer.write(&batch?)?;
    }
    let rows = writer.finish()?;
    Ok(has_columns.then_some(rows))
}

/// Runs every statement of `sql` in order and returns the result of the last one (at
/// least one batch, possibly empty). Errors (parse, plan, execution) are returned, never
/// panicked.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let statements = parse_statements(ctx, sql).map_err(|e| with_position(e, sql))?;
    if statements.is_empty() {
        anyhow::bail!("no SQL statement given");
    }
    let mut last = Vec::new();
    for statement in statements {
        last = run_statement(ctx, statement)
            .await
            .map_err(|e| with_position(e, sql))?;
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_on_semicolons_outside_literals() {
        let ctx = session_context().unwrap();
        let stmts = parse_statements(&ctx, "SELECT 'a;b'; -- c;\nSELECT 2;\n").unwrap();
        assert_eq!(stmts.len(), 2);
        assert!(parse_statements(&ctx, "  ").unwrap().is_empty());
        assert!(parse_statements(&ctx, "SELEC 1").is_err());
    }

    #[test]
    fn error_messages_do_not_repeat_causes() {
        let inner = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(inner).context("reading x");
        assert_eq!(error_message(&e), "reading x: disk on fire");
        let e = anyhow::anyhow!("plain");
        assert_eq!(error_message(&e), "plain");
        let ctx = session_context().unwrap();
        let e = parse_statements(&ctx, "SELEC 1").unwrap_err();
        assert_eq!(
            error_message(&e),
            "sql parser error: Expected: an SQL statement, found: SELEC at Line: 1, Column: 1"
        );
    }

    #[tokio::test]
    async fn errors_point_at_their_place_in_the_sql() {
        let ctx = session_context().unwrap();
        let e = run_sql(&ctx, "SELECT 1,\n  nope + 1").await.unwrap_err();
        let text = error_message(&e);
        assert!(text.contains("nope"), "{text}");
        assert!(
            text.ends_with("  LINE 2:   nope + 1\n            ^"),
            "{text}"
        );
        let e = run_sql(&ctx, "SELEC 1").await.unwrap_err();
        let text = error_message(&e);
        assert!(text.ends_with("  LINE 1: SELEC 1\n          ^"), "{text}");
    }

    #[test]
    fn session_defaults() {
        let config = session_config();
        let options = config.options();
        assert!(options.execution.parquet.pushdown_filters);
        assert!(options.execution.parquet.reorder_filters);
        assert!(options.execution.parquet.enable_page_index);
        assert!(options.execution.parquet.pruning);
        assert!(!options.execution.collect_statistics);
        assert_eq!(options.execution.target_partitions, cores());
    }

    #[tokio::test]
    async fn run_sql_returns_last_result_and_schema_when_empty() {
        let ctx = session_context().unwrap();
        let batches = run_sql(&ctx, "SELECT 1 AS a; SELECT 2 AS b WHERE false")
            .await
            .unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].num_rows(), 0);
        assert_eq!(batches[0].schema().field(0).name(), "b");
    }
}
