//! The time-window table functions: `logs_since('2d')` and `logs_between(from, to)` give
//! the rows of the window and scan only the partitions it touches (checked in the plan).

#[allow(dead_code)] // Each test binary uses part of the fixture.
mod fixture;

use chrono::{Duration, Utc};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::physical_plan::displayable;
use datafusion::prelude::SessionContext;
use infralog_query::run_sql;

fn day(offset: i64) -> String {
    (Utc::now() - Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// web-1 with 10 rows on today, yesterday, 3 and 10 days ago (rows in the first minutes
/// of each day).
async fn archive() -> (tempfile::TempDir, SessionContext, [String; 4]) {
    let dir = tempfile::tempdir().unwrap();
    let days = [day(0), day(1), day(3), day(10)];
    for d in &days {
        let batch = fixture::batch("web-1", d, 10);
        fixture::write_file(dir.path(), "web-1", d, "00000001", &batch);
    }
    let ctx = infralog_query::open(dir.path().to_str().unwrap())
        .await
        .unwrap();
    (dir, ctx, days)
}

async fn count(ctx: &SessionContext, sql: &str) -> i64 {
    let batches = run_sql(ctx, sql).await.unwrap();
    let b = batches.iter().find(|b| b.num_rows() > 0).unwrap();
    b.column(0).as_primitive::<Int64Type>().value(0)
}

async fn plan(ctx: &SessionContext, sql: &str) -> String {
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    displayable(plan.as_ref()).indent(true).to_string()
}

#[tokio::test]
async fn since_keeps_the_window_and_prunes_older_days() {
    let (_dir, ctx, days) = archive().await;
    // Rows sit at minutes 0..10 of their day: two days back from now reaches all of
    // yesterday's, none of three days ago.
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM logs_since('2d')").await,
        20
    );
    assert_eq!(
        count(&ctx, "SELECT count(*) FROM logs_since('30d')").await,
        40
    );
    assert_eq!(count(&ctx, "SELECT count(*) FROM logs").await, 40);
    let p = plan(&ctx, "SELECT message FROM logs_since('2d')").await;
    println!("{p}");
    assert!(p.contains(&format!("log_date={}/", days[0])), "{p}");
    assert!(p.contains(&format!("log_date={}/", days[1])), "{p}");
    assert!(!p.contains(&format!("log_date={}/", days[2])), "{p}");
    assert!(!p.contains(&format!("log_date={}/", days[3])), "{p}");
    // Composes with other filters, aggregates and joins like any table.
    let n = count(
        &ctx,
        "SELECT count(*) FROM logs_since('2d') WHERE hostname = 'web-1' AND priority < 4",
    )
    .await;
    let direct = count(
        &ctx,
        &format!(
            "SELECT count(*) FROM logs WHERE log_date >= '{}' AND priority < 4",
            days[1]
        ),
    )
    .await;
    assert_eq!(n, direct);
}

#[tokio::test]
async fn between_is_half_open_and_prunes_both_sides() {
    let (_dir, ctx, days) = archive().await;
    let sql = format!(
        "SELECT count(*) FROM logs_between('{}', '{}')",
        days[2], days[1]
    );
    assert_eq!(count(&ctx, &sql).await, 10);
    let p = plan(&ctx, &sql.replace("count(*)", "message")).await;
    println!("{p}");
    assert!(p.contains(&format!("log_date={}/", days[2])), "{p}");
    for d in [&days[0], &days[1], &days[3]] {
        assert!(!p.contains(&format!("log_date={d}/")), "{d}: {p}");
    }
    // Minutes 0..5 of three days ago.
    let sql = format!(
        "SELECT count(*) FROM logs_between('{d} 00:00', '{d}T00:05:00Z')",
        d = days[2]
    );
    assert_eq!(count(&ctx, &sql).await, 5);
}

#[tokio::test]
async fn every_table_has_windows_and_bad_arguments_are_plan_errors() {
    let (_dir, ctx, _) = archive().await;
    for table in ["stats", "templates"] {
        let sql = format!("SELECT count(*) FROM {table}_since('7d')");
        assert_eq!(count(&ctx, &sql).await, 0, "{table}");
    }
    for (sql, want) in [
        ("SELECT * FROM logs_since('3y')", "unknown unit"),
        ("SELECT * FROM logs_since(3)", "not a string literal"),
        ("SELECT * FROM logs_since()", "takes 1 argument"),
        (
            "SELECT * FROM logs_between('2026-01-02', '2026-01-01')",
            "is before",
        ),
        (
            "SELECT * FROM logs_between('soon', '2026-01-01')",
            "is not a time",
        ),
    ] {
        let err = format!("{:#}", run_sql(&ctx, sql).await.unwrap_err());
        assert!(err.contains(want), "{sql}: {err}");
    }
}
