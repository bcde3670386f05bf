//! Pure helpers for systemd journal data: splitting a field's `NAME=value` data, reading
//! numbers journald writes as decimal text, and the sequence part of a cursor (used to
//! notice entries vacuumed before they were read).

/// Splits journal field data at the first `=` into name and value. `None` when there is
/// no `=` or the name is not a journal field name (`[A-Z0-9_]+`, not starting with a
/// digit): such data is not a field and is kept whole by the caller.
pub fn split_field(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = data.iter().position(|&b| b == b'=')?;
    let (name, value) = (&data[..eq], &data[eq + 1..]);
    let valid = !name.is_empty()
        && !name[0].is_ascii_digit()
        && name
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    valid.then_some((name, value))
}

/// A decimal number as journald writes `_PID`, `_UID`, `PRIORITY` or
/// `_SOURCE_REALTIME_TIMESTAMP`: ASCII digits only, no sign, no spaces, no overflow.
pub fn decimal_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(v)
}

/// Where an entry stands in its writer's numbering: the seqnum id (`s=`, one per journald
/// instance, kept across its file rotations) and the seqnum (`i=`, hexadecimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorSeq<'a> {
    pub seqnum_id: &'a [u8],
    pub seqnum: u64,
}

/// The `s=` and `i=` parts of a cursor (`s=…;i=…;b=…;m=…;t=…;x=…`), `None` when either is
/// missing or malformed.
pub fn cursor_seq(cursor: &[u8]) -> Option<CursorSeq<'_>> {
    let mut seqnum_id = None;
    let mut seqnum = None;
    for part in cursor.split(|&b| b == b';') {
        match part {
            [b's', b'=', id @ ..] if !id.is_empty() => seqnum_id = Some(id),
            [b'i', b'=', hex @ ..] => seqnum = Some(hex_u64(hex)?),
            _ => {}
        }
    }
    Some(CursorSeq {
        seqnum_id: seqnum_id?,
        seqnum: seqnum?,
    })
}

fn hex_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in text {
        let d = (b as char).to_digit(16)? as u64;
        v = (v << 4) | d;
    }
    Some(v)
}

/// How many entries of the same writer lie between `prev` (the last entry read) and
/// `next` and were never seen: journald numbers entries without holes, so a jump means
/// they were deleted (vacuumed) before we read them. Entries of another writer (a new
/// seqnum id: another journald instance, another host's remote journal) are not
/// comparable and count as nothing.
pub fn entries_missing_between(prev: &CursorSeq<'_>, next: &CursorSeq<'_>) -> u64 {
    if prev.seqnum_id != next.seqnum_id {
        return 0;
    }
    next.seqnum.saturating_sub(prev.seqnum).saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_field_splits_at_the_first_equals() {
        assert_eq!(
            split_field(b"MESSAGE=a=b"),
            Some((&b"MESSAGE"[..], &b"a=b"[..]))
        );
        assert_eq!(split_field(b"_PID="), Some((&b"_PID"[..], &b""[..])));
        assert_eq!(
            split_field(b"MESSAGE=\xff\0\n"),
            Some((&b"MESSAGE"[..], &b"\xff\0\n"[..]))
        );
        assert_eq!(split_field(b"NOEQUALS"), None);
        assert_eq!(split_field(b"=value"), None);
        assert_eq!(split_field(b"lower=x"), None);
        assert_eq!(split_field(b"1ABC=x"), None);
    }

    #[test]
    fn decimals() {
        assert_eq!(decimal_u64(b"0"), Some(0));
        assert_eq!(
            decimal_u64(b"1795341600123456"),
            Some(1_795_341_600_123_456)
        );
        assert_eq!(decimal_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(decimal_u64(b"18446744073709551616"), None);
        assert_eq!(decimal_u64(b""), None);
        assert_eq!(decimal_u64(b"-1"), None);
        assert_eq!(decimal_u64(b" 1"), None);
    }

    #[test]
    fn cursor_parts_and_gaps() {
        let c = b"s=6c1f0e4c3bbd4b1a9d3f1b7a7b8e1c2d;i=1a;b=0f0e;m=2b;t=5f1;x=9a";
        let a = cursor_seq(c).unwrap();
        assert_eq!(a.seqnum, 0x1a);
        assert_eq!(a.seqnum_id, b"6c1f0e4c3bbd4b1a9d3f1b7a7b8e1c2d");
        let b = cursor_seq(b"s=6c1f0e4c3bbd4b1a9d3f1b7a7b8e1c2d;i=20").unwrap();
        assert_eq!(entries_missing_between(&a, &b), 5);
        assert_eq!(entries_missing_between(&a, &a), 0);
        assert_eq!(entries_missing_between(&b, &a), 0);
        let other = cursor_seq(b"s=ffff;i=99").unwrap();
        assert_eq!(entries_missing_between(&a, &other), 0);
        assert_eq!(cursor_seq(b"i=1a"), None);
        assert_eq!(cursor_seq(b"s=ab;i=zz"), None);
        assert_eq!(cursor_seq(b"s=;i=1"), None);
        assert_eq!(cursor_seq(b""), None);
    }
}
