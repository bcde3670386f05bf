//! /dev/kmsg records: `prio,seq,usec,flags[,...];text` followed by ` KEY=value` lines.
//!
//! The kernel escapes every unprintable byte of the text and of dictionary values as
//! `\xNN`, so the first `\n` always ends the text; the escapes are left as they are.

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
    /// The dictionary lines after the text, as read: each ` KEY=value` keeps its leading
    /// space, lines are `\n`-separated, the final `\n` is cut; empty when there are none.
    /// (Borrowing forbids removing the spaces.) Split with [`dict_entries`].
    pub dict: &'a [u8],
}

/// `digits,digits,digits,flag` followed by `;` or `,`: the start of a kmsg record. False
/// for dictionary lines (` KEY=value`): in a dump file they come as lines of their own,
/// and `--format auto` then treats them as RFC 3164, which keeps them as unparsed text
/// (see also [`is_dict_line`]).
pub fn looks_like(line: &[u8]) -> bool {
    header(line).is_ok()
}

/// A dictionary line of a dump file (` SUBSYSTEM=pci`): it belongs to the record before.
pub fn is_dict_line(line: &[u8]) -> bool {
    line.first() == Some(&b' ') && line.contains(&b'=')
}

/// The fixed fields and the offset just past the flag.
fn header(buf: &[u8]) -> Result<(u64, u64, u64, u8, usize), &'static str> {
    let (prio, i) = number(buf, 0).ok_or("kmsg: bad priority field")?;
    let (seq, i) = number(buf, i).ok_or("kmsg: bad sequence field")?;
    let (usec, i) = number(buf, i).ok_or("kmsg: bad timestamp field")?;
    match (buf.get(i), buf.get(i + 1)) {
        (Some(&flag @ (b'-' | b'c' | b'+')), Some(b';' | b',')) => {
            Ok((prio, seq, usec, flag, i + 1))
        }
        _ => Err("kmsg: bad flag field"),
    }
}

/// A decimal at `buf[i..]` terminated by `,`; returns it and the offset after the comma.
fn number(buf: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let start = i;
    let mut v: u64 = 0;
    while let Some(&d @ b'0'..=b'9') = buf.get(i) {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
        i += 1;
    }
    (i > start && buf.get(i) == Some(&b',')).then_some((v, i + 1))
}

/// Parses what one read() of /dev/kmsg returns (or one record of a saved dump).
pub fn parse_record(buf: &[u8]) -> Result<KmsgRecord<'_>, &'static str> {
    let (prio, seq, usec, flag, mut i) = header(buf)?;
    // Fields after the flag (`caller=T123` on CONFIG_PRINTK_CALLER kernels) are skipped.
    if buf[i] == b',' {
        let semi = buf[i..]
            .iter()
            .position(|&b| b == b';' || b == b'\n')
            .map(|p| i + p)
            .filter(|&p| buf[p] == b';')
            .ok_or("kmsg: no `;` after the header")?;
        i = semi;
    }
    let text = &buf[i + 1..];
    let (message, dict) = match text.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let dict = &text[nl + 1..];
            (&text[..nl], dict.strip_suffix(b"\n").unwrap_or(dict))
        }
        None => (text, &text[text.len()..]),
    };
    Ok(KmsgRecord {
        pri: Pri::from_value(u32::try_from(prio).map_err(|_| "kmsg: priority out of range")?),
        seq,
        usec,
        flag,
        message,
        dict,
    })
}

/// The `(KEY, value)` pairs of a record's dictionary; lines without `=` are skipped.
pub fn dict_entries(dict: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    dict.split(|&b| b == b'\n').filter_map(|line| {
        let line = line.strip_prefix(b" ").unwrap_or(line);
        let eq = line.iter().position(|&b| b == b'=')?;
        Some((&line[..eq], &line[eq + 1..]))
    })
}

/// Parses one line of a kmsg dump file into a [`Record`]; the timestamp is known only when
/// `ctx.boot_unix_ns` is. The sequence number is dropped: a file's own offset is the cursor.
/// A dictionary line comes back unparsed with its own error, so an importer can tell it
/// from garbage (or use [`is_dict_line`] first).
pub fn parse_line<'a>(line: &'a [u8], ctx: &ParseContext) -> Record<'a> {
    if is_dict_line(line) {
        return Record::unparsed(line, "kmsg: dictionary line of the record before");
    }
    match parse_record(line) {
        Ok(r) => Record {
            timestamp_ns: ctx.boot_unix_ns.and_then(|boot| {
                let since_boot = i64::try_from(r.usec).ok()?.checked_mul(1000)?;
                boot.checked_add(since_boot)
            }),
            pri: Some(r.pri),
            message: r.message,
            ..Record::default()
        },
        Err(why) => Record::unparsed(line, why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: ParseContext = ParseContext {
        reference_unix_secs: 0,
        utc_offset_secs: 0,
        boot_unix_ns: Some(1_700_000_000_000_000_000),
    };

    #[test]
    fn record_with_dictionary() {
        let buf = b"6,339,5140900,-;NET: Registered protocol family 10\n SUBSYSTEM=net\n DEVICE=+net:lo\n";
        let r = parse_record(buf).unwrap();
        assert_eq!(
            r.pri,
            Pri {
                facility: 0,
                level: 6
            }
        );
        assert_eq!((r.seq, r.usec, r.flag), (339, 5_140_900, b'-'));
        assert_eq!(r.message, b"NET: Registered protocol family 10");
        assert_eq!(r.dict, b" SUBSYSTEM=net\n DEVICE=+net:lo");
        let d: Vec<_> = dict_entries(r.dict).collect();
        assert_eq!(
            d,
            vec![(&b"SUBSYSTEM"[..], &b"net"[..]), (b"DEVICE", b"+net:lo")]
        );
    }

    #[test]
    fn record_without_newline_or_dictionary() {
        let r = parse_record(b"4,1,0,c;partial").unwrap();
        assert_eq!(
            (r.message, r.dict, r.flag),
            (&b"partial"[..], &b""[..], b'c')
        );
        let r = parse_record(b"4,1,0,+;\n").unwrap();
        assert_eq!((r.message, r.dict, r.flag), (&b""[..], &b""[..], b'+'));
        assert_eq!(dict_entries(r.dict).count(), 0);
    }

    #[test]
    fn caller_field_and_escapes() {
        let r = parse_record(b"12,77,99,-,caller=T1234;usb 1-1: \\x1b[0m odd;semi\n").unwrap();
        assert_eq!(
            r.pri,
            Pri {
                facility: 1,
                level: 4
            }
        );
        assert_eq!(r.message, b"usb 1-1: \\x1b[0m odd;semi");
        // A `;` that only appears in the dictionary does not end the header.
        assert_eq!(
            parse_record(b"6,1,2,-,caller=T1\n X=a;b"),
            Err("kmsg: no `;` after the header")
        );
    }

    #[test]
    fn large_facility_and_prio() {
        // Userspace writers to /dev/kmsg can pick any facility; PRI caps it at 255.
        let r = parse_record(b"191,1,1,-;x").unwrap();
        assert_eq!(
            r.pri,
            Pri {
                facility: 23,
                level: 7
            }
        );
        let r = parse_record(b"999,1,1,-;x").unwrap();
        assert_eq!(
            r.pri,
            Pri {
                facility: 124,
                level: 7
            }
        );
        let r = parse_record(b"4294967295,1,1,-;x").unwrap();
        assert_eq!(
            r.pri,
            Pri {
                facility: 255,
                level: 7
            }
        );
        assert_eq!(
            parse_record(b"4294967296,1,1,-;x"),
            Err("kmsg: priority out of range")
        );
        assert_eq!(
            parse_record(b"1,18446744073709551616,1,-;x"),
            Err("kmsg: bad sequence field")
        );
        let r = parse_record(b"1,18446744073709551615,18446744073709551615,-;x").unwrap();
        assert_eq!(r.seq, u64::MAX);
        // usec beyond i64 ns: no timestamp rather than a wrong one.
        assert_eq!(
            parse_line(b"1,1,18446744073709551615,-;x", &CTX).timestamp_ns,
            None
        );
        assert_eq!(
            parse_line(b"1,1,9223372036854775,-;x", &CTX).timestamp_ns,
            None
        );
    }

    #[test]
    fn malformed() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "kmsg: bad priority field"),
            (b"6", "kmsg: bad priority field"),
            (b"6,", "kmsg: bad sequence field"),
            (b",1,2,-;x", "kmsg: bad priority field"),
            (b"6,1,", "kmsg: bad timestamp field"),
            (b"6,1,2", "kmsg: bad timestamp field"),
            (b"6,1,2,", "kmsg: bad flag field"),
            (b"6,1,2,-", "kmsg: bad flag field"),
            (b"6,1,2,x;m", "kmsg: bad flag field"),
            (b"6,1,2,--;m", "kmsg: bad flag field"),
            (b"6,-1,2,-;m", "kmsg: bad sequence field"),
            (b"6,1,2,-,caller=T1", "kmsg: no `;` after the header"),
            (b" 6,1,2,-;m", "kmsg: bad priority field"),
            (b"<6>kernel: hello", "kmsg: bad priority field"),
        ];
        for &(buf, why) in cases {
            assert_eq!(
                parse_record(buf),
                Err(why),
                "{}",
                String::from_utf8_lossy(buf)
            );
            let r = parse_line(buf, &CTX);
            assert_eq!((r.error, r.message, r.pri), (Some(why), buf, None));
            // The header is all `looks_like` checks.
            assert_eq!(looks_like(buf), why == "kmsg: no `;` after the header");
        }
    }

    #[test]
    fn line_timestamp_and_fields() {
        let r = parse_line(b"3,1234,5140900,-;EXT4-fs error (device sda1): bad", &CTX);
        assert_eq!(r.error, None);
        assert_eq!(
            r.pri,
            Some(Pri {
                facility: 0,
                level: 3
            })
        );
        assert_eq!(
            r.timestamp_ns,
            Some(1_700_000_000_000_000_000 + 5_140_900_000)
        );
        assert_eq!(r.message, b"EXT4-fs error (device sda1): bad");
        assert_eq!((r.hostname, r.app_name, r.proc_id), (None, None, None));
        let no_boot = ParseContext {
            boot_unix_ns: None,
            ..CTX
        };
        assert_eq!(parse_line(b"3,1,5,-;m", &no_boot).timestamp_ns, None);
        // Invalid UTF-8 and NULs are the row builder's business.
        assert_eq!(parse_line(b"3,1,5,-;\xff\0", &CTX).message, b"\xff\0");
    }

    #[test]
    fn dictionary_lines_in_files() {
        let r = parse_line(b" SUBSYSTEM=pci", &CTX);
        assert_eq!(r.error, Some("kmsg: dictionary line of the record before"));
        assert_eq!(r.message, b" SUBSYSTEM=pci");
        assert!(!looks_like(b" SUBSYSTEM=pci"));
        assert!(is_dict_line(b" DEVICE=+pci:0000:00:1f.3"));
        assert!(!is_dict_line(b"SUBSYSTEM=pci"));
    }

    #[test]
    fn looks_like_prefix() {
        assert!(looks_like(b"6,1,2,-;"));
        assert!(looks_like(b"6,1,2,c,caller=T1;x"));
        assert!(!looks_like(b"6,1,2;x"));
        assert!(!looks_like(b"6,1,2,-x"));
        assert!(!looks_like(b"Nov 22 10:00:00 host kernel: x"));
        assert!(!looks_like(b"2026-11-22T10:00:00Z host a: x"));
        assert!(!looks_like(b"<6>1 - - - - - -"));
    }
}
