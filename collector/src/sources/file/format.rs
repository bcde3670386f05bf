//! Records → rows, per input format: `syslog` (RFC 3164 or 5424 per line), `json`
//! (application logs: well-known keys to columns, the rest flattened into `extra`), `raw`,
//! and the container formats, whose text is the program's line.

use std::sync::Arc;

use infralog_schemas::{extra_key, source};

use super::framing::Record;
use crate::batch::{ExtraWriter, LogBatchBuilder, Row};
use crate::parse::json::{self, Known, MAX_FLATTEN_DEPTH, Value};
use crate::parse::{self, ParseContext, rfc5424};
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
    message: Vec<u8>,
    host: Vec<u8>,
    logger: Vec<u8>,
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
            message: Vec::new(),
            host: Vec::new(),
            logger: Vec::new(),
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
                    if let Some(msgid) = r.msgid {
                        w.put(extra_key::MSGID, msgid);
                    }
                    for p in rfc5424::sd_params(r.structured_data) {
                        w.put_filled(&[p.id, b".", p.name], |out| {
                            rfc5424::unescape_value(p.value, out)
                        });
                    }
                });
            }
            Format::Syslog => self.builder.append(&base, now, common),
            Format::Json => match json::parse_app(rec.text) {
                // A cut line is not valid JSON: it is kept whole (as far as it goes) and
                // flagged by its parse error.
                Ok(app) if rec.original_len.is_none() => {
                    let text = |v: Option<Value<'_>>, out: &mut Vec<u8>| {
                        out.clear();
                        v.inspect(|v| v.write_text(out)).is_some()
                    };
                    let has_message = text(app.get(Known::Message), &mut self.message);
                    let has_host = text(app.get(Known::Host), &mut self.host);
                    let has_logger = text(app.get(Known::Logger), &mut self.logger);
                    let time = app.time_ns(self.parse_ctx.utc_offset_secs);
                    let pri = app.level();
                    let pid = app.pid();
                    let row = Row {
                        timestamp_ns: time.unwrap_or(now),
                        hostname: if has_host { &self.host } else { base.hostname },
                        pri,
                        message: if has_message { &self.message } else { rec.text },
                        process_name: has_logger.then_some(self.logger.as_slice()),
                        process_id: pid,
                        ..base
                    };
                    // A well-known key whose value did not map stays in `extra`.
                    let used = |k: Known| match k {
                        Known::Time => time.is_some(),
                        Known::Level => pri.is_some(),
                        Known::Pid => pid.is_some(),
                        Known::Message | Known::Host | Known::Logger => true,
                    };
                    self.builder.append(&row, now, |w| {
                        common(w);
                        app.object.leaves(|path, v| {
                            let skip =
                                app.is_chosen(path) && json::classify(path).is_some_and(used);
                            if !skip {
                                put_dotted(w, path, v);
                            }
                        });
                    });
                }
                Ok(_) => self.builder.append(
                    &Row {
                        parse_error: Some("json: line longer than the limit"),
                        ..base
                    },
                    now,
                    common,
                ),
                Err(why) => self.builder.append(
                    &Row {
                        parse_error: Some(why),
                        ..base
                    },
                    now,
                    common,
                ),
            },
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

fn put_dotted(w: &mut ExtraWriter<'_>, path: &[&[u8]], v: Value<'_>) {
    let mut parts: [&[u8]; 2 * MAX_FLATTEN_DEPTH + 1] = [b""; 2 * MAX_FLATTEN_DEPTH + 1];
    let mut n = 0;
    if let [key] = path
        && RESERVED.iter().any(|r| r.as_bytes() == *key)
    {
        parts[0] = b"json.";
        n = 1;
    }
    for (i, k) in path.iter().enumerate() {
        if i > 0 {
            parts[n] = b".";
            n += 1;
        }
        parts[n] = k;
        n += 1;
    }
    w.put_filled(&parts[..n], |out| v.write_text(out));
}
