//! `infra-query`: SQL over the infralog archive.
//!
//! ```text
//! infra-query [--archive DIR|URL] [-c SQL]... [-f FILE]... [--format table|csv|json]
//!             [--tz ZONE] [--chart FILE.png|svg] [-o FILE]
//! infra-query serve --pg [HOST:]PORT --password-file FILE [--pg-user NAME]
//! infra-query serve --http [HOST:]PORT [--token-file FILE]
//! infra-query report [--since 24h] [--host H] [--html FILE]
//! ```
//! With `-c` or `-f` the statements run in order (all `-c` first, then the files) and the
//! first error stops with exit code 1; without either, an interactive shell starts.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use infralog_query::repl::Shell;
use infralog_query::{ArchiveLocation, OutputFormat, SpoolChoice};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "infra-query", version, about = "SQL over the infralog archive")]
struct Args {
    #[command(subcommand)]
    command_name: Option<Command>,
    /// Archive root: a directory or a URL (file://…, s3://bucket/prefix).
    #[arg(
        long,
        env = "INFRALOG_ARCHIVE",
        default_value = "./data",
        global = true
    )]
    archive: String,
    /// A collector's spool whose rows, not yet archived, are part of `logs`. Default:
    /// `<archive>/state/spool` when the archive is local and that directory exists.
    #[arg(
        long,
        env = "INFRALOG_SPOOL",
        value_name = "DIR",
        conflicts_with = "no_spool",
        global = true
    )]
    spool: Option<PathBuf>,
    /// Read the archive only, not a spool.
    #[arg(long, global = true)]
    no_spool: bool,
    /// Show times in this zone (`UTC`, `Europe/Berlin`, `+02:00`); default UTC.
    #[arg(long, env = "INFRALOG_TZ", global = true)]
    tz: Option<String>,
    /// Run this SQL (several `;`-separated statements allowed); may be repeated.
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    command: Vec<String>,
    /// Run the `;`-separated statements of this file; may be repeated.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Write results to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Also draw the last result as a chart into this file (.png or .svg).
    #[arg(long, value_name = "FILE")]
    chart: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the archive read-only: over the PostgreSQL wire protocol (`--pg`), as the
    /// web console and its HTTP API (`--http`), or both.
    #[command(group(clap::ArgGroup::new("listener").required(true).multiple(true).args(["pg", "http"])))]
    Serve {
        /// Listen here: `PORT`, `:PORT` (loopback) or `HOST:PORT`.
        #[arg(long, value_name = "[HOST:]PORT", requires = "password_file")]
        pg: Option<String>,
        /// The password clients give (the file's first line).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// The web console: listen here (`PORT` and `:PORT` mean loopback).
        #[arg(long, value_name = "[HOST:]PORT")]
        http: Option<String>,
        /// The token the console's clients send (the file's first line); required when
        /// `--http` listens beyond loopback.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// The user name clients log in as.
        #[arg(long, default_value = infralog_query::pg::DEFAULT_USER)]
        pg_user: String,
    },
    /// The morning overview: lines per hour by severity, top hosts, processes and error
    /// templates, new templates, anomalies, parse errors and drops.
    Report {
        /// The window, e.g. 24h, 7d.
        #[arg(long, default_value = "24h")]
        since: String,
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Write one self-contained HTML file (charts embedded) instead of text.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
}

impl Args {
    fn spool(&self) -> SpoolChoice {
        match (&self.spool, self.no_spool) {
            (_, true) => SpoolChoice::Off,
            (Some(dir), false) if !dir.as_os_str().is_empty() => SpoolChoice::Dir(dir.clone()),
            _ => SpoolChoice::Beside,
        }
    }
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
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(sink);
    let display = infralog_query::output::Display::new(args.tz.as_deref())?;
    let mut last = None;
    for (origin, sql) in scripts {
        let result = async {
            let statements = infralog_query::parse_statements(ctx, &sql)?;
            for statement in statements {
                if args.chart.is_some() {
                    let batches = infralog_query::run_statement(ctx, statement).await?;
                    infralog_query::output::write_batches_with(
                        &mut out,
                        &batches,
                        args.format,
                        &display,
                    )?;
                    last = Some(batches);
                } else {
                    infralog_query::print_statement_with(
                        ctx,
                        statement,
                        args.format,
                        &display,
                        &mut out,
                    )
                    .await?;
                }
            }
            anyhow::Ok(())
        }
        .await
        .map_err(|e| infralog_query::with_position(e, &sql));
        match origin {
            Some(file) => result.with_context(|| format!("in {file}"))?,
            None => result?,
        }
    }
    out.flush()?;
    if let (Some(path), Some(batches)) = (&args.chart, last) {
        infralog_query::chart::write_file(&batches, path, &display)?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    let location = ArchiveLocation::parse(&args.archive)?;
    let ctx = infralog_query::open_location(&location, &args.spool()).await?;
    match &args.command_name {
        Some(Command::Serve {
            pg,
            password_file,
            pg_user,
            http,
            token_file,
        }) => {
            let http = match http {
                Some(addr) => {
                    let opts = infralog_query::http::HttpOptions {
                        addr: infralog_query::pg::parse_addr(addr).map_err(|_| {
                            anyhow::anyhow!(
                                "--http {addr:?} is not an address: write 8080, :8080 or \
                                 127.0.0.1:8080"
                            )
                        })?,
                        token: token_file
                            .as_deref()
                            .map(infralog_query::pg::read_password_file)
                            .transpose()?,
                    };
                    // Refused before anything listens.
                    opts.check()?;
                    Some(opts)
                }
                None => None,
            };
            let pg = match (pg, password_file) {
                (Some(addr), Some(file)) => Some(infralog_query::pg::PgOptions {
                    addr: infralog_query::pg::parse_addr(addr)?,
                    user: pg_user.clone(),
                    password: infralog_query::pg::read_password_file(file)?,
                }),
                _ => None,
            };
            let serve_pg = async {
                match &pg {
                    Some(opts) => infralog_query::pg::serve(ctx.clone(), opts).await,
                    None => std::future::pending().await,
                }
            };
            let serve_http = async {
                match &http {
                    Some(opts) => infralog_query::http::serve(ctx.clone(), opts).await,
                    None => std::future::pending().await,
                }
            };
            tokio::try_join!(serve_pg, serve_http).map(|_| ())
        }
        Some(Command::Report { since, host, html }) => {
            let display = infralog_query::output::Display::new(args.tz.as_deref())?;
            let report =
                infralog_query::report::Report::gather(&ctx, since, host.as_deref(), &display)
                    .await?;
            match html {
                Some(path) => {
                    std::fs::write(path, report.html()?)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("report written to {}", path.display());
                }
                None => print!("{}", report.text()),
            }
            Ok(())
        }
        None if args.command.is_empty() && args.file.is_empty() => {
            let display = infralog_query::output::Display::new(args.tz.as_deref())?;
            Shell::new(ctx, args.format)
                .with_display(display)
                .interactive()
                .await
        }
        None => run_batch(&ctx, &args).await,
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
