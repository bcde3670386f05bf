//! The systemd unit under deploy/: `systemd-analyze verify` accepts it with no warning
//! and it is hardened; the collector speaks the notify protocol it declares (READY=1 once
//! running, WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 and READY=1 around a SIGHUP,
//! STOPPING=1), checked on a real notify socket.

use std::fs::{self, File};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::{bin, repo_root};

#[test]
fn the_unit_passes_systemd_analyze_verify_and_is_hardened() {
    let unit = fs::read_to_string(repo_root().join("deploy/infra-collector.service")).unwrap();
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ProtectSystem=strict",
        "ProtectHome=",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=CAP_BPF CAP_PERFMON",
        "StateDirectory=infralog",
        "LogsDirectory=infralog",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(key), "the unit has no {key}");
    }
    // verify also checks that ExecStart's program exists: the one built here stands in
    // for the packaged /usr/bin/infra-collector.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("infra-collector.service");
    let collector = bin("infra-collector");
    fs::write(
        &path,
        unit.replace("/usr/bin/infra-collector", &collector.display().to_string()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("systemd-analyze (Debian systemd)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // An unknown or misspelt key is only a warning to systemd: none is accepted here.
    assert!(
        err.trim().is_empty(),
        "systemd-analyze verify warned:\n{err}"
    );
}

#[test]
fn the_collector_notifies_ready_watchdog_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let cfg = dir.path().join("c.toml");
    fs::write(dir.path().join("app.log"), "").unwrap();
    fs::write(
        &cfg,
        format!(
            "[collector]\nstate_dir = \"{root}/state\"\n[archive]\npath = \"{root}/archive\"\n\
             [sources.kmsg]\nenabled = false\n[sources.ebpf]\nenabled = false\n\
             [sources.journald]\nenabled = false\n[sources.containers]\ndocker = false\ncri = false\n\
             [[sources.file.inputs]]\npaths = [\"{root}/app.log\"]\n[http]\nenabled = false\n"
        ),
    )
    .unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = Command::new(bin("infra-collector"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.path().join("collector.log")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut buf = [0u8; 4096];
    let mut next = |want: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = sock.recv(&mut buf).expect("a notification");
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == want) {
                return msg;
            }
            assert!(Instant::now() < deadline, "no {want} (last: {msg:?})");
        }
    };
    let ready = next("READY=1");
    assert!(ready.contains("STATUS=1 source(s) running"), "{ready}");
    let t = Instant::now();
    next("WATCHDOG=1");
    next("WATCHDOG=1");
    next("WATCHDOG=1");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the watchdog pings come at half of WATCHDOG_USEC"
    );
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    let reloading = next("RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    next("READY=1");
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    next("STOPPING=1");
    assert!(child.wait().unwrap().success());
}
