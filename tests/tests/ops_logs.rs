//! The collector's own log lines: under systemd (stderr is the stream `JOURNAL_STREAM`
//! names) plain lines with a `<N>` priority prefix and no timestamp; JSON lines on
//! request; timestamped text otherwise (also when `JOURNAL_STREAM` names another stream,
//! as for a child that inherited it).

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use infralog_tests::bin;

/// An environment variable's value, from the path stderr goes to.
type EnvValue<'a> = &'a dyn Fn(&Path) -> String;

/// `run --once` over one small file with `env`; its stderr.
fn run_once(dir: &Path, env: &[(&str, EnvValue<'_>)]) -> String {
    let root = dir.display();
    let cfg = dir.join("c.toml");
    fs::write(dir.join("app.log"), "<13>Dec  7 12:00:00 h app[1]: hello\n").unwrap();
    fs::write(
        &cfg,
        format!(
            "[collector]\nstate_dir = \"{root}/state\"\n[archive]\npath = \"{root}/archive\"\n\
             [sources.kmsg]\nenabled = false\n[sources.ebpf]\nenabled = false\n\
             [sources.journald]\nenabled = false\n[sources.containers]\ndocker = false\ncri = false\n\
             [[sources.file.inputs]]\npaths = [\"{root}/app.log\"]\n[http]\nenabled = false\n"
        ),
    )
    .unwrap();
    let log = dir.join("stderr.log");
    let stderr = File::create(&log).unwrap();
    let mut cmd = Command::new(bin("infra-collector"));
    cmd.args(["run", "--once", "--config"])
        .arg(&cfg)
        .env_remove("JOURNAL_STREAM")
        .env_remove("INFRALOG_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v(&log));
    }
    let status = cmd.status().unwrap();
    let text = fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    assert!(text.contains("infra-collector starting"), "{text}");
    text
}

fn stream_of(path: &Path) -> String {
    let m = fs::metadata(path).unwrap();
    format!("{}:{}", m.dev(), m.ino())
}

#[test]
fn under_systemd_lines_carry_a_priority_and_no_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let text = run_once(dir.path(), &[("JOURNAL_STREAM", &|log| stream_of(log))]);
    for line in text.lines() {
        assert!(
            line.starts_with("<6>") || line.starts_with("<4>") || line.starts_with("<3>"),
            "{line}"
        );
        assert!(
            !line.contains("Z  INFO") && !line.contains("2026-"),
            "{line}"
        );
    }
    assert!(text.contains("<6>infra-collector starting"), "{text}");
}

#[test]
fn an_inherited_journal_stream_variable_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let text = run_once(dir.path(), &[("JOURNAL_STREAM", &|_| "1:1".to_string())]);
    let first = text.lines().next().unwrap();
    assert!(first.contains(" INFO ") && first.contains('T'), "{first}");
    assert!(!first.starts_with('<'), "{first}");
}

#[test]
fn json_logs_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let text = run_once(
        dir.path(),
        &[("INFRALOG_LOG_FORMAT", &|_| "json".to_string())],
    );
    let mut messages = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        messages.push(v["fields"]["message"].as_str().unwrap_or("").to_string());
    }
    assert!(
        messages.iter().any(|m| m == "infra-collector starting"),
        "{messages:?}"
    );
    // A value it does not know is refused in one line, and text is used.
    let text = run_once(
        dir.path(),
        &[("INFRALOG_LOG_FORMAT", &|_| "yaml".to_string())],
    );
    assert!(text.contains("INFRALOG_LOG_FORMAT=\"yaml\""), "{text}");
}
