//! Freshness: the `logs` table as the archive's files plus the rows still in a local
//! collector's spool, each row once.
//!
//! A spool segment becomes, for each (hostname, log_date) it holds, one archive file named
//! after it (`<instance>-<seq>.parquet`, or a compacted range of seqs), written before the
//! segment is deleted. A scan therefore reads the spool first and lists the archive
//! second; a spool row is kept only when that listing has no file of its segment in its
//! partition. Whatever the archiver does in between — seal, archive one partition or
//! all, delete the segment, compact — every row is counted once: a segment deleted before
//! it is read has its files in the later listing, and a segment read before it is
//! archived is dropped as soon as the listing shows its file. The listing used for this
//! is the very one the Parquet scan reads (taken from its plan), so no second listing
//! can disagree with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{Date32Type, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;
use infralog_schemas::col;
use infralog_schemas::files::parse_file_name;
use infralog_spool_format::{SpoolRows, read_spool};

/// The spool directory of a collector whose archive is `archive` with the default
/// configuration (`state_dir = ./data/state` beside `archive.path = ./data`).
pub fn default_spool_dir(archive: &Path) -> PathBuf {
    archive.join("state").join("spool")
}

/// `inner` (the archive's `logs` listing table) plus the rows of the spool at `dir`.
#[derive(Debug)]
pub struct FreshLogs {
    inner: Arc<dyn TableProvider>,
    dir: PathBuf,
}

impl FreshLogs {
    pub fn new(inner: Arc<dyn TableProvider>, dir: PathBuf) -> Self {
        Self { inner, dir }
    }

    pub fn spool_dir(&self) -> &Path {
        &self.dir
    }
}

/// The archive files a plan reads: per partition (hostname, log_date), the segment
/// ranges `(instance, first, last)` their names state.
type Archived = HashMap<(String, i32), Vec<(String, u64, u64)>>;

fn archived_files(plan: &Arc<dyn ExecutionPlan>, out: &mut Archived) {
    if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
        && let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>()
    {
        for file in config.file_groups.iter().flat_map(|g| g.iter()) {
            let name = file.object_meta.location.filename().unwrap_or_default();
            let (
                Some(range),
                [
                    ScalarValue::Utf8(Some(host)),
                    ScalarValue::Date32(Some(day)),
                ],
            ) = (parse_file_name(name), file.partition_values.as_slice())
            else {
                continue;
            };
            out.entry((host.clone(), *day)).or_default().push((
                range.instance,
                range.first,
                range.last,
            ));
        }
    }
    for child in plan.children() {
        archived_files(child, out);
    }
}

/// Casts `batch` to `schema` column by column (by name): the spool holds the logical
/// `logs` schema, possibly of an older collector; missing columns become nulls.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => Ok(cast(c, f.data_type())?),
            None => Ok(datafusion::arrow::array::new_null_array(
                f.data_type(),
                batch.num_rows(),
            )),
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The spool rows that no listed archive file holds, conformed to `schema`.
fn unarchived(
    spool: &SpoolRows,
    archived: &Archived,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for seg in &spool.segments {
        let holds = |host: &str, day: i32| {
            let Some(instance) = &spool.instance else {
                return false;
            };
            archived.get(&(host.to_string(), day)).is_some_and(|files| {
                files
                    .iter()
                    .any(|(i, first, last)| i == instance && (*first..=*last).contains(&seg.seq))
            })
        };
        for batch in &seg.batches {
            let batch = conform(batch, schema)?;
            let hosts = batch
                .column_by_name(col::HOSTNAME)
                .ok_or_else(|| DataFusionError::Internal("logs has no hostname".into()))?
                .as_string::<i32>();
            let days = batch
                .column_by_name(col::LOG_DATE)
                .ok_or_else(|| DataFusionError::Internal("logs has no log_date".into()))?
                .as_primitive::<Date32Type>();
            let mut memo: Option<(&str, i32, bool)> = None;
            let keep: BooleanArray = (0..batch.num_rows())
                .map(|i| {
                    if hosts.is_null(i) || days.is_null(i) {
                        return Some(true);
                    }
                    let (h, d) = (hosts.value(i), days.value(i));
                    // Rows come in runs of one partition: remember the last answer.
                    let held = match memo {
                        Some((mh, md, held)) if md == d && mh == h => held,
                        _ => {
                            let held = holds(h, d);
                            memo = Some((h, d, held));
                            held
                        }
                    };
                    Some(!held)
                })
                .collect();
            let kept = filter_record_batch(&batch, &keep)?;
            if kept.num_rows() > 0 {
                out.push(kept);
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl TableProvider for FreshLogs {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Every filter is applied again above the scan: the spool rows are not filtered here.
    /// The archive scan still receives them, so partitions and row groups are pruned.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // First the spool, then the listing (see the module comment).
        let dir = self.dir.clone();
        let spool = tokio::task::spawn_blocking(move || read_spool(&dir))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map_err(|e| DataFusionError::External(e.into()))?;
        if spool.rows() == 0 {
            return self.inner.scan(state, projection, filters, limit).await;
        }
        // No limit: with one, the listing could stop before a file that holds spool rows.
        let archive = self.inner.scan(state, projection, filters, None).await?;
        let mut archived = Archived::new();
        archived_files(&archive, &mut archived);
        let schema = self.schema();
        let rows = unarchived(&spool, &archived, &schema)?;
        if rows.is_empty() {
            return Ok(archive);
        }
        let fresh = MemorySourceConfig::try_new_exec(&[rows], schema, projection.cloned())?;
        if archive.schema().fields().len() != fresh.schema().fields().len()
            || archive
                .schema()
                .fields()
                .iter()
                .zip(fresh.schema().fields())
                .any(|(a, b)| a.data_type() != b.data_type())
        {
            return Err(DataFusionError::Internal(format!(
                "spool rows do not match the archive scan: {:?} vs {:?}",
                fresh.schema(),
                archive.schema()
            )));
        }
        UnionExec::try_new(vec![archive, fresh])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use infralog_spool_format::SegmentRows;

    fn batch(rows: &[(&str, i32, i64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new(col::HOSTNAME, DataType::Utf8, false),
            Field::new(col::LOG_DATE, DataType::Date32, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap()
    }

    #[test]
    fn spool_rows_are_dropped_per_partition_once_their_file_is_listed() {
        let seg = |seq, rows: &[(&str, i32, i64)]| SegmentRows {
            seq,
            batches: vec![batch(rows)],
            undecodable: 0,
        };
        let spool = SpoolRows {
            instance: Some("00000000000000aa".into()),
            segments: vec![
                seg(5, &[("a", 1, 1), ("a", 2, 2), ("b", 1, 3)]),
                seg(6, &[("a", 1, 4), ("b", 1, 5)]),
            ],
        };
        let mut archived = Archived::new();
        // Segment 5 archived for (a, 1) only; a compacted 3..=5 file for (b, 1); another
        // instance's file naming seq 6 in (a, 1) changes nothing.
        archived.insert(
            ("a".into(), 1),
            vec![
                ("00000000000000aa".into(), 5, 5),
                ("00000000000000bb".into(), 6, 6),
            ],
        );
        archived.insert(("b".into(), 1), vec![("00000000000000aa".into(), 3, 5)]);
        let schema = spool.segments[0].batches[0].schema();
        let kept = unarchived(&spool, &archived, &schema).unwrap();
        let values: Vec<i64> = kept
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, [2, 4, 5]);
    }
}
