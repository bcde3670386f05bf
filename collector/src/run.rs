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

/// A source thread and the flag that stops it (each source has its own, so that a reload
/// can restart one and leave the others running).
struct Running {
    name: &'static str,
    stop: Arc<AtomicBool>,
    /// `None` once it has ended and been joined (its outcome is in `ended`).
    handle: Option<JoinHandle<Result<()>>>,
    ended: Option<Result<(), String>>,
}

impl Running {
    fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Waits for the thread (if not joined yet) and returns how it ended.
    fn join(&mut self) -> Result<(), String> {
        if let Some(h) = self.handle.take() {
            let name = self.name;
            let result = (h.join())
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the {name} source panicked")))
                .map_err(|e| format!("{e:#}"));
            self.ended = Some(result);
        }
        self.ended.clone().unwrap_or(Ok(()))
    }
}

/// What a reload did with a new configuration.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// Nothing the collector runs with changed.
    Unchanged,
    /// These sources were restarted with their new settings; the rest ran on.
    Restarted(Vec<&'static str>),
    /// The change reaches the pipeline (archive, spool, detection, sinks, alerts, the
    /// collector's own settings) or the kernel sources: only a stop and a start applies it.
    NeedsRestart,
}

pub struct Collector {
    /// Stops the pipeline's threads and housekeeping (the sources have their own flags).
    shutdown: Arc<AtomicBool>,
    sources: Vec<Running>,
    /// What every source is started with; its sender keeps the meter running.
    ctx: Option<SourceContext>,
    config: Config,
    journald_runs: bool,
    /// Positions the spool held at start.
    recovered: std::collections::BTreeMap<String, String>,
    meter: Arc<Meter>,
    barriers: u64,
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
            // Each source gets a flag of its own (`own`).
            shutdown: Arc::new(AtomicBool::new(false)),
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
        let (ebpf_ctx, ebpf_stop) = own(&ctx);
        let mut ebpf = ebpf::spawn(ebpf_ctx, &ebpf_cfg, kmsg_cfg.enabled.then_some(callers_tx))?;
        if let Some(t) = ebpf.thread.take() {
            sources.push(running("ebpf", ebpf_stop, t));
        }
        let callers = ebpf.kmsg_hook.is_some().then_some(callers_rx);

        let mut kmsg_stats = None;
        if kmsg_cfg.enabled {
            let (kmsg_ctx, stop) = own(&ctx);
            match kmsg::spawn(
                kmsg_ctx,
                &kmsg_cfg.path,
                callers,
                config.collector.max_message_bytes,
            ) {
                Ok((handle, stats)) => {
                    sources.push(running("kmsg", stop, handle));
                    kmsg_stats = Some(stats);
                }
                Err(e) => tracing::warn!("kmsg source disabled: {e:#}"),
            }
        }
        let maintenance = spawn_maintenance(config, shutdown.clone());
        let journald_runs = journald_plan.is_some();
        if let Some(plan) = journald_plan {
            let (journald_ctx, stop) = own(&ctx);
            match journald::spawn(
                journald_ctx,
                plan,
                kmsg_stats.is_some(),
                config.collector.max_message_bytes,
            ) {
                Ok(handle) => sources.push(running("journald", stop, handle)),
                Err(e) => tracing::warn!("journald source disabled: {e:#}"),
            }
        }
        sources.extend(spawn_file(&ctx, config, journald_runs));
        if let Some((r, stats)) = spawn_net(&ctx, config)? {
            sources.push(r);
            net = stats;
        }
        if sources.is_empty() {
            tracing::warn!("no source is running: nothing to collect (see the messages above)");
        }
        let source_states = Arc::new(std::sync::Mutex::new(
            (sources.iter())
                .map(|r| SourceState {
                    name: r.name,
                    running: true,
                    error: None,
                })
                .collect(),
        ));
        let archive_dir = match infralog_store::Location::parse(&config.archive.path)? {
            infralog_store::Location::Local(dir) => Some(dir),
            infralog_store::Location::S3 { .. } => None,
        };
        let observed = Arc::new(Observed::new(
            summary(config, &hostname, &sources),
            meter.clone(),
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
        let recovered = pipeline.checkpoints.all().clone();
        Ok(Collector {
            shutdown,
            sources,
            ctx: Some(ctx),
            config: config.clone(),
            journald_runs,
            recovered,
            meter: observed.meter.clone(),
            barriers: 0,
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

    /// Brings the endpoint's view of which sources run up to date; a source that ended
    /// is joined, so that its error can be shown.
    pub fn refresh(&mut self) {
        for r in self.sources.iter_mut().filter(|r| r.handle.is_some()) {
            if r.finished()
                && let Err(e) = r.join()
            {
                tracing::error!("{} source failed: {e}", r.name);
            }
        }
        let mut states = self.source_states.lock().unwrap_or_else(|e| e.into_inner());
        *states = (self.sources.iter())
            .map(|r| SourceState {
                name: r.name,
                running: !r.finished(),
                error: r.ended.clone().and_then(|e| e.err()),
            })
            .collect();
    }

    /// Applies a new configuration where that can be done without stopping: the file
    /// and net sources whose settings changed are stopped (each hands on what it read,
    /// with its position) and started again from the position they reached, so no line
    /// is lost or read twice. The spool, archiver and sinks run on.
    pub fn reload(&mut self, new: &Config) -> Result<Reload> {
        let key = |c: &Config| {
            format!(
                "{:?}",
                (
                    &c.collector,
                    &c.archive,
                    &c.spool,
                    &c.retention,
                    &c.detect,
                    &c.forward,
                    &c.route,
                    &c.alert,
                    (&c.sources.kmsg, &c.sources.ebpf, &c.sources.journald),
                )
            )
        };
        if key(new) != key(&self.config) {
            return Ok(Reload::NeedsRestart);
        }
        let old = &self.config.sources;
        let mut changed = Vec::new();
        if format!("{:?}", (&old.file, &old.containers))
            != format!("{:?}", (&new.sources.file, &new.sources.containers))
        {
            changed.push("file");
        }
        if format!("{:?}", old.net) != format!("{:?}", new.sources.net) {
            changed.push("net");
        }
        if changed.is_empty() {
            self.config = new.clone();
            return Ok(Reload::Unchanged);
        }
        for name in &changed {
            self.stop_source(name)?;
        }
        // Everything the stopped sources sent has been counted: their positions are known.
        self.barriers += 1;
        let ctx = self
            .ctx
            .as_mut()
            .expect("a running collector has its context");
        ctx.chunks
            .send(crate::meter::barrier(self.barriers))
            .map_err(|_| anyhow::anyhow!("the pipeline is gone"))?;
        anyhow::ensure!(
            self.meter.wait_for(self.barriers, Duration::from_secs(60)),
            "the pipeline did not take the stopped sources' rows within 60 s"
        );
        ctx.checkpoints = Arc::new(crate::state::CheckpointStore::new(
            self.meter.positions_over(&self.recovered),
        ));
        let ctx = ctx.clone();
        for name in &changed {
            match *name {
                "file" => self
                    .sources
                    .extend(spawn_file(&ctx, new, self.journald_runs)),
                _ => {
                    if let Some((r, stats)) = spawn_net(&ctx, new)? {
                        self.sources.push(r);
                        self.net = stats;
                    } else {
                        self.net = Vec::new();
                    }
                }
            }
        }
        self.config = new.clone();
        self.refresh();
        self.observed = Arc::new(Observed::new(
            summary(new, &ctx.hostname, &self.sources),
            self.meter.clone(),
            self.source_states.clone(),
            &self.ebpf,
            self.kmsg.clone(),
            self.net.clone(),
            &self.pipeline,
            new.spool.max_mb << 20,
            self.observed.archive_dir.clone(),
            self.alerts.as_ref().map(|a| a.stats.clone()),
            self.observed.sinks.clone(),
        ));
        Ok(Reload::Restarted(changed))
    }

    /// Stops one source and waits for it; an error it ended with is logged.
    fn stop_source(&mut self, name: &str) -> Result<()> {
        let Some(i) = self.sources.iter().position(|r| r.name == name) else {
            return Ok(());
        };
        let mut r = self.sources.remove(i);
        r.stop.store(true, Ordering::Relaxed);
        if let Err(e) = r.join() {
            tracing::warn!("{name} source ended with an error: {e}");
        }
        Ok(())
    }

    /// How many sources are running.
    pub fn sources_running(&self) -> usize {
        self.sources.len()
    }

    /// Whether every source has ended by itself (with `once`, or on an error).
    pub fn sources_finished(&self) -> bool {
        self.sources.iter().all(Running::finished)
    }

    /// Asks the sources to stop, waits for them, for the spool to take what they sent and
    /// for the archiver to archive it (what it cannot archive now stays in the spool).
    pub fn stop(self) -> Result<RunReport> {
        self.shutdown.store(true, Ordering::Relaxed);
        for r in &self.sources {
            r.stop.store(true, Ordering::Relaxed);
        }
        // The meter ends once the sources' senders and this one are gone.
        drop(self.ctx);
        let mut failed = Vec::new();
        for mut r in self.sources {
            // One joined by `refresh` was logged then.
            let logged = r.handle.is_none();
            if let Err(e) = r.join() {
                if !logged {
                    tracing::error!("{} source failed: {e}", r.name);
                }
                failed.push((r.name, e));
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

fn summary(config: &Config, hostname: &str, sources: &[Running]) -> ConfigSummary {
    ConfigSummary {
        hostname: hostname.to_string(),
        archive: config.archive.path.clone(),
        spool_dir: config.spool_options().dir.display().to_string(),
        sources_enabled: sources.iter().map(|r| r.name.to_string()).collect(),
        forward_sinks: config.forward.iter().map(|f| f.name.clone()).collect(),
        alert_targets: (config.alert.targets.iter())
            .map(|t| t.name.clone())
            .collect(),
        templates: config.detect.templates,
        anomalies: config.detect.templates && config.detect.anomalies,
    }
}

/// A context like `ctx` with a stop flag of its own.
fn own(ctx: &SourceContext) -> (SourceContext, Arc<AtomicBool>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut c = ctx.clone();
    c.shutdown = stop.clone();
    (c, stop)
}

fn running(name: &'static str, stop: Arc<AtomicBool>, handle: JoinHandle<Result<()>>) -> Running {
    Running {
        name,
        stop,
        handle: Some(handle),
        ended: None,
    }
}

/// The file source, over the inputs that apply beside journald; `None` when none does or
/// it cannot start (logged).
fn spawn_file(ctx: &SourceContext, config: &Config, journald_runs: bool) -> Option<Running> {
    let mut file_cfg = config.sources.file.clone();
    let (inputs, skipped) = file_cfg.inputs_beside(journald_runs);
    file_cfg.inputs = inputs;
    if config.sources.file.enabled && !skipped.is_empty() {
        tracing::info!(
            "file source: not reading {skipped:?}: the journald source runs, and rsyslog \
             writes these files from the journal (skip_if_journald)"
        );
    }
    let (ctx, stop) = own(ctx);
    match crate::sources::file::spawn(
        ctx,
        &file_cfg,
        &config.sources.containers,
        config.collector.max_message_bytes,
    ) {
        Ok(Some(handle)) => Some(running("file", stop, handle)),
        Ok(None) => {
            tracing::info!("file source: no input applies");
            None
        }
        Err(e) => {
            tracing::warn!("file source disabled: {e:#}");
            None
        }
    }
}

/// The net listeners; a listener the user asked for and cannot have is a configuration
/// error.
fn spawn_net(
    ctx: &SourceContext,
    config: &Config,
) -> Result<Option<(Running, crate::sources::net::NetStats)>> {
    let (ctx, stop) = own(ctx);
    match crate::sources::net::spawn(ctx, &config.sources.net, config.collector.max_message_bytes) {
        Ok(Some((handle, stats))) => Ok(Some((running("net", stop, handle), stats))),
        Ok(None) => Ok(None),
        Err(e) => Err(e.context("net source")),
    }
}
