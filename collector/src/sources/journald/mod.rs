//! The `journald` source: the systemd journal, read in-process through libsystemd's
//! sd_journal API (loaded at run time, see [`sys`]), never through a `journalctl`
//! subprocess (journalctl 252 drops entries on resume: `--after-cursor` skips one entry
//! blindly when the cursor's entry was vacuumed, and `--follow` implies the current boot).
//!
//! * **Streams.** Each journal namespace directory (`<dir>/<machine-id>[.<namespace>]`, see
//!   [`dirs`]) below the configured `directories` (with `root` prefixed, for a collector in
//!   a container that mounts the host's `/` at `/host`) is read by a thread of its own with
//!   a cursor of its own, checkpoint key `journald:<directory>`, value the cursor of the
//!   last archived entry. New namespace directories are picked up every `rescan_secs`.
//! * **Resume.** Seek to the cursor, step, and test the cursor: if the entry is still
//!   there, step past it; if it was vacuumed, the entry we stand on is the first unread
//!   one. `read_from` (`beginning` or `now`) applies only when there is no cursor.
//! * **Gaps.** journald numbers entries without holes (seqnum `i=` within a seqnum id
//!   `s=`). A jump means entries were deleted (vacuumed) before we read them: counted,
//!   logged, and flagged on the next row (`extra['journal_vacuumed_before']`). Not with
//!   `include` matches, where libsystemd skips the other entries.
//! * **Follow.** At the end the reader waits on the journal's inotify descriptor;
//!   libsystemd opens new files (rotation: `system.journal` renamed `system@….journal`
//!   and a new one created) and drops deleted ones (vacuum) in `sd_journal_process`.
//! * **Mapping**: see [`entry`]. `include` (`FIELD=value`, given to libsystemd: matches of
//!   one field ORed, of different fields ANDed) and `exclude` (`FIELD=value`, any field
//!   matching skips the entry) select entries.
//! * **Ownership.** While the kmsg source runs, kernel lines of the running boot
//!   (`_TRANSPORT=kernel`) are skipped here: kmsg archives them with their sequence number.
//!   Those of earlier boots are archived here. See the README's "Which source owns which
//!   line".

pub mod dirs;
pub mod entry;
pub mod reader;
pub mod sys;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::parse::journal::split_field;
use crate::sources::SourceContext;
use dirs::NamespaceDir;
use reader::{Reader, ReaderStats};

/// The journal field data of kernel lines, which kmsg owns while it runs.
pub const KERNEL_TRANSPORT: &str = "_TRANSPORT=kernel";

/// Which entries the readers skip.
#[derive(Debug, Clone, Default)]
pub struct Skip {
    /// `exclude`: an entry with any of these fields.
    pub any: Vec<Vec<u8>>,
    /// An entry with all of these fields: the kernel lines of the running boot while kmsg
    /// runs (`_TRANSPORT=kernel`, `_BOOT_ID=<this boot>`). Kernel lines of earlier boots
    /// are no longer in /dev/kmsg: journald archives them.
    pub all: Vec<Vec<u8>>,
}

/// `_BOOT_ID=<id>` of the running boot, as the journal writes it (no dashes).
fn current_boot_field() -> Option<Vec<u8>> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let hex: String = id.trim().chars().filter(|c| *c != '-').collect();
    (hex.len() == 32).then(|| format!("_BOOT_ID={hex}").into_bytes())
}

/// Where the first start (no cursor yet) begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// Everything the journal still holds.
    #[default]
    Beginning,
    /// Only entries written from now on.
    Now,
}

/// `[sources.journald]`
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct JournaldConfig {
    /// On by default: the source starts when a journal directory exists and libsystemd
    /// loads, and says why not otherwise.
    pub enabled: bool,
    pub directories: Vec<PathBuf>,
    /// Prefix of `directories` (and of the user database used for `user_name`).
    pub root: PathBuf,
    pub read_from: ReadFrom,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub rescan_secs: u64,
}

impl Default for JournaldConfig {
    fn default() -> Self {
        JournaldConfig {
            enabled: true,
            directories: vec!["/var/log/journal".into(), "/run/log/journal".into()],
            root: "/".into(),
            read_from: ReadFrom::Beginning,
            include: Vec::new(),
            exclude: Vec::new(),
            rescan_secs: 10,
        }
    }
}

impl JournaldConfig {
    /// Refuses matches that are not `FIELD=value` and relative directories.
    pub fn validate(&self) -> Result<()> {
        for (what, list) in [("include", &self.include), ("exclude", &self.exclude)] {
            for m in list {
                if split_field(m.as_bytes()).is_none() {
                    bail!(
                        "sources.journald.{what}: {m:?} is not FIELD=value (FIELD in \
                         upper case letters, digits and _)"
                    );
                }
            }
        }
        for d in self.directories.iter().chain([&self.root]) {
            if !d.is_absolute() {
                bail!("sources.journald: {} must be an absolute path", d.display());
            }
        }
        Ok(())
    }

    /// The namespace directories present now.
    pub fn namespaces(&self) -> Vec<NamespaceDir> {
        dirs::discover(&self.root, &self.directories)
    }
}

/// What the journald source found before starting: decided before the other sources
/// start, because the eBPF syslog hook leaves the journal's sockets to it.
pub struct Plan {
    cfg: JournaldConfig,
    found: Vec<NamespaceDir>,
}

impl Plan {
    /// `Ok(None)` when the source would have nothing to read (disabled, or no journal
    /// directory: logged); `Err` when it cannot run (libsystemd missing).
    pub fn new(cfg: &JournaldConfig) -> Result<Option<Plan>> {
        if !cfg.enabled {
            return Ok(None);
        }
        let found = cfg.namespaces();
        let problems = dirs::access_problems(&cfg.root, &cfg.directories);
        if !problems.is_empty() {
            let n = problems.len();
            tracing::warn!(
                "journald: {n} journal file(s) or directories not readable ({}): {}{}",
                dirs::ACCESS_ADVICE,
                problems[..n.min(3)].join("; "),
                if n > 3 { "; ..." } else { "" }
            );
        }
        if found.is_empty() {
            tracing::info!(
                "journald source not started: no journal namespace directory in {:?} (root {})",
                cfg.directories,
                cfg.root.display()
            );
            return Ok(None);
        }
        sys::lib()?;
        Ok(Some(Plan {
            cfg: cfg.clone(),
            found,
        }))
    }

    pub fn directories(&self) -> &[NamespaceDir] {
        &self.found
    }
}

/// The journal's own datagram socket: on a systemd host `/dev/log` is a link to it, and
/// whatever is sent there reaches the journal (`_TRANSPORT=syslog`).
pub fn journal_syslog_socket(root: &Path) -> PathBuf {
    dirs::under_root(root, Path::new("/run/systemd/journal/dev-log"))
}

/// Starts the source: a thread that starts one reader per namespace directory and, unless
/// `once`, looks for new ones every `rescan_secs`. `kmsg_running`: kernel lines are left
/// to the kmsg source.
pub fn spawn(
    ctx: SourceContext,
    plan: Plan,
    kmsg_running: bool,
    max_message_bytes: usize,
) -> Result<JoinHandle<Result<()>>> {
    let mut skip = Skip {
        any: plan
            .cfg
            .exclude
            .iter()
            .map(|m| m.as_bytes().to_vec())
            .collect(),
        all: Vec::new(),
    };
    if kmsg_running {
        match current_boot_field() {
            Some(boot) => skip.all = vec![KERNEL_TRANSPORT.as_bytes().to_vec(), boot],
            None => tracing::warn!(
                "journald: boot id unknown: kernel lines are archived by both kmsg and journald"
            ),
        }
    }
    let sup = Supervisor {
        ctx,
        cfg: plan.cfg,
        skip,
        max_message_bytes,
        readers: Vec::new(),
    };
    let found = plan.found;
    std::thread::Builder::new()
        .name("journald".into())
        .spawn(move || sup.run(found))
        .context("cannot start the journald thread")
}

fn join(h: JoinHandle<Result<()>>) -> Result<()> {
    h.join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the reader panicked")))
}

struct Supervisor {
    ctx: SourceContext,
    cfg: JournaldConfig,
    skip: Skip,
    max_message_bytes: usize,
    readers: Vec<(String, JoinHandle<Result<()>>)>,
}

impl Supervisor {
    fn run(mut self, found: Vec<NamespaceDir>) -> Result<()> {
        for d in found {
            self.start(d)?;
        }
        let rescan = Duration::from_secs(self.cfg.rescan_secs.max(1));
        let mut last = Instant::now();
        let mut first_err = None;
        let mut ended: Vec<String> = Vec::new();
        while !self.ctx.once && !self.ctx.stopping() {
            std::thread::sleep(Duration::from_millis(100));
            // A reader that ended on its own failed: say so now, not at shutdown. It is not
            // restarted: its position is known again only after the collector restarts
            // (checkpoints are loaded at start-up).
            while let Some(i) = self.readers.iter().position(|(_, h)| h.is_finished()) {
                let (key, h) = self.readers.swap_remove(i);
                if let Err(e) = join(h) {
                    tracing::error!("journald {key}: {e:#}; this journal is no longer read");
                    first_err.get_or_insert(e.context(key.clone()));
                }
                ended.push(key);
            }
            if last.elapsed() >= rescan {
                last = Instant::now();
                for d in self.cfg.namespaces() {
                    if !self.readers.iter().any(|(k, _)| *k == d.key) && !ended.contains(&d.key) {
                        tracing::info!("journald: new journal directory {}", d.path().display());
                        self.start(d)?;
                    }
                }
            }
        }
        for (key, h) in self.readers {
            if let Err(e) = join(h) {
                tracing::error!("journald {key}: {e:#}");
                first_err.get_or_insert(e.context(key));
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn start(&mut self, dir: NamespaceDir) -> Result<()> {
        let ctx = self.ctx.clone();
        let cfg = self.cfg.clone();
        let skip = self.skip.clone();
        let max = self.max_message_bytes;
        let key = dir.key.clone();
        let name = format!(
            "journald:{}",
            dir.path().file_name().unwrap_or_default().to_string_lossy()
        );
        tracing::info!("journald: reading {key}");
        let handle = std::thread::Builder::new()
            .name(name.chars().take(15).collect())
            .spawn(move || {
                // The handle is opened here: it must stay on the thread that opened it.
                let stats = Arc::new(ReaderStats::default());
                Reader::open(ctx, dir, &cfg, skip, max, stats)?.run()
            })
            .context("cannot start a journald reader thread")?;
        self.readers.push((key, handle));
        Ok(())
    }
}

/// The eBPF configuration with the /dev/log paths that lead to the journal's socket taken
/// out (they are the journald source's to archive), and the paths taken out. Paths are
/// compared by the socket inode they resolve to now, as the eBPF source matches them.
pub fn leave_journal_socket(
    ebpf: &crate::sources::ebpf::EbpfConfig,
    root: &Path,
) -> (crate::sources::ebpf::EbpfConfig, Vec<String>) {
    use std::os::unix::fs::MetadataExt as _;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let mut cfg = ebpf.clone();
    let Some(journal) = id(&journal_syslog_socket(root)) else {
        return (cfg, Vec::new());
    };
    let (gone, kept): (Vec<String>, Vec<String>) = cfg
        .devlog_paths
        .drain(..)
        .partition(|p| id(Path::new(p)) == Some(journal));
    cfg.devlog_paths = kept;
    if cfg.devlog_paths.is_empty() {
        cfg.syslog = false;
    }
    (cfg, gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::ebpf::EbpfConfig;

    #[test]
    fn the_ebpf_hook_leaves_paths_that_lead_to_the_journal_socket() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let sock = journal_syslog_socket(root);
        std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
        let _journal = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        let own = root.join("rsyslog.sock");
        let _rsyslog = std::os::unix::net::UnixDatagram::bind(&own).unwrap();
        let link = root.join("devlog");
        std::os::unix::fs::symlink(&sock, &link).unwrap();
        let paths = |ps: &[&Path]| ps.iter().map(|p| p.display().to_string()).collect();
        let cfg = EbpfConfig {
            devlog_paths: paths(&[&link, &own, &sock]),
            ..EbpfConfig::default()
        };
        let (left, gone) = leave_journal_socket(&cfg, root);
        assert_eq!(gone, paths(&[&link, &sock]) as Vec<String>);
        assert_eq!(left.devlog_paths, paths(&[&own]) as Vec<String>);
        assert!(left.syslog);
        // Nothing else to watch: the syslog hook is not attached at all.
        let cfg = EbpfConfig {
            devlog_paths: paths(&[&link]),
            ..EbpfConfig::default()
        };
        assert!(!leave_journal_socket(&cfg, root).0.syslog);
        // No journal socket under this root: nothing changes.
        let other = tempfile::tempdir().unwrap();
        let (same, gone) = leave_journal_socket(&cfg, other.path());
        assert_eq!((same, gone), (cfg, Vec::new()));
    }

    #[test]
    fn config_refuses_bad_matches_and_relative_paths() {
        let ok = JournaldConfig {
            include: vec!["_SYSTEMD_UNIT=ssh.service".into()],
            exclude: vec!["PRIORITY=7".into()],
            ..JournaldConfig::default()
        };
        ok.validate().unwrap();
        for bad in [
            JournaldConfig {
                include: vec!["ssh.service".into()],
                ..JournaldConfig::default()
            },
            JournaldConfig {
                directories: vec!["var/log/journal".into()],
                ..JournaldConfig::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }
}
