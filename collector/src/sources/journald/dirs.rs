//! Finding the journal namespace directories to read.
//!
//! journald writes each namespace into a directory of its own below `/var/log/journal`
//! (persistent) or `/run/log/journal` (volatile): `<machine-id>` for the default
//! namespace, `<machine-id>.<namespace>` for the others. Each has its own writer and so its
//! own sequence numbers: it is read by one reader with one cursor. A configured directory
//! that holds `*.journal` files itself (e.g. the output of `systemd-journal-remote`) is one
//! such stream too.
//!
//! Except the default namespace of the system journal, when both `/var/log/journal` and
//! `/run/log/journal` are configured (the default): journald writes it to /run until
//! /var is ready, then flushes (copies) what it wrote to /var and deletes the /run files.
//! Read as two streams, every flushed entry would be archived twice. So its directories in
//! both places are one stream, opened through libsystemd's OS-root mode (as
//! `journalctl --root` does), which interleaves the files and shows a flushed entry once.

use std::path::{Path, PathBuf};

/// Incompatible header flags libsystemd 252 knows: XZ, LZ4, KEYED_HASH, ZSTD, COMPACT.
/// A file with any other flag set was written by a newer systemd.
const KNOWN_INCOMPATIBLE_FLAGS: u32 = 0x1f;

pub const PERSISTENT: &str = "/var/log/journal";
pub const VOLATILE: &str = "/run/log/journal";

/// Checkpoint key of the system journal's default namespace ([`PERSISTENT`] and
/// [`VOLATILE`] read as one stream).
pub const SYSTEM_KEY: &str = "journald:system";

/// One stream to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceDir {
    /// Every directory the stream reads, root prefix included: one, or the system
    /// stream's in /var and /run (never empty).
    pub paths: Vec<PathBuf>,
    /// The checkpoint key: `journald:` and the path as the host names it (without the
    /// root prefix), so that a collector moved into a container keeps its positions; or
    /// [`SYSTEM_KEY`].
    pub key: String,
    /// The system stream: opened in OS-root mode on this root.
    pub os_root: Option<PathBuf>,
    /// Keys an earlier version stored this stream's position under (the system stream's
    /// directories read one by one).
    pub legacy_keys: Vec<String>,
}

impl NamespaceDir {
    /// Where the collector opens it: its directory, or the system stream's first.
    pub fn path(&self) -> &Path {
        &self.paths[0]
    }

    fn single(path: PathBuf, key: String) -> NamespaceDir {
        NamespaceDir {
            paths: vec![path],
            key,
            os_root: None,
            legacy_keys: Vec::new(),
        }
    }
}

/// Whether a directory name is `<32 hex digits>` or `<32 hex digits>.<namespace>`.
pub fn is_namespace_dir_name(name: &str) -> bool {
    let (id, ns) = match name.split_once('.') {
        Some((id, ns)) => (id, Some(ns)),
        None => (name, None),
    };
    id.len() == 32
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && ns.is_none_or(|ns| !ns.is_empty())
}

fn has_journal_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| rd.flatten().any(|e| is_journal_file(&e.path())))
}

fn is_journal_file(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e == "journal" || e == "journal~")
}

/// What to do about [`access_problems`] (README, Troubleshooting; `tests/tests/advice.rs`
/// follows it).
pub const ACCESS_ADVICE: &str =
    "run as root, or add the collector's user to the systemd-journal group";

/// What the collector's user may not read below the configured directories: a directory
/// it cannot list or a journal file it cannot open, each with the reason. journald makes
/// its files readable by root and the systemd-journal group only, so a collector run as
/// another user finds the directories and reads nothing from them.
pub fn access_problems(root: &Path, dirs: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    let check_dir = |dir: &Path, out: &mut Vec<String>| -> Vec<PathBuf> {
        match std::fs::read_dir(dir) {
            Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                out.push(format!("cannot list {}: {e}", dir.display()));
                Vec::new()
            }
        }
    };
    for dir in dirs {
        for p in check_dir(&under_root(root, dir), &mut out) {
            let below = if p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(is_namespace_dir_name)
            {
                check_dir(&p, &mut out)
            } else {
                vec![p]
            };
            for f in below.iter().filter(|f| is_journal_file(f)) {
                if let Err(e) = std::fs::File::open(f) {
                    out.push(format!("cannot read {}: {e}", f.display()));
                }
            }
        }
    }
    out
}

/// `root` joined with an absolute `dir` (`/host` + `/var/log/journal`).
pub fn under_root(root: &Path, dir: &Path) -> PathBuf {
    root.join(dir.strip_prefix("/").unwrap_or(dir))
}

/// The streams below the configured directories, sorted, each once.
pub fn discover(root: &Path, dirs: &[PathBuf]) -> Vec<NamespaceDir> {
    let system = dirs.iter().any(|d| d == Path::new(PERSISTENT))
        && dirs.iter().any(|d| d == Path::new(VOLATILE));
    let mut out: Vec<NamespaceDir> = Vec::new();
    let mut merged: Option<NamespaceDir> = None;
    for dir in dirs {
        let path = under_root(root, dir);
        let mut found = Vec::new();
        if has_journal_files(&path) {
            found.push((path.clone(), dir.clone()));
        }
        if let Ok(rd) = std::fs::read_dir(&path) {
            for e in rd.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if is_namespace_dir_name(name) && e.path().is_dir() {
                    found.push((e.path(), dir.join(name)));
                }
            }
        }
        found.sort();
        let in_system = |p: &Path| {
            system
                && (p.parent() == Some(Path::new(PERSISTENT))
                    || p.parent() == Some(Path::new(VOLATILE)))
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.contains('.'))
        };
        for (path, host_path) in found {
            let key = format!("journald:{}", host_path.display());
            if in_system(&host_path) {
                let m = merged.get_or_insert_with(|| NamespaceDir {
                    paths: Vec::new(),
                    key: SYSTEM_KEY.to_string(),
                    os_root: Some(root.to_path_buf()),
                    legacy_keys: Vec::new(),
                });
                m.paths.push(path);
                m.legacy_keys.push(key);
            } else if !out.iter().any(|d| d.key == key) {
                out.push(NamespaceDir::single(path, key));
            }
        }
    }
    if let Some(m) = merged {
        out.insert(0, m);
    }
    out
}

/// Journal files in `dir` whose header has incompatible flags libsystemd 252 does not
/// know, with the flags: libsystemd skips such files silently, so we say it loudly.
pub fn unsupported_files(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if !is_journal_file(&p) {
            continue;
        }
        let mut head = [0u8; 16];
        let ok = std::fs::File::open(&p)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok();
        if ok && &head[..8] == b"LPKSHHRH" {
            let flags = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
            if flags & !KNOWN_INCOMPATIBLE_FLAGS != 0 {
                out.push((p, flags));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names() {
        assert!(is_namespace_dir_name("3d1219c7c4c5404aaa1f6d2a48adfda4"));
        assert!(is_namespace_dir_name(
            "3d1219c7c4c5404aaa1f6d2a48adfda4.audit"
        ));
        assert!(!is_namespace_dir_name("3d1219c7c4c5404aaa1f6d2a48adfda4."));
        assert!(!is_namespace_dir_name("remote"));
        assert!(!is_namespace_dir_name("3d1219c7c4c5404aaa1f6d2a48adfdz4"));
    }

    #[test]
    fn discovers_namespaces_under_a_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let id = "0123456789abcdef0123456789abcdef";
        for d in [
            format!("var/log/journal/{id}"),
            format!("var/log/journal/{id}.ns2"),
            "var/log/journal/not-a-namespace".into(),
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(root.join("flat")).unwrap();
        std::fs::write(root.join("flat/system.journal"), b"").unwrap();
        let found = discover(
            root,
            &[
                PathBuf::from("/var/log/journal"),
                PathBuf::from("/run/log/journal"),
                PathBuf::from("/flat"),
            ],
        );
        let keys: Vec<&str> = found.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                SYSTEM_KEY,
                format!("journald:/var/log/journal/{id}.ns2").as_str(),
                "journald:/flat",
            ]
        );
        assert_eq!(found[0].path(), root.join(format!("var/log/journal/{id}")));
        assert_eq!(found[0].os_root.as_deref(), Some(root));
        assert_eq!(
            found[0].legacy_keys,
            [format!("journald:/var/log/journal/{id}")]
        );
        assert_eq!(found[1].os_root, None);
    }

    /// The default namespace in /run (before journald flushed it) and in /var is one
    /// stream; without both standard directories configured, each directory is its own.
    #[test]
    fn the_system_journal_in_run_and_var_is_one_stream() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let id = "0123456789abcdef0123456789abcdef";
        for d in [
            format!("var/log/journal/{id}"),
            format!("run/log/journal/{id}"),
            format!("run/log/journal/{id}.ns"),
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let both = [PathBuf::from(PERSISTENT), PathBuf::from(VOLATILE)];
        let found = discover(root, &both);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].key, SYSTEM_KEY);
        assert_eq!(
            found[0].paths,
            [
                root.join(format!("var/log/journal/{id}")),
                root.join(format!("run/log/journal/{id}"))
            ]
        );
        assert_eq!(found[1].key, format!("journald:/run/log/journal/{id}.ns"));
        let only_run = discover(root, &[PathBuf::from(VOLATILE)]);
        assert_eq!(only_run[0].key, format!("journald:/run/log/journal/{id}"));
        assert_eq!(only_run[0].os_root, None);
    }

    #[test]
    fn flags_newer_files() {
        let t = tempfile::tempdir().unwrap();
        let mut head = b"LPKSHHRH".to_vec();
        head.extend_from_slice(&0u32.to_le_bytes());
        head.extend_from_slice(&(0x1fu32 | 0x20).to_le_bytes());
        std::fs::write(t.path().join("new.journal"), &head).unwrap();
        head[12] = 0x1f;
        std::fs::write(t.path().join("ok.journal"), &head).unwrap();
        let bad = unsupported_files(t.path());
        assert_eq!(bad, vec![(t.path().join("new.journal"), 0x3f)]);
    }
}
