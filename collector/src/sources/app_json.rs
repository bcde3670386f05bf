//! JSON application log lines → rows, for every source that receives them (JSON log files,
//! Logstash-style `json_lines` over the network): the well-known keys (time, level,
//! message, logger, host, pid) become columns, every other leaf goes into `extra` with its
//! path joined by dots, and a line that is not a JSON object is kept whole and flagged.

use crate::batch::{ExtraWriter, LogBatchBuilder, Row};
use crate::parse::Pri;
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
        let ecs = Ecs::find(&app);
        let has_message = text(app.get(Known::Message), &mut self.message);
        let has_host = text(app.get(Known::Host).or(ecs.syslog_host), &mut self.host);
        let has_logger = text(
            app.get(Known::Logger).or(ecs.service).or(ecs.syslog_app),
            &mut self.logger,
        );
        let time = app.time_ns(utc_offset_secs);
        // A syslog facility and severity stated by the sender (Logstash's syslog
        // fields) say more than a level name.
        let pri = ecs.pri().or_else(|| app.level());
        let pid = app.pid().or(ecs.syslog_pid);
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

/// ECS fields that stand in for a column the well-known keys left empty: `service.name`
/// (process name) and Logstash's `log.syslog.*` (facility, severity, appname, hostname,
/// procid). They stay in `extra` as well.
#[derive(Default)]
struct Ecs<'a> {
    service: Option<Value<'a>>,
    syslog_app: Option<Value<'a>>,
    syslog_host: Option<Value<'a>>,
    syslog_pid: Option<i32>,
    facility: Option<u8>,
    severity: Option<u8>,
}

impl<'a> Ecs<'a> {
    fn find(app: &json::AppRecord<'a>) -> Ecs<'a> {
        let mut e = Ecs::default();
        let small = |v: Value<'_>, max: u8| match v {
            Value::Num(n) | Value::Str(n) => std::str::from_utf8(n)
                .ok()?
                .parse::<u8>()
                .ok()
                .filter(|&x| x <= max),
            _ => None,
        };
        app.object.leaves(|path, v| {
            if matches!(v, Value::Null | Value::Raw(_)) {
                return;
            }
            match path {
                [b"service", b"name"] => {
                    e.service.get_or_insert(v);
                }
                [b"log", b"syslog", rest @ ..] => match rest {
                    [b"appname"] => {
                        e.syslog_app.get_or_insert(v);
                    }
                    [b"hostname"] => {
                        e.syslog_host.get_or_insert(v);
                    }
                    [b"procid"] => {
                        if let Value::Num(n) | Value::Str(n) = v {
                            e.syslog_pid = e
                                .syslog_pid
                                .or_else(|| std::str::from_utf8(n).ok()?.parse().ok());
                        }
                    }
                    [b"facility", b"code"] => e.facility = e.facility.or(small(v, 23)),
                    [b"severity", b"code"] => e.severity = e.severity.or(small(v, 7)),
                    _ => {}
                },
                _ => {}
            }
        });
        e
    }

    fn pri(&self) -> Option<Pri> {
        match (self.facility, self.severity) {
            (Some(f), Some(l)) => Some(Pri {
                facility: f,
                level: l,
            }),
            (None, Some(l)) => Some(Pri::level_only(l)),
            _ => None,
        }
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
