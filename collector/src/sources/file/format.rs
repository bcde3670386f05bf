//! Records → rows, per input format: `syslog` (RFC 3164 or 5424 per line), `json`
//! (application logs: well-known keys to columns, the rest flattened into `extra`), `raw`,
//! and the container formats, whose text is the program's line.

use std::sync::Arc;

use infralog_schemas::{extra_key, source};

use super::framing::Record;
use crate::batch::{ExtraWriter, LogBatchBuilder, Row};
use crate::parse::{self, ParseContext};
use crate::sources::app_json::AppJson;
use crate::time::now_ns;

/// How the lines of an input are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// RFC 3164 or RFC 5424, detected per line.
    Syslog,
    /// One JSON object per line.
    Json,
    /// The line is the message.
    Raw,
    /// Docker json-file driver.
    Docker,
    /// Kubernetes CRI log files.
    Cri,
}

impl Format {
    fn source(self) -> &'static str {
        match self {
            Format::Syslog | Format::Raw => source::FILE,
            Format::Json | Format::Docker | Format::Cri => source::APP,
        }
    }
}

/// Appends the records of one file to its batch.
pub struct RowWriter {
    format: Format,
    hostname: Arc<str>,
    path: String,
    /// `extra` entries every row of this file carries (container identity).
    fixed: Vec<(&'static str, String)>,
    pub parse_ctx: ParseContext,
    json: AppJson,
    pub builder: LogBatchBuilder,
    /// Records ending at or before this offset were archived before a restart.
    pub skip_until: u64,
    /// Offset just past the last record appended.
    pub emitted_end: u64,
}

impl RowWriter {
    pub fn new(
        format: Format,
        hostname: Arc<str>,
        path: String,
        fixed: Vec<(&'static str, String)>,
        parse_ctx: ParseContext,
        max_message_bytes: usize,
    ) -> RowWriter {
        RowWriter {
            format,
            hostname,
            path,
            fixed,
            parse_ctx,
            json: AppJson::default(),
            builder: LogBatchBuilder::with_max_message(64, max_message_bytes),
            skip_until: 0,
            emitted_end: 0,
        }
    }

    pub fn set_path(&mut self, path: String) {
        self.path = path;
    }

    pub fn append(&mut self, rec: &Record<'_>) {
        if rec.end <= self.skip_until {
            return;
        }
        self.emitted_end = self.emitted_end.max(rec.end);
        let now = now_ns();
        let base = Row {
            timestamp_ns: rec.timestamp_ns.unwrap_or(now),
            hostname: self.hostname.as_bytes(),
            source: self.format.source(),
            message: rec.text,
            original_len: rec.original_len,
            parse_error: rec.parse_error,
            ..Row::default()
        };
        let (path, fixed) = (self.path.as_bytes(), &self.fixed);
        let common = |w: &mut ExtraWriter<'_>| {
            w.put(extra_key::FILE_PATH, path);
            for (k, v) in fixed {
                w.put(k, v.as_bytes());
            }
            if let Some(s) = rec.stream {
                w.put(extra_key::STREAM, s.as_bytes());
            }
            if rec.unterminated {
                w.put(extra_key::UNTERMINATED, b"true");
            }
        };
        match self.format {
            Format::Raw | Format::Docker | Format::Cri => {
                self.builder.append(&base, now, common);
            }
            Format::Syslog if rec.parse_error.is_none() => {
                let r = parse::parse_line(parse::Format::Auto, rec.text, &self.parse_ctx);
                let row = Row {
                    original_len: rec.original_len,
                    ..Row::from_record(&r, base.source, self.hostname.as_bytes(), now)
                };
                self.builder.append(&row, now, |w| {
                    common(w);
                    w.put_parsed(&r);
                });
            }
            Format::Syslog => self.builder.append(&base, now, common),
            Format::Json => {
                let cut = rec.original_len.is_some();
                let utc_offset = self.parse_ctx.utc_offset_secs;
                self.json.append(
                    &mut self.builder,
                    &base,
                    cut,
                    utc_offset,
                    now,
                    &RESERVED,
                    common,
                );
            }
        }
    }
}

/// Keys the collector writes itself; an application's field of the same name is stored as
/// `json.<name>` so that neither hides the other.
const RESERVED: [&str; 11] = [
    extra_key::FILE_PATH,
    extra_key::PARSE_ERROR,
    extra_key::TRUNCATED,
    extra_key::RAW_HEX,
    extra_key::STREAM,
    extra_key::UNTERMINATED,
    extra_key::CONTAINER_ID,
    extra_key::CONTAINER_NAME,
    extra_key::K8S_NAMESPACE,
    extra_key::K8S_POD,
    extra_key::K8S_CONTAINER,
];
