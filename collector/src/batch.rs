//! Appends rows straight into Arrow column builders of the `logs` schema.
//!
//! This is the one place that enforces the rules every source shares: invalid UTF-8 is
//! replaced and the raw bytes kept in `extra`, oversized messages are truncated and
//! flagged, parse errors are flagged. Nothing here allocates per row once the builders
//! have grown to the chunk size.
//!
//! [`Row`] speaks the collector's own units (nanoseconds, unsigned ids) so that sources
//! need not know the archive schema's types; the builder converts to them (schema
//! version 2: microseconds, signed integers) as it appends.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, Int8Builder, Int32Builder, Int64Builder, ListBuilder, MapBuilder,
    MapFieldNames, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::record_batch::RecordBatch;
use infralog_schemas::{extra_key, facility_name, logs_schema, severity_name, tags_element_field};

use crate::parse::payload::{self, Payload};
use crate::parse::{Pri, Record, rfc5424};
use crate::time::day_of;

/// Default limit on a message, in bytes; longer ones are cut and flagged.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// One row, borrowed from the source's buffers. Optional columns left `None` are null.
#[derive(Debug, Clone, Default)]
pub struct Row<'a> {
    pub timestamp_ns: i64,
    pub hostname: &'a [u8],
    pub source: &'a str,
    pub pri: Option<Pri>,
    pub message: &'a [u8],
    /// Length of the message before the reader cut it, when it did.
    pub original_len: Option<usize>,
    pub process_name: Option<&'a [u8]>,
    pub process_id: Option<i32>,
    pub user_name: Option<&'a [u8]>,
    pub uid: Option<u32>,
    pub unit: Option<&'a [u8]>,
    pub template_id: Option<u64>,
    pub parse_error: Option<&'static str>,
}

impl<'a> Row<'a> {
    /// A row from a parsed record; `fallback_ts_ns` and `default_host` fill what the line
    /// did not state.
    pub fn from_record(
        rec: &Record<'a>,
        source: &'a str,
        default_host: &'a [u8],
        fallback_ts_ns: i64,
    ) -> Row<'a> {
        Row {
            timestamp_ns: rec.timestamp_ns.unwrap_or(fallback_ts_ns),
            hostname: rec.hostname.unwrap_or(default_host),
            source,
            pri: rec.pri,
            message: rec.message,
            process_name: rec.app_name,
            process_id: rec.proc_id,
            parse_error: rec.error,
            ..Row::default()
        }
    }
}

/// Microseconds of a nanosecond time, rounded down (also before 1970), so that a row's
/// `log_date`, computed from the nanoseconds, is the date of its stored timestamp.
pub fn micros(ns: i64) -> i64 {
    ns.div_euclid(1000)
}

/// Writes the `extra` entries of the row being appended.
pub struct ExtraWriter<'b> {
    map: &'b mut MapBuilder<StringBuilder, StringBuilder>,
    key_buf: &'b mut Vec<u8>,
    value_buf: &'b mut Vec<u8>,
}

impl ExtraWriter<'_> {
    /// Adds `key = value`; a value that is not UTF-8 is stored with U+FFFD replacements.
    pub fn put(&mut self, key: &str, value: &[u8]) {
        self.map.keys().append_value(key);
        append_lossy(self.map.values(), value);
    }

    /// Adds an entry whose key is the concatenation of `key_parts` (e.g. `sd-id.name`)
    /// and whose value `fill` writes (e.g. unescaping it), reusing buffers rather than
    /// allocating.
    pub fn put_filled(&mut self, key_parts: &[&[u8]], fill: impl FnOnce(&mut Vec<u8>)) {
        self.key_buf.clear();
        for p in key_parts {
            self.key_buf.extend_from_slice(p);
        }
        self.value_buf.clear();
        fill(self.value_buf);
        append_lossy(self.map.keys(), self.key_buf);
        append_lossy(self.map.values(), self.value_buf);
    }

    /// Adds an entry whose key is the concatenation of `key_parts`.
    pub fn put_joined(&mut self, key_parts: &[&[u8]], value: &[u8]) {
        self.put_filled(key_parts, |out| out.extend_from_slice(value));
    }

    /// Adds what a syslog parser found beyond the columns: MSGID, STRUCTURED-DATA params
    /// (`sd-id.name`), sequence number, second timestamp, payload fields, and the raw line
    /// when some of it is in no field. Every source that parses syslog calls this.
    pub fn put_parsed(&mut self, rec: &Record<'_>) {
        if let Some(msgid) = rec.msgid {
            self.put(extra_key::MSGID, msgid);
        }
        for p in rfc5424::sd_params(rec.structured_data) {
            self.put_filled(&[p.id, b".", p.name], |out| {
                rfc5424::unescape_value(p.value, out)
            });
        }
        if let Some(seq) = rec.sequence {
            self.put(extra_key::SEQUENCE, seq);
        }
        if let Some(t) = rec.origin_time {
            self.put(extra_key::ORIGIN_TIME, t);
        }
        let payload = rec.payload();
        let prefix = match payload {
            Payload::Cef(_) => extra_key::CEF_PREFIX,
            _ => extra_key::KV_PREFIX,
        };
        for f in payload::fields(payload) {
            self.put_filled(&[prefix.as_bytes(), f.key], |out| {
                payload::unescape(&f, out)
            });
        }
        if let Some(raw) = rec.raw {
            self.put(extra_key::RAW, raw);
        }
    }
}

fn append_lossy(b: &mut StringBuilder, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => b.append_value(s),
        Err(_) => b.append_value(String::from_utf8_lossy(bytes)),
    }
}

fn append_opt(b: &mut StringBuilder, bytes: Option<&[u8]>) {
    match bytes {
        Some(v) => append_lossy(b, v),
        None => b.append_null(),
    }
}

/// Column builders for one chunk of the `logs` table.
pub struct LogBatchBuilder {
    timestamp: TimestampMicrosecondBuilder,
    hostname: StringBuilder,
    log_date: Date32Builder,
    source: StringBuilder,
    priority: Int8Builder,
    severity: StringBuilder,
    facility: StringBuilder,
    message: StringBuilder,
    process_name: StringBuilder,
    process_id: Int32Builder,
    user_name: StringBuilder,
    uid: Int64Builder,
    unit: StringBuilder,
    template_id: Int64Builder,
    tags: ListBuilder<StringBuilder>,
    extra: MapBuilder<StringBuilder, StringBuilder>,
    ingested_at: TimestampMicrosecondBuilder,
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    max_message_bytes: usize,
    rows: usize,
}

impl LogBatchBuilder {
    pub fn new(capacity: usize) -> Self {
        Self::with_max_message(capacity, DEFAULT_MAX_MESSAGE_BYTES)
    }

    pub fn with_max_message(capacity: usize, max_message_bytes: usize) -> Self {
        Self::sized(&Sizes::guess(capacity), max_message_bytes)
    }

    /// Builders that hold `sizes` without growing.
    fn sized(sizes: &Sizes, max_message_bytes: usize) -> Self {
        let names = MapFieldNames {
            entry: "key_value".into(),
            key: "key".into(),
            value: "value".into(),
        };
        let rows = sizes.rows;
        let ts = || TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
        let strings = |bytes: usize| StringBuilder::with_capacity(rows, bytes);
        let [
            hostname,
            source,
            severity,
            facility,
            message,
            process_name,
            user_name,
            unit,
        ] = sizes.text;
        Self {
            timestamp: ts(),
            hostname: strings(hostname),
            log_date: Date32Builder::with_capacity(rows),
            source: strings(source),
            priority: Int8Builder::with_capacity(rows),
            severity: strings(severity),
            facility: strings(facility),
            message: strings(message),
            process_name: strings(process_name),
            process_id: Int32Builder::with_capacity(rows),
            user_name: strings(user_name),
            uid: Int64Builder::with_capacity(rows),
            unit: strings(unit),
            template_id: Int64Builder::with_capacity(rows),
            tags: ListBuilder::new(StringBuilder::new()).with_field(tags_element_field()),
            extra: MapBuilder::with_capacity(
                Some(names),
                StringBuilder::with_capacity(sizes.extra_entries, sizes.extra_keys),
                StringBuilder::with_capacity(sizes.extra_entries, sizes.extra_values),
                rows,
            ),
            ingested_at: ts(),
            key_buf: Vec::new(),
            value_buf: Vec::new(),
            max_message_bytes,
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row; `extra` adds the source's own `extra` entries after the shared
    /// flags.
    pub fn append(
        &mut self,
        row: &Row<'_>,
        ingested_at_ns: i64,
        extra: impl FnOnce(&mut ExtraWriter<'_>),
    ) {
        self.timestamp.append_value(micros(row.timestamp_ns));
        append_lossy(&mut self.hostname, row.hostname);
        self.log_date.append_value(day_of(row.timestamp_ns));
        self.source.append_value(row.source);
        match row.pri {
            Some(p) => {
                // A level is 0…7 (three bits of PRI).
                self.priority.append_value(p.level as i8);
                self.severity.append_option(severity_name(p.level));
                self.facility.append_option(facility_name(p.facility));
            }
            None => {
                self.priority.append_null();
                self.severity.append_null();
                self.facility.append_null();
            }
        }

        let mut message = row.message;
        let mut original_len = row.original_len;
        if message.len() > self.max_message_bytes {
            original_len.get_or_insert(message.len());
            message = &message[..self.max_message_bytes];
        }
        let valid_utf8 = match std::str::from_utf8(message) {
            Ok(s) => {
                self.message.append_value(s);
                true
            }
            Err(e) if original_len.is_some() && e.error_len().is_none() => {
                // The cut fell inside a multi-byte character: drop its head.
                let s = std::str::from_utf8(&message[..e.valid_up_to()]).unwrap_or_default();
                self.message.append_value(s);
                true
            }
            Err(_) => {
                self.message.append_value(String::from_utf8_lossy(message));
                false
            }
        };

        append_opt(&mut self.process_name, row.process_name);
        self.process_id.append_option(row.process_id);
        append_opt(&mut self.user_name, row.user_name);
        self.uid.append_option(row.uid.map(i64::from));
        append_opt(&mut self.unit, row.unit);
        // Bit for bit: an id is compared, never added up.
        self.template_id
            .append_option(row.template_id.map(|id| id as i64));
        self.tags.append_null();

        let mut w = ExtraWriter {
            map: &mut self.extra,
            key_buf: &mut self.key_buf,
            value_buf: &mut self.value_buf,
        };
        if let Some(why) = row.parse_error {
            w.put(extra_key::PARSE_ERROR, why.as_bytes());
        }
        if let Some(len) = original_len {
            w.put(extra_key::TRUNCATED, decimal(len as u64, &mut [0; 20]));
        }
        if !valid_utf8 {
            w.put_filled(&[extra_key::RAW_HEX.as_bytes()], |out| {
                hex_into(message, out)
            });
        }
        extra(&mut w);
        // A row with no entries gets an empty map rather than null: `extra['k']` is then
        // simply null and the column needs no null bitmap.
        self.extra
            .append(true)
            .expect("keys and values were appended in pairs");

        self.ingested_at.append_value(micros(ingested_at_ns));
        self.rows += 1;
    }

    /// Takes the rows appended so far as a batch of the logical `logs` schema, leaving the
    /// builder empty for the next chunk — with room for as much as this one held, so that
    /// a source's next chunk does not regrow every buffer from nothing (Arrow's builders
    /// give theirs away).
    pub fn finish(&mut self) -> RecordBatch {
        let sizes = Sizes {
            rows: self.rows,
            text: [
                self.hostname.values_slice().len(),
                self.source.values_slice().len(),
                self.severity.values_slice().len(),
                self.facility.values_slice().len(),
                self.message.values_slice().len(),
                self.process_name.values_slice().len(),
                self.user_name.values_slice().len(),
                self.unit.values_slice().len(),
            ],
            extra_entries: arrow::array::ArrayBuilder::len(self.extra.keys()),
            extra_keys: self.extra.keys().values_slice().len(),
            extra_values: self.extra.values().values_slice().len(),
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.timestamp.finish()),
            Arc::new(self.hostname.finish()),
            Arc::new(self.log_date.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.priority.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.facility.finish()),
            Arc::new(self.message.finish()),
            Arc::new(self.process_name.finish()),
            Arc::new(self.process_id.finish()),
            Arc::new(self.user_name.finish()),
            Arc::new(self.uid.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.template_id.finish()),
            Arc::new(self.tags.finish()),
            Arc::new(self.extra.finish()),
            Arc::new(self.ingested_at.finish()),
        ];
        let batch = RecordBatch::try_new(logs_schema(), columns)
            .expect("builders follow the logs schema column for column");
        let (key_buf, value_buf) = (
            std::mem::take(&mut self.key_buf),
            std::mem::take(&mut self.value_buf),
        );
        *self = Self::sized(&sizes.with_slack(), self.max_message_bytes);
        (self.key_buf, self.value_buf) = (key_buf, value_buf);
        batch
    }
}

/// What a chunk's builders hold: rows, bytes of each text column (in the order of
/// [`LogBatchBuilder::sized`]), and `extra` entries and their key and value bytes.
struct Sizes {
    rows: usize,
    text: [usize; 8],
    extra_entries: usize,
    extra_keys: usize,
    extra_values: usize,
}

impl Sizes {
    /// A first guess for `rows` rows of typical syslog.
    fn guess(rows: usize) -> Sizes {
        let [hostname, source, severity, facility, message, process_name] =
            [8, 6, 6, 5, 96, 8].map(|avg| rows * avg);
        Sizes {
            rows,
            text: [
                hostname,
                source,
                severity,
                facility,
                message,
                process_name,
                0,
                0,
            ],
            extra_entries: 0,
            extra_keys: 0,
            extra_values: 0,
        }
    }

    /// A little more than this, so that a slightly bigger next chunk does not regrow.
    fn with_slack(&self) -> Sizes {
        let more = |n: usize| n + n / 8;
        Sizes {
            rows: more(self.rows),
            text: self.text.map(more),
            extra_entries: more(self.extra_entries),
            extra_keys: more(self.extra_keys),
            extra_values: more(self.extra_values),
        }
    }
}

/// Decimal digits of `v`, written into `buf` without allocating.
pub fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

fn hex_into(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, MapArray};
    use arrow::datatypes::{Int8Type, Int64Type, TimestampMicrosecondType};
    use infralog_schemas::col;

    fn extra_of(batch: &RecordBatch, row: usize) -> Vec<(String, String)> {
        let map: &MapArray = batch.column_by_name(col::EXTRA).unwrap().as_map();
        let entries = map.value(row);
        let keys = entries.column(0).as_string::<i32>();
        let values = entries.column(1).as_string::<i32>();
        (0..entries.len())
            .map(|i| (keys.value(i).to_string(), values.value(i).to_string()))
            .collect()
    }

    #[test]
    fn builds_logs_schema_with_names_and_partition_date() {
        let mut b = LogBatchBuilder::new(4);
        let row = Row {
            timestamp_ns: 86_400 * 1_000_000_000 + 5_999,
            hostname: b"h1",
            source: "kmsg",
            pri: Some(Pri::from_value(3 * 8 + 4)),
            message: b"hello",
            process_name: Some(b"sshd"),
            process_id: Some(42),
            uid: Some(u32::MAX - 1),
            template_id: Some(u64::MAX),
            ..Row::default()
        };
        b.append(&row, 7_000, |w| w.put("k", b"v"));
        let batch = b.finish();
        assert_eq!(batch.schema(), logs_schema());
        assert_eq!(batch.num_rows(), 1);
        let sev = batch
            .column_by_name(col::SEVERITY)
            .unwrap()
            .as_string::<i32>();
        assert_eq!(sev.value(0), "WARNING");
        let fac = batch
            .column_by_name(col::FACILITY)
            .unwrap()
            .as_string::<i32>();
        assert_eq!(fac.value(0), "daemon");
        let pri = batch
            .column_by_name(col::PRIORITY)
            .unwrap()
            .as_primitive::<Int8Type>();
        assert_eq!(pri.value(0), 4);
        let ts = batch.column_by_name(col::TIMESTAMP).unwrap();
        assert_eq!(
            ts.as_primitive::<TimestampMicrosecondType>().value(0),
            86_400 * 1_000_000 + 5,
            "nanoseconds are cut to microseconds"
        );
        let uid = batch.column_by_name(col::UID).unwrap();
        assert_eq!(uid.as_primitive::<Int64Type>().value(0), 4_294_967_294);
        let tid = batch.column_by_name(col::TEMPLATE_ID).unwrap();
        assert_eq!(tid.as_primitive::<Int64Type>().value(0) as u64, u64::MAX);
        let date = batch.column_by_name(col::LOG_DATE).unwrap();
        assert_eq!(
            date.as_primitive::<arrow::datatypes::Date32Type>().value(0),
            1
        );
        let ing = batch.column_by_name(col::INGESTED_AT).unwrap();
        assert_eq!(ing.as_primitive::<TimestampMicrosecondType>().value(0), 7);
        assert_eq!(extra_of(&batch, 0), vec![("k".into(), "v".into())]);
        assert!(b.is_empty());
    }

    #[test]
    fn micros_round_down_before_1970_too() {
        assert_eq!(micros(1_999), 1);
        assert_eq!(micros(-1), -1);
        assert_eq!(micros(-1_000), -1);
        assert_eq!(micros(-1_001), -2);
    }

    #[test]
    fn invalid_utf8_is_replaced_and_kept_raw() {
        let mut b = LogBatchBuilder::new(1);
        let row = Row {
            message: b"ok\xffno",
            hostname: b"h",
            source: "file",
            ..Row::default()
        };
        b.append(&row, 0, |_| {});
        let batch = b.finish();
        let msg = batch
            .column_by_name(col::MESSAGE)
            .unwrap()
            .as_string::<i32>();
        assert_eq!(msg.value(0), "ok\u{fffd}no");
        assert_eq!(
            extra_of(&batch, 0),
            vec![("raw_hex".into(), "6f6bff6e6f".into())]
        );
    }

    #[test]
    fn oversized_message_is_truncated_at_a_char_boundary_and_flagged() {
        let mut b = LogBatchBuilder::with_max_message(1, 4);
        let row = Row {
            message: "abcé".as_bytes(), // 5 bytes, the cut falls inside 'é'
            hostname: b"h",
            source: "file",
            ..Row::default()
        };
        b.append(&row, 0, |_| {});
        let batch = b.finish();
        let msg = batch
            .column_by_name(col::MESSAGE)
            .unwrap()
            .as_string::<i32>();
        assert_eq!(msg.value(0), "abc");
        assert_eq!(extra_of(&batch, 0), vec![("truncated".into(), "5".into())]);
    }

    #[test]
    fn parse_error_is_flagged() {
        let mut b = LogBatchBuilder::new(1);
        let row = Row {
            message: b"garbage",
            hostname: b"h",
            source: "file",
            parse_error: Some("no timestamp"),
            ..Row::default()
        };
        b.append(&row, 0, |_| {});
        let batch = b.finish();
        assert_eq!(
            extra_of(&batch, 0),
            vec![("parse_error".into(), "no timestamp".into())]
        );
        assert!(batch.column_by_name(col::PRIORITY).unwrap().is_null(0));
    }

    /// What a syslog parser found beyond the columns lands in `extra`: a Cisco sequence
    /// number, CEF fields, and for a line with a skipped field, the error and the raw line.
    #[test]
    fn parsed_syslog_extras() {
        use crate::parse::{Format, ParseContext, parse_line};
        let ctx = ParseContext {
            reference_unix_secs: 1_795_341_600,
            utc_offset_secs: 0,
            boot_unix_ns: None,
        };
        let lines: [&[u8]; 3] = [
            b"<189>29: *Apr 29 13:58:40.411: %SYS-5-CONFIG_I: Configured",
            b"<134>Nov 12 09:20:00 ids-2 CEF:0|Vendor|Product|1.0|100|Worm|10|src=10.0.0.1 msg=a b",
            b"<13>Feb 30 12:00:00 h t: m",
        ];
        let mut b = LogBatchBuilder::new(3);
        for line in lines {
            let rec = parse_line(Format::Auto, line, &ctx);
            let row = Row::from_record(&rec, "syslog", b"me", 0);
            b.append(&row, 0, |w| w.put_parsed(&rec));
        }
        let batch = b.finish();
        let has = |row: usize, k: &str, v: &str| {
            assert!(
                extra_of(&batch, row).contains(&(k.into(), v.into())),
                "row {row}: {:?}",
                extra_of(&batch, row)
            )
        };
        has(0, "sequence", "29");
        has(1, "cef.device_vendor", "Vendor");
        has(1, "cef.severity", "10");
        has(1, "cef.src", "10.0.0.1");
        has(1, "cef.msg", "a b");
        has(2, "parse_error", "rfc3164: no such day in that month");
        has(2, "raw", "<13>Feb 30 12:00:00 h t: m");
        let hosts = batch
            .column_by_name(col::HOSTNAME)
            .unwrap()
            .as_string::<i32>();
        assert_eq!((hosts.value(1), hosts.value(2)), ("ids-2", "h"));
    }
}
