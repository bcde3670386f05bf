//! Template mining on the ingest path: `infra-collector import` of real syslog lines
//! (loghub Linux_2k) fills `template_id` on every row and writes the `templates` table,
//! both read back with DuckDB; a second collector importing the same lines into another
//! archive gives every template the same id.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use infralog_tests::{bin, loghub, python, run_ok};

fn import(archive: &Path) {
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["import", "--format", "rfc3164", "--hostname", "combo"])
            .arg("--archive")
            .arg(archive)
            .arg(loghub("Linux/Linux_2k.log")),
    );
}

/// (template_id → current text) from the `templates` table, and facts about `logs`.
fn read(archive: &Path) -> serde_json::Value {
    let script = format!(
        r#"
import duckdb, json
root = "{}"
logs = f"read_parquet('{{root}}/logs/**/*.parquet', hive_partitioning = true)"
tpl = f"read_parquet('{{root}}/templates/**/*.parquet', hive_partitioning = true)"
null_ids, rows, ids = duckdb.sql(f"SELECT count(*) FILTER (WHERE template_id IS NULL), count(*), count(DISTINCT template_id) FROM {{logs}}").fetchall()[0]
# The newest row of each current version: its count is the template's line count.
current = duckdb.sql(f'''
    SELECT template_id, text, count, example, hostname FROM {{tpl}} WHERE current
    QUALIFY row_number() OVER (PARTITION BY template_id ORDER BY written_at DESC) = 1''').fetchall()
missing = duckdb.sql(f'''
    SELECT count(DISTINCT template_id) FROM {{logs}}
    WHERE template_id NOT IN (SELECT template_id FROM {{tpl}})''').fetchall()[0][0]
versions = duckdb.sql(f"SELECT count(*) FROM {{tpl}} WHERE version > 1").fetchall()[0][0]
per_template = duckdb.sql(f"SELECT template_id, count(*) FROM {{logs}} GROUP BY template_id").fetchall()
print(json.dumps({{
    "null_ids": null_ids, "rows": rows, "ids": ids, "missing": missing, "versions": versions,
    "current": {{str(r[0]): [r[1], r[2], r[3], r[4]] for r in current}},
    "per_template": {{str(r[0]): r[1] for r in per_template}},
}}))
"#,
        archive.display()
    );
    serde_json::from_str(&python(&script)).unwrap()
}

#[test]
fn import_fills_template_id_and_writes_the_templates_table() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    import(&a);
    let got = read(&a);
    assert_eq!(got["rows"], 2000);
    assert_eq!(got["null_ids"], 0, "every row has a template id");
    let ids = got["ids"].as_u64().unwrap();
    // The labelled data has 118 templates in this file.
    assert!((60..=250).contains(&ids), "{ids} templates");
    assert_eq!(
        got["missing"], 0,
        "every id of logs is in the templates table"
    );
    assert!(
        got["versions"].as_u64().unwrap() > 0,
        "generalised templates keep versions"
    );
    let current: BTreeMap<String, (String, u64, String, String)> =
        serde_json::from_value(got["current"].clone()).unwrap();
    let per_template: BTreeMap<String, u64> =
        serde_json::from_value(got["per_template"].clone()).unwrap();
    assert_eq!(current.len() as u64, ids);
    for (id, (text, count, example, host)) in &current {
        assert_eq!(per_template[id], *count, "line count of {text}");
        assert!(!example.is_empty() && host == "combo");
    }
    // The PAM session lines (about 150 in this file, for users root and cyrus, which the
    // labels keep apart and so does the miner) are a few templates, not one per line.
    let sessions: Vec<_> = current
        .values()
        .filter(|(t, ..)| t.starts_with("session opened for user"))
        .collect();
    let lines: u64 = sessions.iter().map(|s| s.1).sum();
    assert!(
        lines > 100 && (1..=4).contains(&sessions.len()),
        "{sessions:?}"
    );

    // Another collector, another archive, the same lines: the same ids for the same texts.
    import(&b);
    let other: BTreeMap<String, (String, u64, String, String)> =
        serde_json::from_value(read(&b)["current"].clone()).unwrap();
    assert_eq!(
        current.iter().map(|(id, t)| (id, &t.0)).collect::<Vec<_>>(),
        other.iter().map(|(id, t)| (id, &t.0)).collect::<Vec<_>>()
    );
}

/// `infra-collector mine` prints one CSV row per line, in order; run again from the state
/// the first run saved, it gives every line the same id.
#[test]
fn mine_prints_a_template_per_line_and_resumes_from_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mine = || {
        let out = run_ok(
            Command::new(bin("infra-collector"))
                .args(["mine", "--format", "rfc3164", "--state"])
                .arg(&state)
                .arg(loghub("Linux/Linux_2k.log")),
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = mine();
    let rows: Vec<Vec<String>> = first.lines().map(infralog_tests::csv_fields).collect();
    assert_eq!(rows[0], ["line", "template_id", "template"]);
    assert_eq!(rows.len(), 2001);
    assert!(
        rows[1..]
            .iter()
            .enumerate()
            .all(|(i, r)| r[0] == (i + 1).to_string())
    );
    assert!(rows[1..].iter().all(|r| r[1].parse::<i64>().unwrap() > 0));
    assert!(state.join("snapshot").exists());
    let again = mine();
    let ids = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| infralog_tests::csv_fields(l)[1].clone())
            .collect()
    };
    assert_eq!(ids(&first), ids(&again));
}
