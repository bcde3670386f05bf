//! `infra-collector import`: backfills log files into the archive.
//!
//! Files are read line by line through the same parsers, batch builder, spool and archiver
//! as the live sources (the spool is a private one, removed at the end); a file that
//! cannot be read is reported and skipped, the others still go in.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{Context, Result};
use crossbeam_channel::Sender;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use infralog_schemas::{extra_key, source};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::archive::compact::{CompactOptions, compact};
use crate::archive::{Archive, ArchiveReport, ArchiverOptions};
use crate::batch::{LogBatchBuilder, Row};
use crate::chunk::Chunk;
use crate::lines::LineReader;
use crate::parse::{Format, ParseContext, parse_line};
use crate::pipeline::Pipeline;
use crate::spool::SpoolOptions;
use crate::time::{NANOS_PER_SEC, boot_unix_ns, now_ns};

/// Bytes of rows an import's archiver may hold waiting to make row groups.
const IMPORT_PENDING_BUDGET: usize = 64 << 20;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: Format,
    /// Hostname for lines that do not state one.
    pub hostname: String,
    /// Offset of the writers' local time from UTC, for timestamps that carry no zone
    /// (RFC 3164).
    pub utc_offset_secs: i32,
    pub archive: String,
    pub s3: infralog_store::S3Settings,
    pub chunk_rows: usize,
    pub max_message_bytes: usize,
    pub archiver: ArchiverOptions,
    /// The private spool; its directory must not exist yet, and is removed at the end.
    pub spool: SpoolOptions,
    /// Merge each host-day's files into one at the end (as the collector does once a day
    /// is over).
    pub compact: bool,
    /// Draw a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
    /// Fill `template_id` with the template miner.
    pub templates: bool,
    /// Detect anomalies in the imported history (needs `templates`): the `anomalies`
    /// table, judged on the lines' event time as live collection would have.
    pub anomalies: Option<crate::detect::DetectorConfig>,
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub lines: u64,
    pub bytes: u64,
    pub parse_errors: u64,
    pub truncated: u64,
    pub files_imported: usize,
    /// Files that could not be read, with the reason.
    pub failed: Vec<(PathBuf, String)>,
    pub archive: ArchiveReport,
    /// Files after compaction (equal to `archive.files` without it).
    pub files_after_compaction: u64,
    pub elapsed: Duration,
    /// Of `elapsed`, the time compaction took.
    pub compaction: Duration,
}

pub fn import(files: &[PathBuf], opts: &ImportOptions) -> Result<ImportReport> {
    let started = Instant::now();
    let archive = Archive::open_with(&opts.archive, &opts.s3)?;
    anyhow::ensure!(
        !opts.spool.dir.exists(),
        "import spool {} exists already",
        opts.spool.dir.display()
    );
    // Imported files are read whole: the miner needs no saved state to resume.
    let miner = opts.templates.then(|| crate::detect::MinerOptions {
        config: crate::detect::MinerConfig::default(),
        state_dir: None,
        table: Some(crate::detect::stage::TableTarget {
            archive: opts.archive.clone(),
            s3: opts.s3.clone(),
            hostname: opts.hostname.clone(),
        }),
        detect: opts.anomalies.map(|config| crate::detect::DetectOptions {
            config,
            state_dir: None,
            alerts: None,
            live: false,
        }),
    });
    // An import's segment spans many host-days at once: a bigger budget for rows waiting
    // to make a row group keeps its row groups (and their dictionaries) large.
    let archiver = ArchiverOptions {
        pending_budget: opts.archiver.pending_budget.max(IMPORT_PENDING_BUDGET),
        ..opts.archiver
    };
    let pipeline = Pipeline::start_mining(
        opts.spool.clone(),
        archive,
        archiver,
        Arc::new(AtomicBool::new(false)),
        miner,
    )?;
    let tx = pipeline.chunks.clone();
    let instance = pipeline.instance.clone();

    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = progress_bar(total, opts.progress);
    let mut report = ImportReport::default();
    let mut builder = LogBatchBuilder::with_max_message(opts.chunk_rows, opts.max_message_bytes);
    let mut result = Ok(());
    for path in files {
        match import_file(path, opts, &mut builder, &mut report, &tx, &bar) {
            Ok(bytes) => {
                report.files_imported += 1;
                report.bytes += bytes;
            }
            Err(FileError::Read(e)) => {
                let why = format!("{e:#}");
                bar.suspend(|| eprintln!("error: {why}"));
                report.failed.push((path.clone(), why));
            }
            Err(FileError::Pipeline(e)) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() && !builder.is_empty() {
        result = send(&tx, &mut builder);
    }
    drop(tx);
    let archived = pipeline.finish();
    bar.finish_and_clear();
    result?;
    report.archive = archived?;
    report.files_after_compaction = report.archive.files;
    if opts.compact {
        let t = Instant::now();
        let archive = Archive::open_with(&opts.archive, &opts.s3)?;
        let copts = CompactOptions {
            encode: opts.archiver.encode,
            ..CompactOptions::default()
        };
        // Every segment is archived and every day counts as over; a partition with more
        // files than one merge takes is merged again until it is one file.
        loop {
            let r = compact(&archive, &instance, u64::MAX, i32::MAX, &copts)?;
            if r.merged.is_empty() {
                break;
            }
            report.files_after_compaction -= r.deleted as u64 - r.merged.len() as u64;
        }
        report.compaction = t.elapsed();
    }
    std::fs::remove_dir_all(&opts.spool.dir).with_context(|| {
        format!(
            "cannot remove the import spool {}",
            opts.spool.dir.display()
        )
    })?;
    report.elapsed = started.elapsed();
    Ok(report)
}

enum FileError {
    /// This file could not be read: report it and go on with the others.
    Read(anyhow::Error),
    /// The archive writer failed: nothing more can be imported.
    Pipeline(anyhow::Error),
}

fn import_file(
    path: &Path,
    opts: &ImportOptions,
    builder: &mut LogBatchBuilder,
    report: &mut ImportReport,
    tx: &Sender<Chunk>,
    bar: &ProgressBar,
) -> Result<u64, FileError> {
    let read_err = |e: std::io::Error| {
        FileError::Read(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
    };
    let file = File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_dir() {
        return Err(FileError::Read(anyhow::anyhow!(
            "cannot read {}: is a directory",
            path.display()
        )));
    }
    // The file was last written after its last line: RFC 3164 years are inferred so that
    // no line lies after it.
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or_else(|| now_ns() / NANOS_PER_SEC, |d| d.as_secs() as i64);
    let ctx = ParseContext {
        reference_unix_secs: mtime,
        utc_offset_secs: opts.utc_offset_secs,
        boot_unix_ns: Some(boot_unix_ns()),
    };
    let path_text = path.display().to_string();
    let mut lines = LineReader::new(
        BufReader::with_capacity(1 << 20, file),
        opts.max_message_bytes,
    );
    let mut reported = 0u64;
    let ingested_at = now_ns();
    loop {
        let line = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => return Err(read_err(e)),
        };
        let rec = parse_line(opts.format, line.bytes, &ctx);
        let mut row = Row::from_record(&rec, source::FILE, opts.hostname.as_bytes(), ingested_at);
        row.original_len = line.original_len;
        report.lines += 1;
        report.parse_errors += rec.error.is_some() as u64;
        report.truncated += line.original_len.is_some() as u64;
        builder.append(&row, ingested_at, |extra| {
            extra.put(extra_key::FILE_PATH, path_text.as_bytes());
            extra.put_parsed(&rec);
        });
        if builder.len() >= opts.chunk_rows {
            send(tx, builder).map_err(FileError::Pipeline)?;
            let consumed = lines.consumed();
            bar.inc(consumed - reported);
            reported = consumed;
        }
    }
    bar.inc(lines.consumed() - reported);
    Ok(lines.consumed())
}

fn send(tx: &Sender<Chunk>, builder: &mut LogBatchBuilder) -> Result<()> {
    tx.send(Chunk {
        batch: builder.finish(),
        checkpoint: None,
    })
    .context("the archive writer stopped")
}

fn progress_bar(total: u64, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    bar
}
