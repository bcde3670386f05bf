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

#[test]
fn readers_see_every_row_once_during_and_after_an_interrupted_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("app.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    // Two days that are over, two hosts: four partitions.
    for i in 0..LINES {
        writeln!(
            f,
            "<14>1 2026-11-{:02}T{:02}:{:02}:00Z host-{} app {} - - event {i:06}",
            20 + i % 2,
            i / 60 % 24,
            i % 60,
            (i / 7) % 2,
            i % 100
        )
        .unwrap();
    }
    drop(f);
    let archive = dir.path().join("archive");
    let config = dir.path().join("c.toml");
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
            dir.path().join("state").display().to_string(),
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
        "SELECT count(DISTINCT message) FROM logs WHERE log_date = '2026-11-20'",
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
