//! Rows of the `logs` schema as JSON documents, the form every sink sends: `@timestamp`
//! (RFC 3339, UTC, microseconds), the columns by name (nulls left out, `log_date` left out
//! as it repeats the timestamp), and each `extra` entry as a field of its own at the top
//! level — `tenant_id` from a JSON log stays `tenant_id`, as Logstash and Filebeat users
//! expect — unless its name is taken by a column, then `extra.<key>`.

use std::io::Write;

use anyhow::{Context, Result};
use arrow::array::{
    Array, AsArray, Int8Array, Int32Array, Int64Array, ListArray, MapArray, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{Int8Type, Int32Type, Int64Type, TimestampMicrosecondType};
use infralog_schemas::col;

/// Names a document uses for itself; an `extra` key of the same name is written as
/// `extra.<key>`.
const TAKEN: &[&str] = &[
    "@timestamp",
    col::HOSTNAME,
    col::SOURCE,
    col::PRIORITY,
    col::SEVERITY,
    col::FACILITY,
    col::MESSAGE,
    col::PROCESS_NAME,
    col::PROCESS_ID,
    col::USER_NAME,
    col::UID,
    col::UNIT,
    col::TEMPLATE_ID,
    col::TAGS,
    col::INGESTED_AT,
    TRUNCATED_FLAG,
];

/// Set on a document whose message a sink had to cut (a UDP datagram's limit).
pub const TRUNCATED_FLAG: &str = "forward_truncated";

/// Typed views of the columns of one batch (of [`infralog_schemas::logs_schema`]).
pub struct Rows<'a> {
    ts: &'a TimestampMicrosecondArray,
    host: &'a StringArray,
    source: &'a StringArray,
    priority: &'a Int8Array,
    severity: &'a StringArray,
    facility: &'a StringArray,
    message: &'a StringArray,
    process_name: &'a StringArray,
    process_id: &'a Int32Array,
    user_name: &'a StringArray,
    uid: &'a Int64Array,
    unit: &'a StringArray,
    template_id: &'a Int64Array,
    tags: &'a ListArray,
    extra: &'a MapArray,
    ingested: &'a TimestampMicrosecondArray,
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array> {
    b.column_by_name(name)
        .map(|c| c.as_ref())
        .with_context(|| format!("rows have no {name} column"))
}

impl<'a> Rows<'a> {
    pub fn new(b: &'a RecordBatch) -> Result<Rows<'a>> {
        let s = |n| -> Result<&'a StringArray> {
            column(b, n)?
                .as_string_opt::<i32>()
                .with_context(|| format!("{n} is not text"))
        };
        Ok(Rows {
            ts: column(b, col::TIMESTAMP)?
                .as_primitive_opt::<TimestampMicrosecondType>()
                .context("timestamp is not in microseconds")?,
            host: s(col::HOSTNAME)?,
            source: s(col::SOURCE)?,
            priority: column(b, col::PRIORITY)?
                .as_primitive_opt::<Int8Type>()
                .context("priority type")?,
            severity: s(col::SEVERITY)?,
            facility: s(col::FACILITY)?,
            message: s(col::MESSAGE)?,
            process_name: s(col::PROCESS_NAME)?,
            process_id: column(b, col::PROCESS_ID)?
                .as_primitive_opt::<Int32Type>()
                .context("process_id type")?,
            user_name: s(col::USER_NAME)?,
            uid: column(b, col::UID)?
                .as_primitive_opt::<Int64Type>()
                .context("uid type")?,
            unit: s(col::UNIT)?,
            template_id: column(b, col::TEMPLATE_ID)?
                .as_primitive_opt::<Int64Type>()
                .context("template_id type")?,
            tags: column(b, col::TAGS)?
                .as_list_opt::<i32>()
                .context("tags type")?,
            extra: column(b, col::EXTRA)?.as_map_opt().context("extra type")?,
            ingested: column(b, col::INGESTED_AT)?
                .as_primitive_opt::<TimestampMicrosecondType>()
                .context("ingested_at type")?,
        })
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Event time, microseconds since the epoch (UTC).
    pub fn micros(&self, i: usize) -> i64 {
        self.ts.value(i)
    }

    pub fn priority(&self, i: usize) -> Option<i8> {
        (!self.priority.is_null(i)).then(|| self.priority.value(i))
    }

    pub fn ingested_micros(&self, i: usize) -> i64 {
        self.ingested.value(i)
    }

    /// The row's columns besides time, host, severity and message, then its `extra`
    /// fields: what OTLP carries as attributes.
    pub fn for_each_attribute(&self, i: usize, mut f: impl FnMut(&str, super::otlp::Attr<'a>)) {
        use super::otlp::Attr;
        let text = |a: &'a StringArray| (!a.is_null(i)).then(|| a.value(i));
        for (k, a) in [
            (col::SOURCE, self.source),
            (col::FACILITY, self.facility),
            (col::PROCESS_NAME, self.process_name),
            (col::USER_NAME, self.user_name),
            (col::UNIT, self.unit),
        ] {
            if let Some(v) = text(a) {
                f(k, Attr::Text(v));
            }
        }
        if !self.process_id.is_null(i) {
            f(col::PROCESS_ID, Attr::Int(self.process_id.value(i) as i64));
        }
        if !self.uid.is_null(i) {
            f(col::UID, Attr::Int(self.uid.value(i)));
        }
        if !self.template_id.is_null(i) {
            f(col::TEMPLATE_ID, Attr::Int(self.template_id.value(i)));
        }
        if !self.extra.is_null(i) {
            let offsets = self.extra.value_offsets();
            let keys = self.extra.keys().as_string::<i32>();
            let values = self.extra.values().as_string::<i32>();
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                if !values.is_null(j) {
                    f(keys.value(j), Attr::Text(values.value(j)));
                }
            }
        }
    }

    pub fn message(&self, i: usize) -> &'a str {
        self.message.value(i)
    }

    /// The value of `extra[key]` of row `i`.
    pub fn extra(&self, i: usize, key: &str) -> Option<&'a str> {
        if self.extra.is_null(i) {
            return None;
        }
        let (start, end) = (
            self.extra.value_offsets()[i] as usize,
            self.extra.value_offsets()[i + 1] as usize,
        );
        let keys = self.extra.keys().as_string::<i32>();
        let values = self.extra.values().as_string::<i32>();
        (start..end)
            .find(|&j| keys.value(j) == key)
            .filter(|&j| !values.is_null(j))
            .map(|j| values.value(j))
    }

    /// A column's text, or an `extra` entry: what templates and tenants refer to.
    pub fn field(&self, i: usize, name: &str) -> Option<&'a str> {
        let text = |a: &'a StringArray| (!a.is_null(i)).then(|| a.value(i));
        match name {
            col::HOSTNAME => text(self.host),
            col::SOURCE => text(self.source),
            col::SEVERITY => text(self.severity),
            col::FACILITY => text(self.facility),
            col::PROCESS_NAME => text(self.process_name),
            col::USER_NAME => text(self.user_name),
            col::UNIT => text(self.unit),
            _ => self.extra(i, name),
        }
    }

    /// Appends row `i` as one JSON object (no newline). `message_limit`: cut the message
    /// to at most this many bytes and flag the document.
    pub fn write_json(
        &self,
        i: usize,
        out: &mut Vec<u8>,
        message_limit: Option<usize>,
        clock: &mut Rfc3339,
    ) {
        out.extend_from_slice(b"{\"@timestamp\":\"");
        clock.write(self.ts.value(i), out);
        out.push(b'"');
        let text = |out: &mut Vec<u8>, name: &str, a: &StringArray| {
            if !a.is_null(i) {
                key(out, name);
                string(out, a.value(i));
            }
        };
        text(out, col::HOSTNAME, self.host);
        text(out, col::SOURCE, self.source);
        let num = |out: &mut Vec<u8>, name: &str, v: Option<i64>| {
            if let Some(v) = v {
                key(out, name);
                let _ = write!(out, "{v}");
            }
        };
        num(
            out,
            col::PRIORITY,
            (!self.priority.is_null(i)).then(|| self.priority.value(i) as i64),
        );
        text(out, col::SEVERITY, self.severity);
        text(out, col::FACILITY, self.facility);
        let message = self.message.value(i);
        key(out, col::MESSAGE);
        let cut = message_limit.filter(|&n| message.len() > n).map(|n| {
            let mut n = n;
            while !message.is_char_boundary(n) {
                n -= 1;
            }
            n
        });
        string(out, &message[..cut.unwrap_or(message.len())]);
        text(out, col::PROCESS_NAME, self.process_name);
        num(
            out,
            col::PROCESS_ID,
            (!self.process_id.is_null(i)).then(|| self.process_id.value(i) as i64),
        );
        text(out, col::USER_NAME, self.user_name);
        num(
            out,
            col::UID,
            (!self.uid.is_null(i)).then(|| self.uid.value(i)),
        );
        text(out, col::UNIT, self.unit);
        num(
            out,
            col::TEMPLATE_ID,
            (!self.template_id.is_null(i)).then(|| self.template_id.value(i)),
        );
        if !self.tags.is_null(i) {
            let tags = self.tags.value(i);
            let tags = tags.as_string::<i32>();
            if !tags.is_empty() {
                key(out, col::TAGS);
                out.push(b'[');
                for (n, t) in tags.iter().flatten().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    string(out, t);
                }
                out.push(b']');
            }
        }
        out.extend_from_slice(b",\"ingested_at\":\"");
        clock.write(self.ingested.value(i), out);
        out.push(b'"');
        if !self.extra.is_null(i) {
            let offsets = self.extra.value_offsets();
            let keys = self.extra.keys().as_string::<i32>();
            let values = self.extra.values().as_string::<i32>();
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                if values.is_null(j) {
                    continue;
                }
                let k = keys.value(j);
                if TAKEN.contains(&k) {
                    let mut prefixed = String::with_capacity(6 + k.len());
                    prefixed.push_str("extra.");
                    prefixed.push_str(k);
                    key(out, &prefixed);
                } else {
                    key(out, k);
                }
                string(out, values.value(j));
            }
        }
        if cut.is_some() {
            key(out, TRUNCATED_FLAG);
            out.extend_from_slice(b"true");
        }
        out.push(b'}');
    }
}

fn key(out: &mut Vec<u8>, k: &str) {
    out.push(b',');
    string(out, k);
    out.push(b':');
}

/// A JSON string literal (RFC 8259 escaping).
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// RFC 3339 timestamps in UTC with microseconds; the date and time of day are formatted
/// once per second, as rows come in time order.
#[derive(Default)]
pub struct Rfc3339 {
    second: Option<i64>,
    prefix: String,
}

impl Rfc3339 {
    pub fn write(&mut self, micros: i64, out: &mut Vec<u8>) {
        let (secs, us) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
        if self.second != Some(secs) {
            let t = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
            self.prefix = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            self.second = Some(secs);
        }
        out.extend_from_slice(self.prefix.as_bytes());
        let _ = write!(out, ".{us:06}Z");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::batch::{LogBatchBuilder, Row};

    pub(crate) fn batch(lines: &[(&str, &[(&str, &str)])]) -> RecordBatch {
        let mut b = LogBatchBuilder::new(lines.len());
        for (i, (msg, extra)) in lines.iter().enumerate() {
            let row = Row {
                timestamp_ns: 1_796_637_600_000_000_000 + i as i64 * 1_000,
                hostname: b"h1",
                source: infralog_schemas::source::APP,
                message: msg.as_bytes(),
                ..Row::default()
            };
            b.append(&row, 1_796_637_601_000_000_000, |w| {
                for (k, v) in extra.iter() {
                    w.put(k, v.as_bytes());
                }
            });
        }
        let batch = b.finish();
        crate::archive::conform(&batch, &infralog_schemas::logs_schema()).unwrap()
    }

    #[test]
    fn rows_become_json_documents() {
        let b = batch(&[
            ("quote \" and \\ and \n and \u{1}", &[("tenant_id", "acme")]),
            ("two", &[("message", "clash"), ("a.b", "c")]),
        ]);
        let rows = Rows::new(&b).unwrap();
        let mut clock = Rfc3339::default();
        let mut out = Vec::new();
        rows.write_json(0, &mut out, None, &mut clock);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["@timestamp"], "2026-12-07T10:00:00.000000Z");
        assert_eq!(v["message"], "quote \" and \\ and \n and \u{1}");
        assert_eq!(v["hostname"], "h1");
        assert_eq!(v["tenant_id"], "acme");
        assert_eq!(rows.field(0, "tenant_id"), Some("acme"));
        assert_eq!(rows.field(1, "tenant_id"), None);
        out.clear();
        rows.write_json(1, &mut out, Some(2), &mut clock);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["@timestamp"], "2026-12-07T10:00:00.000001Z");
        assert_eq!(v["extra.message"], "clash");
        assert_eq!(v["message"], "tw");
        assert_eq!(v[TRUNCATED_FLAG], true);
        assert_eq!(v["a.b"], "c");
    }
}
