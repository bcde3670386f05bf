//! The interactive shell driven through tmux (a real terminal): Tab completes tables,
//! columns, keywords and `extra` keys; `\d`, `\timing`, `\format`, `\o FILE`, `\tz`,
//! `\chart`; a long result goes through the pager; an error points at its place in the
//! SQL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use infralog_tests::{ImportTo, bin, import_rfc3164, loghub, run_ok};

struct Tmux {
    socket: String,
    home: tempfile::TempDir,
}

impl Tmux {
    fn start(archive: &Path) -> Tmux {
        let home = tempfile::tempdir().unwrap();
        let socket = format!("infralog-shell-{}", std::process::id());
        // A pager that marks what it shows, so the test can tell it ran.
        let pager = home.path().join("pager.sh");
        std::fs::write(&pager, "#!/bin/sh\necho '[paged]'\ncat\n").unwrap();
        run_ok(Command::new("chmod").arg("+x").arg(&pager));
        let cmd = format!(
            "env HOME={home} PAGER={pager} {bin} --archive {archive}",
            home = home.path().display(),
            pager = pager.display(),
            bin = bin("infra-query").display(),
            archive = archive.display()
        );
        run_ok(Command::new("tmux").args([
            "-L",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "q",
            "-x",
            "160",
            "-y",
            "50",
            &cmd,
        ]));
        let t = Tmux { socket, home };
        t.wait_for("infra>");
        t
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["-L", &self.socket, "send-keys", "-t", "q"];
        args.extend_from_slice(keys);
        run_ok(Command::new("tmux").args(&args));
    }

    /// Types `text` literally. tmux takes an argument ending in `;` as a command
    /// separator, so semicolons are sent as their hex code.
    fn type_text(&self, text: &str) {
        for (i, part) in text.split(';').enumerate() {
            if i > 0 {
                run_ok(Command::new("tmux").args([
                    "-L",
                    &self.socket,
                    "send-keys",
                    "-t",
                    "q",
                    "-H",
                    "3b",
                ]));
            }
            if !part.is_empty() {
                run_ok(Command::new("tmux").args([
                    "-L",
                    &self.socket,
                    "send-keys",
                    "-t",
                    "q",
                    "-l",
                    part,
                ]));
            }
        }
    }

    fn screen(&self) -> String {
        let out = run_ok(Command::new("tmux").args([
            "-L",
            &self.socket,
            "capture-pane",
            "-p",
            "-J",
            "-S",
            "-2000",
            "-t",
            "q",
        ]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn clear(&self) {
        run_ok(Command::new("tmux").args(["-L", &self.socket, "clear-history", "-t", "q"]));
        self.keys(&["C-l"]);
        std::thread::sleep(Duration::from_millis(200));
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {needle:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn shell_session_in_tmux() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    import_rfc3164(
        "shell-host",
        ImportTo::Archive(&archive),
        &loghub("Linux/Linux_2k.log"),
    );
    let t = Tmux::start(&archive);

    // Keyword, column and table completion on one line.
    t.type_text("SEL");
    t.keys(&["Tab"]);
    t.type_text(" count(*), process_na");
    t.keys(&["Tab"]);
    t.type_text(" FROM lo");
    // Tables and a column start with "lo": the common prefix is completed, a second
    // Tab lists them.
    t.keys(&["Tab"]);
    t.wait_for("FROM log");
    t.keys(&["Tab"]);
    let s = t.wait_for("logs_since");
    assert!(s.contains("logs_between"), "{s}");
    assert!(s.contains("log_date"), "{s}");
    t.type_text("s GROUP BY 2 ORDER BY 1 DESC LIMIT 3;");
    t.keys(&["Enter"]);
    let s = t.wait_for("3 rows");
    assert!(
        s.contains("SELECT count(*), process_name FROM logs GROUP BY 2"),
        "{s}"
    );
    assert!(s.contains("sshd"), "{s}");
    assert!(s.contains(" ms)") || s.contains(" s)"), "timing shown: {s}");

    // extra keys: an import records the file each line came from in extra['file'].
    t.clear();
    t.type_text("\\timing off");
    t.keys(&["Enter"]);
    t.wait_for("timing is off");
    t.type_text("SELECT count(*) FROM logs WHERE extra['fi");
    t.keys(&["Tab"]);
    t.wait_for("extra['file']");
    t.type_text(" IS NOT NULL;");
    t.keys(&["Enter"]);
    let s = t.wait_for("1 row");
    assert!(s.contains("| 2000 "), "{s}");

    // \d lists the tables, \d logs describes one with its partitions.
    t.clear();
    t.type_text("\\d");
    t.keys(&["Enter"]);
    let s = t.wait_for("templates");
    assert!(s.contains("| logs "), "{s}");
    assert!(s.contains("| stats "), "{s}");
    t.clear();
    t.type_text("\\d logs");
    t.keys(&["Enter"]);
    let s = t.wait_for("partitioned by hostname, log_date");
    assert!(s.contains("extra"), "{s}");

    // \format csv, \tz, and an error with its position.
    t.clear();
    t.type_text("\\format csv");
    t.keys(&["Enter"]);
    t.type_text("\\tz +02:00");
    t.keys(&["Enter"]);
    t.type_text("SELECT min(timestamp) AS first FROM logs;");
    t.keys(&["Enter"]);
    let s = t.wait_for("1 row");
    let value = s
        .lines()
        .skip_while(|l| *l != "first")
        .nth(1)
        .unwrap_or_default();
    assert!(
        value.starts_with("2026-") && value.ends_with("+02:00"),
        "{s}"
    );
    t.clear();
    t.type_text("SELECT count(*) FROM logs WHERE nope > 1;");
    t.keys(&["Enter"]);
    let s = t.wait_for("LINE 1:");
    let caret_line = s
        .lines()
        .skip_while(|l| !l.contains("LINE 1:"))
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let line = s.lines().find(|l| l.contains("LINE 1:")).unwrap();
    assert_eq!(
        caret_line.find('^'),
        line.find("nope"),
        "caret under the column:\n{s}"
    );

    // \o FILE: results go to the file; \o: back to the screen.
    let out = t.path("out.csv");
    t.clear();
    t.type_text(&format!("\\o {}", out.display()));
    t.keys(&["Enter"]);
    t.type_text("SELECT count(*) AS n FROM logs;");
    t.keys(&["Enter"]);
    t.wait_for("1 row");
    t.type_text("\\o");
    t.keys(&["Enter"]);
    t.wait_for("results go to the screen");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "n\n2000\n");

    // A result longer than the terminal goes through the pager.
    t.clear();
    t.type_text("\\format table");
    t.keys(&["Enter"]);
    t.type_text("SELECT message FROM logs LIMIT 200;");
    t.keys(&["Enter"]);
    t.wait_for("200 rows");
    t.wait_for("[paged]");

    // \chart draws the last result in the terminal.
    t.clear();
    t.type_text("SELECT process_name, count(*) FROM logs GROUP BY 1 ORDER BY 2 DESC LIMIT 4;");
    t.keys(&["Enter"]);
    t.wait_for("4 rows");
    t.type_text("\\chart");
    t.keys(&["Enter"]);
    let s = t.wait_for("│█");
    assert!(s.contains("ftpd │"), "{s}");

    // History is kept in $HOME.
    t.type_text("\\q");
    t.keys(&["Enter"]);
    let history = t.path(".infra_query_history");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !history.exists() {
        assert!(Instant::now() < deadline, "no history written");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        std::fs::read_to_string(history)
            .unwrap()
            .contains("\\chart")
    );
}
