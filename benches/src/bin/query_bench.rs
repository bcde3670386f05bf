//! Query benchmark with a peer in the same run: infra-query and DuckDB run the same five
//! queries on the same archive files.
//!
//! 1. Generates the syslog corpus (`gen-corpus`'s model) and imports it with
//!    `infra-collector import` into `<work>/archive-<lines>-<seed>` (kept for the next
//!    run).
//! 2. Runs each query with `infra-query -c` (a fresh process each time: the time a user
//!    waits, start-up included) and with DuckDB over the same Parquet files through
//!    `read_parquet(…, hive_partitioning = true)` (timed inside Python, so its interpreter
//!    start is left out), best of N each, and checks both give the same number of rows and
//!    the same total of the count column.
//! 3. Also times the first answer of a one-day query on the whole archive.
//!
//! The issue's size is 50 million lines (`--lines 50000000`); the default is small so
//! that the harness runs in a minute.
//!
//! `query_bench [--lines N] [--seed S] [--runs N] [--work DIR] [--bin-dir DIR]`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use infralog_benches::corpus;

#[derive(Parser)]
#[command(about = "Query benchmark: infra-query vs DuckDB on one archive")]
struct Args {
    /// Corpus size in lines (the issue's benchmark: 50000000).
    #[arg(long, default_value_t = corpus::QUICK_LINES)]
    lines: u64,
    #[arg(long, default_value_t = corpus::DEFAULT_SEED)]
    seed: u64,
    /// Timed runs per query and engine; the best counts.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Where the archive is kept (default `<target>/query-bench`).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Directory of infra-collector and infra-query (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    #[arg(long, default_value_os_t = corpus::default_corpus_dir())]
    corpus_dir: PathBuf,
    #[arg(long, default_value_os_t = corpus::default_templates_dir())]
    templates: PathBuf,
}

/// The five queries of the issue, in both dialects. `{day}`, `{from}`, `{to}` are dates of
/// the corpus.
const QUERIES: [(&str, &str, &str); 5] = [
    (
        "counts per severity and day",
        "SELECT log_date, severity, count(*) AS n FROM logs GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT log_date, severity, count(*) AS n FROM logs GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "top processes over a date range",
        "SELECT process_name, count(*) AS n FROM logs WHERE log_date BETWEEN DATE '{from}' AND DATE '{to}' \
         GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10",
        "SELECT process_name, count(*) AS n FROM logs WHERE log_date BETWEEN DATE '{from}' AND DATE '{to}' \
         GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10",
    ),
    (
        "errors per hour per host",
        "SELECT date_trunc('hour', timestamp) AS h, hostname, count(*) AS n FROM logs \
         WHERE priority <= 3 GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT date_trunc('hour', timestamp) AS h, hostname, count(*) AS n FROM logs \
         WHERE priority <= 3 GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "substring search in message over one day",
        "SELECT hostname, count(*) AS n FROM logs WHERE log_date = DATE '{day}' \
         AND message LIKE '%failed%' GROUP BY 1 ORDER BY 1",
        "SELECT hostname, count(*) AS n FROM logs WHERE log_date = DATE '{day}' \
         AND message LIKE '%failed%' GROUP BY 1 ORDER BY 1",
    ),
    (
        "template_id top-k with its text",
        "WITH t AS (SELECT template_id, max(text) AS text FROM templates GROUP BY 1) \
         SELECT l.template_id, max(t.text) AS text, count(*) AS n FROM logs l \
         LEFT JOIN t ON l.template_id = t.template_id GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10",
        "WITH t AS (SELECT template_id, max(text) AS text FROM templates GROUP BY 1) \
         SELECT l.template_id, max(t.text) AS text, count(*) AS n FROM logs l \
         LEFT JOIN t ON l.template_id = t.template_id GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10",
    ),
];

/// Rows and the total of the last (count) column of a CSV result.
fn shape(csv: &str) -> (usize, i64) {
    let mut rows = 0;
    let mut total = 0;
    for line in csv.lines().skip(1).filter(|l| !l.is_empty()) {
        rows += 1;
        total += line
            .rsplit(',')
            .next()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
    }
    (rows, total)
}

fn ours(query: &Path, archive: &Path, sql: &str, runs: u32) -> Result<(Duration, String)> {
    let mut best = Duration::MAX;
    let mut out = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        let o = Command::new(query)
            .arg("--archive")
            .arg(archive)
            .args(["--no-spool", "--format", "csv", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .context("running infra-query")?;
        let took = t.elapsed();
        if !o.status.success() {
            bail!(
                "infra-query failed on {sql}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        best = best.min(took);
        out = String::from_utf8(o.stdout)?;
    }
    Ok((best, out))
}

/// DuckDB runs every query `runs` times in one process; prints per query the best
/// seconds and the result as CSV.
const DUCKDB: &str = r#"
import duckdb, json, sys, time, io, pyarrow, pyarrow.csv
archive, runs = sys.argv[1], int(sys.argv[2])
queries = json.loads(sys.stdin.read())
con = duckdb.connect()
con.execute(f"CREATE VIEW logs AS SELECT * FROM read_parquet('{archive}/logs/*/*/*.parquet', hive_partitioning = true)")
con.execute(f"CREATE VIEW templates AS SELECT * FROM read_parquet('{archive}/templates/*/*/*.parquet', hive_partitioning = true)")
out = []
for q in queries:
    best, table = None, None
    for _ in range(runs):
        t = time.perf_counter()
        # Arrow, not Python objects: timestamps with a zone would need pytz.
        table = con.sql(q).to_arrow_table()
        took = time.perf_counter() - t
        best = took if best is None else min(best, took)
    buf = io.BytesIO()
    pyarrow.csv.write_csv(table, buf)
    out.append({"secs": best, "csv": buf.getvalue().decode()})
print(json.dumps({"version": duckdb.__version__, "threads": con.execute("SELECT current_setting('threads')").fetchone()[0], "results": out}))
"#;

fn main() -> Result<()> {
    let a = Args::parse();
    let exe = std::env::current_exe()?;
    let bin_dir = a
        .bin_dir
        .clone()
        .unwrap_or_else(|| exe.parent().expect("exe dir").to_path_buf());
    let collector = bin_dir.join("infra-collector");
    let query = bin_dir.join("infra-query");
    let work = a.work.clone().unwrap_or_else(|| {
        bin_dir
            .parent()
            .map(|t| t.join("query-bench"))
            .unwrap_or_else(|| PathBuf::from("query-bench"))
    });
    std::fs::create_dir_all(&work)?;
    let (corpus, _) = corpus::ensure_corpus(&a.templates, &a.corpus_dir, a.lines, a.seed)?;
    let archive = work.join(format!("archive-{}-{}", a.lines, a.seed));
    let done = archive.join(".imported");
    if !done.exists() {
        if archive.exists() {
            std::fs::remove_dir_all(&archive)?;
        }
        let t = Instant::now();
        let state = work.join(format!("state-{}-{}", a.lines, a.seed));
        let config = work.join("collector.toml");
        std::fs::write(
            &config,
            format!(
                "[collector]\nstate_dir = {:?}\n\n[archive]\npath = {:?}\n\n[retention]\ndays = 0\n",
                state.display().to_string(),
                archive.display().to_string()
            ),
        )?;
        let status = Command::new(&collector)
            .args(["import", "--format", "rfc3164", "--config"])
            .arg(&config)
            .arg(&corpus)
            .status()
            .context("running infra-collector import")?;
        if !status.success() {
            bail!("import failed");
        }
        std::fs::write(&done, "")?;
        println!(
            "imported {} lines in {:.1} s",
            a.lines,
            t.elapsed().as_secs_f64()
        );
    }

    // Dates of the corpus, from the archive itself.
    let (_, days) = ours(
        &query,
        &archive,
        "SELECT DISTINCT CAST(log_date AS VARCHAR) FROM logs ORDER BY 1",
        1,
    )?;
    let days: Vec<&str> = days.lines().skip(1).collect();
    let (day, from, to) = match days.as_slice() {
        [] => bail!("the archive is empty"),
        [d] => (*d, *d, *d),
        [first, .., last] => (days[1.min(days.len() - 1)], *first, *last),
    };
    let fill = |sql: &str| {
        sql.replace("{day}", day)
            .replace("{from}", from)
            .replace("{to}", to)
    };

    let duck_sql: Vec<String> = QUERIES.iter().map(|q| fill(q.2)).collect();
    let mut py = Command::new("python3")
        .arg("-c")
        .arg(DUCKDB)
        .arg(&archive)
        .arg(a.runs.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("python3 with duckdb (cargo xtask setup)")?;
    {
        use std::io::Write;
        py.stdin
            .take()
            .context("stdin")?
            .write_all(serde_json::to_string(&duck_sql)?.as_bytes())?;
    }
    let py = py.wait_with_output()?;
    if !py.status.success() {
        bail!("duckdb failed");
    }
    let duck: serde_json::Value = serde_json::from_slice(&py.stdout)?;

    println!(
        "machine: {} CPUs; {} lines; best of {}; DuckDB {} ({} threads)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        a.lines,
        a.runs,
        duck["version"].as_str().unwrap_or("?"),
        duck["threads"]
    );
    println!("| query | infra-query (s) | DuckDB (s) | ratio (ours / DuckDB) | rows |");
    println!("|---|---:|---:|---:|---:|");
    let mut mismatches = 0;
    for (i, (name, sql, _)) in QUERIES.iter().enumerate() {
        let (took, csv) = ours(&query, &archive, &fill(sql), a.runs)?;
        let theirs = &duck["results"][i];
        let duck_secs = theirs["secs"].as_f64().unwrap_or(f64::NAN);
        let (rows, total) = shape(&csv);
        let duck_shape = shape(theirs["csv"].as_str().unwrap_or_default());
        if (rows, total) != duck_shape {
            mismatches += 1;
            eprintln!(
                "{name}: infra-query {rows} rows, total {total}; DuckDB {} rows, total {}",
                duck_shape.0, duck_shape.1
            );
        }
        println!(
            "| {name} | {:.3} | {:.3} | {:.2} | {rows} |",
            took.as_secs_f64(),
            duck_secs,
            took.as_secs_f64() / duck_secs
        );
    }
    let first = fill("SELECT count(*) FROM logs WHERE log_date = DATE '{day}'");
    let t = Instant::now();
    ours(&query, &archive, &first, 1)?;
    println!(
        "time to first answer, one day (`{first}`), a fresh infra-query process: {:.3} s",
        t.elapsed().as_secs_f64()
    );
    if mismatches > 0 {
        bail!("{mismatches} queries gave different answers");
    }
    Ok(())
}
