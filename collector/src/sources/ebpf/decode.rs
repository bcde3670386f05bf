//! Ring-buffer events → rows, and the rule that flags a syslog sender whose self-declared
//! identity (the TAG[PID] in its message) disagrees with what the kernel knows.

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

/// Length of a kernel task name (`TASK_COMM_LEN - 1`).
const COMM_MAX: usize = 15;

/// Programs whose comm legitimately differs from the tag they send: `logger` (whose
/// default tag is the user name), shells and interpreters running scripts that choose their
/// own ident. For these a tag that differs from comm is not flagged; a claimed pid still is.
const RELAYS: &[&[u8]] = &[
    b"logger",
    b"systemd-cat",
    b"sh",
    b"bash",
    b"dash",
    b"zsh",
    b"ksh",
    b"busybox",
    b"perl",
    b"ruby",
    b"node",
    b"java",
    b"php",
    b"lua",
];

fn is_relay(comm: &[u8]) -> bool {
    RELAYS.contains(&comm) || comm.starts_with(b"python") || comm.starts_with(b"perl")
}

/// Does a claimed syslog tag name the task whose comm is `comm`? The tag may be a path
/// (`/usr/sbin/cron`), and comm is the first 15 bytes of the executable's (or thread's)
/// name.
pub fn tag_matches_comm(tag: &[u8], comm: &[u8]) -> bool {
    let base = match tag.iter().rposition(|&b| b == b'/') {
        Some(i) => &tag[i + 1..],
        None => tag,
    };
    fn cut(s: &[u8]) -> &[u8] {
        &s[..s.len().min(COMM_MAX)]
    }
    cut(base) == comm || cut(tag) == comm
}

/// Why a sender's claimed identity disagrees with the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mismatch {
    /// The claimed PID is neither the sender's pid nor its thread id. Strong: nothing
    /// legitimate sends another process's pid.
    pub pid: bool,
    /// The claimed tag does not name the sender's comm (and the sender is not a relay
    /// such as `logger` or an interpreter). Weaker: programs may choose any ident.
    pub tag: bool,
}

impl Mismatch {
    pub fn any(&self) -> bool {
        self.pid || self.tag
    }

    pub fn reason(&self) -> &'static str {
        match (self.pid, self.tag) {
            (true, true) => "pid,tag",
            (true, false) => "pid",
            (false, true) => "tag",
            (false, false) => "",
        }
    }
}

/// The rule (also in the module docs of `sources::ebpf`):
/// * pid mismatch: a claimed pid is present and equals neither the kernel's pid (tgid)
///   nor the sending thread's id;
/// * tag mismatch: a claimed tag is present, matches neither the process's comm nor the
///   sending thread's (after taking the tag's basename and cutting to 15 bytes), and the
///   process is not a relay/interpreter.
pub fn identity_mismatch(
    claimed_tag: Option<&[u8]>,
    claimed_pid: Option<i32>,
    (pid, tid): (i32, i32),
    process_comm: &[u8],
    thread_comm: &[u8],
) -> Mismatch {
    Mismatch {
        pid: claimed_pid.is_some_and(|p| p != pid && p != tid),
        tag: claimed_tag.is_some_and(|t| {
            !t.is_empty()
                && !tag_matches_comm(t, process_comm)
                && !tag_matches_comm(t, thread_comm)
                && !is_relay(process_comm)
                && !is_relay(thread_comm)
        }),
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

    #[test]
    fn tag_rule() {
        assert!(tag_matches_comm(b"sshd", b"sshd"));
        assert!(tag_matches_comm(b"/usr/sbin/cron", b"cron"));
        // comm is cut at 15 bytes
        assert!(tag_matches_comm(
            b"systemd-networkd-wait",
            b"systemd-network"
        ));
        assert!(!tag_matches_comm(b"sshd", b"evil"));
        assert!(!tag_matches_comm(b"ssh", b"sshd"));
    }

    #[test]
    fn mismatch_rule() {
        let single =
            |tag: Option<&[u8]>, pid, comm: &[u8]| identity_mismatch(tag, pid, (1, 1), comm, comm);
        let m = identity_mismatch(Some(b"sshd"), Some(1), (4242, 4242), b"evil", b"evil");
        assert_eq!(m.reason(), "pid,tag");
        let m = identity_mismatch(Some(b"app"), Some(4242), (4242, 4243), b"app", b"app");
        assert!(!m.any());
        // a thread id is an honest pid too
        assert!(!identity_mismatch(None, Some(4243), (4242, 4243), b"x", b"x").any());
        // a worker thread with a name of its own, logging under the process's name
        let m = identity_mismatch(Some(b"myd"), None, (5, 6), b"myd", b"tokio-runtime-w");
        assert!(!m.any());
        // logger's default tag is the user name: not flagged
        assert!(!single(Some(b"root"), None, b"logger").any());
        // an interpreter running a script with its own ident: not flagged
        assert!(!single(Some(b"myapp"), None, b"python3").any());
        // but a claimed pid is checked whatever the comm
        assert_eq!(single(Some(b"root"), Some(7), b"logger").reason(), "pid");
        assert_eq!(single(Some(b"sshd"), None, b"evil").reason(), "tag");
        assert!(!single(None, None, b"evil").any());
    }
}
