//! `infra-collector probe`: which sources would run here (and why the others would not), and
//! what eBPF capture this kernel and these privileges allow —
//! which hooks attach, which are refused and why, and what the collector falls back to.

use std::fmt::Write as _;
use std::path::PathBuf;

use aya::maps::MapType;
use aya::programs::{LsmAttachType, ProgramType};
use aya::sys::{is_map_supported, is_program_supported};

use crate::sources::ebpf::{EbpfConfig, btf::Btf, hook, loader};

/// The report, as printed by [`run`].
pub fn report(cfg: &EbpfConfig) -> String {
    let mut out = String::new();
    let w = &mut out;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let _ = writeln!(w, "kernel: {}", release.trim());
    let _ = writeln!(
        w,
        "running as: euid={euid}, effective capabilities: {}",
        crate::privilege::effective()
            .map(|c| crate::privilege::describe(&c))
            .unwrap_or_else(|| "unknown".into())
    );
    let _ = writeln!(
        w,
        "eBPF object: {}",
        match loader::not_built_reason() {
            None => "built in".to_string(),
            Some(why) => format!("NOT built in ({why})"),
        }
    );
    match Btf::from_sys_fs().and_then(|b| loader::resolve_offsets(&b)) {
        Ok((_, iter)) => {
            let _ = writeln!(
                w,
                "kernel BTF: /sys/kernel/btf/vmlinux, offsets resolved{}",
                if iter {
                    ""
                } else {
                    " (iov_iter layout unknown: fentry syslog hook unusable)"
                }
            );
        }
        Err(e) => {
            let _ = writeln!(w, "kernel BTF: unusable: {e:#}");
        }
    }
    let _ = writeln!(w, "program types:");
    for (name, t) in [
        ("tracing (fentry/fexit probe)", ProgramType::Tracing),
        ("lsm", ProgramType::Lsm(LsmAttachType::Mac)),
        ("raw_tracepoint", ProgramType::RawTracePoint),
        ("tracepoint", ProgramType::TracePoint),
    ] {
        let verdict = match is_program_supported(t) {
            Ok(true) => "yes".to_string(),
            Ok(false) => "no".to_string(),
            Err(e) => format!("no ({e})"),
        };
        let _ = writeln!(w, "  {name}: {verdict}");
    }
    let ring = match is_map_supported(MapType::RingBuf) {
        Ok(true) => "yes".to_string(),
        Ok(false) => "no".to_string(),
        Err(e) => format!("no ({e})"),
    };
    let _ = writeln!(w, "  ringbuf map: {ring}");
    let tracefs = [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists());
    let _ = writeln!(
        w,
        "tracefs: {}",
        if tracefs {
            "mounted"
        } else {
            "not mounted (tracepoint/printk/console cannot attach)"
        }
    );
    let devlog = loader::devlog_inodes(&cfg.devlog_paths);
    let _ = writeln!(
        w,
        "/dev/log sockets: {} of {:?} exist",
        devlog.len(),
        cfg.devlog_paths
    );

    let _ = writeln!(w, "hooks:");
    let attempts = match loader::probe_hooks(cfg) {
        Ok(a) => a,
        Err(e) => {
            let why = format!("{e:#}");
            hook::ALL
                .iter()
                .map(|h| loader::HookAttempt {
                    hook: h,
                    result: Err(why.clone()),
                })
                .collect()
        }
    };
    for a in &attempts {
        match &a.result {
            Ok(()) => {
                let _ = writeln!(w, "  {:<28} attached", a.hook);
            }
            Err(why) => {
                let _ = writeln!(w, "  {:<28} refused: {why}", a.hook);
            }
        }
    }
    let ok = |h: &str| attempts.iter().any(|a| a.hook == h && a.result.is_ok());
    let kmsg = [hook::TP_BTF_CONSOLE, hook::RAW_TP_CONSOLE, hook::TP_CONSOLE]
        .into_iter()
        .find(|h| ok(h));
    let syslog = [hook::FENTRY_UNIX_DGRAM, hook::RAW_TP_SYS_ENTER]
        .into_iter()
        .find(|h| ok(h));
    let _ = writeln!(w, "the collector will use:");
    match kmsg {
        Some(h) => {
            let level = if ok(hook::FENTRY_VPRINTK_STORE) {
                "with level and facility from fentry/vprintk_store"
            } else {
                "level, facility and sequence from /dev/kmsg"
            };
            let _ = writeln!(
                w,
                "  kernel log: /dev/kmsg reader + caller pid/comm/uid from {h} ({level})"
            );
        }
        None => {
            let _ = writeln!(
                w,
                "  kernel log: /dev/kmsg reader only (no caller identity; needs CAP_SYSLOG or \
                 kernel.dmesg_restrict=0)"
            );
        }
    }
    match syslog {
        Some(h) => {
            let _ = writeln!(
                w,
                "  syslog: every datagram to {:?} via {h}, identity from the kernel",
                cfg.devlog_paths
            );
        }
        None => {
            let _ = writeln!(
                w,
                "  syslog: no passive capture; journald/file/net sources only (identity as \
                 claimed by the sender)"
            );
        }
    }
    let _ = writeln!(
        w,
        "  after attach: keep only {} (others dropped)",
        cfg.keep_capabilities.join(",")
    );
    out
}

/// Which sources `infra-collector run` would start here with `config`, and why the others
/// would not.
pub fn sources_report(config: &crate::config::Config) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "sources:");
    let kmsg = &config.sources.kmsg;
    let verdict = if !kmsg.enabled {
        "would not run: disabled in the configuration".to_string()
    } else {
        match crate::sources::kmsg::open(&kmsg.path) {
            Ok(_) => format!("would run: {} is readable", kmsg.path.display()),
            Err(e) => format!("would not run: {e:#}"),
        }
    };
    let _ = writeln!(w, "  kmsg: {verdict}");
    let journald = journald_report(w, &config.sources.journald, kmsg.enabled);
    file_report(w, &config.sources.file, journald);
    out
}

/// Which configured log files exist and would be tailed, and which are left to journald.
fn file_report(w: &mut String, cfg: &crate::sources::file::FileConfig, journald_runs: bool) {
    use crate::sources::file::discover::expand;
    if !cfg.enabled {
        let _ = writeln!(w, "  file: would not run: disabled in the configuration");
        return;
    }
    let (inputs, skipped) = cfg.inputs_beside(journald_runs);
    let found: Vec<PathBuf> = inputs
        .iter()
        .flat_map(|i| i.paths.iter().flat_map(|p| expand(p)))
        .collect();
    if found.is_empty() {
        let _ = writeln!(
            w,
            "  file: no configured file exists now (rescanned while running): {:?}",
            inputs.iter().flat_map(|i| &i.paths).collect::<Vec<_>>()
        );
    } else {
        let _ = writeln!(w, "  file: would tail {} file(s):", found.len());
        for f in &found {
            let _ = writeln!(w, "    {}", f.display());
        }
    }
    if !skipped.is_empty() {
        let _ = writeln!(
            w,
            "  file: not reading {skipped:?}: the journald source runs and rsyslog writes \
             them from the journal (skip_if_journald)"
        );
    }
}

/// Writes what the journald source would do; `true` when it would run.
fn journald_report(
    w: &mut String,
    cfg: &crate::sources::journald::JournaldConfig,
    kmsg: bool,
) -> bool {
    use crate::sources::journald::{dirs, sys};
    if !cfg.enabled {
        let _ = writeln!(
            w,
            "  journald: would not run: disabled in the configuration"
        );
        return false;
    }
    let found = cfg.namespaces();
    let problems = dirs::access_problems(&cfg.root, &cfg.directories);
    if !problems.is_empty() {
        let _ = writeln!(
            w,
            "  journald: {} journal file(s) or directories NOT readable ({}):",
            problems.len(),
            dirs::ACCESS_ADVICE
        );
        for p in &problems {
            let _ = writeln!(w, "    {p}");
        }
    }
    if found.is_empty() {
        let _ = writeln!(
            w,
            "  journald: would not run: no journal namespace directory (<machine-id>[.<ns>]) \
             in {:?} under root {}",
            cfg.directories,
            cfg.root.display()
        );
        return false;
    }
    if let Err(e) = sys::lib() {
        let _ = writeln!(w, "  journald: would not run: {e:#}");
        return false;
    }
    let _ = writeln!(
        w,
        "  journald: would run ({} loaded), {} stream(s){}:",
        sys::LIBRARY,
        found.len(),
        if kmsg {
            "; kernel lines left to kmsg"
        } else {
            ""
        }
    );
    for d in &found {
        if d.os_root.is_some() {
            let _ = writeln!(
                w,
                "    {} (the system journal: /var/log/journal and /run/log/journal read as \
                 one, so entries journald flushes from /run to /var are read once)",
                d.key
            );
        }
        for dir in &d.paths {
            let files = std::fs::read_dir(dir).map_or(0, |rd| {
                rd.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "journal"))
                    .count()
            });
            let _ = writeln!(w, "    {} ({files} journal files)", dir.display());
            for (p, flags) in dirs::unsupported_files(dir) {
                let _ = writeln!(
                    w,
                    "      NOT readable by this libsystemd: {} (incompatible flags {flags:#x})",
                    p.display()
                );
            }
        }
    }
    true
}
