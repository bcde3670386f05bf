//! Writes the `anomalies` table ([`infralog_schemas::anomalies`]): one file per (host the
//! anomaly is about, day of its window start) for each batch of anomalies, named after the
//! collector's instance and a sequence number so that a retried write replaces its file.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use infralog_schemas::anomalies::{anomalies_file_schema, partition_dir};

use super::anomaly::Anomaly;
use crate::archive::Archive;
use crate::archive::parquet::encode_side_table as encode;
use crate::time::{day_of, format_date};

pub struct AnomalyWriter {
    pub archive: Archive,
    /// The spool's instance id: first part of every file name.
    pub instance: String,
}

impl AnomalyWriter {
    /// Writes `anomalies` as file `seq` of each partition they fall in.
    pub fn write(&self, anomalies: &[Anomaly], seq: u64) -> Result<()> {
        let mut parts: BTreeMap<(&str, i32), Vec<&Anomaly>> = BTreeMap::new();
        for a in anomalies {
            parts
                .entry((&a.hostname, day_of(a.window_start_us.saturating_mul(1000))))
                .or_default()
                .push(a);
        }
        for ((host, day), rows) in parts {
            let path = format!(
                "{}/{}-{seq:016x}.parquet",
                partition_dir(host, &format_date(day)),
                self.instance
            );
            self.archive.put(&path, encode(&batch(&rows)?)?)?;
        }
        Ok(())
    }
}

fn batch(rows: &[&Anomaly]) -> Result<RecordBatch> {
    let n = rows.len();
    let ts = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut detected, mut start, mut end) = (ts(), ts(), ts());
    let mut id = Int64Builder::with_capacity(n);
    let mut kind = StringBuilder::new();
    let mut template = Int64Builder::with_capacity(n);
    let mut source = StringBuilder::new();
    let mut process = StringBuilder::new();
    let mut observed = Int64Builder::with_capacity(n);
    let mut expected = Float64Builder::with_capacity(n);
    let mut score = Float64Builder::with_capacity(n);
    let mut severity = StringBuilder::new();
    let mut explanation = StringBuilder::new();
    let mut example = StringBuilder::new();
    for a in rows {
        id.append_value(a.id);
        detected.append_value(a.detected_at_us);
        start.append_value(a.window_start_us);
        end.append_value(a.window_end_us);
        kind.append_value(&a.kind);
        template.append_option(a.template_id);
        source.append_option(a.source.as_deref());
        process.append_option(a.process_name.as_deref());
        observed.append_value(a.observed);
        expected.append_value(a.expected);
        score.append_value(a.score);
        severity.append_value(a.severity.as_str());
        explanation.append_value(&a.explanation);
        example.append_option(a.example.as_deref());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(detected.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(kind.finish()),
        Arc::new(template.finish()),
        Arc::new(source.finish()),
        Arc::new(process.finish()),
        Arc::new(observed.finish()),
        Arc::new(expected.finish()),
        Arc::new(score.finish()),
        Arc::new(severity.finish()),
        Arc::new(explanation.finish()),
        Arc::new(example.finish()),
    ];
    Ok(RecordBatch::try_new(anomalies_file_schema(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::anomaly::Severity;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn writes_one_file_per_host_and_day_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open_with(
            dir.path().to_str().unwrap(),
            &infralog_store::S3Settings::default(),
        )
        .unwrap();
        let a = |host: &str, day: i64| Anomaly {
            id: 9,
            detected_at_us: day * 86_400_000_000 + 1,
            window_start_us: day * 86_400_000_000,
            window_end_us: day * 86_400_000_000 + 1,
            hostname: host.into(),
            kind: "burst".into(),
            template_id: Some(3),
            source: None,
            process_name: Some("sshd".into()),
            observed: 40,
            expected: 2.5,
            score: 9.0,
            severity: Severity::Warning,
            explanation: "x".into(),
            example: None,
        };
        let w = AnomalyWriter {
            archive,
            instance: "abc".into(),
        };
        w.write(&[a("h1", 20000), a("h1", 20001), a("h2", 20000)], 7)
            .unwrap();
        let f = dir
            .path()
            .join("anomalies/hostname=h1/log_date=2024-10-04/abc-0000000000000007.parquet");
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 1);
        assert!(dir.path().join("anomalies/hostname=h2").exists());
    }
}
