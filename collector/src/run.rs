//! The running collector: configuration → sources → spool → archive. `infra-collector run`
//! and the eBPF load harness both start it here, so there is one wiring.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;

use crate::archive::{Archive, ArchiveReport};
use crate::config::Config;
use crate::http::stats::{ConfigSummary, Observed, SourceState};
use crate::meter::Meter;
use crate::pipeline::Pipeline;
use crate::sources::ebpf::{self, EbpfStatus};
use crate::sources::journald;
use crate::sources::kmsg::{self, KmsgStats};
use crate::sources::{KernelCaller, SourceContext};

/// Console events waiting to be joined with their /dev/kmsg record.
const KERNEL_CALLER_QUEUE: usize = 65_536;

pub struct Collector {
    shutdown: Arc<AtomicBool>,
    sources: Vec<(&'static str, JoinHandle<Result<()>>)>,
    pipeline: Pipeline,
    forwarder: Option<crate::forward::Forwarder>,
    maintenance: Option<JoinHandle<()>>,
    alerts: Option<crate::alert::Dispatcher>,
    /// What eBPF capture achieved (hooks, or why it is unavailable).
    pub ebpf: EbpfStatus,
    pub kmsg: Option<Arc<KmsgStats>>,
    /// Counters of each net listener.
    pub net: crate::sources::net::NetStats,
    /// Counts the sources' chunks on their way to the pipeline.
    meter_thread: Option<JoinHandle<()>>,
    source_states: Arc<std::sync::Mutex<Vec<SourceState>>>,
    /// What the operations endpoint reads.
    pub observed: Arc<Observed>,
}

/// How often the archive's housekeeping (retention, compaction) runs.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(600);

/// Housekeeping on its own thread, off the data path: retention and compaction now and
/// every ten minutes. A failure is logged and tried again next time; it never stops the
/// collector.
fn spawn_maintenance(config: &Config, shutdown: Arc<AtomicBool>) -> Option<JoinHandle<()>> {
    let days = config.retention.days;
    let (path, s3) = (config.archive.path.clone(), config.archive.s3.clone());
    let spool_dir = config.spool_options().dir;
    let compact_opts = crate::archive::compact::CompactOptions {
        encode: config.archive.archiver_options().encode,
        ..Default::default()
    };
    let housekeeping = move || -> Result<()> {
        let archive = Archive::open_with(&path, &s3)?;
        let today = crate::time::day_of(crate::time::now_ns());
        crate::archive::retention::apply(&archive, today, days, false)?;
        let (instance, below) = crate::spool::archived_below(&spool_dir)?;
        crate::archive::compact::compact(&archive, &instance, below, today, &compact_opts)?;
        Ok(())
    };
    let run = move || {
        let mut next = std::time::Instant::now() + Duration::from_secs(5);
        while !shutdown.load(Ordering::Relaxed) {
            if std::time::Instant::now() >= next {
                if let Err(e) = housekeeping() {
                    tracing::warn!("archive housekeeping failed (will retry): {e:#}");
                }
                next = std::time::Instant::now() + MAINTENANCE_EVERY;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    std::thread::Builder::new()
        .name("maintenance".into())
        .spawn(run)
        .map_err(|e| tracing::warn!("cannot start the maintenance thread: {e}"))
        .ok()
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    pub archived: ArchiveReport,
    /// Sources that ended with an error, with the error.
    pub failed: Vec<(&'static str, String)>,
}

impl Collector {
    /// Starts every enabled source and the archive writer. Fails on a configuration or
    /// archive problem; a source that cannot start (no permission, no device) is logged
    /// and skipped.
    pub fn start(config: &Config, once: bool) -> Result<Collector> {
        let hostname: Arc<str> = config.hostname().into();
        let archive = Archive::open_with(&config.archive.path, &config.archive.s3)?;
        tracing::info!(
            archive = archive.location(),
            hostname = &*hostname,
            "infra-collector starting"
        );
        let shutdown = Arc::new(AtomicBool::new(false));
        let mut miner = crate::config::DetectConfig::miner_options(config);
        let alerts = match miner.as_mut().and_then(|m| m.detect.as_mut()) {
            Some(detect) if !config.alert.targets.is_empty() => {
                let (dispatcher, tx) = crate::alert::Dispatcher::start(
                    config.alert.clone(),
                    &config.collector.state_dir.join("alerts"),
                )?;
                detect.alerts = Some(tx);
                Some(dispatcher)
            }
            _ => None,
        };
        let consumers: Vec<_> = (config.forward.iter())
            .filter(|s| !s.fallback_only)
            .map(|s| (s.name.clone(), s.limit))
            .collect();
        let pipeline = Pipeline::start_forwarding(
            config.spool_options(),
            archive,
            config.archive.archiver_options(),
            shutdown.clone(),
            miner,
            &consumers,
        )?;
        let forwarder = if config.forward.is_empty() {
            None
        } else {
            let ctx = crate::forward::Context {
                spool_dir: pipeline.spool_dir.clone(),
                state_dir: config.collector.state_dir.clone(),
                instance: pipeline.instance.clone(),
                stopping: Arc::new(AtomicBool::new(false)),
            };
            let f = crate::forward::Forwarder::start(
                &config.forward,
                &config.route,
                ctx,
                pipeline.release.clone(),
                pipeline.lock()?,
            )?;
            tracing::info!(sinks = consumers.len(), "forwarding from the spool");
            Some(f)
        };
        // Sources send to the meter, which counts each chunk and passes it on.
        let meter = Arc::new(Meter::default());
        let (metered_tx, metered_rx) = crossbeam_channel::bounded(1);
        let meter_thread = crate::meter::spawn(meter.clone(), metered_rx, pipeline.chunks.clone())?;
        let ctx = SourceContext {
            hostname: hostname.clone(),
            chunks: metered_tx,
            checkpoints: pipeline.checkpoints.clone(),
            shutdown: shutdown.clone(),
            chunk_rows: config.collector.chunk_rows,
            chunk_max_age: Duration::from_millis(config.collector.chunk_max_age_ms),
            once,
        };
        let mut sources = Vec::new();
        let mut net = Vec::new();

        // Decided first: while journald runs, it owns what is sent to the journal's socket
        // and the eBPF syslog hook leaves that socket alone (README: which source owns
        // which line).
        let journald_plan = match journald::Plan::new(&config.sources.journald) {
            Ok(plan) => plan,
            Err(e) => {
                tracing::warn!("journald source disabled: {e:#}");
                None
            }
        };
        let mut ebpf_cfg = config.sources.ebpf.clone();
        if journald_plan.is_some() && ebpf_cfg.enabled && ebpf_cfg.syslog {
            let (cfg, left) =
                journald::leave_journal_socket(&ebpf_cfg, &config.sources.journald.root);
            if !left.is_empty() {
                tracing::info!(
                    "eBPF syslog hook leaves {left:?} to the journald source (they lead to \
                     the journal's socket)"
                );
            }
            ebpf_cfg = cfg;
        }

        // eBPF next: the kmsg source takes console events only if a console hook attached.
        // It also drops capabilities, so sources started later make do with what is kept.
        let kmsg_cfg = &config.sources.kmsg;
        let (callers_tx, callers_rx) =
            crossbeam_channel::bounded::<KernelCaller>(KERNEL_CALLER_QUEUE);
        let mut ebpf = ebpf::spawn(
            ctx.clone(),
            &ebpf_cfg,
            kmsg_cfg.enabled.then_some(callers_tx),
        )?;
        if let Some(t) = ebpf.thread.take() {
            sources.push(("ebpf", t));
        }
        let callers = ebpf.kmsg_hook.is_some().then_some(callers_rx);

        let mut kmsg_stats = None;
        if kmsg_cfg.enabled {
            match kmsg::spawn(
                ctx.clone(),
                &kmsg_cfg.path,
                callers,
                config.collector.max_message_bytes,
            ) {
                Ok((handle, stats)) => {
                    sources.push(("kmsg", handle));
                    kmsg_stats = Some(stats);
                }
                Err(e) => tracing::warn!("kmsg source disabled: {e:#}"),
            }
        }
        let maintenance = spawn_maintenance(config, shutdown.clone());
        let journald_runs = journald_plan.is_some();
        if let Some(plan) = journald_plan {
            match journald::spawn(
                ctx.clone(),
                plan,
                kmsg_stats.is_some(),
                config.collector.max_message_bytes,
            ) {
                Ok(handle) => sources.push(("journald", handle)),
                Err(e) => tracing::warn!("journald source disabled: {e:#}"),
            }
        }
        let mut file_cfg = config.sources.file.clone();
        let (inputs, skipped) = file_cfg.inputs_beside(journald_runs);
        file_cfg.inputs = inputs;
        if config.sources.file.enabled && !skipped.is_empty() {
            tracing::info!(
                "file source: not reading {skipped:?}: the journald source runs, and rsyslog \
                 writes these files from the journal (skip_if_journald)"
            );
        }
        match crate::sources::file::spawn(
            ctx.clone(),
            &file_cfg,
            &config.sources.containers,
            config.collector.max_message_bytes,
        ) {
            Ok(Some(handle)) => sources.push(("file", handle)),
            Ok(None) => tracing::info!("file source: no input applies"),
            Err(e) => tracing::warn!("file source disabled: {e:#}"),
        }
        match crate::sources::net::spawn(
            ctx.clone(),
            &config.sources.net,
            config.collector.max_message_bytes,
        ) {
            Ok(Some((handle, stats))) => {
                sources.push(("net", handle));
                net = stats;
            }
            Ok(None) => {}
            // A listener the user asked for and cannot have is a configuration error.
            Err(e) => return Err(e.context("net source")),
        }
        // The pipeline finishes once every sender is gone: only the sources keep one.
        drop(ctx);
        if sources.is_empty() {
            tracing::warn!("no source is running: nothing to collect (see the messages above)");
        }
        let source_states = Arc::new(std::sync::Mutex::new(
            (sources.iter())
                .map(|(name, _)| SourceState {
                    name,
                    running: true,
                })
                .collect(),
        ));
        let archive_dir = match infralog_store::Location::parse(&config.archive.path)? {
            infralog_store::Location::Local(dir) => Some(dir),
            infralog_store::Location::S3 { .. } => None,
        };
        let observed = Arc::new(Observed::new(
            summary(config, &hostname, &sources),
            meter,
            source_states.clone(),
            &ebpf,
            kmsg_stats.clone(),
            net.clone(),
            &pipeline,
            config.spool.max_mb << 20,
            archive_dir,
            alerts.as_ref().map(|a| a.stats.clone()),
            forwarder
                .as_ref()
                .map(|f| f.stats.clone())
                .unwrap_or_default(),
        ));
        Ok(Collector {
            shutdown,
            sources,
            pipeline,
            forwarder,
            maintenance,
            alerts,
            ebpf,
            kmsg: kmsg_stats,
            net,
            meter_thread: Some(meter_thread),
            source_states,
            observed,
        })
    }

    /// Brings the endpoint's view of which sources run up to date.
    pub fn refresh(&self) {
        let mut states = self.source_states.lock().unwrap_or_else(|e| e.into_inner());
        for (state, (_, handle)) in states.iter_mut().zip(&self.sources) {
            state.running = !handle.is_finished();
        }
    }

    /// How many sources are running.
    pub fn sources_running(&self) -> usize {
        self.sources.len()
    }

    /// Whether every source has ended by itself (with `once`, or on an error).
    pub fn sources_finished(&self) -> bool {
        self.sources.iter().all(|(_, h)| h.is_finished())
    }

    /// Asks the sources to stop, waits for them, for the spool to take what they sent and
    /// for the archiver to archive it (what it cannot archive now stays in the spool).
    pub fn stop(self) -> Result<RunReport> {
        self.shutdown.store(true, Ordering::Relaxed);
        let mut failed = Vec::new();
        for (name, handle) in self.sources {
            let result = handle
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the {name} source panicked")));
            if let Err(e) = result {
                tracing::error!("{name} source failed: {e:#}");
                failed.push((name, format!("{e:#}")));
            }
        }
        if let Some(s) = &self.kmsg {
            tracing::info!(
                "kmsg stats: records={} lost={} attributed={}",
                s.records.load(Ordering::Relaxed),
                s.lost.load(Ordering::Relaxed),
                s.attributed.load(Ordering::Relaxed)
            );
        }
        // Every source's sender is gone now: the meter passes on what it holds and ends.
        if let Some(m) = self.meter_thread {
            let _ = m.join();
        }
        let archived = self.pipeline.finish();
        // After the pipeline: the last segment is sealed now, so the sinks can send it.
        if let Some(f) = self.forwarder {
            f.stop();
        }
        let archived = archived?;
        // The detector's sender went with the pipeline: the dispatcher ends, leaving
        // what it could not deliver in its queue for the next start.
        if let Some(a) = self.alerts {
            a.join();
        }
        if let Some(m) = self.maintenance {
            let _ = m.join();
        }
        tracing::info!(
            rows = archived.rows,
            files = archived.files,
            bytes = archived.bytes,
            "infra-collector stopped"
        );
        Ok(RunReport { archived, failed })
    }
}

fn summary(
    config: &Config,
    hostname: &str,
    sources: &[(&'static str, JoinHandle<Result<()>>)],
) -> ConfigSummary {
    ConfigSummary {
        hostname: hostname.to_string(),
        archive: config.archive.path.clone(),
        spool_dir: config.spool_options().dir.display().to_string(),
        sources_enabled: sources.iter().map(|(n, _)| n.to_string()).collect(),
        forward_sinks: config.forward.iter().map(|f| f.name.clone()).collect(),
        alert_targets: (config.alert.targets.iter())
            .map(|t| t.name.clone())
            .collect(),
        templates: config.detect.templates,
        anomalies: config.detect.templates && config.detect.anomalies,
    }
}
