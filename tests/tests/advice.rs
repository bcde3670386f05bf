//! The advice the collector prints for a degraded mode works when followed. Each test meets
//! a degraded mode as a user does (the collector run as an unprivileged user, a journal it
//! may not read), checks that `probe` and the run's log say what is wrong and what to do,
//! does exactly that (file capabilities with `setcap`, the systemd-journal group, the
//! `directories` setting) and checks that the source then runs and archives.
//!
//! The other two pieces of advice are followed elsewhere: installing bpf-linker in
//! `ebpf_advice.rs`, a /dev/log socket appearing while the collector runs in
//! `collector/src/sources/ebpf/tests.rs` (the rebind test).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use infralog_tests::ebpf_support::collector_has_ebpf;
use infralog_tests::journal_support::{numbered_range, system_journal, write_journal};
use infralog_tests::{bin, collector_config, missing_root, privileged_or_skip, query_csv};

const NOBODY: u32 = 65534;

/// A test directory every user may write (the collector runs as nobody in it).
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// Runs `program args` as nobody, in `groups` only.
fn as_nobody(program: &Path, args: &[&str], config: &Path, groups: &[u32]) -> Output {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"));
    if groups.is_empty() {
        c.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        c.arg(format!("--groups={}", list.join(",")));
    }
    c.arg("--")
        .arg(program)
        .args(args)
        .arg("--config")
        .arg(config)
        .env("INFRALOG_LOG", "info")
        .env("NO_COLOR", "1");
    c.output().expect("setpriv")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A copy of the collector given `caps` as file capabilities, the way the README says.
fn collector_with_caps(dir: &Path, caps: &str) -> PathBuf {
    let copy = dir.join("infra-collector-with-caps");
    std::fs::copy(bin("infra-collector"), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setcap")
        .arg(format!("{caps}+ep"))
        .arg(&copy)
        .output()
        .expect("setcap (libcap2-bin)");
    assert!(out.status.success(), "setcap: {}", text(&out.stderr));
    copy
}

fn archived(dir: &Path, source: &str) -> u64 {
    let archive = dir.join("archive");
    if !archive.join("logs").exists() {
        return 0;
    }
    let rows = query_csv(
        &archive,
        &format!("SELECT count(*) FROM logs WHERE source = '{source}'"),
    );
    rows[0][0].parse().unwrap()
}

#[test]
fn kmsg_permission_advice_works_when_followed() {
    if !privileged_or_skip("kmsg_permission_advice_works_when_followed", missing_root()) {
        return;
    }
    let restrict = std::fs::read_to_string("/proc/sys/kernel/dmesg_restrict").unwrap();
    assert_eq!(
        restrict.trim(),
        "1",
        "this test needs kernel.dmesg_restrict = 1 (Debian's default)"
    );
    let dir = open_dir();
    let config = collector_config(
        dir.path(),
        "advice-kmsg",
        "[sources.kmsg]\nenabled = true\n\n[sources.ebpf]\nenabled = false",
    );

    let probe = as_nobody(&bin("infra-collector"), &["probe"], &config, &[]);
    let report = text(&probe.stdout);
    assert!(
        report.contains("kmsg: would not run: cannot open /dev/kmsg")
            && report.contains("give the binary CAP_SYSLOG"),
        "{report}"
    );
    // With no other source configured, nothing can run: the collector says so and exits.
    let run = as_nobody(&bin("infra-collector"), &["run", "--once"], &config, &[]);
    let log = text(&run.stderr);
    assert!(log.contains("no source could start"), "{log}");
    assert!(
        log.contains("kmsg source disabled") && log.contains("give the binary CAP_SYSLOG"),
        "{log}"
    );
    assert_eq!(archived(dir.path(), "kmsg"), 0);

    // Following it: the same binary with CAP_SYSLOG, still run as nobody.
    let with_caps = collector_with_caps(dir.path(), "cap_syslog");
    let probe = as_nobody(&with_caps, &["probe"], &config, &[]);
    let report = text(&probe.stdout);
    assert!(report.contains("kmsg: would run"), "{report}");
    let run = as_nobody(&with_caps, &["run", "--once"], &config, &[]);
    let log = text(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert!(!log.contains("kmsg source disabled"), "{log}");
    assert!(
        archived(dir.path(), "kmsg") > 0,
        "no kernel lines archived: {log}"
    );
}

#[test]
fn ebpf_permission_advice_works_when_followed() {
    let missing = missing_root().or_else(|| {
        (!collector_has_ebpf()).then(|| "the collector was built without eBPF".to_string())
    });
    if !privileged_or_skip("ebpf_permission_advice_works_when_followed", missing) {
        return;
    }
    let dir = open_dir();
    let config = collector_config(
        dir.path(),
        "advice-ebpf",
        "[sources.kmsg]\nenabled = true\n\n[sources.ebpf]\nenabled = true",
    );

    let probe = as_nobody(&bin("infra-collector"), &["probe"], &config, &[]);
    let report = text(&probe.stdout);
    assert!(
        report.contains("not permitted to load eBPF programs")
            && report.contains("CAP_BPF,CAP_PERFMON,CAP_SYSLOG,CAP_DAC_READ_SEARCH"),
        "{report}"
    );
    assert!(!report.contains(" attached\n"), "{report}");
    let run = as_nobody(&bin("infra-collector"), &["run", "--once"], &config, &[]);
    let log = text(&run.stderr);
    assert!(
        log.contains("eBPF unavailable: not permitted to load eBPF programs"),
        "{log}"
    );

    // Following it: the four capabilities on the binary, still run as nobody.
    let with_caps = collector_with_caps(
        dir.path(),
        "cap_bpf,cap_perfmon,cap_syslog,cap_dac_read_search",
    );
    let probe = as_nobody(&with_caps, &["probe"], &config, &[]);
    let report = text(&probe.stdout);
    assert!(
        report.contains("raw_tp/sys_enter             attached"),
        "{report}"
    );
    assert!(
        report.contains("kernel log: /dev/kmsg reader + caller pid/comm/uid from"),
        "{report}"
    );
    let run = as_nobody(&with_caps, &["run", "--once"], &config, &[]);
    let log = text(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert!(!log.contains("eBPF unavailable"), "{log}");
    assert!(log.contains("eBPF capture: kmsg via"), "{log}");
    assert!(archived(dir.path(), "kmsg") > 0, "{log}");
}

/// The gid of the systemd-journal group (created when the host has none).
fn journal_group() -> u32 {
    let find = || {
        let out = Command::new("getent")
            .args(["group", "systemd-journal"])
            .output()
            .unwrap();
        text(&out.stdout)
            .split(':')
            .nth(2)
            .and_then(|g| g.trim().parse().ok())
    };
    if let Some(g) = find() {
        return g;
    }
    let out = Command::new("groupadd")
        .args(["--system", "systemd-journal"])
        .output()
        .unwrap();
    assert!(out.status.success(), "groupadd: {}", text(&out.stderr));
    find().expect("systemd-journal group")
}

#[test]
fn journal_advice_works_when_followed() {
    if !privileged_or_skip("journal_advice_works_when_followed", missing_root()) {
        return;
    }
    let dir = open_dir();
    let journal_config = |dirs: &Path| {
        collector_config(
            dir.path(),
            "advice-journal",
            &format!(
                "[sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n\
                 [sources.journald]\nenabled = true\ndirectories = [{:?}]",
                dirs.display().to_string()
            ),
        )
    };

    // No journal where the configuration looks: probe says so and names the setting.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let config = journal_config(&empty);
    let probe = Command::new(bin("infra-collector"))
        .args(["probe", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let report = text(&probe.stdout);
    assert!(
        report.contains("journald: would not run: no journal namespace directory"),
        "{report}"
    );

    // The journal as journald leaves it: readable by root and systemd-journal only.
    let journals = dir.path().join("journal");
    let file = system_journal(&journals, "");
    write_journal(
        &file,
        &numbered_range("advice-journal", 0, 50, &"b".repeat(32)),
    );
    let group = journal_group();
    for (path, mode) in [
        (&journals, 0o2755),
        (&file.parent().unwrap().to_path_buf(), 0o2755),
        (&file, 0o640),
    ] {
        std::os::unix::fs::chown(path, Some(0), Some(group)).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    // Following the first advice (point `directories` at it), as nobody: the directory is
    // found but its file is not readable, and both probe and the log say what to do.
    let config = journal_config(&journals);
    let probe = as_nobody(&bin("infra-collector"), &["probe"], &config, &[]);
    let report = text(&probe.stdout);
    assert!(
        report.contains(
            "NOT readable (run as root, or add the collector's user to the systemd-journal group)"
        ) && report.contains("system.journal: Permission denied"),
        "{report}"
    );
    let run = as_nobody(&bin("infra-collector"), &["run", "--once"], &config, &[]);
    let log = text(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert!(
        log.contains(
            "not readable (run as root, or add the collector's user to the systemd-journal group)"
        ),
        "{log}"
    );
    assert_eq!(archived(dir.path(), "journald"), 0, "{log}");

    // Following the second: nobody in the systemd-journal group reads every entry.
    let probe = as_nobody(&bin("infra-collector"), &["probe"], &config, &[group]);
    let report = text(&probe.stdout);
    assert!(!report.contains("NOT readable"), "{report}");
    assert!(report.contains("journald: would run"), "{report}");
    let run = as_nobody(
        &bin("infra-collector"),
        &["run", "--once"],
        &config,
        &[group],
    );
    let log = text(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert_eq!(archived(dir.path(), "journald"), 50, "{log}");
}
