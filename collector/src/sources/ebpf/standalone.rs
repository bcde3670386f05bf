//! eBPF capture straight into an archive, without the rest of the collector: the kmsg
//! source (joined with the console events) and the ebpf source feeding an archive writer.
//! Used by the load harness (`benches/src/bin/ebpf_load.rs`) and by the privileged
//! integration tests; `infra-collector run` wires the same pieces from its configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::{EbpfConfig, EbpfCounters, EbpfStatus, spawn, stats};
use crate::archive::{Archive, ArchiveWriter, WriterOptions};
use crate::sources::{SourceContext, kmsg};
use crate::state::CheckpointStore;

pub struct CaptureOptions {
    pub archive: String,
    pub state_dir: PathBuf,
    pub hostname: String,
    pub ebpf: EbpfConfig,
    /// Also run the /dev/kmsg source and join console events with its records.
    pub kmsg: bool,
    pub chunk_rows: usize,
    pub chunk_max_age: Duration,
}

pub struct CaptureReport {
    pub status_line: String,
    pub counters: Option<EbpfCounters>,
    pub rows: u64,
}

/// Captures until `stop` is set; `ready` runs once the hooks are attached (or eBPF turned
/// out to be unavailable).
pub fn capture(
    opts: &CaptureOptions,
    stop: &AtomicBool,
    ready: impl FnOnce(&EbpfStatus),
) -> Result<CaptureReport> {
    let checkpoints = Arc::new(CheckpointStore::open(&opts.state_dir)?);
    let archive = Archive::open(&opts.archive)?;
    let (tx, rx) = crossbeam_channel::bounded(64);
    let writer_opts = WriterOptions {
        flush_interval: Duration::from_secs(1),
        ..WriterOptions::default()
    };
    let writer = ArchiveWriter::spawn(archive, Some(checkpoints.clone()), rx, writer_opts);
    let shutdown = Arc::new(AtomicBool::new(false));
    let ctx = SourceContext {
        hostname: opts.hostname.as_str().into(),
        chunks: tx,
        checkpoints,
        shutdown: shutdown.clone(),
        chunk_rows: opts.chunk_rows,
        chunk_max_age: opts.chunk_max_age,
        once: false,
    };
    let (callers_tx, callers_rx) = crossbeam_channel::bounded(65_536);
    let mut threads = Vec::new();
    if opts.kmsg {
        match kmsg::spawn(
            ctx.clone(),
            std::path::Path::new("/dev/kmsg"),
            Some(callers_rx),
            crate::batch::DEFAULT_MAX_MESSAGE_BYTES,
        ) {
            Ok((h, _)) => threads.push(h),
            Err(e) => tracing::warn!("kmsg source disabled: {e:#}"),
        }
    }
    let mut status = spawn(ctx, &opts.ebpf, opts.kmsg.then_some(callers_tx))?;
    ready(&status);
    if let Some(t) = status.thread.take() {
        threads.push(t);
    }
    while !stop.load(Ordering::Relaxed) && threads.iter().all(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let counters = stats();
    shutdown.store(true, Ordering::Relaxed);
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a source panicked"))??;
    }
    let report = writer.join().context("archive writer failed")?;
    Ok(CaptureReport {
        status_line: status.summary(),
        counters: if status.unavailable.is_none() {
            stats().or(counters)
        } else {
            None
        },
        rows: report.rows,
    })
}
