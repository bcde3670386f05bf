//! Name templates such as `logs-{tenant}-{%Y.%m}`: `{tenant}`, `{<column or extra key>}`
//! and `{%<strftime>}` on the row's event time (UTC). The result is sanitised into a valid
//! Elasticsearch index name.

use std::fmt::Write;

use anyhow::{Result, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Tenant,
    Field(String),
    Time(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                bail!("unclosed '{{' in {text:?}");
            };
            let inner = &rest[open + 1..open + close];
            parts.push(match inner {
                "" => bail!("empty '{{}}' in {text:?}"),
                "tenant" => Part::Tenant,
                t if t.starts_with('%') => {
                    // Refuse what chrono cannot format now rather than on the first row.
                    let items: Vec<_> = chrono::format::StrftimeItems::new(t).collect();
                    if items.contains(&chrono::format::Item::Error) {
                        bail!("bad time format {t:?} in {text:?}");
                    }
                    Part::Time(t.to_string())
                }
                f => Part::Field(f.to_string()),
            });
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            bail!("unmatched '}}' in {text:?}");
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// Whether the name depends on the row at all.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.as_str()),
            _ => None,
        })
    }

    /// Writes the sanitised name into `out` (cleared first).
    pub fn render(
        &self,
        out: &mut String,
        tenant: &str,
        micros: i64,
        field: impl Fn(&str) -> Option<String>,
    ) {
        out.clear();
        let time = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Tenant => out.push_str(tenant),
                Part::Field(f) => out.push_str(field(f).as_deref().unwrap_or("none")),
                Part::Time(fmt) => {
                    let _ = write!(out, "{}", time.format(fmt));
                }
            }
        }
        sanitise_index(out);
    }
}

/// Elasticsearch's index name rules: lower case; none of `\/*?"<>|,#:` or space (each
/// becomes `_`); no leading `-`, `_` or `+`; not `.` or `..`; at most 255 bytes.
pub fn sanitise_index(name: &mut String) {
    let mut s: String = name
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect();
    let trimmed = s.trim_start_matches(['-', '_', '+']).len();
    if trimmed != s.len() {
        s = s.split_off(s.len() - trimmed);
    }
    if s.is_empty() || s == "." || s == ".." {
        s = "none".into();
    }
    if s.len() > 255 {
        let mut cut = 255;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    *name = s;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tenant_time_and_fields_sanitised() {
        let t = Template::parse("logs-{tenant}-{%Y.%m}").unwrap();
        let mut out = String::new();
        // 2026-12-07T10:00:00Z
        let ts = 1_796_637_600_000_000;
        t.render(&mut out, "Acme Corp", ts, |_| None);
        assert_eq!(out, "logs-acme_corp-2026.12");
        t.render(&mut out, "a/b*c?d\"e<f>g|h,i#j:k", ts, |_| None);
        assert_eq!(out, "logs-a_b_c_d_e_f_g_h_i_j_k-2026.12");
        let t = Template::parse("{source}-{%Y-%m-%d}").unwrap();
        t.render(&mut out, "x", ts, |f| {
            (f == "source").then(|| "-App".into())
        });
        assert_eq!(out, "app-2026-12-07");
        t.render(&mut out, "x", ts, |_| None);
        assert_eq!(out, "none-2026-12-07");
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in ["logs-{tenant", "logs-{}", "logs-}", "logs-{%Q}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
