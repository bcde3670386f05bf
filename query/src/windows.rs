//! Time windows without date math: for every table `T` of the archive, the table functions
//! `T_since('24h')` and `T_between('2026-03-01', '2026-03-02T12:00')`.
//!
//! Each is a view of `T` filtered on its `log_date` partition column (so whole days are
//! pruned before a file is opened) and on its time column (so row groups and pages are
//! pruned by their statistics, and the window is exact). "Now" is the start of the query,
//! the same instant `now()` gives.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::{TableProvider, ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, col, lit};
use datafusion::prelude::SessionContext;
use infralog_schemas::col as logs_col;

/// The column a table's rows are placed in time by: the event time for `logs`, the hour
/// for `stats`, the last line for `templates`; for any other table its first timestamp
/// column.
pub fn time_column(table: &str, provider: &dyn TableProvider) -> Option<String> {
    let schema = provider.schema();
    let named = match table {
        "logs" => Some(logs_col::TIMESTAMP),
        "stats" => Some(logs_col::HOUR),
        "templates" => Some(infralog_schemas::templates::col::LAST_SEEN),
        _ => None,
    };
    if let Some(name) = named
        && schema.field_with_name(name).is_ok()
    {
        return Some(name.to_string());
    }
    schema
        .fields()
        .iter()
        .find(|f| matches!(f.data_type(), DataType::Timestamp(..)))
        .map(|f| f.name().clone())
}

/// Parses a span: `90s`, `30m`, `24h`, `7d`, `2w`, `1h30m`, `36 hours`.
pub fn parse_span(text: &str) -> std::result::Result<TimeDelta, String> {
    let s = text.trim().to_ascii_lowercase();
    let mut total = TimeDelta::zero();
    let mut rest = s.as_str();
    if rest.is_empty() {
        return Err("an empty span; write e.g. '24h', '7d' or '90m'".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "span {text:?}: expected a number at {:?}; write e.g. '24h', '7d' or '90m'",
                rest
            ));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("span {text:?}: number too large"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let seconds = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            "" => {
                return Err(format!(
                    "span {text:?}: a unit is missing (s, m, h, d or w)"
                ));
            }
            other => {
                return Err(format!(
                    "span {text:?}: unknown unit {other:?} (s, m, h, d or w)"
                ));
            }
        };
        let part = n
            .checked_mul(seconds)
            .and_then(TimeDelta::try_seconds)
            .ok_or_else(|| format!("span {text:?} is too long"))?;
        total = total
            .checked_add(&part)
            .ok_or_else(|| format!("span {text:?} is too long"))?;
    }
    Ok(total)
}

/// Parses an instant: `2026-03-01` (midnight UTC), `2026-03-01 12:00[:00]`,
/// `2026-03-01T12:00:00[.f]` (UTC), or RFC 3339 with an offset.
pub fn parse_instant(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    let t = t.trim_end_matches('Z');
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            return Ok(naive.and_utc());
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    Err(format!(
        "{text:?} is not a time: write 2026-03-01, 2026-03-01 12:00 or RFC 3339"
    ))
}

fn days_since_epoch(t: DateTime<Utc>) -> i32 {
    t.timestamp().div_euclid(86_400) as i32
}

fn timestamp_lit(t: DateTime<Utc>, data_type: &DataType) -> Expr {
    let (unit, tz) = match data_type {
        DataType::Timestamp(unit, tz) => (*unit, tz.clone()),
        _ => (TimeUnit::Microsecond, Some("UTC".into())),
    };
    let value = match unit {
        TimeUnit::Second => ScalarValue::TimestampSecond(Some(t.timestamp()), tz),
        TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(Some(t.timestamp_millis()), tz),
        TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), tz),
        TimeUnit::Nanosecond => {
            ScalarValue::TimestampNanosecond(Some(t.timestamp_nanos_opt().unwrap_or(i64::MAX)), tz)
        }
    };
    lit(value)
}

/// `[from, to)` over `table`: the filter on `log_date` and on the time column.
fn window_filter(
    provider: &dyn TableProvider,
    time_column: Option<&str>,
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
) -> Result<Expr> {
    let day = |t| lit(ScalarValue::Date32(Some(days_since_epoch(t))));
    let mut filter = col(logs_col::LOG_DATE).gt_eq(day(from));
    if let Some(to) = to {
        // `to` is excluded: a window ending at midnight does not touch that day.
        let last = to - TimeDelta::microseconds(1);
        filter = filter.and(col(logs_col::LOG_DATE).lt_eq(day(last.max(from))));
    }
    if let Some(name) = time_column {
        let schema = provider.schema();
        let data_type = schema.field_with_name(name)?.data_type().clone();
        filter = filter.and(col(name).gt_eq(timestamp_lit(from, &data_type)));
        if let Some(to) = to {
            filter = filter.and(col(name).lt(timestamp_lit(to, &data_type)));
        }
    }
    Ok(filter)
}

/// What a window function's arguments must be: string literals.
fn string_args(name: &str, args: &[Expr], expect: usize, usage: &str) -> Result<Vec<String>> {
    if args.len() != expect {
        return plan_err!("{name} takes {expect} argument(s): {usage}");
    }
    args.iter()
        .map(|a| match a {
            Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)), _)
            | Expr::Literal(ScalarValue::Utf8View(Some(s)), _) => Ok(s.clone()),
            other => plan_err!("{name}: {other} is not a string literal; {usage}"),
        })
        .collect()
}

/// `T_since(span)` or `T_between(from, to)`.
#[derive(Debug)]
struct Window {
    table: String,
    provider: Arc<dyn TableProvider>,
    time_column: Option<String>,
    between: bool,
}

impl Window {
    fn name(&self) -> String {
        format!(
            "{}_{}",
            self.table,
            if self.between { "between" } else { "since" }
        )
    }
}

impl TableFunctionImpl for Window {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let name = self.name();
        let (from, to) = if self.between {
            let a = string_args(&name, args.exprs(), 2, "('2026-03-01', '2026-03-02 12:00')")?;
            let from = parse_instant(&a[0]).or_else(|e| plan_err!("{name}: {e}"))?;
            let to = parse_instant(&a[1]).or_else(|e| plan_err!("{name}: {e}"))?;
            if to < from {
                return plan_err!("{name}: {} is before {}", a[1], a[0]);
            }
            (from, Some(to))
        } else {
            let a = string_args(&name, args.exprs(), 1, "('24h'), ('7d'), ('90m')")?;
            let span = parse_span(&a[0]).or_else(|e| plan_err!("{name}: {e}"))?;
            let now = args
                .session()
                .execution_props()
                .query_execution_start_time
                .unwrap_or_else(Utc::now);
            let from = now.checked_sub_signed(span).ok_or_else(|| {
                datafusion::error::DataFusionError::Plan(format!("{name}: span too long"))
            })?;
            (from, None)
        };
        let filter = window_filter(
            self.provider.as_ref(),
            self.time_column.as_deref(),
            from,
            to,
        )?;
        let plan = LogicalPlanBuilder::scan(
            self.table.as_str(),
            provider_as_source(self.provider.clone()),
            None,
        )?
        .filter(filter)?
        .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

/// Registers `T_since` and `T_between` for every table `T` registered in `ctx`'s default
/// schema.
pub fn register(ctx: &SessionContext, tables: &[(String, Arc<dyn TableProvider>)]) {
    for (table, provider) in tables {
        let time_column = time_column(table, provider.as_ref());
        for between in [false, true] {
            let w = Window {
                table: table.clone(),
                provider: provider.clone(),
                time_column: time_column.clone(),
                between,
            };
            ctx.register_udtf(&w.name(), Arc::new(w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse_span("24h").unwrap(), TimeDelta::hours(24));
        assert_eq!(parse_span("7d").unwrap(), TimeDelta::days(7));
        assert_eq!(parse_span("1h30m").unwrap(), TimeDelta::minutes(90));
        assert_eq!(parse_span("36 hours").unwrap(), TimeDelta::hours(36));
        assert_eq!(parse_span("2W").unwrap(), TimeDelta::weeks(2));
        assert!(parse_span("").is_err());
        assert!(parse_span("24").unwrap_err().contains("unit is missing"));
        assert!(parse_span("3y").unwrap_err().contains("unknown unit"));
        assert!(parse_span("h").unwrap_err().contains("expected a number"));
        assert!(parse_span("99999999999999999999d").is_err());
    }

    #[test]
    fn instants() {
        let t = |s| parse_instant(s).unwrap().to_rfc3339();
        assert_eq!(t("2026-03-01"), "2026-03-01T00:00:00+00:00");
        assert_eq!(t("2026-03-01 12:30"), "2026-03-01T12:30:00+00:00");
        assert_eq!(t("2026-03-01T12:30:05.5Z"), "2026-03-01T12:30:05.500+00:00");
        assert_eq!(t("2026-03-01T12:30:00+02:00"), "2026-03-01T10:30:00+00:00");
        assert!(parse_instant("yesterday").is_err());
    }
}
