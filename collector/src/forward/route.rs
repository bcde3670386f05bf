//! `[[route]]`: which sinks get which rows. A rule has conditions over the row's columns
//! or `extra` fields (each a list of accepted values; all conditions must hold) and the
//! sinks it sends to. A row goes to the sinks of every rule it matches; a row no rule
//! matches goes to the sinks marked `unmatched = true`. Without any rule every sink gets
//! every row.
//!
//! Rules are evaluated per batch with Arrow's comparison kernels, one mask per rule.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use arrow::array::{Array, BooleanArray, Int8Array, RecordBatch, StringArray, StringBuilder};
use arrow::compute::kernels::boolean::{and, not, or};
use arrow::compute::kernels::cmp::{eq, lt_eq};
use arrow::datatypes::Int8Type;
use infralog_schemas::col;
use serde::Deserialize;

use super::config::SinkConfig;
use super::doc::Rows;

/// Columns a condition may name; any other name is an `extra` key.
const COLUMNS: &[&str] = &[
    col::HOSTNAME,
    col::SOURCE,
    col::SEVERITY,
    col::FACILITY,
    col::PROCESS_NAME,
    col::USER_NAME,
    col::UNIT,
];

/// One `[[route]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Field → accepted values. A column (hostname, source, severity, facility,
    /// process_name, user_name, unit) or an `extra` key (`tenant_id`, `_SYSTEMD_UNIT`, ...).
    #[serde(default)]
    pub when: BTreeMap<String, Vec<String>>,
    /// Only rows at least this severe (0 emergency … 7 debug).
    pub priority_max: Option<i8>,
    pub sinks: Vec<String>,
}

/// The routing of one sink.
#[derive(Debug, Clone)]
pub struct SinkRoute {
    /// The rules naming this sink.
    rules: Vec<RouteConfig>,
    /// Every rule (for `unmatched`).
    all: Vec<RouteConfig>,
    unmatched: bool,
}

impl SinkRoute {
    /// `None`: the sink gets every row.
    pub fn for_sink(sink: &SinkConfig, routes: &[RouteConfig]) -> Option<SinkRoute> {
        if routes.is_empty() {
            return None;
        }
        Some(SinkRoute {
            rules: routes
                .iter()
                .filter(|r| r.sinks.contains(&sink.name))
                .cloned()
                .collect(),
            all: routes.to_vec(),
            unmatched: sink.unmatched,
        })
    }

    /// Which rows of `batch` this sink gets.
    pub fn mask(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let n = batch.num_rows();
        let mut mine = BooleanArray::from(vec![false; n]);
        for r in &self.rules {
            mine = or(&mine, &rule_mask(r, batch)?)?;
        }
        if self.unmatched {
            let mut any = BooleanArray::from(vec![false; n]);
            for r in &self.all {
                any = or(&any, &rule_mask(r, batch)?)?;
            }
            mine = or(&mine, &not(&any)?)?;
        }
        Ok(mine)
    }
}

fn rule_mask(r: &RouteConfig, batch: &RecordBatch) -> Result<BooleanArray> {
    let n = batch.num_rows();
    let mut m = BooleanArray::from(vec![true; n]);
    for (field, values) in &r.when {
        let column: StringArray = match batch.column_by_name(field) {
            Some(c) if COLUMNS.contains(&field.as_str()) => c
                .as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{field} is not text"))?,
            _ => extra_column(batch, field)?,
        };
        let mut any = BooleanArray::from(vec![false; n]);
        for v in values {
            let hit = eq(&column, &StringArray::new_scalar(v.as_str()))?;
            any = or(&any, &hit)?;
        }
        m = and(&m, &any)?;
    }
    if let Some(p) = r.priority_max {
        let pri = batch
            .column_by_name(col::PRIORITY)
            .and_then(|c| c.as_any().downcast_ref::<Int8Array>())
            .ok_or_else(|| anyhow::anyhow!("no priority column"))?;
        let hit = lt_eq(
            pri,
            &arrow::array::PrimitiveArray::<Int8Type>::new_scalar(p),
        )?;
        m = and(&m, &hit)?;
    }
    // A null (no value) never matches.
    Ok(BooleanArray::from_iter(
        m.iter().map(|v| Some(v == Some(true))),
    ))
}

/// `extra[key]` of every row, as a column to compare.
fn extra_column(batch: &RecordBatch, key: &str) -> Result<StringArray> {
    let rows = Rows::new(batch)?;
    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
    for i in 0..rows.len() {
        b.append_option(rows.extra(i, key));
    }
    Ok(b.finish())
}

/// Checks the routes against the sinks: names exist, and every sink can get rows.
pub fn validate(routes: &[RouteConfig], sinks: &[SinkConfig]) -> Result<()> {
    for (i, r) in routes.iter().enumerate() {
        if r.sinks.is_empty() {
            bail!("[[route]] #{}: sinks is empty", i + 1);
        }
        for s in &r.sinks {
            match sinks.iter().find(|k| &k.name == s) {
                None => bail!("[[route]] #{}: {s:?} is no [[forward]] name", i + 1),
                Some(k) if k.fallback_only => {
                    bail!(
                        "[[route]] #{}: {s:?} is fallback_only: its primary decides",
                        i + 1
                    )
                }
                _ => {}
            }
        }
        for (f, v) in &r.when {
            if v.is_empty() {
                bail!("[[route]] #{}: when.{f} lists no value", i + 1);
            }
        }
        if r.priority_max.is_some_and(|p| !(0..=7).contains(&p)) {
            bail!("[[route]] #{}: priority_max must be 0 to 7", i + 1);
        }
    }
    if !routes.is_empty() {
        for s in sinks.iter().filter(|s| !s.fallback_only) {
            if !s.unmatched && !routes.iter().any(|r| r.sinks.contains(&s.name)) {
                bail!(
                    "[[forward]] {:?} gets no rows: name it in a [[route]] or set unmatched = true",
                    s.name
                );
            }
        }
    } else if let Some(s) = sinks.iter().find(|s| s.unmatched) {
        bail!(
            "[[forward]] {:?}: unmatched = true needs [[route]] rules (without them every sink \
             gets every row)",
            s.name
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::doc::tests::batch;

    fn sink(name: &str, unmatched: bool) -> SinkConfig {
        let text = format!(
            "[[forward]]\nname = {name:?}\nkind = \"logstash\"\naddress = \"127.0.0.1:1\"\n\
             unmatched = {unmatched}\n[[route]]\nsinks = [{name:?}]\n"
        );
        let c = crate::config::Config::parse(&text, "t");
        let mut c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e:#}"),
        };
        c.forward.remove(0)
    }

    #[test]
    fn rules_choose_rows_per_batch_and_unmatched_gets_the_rest() {
        let b = batch(&[
            ("a", &[("tenant_id", "alpha")]),
            ("b", &[("tenant_id", "beta")]),
            ("c", &[]),
            ("d", &[("tenant_id", "alpha")]),
        ]);
        let routes = vec![RouteConfig {
            when: [("tenant_id".to_string(), vec!["alpha".to_string()])].into(),
            priority_max: None,
            sinks: vec!["es".into()],
        }];
        let es = SinkRoute::for_sink(&sink("es", false), &routes).unwrap();
        let rest = SinkRoute::for_sink(&sink("rest", true), &routes).unwrap();
        let m: Vec<bool> = es.mask(&b).unwrap().iter().map(|v| v.unwrap()).collect();
        assert_eq!(m, [true, false, false, true]);
        let m: Vec<bool> = rest.mask(&b).unwrap().iter().map(|v| v.unwrap()).collect();
        assert_eq!(m, [false, true, true, false]);
        let by_host = vec![RouteConfig {
            when: [
                ("hostname".to_string(), vec!["h1".to_string()]),
                ("source".to_string(), vec!["nope".into(), "app".into()]),
            ]
            .into(),
            priority_max: None,
            sinks: vec!["es".into()],
        }];
        let es = SinkRoute::for_sink(&sink("es", false), &by_host).unwrap();
        assert!(es.mask(&b).unwrap().iter().all(|v| v == Some(true)));
        assert!(validate(&routes, &[sink("es", false)]).is_ok());
        let err = validate(&routes, &[sink("es", false), sink("x", false)]).unwrap_err();
        assert!(err.to_string().contains("gets no rows"), "{err}");
    }
}
