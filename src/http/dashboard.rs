//! The web dashboard: one static HTML page with its script inline
//! (`dashboard.html`, embedded at build time; no build step, no assets).
//!
//! The page reads the public API (`/readyz`, `/api/v1/schedules`,
//! `/api/v1/schedules/{name}/history`, `/api/v1/reload`) and, with a token
//! typed into it (kept in `sessionStorage`, sent as a bearer token), can
//! enable, disable and run entries. Writes go through the same API as any
//! client, so file entries are shown read-only.

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};

/// The page.
pub const HTML: &str = include_str!("dashboard.html");

/// `GET /dashboard`.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        HTML,
    )
        .into_response()
}

/// `GET /`: to the dashboard.
pub async fn redirect() -> Redirect {
    Redirect::temporary("/dashboard")
}
