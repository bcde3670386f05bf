//! The `anomalies` table: what the detector found unusual, one row per anomaly, on event
//! time. Layout like `logs`:
//! `<root>/anomalies/hostname=<h>/log_date=<YYYY-MM-DD>/<instance>-<seq>.parquet`, where
//! `hostname` is the host the anomaly is about (not necessarily the collector's) and
//! `log_date` the UTC day of `window_start`.
//!
//! An anomaly's `anomaly_id` is a hash of what it is about (host, kind, series, window
//! start), so a row written twice (a retried file, an import run again) is recognisable:
//! `SELECT DISTINCT ON`/`GROUP BY anomaly_id` collapses them.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::timestamp_type;

/// Name of the table, and of its directory under the archive root.
pub const ANOMALIES_TABLE: &str = "anomalies";

/// Column names of the `anomalies` table.
pub mod col {
    pub const ANOMALY_ID: &str = "anomaly_id";
    pub const DETECTED_AT: &str = "detected_at";
    pub const WINDOW_START: &str = "window_start";
    pub const WINDOW_END: &str = "window_end";
    pub const HOSTNAME: &str = "hostname";
    pub const LOG_DATE: &str = "log_date";
    pub const KIND: &str = "kind";
    pub const TEMPLATE_ID: &str = "template_id";
    pub const SOURCE: &str = "source";
    pub const PROCESS_NAME: &str = "process_name";
    pub const OBSERVED: &str = "observed";
    pub const EXPECTED: &str = "expected";
    pub const SCORE: &str = "score";
    pub const SEVERITY: &str = "severity";
    pub const EXPLANATION: &str = "explanation";
    pub const EXAMPLE: &str = "example";
}

/// Values of the `kind` column.
pub mod kind {
    /// A template never seen before, with error severity or error words, after warm-up.
    pub const NEW_TEMPLATE: &str = "new_template";
    /// One template of a host far above its usual rate.
    pub const BURST: &str = "burst";
    /// A busy template of a host stopped while the host kept logging.
    pub const DROP: &str = "drop";
    /// A busy host, or a busy service (source, process) of a host, stopped logging.
    pub const SILENCE: &str = "silence";
    /// A host's error lines (error severity or error words) far above their usual rate.
    pub const ERROR_STORM: &str = "error_storm";
}

fn fields() -> Vec<Field> {
    vec![
        Field::new(col::ANOMALY_ID, DataType::Int64, false),
        Field::new(col::DETECTED_AT, timestamp_type(), false),
        Field::new(col::WINDOW_START, timestamp_type(), false),
        Field::new(col::WINDOW_END, timestamp_type(), false),
        Field::new(col::HOSTNAME, DataType::Utf8, false),
        Field::new(col::LOG_DATE, DataType::Date32, false),
        Field::new(col::KIND, DataType::Utf8, false),
        Field::new(col::TEMPLATE_ID, DataType::Int64, true),
        Field::new(col::SOURCE, DataType::Utf8, true),
        Field::new(col::PROCESS_NAME, DataType::Utf8, true),
        Field::new(col::OBSERVED, DataType::Int64, false),
        Field::new(col::EXPECTED, DataType::Float64, false),
        Field::new(col::SCORE, DataType::Float64, false),
        Field::new(col::SEVERITY, DataType::Utf8, false),
        Field::new(col::EXPLANATION, DataType::Utf8, false),
        Field::new(col::EXAMPLE, DataType::Utf8, true),
    ]
}

static LOGICAL: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new(Schema::new(fields())));
static FILE: LazyLock<SchemaRef> = LazyLock::new(|| crate::without_partition_columns(fields()));

/// The logical `anomalies` table (with its partition columns).
pub fn anomalies_schema() -> SchemaRef {
    LOGICAL.clone()
}

/// What a Parquet file of the table stores: without the partition columns.
pub fn anomalies_file_schema() -> SchemaRef {
    FILE.clone()
}

/// `anomalies/hostname=<h>/log_date=<YYYY-MM-DD>`.
pub fn partition_dir(hostname: &str, log_date: &str) -> String {
    crate::table_partition_dir(ANOMALIES_TABLE, hostname, log_date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lake_engine_reads_it() {
        crate::lake_compatible(&anomalies_schema()).unwrap();
        assert_eq!(
            partition_dir("a/b", "2026-11-29"),
            "anomalies/hostname=a%2Fb/log_date=2026-11-29"
        );
    }
}
