//! infra-collector's eBPF programs.
//!
//! * kernel log text: `tp_btf/console` (+ `fentry/vprintk_store` for level and facility)
//!   where the kernel allows BPF trampolines, else `raw_tp/console`, else the classic
//!   `printk/console` tracepoint. The console tracepoint fires inside `vprintk_store()`, in
//!   the context of the task that called printk or wrote /dev/kmsg.
//! * syslog datagrams: `fentry/unix_dgram_sendmsg` where allowed, else `raw_tp/sys_enter`
//!   filtered to write/writev/sendto/sendmsg on AF_UNIX datagram sockets whose peer is a
//!   /dev/log inode, or whose explicit destination is a /dev/log path.
//!
//! Kernel struct offsets are not compiled in (Rust has no CO-RE): they come from the
//! `CONFIG` global, which the collector patches with values read from the running kernel's
//! BTF. Every kernel pointer is read with `bpf_probe_read_kernel`, every user pointer with
//! `bpf_probe_read_user`. Events (header + text) go to one ring buffer; per-CPU counters
//! count what was sent, dropped (ring full), faulted (unreadable text) and truncated.
//!
//! The failure branches (and only they) also report through aya-log at debug level, which
//! the collector shows with `RUST_LOG=debug`. Each kind of failure logs at most once per
//! second per CPU ([`log_due`]): a flood of failures (a full ring at a million events a
//! second, a client sending bad pointers in a loop) costs one line a second, and the line
//! carries the CPU's running count, so nothing about the rate is hidden.
#![no_std]
#![no_main]

use aya_ebpf::EbpfContext as _;
use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
    bpf_get_current_task, bpf_get_current_uid_gid, bpf_ktime_get_boot_ns, bpf_ktime_get_ns,
    bpf_probe_read_kernel, bpf_probe_read_kernel_buf, bpf_probe_read_user,
    bpf_probe_read_user_buf,
};
use aya_ebpf::macros::{btf_tracepoint, fentry, map, raw_tracepoint, tracepoint};
use aya_ebpf::maps::{HashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::{
    BtfTracePointContext, FEntryContext, RawTracePointContext, TracePointContext,
};
use aya_log_ebpf::debug;
use collector_ebpf_common::*;

/// Patched by the collector before load (`EbpfLoader::override_global("CONFIG", ..)`).
#[unsafe(no_mangle)]
static CONFIG: Config = Config::ZERO;

/// Offset of the `__data_loc char[] msg` field in the `printk/console` tracepoint record,
/// read by the collector from tracefs (8 on current kernels).
#[unsafe(no_mangle)]
static CONSOLE_MSG_LOC: u32 = 8;

/// Reads one field of a patched global. `read_volatile` keeps LLVM from folding the zero
/// initialiser; reading field by field keeps the 512-byte stack free.
macro_rules! conf {
    ($($field:tt)+) => {
        unsafe { core::ptr::read_volatile(&raw const CONFIG.$($field)+) }
    };
}

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// An event under construction, with slack behind it so that a copy at a masked offset
/// `pos & (MAX_DATA - 1)` of up to `MAX_DATA` bytes provably stays inside the value.
#[repr(C)]
struct Scratch {
    event: Event,
    _slack: [u8; MAX_DATA],
}

/// Slot 0 for kernel-log events, slot 1 for syslog events: a printk from an interrupt that
/// lands in the middle of a syslog capture on the same CPU does not clobber it.
#[map]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(2, 0);
const SLOT_KMSG: u32 = 0;
const SLOT_SYSLOG: u32 = 1;

/// Level and facility stashed by `fentry/vprintk_store` for the console event that follows
/// on the same CPU.
#[repr(C)]
#[derive(Clone, Copy)]
struct PrintkCtx {
    facility: i32,
    level: i32,
    valid: u32,
}

#[map]
static PRINTK_CTX: PerCpuArray<PrintkCtx> = PerCpuArray::with_max_entries(1, 0);

/// The /dev/log socket inodes, kept current by the collector.
#[map]
static DEVLOG: HashMap<DevIno, u32> = HashMap::with_max_entries(MAX_DEVLOG_INODES, 0);

#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_COUNT, 0);

/// Counts one `stat` on this CPU; returns the CPU's count so far.
#[inline(always)]
fn count(stat: u32) -> u64 {
    match STATS.get_ptr_mut(stat) {
        // SAFETY: per-CPU slot, programs do not migrate while running.
        Some(p) => unsafe {
            *p += 1;
            *p
        },
        None => 0,
    }
}

// What a diagnostic is about: one rate-limit slot each.
const DIAG_USER_FAULT: u32 = 0;
const DIAG_RING_FULL: u32 = 1;
const DIAG_KERNEL_READ: u32 = 2;
const DIAG_BAD_LENGTH: u32 = 3;
const DIAG_COUNT: u32 = 4;
const DIAG_INTERVAL_NS: u64 = 1_000_000_000;

/// Printk records are at most 1 KiB (`PRINTKRB_RECORD_MAX`); a console text much longer
/// than that means the record was read at the wrong place (a stale offset).
const CONSOLE_LEN_SANE: usize = 8 * 1024;

/// When each kind of diagnostic was last logged on this CPU (`bpf_ktime_get_ns`).
#[map]
static DIAG_AT: PerCpuArray<u64> = PerCpuArray::with_max_entries(DIAG_COUNT, 0);

/// Whether a diagnostic of this kind may be logged now: at most one per second per CPU.
/// Called only on failure branches, never for an event that went through.
#[inline(always)]
fn log_due(diag: u32) -> bool {
    let Some(p) = DIAG_AT.get_ptr_mut(diag) else {
        return false;
    };
    // SAFETY: helper without preconditions; per-CPU slot.
    let now = unsafe { bpf_ktime_get_ns() };
    let last = unsafe { &mut *p };
    if *last != 0 && now.wrapping_sub(*last) < DIAG_INTERVAL_NS {
        return false;
    }
    *last = now;
    true
}

#[inline(always)]
fn current_tgid() -> u32 {
    (bpf_get_current_pid_tgid() >> 32) as u32
}

/// Reads a `T` at kernel address `addr`.
#[inline(always)]
fn kread<T>(addr: u64) -> Result<T, i32> {
    // SAFETY: bpf_probe_read_kernel validates the address.
    unsafe { bpf_probe_read_kernel(addr as *const T) }
}

#[inline(always)]
fn uread<T>(addr: u64) -> Result<T, i32> {
    // SAFETY: bpf_probe_read_user validates the address.
    unsafe { bpf_probe_read_user(addr as *const T) }
}

#[inline(always)]
fn is_self() -> bool {
    (bpf_get_current_pid_tgid() >> 32) as u32 == conf!(self_tgid)
}

#[inline(always)]
fn scratch(slot: u32) -> Option<&'static mut Scratch> {
    // SAFETY: the map value is valid for the program's run on this CPU.
    SCRATCH
        .get_ptr_mut(slot)
        .and_then(|p| unsafe { p.as_mut() })
}

#[inline(always)]
fn fill_header(h: &mut EventHeader, kind: u8, hook: u8) {
    // SAFETY: helpers without preconditions.
    h.ts_boot_ns = unsafe { bpf_ktime_get_boot_ns() };
    h.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    h.pid_tgid = bpf_get_current_pid_tgid();
    h.uid_gid = bpf_get_current_uid_gid();
    h.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    // SAFETY: helper without preconditions.
    let task = unsafe { bpf_get_current_task() };
    h.process_comm = kread::<u64>(task + conf!(offsets.task_group_leader) as u64)
        .and_then(|leader| kread::<[u8; 16]>(leader + conf!(offsets.task_comm) as u64))
        .unwrap_or([0; 16]);
    h.kind = kind;
    h.hook = hook;
    h.flags = 0;
    h.facility = LEVEL_UNKNOWN;
    h.level = LEVEL_UNKNOWN;
    h._pad = [0; 3];
    h.orig_len = 0;
    h.data_len = 0;
}

/// Writes header + the first `len` bytes of text to the ring buffer.
#[inline(always)]
fn submit(s: &mut Scratch, len: usize) {
    let n = if len > MAX_DATA { MAX_DATA } else { len };
    s.event.header.data_len = n as u32;
    if s.event.header.flags & FLAG_TRUNCATED != 0 {
        count(STAT_TRUNCATED);
    }
    // SAFETY: `Scratch` is plain bytes; the slice stays inside the map value.
    let bytes: &[u8] = unsafe {
        core::slice::from_raw_parts((s as *const Scratch).cast::<u8>(), HEADER_LEN + MAX_DATA)
    };
    let Some(out) = bytes.get(..HEADER_LEN + n) else {
        return;
    };
    if EVENTS.output::<[u8]>(out, 0).is_ok() {
        count(STAT_SENT);
        return;
    }
    let dropped = count(STAT_DROPPED);
    if log_due(DIAG_RING_FULL) {
        debug!(
            &(),
            "ring buffer full: event of pid {} dropped ({} dropped on this CPU so far; \
             raise sources.ebpf.ringbuf_bytes)",
            current_tgid(),
            dropped
        );
    }
}

// ───────────────────────────── kernel log ─────────────────────────────

/// `int vprintk_store(int facility, int level, const struct dev_printk_info *dev_info,
/// const char *fmt, va_list args)`: stash facility and level for the console event.
#[fentry(function = "vprintk_store")]
pub fn kmsg_vprintk_store(ctx: FEntryContext) -> i32 {
    let facility: i32 = ctx.arg(0);
    let mut level: i32 = ctx.arg(1);
    let fmt: u64 = ctx.arg(3);
    if facility == 0 && level < 0 {
        // A KERN_<LEVEL> prefix is "\x01" + '0'..='7' at the start of the format.
        if let Ok(b) = kread::<[u8; 2]>(fmt) {
            if b[0] == 1 && (b'0'..=b'7').contains(&b[1]) {
                level = (b[1] - b'0') as i32;
            }
        }
    }
    if let Some(p) = PRINTK_CTX.get_ptr_mut(0) {
        // SAFETY: per-CPU value.
        unsafe {
            *p = PrintkCtx {
                facility,
                level,
                valid: 1,
            }
        }
    }
    0
}

/// `TRACE_EVENT(console, TP_PROTO(const char *text, size_t len))`, typed.
#[btf_tracepoint(function = "console")]
pub fn kmsg_tp_btf_console(ctx: BtfTracePointContext) -> i32 {
    emit_console(ctx.arg(0), ctx.arg(1), HOOK_TP_BTF_CONSOLE);
    0
}

/// The same tracepoint as a raw tracepoint: needs no trampoline and no tracefs.
#[raw_tracepoint(tracepoint = "console")]
pub fn kmsg_raw_console(ctx: RawTracePointContext) -> i32 {
    emit_console(ctx.arg(0), ctx.arg(1), HOOK_RAW_TP_CONSOLE);
    0
}

/// The classic `printk/console` tracepoint: the text is a `__data_loc` field of the
/// record (`len << 16 | offset`, the length counting the trailing NUL).
#[tracepoint]
pub fn kmsg_tp_console(ctx: TracePointContext) -> i32 {
    let at = unsafe { core::ptr::read_volatile(&raw const CONSOLE_MSG_LOC) } as usize;
    // SAFETY: bounded read inside the tracepoint record.
    let Ok(loc) = (unsafe { ctx.read_at::<u32>(at) }) else {
        if log_due(DIAG_KERNEL_READ) {
            debug!(
                &ctx,
                "printk/console record unreadable at offset {} (CONSOLE_MSG_LOC)", at
            );
        }
        return 0;
    };
    let off = (loc & 0xffff) as u64;
    let len = ((loc >> 16) as u64).saturating_sub(1);
    emit_console(ctx.as_ptr() as u64 + off, len as usize, HOOK_TP_CONSOLE);
    0
}

#[inline(always)]
fn emit_console(text: u64, len: usize, hook: u8) {
    if is_self() {
        return;
    }
    let Some(s) = scratch(SLOT_KMSG) else {
        return;
    };
    fill_header(&mut s.event.header, KIND_KMSG, hook);
    if let Some(p) = PRINTK_CTX.get_ptr_mut(0) {
        // SAFETY: per-CPU value.
        let c = unsafe { &mut *p };
        if c.valid != 0 {
            s.event.header.facility = if c.facility < 0 {
                LEVEL_UNKNOWN
            } else {
                c.facility as u8
            };
            s.event.header.level = if c.level < 0 {
                LEVEL_UNKNOWN
            } else {
                c.level as u8
            };
            c.valid = 0;
        }
    }
    s.event.header.orig_len = len as u32;
    if len > CONSOLE_LEN_SANE && log_due(DIAG_BAD_LENGTH) {
        debug!(
            &(),
            "console text of {} bytes from hook {}: longer than any printk record, \
             the tracepoint arguments may be read at the wrong offsets",
            len,
            hook
        );
    }
    let n = if len > MAX_DATA {
        s.event.header.flags |= FLAG_TRUNCATED;
        MAX_DATA
    } else {
        len
    };
    let Some(dst) = s.event.data.get_mut(..n) else {
        return;
    };
    // SAFETY: kernel pointer from the tracepoint; the helper checks it.
    if let Err(e) = unsafe { bpf_probe_read_kernel_buf(text as *const u8, dst) } {
        let faulted = count(STAT_FAULTED);
        if log_due(DIAG_KERNEL_READ) {
            debug!(
                &(),
                "console text of {} bytes unreadable (error {}, hook {}; {} faults on this CPU)",
                n,
                e,
                hook,
                faulted
            );
        }
        return;
    }
    submit(s, n);
}

// ───────────────────────────── syslog ─────────────────────────────

const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;
const AF_UNIX: u16 = 1;
const SOCK_DGRAM: u16 = 2;

/// Does the `sun_path` the sender named (`got`, its first `plen` bytes valid) equal one of
/// the configured /dev/log paths? Compared as 8-byte words, bytes past `plen` as NUL.
#[inline(always)]
fn path_matches(got: &[u8; PATH_LEN], plen: usize) -> bool {
    let mut words = [0u64; PATH_LEN / 8];
    for (w, word) in words.iter_mut().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&got[w * 8..w * 8 + 8]);
        let v = u64::from_le_bytes(b);
        let valid = plen.saturating_sub(w * 8);
        *word = if valid >= 8 {
            v
        } else if valid == 0 {
            0
        } else {
            v & ((1u64 << (valid * 8)) - 1)
        };
    }
    for i in 0..MAX_DEVLOG {
        let want = (&raw const CONFIG.devlog_paths[i]).cast::<u64>();
        // SAFETY: reading the patched global, inside its bounds.
        let first = unsafe { core::ptr::read_volatile(want) };
        if first == 0 {
            continue;
        }
        let mut same = true;
        for (w, word) in words.iter().enumerate() {
            if unsafe { core::ptr::read_volatile(want.add(w)) } != *word {
                same = false;
                break;
            }
        }
        if same {
            return true;
        }
    }
    false
}

/// Is the connected peer of AF_UNIX socket `sk` one of the /dev/log inodes?
#[inline(always)]
fn peer_is_devlog(sk: u64) -> Result<bool, i32> {
    let peer: u64 = kread(sk + conf!(offsets.unix_sock_peer) as u64)?;
    if peer == 0 {
        return Ok(false);
    }
    let dentry: u64 = kread(peer + conf!(offsets.unix_sock_path_dentry) as u64)?;
    if dentry == 0 {
        return Ok(false); // the peer is unnamed or abstract
    }
    let inode: u64 = kread(dentry + conf!(offsets.dentry_d_inode) as u64)?;
    if inode == 0 {
        return Ok(false);
    }
    let ino: u64 = kread(inode + conf!(offsets.inode_i_ino) as u64)?;
    let sb: u64 = kread(inode + conf!(offsets.inode_i_sb) as u64)?;
    let dev: u32 = kread(sb + conf!(offsets.super_block_s_dev) as u64)?;
    let key = DevIno {
        dev: dev as u64,
        ino,
    };
    // SAFETY: the value is not held across calls.
    Ok(unsafe { DEVLOG.get(&key) }.is_some())
}

/// Reads the `sun_path` of a `sockaddr_un` of `namelen` bytes at `name` and matches it.
#[inline(always)]
fn address_is_devlog(name: u64, namelen: u32, user: bool) -> bool {
    if name == 0 || namelen <= 2 {
        return false;
    }
    let plen = (namelen - 2) as usize;
    let n = if plen > PATH_LEN { PATH_LEN } else { plen };
    let mut got = [0u8; PATH_LEN];
    let Some(dst) = got.get_mut(..n) else {
        return false;
    };
    let src = (name + 2) as *const u8;
    // SAFETY: the helpers check the address.
    let ok = if user {
        unsafe { bpf_probe_read_user_buf(src, dst) }.is_ok()
    } else {
        unsafe { bpf_probe_read_kernel_buf(src, dst) }.is_ok()
    };
    ok && path_matches(&got, plen)
}

/// Copies up to `MAX_DATA` bytes from a user iovec array into the event; returns the bytes
/// copied and the total length of all segments, or `None` on a fault.
#[inline(always)]
fn copy_iovec(s: &mut Scratch, iov: u64, nr_segs: u64) -> Option<(usize, u64)> {
    let data: *mut u8 = s.event.data.as_mut_ptr();
    let mut total: usize = 0;
    let mut orig: u64 = 0;
    for i in 0..MAX_IOV_SEGS as u64 {
        if i >= nr_segs {
            break;
        }
        let seg: [u64; 2] = uread(iov + i * 16).ok()?;
        orig += seg[1];
        if total >= MAX_DATA {
            continue;
        }
        let pos = total & (MAX_DATA - 1);
        let room = MAX_DATA - pos;
        let want = if (seg[1] as usize) < room {
            seg[1] as usize
        } else {
            room
        };
        let want = want & (2 * MAX_DATA - 1);
        let want = if want > MAX_DATA { MAX_DATA } else { want };
        // SAFETY: pos < MAX_DATA and want <= MAX_DATA: inside data + slack.
        let dst = unsafe { core::slice::from_raw_parts_mut(data.add(pos), want) };
        // SAFETY: user pointer, checked by the helper.
        if unsafe { bpf_probe_read_user_buf(seg[0] as *const u8, dst) }.is_err() {
            return None;
        }
        total += want;
    }
    Some((total, orig))
}

/// Copies `len` bytes (at most `MAX_DATA`) from user buffer `buf`; `None` on a fault.
#[inline(always)]
fn copy_user(s: &mut Scratch, buf: u64, len: u64) -> Option<usize> {
    let n = if len as usize > MAX_DATA {
        MAX_DATA
    } else {
        len as usize
    };
    let dst = s.event.data.get_mut(..n)?;
    // SAFETY: user pointer, checked by the helper.
    unsafe { bpf_probe_read_user_buf(buf as *const u8, dst) }.ok()?;
    Some(n)
}

/// Counts and reports a syslog send whose user memory could not be read (the syscall
/// itself will fail with EFAULT).
#[inline(always)]
fn user_fault(what: &str) {
    let faulted = count(STAT_FAULTED);
    if log_due(DIAG_USER_FAULT) {
        debug!(
            &(),
            "syslog send by pid {}: {} unreadable (bpf_probe_read_user failed; {} faults on this CPU)",
            current_tgid(),
            what,
            faulted
        );
    }
}

/// Reports a kernel structure walk that failed: with offsets from this kernel's BTF it
/// cannot, so the offsets do not fit (or the BTF is not the running kernel's).
#[inline(always)]
fn kernel_read_failed(hook: &str, err: i32) {
    if log_due(DIAG_KERNEL_READ) {
        debug!(
            &(),
            "{}: kernel read failed (error {}): the BTF offsets may not fit this kernel",
            hook,
            err
        );
    }
}

#[inline(always)]
fn finish_syslog(s: &mut Scratch, copied: Option<(usize, u64)>) {
    let Some((n, orig)) = copied else {
        user_fault("message buffer");
        return;
    };
    s.event.header.orig_len = if orig > u32::MAX as u64 {
        u32::MAX
    } else {
        orig as u32
    };
    if orig as usize > n {
        s.event.header.flags |= FLAG_TRUNCATED;
    }
    submit(s, n);
}

/// `int unix_dgram_sendmsg(struct socket *sock, struct msghdr *msg, size_t len)`: every
/// AF_UNIX datagram send, whatever the syscall (write, send*, io_uring).
#[fentry(function = "unix_dgram_sendmsg")]
pub fn syslog_unix_dgram_sendmsg(ctx: FEntryContext) -> i32 {
    if let Err(e) = try_unix_dgram_sendmsg(&ctx) {
        kernel_read_failed("fentry/unix_dgram_sendmsg", e);
    }
    0
}

fn try_unix_dgram_sendmsg(ctx: &FEntryContext) -> Result<(), i32> {
    if is_self() {
        return Ok(());
    }
    let sock: u64 = ctx.arg(0);
    let msg: u64 = ctx.arg(1);
    let len: u64 = ctx.arg(2);
    // The address was already copied to the kernel (`move_addr_to_kernel`).
    let name: u64 = kread(msg + conf!(offsets.msghdr_msg_name) as u64)?;
    let namelen: i32 = kread(msg + conf!(offsets.msghdr_msg_namelen) as u64)?;
    let flags = if name != 0 {
        if address_is_devlog(name, namelen as u32, false) {
            FLAG_ADDRESSED
        } else {
            0
        }
    } else {
        let sk: u64 = kread(sock + conf!(offsets.socket_sk) as u64)?;
        if peer_is_devlog(sk)? {
            FLAG_CONNECTED
        } else {
            0
        }
    };
    if flags == 0 {
        return Ok(());
    }
    let Some(s) = scratch(SLOT_SYSLOG) else {
        return Ok(());
    };
    fill_header(&mut s.event.header, KIND_SYSLOG, HOOK_FENTRY_UNIX_DGRAM);
    s.event.header.flags = flags;

    let iter = msg + conf!(offsets.msghdr_msg_iter) as u64;
    let itype: u8 = kread(iter + conf!(offsets.iov_iter_type) as u64)?;
    let iov_off: u64 = kread(iter + conf!(offsets.iov_iter_iov_offset) as u64)?;
    let base: u64 = kread(iter + conf!(offsets.iov_iter_ubuf) as u64)?;
    let copied = if itype as u32 == conf!(offsets.iter_ubuf) {
        copy_user(s, base + iov_off, len).map(|n| (n, len))
    } else if itype as u32 == conf!(offsets.iter_iovec) {
        // A fresh iterator: iov_offset is 0 for the first segment.
        let nr: u64 = kread(iter + conf!(offsets.iov_iter_nr_segs) as u64)?;
        copy_iovec(s, base, nr)
    } else {
        return Ok(()); // kvec/bvec: kernel-internal senders
    };
    finish_syslog(s, copied);
    Ok(())
}

/// `TP_PROTO(struct pt_regs *regs, long id)`: every syscall entry. Only write, writev,
/// sendto and sendmsg go past the first compare.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn syslog_sys_enter(ctx: RawTracePointContext) -> i32 {
    let id: u64 = ctx.arg(1);
    let id = id as u32;
    if id != conf!(offsets.nr_write)
        && id != conf!(offsets.nr_writev)
        && id != conf!(offsets.nr_sendto)
        && id != conf!(offsets.nr_sendmsg)
    {
        return 0;
    }
    if let Err(e) = try_sys_enter(ctx.arg(0), id) {
        kernel_read_failed("raw_tp/sys_enter", e);
    }
    0
}

#[inline(always)]
fn syscall_arg(regs: u64, i: usize) -> Result<u64, i32> {
    let off = match i {
        0 => conf!(offsets.syscall_arg[0]),
        1 => conf!(offsets.syscall_arg[1]),
        2 => conf!(offsets.syscall_arg[2]),
        3 => conf!(offsets.syscall_arg[3]),
        4 => conf!(offsets.syscall_arg[4]),
        _ => conf!(offsets.syscall_arg[5]),
    };
    kread(regs + off as u64)
}

/// The userspace `struct msghdr` (a stable ABI, unlike the kernel's).
#[repr(C)]
#[derive(Clone, Copy)]
struct UserMsghdr {
    name: u64,
    namelen: u32,
    _pad: u32,
    iov: u64,
    iovlen: u64,
}

fn try_sys_enter(regs: u64, id: u32) -> Result<(), i32> {
    let fd = syscall_arg(regs, 0)?;
    // fd → struct file: current->files->fdt->fd[fd]
    // SAFETY: helper without preconditions.
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = kread(task + conf!(offsets.task_files) as u64)?;
    let fdt: u64 = kread(files + conf!(offsets.files_fdt) as u64)?;
    let max_fds: u32 = kread(fdt + conf!(offsets.fdtable_max_fds) as u64)?;
    if fd >= max_fds as u64 {
        return Ok(());
    }
    let fds: u64 = kread(fdt + conf!(offsets.fdtable_fd) as u64)?;
    let file: u64 = kread(fds + fd * 8)?;
    if file == 0 {
        return Ok(());
    }
    let inode: u64 = kread(file + conf!(offsets.file_f_inode) as u64)?;
    let mode: u16 = kread(inode + conf!(offsets.inode_i_mode) as u64)?;
    if mode & S_IFMT != S_IFSOCK {
        return Ok(()); // an ordinary write: the common case ends here
    }
    let sock: u64 = kread(file + conf!(offsets.file_private_data) as u64)?;
    let stype: u16 = kread(sock + conf!(offsets.socket_type) as u64)?;
    let sk: u64 = kread(sock + conf!(offsets.socket_sk) as u64)?;
    let family: u16 = kread(sk + conf!(offsets.sock_family) as u64)?;
    if family != AF_UNIX || stype != SOCK_DGRAM {
        return Ok(());
    }
    if is_self() {
        return Ok(());
    }

    // Destination and payload.
    let (mut name, mut namelen) = (0u64, 0u32);
    let (mut buf, mut len, mut iov, mut iovlen) = (0u64, 0u64, 0u64, 0u64);
    if id == conf!(offsets.nr_write) {
        buf = syscall_arg(regs, 1)?;
        len = syscall_arg(regs, 2)?;
    } else if id == conf!(offsets.nr_writev) {
        iov = syscall_arg(regs, 1)?;
        iovlen = syscall_arg(regs, 2)?;
    } else if id == conf!(offsets.nr_sendto) {
        buf = syscall_arg(regs, 1)?;
        len = syscall_arg(regs, 2)?;
        name = syscall_arg(regs, 4)?;
        namelen = syscall_arg(regs, 5)? as u32;
    } else {
        let Ok(m) = uread::<UserMsghdr>(syscall_arg(regs, 1)?) else {
            user_fault("msghdr");
            return Ok(());
        };
        name = m.name;
        namelen = m.namelen;
        iov = m.iov;
        iovlen = m.iovlen;
    }
    let flags = if name != 0 {
        if address_is_devlog(name, namelen, true) {
            FLAG_ADDRESSED
        } else {
            0
        }
    } else if peer_is_devlog(sk)? {
        FLAG_CONNECTED
    } else {
        0
    };
    if flags == 0 {
        return Ok(());
    }
    let Some(s) = scratch(SLOT_SYSLOG) else {
        return Ok(());
    };
    fill_header(&mut s.event.header, KIND_SYSLOG, HOOK_RAW_TP_SYS_ENTER);
    s.event.header.flags = flags;
    let copied = if iov != 0 {
        copy_iovec(s, iov, iovlen)
    } else {
        copy_user(s, buf, len).map(|n| (n, len))
    };
    finish_syslog(s, copied);
    Ok(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
