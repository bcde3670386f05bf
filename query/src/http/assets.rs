//! The console's files, embedded in the binary: `query/assets/` (our page, script and
//! styles) and `query/assets/vendor/` (Preact, htm and uPlot as their packages ship them;
//! `query/assets/vendor.sh` fetches them again). Nothing is built: the browser loads the
//! ES modules through the page's import map.

use std::io::Write;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;

/// (name under `/assets/`, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "style.css",
        "text/css",
        include_bytes!("../../assets/style.css"),
    ),
    (
        "preact.module.js",
        "text/javascript",
        include_bytes!("../../assets/vendor/preact.module.js"),
    ),
    (
        "hooks.module.js",
        "text/javascript",
        include_bytes!("../../assets/vendor/hooks.module.js"),
    ),
    (
        "htm.module.js",
        "text/javascript",
        include_bytes!("../../assets/vendor/htm.module.js"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript",
        include_bytes!("../../assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css",
        include_bytes!("../../assets/vendor/uPlot.min.css"),
    ),
];

const INDEX: &str = include_str!("../../assets/index.html");

pub async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

/// Every file gzipped once, on first use: the bundle is about a third of its size so.
static GZIPPED: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(_, _, bytes)| {
            let mut gz = GzEncoder::new(Vec::new(), Compression::best());
            // Writing into a Vec cannot fail.
            let _ = gz.write_all(bytes);
            gz.finish().unwrap_or_default()
        })
        .collect()
});

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")))
}

pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(i) = FILES.iter().position(|f| f.0 == name) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let (_, content_type, bytes) = FILES[i];
    let common = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-cache"),
        (header::VARY, "accept-encoding"),
    ];
    if accepts_gzip(&headers) {
        let body = GZIPPED[i].clone();
        (common, [(header::CONTENT_ENCODING, "gzip")], body).into_response()
    } else {
        (common, bytes).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The whole bundle, as a browser fetches it (gzip).
    #[test]
    fn the_bundle_stays_small() {
        let total: usize = GZIPPED.iter().map(Vec::len).sum();
        assert!(total < 45_000, "{total} bytes gzipped");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&GZIPPED[0][..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, FILES[0].2);
    }

    /// Every file the page names exists.
    #[test]
    fn the_page_names_only_embedded_files() {
        for part in INDEX.split("/assets/").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | '?'))
                .collect();
            assert!(FILES.iter().any(|f| f.0 == name), "{name} is not embedded");
        }
    }
}
