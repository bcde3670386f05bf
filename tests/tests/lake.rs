//! The archive as a data-lake table: what other engines and older archives see.
//!
//! - readers: an archive written by `infra-collector import` (several hosts and days) is
//!   read with no reader option by DuckDB, pyarrow, polars and Spark 4, and the five
//!   queries of the suite (`tests/lake/suite.py`) answer exactly as in infra-query;
//! - evolution: the committed schema version 1 archive (`tests/fixtures/archive-v1/`,
//!   written by the collector before version 2) plus version 2 files in the same
//!   partitions answer the suite the same in infra-query and DuckDB, and the time-range
//!   answer matches the one computed from the input lines themselves;
//! - migrate: `infra-collector migrate` rewrites the version 1 files under their own names
//!   and every answer stays the same, with no row lost or doubled; afterwards DuckDB needs
//!   no cast at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use infralog_tests::{bin, loghub, query_csv, repo_root, run_ok};

/// The time range of q4, inclusive at both ends. Lines of the RFC 5424 inputs sit at
/// …000000999, …000001000, …000002500, …000002999, …000003000 ns around it, so a reader
/// that compares nanoseconds or rounds them answers differently from one that truncates.
const LO: &str = "2026-11-22T10:00:00.000001Z";
const HI: &str = "2026-11-22T10:00:00.000002Z";
const ZONE_KEY: &str = "req@32473.zone";

type Answers = BTreeMap<String, Vec<Vec<String>>>;

fn lake_dir() -> PathBuf {
    repo_root().join("tests/fixtures/lake")
}

fn import(archive: &Path, hostname: &str, files: &[PathBuf]) {
    run_ok(
        Command::new(bin("infra-collector"))
            .arg("import")
            .arg("--archive")
            .arg(archive)
            .args(["--hostname", hostname, "--utc-offset", "Z"])
            .args(files),
    );
}

/// The suite in infra-query, same queries as `suite.py`.
fn infra_query_suite(archive: &Path) -> Answers {
    let queries = [
        (
            "q1",
            "SELECT hostname, CAST(log_date AS VARCHAR), count(*) FROM logs GROUP BY 1, 2"
                .to_string(),
        ),
        (
            "q2",
            "SELECT priority, severity, count(*) FROM logs GROUP BY 1, 2".to_string(),
        ),
        (
            "q3",
            "SELECT process_name, count(*) AS n FROM logs WHERE process_name IS NOT NULL \
             GROUP BY 1 ORDER BY n DESC, process_name LIMIT 10"
                .to_string(),
        ),
        (
            "q4",
            format!(
                "SELECT hostname, count(*), count(*) FILTER (WHERE priority <= 3), \
                 CAST(min(timestamp) AS BIGINT), CAST(max(timestamp) AS BIGINT) FROM logs \
                 WHERE timestamp >= '{LO}' AND timestamp <= '{HI}' GROUP BY 1"
            ),
        ),
        (
            "q5",
            format!("SELECT extra['{ZONE_KEY}'], count(*) FROM logs GROUP BY 1"),
        ),
    ];
    queries
        .iter()
        .map(|(name, sql)| (name.to_string(), query_csv(archive, sql)))
        .collect()
}

fn engine_suite(engine: &str, archive: &Path) -> Answers {
    let out = run_ok(
        Command::new("python3")
            .arg(repo_root().join("tests/lake/suite.py"))
            .arg(engine)
            .arg(archive)
            .args([LO, HI]),
    );
    serde_json::from_slice(&out.stdout).expect("suite.py prints JSON")
}

/// Rows in a canonical order, except for q3 whose order is part of the answer.
fn canonical(mut a: Answers) -> Answers {
    for (name, rows) in a.iter_mut() {
        if name != "q3" {
            rows.sort();
        }
    }
    a
}

fn assert_same(engine: &str, got: Answers, want: &Answers) {
    let got = canonical(got);
    for (name, rows) in want {
        assert_eq!(
            got.get(name),
            Some(rows),
            "{engine} answers {name} differently from infra-query"
        );
    }
    assert_eq!(got.len(), want.len());
}

/// The total of the last column of q1 (rows per host and day): every row of the table.
fn total_rows(a: &Answers) -> u64 {
    a["q1"].iter().map(|r| r[2].parse::<u64>().unwrap()).sum()
}

fn lines_in(path: &Path) -> u64 {
    std::fs::read_to_string(path).unwrap().lines().count() as u64
}

/// Microseconds since the epoch of an RFC 3339 UTC stamp `YYYY-MM-DDThh:mm:ss.fffffffffZ`,
/// the fraction truncated to microseconds (the archive's rule).
fn stamp_micros(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19);
    let frac = s[20..s.len() - 1].to_string() + "000000000";
    secs * 1_000_000 + frac[..6].parse::<i64>().unwrap()
}

/// q4 computed from RFC 5424 input lines: (host, rows, rows with priority <= 3).
fn q4_from_inputs(inputs: &[PathBuf]) -> BTreeMap<String, (u64, u64)> {
    let (lo, hi) = (stamp_micros(LO), stamp_micros(HI));
    let mut out = BTreeMap::new();
    for path in inputs {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let Some(rest) = line.strip_prefix('<') else {
                continue;
            };
            let (pri, rest) = rest.split_once(">1 ").unwrap();
            let mut f = rest.split(' ');
            let (stamp, host) = (f.next().unwrap(), f.next().unwrap());
            let t = stamp_micros(stamp);
            if t >= lo && t <= hi {
                let e = out.entry(host.to_string()).or_insert((0, 0));
                e.0 += 1;
                e.1 += u64::from(pri.parse::<u64>().unwrap() % 8 <= 3);
            }
        }
    }
    out
}

fn q4_counts(a: &Answers) -> BTreeMap<String, (u64, u64)> {
    a["q4"]
        .iter()
        .map(|r| (r[0].clone(), (r[1].parse().unwrap(), r[2].parse().unwrap())))
        .collect()
}

/// A multi-host archive written by today's collector: loghub's Linux log as host `combo`,
/// and the two RFC 5424 inputs (hosts web-1, db-1, cache-1, two days each).
fn generated_archive() -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    import(dir.path(), "combo", &[loghub("Linux/Linux_2k.log")]);
    let inputs = [
        lake_dir().join("v1-input.log"),
        lake_dir().join("v2-input.log"),
    ];
    import(dir.path(), "unparsed", &inputs);
    let lines =
        lines_in(&loghub("Linux/Linux_2k.log")) + inputs.iter().map(|p| lines_in(p)).sum::<u64>();
    (dir, lines)
}

#[test]
fn duckdb_pyarrow_polars_read_the_archive_as_infra_query_does() {
    let (dir, lines) = generated_archive();
    let want = canonical(infra_query_suite(dir.path()));
    assert_eq!(total_rows(&want), lines, "one row per input line");
    let inputs = [
        lake_dir().join("v1-input.log"),
        lake_dir().join("v2-input.log"),
    ];
    assert_eq!(q4_counts(&want), q4_from_inputs(&inputs));
    assert!(want["q5"].len() >= 4, "{:?}", want["q5"]);
    for engine in ["duckdb", "pyarrow", "polars"] {
        assert_same(engine, engine_suite(engine, dir.path()), &want);
    }
}

/// Spark 4 reads the archive with no option (`spark.read.parquet(dir)`): version 1 files
/// made it fail with `Illegal Parquet type: INT64 (TIMESTAMP(NANOS,true))`.
#[test]
fn spark_reads_the_archive_as_infra_query_does() {
    let (dir, _) = generated_archive();
    let want = canonical(infra_query_suite(dir.path()));
    assert_same("spark", engine_suite("spark", dir.path()), &want);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// (relative path, schema version) of every file under `logs/`, and every other file name.
fn files_and_versions(root: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let script = format!(
        r#"
import json, os, pyarrow.parquet as pq
root = {root:?}
files, other = {{}}, []
for d, _, names in os.walk(os.path.join(root, "logs")):
    for n in names:
        p = os.path.join(d, n)
        if n.endswith(".parquet"):
            md = pq.read_metadata(p).metadata
            files[os.path.relpath(p, root)] = md[b"infralog.schema_version"].decode()
        else:
            other.append(n)
print(json.dumps([files, other]))
"#,
        root = root.display().to_string()
    );
    serde_json::from_str(&infralog_tests::python(&script)).unwrap()
}

#[test]
fn v1_and_v2_files_answer_alike_in_infra_query_and_duckdb_before_and_after_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path();
    copy_dir(
        &repo_root().join("tests/fixtures/archive-v1/logs"),
        &archive.join("logs"),
    );
    // Version 2 files next to the version 1 files of web-1, and a host of its own.
    let v2_input = lake_dir().join("v2-input.log");
    import(archive, "unparsed-v2", std::slice::from_ref(&v2_input));

    let (files, _) = files_and_versions(archive);
    let v1_files = files.values().filter(|v| *v == "1").count();
    let v2_files = files.values().filter(|v| *v == "2").count();
    assert_eq!(v1_files, 12, "{files:?}");
    assert!(v2_files >= 5, "{files:?}");

    let want = canonical(infra_query_suite(archive));
    // 150 loghub lines and the RFC 5424 lines went into version 1 files.
    let lines = 150 + lines_in(&lake_dir().join("v1-input.log")) + lines_in(&v2_input);
    assert_eq!(total_rows(&want), lines);
    let inputs = [lake_dir().join("v1-input.log"), v2_input.clone()];
    assert_eq!(q4_counts(&want), q4_from_inputs(&inputs));
    // DuckDB reads version 1 files through a view that declares the current types.
    assert_same(
        "duckdb (cast view)",
        engine_suite("duckdb-cast", archive),
        &want,
    );

    // Dry run: says what it would do, changes nothing.
    let out = run_ok(
        Command::new(bin("infra-collector"))
            .args(["migrate", "--dry-run", "--archive"])
            .arg(archive),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("would rewrite {v1_files} file(s)")),
        "{said}"
    );
    assert_eq!(files_and_versions(archive).0, files);

    let out = run_ok(
        Command::new(bin("infra-collector"))
            .args(["migrate", "--archive"])
            .arg(archive),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("rewrote {v1_files} file(s)")),
        "{said}"
    );
    let (after, other) = files_and_versions(archive);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        files.keys().collect::<Vec<_>>(),
        "same file names"
    );
    assert!(after.values().all(|v| v == "2"), "{after:?}");
    assert!(other.is_empty(), "no temporary file left: {other:?}");

    // Same answers, nothing lost or doubled; DuckDB now reads the files as they are.
    assert_eq!(canonical(infra_query_suite(archive)), want);
    assert_same("duckdb", engine_suite("duckdb", archive), &want);

    let again = run_ok(
        Command::new(bin("infra-collector"))
            .args(["migrate", "--archive"])
            .arg(archive),
    );
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("rewrote 0 file(s)"), "{said}");
}
