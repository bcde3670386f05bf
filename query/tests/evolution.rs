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

/// (timestamp in µs, priority) of every row of every file under `root/dir`, whatever its
/// version.
fn rows_by_hand(root: &Path, dir: &str) -> (Vec<(i64, Option<i64>)>, usize) {
    let mut files = Vec::new();
    parquet_files(&root.join(dir), &mut files);
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
    let (rows, v1_files) = rows_by_hand(dir.path(), "logs");
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

    // Aggregates that DataFusion would answer from file statistics, which it does not cast
    // to the table's types: in a partition of v1 and v2 files they must be the data's.
    let (part, _) = rows_by_hand(dir.path(), "logs/hostname=web-1/log_date=2026-11-22");
    for (agg, want) in [
        ("max", part.iter().map(|r| r.0).max().unwrap()),
        ("min", part.iter().map(|r| r.0).min().unwrap()),
    ] {
        let sql = format!(
            "SELECT CAST({agg}(timestamp) AS BIGINT) FROM logs \
             WHERE hostname = 'web-1' AND log_date = '2026-11-22'"
        );
        assert_eq!(count(&run_sql(&ctx, &sql).await.unwrap()), want, "{sql}");
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

/// A version 1 file written by hand with values at the edges of the old unsigned types:
/// uid 4294967294 (uid_t's "nobody" on some systems) and priority 7, read through the
/// int64 / int8 columns, also in pushed-down filters.
#[tokio::test]
async fn v1_unsigned_values_read_as_signed_without_wrapping() {
    use datafusion::arrow::array::{
        ArrayRef, Int32Array, ListBuilder, MapBuilder, MapFieldNames, StringArray, StringBuilder,
        TimestampNanosecondArray, UInt8Array, UInt32Array, UInt64Array,
    };
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::metadata::KeyValue;
    use datafusion::parquet::file::properties::WriterProperties;
    use infralog_schemas::{SCHEMA_VERSION_KEY, partition_dir, v1};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let n = 4;
    let mut extra = MapBuilder::new(
        Some(MapFieldNames {
            entry: "key_value".into(),
            key: "key".into(),
            value: "value".into(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut tags = ListBuilder::new(StringBuilder::new());
    for _ in 0..n {
        extra.append(true).unwrap();
        tags.values().append_value("t");
        tags.append(true);
    }
    let start = fixture::day_start_us("2026-11-22") * 1000;
    let ts = TimestampNanosecondArray::from_iter_values((0..n).map(|i| start + i * 1_500))
        .with_timezone("UTC");
    let text = |v: &str| Arc::new(StringArray::from(vec![v; n as usize])) as ArrayRef;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ts.clone()),
        text("journald"),
        Arc::new(UInt8Array::from(vec![7, 0, 3, 7])),
        text("DEBUG"),
        text("daemon"),
        text("m"),
        text("p"),
        Arc::new(Int32Array::from(vec![1; n as usize])),
        text("nobody"),
        Arc::new(UInt32Array::from(vec![u32::MAX - 1, 0, u32::MAX - 1, 1000])),
        text("u.service"),
        Arc::new(UInt64Array::from(vec![Some(1), None, Some(2), Some(3)])),
        Arc::new(tags.finish()),
        Arc::new(extra.finish()),
        Arc::new(ts),
    ];
    let batch = RecordBatch::try_new(v1::logs_file_schema(), columns).unwrap();
    let part = dir.path().join(partition_dir("old", "2026-11-22"));
    std::fs::create_dir_all(&part).unwrap();
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(
            SCHEMA_VERSION_KEY.to_string(),
            "1".to_string(),
        )]))
        .build();
    let file = std::fs::File::create(part.join("a.parquet")).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    // And a version 2 file in the same partition.
    fixture::write_file(
        dir.path(),
        "old",
        "2026-11-22",
        "b",
        &fixture::batch("old", "2026-11-22", 8),
    );

    let ctx = infralog_query::open(dir.path().to_str().unwrap())
        .await
        .unwrap();
    let q = |sql: &'static str| {
        let ctx = ctx.clone();
        async move { count(&run_sql(&ctx, sql).await.unwrap()) }
    };
    assert_eq!(
        q("SELECT count(*) FROM logs WHERE uid = 4294967294").await,
        2
    );
    assert_eq!(
        q("SELECT count(*) FROM logs WHERE uid > 2147483647").await,
        2
    );
    assert_eq!(q("SELECT max(uid) FROM logs").await, 4_294_967_294);
    // v1 rows: priorities 7 0 3 7; the fixture's 8 v2 rows: 0…7.
    assert_eq!(
        q("SELECT count(*) FROM logs WHERE priority <= 3").await,
        2 + 4
    );
    assert_eq!(
        q("SELECT count(*) FROM logs WHERE template_id = 3").await,
        1 + 2
    );
    assert_eq!(
        q("SELECT count(*) FROM logs WHERE array_has(tags, 't')").await,
        4
    );
    // 0, 1500, 3000, 4500 ns → 0, 1, 3, 4 µs; the v2 rows are a minute apart from 0.
    assert_eq!(
        q(
            "SELECT count(*) FROM logs WHERE timestamp > '2026-11-22T00:00:00Z' \
           AND timestamp <= '2026-11-22T00:00:00.000003Z'"
        )
        .await,
        2
    );
}
