//! The collector's parsers, built from their own source files (see Cargo.toml for why),
//! and the invariants every fuzz target checks. Targets: `rfc3164` (with the relay and
//! macOS recognisers), `rfc5424`, `cisco` (sequence numbers, clock markers, mnemonics),
//! `payload` (key=value, CEF, Check Point fields and the FortiGate header), `kmsg`,
//! `auto` (`parse_line(Format::Auto, ..)`), `spool_record` (spool segment recovery), `journal`
//! (field splitting, cursors, entry mapping), `json` (application log lines), `docker`
//! (json-file records), `cri` (Kubernetes CRI records and log paths), `net_framing` (TCP/UDP
//! framing of the net source), `template` (masking and template mining). From `collector/`:
//!
//! ```text
//! cargo +nightly fuzz run -O rfc3164 fuzz/corpus/rfc3164 fuzz/seeds -- \
//!     -dict=fuzz/syslog.dict -max_len=1024 -max_total_time=180
//! ```

#[path = "../../src/time.rs"]
pub mod time;

#[path = "../../src/parse/mod.rs"]
pub mod parse;

#[path = "../../../spool-format/src/record.rs"]
pub mod spool_record;

/// The net source's stream framing (octet counting / newline, per frame).
#[path = "../../src/sources/net/framing.rs"]
pub mod net_framing;
/// The template miner's masking and matching (`template` target).
#[path = "../../src/detect/mask.rs"]
pub mod mask;
#[path = "../../src/detect/miner.rs"]
pub mod miner;

/// The journal entry mapping (fields → columns), which only needs `parse::journal`.
#[path = "../../src/sources/journald/entry.rs"]
pub mod journal_entry;

use parse::{ParseContext, Record, rfc5424};

pub const CTX: ParseContext = ParseContext {
    // 2026-11-22 10:00:00 UTC.
    reference_unix_secs: 1_795_341_600,
    utc_offset_secs: 3600,
    boot_unix_ns: Some(1_795_000_000_000_000_000),
};

/// A context taken from the first 12 bytes of the input (any values at all, to exercise
/// year inference and offsets), and the rest as the line.
pub fn split_ctx(data: &[u8]) -> Option<(ParseContext, &[u8])> {
    let (head, line) = data.split_at_checked(12)?;
    let reference = i64::from_le_bytes(head[..8].try_into().ok()?);
    let offset = i32::from_le_bytes(head[8..].try_into().ok()?);
    Some((
        ParseContext {
            reference_unix_secs: reference,
            utc_offset_secs: offset,
            boot_unix_ns: Some(reference),
        },
        line,
    ))
}

/// A payload's fields borrow from the line, stay within their bounds, and unescape to no
/// more bytes than they have.
pub fn check_payload(line: &[u8], p: parse::payload::Payload<'_>) {
    let mut n = 0;
    for f in parse::payload::fields(p) {
        n += 1;
        assert!(!f.key.is_empty());
        assert!(within(line, f.value), "payload value outside the line");
        assert!(f.value.len() <= parse::payload::MAX_VALUE);
        let mut out = Vec::new();
        parse::payload::unescape(&f, &mut out);
        assert!(out.len() <= f.value.len());
    }
    assert!(n <= parse::payload::MAX_FIELDS);
}

/// Whether `inner` lies inside `outer` (what a borrowing parser returns must).
pub fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    o.start <= i.start && i.end <= o.end
}

/// What holds for every record of every parser: all it returns borrows from the line,
/// and an unparsed line keeps all of its text.
pub fn check(line: &[u8], r: &Record<'_>) {
    assert!(within(line, r.message), "message outside the line");
    for f in [r.hostname, r.app_name, r.msgid].into_iter().flatten() {
        assert!(within(line, f), "field outside the line");
    }
    assert!(r.structured_data.is_empty() || within(line, r.structured_data));
    for f in [r.sequence, r.origin_time].into_iter().flatten() {
        assert!(within(line, f), "field outside the line");
    }
    // `raw` is the whole line, set when some bytes are in no field.
    if let Some(raw) = r.raw {
        assert_eq!(raw, line);
    }
    if r.error.is_some() && r.hostname.is_none() && r.app_name.is_none() && r.raw.is_none() {
        // Nothing of the header parsed: the message is all after the PRI or the version.
        assert!(r.message.is_empty() || within(line, r.message));
    }
    check_payload(line, r.payload());
    let mut out = Vec::new();
    for p in rfc5424::sd_params(r.structured_data) {
        assert!(within(r.structured_data, p.value));
        rfc5424::unescape_value(p.value, &mut out);
    }
    assert!(out.len() <= r.structured_data.len());
}
