//! Schema evolution in infra-query: files of schema version 1 (the committed archive
//! `tests/fixtures/archive-v1/`, written by the collector before version 2) and version 2
//! files side by side in one `logs` table, cast on read — also inside the filters pushed
//! into the Parquet scan. The expected answers are computed from the files themselves,
//! read with the plain Parquet reader and converted by hand (ns → µs truncated).

#[allow(dead_code)]
mod fixture;

use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Int8Type, Int64Type, TimeUnit, TimestampMicrosecondType, TimestampNanosecondType,
    UInt8Type,
};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::prelude::SessionContext;
use infralog_query::run_sql;
use infralog_schemas::{col, logs_schema};

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

fn parquet_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            parquet_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
}

/// (timestamp in µs, priority) of every row of every file, whatever its version.
fn rows_by_hand(root: &Path) -> (Vec<(i64, Option<i64>)>, usize) {
    let mut files = Vec::new();
    parquet_files(&root.join("logs"), &mut files);
    let mut v1_files = 0;
    let mut rows = Vec::new();
    for path in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch: RecordBatch = batch.unwrap();
            let ts = batch.column_by_name(col::TIMESTAMP).unwrap();
            let pri = batch.column_by_name(col::PRIORITY).unwrap();
            let is_v1 = matches!(ts.data_type(), DataType::Timestamp(TimeUnit::Nanosecond, _));
            for i in 0..batch.num_rows() {
                let (t, p) = if is_v1 {
                    let ns = ts.as_primitive::<TimestampNanosecondType>().value(i);
                    let p = pri.as_primitive::<UInt8Type>();
                    // Arrow's cast truncates towards zero; all times here are after 1970.
                    (ns / 1000, (!p.is_null(i)).then(|| p.value(i) as i64))
                } else {
                    let p = pri.as_primitive::<Int8Type>();
                    (
                        ts.as_primitive::<TimestampMicrosecondType>().value(i),
                        (!p.is_null(i)).then(|| p.value(i) as i64),
                    )
                };
                rows.push((t, p));
            }
            if is_v1 && batch.num_rows() > 0 {
                v1_files += 1;
            }
        }
    }
    (rows, v1_files)
}

fn count(batches: &[RecordBatch]) -> i64 {
    let b = batches.iter().find(|b| b.num_rows() == 1).unwrap();
    b.column(0).as_primitive::<Int64Type>().value(0)
}

/// The v1 archive plus v2 files of the query fixture, some in the same partitions.
async fn mixed() -> (tempfile::TempDir, SessionContext) {
    let dir = tempfile::tempdir().unwrap();
    let v1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/archive-v1");
    copy_dir(&v1.join("logs"), &dir.path().join("logs"));
    for host in ["web-1", "cache-1"] {
        let batch = fixture::batch(host, "2026-11-22", 30);
        fixture::write_file(dir.path(), host, "2026-11-22", "v2", &batch);
    }
    let ctx = infralog_query::open(dir.path().to_str().unwrap())
        .await
        .unwrap();
    (dir, ctx)
}

#[tokio::test]
async fn v1_and_v2_files_read_as_one_table_of_the_current_schema() {
    let (dir, ctx) = mixed().await;
    let (rows, v1_files) = rows_by_hand(dir.path());
    assert!(v1_files >= 10, "the fixture holds v1 files");

    let table = ctx.table("logs").await.unwrap();
    for field in logs_schema().fields() {
        let got = table
            .schema()
            .as_arrow()
            .field_with_name(field.name())
            .unwrap();
        assert_eq!(got.data_type(), field.data_type(), "{}", field.name());
    }
    // Every column of every file, cast: tags (list `item` → `element`), extra, uid, …
    let all = run_sql(&ctx, "SELECT * FROM logs").await.unwrap();
    let n: usize = all.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(n, rows.len());
    assert_eq!(all[0].schema().fields().len(), logs_schema().fields().len());

    // Bounds between the nanoseconds of v1 rows (…000000999, …000001000, …000002500,
    // …000002999, …000003000), in partitions holding v1 and v2 files. The upper bound is
    // inclusive: comparing the raw nanoseconds with it (…000002500 > …000002) or rounding
    // them (…000002500 → …000003) would drop rows that truncation keeps.
    let lo = fixture::day_start_us("2026-11-22") + 10 * 3_600_000_000 + 1;
    let hi = lo + 1;
    let in_range = |t: i64| t >= lo && t <= hi;
    let want = rows.iter().filter(|(t, _)| in_range(*t)).count() as i64;
    let want_urgent = rows
        .iter()
        .filter(|(t, p)| in_range(*t) && p.is_some_and(|p| p <= 3))
        .count() as i64;
    assert!(want >= 12 && want_urgent > 0 && want_urgent < want);
    let range = "timestamp >= '2026-11-22T10:00:00.000001Z' \
                 AND timestamp <= '2026-11-22T10:00:00.000002Z'";
    for pushdown in ["true", "false"] {
        run_sql(
            &ctx,
            &format!("SET datafusion.execution.parquet.pushdown_filters = {pushdown}"),
        )
        .await
        .unwrap();
        let got = count(
            &run_sql(&ctx, &format!("SELECT count(*) FROM logs WHERE {range}"))
                .await
                .unwrap(),
        );
        assert_eq!(got, want, "pushdown_filters = {pushdown}");
        let got = count(
            &run_sql(
                &ctx,
                &format!("SELECT count(*) FROM logs WHERE {range} AND priority <= 3"),
            )
            .await
            .unwrap(),
        );
        assert_eq!(got, want_urgent, "pushdown_filters = {pushdown}");
        let all_urgent = rows
            .iter()
            .filter(|(_, p)| p.is_some_and(|p| p <= 3))
            .count() as i64;
        let got = count(
            &run_sql(&ctx, "SELECT count(*) FROM logs WHERE priority <= 3")
                .await
                .unwrap(),
        );
        assert_eq!(got, all_urgent, "pushdown_filters = {pushdown}");
    }

    // The predicate really reaches the v1 files' scan (cast there), it is not only
    // applied after reading.
    run_sql(
        &ctx,
        "SET datafusion.execution.parquet.pushdown_filters = true",
    )
    .await
    .unwrap();
    let plan = run_sql(
        &ctx,
        &format!("EXPLAIN ANALYZE SELECT count(*) FROM logs WHERE {range} AND hostname = 'db-1'"),
    )
    .await
    .unwrap();
    let text =
        infralog_query::output::format_batches(&plan, infralog_query::OutputFormat::Csv).unwrap();
    assert!(text.contains("predicate=timestamp@0 >="), "{text}");
    assert!(!text.contains("FilterExec"), "{text}");
}
