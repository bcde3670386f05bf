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
use crate::parse::json::Known;
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
    /// JSON application log lines: the message field, as the file and net sources map it
    /// (the whole line when it is not a JSON object or has no message).
    Json,
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
    let mut json_message = Vec::new();
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
                MineFormat::Json => match crate::parse::json::parse_app(line.bytes)
                    .ok()
                    .and_then(|app| app.get(Known::Message))
                {
                    Some(v) => {
                        json_message.clear();
                        v.write_text(&mut json_message);
                        &json_message
                    }
                    None => line.bytes,
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mine_text(text: &str, format: MineFormat) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.log");
        std::fs::write(&file, text).unwrap();
        let mut out = Vec::new();
        mine_files(&[file], format, None, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn json_lines_are_mined_on_their_message_field() {
        let rows = mine_text(
            "{\"ts\":\"2026-12-07T10:00:00Z\",\"level\":\"info\",\"message\":\"user 12 logged in\",\"req\":\"a1\"}\n\
             {\"level\":\"warn\",\"msg\":\"user 4711 logged in\",\"req\":\"b2\"}\n\
             not json at all\n",
            MineFormat::Json,
        );
        assert_eq!(rows.len(), 3);
        let id = |r: &str| r.split(',').nth(1).unwrap().to_string();
        // The two messages share a template whatever the other fields say.
        assert_eq!(id(&rows[0]), id(&rows[1]));
        assert!(rows[0].ends_with(",\"user <*> logged in\""), "{rows:?}");
        // A line that is not JSON is mined whole, as the sources keep it.
        assert!(rows[2].ends_with(",\"not json at all\""), "{rows:?}");
        // Mined raw, the JSON syntax would be part of the template.
        let raw = mine_text("{\"message\":\"user 12 logged in\"}\n", MineFormat::Raw);
        assert!(raw[0].contains("message"), "{raw:?}");
    }
}
