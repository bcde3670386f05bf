//! The hourly `stats` table: what the archiver and compaction write must add up to exactly
//! what the `logs` table holds, per hour, host, source, process and severity — through
//! infra-query and through DuckDB — after several imports (several files per partition)
//! and after compaction merged them.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use infralog_tests::{bin, collector_config, python, query_csv, run_ok};

/// RFC 5424 lines over 3 hosts, 5 processes, all severities and about 60 hours (three
/// UTC days), in a deterministic shuffle; messages of varied length, some non-ASCII.
fn corpus(lines: usize, seed: u64) -> String {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = String::new();
    for i in 0..lines {
        let r = next();
        let host = ["alpha", "beta", "gamma"][(r % 3) as usize];
        let proc = ["sshd", "cron", "nginx", "kernel", "app"][((r >> 8) % 5) as usize];
        let pri = 8 + ((r >> 16) % 8);
        let secs = (r >> 24) % (60 * 3600);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let (day, hour) = (20 + h / 24, h % 24);
        let pad = "é".repeat(((r >> 40) % 7) as usize);
        writeln!(
            out,
            "<{pri}>1 2026-10-{day:02}T{hour:02}:{m:02}:{s:02}.{:06}Z {host} {proc} {} - - line {i} {pad}",
            r % 1_000_000,
            1000 + r % 50
        )
        .unwrap();
    }
    out
}

const FROM_LOGS: &str = "SELECT date_trunc('hour', timestamp) AS hour, hostname, source, \
     process_name, severity, count(*) AS lines, sum(octet_length(message)) AS bytes \
     FROM logs GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5";
const FROM_STATS: &str = "SELECT hour, hostname, source, process_name, severity, \
     sum(lines) AS lines, sum(bytes) AS bytes \
     FROM stats GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5";

/// A collector configuration with one-megabyte spool segments (import seals at half the
/// spool's size): each import archives several segments, so a partition holds several
/// files (and stats keys repeat across files) until compaction.
fn small_segments_config(dir: &Path) -> std::path::PathBuf {
    let config = collector_config(dir, "test-host", "");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[spool]\nsegment_mb = 1\nmax_mb = 2\n");
    std::fs::write(&config, text).unwrap();
    config
}

fn import(config: &Path, archive: &Path, file: &Path, compact: bool) {
    let mut cmd = Command::new(bin("infra-collector"));
    cmd.args(["import", "--format", "rfc5424", "--config"])
        .arg(config)
        .arg("--archive")
        .arg(archive);
    if !compact {
        cmd.arg("--no-compact");
    }
    run_ok(cmd.arg(file));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn assert_stats_match_logs(archive: &Path, expected_lines: usize) {
    let logs = query_csv(archive, FROM_LOGS);
    let stats = query_csv(archive, FROM_STATS);
    let total: u64 = logs.iter().map(|r| r[5].parse::<u64>().unwrap()).sum();
    assert_eq!(total, expected_lines as u64);
    assert!(
        logs.len() > 100,
        "the corpus spreads over many keys: {}",
        logs.len()
    );
    assert_eq!(stats, logs, "stats differ from a GROUP BY over logs");
}

#[test]
fn stats_add_up_to_the_logs_through_imports_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let config = small_segments_config(dir.path());

    let first = dir.path().join("first.log");
    std::fs::write(&first, corpus(40_000, 7)).unwrap();
    import(&config, &archive, &first, false);
    let stats_files = walk(&archive.join("stats")).len();
    assert_eq!(
        stats_files,
        walk(&archive.join("logs")).len(),
        "one stats file beside each logs file"
    );
    assert!(
        stats_files > 9,
        "several files per partition: {stats_files}"
    );
    assert_stats_match_logs(&archive, 40_000);

    // A second import (another spool instance) into the same partitions, compacted at
    // its end; the first import's files stay as they are.
    let second = dir.path().join("second.log");
    std::fs::write(&second, corpus(30_000, 11)).unwrap();
    import(&config, &archive, &second, true);
    assert_stats_match_logs(&archive, 70_000);

    let partitions = std::fs::read_dir(archive.join("stats")).unwrap().count();
    assert_eq!(partitions, 3, "one hostname directory per host");

    // DuckDB reads the stats table as plain hive-partitioned Parquet.
    let script = format!(
        r#"
import duckdb
print(duckdb.sql("""
    SELECT sum(lines), sum(bytes), count(DISTINCT hostname), min(log_date)::VARCHAR
    FROM read_parquet('{}/stats/**/*.parquet', hive_partitioning = true)""").fetchall()[0])
"#,
        archive.display()
    );
    let duck = python(&script);
    let logs_bytes = query_csv(&archive, "SELECT sum(octet_length(message)) FROM logs");
    assert_eq!(
        duck.trim(),
        format!("(70000, {}, 3, '2026-10-20')", logs_bytes[0][0]),
        "DuckDB over stats/"
    );
}

#[test]
fn compaction_merges_stats_files_with_their_logs_files() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let config = small_segments_config(dir.path());
    let log = dir.path().join("a.log");
    std::fs::write(&log, corpus(40_000, 3)).unwrap();
    import(&config, &archive, &log, true);
    // Every host-day is one file in each table, and the merged stats add up.
    let logs_files = walk(&archive.join("logs"));
    let stats_files = walk(&archive.join("stats"));
    assert_eq!(logs_files.len(), 9, "3 hosts × 3 days: {logs_files:?}");
    let names = |v: &[std::path::PathBuf]| {
        let mut n: Vec<String> = v
            .iter()
            .map(|p| {
                p.strip_prefix(&archive)
                    .unwrap()
                    .iter()
                    .skip(1)
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&stats_files), names(&logs_files));
    assert_stats_match_logs(&archive, 40_000);
}
