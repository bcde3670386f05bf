//! Privileged tests of the loader and the programs, through this module's API (the
//! end-to-end tests through the binaries are in tests/tests/ebpf.rs). They skip when not
//! root — unless INFRALOG_REQUIRE_PRIVILEGED=1, which turns the skip into a failure.

use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, MapArray};
use arrow::datatypes::{Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use infralog_schemas::col;

use super::*;
use crate::state::CheckpointStore;

fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("INFRALOG_REQUIRE_PRIVILEGED").is_some_and(|v| v == "1") {
        panic!("{test}: needs root but INFRALOG_REQUIRE_PRIVILEGED=1");
    }
    eprintln!("SKIPPED {test}: not running as root");
    false
}

struct Harness {
    dir: tempfile::TempDir,
    rx: crossbeam_channel::Receiver<Chunk>,
    shutdown: Arc<AtomicBool>,
    status: EbpfStatus,
    callers: crossbeam_channel::Receiver<KernelCaller>,
    socket: UnixDatagram,
    sock_path: std::path::PathBuf,
}

fn start(cfg_edit: impl FnOnce(&mut EbpfConfig)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("devlog");
    let socket = UnixDatagram::bind(&sock_path).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(64);
    let (ctx_tx, callers) = crossbeam_channel::bounded(4096);
    let shutdown = Arc::new(AtomicBool::new(false));
    let ctx = SourceContext {
        hostname: "testhost".into(),
        chunks: tx,
        checkpoints: Arc::new(CheckpointStore::empty()),
        shutdown: shutdown.clone(),
        chunk_rows: 1000,
        chunk_max_age: Duration::from_millis(50),
        once: false,
    };
    let mut cfg = EbpfConfig {
        devlog_paths: vec![sock_path.to_str().unwrap().to_string()],
        // a test must not drop the capabilities of the whole test process
        drop_capabilities: false,
        ..EbpfConfig::default()
    };
    cfg_edit(&mut cfg);
    let status = spawn(ctx, &cfg, Some(ctx_tx)).unwrap();
    assert!(status.unavailable.is_none(), "{}", status.summary());
    Harness {
        dir,
        rx,
        shutdown,
        status,
        callers,
        socket,
        sock_path,
    }
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let a = batch.column_by_name(name).unwrap().as_string::<i32>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect()
}

fn extra(batch: &RecordBatch, row: usize, key: &str) -> Option<String> {
    let map: &MapArray = batch.column_by_name(col::EXTRA).unwrap().as_map();
    let e = map.value(row);
    let k = e.column(0).as_string::<i32>();
    let v = e.column(1).as_string::<i32>();
    (0..e.len())
        .find(|&i| k.value(i) == key)
        .map(|i| v.value(i).to_string())
}

/// (message, pid, uid, comm, row extras) of every syslog row containing `marker`.
type Found = Vec<(String, i32, i64, String, RecordBatch, usize)>;

fn collect(h: &Harness, marker: &str, want: usize) -> Found {
    let mut found = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while found.len() < want && Instant::now() < deadline {
        let Ok(chunk) = h.rx.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let b = chunk.batch;
        let msgs = strings(&b, col::MESSAGE);
        let comms = strings(&b, col::PROCESS_NAME);
        let pids = b
            .column_by_name(col::PROCESS_ID)
            .unwrap()
            .as_primitive::<Int32Type>();
        let uids = b
            .column_by_name(col::UID)
            .unwrap()
            .as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let m = msgs[i].clone().unwrap_or_default();
            if m.contains(marker) {
                found.push((
                    m,
                    pids.value(i),
                    uids.value(i),
                    comms[i].clone().unwrap_or_default(),
                    b.clone(),
                    i,
                ));
            }
        }
    }
    found
}

fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn stop(h: Harness) -> EbpfCounters {
    let counters = h.status.stats.as_ref().unwrap().read();
    h.shutdown.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(t) = h.status.thread {
        t.join().unwrap().unwrap();
    }
    drop(h.dir);
    counters
}

#[test]
fn captures_syslog_sends_and_kmsg_with_kernel_identity() {
    if !privileged("captures_syslog_sends_and_kmsg_with_kernel_identity") {
        return;
    }
    let h = start(|_| {});
    assert!(h.status.kmsg_hook.is_some());
    assert!(h.status.syslog_hook.is_some());
    let marker = format!("ebpf-unit-{}", std::process::id());
    // The collector never captures its own process: send from a child.
    let script = r#"
import os, socket, sys
path, marker = sys.argv[1], sys.argv[2]
me = os.getpid()
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.connect(path)
c.send(f"<13>Jan  2 03:04:05 app[{me}]: {marker} connected".encode())
c.sendto(f"<13>{marker} sendto".encode(), path)
os.writev(c.fileno(), [f"<13>{marker} ".encode(), b"two-iovecs"])
c.send(f"<38>Jan  2 03:04:05 sshd[1]: {marker} spoofed".encode())
with open("/dev/kmsg", "w") as k:
    k.write(f"<14>{marker} kmsg-line")
print(me, open("/proc/self/comm").read().strip(), os.getuid())
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script, h.sock_path.to_str().unwrap(), &marker])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    let mut said = said.split_whitespace();
    let me: i32 = said.next().unwrap().parse().unwrap();
    let want_comm = said.next().unwrap().to_string();
    let uid: i64 = said.next().unwrap().parse().unwrap();

    let found = collect(&h, &marker, 4);
    let texts: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(found.len(), 4, "{texts:?}");
    for (msg, pid, u, comm, _, _) in &found {
        assert_eq!(*pid, me, "{msg}");
        assert_eq!(*u, uid, "{msg}");
        assert_eq!(comm, &want_comm, "{msg}");
    }
    assert!(texts.iter().any(|t| t.ends_with("two-iovecs")), "{texts:?}");
    assert!(texts.iter().any(|t| t.ends_with("sendto")), "{texts:?}");
    let (_, _, _, _, b, i) = found.iter().find(|f| f.0.ends_with("spoofed")).unwrap();
    assert_eq!(
        extra(b, *i, "claimed_pid").as_deref(),
        Some("1"),
        "{:?}",
        strings(b, col::MESSAGE)
    );
    assert_eq!(extra(b, *i, "identity_mismatch").as_deref(), Some("true"));
    assert_eq!(extra(b, *i, "ebpf_hook").as_deref(), h.status.syslog_hook);

    // the console event went to the kmsg join channel
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut caller = None;
    while caller.is_none() && Instant::now() < deadline {
        if let Ok(c) = h.callers.recv_timeout(Duration::from_millis(100))
            && String::from_utf8_lossy(&c.text).contains(&marker)
        {
            caller = Some(c);
        }
    }
    let caller = caller.expect("console event for the /dev/kmsg write");
    assert_eq!(caller.text, format!("{marker} kmsg-line").into_bytes());
    assert_eq!(caller.pid, me);
    assert_eq!(i64::from(caller.uid), uid);
    let _ = h.socket.local_addr();
    let c = stop(h);
    assert_eq!(c.dropped, 0, "{c}");
    assert_eq!(c.faulted, 0, "{c}");
}

#[test]
fn tracepoint_fallback_for_console() {
    if !privileged("tracepoint_fallback_for_console") {
        return;
    }
    if !std::path::Path::new("/sys/kernel/tracing/events/printk/console").exists() {
        eprintln!("SKIPPED tracepoint_fallback_for_console: tracefs not mounted");
        return;
    }
    let h = start(|c| {
        c.skip_hooks = vec![hook::TP_BTF_CONSOLE.into(), hook::RAW_TP_CONSOLE.into()];
        c.syslog = false;
    });
    assert_eq!(h.status.kmsg_hook, Some(hook::TP_CONSOLE));
    let marker = format!("ebpf-tp-{}", std::process::id());
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("echo '<14>{marker}' > /dev/kmsg; echo $$")])
        .output()
        .unwrap();
    let writer: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = false;
    while !seen && Instant::now() < deadline {
        if let Ok(c) = h.callers.recv_timeout(Duration::from_millis(100)) {
            seen = c.text == marker.as_bytes() && c.pid == writer;
        }
    }
    stop(h);
    assert!(seen, "no console event through the tracepoint");
}

#[test]
fn probe_report_lists_every_hook() {
    let r = crate::probe::report(&EbpfConfig::default());
    eprintln!("{r}");
    for h in hook::ALL {
        assert!(r.contains(h), "{r}");
    }
    assert!(r.contains("the collector will use:"), "{r}");
}

#[test]
fn follows_a_recreated_devlog_socket() {
    if !privileged("follows_a_recreated_devlog_socket") {
        return;
    }
    let mut h = start(|c| {
        c.kmsg = false;
        c.devlog_refresh_secs = 1;
    });
    // A syslog daemon restarts: its socket is bound again at the same path, new inode.
    drop(std::mem::replace(
        &mut h.socket,
        UnixDatagram::unbound().unwrap(),
    ));
    std::fs::remove_file(&h.sock_path).unwrap();
    h.socket = UnixDatagram::bind(&h.sock_path).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let marker = format!("ebpf-rebind-{}", std::process::id());
    let script = "import socket,sys\nc=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\n\
                  c.connect(sys.argv[1])\nc.send(('<13>'+sys.argv[2]).encode())\n";
    let out = std::process::Command::new(python())
        .args(["-c", script, h.sock_path.to_str().unwrap(), &marker])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = collect(&h, &marker, 1);
    stop(h);
    assert_eq!(
        found.len(),
        1,
        "the send to the new socket was not captured"
    );
}

/// An object whose log ring cannot be opened (here: already taken) gives no diagnostics,
/// and no error: `spawn` then warns once and captures without them.
#[test]
fn diagnostics_without_a_log_ring_are_off_not_an_error() {
    if !privileged("diagnostics_without_a_log_ring_are_off_not_an_error") {
        return;
    }
    let cfg = EbpfConfig {
        drop_capabilities: false,
        ..EbpfConfig::default()
    };
    let mut attached = loader::attach(&cfg).unwrap();
    assert!(Diagnostics::start(&mut attached.ebpf).is_some());
    assert!(Diagnostics::start(&mut attached.ebpf).is_none());
    assert!(attached.syslog_hook.is_some() || attached.kmsg_hook.is_some());
}
