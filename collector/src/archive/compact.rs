//! Compaction: the small files of one host-day become one sorted file, so that a host's day
//! is one object instead of one per spool segment.
//!
//! ## Names carry what a file replaces
//!
//! The archiver names a file after its spool segment, `<instance>-<seq>.parquet`. A
//! compacted file is named after the range of segments it holds,
//! `<instance>-<first>-<last>.parquet`, and holds exactly the rows of this instance's files
//! in that partition whose segments lie in `[first, last]`. The rule for readers
//! ([`covered`]): a file whose range lies inside another file's range of the same instance
//! and partition is already contained in it and is not read
//! ([`infralog_schemas::files`]). Compaction writes the merged
//! file (durably), then deletes its inputs; a crash in between leaves inputs that the rule
//! hides and the next run deletes. infra-query applies the rule when it lists files, so it
//! never sees a row twice or misses one, whatever moment it lists at.
//!
//! Plain Parquet readers (DuckDB, Spark) do not know the rule. For them the window between
//! the merged file appearing and its inputs being deleted (a few deletes, milliseconds
//! locally) could show rows twice. That is why compaction runs on days that are over — where
//! a reader is rarely looking at that instant — and, during the day, only once a partition
//! holds many files. No ordering of plain files can do better: a multi-object swap is not
//! atomic on a filesystem listing or on S3, which is what table formats (Delta, Iceberg) add,
//! at the price of readers that must follow their log; a plain glob over a Delta table sees
//! every replaced file until it is vacuumed, days later.
//!
//! ## Which files
//!
//! Only this instance's files, and only those whose segments have left the spool (the
//! archiver works in segment order, so every segment below the oldest one still in the spool
//! is archived): a segment archived again after a crash must not come back beside the
//! compacted file that already holds its rows. The inputs of one merge are always a
//! contiguous run of ranges with no other file of this instance inside it, so the merged
//! range never hides a file it did not include.
//!
//! The `stats` table follows the same rule with the same names (each of its files is the
//! rollup of the `logs` file of that name); its files are merged by adding up counts.
//!
//! Merging streams: inputs are each sorted by time and are merged row group by row group
//! (a k-way merge), so memory is a few batches per input plus the output being encoded.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use anyhow::{Context, Result};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{cast, interleave};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use infralog_schemas::{LOGS_TABLE, STATS_TABLE, col, logs_file_schema, stats_file_schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::KeyValue;

use super::parquet::{EncodeOptions, writer_properties};
use super::stats::Rollup;
use super::{Archive, conform, partitions};

/// Key of the compacted file's metadata that lists the files merged into it.
pub const COMPACTED_FROM_KEY: &str = "infralog.compacted_from";
pub(crate) const BATCH_ROWS: usize = 8192;
/// Rows decoded at once across all inputs of a merge: each input holds one batch, so many
/// inputs read smaller batches.
const MERGE_WINDOW_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
pub struct CompactOptions {
    /// Files merged at most at once (bounds memory: a few batches per input).
    pub max_inputs: usize,
    /// A partition of a day that is not over is compacted once it holds this many
    /// segment files.
    pub open_day_files: usize,
    pub encode: EncodeOptions,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            max_inputs: 64,
            open_day_files: 32,
            encode: EncodeOptions::default(),
        }
    }
}

pub use infralog_schemas::files::{SegmentRange as Range, covered, parse_file_name as parse_name};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactReport {
    /// Merged `logs` files written, with the number of inputs each replaced.
    pub merged: Vec<(String, usize)>,
    /// `logs` inputs deleted (including leftovers of an interrupted earlier run).
    pub deleted: usize,
    /// `logs` rows merged.
    pub rows: u64,
    /// Merged `stats` files written, and `stats` inputs deleted.
    pub stats_merged: usize,
    pub stats_deleted: usize,
}

/// What compacting one partition did.
#[derive(Default)]
struct Merged {
    file: Option<(String, usize)>,
    deleted: usize,
    rows: u64,
}

/// Compacts every partition of this instance that needs it. `archived_below`: every
/// segment with a lower sequence number is archived and gone from the spool. `today`:
/// days since the epoch (UTC).
pub fn compact(
    archive: &Archive,
    instance: &str,
    archived_below: u64,
    today: i32,
    opts: &CompactOptions,
) -> Result<CompactReport> {
    let mut report = CompactReport::default();
    for table in [LOGS_TABLE, STATS_TABLE] {
        for (dir, date) in partitions(archive, table)? {
            let m = compact_partition(
                archive,
                &dir,
                table,
                instance,
                archived_below,
                date < today,
                opts,
            )?;
            if table == LOGS_TABLE {
                report.merged.extend(m.file);
                report.deleted += m.deleted;
                report.rows += m.rows;
            } else {
                report.stats_merged += m.file.is_some() as usize;
                report.stats_deleted += m.deleted;
            }
        }
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn compact_partition(
    archive: &Archive,
    dir: &str,
    table: &str,
    instance: &str,
    archived_below: u64,
    day_over: bool,
    opts: &CompactOptions,
) -> Result<Merged> {
    let mut report = Merged::default();
    let files: Vec<String> = archive
        .list_files(dir)?
        .into_iter()
        .filter_map(|(path, _)| Some(path.rsplit('/').next()?.to_string()))
        .collect();
    let hidden = covered(files.iter().map(String::as_str));
    // Leftovers of a run that stopped between writing a merged file and deleting its inputs.
    for name in &hidden {
        if parse_name(name).is_some_and(|r| r.instance == instance) {
            archive.delete(&format!("{dir}/{name}"))?;
            report.deleted += 1;
        }
    }
    let mut live: Vec<(String, Range)> = files
        .iter()
        .filter(|n| !hidden.contains(n.as_str()))
        .filter_map(|n| Some((n.clone(), parse_name(n)?)))
        .filter(|(_, r)| r.instance == instance)
        .collect();
    live.sort_by_key(|(_, r)| r.first);
    // Whatever is still in the spool (or above it) stays out, and so does everything after
    // it, so that a merged range never spans a file that is not in it.
    if let Some(i) = live.iter().position(|(_, r)| r.last >= archived_below) {
        live.truncate(i);
    }
    let inputs: Vec<(String, Range)> = if day_over {
        live.into_iter().take(opts.max_inputs).collect()
    } else {
        // During the day, only the segment files after the last merged one: earlier
        // merged files are not rewritten over and over as the day grows.
        let start = live
            .iter()
            .rposition(|(_, r)| r.first != r.last)
            .map_or(0, |i| i + 1);
        let singles: Vec<_> = live.into_iter().skip(start).collect();
        if singles.len() < opts.open_day_files {
            return Ok(report);
        }
        singles.into_iter().take(opts.max_inputs).collect()
    };
    if inputs.len() < 2 {
        return Ok(report);
    }
    let first = inputs.iter().map(|(_, r)| r.first).min().expect("inputs");
    let last = inputs.iter().map(|(_, r)| r.last).max().expect("inputs");
    let name = format!("{instance}-{first:016x}-{last:016x}.parquet");
    let mut readers = Vec::with_capacity(inputs.len());
    let batch_rows = (MERGE_WINDOW_ROWS / inputs.len()).clamp(256, BATCH_ROWS);
    for (n, _) in &inputs {
        let bytes = archive.get(&format!("{dir}/{n}"))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.with_batch_size(batch_rows).build())
            .with_context(|| format!("cannot read {dir}/{n}"))?;
        readers.push(reader);
    }
    let names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
    let merged = if table == STATS_TABLE {
        merge_stats(readers, &names, &opts.encode)
    } else {
        merge(readers, &names, &opts.encode)
    };
    let (bytes, rows) = merged.with_context(|| format!("cannot merge the files of {dir}"))?;
    archive.put(&format!("{dir}/{name}"), bytes)?;
    for n in &names {
        archive.delete(&format!("{dir}/{n}"))?;
    }
    tracing::info!(
        partition = dir,
        file = name,
        inputs = names.len(),
        rows,
        "compacted"
    );
    report.deleted += names.len();
    report.rows += rows;
    report.file = Some((format!("{dir}/{name}"), names.len()));
    Ok(report)
}

/// Stats files are small: all inputs are read and their counts added up.
fn merge_stats(
    readers: Vec<ParquetRecordBatchReader>,
    names: &[&str],
    encode: &EncodeOptions,
) -> Result<(Vec<u8>, u64)> {
    let schema = stats_file_schema();
    let batches = readers
        .into_iter()
        .flatten()
        .map(|b| conform(&b?, &schema))
        .collect::<Result<Vec<_>>>()?;
    let mut rollup = Rollup::new();
    for b in &batches {
        rollup.add_stats(b)?;
    }
    let bytes = rollup.encode(
        encode,
        vec![KeyValue::new(
            COMPACTED_FROM_KEY.to_string(),
            names.join(","),
        )],
    )?;
    Ok((bytes, rollup.len() as u64))
}

/// One input of the merge: its current batch (in the current file schema), that batch's
/// timestamps, and the next row to take.
struct Input {
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    ts: Vec<i64>,
    row: usize,
}

impl Input {
    /// Loads the next non-empty batch; false at the end of the file.
    fn advance(&mut self, schema: &SchemaRef) -> Result<bool> {
        for b in self.reader.by_ref() {
            let b = conform(&b?, schema)?;
            if b.num_rows() == 0 {
                continue;
            }
            let ts = cast(
                b.column_by_name(col::TIMESTAMP)
                    .context("no timestamp column")?,
                &DataType::Int64,
            )?;
            let ts = ts.as_primitive::<Int64Type>();
            // A null timestamp cannot occur in our files; sort one first rather than fail.
            self.ts = (0..ts.len())
                .map(|i| if ts.is_null(i) { i64::MIN } else { ts.value(i) })
                .collect();
            self.batch = Some(b);
            self.row = 0;
            return Ok(true);
        }
        self.batch = None;
        Ok(false)
    }
}

/// The merged file of compacted inputs, which lists them in its metadata.
fn merge(
    readers: Vec<ParquetRecordBatchReader>,
    names: &[&str],
    encode: &EncodeOptions,
) -> Result<(Vec<u8>, u64)> {
    let from = KeyValue::new(COMPACTED_FROM_KEY.to_string(), names.join(","));
    merge_sorted(readers, Some(from), encode)
}

/// A k-way merge of `logs` files that are each sorted by timestamp into one sorted file,
/// with `metadata` added; rows with equal timestamps keep the order of the inputs, then
/// their own. Returns the file and its row count.
pub(crate) fn merge_sorted(
    readers: Vec<ParquetRecordBatchReader>,
    metadata: Option<KeyValue>,
    encode: &EncodeOptions,
) -> Result<(Vec<u8>, u64)> {
    let schema = logs_file_schema();
    let mut out = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut out, schema.clone(), Some(writer_properties(encode)?))?;
    if let Some(kv) = metadata {
        writer.append_key_value_metadata(kv);
    }
    let mut inputs: Vec<Input> = readers
        .into_iter()
        .map(|reader| Input {
            reader,
            batch: None,
            ts: Vec::new(),
            row: 0,
        })
        .collect();
    let mut heap = BinaryHeap::new();
    for (i, input) in inputs.iter_mut().enumerate() {
        if input.advance(&schema)? {
            heap.push(Reverse((input.ts[0], i)));
        }
    }
    // Output rows as (slot, row) into `slots`: the batches the pending rows come from.
    let mut slots: Vec<RecordBatch> = Vec::new();
    let mut slot_of: Vec<Option<usize>> = vec![None; inputs.len()];
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(BATCH_ROWS);
    let mut rows = 0u64;
    while let Some(Reverse((_, i))) = heap.pop() {
        let input = &mut inputs[i];
        let slot = *slot_of[i].get_or_insert_with(|| {
            slots.push(input.batch.clone().expect("a live input has a batch"));
            slots.len() - 1
        });
        picks.push((slot, input.row));
        input.row += 1;
        if input.row == input.ts.len() {
            slot_of[i] = None;
            if input.advance(&schema)? {
                heap.push(Reverse((input.ts[0], i)));
            }
        } else {
            heap.push(Reverse((input.ts[input.row], i)));
        }
        if picks.len() == BATCH_ROWS {
            rows += flush(
                &mut writer,
                &schema,
                &mut slots,
                &mut slot_of,
                &mut picks,
                &inputs,
            )?;
        }
    }
    rows += flush(
        &mut writer,
        &schema,
        &mut slots,
        &mut slot_of,
        &mut picks,
        &inputs,
    )?;
    writer.close()?;
    Ok((out, rows))
}

/// Writes the picked rows as one batch, then keeps only the batches inputs still read from.
fn flush(
    writer: &mut ArrowWriter<&mut Vec<u8>>,
    schema: &SchemaRef,
    slots: &mut Vec<RecordBatch>,
    slot_of: &mut [Option<usize>],
    picks: &mut Vec<(usize, usize)>,
    inputs: &[Input],
) -> Result<u64> {
    if picks.is_empty() {
        return Ok(0);
    }
    let columns = (0..schema.fields().len())
        .map(|c| {
            let arrays: Vec<&dyn Array> = slots.iter().map(|b| b.column(c).as_ref()).collect();
            interleave(&arrays, picks)
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
    let n = picks.len() as u64;
    picks.clear();
    slots.clear();
    for (i, s) in slot_of.iter_mut().enumerate() {
        *s = None;
        if let (Some(b), true) = (&inputs[i].batch, inputs[i].row < inputs[i].ts.len()) {
            slots.push(b.clone());
            *s = Some(slots.len() - 1);
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
