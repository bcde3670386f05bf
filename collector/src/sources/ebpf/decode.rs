//! Ring-buffer events as the eBPF programs wrote them. The rule that compares a sender's
//! claimed identity with the kernel's is in [`crate::identity`].

use collector_ebpf_common::{
    EventHeader, FLAG_TRUNCATED, HEADER_LEN, HOOK_NAMES, KIND_KMSG, KIND_SYSLOG, LEVEL_UNKNOWN,
};

/// One event as read from the ring buffer, borrowing its text.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub header: EventHeader,
    pub text: &'a [u8],
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// printk / /dev/kmsg text from a console hook.
    Kmsg,
    /// A datagram sent to /dev/log.
    Syslog,
}

impl<'a> Event<'a> {
    /// Parses a ring-buffer record; `None` when it is shorter than its header says.
    pub fn decode(buf: &'a [u8]) -> Option<Event<'a>> {
        if buf.len() < HEADER_LEN {
            return None;
        }
        // SAFETY: EventHeader is plain integers; read_unaligned copes with any alignment.
        let header: EventHeader = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
        let text = buf.get(HEADER_LEN..HEADER_LEN + header.data_len as usize)?;
        Some(Event { header, text })
    }

    pub fn kind(&self) -> Option<Kind> {
        match self.header.kind {
            KIND_KMSG => Some(Kind::Kmsg),
            KIND_SYSLOG => Some(Kind::Syslog),
            _ => None,
        }
    }

    /// The userspace pid (thread group id).
    pub fn pid(&self) -> i32 {
        (self.header.pid_tgid >> 32) as i32
    }

    pub fn tid(&self) -> i32 {
        self.header.pid_tgid as u32 as i32
    }

    pub fn uid(&self) -> u32 {
        self.header.uid_gid as u32
    }

    pub fn gid(&self) -> u32 {
        (self.header.uid_gid >> 32) as u32
    }

    /// The sending thread's comm, without its NUL padding.
    pub fn thread_comm(&self) -> &[u8] {
        let c = &self.header.comm;
        &c[..c.iter().position(|&b| b == 0).unwrap_or(c.len())]
    }

    /// The process's comm (the thread group leader's), or the thread's when unknown.
    pub fn comm(&self) -> &[u8] {
        let c = &self.header.process_comm;
        let p = &c[..c.iter().position(|&b| b == 0).unwrap_or(c.len())];
        if p.is_empty() { self.thread_comm() } else { p }
    }

    pub fn hook(&self) -> &'static str {
        HOOK_NAMES
            .get(self.header.hook as usize)
            .copied()
            .unwrap_or(HOOK_NAMES[0])
    }

    pub fn truncated(&self) -> bool {
        self.header.flags & FLAG_TRUNCATED != 0
    }

    /// Level and facility when a trampoline hook saw them.
    pub fn kmsg_pri(&self) -> Option<(u8, u8)> {
        (self.header.level != LEVEL_UNKNOWN && self.header.facility != LEVEL_UNKNOWN)
            .then_some((self.header.facility, self.header.level))
    }

    /// The text with what senders append and syslog daemons strip: trailing NULs
    /// (Python's SysLogHandler) and newlines.
    pub fn trimmed_text(&self) -> &'a [u8] {
        let mut t = self.text;
        while let [rest @ .., b'\0' | b'\n' | b'\r'] = t {
            t = rest;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use collector_ebpf_common::HOOK_RAW_TP_SYS_ENTER;

    fn record(h: EventHeader, text: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER_LEN];
        // SAFETY: EventHeader is plain data and buf holds HEADER_LEN bytes.
        unsafe { std::ptr::write_unaligned(buf.as_mut_ptr().cast(), h) };
        buf.extend_from_slice(text);
        buf
    }

    #[test]
    fn decodes_header_and_text() {
        let mut comm = [0u8; 16];
        comm[..6].copy_from_slice(b"logger");
        let h = EventHeader {
            ts_boot_ns: 5,
            cgroup_id: 9,
            pid_tgid: (1234u64 << 32) | 1240,
            uid_gid: (100u64 << 32) | 1000,
            orig_len: 8,
            data_len: 8,
            kind: KIND_SYSLOG,
            hook: HOOK_RAW_TP_SYS_ENTER,
            comm,
            ..EventHeader::default()
        };
        let buf = record(h, b"<13>hi\0\n");
        let e = Event::decode(&buf).unwrap();
        assert_eq!(e.kind(), Some(Kind::Syslog));
        assert_eq!(
            (e.pid(), e.tid(), e.uid(), e.gid()),
            (1234, 1240, 1000, 100)
        );
        assert_eq!(e.comm(), b"logger"); // no process comm: the thread's
        assert_eq!(e.thread_comm(), b"logger");
        assert_eq!(e.hook(), "raw_tp/sys_enter");
        assert_eq!(e.trimmed_text(), b"<13>hi");
        assert!(!e.truncated());
        // data_len beyond the record: rejected, not a panic
        let short = &buf[..buf.len() - 1];
        assert!(Event::decode(short).is_none());
        assert!(Event::decode(&buf[..10]).is_none());
    }
}
