//! The hourly `stats` table: `logs` rows counted per (hour, source, process, severity).
//!
//! The archiver writes one stats file beside each `logs` file it writes, with the same name
//! in the same partition of the `stats` table, before it deletes the spool segment: both
//! are derived from the same rows, so a segment archived twice overwrites both, and the
//! naming rule of [`infralog_schemas::files`] that hides a compacted `logs` file's inputs
//! hides the matching stats files too. Compaction merges stats files by adding up their
//! counts. Months of trends then read a few kilobytes per host-day.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use infralog_schemas::{col, stats_file_schema};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;

use super::parquet::{EncodeOptions, writer_properties_for};

const HOUR_US: i64 = 3_600_000_000;

/// (hour, source, process_name, severity), borrowed from the batches being counted.
type Key<'a> = (i64, &'a str, Option<&'a str>, Option<&'a str>);

/// Counts (lines, bytes) per key over batches that outlive it.
#[derive(Default)]
pub struct Rollup<'a> {
    groups: HashMap<Key<'a>, (i64, i64)>,
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    batch
        .column_by_name(name)
        .with_context(|| format!("batch has no {name} column"))?
        .as_string_opt::<i32>()
        .with_context(|| format!("column {name} is not text"))
}

fn text(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

impl<'a> Rollup<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Number of distinct keys: the rows of [`Rollup::to_file_batch`].
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Counts the rows of a batch of the `logs` table (logical or file schema).
    pub fn add_logs(&mut self, batch: &'a RecordBatch) -> Result<()> {
        let ts = batch
            .column_by_name(col::TIMESTAMP)
            .context("batch has no timestamp column")?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .context("timestamp is not in microseconds")?;
        let source = string_column(batch, col::SOURCE)?;
        let process = string_column(batch, col::PROCESS_NAME)?;
        let severity = string_column(batch, col::SEVERITY)?;
        let message = string_column(batch, col::MESSAGE)?;
        // Consecutive rows often share a key (a burst from one process): count runs
        // without a hash lookup per row.
        let mut run: Option<(Key<'a>, i64, i64)> = None;
        for i in 0..batch.num_rows() {
            let key = (
                ts.value(i).div_euclid(HOUR_US) * HOUR_US,
                source.value(i),
                text(process, i),
                text(severity, i),
            );
            let bytes = message.value_length(i) as i64;
            match &mut run {
                Some((k, lines, b)) if *k == key => {
                    *lines += 1;
                    *b += bytes;
                }
                _ => {
                    if let Some((k, lines, b)) = run.replace((key, 1, bytes)) {
                        self.add(k, lines, b);
                    }
                }
            }
        }
        if let Some((k, lines, b)) = run {
            self.add(k, lines, b);
        }
        Ok(())
    }

    /// Adds the rows of a `stats` file batch (merging stats files).
    pub fn add_stats(&mut self, batch: &'a RecordBatch) -> Result<()> {
        let hour = batch
            .column_by_name(col::HOUR)
            .context("stats batch has no hour column")?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .context("hour is not in microseconds")?;
        let source = string_column(batch, col::SOURCE)?;
        let process = string_column(batch, col::PROCESS_NAME)?;
        let severity = string_column(batch, col::SEVERITY)?;
        let count = |name| -> Result<&'a Int64Array> {
            batch
                .column_by_name(name)
                .with_context(|| format!("stats batch has no {name} column"))?
                .as_primitive_opt::<Int64Type>()
                .with_context(|| format!("column {name} is not int64"))
        };
        let (lines, bytes) = (count(col::LINES)?, count(col::BYTES)?);
        for i in 0..batch.num_rows() {
            let key = (
                hour.value(i),
                source.value(i),
                text(process, i),
                text(severity, i),
            );
            self.add(key, lines.value(i), bytes.value(i));
        }
        Ok(())
    }

    fn add(&mut self, key: Key<'a>, lines: i64, bytes: i64) {
        let c = self.groups.entry(key).or_default();
        c.0 += lines;
        c.1 += bytes;
    }

    /// The rollup as one batch of the `stats` file schema, ordered by hour, source,
    /// process and severity.
    pub fn to_file_batch(&self) -> Result<RecordBatch> {
        let mut rows: Vec<(&Key<'a>, &(i64, i64))> = self.groups.iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|(k, _)| k.0))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|(k, _)| k.1))),
            Arc::new(StringArray::from_iter(rows.iter().map(|(k, _)| k.2))),
            Arc::new(StringArray::from_iter(rows.iter().map(|(k, _)| k.3))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, c)| c.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|(_, c)| c.1))),
        ];
        Ok(RecordBatch::try_new(stats_file_schema(), columns)?)
    }

    /// The rollup as a Parquet file of the `stats` table, with `metadata` added to the
    /// file's key-value metadata.
    pub fn encode(&self, opts: &EncodeOptions, metadata: Vec<KeyValue>) -> Result<Vec<u8>> {
        let batch = self.to_file_batch()?;
        let mut out = Vec::new();
        let props = writer_properties_for(&stats_file_schema(), col::HOUR, opts)?;
        let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
        for kv in metadata {
            writer.append_key_value_metadata(kv);
        }
        writer.write(&batch)?;
        writer.close()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{LogBatchBuilder, Row};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    const H: i64 = 3_600_000_000_000; // one hour in ns

    /// (timestamp ns, source, process, priority level, message).
    type LogRow<'a> = (i64, &'a str, Option<&'a str>, Option<u8>, &'a str);

    fn logs(rows: &[LogRow]) -> RecordBatch {
        let mut b = LogBatchBuilder::new(rows.len());
        for &(ts, source, process, priority, msg) in rows {
            let row = Row {
                timestamp_ns: ts,
                hostname: b"h",
                source,
                process_name: process.map(str::as_bytes),
                pri: priority.map(|level| crate::parse::Pri { facility: 1, level }),
                message: msg.as_bytes(),
                ..Row::default()
            };
            b.append(&row, 1, |_| {});
        }
        b.finish()
    }

    type Counted = (i64, String, Option<String>, Option<String>, i64, i64);

    fn rows_of(batch: &RecordBatch) -> Vec<Counted> {
        let hour = batch.column(0).as_primitive::<TimestampMicrosecondType>();
        let s = |c: usize, i: usize| text(batch.column(c).as_string::<i32>(), i).map(String::from);
        let n = |c: usize, i: usize| batch.column(c).as_primitive::<Int64Type>().value(i);
        (0..batch.num_rows())
            .map(|i| {
                (
                    hour.value(i),
                    s(1, i).unwrap(),
                    s(2, i),
                    s(3, i),
                    n(4, i),
                    n(5, i),
                )
            })
            .collect()
    }

    #[test]
    fn counts_lines_and_bytes_per_hour_source_process_severity() {
        let batch = logs(&[
            (5 * H + 1, "file", Some("sshd"), Some(3), "abc"),
            (5 * H + 2, "file", Some("sshd"), Some(3), "de"),
            (5 * H + 3, "file", Some("cron"), Some(6), "x"),
            (5 * H + 4, "file", Some("sshd"), Some(3), "fghi"),
            (6 * H, "kmsg", None, None, "ü"),
            (-1, "kmsg", None, None, ""),
        ]);
        let mut r = Rollup::new();
        r.add_logs(&batch).unwrap();
        let us = |ns: i64| ns / 1000;
        let got = rows_of(&r.to_file_batch().unwrap());
        let row = |h: i64, s: &str, p: Option<&str>, sev: Option<&str>, l, b| {
            (
                h,
                s.to_string(),
                p.map(String::from),
                sev.map(String::from),
                l,
                b,
            )
        };
        assert_eq!(
            got,
            vec![
                // Before the epoch the hour rounds down, as date_trunc does.
                row(us(-H), "kmsg", None, None, 1, 0),
                row(us(5 * H), "file", Some("cron"), Some("INFO"), 1, 1),
                row(us(5 * H), "file", Some("sshd"), Some("ERROR"), 3, 9),
                row(us(6 * H), "kmsg", None, None, 1, 2),
            ]
        );
    }

    #[test]
    fn merging_stats_files_adds_their_counts() {
        let a = logs(&[
            (H, "file", Some("a"), None, "12"),
            (H, "file", Some("b"), None, "1"),
        ]);
        let b = logs(&[
            (H, "file", Some("a"), None, "123"),
            (2 * H, "file", Some("a"), None, ""),
        ]);
        let encode = |batch: &RecordBatch| {
            let mut r = Rollup::new();
            r.add_logs(batch).unwrap();
            r.encode(&EncodeOptions::default(), Vec::new()).unwrap()
        };
        let files: Vec<RecordBatch> = [encode(&a), encode(&b)]
            .into_iter()
            .map(|bytes| {
                ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
                    .unwrap()
                    .build()
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
            })
            .collect();
        let mut merged = Rollup::new();
        for f in &files {
            assert_eq!(f.schema(), stats_file_schema());
            merged.add_stats(f).unwrap();
        }
        let got: Vec<(Option<String>, i64, i64)> = rows_of(&merged.to_file_batch().unwrap())
            .into_iter()
            .map(|r| (r.2, r.4, r.5))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("a".into()), 2, 5),
                (Some("b".into()), 1, 1),
                (Some("a".into()), 1, 0)
            ]
        );
    }
}
