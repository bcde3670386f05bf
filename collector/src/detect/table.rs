//! Writes the `templates` table ([`infralog_schemas::templates`]): the templates that took
//! lines since the last write, one row per version, one file per `log_date` (the day of
//! the template's last line), named after the collector's instance and a sequence number
//! so that a retried write replaces its file rather than adding one.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{
    ArrayRef, BooleanBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use infralog_schemas::templates::{partition_dir, templates_file_schema};

use super::miner::{Miner, Template};
use crate::archive::Archive;
use crate::archive::parquet::encode_side_table as encode;
use crate::time::{day_of, format_date};

/// Where the table goes and whose templates they are.
pub struct TableWriter {
    pub archive: Archive,
    pub hostname: String,
    /// The spool's instance id: first part of every file name.
    pub instance: String,
}

impl TableWriter {
    /// Writes the templates of `miner` that changed since the last write as file `seq`,
    /// and returns how many rows it wrote. The caller marks them written (and moves to
    /// the next `seq`) only once this succeeded.
    pub fn write(&self, miner: &Miner, seq: u64, written_at_us: i64) -> Result<usize> {
        let mut by_day: BTreeMap<i32, Vec<&Template>> = BTreeMap::new();
        for t in miner.templates().filter(|t| t.dirty) {
            by_day
                .entry(day_of(t.last_seen_us.saturating_mul(1000)))
                .or_default()
                .push(t);
        }
        let mut rows = 0;
        for (day, templates) in by_day {
            let batch = batch(&templates, written_at_us)?;
            rows += batch.num_rows();
            let path = format!(
                "{}/{}-{seq:016x}.parquet",
                partition_dir(&self.hostname, &format_date(day)),
                self.instance
            );
            self.archive.put(&path, encode(&batch)?)?;
        }
        Ok(rows)
    }
}

fn batch(templates: &[&Template], written_at_us: i64) -> Result<RecordBatch> {
    let n: usize = templates.iter().map(|t| t.versions.len()).sum();
    let mut id = Int64Builder::with_capacity(n);
    let mut version = Int32Builder::with_capacity(n);
    let mut text = StringBuilder::new();
    let mut current = BooleanBuilder::with_capacity(n);
    let ts = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut since, mut first, mut last, mut written) = (ts(), ts(), ts(), ts());
    let mut count = Int64Builder::with_capacity(n);
    let mut example = StringBuilder::new();
    for t in templates {
        for v in &t.versions {
            id.append_value(t.id);
            version.append_value(v.version.min(i32::MAX as u32) as i32);
            text.append_value(&v.text);
            current.append_value(v.version == t.version);
            since.append_value(v.since_us);
            first.append_value(t.first_seen_us);
            last.append_value(t.last_seen_us);
            count.append_value(t.count.min(i64::MAX as u64) as i64);
            if t.example.is_empty() {
                example.append_null();
            } else {
                example.append_value(&t.example);
            }
            written.append_value(written_at_us);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(version.finish()),
        Arc::new(text.finish()),
        Arc::new(current.finish()),
        Arc::new(since.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(count.finish()),
        Arc::new(example.finish()),
        Arc::new(written.finish()),
    ];
    Ok(RecordBatch::try_new(templates_file_schema(), columns)?)
}
