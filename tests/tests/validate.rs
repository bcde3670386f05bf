//! `infra-collector validate`: a set of broken configurations, each refused with the line
//! of the problem and the reason (every problem of a file at once), a good one accepted
//! with a summary, and `run` refusing a bad one the same way.

use std::fs;
use std::process::{Command, Stdio};

use infralog_tests::bin;

fn validate(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    fs::write(
        &path,
        text.replace("$DIR", &dir.path().display().to_string()),
    )
    .unwrap();
    let out = Command::new(bin("infra-collector"))
        .arg("validate")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn broken_configs_are_refused_with_their_line_and_reason() {
    let cases: &[(&str, &[(usize, &str)])] = &[
        // A misspelt key, with the name meant.
        (
            "[archive]\npath = \"/tmp/a\"\nzstd_levle = 4\n",
            &[
                (3, "unknown field `zstd_levle`"),
                (3, "did you mean `zstd_level`?"),
            ],
        ),
        // A misspelt table.
        (
            "\n[colector]\nhostname = \"x\"\n",
            &[(2, "did you mean `collector`?")],
        ),
        // A wrong type.
        ("[spool]\nsegment_mb = \"big\"\n", &[(2, "invalid type")]),
        // TOML that does not parse.
        ("[spool\nsegment_mb = 1\n", &[(1, "")]),
        // Bad values: every one reported, each at its line.
        (
            "[spool]\nsegment_mb = 0\n\n[archive]\nzstd_level = 40\n",
            &[
                (2, "spool.segment_mb must be at least 1"),
                (5, "archive.zstd_level must be between 1 and 22"),
            ],
        ),
        // Addresses.
        (
            "[http]\nenabled = true\nlisten = \"localhost\"\n",
            &[(3, "is not an address:port")],
        ),
        (
            "[[sources.net.listeners]]\naddress = \"127.0.0.1:99999\"\nprotocol = \"udp\"\n",
            &[(1, "99999")],
        ),
        // Off loopback without a token.
        (
            "[http]\nlisten = \"0.0.0.0:9880\"\n",
            &[(2, "not loopback"), (2, "http.token_file")],
        ),
        // Files it names: a token file, S3 credentials, TLS certificates.
        (
            "[http]\nlisten = \"0.0.0.0:9880\"\ntoken_file = \"$DIR/no-token\"\n",
            &[(3, "http.token_file: cannot read")],
        ),
        (
            "[archive]\npath = \"s3://bucket/logs\"\n[archive.s3]\nendpoint = \"http://127.0.0.1:9000\"\ncredentials_file = \"$DIR/no-creds\"\n",
            &[(5, "archive.s3.credentials_file: cannot read")],
        ),
        (
            "[[sources.net.listeners]]\naddress = \"127.0.0.1:6514\"\nprotocol = \"tls\"\n[sources.net.listeners.tls]\ncert = \"$DIR/no.crt\"\nkey = \"$DIR/no.key\"\n",
            &[
                (5, "tls.cert (listener 127.0.0.1:6514): cannot read"),
                (6, "tls.key (listener 127.0.0.1:6514): cannot read"),
            ],
        ),
        (
            "[archive]\npath = \"s3://bucket/logs\"\n[archive.s3]\nendpoint = \"127.0.0.1:9000\"\n",
            &[(
                4,
                "archive.s3.endpoint: \"127.0.0.1:9000\" is not http(s)://host[:port]",
            )],
        ),
        // An archive location that is not one.
        ("[archive]\npath = \"ftp://x/y\"\n", &[(2, "archive.path")]),
        // A bad alert target.
        (
            "[[alert.targets]]\nname = \"ops\"\nkind = \"pager\"\nurl = \"https://x/\"\n",
            &[(1, "pager")],
        ),
    ];
    for (text, expected) in cases {
        let (ok, _, err) = validate(text);
        assert!(!ok, "accepted:\n{text}");
        for (line, why) in *expected {
            let found = err
                .lines()
                .any(|l| l.contains(&format!("line {line}:")) && l.contains(why));
            assert!(
                found,
                "want line {line} and {why:?} for\n{text}\ngot:\n{err}"
            );
        }
        let distinct: std::collections::BTreeSet<usize> = expected.iter().map(|e| e.0).collect();
        assert!(
            err.contains(&format!("{} problem(s)", distinct.len())),
            "every problem counted once:\n{err}"
        );
    }
}

#[test]
fn a_good_config_is_summarised_and_run_refuses_a_bad_one_the_same_way() {
    let (ok, out, err) =
        validate("[collector]\nhostname = \"web-01\"\n[archive]\npath = \"$DIR/archive\"\n");
    assert!(ok, "{err}");
    assert!(out.contains("valid") && out.contains("/archive"), "{out}");
    let (ok, out, err) = {
        let out = Command::new(bin("infra-collector"))
            .arg("validate")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(
        ok && out.contains("(built-in default): valid"),
        "{out}{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    fs::write(&path, "[spool]\nsegment_mb = 0\n").unwrap();
    let out = Command::new(bin("infra-collector"))
        .args(["run", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("line 2: spool.segment_mb must be at least 1"),
        "{err}"
    );
}
