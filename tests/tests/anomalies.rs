//! The `anomalies` table from `infra-collector import`: three hours of two hosts' syslog
//! (steady traffic, then an error storm on one host and a silence of the other) are
//! judged on their own event time; the table is read back by infra-query and DuckDB, and
//! importing the same history again gives the same anomaly ids.

use std::fs;
use std::path::Path;
use std::process::Command;

use infralog_tests::{bin, python, query_csv, run_ok};

use infralog_tests::incident::history;

fn import(archive: &Path, file: &Path) {
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["import", "--format", "rfc5424", "--archive"])
            .arg(archive)
            .arg(file),
    );
}

#[test]
fn import_writes_anomalies_that_every_reader_sees_and_a_reimport_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.log");
    fs::write(&file, history()).unwrap();
    let archive = dir.path().join("archive");
    import(&archive, &file);

    let rows = query_csv(
        &archive,
        "SELECT hostname, kind, severity, count(DISTINCT anomaly_id) FROM anomalies \
         GROUP BY hostname, kind, severity ORDER BY hostname, kind",
    );
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect();
    assert!(
        got.contains(&("h1".into(), "silence".into(), "CRITICAL".into())),
        "{rows:?}"
    );
    assert!(
        got.contains(&("h2".into(), "error_storm".into(), "ERROR".into())),
        "{rows:?}"
    );
    // Nothing else: steady traffic raises nothing (the storm's own template may also be
    // new and a burst; the silent host's services are not reported on their own).
    for (host, kind, _) in &got {
        let expected = match host.as_str() {
            "h1" => ["silence"].as_slice(),
            _ => ["error_storm", "new_template", "burst"].as_slice(),
        };
        assert!(
            expected.contains(&kind.as_str()),
            "unexpected {host} {kind}: {rows:?}"
        );
    }
    // On event time: the storm is found within its first minutes, the silence minutes
    // after it began.
    let when = query_csv(
        &archive,
        "SELECT kind, CAST(min(detected_at) AS VARCHAR), CAST(min(window_start) AS VARCHAR) \
         FROM anomalies WHERE kind IN ('error_storm', 'silence') GROUP BY kind ORDER BY kind",
    );
    assert_eq!(when.len(), 2, "{when:?}");
    assert!(when[0][1].starts_with("2026-03-02T02:0"), "storm {when:?}");
    assert!(
        when[1][1].starts_with("2026-03-02T02:3"),
        "silence {when:?}"
    );
    assert!(
        when[1][2].starts_with("2026-03-02T02:29"),
        "silence since the last line {when:?}"
    );

    // DuckDB reads the table as written (hive partitions, the context SQL in a column we
    // can run).
    let script = format!(
        r#"
import duckdb
t = "read_parquet('{}/anomalies/**/*.parquet', hive_partitioning = true)"
print(duckdb.sql(f"SELECT count(DISTINCT anomaly_id), count(*) FILTER (WHERE explanation = '' OR expected IS NULL) FROM {{t}}").fetchall()[0])
print(duckdb.sql(f"SELECT DISTINCT CAST(log_date AS VARCHAR) FROM {{t}}").fetchall())
"#,
        archive.display()
    );
    let out = python(&script);
    let distinct: usize = query_csv(&archive, "SELECT count(DISTINCT anomaly_id) FROM anomalies")
        [0][0]
        .parse()
        .unwrap();
    assert!(out.starts_with(&format!("({distinct}, 0)")), "{out}");
    assert!(out.contains("'2026-03-02'"), "{out}");

    // The same history imported again: the same anomalies, by id.
    let again = dir.path().join("again");
    import(&again, &file);
    let ids = |a: &Path| query_csv(a, "SELECT anomaly_id FROM anomalies ORDER BY anomaly_id");
    assert_eq!(ids(&archive), ids(&again));

    // `--no-detect` writes none.
    let none = dir.path().join("none");
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["import", "--no-detect", "--format", "rfc5424", "--archive"])
            .arg(&none)
            .arg(&file),
    );
    assert!(!none.join("anomalies").exists());
}
