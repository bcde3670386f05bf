//! Backpressure of the net source: with the archive (S3, through a relay the test cuts)
//! unreachable, the spool fills, and a TCP listener stops reading — the sender waits
//! instead of anything being dropped. When S3 returns, every line is archived exactly once.

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::bin;
use infralog_tests::net_support::free_port;
use infralog_tests::s3_support::{Moto, Relay, credentials_file, python_over_s3};

const LINES: usize = 300_000;

#[test]
fn full_spool_holds_tcp_senders_back_and_loses_nothing() {
    let moto = Moto::start();
    moto.create_bucket("net-bp");
    let relay = Relay::start(moto.port);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nhostname = \"bp\"\nstate_dir = {state:?}\nchunk_max_age_ms = 100\n\n\
             [archive]\npath = \"s3://net-bp/p\"\n\n[archive.s3]\n\
             endpoint = \"http://127.0.0.1:{relay}\"\ncredentials_file = {creds:?}\n\n\
             [spool]\nsegment_mb = 1\nmax_mb = 3\nseal_secs = 1\nfsync_interval_ms = 50\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
             [sources.journald]\nenabled = false\n\n[sources.file]\nenabled = false\n\n\
             [sources.containers]\ndocker = false\ncri = false\n\n\
             [[sources.net.listeners]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"tcp\"\n",
            state = dir.path().join("state").display().to_string(),
            relay = relay.port,
            creds = credentials_file(dir.path()).display().to_string(),
        ),
    )
    .unwrap();
    relay.cut();
    let log = dir.path().join("collector.log");
    let mut collector = Command::new(bin("infra-collector"))
        .args(["run", "--config"])
        .arg(&config)
        .env("INFRALOG_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "no listener:\n{}", read_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // About 37 MB: more than the spool, the chunk queues and both socket buffers hold.
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut buf = Vec::with_capacity(1 << 20);
        for i in 0..LINES {
            writeln!(
                buf,
                "<13>Nov 29 12:00:00 web-{} app[{}]: bp-request {i:07} served in {} ms, padding padding",
                i % 3,
                1000 + i % 7,
                i % 997
            )
            .unwrap();
            if buf.len() > 64 * 1024 {
                s.write_all(&buf).unwrap();
                buf.clear();
            }
        }
        s.write_all(&buf).unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    while !read_log().contains("spool full") {
        assert!(
            Instant::now() < deadline,
            "the spool never filled:\n{}",
            read_log()
        );
        assert!(collector.try_wait().unwrap().is_none(), "{}", read_log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Everything the collector can hold is held: the sender cannot be done.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !sender.is_finished(),
        "the sender was not held back while the spool was full"
    );

    relay.restore();
    sender.join().unwrap();
    // A plain reader: the collector's compaction may delete a file between the listing and
    // the read (the file's rows are then in the merged one), so a read is tried again.
    let count = || {
        python_over_s3(
            moto.port,
            "net-bp",
            "p",
            "import time\nfor attempt in range(10):\n    try:\n        \
             logs = dataset().to_table() if objects() else None\n        break\n    \
             except OSError:\n        time.sleep(0.5)\nif logs is not None:\n    \
             print(json.dumps(duckdb.sql('SELECT count(*), count(DISTINCT message) FROM logs')\
             .fetchall()[0]))\nelse:\n    print('[0, 0]')",
        )
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen = String::new();
    while Instant::now() < deadline {
        seen = count();
        if seen.trim() == format!("[{LINES}, {LINES}]") {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(collector.id() as i32, libc::SIGTERM) };
    assert!(collector.wait().unwrap().success(), "{}", read_log());
    assert_eq!(
        count().trim(),
        format!("[{LINES}, {LINES}]"),
        "every line once after S3 returned (saw {seen})\n{}",
        read_log()
    );
}
