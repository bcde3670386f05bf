//! Compaction end to end: a host-day of many small files becomes one, and infra-query never
//! counts a row twice or misses one — while compaction runs, and in the state an
//! interrupted compaction leaves (merged file written, inputs not yet deleted).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use infralog_tests::{bin, query_csv, run_ok};

const LINES: usize = 30_000;

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn count(archive: &Path) -> u64 {
    query_csv(archive, "SELECT count(*) FROM logs")[0][0]
        .parse()
        .unwrap()
}

/// An archive of LINES lines over two hosts and `days` closed days, tailed by the
/// collector in small segments so that each host-day is many files; returns (archive,
/// config).
fn many_small_files(dir: &Path, days: usize) -> (PathBuf, PathBuf) {
    let input = dir.join("app.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    // Days that are over, two hosts.
    for i in 0..LINES {
        writeln!(
            f,
            "<14>1 2026-11-{:02}T{:02}:{:02}:00Z host-{} app {} - - event {i:06}",
            10 + i % days,
            i / 60 % 24,
            i % 60,
            (i / 7) % 2,
            i % 100
        )
        .unwrap();
    }
    drop(f);
    let archive = dir.join("archive");
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nstate_dir = {:?}\nchunk_rows = 500\nchunk_max_age_ms = 50\n\n\
             [archive]\npath = {:?}\n\n[spool]\nsegment_mb = 1\nmax_mb = 64\nseal_secs = 1\n\n\
             [retention]\ndays = 0\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
             [sources.journald]\nenabled = false\n\n\
             [sources.file]\nenabled = true\n\n[[sources.file.inputs]]\npaths = [{:?}]\n\
             format = \"syslog\"\n\n[sources.containers]\ndocker = false\ncri = false\n",
            dir.join("state").display().to_string(),
            archive.display().to_string(),
            input.display().to_string()
        ),
    )
    .unwrap();
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["run", "--once", "--config"])
            .arg(&config),
    );
    (archive, config)
}

#[test]
fn readers_see_every_row_once_during_and_after_an_interrupted_compaction() {
    let dir = tempfile::tempdir().unwrap();
    // Two days: four partitions.
    let (archive, config) = many_small_files(dir.path(), 2);
    let before = parquet_files(&archive.join("logs"));
    assert!(
        before.len() >= 12,
        "several segment files per partition: {before:?}"
    );
    assert_eq!(count(&archive), LINES as u64);
    let saved: Vec<(PathBuf, Vec<u8>)> = before
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();

    // A reader querying in a loop while compaction runs never sees a wrong count.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (archive, stop) = (archive.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                seen.push(count(&archive));
            }
            seen
        })
    };
    let out = run_ok(
        Command::new(bin("infra-collector"))
            .args(["compact", "--config"])
            .arg(&config),
    );
    stop.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.contains("compacted 4 partition(s)"), "{out}");
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|&n| n == LINES as u64), "{seen:?}");
    let after = parquet_files(&archive.join("logs"));
    assert_eq!(after.len(), 4, "one file per host-day: {after:?}");
    assert_eq!(count(&archive), LINES as u64);

    // As if compaction had been killed after writing the merged files: the inputs are back.
    for (p, bytes) in &saved {
        std::fs::write(p, bytes).unwrap();
    }
    assert_eq!(parquet_files(&archive.join("logs")).len(), before.len() + 4);
    assert_eq!(
        count(&archive),
        LINES as u64,
        "infra-query skips what a merged file holds"
    );
    let n: u64 = query_csv(
        &archive,
        "SELECT count(DISTINCT message) FROM logs WHERE log_date = '2026-11-10'",
    )[0][0]
        .parse()
        .unwrap();
    assert_eq!(n, (LINES / 2) as u64);
    // The next run deletes the leftovers.
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["compact", "--config"])
            .arg(&config),
    );
    assert_eq!(parquet_files(&archive.join("logs")), after);
    assert_eq!(count(&archive), LINES as u64);
}

fn stats_lines(archive: &Path) -> u64 {
    query_csv(archive, "SELECT sum(lines) FROM stats")[0][0]
        .parse()
        .unwrap()
}

/// `kill -9` of `infra-collector compact` at moments spread over its run: after each kill
/// infra-query still counts every row once in `logs` and in `stats`, and a final run
/// leaves one file per host-day that a plain reader (DuckDB) counts right too.
#[test]
fn kill_9_during_compaction_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Eight days: sixteen partitions, so that compaction runs long enough to be killed
    // between partitions and between writing a merged file and deleting its inputs.
    let (archive, config) = many_small_files(dir.path(), 8);
    let initial = parquet_files(&archive.join("logs")).len();
    assert!(initial >= 32, "several files per partition: {initial}");
    let (mut killed, mut interrupted) = (0, 0);
    for delay_ms in [20, 60, 100, 150, 200, 300, 450, 700] {
        let mut child = Command::new(bin("infra-collector"))
            .args(["compact", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        let files = parquet_files(&archive.join("logs")).len();
        interrupted += (files != initial && files != 16) as usize;
        assert_eq!(
            count(&archive),
            LINES as u64,
            "after a kill at {delay_ms} ms"
        );
        assert_eq!(
            stats_lines(&archive),
            LINES as u64,
            "stats after {delay_ms} ms"
        );
    }
    assert!(
        killed >= 3,
        "compaction was killed while it ran ({killed} times)"
    );
    assert!(interrupted >= 1, "a kill left a partly compacted archive");
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["compact", "--config"])
            .arg(&config),
    );
    assert_eq!(parquet_files(&archive.join("logs")).len(), 16);
    assert_eq!(count(&archive), LINES as u64);
    let plain = infralog_tests::python(&format!(
        "import duckdb\nprint(duckdb.sql(\"SELECT count(*), count(DISTINCT message) FROM \
         read_parquet('{}/logs/**/*.parquet', hive_partitioning=true)\").fetchall()[0])",
        archive.display()
    ));
    assert_eq!(plain.trim(), format!("({LINES}, {LINES})"));
}
