//! `infra-collector migrate`: rewrites the archive's files of an older schema version
//! (today: version 1) as files of the current version, partition by partition, and
//! backfills the hourly `stats` file of every `logs` file that has none (archives written
//! before the `stats` table existed).
//!
//! Nothing here is needed to *read* an old archive — infra-query casts old files on read —
//! but other engines read the archive as written (Spark refuses version 1's nanosecond
//! timestamps), and one version per archive keeps everybody's life simple.
//!
//! # Why a rewritten file keeps its name
//!
//! A plain reader (DuckDB, Spark, pyarrow over a glob; infra-query's listing) sees the
//! partition's rows as the union of the `*.parquet` files in its directory at the moment
//! it lists it. A new file under a new name next to the old one would be listed together
//! with it by any reader that lists between "write new" and "delete old": every row twice.
//! Deleting the old one first loses the rows for a while (or for good, on a crash). So the
//! new content replaces the old under the *same* name, in three steps:
//!
//! 1. write it to `.<name>.migrating` in the same directory and fsync it: the leading dot
//!    and the suffix keep it out of every reader (they read `*.parquet`, and Spark and Hive
//!    skip dot files);
//! 2. `rename` it over `<name>`: atomic, so a reader opening `<name>` gets the complete
//!    old file or the complete new one, never both and never neither; a reader that has
//!    the old file open keeps reading the old inode;
//! 3. fsync the directory, so that the rename survives a crash.
//!
//! A crash before step 2 leaves the old file untouched plus a stray temporary file, which
//! the next run removes; after step 2 the new file is complete (its data was fsync'd
//! before the rename). The collector never writes to an existing file name except to
//! retry the same segment, and files of version 1 only come from a collector that no
//! longer runs, so the rename does not race with a writer. One window remains: a reader
//! that listed the directory (with the old file's size) and opens the file after the
//! rename reads the new file with a stale size and fails; that query can be re-run — it
//! never returns wrong rows. On S3 (not yet an archive location of the collector) the
//! same rule holds: a PUT replaces an object atomically.
//!
//! Values are converted exactly as infra-query casts them on read (Arrow's cast:
//! nanoseconds truncated to microseconds), so a query gives the same answer before and
//! after migration.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};

use infralog_schemas::{
    LOGS_TABLE, SCHEMA_VERSION, SCHEMA_VERSION_KEY, STATS_TABLE, col, logs_file_schema, v1,
};

use super::parquet::{EncodeOptions, encode_with};
use super::stats::Rollup;

/// Suffix of the temporary file a rewrite goes to before it replaces the old one.
const TEMP_SUFFIX: &str = ".migrating";

#[derive(Debug, Default)]
pub struct MigrateReport {
    /// Files already of the current version, left alone.
    pub current: u64,
    /// Files of an older version: rewritten, or that would be with `--dry-run`.
    pub migrated: u64,
    pub rows: u64,
    pub bytes_before: u64,
    /// Size of the rewritten files (0 with `--dry-run`).
    pub bytes_after: u64,
    /// Temporary files of an interrupted earlier run, removed.
    pub stale_removed: u64,
    /// `stats` files written for `logs` files that had none (or that would be, with
    /// `--dry-run`).
    pub stats_backfilled: u64,
    /// Files left as they are, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

/// Migrates every `logs` file under the archive directory `root` to the current schema
/// version; with `dry_run`, only reports what it would rewrite. A file that cannot be read
/// or is of an unknown version is reported in [`MigrateReport::failed`] and left as it is.
pub fn migrate(root: &Path, dry_run: bool, encode: &EncodeOptions) -> Result<MigrateReport> {
    let meta = std::fs::metadata(root)
        .with_context(|| format!("cannot open archive directory {}", root.display()))?;
    if !meta.is_dir() {
        bail!("archive {} is not a directory", root.display());
    }
    let mut files = Vec::new();
    let mut stale = Vec::new();
    let table = root.join(LOGS_TABLE);
    if table.is_dir() {
        walk(&table, &mut files, &mut stale)?;
    }
    files.sort();
    let mut report = MigrateReport::default();
    if !dry_run {
        for path in stale {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            report.stale_removed += 1;
        }
    }
    for path in files {
        let done = migrate_file(&path, dry_run, encode, &mut report)
            .and_then(|()| backfill_stats(root, &path, dry_run, encode, &mut report));
        if let Err(e) = done {
            report.failed.push((path, format!("{e:#}")));
        }
    }
    Ok(report)
}

/// Collects `*.parquet` files and stale temporary files below `dir`.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, stale: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            walk(&path, files, stale)?;
        } else if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
            stale.push(path);
        } else if name.ends_with(".parquet") && !name.starts_with('.') {
            files.push(path);
        }
    }
    Ok(())
}

/// The schema version a file's key-value metadata states.
fn file_version(reader: &SerializedFileReader<File>) -> Result<u32> {
    let kv = reader.metadata().file_metadata().key_value_metadata();
    let value = kv
        .and_then(|kv| kv.iter().find(|k| k.key == SCHEMA_VERSION_KEY))
        .and_then(|k| k.value.clone())
        .with_context(|| format!("no {SCHEMA_VERSION_KEY} in the file's metadata"))?;
    value
        .trim()
        .parse()
        .with_context(|| format!("{SCHEMA_VERSION_KEY} is {value:?}, not a number"))
}

fn migrate_file(
    path: &Path,
    dry_run: bool,
    encode: &EncodeOptions,
    report: &mut MigrateReport,
) -> Result<()> {
    let file = File::open(path).context("cannot open")?;
    let size = file.metadata()?.len();
    let reader = SerializedFileReader::new(file.try_clone()?).context("not a Parquet file")?;
    let version = file_version(&reader)?;
    if version == SCHEMA_VERSION {
        report.current += 1;
        return Ok(());
    }
    if version != v1::VERSION {
        bail!(
            "schema version {version}: this collector writes {SCHEMA_VERSION} and migrates \
             only from {}",
            v1::VERSION
        );
    }
    let rows = reader.metadata().file_metadata().num_rows() as u64;
    if dry_run {
        report.migrated += 1;
        report.rows += rows;
        report.bytes_before += size;
        return Ok(());
    }

    let batches = read_as_current(file)?;
    let got: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if got as u64 != rows {
        bail!("read {got} rows, the footer says {rows}");
    }
    let bytes = if batches.is_empty() {
        encode_with(&[RecordBatch::new_empty(logs_file_schema())], encode)?
    } else {
        encode_with(&batches, encode)?
    };
    let new_size = bytes.len() as u64;
    replace(path, &bytes)?;
    report.migrated += 1;
    report.rows += rows;
    report.bytes_before += size;
    report.bytes_after += new_size;
    Ok(())
}

/// Writes the `stats` file of the `logs` file `logs` when it has none: the same name in the
/// same partition of the `stats` table, as the archiver writes it, so that compaction and
/// the naming rule treat it as theirs.
fn backfill_stats(
    root: &Path,
    logs: &Path,
    dry_run: bool,
    encode: &EncodeOptions,
    report: &mut MigrateReport,
) -> Result<()> {
    let rel = logs
        .strip_prefix(root.join(LOGS_TABLE))
        .context("file outside the logs table")?;
    let stats = root.join(STATS_TABLE).join(rel);
    if stats.exists() {
        return Ok(());
    }
    if dry_run {
        report.stats_backfilled += 1;
        return Ok(());
    }
    let file = File::open(logs).context("cannot open")?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let wanted = [
        col::TIMESTAMP,
        col::SOURCE,
        col::PROCESS_NAME,
        col::SEVERITY,
        col::MESSAGE,
    ];
    let indices: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted.contains(&f.name().as_str()))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let batches = builder
        .with_projection(mask)
        .build()?
        .collect::<Result<Vec<_>, _>>()?;
    let mut rollup = Rollup::new();
    for b in &batches {
        rollup.add_logs(b)?;
    }
    let bytes = rollup.encode(encode, Vec::new())?;
    let dir = stats.parent().context("stats file has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    replace(&stats, &bytes)?;
    report.stats_backfilled += 1;
    Ok(())
}

/// Reads a version 1 file and casts every column to the current file schema.
fn read_as_current(file: File) -> Result<Vec<RecordBatch>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let old = v1::logs_file_schema();
    let found = builder.schema();
    if !same_columns(found, &old) {
        bail!("its columns are not those of a version 1 logs file: {found}");
    }
    let current = logs_file_schema();
    // Not "safe": a value the new type cannot hold is an error, never a silent null.
    let options = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    builder
        .build()?
        .map(|batch| {
            let batch = batch?;
            let columns = batch
                .columns()
                .iter()
                .zip(current.fields())
                .map(|(c, f)| {
                    cast_with_options(c, f.data_type(), &options)
                        .with_context(|| format!("column {}", f.name()))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(current.clone(), columns)?)
        })
        .collect()
}

/// Same names, types and nullability (the Arrow metadata the writer stored may differ).
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(x, y)| {
            x.name() == y.name()
                && x.data_type() == y.data_type()
                && x.is_nullable() == y.is_nullable()
        })
}

/// Replaces `path` with `bytes` atomically and durably (see the module doc).
fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("file has no directory")?;
    let name = path
        .file_name()
        .context("file has no name")?
        .to_string_lossy();
    let temp = dir.join(format!(".{name}{TEMP_SUFFIX}"));
    let written = (|| -> std::io::Result<()> {
        let mut f = File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", temp.display()));
    }
    std::fs::rename(&temp, path)
        .with_context(|| format!("cannot rename {} over {}", temp.display(), path.display()))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, AsArray, Int32Array, ListBuilder, MapBuilder, MapFieldNames, StringArray,
        StringBuilder, TimestampNanosecondArray, UInt8Array, UInt32Array, UInt64Array,
    };
    use arrow::datatypes::{Int8Type, Int64Type, TimestampMicrosecondType};
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    /// A version 1 file as the collector wrote it before version 2 (types of
    /// `v1::logs_file_schema`, version 1 in the metadata).
    fn write_v1(path: &Path, timestamps_ns: &[i64]) {
        let n = timestamps_ns.len();
        let mut tags = ListBuilder::new(StringBuilder::new());
        let mut extra = MapBuilder::new(
            Some(MapFieldNames {
                entry: "key_value".into(),
                key: "key".into(),
                value: "value".into(),
            }),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        for i in 0..n {
            tags.values().append_value("t");
            tags.append(true);
            extra.keys().append_value("msgid");
            extra.values().append_value(format!("m{i}"));
            extra.append(true).unwrap();
        }
        let ts = TimestampNanosecondArray::from(timestamps_ns.to_vec()).with_timezone("UTC");
        let strings = |v: &str| Arc::new(StringArray::from(vec![v; n])) as ArrayRef;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ts.clone()),
            strings("syslog"),
            Arc::new(UInt8Array::from_iter_values((0..n).map(|i| (i % 8) as u8))),
            strings("ERROR"),
            strings("daemon"),
            strings("hello"),
            strings("sshd"),
            Arc::new(Int32Array::from(vec![7; n])),
            strings("root"),
            Arc::new(UInt32Array::from(vec![u32::MAX; n])),
            strings("u.service"),
            Arc::new(UInt64Array::from(vec![None; n])),
            Arc::new(tags.finish()),
            Arc::new(extra.finish()),
            Arc::new(ts),
        ];
        let batch = RecordBatch::try_new(v1::logs_file_schema(), columns).unwrap();
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new(
                SCHEMA_VERSION_KEY.into(),
                "1".to_string(),
            )]))
            .build();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    fn read(path: &Path) -> (u32, RecordBatch) {
        let file = File::open(path).unwrap();
        let version =
            file_version(&SerializedFileReader::new(file.try_clone().unwrap()).unwrap()).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        let schema = batches[0].schema();
        (
            version,
            arrow::compute::concat_batches(&schema, &batches).unwrap(),
        )
    }

    #[test]
    fn rewrites_v1_under_the_same_name_and_leaves_v2_alone() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("logs/hostname=h/log_date=2026-11-22");
        let old = part.join("a-00001.parquet");
        write_v1(&old, &[1_000_999, 2_000_000, 3_000_001]);
        // A stale temporary file of an interrupted run, and a current file.
        std::fs::write(part.join(".x.parquet.migrating"), b"half").unwrap();
        let mut b = crate::batch::LogBatchBuilder::new(1);
        let row = crate::batch::Row {
            timestamp_ns: 5_000,
            hostname: b"h",
            source: "file",
            message: b"m",
            ..Default::default()
        };
        b.append(&row, 0, |_| {});
        let current = encode_with(&[b.finish()], &EncodeOptions::default()).unwrap();
        std::fs::write(part.join("b-00001.parquet"), &current).unwrap();

        let opts = EncodeOptions::default();
        let dry = migrate(dir.path(), true, &opts).unwrap();
        assert_eq!((dry.migrated, dry.current, dry.rows), (1, 1, 3));
        assert_eq!(read(&old).0, 1, "dry run changes nothing");

        let report = migrate(dir.path(), false, &opts).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!((report.migrated, report.current, report.rows), (1, 1, 3));
        assert_eq!(report.stale_removed, 1);
        let mut names: Vec<String> = std::fs::read_dir(&part)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a-00001.parquet", "b-00001.parquet"]);
        assert_eq!(
            std::fs::read(part.join("b-00001.parquet")).unwrap(),
            current
        );

        let (version, batch) = read(&old);
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(batch.schema().fields(), logs_file_schema().fields());
        let ts = batch.column_by_name(col::TIMESTAMP).unwrap();
        assert_eq!(
            ts.as_primitive::<TimestampMicrosecondType>().values(),
            &[1_000, 2_000, 3_000]
        );
        let pri = batch.column_by_name(col::PRIORITY).unwrap();
        assert_eq!(pri.as_primitive::<Int8Type>().values(), &[0, 1, 2]);
        let uid = batch.column_by_name(col::UID).unwrap();
        assert_eq!(uid.as_primitive::<Int64Type>().value(0), u32::MAX as i64);

        // Neither file had hourly stats: both got theirs, counted from their rows.
        assert_eq!((dry.stats_backfilled, report.stats_backfilled), (2, 2));
        let stats = dir.path().join("stats/hostname=h/log_date=2026-11-22");
        for (name, lines) in [("a-00001.parquet", 3), ("b-00001.parquet", 1)] {
            let (_, batch) = read(&stats.join(name));
            let counted: i64 = batch
                .column_by_name(col::LINES)
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .sum();
            assert_eq!(counted, lines, "{name}");
        }

        let again = migrate(dir.path(), false, &opts).unwrap();
        assert_eq!((again.migrated, again.current), (0, 2));
        assert_eq!(again.stats_backfilled, 0, "stats are written once");
    }

    #[test]
    fn unknown_versions_and_garbage_are_reported_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("logs/hostname=h/log_date=2026-11-22");
        std::fs::create_dir_all(&part).unwrap();
        std::fs::write(part.join("junk.parquet"), b"not parquet").unwrap();
        // A file of a version from the future.
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![arrow::datatypes::Field::new(
                "x",
                arrow::datatypes::DataType::Int32,
                false,
            )])),
            vec![Arc::new(Int32Array::from(vec![1]))],
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new(
                SCHEMA_VERSION_KEY.into(),
                (SCHEMA_VERSION + 1).to_string(),
            )]))
            .build();
        let future = part.join("future.parquet");
        let mut w =
            ArrowWriter::try_new(File::create(&future).unwrap(), batch.schema(), Some(props))
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let before = std::fs::read(&future).unwrap();

        let report = migrate(dir.path(), false, &EncodeOptions::default()).unwrap();
        assert_eq!(report.failed.len(), 2, "{:?}", report.failed);
        assert!(
            report.failed[0]
                .1
                .contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
            "{:?}",
            report.failed
        );
        assert!(report.failed[1].1.contains("not a Parquet file"));
        assert_eq!(std::fs::read(&future).unwrap(), before);
        assert_eq!(
            std::fs::read(part.join("junk.parquet")).unwrap(),
            b"not parquet"
        );
        assert!(
            migrate(
                &dir.path().join("missing"),
                false,
                &EncodeOptions::default()
            )
            .is_err()
        );
    }
}
