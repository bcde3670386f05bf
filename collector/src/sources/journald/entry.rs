//! One journal entry, copied out of libsystemd (whose buffers last only until the next
//! field is read) into buffers reused for every entry, and its mapping onto the `logs`
//! columns:
//!
//! | journal field | column |
//! |---|---|
//! | `MESSAGE` (text or binary) | message |
//! | `PRIORITY` | priority, severity |
//! | `SYSLOG_FACILITY` | facility |
//! | `_HOSTNAME` | hostname |
//! | `SYSLOG_IDENTIFIER`, else `_COMM` | process_name |
//! | `_PID` | process_id |
//! | `_UID` | uid, user_name |
//! | `_SYSTEMD_UNIT`, else `_SYSTEMD_USER_UNIT` | unit |
//! | `_SOURCE_REALTIME_TIMESTAMP`, else the entry's realtime | timestamp |
//!
//! Every other field goes into `extra` under its journal name (`_BOOT_ID`, `_TRANSPORT`,
//! `CONTAINER_ID`, `_COMM` when the identifier was used, `SYSLOG_PID`, …), as do mapped
//! fields whose value does not fit the column (a `PRIORITY` of `9`), so nothing is lost.

use crate::parse::journal::{decimal_u64, split_field};

/// Field data kept as `(start, name_end, end)` offsets into one byte buffer.
#[derive(Default)]
pub struct Entry {
    data: Vec<u8>,
    fields: Vec<Span>,
}

#[derive(Clone, Copy)]
struct Span {
    start: u32,
    /// End of the name; `start` when the data is not `NAME=value`.
    name_end: u32,
    end: u32,
}

/// Indexes of the fields an entry's columns were taken from (they are not repeated in
/// `extra`), one slot per column source: message, priority, facility, hostname,
/// identifier, pid, uid, system unit, source timestamp, comm, user unit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Used([Option<u32>; 11]);

impl Used {
    fn mark(&mut self, slot: usize, idx: u32) {
        self.0[slot] = Some(idx);
    }
    fn contains(&self, idx: u32) -> bool {
        self.0.contains(&Some(idx))
    }
}

/// The columns of one entry, borrowed from it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Mapped<'a> {
    pub timestamp_us: u64,
    pub message: &'a [u8],
    pub priority: Option<u8>,
    pub facility: Option<u8>,
    pub hostname: Option<&'a [u8]>,
    pub process_name: Option<&'a [u8]>,
    pub process_id: Option<i32>,
    pub uid: Option<u32>,
    pub unit: Option<&'a [u8]>,
    /// What the sender claimed (`SYSLOG_IDENTIFIER`, `SYSLOG_PID`) and what journald
    /// knows (`_COMM`, `_PID`): compared by the identity rule.
    pub claimed_tag: Option<&'a [u8]>,
    pub claimed_pid: Option<i32>,
    pub comm: Option<&'a [u8]>,
    used: Used,
}

impl Entry {
    pub fn clear(&mut self) {
        self.data.clear();
        self.fields.clear();
    }

    /// Adds one field's data as libsystemd returned it.
    pub fn push(&mut self, raw: &[u8]) {
        let start = self.data.len() as u32;
        let name_len = split_field(raw).map_or(0, |(name, _)| name.len() as u32);
        self.data.extend_from_slice(raw);
        self.fields.push(Span {
            start,
            name_end: start + name_len,
            end: self.data.len() as u32,
        });
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn raw(&self, s: Span) -> &[u8] {
        &self.data[s.start as usize..s.end as usize]
    }

    /// `(name, value)` of each field; data that is not `NAME=value` has an empty name and
    /// the whole data as value.
    pub fn fields(&self) -> impl Iterator<Item = (u32, &[u8], &[u8])> + '_ {
        self.fields.iter().enumerate().map(|(i, s)| {
            let name = &self.data[s.start as usize..s.name_end as usize];
            let value_start = if s.name_end > s.start {
                s.name_end as usize + 1
            } else {
                s.start as usize
            };
            (i as u32, name, &self.data[value_start..s.end as usize])
        })
    }

    /// Whether any field's data is exactly one of `matches` (`FIELD=value`).
    pub fn matches_any(&self, matches: &[Vec<u8>]) -> bool {
        !matches.is_empty()
            && self
                .fields
                .iter()
                .any(|&s| matches.iter().any(|m| m.as_slice() == self.raw(s)))
    }

    /// Whether every one of `matches` (`FIELD=value`) is a field of this entry.
    pub fn matches_all(&self, matches: &[Vec<u8>]) -> bool {
        !matches.is_empty()
            && matches
                .iter()
                .all(|m| self.fields.iter().any(|&s| m.as_slice() == self.raw(s)))
    }

    /// The columns of this entry; `realtime_us` is the entry's receive time.
    pub fn map(&self, realtime_us: u64) -> Mapped<'_> {
        let mut m = Mapped {
            timestamp_us: realtime_us,
            ..Mapped::default()
        };
        let mut comm_idx = None;
        let mut user_unit = None;
        for (i, name, value) in self.fields() {
            let num = || decimal_u64(value);
            match name {
                b"MESSAGE" if m.used.0[0].is_none() => {
                    m.message = value;
                    m.used.mark(0, i);
                }
                b"PRIORITY" => {
                    if let Some(p) = num().filter(|&p| p <= 7) {
                        m.priority = Some(p as u8);
                        m.used.mark(1, i);
                    }
                }
                b"SYSLOG_FACILITY" => {
                    if let Some(f) = num().filter(|&f| f <= 23) {
                        m.facility = Some(f as u8);
                        m.used.mark(2, i);
                    }
                }
                b"_HOSTNAME" => {
                    m.hostname = Some(value);
                    m.used.mark(3, i);
                }
                b"SYSLOG_IDENTIFIER" => {
                    m.claimed_tag = Some(value);
                    m.used.mark(4, i);
                }
                b"_COMM" => {
                    m.comm = Some(value);
                    comm_idx = Some(i);
                }
                b"_PID" => {
                    if let Some(p) = num().and_then(|p| i32::try_from(p).ok()) {
                        m.process_id = Some(p);
                        m.used.mark(5, i);
                    }
                }
                b"SYSLOG_PID" => m.claimed_pid = num().and_then(|p| i32::try_from(p).ok()),
                b"_UID" => {
                    if let Some(u) = num().and_then(|u| u32::try_from(u).ok()) {
                        m.uid = Some(u);
                        m.used.mark(6, i);
                    }
                }
                b"_SYSTEMD_UNIT" => {
                    m.unit = Some(value);
                    m.used.mark(7, i);
                }
                b"_SYSTEMD_USER_UNIT" => user_unit = Some((i, value)),
                b"_SOURCE_REALTIME_TIMESTAMP" => {
                    if let Some(t) = num().filter(|&t| t > 0 && t < i64::MAX as u64 / 1000) {
                        m.timestamp_us = t;
                        m.used.mark(8, i);
                    }
                }
                _ => {}
            }
        }
        if m.priority.is_none() && m.facility.take().is_some() {
            // A facility alone has no column to go to: it stays in extra.
            m.used.0[2] = None;
        }
        m.process_name = m.claimed_tag;
        if m.process_name.is_none()
            && let Some(i) = comm_idx
        {
            m.process_name = m.comm;
            m.used.mark(9, i);
        }
        if m.unit.is_none()
            && let Some((i, u)) = user_unit
        {
            m.unit = Some(u);
            m.used.mark(10, i);
        }
        m
    }

    /// The fields that did not become a column of `m`: `(name, value)`.
    pub fn rest<'e>(&'e self, m: &Mapped<'_>) -> impl Iterator<Item = (&'e [u8], &'e [u8])> {
        let used = m.used;
        self.fields()
            .filter(move |(i, _, _)| !used.contains(*i))
            .map(|(_, n, v)| (n, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[&[u8]]) -> Entry {
        let mut e = Entry::default();
        for f in fields {
            e.push(f);
        }
        e
    }

    fn rest(e: &Entry, m: &Mapped<'_>) -> Vec<(String, String)> {
        e.rest(m)
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn maps_columns_and_keeps_the_rest() {
        let e = entry(&[
            b"_BOOT_ID=b1",
            b"MESSAGE=hello=world",
            b"PRIORITY=3",
            b"SYSLOG_FACILITY=4",
            b"_HOSTNAME=web1",
            b"SYSLOG_IDENTIFIER=sshd",
            b"_COMM=sshd",
            b"_PID=42",
            b"SYSLOG_PID=42",
            b"_UID=0",
            b"_SYSTEMD_UNIT=ssh.service",
            b"_SYSTEMD_USER_UNIT=x.service",
            b"_SOURCE_REALTIME_TIMESTAMP=1700000000000001",
            b"_TRANSPORT=syslog",
        ]);
        let m = e.map(1_800_000_000_000_000);
        assert_eq!(m.message, b"hello=world");
        assert_eq!((m.priority, m.facility), (Some(3), Some(4)));
        assert_eq!(m.hostname, Some(&b"web1"[..]));
        assert_eq!(m.process_name, Some(&b"sshd"[..]));
        assert_eq!(
            (m.process_id, m.claimed_pid, m.uid),
            (Some(42), Some(42), Some(0))
        );
        assert_eq!(m.unit, Some(&b"ssh.service"[..]));
        assert_eq!(m.timestamp_us, 1_700_000_000_000_001);
        let r = rest(&e, &m);
        let keys: Vec<&str> = r.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "_BOOT_ID",
                "_COMM",
                "SYSLOG_PID",
                "_SYSTEMD_USER_UNIT",
                "_TRANSPORT"
            ]
        );
    }

    #[test]
    fn fallbacks_and_values_that_do_not_fit() {
        let e = entry(&[
            b"MESSAGE=\xff binary \n",
            b"PRIORITY=9",
            b"_COMM=bash",
            b"_SYSTEMD_USER_UNIT=app.service",
            b"_PID=notanumber",
            b"not a field",
        ]);
        let m = e.map(5);
        assert_eq!(m.timestamp_us, 5);
        assert_eq!(m.priority, None);
        assert_eq!(m.process_name, Some(&b"bash"[..]));
        assert_eq!(m.unit, Some(&b"app.service"[..]));
        assert_eq!(m.process_id, None);
        assert_eq!(
            rest(&e, &m),
            vec![
                ("PRIORITY".into(), "9".into()),
                ("_PID".into(), "notanumber".into()),
                ("".into(), "not a field".into()),
            ]
        );
        assert!(e.matches_any(&[b"_COMM=bash".to_vec()]));
        assert!(!e.matches_any(&[b"_COMM=bas".to_vec()]));
        assert!(!e.matches_any(&[]));
        assert!(e.matches_all(&[b"_COMM=bash".to_vec(), b"PRIORITY=9".to_vec()]));
        assert!(!e.matches_all(&[b"_COMM=bash".to_vec(), b"PRIORITY=8".to_vec()]));
        assert!(!e.matches_all(&[]));
    }

    #[test]
    fn an_empty_entry_maps_to_an_empty_message() {
        let e = Entry::default();
        let m = e.map(7);
        assert_eq!((m.message, m.timestamp_us), (&b""[..], 7));
        assert_eq!(e.rest(&m).count(), 0);
    }

    /// The mapping's invariants on mutated entries (the `journal` fuzz target checks the
    /// same with libFuzzer): never a panic, every field either a column or in extra.
    #[test]
    fn mutated_entries_map_without_loss() {
        let seeds: &[&[u8]] = &[
            b"MESSAGE=hello",
            b"PRIORITY=6",
            b"SYSLOG_FACILITY=3",
            b"_PID=42",
            b"SYSLOG_PID=42",
            b"SYSLOG_IDENTIFIER=sshd",
            b"_COMM=sshd",
            b"_UID=0",
            b"_SYSTEMD_UNIT=a.service",
            b"_SYSTEMD_USER_UNIT=b.service",
            b"_HOSTNAME=h",
            b"_SOURCE_REALTIME_TIMESTAMP=1700000000000000",
            b"_TRANSPORT=syslog",
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut e = Entry::default();
        let mut buf = Vec::new();
        for _ in 0..20_000 {
            e.clear();
            for _ in 0..rnd(16) {
                buf.clear();
                buf.extend_from_slice(seeds[rnd(seeds.len())]);
                for _ in 0..rnd(3) {
                    let i = rnd(buf.len() + 1);
                    match rnd(3) {
                        0 if i < buf.len() => buf[i] = b"=_0919\xffA"[rnd(8)],
                        1 => buf.truncate(i),
                        _ => buf.insert(i.min(buf.len()), rnd(256) as u8),
                    }
                }
                e.push(&buf);
            }
            let m = e.map(1);
            let rest = e.rest(&m).count();
            assert!(rest <= e.len() && e.len() - rest <= 11);
            assert!(m.priority.is_none_or(|p| p <= 7));
            assert!(
                m.facility.is_none_or(|f| f <= 23)
                    && (m.facility.is_none() || m.priority.is_some())
            );
        }
    }
}
