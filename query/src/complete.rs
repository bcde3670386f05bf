//! Completion in the shell: SQL keywords, tables and table functions, columns, the keys
//! of the `extra` map (inside `extra['…`), and meta commands.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rustyline::Helper;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;

/// Keywords offered for completion (the common ones of DataFusion's SQL).
pub const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "AS",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "FULL",
    "ON",
    "USING",
    "UNION",
    "ALL",
    "WITH",
    "DESC",
    "ASC",
    "EXPLAIN",
    "ANALYZE",
    "DESCRIBE",
    "SHOW",
    "TABLES",
    "COLUMNS",
    "CREATE",
    "VIEW",
    "SET",
    "CAST",
    "INTERVAL",
    "TIMESTAMP",
    "DATE",
    "TRUE",
    "FALSE",
    "FILTER",
    "OVER",
    "PARTITION",
    "WINDOW",
    "DATE_TRUNC",
    "DATE_BIN",
    "NOW",
    "EXTRACT",
    "COALESCE",
    "REGEXP_LIKE",
    "APPROX_DISTINCT",
    "APPROX_PERCENTILE_CONT",
    "FIRST_VALUE",
    "ROW_NUMBER",
    "UNNEST",
    "MAP_KEYS",
];

/// Meta commands offered after a leading `\`.
pub const META: &[&str] = &[
    "\\q", "\\d", "\\format", "\\timing", "\\chart", "\\o", "\\pager", "\\tz", "\\?",
];

/// What can be completed; filled at start and as the shell learns more (extra keys).
#[derive(Debug, Default, Clone)]
pub struct Vocabulary {
    pub tables: BTreeSet<String>,
    pub columns: BTreeSet<String>,
    pub extra_keys: BTreeSet<String>,
}

pub struct ShellHelper {
    pub vocabulary: Arc<Mutex<Vocabulary>>,
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// The candidates for the word ending at `pos` of `line`: `(start, replacements)`.
pub fn complete(line: &str, pos: usize, vocabulary: &Vocabulary) -> (usize, Vec<String>) {
    let before = &line[..pos];
    // Inside extra['…: the key, then the closing quote and bracket.
    if let Some(open) = before.rfind("['") {
        let key = &before[open + 2..];
        let subject = before[..open].trim_end();
        if !key.contains('\'') && subject.to_ascii_lowercase().ends_with("extra") {
            let start = open + 2;
            let found = vocabulary
                .extra_keys
                .iter()
                .filter(|k| k.starts_with(key))
                .map(|k| format!("{k}']"))
                .collect();
            return (start, found);
        }
    }
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(is_word(*c) || *c == '\\'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    if word.starts_with('\\') {
        return (
            start,
            META.iter()
                .filter(|m| m.starts_with(word))
                .map(|m| m.to_string())
                .collect(),
        );
    }
    if word.is_empty() {
        return (start, Vec::new());
    }
    let after_meta_d = before.trim_start().starts_with("\\d ");
    let lower = word.to_ascii_lowercase();
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if s.to_ascii_lowercase().starts_with(&lower) && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    for t in &vocabulary.tables {
        push(t);
    }
    if !after_meta_d {
        for c in &vocabulary.columns {
            push(c);
        }
        // Keywords in the case the user types them in.
        let upper = word.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        for k in KEYWORDS {
            if upper {
                push(k);
            } else {
                push(&k.to_ascii_lowercase());
            }
        }
    }
    (start, out)
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let vocabulary = self.vocabulary.lock().unwrap_or_else(|e| e.into_inner());
        let (start, words) = complete(line, pos, &vocabulary);
        Ok((
            start,
            words
                .into_iter()
                .map(|w| Pair {
                    display: w.clone(),
                    replacement: w,
                })
                .collect(),
        ))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary {
            tables: ["logs", "logs_since", "stats", "templates"]
                .map(String::from)
                .into(),
            columns: ["hostname", "host_id", "message", "extra"]
                .map(String::from)
                .into(),
            extra_keys: ["parse_error", "peer", "file"].map(String::from).into(),
        }
    }

    #[test]
    fn words_tables_columns_keywords_and_extra_keys() {
        let v = vocabulary();
        assert_eq!(
            complete("SELECT * FROM lo", 16, &v),
            (14, vec!["logs".into(), "logs_since".into()])
        );
        assert_eq!(
            complete("SELECT hos", 10, &v),
            (7, vec!["host_id".into(), "hostname".into()])
        );
        assert_eq!(complete("SEL", 3, &v), (0, vec!["SELECT".into()]));
        assert_eq!(complete("sel", 3, &v), (0, vec!["select".into()]));
        let line = "SELECT extra['pa";
        assert_eq!(
            complete(line, line.len(), &v),
            (14, vec!["parse_error']".into()])
        );
        let line = "SELECT extra['";
        assert_eq!(complete(line, line.len(), &v).1.len(), 3);
        assert_eq!(complete("\\ti", 3, &v), (0, vec!["\\timing".into()]));
        assert_eq!(complete("\\d st", 5, &v), (3, vec!["stats".into()]));
        assert_eq!(complete("SELECT ", 7, &v), (7, vec![]));
    }
}
