//! eBPF capture into an archive from a few options instead of a configuration file: the
//! collector of [`crate::run`] with only the eBPF (and optionally kmsg) sources. Used by
//! the load harness (`benches/src/bin/ebpf_load.rs`) and by the privileged integration
//! tests.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;

use super::{EbpfConfig, EbpfCounters, EbpfStatus};
use crate::config::Config;
use crate::run::Collector;

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
    let mut config = Config::default_config();
    config.collector.hostname = opts.hostname.clone();
    config.collector.state_dir = opts.state_dir.clone();
    config.collector.chunk_rows = opts.chunk_rows;
    config.collector.chunk_max_age_ms = opts.chunk_max_age.as_millis() as u64;
    config.archive.path = opts.archive.clone();
    config.spool.seal_secs = 1;
    config.sources.kmsg.enabled = opts.kmsg;
    config.sources.ebpf = opts.ebpf.clone();
    config.sources.journald.enabled = false;
    // The harness measures kernel capture: the host's log files are not its business.
    config.sources.file.enabled = false;
    config.sources.containers.docker = false;
    config.sources.containers.cri = false;

    let collector = Collector::start(&config, false)?;
    ready(&collector.ebpf);
    while !stop.load(Ordering::Relaxed) && !collector.sources_finished() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status_line = collector.ebpf.summary();
    let stats = collector.ebpf.stats.clone();
    let report = collector.stop()?;
    if let Some((name, e)) = report.failed.first() {
        anyhow::bail!("the {name} source failed: {e}");
    }
    Ok(CaptureReport {
        status_line,
        counters: stats.map(|s| s.read()),
        rows: report.archived.rows,
    })
}
