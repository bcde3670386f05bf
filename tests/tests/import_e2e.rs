//! Real syslog lines (loghub Linux_2k) imported into the archive, then read back through
//! infra-query and through DuckDB: the counts per process must match the labelled data.

use std::collections::BTreeMap;
use std::process::Command;

use infralog_tests::{bin, csv_fields, loghub, python, query_csv, run_ok};

/// Lines per `Component` in the labelled CSV that comes with the log.
fn expected_counts() -> BTreeMap<String, u64> {
    let csv = std::fs::read_to_string(loghub("Linux/Linux_2k.log_structured.csv")).unwrap();
    let mut lines = csv.lines();
    let header = csv_fields(lines.next().unwrap());
    let component = header.iter().position(|h| h == "Component").unwrap();
    let mut counts = BTreeMap::new();
    for l in lines {
        *counts.entry(csv_fields(l)[component].clone()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn linux_2k_counts_per_process_match_through_our_query_and_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["import", "--format", "rfc3164", "--archive"])
            .arg(&archive)
            .arg(loghub("Linux/Linux_2k.log")),
    );
    let expected = expected_counts();
    assert_eq!(expected.values().sum::<u64>(), 2000);

    let total = query_csv(&archive, "SELECT count(*) FROM logs");
    assert_eq!(total, vec![vec!["2000".to_string()]]);

    let rows = query_csv(
        &archive,
        "SELECT process_name, count(*) FROM logs GROUP BY process_name ORDER BY process_name",
    );
    let ours: BTreeMap<String, u64> = rows
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap()))
        .collect();
    assert_eq!(ours, expected);

    // Nothing in this file is malformed: no row may carry a parse error.
    let errors = query_csv(
        &archive,
        "SELECT count(*) FROM logs WHERE extra['parse_error'] IS NOT NULL",
    );
    assert_eq!(errors, vec![vec!["0".to_string()]]);

    // The same files through another engine, with hive partitioning.
    let script = format!(
        r#"
import duckdb, json
rows = duckdb.sql("""
    SELECT process_name, count(*) AS n, count(DISTINCT hostname) AS hosts
    FROM read_parquet('{}/logs/**/*.parquet', hive_partitioning = true)
    GROUP BY process_name""").fetchall()
print(json.dumps({{r[0]: [r[1], r[2]] for r in rows}}))
"#,
        archive.display()
    );
    let duck: BTreeMap<String, (u64, u64)> = serde_json::from_str(&python(&script)).unwrap();
    let duck_counts: BTreeMap<String, u64> =
        duck.iter().map(|(k, (n, _))| (k.clone(), *n)).collect();
    assert_eq!(duck_counts, expected);
    assert!(
        duck.values().all(|(_, hosts)| *hosts == 1),
        "hostname is the partition 'combo'"
    );
}

#[test]
fn files_are_sorted_zstd_parquet_with_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["import", "--archive"])
            .arg(&archive)
            .arg(loghub("Linux/Linux_2k.log")),
    );
    let script = format!(
        r#"
import glob, json, pyarrow.parquet as pq
out = []
for f in sorted(glob.glob('{}/logs/hostname=*/log_date=*/*.parquet')):
    pf = pq.ParquetFile(f)
    md = pf.metadata
    ts = pf.read(columns=['timestamp']).column(0).to_pylist()
    codecs = {{md.row_group(g).column(c).compression for g in range(md.num_row_groups) for c in range(md.num_columns)}}
    out.append(dict(
        sorted=ts == sorted(ts),
        codecs=sorted(codecs),
        version=md.metadata.get(b'infralog.schema_version', b'').decode(),
        stats=md.row_group(0).column(0).is_stats_set,
        hostname_in_file='hostname' in pf.schema_arrow.names,
    ))
print(json.dumps(out))
"#,
        archive.display()
    );
    let files: Vec<serde_json::Value> = serde_json::from_str(&python(&script)).unwrap();
    assert!(!files.is_empty());
    for f in files {
        assert_eq!(f["sorted"], true, "{f}");
        assert_eq!(f["codecs"], serde_json::json!(["ZSTD"]), "{f}");
        assert_eq!(
            f["version"],
            infralog_schemas::SCHEMA_VERSION.to_string(),
            "{f}"
        );
        assert_eq!(f["stats"], true, "{f}");
        assert_eq!(
            f["hostname_in_file"], false,
            "partition columns live in the path: {f}"
        );
    }
}

/// RFC 3164 stamps carry no zone: `--utc-offset` says which one the writers used, and a
/// malformed offset is refused before anything is imported.
#[test]
fn utc_offset_places_zoneless_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("paris.log");
    std::fs::write(
        &file,
        "Nov  7 10:30:45 host1 app[1]: from a host in UTC+2\n",
    )
    .unwrap();
    let import = |offset: &str, archive: &std::path::Path| {
        Command::new(bin("infra-collector"))
            .args(["import", "--utc-offset", offset, "--archive"])
            .arg(archive)
            .arg(&file)
            .output()
            .unwrap()
    };
    for (offset, want) in [
        ("+02:00", "08:30:45"),
        ("-0500", "15:30:45"),
        ("Z", "10:30:45"),
    ] {
        let archive = dir.path().join(format!("archive{offset}"));
        let out = import(offset, &archive);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = query_csv(&archive, "SELECT timestamp FROM logs");
        assert_eq!(rows.len(), 1);
        assert!(
            rows[0][0].contains(&format!("T{want}")),
            "{offset}: {rows:?}"
        );
    }
    let out = import("CET", &dir.path().join("never"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid UTC offset \"CET\""), "{stderr}");
    assert!(!dir.path().join("never").exists(), "nothing imported");
}
