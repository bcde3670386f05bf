//! Loads the eBPF object with the running kernel's offsets patched in and attaches the
//! best hook each capture can get, falling back down the chain:
//!
//! * kernel log: `tp_btf/console` → `raw_tp/console` → `tracepoint/printk/console`, plus
//!   `fentry/vprintk_store` (level and facility) when trampolines are allowed;
//! * syslog: `fentry/unix_dgram_sendmsg` → `raw_tp/sys_enter`.

use std::os::linux::fs::MetadataExt as _;
use std::os::unix::fs::FileTypeExt as _;

use anyhow::{Context, Result, anyhow, bail};
use aya::maps::{HashMap as BpfHashMap, MapData};
use aya::programs::{BtfTracePoint, FEntry, RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};
use collector_ebpf_common::{Config, DevIno, MAX_DEVLOG, Offsets, PATH_LEN};

use super::EbpfConfig;
use super::btf::Btf;

/// The object built by `collector/build.rs` (empty when it could not be built).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/collector-ebpf"));

/// Why the object is missing, when it is.
pub fn not_built_reason() -> Option<&'static str> {
    if OBJECT.is_empty() {
        let why = env!("INFRALOG_EBPF_NOT_BUILT");
        Some(if why.is_empty() {
            "unknown reason"
        } else {
            why
        })
    } else {
        None
    }
}

/// Hook names as reported (and as accepted by `skip_hooks`).
pub mod hook {
    pub const FENTRY_VPRINTK_STORE: &str = "fentry/vprintk_store";
    pub const TP_BTF_CONSOLE: &str = "tp_btf/console";
    pub const RAW_TP_CONSOLE: &str = "raw_tp/console";
    pub const TP_CONSOLE: &str = "tracepoint/printk/console";
    pub const FENTRY_UNIX_DGRAM: &str = "fentry/unix_dgram_sendmsg";
    pub const RAW_TP_SYS_ENTER: &str = "raw_tp/sys_enter";
    pub const ALL: [&str; 6] = [
        FENTRY_VPRINTK_STORE,
        TP_BTF_CONSOLE,
        RAW_TP_CONSOLE,
        TP_CONSOLE,
        FENTRY_UNIX_DGRAM,
        RAW_TP_SYS_ENTER,
    ];
}

/// One hook the loader tried.
#[derive(Debug, Clone)]
pub struct HookAttempt {
    pub hook: &'static str,
    /// `Ok` when attached; otherwise why not.
    pub result: Result<(), String>,
}

/// The loaded object and what got attached. Dropping it detaches everything.
pub struct Attached {
    pub ebpf: Ebpf,
    pub kmsg_hook: Option<&'static str>,
    pub syslog_hook: Option<&'static str>,
    pub attempts: Vec<HookAttempt>,
}

/// Kernel offsets the programs need, from BTF. The `iov_iter`/`msghdr` members are only
/// needed by the fentry syslog hook; `have_iter` says whether they resolved.
pub fn resolve_offsets(btf: &Btf) -> Result<(Offsets, bool)> {
    let o = |ty: &str, m: &str| btf.offset_of(ty, m);
    let regs = ["di", "si", "dx", "r10", "r8", "r9"];
    let mut syscall_arg = [0u32; 6];
    if cfg!(target_arch = "x86_64") {
        for (slot, r) in syscall_arg.iter_mut().zip(regs) {
            *slot = o("pt_regs", r)?;
        }
    } else if cfg!(target_arch = "aarch64") {
        // user_pt_regs.regs[0..6] at the start of pt_regs
        let base = o("pt_regs", "regs")?;
        for (i, slot) in syscall_arg.iter_mut().enumerate() {
            *slot = base + 8 * i as u32;
        }
    } else {
        bail!("syscall argument registers are only known for x86_64 and aarch64");
    }
    let mut off = Offsets {
        socket_sk: o("socket", "sk")?,
        socket_type: o("socket", "type")?,
        sock_family: o("sock", "__sk_common.skc_family")?,
        unix_sock_peer: o("unix_sock", "peer")?,
        unix_sock_path_dentry: o("unix_sock", "path.dentry")?,
        dentry_d_inode: o("dentry", "d_inode")?,
        inode_i_ino: o("inode", "i_ino")?,
        inode_i_sb: o("inode", "i_sb")?,
        inode_i_mode: o("inode", "i_mode")?,
        super_block_s_dev: o("super_block", "s_dev")?,
        task_files: o("task_struct", "files")?,
        files_fdt: o("files_struct", "fdt")?,
        fdtable_fd: o("fdtable", "fd")?,
        fdtable_max_fds: o("fdtable", "max_fds")?,
        file_f_inode: o("file", "f_inode")?,
        file_private_data: o("file", "private_data")?,
        task_group_leader: o("task_struct", "group_leader")?,
        task_comm: o("task_struct", "comm")?,
        syscall_arg,
        nr_write: libc::SYS_write as u32,
        nr_writev: libc::SYS_writev as u32,
        nr_sendto: libc::SYS_sendto as u32,
        nr_sendmsg: libc::SYS_sendmsg as u32,
        ..Offsets::default()
    };
    // iov_iter changed shape across 6.x (ubuf since 6.0, `__iov` since 6.4); older layouts
    // simply leave the fentry syslog hook unused.
    let iter = (|| -> Result<()> {
        off.msghdr_msg_name = o("msghdr", "msg_name")?;
        off.msghdr_msg_namelen = o("msghdr", "msg_namelen")?;
        off.msghdr_msg_iter = o("msghdr", "msg_iter")?;
        off.iov_iter_type = o("iov_iter", "iter_type")?;
        off.iov_iter_iov_offset = o("iov_iter", "iov_offset")?;
        off.iov_iter_ubuf = o("iov_iter", "ubuf")?;
        off.iov_iter_nr_segs = o("iov_iter", "nr_segs")?;
        off.iter_ubuf = btf.enum_value("iter_type", "ITER_UBUF")? as u32;
        off.iter_iovec = btf.enum_value("iter_type", "ITER_IOVEC")? as u32;
        Ok(())
    })();
    Ok((off, iter.is_ok()))
}

/// Kernel `dev_t` encoding of a userspace `st_dev`.
pub fn kernel_dev(st_dev: u64) -> u64 {
    ((libc::major(st_dev) as u64) << 20) | libc::minor(st_dev) as u64
}

/// The socket inodes the configured /dev/log paths resolve to now (symlinks followed);
/// paths that do not exist or are not sockets are left out.
pub fn devlog_inodes(paths: &[String]) -> Vec<DevIno> {
    let mut out = Vec::new();
    for p in paths {
        if let Ok(m) = std::fs::metadata(p)
            && m.file_type().is_socket()
        {
            let key = DevIno {
                dev: kernel_dev(m.st_dev()),
                ino: m.st_ino(),
            };
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    out
}

/// Makes the programs' `DEVLOG` map hold exactly the inodes the /dev/log paths resolve to
/// now (a syslog daemon that restarts binds a new socket: a new inode). Returns how many
/// inodes were added.
pub fn refresh_devlog(
    map: &mut BpfHashMap<MapData, DevIno, u32>,
    paths: &[String],
) -> Result<usize> {
    let current = devlog_inodes(paths);
    let stale: Vec<DevIno> = map
        .keys()
        .filter_map(|k| k.ok())
        .filter(|k| !current.contains(k))
        .collect();
    for k in stale {
        map.remove(&k).context("cannot update the DEVLOG map")?;
    }
    let mut added = 0;
    for key in current {
        if map.get(&key, 0).is_err() {
            map.insert(key, 1, 0)
                .context("cannot update the DEVLOG map")?;
            added += 1;
        }
    }
    Ok(added)
}

fn path_bytes(p: &str) -> Result<[u8; PATH_LEN]> {
    let b = p.as_bytes();
    if b.is_empty() || b.len() >= PATH_LEN {
        bail!("devlog path {p:?} must be 1..{} bytes", PATH_LEN - 1);
    }
    let mut out = [0u8; PATH_LEN];
    out[..b.len()].copy_from_slice(b);
    Ok(out)
}

/// The `CONFIG` global for this kernel and configuration.
pub fn program_config(btf: &Btf, cfg: &EbpfConfig) -> Result<Config> {
    let (offsets, have_iter) = resolve_offsets(btf)?;
    if cfg.devlog_paths.len() > MAX_DEVLOG {
        bail!("at most {MAX_DEVLOG} devlog_paths");
    }
    let mut c = Config::ZERO;
    c.offsets = offsets;
    c.have_iter = have_iter as u32;
    c.self_tgid = std::process::id();
    for (slot, p) in c.devlog_paths.iter_mut().zip(&cfg.devlog_paths) {
        *slot = path_bytes(p)?;
    }
    Ok(c)
}

/// Offset of the `msg` `__data_loc` field in the printk/console tracepoint record, from
/// tracefs (8 when tracefs is not mounted: that hook then cannot attach anyway).
fn console_msg_loc() -> u32 {
    for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let Ok(fmt) = std::fs::read_to_string(format!("{root}/events/printk/console/format"))
        else {
            continue;
        };
        for line in fmt.lines() {
            if line.contains(" msg;")
                && let Some(rest) = line.split("offset:").nth(1)
                && let Some(n) = rest.split(';').next()
                && let Ok(n) = n.trim().parse()
            {
                return n;
            }
        }
    }
    8
}

/// Lets `setrlimit(RLIMIT_MEMLOCK)` fail quietly: kernels ≥ 5.11 account BPF memory to the
/// cgroup instead.
fn raise_memlock() {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) } != 0 {
        tracing::debug!("cannot raise RLIMIT_MEMLOCK (fine on kernels >= 5.11)");
    }
}

/// Loads the object (maps created, no program loaded yet); also says whether the
/// `iov_iter` layout (needed by the fentry syslog hook) is known.
/// What a process without the privilege to load eBPF programs is told (README,
/// Troubleshooting; `tests/tests/advice.rs` follows it).
pub const NOT_PERMITTED: &str = "not permitted to load eBPF programs (run as root, or give the \
     binary CAP_BPF,CAP_PERFMON,CAP_SYSLOG,CAP_DAC_READ_SEARCH)";

pub fn load(cfg: &EbpfConfig) -> Result<(Ebpf, bool)> {
    if let Some(why) = not_built_reason() {
        bail!("eBPF not built in: {why}");
    }
    let btf = Btf::from_sys_fs()?;
    let config = program_config(&btf, cfg)?;
    let msg_loc = console_msg_loc();
    raise_memlock();
    let ring = cfg.ringbuf_bytes.next_power_of_two().max(4096);
    let log_level = aya_log_level(tracing::level_filters::LevelFilter::current());
    let ebpf = EbpfLoader::new()
        .override_global("CONFIG", &config, true)
        .override_global("CONSOLE_MSG_LOC", &msg_loc, true)
        // Not required: an object built without aya-log still loads.
        .override_global(aya_log::LEVEL, &log_level, false)
        .map_max_entries("EVENTS", ring)
        .load(OBJECT)
        .map_err(|e| {
            let e = anyhow!(e).context("cannot load the eBPF object");
            // Creating the first map is the first privileged step: its EPERM means the
            // process lacks the capabilities, which the user can fix, not a kernel refusal.
            if format!("{e:#}").contains("Operation not permitted") {
                e.context(NOT_PERMITTED)
            } else {
                e
            }
        })?;
    Ok((ebpf, config.have_iter != 0))
}

/// The most verbose aya-log level the programs may emit (`AYA_LOG_LEVEL`): what our own
/// subscriber shows at most, so that at the default `info` the debug diagnostics are not
/// even written to the log ring.
pub fn aya_log_level(max: tracing::level_filters::LevelFilter) -> u8 {
    use aya_log::Level;
    use tracing::level_filters::LevelFilter;
    let level = match max {
        LevelFilter::OFF => return 0,
        LevelFilter::ERROR => Level::Error,
        LevelFilter::WARN => Level::Warn,
        LevelFilter::INFO => Level::Info,
        LevelFilter::DEBUG => Level::Debug,
        _ => Level::Trace,
    };
    level as u8
}

/// The error as reported, with a hint for the refusals this project has met.
fn explain(hook_name: &str, e: anyhow::Error) -> String {
    let msg = format!("{e:#}");
    if hook_name.starts_with("fentry/") && msg.contains("Operation not permitted") {
        format!("{msg} (this kernel refuses BPF trampolines: fentry/fexit cannot load)")
    } else if msg.contains("tracefs not found") {
        format!("{msg} (mount tracefs on /sys/kernel/tracing to use it)")
    } else {
        msg
    }
}

/// Loads and attaches one program; `Err` holds the reason as reported.
fn try_attach(
    ebpf: &mut Ebpf,
    hook_name: &str,
    kbtf: Option<&aya::Btf>,
    have_iter: bool,
) -> Result<()> {
    let missing_btf = || anyhow!("kernel BTF unavailable");
    match hook_name {
        hook::FENTRY_VPRINTK_STORE => {
            let p: &mut FEntry = prog(ebpf, "kmsg_vprintk_store")?.try_into()?;
            p.load("vprintk_store", kbtf.ok_or_else(missing_btf)?)?;
            p.attach()?;
        }
        hook::TP_BTF_CONSOLE => {
            let p: &mut BtfTracePoint = prog(ebpf, "kmsg_tp_btf_console")?.try_into()?;
            p.load("console", kbtf.ok_or_else(missing_btf)?)?;
            p.attach()?;
        }
        hook::RAW_TP_CONSOLE => {
            let p: &mut RawTracePoint = prog(ebpf, "kmsg_raw_console")?.try_into()?;
            p.load()?;
            p.attach("console")?;
        }
        hook::TP_CONSOLE => {
            let p: &mut TracePoint = prog(ebpf, "kmsg_tp_console")?.try_into()?;
            p.load()?;
            p.attach("printk", "console")?;
        }
        hook::FENTRY_UNIX_DGRAM => {
            if !have_iter {
                bail!("this kernel's iov_iter layout is not supported");
            }
            let p: &mut FEntry = prog(ebpf, "syslog_unix_dgram_sendmsg")?.try_into()?;
            p.load("unix_dgram_sendmsg", kbtf.ok_or_else(missing_btf)?)?;
            p.attach()?;
        }
        hook::RAW_TP_SYS_ENTER => {
            let p: &mut RawTracePoint = prog(ebpf, "syslog_sys_enter")?.try_into()?;
            p.load()?;
            p.attach("sys_enter")?;
        }
        other => bail!("unknown hook {other}"),
    }
    Ok(())
}

fn prog<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut aya::programs::Program> {
    ebpf.program_mut(name)
        .ok_or_else(|| anyhow!("program {name} missing from the object"))
}

/// Loads the object and attaches the best available hooks. Fails only when nothing at all
/// can be attached (or the object cannot be loaded).
pub fn attach(cfg: &EbpfConfig) -> Result<Attached> {
    let (mut ebpf, have_iter) = load(cfg)?;
    let kbtf = aya::Btf::from_sys_fs().ok();
    let mut attempts = Vec::new();
    let mut attempt = |ebpf: &mut Ebpf, h: &'static str| -> bool {
        if cfg.skip_hooks.iter().any(|s| s == h) {
            attempts.push(HookAttempt {
                hook: h,
                result: Err("skipped by configuration (skip_hooks)".into()),
            });
            return false;
        }
        let r = try_attach(ebpf, h, kbtf.as_ref(), have_iter).map_err(|e| explain(h, e));
        let ok = r.is_ok();
        attempts.push(HookAttempt { hook: h, result: r });
        ok
    };

    let mut kmsg_hook = None;
    if cfg.kmsg {
        for h in [hook::TP_BTF_CONSOLE, hook::RAW_TP_CONSOLE, hook::TP_CONSOLE] {
            if attempt(&mut ebpf, h) {
                kmsg_hook = Some(h);
                break;
            }
        }
        // Level and facility come with a trampoline; without one, /dev/kmsg has them.
        if kmsg_hook.is_some() {
            attempt(&mut ebpf, hook::FENTRY_VPRINTK_STORE);
        }
    }
    let mut syslog_hook = None;
    if cfg.syslog {
        for h in [hook::FENTRY_UNIX_DGRAM, hook::RAW_TP_SYS_ENTER] {
            if attempt(&mut ebpf, h) {
                syslog_hook = Some(h);
                break;
            }
        }
    }
    if kmsg_hook.is_none() && syslog_hook.is_none() {
        let why = attempts
            .iter()
            .filter_map(|a| a.result.as_ref().err().map(|e| format!("{}: {e}", a.hook)))
            .collect::<Vec<_>>()
            .join("; ");
        bail!("no hook could be attached ({why})");
    }
    Ok(Attached {
        ebpf,
        kmsg_hook,
        syslog_hook,
        attempts,
    })
}

/// Tries every hook on its own (for `infra-collector probe`), then detaches them all.
pub fn probe_hooks(cfg: &EbpfConfig) -> Result<Vec<HookAttempt>> {
    let (mut ebpf, have_iter) = load(cfg)?;
    let kbtf = aya::Btf::from_sys_fs().ok();
    Ok(hook::ALL
        .iter()
        .map(|h| HookAttempt {
            hook: h,
            result: try_attach(&mut ebpf, h, kbtf.as_ref(), have_iter).map_err(|e| explain(h, e)),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::aya_log_level;
    use tracing::level_filters::LevelFilter;

    /// At the default `info` the programs must not write their debug diagnostics at all;
    /// at `debug` they must.
    #[test]
    fn programs_log_only_what_our_filter_shows() {
        let debug = aya_log::Level::Debug as u8;
        assert!(aya_log_level(LevelFilter::INFO) < debug);
        assert!(aya_log_level(LevelFilter::WARN) < debug);
        assert_eq!(aya_log_level(LevelFilter::OFF), 0);
        assert_eq!(aya_log_level(LevelFilter::DEBUG), debug);
        assert!(aya_log_level(LevelFilter::TRACE) > debug);
    }
}
