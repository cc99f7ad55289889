//! HTTP calls to a running instance's API: an async client with a bounded
//! timeout, GET and other methods returning (status, JSON or text), the
//! Prometheus text, and a tiny blocking GET for raw endpoints. Invariant:
//! a body that is not JSON comes back as a JSON string, never an error.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value as Json;

use super::process::Metronome;

/// A client whose every request gives up after 30 s.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn status_and_body(r: reqwest::Response) -> (StatusCode, Json) {
    let s = r.status();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Json::String(text)))
}

/// `GET path` on `m`'s API.
pub async fn get(m: &Metronome, path: &str) -> (StatusCode, Json) {
    status_and_body(client().get(m.url(path)).send().await.unwrap()).await
}

/// `method path` on `m`'s API, with a bearer `token` and a JSON `body`.
pub async fn send(
    m: &Metronome,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Json) {
    let mut r = client().request(method, m.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b);
    }
    status_and_body(r.send().await.unwrap()).await
}

/// `method path` on `m`'s API with `body` as JSON.
pub async fn send_json(
    m: &Metronome,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Json,
) -> (StatusCode, Json) {
    send(m, method, path, token, Some(body.to_string())).await
}

/// The `/metrics` text.
pub async fn metrics(m: &Metronome) -> String {
    client()
        .get(m.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A blocking GET of `path` on `host` (`ADDR:PORT`) through the binary's
/// own probe client: the status and JSON body, `None` if nothing answers
/// within `timeout` or the body is not JSON.
pub fn get_blocking(host: &str, path: &str, timeout: Duration) -> Option<(u16, Json)> {
    let addr = metronome::healthcheck::probe_addr(host).ok()?;
    let (code, body) = metronome::healthcheck::get(addr, path, timeout).ok()?;
    Some((code, serde_json::from_str(&body).ok()?))
}
