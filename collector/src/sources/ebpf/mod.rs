//! The `ebpf` source: kernel-side capture of kernel log text and of every syslog datagram
//! sent to /dev/log, with the sender's identity as the kernel knows it.
//!
//! [`spawn`] loads `collector-ebpf` (offsets from the running kernel's BTF), attaches the
//! best hooks the kernel permits (see [`loader`]), optionally drops the capabilities the
//! daemon no longer needs ([`crate::privilege`]) and starts a thread that polls the ring
//! buffer and turns events into rows:
//!
//! * **syslog** datagrams become rows with `source = "syslog"`: the message is parsed
//!   (RFC 5424 or RFC 3164), but `process_id`, `uid` and `process_name` (comm) come from
//!   the kernel, and `timestamp` is the kernel's time of the send. The sender's own claims
//!   go to `extra`: `claimed_tag`, `claimed_pid` (and `claimed_hostname` when it names one).
//!   `extra.identity_mismatch = "true"` with `identity_mismatch_reason` = `pid`, `tag` or
//!   `pid,tag` when they disagree: **pid** when a claimed pid is neither the sender's pid
//!   nor its thread id (strong); **tag** when the claimed tag (its basename, cut to 15
//!   bytes like comm) is not the sender's comm and the sender is not a relay that
//!   legitimately sends other names (`logger`, whose default tag is the user name, shells,
//!   interpreters) — weaker, because programs may pick any ident. The tag is compared with
//!   the process's comm and with the sending thread's (threads often have names of their
//!   own). `process_name` is the process's comm (the thread group leader's, as `ps` shows
//!   it). Also in `extra`: `tid`, `gid`, `cgroup_id` (cgroup v2 id), `ebpf_hook`, and
//!   `thread_comm` when the sending thread's name differs from the process's.
//! * **console** (printk and /dev/kmsg writes) events go, as [`KernelCaller`]s, to the
//!   kmsg source, which joins them with /dev/kmsg records by text. Without such a channel
//!   they become rows of their own (`source = "kmsg"`, with `extra.ebpf_hook`).
//!
//! eBPF capture is at-most-once: chunks carry no checkpoint. The programs count what they
//! send, drop (ring buffer full) and fault (unreadable text) per CPU; [`stats`] sums them,
//! and the source logs `ebpf stats: sent=N dropped=N faulted=N truncated=N` when it stops.
//! When eBPF is not permitted or not built in, [`spawn`] logs one line and returns a
//! status saying so: the collector goes on with its userspace sources.
//!
//! The programs' diagnostics (a user buffer that cannot be read, the ring buffer full, a
//! kernel read or length that means the BTF offsets do not fit) arrive through aya-log:
//! the reader thread drains its ring next to the events ring, and the `log` records become
//! our tracing events (tracing-subscriber's `tracing-log` bridge, installed with the
//! subscriber), target `collector_ebpf`, level debug: shown with `RUST_LOG=debug` (or
//! `INFRALOG_LOG=debug`). At a quieter level the programs are told not to write them
//! ([`loader::aya_log_level`]). If the logger cannot start, one warning; capture goes on.
//!
//! Limits, by hook:
//! * `raw_tp/sys_enter` (the syslog hook where fentry is refused) sees write, writev,
//!   sendto and sendmsg of native syscalls: not sendmmsg, io_uring or 32-bit compat
//!   syscalls (`fentry/unix_dgram_sendmsg` sees them all). Both capture at entry, i.e.
//!   *attempted* sends: a datagram the kernel then refuses (full queue with
//!   `MSG_DONTWAIT`, no listener) and the client re-sends is captured each time.
//! * Only datagram sockets: a client that falls back to a SOCK_STREAM /dev/log is not seen.
//! * Text is cut at 4 KiB (`extra.truncated` holds the original length).
//! * A printk from interrupt context runs on whatever task it interrupted: its "caller"
//!   is that task (the same caveat as the kernel's own `CONFIG_PRINTK_CALLER`, which
//!   reports a CPU instead).

pub mod btf;
pub mod decode;
pub mod loader;
pub mod standalone;

use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use collector_ebpf_common::{DevIno, STAT_DROPPED, STAT_FAULTED, STAT_SENT, STAT_TRUNCATED};
use crossbeam_channel::{Sender, TrySendError};
use infralog_schemas::{extra_key, source};
use serde::Deserialize;

use crate::batch::{LogBatchBuilder, Row, decimal};
use crate::chunk::Chunk;
use crate::parse::{Format, ParseContext, Pri, parse_line};
use crate::sources::{KernelCaller, SourceContext};
use crate::time::{boot_unix_ns, local_utc_offset_secs, now_ns};

use crate::identity::identity_mismatch;
use decode::{Event, Kind};
pub use loader::{HookAttempt, hook};

/// `[sources.ebpf]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EbpfConfig {
    pub enabled: bool,
    /// Capture kernel log text (printk, /dev/kmsg writes) with the caller's identity.
    pub kmsg: bool,
    /// Capture datagrams sent to the /dev/log sockets.
    pub syslog: bool,
    /// Sockets that count as /dev/log: matched by inode for connected senders (symlinks
    /// followed, re-checked every `devlog_refresh_secs`) and by path for `sendto`.
    pub devlog_paths: Vec<String>,
    /// Ring buffer size in bytes (rounded up to a power of two).
    pub ringbuf_bytes: u32,
    /// Hooks not to try, e.g. `["raw_tp/console"]` to use the tracepoint fallback.
    pub skip_hooks: Vec<String>,
    /// After attaching, drop every capability but `keep_capabilities`.
    pub drop_capabilities: bool,
    pub keep_capabilities: Vec<String>,
    pub devlog_refresh_secs: u64,
}

impl Default for EbpfConfig {
    fn default() -> Self {
        EbpfConfig {
            enabled: true,
            kmsg: true,
            syslog: true,
            devlog_paths: vec!["/dev/log".into(), "/run/systemd/journal/dev-log".into()],
            ringbuf_bytes: 8 << 20,
            skip_hooks: Vec::new(),
            drop_capabilities: true,
            keep_capabilities: crate::privilege::DAEMON_CAPABILITIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            devlog_refresh_secs: 5,
        }
    }
}

/// What [`spawn`] achieved.
#[derive(Debug)]
pub struct EbpfStatus {
    /// `Some(reason)` when nothing is captured with eBPF.
    pub unavailable: Option<String>,
    pub kmsg_hook: Option<&'static str>,
    pub syslog_hook: Option<&'static str>,
    /// Every hook tried, in order, with the reason when it failed.
    pub attempts: Vec<HookAttempt>,
    /// The capability drop, when configured: what is kept, or why it failed.
    pub privileges: Option<Result<String, String>>,
    /// Counters of this instance (the programs' per-CPU counters and the reader's).
    pub stats: Option<Arc<EbpfStats>>,
    /// The reader thread; it ends when `shutdown` is set (or at once with `once`), or
    /// with an error when the pipeline is gone.
    pub thread: Option<JoinHandle<Result<()>>>,
}

impl EbpfStatus {
    fn unavailable(why: String) -> Self {
        EbpfStatus {
            unavailable: Some(why),
            kmsg_hook: None,
            syslog_hook: None,
            attempts: Vec::new(),
            privileges: None,
            stats: None,
            thread: None,
        }
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        match &self.unavailable {
            Some(why) => format!("eBPF unavailable: {why}; capturing with userspace sources only"),
            None => format!(
                "eBPF capture: kmsg via {}, syslog via {}",
                self.kmsg_hook.unwrap_or("none"),
                self.syslog_hook.unwrap_or("none")
            ),
        }
    }
}

/// Counters of the running eBPF source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EbpfCounters {
    /// Events the programs wrote to the ring buffer.
    pub sent: u64,
    /// Events lost in the kernel because the ring buffer was full.
    pub dropped: u64,
    /// Events lost because their text could not be read.
    pub faulted: u64,
    /// Events whose text was cut at 4 KiB.
    pub truncated: u64,
    /// Events the source read.
    pub received: u64,
    /// Console events not handed to the kmsg source because its queue was full.
    pub callers_dropped: u64,
}

impl std::fmt::Display for EbpfCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent={} dropped={} faulted={} truncated={} received={} callers_dropped={}",
            self.sent,
            self.dropped,
            self.faulted,
            self.truncated,
            self.received,
            self.callers_dropped
        )
    }
}

/// Live counters of one loaded object.
pub struct EbpfStats {
    map: Mutex<PerCpuArray<MapData, u64>>,
    received: AtomicU64,
    callers_dropped: AtomicU64,
}

impl std::fmt::Debug for EbpfStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EbpfStats({})", self.read())
    }
}

impl EbpfStats {
    pub fn read(&self) -> EbpfCounters {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let sum = |i: u32| -> u64 { map.get(&i, 0).map(|v| v.iter().copied().sum()).unwrap_or(0) };
        EbpfCounters {
            sent: sum(STAT_SENT),
            dropped: sum(STAT_DROPPED),
            faulted: sum(STAT_FAULTED),
            truncated: sum(STAT_TRUNCATED),
            received: self.received.load(Ordering::Relaxed),
            callers_dropped: self.callers_dropped.load(Ordering::Relaxed),
        }
    }
}

/// Starts eBPF capture. Never fails because eBPF is not permitted or not built: the status
/// then says `unavailable` and one line is logged. `Err` is for a broken configuration.
pub fn spawn(
    ctx: SourceContext,
    cfg: &EbpfConfig,
    kernel_callers: Option<Sender<KernelCaller>>,
) -> Result<EbpfStatus> {
    if !cfg.enabled {
        return Ok(EbpfStatus::unavailable(
            "disabled in the configuration".into(),
        ));
    }
    for h in &cfg.skip_hooks {
        anyhow::ensure!(
            hook::ALL.contains(&h.as_str()),
            "sources.ebpf.skip_hooks: unknown hook {h:?} (known: {})",
            hook::ALL.join(", ")
        );
    }
    let keep = crate::privilege::parse_capabilities(&cfg.keep_capabilities)
        .context("sources.ebpf.keep_capabilities")?;
    let attached = match loader::attach(cfg) {
        Ok(a) => a,
        Err(e) => {
            let status = EbpfStatus::unavailable(format!("{e:#}"));
            tracing::warn!("{}", status.summary());
            return Ok(status);
        }
    };
    let loader::Attached {
        mut ebpf,
        kmsg_hook,
        syslog_hook,
        attempts,
    } = attached;
    for a in &attempts {
        if let Err(why) = &a.result {
            tracing::debug!("eBPF hook {} not attached: {why}", a.hook);
        }
    }
    let diagnostics = Diagnostics::start(&mut ebpf);
    let ring = RingBuf::try_from(ebpf.take_map("EVENTS").context("EVENTS map")?)?;
    let stats_map = PerCpuArray::try_from(ebpf.take_map("STATS").context("STATS map")?)?;
    let mut devlog: BpfHashMap<MapData, DevIno, u32> =
        BpfHashMap::try_from(ebpf.take_map("DEVLOG").context("DEVLOG map")?)?;
    loader::refresh_devlog(&mut devlog, &cfg.devlog_paths)?;
    let stats = Arc::new(EbpfStats {
        map: Mutex::new(stats_map),
        received: AtomicU64::new(0),
        callers_dropped: AtomicU64::new(0),
    });

    let privileges = cfg.drop_capabilities.then(|| {
        crate::privilege::drop_all_threads(&keep)
            .map(|()| crate::privilege::describe(&keep))
            .map_err(|e| format!("{e:#}"))
    });

    let mut status = EbpfStatus {
        unavailable: None,
        kmsg_hook,
        syslog_hook,
        attempts,
        privileges,
        stats: Some(stats.clone()),
        thread: None,
    };
    tracing::info!("{}", status.summary());
    match &status.privileges {
        Some(Ok(kept)) => tracing::info!("capabilities dropped after attach; kept: {kept}"),
        Some(Err(e)) => tracing::warn!("could not drop capabilities after attach: {e}"),
        None => {}
    }
    let reader = Reader {
        ctx,
        ring,
        devlog,
        devlog_paths: cfg.devlog_paths.clone(),
        refresh: Duration::from_secs(cfg.devlog_refresh_secs.max(1)),
        callers: kernel_callers,
        stats,
        diagnostics,
        _ebpf: ebpf,
    };
    status.thread = Some(
        std::thread::Builder::new()
            .name("ebpf".into())
            .spawn(move || reader.run())
            .context("cannot start the ebpf thread")?,
    );
    Ok(status)
}

/// The programs' aya-log records, forwarded to our log as they arrive.
struct Diagnostics {
    fd: std::os::fd::RawFd,
    flush: Box<dyn FnMut() + Send>,
}

impl Diagnostics {
    /// `None` (after one warning) when the object has no log ring or it cannot be opened:
    /// diagnostics are a convenience, capture does not depend on them.
    fn start(ebpf: &mut aya::Ebpf) -> Option<Diagnostics> {
        match aya_log::EbpfLogger::init(ebpf) {
            Ok(mut logger) => Some(Diagnostics {
                fd: logger.as_raw_fd(),
                flush: Box::new(move || logger.flush()),
            }),
            Err(e) => {
                tracing::warn!("eBPF diagnostics unavailable (aya-log: {e}); capture goes on");
                None
            }
        }
    }
}

struct Reader {
    ctx: SourceContext,
    ring: RingBuf<MapData>,
    devlog: BpfHashMap<MapData, DevIno, u32>,
    devlog_paths: Vec<String>,
    refresh: Duration,
    callers: Option<Sender<KernelCaller>>,
    stats: Arc<EbpfStats>,
    diagnostics: Option<Diagnostics>,
    /// Owns the programs and their links: dropping it detaches them.
    _ebpf: aya::Ebpf,
}

/// Per-event state of the reader that does not change between events.
struct RowCtx {
    hostname: Arc<str>,
    boot_ns: i64,
    parse: ParseContext,
    pid: i32,
}

impl Reader {
    fn run(mut self) -> Result<()> {
        let mut builder = LogBatchBuilder::new(self.ctx.chunk_rows.max(1));
        let mut first_row_at: Option<Instant> = None;
        let mut last_refresh = Instant::now();
        let mut refresh_failed = false;
        let mut rc = RowCtx {
            hostname: self.ctx.hostname.clone(),
            boot_ns: boot_unix_ns(),
            parse: parse_context(),
            pid: std::process::id() as i32,
        };
        let fd = self.ring.as_raw_fd();
        let poll_ms = (self.ctx.chunk_max_age.as_millis() as i32).clamp(10, 250);
        loop {
            let stopping = self.ctx.stopping();
            let mut pfds =
                [fd, self.diagnostics.as_ref().map_or(-1, |d| d.fd)].map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
            if !stopping && !self.ctx.once {
                // SAFETY: valid pollfds; poll ignores a negative fd.
                unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, poll_ms) };
            }
            if let Some(d) = self.diagnostics.as_mut() {
                (d.flush)();
            }
            let mut got = 0usize;
            let mut gone = false;
            while let Some(item) = self.ring.next() {
                got += 1;
                if let Some(ev) = Event::decode(&item) {
                    handle_event(&ev, &rc, &mut builder, self.callers.as_ref(), &self.stats);
                }
                drop(item);
                if builder.len() >= self.ctx.chunk_rows.max(1) {
                    if !send(&self.ctx, &mut builder) {
                        gone = true;
                        break;
                    }
                    first_row_at = None;
                }
            }
            if gone {
                return self.finish(false);
            }
            self.stats.received.fetch_add(got as u64, Ordering::Relaxed);
            if !builder.is_empty() {
                let t0 = *first_row_at.get_or_insert_with(Instant::now);
                if stopping || self.ctx.once || t0.elapsed() >= self.ctx.chunk_max_age {
                    if !send(&self.ctx, &mut builder) {
                        return self.finish(false);
                    }
                    first_row_at = None;
                }
            }
            if stopping || self.ctx.once {
                return self.finish(true);
            }
            if last_refresh.elapsed() >= self.refresh {
                last_refresh = Instant::now();
                match loader::refresh_devlog(&mut self.devlog, &self.devlog_paths) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!("ebpf: {n} new /dev/log socket inode(s) watched"),
                    Err(e) if !refresh_failed => {
                        refresh_failed = true;
                        tracing::warn!("ebpf: cannot follow /dev/log changes: {e:#}");
                    }
                    Err(_) => {}
                }
                // Clocks drift (suspend, NTP steps): re-read the boot offset now and then.
                rc.boot_ns = boot_unix_ns();
                rc.parse = parse_context();
            }
        }
    }

    fn finish(mut self, ok: bool) -> Result<()> {
        if let Some(d) = self.diagnostics.as_mut() {
            (d.flush)();
        }
        let c = self.stats.read();
        tracing::info!("ebpf stats: {c}");
        anyhow::ensure!(ok, "the archive pipeline is gone");
        Ok(())
    }
}

fn parse_context() -> ParseContext {
    ParseContext {
        reference_unix_secs: now_ns() / 1_000_000_000,
        utc_offset_secs: local_utc_offset_secs(),
        boot_unix_ns: Some(boot_unix_ns()),
    }
}

/// Sends the rows built so far; `false` when the pipeline is gone.
fn send(ctx: &SourceContext, builder: &mut LogBatchBuilder) -> bool {
    let batch = builder.finish();
    ctx.chunks
        .send(Chunk {
            batch,
            checkpoint: None,
        })
        .is_ok()
}

fn handle_event(
    ev: &Event<'_>,
    rc: &RowCtx,
    builder: &mut LogBatchBuilder,
    callers: Option<&Sender<KernelCaller>>,
    stats: &EbpfStats,
) {
    if ev.pid() == rc.pid {
        return; // the programs skip us already; belt and braces
    }
    match ev.kind() {
        Some(Kind::Syslog) => append_syslog(ev, rc, builder),
        Some(Kind::Kmsg) => match callers {
            Some(tx) => {
                let caller = KernelCaller {
                    text: ev.trimmed_text().to_vec(),
                    pid: ev.pid(),
                    tid: ev.tid(),
                    uid: ev.uid(),
                    comm: String::from_utf8_lossy(ev.comm()).into_owned(),
                };
                if let Err(TrySendError::Full(_)) = tx.try_send(caller) {
                    stats.callers_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => append_console(ev, rc, builder),
        },
        None => {}
    }
}

fn signed(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    if v >= 0 {
        return decimal(v as u64, buf);
    }
    let n = decimal(v.unsigned_abs(), buf).len();
    let start = buf.len() - n - 1;
    buf[start] = b'-';
    &buf[start..]
}

fn put_common(w: &mut crate::batch::ExtraWriter<'_>, ev: &Event<'_>) {
    let mut b = [0u8; 20];
    w.put(extra_key::EBPF_HOOK, ev.hook().as_bytes());
    if ev.thread_comm() != ev.comm() {
        w.put(extra_key::THREAD_COMM, ev.thread_comm());
    }
    w.put(extra_key::TID, signed(ev.tid() as i64, &mut b));
    w.put(extra_key::GID, decimal(ev.gid() as u64, &mut b));
    w.put(extra_key::CGROUP_ID, decimal(ev.header.cgroup_id, &mut b));
}

fn append_syslog(ev: &Event<'_>, rc: &RowCtx, builder: &mut LogBatchBuilder) {
    let text = ev.trimmed_text();
    let rec = parse_line(Format::Auto, text, &rc.parse);
    let comm = ev.comm();
    let mismatch = identity_mismatch(
        rec.app_name,
        rec.proc_id,
        (ev.pid(), ev.tid()),
        comm,
        ev.thread_comm(),
    );
    let ts = rc.boot_ns + ev.header.ts_boot_ns as i64;
    let row = Row {
        timestamp_ns: ts,
        hostname: rc.hostname.as_bytes(),
        source: source::SYSLOG,
        pri: rec.pri,
        message: rec.message,
        original_len: ev.truncated().then_some(ev.header.orig_len as usize),
        process_name: Some(comm),
        process_id: Some(ev.pid()),
        uid: Some(ev.uid()),
        parse_error: rec.error,
        ..Row::default()
    };
    builder.append(&row, now_ns(), |w| {
        let mut b = [0u8; 20];
        if let Some(tag) = rec.app_name {
            w.put(extra_key::CLAIMED_TAG, tag);
        }
        if let Some(pid) = rec.proc_id {
            w.put(extra_key::CLAIMED_PID, signed(pid as i64, &mut b));
        }
        if let Some(h) = rec.hostname
            && h != rc.hostname.as_bytes()
        {
            w.put(extra_key::CLAIMED_HOSTNAME, h);
        }
        if let Some(msgid) = rec.msgid {
            w.put(infralog_schemas::extra_key::MSGID, msgid);
        }
        if mismatch.any() {
            w.put(extra_key::IDENTITY_MISMATCH, b"true");
            w.put(
                extra_key::IDENTITY_MISMATCH_REASON,
                mismatch.reason().as_bytes(),
            );
        }
        put_common(w, ev);
    });
}

fn append_console(ev: &Event<'_>, rc: &RowCtx, builder: &mut LogBatchBuilder) {
    let ts = rc.boot_ns + ev.header.ts_boot_ns as i64;
    let row = Row {
        timestamp_ns: ts,
        hostname: rc.hostname.as_bytes(),
        source: source::KMSG,
        pri: ev
            .kmsg_pri()
            .map(|(facility, level)| Pri { facility, level }),
        message: ev.trimmed_text(),
        original_len: ev.truncated().then_some(ev.header.orig_len as usize),
        process_name: Some(ev.comm()),
        process_id: Some(ev.pid()),
        uid: Some(ev.uid()),
        ..Row::default()
    };
    builder.append(&row, now_ns(), |w| put_common(w, ev));
}

#[cfg(test)]
mod tests;
