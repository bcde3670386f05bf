//! A sink's reader of the spool: the rows of sealed segments in order, from a cursor on,
//! a record at a time (never a whole segment in memory). Each slice of rows carries its
//! place in the spool, which is also each row's identity: `(segment, record, row)` never
//! changes, so a row sent again after a crash or a retry is recognisably the same row.
//!
//! Only sealed segments are read: forwarding runs at most `spool.seal_secs` behind the
//! sources (the open segment is still being written and fsynced in groups).

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arrow::record_batch::RecordBatch;
use infralog_schemas::logs_schema;

use crate::spool::release::Cursor;
use crate::spool::{list_segments, record, rows};

/// Rows `first_row..first_row + batch.num_rows()` of one record — or, once routing
/// filtered it, the rows `first_row + rows[i]`.
#[derive(Debug, Clone)]
pub struct Slice {
    pub seq: u64,
    pub record: u64,
    pub first_row: u64,
    pub batch: RecordBatch,
    pub rows: Option<std::sync::Arc<[u32]>>,
}

impl Slice {
    /// The index in its record of row `i` of the batch: part of the row's identity.
    pub fn row(&self, i: usize) -> u64 {
        self.first_row + self.rows.as_ref().map_or(i as u64, |r| r[i] as u64)
    }

    /// Only the rows where `mask` is true (`None` when none is).
    pub fn filter(self, mask: &arrow::array::BooleanArray) -> Result<Option<Slice>> {
        let keep: Vec<u32> = (0..self.batch.num_rows())
            .filter(|&i| mask.value(i))
            .map(|i| self.row(i) as u32 - self.first_row as u32)
            .collect();
        if keep.is_empty() {
            return Ok(None);
        }
        if keep.len() == self.batch.num_rows() {
            return Ok(Some(self));
        }
        let batch = arrow::compute::filter_record_batch(&self.batch, mask)?;
        Ok(Some(Slice {
            batch,
            rows: Some(keep.into()),
            ..self
        }))
    }
}

enum Source {
    /// Records read one after another.
    Stream(BufReader<File>),
    /// A damaged record was met: the whole segment, scanned as recovery does (stepping over
    /// damage), from the record index reached.
    Scanned {
        bytes: Vec<u8>,
        records: Vec<Range<usize>>,
    },
}

struct Open {
    seq: u64,
    source: Source,
    /// Index of the next record to read.
    next: u64,
    /// The rows of the record being sliced, and how far.
    current: Option<(u64, RecordBatch, u64)>,
}

pub struct SpoolReader {
    dir: PathBuf,
    /// The next row to read.
    pos: Cursor,
    open: Option<Open>,
    /// Segments found missing (skipped for this reader by its drop_oldest limit, or set
    /// aside as unreadable).
    pub skipped_segments: u64,
}

impl SpoolReader {
    pub fn new(dir: &Path, from: Cursor) -> SpoolReader {
        SpoolReader {
            dir: dir.to_path_buf(),
            pos: from,
            open: None,
            skipped_segments: 0,
        }
    }

    /// The next row to read: every row before it has been handed out.
    pub fn position(&self) -> Cursor {
        self.pos
    }

    /// Moves forward to `to` if it is ahead (the release rule moved this consumer past
    /// segments it dropped).
    pub fn skip_to(&mut self, to: Cursor) {
        if to > self.pos {
            if self.open.as_ref().is_some_and(|o| o.seq < to.seq) {
                self.open = None;
            }
            self.pos = to;
        }
    }

    /// Up to `max_rows` rows after the position, or `None` when every sealed segment is
    /// read.
    pub fn next(&mut self, max_rows: usize) -> Result<Option<Slice>> {
        loop {
            if self.open.is_none() && !self.open_next()? {
                return Ok(None);
            }
            let open = self.open.as_mut().expect("opened");
            if let Some((rec, batch, done)) = &mut open.current {
                let n = batch.num_rows() as u64;
                if *done < n {
                    let len = (n - *done).min(max_rows.max(1) as u64);
                    let slice = Slice {
                        seq: open.seq,
                        record: *rec,
                        first_row: *done,
                        batch: batch.slice(*done as usize, len as usize),
                        rows: None,
                    };
                    *done += len;
                    self.pos = if *done == n {
                        Cursor {
                            seq: open.seq,
                            record: *rec + 1,
                            row: 0,
                        }
                    } else {
                        Cursor {
                            seq: open.seq,
                            record: *rec,
                            row: *done,
                        }
                    };
                    return Ok(Some(slice));
                }
                open.current = None;
            }
            match read_record(open)? {
                Some(payload) => {
                    let index = open.next;
                    open.next += 1;
                    if index < self.pos.record {
                        continue;
                    }
                    let start = if index == self.pos.record {
                        self.pos.row
                    } else {
                        0
                    };
                    let batch = decode(&payload)
                        .with_context(|| format!("spool segment {:016x}", open.seq))?;
                    self.pos = Cursor {
                        seq: open.seq,
                        record: index + 1,
                        row: 0,
                    };
                    if let Some(b) = batch.filter(|b| b.num_rows() as u64 > start) {
                        open.current = Some((index, b, start));
                        self.pos = Cursor {
                            seq: open.seq,
                            record: index,
                            row: start,
                        };
                    }
                }
                None => {
                    self.pos = Cursor::at_segment(open.seq + 1);
                    self.open = None;
                }
            }
        }
    }

    /// Opens the lowest sealed segment at or after the position; false when there is none.
    fn open_next(&mut self) -> Result<bool> {
        let Some((seq, _, path)) = list_segments(&self.dir)?
            .into_iter()
            .find(|(seq, sealed, _)| *sealed && *seq >= self.pos.seq)
        else {
            return Ok(false);
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            // Released between the listing and the open: look again.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
        };
        if seq > self.pos.seq {
            self.skipped_segments += seq - self.pos.seq;
            tracing::warn!(
                from = self.pos.seq,
                to = seq,
                "spool segments this sink had not read are gone (dropped for it, or set aside \
                 as unreadable); going on with the next one"
            );
            self.pos = Cursor::at_segment(seq);
        }
        self.open = Some(Open {
            seq,
            source: Source::Stream(BufReader::with_capacity(1 << 20, file)),
            next: 0,
            current: None,
        });
        Ok(true)
    }
}

/// The rows of one record's payload (`None`: a checkpoint-only record).
fn decode(payload: &[u8]) -> Result<Option<RecordBatch>> {
    let p = record::parse_payload(payload)?;
    let batches = rows::decode(p.ipc)?;
    if batches.is_empty() {
        return Ok(None);
    }
    let schema = logs_schema();
    let conformed = batches
        .iter()
        .map(|b| crate::archive::conform(b, &schema))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(arrow::compute::concat_batches(&schema, &conformed)?))
}

/// The next intact record's payload, `None` at the end of the segment.
fn read_record(open: &mut Open) -> Result<Option<Vec<u8>>> {
    loop {
        match &mut open.source {
            Source::Scanned { bytes, records } => {
                return Ok(records
                    .get(open.next as usize)
                    .map(|r| bytes[r.clone()].to_vec()));
            }
            Source::Stream(file) => {
                let mut header = [0u8; record::HEADER_LEN];
                match read_full(file, &mut header)? {
                    0 => return Ok(None),
                    n if n == header.len() && header[..4] == record::MAGIC => {}
                    _ => {
                        rescan(open)?;
                        continue;
                    }
                }
                let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
                let crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
                if len > record::MAX_PAYLOAD {
                    rescan(open)?;
                    continue;
                }
                let mut payload = vec![0u8; len];
                if read_full(file, &mut payload)? != len || crc32fast::hash(&payload) != crc {
                    rescan(open)?;
                    continue;
                }
                return Ok(Some(payload));
            }
        }
    }
}

/// Switches to scanning the whole segment, as recovery does, keeping the record index.
fn rescan(open: &mut Open) -> Result<()> {
    let Source::Stream(file) = &mut open.source else {
        return Ok(());
    };
    let mut bytes = Vec::new();
    let f = file.get_mut();
    std::io::Seek::seek(f, std::io::SeekFrom::Start(0))?;
    f.read_to_end(&mut bytes)?;
    let scan = record::scan(&bytes);
    tracing::error!(
        segment = open.seq,
        damaged_bytes = scan.skipped_bytes() + (bytes.len() - scan.valid_end),
        "spool segment has damaged records; forwarding the intact ones"
    );
    open.source = Source::Scanned {
        bytes,
        records: scan.records,
    };
    Ok(())
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}
