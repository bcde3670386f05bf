//! What the endpoint reads from a running collector ([`Observed`]: the counters the data
//! path keeps), the [`Snapshot`] of it that `/api/v1/stats` serves and `/metrics` renders,
//! and the readiness checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::alert::dispatch::AlertStats;
use crate::archive::archiver::ArchiverStats;
use crate::detect::stage::MinerStats;
use crate::forward::stats::SinkStats;
use crate::meter::{Meter, SourceCounts};
use crate::sources::ebpf::{EbpfCounters, EbpfStats};
use crate::sources::kmsg::KmsgStats;
use crate::sources::net::NetStats;
use crate::spool::Usage;
use crate::spool::writer::SpoolStats;

/// A source thread: whether it still runs (kept current by the collector's main loop).
#[derive(Debug, Clone, Serialize)]
pub struct SourceState {
    pub name: &'static str,
    pub running: bool,
    /// The error it ended with, if it did.
    pub error: Option<String>,
}

/// The live handles of one running collector.
pub struct Observed {
    pub started_at: f64,
    pub config: ConfigSummary,
    pub meter: Arc<Meter>,
    pub sources: Arc<Mutex<Vec<SourceState>>>,
    /// Why eBPF capture is off, when it is.
    pub ebpf_unavailable: Option<String>,
    pub ebpf: Option<Arc<EbpfStats>>,
    pub kmsg: Option<Arc<KmsgStats>>,
    pub net: NetStats,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub usage: Arc<Usage>,
    pub spool: Arc<SpoolStats>,
    /// The archive's directory when it is local (checked for writing), else `None`.
    pub archive_dir: Option<PathBuf>,
    pub archiver: Arc<ArchiverStats>,
    pub miner: Option<Arc<MinerStats>>,
    pub alerts: Option<Arc<AlertStats>>,
    pub sinks: Vec<(String, Arc<SinkStats>)>,
    /// Moments the endpoint remembers between requests: rates, lag, last success.
    history: Mutex<History>,
}

/// The configuration in a few words, for people reading `/api/v1/stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigSummary {
    pub hostname: String,
    pub archive: String,
    pub spool_dir: String,
    pub sources_enabled: Vec<String>,
    pub forward_sinks: Vec<String>,
    pub alert_targets: Vec<String>,
    pub templates: bool,
    pub anomalies: bool,
}

#[derive(Default)]
struct History {
    /// The previous sample, for rates: (unix seconds, lines per source).
    previous: Option<(f64, BTreeMap<String, u64>)>,
    rates: BTreeMap<String, f64>,
    archive_files: u64,
    archive_failures: u64,
    archive_last_success_at: Option<f64>,
    archive_last_failure_at: Option<f64>,
    /// Since when rows have been waiting for the archive (None: it has caught up).
    lag_since: Option<f64>,
}

/// Rates are taken over at least this many seconds.
const RATE_WINDOW_SECS: f64 = 5.0;

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub version: &'static str,
    pub uptime_seconds: f64,
    pub config: ConfigSummary,
    pub ready: bool,
    pub not_ready_reasons: Vec<String>,
    pub sources: BTreeMap<String, SourceSnapshot>,
    pub source_threads: Vec<SourceState>,
    pub ebpf: Option<EbpfCounters>,
    pub ebpf_unavailable: Option<String>,
    /// kmsg records the kernel overwrote before they were read (sequence gaps).
    pub kmsg_lost: Option<u64>,
    pub net: Vec<NetSnapshot>,
    pub spool: SpoolSnapshot,
    pub archive: ArchiveSnapshot,
    pub detect: Option<DetectSnapshot>,
    pub alerts: Option<AlertSnapshot>,
    pub forward: Vec<crate::forward::stats::Status>,
    pub process: super::process::ProcessStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceSnapshot {
    #[serde(flatten)]
    pub counts: SourceCounts,
    pub lines_per_second: f64,
    /// Seconds since a chunk of this source last moved its checkpoint.
    pub checkpoint_age_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetSnapshot {
    pub listener: String,
    pub messages: u64,
    pub bytes: u64,
    pub parse_errors: u64,
    pub truncated: u64,
    pub datagrams: u64,
    pub kernel_drops: u64,
    pub dropped: u64,
    pub open_connections: u64,
    pub refused_connections: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpoolSnapshot {
    pub dir: String,
    pub bytes: u64,
    pub max_bytes: u64,
    pub segments: u64,
    pub full: bool,
    pub rows_written: u64,
    pub bytes_written: u64,
    pub fsyncs: u64,
    pub write_errors: u64,
    pub full_waits: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArchiveSnapshot {
    pub location: String,
    pub segments: u64,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub failures: u64,
    pub quarantined: u64,
    /// Rows spooled by this run and not archived yet.
    pub lag_rows: u64,
    /// How long rows have been waiting for the archive (0 when it has caught up).
    pub lag_seconds: f64,
    pub last_success_at: Option<f64>,
    pub last_failure_at: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectSnapshot {
    pub lines: u64,
    pub templates: u64,
    pub evicted: u64,
    pub anomalies: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertSnapshot {
    pub received: u64,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub refused: u64,
    pub queued: u64,
}

fn now() -> f64 {
    crate::time::now_ns() as f64 / 1e9
}

fn g(a: &std::sync::atomic::AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// A file can be created (and is removed again) in `dir`.
fn writable(dir: &std::path::Path) -> Result<(), String> {
    let probe = dir.join(format!(".infralog-ready-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("{} is not writable: {e}", dir.display()))
}

impl Observed {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: ConfigSummary,
        meter: Arc<Meter>,
        sources: Arc<Mutex<Vec<SourceState>>>,
        ebpf: &crate::sources::ebpf::EbpfStatus,
        kmsg: Option<Arc<KmsgStats>>,
        net: NetStats,
        pipeline: &crate::pipeline::Pipeline,
        spool_max_bytes: u64,
        archive_dir: Option<PathBuf>,
        alerts: Option<Arc<AlertStats>>,
        sinks: Vec<(String, Arc<SinkStats>)>,
    ) -> Observed {
        Observed {
            started_at: now(),
            config,
            meter,
            sources,
            ebpf_unavailable: ebpf.unavailable.clone(),
            ebpf: ebpf.stats.clone(),
            kmsg,
            net,
            spool_dir: pipeline.spool_dir.clone(),
            spool_max_bytes,
            usage: pipeline.usage.clone(),
            spool: pipeline.spool_stats.clone(),
            archive_dir,
            archiver: pipeline.archiver_stats.clone(),
            miner: pipeline.miner_stats.clone(),
            alerts,
            sinks,
            history: Mutex::default(),
        }
    }

    /// Why the collector is not ready; empty when it is.
    pub fn readiness(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        let threads = self
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if threads.is_empty() {
            reasons.push("no source is running".to_string());
        }
        for t in threads.iter().filter(|t| !t.running) {
            match &t.error {
                Some(e) => reasons.push(format!("the {} source has stopped: {e}", t.name)),
                None => reasons.push(format!("the {} source has stopped", t.name)),
            }
        }
        if let Err(e) = writable(&self.spool_dir) {
            reasons.push(format!("spool: {e}"));
        }
        if self.usage.full.load(Ordering::Relaxed) {
            reasons.push("spool: full, the sources are held back".to_string());
        }
        match &self.archive_dir {
            Some(dir) => {
                if let Err(e) = writable(dir) {
                    reasons.push(format!("archive: {e} (rows wait in the spool)"));
                }
            }
            None => {
                let h = self.sample();
                if h.archive_last_failure_at > h.archive_last_success_at {
                    reasons.push(
                        "archive: uploads are failing (rows wait in the spool and are retried)"
                            .to_string(),
                    );
                }
            }
        }
        reasons
    }

    /// Updates the history with the counters now and returns a copy of it.
    fn sample(&self) -> HistoryView {
        let t = now();
        let lines: BTreeMap<String, u64> = (self.meter.snapshot().into_iter())
            .map(|(k, v)| (k, v.lines))
            .collect();
        let spooled = g(&self.spool.rows);
        let archived = g(&self.archiver.rows);
        let (files, failures) = (g(&self.archiver.files), g(&self.archiver.failures));
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if files > h.archive_files {
            h.archive_last_success_at = Some(t);
        }
        if failures > h.archive_failures {
            h.archive_last_failure_at = Some(t);
        }
        (h.archive_files, h.archive_failures) = (files, failures);
        if spooled > archived {
            h.lag_since.get_or_insert(t);
        } else {
            h.lag_since = None;
        }
        match &h.previous {
            Some((t0, _)) if t - t0 < RATE_WINDOW_SECS => {}
            Some((t0, before)) => {
                let dt = t - t0;
                h.rates = (lines.iter())
                    .map(|(k, n)| {
                        let was = before.get(k).copied().unwrap_or(0);
                        (k.clone(), n.saturating_sub(was) as f64 / dt)
                    })
                    .collect();
                h.previous = Some((t, lines));
            }
            None => h.previous = Some((t, lines)),
        }
        HistoryView {
            rates: h.rates.clone(),
            archive_last_success_at: h.archive_last_success_at,
            archive_last_failure_at: h.archive_last_failure_at,
            lag_seconds: h.lag_since.map_or(0.0, |s| t - s),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let t = now();
        let history = self.sample();
        let not_ready_reasons = self.readiness();
        let sources = (self.meter.snapshot().into_iter())
            .map(|(name, counts)| {
                let s = SourceSnapshot {
                    lines_per_second: history.rates.get(&name).copied().unwrap_or(0.0),
                    checkpoint_age_seconds: counts.last_checkpoint_at.map(|c| t - c),
                    counts,
                };
                (name, s)
            })
            .collect();
        let segments =
            infralog_spool_format::list_segments(&self.spool_dir).map_or(0, |s| s.len() as u64);
        let (spooled, archived) = (g(&self.spool.rows), g(&self.archiver.rows));
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: t - self.started_at,
            config: self.config.clone(),
            ready: not_ready_reasons.is_empty(),
            not_ready_reasons,
            sources,
            source_threads: self
                .sources
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            ebpf: self.ebpf.as_ref().map(|e| e.read()),
            ebpf_unavailable: self.ebpf_unavailable.clone(),
            kmsg_lost: self.kmsg.as_ref().map(|k| g(&k.lost)),
            net: (self.net.iter())
                .map(|(name, s)| NetSnapshot {
                    listener: name.clone(),
                    messages: g(&s.messages),
                    bytes: g(&s.bytes),
                    parse_errors: g(&s.parse_errors),
                    truncated: g(&s.truncated),
                    datagrams: g(&s.datagrams),
                    kernel_drops: g(&s.kernel_drops),
                    dropped: g(&s.dropped),
                    open_connections: g(&s.open_connections),
                    refused_connections: g(&s.refused_connections),
                })
                .collect(),
            spool: SpoolSnapshot {
                dir: self.spool_dir.display().to_string(),
                bytes: self.usage.bytes(),
                max_bytes: self.spool_max_bytes,
                segments,
                full: self.usage.full.load(Ordering::Relaxed),
                rows_written: spooled,
                bytes_written: g(&self.spool.bytes),
                fsyncs: g(&self.spool.fsyncs),
                write_errors: g(&self.spool.write_errors),
                full_waits: g(&self.spool.full_waits),
            },
            archive: ArchiveSnapshot {
                location: self.config.archive.clone(),
                segments: g(&self.archiver.segments),
                rows: archived,
                files: g(&self.archiver.files),
                bytes: g(&self.archiver.bytes),
                failures: g(&self.archiver.failures),
                quarantined: g(&self.archiver.quarantined),
                lag_rows: spooled.saturating_sub(archived),
                lag_seconds: history.lag_seconds,
                last_success_at: history.archive_last_success_at,
                last_failure_at: history.archive_last_failure_at,
            },
            detect: self.miner.as_ref().map(|m| DetectSnapshot {
                lines: g(&m.lines),
                templates: g(&m.templates),
                evicted: g(&m.evicted),
                anomalies: g(&m.anomalies),
            }),
            alerts: self.alerts.as_ref().map(|a| AlertSnapshot {
                received: g(&a.received),
                delivered: g(&a.delivered),
                failed_attempts: g(&a.failed_attempts),
                refused: g(&a.refused),
                queued: g(&a.queued),
            }),
            forward: (self.sinks.iter())
                .map(|(name, s)| s.snapshot(name, 0, 0))
                .collect(),
            process: super::process::read(),
        }
    }
}

struct HistoryView {
    rates: BTreeMap<String, f64>,
    archive_last_success_at: Option<f64>,
    archive_last_failure_at: Option<f64>,
    lag_seconds: f64,
}
