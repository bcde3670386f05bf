//! JSON application log lines → rows, for every source that receives them (JSON log files,
//! Logstash-style `json_lines` over the network): the well-known keys (time, level,
//! message, logger, host, pid) become columns, every other leaf goes into `extra` with its
//! path joined by dots, and a line that is not a JSON object is kept whole and flagged.

use crate::batch::{ExtraWriter, LogBatchBuilder, Row};
use crate::parse::json::{self, Known, MAX_FLATTEN_DEPTH, Value};

/// Scratch buffers reused from line to line (unescaped column values).
#[derive(Debug, Default)]
pub struct AppJson {
    message: Vec<u8>,
    host: Vec<u8>,
    logger: Vec<u8>,
}

impl AppJson {
    /// Appends the line `base.message` as one row. `base` holds what the source knows
    /// (source, fallback hostname and time, truncation); `cut`: the line was truncated,
    /// so it cannot be valid JSON and is kept as text. `reserved`: `extra` keys the source
    /// writes itself in `common`; a top-level field of the same name becomes `json.<name>`.
    /// Returns whether the line was mapped (false: kept as text with a parse error).
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &mut self,
        builder: &mut LogBatchBuilder,
        base: &Row<'_>,
        cut: bool,
        utc_offset_secs: i32,
        now: i64,
        reserved: &[&str],
        common: impl Fn(&mut ExtraWriter<'_>),
    ) -> bool {
        let line = base.message;
        let app = match json::parse_app(line) {
            Ok(_) if cut => {
                let row = Row {
                    parse_error: Some("json: line longer than the limit"),
                    ..base.clone()
                };
                builder.append(&row, now, common);
                return false;
            }
            Ok(app) => app,
            Err(why) => {
                let row = Row {
                    parse_error: Some(why),
                    ..base.clone()
                };
                builder.append(&row, now, common);
                return false;
            }
        };
        let text = |v: Option<Value<'_>>, out: &mut Vec<u8>| {
            out.clear();
            v.inspect(|v| v.write_text(out)).is_some()
        };
        let has_message = text(app.get(Known::Message), &mut self.message);
        let has_host = text(app.get(Known::Host), &mut self.host);
        let has_logger = text(app.get(Known::Logger), &mut self.logger);
        let time = app.time_ns(utc_offset_secs);
        let pri = app.level();
        let pid = app.pid();
        let row = Row {
            timestamp_ns: time.unwrap_or(base.timestamp_ns),
            hostname: if has_host { &self.host } else { base.hostname },
            pri,
            message: if has_message { &self.message } else { line },
            process_name: has_logger.then_some(self.logger.as_slice()),
            process_id: pid,
            ..base.clone()
        };
        // A well-known key whose value did not map stays in `extra`.
        let used = |k: Known| match k {
            Known::Time => time.is_some(),
            Known::Level => pri.is_some(),
            Known::Pid => pid.is_some(),
            Known::Message | Known::Host | Known::Logger => true,
        };
        builder.append(&row, now, |w| {
            common(w);
            app.object.leaves(|path, v| {
                let skip = app.is_chosen(path) && json::classify(path).is_some_and(used);
                if !skip {
                    put_dotted(w, path, v, reserved);
                }
            });
        });
        true
    }
}

fn put_dotted(w: &mut ExtraWriter<'_>, path: &[&[u8]], v: Value<'_>, reserved: &[&str]) {
    let mut parts: [&[u8]; 2 * MAX_FLATTEN_DEPTH + 1] = [b""; 2 * MAX_FLATTEN_DEPTH + 1];
    let mut n = 0;
    if let [key] = path
        && reserved.iter().any(|r| r.as_bytes() == *key)
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
