//! The Debian package from `cargo xtask dist`: installed with `dpkg -i` on this machine, it
//! puts both binaries, the unit (which `systemd-analyze verify` accepts), the default
//! configuration as a conffile (which `infra-collector validate`, the unit's
//! ExecStartPre, accepts), the `infralog` system user and the state directory in place;
//! `dpkg -r` removes all but the conffile and `dpkg -P` the rest. Needs root.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use infralog_tests::{bin, bin_dir, privileged_or_skip};

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn user_exists(name: &str) -> bool {
    run(Command::new("getent").args(["passwd", name]))
        .status
        .success()
}

#[test]
fn the_package_installs_verifies_and_removes_cleanly() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !privileged_or_skip(
        "the_package_installs_verifies_and_removes_cleanly",
        (!root).then(|| "dpkg -i needs root".to_string()),
    ) {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let deb = ok(Command::new(bin("xtask"))
        .arg("dist")
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--out-dir")
        .arg(out.path())
        .arg("--fast"));
    let deb = deb.lines().last().unwrap().trim().to_string();
    assert!(deb.ends_with(".deb"), "{deb}");
    let info = ok(Command::new("dpkg-deb").args(["--info", &deb]));
    assert!(info.contains("Package: infralog"), "{info}");
    // A package left by an interrupted run goes first.
    let _ = run(Command::new("dpkg").args(["--purge", "infralog"]));
    let state_existed = Path::new("/var/lib/infralog").exists();

    ok(Command::new("dpkg").args(["-i", &deb]));
    for f in [
        "/usr/bin/infra-collector",
        "/usr/bin/infra-query",
        "/lib/systemd/system/infra-collector.service",
        "/etc/infralog/infra-collector.toml",
    ] {
        assert!(Path::new(f).is_file(), "{f} not installed");
    }
    let v = ok(Command::new("/usr/bin/infra-collector").arg("--version"));
    assert!(v.starts_with("infra-collector "), "{v}");
    assert!(user_exists("infralog"), "no infralog user");
    let state = std::fs::metadata("/var/lib/infralog").unwrap();
    assert!(state.is_dir());
    assert_eq!(state.mode() & 0o7777, 0o2750);
    let gid = ok(Command::new("getent").args(["group", "infralog"]));
    assert_eq!(
        gid.split(':').nth(2).unwrap().parse::<u32>().unwrap(),
        state.gid()
    );
    // What the unit's ExecStartPre runs, on the installed configuration.
    ok(Command::new("/usr/bin/infra-collector")
        .args(["validate", "/etc/infralog/infra-collector.toml"]));
    let verify = run(Command::new("systemd-analyze").args([
        "verify",
        "--man=no",
        "/lib/systemd/system/infra-collector.service",
    ]));
    let err = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && err.trim().is_empty(), "{err}");
    let conffiles = ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "infralog"]));
    assert!(
        conffiles.contains("/etc/infralog/infra-collector.toml"),
        "{conffiles}"
    );

    ok(Command::new("dpkg").args(["-r", "infralog"]));
    for f in [
        "/usr/bin/infra-collector",
        "/usr/bin/infra-query",
        "/lib/systemd/system/infra-collector.service",
    ] {
        assert!(!Path::new(f).exists(), "{f} left after dpkg -r");
    }
    assert!(Path::new("/etc/infralog/infra-collector.toml").exists());
    ok(Command::new("dpkg").args(["-P", "infralog"]));
    assert!(!Path::new("/etc/infralog/infra-collector.toml").exists());
    assert!(
        !user_exists("infralog"),
        "the infralog user is left after purge"
    );
    assert!(
        !run(Command::new("dpkg").args(["-s", "infralog"]))
            .status
            .success()
    );
    if !state_existed {
        let _ = std::fs::remove_dir("/var/lib/infralog");
    }
}
