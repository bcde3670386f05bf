//! Which file is which across renames, truncation, inode reuse, compression and restarts,
//! and the checkpoint that says where reading resumes.
//!
//! A file is known by a fingerprint: a hash of its first [`FINGERPRINT_BYTES`] bytes. It
//! survives a rename, a `copytruncate` copy and gzip (the hash is over the decompressed
//! bytes), and changes when an inode is reused for new content. A file shorter than that
//! is known by device and inode, with the hash of what it has so far checked on resume so
//! that a reused inode is not taken for the old file.
//!
//! Checkpoint key: `file:fp:<hash>` or `file:ino:<dev>:<ino>`. Value:
//! `<resume> <skip_until> <fp_len> <fp_hash> <dev> <ino> <path>`: reading resumes at byte
//! `resume` (the start of the first record not yet complete), and records that end at or
//! before `skip_until` were archived already (two interleaved container streams can leave a
//! partial record of one stream before complete records of the other).

use std::io::{self, Read};

use crate::state::CheckpointStore;

pub const FINGERPRINT_BYTES: usize = 1024;

/// Hash of a file's first `len` bytes (FNV-1a: stable across Rust releases, which
/// checkpoint keys must be).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    pub len: usize,
    pub hash: u64,
}

impl Fingerprint {
    pub fn of(prefix: &[u8]) -> Fingerprint {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in prefix {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Fingerprint {
            len: prefix.len(),
            hash: h,
        }
    }

    pub fn is_full(&self) -> bool {
        self.len >= FINGERPRINT_BYTES
    }
}

/// Reads up to `n` bytes from the start of a stream.
pub fn read_prefix(r: &mut impl Read, n: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    r.take(n as u64).read_to_end(buf)?;
    Ok(())
}

/// Where a file is, as a checkpoint records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub resume: u64,
    pub skip_until: u64,
    pub fp: Fingerprint,
    pub dev: u64,
    pub ino: u64,
    pub path: String,
}

impl Position {
    pub fn key(&self) -> String {
        if self.fp.is_full() {
            format!("file:fp:{:016x}", self.fp.hash)
        } else {
            ino_key(self.dev, self.ino)
        }
    }

    /// Every key this file's position may be stored under: by inode while the file was
    /// shorter than a full fingerprint, by fingerprint after.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = vec![ino_key(self.dev, self.ino)];
        if self.fp.is_full() {
            keys.push(self.key());
        }
        keys
    }

    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {:016x} {} {} {}",
            self.resume, self.skip_until, self.fp.len, self.fp.hash, self.dev, self.ino, self.path
        )
    }

    pub fn decode(s: &str) -> Option<Position> {
        let mut f = s.trim_end_matches('\n').splitn(7, ' ');
        let mut num = || f.next()?.parse::<u64>().ok();
        let (resume, skip_until, fp_len) = (num()?, num()?, num()?);
        let hash = u64::from_str_radix(f.next()?, 16).ok()?;
        let mut num = || f.next()?.parse::<u64>().ok();
        let (dev, ino) = (num()?, num()?);
        Some(Position {
            resume,
            skip_until: skip_until.max(resume),
            fp: Fingerprint {
                len: fp_len as usize,
                hash,
            },
            dev,
            ino,
            path: f.next().unwrap_or_default().to_string(),
        })
    }
}

fn ino_key(dev: u64, ino: u64) -> String {
    format!("file:ino:{dev}:{ino}")
}

/// What a newly opened file is to us.
pub struct Found {
    pub dev: u64,
    pub ino: u64,
    /// Length, when known (not for a compressed file).
    pub len: Option<u64>,
    /// Its first up to [`FINGERPRINT_BYTES`] bytes.
    pub prefix_fp: Fingerprint,
}

/// The checkpointed position of a file, if it was read before. `prefix_of(n)` gives the
/// fingerprint of its first `n` bytes (for a file known by inode, to tell reuse apart).
pub fn lookup(
    store: &CheckpointStore,
    found: &Found,
    prefix_of: impl FnOnce(usize) -> Option<Fingerprint>,
) -> anyhow::Result<Option<Position>> {
    let fits = |p: &Position| found.len.is_none_or(|len| p.resume <= len);
    if found.prefix_fp.is_full() {
        let key = format!("file:fp:{:016x}", found.prefix_fp.hash);
        if let Some(p) = store.load(&key)?.as_deref().and_then(Position::decode) {
            return Ok(fits(&p).then_some(p));
        }
    }
    if found.len.is_none() {
        return Ok(None);
    }
    let Some(p) = store
        .load(&ino_key(found.dev, found.ino))?
        .as_deref()
        .and_then(Position::decode)
    else {
        return Ok(None);
    };
    let same = p.fp.len <= found.prefix_fp.len
        && (p.fp.len == found.prefix_fp.len && p.fp == found.prefix_fp
            || prefix_of(p.fp.len) == Some(p.fp));
    Ok((same && fits(&p)).then_some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(resume: u64, fp: Fingerprint, ino: u64) -> Position {
        Position {
            resume,
            skip_until: resume,
            fp,
            dev: 7,
            ino,
            path: "/var/log/my app.log".into(),
        }
    }

    #[test]
    fn positions_round_trip() {
        let p = Position {
            skip_until: 120,
            ..pos(100, Fingerprint::of(b"abc"), 9)
        };
        assert_eq!(Position::decode(&p.encode()), Some(p.clone()));
        assert_eq!(p.key(), "file:ino:7:9");
        let full = pos(1, Fingerprint::of(&[b'x'; FINGERPRINT_BYTES]), 9);
        assert!(full.key().starts_with("file:fp:"));
        assert_eq!(Position::decode("1 2 x"), None);
    }

    #[test]
    fn lookup_by_fingerprint_then_by_inode_with_reuse_detected() {
        // What the spool would recover after each commit.
        let positions = std::cell::RefCell::new(std::collections::BTreeMap::new());
        let commit = |p: &Position| {
            positions.borrow_mut().insert(p.key(), p.encode());
        };
        let store = || CheckpointStore::new(positions.borrow().clone());
        let big = [b'a'; FINGERPRINT_BYTES];
        let big_fp = Fingerprint::of(&big);
        commit(&pos(5000, big_fp, 1));
        // Same content under another inode (a gzip or copytruncate copy): found.
        let found = Found {
            dev: 1,
            ino: 99,
            len: None,
            prefix_fp: big_fp,
        };
        assert_eq!(
            lookup(&store(), &found, |_| None).unwrap().unwrap().resume,
            5000
        );
        // Shorter than the position: truncated, start over.
        let found = Found {
            len: Some(10),
            ..found
        };
        assert!(lookup(&store(), &found, |_| None).unwrap().is_none());

        let small_fp = Fingerprint::of(b"hello\n");
        commit(&pos(6, small_fp, 2));
        let grown = Found {
            dev: 7,
            ino: 2,
            len: Some(12),
            prefix_fp: Fingerprint::of(b"hello\nworld\n"),
        };
        let p = lookup(&store(), &grown, |n| {
            Some(Fingerprint::of(&b"hello\nworld\n"[..n]))
        });
        assert_eq!(p.unwrap().unwrap().resume, 6);
        // The inode reused for other content.
        let reused = Found {
            prefix_fp: Fingerprint::of(b"other\nstuff\n"),
            ..grown
        };
        let p = lookup(&store(), &reused, |n| {
            Some(Fingerprint::of(&b"other\nstuff\n"[..n]))
        });
        assert!(p.unwrap().is_none());
    }
}
