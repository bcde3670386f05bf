//! Kill -9 at any moment and a restart finds every line exactly once.
//!
//! A writer appends 1,000,000 numbered lines to a log file while the collector tails it;
//! the collector is killed with SIGKILL at 10 random moments (with small, quickly sealed
//! spool segments, so kills land during spool writes, seals, uploads and segment deletes)
//! and restarted each time. At the end every line is in the archive exactly once, checked
//! with DuckDB over the Parquet files.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use infralog_tests::{bin, python, run_ok};

const LINES: u64 = 1_000_000;
const KILLS: usize = 10;

/// SplitMix64: reproducible kill moments (the seed is printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn config(dir: &Path, input: &Path) -> std::path::PathBuf {
    let path = dir.join("collector.toml");
    std::fs::write(
        &path,
        format!(
            "[collector]\nhostname = \"crash\"\nstate_dir = {state:?}\nchunk_max_age_ms = 100\n\n\
             [archive]\npath = {archive:?}\n\n\
             [spool]\nsegment_mb = 2\nseal_secs = 1\nfsync_interval_ms = 100\n\n\
             [sources.kmsg]\nenabled = false\n\n[sources.ebpf]\nenabled = false\n\n[sources.journald]\nenabled = false\n\n\
             [sources.file]\nenabled = true\npoll_interval_ms = 50\n\n\
             [[sources.file.inputs]]\npaths = [{input:?}]\nformat = \"raw\"\n\n\
             [sources.containers]\ndocker = false\ncri = false\n",
            state = dir.join("state").display().to_string(),
            archive = dir.join("archive").display().to_string(),
            input = input.display().to_string(),
        ),
    )
    .unwrap();
    path
}

fn start(config: &Path, log: &Path) -> Child {
    Command::new(bin("infra-collector"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .expect("start infra-collector")
}

#[test]
fn kill_9_at_ten_random_moments_loses_and_doubles_nothing() {
    let seed = std::env::var("INFRALOG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed {seed} (INFRALOG_CRASH_SEED={seed} repeats it)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("app.log");
    std::fs::File::create(&input).unwrap();
    let config = config(dir.path(), &input);
    let log = dir.path().join("collector.log");

    // The writer: numbered lines in bursts, as a busy application writes them.
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (input, done) = (input.clone(), done.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&input)
                .unwrap();
            let mut buf = Vec::with_capacity(1 << 20);
            for i in 0..LINES {
                writeln!(
                    buf,
                    "{i:07} payment accepted for order {} in {} ms",
                    i * 7,
                    i % 913
                )
                .unwrap();
                if i % 20_000 == 19_999 {
                    f.write_all(&buf).unwrap();
                    buf.clear();
                    // Spread over the whole kill phase, so kills land while lines flow.
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
            f.write_all(&buf).unwrap();
            done.store(true, Ordering::SeqCst);
        })
    };

    for kill in 0..KILLS {
        let mut child = start(&config, &log);
        let after = Duration::from_millis(300 + rng.next() % 2200);
        std::thread::sleep(after);
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "collector exited by itself ({status}) before kill {kill}:\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        eprintln!("kill {kill} after {after:?}");
    }
    writer.join().unwrap();
    assert!(done.load(Ordering::SeqCst));
    // The kills interrupted real work: rows were archived between them, and each restart
    // recovered the spool a killed run left behind.
    let log_text = std::fs::read_to_string(&log).unwrap();
    let recovered = log_text.matches("spool recovered").count();
    assert!(
        recovered >= KILLS - 1,
        "{recovered} recoveries:\n{log_text}"
    );
    let archived_during_kills = python(&format!(
        "import duckdb\nprint(duckdb.sql(\"SELECT count(*) FROM \
         read_parquet('{}/logs/*/*/*.parquet')\").fetchall()[0][0])",
        dir.path().join("archive").display()
    ));
    let archived_during_kills: u64 = archived_during_kills.trim().parse().unwrap();
    eprintln!(
        "{archived_during_kills} rows archived during the kills, {} torn tails cut",
        log_text.matches("cutting the torn tail").count()
    );
    assert!(archived_during_kills > 0, "{log_text}");

    // A last run reads what is left, archives everything and stops.
    run_ok(
        Command::new(bin("infra-collector"))
            .args(["run", "--once", "--config"])
            .arg(&config),
    );
    let spool_left = run_ok(
        Command::new(bin("infra-collector"))
            .args(["spool", "verify", "--config"])
            .arg(&config),
    );
    let spool_left = String::from_utf8(spool_left.stdout).unwrap();
    assert!(
        spool_left.contains("waiting for the archive: 0 sealed segment(s)"),
        "{spool_left}"
    );

    let counts = python(&format!(
        "import duckdb\n\
         r = duckdb.sql(\"\"\"SELECT count(*), count(DISTINCT message),\n\
             min(CAST(substr(message, 1, 7) AS INTEGER)), max(CAST(substr(message, 1, 7) AS INTEGER))\n\
             FROM read_parquet('{}/logs/*/*/*.parquet')\"\"\").fetchall()\n\
         print(r[0])",
        dir.path().join("archive").display()
    ));
    assert_eq!(
        counts.trim(),
        format!("({LINES}, {LINES}, 0, {})", LINES - 1),
        "seed {seed}; collector log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
