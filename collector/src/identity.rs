//! The rule that flags a log sender whose self-declared identity (the syslog TAG[PID] in
//! its message, or journald's `SYSLOG_IDENTIFIER`/`SYSLOG_PID`) disagrees with what the
//! kernel knows (the sender's pid and comm, as the eBPF hooks see them or as journald
//! records them in `_PID`/`_COMM`). One rule for every source that can compare.

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
