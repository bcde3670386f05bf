//! infra-query over fixture archives: the `logs` table, partition and row-group pruning,
//! map access, output formats, errors, and the `infra-query` binary end to end.

mod fixture;

use std::path::Path;
use std::process::Command;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::physical_plan::displayable;
use datafusion::prelude::SessionContext;
use infralog_query::{OutputFormat, output::format_batches, run_sql};
use infralog_schemas::{LOGS_TABLE, col, extra_key};

async fn open(root: &Path) -> SessionContext {
    infralog_query::open(root.to_str().unwrap()).await.unwrap()
}

async fn fixture() -> (tempfile::TempDir, SessionContext) {
    let dir = tempfile::tempdir().unwrap();
    fixture::archive(dir.path());
    let ctx = open(dir.path()).await;
    (dir, ctx)
}

/// Rows of a two-column (text, count) result as pairs.
fn pairs(batches: &[RecordBatch]) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let keys = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
        let keys = keys.as_string::<i32>();
        let counts = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((keys.value(i).to_string(), counts.value(i)));
        }
    }
    out
}

/// The single integer of a one-row, one-column result.
fn count(batches: &[RecordBatch]) -> i64 {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 1, "expected one row");
    let b = batches.iter().find(|b| b.num_rows() == 1).unwrap();
    b.column(0).as_primitive::<Int64Type>().value(0)
}

async fn physical_plan(ctx: &SessionContext, sql: &str) -> String {
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    displayable(plan.as_ref()).indent(true).to_string()
}

async fn explain_analyze(ctx: &SessionContext, sql: &str) -> String {
    let batches = run_sql(ctx, &format!("EXPLAIN ANALYZE {sql}"))
        .await
        .unwrap();
    format_batches(&batches, OutputFormat::Csv).unwrap()
}

#[tokio::test]
async fn counts_per_hostname_and_day() {
    let (_dir, ctx) = fixture().await;
    let sql = format!(
        "SELECT {h}, count(*) FROM {LOGS_TABLE} GROUP BY {h} ORDER BY {h}",
        h = col::HOSTNAME
    );
    let got = pairs(&run_sql(&ctx, &sql).await.unwrap());
    let want: Vec<(String, i64)> = ["db-1", "web-1"]
        .iter()
        .map(|h| {
            let n: usize = fixture::DAYS.iter().map(|d| fixture::rows_for(h, d)).sum();
            (h.to_string(), n as i64)
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(got, vec![("db-1".into(), 70), ("web-1".into(), 30)]);

    let sql = format!(
        "SELECT {d}, count(*) FROM {LOGS_TABLE} GROUP BY {d} ORDER BY {d}",
        d = col::LOG_DATE
    );
    let got = pairs(&run_sql(&ctx, &sql).await.unwrap());
    assert_eq!(
        got,
        vec![("2026-11-22".into(), 40), ("2026-11-23".into(), 60)]
    );

    let total = count(&run_sql(&ctx, "SELECT count(*) FROM logs").await.unwrap());
    assert_eq!(total, 100);
}

#[tokio::test]
async fn table_has_logical_columns_and_types() {
    let (_dir, ctx) = fixture().await;
    let table = ctx.table(LOGS_TABLE).await.unwrap();
    let schema = table.schema().as_arrow().clone();
    let logical = infralog_schemas::logs_schema();
    assert_eq!(schema.fields().len(), logical.fields().len());
    for field in logical.fields() {
        let got = schema.field_with_name(field.name()).unwrap();
        assert_eq!(got.data_type(), field.data_type(), "{}", field.name());
    }
}

#[tokio::test]
async fn log_date_filter_scans_only_that_directory() {
    let (_dir, ctx) = fixture().await;
    let plan = physical_plan(
        &ctx,
        "SELECT message FROM logs WHERE log_date = '2026-11-22'",
    )
    .await;
    println!("{plan}");
    assert!(plan.contains("log_date=2026-11-22/"), "{plan}");
    assert!(!plan.contains("log_date=2026-11-23/"), "{plan}");

    let plan = physical_plan(&ctx, "SELECT message FROM logs WHERE hostname = 'db-1'").await;
    assert!(plan.contains("hostname=db-1/"), "{plan}");
    assert!(!plan.contains("hostname=web-1/"), "{plan}");

    let rows = count(
        &run_sql(
            &ctx,
            "SELECT count(*) FROM logs WHERE log_date = '2026-11-22' AND hostname = 'db-1'",
        )
        .await
        .unwrap(),
    );
    assert_eq!(rows, fixture::rows_for("db-1", "2026-11-22") as i64);

    let analyzed = explain_analyze(
        &ctx,
        "SELECT message FROM logs WHERE log_date = '2026-11-22' AND hostname = 'db-1'",
    )
    .await;
    println!("{analyzed}");
    assert!(
        analyzed.contains("hostname=db-1/log_date=2026-11-22/"),
        "{analyzed}"
    );
    assert!(!analyzed.contains("log_date=2026-11-23/"), "{analyzed}");
    assert!(!analyzed.contains("hostname=web-1/"), "{analyzed}");
    assert!(analyzed.contains("files_opened=1,"), "{analyzed}");
}

#[tokio::test]
async fn time_filter_prunes_row_groups() {
    let (_dir, ctx) = fixture().await;
    // db-1 on 2026-11-23: 40 rows, one a minute from midnight, 4 row groups of 10.
    let sql = "SELECT message FROM logs WHERE hostname = 'db-1' AND log_date = '2026-11-23' \
               AND timestamp < TIMESTAMP '2026-11-23T00:05:00Z'";
    let batches = run_sql(&ctx, sql).await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 5);
    let analyzed = explain_analyze(&ctx, sql).await;
    println!("{analyzed}");
    // Only the first of the four row groups can hold minutes 0..5.
    assert!(
        analyzed.contains("row_groups_pruned_statistics=4 total → 1 matched"),
        "{analyzed}"
    );
    assert!(analyzed.contains("files_opened=1,"), "{analyzed}");
}

#[tokio::test]
async fn extra_map_access() {
    let (_dir, ctx) = fixture().await;
    let sql = format!(
        "SELECT count(*) FROM logs WHERE {e}['{k}'] IS NOT NULL",
        e = col::EXTRA,
        k = extra_key::PARSE_ERROR
    );
    // Every fifth row of each file: 2 + 4 + 6 + 8.
    assert_eq!(count(&run_sql(&ctx, &sql).await.unwrap()), 20);

    let sql = "SELECT extra['msgid'] AS msgid, extra['parse_error'] AS err FROM logs \
               WHERE hostname = 'web-1' AND log_date = '2026-11-22' ORDER BY timestamp LIMIT 2";
    let out = format_batches(&run_sql(&ctx, sql).await.unwrap(), OutputFormat::Csv).unwrap();
    assert_eq!(out, "msgid,err\nID0,bad header\nID1,\n");

    let sql = "SELECT count(*) FROM logs WHERE array_has(tags, 'web-1')";
    assert_eq!(count(&run_sql(&ctx, sql).await.unwrap()), 30);
}

#[tokio::test]
async fn csv_and_json_output() {
    let (_dir, ctx) = fixture().await;
    let sql = "SELECT timestamp, hostname, log_date, process_name, priority, user_name \
               FROM logs WHERE hostname = 'web-1' AND log_date = '2026-11-23' \
               ORDER BY timestamp LIMIT 2";
    let batches = run_sql(&ctx, sql).await.unwrap();
    assert_eq!(
        format_batches(&batches, OutputFormat::Csv).unwrap(),
        "timestamp,hostname,log_date,process_name,priority,user_name\n\
         2026-11-23T00:00:00Z,web-1,2026-11-23,sshd,0,root\n\
         2026-11-23T00:01:00Z,web-1,2026-11-23,kernel,1,\n"
    );
    assert_eq!(
        format_batches(&batches, OutputFormat::Json).unwrap(),
        "{\"timestamp\":\"2026-11-23T00:00:00Z\",\"hostname\":\"web-1\",\"log_date\":\"2026-11-23\",\"process_name\":\"sshd\",\"priority\":0,\"user_name\":\"root\"}\n\
         {\"timestamp\":\"2026-11-23T00:01:00Z\",\"hostname\":\"web-1\",\"log_date\":\"2026-11-23\",\"process_name\":\"kernel\",\"priority\":1,\"user_name\":null}\n"
    );
    let table = format_batches(&batches, OutputFormat::Table).unwrap();
    assert!(
        table.contains("| 2026-11-23T00:00:00Z | web-1    | 2026-11-23 | sshd "),
        "{table}"
    );

    // Whole rows, nested columns included.
    let sql = "SELECT * FROM logs ORDER BY timestamp LIMIT 1";
    let batches = run_sql(&ctx, sql).await.unwrap();
    let csv = format_batches(&batches, OutputFormat::Csv).unwrap();
    assert!(csv.contains("\"[fixture, "), "{csv}");
    assert!(
        csv.contains("{msgid: ID0, parse_error: bad header}"),
        "{csv}"
    );
    let json = format_batches(&batches, OutputFormat::Json).unwrap();
    assert!(
        json.contains("\"extra\":{\"msgid\":\"ID0\",\"parse_error\":\"bad header\"}"),
        "{json}"
    );
    assert!(json.contains("\"tags\":[\"fixture\","), "{json}");
}

#[tokio::test]
async fn empty_archive_has_an_empty_logs_table() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing at all under the root, then an empty logs/ directory.
    let ctx = open(dir.path()).await;
    assert_eq!(
        count(&run_sql(&ctx, "SELECT count(*) FROM logs").await.unwrap()),
        0
    );
    std::fs::create_dir(dir.path().join(LOGS_TABLE)).unwrap();
    let batches = run_sql(&ctx, "SELECT hostname, message FROM logs")
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    assert_eq!(
        format_batches(&batches, OutputFormat::Csv).unwrap(),
        "hostname,message\n"
    );
}

#[tokio::test]
async fn new_files_show_up_in_an_open_session() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = open(dir.path()).await;
    assert_eq!(
        count(&run_sql(&ctx, "SELECT count(*) FROM logs").await.unwrap()),
        0
    );
    fixture::archive(dir.path());
    assert_eq!(
        count(&run_sql(&ctx, "SELECT count(*) FROM logs").await.unwrap()),
        100
    );
}

#[tokio::test]
async fn escaped_hostnames_come_back_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let host = "odd/host=1";
    let batch = fixture::batch(host, "2026-11-22", 3);
    fixture::write_file(dir.path(), host, "2026-11-22", "00000001", &batch);
    let ctx = open(dir.path()).await;
    let got = pairs(
        &run_sql(
            &ctx,
            "SELECT hostname, count(*) FROM logs GROUP BY hostname",
        )
        .await
        .unwrap(),
    );
    assert_eq!(got, vec![(host.to_string(), 3)]);
    let n = count(
        &run_sql(
            &ctx,
            &format!("SELECT count(*) FROM logs WHERE hostname = '{host}'"),
        )
        .await
        .unwrap(),
    );
    assert_eq!(n, 3);
}

#[tokio::test]
async fn missing_archive_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-archive");
    let Err(err) = infralog_query::open(missing.to_str().unwrap()).await else {
        panic!("opening a missing archive must fail");
    };
    let msg = format!("{err:#}");
    assert!(msg.contains(missing.to_str().unwrap()), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
}

#[tokio::test]
async fn bad_sql_is_an_error_not_a_panic() {
    let (_dir, ctx) = fixture().await;
    for sql in [
        "SELEC * FROM logs",
        "SELECT no_such_column FROM logs",
        "SELECT * FROM no_such_table",
        "SELECT count(*) FROM logs WHERE log_date = 'not a date'",
        "",
    ] {
        assert!(run_sql(&ctx, sql).await.is_err(), "{sql:?} should fail");
    }
    // The shell never writes into the archive.
    let err = run_sql(&ctx, "INSERT INTO logs SELECT * FROM logs")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("DML not supported"), "{err}");
    // Views are fine.
    run_sql(
        &ctx,
        "CREATE VIEW errors AS SELECT * FROM logs WHERE priority <= 3",
    )
    .await
    .unwrap();
    assert_eq!(
        count(&run_sql(&ctx, "SELECT count(*) FROM errors").await.unwrap()),
        54
    );
}

// ---- the binary ----

fn infra_query(archive: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infra-query"));
    cmd.arg("--archive").arg(archive);
    cmd.env_remove("INFRALOG_ARCHIVE");
    cmd
}

#[test]
fn cli_command_csv() {
    let dir = tempfile::tempdir().unwrap();
    fixture::archive(dir.path());
    let out = infra_query(dir.path())
        .args([
            "--format",
            "csv",
            "-c",
            "SELECT hostname, count(*) AS n FROM logs GROUP BY hostname ORDER BY hostname",
            "-c",
            "SELECT process_name, count(*) AS n FROM logs WHERE log_date = '2026-11-22' \
             GROUP BY 1 ORDER BY n DESC, 1 LIMIT 2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "hostname,n\ndb-1,70\nweb-1,30\nprocess_name,n\nsshd,14\ncron,13\n"
    );
}

#[test]
fn cli_file_of_statements() {
    let dir = tempfile::tempdir().unwrap();
    fixture::archive(dir.path());
    let script = dir.path().join("report.sql");
    std::fs::write(
        &script,
        "-- a report\n\
         CREATE VIEW errs AS SELECT * FROM logs WHERE extra['parse_error'] IS NOT NULL;\n\
         SELECT hostname, count(*) AS n FROM errs GROUP BY hostname ORDER BY hostname;\n\
         SELECT 'a;b' AS s;\n",
    )
    .unwrap();
    let out = infra_query(dir.path())
        .args(["--format", "json", "-f"])
        .arg(&script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"hostname\":\"db-1\",\"n\":14}\n{\"hostname\":\"web-1\",\"n\":6}\n{\"s\":\"a;b\"}\n"
    );

    // Default format: a table.
    let out = infra_query(dir.path())
        .arg("-f")
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("| hostname | n  |"), "{stdout}");
    assert!(stdout.contains("| db-1     | 14 |"), "{stdout}");
}

#[test]
fn cli_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    fixture::archive(dir.path());
    let out = infra_query(dir.path())
        .args(["-c", "SELECT nope FROM logs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let missing = dir.path().join("missing");
    let out = infra_query(&missing)
        .args(["-c", "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");

    let out = infra_query(dir.path())
        .arg("-f")
        .arg(dir.path().join("nope.sql"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.sql"));
}

#[test]
fn cli_archive_from_environment() {
    let dir = tempfile::tempdir().unwrap();
    fixture::archive(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_infra-query"))
        .env("INFRALOG_ARCHIVE", dir.path())
        .args(["--format", "csv", "-c", "SELECT count(*) AS n FROM logs"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "n\n100\n");
}

#[test]
fn cli_output_file_time_zone_and_error_position() {
    let dir = tempfile::tempdir().unwrap();
    fixture::archive(dir.path());
    let out_file = dir.path().join("out.csv");
    let out = infra_query(dir.path())
        .args(["--format", "csv", "--tz", "America/New_York", "-o"])
        .arg(&out_file)
        .args([
            "-c",
            "SELECT min(timestamp) AS first FROM logs WHERE log_date = '2026-11-22'",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "results go to the file");
    // Midnight UTC is 19:00 the day before in New York (EST, UTC-5).
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "first\n2026-11-21T19:00:00-05:00\n"
    );

    let out = infra_query(dir.path())
        .args(["--tz", "Nowhere/Land", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown time zone \"Nowhere/Land\""));

    let out = infra_query(dir.path())
        .args(["-c", "SELECT count(*)\nFROM logs WHERE hostnme = 'x'"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.ends_with(&format!(
            "  LINE 2: FROM logs WHERE hostnme = 'x'\n{}^\n",
            " ".repeat("  LINE 2: FROM logs WHERE ".len())
        )),
        "{err}"
    );
}
