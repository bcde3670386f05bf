//! The archive schema of infralog: every writer and reader imports its column names,
//! Arrow types, partition layout and version from here, so that nobody spells a column
//! name twice.
//!
//! The `logs` table has two shapes:
//! - [`logs_schema`]: the logical table, what sources emit and what SQL sees;
//! - [`logs_file_schema`]: what a Parquet file stores. The partition columns
//!   ([`PARTITION_COLUMNS`]) are left out because the hive path already carries them;
//!   engines (DataFusion, DuckDB, Spark) add them back from the path.
//!
//! Version 2 (the current one) uses only types that every data-lake engine reads as
//! written: microsecond UTC timestamps and signed integers ([`lake_compatible`] states the
//! rule). Files of version 1 (nanoseconds, unsigned integers) are described by [`v1`]; our
//! readers cast them to the current schema on read, and `infra-collector migrate` rewrites
//! them.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

pub mod anomalies;
pub mod files;
pub mod templates;

/// The version of the files writers produce. Bumped whenever a change is more than a new
/// nullable column (see the rule in README.md); each bump keeps the previous shape in a
/// module like [`v1`], a reader path that casts it, and a test. Written into the key-value
/// metadata of every Parquet file under [`SCHEMA_VERSION_KEY`].
pub const SCHEMA_VERSION: u32 = 2;
/// The oldest version our readers (infra-query, `infra-collector migrate`) still read.
pub const OLDEST_READABLE_VERSION: u32 = 1;
/// Parquet key-value metadata key holding [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "infralog.schema_version";

/// Name of the table of log lines, and of its directory under the archive root.
pub const LOGS_TABLE: &str = "logs";
/// Name of the hourly rollup of `logs` (lines and bytes per hour, host, source, process
/// and severity), kept beside it so that trends over months scan kilobytes, not the logs.
pub const STATS_TABLE: &str = "stats";

/// Column names of the `logs` table.
pub mod col {
    pub const TIMESTAMP: &str = "timestamp";
    pub const HOSTNAME: &str = "hostname";
    pub const LOG_DATE: &str = "log_date";
    pub const SOURCE: &str = "source";
    pub const PRIORITY: &str = "priority";
    pub const SEVERITY: &str = "severity";
    pub const FACILITY: &str = "facility";
    pub const MESSAGE: &str = "message";
    pub const PROCESS_NAME: &str = "process_name";
    pub const PROCESS_ID: &str = "process_id";
    pub const USER_NAME: &str = "user_name";
    pub const UID: &str = "uid";
    pub const UNIT: &str = "unit";
    pub const TEMPLATE_ID: &str = "template_id";
    pub const TAGS: &str = "tags";
    pub const EXTRA: &str = "extra";
    pub const INGESTED_AT: &str = "ingested_at";
    // The `stats` table: its other columns are named as in `logs`.
    pub const HOUR: &str = "hour";
    pub const LINES: &str = "lines";
    pub const BYTES: &str = "bytes";
}

/// Well-known keys of the `extra` map written by the collector itself.
pub mod extra_key {
    /// The line could not be parsed as its format; the value says why. The whole line
    /// is kept in `message`.
    pub const PARSE_ERROR: &str = "parse_error";
    /// The line was longer than the limit and `message` holds only its head; the value is
    /// the original length in bytes.
    pub const TRUNCATED: &str = "truncated";
    /// The message was not valid UTF-8; `message` has U+FFFD in place of the bad bytes and
    /// this holds the original bytes, hex-encoded.
    pub const RAW_HEX: &str = "raw_hex";
    /// Sequence number of a /dev/kmsg record.
    pub const KMSG_SEQ: &str = "kmsg_seq";
    /// This many kmsg records were overwritten by the kernel before this one was read.
    pub const KMSG_LOST_BEFORE: &str = "kmsg_lost_before";
    /// The eBPF hook that captured the row (`raw_tp/sys_enter`, `tp_btf/console`, …).
    pub const EBPF_HOOK: &str = "ebpf_hook";
    /// The sending thread's name, when it differs from the process name.
    pub const THREAD_COMM: &str = "thread_comm";
    pub const TID: &str = "tid";
    pub const GID: &str = "gid";
    /// cgroup v2 id of the sender.
    pub const CGROUP_ID: &str = "cgroup_id";
    /// What a syslog sender wrote in its own header: tag, pid, hostname.
    pub const CLAIMED_TAG: &str = "claimed_tag";
    pub const CLAIMED_PID: &str = "claimed_pid";
    pub const CLAIMED_HOSTNAME: &str = "claimed_hostname";
    /// `true` when the claimed tag or pid contradicts what the kernel saw.
    pub const IDENTITY_MISMATCH: &str = "identity_mismatch";
    /// `pid`, `tag` or `pid,tag`.
    pub const IDENTITY_MISMATCH_REASON: &str = "identity_mismatch_reason";
    /// RFC 5424 MSGID.
    pub const MSGID: &str = "msgid";
    /// The whole line as received, when a syslog parser skipped some of its bytes (a
    /// malformed field); `parse_error` says which.
    pub const RAW: &str = "raw";
    /// A sequence number the sender wrote before its syslog header (Cisco `29: `).
    pub const SEQUENCE: &str = "sequence";
    /// A second timestamp of a syslog line, as written: the device's own stamp after a
    /// relay's header (the row's timestamp is the first).
    pub const ORIGIN_TIME: &str = "origin_time";
    /// Prefix of the fields of a key=value or Check Point payload (`kv.srcip`).
    pub const KV_PREFIX: &str = "kv.";
    /// Prefix of the header and extension fields of a CEF payload (`cef.device_vendor`,
    /// `cef.src`).
    pub const CEF_PREFIX: &str = "cef.";
    /// This many journal entries of the same writer (same seqnum id) were deleted —
    /// vacuumed or rotated away — before the collector could read them.
    pub const JOURNAL_VACUUMED_BEFORE: &str = "journal_vacuumed_before";
    /// Journal field data that is not `NAME=value` (kept whole).
    pub const JOURNAL_INVALID_FIELD: &str = "journal_invalid_field";
    /// Path of the file an imported or tailed line came from.
    pub const FILE_PATH: &str = "file";
    /// `stdout` or `stderr`: the stream a container wrote the line to.
    pub const STREAM: &str = "stream";
    /// `true` when the file's last line had no newline and was archived without one
    /// (the file was rotated away or deleted, or `partial_line_timeout_secs` passed).
    pub const UNTERMINATED: &str = "unterminated";
    /// Docker container id (the directory name) and name (from its `config.v2.json`).
    pub const CONTAINER_ID: &str = "container_id";
    pub const CONTAINER_NAME: &str = "container_name";
    /// Kubernetes namespace, pod and container of a CRI log file, from its path.
    pub const K8S_NAMESPACE: &str = "k8s_namespace";
    pub const K8S_POD: &str = "k8s_pod";
    pub const K8S_CONTAINER: &str = "k8s_container";
    /// `ip:port` of the network sender a row was received from (net source).
    pub const PEER: &str = "peer";
    /// The name a TLS client certificate was accepted for (net source, `tls` listeners
    /// that verify clients).
    pub const TLS_PEER: &str = "tls_peer";
}

/// Values of the `source` column.
pub mod source {
    pub const KMSG: &str = "kmsg";
    pub const SYSLOG: &str = "syslog";
    pub const JOURNALD: &str = "journald";
    pub const FILE: &str = "file";
    pub const NET: &str = "net";
    pub const APP: &str = "app";
}

/// Partition columns, in path order: `<root>/logs/hostname=<h>/log_date=<YYYY-MM-DD>/`.
pub const PARTITION_COLUMNS: [&str; 2] = [col::HOSTNAME, col::LOG_DATE];

/// The severity names, indexed by priority level (0 emerg … 7 debug).
pub const SEVERITY_NAMES: [&str; 8] = [
    "EMERGENCY",
    "ALERT",
    "CRITICAL",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFO",
    "DEBUG",
];

/// The facility names, indexed by facility code (RFC 5424 table 1).
pub const FACILITY_NAMES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity name of a priority level, `None` above 7.
pub fn severity_name(level: u8) -> Option<&'static str> {
    SEVERITY_NAMES.get(level as usize).copied()
}

/// Facility name of a facility code, `None` above 23.
pub fn facility_name(code: u8) -> Option<&'static str> {
    FACILITY_NAMES.get(code as usize).copied()
}

/// Arrow type of both timestamp columns: microseconds, UTC, which Parquet stores as
/// `TIMESTAMP(MICROS, isAdjustedToUTC=true)`. No source states sub-microsecond time (kmsg,
/// journald and RFC 5424 carry µs at most), and nanoseconds are refused by Spark and
/// Iceberg v2 and truncated by Delta.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The element of the `tags` list, named `element` as the Parquet LIST specification
/// wants (arrow-rs would otherwise write its default `item`, which only the
/// backward-compatibility rules of some readers accept).
pub fn tags_element_field() -> Field {
    Field::new("element", DataType::Utf8, true)
}

/// Arrow type of the `tags` column.
pub fn tags_type() -> DataType {
    DataType::List(Arc::new(tags_element_field()))
}

/// The entry struct of the `extra` map. Parquet's MAP logical type wants these names.
pub fn extra_entries_field() -> Field {
    Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ])),
        false,
    )
}

/// Arrow type of the `extra` column.
pub fn extra_type() -> DataType {
    DataType::Map(Arc::new(extra_entries_field()), false)
}

/// The columns of the logical `logs` table, in order: name, type, nullable.
///
/// Integer widths are the smallest signed type that holds every value (Delta, Iceberg and
/// Spark have no unsigned types): `priority` 0…7 → int8; `process_id` (pid_t) → int32;
/// `uid` (uid_t, a u32 up to 4294967295 for "no user") → int64, since int32 would not
/// hold it; `template_id` → int64 (ids are opaque: the miner's u64 is stored bit for bit,
/// so a miner should hand out ids below 2^63 for them to read positive).
fn logs_fields() -> Vec<Field> {
    vec![
        Field::new(col::TIMESTAMP, timestamp_type(), false),
        Field::new(col::HOSTNAME, DataType::Utf8, false),
        Field::new(col::LOG_DATE, DataType::Date32, false),
        Field::new(col::SOURCE, DataType::Utf8, false),
        Field::new(col::PRIORITY, DataType::Int8, true),
        Field::new(col::SEVERITY, DataType::Utf8, true),
        Field::new(col::FACILITY, DataType::Utf8, true),
        Field::new(col::MESSAGE, DataType::Utf8, false),
        Field::new(col::PROCESS_NAME, DataType::Utf8, true),
        Field::new(col::PROCESS_ID, DataType::Int32, true),
        Field::new(col::USER_NAME, DataType::Utf8, true),
        Field::new(col::UID, DataType::Int64, true),
        Field::new(col::UNIT, DataType::Utf8, true),
        Field::new(col::TEMPLATE_ID, DataType::Int64, true),
        Field::new(col::TAGS, tags_type(), true),
        Field::new(col::EXTRA, extra_type(), true),
        Field::new(col::INGESTED_AT, timestamp_type(), false),
    ]
}

static LOGS: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new(Schema::new(logs_fields())));

static LOGS_FILE: LazyLock<SchemaRef> = LazyLock::new(|| without_partition_columns(logs_fields()));

/// The columns of the logical `stats` table: one row per (hour, hostname, source,
/// process_name, severity) with the number of `logs` rows and their message bytes. `hour`
/// is the event time truncated to the hour (UTC); `log_date` is the date of `hour`, so a
/// stats partition sums exactly the logs partition of the same name.
fn stats_fields() -> Vec<Field> {
    vec![
        Field::new(col::HOUR, timestamp_type(), false),
        Field::new(col::HOSTNAME, DataType::Utf8, false),
        Field::new(col::LOG_DATE, DataType::Date32, false),
        Field::new(col::SOURCE, DataType::Utf8, false),
        Field::new(col::PROCESS_NAME, DataType::Utf8, true),
        Field::new(col::SEVERITY, DataType::Utf8, true),
        Field::new(col::LINES, DataType::Int64, false),
        Field::new(col::BYTES, DataType::Int64, false),
    ]
}

pub(crate) fn without_partition_columns(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .into_iter()
            .filter(|f| !PARTITION_COLUMNS.contains(&f.name().as_str()))
            .collect::<Vec<_>>(),
    ))
}

static STATS: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new(Schema::new(stats_fields())));
static STATS_FILE: LazyLock<SchemaRef> =
    LazyLock::new(|| without_partition_columns(stats_fields()));

/// The logical `stats` table.
pub fn stats_schema() -> SchemaRef {
    STATS.clone()
}

/// What a Parquet file of the `stats` table stores: [`stats_schema`] without the partition
/// columns.
pub fn stats_file_schema() -> SchemaRef {
    STATS_FILE.clone()
}

/// One table of the archive: its name (and directory) and logical schema. Every table is
/// partitioned by [`PARTITION_COLUMNS`] and its files follow the naming rule of [`files`].
#[derive(Debug, Clone)]
pub struct Table {
    pub name: &'static str,
    pub schema: SchemaRef,
    /// The schema of its files: `schema` without the partition columns.
    pub file_schema: SchemaRef,
}

/// Every table of the archive, `logs` first.
pub fn tables() -> Vec<Table> {
    vec![
        Table {
            name: LOGS_TABLE,
            schema: logs_schema(),
            file_schema: logs_file_schema(),
        },
        Table {
            name: STATS_TABLE,
            schema: stats_schema(),
            file_schema: stats_file_schema(),
        },
        Table {
            name: templates::TEMPLATES_TABLE,
            schema: templates::templates_schema(),
            file_schema: templates::templates_file_schema(),
        },
        Table {
            name: anomalies::ANOMALIES_TABLE,
            schema: anomalies::anomalies_schema(),
            file_schema: anomalies::anomalies_file_schema(),
        },
    ]
}

/// The logical `logs` table: what sources emit in their record batches.
pub fn logs_schema() -> SchemaRef {
    LOGS.clone()
}

/// What a Parquet file of the `logs` table stores: [`logs_schema`] without the partition
/// columns.
pub fn logs_file_schema() -> SchemaRef {
    LOGS_FILE.clone()
}

/// Directory of one partition of the `logs` table relative to the archive root:
/// `logs/hostname=<h>/log_date=<YYYY-MM-DD>`.
pub fn partition_dir(hostname: &str, log_date: &str) -> String {
    table_partition_dir(LOGS_TABLE, hostname, log_date)
}

/// Directory of one partition of `table` relative to the archive root:
/// `<table>/hostname=<h>/log_date=<YYYY-MM-DD>`. The hostname is percent-encoded where it
/// holds a character that is unsafe in a path segment, as Hive does.
pub fn table_partition_dir(table: &str, hostname: &str, log_date: &str) -> String {
    format!(
        "{table}/{}={}/{}={}",
        col::HOSTNAME,
        escape_partition_value(hostname),
        col::LOG_DATE,
        log_date
    )
}

/// Hive-style escaping of a partition value: `/`, `=`, `%`, control characters and a few
/// others become `%XX`, so every value is one path segment.
pub fn escape_partition_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '/' | '\\' | '=' | '%' | ':' | '#' | '?' | '*' | '"' | '\'' | '[' | ']' | '{' | '}'
            | '^' | '\u{7f}' => out.push_str(&format!("%{:02X}", ch as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        // An empty or dot segment would not survive as a directory name.
        return format!("%{:02X}{}", b'_', out);
    }
    out
}

/// Checks that every column of `schema` has a type that Spark, Trino, DuckDB, pandas /
/// polars, Delta Lake and Iceberg v2 all read from Parquet as written, with no reader
/// option: booleans, signed integers, floats, decimals up to 38 digits, UTF-8 text,
/// binary, dates, timestamps in microseconds UTC, and lists, maps and structs of those,
/// with the nested field names of the Parquet specification (`element`; `key_value`
/// with a non-null `key` and a `value`). Refused: unsigned integers (no unsigned types in
/// Delta, Iceberg, Spark, Trino), nanosecond or zone-less timestamps (Spark refuses
/// `TIMESTAMP(NANOS)`, Iceberg v2 has no ns type), and everything else. Every table
/// schema of the archive passes this; the error names the column and the reason.
pub fn lake_compatible(schema: &Schema) -> Result<(), String> {
    fn check(path: &str, dt: &DataType) -> Result<(), String> {
        match dt {
            DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::Binary
            | DataType::Date32 => Ok(()),
            DataType::Decimal128(p, _) if *p <= 38 => Ok(()),
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC" => Ok(()),
            DataType::Timestamp(unit, tz) => Err(format!(
                "{path}: timestamp({unit:?}, {tz:?}) — use microseconds, UTC"
            )),
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Err(
                format!("{path}: unsigned {dt} — use the next wider signed type"),
            ),
            DataType::List(item) => {
                if item.name() != "element" {
                    return Err(format!(
                        "{path}: list element named {:?}, not \"element\"",
                        item.name()
                    ));
                }
                check(&format!("{path}.element"), item.data_type())
            }
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv)
                    if entries.name() == "key_value"
                        && kv.len() == 2
                        && kv[0].name() == "key"
                        && kv[1].name() == "value"
                        && !kv[0].is_nullable() =>
                {
                    check(&format!("{path}.key"), kv[0].data_type())?;
                    check(&format!("{path}.value"), kv[1].data_type())
                }
                _ => Err(format!(
                    "{path}: map entries must be key_value {{key (not null), value}}"
                )),
            },
            DataType::Struct(fields) if !fields.is_empty() => fields
                .iter()
                .try_for_each(|f| check(&format!("{path}.{}", f.name()), f.data_type())),
            other => Err(format!("{path}: {other} is not read by every engine")),
        }
    }
    schema
        .fields()
        .iter()
        .try_for_each(|f| check(f.name(), f.data_type()))
}

/// Schema version 1, frozen: what files written before version 2 hold. Readers cast it to
/// the current schema column by column (same names, same order): timestamps ns → µs
/// (truncated), `priority` uint8 → int8, `uid` uint32 → int64, `template_id` uint64 →
/// int64, `tags` element `item` → `element`. Nothing else changed.
pub mod v1 {
    use super::*;

    pub const VERSION: u32 = 1;

    /// The file schema of a version 1 `logs` file (no partition columns).
    pub fn logs_file_schema() -> SchemaRef {
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        let tags = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        Arc::new(Schema::new(vec![
            Field::new(col::TIMESTAMP, ts.clone(), false),
            Field::new(col::SOURCE, DataType::Utf8, false),
            Field::new(col::PRIORITY, DataType::UInt8, true),
            Field::new(col::SEVERITY, DataType::Utf8, true),
            Field::new(col::FACILITY, DataType::Utf8, true),
            Field::new(col::MESSAGE, DataType::Utf8, false),
            Field::new(col::PROCESS_NAME, DataType::Utf8, true),
            Field::new(col::PROCESS_ID, DataType::Int32, true),
            Field::new(col::USER_NAME, DataType::Utf8, true),
            Field::new(col::UID, DataType::UInt32, true),
            Field::new(col::UNIT, DataType::Utf8, true),
            Field::new(col::TEMPLATE_ID, DataType::UInt64, true),
            Field::new(col::TAGS, tags, true),
            Field::new(col::EXTRA, extra_type(), true),
            Field::new(col::INGESTED_AT, ts, false),
        ]))
    }
}

/// The type of a `logs` column as the schema reference (README.md) and `\d logs` write
/// it.
pub fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Timestamp(TimeUnit::Nanosecond, Some(tz)) => format!("timestamp(ns, {tz})"),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => format!("timestamp(us, {tz})"),
        DataType::Utf8 => "text".into(),
        DataType::Date32 => "date".into(),
        DataType::Int8 => "int8".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "float64".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::List(item) => format!("list<{}>", type_name(item.data_type())),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{},{}>",
                type_name(kv[0].data_type()),
                type_name(kv[1].data_type())
            ),
            other => format!("{other}"),
        },
        other => format!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns README.md lists in the first table after `heading`.
    fn readme_columns(heading: &str) -> Vec<(String, String, bool)> {
        include_str!("../README.md")
            .lines()
            .skip_while(|l| !l.starts_with(heading))
            .skip_while(|l| !l.starts_with("| column |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (
                    cells[1].to_string(),
                    cells[2].to_string(),
                    cells[3] == "yes",
                )
            })
            .collect()
    }

    fn code_columns(schema: &Schema) -> Vec<(String, String, bool)> {
        schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), type_name(f.data_type()), f.is_nullable()))
            .collect()
    }

    /// The human-readable reference must list exactly the columns of the code, in order,
    /// with the same types and nullability.
    #[test]
    fn readme_tables_match_the_schemas() {
        assert_eq!(
            readme_columns("# The `logs` table"),
            code_columns(&logs_schema())
        );
        assert_eq!(
            readme_columns("## The `stats` table"),
            code_columns(&stats_schema())
        );
        assert_eq!(
            readme_columns("## The `anomalies` table"),
            code_columns(&anomalies::anomalies_schema())
        );
    }

    #[test]
    fn every_table_is_lake_compatible_and_partitioned_alike() {
        for t in tables() {
            assert_eq!(lake_compatible(&t.schema), Ok(()), "{}", t.name);
            for c in PARTITION_COLUMNS {
                assert!(t.schema.field_with_name(c).is_ok(), "{} lacks {c}", t.name);
                assert!(
                    t.file_schema.field_with_name(c).is_err(),
                    "{} file has {c}",
                    t.name
                );
            }
        }
    }

    #[test]
    fn logs_schema_is_lake_compatible_and_v1_was_not() {
        assert_eq!(lake_compatible(&logs_schema()), Ok(()));
        let err = lake_compatible(&v1::logs_file_schema()).unwrap_err();
        assert!(err.starts_with("timestamp: timestamp(Nanosecond"), "{err}");
        let unsigned = Schema::new(vec![Field::new("n", DataType::UInt32, true)]);
        assert!(lake_compatible(&unsigned).unwrap_err().contains("unsigned"));
        let item = Schema::new(vec![Field::new(
            "l",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        )]);
        assert!(lake_compatible(&item).unwrap_err().contains("element"));
    }

    /// v1 and v2 differ only in the types the v1 module lists: same names, same order, same
    /// nullability, so a reader can cast column by column.
    #[test]
    fn v1_differs_from_current_only_in_types() {
        let v1 = v1::logs_file_schema();
        let v2 = logs_file_schema();
        assert_eq!(v1.fields().len(), v2.fields().len());
        let mut changed = Vec::new();
        for (a, b) in v1.fields().iter().zip(v2.fields().iter()) {
            assert_eq!(a.name(), b.name());
            assert_eq!(a.is_nullable(), b.is_nullable());
            if a.data_type() != b.data_type() {
                changed.push(a.name().as_str());
            }
        }
        assert_eq!(
            changed,
            [
                col::TIMESTAMP,
                col::PRIORITY,
                col::UID,
                col::TEMPLATE_ID,
                col::TAGS,
                col::INGESTED_AT
            ]
        );
    }

    #[test]
    fn file_schema_is_logical_schema_minus_partitions() {
        let logical = logs_schema();
        let file = logs_file_schema();
        assert_eq!(
            file.fields().len() + PARTITION_COLUMNS.len(),
            logical.fields().len()
        );
        for p in PARTITION_COLUMNS {
            assert!(logical.field_with_name(p).is_ok());
            assert!(file.field_with_name(p).is_err());
        }
    }

    #[test]
    fn partition_dir_is_hive_layout() {
        assert_eq!(
            partition_dir("web-1", "2026-11-22"),
            "logs/hostname=web-1/log_date=2026-11-22"
        );
        assert_eq!(
            partition_dir("a/b=c", "2026-01-01"),
            "logs/hostname=a%2Fb%3Dc/log_date=2026-01-01"
        );
        assert!(!escape_partition_value("..").contains('/'));
        assert_ne!(escape_partition_value(""), "");
    }

    #[test]
    fn names_tables_cover_all_codes() {
        assert_eq!(severity_name(0), Some("EMERGENCY"));
        assert_eq!(severity_name(7), Some("DEBUG"));
        assert_eq!(severity_name(8), None);
        assert_eq!(facility_name(0), Some("kern"));
        assert_eq!(facility_name(23), Some("local7"));
        assert_eq!(facility_name(24), None);
    }
}
