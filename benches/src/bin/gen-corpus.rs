//! Writes the synthetic RFC 3164 corpus (see `infralog_benches::corpus`).
//!
//! `gen-corpus [--lines N] [--seed S] [--days D] [--out FILE | --dir DIR] [--templates DIR]`

use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use infralog_benches::corpus::{self, Model};

#[derive(Parser)]
#[command(about = "Write a realistic RFC 3164 syslog corpus from the loghub templates")]
struct Args {
    /// Number of lines.
    #[arg(long, default_value_t = corpus::DEFAULT_LINES)]
    lines: u64,
    /// PRNG seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = corpus::DEFAULT_SEED)]
    seed: u64,
    /// Days the timestamps span (about).
    #[arg(long, default_value_t = corpus::DEFAULT_DAYS)]
    days: f64,
    /// Output file; `-` for stdout. Default: `<dir>/syslog-<lines>-<seed>.log`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Directory of the default output file.
    #[arg(long, default_value_os_t = corpus::default_corpus_dir())]
    dir: PathBuf,
    /// The loghub-2k directory (default `$INFRALOG_LOGHUB` or `../shared/data/loghub-2k`).
    #[arg(long, default_value_os_t = corpus::default_templates_dir())]
    templates: PathBuf,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let started = Instant::now();
    let model = Model::load(&a.templates)?;
    let stats = if a.out.as_deref() == Some("-".as_ref()) {
        let stdout = std::io::stdout().lock();
        corpus::write_corpus(&model, a.seed, a.lines, a.days, &mut BufWriter::new(stdout))?
    } else {
        let path = a
            .out
            .unwrap_or_else(|| corpus::corpus_path(&a.dir, a.lines, a.seed));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let s = corpus::write_corpus(&model, a.seed, a.lines, a.days, &mut w)?;
        eprintln!("wrote {}", path.display());
        s
    };
    eprintln!(
        "{} lines, {} bytes ({:.1} bytes/line), {:.1} days, {} templates, {:.2} s",
        stats.lines,
        stats.bytes,
        stats.bytes as f64 / stats.lines.max(1) as f64,
        stats.span_secs / 86_400.0,
        model.template_count(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
