//! The spool on a full disk: a tmpfs of a few MB fills while the archive is unavailable;
//! the collector holds the reader back with a clear error instead of losing or corrupting
//! anything, and finishes with every line exactly once when space returns.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infralog_tests::{bin, missing_root, privileged_or_skip, python, run_ok};

struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_holds_the_source_back_and_nothing_is_lost_or_corrupted() {
    if !privileged_or_skip("spool disk full", missing_root()) {
        return;
    }
    const LINES: usize = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let spool_fs = dir.path().join("spoolfs");
    std::fs::create_dir(&spool_fs).unwrap();
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
            .arg(&spool_fs),
    );
    let _mount = Tmpfs(spool_fs.clone());
    // The archive is blocked (a file where its directory should be) until the test
    // removes it, so the spool can only grow.
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    std::fs::write(archive.join("logs"), b"in the way").unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nstate_dir = {:?}\n\n[archive]\npath = {:?}\n\n\
             [spool]\ndir = {:?}\nsegment_mb = 1\nmax_mb = 64\nseal_secs = 1\n",
            dir.path().join("state").display().to_string(),
            archive.display().to_string(),
            spool_fs.display().to_string()
        ),
    )
    .unwrap();
    let input = dir.path().join("in.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for i in 0..LINES {
        writeln!(
            f,
            "<13>Nov 29 10:00:00 h app: line {i:06} of the disk full test"
        )
        .unwrap();
    }
    drop(f);

    let log = dir.path().join("import.log");
    let mut import = Command::new(bin("infra-collector"))
        .args(["import", "--format", "rfc3164", "--config"])
        .arg(&config)
        .arg(&input)
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("No space left on device")
    {
        assert!(
            import.try_wait().unwrap().is_none(),
            "import ended with a full disk:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(Instant::now() < deadline, "the spool disk never filled");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        import.try_wait().unwrap().is_none(),
        "import waits for space"
    );

    // Every record on the full disk is intact.
    let spools: Vec<_> = std::fs::read_dir(&spool_fs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(spools.len(), 1, "{spools:?}");
    let status_config = dir.path().join("status.toml");
    std::fs::write(
        &status_config,
        format!(
            "[collector]\nstate_dir = \"/nonexistent\"\n\n[archive]\npath = {:?}\n\n[spool]\ndir = {:?}\n",
            archive.display().to_string(),
            spools[0].display().to_string()
        ),
    )
    .unwrap();
    let status = run_ok(
        Command::new(bin("infra-collector"))
            .args(["spool", "status", "--config"])
            .arg(&status_config),
    );
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(!status.contains("damaged"), "{status}");
    assert!(!status.contains("torn tail"), "{status}");

    // Space returns: the archive takes the sealed segments and the import completes.
    std::fs::remove_file(archive.join("logs")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let exit = loop {
        if let Some(s) = import.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "import did not resume");
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(exit.success(), "{stderr}");
    assert!(stderr.contains("spool writes succeed again"), "{stderr}");
    let counts = python(&format!(
        "import duckdb\nprint(duckdb.sql(\"SELECT count(*), count(DISTINCT message) FROM \
         read_parquet('{}/logs/*/*/*.parquet')\").fetchall())",
        archive.display()
    ));
    assert_eq!(counts.trim(), format!("[({LINES}, {LINES})]"), "{stderr}");
}
