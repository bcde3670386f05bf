//! The running collector: configuration → sources → archive writer. `infra-collector run`
//! and the eBPF load harness both start it here, so there is one wiring.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::archive::{Archive, ArchiveWriter, WriterReport};
use crate::config::Config;
use crate::sources::ebpf::{self, EbpfStatus};
use crate::sources::kmsg::{self, KmsgStats};
use crate::sources::{KernelCaller, SourceContext};
use crate::state::CheckpointStore;

/// Console events waiting to be joined with their /dev/kmsg record.
const KERNEL_CALLER_QUEUE: usize = 65_536;

pub struct Collector {
    shutdown: Arc<AtomicBool>,
    sources: Vec<(&'static str, JoinHandle<Result<()>>)>,
    writer: ArchiveWriter,
    /// What eBPF capture achieved (hooks, or why it is unavailable).
    pub ebpf: EbpfStatus,
    pub kmsg: Option<Arc<KmsgStats>>,
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    pub archived: WriterReport,
    /// Sources that ended with an error, with the error.
    pub failed: Vec<(&'static str, String)>,
}

impl Collector {
    /// Starts every enabled source and the archive writer. Fails on a configuration or
    /// archive problem; a source that cannot start (no permission, no device) is logged
    /// and skipped.
    pub fn start(config: &Config, once: bool) -> Result<Collector> {
        let hostname: Arc<str> = config.hostname().into();
        let checkpoints = Arc::new(CheckpointStore::open(&config.collector.state_dir)?);
        let archive = Archive::open(&config.archive.path)?;
        tracing::info!(
            archive = archive.location(),
            hostname = &*hostname,
            "infra-collector starting"
        );
        let (tx, rx) = crossbeam_channel::bounded(16);
        let writer = ArchiveWriter::spawn(
            archive,
            Some(checkpoints.clone()),
            rx,
            config.archive.writer_options(),
        );
        let shutdown = Arc::new(AtomicBool::new(false));
        let ctx = SourceContext {
            hostname,
            chunks: tx,
            checkpoints,
            shutdown: shutdown.clone(),
            chunk_rows: config.collector.chunk_rows,
            chunk_max_age: Duration::from_millis(config.collector.chunk_max_age_ms),
            once,
        };
        let mut sources = Vec::new();

        // eBPF first: the kmsg source takes console events only if a console hook attached.
        // It also drops capabilities, so sources started later make do with what is kept.
        let kmsg_cfg = &config.sources.kmsg;
        let (callers_tx, callers_rx) =
            crossbeam_channel::bounded::<KernelCaller>(KERNEL_CALLER_QUEUE);
        let mut ebpf = ebpf::spawn(
            ctx.clone(),
            &config.sources.ebpf,
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
        match crate::sources::file::spawn(
            ctx.clone(),
            &config.sources.file,
            &config.sources.containers,
            config.collector.max_message_bytes,
        ) {
            Ok(Some(handle)) => sources.push(("file", handle)),
            Ok(None) => tracing::info!("file source: no input applies"),
            Err(e) => tracing::warn!("file source disabled: {e:#}"),
        }
        // The writer stops once every sender is gone: only the sources keep one.
        drop(ctx);
        if sources.is_empty() {
            tracing::warn!("no source is running: nothing to collect (see the messages above)");
        }
        Ok(Collector {
            shutdown,
            sources,
            writer,
            ebpf,
            kmsg: kmsg_stats,
        })
    }

    /// How many sources are running.
    pub fn sources_running(&self) -> usize {
        self.sources.len()
    }

    /// Whether every source has ended by itself (with `once`, or on an error).
    pub fn sources_finished(&self) -> bool {
        self.sources.iter().all(|(_, h)| h.is_finished())
    }

    /// Asks the sources to stop, waits for them, and for the archive writer to write what
    /// they sent.
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
        let archived = self.writer.join().context("archive writer failed")?;
        tracing::info!(
            rows = archived.rows,
            files = archived.files,
            bytes = archived.bytes,
            "infra-collector stopped"
        );
        Ok(RunReport { archived, failed })
    }
}
