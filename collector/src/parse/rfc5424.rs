//! RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`.

use super::Record;

pub fn looks_like(_line: &[u8]) -> bool {
    false
}

pub fn parse(line: &[u8]) -> Record<'_> {
    Record::unparsed(line, "rfc5424: not implemented")
}

/// One `name="value"` of an SD-ELEMENT; `value` is still escaped (`\"`, `\\`, `\]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdParam<'a> {
    pub id: &'a [u8],
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// The params of a STRUCTURED-DATA field, in order.
pub fn sd_params(_sd: &[u8]) -> impl Iterator<Item = SdParam<'_>> {
    std::iter::empty()
}

/// Appends the unescaped form of an SD-PARAM value to `out`.
pub fn unescape_value(raw: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(raw);
}
