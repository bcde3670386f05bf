//! The collector's own log lines, fitted to where they go: under systemd (stderr is the
//! journal's stream, `JOURNAL_STREAM`) plain lines with a `<N>` priority prefix and no
//! timestamp, since journald stamps and ranks each line itself; JSON lines on request
//! (`INFRALOG_LOG_FORMAT=json`, for log shippers); else text with timestamps, coloured
//! only for a person at a terminal.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Journald,
    Json,
}

impl LogFormat {
    /// `INFRALOG_LOG_FORMAT` (`text`, `json`, `journald`) when set, else journald when
    /// stderr is the journal's stream, else text.
    pub fn from_env() -> Result<LogFormat, String> {
        match std::env::var("INFRALOG_LOG_FORMAT").ok().as_deref() {
            None | Some("") | Some("auto") => Ok(if stderr_is_journal() {
                LogFormat::Journald
            } else {
                LogFormat::Text
            }),
            Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some("journald") => Ok(LogFormat::Journald),
            Some(other) => Err(format!(
                "INFRALOG_LOG_FORMAT={other:?}: use auto, text, json or journald"
            )),
        }
    }
}

/// systemd sets `JOURNAL_STREAM=<dev>:<inode>` of the stream it connected; it is ours
/// only if stderr is still that stream (a child may inherit the variable and not the fd).
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    // SAFETY: fstat writes into the zeroed stat we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}

/// `<3>message fields` (sd-daemon(3) priority prefixes): journald keeps the priority and
/// adds the time, the unit and the pid.
struct JournaldLine;

impl<S, N> FormatEvent<S, N> for JournaldLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Installs the subscriber; `INFRALOG_LOG` is the filter, else `RUST_LOG` (the variable
/// Rust tools and aya users know), else `info`.
pub fn init(format: LogFormat, colour: bool) {
    let filter = ["INFRALOG_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|var| tracing_subscriber::EnvFilter::try_from_env(var).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(colour).init(),
        LogFormat::Journald => builder.with_ansi(false).event_format(JournaldLine).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}
