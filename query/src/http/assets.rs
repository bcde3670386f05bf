//! The console's files, embedded in the binary: `query/assets/` (our page, script and
//! styles) and `query/assets/vendor/` (Preact, htm and uPlot as their packages ship them;
//! `query/assets/vendor.sh` fetches them again). Nothing is built: the browser loads the
//! ES modules through the page's import map.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

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

pub async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|f| f.0 == name) {
        Some(&(_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// Every file the page names exists.
#[cfg(test)]
mod tests {
    use super::*;

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
