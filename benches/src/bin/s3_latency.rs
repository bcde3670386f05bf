//! Time from a line being written to a log file to its Parquet object being readable on S3.
//!
//! Starts `moto_server` (PyPI) on 127.0.0.1 as the S3 API (the tests' `s3_support`), then `infra-collector run` with
//! only the file source, tailing one file, archiving to `s3://bench/latency` with the
//! default spool settings (or `--seal-secs`). One probe line is appended every
//! `--interval-ms` (chosen not to divide the seal interval, so probes land at every phase
//! of a segment); a poller lists the bucket every 100 ms, reads each new `logs` object and
//! notes when each probe first became readable. Prints the latency distribution.
//!
//! `s3_latency [--seconds 120] [--interval-ms 1700] [--seal-secs N] [--collector PATH]`

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arrow::array::AsArray;
use clap::Parser;
use infralog_collector::archive::{Archive, partitions};
use infralog_tests::s3_support::{Moto, credentials_file};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[derive(Parser)]
#[command(about = "Line written → Parquet object on S3 latency")]
struct Args {
    /// How long probes are written.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    #[arg(long, default_value_t = 1700)]
    interval_ms: u64,
    /// `[spool] seal_secs` for the collector (default: the built-in default).
    #[arg(long)]
    seal_secs: Option<u64>,
    #[arg(long)]
    collector: Option<PathBuf>,
}

const BUCKET: &str = "bench";
const PROBE: &str = "latency-probe";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Probe numbers in the `logs` objects not seen before.
fn new_probes(archive: &Archive, seen: &mut HashSet<String>) -> Result<Vec<u64>> {
    let mut found = Vec::new();
    for (dir, _) in partitions(archive, "logs")? {
        for (path, _) in archive.list_files(&dir)? {
            if !seen.insert(path.clone()) {
                continue;
            }
            let reader = ParquetRecordBatchReaderBuilder::try_new(archive.get(&path)?)?.build()?;
            for batch in reader {
                let batch = batch?;
                let msgs = batch
                    .column_by_name("message")
                    .context("no message column")?
                    .as_string::<i32>();
                for m in msgs.iter().flatten() {
                    if let Some(n) = m.strip_prefix(PROBE).and_then(|r| r.trim().parse().ok()) {
                        found.push(n);
                    }
                }
            }
        }
    }
    Ok(found)
}

fn main() -> Result<()> {
    let a = Args::parse();
    let exe = std::env::current_exe()?;
    let collector = a.collector.clone().unwrap_or_else(|| {
        exe.parent()
            .expect("binary directory")
            .join("infra-collector")
    });
    let work = tempfile::tempdir()?;
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let port = moto.port;
    let creds = credentials_file(work.path());
    let log = work.path().join("app.log");
    std::fs::write(&log, "")?;
    let spool = a
        .seal_secs
        .map(|s| format!("[spool]\nseal_secs = {s}\n"))
        .unwrap_or_default();
    let config = work.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nhostname = \"bench\"\nstate_dir = {state:?}\n\n\
             [archive]\npath = \"s3://{BUCKET}/latency\"\n\n[archive.s3]\n\
             endpoint = \"http://127.0.0.1:{port}\"\nregion = \"us-east-1\"\n\
             credentials_file = {creds:?}\n\n{spool}\n\
             [sources.kmsg]\nenabled = false\n[sources.ebpf]\nenabled = false\n\
             [sources.journald]\nenabled = false\n\
             [sources.containers]\ndocker = false\ncri = false\n\
             [sources.file]\nenabled = true\n[[sources.file.inputs]]\npaths = [{log:?}]\n\
             format = \"raw\"\n",
            state = work.path().join("state").display().to_string(),
            creds = creds.display().to_string(),
            log = log.display().to_string(),
        ),
    )?;
    let child = Command::new(&collector)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.path().join("collector.log"))?)
        .spawn()
        .with_context(|| format!("start {}", collector.display()))?;
    let _collector = Killed(child);

    let archive = Archive::open_with(
        &format!("s3://{BUCKET}/latency"),
        &infralog_store::S3Settings {
            endpoint: format!("http://127.0.0.1:{port}"),
            region: "us-east-1".into(),
            credentials_file: creds.display().to_string(),
            profile: String::new(),
        },
    )?;
    let mut file = std::fs::OpenOptions::new().append(true).open(&log)?;
    let interval = Duration::from_millis(a.interval_ms);
    let probes = (a.seconds * 1000 / a.interval_ms.max(1)).max(1);
    let start = Instant::now();
    let mut written: HashMap<u64, Instant> = HashMap::new();
    let mut latency: HashMap<u64, Duration> = HashMap::new();
    let mut seen = HashSet::new();
    let mut next_probe = 0u64;
    let deadline = start + Duration::from_secs(a.seconds) + Duration::from_secs(180);
    while latency.len() < probes as usize {
        let now = Instant::now();
        if next_probe < probes && now >= start + interval * next_probe as u32 {
            writeln!(file, "{PROBE} {next_probe}")?;
            file.flush()?;
            written.insert(next_probe, Instant::now());
            next_probe += 1;
        }
        for n in new_probes(&archive, &mut seen)? {
            if let Some(t) = written.get(&n) {
                latency.entry(n).or_insert_with(|| t.elapsed());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {probes} probes reached S3 (see {})",
                latency.len(),
                work.path().join("collector.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut l: Vec<f64> = latency.values().map(Duration::as_secs_f64).collect();
    l.sort_by(f64::total_cmp);
    let q = |p: f64| l[((l.len() - 1) as f64 * p).round() as usize];
    println!(
        "seal_secs {}: {} probes, line → S3 object latency: min {:.1}s, p50 {:.1}s, p90 {:.1}s, \
         max {:.1}s, mean {:.1}s",
        a.seal_secs.map_or("default".to_string(), |s| s.to_string()),
        l.len(),
        l[0],
        q(0.5),
        q(0.9),
        l[l.len() - 1],
        l.iter().sum::<f64>() / l.len() as f64
    );
    Ok(())
}
