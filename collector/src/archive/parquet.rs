//! One partition's rows → one Parquet file: sorted by timestamp, zstd, with statistics and
//! page indexes so that time filters prune row groups and pages. Files are of the current
//! schema version, which the file's key-value metadata states.

use anyhow::{Context, Result};
use arrow::array::{ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{Schema, TimestampMicrosecondType};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use infralog_schemas::{SCHEMA_VERSION, SCHEMA_VERSION_KEY, col, logs_file_schema};

/// How files are written; the defaults suit a log archive.
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub zstd_level: i32,
    /// Rows per row group: the unit of parallelism for readers and of pruning by
    /// statistics.
    pub row_group_rows: usize,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            zstd_level: 3,
            row_group_rows: 256 * 1024,
        }
    }
}

/// Writer settings of a `logs` file.
pub(crate) fn writer_properties(opts: &EncodeOptions) -> Result<WriterProperties> {
    writer_properties_for(&logs_file_schema(), col::TIMESTAMP, opts)
}

/// Writer settings of a file of `schema` whose rows are sorted by the timestamp column
/// `sorted_by`.
pub(crate) fn writer_properties_for(
    schema: &Schema,
    sorted_by: &str,
    opts: &EncodeOptions,
) -> Result<WriterProperties> {
    let ts_index = schema.index_of(sorted_by)? as i32;
    let ts = ColumnPath::from(sorted_by);
    Ok(WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(opts.zstd_level)?))
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_dictionary_enabled(true)
        // Sorted timestamps are small deltas: far denser than a dictionary.
        .set_column_dictionary_enabled(ts.clone(), false)
        .set_column_encoding(ts, Encoding::DELTA_BINARY_PACKED)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: ts_index,
            descending: false,
            nulls_first: false,
        }]))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            SCHEMA_VERSION_KEY.to_string(),
            SCHEMA_VERSION.to_string(),
        )]))
        .build())
}

/// A file of a small table written beside `logs` (templates, anomalies): zstd, the
/// schema version in its metadata, rows as given.
pub fn encode_side_table(batch: &RecordBatch) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            SCHEMA_VERSION_KEY.to_string(),
            SCHEMA_VERSION.to_string(),
        )]))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))?;
    w.write(batch)?;
    w.close()?;
    Ok(out)
}

/// Projects batches of the logical `logs` schema — or of the file schema, which is the
/// same minus the partition columns — onto the file schema, concatenates them and sorts
/// the rows by timestamp (stable, so equal timestamps keep their arrival order).
pub fn sorted_file_batch(batches: &[RecordBatch]) -> Result<RecordBatch> {
    let file_schema = logs_file_schema();
    let projected: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let columns: Vec<ArrayRef> = file_schema
                .fields()
                .iter()
                .map(|f| b.column_by_name(f.name()).cloned())
                .collect::<Option<_>>()
                .context("batch does not follow the logs schema")?;
            Ok(RecordBatch::try_new(file_schema.clone(), columns)?)
        })
        .collect::<Result<_>>()?;
    let all = concat_batches(&file_schema, &projected)?;
    let ts = all
        .column_by_name(col::TIMESTAMP)
        .expect("file schema has timestamp")
        .as_primitive::<TimestampMicrosecondType>()
        .values();
    // Logs nearly always arrive in time order: then there is nothing to do.
    if ts.windows(2).all(|w| w[0] <= w[1]) {
        return Ok(all);
    }
    // A stable sort, so rows with equal timestamps keep their arrival order.
    let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
    order.sort_by_key(|&i| ts[i as usize]);
    let indices = UInt32Array::from(order);
    let sorted = all
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &indices, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(file_schema, sorted)?)
}

/// Encodes rows of the logical `logs` schema (or of the file schema) as one Parquet file
/// of the file schema, sorted by timestamp.
pub fn encode(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    encode_with(batches, &EncodeOptions::default())
}

pub fn encode_with(batches: &[RecordBatch], opts: &EncodeOptions) -> Result<Vec<u8>> {
    let sorted = sorted_file_batch(batches)?;
    let mut out = Vec::with_capacity(sorted.get_array_memory_size() / 4);
    let mut writer =
        ArrowWriter::try_new(&mut out, sorted.schema(), Some(writer_properties(opts)?))?;
    writer.write(&sorted)?;
    writer.close()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{LogBatchBuilder, Row};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::LogicalType;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn batch(label: &str, timestamps: &[i64]) -> RecordBatch {
        let mut b = LogBatchBuilder::new(timestamps.len());
        for (i, &ts) in timestamps.iter().enumerate() {
            let msg = format!("{label}{i}");
            let row = Row {
                timestamp_ns: ts,
                hostname: b"h",
                source: "file",
                message: msg.as_bytes(),
                ..Row::default()
            };
            b.append(&row, 1, |_| {});
        }
        b.finish()
    }

    #[test]
    fn file_is_sorted_zstd_with_version_and_page_index() {
        let us = 1_000;
        let bytes = encode(&[
            batch("a", &[30 * us, 10 * us]),
            batch("b", &[20 * us, 10 * us + 999]),
        ])
        .unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes.clone())).unwrap();
        let meta = reader.metadata();
        let kv = meta.file_metadata().key_value_metadata().unwrap();
        assert!(kv.iter().any(|k| k.key == SCHEMA_VERSION_KEY
            && k.value.as_deref() == Some(&*SCHEMA_VERSION.to_string())));
        // What Spark, Delta and Iceberg need: µs UTC timestamps and signed integers.
        let parquet_schema = meta.file_metadata().schema_descr();
        let column = |name: &str| {
            let i = (0..parquet_schema.num_columns())
                .find(|&i| parquet_schema.column(i).path().string() == name)
                .unwrap();
            parquet_schema.column(i)
        };
        let logical = |name: &str| column(name).logical_type_ref().cloned();
        let micros_utc = Some(LogicalType::timestamp(
            true,
            parquet::basic::TimeUnit::MICROS,
        ));
        assert_eq!(logical(col::TIMESTAMP), micros_utc);
        assert_eq!(logical(col::INGESTED_AT), micros_utc);
        let signed = |bit_width| Some(LogicalType::integer(bit_width, true));
        assert_eq!(logical(col::PRIORITY), signed(8));
        // A plain INT64 is signed.
        for name in [col::UID, col::TEMPLATE_ID] {
            assert_eq!(column(name).physical_type(), parquet::basic::Type::INT64);
            assert_eq!(logical(name), None);
        }
        assert_eq!(logical("tags.list.element"), Some(LogicalType::String));
        let rg = meta.row_group(0);
        assert!(
            rg.columns()
                .iter()
                .all(|c| matches!(c.compression(), Compression::ZSTD(_)))
        );
        assert!(rg.column(0).statistics().is_some());
        assert!(
            rg.column(0).column_index_offset().is_some(),
            "page index written"
        );

        let mut rows = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        let got = rows.next().unwrap().unwrap();
        assert_eq!(got.schema(), logs_file_schema());
        let ts = got.column(0).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.values(), &[10, 10, 20, 30]);
        // Stable: of the two rows at ts=10, the one that arrived first stays first.
        let msg = got.column_by_name(col::MESSAGE).unwrap().as_string::<i32>();
        let order: Vec<&str> = (0..4).map(|i| msg.value(i)).collect();
        assert_eq!(order, ["a1", "b1", "b0", "a0"]);
    }
}
