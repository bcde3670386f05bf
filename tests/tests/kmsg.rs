//! The kmsg source against the real /dev/kmsg: a line written with a known priority is
//! archived once with the right priority, severity and facility, and a restart resumes
//! after it instead of archiving it again.

use std::io::Write;
use std::process::Command;

use infralog_tests::{bin, collector_config, missing_root, privileged_or_skip, query_csv, run_ok};

#[test]
fn kmsg_line_is_archived_once_with_its_priority() {
    if !privileged_or_skip(
        "kmsg_line_is_archived_once_with_its_priority",
        missing_root(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = collector_config(dir.path(), "kmsg-test", "[sources.kmsg]\nenabled = true");
    let archive = dir.path().join("archive");
    let marker = format!("infralog-kmsg-test-{}-{}", std::process::id(), line_nonce());
    // local3 (19) * 8 + warning (4)
    let mut kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .unwrap();
    kmsg.write_all(format!("<{}>{marker}\n", 19 * 8 + 4).as_bytes())
        .unwrap();
    drop(kmsg);

    let run = || {
        run_ok(
            Command::new(bin("infra-collector"))
                .args(["run", "--once", "--config"])
                .arg(&config),
        )
    };
    run();
    let sql = format!(
        "SELECT priority, severity, facility, source, hostname, \
         extra['kmsg_seq'] IS NOT NULL FROM logs WHERE message = '{marker}'"
    );
    let rows = query_csv(&archive, &sql);
    assert_eq!(
        rows,
        vec![vec!["4", "WARNING", "local3", "kmsg", "kmsg-test", "true"]],
        "marker line archived once with its priority"
    );

    // The event time is the kernel's, not the import time: within a minute of now.
    let age = query_csv(
        &archive,
        &format!(
            "SELECT abs(date_part('epoch', now()) - date_part('epoch', timestamp)) < 60 \
             FROM logs WHERE message = '{marker}'"
        ),
    );
    assert_eq!(age, vec![vec!["true"]]);

    let before = query_csv(&archive, "SELECT count(*) FROM logs");
    run();
    let rows = query_csv(
        &archive,
        &format!("SELECT count(*) FROM logs WHERE message = '{marker}'"),
    );
    assert_eq!(
        rows,
        vec![vec!["1"]],
        "a second run does not archive the line again"
    );
    let after = query_csv(&archive, "SELECT count(*) FROM logs");
    let (b, a): (u64, u64) = (before[0][0].parse().unwrap(), after[0][0].parse().unwrap());
    // Other processes may print meanwhile, but the ring buffer is not re-read.
    assert!(
        a - b < 20,
        "second run re-read the ring buffer: {b} → {a} rows"
    );
}

fn line_nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Without the privilege to load eBPF — an unprivileged user that may only read the kernel
/// log (CAP_SYSLOG) — the collector starts, says once that eBPF is unavailable, and still
/// archives /dev/kmsg.
#[test]
fn unprivileged_collector_archives_kmsg_and_says_ebpf_is_unavailable() {
    if !privileged_or_skip(
        "unprivileged_collector_archives_kmsg_and_says_ebpf_is_unavailable",
        missing_root(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let config = collector_config(
        dir.path(),
        "unpriv",
        "[sources.kmsg]\nenabled = true\n\n[sources.ebpf]\nenabled = true",
    );
    let marker = format!("infralog-unpriv-{}-{}", std::process::id(), line_nonce());
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .unwrap()
        .write_all(format!("<14>{marker}\n").as_bytes())
        .unwrap();
    let out = run_ok(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=+syslog",
                "--ambient-caps=+syslog",
                "--",
            ])
            .arg(bin("infra-collector"))
            .args(["run", "--once", "--config"])
            .arg(&config),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("eBPF unavailable"))
            .count(),
        1,
        "one line says eBPF is unavailable:\n{stderr}"
    );
    let rows = query_csv(
        &dir.path().join("archive"),
        &format!("SELECT source, severity FROM logs WHERE message = '{marker}'"),
    );
    assert_eq!(rows, vec![vec!["kmsg", "INFO"]], "{stderr}");
}
