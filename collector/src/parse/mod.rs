//! Parsers: pure functions from one line's bytes to a [`Record`] that borrows from them.
//! They never allocate, never panic, and never reject a line: what they cannot parse comes
//! back as the whole line in `message` with `error` set.

pub mod kmsg;
pub mod rfc3164;
pub mod rfc5424;

/// Facility and severity level, as carried by a syslog `<PRI>` or a kmsg prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pri {
    /// 0 kern … 23 local7 (kmsg allows larger values; they have no name).
    pub facility: u8,
    /// 0 emerg … 7 debug.
    pub level: u8,
}

impl Pri {
    /// Splits a PRI value (`facility * 8 + level`).
    pub fn from_value(value: u32) -> Pri {
        Pri {
            facility: (value >> 3).min(u8::MAX as u32) as u8,
            level: (value & 7) as u8,
        }
    }
}

/// What a parser extracts from one line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Event time in ns since the Unix epoch (UTC), when the line states one.
    pub timestamp_ns: Option<i64>,
    pub hostname: Option<&'a [u8]>,
    pub pri: Option<Pri>,
    /// RFC 3164 TAG / RFC 5424 APP-NAME.
    pub app_name: Option<&'a [u8]>,
    pub proc_id: Option<i32>,
    /// RFC 5424 MSGID.
    pub msgid: Option<&'a [u8]>,
    /// RFC 5424 STRUCTURED-DATA as it appears on the line (`[id k="v"]...`), empty when
    /// absent. Expand with [`rfc5424::sd_params`].
    pub structured_data: &'a [u8],
    pub message: &'a [u8],
    /// Why the line did not parse as its format; `message` then holds the whole line.
    pub error: Option<&'static str>,
}

impl<'a> Record<'a> {
    /// The record for a line that could not be parsed: the whole line is the message.
    pub fn unparsed(line: &'a [u8], why: &'static str) -> Record<'a> {
        Record {
            message: line,
            error: Some(why),
            ..Record::default()
        }
    }
}

/// Input formats the collector parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Detect per line.
    Auto,
    Rfc3164,
    Rfc5424,
    Kmsg,
}

/// What a parser needs to know besides the line: RFC 3164 timestamps have no year and no
/// zone.
#[derive(Debug, Clone, Copy)]
pub struct ParseContext {
    /// A time at or shortly after the line was written (file mtime, receive time), in
    /// seconds since the Unix epoch; the year of an RFC 3164 timestamp is the one that
    /// puts it closest before this.
    pub reference_unix_secs: i64,
    /// Offset of the writer's local time from UTC, in seconds (RFC 3164 stamps are local).
    pub utc_offset_secs: i32,
    /// Wall-clock time of boot in ns since the Unix epoch, to place kmsg's monotonic
    /// timestamps; `None` leaves kmsg lines without an event time.
    pub boot_unix_ns: Option<i64>,
}

/// Which format a line looks like, for `--format auto`.
pub fn detect(line: &[u8]) -> Format {
    if kmsg::looks_like(line) {
        Format::Kmsg
    } else if rfc5424::looks_like(line) {
        Format::Rfc5424
    } else {
        Format::Rfc3164
    }
}

/// Parses one line (without its newline) in the given format.
pub fn parse_line<'a>(format: Format, line: &'a [u8], ctx: &ParseContext) -> Record<'a> {
    match format {
        Format::Auto => parse_line(detect(line), line, ctx),
        Format::Rfc3164 => rfc3164::parse(line, ctx),
        Format::Rfc5424 => rfc5424::parse(line),
        Format::Kmsg => kmsg::parse_line(line, ctx),
    }
}

/// Parses a leading `<PRI>`: returns the PRI and the rest, or `None` when the line does not
/// start with a valid one (1–3 digits, at most 191).
pub fn parse_pri(line: &[u8]) -> Option<(Pri, &[u8])> {
    let rest = line.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&b| b == b'>')?;
    let digits = &rest[..close];
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut value: u32 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value * 10 + (d - b'0') as u32;
    }
    if value > 191 {
        return None;
    }
    Some((Pri::from_value(value), &rest[close + 1..]))
}
