//! Builds the eBPF programs (`../collector-ebpf`) for bpfel-unknown-none with aya-build and
//! leaves the object at `$OUT_DIR/collector-ebpf`, where `sources::ebpf` embeds it.
//!
//! When the tools for that are missing (bpf-linker, a nightly toolchain with rust-src) or
//! `AYA_BUILD_SKIP=1`, the build still succeeds: the object is an empty placeholder,
//! `INFRALOG_EBPF_NOT_BUILT` holds the reason, one `cargo:warning` says so, and the
//! collector runs on its userspace sources, reporting "eBPF not built in: <reason>".
//!
//! The advice in that reason must work when followed: installing the missing tool and
//! building again has to build the programs in. Cargo reruns a build script only for what it
//! was told to watch, so the script watches where each missing tool would appear (every
//! directory on PATH, rustup's record of installed toolchains, the nightly's component list)
//! as well as the tools it found. Cargo walks a watched directory for anything newer than the
//! last run; a path that does not exist would rerun the script on every build, so only
//! existing paths are named.

use std::path::{Path, PathBuf};
use std::process::Command;

const OBJECT: &str = "collector-ebpf";
const TOOLCHAIN: &str = "nightly";

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let ebpf_dir = manifest_dir
        .parent()
        .expect("collector/ has a parent")
        .join("collector-ebpf");
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["AYA_BUILD_SKIP", "PATH", "RUSTUP_HOME", "HOME"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    for p in [
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "common/Cargo.toml",
        "common/src",
    ] {
        println!("cargo:rerun-if-changed={}", ebpf_dir.join(p).display());
    }

    match missing_prerequisite() {
        Some(why) => {
            std::fs::write(out_dir.join(OBJECT), b"")?;
            println!(
                "cargo:warning=eBPF programs not built ({why}); infra-collector will run without eBPF"
            );
            println!("cargo:rustc-env=INFRALOG_EBPF_NOT_BUILT={why}");
        }
        None => {
            // aya-build runs `cargo build --package collector-ebpf` in the current
            // directory; the eBPF crate is a workspace of its own.
            std::env::set_current_dir(&ebpf_dir)?;
            // aya-build relays the inner cargo's stderr as `cargo:warning` lines: keep it
            // to real diagnostics, not "Compiling ..." progress.
            // SAFETY: the build script is single-threaded.
            unsafe { std::env::set_var("CARGO_TERM_QUIET", "true") };
            let root = ebpf_dir.to_str().expect("UTF-8 path");
            aya_build::build_ebpf(
                [aya_build::Package {
                    name: OBJECT,
                    root_dir: root,
                    ..Default::default()
                }],
                aya_build::Toolchain::Custom(TOOLCHAIN),
            )?;
            println!("cargo:rustc-env=INFRALOG_EBPF_NOT_BUILT=");
        }
    }
    Ok(())
}

/// Why the eBPF object cannot be built here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if let Some(v) = std::env::var_os("AYA_BUILD_SKIP")
        && (v == "1" || v.eq_ignore_ascii_case("true"))
    {
        return Some("AYA_BUILD_SKIP is set".into());
    }
    // `rustup toolchain install` and `rustup update` record each channel toolchain here.
    if let Some(home) = rustup_home() {
        watch_if_exists(&home.join("update-hashes"));
    }
    match find_in_path("bpf-linker") {
        Some(p) => watch_if_exists(&p),
        None => {
            watch_path_dirs();
            return Some(
                "bpf-linker not found on PATH; install it with `cargo install bpf-linker \
                 --version 0.10.4 --locked`, then build again"
                    .into(),
            );
        }
    }
    if find_in_path("rustup").is_none() {
        watch_path_dirs();
        return Some("rustup not found on PATH (needed to run the nightly toolchain)".into());
    }
    let sysroot = Command::new("rustup")
        .args(["run", TOOLCHAIN, "rustc", "--print", "sysroot"])
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output();
    let sysroot = match sysroot {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => return Some(format!("the {TOOLCHAIN} toolchain is not installed")),
    };
    // `rustup component add` rewrites this list.
    watch_if_exists(&sysroot.join("lib/rustlib/components"));
    let core = sysroot.join("lib/rustlib/src/rust/library/core/Cargo.toml");
    if !core.exists() {
        return Some(format!(
            "the {TOOLCHAIN} toolchain has no rust-src component (`rustup component add \
             rust-src --toolchain {TOOLCHAIN}`)"
        ));
    }
    None
}

/// A tool that is missing would be installed into one of these (`cargo install` into
/// ~/.cargo/bin, a package into /usr/bin, ...).
fn watch_path_dirs() {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.is_absolute() {
                watch_if_exists(&dir);
            }
        }
    }
}

fn watch_if_exists(p: &Path) {
    if p.exists() {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

fn rustup_home() -> Option<PathBuf> {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
