//! `infra-query`: SQL over the infralog archive.
//!
//! ```text
//! infra-query [--archive DIR|URL] [-c SQL]... [-f FILE]... [--format table|csv|json]
//! ```
//! With `-c` or `-f` the statements run in order (all `-c` first, then the files) and the
//! first error stops with exit code 1; without either, an interactive shell starts.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use infralog_query::OutputFormat;
use infralog_query::repl::Shell;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "infra-query", version, about = "SQL over the infralog archive")]
struct Args {
    /// Archive root: a directory or a URL (file://…).
    #[arg(long, env = "INFRALOG_ARCHIVE", default_value = "./data")]
    archive: String,
    /// Run this SQL (several `;`-separated statements allowed); may be repeated.
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    command: Vec<String>,
    /// Run the `;`-separated statements of this file; may be repeated.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.to_string().contains("Broken pipe")
    })
}

async fn run_batch(ctx: &datafusion::prelude::SessionContext, args: &Args) -> Result<()> {
    // (file name for error messages, SQL)
    let mut scripts: Vec<(Option<String>, String)> =
        args.command.iter().map(|sql| (None, sql.clone())).collect();
    for path in &args.file {
        let sql = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        scripts.push((Some(path.display().to_string()), sql));
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (origin, sql) in scripts {
        let result = async {
            for statement in infralog_query::parse_statements(ctx, &sql)? {
                infralog_query::print_statement(ctx, statement, args.format, &mut out).await?;
            }
            anyhow::Ok(())
        }
        .await;
        match origin {
            Some(file) => result.with_context(|| format!("in {file}"))?,
            None => result?,
        }
    }
    out.flush()?;
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    let ctx = infralog_query::open(&args.archive).await?;
    if args.command.is_empty() && args.file.is_empty() {
        Shell::new(ctx, args.format).interactive().await
    } else {
        run_batch(&ctx, &args).await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", infralog_query::error_message(&e));
            ExitCode::FAILURE
        }
    }
}
