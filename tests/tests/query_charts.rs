//! Charts and the report over an archive made by the collector: `--chart FILE.png` writes
//! a valid PNG of the documented size, `--chart FILE.svg` an SVG; `infra-query report`
//! prints its sections, and `--html` writes one self-contained file that headless
//! Chromium opens and screenshots with its charts present.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use infralog_tests::{ImportTo, bin, import_rfc3164, loghub, python, run_ok};

fn archive(dir: &Path) -> PathBuf {
    let archive = dir.join("archive");
    import_rfc3164(
        "chart-host",
        ImportTo::Archive(&archive),
        &loghub("Linux/Linux_2k.log"),
    );
    archive
}

fn infra_query(archive: &Path) -> Command {
    let mut cmd = Command::new(bin("infra-query"));
    cmd.arg("--archive").arg(archive).stdin(Stdio::null());
    cmd
}

/// Checks a PNG with the Python standard library: signature, every chunk's CRC, IHDR, and
/// that the image data inflates to exactly height × (1 + width × bytes per pixel).
/// Prints `width height distinct_rows`.
fn check_png(path: &Path) -> (u32, u32, usize) {
    let out = python(&format!(
        r#"
import struct, zlib
data = open({path:?}, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
at, idat, ihdr = 8, b"", None
while at < len(data):
    n, kind = struct.unpack(">I4s", data[at:at+8])
    body = data[at+8:at+8+n]
    crc, = struct.unpack(">I", data[at+8+n:at+12+n])
    assert zlib.crc32(kind + body) & 0xffffffff == crc, "bad CRC in " + str(kind)
    if kind == b"IHDR": ihdr = struct.unpack(">IIBBBBB", body)
    if kind == b"IDAT": idat += body
    at += 12 + n
    if kind == b"IEND": break
w, h, depth, color = ihdr[:4]
bpp = {{2: 3, 6: 4, 0: 1, 4: 2}}[color] * depth // 8
raw = zlib.decompress(idat)
assert len(raw) == h * (1 + w * bpp), "image data has the wrong length"
stride = 1 + w * bpp
rows = set(raw[i*stride+1:(i+1)*stride] for i in range(h))
print(w, h, len(rows))
"#,
        path = path.display().to_string()
    ));
    let v: Vec<u64> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
    (v[0] as u32, v[1] as u32, v[2] as usize)
}

#[test]
fn png_and_svg_charts_of_a_result() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    let png = dir.path().join("errors.png");
    let sql = "SELECT date_trunc('hour', timestamp) AS hour, severity, count(*) AS lines \
               FROM logs GROUP BY 1, 2 ORDER BY 1";
    let out = run_ok(
        infra_query(&archive)
            .args(["--format", "csv", "-c", sql, "--chart"])
            .arg(&png),
    );
    // The result is still printed.
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hour,severity,lines\n"));
    let (w, h, distinct_rows) = check_png(&png);
    assert_eq!((w, h), (1200, 600));
    // Something is drawn: not a blank canvas.
    assert!(distinct_rows > 50, "{distinct_rows} distinct pixel rows");

    let svg = dir.path().join("processes.svg");
    run_ok(
        infra_query(&archive)
            .args([
                "-c",
                "SELECT process_name, count(*) FROM logs GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
                "--chart",
            ])
            .arg(&svg),
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("<svg"), "{text}");
    assert!(text.contains("<rect"), "bars expected: {text}");
    assert!(text.contains("sshd"), "process labels expected");

    // A result that cannot be drawn is a clear error, not a panic or an empty file.
    let out = infra_query(&archive)
        .args(["-c", "SELECT message FROM logs LIMIT 3", "--chart"])
        .arg(dir.path().join("none.png"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("numeric column"), "{err}");
}

#[test]
fn report_in_the_terminal_and_as_html_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive(dir.path());
    // The sample's lines are months old: a window that covers them.
    let out = run_ok(infra_query(&archive).args(["report", "--since", "36500d"]));
    let text = String::from_utf8(out.stdout).unwrap();
    for heading in [
        "== Lines per hour by severity ==",
        "== Top hosts ==",
        "== Top processes ==",
        "== Top error templates",
        "== New templates ==",
        "== Anomalies ==",
        "== Parse errors, truncated lines and losses ==",
    ] {
        assert!(text.contains(heading), "{heading} missing:\n{text}");
    }
    // The sample's lines name their host.
    assert!(
        text.contains("| combo    | 2000  |"),
        "all lines counted:\n{text}"
    );
    // Another host's report is empty, not an error.
    let out = run_ok(infra_query(&archive).args(["report", "--since", "36500d", "--host", "nope"]));
    assert!(
        !String::from_utf8(out.stdout)
            .unwrap()
            .contains("chart-host")
    );

    let html = dir.path().join("report.html");
    run_ok(
        infra_query(&archive)
            .args(["report", "--since", "36500d", "--html"])
            .arg(&html),
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    // Self-contained: nothing fetched from elsewhere.
    for external in ["src=\"http", "href=\"http", "<script src", "<link "] {
        assert!(!page.contains(external), "{external}");
    }

    let profile = tempfile::tempdir().unwrap();
    let chromium = |extra: &[&str]| {
        let mut cmd = Command::new("chromium");
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null());
        run_ok(&mut cmd)
    };
    // The DOM as Chromium built it: the three charts are there, with their lines and
    // bars.
    let dom = String::from_utf8(chromium(&["--dump-dom"]).stdout).unwrap();
    assert_eq!(
        dom.matches("<figure class=\"chart\"><svg").count(),
        3,
        "{dom}"
    );
    assert!(
        dom.contains("<polyline") || dom.contains("<path"),
        "no line drawn"
    );
    let shot = dir.path().join("report.png");
    chromium(&[&format!("--screenshot={}", shot.display())]);
    let (w, h, distinct_rows) = check_png(&shot);
    assert_eq!((w, h), (1280, 2400));
    assert!(distinct_rows > 200, "{distinct_rows} distinct pixel rows");
}
