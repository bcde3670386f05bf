//! `infra-query report`: the overview a person wants each morning, as text or as one
//! self-contained HTML file (charts inline as SVG, no external resources).
//!
//! Sections: lines per hour by severity, top hosts, top processes, top error templates,
//! new templates, anomalies, parse errors and losses. Counts per hour, host and process
//! come from the `stats` rollup when it covers the window (kilobytes instead of the
//! logs), else from `logs`; everything else from `logs`, `templates` and `anomalies`
//! (when the archive has that table).

use std::fmt::Write as _;

use anyhow::Result;
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;

use crate::chart::{ChartData, render_text, svg};
use crate::output::{Display, OutputFormat, prepare, write_batches_with};
use crate::windows::parse_span;

/// One part of the report: a heading, a note, the rows and whether to chart them.
pub struct Section {
    pub title: String,
    pub note: Option<String>,
    pub batches: Vec<RecordBatch>,
    pub chart: bool,
}

impl Section {
    fn rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

pub struct Report {
    pub heading: String,
    pub sections: Vec<Section>,
    display: Display,
}

/// A SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Report {
    /// Runs the report's queries over `ctx` for the last `since` (e.g. `24h`), for one
    /// host or all.
    pub async fn gather(
        ctx: &SessionContext,
        since: &str,
        host: Option<&str>,
        display: &Display,
    ) -> Result<Self> {
        let span = parse_span(since).map_err(anyhow::Error::msg)?;
        let now = chrono::Utc::now();
        let start = now - span;
        let since_lit = quote(since);
        let host_filter = host
            .map(|h| format!(" AND hostname = {}", quote(h)))
            .unwrap_or_default();
        let start_lit = format!(
            "TIMESTAMP {}",
            quote(&start.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        );
        let run = |sql: String| async move { crate::run_sql(ctx, &sql).await };

        let stats_rows = run(format!(
            "SELECT count(*) FROM stats_since({since_lit}) WHERE true{host_filter}"
        ))
        .await?;
        let use_stats = first_i64(&stats_rows).unwrap_or(0) > 0;
        let (counts_from, lines, hour) = if use_stats {
            (format!("stats_since({since_lit})"), "sum(lines)", "hour")
        } else {
            (
                format!("logs_since({since_lit})"),
                "count(*)",
                "date_trunc('hour', timestamp)",
            )
        };
        let counted_note = Some(format!(
            "from the {} table",
            if use_stats { "stats" } else { "logs" }
        ));

        let mut sections = Vec::new();
        sections.push(Section {
            title: "Lines per hour by severity".into(),
            note: counted_note.clone(),
            batches: run(format!(
                "SELECT {hour} AS hour, coalesce(severity, 'NONE') AS severity, \
                 CAST({lines} AS BIGINT) AS lines FROM {counts_from} WHERE true{host_filter} \
                 GROUP BY 1, 2 ORDER BY 1, 2"
            ))
            .await?,
            chart: true,
        });
        sections.push(Section {
            title: "Top hosts".into(),
            note: counted_note.clone(),
            batches: run(format!(
                "SELECT hostname, CAST({lines} AS BIGINT) AS lines FROM {counts_from} \
                 WHERE true{host_filter} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
            ))
            .await?,
            chart: true,
        });
        sections.push(Section {
            title: "Top processes".into(),
            note: counted_note,
            batches: run(format!(
                "SELECT coalesce(process_name, '-') AS process, CAST({lines} AS BIGINT) AS lines \
                 FROM {counts_from} WHERE true{host_filter} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
            ))
            .await?,
            chart: true,
        });
        sections.push(Section {
            title: "Top error templates (priority ERROR or worse)".into(),
            note: None,
            batches: run(format!(
                // A template's id is its collector's miner's (the templates table's
                // hostname is the collector's, not the line's).
                "WITH t AS (SELECT template_id, \
                   first_value(text ORDER BY written_at DESC) AS text \
                   FROM templates GROUP BY 1), \
                 e AS (SELECT hostname, template_id, count(*) AS lines, min(message) AS example \
                   FROM logs_since({since_lit}) WHERE priority <= 3{host_filter} GROUP BY 1, 2) \
                 SELECT e.hostname, e.template_id, e.lines, coalesce(t.text, e.example) AS text \
                 FROM e LEFT JOIN t ON e.template_id = t.template_id \
                 ORDER BY e.lines DESC, e.hostname, e.template_id LIMIT 10"
            ))
            .await?,
            chart: false,
        });
        sections.push(Section {
            title: "New templates".into(),
            note: Some(if host.is_some() {
                "first seen in the window, by every collector's miner (a template is not per host)"
                    .into()
            } else {
                "first seen in the window".into()
            }),
            batches: run(format!(
                "SELECT template_id, min(first_seen) AS first_seen, max(count) AS lines, \
                 first_value(text ORDER BY written_at DESC) AS text \
                 FROM templates_since({since_lit}) WHERE first_seen >= {start_lit} \
                 GROUP BY template_id ORDER BY first_seen DESC, template_id LIMIT 20"
            ))
            .await?,
            chart: false,
        });
        let anomalies = if ctx.table_exist("anomalies").unwrap_or(false) {
            Section {
                title: "Anomalies".into(),
                note: None,
                batches: run(format!(
                    "SELECT * FROM anomalies_since({since_lit}) WHERE true{host_filter} LIMIT 50"
                ))
                .await?,
                chart: false,
            }
        } else {
            Section {
                title: "Anomalies".into(),
                note: Some("this archive has no anomalies table".into()),
                batches: Vec::new(),
                chart: false,
            }
        };
        sections.push(anomalies);
        sections.push(Section {
            title: "Parse errors, truncated lines and losses".into(),
            note: Some(
                "lost: kmsg records overwritten before they were read, journal entries \
                 vacuumed before they were read (UDP and eBPF drops are counted in /metrics)"
                    .into(),
            ),
            batches: run(format!(
                "SELECT source, \
                 count(*) FILTER (WHERE extra['parse_error'] IS NOT NULL) AS parse_errors, \
                 count(*) FILTER (WHERE extra['truncated'] IS NOT NULL) AS truncated, \
                 CAST(coalesce(sum(TRY_CAST(extra['kmsg_lost_before'] AS BIGINT)), 0) \
                   + coalesce(sum(TRY_CAST(extra['journal_vacuumed_before'] AS BIGINT)), 0) AS BIGINT) AS lost, \
                 count(*) AS lines \
                 FROM logs_since({since_lit}) WHERE true{host_filter} GROUP BY source ORDER BY source"
            ))
            .await?,
            chart: false,
        });
        let heading = format!(
            "infralog report: the last {since} ({} to {}){}",
            start.format("%Y-%m-%d %H:%M UTC"),
            now.format("%Y-%m-%d %H:%M UTC"),
            host.map(|h| format!(", host {h}")).unwrap_or_default()
        );
        Ok(Self {
            heading,
            sections,
            display: display.clone(),
        })
    }

    /// The report as text for a terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}\n", self.heading);
        for s in &self.sections {
            let _ = writeln!(out, "== {} ==", s.title);
            if let Some(note) = &s.note {
                let _ = writeln!(out, "({note})");
            }
            if s.rows() == 0 {
                let _ = writeln!(out, "none\n");
                continue;
            }
            if s.chart
                && let Ok(data) = ChartData::from_batches(&s.batches, &self.display)
            {
                out.push_str(&render_text(&data, 100));
                // A time series reads better as its chart than as a long table.
                if matches!(data.xs, crate::chart::Xs::Time(..)) {
                    out.push('\n');
                    continue;
                }
            }
            let mut buf = Vec::new();
            if write_batches_with(&mut buf, &s.batches, OutputFormat::Table, &self.display).is_ok()
            {
                out.push_str(&String::from_utf8_lossy(&buf));
            }
            out.push('\n');
        }
        out
    }

    /// The report as one HTML document: styles inline, charts as inline SVG.
    pub fn html(&self) -> Result<String> {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{}</title><style>\
             body{{font-family:sans-serif;margin:2em;color:#222}}\
             table{{border-collapse:collapse;margin:.5em 0 1.5em}}\
             td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}}\
             th{{background:#f0f0f0}} td.n{{text-align:right}} .note{{color:#666}}\
             figure{{margin:0}} svg{{max-width:100%;height:auto}}\
             </style></head><body>\n<h1>{}</h1>\n",
            escape(&self.heading),
            escape(&self.heading)
        );
        for (i, s) in self.sections.iter().enumerate() {
            let _ = writeln!(out, "<section id=\"s{i}\"><h2>{}</h2>", escape(&s.title));
            if let Some(note) = &s.note {
                let _ = writeln!(out, "<p class=\"note\">{}</p>", escape(note));
            }
            if s.rows() == 0 {
                out.push_str("<p>none</p></section>\n");
                continue;
            }
            if s.chart {
                let data = ChartData::from_batches(&s.batches, &self.display)?;
                let _ = writeln!(
                    out,
                    "<figure class=\"chart\">{}</figure>",
                    strip_xml_declaration(&svg(&data, &s.title)?)
                );
            }
            if s.chart && s.rows() > 20 {
                let _ = writeln!(out, "<details><summary>{} rows</summary>", s.rows());
                html_table(&mut out, &s.batches, &self.display)?;
                out.push_str("</details>");
            } else {
                html_table(&mut out, &s.batches, &self.display)?;
            }
            out.push_str("</section>\n");
        }
        out.push_str("</body></html>\n");
        Ok(out)
    }
}

fn first_i64(batches: &[RecordBatch]) -> Option<i64> {
    use datafusion::arrow::array::AsArray;
    let b = batches.iter().find(|b| b.num_rows() > 0)?;
    let c = datafusion::arrow::compute::cast(
        b.column(0),
        &datafusion::arrow::datatypes::DataType::Int64,
    )
    .ok()?;
    Some(
        c.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0),
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(svg, |(_, r)| r.trim_start()),
        None => svg,
    }
}

fn html_table(out: &mut String, batches: &[RecordBatch], display: &Display) -> Result<()> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let schema = first.schema();
    out.push_str("<table><tr>");
    for f in schema.fields() {
        let _ = write!(out, "<th>{}</th>", escape(f.name()));
    }
    out.push_str("</tr>\n");
    let options = FormatOptions::default().with_null("");
    for batch in batches {
        let shown = prepare(batch, true, display)?;
        let formatters = shown
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for row in 0..shown.num_rows() {
            out.push_str("<tr>");
            for (c, f) in formatters.iter().enumerate() {
                let numeric = schema.field(c).data_type().is_numeric();
                let _ = write!(
                    out,
                    "<td{}>{}</td>",
                    if numeric { " class=\"n\"" } else { "" },
                    escape(&f.value(row).try_to_string()?)
                );
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</table>\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_and_literals() {
        assert_eq!(
            escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(
            strip_xml_declaration("<?xml version=\"1.0\"?>\n<svg/>"),
            "<svg/>"
        );
    }
}
