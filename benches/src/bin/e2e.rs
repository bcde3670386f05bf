//! End-to-end import benchmark with a peer in the same run.
//!
//! 1. Generates the syslog corpus if it is not there (`benches/corpus/`).
//! 2. Times `infra-collector import --format rfc3164 --archive <tmp> <corpus>`, best of N,
//!    and measures the archive: Parquet bytes per line, files.
//! 3. Times DuckDB (Python package) doing the same job on the same file: split each line
//!    into PRI / timestamp / host / process / pid / message with one `regexp_extract`,
//!    write zstd Parquet with `COPY`, once to a single file and once hive-partitioned by
//!    hostname and date as our archive is. Best of N each.
//! 4. Checks both outputs with DuckDB: every line is a row.
//!
//! `e2e [--lines N] [--seed S] [--runs N] [--no-peer] [--collector PATH] [--work DIR]`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use infralog_benches::corpus;

#[derive(Parser)]
#[command(about = "End-to-end import benchmark: infra-collector vs DuckDB on one corpus")]
struct Args {
    /// Corpus size in lines.
    #[arg(long, default_value_t = corpus::DEFAULT_LINES)]
    lines: u64,
    #[arg(long, default_value_t = corpus::DEFAULT_SEED)]
    seed: u64,
    /// Timed runs per contender; the best (shortest) counts.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Skip DuckDB.
    #[arg(long)]
    no_peer: bool,
    /// The infra-collector binary (default: beside this one).
    #[arg(long)]
    collector: Option<PathBuf>,
    /// Scratch directory for the outputs (default: `<target>/e2e`).
    #[arg(long)]
    work: Option<PathBuf>,
    #[arg(long, default_value_os_t = corpus::default_corpus_dir())]
    corpus_dir: PathBuf,
    #[arg(long, default_value_os_t = corpus::default_templates_dir())]
    templates: PathBuf,
}

/// One timed run of one contender.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: Duration,
    max_rss_kb: u64,
}

/// The best run of a contender and what it wrote.
struct Outcome {
    name: String,
    best: Run,
    runs: Vec<Run>,
    parquet_bytes: u64,
    files: u64,
    rows: Option<u64>,
    note: String,
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
            .map(|t| t.join("e2e"))
            .unwrap_or_else(|| PathBuf::from("e2e"))
    });
    std::fs::create_dir_all(&work)?;

    let t = Instant::now();
    let (corpus, generated) = corpus::ensure_corpus(&a.templates, &a.corpus_dir, a.lines, a.seed)?;
    let corpus_bytes = std::fs::metadata(&corpus)?.len();
    println!(
        "corpus: {} ({} lines, {:.1} MB, {:.1} bytes/line){}",
        corpus.display(),
        a.lines,
        corpus_bytes as f64 / 1e6,
        corpus_bytes as f64 / a.lines as f64,
        if generated.is_some() {
            format!(", generated in {:.1} s", t.elapsed().as_secs_f64())
        } else {
            String::new()
        }
    );
    println!(
        "machine: {} CPUs; runs: best of {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        a.runs
    );

    let mut outcomes = vec![ours(&collector, &corpus, &work, a.runs)?];
    let python_ok = Command::new("python3")
        .args(["-c", "import duckdb"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if python_ok {
        let archive = work.join("infralog");
        // The `logs` table only: `stats/` beside it holds the hourly rollup.
        let (rows, _) = duckdb_count(&format!("{}/logs/**/*.parquet", archive.display()))?;
        outcomes[0].rows = Some(rows);
    } else {
        println!("python3 with duckdb not available: no row check, no peer (cargo xtask setup)");
    }
    if !a.no_peer && python_ok {
        outcomes.push(peer(&corpus, &work, a.runs, false)?);
        outcomes.push(peer(&corpus, &work, a.runs, true)?);
    }

    report(&outcomes, a.lines, corpus_bytes);
    let mut ok = true;
    for o in &outcomes {
        if let Some(rows) = o.rows
            && rows != a.lines
        {
            println!("ERROR: {} wrote {rows} rows for {} lines", o.name, a.lines);
            ok = false;
        }
    }
    if !ok {
        bail!("row counts do not match the corpus");
    }
    Ok(())
}

/// Runs `cmd` to completion and measures it (wall time, CPU, peak RSS via wait4).
fn measure(cmd: &mut Command, log: &Path) -> Result<Run> {
    let log_file = std::fs::File::create(log)?;
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if r != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        bail!(
            "{:?} failed (wait status {status}):\n{}",
            cmd.get_program(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Run {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kb: usage.ru_maxrss as u64,
    })
}

fn ours(collector: &Path, corpus: &Path, work: &Path, runs: u32) -> Result<Outcome> {
    if !collector.exists() {
        bail!(
            "{} not found: build it first (cargo build --release --bins)",
            collector.display()
        );
    }
    let archive = work.join("infralog");
    let mut all = Vec::new();
    for i in 1..=runs {
        remove(&archive)?;
        settle();
        let run = measure(
            Command::new(collector)
                .args(["import", "--format", "rfc3164", "--archive"])
                .arg(&archive)
                .arg(corpus),
            &work.join("infralog-import.log"),
        )?;
        println!(
            "  infra-collector import       run {i}: {:.2} s",
            run.wall.as_secs_f64()
        );
        all.push(run);
    }
    let (parquet_bytes, files) = parquet_size(&archive.join("logs"))?;
    Ok(Outcome {
        name: "infra-collector import".into(),
        best: best(&all),
        runs: all,
        parquet_bytes,
        files,
        rows: None,
        note: "hive hostname/log_date, sorted by time, all `logs` columns".into(),
    })
}

/// DuckDB's side. Timed inside Python around the `COPY` (the import of duckdb and the
/// interpreter start are not counted).
const PEER_SCRIPT: &str = r#"
import duckdb, os, resource, shutil, sys, time
corpus, out, runs, partitioned = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
line_re = r'^(?:<(\d{1,3})>)?([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d) (\S+) ([^ \[:]+)(?:\[(\d+)\])?: ?(.*)$'
severities = "['EMERGENCY','ALERT','CRITICAL','ERROR','WARNING','NOTICE','INFO','DEBUG']"
facilities = ("['kern','user','mail','daemon','auth','syslog','lpr','news','uucp','cron','authpriv',"
              "'ftp','ntp','security','console','solaris-cron','local0','local1','local2','local3',"
              "'local4','local5','local6','local7']")
query = f"""
WITH m AS (
  SELECT regexp_extract(line, '{line_re}',
           ['pri', 'mon', 'day', 'hms', 'host', 'proc', 'pid', 'msg']) AS r
  FROM read_csv('{corpus}', columns = {{'line': 'VARCHAR'}}, header = false, delim = '\x01',
                quote = '', escape = '', auto_detect = false)
), p AS (
  SELECT strptime('2026 ' || r.mon || ' ' || r.day || ' ' || r.hms, '%Y %b %d %H:%M:%S') AS ts,
         TRY_CAST(NULLIF(r.pri, '') AS INTEGER) AS pri, r
  FROM m
)
SELECT ts AS timestamp, r.host AS hostname,
       {'ts::DATE AS log_date,' if partitioned else ''}
       (pri % 8)::TINYINT AS priority,
       list_extract({severities}, pri % 8 + 1) AS severity,
       list_extract({facilities}, pri // 8 + 1) AS facility,
       r.msg AS message, r.proc AS process_name,
       TRY_CAST(NULLIF(r.pid, '') AS INTEGER) AS process_id
FROM p
"""
if partitioned:
    target = f"'{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (hostname, log_date))"
else:
    target = f"'{out}' (FORMAT parquet, COMPRESSION zstd)"
con = duckdb.connect()
threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
for i in range(runs):
    if os.path.isdir(out):
        shutil.rmtree(out)
    elif os.path.exists(out):
        os.remove(out)
    os.sync()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    con.execute(f"COPY ({query}) TO {target}")
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(f"run {wall:.6f} {cpu:.6f} {r1.ru_maxrss}", flush=True)
glob = f"{out}/**/*.parquet" if partitioned else out
rows, with_ts = con.execute(
    f"SELECT count(*), count(timestamp) FROM read_parquet('{glob}', hive_partitioning = {str(partitioned).lower()})"
).fetchone()
print(f"rows {rows} {with_ts} {threads} {duckdb.__version__}")
"#;

fn peer(corpus: &Path, work: &Path, runs: u32, partitioned: bool) -> Result<Outcome> {
    let (name, out) = if partitioned {
        ("duckdb COPY, hive partitioned", work.join("duckdb-hive"))
    } else {
        ("duckdb COPY, one file", work.join("duckdb.parquet"))
    };
    let output = Command::new("python3")
        .args(["-c", PEER_SCRIPT])
        .arg(corpus)
        .arg(&out)
        .arg(runs.to_string())
        .arg(if partitioned { "1" } else { "0" })
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running python3")?;
    if !output.status.success() {
        bail!("DuckDB run failed ({})", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut all = Vec::new();
    let mut rows = None;
    let mut note = String::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["run", wall, cpu, rss] => {
                let run = Run {
                    wall: Duration::from_secs_f64(wall.parse()?),
                    cpu: Duration::from_secs_f64(cpu.parse()?),
                    max_rss_kb: rss.parse()?,
                };
                println!(
                    "  {name:<28} run {}: {:.2} s",
                    all.len() + 1,
                    run.wall.as_secs_f64()
                );
                all.push(run);
            }
            ["rows", n, with_ts, threads, version] => {
                rows = Some(n.parse()?);
                let unparsed = n.parse::<u64>()? - with_ts.parse::<u64>()?;
                note = format!("duckdb {version}, {threads} threads, {unparsed} lines unmatched");
            }
            _ => {}
        }
    }
    if all.is_empty() {
        bail!("DuckDB printed no timings:\n{text}");
    }
    let (parquet_bytes, files) = parquet_size(&out)?;
    Ok(Outcome {
        name: name.into(),
        best: best(&all),
        runs: all,
        parquet_bytes,
        files,
        rows,
        note,
    })
}

/// `count(*)` over a Parquet glob, read by DuckDB.
fn duckdb_count(glob: &str) -> Result<(u64, String)> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import duckdb, sys; print(duckdb.connect().execute(\"SELECT count(*) FROM read_parquet('\" + sys.argv[1] + \"')\").fetchone()[0])",
            glob,
        ])
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "DuckDB cannot read {glob}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((s.parse().context("count")?, s))
}

/// Writes back every dirty page before a timed run (untimed), so that a run's fsyncs do not
/// pay for what the previous contender left in the page cache (ext4 commits it with them).
fn settle() {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
}

fn best(runs: &[Run]) -> Run {
    *runs
        .iter()
        .min_by_key(|r| r.wall)
        .expect("at least one run")
}

fn remove(p: &Path) -> Result<()> {
    if p.is_dir() {
        std::fs::remove_dir_all(p)?;
    } else if p.exists() {
        std::fs::remove_file(p)?;
    }
    Ok(())
}

/// Total size and count of `*.parquet` files under `p` (or `p` itself).
fn parquet_size(p: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(p).with_context(|| format!("{}", p.display()))?;
    if meta.is_file() {
        let is_parquet = p.extension().is_some_and(|e| e == "parquet");
        return Ok(if is_parquet { (meta.len(), 1) } else { (0, 0) });
    }
    let mut total = (0, 0);
    for entry in std::fs::read_dir(p)? {
        let (b, n) = parquet_size(&entry?.path())?;
        total.0 += b;
        total.1 += n;
    }
    Ok(total)
}

fn report(outcomes: &[Outcome], lines: u64, corpus_bytes: u64) {
    println!();
    println!(
        "| contender | best wall s | lines/s | CPU s | peak RSS MB | Parquet bytes/line | files | rows |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for o in outcomes {
        let secs = o.best.wall.as_secs_f64();
        println!(
            "| {} | {:.2} | {} | {:.2} | {:.0} | {:.2} | {} | {} |",
            o.name,
            secs,
            thousands((lines as f64 / secs) as u64),
            o.best.cpu.as_secs_f64(),
            o.best.max_rss_kb as f64 / 1024.0,
            o.parquet_bytes as f64 / lines as f64,
            o.files,
            o.rows.map_or("?".into(), thousands),
        );
    }
    println!();
    println!(
        "corpus: {} lines, {:.1} bytes/line; all runs (s): {}",
        thousands(lines),
        corpus_bytes as f64 / lines as f64,
        outcomes
            .iter()
            .map(|o| format!(
                "{} [{}]",
                o.name,
                o.runs
                    .iter()
                    .map(|r| format!("{:.2}", r.wall.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    for o in outcomes {
        println!("{}: {}", o.name, o.note);
    }
    let ours = &outcomes[0];
    for peer in &outcomes[1..] {
        let speed = peer.best.wall.as_secs_f64() / ours.best.wall.as_secs_f64();
        let size = ours.parquet_bytes as f64 / peer.parquet_bytes.max(1) as f64;
        println!(
            "vs {}: infra-collector is {speed:.2}x its speed (lines/s), its Parquet is {size:.2}x the size",
            peer.name
        );
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
