//! The console's search syntax, translated into a SQL condition on `logs`.
//!
//! ```text
//! disk full                 both words in the message (case-insensitive)
//! "connection reset"        the phrase
//! host:web-1 unit:nginx*    a column equal to a value; `*` matches anything
//! severity>=warning         as severe as warning or more (priority 4 or lower)
//! pid>100 uid<1000          comparisons on numeric columns
//! extra.container_id:ab12   a key of the `extra` map
//! -heartbeat -host:db-2     leave these out
//! timeout OR refused        either (OR binds tighter than the space between terms)
//! ```
//!
//! [`parse`] is a pure function: every input gives a [`Search`] or a [`SearchError`] saying
//! where and why, never a panic, and every [`Search`] renders to a condition DataFusion
//! parses (the property test below checks both on random input).

use std::fmt::Write as _;

use infralog_schemas::col;

/// A parsed search: terms that must all hold; each is a disjunction of atoms.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub clauses: Vec<Vec<Atom>>,
}

/// One condition, possibly negated.
#[derive(Debug, Clone, PartialEq)]
pub struct Atom {
    pub negated: bool,
    pub test: Test,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// The message contains this text (case-insensitive).
    Contains(String),
    /// A text column (or `extra` key) equals the value; with `*`, matches the pattern.
    Text { column: Column, value: String },
    /// A numeric comparison (`severity` comparisons become `priority` ones).
    Compare {
        column: &'static str,
        op: Op,
        value: i64,
    },
}

/// A text column, or one key of the `extra` map.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Named(&'static str),
    Extra(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    /// The same comparison with its sides swapped: `a >= b` is `b <= a`.
    fn flipped(self) -> Op {
        match self {
            Op::Eq => Op::Eq,
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
        }
    }
}

/// Why a search does not parse, and where (a character offset into the input).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchError {
    pub at: usize,
    pub message: String,
}

impl std::fmt::Display for SearchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "search, at character {}: {}", self.at + 1, self.message)
    }
}

impl std::error::Error for SearchError {}

/// The fields a search may name, with their aliases.
const TEXT_FIELDS: &[(&str, &str)] = &[
    ("host", col::HOSTNAME),
    ("hostname", col::HOSTNAME),
    ("source", col::SOURCE),
    ("facility", col::FACILITY),
    ("unit", col::UNIT),
    ("process", col::PROCESS_NAME),
    ("process_name", col::PROCESS_NAME),
    ("app", col::PROCESS_NAME),
    ("user", col::USER_NAME),
    ("user_name", col::USER_NAME),
    ("message", col::MESSAGE),
    ("msg", col::MESSAGE),
];

const NUMERIC_FIELDS: &[(&str, &str)] = &[
    ("priority", col::PRIORITY),
    ("pid", col::PROCESS_ID),
    ("process_id", col::PROCESS_ID),
    ("uid", col::UID),
    ("template", col::TEMPLATE_ID),
    ("template_id", col::TEMPLATE_ID),
];

fn field_names() -> String {
    let mut names: Vec<&str> = TEXT_FIELDS.iter().map(|f| f.0).collect();
    names.extend(NUMERIC_FIELDS.iter().map(|f| f.0));
    names.push("severity");
    names.push("extra.KEY");
    names.join(", ")
}

/// The priority of a severity name (`warning`, `warn`, `err`, …) or number 0–7.
pub fn severity_priority(name: &str) -> Option<i64> {
    let p = match name.to_ascii_lowercase().as_str() {
        "emerg" | "emergency" | "panic" | "0" => 0,
        "alert" | "1" => 1,
        "crit" | "critical" | "2" => 2,
        "err" | "error" | "3" => 3,
        "warn" | "warning" | "4" => 4,
        "notice" | "5" => 5,
        "info" | "informational" | "6" => 6,
        "debug" | "7" => 7,
        _ => return None,
    };
    Some(p)
}

/// A token of the input: a leading `-` (negation) taken off, its text with quotes removed,
/// whether it began with a quote (a phrase, never a field), and where it starts.
struct Token {
    negated: bool,
    phrase: bool,
    text: String,
    at: usize,
}

/// Splits on whitespace outside double quotes; `\"` and `\\` escape inside quotes. A
/// token may be part bare, part quoted (`host:"a b"`).
fn tokens(input: &str) -> Result<Vec<Token>, SearchError> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        let mut quoted = false;
        let mut phrase = false;
        let mut negated = false;
        while let Some(&(i, c)) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '-' && i == start && chars.peek().is_some_and(|&(_, n)| !n.is_whitespace()) {
                negated = true;
                continue;
            }
            if c != '"' {
                text.push(c);
                continue;
            }
            phrase |= text.is_empty() && !quoted;
            quoted = true;
            loop {
                match chars.next() {
                    None => {
                        return Err(SearchError {
                            at: i,
                            message: "a quote is not closed".into(),
                        });
                    }
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, e)) => text.push(e),
                        None => {
                            return Err(SearchError {
                                at: i,
                                message: "a quote is not closed".into(),
                            });
                        }
                    },
                    Some((_, c)) => text.push(c),
                }
            }
        }
        out.push(Token {
            negated,
            phrase,
            text,
            at: start,
        });
    }
    Ok(out)
}

/// Splits `field<op>value` at its operator, when the part before it is a field name
/// (letters, digits, `_`, `.`), so that a URL or `a:b` inside a word stays a word.
fn split_field(text: &str) -> Option<(&str, Op, &str)> {
    let end = text.find([':', '=', '<', '>'])?;
    let (name, rest) = text.split_at(end);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return None;
    }
    let (op, len) = match rest.as_bytes() {
        [b'>', b'=', ..] => (Op::Ge, 2),
        [b'<', b'=', ..] => (Op::Le, 2),
        [b'>', ..] => (Op::Gt, 1),
        [b'<', ..] => (Op::Lt, 1),
        _ => (Op::Eq, 1),
    };
    Some((name, op, &rest[len..]))
}

fn atom(token: &Token) -> Result<Option<Atom>, SearchError> {
    let negated = token.negated;
    let body = token.text.as_str();
    let fail = |message: String| SearchError {
        at: token.at,
        message,
    };
    let field = if token.phrase {
        None
    } else {
        split_field(body).filter(|(_, op, value)| !(*op == Op::Eq && value.starts_with("//")))
    };
    let Some((name, op, value)) = field else {
        if body.is_empty() {
            return Ok(None);
        }
        return Ok(Some(Atom {
            negated,
            test: Test::Contains(body.to_string()),
        }));
    };
    let lower = name.to_ascii_lowercase();
    if value.is_empty() {
        return Err(fail(format!("{name}: a value is missing")));
    }
    let test = if lower == "severity" || lower == "level" {
        let Some(p) = severity_priority(value) else {
            return Err(fail(format!(
                "{value:?} is not a severity (emerg, alert, crit, err, warning, notice, info, debug)"
            )));
        };
        // More severe is a lower priority number: severity>=warning is priority<=4.
        Test::Compare {
            column: col::PRIORITY,
            op: op.flipped(),
            value: p,
        }
    } else if let Some(&(_, column)) = NUMERIC_FIELDS.iter().find(|f| f.0 == lower) {
        let value: i64 = value
            .parse()
            .map_err(|_| fail(format!("{name}: {value:?} is not a whole number")))?;
        Test::Compare { column, op, value }
    } else {
        let column = if let Some(key) = lower.strip_prefix("extra.") {
            if key.is_empty() {
                return Err(fail("extra.: a key is missing".into()));
            }
            Column::Extra(name["extra.".len()..].to_string())
        } else if let Some(&(_, column)) = TEXT_FIELDS.iter().find(|f| f.0 == lower) {
            Column::Named(column)
        } else {
            return Err(fail(format!(
                "unknown field {name:?}; the fields are {}",
                field_names()
            )));
        };
        if op != Op::Eq {
            return Err(fail(format!(
                "{name}: compare with ':' (only numeric fields and severity take < and >)"
            )));
        }
        if column == Column::Named(col::MESSAGE) {
            Test::Contains(value.to_string())
        } else {
            Test::Text {
                column,
                value: value.to_string(),
            }
        }
    };
    Ok(Some(Atom { negated, test }))
}

/// Parses a search (see the module comment). An empty or blank input matches everything.
pub fn parse(input: &str) -> Result<Search, SearchError> {
    let mut clauses: Vec<Vec<Atom>> = Vec::new();
    let mut join_next = false;
    let tokens = tokens(input)?;
    for (i, token) in tokens.iter().enumerate() {
        if !token.phrase && !token.negated && token.text == "OR" {
            if clauses.is_empty() || join_next || i + 1 == tokens.len() {
                return Err(SearchError {
                    at: token.at,
                    message: "OR needs a term on each side".into(),
                });
            }
            join_next = true;
            continue;
        }
        let Some(atom) = atom(token)? else {
            continue;
        };
        match clauses.last_mut() {
            Some(last) if join_next => last.push(atom),
            _ => clauses.push(vec![atom]),
        }
        join_next = false;
    }
    Ok(Search { clauses })
}

/// A SQL string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `text` as a LIKE pattern that matches it literally (`\` escapes).
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Atom {
    fn sql(&self) -> String {
        let test = match &self.test {
            Test::Contains(text) => {
                format!(
                    "{} ILIKE {}",
                    col::MESSAGE,
                    quote(&format!("%{}%", like_literal(text)))
                )
            }
            Test::Text { column, value } => {
                let column = match column {
                    Column::Named(name) => name.to_string(),
                    Column::Extra(key) => format!("{}[{}]", col::EXTRA, quote(key)),
                };
                if value.contains('*') {
                    let pattern: Vec<String> = value.split('*').map(like_literal).collect();
                    format!("{column} LIKE {}", quote(&pattern.join("%")))
                } else {
                    format!("{column} = {}", quote(value))
                }
            }
            Test::Compare { column, op, value } => format!("{column} {} {value}", op.sql()),
        };
        // A null column neither matches nor fails: `-unit:x` keeps the lines without a unit.
        if self.negated {
            format!("({test}) IS NOT TRUE")
        } else {
            format!("({test})")
        }
    }
}

impl Search {
    /// Whether it matches every line.
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// The condition as SQL on `logs`; `TRUE` for an empty search.
    pub fn to_sql(&self) -> String {
        if self.clauses.is_empty() {
            return "TRUE".into();
        }
        let mut out = String::new();
        for (i, clause) in self.clauses.iter().enumerate() {
            if i > 0 {
                out.push_str(" AND ");
            }
            let atoms: Vec<String> = clause.iter().map(Atom::sql).collect();
            if atoms.len() == 1 {
                out.push_str(&atoms[0]);
            } else {
                let _ = write!(out, "({})", atoms.join(" OR "));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(input: &str) -> String {
        parse(input).unwrap().to_sql()
    }

    #[test]
    fn words_and_phrases_search_the_message() {
        assert_eq!(sql(""), "TRUE");
        assert_eq!(sql("  "), "TRUE");
        assert_eq!(
            sql("disk full"),
            "(message ILIKE '%disk%') AND (message ILIKE '%full%')"
        );
        assert_eq!(
            sql(r#""connection reset" 100%_done"#),
            r"(message ILIKE '%connection reset%') AND (message ILIKE '%100\%\_done%')"
        );
        assert_eq!(sql("it's"), "(message ILIKE '%it''s%')");
        // A URL is a word, not a field.
        assert_eq!(sql("http://x/a"), "(message ILIKE '%http://x/a%')");
    }

    #[test]
    fn fields_values_and_patterns() {
        assert_eq!(sql("host:web-1"), "(hostname = 'web-1')");
        assert_eq!(sql("unit:nginx*"), "(unit LIKE 'nginx%')");
        assert_eq!(sql(r#"process:"my app""#), "(process_name = 'my app')");
        assert_eq!(
            sql("extra.container_id:ab_1"),
            "(extra['container_id'] = 'ab_1')"
        );
        assert_eq!(sql("msg:oops"), "(message ILIKE '%oops%')");
        assert_eq!(sql("pid>100"), "(process_id > 100)");
        assert_eq!(sql("template:42"), "(template_id = 42)");
    }

    #[test]
    fn severity_compares_by_priority() {
        assert_eq!(sql("severity>=warning"), "(priority <= 4)");
        assert_eq!(sql("severity>err"), "(priority < 3)");
        assert_eq!(sql("level:error"), "(priority = 3)");
        assert_eq!(sql("severity<=info"), "(priority >= 6)");
    }

    #[test]
    fn exclusions_and_or() {
        assert_eq!(
            sql("-heartbeat -host:db-2"),
            "(message ILIKE '%heartbeat%') IS NOT TRUE AND (hostname = 'db-2') IS NOT TRUE"
        );
        assert_eq!(
            sql("timeout OR refused host:a"),
            "((message ILIKE '%timeout%') OR (message ILIKE '%refused%')) AND (hostname = 'a')"
        );
        // A lone dash is a word.
        assert_eq!(sql("a - b").matches("ILIKE").count(), 3);
    }

    #[test]
    fn bad_searches_say_where_and_why() {
        let e = parse(r#"ok "open"#).unwrap_err();
        assert_eq!(e.at, 3);
        assert!(e.message.contains("not closed"));
        let e = parse("colour:red").unwrap_err();
        assert!(e.message.contains("unknown field \"colour\""), "{e}");
        assert!(e.message.contains("host"), "{e}");
        assert!(
            parse("severity>=loud")
                .unwrap_err()
                .message
                .contains("not a severity")
        );
        assert!(
            parse("pid:abc")
                .unwrap_err()
                .message
                .contains("whole number")
        );
        assert!(
            parse("host>a")
                .unwrap_err()
                .message
                .contains("compare with")
        );
        assert!(
            parse("host:")
                .unwrap_err()
                .message
                .contains("value is missing")
        );
        assert!(parse("OR a").is_err());
        assert!(parse("a OR").is_err());
        assert!(parse("a OR OR b").is_err());
        assert_eq!(
            parse("x colour:red").unwrap_err().to_string(),
            format!(
                "search, at character 3: unknown field \"colour\"; the fields are {}",
                field_names()
            )
        );
    }

    /// A small deterministic generator (xorshift), so the property test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    /// Random inputs built from the syntax's own pieces and odd characters: parsing never
    /// panics, and every accepted search renders to a condition DataFusion's SQL parser
    /// accepts.
    #[test]
    fn random_searches_never_panic_and_render_valid_sql() {
        use datafusion::sql::sqlparser::dialect::GenericDialect;
        use datafusion::sql::sqlparser::parser::Parser;
        let pieces = [
            "host",
            "severity",
            "extra.k",
            "pid",
            "-",
            ":",
            ">=",
            "<",
            ">",
            "=",
            "\"",
            "\\",
            "'",
            "%",
            "_",
            "*",
            " ",
            " OR ",
            "OR",
            "warning",
            "12",
            "ü",
            "日本",
            "a",
            "b:c",
            "\t",
            "--",
            "::",
            "x\"y",
            "level",
            "msg",
            "template",
            "9999999999999999999999",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut accepted = 0;
        for _ in 0..5_000 {
            let n = 1 + rng.next() % 8;
            let input: String = (0..n).map(|_| rng.pick(&pieces)).collect();
            let Ok(search) = parse(&input) else {
                continue;
            };
            accepted += 1;
            let condition = search.to_sql();
            let statement = format!("SELECT * FROM logs WHERE {condition}");
            if let Err(e) = Parser::parse_sql(&GenericDialect {}, &statement) {
                panic!("{input:?} gave {condition:?}: {e}");
            }
        }
        assert!(accepted > 1_000, "only {accepted} inputs parsed");
    }

    /// The conditions mean what they say when DataFusion runs them.
    #[tokio::test]
    async fn conditions_select_the_right_rows() {
        use datafusion::prelude::SessionContext;
        let ctx = SessionContext::new();
        ctx.sql(
            "CREATE TABLE logs AS SELECT * FROM (VALUES \
             (1, 'web-1', 'Disk FULL on /var', 3, 'nginx.service'), \
             (2, 'web-2', 'disk ok 100%', 6, NULL), \
             (3, 'db-1', 'heartbeat', 4, 'postgres.service'), \
             (4, 'db-1', '100x done', 7, 'x')) \
             AS t(n, hostname, message, priority, unit)",
        )
        .await
        .unwrap();
        async fn rows(ctx: &SessionContext, search: &str) -> Vec<i64> {
            let condition = parse(search).unwrap().to_sql();
            let batches = ctx
                .sql(&format!("SELECT n FROM logs WHERE {condition} ORDER BY n"))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            batches
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<datafusion::arrow::array::Int64Array>()
                        .unwrap()
                        .values()
                        .to_vec()
                })
                .collect()
        }
        assert_eq!(rows(&ctx, "disk").await, [1, 2]);
        assert_eq!(rows(&ctx, "100%").await, [2]);
        assert_eq!(rows(&ctx, "severity>=warning").await, [1, 3]);
        assert_eq!(rows(&ctx, "-unit:nginx*").await, [2, 3, 4]);
        assert_eq!(rows(&ctx, "host:db-* -heartbeat").await, [4]);
        assert_eq!(rows(&ctx, "heartbeat OR full").await, [1, 3]);
    }
}
