//! `cargo xtask dist`: the Debian package, built with `dpkg-deb` from the binaries of the
//! `dist` profile (or, for the install test, from binaries already built): both binaries, the
//! systemd unit, the default configuration as a conffile under /etc/infralog, a system
//! user and group `infralog` (the archive's group, for people who query it), and the state
//! directory /var/lib/infralog.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::build::{COLLECTOR, QUERY};
use crate::util::Workspace;

pub const PACKAGE: &str = "infralog";

pub struct DistOptions {
    /// Take the binaries from here instead of building them (release).
    pub bin_dir: Option<PathBuf>,
    /// Where the .deb is written (default: `<target>/deb`).
    pub out_dir: Option<PathBuf>,
    /// No compression and no split debug info: for the install test, which packs debug
    /// binaries.
    pub fast: bool,
}

const POSTINST: &str = r#"#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent group infralog >/dev/null; then
        groupadd --system infralog
    fi
    if ! getent passwd infralog >/dev/null; then
        useradd --system --gid infralog --home-dir /var/lib/infralog --no-create-home \
            --shell /usr/sbin/nologin --comment "infralog collector" infralog
    fi
    # The collector runs as root (eBPF); the archive's group may read it.
    install -d -m 2750 -o root -g infralog /var/lib/infralog
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
        deb-systemd-helper enable infra-collector.service >/dev/null 2>&1 || true
    fi
fi
"#;

const PRERM: &str = r#"#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop infra-collector.service || true
fi
"#;

const POSTRM: &str = r#"#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
    # The archive and spool under /var/lib/infralog are the user's data: kept.
    if getent passwd infralog >/dev/null; then
        userdel infralog || true
    fi
    if getent group infralog >/dev/null; then
        groupdel infralog || true
    fi
fi
"#;

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(d) = to.parent() {
        fs::create_dir_all(d)?;
    }
    fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn version(ws: &Workspace) -> Result<String> {
    let cargo = fs::read_to_string(ws.root.join("Cargo.toml"))?;
    let line = (cargo.lines())
        .skip_while(|l| l.trim() != "[workspace.package]")
        .find(|l| l.trim_start().starts_with("version"))
        .context("no version in [workspace.package]")?;
    Ok(line
        .split('"')
        .nth(1)
        .context("version is not a string")?
        .to_string())
}

/// Builds the package; its path.
pub fn dist(opts: &DistOptions) -> Result<PathBuf> {
    let ws = Workspace::load()?;
    let (collector, query) = match &opts.bin_dir {
        Some(d) => (d.join(COLLECTOR.bin), d.join(QUERY.bin)),
        None => {
            // The `dist` profile of the workspace manifest: what packages ship.
            let report = crate::setup::run()?;
            // One build per binary: built together, cargo would give the collector the
            // features DataFusion turns on in shared dependencies (codecs, kernels) and
            // make it megabytes bigger.
            for b in [&COLLECTOR, &QUERY] {
                let status = crate::util::cargo(&report)
                    .args(["build", "--profile", "dist"])
                    .args(["-p", b.package, "--bin", b.bin])
                    .current_dir(&ws.root)
                    .status()
                    .context("running cargo build --profile dist")?;
                if !status.success() {
                    bail!("cargo build --profile dist -p {} failed", b.package);
                }
            }
            let dir = ws.target_dir.join("dist");
            (dir.join(COLLECTOR.bin), dir.join(QUERY.bin))
        }
    };
    for b in [&collector, &query] {
        if !b.is_file() {
            bail!("{} is missing", b.display());
        }
    }
    let version = version(&ws)?;
    let out_dir = (opts.out_dir.clone()).unwrap_or_else(|| ws.target_dir.join("deb"));
    let root = out_dir.join(format!("{PACKAGE}-{version}.root"));
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    if opts.fast {
        copy(&collector, &root.join("usr/bin/infra-collector"), 0o755)?;
        copy(&query, &root.join("usr/bin/infra-query"), 0o755)?;
    } else {
        let debug_dir = out_dir.join(format!("{PACKAGE}_{version}.debug"));
        for (b, name) in [(&collector, "infra-collector"), (&query, "infra-query")] {
            split_debug(b, &root.join("usr/bin").join(name), &debug_dir.join(name))?;
        }
        println!("debug info: {}", debug_dir.display());
    }
    let deploy = ws.root.join("deploy");
    copy(
        &deploy.join("infra-collector.service"),
        &root.join("lib/systemd/system/infra-collector.service"),
        0o644,
    )?;
    copy(
        &deploy.join("infra-collector.toml"),
        &root.join("etc/infralog/infra-collector.toml"),
        0o644,
    )?;
    let arch = String::from_utf8(
        Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .context("dpkg --print-architecture")?
            .stdout,
    )?
    .trim()
    .to_string();
    let size_kb = dir_size(&root)? / 1024;
    write(
        &root.join("DEBIAN/control"),
        &format!(
            "Package: {PACKAGE}\nVersion: {version}\nArchitecture: {arch}\n\
             Maintainer: infralog developers <infralog@localhost>\nInstalled-Size: {size_kb}\n\
             Depends: libc6, passwd\nRecommends: libsystemd0\nSection: admin\nPriority: optional\n\
             Description: log collector with a columnar Parquet archive\n \
             infra-collector captures kernel, syslog, journal, file and network logs into\n \
             zstd Parquet on disk or S3; infra-query runs SQL over the archive.\n"
        ),
        0o644,
    )?;
    write(
        &root.join("DEBIAN/conffiles"),
        "/etc/infralog/infra-collector.toml\n",
        0o644,
    )?;
    write(&root.join("DEBIAN/postinst"), POSTINST, 0o755)?;
    write(&root.join("DEBIAN/prerm"), PRERM, 0o755)?;
    write(&root.join("DEBIAN/postrm"), POSTRM, 0o755)?;
    let deb = out_dir.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    let status = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .args(if opts.fast { &["-Znone"][..] } else { &[][..] })
        .arg(&root)
        .arg(&deb)
        .status()
        .context("running dpkg-deb")?;
    if !status.success() {
        bail!("dpkg-deb failed: {status}");
    }
    fs::remove_dir_all(&root)?;
    println!("{}", deb.display());
    Ok(deb)
}

/// Ships `bin` stripped as `to`, its debug info (line tables) kept in `debug` and named in
/// the binary's `.gnu_debuglink`, so gdb, perf and symbolizers find it when it is installed
/// beside it or under /usr/lib/debug, and a backtrace from a user can be symbolized later.
fn split_debug(bin: &Path, to: &Path, debug: &Path) -> Result<()> {
    for d in [to.parent(), debug.parent()].into_iter().flatten() {
        fs::create_dir_all(d)?;
    }
    let objcopy = |args: &[&std::ffi::OsStr]| -> Result<()> {
        let status = Command::new("objcopy")
            .args(args)
            .status()
            .context("running objcopy (binutils)")?;
        if !status.success() {
            bail!("objcopy {args:?} failed: {status}");
        }
        Ok(())
    };
    objcopy(&[
        "--only-keep-debug".as_ref(),
        bin.as_os_str(),
        debug.as_os_str(),
    ])?;
    let link = format!("--add-gnu-debuglink={}", debug.display());
    objcopy(&[
        "--strip-all".as_ref(),
        link.as_ref(),
        bin.as_os_str(),
        to.as_os_str(),
    ])?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        total += if m.is_dir() {
            dir_size(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(total)
}
