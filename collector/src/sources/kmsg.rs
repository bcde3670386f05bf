//! The /dev/kmsg source: every kernel record with its sequence number, priority and
//! boot-relative time made wall-clock.
//!
//! Position: the kernel numbers records; the checkpoint is `<boot_id> <seq>` of the last
//! archived record. After a restart within the same boot, records up to that seq are
//! skipped; a jump in seq means the ring buffer overwrote records before we read them,
//! which is counted and flagged on the next row (`extra['kmsg_lost_before']`).
//!
//! Attribution: with eBPF, the console hook reports which task printed each message
//! ([`KernelCaller`]). Records are held briefly until their caller arrives (matched by
//! text), then archived with its pid, uid and comm; order is kept.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::Receiver;
use infralog_schemas::{extra_key, source};

use super::{KernelCaller, SourceContext};
use crate::batch::{LogBatchBuilder, Row, decimal};
use crate::chunk::{Checkpoint, Chunk};
use crate::parse::kmsg::{KmsgRecord, dict_entries, parse_record};
use crate::time::{boot_unix_ns, now_ns};

const CHECKPOINT_KEY: &str = "kmsg";
/// How long a record waits for its eBPF caller before it is archived without one.
const CALLER_WAIT: Duration = Duration::from_millis(300);
/// Callers not matched within this time are dropped (their record was filtered, or came
/// before we started).
const CALLER_TTL: Duration = Duration::from_secs(5);

/// Counters of the kmsg source, readable while it runs.
#[derive(Debug, Default)]
pub struct KmsgStats {
    pub records: AtomicU64,
    /// Records the kernel overwrote before we read them (sequence gaps).
    pub lost: AtomicU64,
    pub attributed: AtomicU64,
}

/// Where the source resumes: the boot it last ran in and the last archived seq there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    boot_id: String,
    seq: u64,
}

impl Position {
    fn encode(&self) -> String {
        format!("{} {}", self.boot_id, self.seq)
    }

    fn decode(s: &str) -> Option<Position> {
        let (boot_id, seq) = s.trim().split_once(' ')?;
        Some(Position {
            boot_id: boot_id.to_string(),
            seq: seq.parse().ok()?,
        })
    }
}

fn current_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown-boot".into())
}

/// Opens the kernel log for reading; a refusal says what grants it.
pub fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            let hint = if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                // README, Troubleshooting; tests/tests/advice.rs follows this advice.
                " (reading the kernel log needs CAP_SYSLOG while kernel.dmesg_restrict = 1: \
                 run as root, or give the binary CAP_SYSLOG)"
            } else {
                ""
            };
            anyhow::anyhow!("cannot open {}: {e}{hint}", path.display())
        })
}

/// Starts the source on its own thread. Fails only if /dev/kmsg cannot be opened.
pub fn spawn(
    ctx: SourceContext,
    path: &Path,
    callers: Option<Receiver<KernelCaller>>,
    max_message_bytes: usize,
) -> Result<(JoinHandle<Result<()>>, Arc<KmsgStats>)> {
    let file = open(path)?;
    let stats = Arc::new(KmsgStats::default());
    let boot_id = current_boot_id();
    let resume = match ctx.checkpoints.load(CHECKPOINT_KEY)? {
        Some(s) => Position::decode(&s).filter(|p| p.boot_id == boot_id),
        None => None,
    };
    let mut reader = Reader {
        ctx,
        file,
        path: path.to_path_buf(),
        boot_id,
        boot_ns: boot_unix_ns(),
        seqs: SeqTracker {
            next: resume.as_ref().map(|p| p.seq + 1),
        },
        builder: LogBatchBuilder::with_max_message(1024, max_message_bytes),
        chunk_started: None,
        last_seq: resume.map(|p| p.seq),
        callers,
        join: CallerJoin::default(),
        held: VecDeque::new(),
        stats: stats.clone(),
    };
    let handle = std::thread::Builder::new()
        .name("source-kmsg".into())
        .spawn(move || reader.run())
        .context("cannot start the kmsg thread")?;
    Ok((handle, stats))
}

struct Reader {
    ctx: SourceContext,
    file: File,
    path: PathBuf,
    boot_id: String,
    boot_ns: i64,
    seqs: SeqTracker,
    builder: LogBatchBuilder,
    chunk_started: Option<Instant>,
    /// Seq of the last record appended to the builder (or skipped as already archived).
    last_seq: Option<u64>,
    callers: Option<Receiver<KernelCaller>>,
    join: CallerJoin,
    /// Records waiting for their caller, oldest first.
    held: VecDeque<Held>,
    stats: Arc<KmsgStats>,
}

struct Held {
    record: Vec<u8>,
    lost_before: u64,
    since: Instant,
}

impl Reader {
    fn run(&mut self) -> Result<()> {
        // Large enough for any record: the kernel limits a record to 8 KiB plus dictionary.
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            self.take_callers();
            match self.file.read(&mut buf) {
                Ok(0) => self.idle()?,
                Ok(n) => self.on_record(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.release_held(false);
                    if self.ctx.once && self.held.is_empty() {
                        return self.send_chunk();
                    }
                    if self.ctx.stopping() {
                        self.release_held(true);
                        return self.send_chunk();
                    }
                    self.idle()?;
                }
                // The ring buffer overwrote the record we were about to read; the next
                // read returns the oldest one left, and its seq tells how many we lost.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.send_chunk()?;
                    return Err(e).with_context(|| format!("reading {}", self.path.display()));
                }
            }
            if self.builder.len() >= self.ctx.chunk_rows {
                self.send_chunk()?;
            }
        }
    }

    fn idle(&mut self) -> Result<()> {
        if self
            .chunk_started
            .is_some_and(|t| t.elapsed() >= self.ctx.chunk_max_age)
        {
            self.send_chunk()?;
        }
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a short timeout keeps shutdown and chunk age checks
        // prompt.
        unsafe { libc::poll(&mut pfd, 1, 50) };
        Ok(())
    }

    fn take_callers(&mut self) {
        if let Some(rx) = &self.callers {
            let now = Instant::now();
            for c in rx.try_iter() {
                self.join.add(c, now);
            }
            self.join.expire(now);
        }
    }

    fn on_record(&mut self, buf: &[u8]) -> Result<()> {
        let rec = match parse_record(buf) {
            Ok(r) => r,
            Err(why) => {
                // Not expected from the kernel; keep the bytes rather than lose them.
                self.append_unparsed(buf, why);
                return Ok(());
            }
        };
        let Some(lost_before) = self.seqs.observe(rec.seq) else {
            return Ok(()); // archived before a restart
        };
        if lost_before > 0 {
            self.stats.lost.fetch_add(lost_before, Ordering::Relaxed);
            tracing::warn!(
                "kmsg: {lost_before} records were overwritten by the kernel before they \
                 could be read (seq {} follows {})",
                rec.seq,
                rec.seq - lost_before - 1
            );
        }
        if self.callers.is_some() {
            self.held.push_back(Held {
                record: buf.to_vec(),
                lost_before,
                since: Instant::now(),
            });
            self.release_held(false);
            return Ok(());
        }
        self.append(&rec, lost_before, None);
        Ok(())
    }

    /// Archives held records from the front while their caller is known or they waited
    /// long enough (all of them when `all`).
    fn release_held(&mut self, all: bool) {
        while let Some(held) = self.held.pop_front() {
            let rec = parse_record(&held.record).expect("held records parsed before");
            let caller = self.join.take(rec.message);
            if caller.is_none() && !all && held.since.elapsed() < CALLER_WAIT {
                self.held.push_front(held);
                break;
            }
            self.append(&rec, held.lost_before, caller.as_ref());
        }
    }

    fn append(&mut self, rec: &KmsgRecord<'_>, lost_before: u64, caller: Option<&KernelCaller>) {
        let row = Row {
            timestamp_ns: self.boot_ns + (rec.usec as i64).saturating_mul(1000),
            hostname: self.ctx.hostname.as_bytes(),
            source: source::KMSG,
            pri: Some(rec.pri),
            message: rec.message,
            process_name: match caller {
                Some(c) => Some(c.comm.as_bytes()),
                None if rec.pri.facility == 0 => Some(b"kernel".as_slice()),
                None => None,
            },
            process_id: caller.map(|c| c.pid),
            uid: caller.map(|c| c.uid),
            ..Row::default()
        };
        if caller.is_some() {
            self.stats.attributed.fetch_add(1, Ordering::Relaxed);
        }
        self.chunk_started.get_or_insert_with(Instant::now);
        self.builder.append(&row, now_ns(), |extra| {
            extra.put(extra_key::KMSG_SEQ, decimal(rec.seq, &mut [0; 20]));
            if lost_before > 0 {
                extra.put(
                    extra_key::KMSG_LOST_BEFORE,
                    decimal(lost_before, &mut [0; 20]),
                );
            }
            for (key, value) in dict_entries(rec.dict) {
                extra.put_joined(&[b"kmsg.", key], value);
            }
        });
        self.last_seq = Some(rec.seq);
        self.stats.records.fetch_add(1, Ordering::Relaxed);
    }

    fn append_unparsed(&mut self, buf: &[u8], why: &'static str) {
        let row = Row {
            timestamp_ns: now_ns(),
            hostname: self.ctx.hostname.as_bytes(),
            source: source::KMSG,
            message: buf,
            parse_error: Some(why),
            ..Row::default()
        };
        self.chunk_started.get_or_insert_with(Instant::now);
        self.builder.append(&row, now_ns(), |_| {});
    }

    fn send_chunk(&mut self) -> Result<()> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let checkpoint = self.last_seq.map(|seq| Checkpoint {
            key: CHECKPOINT_KEY.into(),
            value: Position {
                boot_id: self.boot_id.clone(),
                seq,
            }
            .encode(),
        });
        self.chunk_started = None;
        let chunk = Chunk {
            batch: self.builder.finish(),
            checkpoint,
        };
        self.ctx
            .chunks
            .send(chunk)
            .context("the archive writer stopped")
    }
}

/// Follows kmsg sequence numbers: which records were archived already, and how many the
/// kernel overwrote before we could read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SeqTracker {
    /// The seq expected next; `None` on a fresh start, when whatever the ring buffer
    /// still holds is new to us and nothing counts as lost.
    next: Option<u64>,
}

impl SeqTracker {
    /// `None` when the record was archived before (skip it); otherwise the number of
    /// records missing before it.
    fn observe(&mut self, seq: u64) -> Option<u64> {
        let lost = match self.next {
            Some(next) if seq < next => return None,
            Some(next) => seq - next,
            None => 0,
        };
        self.next = Some(seq + 1);
        Some(lost)
    }
}

/// Recent kernel callers waiting to be matched with their /dev/kmsg record.
#[derive(Default)]
struct CallerJoin {
    waiting: VecDeque<(Instant, KernelCaller)>,
}

impl CallerJoin {
    fn add(&mut self, caller: KernelCaller, now: Instant) {
        self.waiting.push_back((now, caller));
    }

    fn expire(&mut self, now: Instant) {
        while self
            .waiting
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > CALLER_TTL)
        {
            self.waiting.pop_front();
        }
    }

    /// Removes and returns the oldest caller whose text is this kmsg message.
    fn take(&mut self, kmsg_text: &[u8]) -> Option<KernelCaller> {
        let i = self
            .waiting
            .iter()
            .position(|(_, c)| kmsg_escaped_eq(&c.text, kmsg_text))?;
        self.waiting.remove(i).map(|(_, c)| c)
    }
}

/// Whether `escaped` is how /dev/kmsg shows `raw`: the kernel writes bytes below 0x20,
/// from 0x7f, and the backslash itself as `\xNN`.
fn kmsg_escaped_eq(raw: &[u8], escaped: &[u8]) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut e = escaped.iter();
    for &b in raw {
        if !(0x20..0x7f).contains(&b) || b == b'\\' {
            let want = [b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]];
            for w in want {
                if e.next() != Some(&w) {
                    return false;
                }
            }
        } else if e.next() != Some(&b) {
            return false;
        }
    }
    e.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(text: &[u8], pid: i32) -> KernelCaller {
        KernelCaller {
            text: text.to_vec(),
            pid,
            tid: pid,
            uid: 0,
            comm: "bash".into(),
        }
    }

    #[test]
    fn seq_tracker_skips_archived_records_and_counts_gaps() {
        let mut fresh = SeqTracker { next: None };
        assert_eq!(fresh.observe(500), Some(0), "a fresh start loses nothing");
        assert_eq!(fresh.observe(501), Some(0));
        assert_eq!(
            fresh.observe(510),
            Some(8),
            "501 → 510: 502..=509 overwritten"
        );

        let mut resumed = SeqTracker { next: Some(100) };
        assert_eq!(resumed.observe(42), None, "archived before the restart");
        assert_eq!(resumed.observe(99), None);
        assert_eq!(resumed.observe(100), Some(0));
        let mut behind = SeqTracker { next: Some(100) };
        assert_eq!(
            behind.observe(130),
            Some(30),
            "ring wrapped while we were down"
        );
    }

    #[test]
    fn position_round_trips() {
        let p = Position {
            boot_id: "abc-1".into(),
            seq: 42,
        };
        assert_eq!(Position::decode(&p.encode()), Some(p));
        assert_eq!(Position::decode("garbage"), None);
    }

    #[test]
    fn escaped_text_matches_raw() {
        assert!(kmsg_escaped_eq(b"plain", b"plain"));
        assert!(kmsg_escaped_eq(b"a\tb\\c\xff", b"a\\x09b\\x5cc\\xff"));
        assert!(!kmsg_escaped_eq(b"plain", b"plain2"));
        assert!(!kmsg_escaped_eq(b"plain2", b"plain"));
        assert!(!kmsg_escaped_eq(b"a\tb", b"a\tb"));
    }

    #[test]
    fn join_takes_oldest_matching_caller_and_expires_old_ones() {
        let mut j = CallerJoin::default();
        let t0 = Instant::now();
        j.add(caller(b"x", 1), t0);
        j.add(caller(b"y", 2), t0);
        j.add(caller(b"x", 3), t0);
        assert_eq!(j.take(b"x").map(|c| c.pid), Some(1));
        assert_eq!(j.take(b"x").map(|c| c.pid), Some(3));
        assert_eq!(j.take(b"x"), None);
        j.expire(t0 + CALLER_TTL + Duration::from_millis(1));
        assert_eq!(j.take(b"y"), None);
    }
}
