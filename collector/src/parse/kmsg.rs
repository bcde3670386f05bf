//! /dev/kmsg records: `prio,seq,usec,flags[,...];text` followed by ` KEY=value` lines.

use super::{ParseContext, Pri, Record};

/// One /dev/kmsg record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsgRecord<'a> {
    pub pri: Pri,
    pub seq: u64,
    /// Microseconds since boot (CLOCK_BOOTTIME-like `local_clock`).
    pub usec: u64,
    /// `-` for a complete record, `c`/`+` for continuation fragments.
    pub flag: u8,
    pub message: &'a [u8],
    /// The ` KEY=value` continuation lines, newline-separated, without the leading space.
    pub dict: &'a [u8],
}

pub fn looks_like(_line: &[u8]) -> bool {
    false
}

/// Parses what one read() of /dev/kmsg returns (or one record of a saved dump).
pub fn parse_record(_buf: &[u8]) -> Result<KmsgRecord<'_>, &'static str> {
    Err("kmsg: not implemented")
}

/// Parses one line of a kmsg dump file into a [`Record`]; the timestamp is known only when
/// `ctx.boot_unix_ns` is.
pub fn parse_line<'a>(line: &'a [u8], _ctx: &ParseContext) -> Record<'a> {
    let _ = Pri::from_value(0);
    Record::unparsed(line, "kmsg: not implemented")
}
