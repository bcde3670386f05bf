//! The advice the collector gives when it was built without eBPF works when followed:
//! built with bpf-linker missing, the collector says so (build warning and `probe`);
//! after bpf-linker is installed, the next `cargo build` — nothing else changed — builds the
//! eBPF programs in, and `probe` attaches the hooks.
//!
//! bpf-linker is hidden without touching the real one: the builds run with a cargo home of
//! their own (`CARGO_HOME`, whose `bin` rustup puts first on PATH) that borrows the real
//! registry, and a PATH without the real cargo home's `bin`. "Installing" is copying the
//! real bpf-linker into that `bin`, as `cargo install` would. The builds use a target
//! directory of their own beside the test's, kept between runs so that only the collector
//! crate is rebuilt after the first run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use infralog_tests::{bin_dir, missing_root, privileged_or_skip, repo_root};

#[test]
fn installing_bpf_linker_then_building_again_builds_ebpf_in() {
    const TEST: &str = "installing_bpf_linker_then_building_again_builds_ebpf_in";
    if !privileged_or_skip(TEST, missing_root()) {
        return;
    }
    let real_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let real_linker = find_in_path("bpf-linker").unwrap_or_else(|| {
        panic!("{TEST}: bpf-linker is not installed (`cargo xtask setup` installs it)")
    });

    // Beside the test's own target directory, so that it persists like that one does.
    let work = bin_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .join("ebpf-advice");
    let home = work.join("cargo-home");
    let fake_bin = home.join("bin");
    std::fs::create_dir_all(&fake_bin).unwrap();
    for entry in std::fs::read_dir(&real_home).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        // Our own bin; cargo's lock files and last-use database stay per home.
        if name == "bin" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        relink(&entry.path(), &home.join(&name));
    }
    for entry in std::fs::read_dir(real_home.join("bin")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "bpf-linker" {
            relink(&entry.path(), &fake_bin.join(entry.file_name()));
        }
    }
    // Left from an earlier run: "uninstall" our copy (never the real one).
    let installed = fake_bin.join("bpf-linker");
    let _ = std::fs::remove_file(&installed);

    let real_dirs: Vec<PathBuf> = [real_home.join("bin"), real_linker.parent().unwrap().into()]
        .into_iter()
        .collect();
    let outer = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(fake_bin.clone())
            .chain(std::env::split_paths(&outer).filter(|d| !real_dirs.contains(d))),
    )
    .unwrap();
    let target = work.join("target");
    let build = || -> Output {
        let out = Command::new(fake_bin.join("cargo"))
            .args([
                "build",
                "-v",
                "-p",
                "infralog-collector",
                "--bin",
                "infra-collector",
            ])
            .current_dir(repo_root())
            .env("PATH", &path)
            .env("CARGO_HOME", &home)
            .env("CARGO_TARGET_DIR", &target)
            // Everything is in the borrowed registry already; never update it from here.
            .env("CARGO_NET_OFFLINE", "true")
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_MAKEFLAGS")
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "cargo build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let collector = target.join("debug/infra-collector");
    let probe = || -> String {
        let out = Command::new(&collector)
            .arg("probe")
            .output()
            .expect("run infra-collector probe");
        assert!(out.status.success(), "probe failed: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // 1. Without bpf-linker: built without eBPF, and told how to fix it.
    let out = build();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("eBPF programs not built (bpf-linker not found on PATH; install it with"),
        "no advice in the build output:\n{stderr}"
    );
    let report = probe();
    assert!(
        report.contains("eBPF object: NOT built in (bpf-linker not found on PATH"),
        "{report}"
    );

    // Nothing changed: nothing rebuilt (the script does not watch paths that do not exist,
    // which would rerun it on every build).
    let out = build();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Fresh infralog-collector"),
        "the collector was rebuilt although nothing changed:\n{stderr}"
    );

    // 2. Follow the advice: bpf-linker appears in a directory on PATH; build again, same
    // command, same environment.
    std::fs::copy(&real_linker, &installed).expect("install bpf-linker into the test's home");
    let out = build();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("eBPF programs not built"),
        "still built without eBPF after bpf-linker was installed:\n{stderr}"
    );
    let report = probe();
    assert!(report.contains("eBPF object: built in"), "{report}");
    let attached: Vec<&str> = report
        .lines()
        .filter(|l| l.ends_with(" attached"))
        .collect();
    assert!(
        !attached.is_empty(),
        "no eBPF hook attached after building with bpf-linker:\n{report}"
    );
}

/// Makes `link` a symlink to `to` (replacing what an earlier run left).
fn relink(to: &Path, link: &Path) {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(to, link)
        .unwrap_or_else(|e| panic!("symlink {} -> {}: {e}", link.display(), to.display()));
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
