//! The interactive shell: rustyline with persistent history and completion, statements
//! spanning lines until `;`, long results paged, and meta commands.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::prelude::SessionContext;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use crate::OutputFormat;
use crate::complete::{ShellHelper, Vocabulary};
use crate::output::Display;

const PROMPT: &str = "infra> ";
const CONTINUATION: &str = "   ...> ";

const HELP: &str = "\
SQL statements end with ';' and may span lines. Tab completes keywords, tables,
columns and extra['…'] keys. Tables: logs, stats, templates (\\d lists them); time
windows: logs_since('24h'), logs_between('2026-03-01', '2026-03-02'), same for each table.
  \\q                       quit (also Ctrl-D)
  \\d                       list tables
  \\d NAME                  describe a table
  \\format table|csv|json   set the output format
  \\timing [on|off]         show elapsed time after each statement
  \\chart [FILE.png|.svg]   draw the last result here, or into a file
  \\o [FILE]                write results to FILE; without FILE, back to the screen
  \\pager [on|off]          page long results through $PAGER (default less -FRSX)
  \\tz [ZONE]               show times in ZONE (UTC, Europe/Berlin, +02:00)
  \\?                       this help
Ctrl-C clears the current line, or cancels a running query.";

/// Where the history is kept: `$XDG_STATE_HOME/infra-query/history` when
/// `XDG_STATE_HOME` is set, else `$HOME/.infra_query_history`; `None` without either.
pub fn history_path() -> Option<PathBuf> {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(state).join("infra-query").join("history"));
    }
    std::env::var_os("HOME")
        .filter(|s| !s.is_empty())
        .map(|home| PathBuf::from(home).join(".infra_query_history"))
}

/// What a meta command asks the shell to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Meta {
    Quit,
    /// Run this SQL and print its result.
    Sql(String),
    /// Describe this table: its columns, then its partition columns.
    Describe(String),
    /// Draw the last result in the terminal, or into this file.
    Chart(Option<PathBuf>),
    /// Print this message.
    Message(String),
}

/// Shell state: the session, the output format and the other `\` settings.
pub struct Shell {
    ctx: SessionContext,
    format: OutputFormat,
    timing: bool,
    display: Display,
    pager: bool,
    output: Option<PathBuf>,
    last: Option<Vec<RecordBatch>>,
    vocabulary: Arc<Mutex<Vocabulary>>,
}

impl Shell {
    pub fn new(ctx: SessionContext, format: OutputFormat) -> Self {
        Self {
            ctx,
            format,
            timing: true,
            display: Display::default(),
            pager: true,
            output: None,
            last: None,
            vocabulary: Arc::default(),
        }
    }

    pub fn with_display(mut self, display: Display) -> Self {
        self.display = display;
        self
    }

    pub fn format(&self) -> OutputFormat {
        self.format
    }

    pub fn timing(&self) -> bool {
        self.timing
    }

    /// Interprets a meta command line (starting with `\`).
    pub fn meta(&mut self, line: &str) -> Result<Meta> {
        let line = line.trim().trim_end_matches(';').trim();
        let mut words = line.split_whitespace();
        let command = words.next().unwrap_or_default();
        let arg = words.next();
        if words.next().is_some() {
            bail!("too many arguments to {command}");
        }
        let on_off = |arg: Option<&str>, current: bool, what: &str| -> Result<bool> {
            Ok(match arg {
                None => !current,
                Some("on") => true,
                Some("off") => false,
                Some(other) => bail!("{what} takes on or off, not {other:?}"),
            })
        };
        Ok(match (command, arg) {
            ("\\q" | "\\quit", None) => Meta::Quit,
            ("\\d", None) => Meta::Sql(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables \
                 WHERE table_schema <> 'information_schema' ORDER BY table_schema, table_name"
                    .into(),
            ),
            ("\\d", Some(table)) => Meta::Describe(table.to_string()),
            ("\\format", None) => Meta::Message(format!("format is {}", self.format)),
            ("\\format", Some(f)) => {
                self.format = f.parse()?;
                Meta::Message(format!("format is {}", self.format))
            }
            ("\\timing", arg) => {
                self.timing = on_off(arg, self.timing, "\\timing")?;
                Meta::Message(format!(
                    "timing is {}",
                    if self.timing { "on" } else { "off" }
                ))
            }
            ("\\pager", arg) => {
                self.pager = on_off(arg, self.pager, "\\pager")?;
                Meta::Message(format!(
                    "pager is {}",
                    if self.pager { "on" } else { "off" }
                ))
            }
            ("\\tz", None) => Meta::Message(format!("times are shown in {}", self.display.tz())),
            ("\\tz", Some(zone)) => {
                self.display = Display::new(Some(zone))?;
                Meta::Message(format!("times are shown in {}", self.display.tz()))
            }
            ("\\o", None) => {
                self.output = None;
                Meta::Message("results go to the screen".into())
            }
            ("\\o", Some(path)) => {
                // Truncated now, so each statement after appends its result.
                std::fs::File::create(path).with_context(|| format!("cannot create {path}"))?;
                self.output = Some(PathBuf::from(path));
                Meta::Message(format!("results go to {path}"))
            }
            ("\\chart", file) => Meta::Chart(file.map(PathBuf::from)),
            ("\\?" | "\\h" | "\\help", None) => Meta::Message(HELP.into()),
            _ => bail!("unknown command {line:?}; \\? lists the commands"),
        })
    }

    /// Runs the statements of `sql` one after another, printing each result (to the
    /// screen, paged when long, or to the `\o` file) and a row count (and, with timing
    /// on, the elapsed time) to stderr. Stops at the first error. Ctrl-C cancels the
    /// running statement.
    pub async fn run(&mut self, sql: &str) -> Result<()> {
        let statements =
            crate::parse_statements(&self.ctx, sql).map_err(|e| crate::with_position(e, sql))?;
        for statement in statements {
            let start = Instant::now();
            let batches = tokio::select! {
                b = crate::run_statement(&self.ctx, statement) => b.map_err(|e| crate::with_position(e, sql))?,
                _ = tokio::signal::ctrl_c() => bail!("query cancelled"),
            };
            let elapsed = start.elapsed();
            let has_columns = batches
                .first()
                .is_some_and(|b| !b.schema().fields().is_empty());
            let rows = if has_columns {
                let mut text = Vec::new();
                let n = crate::output::write_batches_with(
                    &mut text,
                    &batches,
                    self.format,
                    &self.display,
                )?;
                self.show(&text)?;
                self.last = Some(batches);
                Some(n)
            } else {
                None
            };
            eprintln!("{}", self.status(rows, elapsed));
        }
        Ok(())
    }

    /// Writes one result: to the `\o` file, through the pager when it is longer than
    /// the terminal, or to stdout.
    fn show(&self, text: &[u8]) -> Result<()> {
        if let Some(path) = &self.output {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            f.write_all(text)?;
            return Ok(());
        }
        let stdout = std::io::stdout();
        let lines = text.iter().filter(|&&b| b == b'\n').count();
        if self.pager && stdout.is_terminal() && lines + 2 > terminal_rows() {
            match page(text) {
                Ok(()) => return Ok(()),
                Err(e) => eprintln!("pager: {e:#}; printing instead"),
            }
        }
        let mut out = stdout.lock();
        out.write_all(text)?;
        out.flush()?;
        Ok(())
    }

    fn status(&self, rows: Option<usize>, elapsed: Duration) -> String {
        let what = match rows {
            None => "OK".to_string(),
            Some(1) => "1 row".to_string(),
            Some(n) => format!("{n} rows"),
        };
        if self.timing {
            format!("{what} ({})", format_elapsed(elapsed))
        } else {
            what
        }
    }

    async fn describe(&mut self, table: &str) -> Result<()> {
        self.run(&format!("DESCRIBE {table}")).await?;
        let partitions: Vec<&str> = infralog_schemas::PARTITION_COLUMNS.to_vec();
        if infralog_schemas::tables().iter().any(|t| t.name == table)
            || self.ctx.table_exist(table).unwrap_or(false)
        {
            let provider = self.ctx.table_provider(table).await?;
            let schema = provider.schema();
            let parts: Vec<&str> = partitions
                .into_iter()
                .filter(|p| schema.field_with_name(p).is_ok())
                .collect();
            if !parts.is_empty() {
                eprintln!(
                    "partitioned by {} (filters on them skip whole directories); time windows: \
                     {table}_since('24h'), {table}_between(from, to)",
                    parts.join(", ")
                );
            }
        }
        Ok(())
    }

    fn chart(&self, file: Option<PathBuf>) -> Result<()> {
        let Some(batches) = &self.last else {
            bail!("no result to chart yet: run a query first");
        };
        match file {
            Some(path) => {
                crate::chart::write_file(batches, &path, &self.display)?;
                eprintln!("chart written to {}", path.display());
            }
            None => {
                let data = crate::chart::ChartData::from_batches(batches, &self.display)?;
                print!("{}", crate::chart::render_text(&data, terminal_columns()));
                std::io::stdout().flush()?;
            }
        }
        Ok(())
    }

    /// Fills the completion vocabulary: tables and their columns now, the keys of
    /// `extra` found in a sample of rows in the background.
    async fn learn(&self) {
        let mut v = Vocabulary::default();
        let state = self.ctx.state();
        for name in self.ctx.catalog_names() {
            let Some(catalog) = self.ctx.catalog(&name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for table in schema.table_names() {
                    if schema_name == "information_schema" {
                        continue;
                    }
                    if let Ok(Some(t)) = schema.table(&table).await {
                        for f in t.schema().fields() {
                            v.columns.insert(f.name().clone());
                        }
                    }
                    v.tables.insert(table);
                }
            }
        }
        for name in state.table_functions().keys() {
            v.tables.insert(name.clone());
        }
        *self.vocabulary.lock().unwrap_or_else(|e| e.into_inner()) = v;
        let ctx = self.ctx.clone();
        let vocabulary = self.vocabulary.clone();
        tokio::spawn(async move {
            // A sample of rows, not the whole archive: a LIMIT stops the scan early.
            let sql = "SELECT DISTINCT k FROM (SELECT unnest(map_keys(extra)) AS k \
                       FROM (SELECT extra FROM logs LIMIT 100000)) ORDER BY k LIMIT 1000";
            if let Ok(batches) = crate::run_sql(&ctx, sql).await {
                let mut v = vocabulary.lock().unwrap_or_else(|e| e.into_inner());
                for b in &batches {
                    if let Some(keys) = b.column(0).as_string_opt::<i32>() {
                        v.extra_keys
                            .extend(keys.iter().flatten().map(str::to_string));
                    }
                }
            }
        });
    }

    /// The read-eval-print loop. Returns on `\q` or Ctrl-D.
    pub async fn interactive(mut self) -> Result<()> {
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .auto_add_history(false)
            .build();
        let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config)?;
        editor.set_helper(Some(ShellHelper {
            vocabulary: self.vocabulary.clone(),
        }));
        self.learn().await;
        let history = history_path();
        if let Some(path) = &history {
            // A missing history file is the normal first run.
            let _ = editor.load_history(path);
        }
        eprintln!("infra-query: SQL over the infralog archive. \\? for help, \\q to quit.");
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                PROMPT
            } else {
                CONTINUATION
            };
            let line = match editor.readline(prompt) {
                Ok(line) => line,
                Err(ReadlineError::Interrupted) => {
                    buffer.clear();
                    continue;
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            };
            if buffer.is_empty() && line.trim().is_empty() {
                continue;
            }
            if buffer.is_empty() && line.trim_start().starts_with('\\') {
                remember(&mut editor, &history, line.trim());
                let result = match self.meta(&line) {
                    Ok(Meta::Quit) => break,
                    Ok(Meta::Sql(sql)) => self.run(&sql).await,
                    Ok(Meta::Describe(table)) => self.describe(&table).await,
                    Ok(Meta::Chart(file)) => self.chart(file),
                    Ok(Meta::Message(m)) => {
                        eprintln!("{m}");
                        Ok(())
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    eprintln!("Error: {}", crate::error_message(&e));
                }
                continue;
            }
            if !buffer.is_empty() {
                buffer.push('\n');
            }
            buffer.push_str(&line);
            if !statement_complete(&buffer) {
                continue;
            }
            let sql = std::mem::take(&mut buffer);
            remember(&mut editor, &history, sql.trim());
            if let Err(e) = self.run(&sql).await {
                eprintln!("Error: {}", crate::error_message(&e));
            }
            let _ = std::io::stdout().flush();
        }
        Ok(())
    }
}

fn terminal_size() -> Option<(usize, usize)> {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row as usize, ws.ws_col as usize))
}

fn terminal_rows() -> usize {
    terminal_size().map_or(24, |s| s.0)
}

fn terminal_columns() -> usize {
    terminal_size().map_or(80, |s| s.1)
}

/// Shows `text` through `$PAGER` (default `less -FRSX`).
fn page(text: &[u8]) -> Result<()> {
    let pager = std::env::var("PAGER")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "less -FRSX".into());
    let mut words = pager.split_whitespace();
    let program = words.next().context("empty PAGER")?;
    let mut child = std::process::Command::new(program)
        .args(words)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {pager}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // The user may quit the pager before reading everything.
        let _ = stdin.write_all(text);
    }
    child.wait()?;
    Ok(())
}

/// Adds an entry to the history and appends it to the history file.
fn remember(
    editor: &mut Editor<ShellHelper, DefaultHistory>,
    history: &Option<PathBuf>,
    entry: &str,
) {
    if editor.add_history_entry(entry).unwrap_or(false)
        && let Some(path) = history
    {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.append_history(path);
    }
}

/// A statement is complete when its last non-blank character is `;` (outside a `--`
/// comment on the last line).
pub fn statement_complete(buffer: &str) -> bool {
    let last = buffer.lines().last().unwrap_or_default();
    let code = last.split("--").next().unwrap_or_default();
    code.trim_end().ends_with(';')
}

/// `12.3 ms`, `4.56 s`.
pub fn format_elapsed(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 1.0 {
        format!("{:.1} ms", secs * 1000.0)
    } else {
        format!("{secs:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell() -> Shell {
        Shell::new(crate::session_context().unwrap(), OutputFormat::Table)
    }

    #[test]
    fn meta_commands() {
        let mut sh = shell();
        assert_eq!(sh.meta("\\q").unwrap(), Meta::Quit);
        assert!(
            matches!(sh.meta("\\d").unwrap(), Meta::Sql(s) if s.contains("information_schema.tables"))
        );
        assert_eq!(sh.meta("\\d logs").unwrap(), Meta::Describe("logs".into()));
        sh.meta("\\format csv").unwrap();
        assert_eq!(sh.format(), OutputFormat::Csv);
        assert!(sh.meta("\\format xml").is_err());
        assert_eq!(sh.format(), OutputFormat::Csv);
        assert!(sh.timing());
        sh.meta("\\timing off").unwrap();
        assert!(!sh.timing());
        sh.meta("\\timing").unwrap();
        assert!(sh.timing());
        assert!(sh.meta("\\nope").is_err());
        assert_eq!(sh.meta("\\chart").unwrap(), Meta::Chart(None));
        assert_eq!(
            sh.meta("\\chart a.png").unwrap(),
            Meta::Chart(Some("a.png".into()))
        );
        assert!(sh.meta("\\tz Mars/Base").is_err());
        sh.meta("\\tz Europe/Berlin").unwrap();
        assert_eq!(sh.display.tz(), "Europe/Berlin");
        assert!(sh.meta("\\pager maybe").is_err());
    }

    #[test]
    fn completeness() {
        assert!(statement_complete("SELECT 1;"));
        assert!(statement_complete("SELECT 1;  "));
        assert!(statement_complete("SELECT\n 1; -- done"));
        assert!(!statement_complete("SELECT 1"));
        assert!(!statement_complete("SELECT 1 -- not yet;"));
    }

    #[test]
    fn history_location() {
        // Only reads the environment of this process; the two variables are not
        // touched by other tests.
        let path = history_path();
        if std::env::var_os("XDG_STATE_HOME").is_none() && std::env::var_os("HOME").is_some() {
            assert!(path.unwrap().ends_with(".infra_query_history"));
        }
    }

    #[test]
    fn elapsed_formatting() {
        assert_eq!(format_elapsed(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(format_elapsed(Duration::from_millis(4_560)), "4.56 s");
    }
}
