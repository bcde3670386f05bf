//! Load harness for the eBPF capture (needs root). See BENCHMARKS.md, section "eBPF".
//!
//! * `ebpf_load overhead` — cost added to an unrelated `write()` syscall: times a child
//!   doing N 1-byte writes to /dev/null, alternately with and without the programs
//!   attached.
//! * `ebpf_load rate` — highest syslog rate captured with zero drops: for each rate, a
//!   separate sender process sends connected datagrams to a test socket for S seconds
//!   while this process captures them into a Parquet archive (ebpf + archive writer);
//!   reports sent, captured, dropped and faulted.
//! * `ebpf_load capture` — eBPF capture into an archive until a stop file appears (used by
//!   tests/tests/ebpf.rs until `infra-collector run` carries `[sources.ebpf]`).
//! * `ebpf_load send` / `ebpf_load writes` — the child processes of the above.

use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use infralog_collector::sources::ebpf::EbpfConfig;
use infralog_collector::sources::ebpf::standalone::{CaptureOptions, capture};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Added cost per unrelated write() with the programs attached.
    Overhead {
        #[arg(long, default_value_t = 1_000_000)]
        writes: u64,
        /// Alternations of (without, with).
        #[arg(long, default_value_t = 5)]
        rounds: u32,
    },
    /// Highest syslog rate captured with zero drops.
    Rate {
        /// Messages per second to try, in order.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "10000,50000,100000,150000,200000"
        )]
        rates: Vec<u64>,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Message size in bytes (syslog header included).
        #[arg(long, default_value_t = 120)]
        size: usize,
        #[arg(long, default_value_t = 8 << 20)]
        ringbuf_bytes: u32,
    },
    /// Capture into an archive until `stop_file` exists.
    Capture {
        #[arg(long)]
        archive: String,
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long, default_value = "testhost")]
        hostname: String,
        /// /dev/log paths (default: the collector's defaults).
        #[arg(long)]
        devlog: Vec<String>,
        /// Also run the /dev/kmsg source and join console events with it.
        #[arg(long)]
        kmsg: bool,
        #[arg(long)]
        ready_file: Option<PathBuf>,
        #[arg(long)]
        stop_file: PathBuf,
        #[arg(long, default_value_t = 8 << 20)]
        ringbuf_bytes: u32,
        /// Hooks not to try (see `infra-collector probe`), to exercise the fallbacks.
        #[arg(long)]
        skip_hook: Vec<String>,
    },
    /// Send syslog datagrams at a fixed rate to a socket.
    Send {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        rate: u64,
        #[arg(long)]
        seconds: u64,
        #[arg(long, default_value_t = 120)]
        size: usize,
    },
    /// N 1-byte writes to /dev/null; prints the time per write in ns.
    Writes {
        #[arg(long)]
        count: u64,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Overhead { writes, rounds } => overhead(writes, rounds),
        Cmd::Rate {
            rates,
            seconds,
            size,
            ringbuf_bytes,
        } => rate(&rates, seconds, size, ringbuf_bytes),
        Cmd::Capture {
            archive,
            state_dir,
            hostname,
            devlog,
            kmsg,
            ready_file,
            stop_file,
            ringbuf_bytes,
            skip_hook,
        } => {
            let mut ebpf = EbpfConfig {
                ringbuf_bytes,
                skip_hooks: skip_hook,
                ..EbpfConfig::default()
            };
            if !devlog.is_empty() {
                ebpf.devlog_paths = devlog;
            }
            let opts = CaptureOptions {
                archive,
                state_dir,
                hostname,
                ebpf,
                kmsg,
                chunk_rows: 8192,
                chunk_max_age: Duration::from_millis(200),
            };
            let stop = Arc::new(AtomicBool::new(false));
            let s2 = stop.clone();
            std::thread::spawn(move || {
                while !stop_file.exists() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                s2.store(true, Ordering::Relaxed);
            });
            let report = capture(&opts, &stop, |status| {
                eprintln!("{}", status.summary());
                if let Some(Ok(kept)) = &status.privileges {
                    eprintln!("capabilities kept after attach: {kept}");
                }
                if let Some(f) = &ready_file {
                    let _ = std::fs::write(f, status.summary());
                }
            })?;
            if let Some(c) = report.counters {
                eprintln!("ebpf stats: {c}");
            }
            eprintln!("rows archived: {}", report.rows);
            Ok(())
        }
        Cmd::Send {
            socket,
            rate,
            seconds,
            size,
        } => {
            let sent = send(&socket, rate, seconds, size)?;
            println!("{sent}");
            Ok(())
        }
        Cmd::Writes { count } => {
            let mut f = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
            let t = Instant::now();
            for _ in 0..count {
                f.write_all(b"x")?;
            }
            println!("{:.1}", t.elapsed().as_nanos() as f64 / count as f64);
            Ok(())
        }
    }
}

fn me() -> Result<PathBuf> {
    std::env::current_exe().context("current_exe")
}

/// Runs a background eBPF capture (into a throwaway archive) while `f` runs.
fn with_capture<T>(
    ringbuf_bytes: u32,
    devlog: Vec<String>,
    f: impl FnOnce() -> Result<T>,
) -> Result<(T, infralog_collector::sources::ebpf::EbpfCounters, u64)> {
    let dir = std::env::temp_dir().join(format!("ebpf-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let opts = CaptureOptions {
        archive: dir.join("archive").to_string_lossy().into_owned(),
        state_dir: dir.join("state"),
        hostname: "bench".into(),
        ebpf: EbpfConfig {
            ringbuf_bytes,
            devlog_paths: devlog,
            drop_capabilities: false,
            ..EbpfConfig::default()
        },
        kmsg: false,
        chunk_rows: 8192,
        chunk_max_age: Duration::from_millis(200),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let stop2 = stop.clone();
    let worker = std::thread::spawn(move || {
        capture(&opts, &stop2, |s| {
            let _ = ready_tx.send(s.unavailable.clone());
        })
    });
    let unavailable = ready_rx.recv().context("capture did not start")?;
    if let Some(why) = unavailable {
        stop.store(true, Ordering::Relaxed);
        let _ = worker.join();
        bail!("eBPF unavailable: {why}");
    }
    let out = f();
    stop.store(true, Ordering::Relaxed);
    let report = worker
        .join()
        .map_err(|_| anyhow::anyhow!("capture panicked"))??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((out?, report.counters.unwrap_or_default(), report.rows))
}

fn child_writes(n: u64) -> Result<f64> {
    let out = Command::new(me()?)
        .args(["writes", "--count", &n.to_string()])
        .output()?;
    anyhow::ensure!(out.status.success(), "writes child failed");
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

fn overhead(writes: u64, rounds: u32) -> Result<()> {
    let mut without = Vec::new();
    let mut with = Vec::new();
    child_writes(writes / 10)?; // warm up
    for r in 0..rounds {
        let a = child_writes(writes)?;
        let (b, c, _) = with_capture(1 << 22, vec!["/dev/log".into()], || child_writes(writes))?;
        println!(
            "round {r}: without {a:.1} ns/write, with {b:.1} ns/write (events sent {})",
            c.sent
        );
        without.push(a);
        with.push(b);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (med(&mut without), med(&mut with));
    println!(
        "median over {rounds} rounds of {writes} writes: without {a:.1} ns, with {b:.1} ns, \
         added {:.1} ns per write()",
        b - a
    );
    Ok(())
}

/// Sends `rate` messages/s for `seconds` over a connected datagram socket, pacing every
/// millisecond. Returns how many were sent.
fn send(socket: &Path, rate: u64, seconds: u64, size: usize) -> Result<u64> {
    let c = UnixDatagram::unbound()?;
    c.connect(socket)?;
    let pid = std::process::id();
    let mut msg = format!("<13>Nov 22 10:00:00 loadgen[{pid}]: ebpf-load ").into_bytes();
    let seq_at = msg.len();
    msg.resize(size.max(seq_at + 12), b'x');
    let start = Instant::now();
    let total = rate * seconds;
    let mut sent = 0u64;
    while sent < total {
        let due = (start.elapsed().as_nanos() * rate as u128 / 1_000_000_000) as u64;
        let due = due.min(total);
        while sent < due {
            let digits = format!("{sent:012}");
            msg[seq_at..seq_at + 12].copy_from_slice(digits.as_bytes());
            c.send(&msg)?;
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(sent)
}

fn rate(rates: &[u64], seconds: u64, size: usize, ringbuf_bytes: u32) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ebpf-rate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sock = dir.join("devlog");
    let _ = std::fs::remove_file(&sock);
    let sink = UnixDatagram::bind(&sock)?;
    let received = Arc::new(AtomicU64::new(0));
    let r2 = received.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while sink.recv(&mut buf).is_ok() {
            r2.fetch_add(1, Ordering::Relaxed);
        }
    });
    println!("rate/s  seconds  sent  achieved/s  captured(rows)  ring-sent  dropped  faulted");
    for &r in rates {
        let devlog = vec![sock.to_string_lossy().into_owned()];
        let ((sent, secs), c, rows) = with_capture(ringbuf_bytes, devlog, || {
            let t = Instant::now();
            let out = Command::new(me()?)
                .args([
                    "send",
                    "--socket",
                    &sock.to_string_lossy(),
                    "--rate",
                    &r.to_string(),
                    "--seconds",
                    &seconds.to_string(),
                    "--size",
                    &size.to_string(),
                ])
                .output()?;
            anyhow::ensure!(out.status.success(), "sender failed");
            let sent: u64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
            // let the reader drain before stopping
            std::thread::sleep(Duration::from_millis(500));
            Ok((sent, t.elapsed().as_secs_f64() - 0.5))
        })?;
        println!(
            "{r:>7}  {seconds:>7}  {sent:>8}  {:>10.0}  {rows:>14}  {:>9}  {:>7}  {:>7}",
            sent as f64 / secs,
            c.sent,
            c.dropped,
            c.faulted
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
