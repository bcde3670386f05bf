//! Retention: whole `log_date` partitions older than the TTL are deleted, in every table of
//! the archive, locally or on S3. Deleting by partition (never by row) keeps it one listing
//! and a few deletes per host-day, and a reader sees a day either whole or gone.

use anyhow::Result;

use super::{Archive, partitions};
use crate::time::format_date;

/// Tables whose partitions retention manages. A `templates` partition holds the templates
/// last seen that day: it goes with that day's logs.
pub const TABLES: &[&str] = &[
    infralog_schemas::LOGS_TABLE,
    infralog_schemas::templates::TEMPLATES_TABLE,
];

/// One partition that is (or, in a dry run, would be) deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub dir: String,
    pub objects: usize,
    pub bytes: u64,
}

/// Deletes (unless `dry_run`) every partition whose `log_date` is more than `days` days
/// before `today` (days since the epoch, UTC), and returns them. `days == 0` keeps
/// everything. Each deletion is logged.
pub fn apply(archive: &Archive, today: i32, days: u32, dry_run: bool) -> Result<Vec<Expired>> {
    let mut expired = Vec::new();
    if days == 0 {
        return Ok(expired);
    }
    let cutoff = today - days as i32;
    for table in TABLES {
        for (dir, date) in partitions(archive, table)? {
            if date >= cutoff {
                continue;
            }
            let files = archive.list_files(&dir)?;
            let e = Expired {
                objects: files.len(),
                bytes: files.iter().map(|f| f.1).sum(),
                dir,
            };
            if dry_run {
                tracing::info!(
                    partition = e.dir,
                    objects = e.objects,
                    bytes = e.bytes,
                    "retention (dry run): would delete, older than {days} days"
                );
            } else {
                for (f, _) in &files {
                    archive.delete(f)?;
                }
                tracing::info!(
                    partition = e.dir,
                    objects = e.objects,
                    bytes = e.bytes,
                    "retention: deleted, older than {days} days (cutoff {})",
                    format_date(cutoff)
                );
            }
            expired.push(e);
        }
    }
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_date;

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(
            parse_date("2026-11-29").map(format_date).as_deref(),
            Some("2026-11-29")
        );
        for bad in ["2026-1-29", "2026-13-01", "x", "", "2026-11-29x", "2026-11"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_partitions_past_the_ttl_go_and_a_dry_run_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path().to_str().unwrap()).unwrap();
        let today = parse_date("2026-11-29").unwrap();
        for (host, ago) in [("a", 100), ("a", 91), ("a", 90), ("b", 91), ("b", 0)] {
            let day = format_date(today - ago);
            for f in ["x.parquet", "y.parquet"] {
                let path = format!("logs/hostname={host}/log_date={day}/{f}");
                archive.put(&path, vec![0; 10]).unwrap();
            }
        }
        let dry = apply(&archive, today, 90, true).unwrap();
        let mut dirs: Vec<_> = dry.iter().map(|e| e.dir.clone()).collect();
        dirs.sort();
        assert_eq!(
            dirs,
            [
                "logs/hostname=a/log_date=2026-08-21",
                "logs/hostname=a/log_date=2026-08-30",
                "logs/hostname=b/log_date=2026-08-30",
            ]
        );
        assert!(dry.iter().all(|e| e.objects == 2 && e.bytes == 20));
        assert_eq!(archive.list_files("logs").unwrap().len(), 10);

        let done = apply(&archive, today, 90, false).unwrap();
        assert_eq!(done.len(), 3);
        let mut left: Vec<_> = archive
            .list_files("logs")
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "logs/hostname=a/log_date=2026-08-31/x.parquet",
                "logs/hostname=a/log_date=2026-08-31/y.parquet",
                "logs/hostname=b/log_date=2026-11-29/x.parquet",
                "logs/hostname=b/log_date=2026-11-29/y.parquet",
            ]
        );
        // No empty directories left behind to show up as partitions.
        assert!(
            !dir.path()
                .join("logs/hostname=a/log_date=2026-08-21")
                .exists()
        );
        assert_eq!(apply(&archive, today, 0, false).unwrap(), []);
    }
}
