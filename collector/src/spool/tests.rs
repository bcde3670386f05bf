use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::archive::{Archive, ArchiverOptions};
use crate::batch::{LogBatchBuilder, Row};
use crate::chunk::{Checkpoint, Chunk};
use crate::pipeline::Pipeline;
use crate::time::NANOS_PER_SEC;

const DAY: i64 = 86_400 * NANOS_PER_SEC;

fn batch(rows: &[(&str, i64, &str)]) -> RecordBatch {
    let mut b = LogBatchBuilder::new(rows.len());
    for (host, ts, msg) in rows {
        b.append(
            &Row {
                timestamp_ns: *ts,
                hostname: host.as_bytes(),
                source: "file",
                message: msg.as_bytes(),
                ..Row::default()
            },
            0,
            |_| {},
        );
    }
    b.finish()
}

fn chunk(rows: &[(&str, i64, &str)], cp: Option<(&str, &str)>) -> Chunk {
    Chunk {
        batch: batch(rows),
        checkpoint: cp.map(|(k, v)| Checkpoint {
            key: k.into(),
            value: v.into(),
        }),
    }
}

fn opts(dir: &Path) -> SpoolOptions {
    SpoolOptions {
        dir: dir.join("spool"),
        ..SpoolOptions::default()
    }
}

fn start(dir: &Path, o: SpoolOptions) -> Pipeline {
    let archive = Archive::open(dir.join("archive").to_str().unwrap()).unwrap();
    Pipeline::start(
        o,
        archive,
        ArchiverOptions::default(),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap()
}

/// Every archived message, sorted, with the object names.
fn archived(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut msgs = Vec::new();
    let mut files = Vec::new();
    let mut stack = vec![dir.join("archive/logs")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                files.push(
                    p.strip_prefix(dir.join("archive"))
                        .unwrap()
                        .display()
                        .to_string(),
                );
                let f = std::fs::File::open(&p).unwrap();
                for b in ParquetRecordBatchReaderBuilder::try_new(f)
                    .unwrap()
                    .build()
                    .unwrap()
                {
                    let b = b.unwrap();
                    let m = b.column_by_name("message").unwrap().as_string::<i32>();
                    msgs.extend(m.iter().map(|s| s.unwrap().to_string()));
                }
            }
        }
    }
    msgs.sort();
    files.sort();
    (msgs, files)
}

#[test]
fn rows_are_archived_and_positions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(dir.path(), opts(dir.path()));
    assert!(p.checkpoints.all().is_empty());
    p.chunks
        .send(chunk(
            &[("a", 1, "one"), ("b", DAY, "two")],
            Some(("f", "10")),
        ))
        .unwrap();
    p.chunks
        .send(chunk(&[("a", 2, "three")], Some(("f", "20"))))
        .unwrap();
    p.chunks.send(chunk(&[], Some(("k", "x 5")))).unwrap();
    let report = p.finish().unwrap();
    assert_eq!(report.rows, 3);
    assert_eq!(report.files, 2);
    let (msgs, files) = archived(dir.path());
    assert_eq!(msgs, ["one", "three", "two"]);
    let instance = std::fs::read_to_string(dir.path().join("spool/instance")).unwrap();
    assert_eq!(
        files,
        [
            format!(
                "logs/hostname=a/log_date=1970-01-01/{}-0000000000000000.parquet",
                instance.trim()
            ),
            format!(
                "logs/hostname=b/log_date=1970-01-02/{}-0000000000000000.parquet",
                instance.trim()
            ),
        ]
    );

    // Only the open segment with the checkpoint snapshot is left, and it is enough.
    let left = list_segments(&dir.path().join("spool")).unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    let p = start(dir.path(), opts(dir.path()));
    assert_eq!(p.checkpoints.load("f").unwrap().as_deref(), Some("20"));
    assert_eq!(p.checkpoints.load("k").unwrap().as_deref(), Some("x 5"));
    // An empty value forgets a key.
    p.chunks.send(chunk(&[], Some(("k", "")))).unwrap();
    p.finish().unwrap();
    let p = start(dir.path(), opts(dir.path()));
    assert_eq!(p.checkpoints.load("k").unwrap(), None);
    assert_eq!(p.checkpoints.load("f").unwrap().as_deref(), Some("20"));
    p.finish().unwrap();
    // Sequence numbers are never reused, so no object name is ever written twice.
    let (msgs, _) = archived(dir.path());
    assert_eq!(msgs.len(), 3);
}

#[test]
fn a_second_collector_cannot_open_the_same_spool() {
    let dir = tempfile::tempdir().unwrap();
    let p = start(dir.path(), opts(dir.path()));
    let err = Spool::open(opts(dir.path())).err().unwrap().to_string();
    assert!(err.contains("in use by another infra-collector"), "{err}");
    p.finish().unwrap();
    Spool::open(opts(dir.path())).unwrap();
}

/// Writes segments as a crashed collector would have left them: sealed ones, and an open
/// one whose last write was torn.
fn crashed_spool(dir: &Path) -> Vec<usize> {
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let mut sealed = Vec::new();
    record::encode(&[], |_| Ok(()), &mut sealed).unwrap();
    let mut starts = Vec::new();
    for i in 0..3 {
        starts.push(sealed.len());
        let msg = format!("s{i}");
        let v = format!("{i}");
        let b = batch(&[("a", i, &msg)]);
        record::encode(&[("f", &v)], |out| rows::append(&b, out), &mut sealed).unwrap();
    }
    starts.push(sealed.len());
    std::fs::write(segment_path(&spool, 4, true), &sealed).unwrap();
    let mut open = Vec::new();
    record::encode(&[("f", "2")], |_| Ok(()), &mut open).unwrap();
    let b3 = batch(&[("a", 3, "o3")]);
    record::encode(&[("f", "3")], |out| rows::append(&b3, out), &mut open).unwrap();
    let whole = open.len();
    let b4 = batch(&[("a", 4, "o4")]);
    record::encode(&[("f", "4")], |out| rows::append(&b4, out), &mut open).unwrap();
    open.truncate(whole + 30);
    std::fs::write(segment_path(&spool, 5, false), &open).unwrap();
    starts
}

#[test]
fn recovery_cuts_a_torn_tail_and_keeps_every_acknowledged_row() {
    let dir = tempfile::tempdir().unwrap();
    crashed_spool(dir.path());
    let p = start(dir.path(), opts(dir.path()));
    assert_eq!(p.recovery.torn_bytes, 30);
    assert_eq!(p.recovery.damaged_bytes, 0);
    // The torn record's position did not become durable: the source re-reads from 3.
    assert_eq!(p.checkpoints.load("f").unwrap().as_deref(), Some("3"));
    let report = p.finish().unwrap();
    assert_eq!(report.rows, 4);
    let (msgs, _) = archived(dir.path());
    assert_eq!(msgs, ["o3", "s0", "s1", "s2"]);
    assert_eq!(list_segments(&dir.path().join("spool")).unwrap().len(), 1);
}

#[test]
fn a_flipped_byte_loses_only_its_record_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let starts = crashed_spool(dir.path());
    let seg = segment_path(&dir.path().join("spool"), 4, true);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[starts[1] + 50] ^= 1;
    std::fs::write(&seg, &bytes).unwrap();
    let status = inspect::inspect(&dir.path().join("spool")).unwrap();
    assert_eq!(status.problems(), 1);
    assert!(status.render(Path::new("x")).contains("damaged bytes"));
    let p = start(dir.path(), opts(dir.path()));
    assert_eq!(
        p.recovery.damaged_bytes as usize,
        starts[2] - starts[1],
        "exactly the damaged record"
    );
    p.finish().unwrap();
    let (msgs, _) = archived(dir.path());
    assert_eq!(msgs, ["o3", "s0", "s2"]);
}

#[test]
fn archiving_a_segment_twice_overwrites_instead_of_doubling() {
    let dir = tempfile::tempdir().unwrap();
    crashed_spool(dir.path());
    let seg = segment_path(&dir.path().join("spool"), 4, true);
    let copy = std::fs::read(&seg).unwrap();
    start(dir.path(), opts(dir.path())).finish().unwrap();
    let (first, files) = archived(dir.path());
    // A crash after the upload and before the delete: the segment is archived again.
    std::fs::write(&seg, copy).unwrap();
    start(dir.path(), opts(dir.path())).finish().unwrap();
    let (again, files_again) = archived(dir.path());
    assert_eq!(first, again);
    assert_eq!(files, files_again);
}

#[test]
fn segments_seal_by_size_and_the_full_spool_holds_sources_back() {
    let dir = tempfile::tempdir().unwrap();
    let o = SpoolOptions {
        segment_bytes: 4096,
        max_bytes: 16 * 1024,
        seal_after: Duration::from_secs(3600),
        ..opts(dir.path())
    };
    // The archive is a file, not a directory: every upload fails until it is removed.
    let archive_dir = dir.path().join("archive");
    std::fs::create_dir_all(&archive_dir).unwrap();
    std::fs::write(archive_dir.join("logs"), b"in the way").unwrap();
    let p = start(dir.path(), o);
    let tx = p.chunks.clone();
    let sender = std::thread::spawn(move || {
        for i in 0..200 {
            let msg = format!("m{i:04}");
            tx.send(chunk(&[("a", i, &msg)], Some(("f", &i.to_string()))))
                .unwrap();
        }
    });
    // The spool fills and stays within its limit while the archive is down.
    let usage = || -> u64 {
        list_segments(&dir.path().join("spool"))
            .unwrap()
            .iter()
            .map(|(_, _, p)| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while p.spool_stats.full_waits.load(Ordering::Relaxed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the spool never filled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!sender.is_finished(), "the source is held back");
    assert!(
        usage() <= 16 * 1024 + 4096,
        "spool over its limit: {}",
        usage()
    );
    // The archive comes back: everything drains.
    std::fs::remove_file(archive_dir.join("logs")).unwrap();
    sender.join().unwrap();
    let report = p.finish().unwrap();
    assert_eq!(report.rows, 200);
    let (msgs, _) = archived(dir.path());
    let expect: Vec<String> = (0..200).map(|i| format!("m{i:04}")).collect();
    assert_eq!(msgs, expect);
}

#[test]
fn an_unreadable_segment_is_set_aside_and_the_rest_archived() {
    let dir = tempfile::tempdir().unwrap();
    crashed_spool(dir.path());
    // Intact framing, rows that are not Arrow IPC: another version's record, say.
    let mut bad = Vec::new();
    let mut payload = 0u16.to_le_bytes().to_vec();
    payload.extend_from_slice(b"not arrow at all");
    bad.extend_from_slice(&record::MAGIC);
    bad.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bad.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bad.extend_from_slice(&payload);
    let spool = dir.path().join("spool");
    std::fs::write(segment_path(&spool, 2, true), &bad).unwrap();
    let p = start(dir.path(), opts(dir.path()));
    let stats = p.archiver_stats.clone();
    p.finish().unwrap();
    assert_eq!(stats.quarantined.load(Ordering::Relaxed), 1);
    assert!(spool.join("0000000000000002.bad").exists());
    let (msgs, _) = archived(dir.path());
    assert_eq!(msgs, ["o3", "s0", "s1", "s2"]);
}

#[test]
fn rows_read_back_from_the_segment_are_archived_as_rows_handed_over() {
    let rows: Vec<Vec<(String, i64, String)>> = (0..40)
        .map(|c| {
            (0..50)
                .map(|i| {
                    (
                        format!("h{}", i % 3),
                        (c * 50 + i) * 1_000_000,
                        format!("m{c}-{i}"),
                    )
                })
                .collect()
        })
        .collect();
    let mut results = Vec::new();
    for handoff_bytes in [64 << 20, 0, 20_000] {
        let dir = tempfile::tempdir().unwrap();
        let o = SpoolOptions {
            handoff_bytes,
            segment_bytes: 60_000,
            ..opts(dir.path())
        };
        let p = start(dir.path(), o);
        let stats = p.archiver_stats.clone();
        for (i, c) in rows.iter().enumerate() {
            let r: Vec<(&str, i64, &str)> = c
                .iter()
                .map(|(h, t, m)| (h.as_str(), *t, m.as_str()))
                .collect();
            let v = i.to_string();
            p.chunks.send(chunk(&r, Some(("f", &v)))).unwrap();
        }
        let report = p.finish().unwrap();
        assert_eq!(report.rows, 2000);
        let read_back = stats
            .records_read_back
            .load(std::sync::atomic::Ordering::Relaxed);
        match handoff_bytes {
            0 => assert!(read_back >= 40, "every record read back: {read_back}"),
            20_000 => assert!(read_back > 0, "some records read back"),
            _ => assert_eq!(read_back, 0),
        }
        assert!(report.segments > 2, "several segments: {report:?}");
        let (msgs, files) = archived(dir.path());
        let names: Vec<String> = files
            .iter()
            .map(|f| f.rsplit('-').next().unwrap().to_string())
            .collect();
        results.push((msgs, names));
    }
    assert_eq!(results[0].0.len(), 2000);
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}
