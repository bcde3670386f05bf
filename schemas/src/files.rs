//! Archive file names, and the rule every reader of ours applies to them.
//!
//! The collector names a file after the spool segment it came from,
//! `<instance>-<seq>.parquet` (16 hex digits each), and a compacted file after the range of
//! segments it holds, `<instance>-<first>-<last>.parquet`. A file whose range lies inside a
//! wider range of the same instance, in the same partition, is already contained in that
//! wider file: readers skip it ([`covered`]). That is what lets compaction write the merged
//! file first and delete its inputs after, with no moment at which a reader following the
//! rule sees a row twice or misses one.

use std::collections::HashSet;

/// What a file's name says it holds: one collector instance's spool segments
/// `first..=last`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentRange {
    pub instance: String,
    pub first: u64,
    pub last: u64,
}

fn hex16(s: &str) -> Option<u64> {
    (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
}

/// The range of `<instance>-<seq>.parquet` or `<instance>-<first>-<last>.parquet`; `None`
/// for any other name (files of other writers, which the rule leaves alone).
pub fn parse_file_name(file_name: &str) -> Option<SegmentRange> {
    let stem = file_name.strip_suffix(".parquet")?;
    let mut parts = stem.split('-');
    let instance = parts.next()?;
    hex16(instance)?;
    let first = hex16(parts.next()?)?;
    let last = match parts.next() {
        Some(p) => hex16(p)?,
        None => first,
    };
    if parts.next().is_some() || last < first {
        return None;
    }
    Some(SegmentRange {
        instance: instance.to_string(),
        first,
        last,
    })
}

/// Of the file names of one partition, those contained in another file (their range lies
/// within a wider range of the same instance): a reader must not read them.
pub fn covered<'a>(names: impl IntoIterator<Item = &'a str>) -> HashSet<&'a str> {
    let ranges: Vec<(&str, SegmentRange)> = names
        .into_iter()
        .filter_map(|n| Some((n, parse_file_name(n)?)))
        .collect();
    ranges
        .iter()
        .filter(|(_, r)| {
            ranges.iter().any(|(_, o)| {
                o.instance == r.instance
                    && o.first <= r.first
                    && r.last <= o.last
                    && (o.first, o.last) != (r.first, r.last)
            })
        })
        .map(|(n, _)| *n)
        .collect()
}
