//! Real journal files for the journald tests: entries are written in the journal export
//! format and turned into journal files by `systemd-journal-remote` (Debian package
//! `systemd-journal-remote`, installed by `cargo xtask setup`), which appends when the
//! file exists.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
pub const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// A machine id for the test journals (any 32 hex digits).
pub const MACHINE_ID: &str = "0123456789abcdef0123456789abcdef";

/// Panics with the install hint when journal-remote is missing: these tests are the
/// journald source's proof and must not vanish.
pub fn require_journal_remote() {
    assert!(
        Path::new(JOURNAL_REMOTE).exists(),
        "{JOURNAL_REMOTE} not found: `apt-get install systemd-journal-remote` (cargo xtask setup)"
    );
}

/// One entry in export format. Values with a newline or a byte that is not printable
/// ASCII or UTF-8 text are written in the binary form (`NAME\n<le64 len><bytes>\n`).
pub fn export_entry(out: &mut Vec<u8>, fields: &[(&str, &[u8])]) {
    for (name, value) in fields {
        let text = !value.contains(&b'\n') && std::str::from_utf8(value).is_ok();
        if text {
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value);
        } else {
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Appends the entries of `export` to the journal file `file` (created when absent).
pub fn write_journal(file: &Path, export: &[u8]) {
    require_journal_remote();
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start systemd-journal-remote");
    child.stdin.take().unwrap().write_all(export).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "systemd-journal-remote failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A simple numbered entry: `MESSAGE=<marker> <n>`, one boot, increasing clocks.
pub fn numbered(out: &mut Vec<u8>, marker: &str, n: u64, boot: &str) {
    let rt = (1_795_341_600_000_000 + n * 1000).to_string();
    let mono = (1_000_000 + n * 1000).to_string();
    let msg = format!("{marker} {n}");
    export_entry(
        out,
        &[
            ("__REALTIME_TIMESTAMP", rt.as_bytes()),
            ("__MONOTONIC_TIMESTAMP", mono.as_bytes()),
            ("_BOOT_ID", boot.as_bytes()),
            ("MESSAGE", msg.as_bytes()),
            ("PRIORITY", b"6"),
            ("SYSLOG_IDENTIFIER", b"numbered"),
            ("_TRANSPORT", b"journal"),
        ],
    );
}

/// The export stream of entries `from..to` of [`numbered`].
pub fn numbered_range(marker: &str, from: u64, to: u64, boot: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for n in from..to {
        numbered(&mut out, marker, n, boot);
    }
    out
}

/// `<dir>/<MACHINE_ID><suffix>/system.journal`.
pub fn system_journal(dir: &Path, suffix: &str) -> PathBuf {
    dir.join(format!("{MACHINE_ID}{suffix}"))
        .join("system.journal")
}

/// A real `systemd-journald` (the distribution's binary) running in a private mount
/// namespace: its sockets and its volatile journal live on tmpfs mounts seen only there,
/// `/dev/log` there is a link to its socket as on a systemd host, and the host's journal,
/// /run and /dev are never touched. The test's shell `body` runs in that namespace with
/// `$T` (the test directory), `$COLLECTOR`, `$QUERY` and `$JDIR` (the journal directory)
/// set, and the helper functions `wait_journal PATTERN N` (until the journal holds N
/// messages matching PATTERN) and `wait_archive MARKER N` (until N rows matching MARKER
/// are archived) defined.
pub struct JournaldScenario {
    pub dir: tempfile::TempDir,
}

impl JournaldScenario {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("journald.conf"),
            "[Journal]\nStorage=volatile\nRateLimitBurst=0\n",
        )
        .unwrap();
        JournaldScenario { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn archive(&self) -> PathBuf {
        self.path().join("archive")
    }

    /// Writes the collector configuration `$T/collector.toml` with `sources` (TOML).
    pub fn collector_config(&self, sources: &str) {
        let t = self.path();
        std::fs::write(
            t.join("collector.toml"),
            format!(
                "[collector]\nhostname = \"jd-test\"\nstate_dir = {:?}\nchunk_max_age_ms = 100\n\n\
                 [archive]\npath = {:?}\n\n[spool]\nseal_secs = 1\n\n{sources}\n",
                t.join("state").display().to_string(),
                self.archive().display().to_string()
            ),
        )
        .unwrap();
    }

    /// Runs `body` in the namespace while journald runs; returns the script's output.
    pub fn run(&self, body: &str) -> std::process::Output {
        let t = self.path();
        let script = format!(
            r#"set -eu
T={t}
COLLECTOR={collector}
QUERY={query}
JDIR=/run/log/journal
export T COLLECTOR QUERY JDIR
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/systemd/journal /run/log/journal
mount --bind $T/journald.conf /etc/systemd/journald.conf 2>/dev/null || {{
    mkdir -p $T/etc-systemd; cp $T/journald.conf $T/etc-systemd/;
    mount --bind $T/etc-systemd /etc/systemd; }}
if [ -d /var/log/journal ]; then mkdir -p $T/var-journal; mount --bind $T/var-journal /var/log/journal; fi
mkdir -p $T/olddev
mount --rbind /dev $T/olddev
mount -t tmpfs -o mode=755 tmpfs /dev
for e in $T/olddev/* $T/olddev/.[!.]*; do
    if [ -e "$e" ] || [ -L "$e" ]; then ln -s "$e" "/dev/$(basename "$e")"; fi
done
rm -f /dev/log
ln -s /run/systemd/journal/dev-log /dev/log
SYSTEMD_LOG_TARGET=console {journald} > $T/journald.log 2>&1 &
JOURNALD=$!
export JOURNALD
for i in $(seq 1 500); do [ -S /run/systemd/journal/dev-log ] && break; sleep 0.02; done
[ -S /run/systemd/journal/dev-log ] || {{ echo "journald did not start"; cat $T/journald.log; exit 1; }}
# The socket comes first; the journal file (written with journald's own first entry) a
# moment later, which on a busy machine is after the body's first look at $JDIR.
for i in $(seq 1 500); do ls $JDIR/*/*.journal >/dev/null 2>&1 && break; sleep 0.02; done
wait_journal() {{
    for i in $(seq 1 600); do
        n=$(journalctl -D $JDIR -o cat 2>/dev/null | grep -c -- "$1" || true)
        [ "$n" -ge "$2" ] && return 0
        sleep 0.1
    done
    echo "journal has $n of $2 '$1'"; return 1
}}
wait_archive() {{
    for i in $(seq 1 600); do
        n=$($QUERY --archive $T/archive --format csv -c "SELECT count(*) FROM logs WHERE message LIKE '%$1%'" 2>/dev/null | tail -1 || true)
        [ -n "$n" ] && [ "$n" -ge "$2" ] 2>/dev/null && return 0
        sleep 0.2
    done
    echo "archive has $n of $2 '$1'"; return 1
}}
{body}
kill $JOURNALD; wait $JOURNALD || true
"#,
            t = t.display(),
            collector = crate::bin("infra-collector").display(),
            query = crate::bin("infra-query").display(),
            journald = JOURNALD,
        );
        std::fs::write(t.join("scenario.sh"), &script).unwrap();
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "bash"])
            .arg(t.join("scenario.sh"))
            .output()
            .expect("run unshare")
    }

    /// A file of the test directory as text (empty when missing). Invalid UTF-8 is
    /// replaced: a journal export holds whatever the host's kernel logged this boot.
    pub fn file(&self, name: &str) -> String {
        std::fs::read(self.path().join(name))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Default for JournaldScenario {
    fn default() -> Self {
        Self::new()
    }
}
