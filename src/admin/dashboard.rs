//! `GET /`: the dashboard, one page embedded in the binary (plain HTML, CSS and
//! JS under `src/admin/dashboard/`, no CDN). It polls the JSON API with the
//! `?token=` it was opened with, sent as `Authorization: Bearer` (the API
//! accepts `?token=` only for this page).

use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::Response;
use http_body_util::Full;

const HTML: &str = include_str!("dashboard/index.html");
const STYLE: &str = include_str!("dashboard/style.css");
const SCRIPT: &str = include_str!("dashboard/app.js");

/// The page with its style and script inlined.
fn html() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| {
        HTML.replacen("/*STYLE*/", STYLE, 1)
            .replacen("/*SCRIPT*/", SCRIPT, 1)
    })
}

/// The dashboard response.
pub fn page() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(html().as_bytes())));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_inlines_style_and_script() {
        let p = super::html();
        assert!(!p.contains("/*STYLE*/") && !p.contains("/*SCRIPT*/"));
        assert!(p.contains("api/v1/pools") && p.contains(".pool-head"));
    }
}
