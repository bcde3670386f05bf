//! infra-collector: wires configuration → sources → archive writer. Nothing else lives
//! here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use infralog_collector::archive::{Archive, ArchiveWriter};
use infralog_collector::config::{Config, DEFAULT_CONFIG};
use infralog_collector::import::{ImportOptions, import};
use infralog_collector::parse::Format;
use infralog_collector::sources::{self, SourceContext};
use infralog_collector::state::CheckpointStore;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "infra-collector",
    version,
    about = "Collects every log line of this host into a Parquet archive"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector: capture from the configured sources until SIGINT/SIGTERM.
    Run {
        /// Configuration file (TOML). Default: the built-in configuration
        /// (`infra-collector config` prints it).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Read what the sources have now, archive it, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Backfill log files into the archive.
    Import {
        #[arg(long, value_enum, default_value = "auto")]
        format: Format,
        /// Hostname for lines that do not state one (default: this host's).
        #[arg(long)]
        hostname: Option<String>,
        /// Archive directory.
        #[arg(long, default_value = "./data")]
        archive: String,
        /// Lines longer than this are cut and flagged.
        #[arg(long, default_value_t = infralog_collector::batch::DEFAULT_MAX_MESSAGE_BYTES)]
        max_message_bytes: usize,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the built-in default configuration.
    Config,
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, once } => run(config, once),
        Command::Import {
            format,
            hostname,
            archive,
            max_message_bytes,
            files,
        } => run_import(format, hostname, archive, max_message_bytes, files),
        Command::Config => {
            print!("{DEFAULT_CONFIG}");
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INFRALOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run_import(
    format: Format,
    hostname: Option<String>,
    archive: String,
    max_message_bytes: usize,
    files: Vec<PathBuf>,
) -> Result<ExitCode> {
    let defaults = Config::default_config();
    let opts = ImportOptions {
        format,
        hostname: hostname.unwrap_or_else(infralog_collector::config::system_hostname),
        archive,
        chunk_rows: defaults.collector.chunk_rows,
        max_message_bytes,
        writer: defaults.archive.writer_options(),
        progress: true,
    };
    let report = import(&files, &opts)?;
    let secs = report.elapsed.as_secs_f64();
    eprintln!(
        "imported {} lines ({} bytes) from {} file(s) in {:.2}s ({:.0} lines/s): \
         {} parse errors, {} truncated; {} Parquet file(s), {} bytes",
        report.lines,
        report.bytes,
        report.files_imported,
        secs,
        report.lines as f64 / secs.max(1e-9),
        report.parse_errors,
        report.truncated,
        report.archive.files,
        report.archive.bytes,
    );
    if report.failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} file(s) could not be imported", report.failed.len());
        Ok(ExitCode::from(2))
    }
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

fn run(config_path: Option<PathBuf>, once: bool) -> Result<ExitCode> {
    let config = match &config_path {
        Some(p) => Config::load(p)?,
        None => Config::default_config(),
    };
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
    install_signal_handlers();
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

    let mut running = Vec::new();
    let kmsg = &config.sources.kmsg;
    if kmsg.enabled {
        match sources::kmsg::spawn(
            ctx.clone(),
            &kmsg.path,
            None,
            config.collector.max_message_bytes,
        ) {
            Ok((handle, stats)) => running.push(("kmsg", handle, Some(stats))),
            Err(e) => tracing::warn!("kmsg source disabled: {e:#}"),
        }
    }
    // The writer stops once every sender is gone: only the sources keep one.
    drop(ctx);
    if running.is_empty() {
        shutdown.store(true, Ordering::Relaxed);
        writer.join()?;
        anyhow::bail!("no source could start; see the messages above");
    }

    while !once && !SIGNALLED.load(Ordering::Relaxed) && running.iter().any(|r| !r.1.is_finished())
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    shutdown.store(true, Ordering::Relaxed);
    let mut failed = false;
    for (name, handle, stats) in running {
        let result = handle
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the {name} source panicked")));
        if let Err(e) = result {
            tracing::error!("{name} source failed: {e:#}");
            failed = true;
        }
        if let Some(s) = stats {
            tracing::info!(
                "kmsg stats: records={} lost={} attributed={}",
                s.records.load(Ordering::Relaxed),
                s.lost.load(Ordering::Relaxed),
                s.attributed.load(Ordering::Relaxed)
            );
        }
    }
    let report = writer.join().context("archive writer failed")?;
    tracing::info!(
        rows = report.rows,
        files = report.files,
        bytes = report.bytes,
        "infra-collector stopped"
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
