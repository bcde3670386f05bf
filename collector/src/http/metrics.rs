//! `/metrics`: a [`Snapshot`] in the OpenMetrics text format, encoded by
//! `prometheus-client` from a registry built for each scrape (the values live in the
//! collector's own counters; the registry only names and types them).

use anyhow::Result;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::stats::Snapshot;

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic text format (0.0.4), for clients that do not ask for OpenMetrics
/// (`promtool check metrics`, curl, older scrapers).
pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (Prometheus does).
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.contains("application/openmetrics-text")
}

/// OpenMetrics text as the classic format: a counter family is named with its `_total`
/// suffix there, and there is no `# EOF` or `# UNIT`. Only the metadata lines differ; the
/// samples are the same.
pub fn to_classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            if let Some(h) = help.take() {
                let text = h.strip_prefix(&format!("# HELP {name} ")).unwrap_or("");
                out.push_str(&format!("# HELP {name}_total {text}\n"));
            }
            out.push_str(&format!("# TYPE {name}_total counter\n"));
            continue;
        }
        if let Some(h) = help.take() {
            out.push_str(h);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

type Labels = Vec<(String, String)>;
type Counters = Family<Labels, Counter<u64>>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// Families in the order they are registered, filled as the snapshot is walked.
struct Builder {
    registry: Registry,
}

impl Builder {
    fn counter(&mut self, name: &str, help: &str, values: &[(Labels, u64)]) {
        if let [(labels, v)] = values
            && labels.is_empty()
        {
            let c = Counter::<u64>::default();
            c.inc_by(*v);
            self.registry.register(name, help, c);
            return;
        }
        let family = Counters::default();
        for (labels, v) in values {
            family.get_or_create(labels).inc_by(*v);
        }
        self.registry.register(name, help, family);
    }

    fn counter_f64(&mut self, name: &str, help: &str, value: f64) {
        let c = Counter::<f64, AtomicU64>::default();
        c.inc_by(value);
        self.registry.register(name, help, c);
    }

    fn gauge(&mut self, name: &str, help: &str, values: &[(Labels, f64)]) {
        if let [(labels, v)] = values
            && labels.is_empty()
        {
            let g = Gauge::<f64, AtomicU64>::default();
            g.set(*v);
            self.registry.register(name, help, g);
            return;
        }
        let family = Gauges::default();
        for (labels, v) in values {
            family.get_or_create(labels).set(*v);
        }
        self.registry.register(name, help, family);
    }
}

fn label(key: &str, value: &str) -> Labels {
    vec![(key.to_string(), value.to_string())]
}

fn none() -> Labels {
    Vec::new()
}

pub fn render(s: &Snapshot) -> Result<String> {
    let mut b = Builder {
        registry: Registry::with_prefix("infralog"),
    };
    let per_source = |f: &dyn Fn(&super::stats::SourceSnapshot) -> u64| -> Vec<(Labels, u64)> {
        (s.sources.iter())
            .map(|(name, v)| (label("source", name), f(v)))
            .collect()
    };
    b.counter(
        "source_lines",
        "Lines handed to the spool, by the source column",
        &per_source(&|v| v.counts.lines),
    );
    b.counter(
        "source_bytes",
        "Message bytes handed to the spool (after any cut)",
        &per_source(&|v| v.counts.bytes),
    );
    b.counter(
        "source_parse_errors",
        "Lines kept whole with a parse error",
        &per_source(&|v| v.counts.parse_errors),
    );
    b.counter(
        "source_truncated",
        "Lines longer than collector.max_message_bytes, kept cut",
        &per_source(&|v| v.counts.truncated),
    );
    b.gauge(
        "source_checkpoint_age_seconds",
        "Seconds since a chunk last moved the source's checkpoint",
        &(s.sources.iter())
            .filter_map(|(n, v)| v.checkpoint_age_seconds.map(|a| (label("source", n), a)))
            .collect::<Vec<_>>(),
    );
    let running: Vec<_> = (s.source_threads.iter())
        .map(|t| (label("source", t.name), if t.running { 1.0 } else { 0.0 }))
        .collect();
    b.gauge(
        "source_running",
        "1 while the source's thread runs",
        &running,
    );
    b.counter(
        "kmsg_lost",
        "kmsg records the kernel overwrote before they were read (sequence gaps)",
        &s.kmsg_lost.map(|n| vec![(none(), n)]).unwrap_or_default(),
    );
    let ebpf = s.ebpf.unwrap_or_default();
    let ebpf_on = s.ebpf.is_some();
    let e = |v: u64| if ebpf_on { vec![(none(), v)] } else { vec![] };
    b.counter(
        "ebpf_events",
        "Events the eBPF programs wrote to the ring buffer",
        &e(ebpf.sent),
    );
    b.counter(
        "ebpf_ring_dropped",
        "eBPF events lost in the kernel: the ring buffer was full",
        &e(ebpf.dropped),
    );
    b.counter(
        "ebpf_faulted",
        "eBPF events lost: their text could not be read",
        &e(ebpf.faulted),
    );
    b.counter(
        "ebpf_truncated",
        "eBPF events whose text was cut at 4 KiB",
        &e(ebpf.truncated),
    );
    b.gauge(
        "ebpf_available",
        "1 when eBPF capture runs",
        &[(none(), if ebpf_on { 1.0 } else { 0.0 })],
    );
    let per_listener = |f: &dyn Fn(&super::stats::NetSnapshot) -> u64| -> Vec<(Labels, u64)> {
        (s.net.iter())
            .map(|l| (label("listener", &l.listener), f(l)))
            .collect()
    };
    b.counter(
        "net_messages",
        "Messages a net listener appended as rows",
        &per_listener(&|l| l.messages),
    );
    b.counter(
        "net_kernel_dropped",
        "UDP datagrams the kernel dropped: the socket buffer was full",
        &per_listener(&|l| l.kernel_drops),
    );
    b.counter(
        "net_dropped",
        "Messages received and not archived (the collector stopped first)",
        &per_listener(&|l| l.dropped),
    );
    b.counter(
        "net_refused_connections",
        "Connections refused (limit reached, failed TLS handshake or peer check)",
        &per_listener(&|l| l.refused_connections),
    );
    b.gauge(
        "net_open_connections",
        "TCP/TLS connections open now",
        &(s.net.iter())
            .map(|l| (label("listener", &l.listener), l.open_connections as f64))
            .collect::<Vec<_>>(),
    );
    let sp = &s.spool;
    b.gauge(
        "spool_bytes",
        "Bytes the spool holds",
        &[(none(), sp.bytes as f64)],
    );
    b.gauge(
        "spool_max_bytes",
        "spool.max_mb in bytes",
        &[(none(), sp.max_bytes as f64)],
    );
    b.gauge(
        "spool_segments",
        "Segment files in the spool",
        &[(none(), sp.segments as f64)],
    );
    b.gauge(
        "spool_full",
        "1 while the spool is full and the sources are held back",
        &[(none(), if sp.full { 1.0 } else { 0.0 })],
    );
    b.counter(
        "spool_rows",
        "Rows written to the spool",
        &[(none(), sp.rows_written)],
    );
    b.counter(
        "spool_write_errors",
        "Spool writes that failed",
        &[(none(), sp.write_errors)],
    );
    let a = &s.archive;
    b.counter("archive_rows", "Rows archived", &[(none(), a.rows)]);
    b.counter(
        "archive_files",
        "Parquet files written to the archive",
        &[(none(), a.files)],
    );
    b.counter(
        "archive_bytes",
        "Bytes written to the archive",
        &[(none(), a.bytes)],
    );
    b.counter(
        "archive_failures",
        "Segments the archiver failed to archive (retried)",
        &[(none(), a.failures)],
    );
    b.gauge(
        "archive_lag_rows",
        "Rows spooled by this run and not archived yet",
        &[(none(), a.lag_rows as f64)],
    );
    b.gauge(
        "archive_lag_seconds",
        "How long rows have waited for the archive (0: caught up)",
        &[(none(), a.lag_seconds)],
    );
    if let Some(d) = &s.detect {
        b.gauge(
            "detect_templates",
            "Templates the miner holds",
            &[(none(), d.templates as f64)],
        );
        b.counter(
            "detect_anomalies",
            "Anomalies raised",
            &[(none(), d.anomalies)],
        );
    }
    if let Some(al) = &s.alerts {
        b.counter(
            "alert_deliveries",
            "Notifications delivered",
            &[(none(), al.delivered)],
        );
        b.counter(
            "alert_failures",
            "Notification attempts that failed (retried)",
            &[(none(), al.failed_attempts)],
        );
    }
    let per_sink = |f: &dyn Fn(&crate::forward::stats::Status) -> u64| -> Vec<(Labels, u64)> {
        (s.forward.iter())
            .map(|st| (label("sink", &st.sink), f(st)))
            .collect()
    };
    b.counter(
        "forward_acked",
        "Rows a forwarding sink confirmed",
        &per_sink(&|st| st.acked),
    );
    b.counter(
        "forward_retried",
        "Rows a forwarding sink sent again after a failure",
        &per_sink(&|st| st.retried),
    );
    b.counter(
        "forward_dead_lettered",
        "Rows a forwarding sink refused for good",
        &per_sink(&|st| st.dead_lettered),
    );
    b.gauge(
        "ready",
        "1 when /readyz answers ready",
        &[(none(), if s.ready { 1.0 } else { 0.0 })],
    );
    b.gauge(
        "uptime_seconds",
        "Seconds since the collector started",
        &[(none(), s.uptime_seconds)],
    );
    // The process metrics keep their conventional names (no prefix).
    let mut process = Builder {
        registry: Registry::with_prefix("process"),
    };
    process.counter_f64(
        "cpu_seconds",
        "User and system CPU time spent, in seconds",
        s.process.cpu_seconds,
    );
    process.gauge(
        "resident_memory_bytes",
        "Resident memory size in bytes",
        &[(none(), s.process.resident_bytes as f64)],
    );
    process.gauge(
        "threads",
        "Threads of the process",
        &[(none(), s.process.threads as f64)],
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode_registry(&mut text, &b.registry)?;
    encode(&mut text, &process.registry)?;
    Ok(text)
}
