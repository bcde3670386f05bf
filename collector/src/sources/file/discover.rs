//! Which files an input names: glob expansion (`*` and `?` within one path component),
//! exclusions, and the rotated siblings of a file (`syslog.1`, `syslog.2.gz`,
//! `syslog-20261129`, `0.log.20261129-101010`) where a rotated file's unread tail may wait.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The regular files matching `pattern`, sorted. A pattern without wildcards names one
/// file, returned when it exists.
pub fn expand(pattern: &Path) -> Vec<PathBuf> {
    let mut current = vec![PathBuf::new()];
    for comp in pattern.components() {
        let name = comp.as_os_str();
        let wild = matches!(comp, Component::Normal(_)) && has_wildcard(name.as_bytes());
        let mut next = Vec::new();
        for dir in &current {
            if !wild {
                next.push(dir.join(name));
                continue;
            }
            let listing = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            let Ok(entries) = std::fs::read_dir(listing) else {
                continue;
            };
            for e in entries.flatten() {
                let n = e.file_name();
                // `*` does not match a leading dot, as in the shell.
                if n.as_bytes().first() == Some(&b'.') && name.as_bytes().first() != Some(&b'.') {
                    continue;
                }
                if wildcard_match(name.as_bytes(), n.as_bytes()) {
                    next.push(dir.join(&n));
                }
            }
        }
        current = next;
    }
    current.retain(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()));
    current.sort();
    current
}

pub fn has_wildcard(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'*' || b == b'?')
}

/// Whether `name` matches `pattern` (`*` any run of bytes, `?` one byte).
pub fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and the name position it currently covers up to.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Whether an exclude pattern applies: a pattern with a `/` matches the whole path, one
/// without matches the file name.
pub fn excluded(excludes: &[String], path: &Path) -> bool {
    let name = path.file_name().map_or(&b""[..], OsStr::as_bytes);
    excludes.iter().any(|x| {
        if x.contains('/') {
            wildcard_match(x.as_bytes(), path.as_os_str().as_bytes())
        } else {
            wildcard_match(x.as_bytes(), name)
        }
    })
}

/// Files next to `path` that look like rotated copies of it: its name followed by `.` or
/// `-` and a suffix of digits, dots and dashes, optionally ending in `.gz`.
pub fn rotated_siblings(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| is_rotated_name(name.as_bytes(), e.file_name().as_bytes()))
        .map(|e| e.path())
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    out.sort();
    out
}

fn is_rotated_name(base: &[u8], candidate: &[u8]) -> bool {
    let Some(rest) = candidate.strip_prefix(base) else {
        return false;
    };
    let rest = rest.strip_suffix(b".gz").unwrap_or(rest);
    rest.len() >= 2
        && matches!(rest[0], b'.' | b'-')
        && rest[1..]
            .iter()
            .all(|&b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && rest[1..].iter().any(u8::is_ascii_digit)
}

/// Whether a file is gzip-compressed, by name.
pub fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"*.log", b"a.log"));
        assert!(wildcard_match(b"*.log", b".log"));
        assert!(!wildcard_match(b"*.log", b"a.log.1"));
        assert!(wildcard_match(b"*-json.log", b"abc-json.log"));
        assert!(wildcard_match(b"a*b*c", b"aXbYbZc"));
        assert!(!wildcard_match(b"a*b*c", b"aXbYbZ"));
        assert!(wildcard_match(b"?.log", b"0.log"));
        assert!(!wildcard_match(b"?.log", b"10.log"));
        assert!(wildcard_match(b"*", b""));
        assert!(wildcard_match(b"", b""));
        assert!(!wildcard_match(b"", b"a"));
    }

    #[test]
    fn expands_globs_over_directories() {
        let d = tempfile::tempdir().unwrap();
        for p in [
            "a/x/1.log",
            "a/y/2.log",
            "a/y/2.log.1",
            "b/z/3.log",
            "a/.h/4.log",
        ] {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let got = expand(&d.path().join("a/*/*.log"));
        let want = vec![d.path().join("a/x/1.log"), d.path().join("a/y/2.log")];
        assert_eq!(got, want);
        assert_eq!(expand(&d.path().join("a/x/1.log")).len(), 1);
        assert!(expand(&d.path().join("a/x/none.log")).is_empty());
        assert!(
            expand(&d.path().join("a/x")).is_empty(),
            "directories are not files"
        );
    }

    #[test]
    fn exclusions_by_name_or_path() {
        let ex = vec!["*.gz".to_string(), "/var/log/private/*".to_string()];
        assert!(excluded(&ex, Path::new("/var/log/x.gz")));
        assert!(excluded(&ex, Path::new("/var/log/private/a.log")));
        assert!(!excluded(&ex, Path::new("/var/log/a.log")));
    }

    #[test]
    fn rotated_names() {
        for ok in [
            &b"syslog.1"[..],
            b"syslog.2.gz",
            b"syslog-20261129",
            b"syslog-20261129.gz",
        ] {
            assert!(
                is_rotated_name(b"syslog", ok),
                "{}",
                String::from_utf8_lossy(ok)
            );
        }
        assert!(is_rotated_name(b"0.log", b"0.log.20261129-101010"));
        for bad in [
            &b"syslog"[..],
            b"syslog.",
            b"syslog.gz",
            b"syslogx.1",
            b"syslog.old",
            b"sys",
        ] {
            assert!(
                !is_rotated_name(b"syslog", bad),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
