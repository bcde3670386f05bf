use arrow::datatypes::TimestampMicrosecondType;

use super::*;
use crate::archive::parquet::encode;
use crate::batch::{LogBatchBuilder, Row};

const I: &str = "00000000000000aa";
const OTHER: &str = "00000000000000bb";
const DIR: &str = "logs/hostname=h/log_date=2026-11-28";
const TODAY: i32 = 20_786; // 2026-11-29
const DAY_NS: i64 = 20_785 * 86_400 * 1_000_000_000;

fn file(ts: &[i64], label: &str) -> Vec<u8> {
    let mut b = LogBatchBuilder::new(ts.len());
    for (i, t) in ts.iter().enumerate() {
        let msg = format!("{label}/{i}");
        b.append(
            &Row {
                timestamp_ns: DAY_NS + t * 1000,
                hostname: b"h",
                source: "file",
                message: msg.as_bytes(),
                ..Row::default()
            },
            0,
            |_| {},
        );
    }
    encode(&[b.finish()]).unwrap()
}

fn seg(instance: &str, seq: u64) -> String {
    format!("{instance}-{seq:016x}.parquet")
}

/// (file name, messages in file order) of every file a reader following the rule reads.
fn read_as_reader(archive: &Archive) -> Vec<(String, Vec<(i64, String)>)> {
    let names: Vec<String> = archive
        .list_files(DIR)
        .unwrap()
        .into_iter()
        .map(|(p, _)| p.rsplit('/').next().unwrap().to_string())
        .collect();
    let hidden = covered(names.iter().map(String::as_str));
    let mut out = Vec::new();
    for n in names.iter().filter(|n| !hidden.contains(n.as_str())) {
        let bytes = archive.get(&format!("{DIR}/{n}")).unwrap();
        let mut rows = Vec::new();
        for b in ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
        {
            let b = b.unwrap();
            let ts = b
                .column_by_name("timestamp")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            let m = b.column_by_name("message").unwrap().as_string::<i32>();
            for i in 0..b.num_rows() {
                rows.push((ts.value(i) - DAY_NS / 1000, m.value(i).to_string()));
            }
        }
        out.push((n.clone(), rows));
    }
    out.sort();
    out
}

fn all_rows(archive: &Archive) -> Vec<String> {
    let mut rows: Vec<String> = read_as_reader(archive)
        .into_iter()
        .flat_map(|(_, r)| r.into_iter().map(|(_, m)| m))
        .collect();
    rows.sort();
    rows
}

#[test]
fn names_and_the_readers_rule() {
    assert_eq!(
        parse_name(&seg(I, 5)),
        Some(Range {
            instance: I.into(),
            first: 5,
            last: 5
        })
    );
    let merged = format!("{I}-{:016x}-{:016x}.parquet", 2, 7);
    assert_eq!(parse_name(&merged).map(|r| (r.first, r.last)), Some((2, 7)));
    for bad in [
        "x.parquet",
        "18ec9b8e6c29af20-428b-00003.parquet",
        &format!("{I}-{:016x}-{:016x}.parquet", 7, 2),
        &format!("{I}-{:016x}.parquet.tmp", 1),
    ] {
        assert_eq!(parse_name(bad), None, "{bad}");
    }
    let names = [
        seg(I, 1),
        seg(I, 2),
        seg(I, 8),
        merged.clone(),
        seg(OTHER, 3),
    ];
    let hidden = covered(names.iter().map(String::as_str));
    let mut hidden: Vec<_> = hidden.into_iter().collect();
    hidden.sort();
    assert_eq!(hidden, [seg(I, 2)], "only what lies inside a wider range");
}

#[test]
fn a_day_that_is_over_becomes_one_sorted_file_and_nothing_else_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    // Overlapping times across segments (late lines), and equal timestamps.
    archive
        .put(&format!("{DIR}/{}", seg(I, 1)), file(&[10, 20, 30], "a"))
        .unwrap();
    archive
        .put(&format!("{DIR}/{}", seg(I, 2)), file(&[15, 20, 40], "b"))
        .unwrap();
    archive
        .put(&format!("{DIR}/{}", seg(I, 4)), file(&[5, 50], "c"))
        .unwrap();
    // Still in the spool: must stay out.
    archive
        .put(&format!("{DIR}/{}", seg(I, 9)), file(&[1], "d"))
        .unwrap();
    // Another collector's file.
    archive
        .put(&format!("{DIR}/{}", seg(OTHER, 3)), file(&[2], "e"))
        .unwrap();
    let before = all_rows(&archive);

    let report = compact(&archive, I, 9, TODAY, &CompactOptions::default()).unwrap();
    let merged = format!("{I}-{:016x}-{:016x}.parquet", 1, 4);
    assert_eq!(report.merged, [(format!("{DIR}/{merged}"), 3)]);
    assert_eq!(report.rows, 8);
    assert_eq!(all_rows(&archive), before, "no row lost or doubled");
    let files = read_as_reader(&archive);
    let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, [merged.as_str(), &seg(I, 9), &seg(OTHER, 3)]);
    assert_eq!(archive.list_files(DIR).unwrap().len(), 3, "inputs deleted");
    let order: Vec<String> = files[0].1.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(
        order,
        ["c/0", "a/0", "b/0", "a/1", "b/1", "a/2", "b/2", "c/1"],
        "sorted by time; equal times in segment order"
    );
    let meta =
        ParquetRecordBatchReaderBuilder::try_new(archive.get(&format!("{DIR}/{merged}")).unwrap())
            .unwrap();
    let kv = meta
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap();
    let from = kv.iter().find(|k| k.key == COMPACTED_FROM_KEY).unwrap();
    assert_eq!(
        from.value.as_deref(),
        Some(&*format!("{},{},{}", seg(I, 1), seg(I, 2), seg(I, 4)))
    );
    // Run again: nothing to do.
    let again = compact(&archive, I, 9, TODAY, &CompactOptions::default()).unwrap();
    assert_eq!(again, CompactReport::default());
}

#[test]
fn an_interrupted_compaction_is_invisible_to_readers_and_finished_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    for s in 1..=3 {
        archive
            .put(
                &format!("{DIR}/{}", seg(I, s)),
                file(&[s as i64], &format!("s{s}")),
            )
            .unwrap();
    }
    let before = all_rows(&archive);
    // As if the process died right after writing the merged file.
    let merged = format!("{I}-{:016x}-{:016x}.parquet", 1, 3);
    let readers: Vec<_> = (1..=3)
        .map(|s| {
            ParquetRecordBatchReaderBuilder::try_new(
                archive.get(&format!("{DIR}/{}", seg(I, s))).unwrap(),
            )
            .unwrap()
            .build()
            .unwrap()
        })
        .collect();
    let (bytes, _) = merge(readers, &["x"], &EncodeOptions::default()).unwrap();
    archive.put(&format!("{DIR}/{merged}"), bytes).unwrap();
    assert_eq!(all_rows(&archive), before, "the rule hides the inputs");
    let report = compact(&archive, I, 100, TODAY, &CompactOptions::default()).unwrap();
    assert_eq!(report.deleted, 3);
    assert!(report.merged.is_empty());
    assert_eq!(archive.list_files(DIR).unwrap().len(), 1);
    assert_eq!(all_rows(&archive), before);
}

#[test]
fn during_the_day_only_many_new_segment_files_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
    let opts = CompactOptions {
        open_day_files: 3,
        ..CompactOptions::default()
    };
    let today = TODAY - 1; // the partition's own day
    let put = |s: u64| {
        archive
            .put(
                &format!("{DIR}/{}", seg(I, s)),
                file(&[s as i64], &format!("s{s}")),
            )
            .unwrap()
    };
    put(1);
    put(2);
    assert!(
        compact(&archive, I, 100, today, &opts)
            .unwrap()
            .merged
            .is_empty()
    );
    put(3);
    let r = compact(&archive, I, 100, today, &opts).unwrap();
    assert_eq!(r.merged.len(), 1);
    put(4);
    put(5);
    assert!(
        compact(&archive, I, 100, today, &opts)
            .unwrap()
            .merged
            .is_empty(),
        "the merged file is not rewritten for two new files"
    );
    put(6);
    let r = compact(&archive, I, 100, today, &opts).unwrap();
    assert_eq!(
        r.merged,
        [(format!("{DIR}/{I}-{:016x}-{:016x}.parquet", 4, 6), 3)]
    );
    // Once the day is over, everything becomes one file.
    let r = compact(&archive, I, 100, TODAY, &opts).unwrap();
    assert_eq!(
        r.merged,
        [(format!("{DIR}/{I}-{:016x}-{:016x}.parquet", 1, 6), 2)]
    );
    let expect: Vec<String> = (1..=6).map(|s| format!("s{s}/0")).collect();
    assert_eq!(all_rows(&archive), expect);
}
