//! The `templates` table: the template miner's templates, one row per version of a
//! template's text, as the miner knew it when it wrote the file. Layout like `logs`:
//! `<root>/templates/hostname=<h>/log_date=<YYYY-MM-DD>/<instance>-<seq>.parquet`, where
//! `hostname` is the collector's (the miner mines all the lines it collects) and
//! `log_date` the day of the template's last line (event time).
//!
//! Files are snapshots, written about once a minute with the templates that took lines
//! since the previous file: a template appears in many files, and the newest row of a
//! `(hostname, template_id, version)` (largest `written_at`) has its latest count and
//! last-seen time. README.md shows the query.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::{escape_partition_value, timestamp_type};

/// Name of the table, and of its directory under the archive root.
pub const TEMPLATES_TABLE: &str = "templates";

/// Column names of the `templates` table.
pub mod col {
    pub const TEMPLATE_ID: &str = "template_id";
    pub const VERSION: &str = "version";
    pub const TEXT: &str = "text";
    pub const CURRENT: &str = "current";
    pub const VERSION_SINCE: &str = "version_since";
    pub const FIRST_SEEN: &str = "first_seen";
    pub const LAST_SEEN: &str = "last_seen";
    pub const COUNT: &str = "count";
    pub const EXAMPLE: &str = "example";
    pub const HOSTNAME: &str = "hostname";
    pub const LOG_DATE: &str = "log_date";
    pub const WRITTEN_AT: &str = "written_at";
}

fn fields() -> Vec<Field> {
    vec![
        Field::new(col::TEMPLATE_ID, DataType::Int64, false),
        Field::new(col::VERSION, DataType::Int32, false),
        Field::new(col::TEXT, DataType::Utf8, false),
        Field::new(col::CURRENT, DataType::Boolean, false),
        Field::new(col::VERSION_SINCE, timestamp_type(), false),
        Field::new(col::FIRST_SEEN, timestamp_type(), false),
        Field::new(col::LAST_SEEN, timestamp_type(), false),
        Field::new(col::COUNT, DataType::Int64, false),
        Field::new(col::EXAMPLE, DataType::Utf8, true),
        Field::new(col::HOSTNAME, DataType::Utf8, false),
        Field::new(col::LOG_DATE, DataType::Date32, false),
        Field::new(col::WRITTEN_AT, timestamp_type(), false),
    ]
}

static LOGICAL: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new(Schema::new(fields())));
static FILE: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(
        fields()
            .into_iter()
            .filter(|f| f.name() != col::HOSTNAME && f.name() != col::LOG_DATE)
            .collect::<Vec<_>>(),
    ))
});

/// The logical `templates` table (with its partition columns).
pub fn templates_schema() -> SchemaRef {
    LOGICAL.clone()
}

/// What a Parquet file of the table stores: without the partition columns.
pub fn templates_file_schema() -> SchemaRef {
    FILE.clone()
}

/// `templates/hostname=<h>/log_date=<YYYY-MM-DD>`.
pub fn partition_dir(hostname: &str, log_date: &str) -> String {
    format!(
        "{TEMPLATES_TABLE}/{}={}/{}={}",
        col::HOSTNAME,
        escape_partition_value(hostname),
        col::LOG_DATE,
        log_date
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lake_engine_reads_it() {
        crate::lake_compatible(&templates_schema()).unwrap();
        assert_eq!(
            templates_file_schema().fields().len() + 2,
            templates_schema().fields().len()
        );
        assert_eq!(
            partition_dir("a/b", "2026-11-29"),
            "templates/hostname=a%2Fb/log_date=2026-11-29"
        );
    }
}
