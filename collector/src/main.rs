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
    /// Archive: a directory or s3://bucket/prefix (default: the configuration's
    /// archive.path, `./data` in the built-in one).
    #[arg(long)]
    archive: Option<String>,
    /// Configuration whose [archive] (S3 settings, zstd level) and [spool] sizes to use
    /// (default: built-in). Its sources are not run.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Leave one file per spool segment and partition instead of merging each host-day
    /// into one file at the end.
    #[arg(long)]
    no_compact: bool,
    /// Do not detect anomalies in the imported lines (by default they are detected on
    /// the lines' event time, into the `anomalies` table).
    #[arg(long)]
    no_detect: bool,
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
    /// Print the template of every line of FILEs (syslog, kmsg, raw or JSON lines) as CSV
    /// `line,template_id,template` (input order) and a summary on stderr.
    Mine {
        #[arg(long, value_enum, default_value = "auto")]
        format: infralog_collector::detect::mine::MineFormat,
        /// Start from, and save to, this miner state directory (as the collector's
        /// `<state_dir>/templates`).
        #[arg(long)]
        state: Option<PathBuf>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Rewrite the archive's files of an older schema version as the current version
    /// (each file is replaced under its own name; see `archive::migrate`), and write the
    /// hourly stats of logs files that have none (archives older than the stats table).
    Migrate {
        /// Archive directory.
        #[arg(long, default_value = "./data")]
        archive: PathBuf,
        /// Only report what would be rewritten.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the built-in default configuration.
    Config,
    /// Check a configuration as `run` would, and the files it names; print every problem
    /// with its line (exit 1), or a summary of what would run.
    Validate {
        /// Configuration file (default: the built-in configuration).
        #[arg(conflicts_with = "config")]
        file: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Show what the spool holds (segments, rows, what waits for the archive, each
    /// source's position), or verify every record's checksum and rows.
    Spool {
        #[command(subcommand)]
        action: SpoolAction,
        /// Configuration file whose spool to inspect (default: built-in).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Delete the archive's days older than the retention period now (the running
    /// collector does it hourly).
    Retention {
        /// Configuration whose archive and [retention] days to use (default: built-in).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Days to keep, instead of the configuration's.
        #[arg(long)]
        days: Option<u32>,
        /// Show what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Merge the small files of each host-day into one now (the running collector does it
    /// every ten minutes): days that are over, and busy partitions of the current day.
    Compact {
        /// Configuration whose archive and spool to use (default: built-in).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Forwarding sinks ([[forward]]): their cursors, lag and counters.
    Forward {
        #[command(subcommand)]
        action: ForwardAction,
        /// Configuration file whose sinks to show (default: built-in).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Send one marked row to each [[forward]] sink and report what each answered (exit 1
    /// when one did not take it).
    ForwardTest {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Send a test notification to every alert target of the configuration now, and say
    /// which took it (exit status 1 if any did not).
    AlertTest {
        /// Configuration whose [[alert.targets]] to test.
        #[arg(long)]
        config: PathBuf,
    },
    /// Report which sources would run here and why the others would not, which eBPF
    /// hooks this kernel lets the collector attach, which it refuses and why, and what the
    /// collector falls back to.
    Probe {
        /// Configuration file whose sources to probe (default: built-in).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Clone, Copy)]
enum ForwardAction {
    /// Each sink's cursor, lag (segments, bytes, age of the oldest) and counters (sent,
    /// acknowledged, retried, dead-lettered, dropped, last error and success).
    Status,
}

#[derive(Subcommand, Clone, Copy)]
enum SpoolAction {
    /// Segments, sizes, rows, what waits for the archive, and the checkpoints.
    Status,
    /// Like status, and fail (exit 1) when a record is damaged or does not decode.
    Verify,
}

/// The daemon gives freed memory back to the system at once instead of after mimalloc's
/// default 10 ms: tailing at 100,000 lines/s then peaks at 150 MB instead of 230–320 MB
/// (memory freed by one stage and not yet reused by the next), for no measurable CPU
/// (BENCHMARKS.md, "The durable archive with the streaming archiver"). `import`, which
/// frees and reuses memory at a far higher rate, keeps the default. A
/// `MIMALLOC_PURGE_DELAY` in the environment still decides.
fn return_freed_memory_at_once() {
    // mi_option_purge_delay in mimalloc.h (v2 and v3 alike).
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: called before the collector starts any thread, as mi_option_set asks.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, once } => {
            return_freed_memory_at_once();
            run(config, once)
        }
        Command::Import(args) => run_import(args),
        Command::Mine {
            format,
            state,
            files,
        } => mine(&files, format, state.as_deref()),
        Command::Spool { action, config } => spool(action, config),
        Command::Retention {
            config,
            days,
            dry_run,
        } => retention(config, days, dry_run),
        Command::Compact { config } => compact(config),
        Command::Migrate { archive, dry_run } => run_migrate(&archive, dry_run),
        Command::Forward {
            action: ForwardAction::Status,
            config,
        } => load_config(config.as_ref()).and_then(|c| {
            print!("{}", infralog_collector::forward::cli::status(&c)?);
            Ok(ExitCode::SUCCESS)
        }),
        Command::ForwardTest { config } => load_config(config.as_ref()).and_then(|c| {
            let (report, all) = infralog_collector::forward::cli::test(&c)?;
            print!("{report}");
            Ok(if all {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }),
        Command::Config => {
            print!("{DEFAULT_CONFIG}");
            Ok(ExitCode::SUCCESS)
        }
        Command::AlertTest { config } => alert_test(&config),
        Command::Validate { file, config } => validate(file.or(config)),
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
    use infralog_collector::logging::{LogFormat, init};
    match LogFormat::from_env() {
        Ok(format) => init(format, colour_logs()),
        Err(why) => {
            init(LogFormat::Text, colour_logs());
            tracing::warn!("{why}; logging as text");
        }
    }
}

/// Colours only for a person at a terminal: a file, a pipe or journald would keep the
/// escape codes as text. A non-empty `NO_COLOR` turns them off anywhere (no-color.org).
fn colour_logs() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

/// A private spool for one import: under the configured spool directory when the
/// configuration names one (beside a running collector's, which ignores it), else under
/// the system's temporary directory.
fn import_spool(config: &Config) -> infralog_collector::spool::SpoolOptions {
    let base = if config.spool.dir.is_empty() {
        std::env::temp_dir()
    } else {
        PathBuf::from(&config.spool.dir)
    };
    let spool = config.spool_options();
    infralog_collector::spool::SpoolOptions {
        dir: base.join(format!(
            "import-{}-{}",
            std::process::id(),
            infralog_collector::time::now_ns()
        )),
        // A segment becomes one file per host-day: an import in as few segments as the
        // spool's size allows needs no compaction afterwards. Nothing waits for an
        // import's rows, so segments are sealed by size only.
        segment_bytes: spool.segment_bytes.max(spool.max_bytes / 2),
        seal_after: std::time::Duration::from_secs(24 * 3600),
        ..spool
    }
}

fn run_import(args: ImportArgs) -> Result<ExitCode> {
    let defaults = load_config(args.config.as_ref())?;
    let opts = ImportOptions {
        format: args.format,
        hostname: args
            .hostname
            .unwrap_or_else(infralog_collector::config::system_hostname),
        utc_offset_secs: args
            .utc_offset
            .unwrap_or_else(infralog_collector::time::local_utc_offset_secs),
        archive: args
            .archive
            .unwrap_or_else(|| defaults.archive.path.clone()),
        s3: defaults.archive.s3.clone(),
        chunk_rows: defaults.collector.chunk_rows,
        max_message_bytes: args.max_message_bytes,
        archiver: defaults.archive.archiver_options(),
        spool: import_spool(&defaults),
        compact: !args.no_compact,
        progress: true,
        templates: defaults.detect.templates,
        anomalies: (defaults.detect.anomalies && !args.no_detect)
            .then(|| defaults.detect.detector_config()),
    };
    let report = import(&args.files, &opts)?;
    let secs = report.elapsed.as_secs_f64();
    eprintln!(
        "imported {} lines ({} bytes) from {} file(s) in {:.2}s ({:.0} lines/s): \
         {} parse errors, {} truncated; {} Parquet file(s), {} after compacting each host-day \
         ({:.2}s of the total)",
        report.lines,
        report.bytes,
        report.files_imported,
        secs,
        report.lines as f64 / secs.max(1e-9),
        report.parse_errors,
        report.truncated,
        report.archive.files,
        report.files_after_compaction,
        report.compaction.as_secs_f64(),
    );
    if report.failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{} file(s) could not be imported", report.failed.len());
        Ok(ExitCode::from(2))
    }
}

fn mine(
    files: &[PathBuf],
    format: infralog_collector::detect::mine::MineFormat,
    state: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let s = infralog_collector::detect::mine::mine_files(files, format, state, &mut out)?;
    std::io::Write::flush(&mut out)?;
    eprintln!(
        "mined {} lines: {} templates, {} evicted",
        s.lines, s.templates, s.evicted
    );
    Ok(ExitCode::SUCCESS)
}

fn spool(action: SpoolAction, config: Option<PathBuf>) -> Result<ExitCode> {
    let dir = load_config(config.as_ref())?.spool_options().dir;
    anyhow::ensure!(dir.is_dir(), "no spool at {}", dir.display());
    let status = infralog_collector::spool::inspect::inspect(&dir)?;
    print!("{}", status.render(&dir));
    let problems = status.problems();
    match action {
        SpoolAction::Verify if problems > 0 => {
            println!("verify: {problems} problem(s) found");
            Ok(ExitCode::FAILURE)
        }
        SpoolAction::Verify => {
            println!("verify: every record is intact");
            Ok(ExitCode::SUCCESS)
        }
        SpoolAction::Status => Ok(ExitCode::SUCCESS),
    }
}

fn retention(config: Option<PathBuf>, days: Option<u32>, dry_run: bool) -> Result<ExitCode> {
    use infralog_collector::archive::{Archive, retention};
    let config = load_config(config.as_ref())?;
    let days = days.unwrap_or(config.retention.days);
    let archive = Archive::open_with(&config.archive.path, &config.archive.s3)?;
    let today = infralog_collector::time::day_of(infralog_collector::time::now_ns());
    let expired = retention::apply(&archive, today, days, dry_run)?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    for e in &expired {
        println!(
            "{verb} {} ({} objects, {} bytes)",
            e.dir, e.objects, e.bytes
        );
    }
    println!(
        "{verb} {} partition(s) older than {days} days from {}",
        expired.len(),
        archive.location()
    );
    Ok(ExitCode::SUCCESS)
}

fn compact(config: Option<PathBuf>) -> Result<ExitCode> {
    use infralog_collector::archive::{Archive, compact};
    let config = load_config(config.as_ref())?;
    let archive = Archive::open_with(&config.archive.path, &config.archive.s3)?;
    let (instance, below) = infralog_collector::spool::archived_below(&config.spool_options().dir)?;
    let today = infralog_collector::time::day_of(infralog_collector::time::now_ns());
    let opts = compact::CompactOptions {
        encode: config.archive.archiver_options().encode,
        ..Default::default()
    };
    let report = compact::compact(&archive, &instance, below, today, &opts)?;
    for (file, inputs) in &report.merged {
        println!("merged {inputs} files into {file}");
    }
    println!(
        "compacted {} partition(s), {} rows; {} files deleted",
        report.merged.len(),
        report.rows,
        report.deleted
    );
    Ok(ExitCode::SUCCESS)
}

fn run_migrate(archive: &std::path::Path, dry_run: bool) -> Result<ExitCode> {
    let encode = Config::default_config().archive.archiver_options().encode;
    let report = infralog_collector::archive::migrate::migrate(archive, dry_run, &encode)?;
    let verb = if dry_run { "would rewrite" } else { "rewrote" };
    eprintln!(
        "{verb} {} file(s) of an older schema version ({} rows, {} bytes{}) as version {}; \
         {} file(s) already current; {} stale temporary file(s) removed; {} hourly stats \
         file(s) {} for logs files that had none",
        report.migrated,
        report.rows,
        report.bytes_before,
        if dry_run {
            String::new()
        } else {
            format!(" → {} bytes", report.bytes_after)
        },
        infralog_schemas::SCHEMA_VERSION,
        report.current,
        report.stale_removed,
        report.stats_backfilled,
        if dry_run {
            "would be written"
        } else {
            "written"
        },
    );
    for (path, why) in &report.failed {
        eprintln!("error: {}: {why} (left as it is)", path.display());
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// How often the main loop looks for degraded modes to log.
const DEGRADED_CHECK_EVERY: Duration = Duration::from_secs(2);

static SIGNALLED: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::Relaxed);
}

extern "C" fn on_hangup(_: libc::c_int) {
    RELOAD.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    // SAFETY: the handlers only store to an atomic, which is async-signal-safe.
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
        libc::signal(libc::SIGHUP, on_hangup as *const () as libc::sighandler_t);
    }
}

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::default_config()),
    }
}

fn run(config_path: Option<PathBuf>, once: bool) -> Result<ExitCode> {
    let mut config = load_config(config_path.as_ref())?;
    install_signal_handlers();
    let mut collector = Collector::start(&config, once)?;
    if collector.sources_running() == 0 {
        collector.stop()?;
        anyhow::bail!("no source could start; see the messages above");
    }
    let mut http = start_http(&config, &collector);
    // Every source that could start has: `cargo xtask run` waits for this line.
    tracing::info!(
        sources = collector.sources_running(),
        "infra-collector running"
    );
    let systemd = infralog_collector::sd_notify::Notifier::from_env();
    systemd.ready(&format!(
        "{} source(s) running",
        collector.sources_running()
    ));
    let mut next_watchdog = std::time::Instant::now();
    let mut degraded = infralog_collector::degraded::DegradedLog::default();
    let mut next_check = std::time::Instant::now();
    while !SIGNALLED.load(Ordering::Relaxed) && !collector.sources_finished() {
        if RELOAD.swap(false, Ordering::Relaxed) {
            systemd.reloading();
            (collector, config, http) = reload(collector, config, http, config_path.as_ref());
            systemd.ready(&format!(
                "{} source(s) running",
                collector.sources_running()
            ));
        }
        collector.refresh();
        // The main loop is alive while it gets here: a hung loop stops the pings.
        if let Some(every) = systemd.watchdog_every
            && std::time::Instant::now() >= next_watchdog
        {
            systemd.watchdog();
            next_watchdog = std::time::Instant::now() + every;
        }
        if std::time::Instant::now() >= next_check {
            degraded.check(&collector.observed);
            next_check = std::time::Instant::now() + DEGRADED_CHECK_EVERY;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    systemd.stopping();
    let report = collector.stop()?;
    if let Some(h) = http {
        h.stop();
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// SIGHUP: the configuration file read again and applied; a file that does not parse or
/// validate is refused and the running configuration kept.
fn reload(
    mut collector: Collector,
    config: Config,
    mut http: Option<infralog_collector::http::Server>,
    path: Option<&PathBuf>,
) -> (Collector, Config, Option<infralog_collector::http::Server>) {
    use infralog_collector::run::Reload;
    let Some(path) = path else {
        tracing::warn!("reload: running the built-in configuration, there is no file to read");
        return (collector, config, http);
    };
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload refused, the running configuration is kept: {e:#}");
            return (collector, config, http);
        }
    };
    let outcome = match collector.reload(&new) {
        Ok(Reload::NeedsRestart) => {
            tracing::info!("reload: restarting the collector (the change reaches the pipeline)");
            if let Err(e) = collector.stop() {
                tracing::error!("reload: stopping the collector: {e:#}");
            }
            match Collector::start(&new, false) {
                Ok(c) => collector = c,
                Err(e) => {
                    // The new configuration cannot run here: the old one comes back.
                    tracing::error!("reload: cannot start with {}: {e:#}", path.display());
                    match Collector::start(&config, false) {
                        Ok(c) => {
                            restart_http(&mut http, &config, &config, &c);
                            return (c, config, http);
                        }
                        Err(e) => {
                            tracing::error!(
                                "reload: cannot start the old configuration again either: {e:#}"
                            );
                            std::process::exit(1);
                        }
                    }
                }
            }
            "restarted".to_string()
        }
        Ok(Reload::Restarted(names)) => format!("restarted {}", names.join(", ")),
        Ok(Reload::Unchanged) => "no source or target changed".to_string(),
        Err(e) => {
            tracing::error!("reload failed: {e:#}");
            return (collector, config, http);
        }
    };
    restart_http(&mut http, &config, &new, &collector);
    tracing::info!(config = %path.display(), "configuration reloaded: {outcome}");
    (collector, new, http)
}

/// Points the endpoint at the collector now running, on the new address if it changed.
fn restart_http(
    http: &mut Option<infralog_collector::http::Server>,
    old: &Config,
    new: &Config,
    collector: &Collector,
) {
    if old.http != new.http || http.is_none() {
        if let Some(h) = http.take() {
            h.stop();
        }
        *http = start_http(new, collector);
    } else if let Some(h) = http {
        h.observe(collector.observed.clone());
    }
}

/// The operations endpoint. A port that cannot be had leaves the collector running
/// without it (one line says so): collecting matters more than being scraped.
fn start_http(config: &Config, collector: &Collector) -> Option<infralog_collector::http::Server> {
    if !config.http.enabled {
        return None;
    }
    infralog_collector::http::Server::start(&config.http, collector.observed.clone())
        .map_err(|e| tracing::error!("running without the http endpoint: {e:#}"))
        .ok()
}

fn validate(path: Option<PathBuf>) -> Result<ExitCode> {
    let (text, origin) = match &path {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read configuration {}: {e}", p.display()))?,
            p.display().to_string(),
        ),
        None => (DEFAULT_CONFIG.to_string(), "(built-in default)".to_string()),
    };
    let problems = infralog_collector::validate::problems(&text, &origin);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!("{origin}: {} problem(s)", problems.len());
        return Ok(ExitCode::FAILURE);
    }
    let c = Config::parse(&text, &origin)?;
    println!("{origin}: valid");
    println!("  archive: {}", c.archive.path);
    println!("  spool: {}", c.spool_options().dir.display());
    print!("{}", infralog_collector::probe::sources_report(&c));
    if c.http.enabled {
        println!("  http endpoint: {}", c.http.listen);
    }
    Ok(ExitCode::SUCCESS)
}

fn alert_test(path: &std::path::Path) -> Result<ExitCode> {
    let config = Config::load(path)?;
    anyhow::ensure!(
        !config.alert.targets.is_empty(),
        "{} has no [[alert.targets]]",
        path.display()
    );
    let mut ok = true;
    for (name, result) in
        infralog_collector::alert::dispatch::send_test(&config.alert, &config.hostname())?
    {
        match result {
            Ok(()) => println!("{name}: delivered"),
            Err(why) => {
                ok = false;
                println!("{name}: FAILED: {why}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
