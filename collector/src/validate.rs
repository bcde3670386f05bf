//! `infra-collector validate`: a configuration checked the way `run` checks it, plus what
//! `run` would only find out later (the files it names exist and can be read), each
//! problem with its line. The helpers here also give `Config::parse` its line numbers for
//! value checks and its "did you mean" for misspelt keys.

use std::path::Path;

use crate::config::Config;

/// `did you mean `x`?` for serde's "unknown field `y`, expected one of `a`, `b`" (or
/// "unknown variant"), when one of the expected names is close; else empty.
pub fn did_you_mean(message: &str) -> String {
    if !message.starts_with("unknown field") && !message.starts_with("unknown variant") {
        return String::new();
    }
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((given, expected)) = quoted.split_first() else {
        return String::new();
    };
    let best = (expected.iter())
        .map(|e| (edit_distance(given, e), *e))
        .min();
    match best {
        Some((d, name)) if d <= (given.len() / 3).max(2) => format!("; did you mean `{name}`?"),
        _ => String::new(),
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The line (from 1) of a dotted key such as `spool.segment_mb` in a TOML text: the first
/// `segment_mb = ...` under `[spool]`; the table's header line for a table name (`http`);
/// `None` when the text does not spell it (left at its default).
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let mut table = String::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            table = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .replace(' ', "");
            if table == key {
                return Some(n + 1);
            }
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        if line.starts_with('#') {
            continue;
        }
        let k = k.trim().trim_matches('"');
        let full = if table.is_empty() {
            k.to_string()
        } else {
            format!("{table}.{k}")
        };
        if full == key {
            return Some(n + 1);
        }
    }
    None
}

/// The dotted key a value check's message starts with (`spool.max_mb must be ...`).
pub fn leading_key(message: &str) -> Option<&str> {
    let word = message.split([' ', ':']).next()?;
    (word.contains('.')
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._".contains(c)))
    .then_some(word)
}

/// A problem with its line, when the text has one for it.
pub fn at_line(text: &str, message: &str) -> String {
    match leading_key(message).and_then(|k| line_of_key(text, k)) {
        Some(line) => format!("line {line}: {message}"),
        None => message.to_string(),
    }
}

/// Files the configuration names that `run` would read: each must exist and be readable.
pub fn file_problems(config: &Config, text: &str) -> Vec<String> {
    let mut files: Vec<(String, &Path)> = Vec::new();
    let s3 = &config.archive.s3;
    if !s3.credentials_file.is_empty() {
        files.push((
            "archive.s3.credentials_file".into(),
            Path::new(&s3.credentials_file),
        ));
    }
    if config.http.enabled && !config.http.token_file.as_os_str().is_empty() {
        files.push(("http.token_file".into(), &config.http.token_file));
    }
    for l in &config.sources.net.listeners {
        if let Some(t) = &l.tls {
            let key = |k: &str| format!("sources.net.listeners.tls.{k} (listener {})", l.address);
            files.push((key("cert"), &t.cert));
            files.push((key("key"), &t.key));
            if let Some(ca) = &t.client_ca {
                files.push((key("client_ca"), ca));
            }
        }
    }
    let mut problems = Vec::new();
    let endpoint = &s3.endpoint;
    if !endpoint.is_empty() {
        match reqwest::Url::parse(endpoint) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {}
            _ => problems.push(at_line(
                text,
                &format!("archive.s3.endpoint: {endpoint:?} is not http(s)://host[:port]"),
            )),
        }
    }
    for (key, path) in files {
        if let Err(e) = std::fs::File::open(path) {
            problems.push(at_line(
                text,
                &format!("{key}: cannot read {}: {e}", path.display()),
            ));
        }
    }
    problems
}

/// Every problem of the configuration text: the first that stops it parsing, else every
/// value and file problem. Empty: `run` would accept it.
pub fn problems(text: &str, origin: &str) -> Vec<String> {
    match Config::parse(text, origin) {
        Err(e) => format!("{e:#}").lines().map(String::from).collect(),
        Ok(config) => file_problems(&config, text)
            .into_iter()
            .map(|p| format!("invalid configuration {origin}, {p}"))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_key() {
        let m = "unknown field `zstd_levle`, expected one of `path`, `s3`, `zstd_level`, `row_group_rows`";
        assert_eq!(did_you_mean(m), "; did you mean `zstd_level`?");
        let m = "unknown field `qqqqqqq`, expected `path` or `s3`";
        assert_eq!(did_you_mean(m), "");
        assert_eq!(did_you_mean("invalid type: string"), "");
    }

    #[test]
    fn finds_the_line_of_a_dotted_key() {
        let text = "# c\n[spool]\nmax_mb = 1\n\n[sources.net]\n[[sources.net.listeners]]\naddress = \"x\"\n[http]\nlisten = \"a\"\n";
        assert_eq!(line_of_key(text, "spool.max_mb"), Some(3));
        assert_eq!(line_of_key(text, "http.listen"), Some(9));
        assert_eq!(line_of_key(text, "http"), Some(8));
        assert_eq!(line_of_key(text, "sources.net.listeners.address"), Some(7));
        assert_eq!(line_of_key(text, "spool.segment_mb"), None);
        assert_eq!(leading_key("spool.max_mb must be"), Some("spool.max_mb"));
        assert_eq!(leading_key("http.listen: bad"), Some("http.listen"));
        assert_eq!(leading_key("alert target x: y"), None);
    }

    /// Secrets of alert targets come from a file or the environment; credentials written
    /// in the configuration are refused.
    #[test]
    fn alert_urls_come_from_files_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("slack-url");
        std::fs::write(&file, "https://hooks.example/T0/B0/secret\n").unwrap();
        let target =
            |url: &str| format!("[[alert.targets]]\nname = \"ops\"\nkind = \"slack\"\n{url}\n");
        let c = Config::parse(&target(&format!("url_file = \"{}\"", file.display())), "t").unwrap();
        assert_eq!(c.alert.targets[0].url, "https://hooks.example/T0/B0/secret");
        // SAFETY: this test alone reads or writes the variable.
        unsafe { std::env::set_var("INFRALOG_TEST_ALERT_URL", "https://hooks.example/env") };
        let c = Config::parse(&target("url_env = \"INFRALOG_TEST_ALERT_URL\""), "t").unwrap();
        assert_eq!(c.alert.targets[0].url, "https://hooks.example/env");
        for (line, why) in [
            (
                "url = \"https://bob:pw@hooks.example/x\"",
                "url holds credentials",
            ),
            ("url_env = \"INFRALOG_TEST_NO_SUCH_VAR\"", "not set"),
            (
                "url_file = \"/nonexistent/url\"",
                "url_file /nonexistent/url",
            ),
            ("", "exactly one of url, url_file and url_env"),
        ] {
            let err = format!("{:#}", Config::parse(&target(line), "t").unwrap_err());
            assert!(err.contains(why) && err.contains("line 1"), "{err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }
}
