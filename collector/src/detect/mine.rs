//! `infra-collector mine`: the templates of log files, so users can see what templates
//! their logs have and accuracy can be measured on any labelled log. Prints CSV
//! `line,template_id,template`, one row per input line in input order (the template's
//! text once every line is mined), and a summary to stderr.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::miner::{Miner, MinerConfig};
use super::state::TemplateState;
use crate::lines::LineReader;
use crate::parse::{Format, ParseContext, parse_line};

/// What part of each line is mined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MineFormat {
    /// The message of a syslog or kmsg line, detected per line.
    Auto,
    Rfc3164,
    Rfc5424,
    /// The whole line.
    Raw,
}

#[derive(Debug, Default)]
pub struct MineSummary {
    pub lines: u64,
    pub templates: usize,
    pub evicted: u64,
}

/// Mines `files` in order and writes the CSV to `out`. With `state`, the miner starts
/// from (and saves to) that directory, as the collector's does.
pub fn mine_files(
    files: &[PathBuf],
    format: MineFormat,
    state: Option<&Path>,
    out: &mut impl Write,
) -> Result<MineSummary> {
    let mut miner = Miner::new(MinerConfig::default());
    let mut saved = match state {
        Some(dir) => Some(TemplateState::open(dir, &mut miner)?),
        None => None,
    };
    let ctx = ParseContext {
        reference_unix_secs: crate::time::now_ns() / 1_000_000_000,
        utc_offset_secs: 0,
        boot_unix_ns: None,
    };
    let mut ids = Vec::new();
    for path in files {
        let f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut lines = LineReader::new(
            BufReader::with_capacity(1 << 20, f),
            crate::batch::DEFAULT_MAX_MESSAGE_BYTES,
        );
        while let Some(line) = lines
            .next_line()
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            let message = match format {
                MineFormat::Raw => line.bytes,
                MineFormat::Auto => parse_line(Format::Auto, line.bytes, &ctx).message,
                MineFormat::Rfc3164 => parse_line(Format::Rfc3164, line.bytes, &ctx).message,
                MineFormat::Rfc5424 => parse_line(Format::Rfc5424, line.bytes, &ctx).message,
            };
            ids.push(miner.add(message, 0));
        }
    }
    if let Some(st) = saved.as_mut() {
        st.append(&miner.take_changes())?;
        st.snapshot(&miner)?;
    }
    writeln!(out, "line,template_id,template")?;
    for (i, id) in ids.iter().enumerate() {
        let text = miner.get(*id).map(|t| t.text()).unwrap_or_default();
        writeln!(out, "{},{id},\"{}\"", i + 1, text.replace('"', "\"\""))?;
    }
    Ok(MineSummary {
        lines: ids.len() as u64,
        templates: miner.len(),
        evicted: miner.evicted,
    })
}
