//! The interactive shell: rustyline with persistent history, statements spanning lines
//! until `;`, and a few meta commands.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use datafusion::prelude::SessionContext;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::OutputFormat;

const PROMPT: &str = "infra> ";
const CONTINUATION: &str = "   ...> ";

const HELP: &str = "\
SQL statements end with ';' and may span lines. Tables: logs, stats (see \\d logs).
  \\q                       quit (also Ctrl-D)
  \\d                       list tables
  \\d NAME                  describe a table
  \\format table|csv|json   set the output format
  \\timing [on|off]         show elapsed time after each statement
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
    /// Print this message.
    Message(String),
}

/// Shell state: the session, the output format and whether to show timings.
pub struct Shell {
    ctx: SessionContext,
    format: OutputFormat,
    timing: bool,
}

impl Shell {
    pub fn new(ctx: SessionContext, format: OutputFormat) -> Self {
        Self {
            ctx,
            format,
            timing: true,
        }
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
        Ok(match (command, arg) {
            ("\\q" | "\\quit", None) => Meta::Quit,
            ("\\d", None) => Meta::Sql(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables \
                 WHERE table_schema <> 'information_schema' ORDER BY table_schema, table_name"
                    .into(),
            ),
            ("\\d", Some(table)) => Meta::Sql(format!("DESCRIBE {table}")),
            ("\\format", None) => Meta::Message(format!("format is {}", self.format)),
            ("\\format", Some(f)) => {
                self.format = f.parse()?;
                Meta::Message(format!("format is {}", self.format))
            }
            ("\\timing", arg) => {
                self.timing = match arg {
                    None => !self.timing,
                    Some("on") => true,
                    Some("off") => false,
                    Some(other) => bail!("\\timing takes on or off, not {other:?}"),
                };
                Meta::Message(format!(
                    "timing is {}",
                    if self.timing { "on" } else { "off" }
                ))
            }
            ("\\?" | "\\h" | "\\help", None) => Meta::Message(HELP.into()),
            _ => bail!("unknown command {line:?}; \\? lists the commands"),
        })
    }

    /// Runs the statements of `sql` one after another, printing each result to stdout and
    /// a row count (and, with timing on, the elapsed time) to stderr. Stops at the first
    /// error. Ctrl-C cancels the running statement.
    pub async fn run(&self, sql: &str) -> Result<()> {
        let statements = crate::parse_statements(&self.ctx, sql)?;
        for statement in statements {
            let start = Instant::now();
            let mut stdout = std::io::stdout();
            let rows = tokio::select! {
                rows = crate::print_statement(&self.ctx, statement, self.format, &mut stdout) => rows?,
                _ = tokio::signal::ctrl_c() => bail!("query cancelled"),
            };
            let elapsed = start.elapsed();
            eprintln!("{}", self.status(rows, elapsed));
        }
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

    /// The read-eval-print loop. Returns on `\q` or Ctrl-D.
    pub async fn interactive(mut self) -> Result<()> {
        let mut editor = DefaultEditor::new()?;
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
                match self.meta(&line) {
                    Ok(Meta::Quit) => break,
                    Ok(Meta::Sql(sql)) => {
                        if let Err(e) = self.run(&sql).await {
                            eprintln!("Error: {}", crate::error_message(&e));
                        }
                    }
                    Ok(Meta::Message(m)) => eprintln!("{m}"),
                    Err(e) => eprintln!("Error: {}", crate::error_message(&e)),
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

/// Adds an entry to the history and appends it to the history file.
fn remember(editor: &mut DefaultEditor, history: &Option<PathBuf>, entry: &str) {
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
        assert_eq!(
            sh.meta("\\d logs").unwrap(),
            Meta::Sql("DESCRIBE logs".into())
        );
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
