//! Archive: sealed spool segments in, sorted zstd Parquet out, in the hive layout of the
//! schema crate.
//!
//! - [`parquet`] encodes one partition's rows as a file;
//! - [`store`] puts files into an `object_store` (a local directory or S3);
//! - [`archiver`] is the thread that turns each sealed segment into files and then deletes
//!   the segment;
//! - [`retention`] deletes partitions past the TTL;
//! - [`stats`] rolls `logs` rows up into the hourly `stats` table;
//! - [`compact`] merges the small files of a host-day into one;
//! - [`migrate`] rewrites files of an older schema version as the current one.

pub mod archiver;
pub mod compact;
pub mod migrate;
pub mod parquet;
pub mod retention;
pub mod segment_files;
pub mod stats;
pub mod store;

pub use archiver::{ArchiveReport, Archiver, ArchiverOptions};
pub use store::Archive;

use anyhow::{Context, Result};
use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use infralog_schemas::col;

use crate::time::parse_date;

/// Casts a batch written by another version of the collector (a spooled chunk, an older
/// file) to `schema`: columns matched by name and cast, missing ones null.
pub(crate) fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => cast(c, f.data_type()).with_context(|| {
                format!("column {} cannot be read as {}", f.name(), f.data_type())
            }),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Every `<table>/hostname=…/log_date=…` directory of the archive with its date (days since
/// the epoch); directories whose date does not parse are left out.
pub fn partitions(archive: &Archive, table: &str) -> Result<Vec<(String, i32)>> {
    let date_prefix = format!("{}=", col::LOG_DATE);
    let mut out = Vec::new();
    for host in archive.list_dirs(table)? {
        let host_dir = format!("{table}/{host}");
        for day in archive.list_dirs(&host_dir)? {
            if let Some(date) = day.strip_prefix(&date_prefix).and_then(parse_date) {
                out.push((format!("{host_dir}/{day}"), date));
            }
        }
    }
    Ok(out)
}
