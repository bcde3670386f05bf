//! Least privilege: once the eBPF programs are loaded and attached, the daemon keeps only
//! the capabilities its running sources need — by default `CAP_SYSLOG` (read /dev/kmsg when
//! `dmesg_restrict=1`), `CAP_DAC_READ_SEARCH` (read log files and journals whatever their
//! mode) and `CAP_NET_BIND_SERVICE` (syslog on port 514) — and drops everything else,
//! `CAP_BPF`, `CAP_PERFMON` and `CAP_SYS_ADMIN` included, from the effective, permitted,
//! inheritable, ambient and bounding sets. The attached programs, the ring buffer and the
//! maps keep working through the file descriptors already open.
//!
//! Linux capabilities belong to threads, not processes, and `capset(2)` changes only the
//! calling thread. [`drop_all_threads`] therefore does what glibc does for `setuid`: it
//! signals every other thread of the process and has each drop its own capabilities in
//! the signal handler (raw syscalls only, async-signal-safe), then drops the caller's.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// Capabilities the running daemon keeps by default.
pub const DAEMON_CAPABILITIES: [&str; 3] =
    ["CAP_SYSLOG", "CAP_DAC_READ_SEARCH", "CAP_NET_BIND_SERVICE"];

/// Names of capabilities 0..=40, in number order.
pub const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A set of capabilities as a bit mask (bit n = capability n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(pub u64);

impl CapSet {
    pub fn contains(&self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    pub fn names(&self) -> Vec<String> {
        (0..64u32)
            .filter(|&c| self.contains(c))
            .map(|c| match CAP_NAMES.get(c as usize) {
                Some(n) => n.to_string(),
                None => format!("cap_{c}"),
            })
            .collect()
    }
}

/// Parses capability names (`CAP_SYSLOG` or `syslog`, any case).
pub fn parse_capabilities(names: &[String]) -> Result<CapSet> {
    let mut set = 0u64;
    for n in names {
        let up = n.trim().to_ascii_uppercase();
        let full = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        match CAP_NAMES.iter().position(|c| *c == full) {
            Some(i) => set |= 1 << i,
            None => bail!("unknown capability {n:?}"),
        }
    }
    Ok(CapSet(set))
}

/// `CAP_A,CAP_B` or `none`.
pub fn describe(set: &CapSet) -> String {
    let n = set.names();
    if n.is_empty() {
        "none".into()
    } else {
        n.join(",")
    }
}

/// The effective capabilities of this thread (`CapEff` in /proc/thread-self/status).
pub fn effective() -> Option<CapSet> {
    status_caps("/proc/thread-self/status", "CapEff:")
}

/// Capability set `field` (`CapEff:`, `CapPrm:`, `CapBnd:` ...) of a `status` file.
pub fn status_caps(path: &str, field: &str) -> Option<CapSet> {
    let s = std::fs::read_to_string(path).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    u64::from_str_radix(line[field.len()..].trim(), 16)
        .ok()
        .map(CapSet)
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

static KEEP: AtomicU64 = AtomicU64::new(0);
static LAST_CAP: AtomicU64 = AtomicU64::new(40);
static DONE: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);
static FIRST_ERRNO: AtomicI64 = AtomicI64::new(0);
/// One drop at a time.
static LOCK: Mutex<()> = Mutex::new(());

/// Drops every capability not in `KEEP` from the calling thread. Raw syscalls only: runs
/// in a signal handler.
fn drop_this_thread() -> Result<(), i32> {
    let keep = KEEP.load(Ordering::SeqCst);
    let last = LAST_CAP.load(Ordering::SeqCst) as u32;
    // SAFETY: prctl/capset with valid arguments; no memory is shared.
    unsafe {
        for cap in 0..=last.min(63) {
            if keep & (1 << cap) == 0 {
                // EINVAL for caps this kernel lacks; EPERM without CAP_SETPCAP (then the
                // capset below still empties the permitted set).
                libc::syscall(
                    libc::SYS_prctl,
                    libc::PR_CAPBSET_DROP,
                    cap as libc::c_ulong,
                    0,
                    0,
                    0,
                );
            }
        }
        libc::syscall(
            libc::SYS_prctl,
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        let hdr = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut cur = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capget, &hdr as *const CapHeader, cur.as_mut_ptr()) != 0 {
            return Err(*libc::__errno_location());
        }
        // Keep only what is both wanted and already permitted.
        let mut data = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        for (i, d) in data.iter_mut().enumerate() {
            let k = (keep >> (32 * i)) as u32 & cur[i].permitted;
            d.effective = k;
            d.permitted = k;
        }
        if libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) != 0 {
            return Err(*libc::__errno_location());
        }
    }
    Ok(())
}

extern "C" fn on_signal(_: libc::c_int) {
    // SAFETY: errno is thread-local; saved and restored around the syscalls.
    let saved = unsafe { *libc::__errno_location() };
    match drop_this_thread() {
        Ok(()) => {}
        Err(e) => {
            FAILED.fetch_add(1, Ordering::SeqCst);
            let _ = FIRST_ERRNO.compare_exchange(0, e as i64, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
    DONE.fetch_add(1, Ordering::SeqCst);
    unsafe { *libc::__errno_location() = saved };
}

fn thread_ids() -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Drops, in every thread of the process, all capabilities except `keep` (and except what
/// a thread does not have anyway). Errors when a thread could not be reached or refused.
pub fn drop_all_threads(keep: &CapSet) -> Result<()> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    KEEP.store(keep.0, Ordering::SeqCst);
    LAST_CAP.store(last_cap() as u64, Ordering::SeqCst);
    DONE.store(0, Ordering::SeqCst);
    FAILED.store(0, Ordering::SeqCst);
    FIRST_ERRNO.store(0, Ordering::SeqCst);

    // SAFETY: plain syscalls.
    let (pid, me) = unsafe { (libc::getpid(), libc::gettid()) };
    let sig = libc::SIGRTMIN() + 6;
    // SAFETY: installs a handler that only makes raw syscalls and touches atomics; the old
    // action is restored below.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, &mut old) != 0 {
            bail!("sigaction: {}", std::io::Error::last_os_error());
        }
    }
    let mut signalled = 0usize;
    let mut seen: Vec<i32> = Vec::new();
    // Threads may be born while we walk the list: repeat until no new one appears.
    for _round in 0..4 {
        let tids: Vec<i32> = thread_ids()
            .into_iter()
            .filter(|t| *t != me && !seen.contains(t))
            .collect();
        if tids.is_empty() {
            break;
        }
        for t in tids {
            seen.push(t);
            // SAFETY: tgkill on a thread of our own process.
            if unsafe { libc::syscall(libc::SYS_tgkill, pid, t, sig) } == 0 {
                signalled += 1;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while DONE.load(Ordering::SeqCst) < signalled && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let done = DONE.load(Ordering::SeqCst);
    let own = drop_this_thread();
    // SAFETY: restores the previous action.
    unsafe { libc::sigaction(sig, &old, std::ptr::null_mut()) };
    if let Err(e) = own {
        bail!("capset: {}", std::io::Error::from_raw_os_error(e));
    }
    if done < signalled {
        bail!(
            "{} of {signalled} threads did not drop their capabilities in time",
            signalled - done
        );
    }
    let failed = FAILED.load(Ordering::SeqCst);
    if failed > 0 {
        bail!(
            "{failed} threads could not drop their capabilities: {}",
            std::io::Error::from_raw_os_error(FIRST_ERRNO.load(Ordering::SeqCst) as i32)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let set = parse_capabilities(&["cap_syslog".into(), "DAC_READ_SEARCH".into()]).unwrap();
        assert!(set.contains(34) && set.contains(2));
        assert_eq!(describe(&set), "CAP_DAC_READ_SEARCH,CAP_SYSLOG");
        assert!(parse_capabilities(&["CAP_NOPE".into()]).is_err());
        assert_eq!(describe(&CapSet(0)), "none");
    }

    /// Runs in a child process (it changes the whole process), as root only.
    #[test]
    fn drops_capabilities_in_every_thread() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED drops_capabilities_in_every_thread: not root");
            return;
        }
        // SAFETY: the child only runs async-signal-safe code until _exit... except that it
        // starts threads; it is a fresh single-threaded copy made for this purpose.
        let child = unsafe { libc::fork() };
        assert!(child >= 0);
        if child == 0 {
            let code = std::panic::catch_unwind(|| {
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                let worker = std::thread::spawn(move || {
                    rx.recv().unwrap();
                    effective().unwrap()
                });
                let keep = parse_capabilities(&["CAP_SYSLOG".into()]).unwrap();
                drop_all_threads(&keep).unwrap();
                tx.send(()).unwrap();
                let theirs = worker.join().unwrap();
                let mine = effective().unwrap();
                let bounding = status_caps("/proc/thread-self/status", "CapBnd:").unwrap();
                mine == keep && theirs == keep && bounding == keep
            });
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(if matches!(code, Ok(true)) { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(child, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child failed"
        );
    }
}
