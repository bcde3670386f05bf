//! Bad input loses nothing: every line becomes a row, flagged when it could not be parsed,
//! was cut, or was not UTF-8; an unreadable file is a clear error and the others still go
//! in; a bad configuration is refused with its line and the reason.

use std::process::Command;

use infralog_tests::{bin, query_csv};

#[test]
fn every_bad_line_is_kept_as_a_flagged_row() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let bad = dir.path().join("bad.log");
    let mut text: Vec<u8> = Vec::new();
    text.extend_from_slice(b"Nov  7 10:30:45 host1 good[1]: a good line\n");
    text.extend_from_slice(b"Nov  7 10:30:46 host1 utf8[2]: caf\xe9 \xff\xfe bytes\n");
    text.extend_from_slice(b"Nov  7 10:30:47 host1 nul[3]: a\0b\0c\n");
    text.extend_from_slice(b"\n");
    let huge_header = b"Nov  7 10:30:48 host1 huge[4]: ";
    text.extend_from_slice(huge_header);
    text.extend(std::iter::repeat_n(b'x', 1 << 20));
    text.push(b'\n');
    text.extend_from_slice(b"this header is neither rfc 3164 nor rfc 5424\n");
    text.extend_from_slice(
        b"<165>1 2026-11-07T10:30:49.5Z host2 app 77 ID47 [ex@32473 iut=\"3\" note=\"a \\\"q\\\"\"] sd line\n",
    );
    std::fs::write(&bad, &text).unwrap();
    let missing = dir.path().join("does-not-exist.log");
    let a_dir = dir.path().join("a-directory.log");
    std::fs::create_dir(&a_dir).unwrap();

    let out = Command::new(bin("infra-collector"))
        .args([
            "import",
            "--format",
            "auto",
            "--hostname",
            "fallback",
            "--archive",
        ])
        .arg(&archive)
        .arg(&missing)
        .arg(&bad)
        .arg(&a_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unreadable files make the exit code 2: {stderr}"
    );
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(stderr.contains(&a_dir.display().to_string()), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let count = query_csv(&archive, "SELECT count(*) FROM logs");
    assert_eq!(
        count,
        vec![vec!["7"]],
        "every line of the readable file is a row"
    );

    let q = |sql: &str| query_csv(&archive, sql);
    assert_eq!(
        q("SELECT message, extra['raw_hex'] FROM logs WHERE process_name = 'utf8'"),
        vec![vec![
            "caf\u{fffd} \u{fffd}\u{fffd} bytes".to_string(),
            hex(b"caf\xe9 \xff\xfe bytes"),
        ]]
    );
    assert_eq!(
        q(
            "SELECT length(message), extra['parse_error'] IS NULL FROM logs WHERE process_name = 'nul'"
        ),
        vec![vec!["5", "true"]],
        "NUL bytes are kept in the message"
    );
    assert_eq!(
        q(
            "SELECT extra['truncated'], length(message) < 1048576 FROM logs WHERE process_name = 'huge'"
        ),
        vec![vec![
            (huge_header.len() + (1 << 20)).to_string().as_str(),
            "true"
        ]],
        "extra['truncated'] holds the whole line's length"
    );
    assert_eq!(
        q(
            "SELECT message, hostname FROM logs WHERE extra['parse_error'] IS NOT NULL ORDER BY message"
        ),
        vec![
            vec!["", "fallback"],
            vec!["this header is neither rfc 3164 nor rfc 5424", "fallback"],
        ],
        "unparsable lines are kept whole, flagged, under the fallback hostname"
    );
    assert_eq!(
        q(
            "SELECT hostname, process_name, process_id, priority, facility, extra['msgid'], \
           extra['ex@32473.iut'], extra['ex@32473.note'], message FROM logs WHERE hostname = 'host2'"
        ),
        vec![vec![
            "host2", "app", "77", "5", "local4", "ID47", "3", "a \"q\"", "sd line"
        ]],
        "RFC 5424 structured data lands in extra, unescaped"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn bad_config_is_refused_with_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[collector]\nstate_dir = \"/tmp/x\"\n\n[archive]\npath = \"/tmp/y\"\nfile_rowz = 5\n",
    )
    .unwrap();
    let out = Command::new(bin("infra-collector"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 6"), "{stderr}");
    assert!(stderr.contains("file_rowz"), "{stderr}");
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
}
