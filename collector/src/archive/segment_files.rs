//! The files one spool segment becomes, built while its records arrive: one sorted Parquet
//! file per (hostname, log_date), and beside each the hourly rollup of its rows.
//!
//! Rows are encoded as they come instead of once the segment is sealed, so memory holds
//! the encoded files (about 14 bytes a row) and a bounded amount of rows waiting to be
//! encoded, not the segment's decoded rows. Encoding streams only while a partition's rows arrive in time
//! order, which logs nearly always do. Two things keep that true for what real sources
//! send:
//!
//! - each partition holds back its latest batch, so a batch that overlaps the one before
//!   it (lines a few seconds late, interleaved writers) is merged with it first;
//! - rows older than what a partition already wrote start a new sorted *run*; at the end
//!   the runs of that partition are merged (decoded and encoded again), which costs a
//!   second encoding only for partitions whose input really was out of order.
//!
//! A partition's rows wait in memory until they make a row group, which is then encoded at
//! once: a Parquet column writer costs megabytes while it is open, too much to keep one
//! per partition. What waits is bounded: past [`ArchiverOptions::pending_budget`] the
//! partitions holding the most encode theirs early.
//!
//! [`ArchiverOptions::pending_budget`]: super::ArchiverOptions::pending_budget

use std::collections::HashMap;

use anyhow::{Context, Result};
use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{Date32Type, TimestampMicrosecondType};
use bytes::Bytes;
use infralog_schemas::{LOGS_TABLE, STATS_TABLE, col, logs_file_schema, table_partition_dir};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::compact::{BATCH_ROWS, merge_sorted};
use super::parquet::{EncodeOptions, sorted_file_batch, writer_properties};
use super::stats::Rollup;
use crate::time::format_date;

/// Stats batches a partition keeps before folding them into one.
const STATS_FOLD: usize = 64;

/// A finished file: where it goes in the archive, and its bytes.
pub struct FileOut {
    pub path: String,
    pub bytes: Bytes,
}

/// What [`SegmentFiles::finish`] made.
#[derive(Default)]
pub struct Finished {
    /// `logs` files and their `stats` files, `logs` first within each partition.
    pub files: Vec<FileOut>,
    pub rows: u64,
    /// `logs` files and their bytes.
    pub logs_files: u64,
    pub logs_bytes: u64,
}

pub struct SegmentFiles {
    name: String,
    encode: EncodeOptions,
    pending_budget: usize,
    parts: HashMap<(String, i32), PartFile>,
}

impl SegmentFiles {
    /// The files of segment `seq` of spool `instance`: named `<instance>-<seq>.parquet`
    /// in every partition, so that archiving the segment again overwrites them.
    pub fn new(instance: &str, seq: u64, encode: EncodeOptions, pending_budget: usize) -> Self {
        Self {
            name: format!("{instance}-{seq:016x}.parquet"),
            encode,
            pending_budget,
            parts: HashMap::new(),
        }
    }

    pub fn rows(&self) -> usize {
        self.parts.values().map(|p| p.rows).sum()
    }

    /// Adds rows of the logical `logs` schema.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        for ((host, day), part) in split_by_partition(batch)? {
            let file_rows = sorted_file_batch(&[part])?;
            self.parts
                .entry((host.to_string(), day))
                .or_default()
                .push(file_rows, &self.encode)?;
        }
        self.bound_pending()
    }

    /// Encodes the waiting rows of the partitions holding the most, largest first, until
    /// what waits is within half the budget.
    fn bound_pending(&mut self) -> Result<()> {
        let mut total: usize = self.parts.values().map(|p| p.pending_bytes).sum();
        if total <= self.pending_budget {
            return Ok(());
        }
        let mut by_size: Vec<(usize, (String, i32))> = self
            .parts
            .iter()
            .map(|(k, p)| (p.pending_bytes, k.clone()))
            .collect();
        by_size.sort_unstable_by_key(|p| std::cmp::Reverse(p.0));
        for (size, key) in by_size {
            if total <= self.pending_budget / 2 {
                break;
            }
            if let Some(p) = self.parts.get_mut(&key) {
                p.encode_pending(&self.encode)?;
            }
            total -= size;
        }
        Ok(())
    }

    /// Encodes what is left and returns every file.
    pub fn finish(self) -> Result<Finished> {
        let mut out = Finished::default();
        for ((host, day), part) in self.parts {
            let day = format_date(day);
            let rows = part.rows as u64;
            let (logs, stats) = part.finish(&self.encode)?;
            out.rows += rows;
            out.logs_files += 1;
            out.logs_bytes += logs.len() as u64;
            out.files.push(FileOut {
                path: format!(
                    "{}/{}",
                    table_partition_dir(LOGS_TABLE, &host, &day),
                    self.name
                ),
                bytes: logs,
            });
            out.files.push(FileOut {
                path: format!(
                    "{}/{}",
                    table_partition_dir(STATS_TABLE, &host, &day),
                    self.name
                ),
                bytes: stats,
            });
        }
        Ok(out)
    }
}

/// One partition's file as it is being written.
#[derive(Default)]
struct PartFile {
    /// Sorted runs: each is sorted, and starts earlier than the one before ended.
    runs: Vec<ArrowWriter<Vec<u8>>>,
    /// The next rows go to a new run (they start before the current run ends).
    new_run: bool,
    /// Rows of the current run not encoded yet: a row group's worth is encoded at once,
    /// because a column writer costs megabytes while it is open.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    pending_bytes: usize,
    /// Timestamp of the last row given to the current run.
    last_ts: i64,
    /// The latest batch, held back to be merged with the next one if they overlap.
    held: Option<Held>,
    /// Hourly rollups of the rows pushed, folded into one now and then.
    stats: Vec<RecordBatch>,
    rows: usize,
}

/// A sorted batch of the file schema and its first and last timestamps.
struct Held {
    batch: RecordBatch,
    first: i64,
    last: i64,
}

impl Held {
    fn new(batch: RecordBatch) -> Held {
        let ts = timestamps(&batch);
        let (first, last) = (ts[0], ts[ts.len() - 1]);
        Held { batch, first, last }
    }
}

fn timestamps(batch: &RecordBatch) -> &[i64] {
    batch
        .column_by_name(col::TIMESTAMP)
        .expect("the file schema has a timestamp")
        .as_primitive::<TimestampMicrosecondType>()
        .values()
}

impl PartFile {
    /// Adds a sorted, non-empty batch of the file schema.
    fn push(&mut self, batch: RecordBatch, encode: &EncodeOptions) -> Result<()> {
        self.rows += batch.num_rows();
        let mut rollup = Rollup::new();
        rollup.add_logs(&batch)?;
        self.stats.push(rollup.to_file_batch()?);
        if self.stats.len() >= STATS_FOLD {
            self.stats = vec![fold_stats(&self.stats)?];
        }
        let next = Held::new(batch);
        let Some(held) = self.held.take() else {
            self.held = Some(next);
            return Ok(());
        };
        if held.last <= next.first {
            self.take(held, encode)?;
            self.held = Some(next);
            return Ok(());
        }
        // They overlap: merge them, pass on as many rows as the held batch had, hold the
        // rest.
        let n_held = held.batch.num_rows();
        let n_next = next.batch.num_rows();
        let merged = sorted_file_batch(&[held.batch, next.batch])?;
        self.take(Held::new(merged.slice(0, n_held)), encode)?;
        self.held = Some(Held::new(merged.slice(n_held, n_next)));
        Ok(())
    }

    /// Adds sorted rows to the current run, or to a new one when they start before it
    /// ends.
    fn take(&mut self, h: Held, encode: &EncodeOptions) -> Result<()> {
        let run_has_rows = !self.runs.is_empty() || !self.pending.is_empty();
        if run_has_rows && h.first < self.last_ts {
            self.encode_pending(encode)?;
            self.new_run = true;
        }
        self.last_ts = h.last;
        self.pending_rows += h.batch.num_rows();
        self.pending_bytes += h.batch.get_array_memory_size();
        self.pending.push(h.batch);
        if self.pending_rows >= encode.row_group_rows {
            self.encode_pending(encode)?;
        }
        Ok(())
    }

    /// Encodes the pending rows as a row group of the current run.
    fn encode_pending(&mut self, encode: &EncodeOptions) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self.runs.is_empty() || self.new_run {
            self.runs.push(ArrowWriter::try_new(
                Vec::new(),
                logs_file_schema(),
                Some(writer_properties(encode)?),
            )?);
            self.new_run = false;
        }
        let run = self.runs.last_mut().expect("a run");
        for b in self.pending.drain(..) {
            run.write(&b)?;
        }
        run.flush()?;
        self.pending_rows = 0;
        self.pending_bytes = 0;
        Ok(())
    }

    /// The `logs` file and its `stats` file.
    fn finish(mut self, encode: &EncodeOptions) -> Result<(Bytes, Bytes)> {
        if let Some(h) = self.held.take() {
            self.take(h, encode)?;
        }
        self.encode_pending(encode)?;
        let mut runs = self
            .runs
            .into_iter()
            .map(|w| Ok(Bytes::from(w.into_inner()?)))
            .collect::<Result<Vec<Bytes>>>()?;
        let logs = if runs.len() == 1 {
            runs.pop().expect("one run")
        } else {
            let readers = runs
                .into_iter()
                .map(|b| {
                    ParquetRecordBatchReaderBuilder::try_new(b)
                        .and_then(|r| r.with_batch_size(BATCH_ROWS).build())
                        .context("cannot read back a sorted run")
                })
                .collect::<Result<Vec<_>>>()?;
            Bytes::from(merge_sorted(readers, None, encode)?.0)
        };
        let mut rollup = Rollup::new();
        for b in &self.stats {
            rollup.add_stats(b)?;
        }
        Ok((logs, Bytes::from(rollup.encode(encode, Vec::new())?)))
    }
}

/// Stats batches added up into one.
fn fold_stats(batches: &[RecordBatch]) -> Result<RecordBatch> {
    let mut rollup = Rollup::new();
    for b in batches {
        rollup.add_stats(b)?;
    }
    rollup.to_file_batch()
}

/// Splits a batch of the logical schema into one batch per (hostname, log_date).
fn split_by_partition(batch: &RecordBatch) -> Result<Vec<((&str, i32), RecordBatch)>> {
    let hosts = batch
        .column_by_name(col::HOSTNAME)
        .context("batch has no hostname column")?
        .as_string::<i32>();
    let days = batch
        .column_by_name(col::LOG_DATE)
        .context("batch has no log_date column")?
        .as_primitive::<Date32Type>();
    let n = batch.num_rows();
    let (h0, d0) = (hosts.value(0), days.value(0));
    if (1..n).all(|i| days.value(i) == d0 && hosts.value(i) == h0) {
        return Ok(vec![((h0, d0), batch.clone())]);
    }
    // Groups in order of first appearance, so the result does not depend on hashing.
    let mut index: HashMap<(&str, i32), usize> = HashMap::new();
    let mut groups: Vec<((&str, i32), Vec<u32>)> = Vec::new();
    let mut prev: Option<((&str, i32), usize)> = None;
    for i in 0..n {
        debug_assert!(!hosts.is_null(i));
        let key = (hosts.value(i), days.value(i));
        let g = match prev {
            Some((k, g)) if k == key => g,
            _ => *index.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            }),
        };
        groups[g].1.push(i as u32);
        prev = Some((key, g));
    }
    groups
        .into_iter()
        .map(|(key, idx)| Ok((key, take_record_batch(batch, &UInt32Array::from(idx))?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{LogBatchBuilder, Row};
    use arrow::array::Int64Array;
    use arrow::datatypes::Int64Type;

    const SEC: i64 = 1_000_000_000;

    /// A batch of the logical schema: (host, seconds, message) rows.
    fn batch(rows: &[(&str, i64, String)]) -> RecordBatch {
        let mut b = LogBatchBuilder::new(rows.len());
        for (host, secs, msg) in rows {
            let row = Row {
                timestamp_ns: secs * SEC,
                hostname: host.as_bytes(),
                source: "file",
                message: msg.as_bytes(),
                ..Row::default()
            };
            b.append(&row, 0, |_| {});
        }
        b.finish()
    }

    /// A logs file's path and its (seconds, message) rows.
    type LogsFile = (String, Vec<(i64, String)>);

    /// Each logs file, and each stats file's path and total line count.
    fn read(f: &Finished) -> (Vec<LogsFile>, Vec<(String, i64)>) {
        let (mut logs, mut stats) = (Vec::new(), Vec::new());
        for file in &f.files {
            let reader = ParquetRecordBatchReaderBuilder::try_new(file.bytes.clone())
                .unwrap()
                .build()
                .unwrap();
            let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
            if file.path.starts_with(STATS_TABLE) {
                let lines: i64 = batches
                    .iter()
                    .map(|b| {
                        let c: &Int64Array = b
                            .column_by_name(col::LINES)
                            .unwrap()
                            .as_primitive::<Int64Type>();
                        c.values().iter().sum::<i64>()
                    })
                    .sum();
                stats.push((file.path.clone(), lines));
                continue;
            }
            let mut rows = Vec::new();
            for b in &batches {
                let ts = timestamps(b);
                let msg = b.column_by_name(col::MESSAGE).unwrap().as_string::<i32>();
                for (i, t) in ts.iter().enumerate() {
                    rows.push((t / 1_000_000, msg.value(i).to_string()));
                }
            }
            logs.push((file.path.clone(), rows));
        }
        logs.sort();
        stats.sort();
        (logs, stats)
    }

    fn files(budget: usize, row_group_rows: usize) -> SegmentFiles {
        let encode = EncodeOptions {
            row_group_rows,
            ..EncodeOptions::default()
        };
        SegmentFiles::new("00000000000000aa", 7, encode, budget)
    }

    /// What the files must hold: per host, its rows sorted by time, ties in arrival order.
    fn expected(pushed: &[Vec<(&str, i64, String)>]) -> Vec<LogsFile> {
        let mut by_host: std::collections::BTreeMap<&str, Vec<(i64, String)>> = Default::default();
        for b in pushed {
            for (h, s, m) in b {
                by_host.entry(h).or_default().push((*s, m.clone()));
            }
        }
        by_host
            .into_iter()
            .map(|(h, mut rows)| {
                rows.sort_by_key(|r| r.0);
                let path = format!(
                    "{}/00000000000000aa-0000000000000007.parquet",
                    table_partition_dir(LOGS_TABLE, h, "1970-01-01")
                );
                (path, rows)
            })
            .collect()
    }

    fn check(pushed: Vec<Vec<(&str, i64, String)>>, budget: usize, row_group_rows: usize) {
        let mut f = files(budget, row_group_rows);
        for b in &pushed {
            f.push(&batch(b)).unwrap();
        }
        let total: usize = pushed.iter().map(Vec::len).sum();
        assert_eq!(f.rows(), total);
        let finished = f.finish().unwrap();
        assert_eq!(finished.rows as usize, total);
        let (logs, stats) = read(&finished);
        let want = expected(&pushed);
        assert_eq!(logs, want);
        // Each stats file counts the rows of the logs file of the same name.
        let counts: Vec<i64> = want.iter().map(|(_, r)| r.len() as i64).collect();
        assert_eq!(stats.iter().map(|s| s.1).collect::<Vec<_>>(), counts);
        assert!(
            stats
                .iter()
                .all(|(p, _)| p.ends_with("-0000000000000007.parquet"))
        );
    }

    fn rows(
        host: &'static str,
        secs: impl IntoIterator<Item = i64>,
        tag: &str,
    ) -> Vec<(&'static str, i64, String)> {
        secs.into_iter()
            .enumerate()
            .map(|(i, s)| (host, s, format!("{tag}{i}")))
            .collect()
    }

    #[test]
    fn in_order_rows_of_interleaved_hosts_make_one_sorted_file_per_partition() {
        let mut pushed = Vec::new();
        for c in 0..10 {
            let mut b = rows("a", (0..50).map(|i| c * 100 + i * 2), &format!("a{c}-"));
            b.extend(rows(
                "b",
                (0..30).map(|i| c * 100 + i * 3),
                &format!("b{c}-"),
            ));
            pushed.push(b);
        }
        check(pushed, 64 << 20, 256 * 1024);
    }

    #[test]
    fn late_and_out_of_order_rows_still_make_sorted_files_with_ties_in_arrival_order() {
        // Overlapping neighbours (late lines), a batch older than everything written,
        // unsorted rows inside a batch, and equal timestamps across batches.
        let pushed = vec![
            rows("a", [10, 11, 12, 20], "x"),
            rows("a", [15, 16, 30], "y"),
            rows("a", [40, 41, 42], "z"),
            rows("a", [1, 2, 3], "old"),
            rows("a", [50, 45, 44, 60], "unsorted"),
            rows("a", [60, 60, 61], "tie"),
            rows("a", [5, 60, 100], "wide"),
        ];
        check(pushed, 64 << 20, 256 * 1024);
    }

    #[test]
    fn a_small_budget_encodes_early_and_loses_nothing() {
        let mut pushed = Vec::new();
        for c in 0..20 {
            let mut b = rows("a", (0..200).map(|i| c * 1000 + i), &format!("a{c}-"));
            b.extend(rows("b", (0..100).map(|i| c * 1000 + i), &format!("b{c}-")));
            b.extend(rows("c", [c * 1000 + 999], &format!("c{c}-")));
            pushed.push(b);
        }
        // A budget of a few kilobytes and row groups of 128 rows: row groups all the way.
        check(pushed, 4 << 10, 128);
    }
}
