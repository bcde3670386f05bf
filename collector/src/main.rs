//! infra-collector: the command line. The wiring of a running collector is in
//! [`infralog_collector::run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use infralog_collector::config::{Config, DEFAULT_CONFIG};
use infralog_collector::import::{ImportOptions, import};
use infralog_collector::parse::Format;
use infralog_collector::run::Collector;

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

#[derive(clap::Args)]
struct ImportArgs {
    #[arg(long, value_enum, default_value = "auto")]
    format: Format,
    /// Hostname for lines that do not state one (default: this host's).
    #[arg(long)]
    hostname: Option<String>,
    /// Zone of timestamps that state none (RFC 3164), as an offset from UTC: `Z`,
    /// `+02:00`, `-0500`. Default: this host's current offset.
    #[arg(long, value_parser = infralog_collector::time::parse_utc_offset, allow_hyphen_values = true)]
    utc_offset: Option<i32>,
    /// Archive directory.
    #[arg(long, default_value = "./data")]
    archive: String,
    /// Lines longer than this are cut and flagged.
    #[arg(long, default_value_t = infralog_collector::batch::DEFAULT_MAX_MESSAGE_BYTES)]
    max_message_bytes: usize,
    #[arg(required = true)]
    files: Vec<PathBuf>,
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
    Import(ImportArgs),
    /// Print the built-in default configuration.
    Config,
    /// Report which sources would run here and why the others would not, which eBPF
    /// hooks this kernel lets the collector attach, which it refuses and why, and what the
    /// collector falls back to.
    Probe {
        /// Configuration file whose sources to probe (default: built-in).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, once } => run(config, once),
        Command::Import(args) => run_import(args),
        Command::Config => {
            print!("{DEFAULT_CONFIG}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe { config } => load_config(config.as_ref()).map(|c| {
            print!("{}", infralog_collector::probe::sources_report(&c));
            print!("{}", infralog_collector::probe::report(&c.sources.ebpf));
            ExitCode::SUCCESS
        }),
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

fn run_import(args: ImportArgs) -> Result<ExitCode> {
    let defaults = Config::default_config();
    let opts = ImportOptions {
        format: args.format,
        hostname: args
            .hostname
            .unwrap_or_else(infralog_collector::config::system_hostname),
        utc_offset_secs: args
            .utc_offset
            .unwrap_or_else(infralog_collector::time::local_utc_offset_secs),
        archive: args.archive,
        chunk_rows: defaults.collector.chunk_rows,
        max_message_bytes: args.max_message_bytes,
        writer: defaults.archive.writer_options(),
        progress: true,
    };
    let report = import(&args.files, &opts)?;
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

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::default_config()),
    }
}

fn run(config_path: Option<PathBuf>, once: bool) -> Result<ExitCode> {
    let config = load_config(config_path.as_ref())?;
    install_signal_handlers();
    let collector = Collector::start(&config, once)?;
    if collector.sources_running() == 0 {
        collector.stop()?;
        anyhow::bail!("no source could start; see the messages above");
    }
    while !SIGNALLED.load(Ordering::Relaxed) && !collector.sources_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = collector.stop()?;
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
