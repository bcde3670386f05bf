//! The archive schema of infralog: every writer and reader imports its column names,
//! Arrow types, partition layout and version from here, so that nobody spells a column
//! name twice.
//!
//! The `logs` table has two shapes:
//! - [`logs_schema`]: the logical table, what sources emit and what SQL sees;
//! - [`logs_file_schema`]: what a Parquet file stores. The partition columns
//!   ([`PARTITION_COLUMNS`]) are left out because the hive path already carries them;
//!   engines (DataFusion, DuckDB, Spark) add them back from the path.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Bumped whenever a column is added, removed or changes type. Written into the key-value
/// metadata of every Parquet file under [`SCHEMA_VERSION_KEY`].
pub const SCHEMA_VERSION: u32 = 1;
/// Parquet key-value metadata key holding [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "infralog.schema_version";

/// Name of the table of log lines, and of its directory under the archive root.
pub const LOGS_TABLE: &str = "logs";

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

/// Arrow type of both timestamp columns: nanoseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// Arrow type of the `tags` column.
pub fn tags_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
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
fn logs_fields() -> Vec<Field> {
    vec![
        Field::new(col::TIMESTAMP, timestamp_type(), false),
        Field::new(col::HOSTNAME, DataType::Utf8, false),
        Field::new(col::LOG_DATE, DataType::Date32, false),
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
        Field::new(col::TAGS, tags_type(), true),
        Field::new(col::EXTRA, extra_type(), true),
        Field::new(col::INGESTED_AT, timestamp_type(), false),
    ]
}

static LOGS: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new(Schema::new(logs_fields())));

static LOGS_FILE: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(
        logs_fields()
            .into_iter()
            .filter(|f| !PARTITION_COLUMNS.contains(&f.name().as_str()))
            .collect::<Vec<_>>(),
    ))
});

/// The logical `logs` table: what sources emit in their record batches.
pub fn logs_schema() -> SchemaRef {
    LOGS.clone()
}

/// What a Parquet file of the `logs` table stores: [`logs_schema`] without the partition
/// columns.
pub fn logs_file_schema() -> SchemaRef {
    LOGS_FILE.clone()
}

/// Directory of one partition relative to the archive root:
/// `logs/hostname=<h>/log_date=<YYYY-MM-DD>`. The hostname is percent-encoded where it
/// holds a character that is unsafe in a path segment, as Hive does.
pub fn partition_dir(hostname: &str, log_date: &str) -> String {
    format!(
        "{LOGS_TABLE}/{}={}/{}={}",
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

/// The type of a `logs` column as the schema reference (README.md) and `\d logs` write
/// it.
pub fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Timestamp(TimeUnit::Nanosecond, Some(tz)) => format!("timestamp(ns, {tz})"),
        DataType::Utf8 => "text".into(),
        DataType::Date32 => "date".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::Int32 => "int32".into(),
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

    /// The human-readable reference must list exactly the columns of the code, in order,
    /// with the same types and nullability.
    #[test]
    fn readme_table_matches_the_schema() {
        let readme = include_str!("../README.md");
        let rows: Vec<(String, String, bool)> = readme
            .lines()
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
            .collect();
        let code: Vec<(String, String, bool)> = logs_schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), type_name(f.data_type()), f.is_nullable()))
            .collect();
        assert_eq!(rows, code);
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
