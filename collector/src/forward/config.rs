//! `[[forward]]` sinks and `[[route]]` rules. Each sink is checked while the TOML is read
//! (`try_from`), so a bad value is refused with its line; references between sections
//! (fallback, routes) are checked by [`validate`], naming the sink.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::spool::release::{Limit, Policy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The `_bulk` API of Elasticsearch or OpenSearch.
    Elasticsearch,
    /// JSON lines over TCP (optionally TLS) or UDP, as Logstash's `json_lines` codec reads.
    Logstash,
    /// OTLP logs over HTTP (protobuf).
    OtlpHttp,
    /// Kafka topics (rskafka).
    Kafka,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
}

/// How rows are grouped into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    pub rows: usize,
    pub bytes: usize,
    /// A batch that is not full is sent once its first row waited this long.
    pub max_wait: Duration,
}

/// Retries with exponential backoff and jitter; never given up (the spool holds the rows,
/// its limit decides what happens to a sink that never recovers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOptions {
    pub initial: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// PEM file of the CA(s) the server's certificate must chain to (default: the
    /// system's roots).
    pub ca_file: Option<PathBuf>,
    /// The name the server's certificate must be valid for (default: the host of the
    /// address or URL).
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElasticsearchOptions {
    /// Base URL, e.g. `http://127.0.0.1:9200`.
    pub url: String,
    pub index: String,
    pub gzip: bool,
    /// NDJSON file where rows the server refused (400-class item errors) are kept with
    /// the reason. Default: `<state_dir>/forward/<name>.dead-letter.ndjson`.
    pub dead_letter: Option<PathBuf>,
    pub username: Option<String>,
    /// File holding the password (trailing newline ignored).
    pub password_file: Option<PathBuf>,
    pub tls: Option<TlsOptions>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogstashOptions {
    pub address: SocketAddr,
    pub transport: Transport,
    pub tls: Option<TlsOptions>,
    /// UDP: longest datagram; a longer document has its message cut and is flagged.
    pub max_datagram_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpOptions {
    /// Base URL (`/v1/logs` is appended unless it ends so), e.g. `http://127.0.0.1:4318`.
    pub url: String,
    pub gzip: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaOptions {
    /// `host:port` of one or more brokers.
    pub brokers: Vec<String>,
    pub topic: String,
    /// Partitions of a topic the sink creates.
    pub partitions: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Elasticsearch(ElasticsearchOptions),
    Logstash(LogstashOptions),
    OtlpHttp(OtlpOptions),
    Kafka(KafkaOptions),
}

/// One `[[forward]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSink")]
pub struct SinkConfig {
    pub name: String,
    pub target: Target,
    /// The tenant of a row: this column or `extra` key; `default_tenant` when absent.
    pub tenant_field: String,
    pub default_tenant: String,
    pub batch: BatchOptions,
    pub retry: RetryOptions,
    pub timeout: Duration,
    pub limit: Limit,
    /// While this sink has been failing for `fallback_after`, its rows go to the fallback.
    pub fallback: Option<String>,
    pub fallback_after: Duration,
    /// Only a fallback: it gets no rows of its own, only those its primary passes on.
    pub fallback_only: bool,
    /// With `[[route]]` rules: this sink gets the rows no rule matches.
    pub unmatched: bool,
}

impl SinkConfig {
    pub fn kind(&self) -> Kind {
        match self.target {
            Target::Elasticsearch(_) => Kind::Elasticsearch,
            Target::Logstash(_) => Kind::Logstash,
            Target::OtlpHttp(_) => Kind::OtlpHttp,
            Target::Kafka(_) => Kind::Kafka,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    name: String,
    kind: Kind,
    // elasticsearch
    url: Option<String>,
    index: Option<String>,
    gzip: Option<bool>,
    dead_letter: Option<PathBuf>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    // logstash
    address: Option<SocketAddr>,
    transport: Option<Transport>,
    max_datagram_bytes: Option<usize>,
    // kafka
    brokers: Option<Vec<String>>,
    topic: Option<String>,
    partitions: Option<i32>,
    // all
    tls: Option<TlsOptions>,
    #[serde(default = "default_tenant_field")]
    tenant_field: String,
    #[serde(default = "default_tenant")]
    default_tenant: String,
    batch_rows: Option<usize>,
    batch_bytes: Option<usize>,
    #[serde(default = "default_max_wait_ms")]
    max_wait_ms: u64,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_retry_initial_ms")]
    retry_initial_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    retry_max_ms: u64,
    #[serde(default = "default_when_full")]
    when_full: Policy,
    #[serde(default = "default_buffer_max_mb")]
    buffer_max_mb: u64,
    #[serde(default)]
    buffer_max_age_secs: u64,
    fallback: Option<String>,
    #[serde(default = "default_fallback_after_secs")]
    fallback_after_secs: u64,
    #[serde(default)]
    fallback_only: bool,
    #[serde(default)]
    unmatched: bool,
}

fn default_tenant_field() -> String {
    "tenant_id".into()
}
fn default_tenant() -> String {
    "default".into()
}
fn default_max_wait_ms() -> u64 {
    1000
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_retry_initial_ms() -> u64 {
    500
}
fn default_retry_max_ms() -> u64 {
    30_000
}
fn default_when_full() -> Policy {
    Policy::DropOldest
}
fn default_buffer_max_mb() -> u64 {
    1024
}
fn default_fallback_after_secs() -> u64 {
    10
}

/// The UDP payload limit (65,535 − 8 UDP − 20 IP header bytes).
pub const MAX_UDP_PAYLOAD: usize = 65_507;

impl TryFrom<RawSink> for SinkConfig {
    type Error = String;

    fn try_from(r: RawSink) -> Result<Self, String> {
        let name = r.name;
        let err = |why: String| format!("[[forward]] {name:?}: {why}");
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(err("name must be letters, digits, - and _".into()));
        }
        let unused = |set: bool, key: &str, kind: &str| -> Result<(), String> {
            if set {
                Err(err(format!("{key} does not apply to kind = {kind:?}")))
            } else {
                Ok(())
            }
        };
        if r.kind != Kind::Kafka {
            for (set, key) in [
                (r.brokers.is_some(), "brokers"),
                (r.topic.is_some(), "topic"),
                (r.partitions.is_some(), "partitions"),
            ] {
                if set {
                    return Err(err(format!("{key} applies to kind = \"kafka\"")));
                }
            }
        }
        let (target, rows, bytes) = match r.kind {
            Kind::Elasticsearch => {
                unused(r.address.is_some(), "address", "elasticsearch")?;
                unused(r.transport.is_some(), "transport", "elasticsearch")?;
                unused(
                    r.max_datagram_bytes.is_some(),
                    "max_datagram_bytes",
                    "elasticsearch",
                )?;
                let url = r.url.ok_or_else(|| err("url is required".into()))?;
                let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
                if !scheme_ok {
                    return Err(err(format!(
                        "url must start with http:// or https://: {url}"
                    )));
                }
                if r.tls.is_some() && !url.starts_with("https://") {
                    return Err(err("tls needs an https:// url".into()));
                }
                if r.password_file.is_some() != r.username.is_some() {
                    return Err(err("username and password_file go together".into()));
                }
                let index = r.index.unwrap_or_else(|| "logs-{tenant}-{%Y.%m}".into());
                super::template::Template::parse(&index).map_err(|e| err(format!("index: {e}")))?;
                let target = Target::Elasticsearch(ElasticsearchOptions {
                    url: url.trim_end_matches('/').to_string(),
                    index,
                    gzip: r.gzip.unwrap_or(true),
                    dead_letter: r.dead_letter,
                    username: r.username,
                    password_file: r.password_file,
                    tls: r.tls,
                });
                (target, 1000, 5 << 20)
            }
            Kind::Kafka => {
                for (set, key) in [
                    (r.tls.is_some(), "tls"),
                    (r.url.is_some(), "url"),
                    (r.address.is_some(), "address"),
                    (r.transport.is_some(), "transport"),
                    (r.max_datagram_bytes.is_some(), "max_datagram_bytes"),
                    (r.index.is_some(), "index"),
                    (r.gzip.is_some(), "gzip"),
                    (r.dead_letter.is_some(), "dead_letter"),
                    (r.username.is_some(), "username"),
                    (r.password_file.is_some(), "password_file"),
                ] {
                    unused(set, key, "kafka")?;
                }
                let brokers = r.brokers.unwrap_or_default();
                if brokers.is_empty() {
                    return Err(err("brokers (a list of host:port) is required".into()));
                }
                let topic = r.topic.unwrap_or_else(|| "logs-{tenant}".into());
                super::template::Template::parse(&topic).map_err(|e| err(format!("topic: {e}")))?;
                let partitions = r.partitions.unwrap_or(1);
                if partitions < 1 {
                    return Err(err("partitions must be at least 1".into()));
                }
                let target = Target::Kafka(KafkaOptions {
                    brokers,
                    topic,
                    partitions,
                });
                (target, 1000, 4 << 20)
            }
            Kind::OtlpHttp => {
                for (set, key) in [
                    (r.tls.is_some(), "tls"),
                    (r.address.is_some(), "address"),
                    (r.transport.is_some(), "transport"),
                    (r.max_datagram_bytes.is_some(), "max_datagram_bytes"),
                    (r.index.is_some(), "index"),
                    (r.dead_letter.is_some(), "dead_letter"),
                    (r.username.is_some(), "username"),
                    (r.password_file.is_some(), "password_file"),
                ] {
                    unused(set, key, "otlp_http")?;
                }
                let url = r.url.ok_or_else(|| err("url is required".into()))?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(err(format!(
                        "url must start with http:// or https://: {url}"
                    )));
                }
                let target = Target::OtlpHttp(OtlpOptions {
                    url: url.trim_end_matches('/').to_string(),
                    gzip: r.gzip.unwrap_or(true),
                });
                (target, 1000, 4 << 20)
            }
            Kind::Logstash => {
                for (set, key) in [
                    (r.url.is_some(), "url"),
                    (r.index.is_some(), "index"),
                    (r.gzip.is_some(), "gzip"),
                    (r.dead_letter.is_some(), "dead_letter"),
                    (r.username.is_some(), "username"),
                    (r.password_file.is_some(), "password_file"),
                ] {
                    unused(set, key, "logstash")?;
                }
                let address = r.address.ok_or_else(|| err("address is required".into()))?;
                let transport = r.transport.unwrap_or(Transport::Tcp);
                if transport == Transport::Udp && r.tls.is_some() {
                    return Err(err("tls needs transport = \"tcp\"".into()));
                }
                let max_datagram_bytes = r.max_datagram_bytes.unwrap_or(MAX_UDP_PAYLOAD);
                if transport == Transport::Tcp && r.max_datagram_bytes.is_some() {
                    return Err(err(
                        "max_datagram_bytes applies to transport = \"udp\"".into()
                    ));
                }
                if !(512..=MAX_UDP_PAYLOAD).contains(&max_datagram_bytes) {
                    return Err(err(format!(
                        "max_datagram_bytes must be between 512 and {MAX_UDP_PAYLOAD}"
                    )));
                }
                let target = Target::Logstash(LogstashOptions {
                    address,
                    transport,
                    tls: r.tls,
                    max_datagram_bytes,
                });
                (target, 500, 1 << 20)
            }
        };
        let rows = r.batch_rows.unwrap_or(rows);
        let bytes = r.batch_bytes.unwrap_or(bytes);
        if rows == 0 || bytes == 0 {
            return Err(err("batch_rows and batch_bytes must be at least 1".into()));
        }
        if r.retry_initial_ms == 0 || r.retry_max_ms < r.retry_initial_ms {
            return Err(err(
                "retry_initial_ms must be at least 1 and at most retry_max_ms".into(),
            ));
        }
        if r.timeout_ms == 0 {
            return Err(err("timeout_ms must be at least 1".into()));
        }
        if r.buffer_max_mb == 0 {
            return Err(err("buffer_max_mb must be at least 1".into()));
        }
        if r.tenant_field.is_empty() || r.default_tenant.is_empty() {
            return Err(err(
                "tenant_field and default_tenant must not be empty".into()
            ));
        }
        Ok(SinkConfig {
            name,
            target,
            tenant_field: r.tenant_field,
            default_tenant: r.default_tenant,
            batch: BatchOptions {
                rows,
                bytes,
                max_wait: Duration::from_millis(r.max_wait_ms),
            },
            retry: RetryOptions {
                initial: Duration::from_millis(r.retry_initial_ms),
                max: Duration::from_millis(r.retry_max_ms),
            },
            timeout: Duration::from_millis(r.timeout_ms),
            limit: Limit {
                max_bytes: r.buffer_max_mb << 20,
                max_age: Duration::from_secs(r.buffer_max_age_secs),
                policy: r.when_full,
            },
            fallback: r.fallback,
            fallback_after: Duration::from_secs(r.fallback_after_secs),
            fallback_only: r.fallback_only,
            unmatched: r.unmatched,
        })
    }
}

/// Checks between sections: unique names, fallbacks that exist and do not chain, limits
/// that a full spool cannot pre-empt.
pub fn validate(
    sinks: &[SinkConfig],
    routes: &[super::route::RouteConfig],
    spool_max_mb: u64,
) -> Result<()> {
    let mut names = HashSet::new();
    for s in sinks {
        if !names.insert(s.name.as_str()) || s.name == crate::spool::release::ARCHIVE {
            bail!("[[forward]] {:?}: the name is used twice", s.name);
        }
    }
    for s in sinks {
        if let Some(f) = &s.fallback {
            let Some(fb) = sinks.iter().find(|o| &o.name == f) else {
                bail!(
                    "[[forward]] {:?}: fallback {f:?} is no [[forward]] name",
                    s.name
                );
            };
            if s.fallback_only {
                bail!(
                    "[[forward]] {:?}: a fallback_only sink has no fallback",
                    s.name
                );
            }
            if fb.name == s.name || fb.fallback.is_some() {
                bail!(
                    "[[forward]] {:?}: fallback {f:?} must be another sink without a fallback \
                     of its own",
                    s.name
                );
            }
        }
        if s.limit.policy == Policy::DropOldest && s.limit.max_bytes >= spool_max_mb << 20 {
            bail!(
                "[[forward]] {:?}: buffer_max_mb ({}) must be below spool.max_mb ({spool_max_mb}), \
                 or a full spool would hold every source back before drop_oldest applies",
                s.name,
                s.limit.max_bytes >> 20
            );
        }
    }
    for s in sinks.iter().filter(|s| s.fallback_only) {
        if !sinks.iter().any(|o| o.fallback.as_ref() == Some(&s.name)) {
            bail!(
                "[[forward]] {:?}: fallback_only, but no sink names it as its fallback",
                s.name
            );
        }
    }
    super::route::validate(routes, sinks)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn err(text: &str) -> String {
        format!("{:#}", Config::parse(text, "t.toml").unwrap_err())
    }

    const ES: &str =
        "[[forward]]\nname = \"es\"\nkind = \"elasticsearch\"\nurl = \"http://127.0.0.1:9200\"\n";

    #[test]
    fn a_sink_is_read_with_its_defaults() {
        let c = Config::parse(ES, "t").unwrap();
        let s = &c.forward[0];
        assert_eq!(s.batch.rows, 1000);
        assert_eq!(s.tenant_field, "tenant_id");
        assert_eq!(s.default_tenant, "default");
        let super::Target::Elasticsearch(o) = &s.target else {
            panic!("kind")
        };
        assert_eq!(o.index, "logs-{tenant}-{%Y.%m}");
        assert!(o.gzip);
    }

    #[test]
    fn bad_sinks_are_refused_with_their_line_and_reason() {
        let text = format!("# x\n\n{ES}batch_rowz = 5\n");
        let e = err(&text);
        assert!(e.contains("line 7") && e.contains("batch_rowz"), "{e}");
        let text = format!("\n{ES}address = \"127.0.0.1:5000\"\n");
        let e = err(&text);
        assert!(
            e.contains("line 2") && e.contains("address does not apply"),
            "{e}"
        );
        let e = err("[[forward]]\nname = \"ls\"\nkind = \"logstash\"\n");
        assert!(
            e.contains("line 1") && e.contains("address is required"),
            "{e}"
        );
        let e = err(&format!("{ES}index = \"logs-{{tenant\"\n"));
        assert!(e.contains("unclosed"), "{e}");
        let e =
            err(&format!("{ES}url = \"ftp://x\"\n")
                .replace("url = \"http://127.0.0.1:9200\"\n", ""));
        assert!(e.contains("http://"), "{e}");
    }

    #[test]
    fn references_between_sinks_are_checked() {
        let e = err(&format!("{ES}fallback = \"nope\"\n"));
        assert!(e.contains("\"es\"") && e.contains("nope"), "{e}");
        let e = err(&format!("{ES}{ES}"));
        assert!(e.contains("used twice"), "{e}");
        let e = err(&format!(
            "[spool]\nmax_mb = 512\nsegment_mb = 64\n{ES}buffer_max_mb = 600\n"
        ));
        assert!(e.contains("below spool.max_mb"), "{e}");
        let e = err(&format!("{ES}[[route]]\nsinks = [\"other\"]\n"));
        assert!(e.contains("no [[forward]] name"), "{e}");
        let e = err(&format!("{ES}fallback_only = true\n"));
        assert!(e.contains("no sink names it"), "{e}");
    }
}
