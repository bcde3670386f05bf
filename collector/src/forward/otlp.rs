//! `kind = "otlp_http"`: OTLP logs over HTTP, protobuf (`POST <url>/v1/logs`).
//!
//! The protobuf is written by hand: the handful of OTLP messages a log export needs
//! (ExportLogsServiceRequest → ResourceLogs → ScopeLogs → LogRecord, KeyValue, AnyValue),
//! straight from the Arrow columns, with no generated code and no dependency. One
//! ResourceLogs per host (`host.name`); the message is the body; the other columns and
//! every `extra` field are attributes, and `infralog.row_id` is the row's place in the
//! spool. Answers: 200 with a partial success counts the rejected records as refused (they
//! must not be sent again); 429, 502, 503 and 504 are retried, after `Retry-After` when the
//! server gives one; another 4xx refuses the batch (its rows go to the dead-letter file).
//! Delivery is at least once: a request that timed out after the server took it is sent
//! again.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};

use super::config::{OtlpOptions, RetryOptions, SinkConfig};
use super::doc::{Rfc3339, Rows};
use super::stats::SinkStats;
use super::{Batch, Context, Jitter, Sink, SinkError, dead_letter_path, row_id};

pub struct Otlp {
    name: String,
    url: String,
    gzip: bool,
    retry: RetryOptions,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    dead_letter: PathBuf,
    ctx: Context,
    stats: Arc<SinkStats>,
    jitter: Jitter,
}

/// Protobuf wire types.
const VARINT: u8 = 0;
const I64: u8 = 1;
const LEN: u8 = 2;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, ((field as u64) << 3) | wire as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// `KeyValue { key = 1; AnyValue value = 2 }` with `AnyValue { string_value = 1 }`, as
/// field `field` of the enclosing message.
fn string_attribute(out: &mut Vec<u8>, field: u32, key: &str, value: &str) {
    let any = 1 + varint_len(value.len() as u64) + value.len();
    let kv = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(any as u64) + any;
    tag(out, field, LEN);
    varint(out, kv as u64);
    bytes_field(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, any as u64);
    bytes_field(out, 1, value.as_bytes());
}

/// `KeyValue` with `AnyValue { int_value = 3 }`.
fn int_attribute(out: &mut Vec<u8>, field: u32, key: &str, value: i64) {
    let any = 1 + varint_len(value as u64);
    let kv = 1 + varint_len(key.len() as u64) + key.len() + 1 + varint_len(any as u64) + any;
    tag(out, field, LEN);
    varint(out, kv as u64);
    bytes_field(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, any as u64);
    tag(out, 3, VARINT);
    varint(out, value as u64);
}

/// OpenTelemetry's severity number of a syslog priority level (0 emergency … 7 debug).
pub fn severity_number(priority: i8) -> u64 {
    match priority {
        0 => 21,
        1 => 19,
        2 => 18,
        3 => 17,
        4 => 13,
        5 => 10,
        6 => 9,
        _ => 5,
    }
}

/// Encodes every row of `batch` as one ExportLogsServiceRequest.
pub fn encode(batch: &Batch, instance: &str) -> Result<Vec<u8>> {
    // Rows grouped by host, in order of first appearance: one ResourceLogs each.
    let mut hosts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut rec = Vec::new();
    let mut id = String::new();
    for s in &batch.slices {
        let rows = Rows::new(&s.batch)?;
        for i in 0..rows.len() {
            rec.clear();
            let host = rows.field(i, infralog_schemas::col::HOSTNAME).unwrap_or("");
            tag(&mut rec, 1, I64);
            rec.extend_from_slice(&((rows.micros(i).max(0) as u64) * 1000).to_le_bytes());
            if let Some(p) = rows.priority(i) {
                tag(&mut rec, 2, VARINT);
                varint(&mut rec, severity_number(p));
            }
            if let Some(sev) = rows.field(i, infralog_schemas::col::SEVERITY) {
                bytes_field(&mut rec, 3, sev.as_bytes());
            }
            // body: AnyValue { string_value }
            let m = rows.message(i).as_bytes();
            tag(&mut rec, 5, LEN);
            varint(&mut rec, (1 + varint_len(m.len() as u64) + m.len()) as u64);
            bytes_field(&mut rec, 1, m);
            rows.for_each_attribute(i, |k, v| match v {
                Attr::Text(t) => string_attribute(&mut rec, 6, k, t),
                Attr::Int(n) => int_attribute(&mut rec, 6, k, n),
            });
            row_id(&mut id, instance, s.seq, s.record, s.row(i));
            string_attribute(&mut rec, 6, "infralog.row_id", &id);
            tag(&mut rec, 11, I64);
            rec.extend_from_slice(&((rows.ingested_micros(i).max(0) as u64) * 1000).to_le_bytes());
            let scope = match hosts.iter_mut().find(|(h, _)| h == host) {
                Some((_, b)) => b,
                None => {
                    hosts.push((host.to_string(), Vec::new()));
                    &mut hosts.last_mut().expect("pushed").1
                }
            };
            bytes_field(scope, 2, &rec);
        }
    }
    let mut out = Vec::new();
    let mut resource = Vec::new();
    let mut scope_logs = Vec::new();
    for (host, records) in hosts {
        // ScopeLogs { scope = 1 { name = 1 }; log_records = 2 }
        scope_logs.clear();
        tag(&mut scope_logs, 1, LEN);
        varint(&mut scope_logs, 2 + "infralog".len() as u64);
        bytes_field(&mut scope_logs, 1, b"infralog");
        scope_logs.extend_from_slice(&records);
        // ResourceLogs { resource = 1 { attributes = 1 }; scope_logs = 2 }
        resource.clear();
        let mut res = Vec::new();
        string_attribute(&mut res, 1, "host.name", &host);
        bytes_field(&mut resource, 1, &res);
        bytes_field(&mut resource, 2, &scope_logs);
        bytes_field(&mut out, 1, &resource);
    }
    Ok(out)
}

/// An attribute value.
pub enum Attr<'a> {
    Text(&'a str),
    Int(i64),
}

/// `(rejected_log_records, error_message)` of an ExportLogsServiceResponse.
pub fn partial_success(mut b: &[u8]) -> (i64, String) {
    fn read_varint(b: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }
    fn fields(mut b: &[u8], mut f: impl FnMut(u64, u8, u64, &[u8])) {
        while let Some(key) = read_varint(&mut b) {
            let (field, wire) = (key >> 3, (key & 7) as u8);
            match wire {
                VARINT => match read_varint(&mut b) {
                    Some(v) => f(field, wire, v, &[]),
                    None => return,
                },
                LEN => {
                    let Some(len) = read_varint(&mut b) else {
                        return;
                    };
                    let Some(body) = b.get(..len as usize) else {
                        return;
                    };
                    f(field, wire, 0, body);
                    b = &b[len as usize..];
                }
                I64 if b.len() >= 8 => b = &b[8..],
                5 if b.len() >= 4 => b = &b[4..],
                _ => return,
            }
        }
    }
    let (mut rejected, mut message) = (0, String::new());
    fields(std::mem::take(&mut b), |field, wire, _, body| {
        if field == 1 && wire == LEN {
            fields(body, |f, w, v, s| match (f, w) {
                (1, VARINT) => rejected = v as i64,
                (2, LEN) => message = String::from_utf8_lossy(s).into_owned(),
                _ => {}
            });
        }
    });
    (rejected, message)
}

impl Otlp {
    pub fn new(
        config: &SinkConfig,
        o: &OtlpOptions,
        ctx: Context,
        stats: Arc<SinkStats>,
    ) -> Result<Otlp> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .context("cannot set up the HTTP client")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the HTTP runtime")?;
        let url = if o.url.ends_with("/v1/logs") {
            o.url.clone()
        } else {
            format!("{}/v1/logs", o.url)
        };
        Ok(Otlp {
            name: config.name.clone(),
            url,
            gzip: o.gzip,
            retry: config.retry,
            client,
            rt,
            dead_letter: dead_letter_path(&ctx.state_dir, &config.name),
            ctx,
            stats,
            jitter: Jitter::new(),
        })
    }

    /// Keeps a refused batch's rows as JSON documents in the dead-letter file.
    fn refuse(&self, batch: &Batch, why: &str) -> Result<()> {
        if let Some(d) = self.dead_letter.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut out = Vec::new();
        let mut clock = Rfc3339::default();
        for s in &batch.slices {
            let rows = Rows::new(&s.batch)?;
            for i in 0..rows.len() {
                out.extend_from_slice(b"{\"reason\":");
                super::doc::string(&mut out, why);
                out.extend_from_slice(b",\"document\":");
                rows.write_json(i, &mut out, None, &mut clock);
                out.extend_from_slice(b"}\n");
            }
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.dead_letter)
            .with_context(|| format!("cannot open {}", self.dead_letter.display()))?;
        f.write_all(&out)?;
        f.sync_data()?;
        Ok(())
    }
}

impl Sink for Otlp {
    fn deliver(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let body = encode(batch, &self.ctx.instance).map_err(SinkError::Failed)?;
        let body = if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&body)
                .and_then(|()| gz.finish())
                .map_err(|e| SinkError::Failed(e.into()))?
        } else {
            body
        };
        let mut attempt = 0;
        loop {
            self.stats
                .sent
                .fetch_add(batch.rows as u64, Ordering::Relaxed);
            let mut req = self
                .client
                .post(&self.url)
                .header("content-type", "application/x-protobuf")
                .body(body.clone());
            if self.gzip {
                req = req.header("content-encoding", "gzip");
            }
            let answer = self.rt.block_on(async {
                let r = req.send().await?;
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let bytes = r.bytes().await?;
                Ok::<_, reqwest::Error>((status, retry_after, bytes))
            });
            let (status, retry_after, bytes) = match answer {
                Ok(a) => a,
                Err(e) if e.is_connect() && attempt == 0 => {
                    return Err(SinkError::Unreachable(
                        anyhow!(e).context(format!("POST {}", self.url)),
                    ));
                }
                Err(e) => {
                    return Err(SinkError::Failed(
                        anyhow!(e).context(format!("POST {}", self.url)),
                    ));
                }
            };
            match status {
                200..=299 => {
                    let (rejected, message) = partial_success(&bytes);
                    let rejected = rejected.clamp(0, batch.rows as i64) as u64;
                    if rejected > 0 {
                        tracing::warn!(
                            sink = self.name,
                            rejected,
                            "the OTLP receiver rejected records (not sent again): {message}"
                        );
                        self.stats
                            .dead_lettered
                            .fetch_add(rejected, Ordering::Relaxed);
                    }
                    self.stats
                        .acked
                        .fetch_add(batch.rows as u64 - rejected, Ordering::Relaxed);
                    return Ok(());
                }
                429 | 502 | 503 | 504 => {
                    self.stats
                        .retried
                        .fetch_add(batch.rows as u64, Ordering::Relaxed);
                    let delay = retry_after
                        .map(Duration::from_secs)
                        .unwrap_or_else(|| self.jitter.backoff(self.retry, attempt))
                        .min(Duration::from_secs(300));
                    attempt += 1;
                    tracing::debug!(
                        sink = self.name,
                        status,
                        "OTLP receiver asks to retry in {delay:?}"
                    );
                    let until = Instant::now() + delay;
                    while Instant::now() < until {
                        if self.ctx.stopping.load(Ordering::Relaxed) {
                            return Err(SinkError::Stopped);
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                400..=499 => {
                    let why = format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                    );
                    self.refuse(batch, &why)
                        .map_err(|e| SinkError::Failed(e.context("dead-letter file")))?;
                    self.stats
                        .dead_lettered
                        .fetch_add(batch.rows as u64, Ordering::Relaxed);
                    tracing::warn!(
                        sink = self.name,
                        file = %self.dead_letter.display(),
                        "the OTLP receiver refused a batch; its rows are in the dead-letter file: {why}"
                    );
                    return Ok(());
                }
                _ => {
                    return Err(SinkError::Failed(anyhow!(
                        "POST {} answered {status}",
                        self.url
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_partial_success() {
        let mut b = Vec::new();
        varint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
        assert_eq!(varint_len(300), 2);
        // ExportLogsServiceResponse { partial_success { rejected 3, error_message "bad" } }
        let mut inner = Vec::new();
        tag(&mut inner, 1, VARINT);
        varint(&mut inner, 3);
        bytes_field(&mut inner, 2, b"bad");
        let mut resp = Vec::new();
        bytes_field(&mut resp, 1, &inner);
        assert_eq!(partial_success(&resp), (3, "bad".into()));
        assert_eq!(partial_success(&[]), (0, String::new()));
        assert_eq!(partial_success(&[0xff, 0xff]), (0, String::new()));
    }
}
