//! The console's API. Every endpoint is a GET and only reads.
//!
//! | endpoint | answer |
//! |---|---|
//! | `/api/query?q=SEARCH&from=&to=&limit=` | NDJSON rows, newest first, as they come from DataFusion |
//! | `/api/query?sql=SELECT…` | NDJSON rows of one read-only statement; `X-Columns` names the columns |
//! | `/api/query?…&format=arrow` | the same rows as an Arrow IPC stream |
//! | `/api/hits?q=&from=&to=&buckets=` | NDJSON: `{"from","to","step"}`, then `{"t","n"}` per bucket, slice by slice (newest first), then `{"done":true,"total"}` |
//! | `/api/context?host=&source=&ts=&before=&after=&scope=source\|host\|fleet` | JSON `{"before","at","after"}`, each oldest first |
//! | `/api/tail?q=` | Server-Sent Events `lines` (a JSON array of rows), `id` the ingestion cursor |
//! | `/api/fields?q=&from=&to=` | JSON: exact counts of the top values of host, source, severity, unit and process (from `stats` when it holds them exactly: `from_stats`) |
//! | `/api/templates?q=&from=&to=` | JSON: templates with their exact count in the range and a sparkline |
//! | `/api/anomalies?from=&to=` | JSON: anomalies, newest first |
//! | `/api/trends?from=&to=&host=` | JSON: lines, bytes and error lines per hour and host (from `stats`) |
//!
//! `from` and `to` are milliseconds since the epoch, RFC 3339, or a span back from now
//! (`24h`); `ts` is microseconds (the `ts` field of a row). A request ends its query when
//! the client goes away: the response body owns the running stream.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::json::writer::{JsonArray, LineDelimited, WriterBuilder};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::AppState;
use crate::search;

/// The columns of a log row as the console shows it; `ts` is the event time in µs.
const ROW_COLUMNS: &str = "arrow_cast(timestamp, 'Int64') AS ts, hostname, source, severity, \
     priority, facility, unit, process_name, process_id, user_name, uid, \
     CAST(template_id AS VARCHAR) AS template_id, message, tags, extra";

const DEFAULT_LIMIT: usize = 500;
const MAX_LIMIT: usize = 50_000;

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    q: Option<String>,
    sql: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    buckets: Option<u32>,
    host: Option<String>,
    source: Option<String>,
    ts: Option<i64>,
    before: Option<usize>,
    after: Option<usize>,
    scope: Option<String>,
    format: Option<String>,
}

fn bad_request(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": e.to_string() }).to_string(),
    )
        .into_response()
}

fn json_response(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// Parses `from`/`to`: milliseconds since the epoch, an instant, or a span back from `now`.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| anyhow!("{t} ms is out of range"));
    }
    if t == "now" {
        return Ok(now);
    }
    if let Ok(instant) = crate::windows::parse_instant(t) {
        return Ok(instant);
    }
    match crate::windows::parse_span(t) {
        Ok(span) => Ok(now - span),
        Err(_) => bail!("{t:?} is not a time: give milliseconds, RFC 3339 or a span like 24h"),
    }
}

fn instant_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The requested window, `[from, to)`; either end may be open.
struct Range {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Range {
    fn of(p: &Params) -> Result<Range> {
        let now = Utc::now();
        let from = p
            .from
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_time(s, now))
            .transpose()?;
        let to =
            p.to.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| parse_time(s, now))
                .transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            bail!(
                "the range is empty: from {} is not before to {}",
                instant_text(f),
                instant_text(t)
            );
        }
        Ok(Range { from, to })
    }

    /// The table expression: a `_between` window (partitions and row groups pruned) or the
    /// whole table.
    fn table(&self, table: &str) -> String {
        match (self.from, self.to) {
            (None, None) => table.to_string(),
            (from, to) => {
                let from = from.unwrap_or(DateTime::UNIX_EPOCH);
                let to = to.unwrap_or_else(|| Utc::now() + TimeDelta::days(2));
                format!(
                    "{table}_between({}, {})",
                    search::quote(&instant_text(from)),
                    search::quote(&instant_text(to))
                )
            }
        }
    }
}

fn condition(p: &Params) -> Result<String> {
    Ok(search::parse(p.q.as_deref().unwrap_or_default())?.to_sql())
}

/// One batch as NDJSON (nulls written out, so every row has every column).
fn ndjson(batch: &RecordBatch) -> Result<Bytes> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(Vec::new());
    writer.write(batch)?;
    writer.finish()?;
    Ok(writer.into_inner().into())
}

/// Batches as JSON objects.
fn rows_json(batches: &[RecordBatch]) -> Result<Vec<Value>> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice(&bytes)?)
}

async fn rows(ctx: &SessionContext, sql: &str) -> Result<Vec<Value>> {
    rows_json(&crate::run_sql(ctx, sql).await?)
}

fn error_line(e: &anyhow::Error) -> Bytes {
    let mut line = json!({ "error": crate::error_message(e) }).to_string();
    line.push('\n');
    line.into()
}

/// A response body fed by a task; the task learns that the client went away when a send
/// fails, and ends (dropping, and so cancelling, its DataFusion stream).
fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (tx, Body::from_stream(stream))
}

/// How `/api/query` writes its rows: NDJSON (an `{"error"}` line ends a failed stream) or
/// an Arrow IPC stream (a failed one ends without its end-of-stream marker).
enum Encoder {
    Ndjson,
    Arrow(Box<StreamWriter<Vec<u8>>>),
}

impl Encoder {
    fn new(format: Option<&str>, schema: &Schema) -> Result<Encoder> {
        match format.unwrap_or("ndjson") {
            "ndjson" | "json" => Ok(Encoder::Ndjson),
            "arrow" => Ok(Encoder::Arrow(Box::new(StreamWriter::try_new(
                Vec::new(),
                schema,
            )?))),
            other => bail!("format {other:?}: give ndjson or arrow"),
        }
    }

    fn content_type(&self) -> &'static str {
        match self {
            Encoder::Ndjson => "application/x-ndjson",
            Encoder::Arrow(_) => "application/vnd.apache.arrow.stream",
        }
    }

    /// What is ready to send after `batch` (the schema message comes with the first).
    fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes> {
        match self {
            Encoder::Ndjson => ndjson(batch),
            Encoder::Arrow(w) => {
                w.write(batch)?;
                Ok(std::mem::take(w.get_mut()).into())
            }
        }
    }

    fn finish(&mut self) -> Result<Bytes> {
        match self {
            Encoder::Ndjson => Ok(Bytes::new()),
            Encoder::Arrow(w) => {
                w.finish()?;
                Ok(std::mem::take(w.get_mut()).into())
            }
        }
    }

    fn error(&self, e: &anyhow::Error) -> Bytes {
        match self {
            Encoder::Ndjson => error_line(e),
            Encoder::Arrow(_) => Bytes::new(),
        }
    }
}

/// The rest of a search after its first slice: the older slices, newest first, asked
/// for only while fewer than `limit` rows were sent.
struct MoreSlices {
    ctx: SessionContext,
    cond: String,
    slices: VecDeque<(DateTime<Utc>, DateTime<Utc>)>,
    limit: usize,
}

/// Sends `first` and every further batch of `stream` (and of the further slices of a
/// search), then the end (or the error).
async fn pump(
    tx: &mpsc::Sender<Bytes>,
    mut encoder: Encoder,
    first: Option<RecordBatch>,
    mut stream: SendableRecordBatchStream,
    mut more: Option<MoreSlices>,
) {
    let mut next = first.map(Ok);
    let mut sent = 0;
    loop {
        let batch = match next.take() {
            Some(b) => b,
            None => match stream.next().await {
                Some(b) => b.map_err(anyhow::Error::from),
                None => {
                    let Some(m) = more.as_mut().filter(|m| sent < m.limit) else {
                        break;
                    };
                    let Some((a, b)) = m.slices.pop_front() else {
                        break;
                    };
                    let sql = slice_sql(&m.cond, a, b, m.limit - sent);
                    let started = async {
                        let statement = read_only_statement(&m.ctx, &sql)?;
                        crate::execute_statement(&m.ctx, statement).await
                    };
                    match started.await {
                        Ok((_, s)) => stream = s,
                        Err(e) => {
                            let _ = tx.send(encoder.error(&e)).await;
                            return;
                        }
                    }
                    continue;
                }
            },
        };
        if let Ok(b) = &batch {
            sent += b.num_rows();
        }
        let bytes = match batch.and_then(|b| encoder.batch(&b)) {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = tx.send(encoder.error(&e)).await;
                return;
            }
        };
        if !bytes.is_empty() && tx.send(bytes).await.is_err() {
            return;
        }
    }
    match encoder.finish() {
        Ok(bytes) if !bytes.is_empty() => {
            let _ = tx.send(bytes).await;
        }
        Ok(_) => {}
        Err(e) => {
            let _ = tx.send(encoder.error(&e)).await;
        }
    }
}

/// Only a query or `EXPLAIN`, one statement.
fn read_only_statement(ctx: &SessionContext, sql: &str) -> Result<DfStatement> {
    let mut statements =
        crate::parse_statements(ctx, sql).map_err(|e| crate::with_position(e, sql))?;
    if statements.len() != 1 {
        bail!("give exactly one statement (got {})", statements.len());
    }
    let statement = statements.remove(0);
    fn reads(statement: &DfStatement) -> bool {
        match statement {
            DfStatement::Statement(s) => matches!(**s, Statement::Query(_)),
            DfStatement::Explain(e) => reads(&e.statement),
            _ => false,
        }
    }
    if !reads(&statement) {
        let text = statement.to_string();
        let head: Vec<&str> = text.split_whitespace().take(3).collect();
        bail!(
            "the console only reads: {} … is not allowed",
            head.join(" ")
        );
    }
    Ok(statement)
}

/// ASCII JSON of the column names, for a header.
fn columns_header(names: &[String]) -> HeaderValue {
    let text = serde_json::to_string(names).unwrap_or_default();
    let ascii: String = text
        .chars()
        .flat_map(|c| {
            if c.is_ascii() {
                vec![c]
            } else {
                let mut buf = [0u16; 2];
                c.encode_utf16(&mut buf)
                    .iter()
                    .flat_map(|u| format!("\\u{u:04x}").chars().collect::<Vec<_>>())
                    .collect()
            }
        })
        .collect();
    HeaderValue::from_str(&ascii).unwrap_or_else(|_| HeaderValue::from_static("[]"))
}

/// The slices a search reads, newest first: an hour, then each four times as wide, so that
/// the first rows come from the newest data and a search that fills its limit early stops.
pub fn search_slices(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> VecDeque<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = VecDeque::new();
    let mut end = to;
    let mut width = TimeDelta::hours(1);
    while end > from {
        let start = end.checked_sub_signed(width).unwrap_or(from).max(from);
        out.push_back((start, end));
        end = start;
        width = width.checked_mul(4).unwrap_or(TimeDelta::MAX);
    }
    out
}

/// One slice of a search: its rows in `[a, b)`, newest first.
fn slice_sql(cond: &str, a: DateTime<Utc>, b: DateTime<Utc>, limit: usize) -> String {
    format!(
        "SELECT {ROW_COLUMNS} FROM logs_between({}, {}) WHERE {cond} \
         ORDER BY timestamp DESC LIMIT {limit}",
        search::quote(&instant_text(a)),
        search::quote(&instant_text(b))
    )
}

/// The first day of the archive (midnight UTC), or `None` when it is empty.
async fn oldest_day(ctx: &SessionContext) -> Result<Option<DateTime<Utc>>> {
    let found = rows(ctx, "SELECT min(log_date) AS d FROM logs").await?;
    Ok(found
        .first()
        .and_then(|r| r["d"].as_str())
        .and_then(|d| crate::windows::parse_instant(d).ok()))
}

/// A search's first slice as SQL, and the rest of it.
async fn search_start(ctx: &SessionContext, p: &Params) -> Result<(String, MoreSlices)> {
    let cond = condition(p)?;
    let range = Range::of(p)?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let to = range.to.unwrap_or_else(|| Utc::now() + TimeDelta::days(1));
    let from = match range.from {
        Some(f) => f,
        None => oldest_day(ctx).await?.unwrap_or(to - TimeDelta::hours(1)),
    };
    let mut slices = search_slices(from.min(to - TimeDelta::microseconds(1)), to);
    let (a, b) = slices
        .pop_front()
        .expect("from is before to: one slice at least");
    Ok((
        slice_sql(&cond, a, b, limit),
        MoreSlices {
            ctx: ctx.clone(),
            cond,
            slices,
            limit,
        },
    ))
}

/// `/api/query`: streams the rows of a search (newest first, slice by slice) or of one
/// SQL query, as NDJSON or Arrow IPC.
pub async fn query(State(state): State<AppState>, Query(p): Query<Params>) -> Response {
    let ctx = state.ctx;
    let (sql, more) = match p.sql.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(sql) => (sql.to_string(), None),
        None => match search_start(&ctx, &p).await {
            Ok((sql, more)) => (sql, Some(more)),
            Err(e) => return bad_request(crate::error_message(&e)),
        },
    };
    let started = async {
        let statement = read_only_statement(&ctx, &sql)?;
        let (schema, mut stream) = crate::execute_statement(&ctx, statement)
            .await
            .map_err(|e| crate::with_position(e, &sql))?;
        // An error in planning or in the first batch is the request's error.
        let first = stream.next().await.transpose()?;
        anyhow::Ok((schema, first, stream))
    }
    .await;
    let (schema, first, stream) = match started {
        Ok(s) => s,
        Err(e) => return bad_request(crate::error_message(&e)),
    };
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let encoder = match Encoder::new(p.format.as_deref(), &stream.schema()) {
        Ok(e) => e,
        Err(e) => return bad_request(e),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoder.content_type()),
    );
    headers.insert("x-columns", columns_header(&names));
    let (tx, body) = channel_body();
    tokio::spawn(async move { pump(&tx, encoder, first, stream, more).await });
    (headers, body).into_response()
}

/// A bucket width near `span / buckets` from a list of round ones, in seconds.
pub fn nice_step(span: TimeDelta, buckets: u32) -> i64 {
    const STEPS: [i64; 16] = [
        1,
        5,
        10,
        30,
        60,
        300,
        600,
        1_800,
        3_600,
        3 * 3_600,
        6 * 3_600,
        12 * 3_600,
        86_400,
        7 * 86_400,
        30 * 86_400,
        365 * 86_400,
    ];
    let want = span.num_seconds().max(1) / i64::from(buckets.max(1));
    STEPS
        .into_iter()
        .find(|&s| s >= want)
        .unwrap_or(365 * 86_400)
}

/// How many requests a histogram is split into (newest first, so the recent bars show
/// first).
const HIT_SLICES: i64 = 6;

/// `/api/hits`: the `date_bin` histogram of a search, filled in slice by slice.
pub async fn hits(State(state): State<AppState>, Query(p): Query<Params>) -> Response {
    let ctx = state.ctx;
    let prepared = async {
        let cond = condition(&p)?;
        let range = Range::of(&p)?;
        let (from, to) = match (range.from, range.to) {
            (Some(f), Some(t)) => (f, t),
            (f, t) => {
                // An open end: the search's own first or last line.
                let bounds = rows(
                    &ctx,
                    &format!(
                        "SELECT arrow_cast(min(timestamp), 'Int64') AS lo, \
                         arrow_cast(max(timestamp), 'Int64') AS hi FROM {} WHERE {cond}",
                        range.table("logs")
                    ),
                )
                .await?;
                let micros = |k: &str| {
                    bounds
                        .first()
                        .and_then(|r| r[k].as_i64())
                        .and_then(DateTime::from_timestamp_micros)
                };
                let lo = f.or(micros("lo")).unwrap_or_else(Utc::now);
                let hi = t
                    .or(micros("hi").map(|h| h + TimeDelta::microseconds(1)))
                    .unwrap_or_else(Utc::now);
                (lo, hi.max(lo + TimeDelta::seconds(1)))
            }
        };
        let step = nice_step(to - from, p.buckets.unwrap_or(120).clamp(1, 2_000));
        anyhow::Ok((cond, from, to, step))
    }
    .await;
    let (cond, from, to, step) = match prepared {
        Ok(v) => v,
        Err(e) => return bad_request(crate::error_message(&e)),
    };
    let (tx, body) = channel_body();
    tokio::spawn(async move {
        let head = json!({
            "from": from.timestamp_millis(),
            "to": to.timestamp_millis(),
            "step": step * 1000,
        });
        if tx.send(format!("{head}\n").into()).await.is_err() {
            return;
        }
        // Slice borders on bucket borders, so no bucket is counted in two slices.
        let step_us = step * 1_000_000;
        let align = |t: DateTime<Utc>| t.timestamp_micros().div_euclid(step_us) * step_us;
        let (lo, hi) = (
            align(from),
            align(to - TimeDelta::microseconds(1)) + step_us,
        );
        let buckets = (hi - lo) / step_us;
        let per_slice = (buckets + HIT_SLICES - 1) / HIT_SLICES;
        let mut total: i64 = 0;
        let mut end = hi;
        while end > lo {
            let start = (end - per_slice * step_us).max(lo);
            let a =
                DateTime::from_timestamp_micros(start.max(from.timestamp_micros())).unwrap_or(from);
            let b = DateTime::from_timestamp_micros(end.min(to.timestamp_micros())).unwrap_or(to);
            end = start;
            if a >= b {
                continue;
            }
            let sql = format!(
                "SELECT CAST(date_part('epoch', date_bin(INTERVAL '{step} seconds', timestamp)) * 1000 \
                 AS BIGINT) AS t, \
                 count(*) AS n FROM logs_between({}, {}) WHERE {cond} GROUP BY 1 ORDER BY 1",
                search::quote(&instant_text(a)),
                search::quote(&instant_text(b)),
            );
            match rows(&ctx, &sql).await {
                Ok(rows) => {
                    let mut out = String::new();
                    for r in rows {
                        total += r["n"].as_i64().unwrap_or(0);
                        out.push_str(&r.to_string());
                        out.push('\n');
                    }
                    if !out.is_empty() && tx.send(out.into()).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(error_line(&e)).await;
                    return;
                }
            }
        }
        let _ = tx
            .send(format!("{}\n", json!({"done": true, "total": total})).into())
            .await;
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

/// How far context looks for neighbours on each side.
const CONTEXT_REACH: TimeDelta = TimeDelta::days(1);

/// `/api/context`: the lines before and after one line, on the same host and source
/// (`scope=source`, the default), the same host (`host`) or anywhere (`fleet`).
pub async fn context(State(state): State<AppState>, Query(p): Query<Params>) -> Response {
    match context_rows(&state.ctx, &p).await {
        Ok(v) => json_response(v),
        Err(e) => bad_request(crate::error_message(&e)),
    }
}

async fn context_rows(ctx: &SessionContext, p: &Params) -> Result<Value> {
    let ts =
        p.ts.ok_or_else(|| anyhow!("context needs ts (the row's ts, in microseconds)"))?;
    let at =
        DateTime::from_timestamp_micros(ts).ok_or_else(|| anyhow!("ts {ts} is out of range"))?;
    let before = p.before.unwrap_or(10).min(1_000);
    let after = p.after.unwrap_or(10).min(1_000);
    let host = || {
        p.host
            .as_deref()
            .map(|h| format!("hostname = {}", search::quote(h)))
            .ok_or_else(|| anyhow!("context needs host"))
    };
    let scope = match p.scope.as_deref().unwrap_or("source") {
        "source" => {
            let source = p
                .source
                .as_deref()
                .ok_or_else(|| anyhow!("context needs source"))?;
            format!("{} AND source = {}", host()?, search::quote(source))
        }
        "host" => host()?,
        "fleet" => "TRUE".to_string(),
        other => bail!("scope {other:?}: give source, host or fleet"),
    };
    let window = |a: DateTime<Utc>, b: DateTime<Utc>| {
        format!(
            "logs_between({}, {})",
            search::quote(&instant_text(a)),
            search::quote(&instant_text(b))
        )
    };
    let point = format!("to_timestamp_micros({ts})");
    let one = TimeDelta::microseconds(1);
    let older = format!(
        "SELECT {ROW_COLUMNS} FROM {} WHERE {scope} AND timestamp < {point} \
         ORDER BY timestamp DESC, ingested_at DESC LIMIT {before}",
        window(at - CONTEXT_REACH, at)
    );
    let same = format!(
        "SELECT {ROW_COLUMNS} FROM {} WHERE {scope} AND timestamp = {point} \
         ORDER BY ingested_at LIMIT 1000",
        window(at, at + one)
    );
    let newer = format!(
        "SELECT {ROW_COLUMNS} FROM {} WHERE {scope} AND timestamp > {point} \
         ORDER BY timestamp, ingested_at LIMIT {after}",
        window(at + one, at + CONTEXT_REACH)
    );
    let (mut older, same, newer) =
        futures::try_join!(rows(ctx, &older), rows(ctx, &same), rows(ctx, &newer))?;
    older.reverse();
    Ok(json!({ "before": older, "at": same, "after": newer }))
}

/// How far back a tail looks again on every poll: rows reach the spool up to this long
/// after their ingestion time (group commit), and must not be missed.
const TAIL_OVERLAP_US: i64 = 5_000_000;
/// How much older than its arrival a line's event time may be and still be tailed.
const TAIL_EVENT_REACH_US: i64 = 36 * 3_600 * 1_000_000;
const TAIL_POLL: Duration = Duration::from_millis(400);
const TAIL_MAX_ROWS: usize = 2_000;

/// `/api/tail`: new lines as Server-Sent Events, read from `logs` (and so from a local
/// collector's spool) by ingestion time. A reconnecting EventSource sends the last
/// event's id, and the tail goes on from there.
pub async fn tail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Response {
    let cond = match condition(&p) {
        Ok(c) => c,
        Err(e) => return bad_request(e),
    };
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let mut cursor = resumed.unwrap_or_else(|| Utc::now().timestamp_micros());
    let ctx = state.ctx;
    let (tx, rx) = mpsc::channel::<Event>(4);
    tokio::spawn(async move {
        // Rows already sent from the overlap window: (ingested_at, hash of the row).
        let mut sent: VecDeque<(i64, u64)> = VecDeque::new();
        let mut seen: HashSet<u64> = HashSet::new();
        loop {
            // Only the partitions of the last day and a half (by event time) are read on
            // every poll: a line whose own time is older than that when it arrives is in
            // searches, not in the tail.
            let since = cursor - TAIL_OVERLAP_US;
            let first_day = DateTime::from_timestamp_micros(since - TAIL_EVENT_REACH_US)
                .unwrap_or(DateTime::UNIX_EPOCH)
                .format("%Y-%m-%d");
            let sql = format!(
                "SELECT {ROW_COLUMNS}, arrow_cast(ingested_at, 'Int64') AS ing FROM logs \
                 WHERE log_date >= DATE '{first_day}' AND ingested_at > to_timestamp_micros({since}) \
                 AND ({cond}) ORDER BY ingested_at, timestamp LIMIT {TAIL_MAX_ROWS}"
            );
            let event = match rows(&ctx, &sql).await {
                Ok(found) => {
                    let mut fresh = Vec::new();
                    for row in found {
                        let ing = row["ing"].as_i64().unwrap_or(0);
                        let mut h = DefaultHasher::new();
                        row.to_string().hash(&mut h);
                        let key = h.finish();
                        if seen.insert(key) {
                            sent.push_back((ing, key));
                            cursor = cursor.max(ing);
                            fresh.push(row);
                        }
                    }
                    while let Some(&(ing, key)) = sent.front() {
                        if ing > cursor - TAIL_OVERLAP_US {
                            break;
                        }
                        seen.remove(&key);
                        sent.pop_front();
                    }
                    (!fresh.is_empty()).then(|| {
                        Event::default()
                            .event("lines")
                            .id(cursor.to_string())
                            .data(Value::Array(fresh).to_string())
                    })
                }
                Err(e) => Some(
                    Event::default()
                        .event("error")
                        .data(crate::error_message(&e)),
                ),
            };
            if let Some(event) = event
                && tx.send(event).await.is_err()
            {
                return;
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(TAIL_POLL).await;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The fields the console facets on.
const FACETS: [&str; 5] = ["hostname", "source", "severity", "unit", "process_name"];

/// `/api/fields`: for each facet, its top values in the search's rows with exact counts.
pub async fn fields(State(state): State<AppState>, Query(p): Query<Params>) -> Response {
    let answer = async {
        let cond = condition(&p)?;
        let range = Range::of(&p)?;
        let limit = p.limit.unwrap_or(10).clamp(1, 1_000);
        let from_stats = stats_answer_exactly(&state.ctx, &p, &range).await?;
        let queries = FACETS.iter().map(|field| {
            let sql = if from_stats && STATS_FACETS.contains(field) {
                format!(
                    "SELECT {field} AS value, sum(lines) AS n FROM {} \
                     GROUP BY 1 ORDER BY n DESC, value LIMIT {limit}",
                    range.table("stats")
                )
            } else {
                format!(
                    "SELECT {field} AS value, count(*) AS n FROM {} WHERE {cond} \
                     GROUP BY 1 ORDER BY n DESC, value LIMIT {limit}",
                    range.table("logs")
                )
            };
            let ctx = state.ctx.clone();
            async move { rows(&ctx, &sql).await }
        });
        let found = futures::future::try_join_all(queries).await?;
        let mut out = serde_json::Map::new();
        for (field, values) in FACETS.iter().zip(found) {
            out.insert(field.to_string(), Value::Array(values));
        }
        let answered: Vec<&str> = if from_stats {
            STATS_FACETS.to_vec()
        } else {
            Vec::new()
        };
        out.insert("from_stats".into(), json!(answered));
        anyhow::Ok(Value::Object(out))
    }
    .await;
    match answer {
        Ok(v) => json_response(v),
        Err(e) => bad_request(crate::error_message(&e)),
    }
}

/// The facets the `stats` rollups hold.
const STATS_FACETS: [&str; 4] = ["hostname", "source", "severity", "process_name"];

/// Whether `stats` gives the same counts as `logs` would: no search terms, a range of
/// whole hours (stats rows are hours), and no rows in a local spool (stats are written
/// with the archive's files, spool rows are in `logs` only).
async fn stats_answer_exactly(ctx: &SessionContext, p: &Params, range: &Range) -> Result<bool> {
    if !search::parse(p.q.as_deref().unwrap_or_default())?.is_empty() {
        return Ok(false);
    }
    let whole_hours = |t: Option<DateTime<Utc>>| {
        t.is_none_or(|t| t.timestamp_micros().rem_euclid(3_600_000_000) == 0)
    };
    if !whole_hours(range.from) || !whole_hours(range.to) {
        return Ok(false);
    }
    let provider = ctx.table_provider("logs").await?;
    let Some(fresh) = provider.downcast_ref::<crate::fresh::FreshLogs>() else {
        return Ok(true);
    };
    let dir = fresh.spool_dir().to_path_buf();
    let spool =
        tokio::task::spawn_blocking(move || infralog_spool_format::read_spool(&dir)).await??;
    Ok(spool.rows() == 0)
}

const SPARK_BUCKETS: i64 = 24;

/// `/api/templates`: the templates of the search's rows, most lines first, each with its
/// exact count in the range, its text and example (from the `templates` table) and a
/// sparkline of 24 counts over the range.
pub async fn templates(State(state): State<AppState>, Query(p): Query<Params>) -> Response {
    match template_rows(&state.ctx, &p).await {
        Ok(v) => json_response(v),
        Err(e) => bad_request(crate::error_message(&e)),
    }
}

async fn template_rows(ctx: &SessionContext, p: &Params) -> Result<Value> {
    let cond = condition(p)?;
    let table = Range::of(p)?.table("logs");
    let limit = p.limit.unwrap_or(200).clamp(1, 5_000);
    let mut found = rows(
        ctx,
        &format!(
            "WITH c AS (SELECT template_id AS tid, count(*) AS n, \
               arrow_cast(min(timestamp), 'Int64') AS first_ts, \
               arrow_cast(max(timestamp), 'Int64') AS last_ts \
             FROM {table} WHERE {cond} AND template_id IS NOT NULL GROUP BY template_id \
             ORDER BY n DESC, tid LIMIT {limit}), \
             t AS (SELECT template_id AS tid, \
               first_value(text ORDER BY written_at DESC, version DESC) AS text, \
               first_value(example ORDER BY written_at DESC, version DESC) AS example \
             FROM templates GROUP BY template_id) \
             SELECT CAST(c.tid AS VARCHAR) AS template_id, c.n, c.first_ts, c.last_ts, t.text, \
             t.example FROM c LEFT JOIN t ON c.tid = t.tid ORDER BY c.n DESC, c.tid"
        ),
    )
    .await?;
    if found.is_empty() {
        return Ok(json!({ "templates": [] }));
    }
    let lo = found
        .iter()
        .filter_map(|r| r["first_ts"].as_i64())
        .min()
        .unwrap_or(0);
    let hi = found
        .iter()
        .filter_map(|r| r["last_ts"].as_i64())
        .max()
        .unwrap_or(0)
        + 1;
    let width = ((hi - lo) / SPARK_BUCKETS).max(1) + 1;
    let ids: Vec<String> = found
        .iter()
        .filter_map(|r| r["template_id"].as_str())
        .filter(|id| id.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    let counts = rows(
        ctx,
        &format!(
            "SELECT CAST(template_id AS VARCHAR) AS template_id, (arrow_cast(timestamp, 'Int64') - {lo}) / {width} AS b, \
             count(*) AS n FROM {table} WHERE {cond} AND template_id IN ({}) GROUP BY 1, 2",
            ids.join(", ")
        ),
    )
    .await?;
    for row in &mut found {
        let id = row["template_id"].clone();
        let mut spark = vec![0i64; SPARK_BUCKETS as usize];
        for c in counts.iter().filter(|c| c["template_id"] == id) {
            let b = c["b"].as_i64().unwrap_or(0).clamp(0, SPARK_BUCKETS - 1) as usize;
            spark[b] += c["n"].as_i64().unwrap_or(0);
        }
        row["spark"] = json!(spark);
    }
    Ok(json!({ "templates": found, "from_ts": lo, "to_ts": hi }))
}

/// `/api/trends`: lines, bytes and error lines per hour and host, from the `stats` rollups
/// (archived rows; a local spool's rows join them once archived).
pub async fn trends(State(state): State<AppState>, Query(p): Query<Params>) -> Response {
    let answer = async {
        let table = Range::of(&p)?.table("stats");
        let host = match p.host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => format!("hostname = {}", search::quote(h)),
            None => "TRUE".into(),
        };
        let found = rows(
            &state.ctx,
            &format!(
                "SELECT arrow_cast(hour, 'Int64') / 1000 AS t, hostname, sum(lines) AS lines, \
                 sum(bytes) AS bytes, sum(CASE WHEN severity IN ('EMERGENCY', 'ALERT', \
                 'CRITICAL', 'ERROR') THEN lines ELSE 0 END) AS errors \
                 FROM {table} WHERE {host} GROUP BY 1, 2 ORDER BY 1, 2"
            ),
        )
        .await?;
        anyhow::Ok(json!({ "hours": found }))
    }
    .await;
    match answer {
        Ok(v) => json_response(v),
        Err(e) => bad_request(crate::error_message(&e)),
    }
}

/// `/api/anomalies`: what the detector found in the range, newest first.
pub async fn anomalies(State(state): State<AppState>, Query(p): Query<Params>) -> Response {
    let answer = async {
        let table = Range::of(&p)?.table("anomalies");
        let limit = p.limit.unwrap_or(500).clamp(1, 10_000);
        let found = rows(
            &state.ctx,
            &format!(
                "SELECT arrow_cast(window_start, 'Int64') AS ts, \
                 arrow_cast(window_end, 'Int64') AS end_ts, * EXCEPT (template_id), \
                 CAST(template_id AS VARCHAR) AS template_id FROM {table} \
                 ORDER BY window_start DESC, anomaly_id LIMIT {limit}"
            ),
        )
        .await?;
        anyhow::Ok(json!({ "anomalies": found }))
    }
    .await;
    match answer {
        Ok(v) => json_response(v),
        Err(e) => bad_request(crate::error_message(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_ms_instants_or_spans() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_time("1772409600000", now).unwrap().to_rfc3339(),
            "2026-03-02T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-03-01", now).unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2h", now).unwrap().to_rfc3339(),
            "2026-03-02T10:00:00+00:00"
        );
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert!(parse_time("yesterday-ish", now).is_err());
    }

    #[test]
    fn search_slices_grow_from_the_newest_and_cover_the_range() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let slices = search_slices(t("2026-03-01T00:00:00Z"), t("2026-03-02T00:00:00Z"));
        let widths: Vec<i64> = slices.iter().map(|(a, b)| (*b - *a).num_hours()).collect();
        assert_eq!(widths, [1, 4, 16, 3]);
        assert_eq!(slices[0].1, t("2026-03-02T00:00:00Z"));
        assert_eq!(slices.back().unwrap().0, t("2026-03-01T00:00:00Z"));
        assert!(
            slices
                .iter()
                .zip(slices.iter().skip(1))
                .all(|(n, o)| o.1 == n.0)
        );
        let far = search_slices(DateTime::UNIX_EPOCH, t("2026-03-02T00:00:00Z"));
        assert!(far.len() < 20 && far.back().unwrap().0 == DateTime::UNIX_EPOCH);
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(TimeDelta::days(1), 120), 1_800);
        assert_eq!(nice_step(TimeDelta::hours(1), 120), 30);
        assert_eq!(nice_step(TimeDelta::seconds(10), 120), 1);
        assert_eq!(nice_step(TimeDelta::days(3650), 120), 365 * 86_400);
    }

    #[test]
    fn the_console_only_reads() {
        let ctx = crate::session_context().unwrap();
        assert!(read_only_statement(&ctx, "SELECT 1").is_ok());
        assert!(read_only_statement(&ctx, "EXPLAIN SELECT 1").is_ok());
        let e = read_only_statement(&ctx, "CREATE VIEW v AS SELECT 1").unwrap_err();
        assert!(e.to_string().contains("only reads"), "{e}");
        assert!(read_only_statement(&ctx, "SELECT 1; SELECT 2").is_err());
        assert!(
            read_only_statement(
                &ctx,
                "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc'"
            )
            .is_err()
        );
    }

    #[test]
    fn column_header_is_ascii_json() {
        let v = columns_header(&["a".into(), "größe".into()]);
        assert_eq!(v.to_str().unwrap(), r#"["a","gr\u00f6\u00dfe"]"#);
    }
}
