//! What a new user meets first: the collector started with an empty (or partial)
//! configuration runs on the built-in defaults, and its log lines carry no colour codes
//! when they go to a file, a pipe or journald — only on a terminal, and not even there
//! with `NO_COLOR`.

use std::path::Path;
use std::process::{Command, Stdio};

use infralog_tests::{bin, query_csv};

/// A configuration that reads one test file and nothing of the host.
fn file_only_config(dir: &Path) -> std::path::PathBuf {
    let log = dir.join("app.log");
    std::fs::write(&log, "first line\nsecond line\n").unwrap();
    let config = dir.join("partial.toml");
    // Only what differs from the defaults: the archive and state dirs are the built-in
    // ./data and ./data/state, relative to the working directory.
    std::fs::write(
        &config,
        format!(
            "# only the sources this test wants\n\
             [sources.kmsg]\nenabled = false\n\
             [sources.ebpf]\nenabled = false\n\
             [sources.journald]\nenabled = false\n\
             [sources.containers]\ndocker = false\ncri = false\n\
             [[sources.file.inputs]]\npaths = [{:?}]\nformat = \"raw\"\n",
            log.display().to_string()
        ),
    )
    .unwrap();
    config
}

#[test]
fn logs_to_a_file_have_no_escape_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = file_only_config(dir.path());
    let stdout = dir.path().join("stdout.log");
    let stderr = dir.path().join("stderr.log");
    let status = Command::new(bin("infra-collector"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("NO_COLOR")
        .env("INFRALOG_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .status()
        .unwrap();
    let log = std::fs::read(&stderr).unwrap();
    let text = String::from_utf8_lossy(&log);
    assert!(status.success(), "{text}");
    assert!(
        text.contains("infra-collector starting"),
        "no log lines to look at:\n{text}"
    );
    assert!(
        !log.contains(&0x1b),
        "escape codes in a log written to a file:\n{text:?}"
    );
    assert!(!std::fs::read(&stdout).unwrap().contains(&0x1b));
    // The partial configuration archived under the default ./data of the working directory.
    let rows = query_csv(
        &dir.path().join("data"),
        "SELECT message FROM logs ORDER BY message",
    );
    assert_eq!(rows, vec![vec!["first line"], vec!["second line"]]);
}

/// On a terminal (a pseudo-terminal from `script`) the levels are coloured, unless
/// `NO_COLOR` is set: the check above is about the destination, not colours being gone.
#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("`script` (util-linux) is needed to run the collector on a terminal");
    }
    let dir = tempfile::tempdir().unwrap();
    let config = file_only_config(dir.path());
    let on_tty = |no_color: Option<&str>| -> Vec<u8> {
        let collector = bin("infra-collector");
        let cmd = format!(
            "{} run --once --config {}",
            collector.display(),
            config.display()
        );
        let mut script = Command::new("script");
        script
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .current_dir(dir.path())
            .env("INFRALOG_LOG", "info")
            .stdin(Stdio::null());
        match no_color {
            Some(v) => script.env("NO_COLOR", v),
            None => script.env_remove("NO_COLOR"),
        };
        let out = script.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        out.stdout
    };
    let coloured = on_tty(None);
    assert!(
        String::from_utf8_lossy(&coloured).contains("infra-collector starting"),
        "{coloured:?}"
    );
    assert!(
        coloured.windows(2).any(|w| w == b"\x1b["),
        "no colours on a terminal: {:?}",
        String::from_utf8_lossy(&coloured)
    );
    let plain = on_tty(Some("1"));
    assert!(String::from_utf8_lossy(&plain).contains("infra-collector starting"));
    assert!(
        !plain.contains(&0x1b),
        "colours despite NO_COLOR=1: {:?}",
        String::from_utf8_lossy(&plain)
    );
}

#[test]
fn empty_config_file_means_the_built_in_defaults() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("empty.toml", ""),
        ("comments.toml", "# nothing to change yet\n\n"),
    ] {
        let config = dir.path().join(name);
        std::fs::write(&config, text).unwrap();
        // probe loads the configuration and reports the default sources.
        let out = Command::new(bin("infra-collector"))
            .args(["probe", "--config"])
            .arg(&config)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(!stderr.contains("missing field"), "{name}: {stderr}");
        let builtin = Command::new(bin("infra-collector"))
            .arg("probe")
            .current_dir(dir.path())
            .output()
            .unwrap();
        // The sources part of the report (before the eBPF part, whose hook attempts
        // may differ from one run to the next) is the built-in configuration's.
        let sources = |o: &[u8]| {
            let t = String::from_utf8_lossy(o).into_owned();
            t.split("kernel:").next().unwrap_or_default().to_string()
        };
        assert_eq!(sources(&out.stdout), sources(&builtin.stdout), "{name}");
    }

    // And it runs: started with the empty file in an empty directory, the collector
    // spools under ./data/state and archives under ./data, the defaults.
    let config = dir.path().join("empty.toml");
    let out = Command::new(bin("infra-collector"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("missing field"), "{stderr}");
    assert!(!stderr.contains("invalid configuration"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
    assert!(
        dir.path().join("data/state/spool").is_dir(),
        "no spool under ./data/state: {stderr}"
    );
}

#[test]
fn bad_partial_config_is_refused_with_its_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "# almost empty\n\n[archive]\nzstd_levl = 3\n").unwrap();
    let out = Command::new(bin("infra-collector"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad configuration was accepted");
    assert!(
        stderr.contains("line 4") && stderr.contains("zstd_levl"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "ran despite the error");
}
