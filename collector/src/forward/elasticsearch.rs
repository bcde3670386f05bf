//! `kind = "elasticsearch"`: the `_bulk` API of Elasticsearch and OpenSearch.
//!
//! Every row is a `create` with `_id` = its place in the spool ([`super::row_id`]), so a
//! retry or a replay after a crash cannot store it twice: the second `create` answers 409,
//! which means "already stored" and counts as delivered. The answer is read item by item
//! (a 200 can hold failures): 429 and 5xx items are sent again alone, with backoff; every
//! other refusal (400 mapping clash, 404, ...) is written to the dead-letter file with the
//! reason and the document, fsynced, and counted — never retried forever, never dropped
//! silently. `create` is also what data streams accept, and `@timestamp` is what they
//! need, so the same sink writes to data streams and plain indices.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use serde::Deserialize;

use super::config::{ElasticsearchOptions, RetryOptions, SinkConfig};
use super::doc::{Rfc3339, Rows, string};
use super::stats::SinkStats;
use super::template::Template;
use super::{Batch, Context, Jitter, Sink, SinkError, dead_letter_path, row_id};

pub struct Elasticsearch {
    name: String,
    url: String,
    gzip: bool,
    template: Template,
    tenant_field: String,
    default_tenant: String,
    retry: RetryOptions,
    auth: Option<(String, String)>,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
    dead_letter: PathBuf,
    dead: Option<File>,
    ctx: Context,
    stats: Arc<SinkStats>,
    jitter: Jitter,
}

/// One document of a request: its action and source lines, where they are in the body.
struct Item {
    start: usize,
    /// Where the source line starts.
    doc: usize,
    end: usize,
}

#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, ItemResult>>,
}

#[derive(Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

impl Elasticsearch {
    pub fn new(
        config: &SinkConfig,
        o: &ElasticsearchOptions,
        ctx: Context,
        stats: Arc<SinkStats>,
    ) -> Result<Elasticsearch> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(2);
        if let Some(ca) = o.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{}: not a PEM certificate", ca.display()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().context("cannot set up the HTTP client")?;
        let auth = match (&o.username, &o.password_file) {
            (Some(u), Some(p)) => {
                let pass = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read password_file {}", p.display()))?;
                Some((u.clone(), pass.trim_end_matches(['\n', '\r']).to_string()))
            }
            _ => None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the HTTP runtime")?;
        Ok(Elasticsearch {
            name: config.name.clone(),
            url: format!("{}/_bulk", o.url),
            gzip: o.gzip,
            template: Template::parse(&o.index)?,
            tenant_field: config.tenant_field.clone(),
            default_tenant: config.default_tenant.clone(),
            retry: config.retry,
            auth,
            client,
            rt,
            dead_letter: o
                .dead_letter
                .clone()
                .unwrap_or_else(|| dead_letter_path(&ctx.state_dir, &config.name)),
            dead: None,
            ctx,
            stats,
            jitter: Jitter::new(),
        })
    }

    /// The NDJSON of every row of `batch`: `create` with the row's id and index, then
    /// the document.
    fn encode(&self, batch: &Batch, body: &mut Vec<u8>, items: &mut Vec<Item>) -> Result<()> {
        let mut clock = Rfc3339::default();
        let (mut index, mut id) = (String::new(), String::new());
        for s in &batch.slices {
            let rows = Rows::new(&s.batch)?;
            for i in 0..rows.len() {
                let start = body.len();
                let tenant = rows
                    .field(i, &self.tenant_field)
                    .filter(|t| !t.is_empty())
                    .unwrap_or(&self.default_tenant);
                self.template
                    .render(&mut index, tenant, rows.micros(i), |f| {
                        rows.field(i, f).map(str::to_string)
                    });
                row_id(&mut id, &self.ctx.instance, s.seq, s.record, s.row(i));
                body.extend_from_slice(b"{\"create\":{\"_index\":");
                string(body, &index);
                body.extend_from_slice(b",\"_id\":");
                string(body, &id);
                body.extend_from_slice(b"}}\n");
                let doc = body.len();
                rows.write_json(i, body, None, &mut clock);
                body.push(b'\n');
                items.push(Item {
                    start,
                    doc,
                    end: body.len(),
                });
            }
        }
        Ok(())
    }

    fn post(&self, body: Vec<u8>) -> Result<(u16, Vec<u8>), SinkError> {
        let body = if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            gz.write_all(&body)
                .and_then(|()| gz.finish())
                .map_err(|e| SinkError::Failed(e.into()))?
        } else {
            body
        };
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/x-ndjson")
            .body(body);
        if self.gzip {
            req = req.header("content-encoding", "gzip");
        }
        if let Some((u, p)) = &self.auth {
            req = req.basic_auth(u, Some(p));
        }
        self.rt.block_on(async {
            let resp = req.send().await.map_err(|e| {
                let e = anyhow!(e).context(format!("POST {}", self.url));
                if is_connect(&e) {
                    SinkError::Unreachable(e)
                } else {
                    SinkError::Failed(e)
                }
            })?;
            let status = resp.status().as_u16();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| SinkError::Failed(anyhow!(e).context("reading the _bulk answer")))?;
            Ok((status, bytes.to_vec()))
        })
    }

    /// Appends refused documents to the dead-letter file and fsyncs it: only then do they
    /// count as handled.
    fn dead_letter(&mut self, lines: &[u8]) -> Result<()> {
        if self.dead.is_none() {
            if let Some(d) = self.dead_letter.parent() {
                std::fs::create_dir_all(d)?;
            }
            self.dead = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.dead_letter)
                    .with_context(|| format!("cannot open {}", self.dead_letter.display()))?,
            );
        }
        let f = self.dead.as_mut().expect("opened");
        f.write_all(lines)?;
        f.sync_data()?;
        Ok(())
    }
}

fn is_connect(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_connect())
            || c.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::HostUnreachable
                )
            })
    })
}

impl Sink for Elasticsearch {
    fn deliver(&mut self, batch: &Batch) -> Result<(), SinkError> {
        let mut body = Vec::with_capacity(batch.bytes);
        let mut items = Vec::with_capacity(batch.rows);
        self.encode(batch, &mut body, &mut items)
            .map_err(SinkError::Failed)?;
        let mut pending: Vec<usize> = (0..items.len()).collect();
        let mut attempt = 0;
        let mut reached = false;
        loop {
            let mut req = Vec::with_capacity(body.len());
            for &k in &pending {
                req.extend_from_slice(&body[items[k].start..items[k].end]);
            }
            self.stats
                .sent
                .fetch_add(pending.len() as u64, Ordering::Relaxed);
            let (status, answer) = match self.post(req) {
                Ok(a) => a,
                // Items sent before are stored: only the very first try can be "nothing
                // reached it".
                Err(SinkError::Unreachable(e)) if reached => return Err(SinkError::Failed(e)),
                Err(e) => return Err(e),
            };
            reached = true;
            if status == 429 || status >= 500 {
                return Err(SinkError::Failed(anyhow!(
                    "_bulk answered {status}: {}",
                    String::from_utf8_lossy(&answer[..answer.len().min(300)])
                )));
            }
            if !(200..300).contains(&status) {
                return Err(SinkError::Failed(anyhow!(
                    "_bulk refused the whole request with {status}: {}",
                    String::from_utf8_lossy(&answer[..answer.len().min(300)])
                )));
            }
            let parsed: BulkResponse = serde_json::from_slice(&answer)
                .map_err(|e| SinkError::Failed(anyhow!("unreadable _bulk answer: {e}")))?;
            if parsed.items.len() != pending.len() {
                return Err(SinkError::Failed(anyhow!(
                    "_bulk answered {} items for {} documents",
                    parsed.items.len(),
                    pending.len()
                )));
            }
            let mut again = Vec::new();
            let mut dead = Vec::new();
            let mut first_error = None;
            let mut refused = 0;
            for (&k, item) in pending.iter().zip(&parsed.items) {
                match outcome(item) {
                    Outcome::Stored => {
                        self.stats.acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::AlreadyThere => {
                        self.stats.acked.fetch_add(1, Ordering::Relaxed);
                        self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Retry => again.push(k),
                    Outcome::Refused(status, error) => {
                        let it = &items[k];
                        first_error.get_or_insert_with(|| format!("{status}: {error}"));
                        write!(
                            dead,
                            "{{\"at\":\"{}\",\"sink\":",
                            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
                        )
                        .expect("vec");
                        string(&mut dead, &self.name);
                        write!(dead, ",\"status\":{status},\"error\":{error},\"action\":")
                            .expect("vec");
                        dead.extend_from_slice(trim_nl(&body[it.start..it.doc]));
                        dead.extend_from_slice(b",\"document\":");
                        dead.extend_from_slice(trim_nl(&body[it.doc..it.end]));
                        dead.extend_from_slice(b"}\n");
                        refused += 1;
                    }
                }
            }
            if !dead.is_empty() {
                if let Err(e) = self.dead_letter(&dead) {
                    // Not written: not handled. The batch is sent again; stored items
                    // answer 409.
                    return Err(SinkError::Failed(e.context("dead-letter file")));
                }
                self.stats
                    .dead_lettered
                    .fetch_add(refused, Ordering::Relaxed);
                tracing::warn!(
                    sink = self.name,
                    file = %self.dead_letter.display(),
                    "documents refused by the server were written to the dead-letter file; \
                     first: {}",
                    first_error.unwrap_or_default()
                );
            }
            let _ = parsed.errors;
            if again.is_empty() {
                return Ok(());
            }
            self.stats
                .retried
                .fetch_add(again.len() as u64, Ordering::Relaxed);
            let delay = self.jitter.backoff(self.retry, attempt);
            attempt += 1;
            tracing::debug!(
                sink = self.name,
                items = again.len(),
                "server asked to retry some items (429/5xx); sending those alone in {delay:?}"
            );
            let until = std::time::Instant::now() + delay;
            while std::time::Instant::now() < until {
                if self.ctx.stopping.load(Ordering::Relaxed) && attempt > 3 {
                    return Err(SinkError::Stopped);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            pending = again;
        }
    }
}

/// What one item of a `_bulk` answer means for its row (Logstash's rules).
#[derive(Debug, PartialEq)]
enum Outcome {
    Stored,
    /// 409 on `create`: a row with this id is stored already (a retry or a replay).
    AlreadyThere,
    /// 429 or 5xx: send this item again, alone.
    Retry,
    /// Any other refusal: to the dead-letter file with the reason.
    Refused(u16, serde_json::Value),
}

fn outcome(item: &std::collections::HashMap<String, ItemResult>) -> Outcome {
    let Some(r) = item.values().next() else {
        return Outcome::Retry;
    };
    match r.status {
        200..=299 => Outcome::Stored,
        409 => Outcome::AlreadyThere,
        429 | 500..=599 => Outcome::Retry,
        status => Outcome::Refused(status, r.error.clone().unwrap_or(serde_json::Value::Null)),
    }
}

fn trim_nl(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer as Elasticsearch writes one: a 200 whose items succeeded, were there
    /// already, are to be retried, or were refused.
    #[test]
    fn each_item_of_a_bulk_answer_decides_its_row() {
        let answer = r#"{"took":3,"errors":true,"items":[
            {"create":{"_index":"logs-a-2026.12","_id":"1","status":201,"result":"created"}},
            {"create":{"_index":"logs-a-2026.12","_id":"2","status":409,
              "error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"create":{"_index":"logs-a-2026.12","_id":"3","status":429,
              "error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"create":{"_index":"logs-a-2026.12","_id":"4","status":503,
              "error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}},
            {"create":{"_index":"logs-a-2026.12","_id":"5","status":400,
              "error":{"type":"mapper_parsing_exception","reason":"failed to parse field [code]"}}},
            {"create":{"_index":"logs-b-2026.12","_id":"6","status":404,
              "error":{"type":"index_not_found_exception","reason":"no such index"}}},
            {}
        ]}"#;
        let parsed: BulkResponse = serde_json::from_str(answer).unwrap();
        let got: Vec<Outcome> = parsed.items.iter().map(outcome).collect();
        assert_eq!(got[0], Outcome::Stored);
        assert_eq!(got[1], Outcome::AlreadyThere);
        assert_eq!(got[2], Outcome::Retry);
        assert_eq!(got[3], Outcome::Retry);
        assert!(
            matches!(&got[4], Outcome::Refused(400, e) if e["type"] == "mapper_parsing_exception")
        );
        assert!(matches!(&got[5], Outcome::Refused(404, _)));
        assert_eq!(
            got[6],
            Outcome::Retry,
            "an item with no result is sent again"
        );
    }
}
