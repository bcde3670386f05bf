//! RFC 3164 ("BSD syslog"): `[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG`.

use super::{ParseContext, Record};

pub fn parse<'a>(line: &'a [u8], _ctx: &ParseContext) -> Record<'a> {
    Record::unparsed(line, "rfc3164: not implemented")
}
