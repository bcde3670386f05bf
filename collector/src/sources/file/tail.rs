//! One open file being read: plain files by offset (so a rename or deletion does not stop
//! us: we keep the descriptor and read to the end), gzip files as a stream. Notices when
//! its path moved on to another file (rotation) and when it was truncated in place
//! (copytruncate), and says where it stands as a [`Position`].

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use flate2::read::MultiGzDecoder;

use super::discover::is_gz;
use super::format::RowWriter;
use super::framing::{Framer, Joining};
use super::identity::{FINGERPRINT_BYTES, Fingerprint, Position, read_prefix};
use crate::chunk::{Checkpoint, Chunk};

/// Bytes read per call: small enough that a chunk overshoots `chunk_rows` by little.
pub const READ_BLOCK: usize = 64 * 1024;

enum Reader {
    Plain(File),
    Gz(Box<MultiGzDecoder<BufReader<File>>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Its path names it: it may grow.
    Live,
    /// Renamed away, deleted, or a rotated file with unread data: read to the end, and
    /// keep reading for `rotate_wait` after the path moved on, as writers take a moment
    /// to reopen.
    Draining(Instant),
    /// Read to the end; to be closed once its last rows are sent.
    Done,
}

pub struct Tail {
    pub path: PathBuf,
    pub input: usize,
    pub dev: u64,
    pub ino: u64,
    reader: Reader,
    /// Bytes of the (decompressed) file consumed.
    read_pos: u64,
    /// Of the first bytes (up to [`FINGERPRINT_BYTES`]) as last seen.
    fp: Fingerprint,
    framer: Framer,
    joining: Joining,
    max_bytes: usize,
    pub rows: RowWriter,
    pub state: State,
    /// Size at the last truncation check.
    last_size: u64,
    pub at_eof: bool,
    pub chunk_started: Option<Instant>,
    prefix: Vec<u8>,
}

/// What [`Tail::check_truncated`] found.
pub struct Truncated {
    /// The position before the truncation, to find the rest in a copy.
    pub before: Position,
}

pub struct Opened {
    pub file: File,
    pub dev: u64,
    pub ino: u64,
    /// None for gzip files (the decompressed length is unknown without reading it).
    pub len: Option<u64>,
    pub mtime_secs: i64,
    /// Fingerprint of the first up to [`FINGERPRINT_BYTES`] bytes (decompressed).
    pub fp: Fingerprint,
}

impl Opened {
    pub fn open(path: &Path) -> io::Result<Opened> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let mut prefix = Vec::new();
        let len = if is_gz(path) {
            let mut gz = MultiGzDecoder::new(BufReader::new(file.try_clone()?));
            read_prefix(&mut gz, FINGERPRINT_BYTES, &mut prefix)?;
            None
        } else {
            pread_prefix(&file, FINGERPRINT_BYTES, &mut prefix)?;
            Some(meta.len())
        };
        let mtime_secs = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        Ok(Opened {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            len,
            mtime_secs,
            fp: Fingerprint::of(&prefix),
        })
    }

    /// The uncompressed size a gzip file states in its trailer (modulo 4 GiB, and of its
    /// last member only): a hint that a rotated `.gz` was read to its end, which spares
    /// decompressing it at every start.
    pub fn gz_size_hint(&self) -> Option<u64> {
        let len = self.file.metadata().ok()?.len();
        let mut isize = [0u8; 4];
        self.file
            .read_exact_at(&mut isize, len.checked_sub(4)?)
            .ok()?;
        Some(u32::from_le_bytes(isize) as u64)
    }

    /// Fingerprint of the first `n` bytes.
    pub fn prefix_fp(&self, n: usize) -> Option<Fingerprint> {
        let mut buf = Vec::new();
        pread_prefix(&self.file, n, &mut buf).ok()?;
        (buf.len() == n).then(|| Fingerprint::of(&buf))
    }
}

impl Tail {
    /// Starts reading `opened` at `pos` (`None`: from the beginning), as a live file of
    /// input 0 (callers set `input` and `state`).
    pub fn start(
        path: PathBuf,
        opened: Opened,
        pos: Option<&Position>,
        joining: Joining,
        max_bytes: usize,
        mut rows: RowWriter,
    ) -> io::Result<Tail> {
        let (resume, skip) = pos.map_or((0, 0), |p| (p.resume, p.skip_until));
        let reader = if is_gz(&path) {
            // The fingerprint was read through a clone sharing this cursor.
            let mut file = opened.file;
            file.seek(SeekFrom::Start(0))?;
            let mut gz = MultiGzDecoder::new(BufReader::new(file));
            io::copy(&mut (&mut gz).take(resume), &mut io::sink())?;
            Reader::Gz(Box::new(gz))
        } else {
            Reader::Plain(opened.file)
        };
        rows.skip_until = skip;
        rows.emitted_end = resume;
        rows.parse_ctx.reference_unix_secs = opened.mtime_secs;
        Ok(Tail {
            path,
            input: 0,
            dev: opened.dev,
            ino: opened.ino,
            reader,
            read_pos: resume,
            fp: opened.fp,
            framer: Framer::new(joining.clone(), max_bytes, resume),
            joining,
            max_bytes,
            rows,
            state: State::Live,
            last_size: opened.len.unwrap_or(0),
            at_eof: false,
            chunk_started: None,
            prefix: Vec::new(),
        })
    }

    /// Reads one block and turns it into rows; `Ok(0)` at the end of the file.
    pub fn read_block(&mut self, buf: &mut [u8], now: Instant) -> io::Result<usize> {
        let n = match &mut self.reader {
            Reader::Plain(f) => f.read_at(buf, self.read_pos)?,
            Reader::Gz(gz) => gz.read(buf)?,
        };
        self.at_eof = n == 0;
        if n == 0 {
            return Ok(0);
        }
        self.read_pos += n as u64;
        let rows = &mut self.rows;
        self.framer.push(&buf[..n], now, &mut |r| rows.append(r));
        self.chunk_started.get_or_insert(now);
        Ok(n)
    }

    /// Archives open records older than `timeout` (and an unterminated line older than
    /// `partial_line`).
    pub fn expire(&mut self, now: Instant, timeout: Duration, partial_line: Option<Duration>) {
        let rows = &mut self.rows;
        let before = rows.builder.len();
        self.framer
            .expire(now, timeout, partial_line, &mut |r| rows.append(r));
        if rows.builder.len() > before {
            self.chunk_started.get_or_insert(now);
        }
    }

    /// Archives everything still open (`partial_line`: also an unterminated last line).
    pub fn flush_open(&mut self, now: Instant, partial_line: bool) {
        let rows = &mut self.rows;
        self.framer
            .flush(now, partial_line, &mut |r| rows.append(r));
        self.chunk_started.get_or_insert(now);
    }

    /// Whether the path now names another file, or none.
    pub fn path_moved_on(&self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(m) => (m.dev(), m.ino()) != (self.dev, self.ino),
            Err(_) => true,
        }
    }

    /// Detects truncation in place: the file is shorter than what we read, or its first
    /// bytes changed. Starts over at its beginning and returns where we were.
    pub fn check_truncated(&mut self) -> io::Result<Option<Truncated>> {
        let Reader::Plain(f) = &self.reader else {
            return Ok(None);
        };
        let meta = f.metadata()?;
        let size = meta.len();
        if size == self.last_size {
            return Ok(None);
        }
        self.last_size = size;
        if let Ok(mtime) = meta.modified()
            && let Ok(d) = mtime.duration_since(UNIX_EPOCH)
        {
            self.rows.parse_ctx.reference_unix_secs = d.as_secs() as i64;
        }
        let rewritten = size < self.read_pos || {
            pread_prefix(f, self.fp.len, &mut self.prefix)?;
            Fingerprint::of(&self.prefix) != self.fp
        };
        if !rewritten {
            return Ok(None);
        }
        let before = self.position();
        self.read_pos = 0;
        self.framer = Framer::new(self.joining.clone(), self.max_bytes, 0);
        self.rows.skip_until = 0;
        self.rows.emitted_end = 0;
        self.fp = Fingerprint::of(b"");
        self.refresh_fp();
        Ok(Some(Truncated { before }))
    }

    fn refresh_fp(&mut self) {
        if self.fp.is_full() {
            return;
        }
        if let Reader::Plain(f) = &self.reader
            && pread_prefix(f, FINGERPRINT_BYTES, &mut self.prefix).is_ok()
        {
            self.fp = Fingerprint::of(&self.prefix);
        }
    }

    /// Where this file stands: the first byte not part of an archived (or batched) row.
    pub fn position(&self) -> Position {
        Position {
            resume: self.framer.resume_offset(),
            skip_until: self.rows.skip_until.max(self.rows.emitted_end),
            fp: self.fp,
            dev: self.dev,
            ino: self.ino,
            path: self.path.display().to_string(),
        }
    }

    /// Whether no name is left for the file (deleted, or rotated away and compressed):
    /// nothing can lead to it again, so its checkpoints can be forgotten once it is done.
    pub fn unlinked(&self) -> bool {
        let f = match &self.reader {
            Reader::Plain(f) => f,
            Reader::Gz(gz) => gz.get_ref().get_ref(),
        };
        f.metadata().is_ok_and(|m| m.nlink() == 0)
    }

    /// Chunks without rows that forget this file's checkpoints (an empty value is a
    /// tombstone in the spool), sent after its last rows, so that the checkpoints of files
    /// that come and go (containers, rotated-and-deleted logs) do not pile up forever.
    pub fn forget_chunks(&mut self) -> Vec<Chunk> {
        self.position()
            .keys()
            .into_iter()
            .map(|key| Chunk {
                batch: self.rows.builder.finish(),
                checkpoint: Some(Checkpoint {
                    key,
                    value: String::new(),
                }),
            })
            .collect()
    }

    /// The rows batched so far with the position after them, if there are any.
    pub fn take_chunk(&mut self) -> Option<Chunk> {
        if self.rows.builder.is_empty() {
            return None;
        }
        self.refresh_fp();
        let pos = self.position();
        self.chunk_started = None;
        Some(Chunk {
            batch: self.rows.builder.finish(),
            checkpoint: Some(Checkpoint {
                key: pos.key(),
                value: pos.encode(),
            }),
        })
    }
}

/// The first up to `n` bytes of a file, by offset (the file's cursor is not used).
fn pread_prefix(f: &File, n: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    buf.resize(n, 0);
    let mut got = 0;
    while got < n {
        match f.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(())
}
