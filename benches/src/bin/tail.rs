//! End-to-end file tailing benchmark: `infra-collector run` with only the file source.
//!
//! 1. Catch-up: the syslog corpus (`benches/corpus/`, generated if missing) as one file,
//!    read by `infra-collector run --once` into a fresh archive, best of N: lines/s,
//!    lines per CPU-second, peak RSS; the archive's row count checked with DuckDB.
//! 2. Live (`--rate R --seconds S`): the collector runs as a daemon while this harness
//!    appends corpus lines to the file at R lines/s for S seconds, then waits for the
//!    archive to hold them all and stops it: peak RSS and CPU while tailing at that rate.
//!
//! `tail [--lines N] [--runs N] [--rate R --seconds S] [--collector PATH] [--work DIR]`

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use infralog_benches::corpus;

#[derive(Parser)]
#[command(about = "End-to-end file tailing benchmark")]
struct Args {
    #[arg(long, default_value_t = corpus::DEFAULT_LINES)]
    lines: u64,
    #[arg(long, default_value_t = corpus::DEFAULT_SEED)]
    seed: u64,
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Live mode: lines per second appended while the collector runs (0: skip).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    #[arg(long)]
    collector: Option<PathBuf>,
    #[arg(long)]
    work: Option<PathBuf>,
    #[arg(long, default_value_os_t = corpus::default_corpus_dir())]
    corpus_dir: PathBuf,
    #[arg(long, default_value_os_t = corpus::default_templates_dir())]
    templates: PathBuf,
    /// `spool.seal_secs` of the collector under test (its default is 30).
    #[arg(long, default_value_t = 30)]
    seal_secs: u64,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: u64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().context("binary directory")?;
    let collector = a
        .collector
        .clone()
        .unwrap_or_else(|| bin_dir.join("infra-collector"));
    if !collector.exists() {
        bail!("{} not found: build it first", collector.display());
    }
    let work = a.work.clone().unwrap_or_else(|| bin_dir.join("tail-bench"));
    let (corpus, _) = corpus::ensure_corpus(&a.templates, &a.corpus_dir, a.lines, a.seed)?;
    let bytes = std::fs::metadata(&corpus)?.len();
    println!(
        "corpus: {} ({} lines, {} bytes)",
        corpus.display(),
        a.lines,
        bytes
    );

    let mut runs = Vec::new();
    for i in 0..a.runs {
        let dir = fresh(&work.join(format!("catchup-{i}")))?;
        let config = write_config(&dir, &corpus, a.seal_secs)?;
        sync();
        let run = wait_measured(
            Command::new(&collector)
                .args(["run", "--once", "--config"])
                .arg(&config),
            &dir.join("collector.log"),
        )?;
        let rows = duckdb_count(&dir.join("archive"))?;
        if rows != a.lines {
            bail!(
                "run {i}: {rows} rows archived, the corpus has {} lines",
                a.lines
            );
        }
        println!(
            "catch-up run {i}: {:.2}s wall, {:.2}s CPU, {:.0} lines/s, {:.0} lines/CPU-s, peak RSS {} MB",
            run.wall.as_secs_f64(),
            run.cpu.as_secs_f64(),
            a.lines as f64 / run.wall.as_secs_f64(),
            a.lines as f64 / run.cpu.as_secs_f64(),
            run.max_rss_kb / 1024
        );
        runs.push(run);
    }
    if let Some(best) = runs.iter().min_by_key(|r| r.wall) {
        println!(
            "catch-up best: {:.0} lines/s ({:.0} MB/s), {:.0} lines/CPU-s, peak RSS {} MB",
            a.lines as f64 / best.wall.as_secs_f64(),
            bytes as f64 / best.wall.as_secs_f64() / 1e6,
            a.lines as f64 / best.cpu.as_secs_f64(),
            best.max_rss_kb / 1024
        );
    }

    if a.rate > 0 {
        live(&collector, &work, &corpus, &a)?;
    }
    Ok(())
}

/// Tails a file the harness appends to at `rate` lines/s for `seconds`.
fn live(collector: &Path, work: &Path, corpus: &Path, a: &Args) -> Result<()> {
    let (rate, seconds) = (a.rate, a.seconds);
    let dir = fresh(&work.join("live"))?;
    let log = dir.join("live.log");
    std::fs::File::create(&log)?;
    let config = write_config(&dir, &log, a.seal_secs)?;
    let child = Command::new(collector)
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("collector.log"))?)
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut source = BufReader::new(std::fs::File::open(corpus)?).split(b'\n');
    let mut out = std::fs::OpenOptions::new().append(true).open(&log)?;
    let total = rate * seconds;
    let mut written = 0u64;
    let mut batch = Vec::new();
    // Appends in 10 ms steps, as a busy writer does.
    while written < total {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        batch.clear();
        while written < due.min(total) {
            let line = match source.next() {
                Some(l) => l?,
                None => {
                    source = BufReader::new(std::fs::File::open(corpus)?).split(b'\n');
                    continue;
                }
            };
            batch.extend_from_slice(&line);
            batch.push(b'\n');
            written += 1;
        }
        out.write_all(&batch)?;
        std::thread::sleep(Duration::from_millis(10));
    }
    let wrote_for = started.elapsed();
    // Give the collector its flush interval to archive the last lines, then stop it.
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: a pid we spawned.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let run = wait(pid, started)?;
    let rows = duckdb_count(&dir.join("archive"))?;
    println!(
        "live: {written} lines appended at {rate} lines/s over {:.1}s; {rows} archived; \
         collector CPU {:.2}s ({:.1}% of one core), peak RSS {} MB",
        wrote_for.as_secs_f64(),
        run.cpu.as_secs_f64(),
        100.0 * run.cpu.as_secs_f64() / run.wall.as_secs_f64(),
        run.max_rss_kb / 1024
    );
    if rows != written {
        bail!("live: {rows} rows archived, {written} lines written");
    }
    Ok(())
}

fn fresh(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(dir.to_path_buf())
}

/// The corpus is dated in the past: retention is off, or the collector's first housekeeping
/// would delete what it just archived.
fn write_config(dir: &Path, file: &Path, seal_secs: u64) -> Result<PathBuf> {
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nhostname = \"bench\"\nstate_dir = {state:?}\n\n\
             [archive]\npath = {archive:?}\n\n[spool]\nseal_secs = {seal_secs}\n\n\
             [retention]\ndays = 0\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
             [sources.journald]\nenabled = false\n\n\
             [sources.containers]\ndocker = false\ncri = false\n\n\
             [sources.file]\npoll_interval_ms = 100\n\n\
             [[sources.file.inputs]]\npaths = [{file:?}]\nformat = \"syslog\"\nutc_offset = \"Z\"\n",
            state = dir.join("state"),
            archive = dir.join("archive"),
        ),
    )?;
    Ok(config)
}

fn sync() {
    // SAFETY: no preconditions.
    unsafe { libc::sync() };
}

fn wait_measured(cmd: &mut Command, log: &Path) -> Result<Run> {
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    wait(child.id() as libc::pid_t, started)
}

/// Waits for our child `pid` and measures it (CPU and peak RSS via wait4).
fn wait(pid: libc::pid_t, started: Instant) -> Result<Run> {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if r != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("the collector failed (wait status {status})");
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Run {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss as u64,
    })
}

fn duckdb_count(archive: &Path) -> Result<u64> {
    let glob = archive.join("logs/**/*.parquet");
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import duckdb; print(duckdb.sql(\"SELECT count(*) FROM read_parquet('{}', hive_partitioning=true)\").fetchall()[0][0])",
            glob.display()
        ))
        .output()
        .context("python3 with duckdb")?;
    if !out.status.success() {
        bail!("duckdb: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}
