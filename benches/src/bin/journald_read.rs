//! Reading a systemd journal: the journald source against `journalctl -o export`.
//!
//! 1. Builds (once) a journal of `--entries` entries in `<work>/journal/<machine-id>/`:
//!    lines of the synthetic syslog corpus become entries with the fields journald gives a
//!    syslog line (about twenty: identity, unit, cgroup, boot, transport, timestamps),
//!    written as an export stream into `systemd-journal-remote`, which writes compact zstd
//!    journal files as journald does (and rotates them by itself).
//! 2. Measures, best of `--runs`, lines per CPU-second (user + system) of
//!    - `journalctl --directory <dir> -o export > /dev/null` (every field, as text);
//!    - `source`: the journald source in this process, every entry mapped into Arrow
//!      column builders, chunks handed to a drain thread (the collector's pipeline up to
//!      the archive);
//!    - `collector`: `infra-collector run --once` with only the journald source, i.e. also
//!      sorting and writing zstd Parquet.
//!
//! `journald_read [--entries N] [--runs N] [--work DIR] [--collector PATH]`

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use infralog_benches::corpus::{self, Model};
use infralog_collector::chunk::Chunk;
use infralog_collector::parse::{Format, ParseContext, parse_line};
use infralog_collector::sources::SourceContext;
use infralog_collector::sources::journald::{self, JournaldConfig};
use infralog_collector::state::CheckpointStore;

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
const MACHINE_ID: &str = "5e1ec7ab1e5e1ec7ab1e5e1ec7ab1e00";

#[derive(Parser)]
#[command(about = "journald source vs journalctl -o export on one journal")]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Scratch directory (default: `<target>/journald-bench`).
    #[arg(long)]
    work: Option<PathBuf>,
    /// The infra-collector binary (default: beside this one).
    #[arg(long)]
    collector: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: Duration,
}

fn cpu_of(u: &libc::rusage) -> Duration {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn self_cpu() -> Duration {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    cpu_of(&u)
}

/// Runs `cmd` with stdout to /dev/null and measures its CPU with wait4.
fn measure_child(cmd: &mut Command) -> Result<Run> {
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if r != pid || !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{:?} failed (wait status {status})", cmd.get_program());
    }
    Ok(Run {
        wall,
        cpu: cpu_of(&usage),
    })
}

fn field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    if value.contains(&b'\n') {
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
    } else {
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
    }
    out.push(b'\n');
}

/// Writes the journal from the syslog corpus generator's lines.
fn build_journal(dir: &Path, entries: u64) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let model = Model::load(&corpus::default_templates_dir())?;
    let mut g = corpus::Generator::new(&model, corpus::DEFAULT_SEED, entries, corpus::DEFAULT_DAYS);
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", dir.join("system.journal").display()))
        .arg("-")
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("cannot start {JOURNAL_REMOTE} (apt-get install systemd-journal-remote)")
        })?;
    let mut stdin = std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap());
    let ctx = ParseContext {
        reference_unix_secs: corpus::START_UNIX + 10 * 86_400,
        utc_offset_secs: 0,
        boot_unix_ns: None,
    };
    let boot = "b007b007b007b007b007b007b007b007";
    let mut line = Vec::new();
    let mut e = Vec::with_capacity(4096);
    let num = |v: u64| v.to_string();
    for i in 0..entries {
        line.clear();
        g.next_line(&mut line);
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let r = parse_line(Format::Rfc3164, text, &ctx);
        let ts_us = (r.timestamp_ns.unwrap_or(0) / 1000).max(1) as u64 + i % 1000;
        let app = r.app_name.unwrap_or(b"app");
        let pid = r.proc_id.unwrap_or(1) as u64;
        let pri = r.pri.map_or(6, |p| p.level as u64);
        let fac = r.pri.map_or(3, |p| p.facility as u64);
        e.clear();
        field(&mut e, "__REALTIME_TIMESTAMP", num(ts_us + 50).as_bytes());
        field(
            &mut e,
            "__MONOTONIC_TIMESTAMP",
            num(1_000_000 + i * 10).as_bytes(),
        );
        field(&mut e, "_BOOT_ID", boot.as_bytes());
        field(&mut e, "_MACHINE_ID", MACHINE_ID.as_bytes());
        field(&mut e, "_HOSTNAME", r.hostname.unwrap_or(b"host"));
        field(&mut e, "PRIORITY", num(pri).as_bytes());
        field(&mut e, "SYSLOG_FACILITY", num(fac).as_bytes());
        field(&mut e, "SYSLOG_IDENTIFIER", app);
        field(&mut e, "SYSLOG_PID", num(pid).as_bytes());
        field(&mut e, "SYSLOG_TIMESTAMP", &text[..text.len().min(15)]);
        field(&mut e, "MESSAGE", r.message);
        field(&mut e, "_PID", num(pid).as_bytes());
        field(&mut e, "_UID", b"0");
        field(&mut e, "_GID", b"0");
        field(&mut e, "_COMM", &app[..app.len().min(15)]);
        let mut exe = b"/usr/sbin/".to_vec();
        exe.extend_from_slice(app);
        field(&mut e, "_EXE", &exe);
        field(&mut e, "_CMDLINE", &exe);
        field(&mut e, "_CAP_EFFECTIVE", b"1ffffffffff");
        let mut unit = app.to_vec();
        unit.extend_from_slice(b".service");
        field(
            &mut e,
            "_SYSTEMD_CGROUP",
            &[b"/system.slice/".as_slice(), &unit].concat(),
        );
        field(&mut e, "_SYSTEMD_UNIT", &unit);
        field(&mut e, "_SYSTEMD_SLICE", b"system.slice");
        field(
            &mut e,
            "_SYSTEMD_INVOCATION_ID",
            b"0123456789abcdef0123456789abcdef",
        );
        field(&mut e, "_TRANSPORT", b"syslog");
        field(&mut e, "_SOURCE_REALTIME_TIMESTAMP", num(ts_us).as_bytes());
        e.push(b'\n');
        stdin.write_all(&e)?;
    }
    drop(stdin);
    let status = child.wait()?;
    if !status.success() {
        bail!("systemd-journal-remote failed: {status}");
    }
    Ok(())
}

/// The journald source over `root_dir`, in this process, until it has read everything.
fn run_source(journal_parent: &Path) -> Result<(Run, u64)> {
    let cfg = JournaldConfig {
        directories: vec![journal_parent.to_path_buf()],
        ..JournaldConfig::default()
    };
    let plan = journald::Plan::new(&cfg)?.context("no journal found")?;
    let (tx, rx) = crossbeam_channel::bounded::<Chunk>(16);
    let ctx = SourceContext {
        hostname: Arc::from("bench"),
        chunks: tx,
        checkpoints: Arc::new(CheckpointStore::empty()),
        shutdown: Arc::new(AtomicBool::new(false)),
        chunk_rows: 8192,
        chunk_max_age: Duration::from_millis(500),
        once: true,
    };
    let cpu0 = self_cpu();
    let started = Instant::now();
    let drain =
        std::thread::spawn(move || rx.iter().map(|c| c.batch.num_rows() as u64).sum::<u64>());
    let handle = journald::spawn(ctx, plan, false, 64 * 1024)?;
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("source panicked"))??;
    let rows = drain
        .join()
        .map_err(|_| anyhow::anyhow!("drain panicked"))?;
    Ok((
        Run {
            wall: started.elapsed(),
            cpu: self_cpu() - cpu0,
        },
        rows,
    ))
}

fn best(runs: &[Run]) -> Run {
    *runs.iter().min_by_key(|r| r.cpu).expect("at least one run")
}

fn main() -> Result<()> {
    let a = Args::parse();
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().context("exe dir")?.to_path_buf();
    let collector = a
        .collector
        .clone()
        .unwrap_or_else(|| bin_dir.join("infra-collector"));
    let work = a.work.clone().unwrap_or_else(|| {
        bin_dir
            .parent()
            .map(|t| t.join("journald-bench"))
            .unwrap_or_else(|| PathBuf::from("journald-bench"))
    });
    let parent = work.join(format!("journal-{}", a.entries));
    let dir = parent.join(MACHINE_ID);
    if !dir.join("system.journal").exists() {
        eprintln!(
            "writing a {}-entry journal into {} ...",
            a.entries,
            dir.display()
        );
        let t = Instant::now();
        build_journal(&dir, a.entries)?;
        eprintln!("  done in {:.1}s", t.elapsed().as_secs_f64());
    }
    let files = std::fs::read_dir(&dir)?.count();
    let bytes: u64 = std::fs::read_dir(&dir)?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "journal: {} entries, {files} file(s), {:.1} MiB",
        a.entries,
        bytes as f64 / (1 << 20) as f64
    );

    let mut results: Vec<(&str, Vec<Run>, String)> = Vec::new();
    let mut jc = Vec::new();
    for _ in 0..a.runs {
        jc.push(measure_child(
            Command::new("journalctl")
                .arg("--directory")
                .arg(&dir)
                .args(["-o", "export", "--no-pager"]),
        )?);
    }
    results.push(("journalctl -o export >/dev/null", jc, String::new()));

    let mut src = Vec::new();
    let mut rows = 0;
    for _ in 0..a.runs {
        let (r, n) = run_source(&parent)?;
        rows = n;
        src.push(r);
    }
    results.push(("journald source (to Arrow)", src, format!("{rows} rows")));

    if collector.exists() {
        let mut col = Vec::new();
        for i in 0..a.runs {
            let run_dir = work.join(format!("collector-run-{i}"));
            let _ = std::fs::remove_dir_all(&run_dir);
            std::fs::create_dir_all(&run_dir)?;
            let cfg = run_dir.join("collector.toml");
            std::fs::write(
                &cfg,
                format!(
                    "[collector]\nhostname = \"bench\"\nstate_dir = {:?}\n\n[archive]\npath = {:?}\n\n\
                     [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
                     [sources.journald]\ndirectories = [{:?}]\n",
                    run_dir.join("state").display().to_string(),
                    run_dir.join("archive").display().to_string(),
                    parent.display().to_string()
                ),
            )?;
            col.push(measure_child(
                Command::new(&collector)
                    .args(["run", "--once", "--config"])
                    .arg(&cfg),
            )?);
        }
        results.push((
            "infra-collector run --once (to Parquet)",
            col,
            String::new(),
        ));
    } else {
        eprintln!("{} not found: collector run skipped", collector.display());
    }

    let base = {
        let r = best(&results[0].1);
        a.entries as f64 / r.cpu.as_secs_f64()
    };
    println!(
        "{:<42} {:>9} {:>9} {:>16} {:>8}",
        "reader (best of runs by CPU)", "wall s", "CPU s", "lines/CPU-s", "ratio"
    );
    for (name, runs, note) in &results {
        let r = best(runs);
        let rate = a.entries as f64 / r.cpu.as_secs_f64();
        println!(
            "{name:<42} {:>9.2} {:>9.2} {:>16.0} {:>7.2}x {note}",
            r.wall.as_secs_f64(),
            r.cpu.as_secs_f64(),
            rate,
            rate / base
        );
    }
    Ok(())
}
