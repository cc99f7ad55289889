//! The HTTP server: health, readiness, Prometheus metrics, the OpenAPI
//! document, the schedule API ([`api`]), the reload status and the
//! dashboard ([`dashboard`]).
//!
//! Handlers read the scheduler through [`service::inbox::Handle::inspect`] and
//! change it only by writing the database: the database syncer applies the
//! change (to this instance and every other one), and the handler waits for
//! this instance's copy before answering, so a write is visible to the next
//! read.

pub mod api;
pub mod dashboard;

use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::{Db, SOURCE, SyncClient};
use crate::entry::{Context, FileOrigins};
use crate::ports::clock::Clock;
use crate::ports::lease::Role;
use crate::service::inbox::Handle;
use crate::service::inbox::SharedStatus;

/// Largest request body accepted (413 beyond).
pub const BODY_LIMIT: usize = 256 * 1024;

/// What the handlers share.
pub struct AppState {
    pub handle: Handle,
    /// The schedule database, if configured: the only writable source.
    pub db: Option<Db>,
    pub sync: Option<SyncClient>,
    /// Entries defined in files, by name (read-only through the API).
    pub files: Arc<FileOrigins>,
    /// The context API bodies are validated in (that of database rows).
    pub ctx: Context,
    /// `METRONOME_API_TOKEN`; `None` disables writes (403).
    pub token: Option<String>,
    /// With a lease: the role kept by the lease task, and this instance's
    /// id. `None` standalone (always the leader).
    pub role: Option<(watch::Receiver<Role>, String)>,
    /// The schedule-file reload status; `None` without schedule files.
    pub reload: Option<SharedStatus>,
    /// A connection of its own to the broker, pinged by `/readyz` (the run
    /// loop's may be busy publishing).
    pub broker: tokio::sync::Mutex<Box<dyn crate::ports::broker::Broker>>,
    /// The wall clock handlers read "now" from.
    pub clock: Arc<dyn Clock>,
}

/// How long `/readyz` waits for the broker to answer.
const BROKER_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub type Shared = Arc<AppState>;

/// An error answer: `{"error": "..."}` with a status.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, naming the field where there is one.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl ApiError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> ApiError {
        ApiError(status, msg.into())
    }
}

/// The process-wide Prometheus recorder (installed on first use); see
/// [`crate::metrics`].
pub fn metrics_handle() -> &'static PrometheusHandle {
    crate::metrics::install()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "metronome",
        description = "Periodic task scheduler for Celery: schedules, next runs, run-now, health and metrics."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, crate::service::inbox::ReloadStatus))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The router with every route and the OpenAPI document.
pub fn router(state: Shared) -> axum::Router {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(livez))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
        .routes(routes!(api::schedules::list, api::writes::create))
        .routes(routes!(
            api::schedules::get_one,
            api::writes::replace,
            api::writes::patch,
            api::writes::delete
        ))
        .routes(routes!(api::runs::entry_next_runs))
        .routes(routes!(api::writes::run_now))
        .routes(routes!(api::runs::next_runs))
        .routes(routes!(api::history::history))
        .routes(routes!(reload))
        .split_for_parts();
    let doc = Arc::new(doc);
    router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route("/", axum::routing::get(dashboard::redirect))
        .route("/dashboard", axum::routing::get(dashboard::page))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Shared,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
}

/// Liveness, for a liveness probe: 200 while the process serves HTTP.
/// Nothing outside the process (broker, database, lease) affects it, so a
/// restart is never asked for what a restart cannot fix.
#[utoipa::path(get, path = "/livez", responses((status = 200, description = "The process is alive", body = String)))]
async fn livez() -> &'static str {
    "ok\n"
}

/// Liveness, as `/livez` (kept for existing probes).
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The process is alive (as /livez)", body = String)))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready`, `broker unreachable` or `stopped`.
    pub status: &'static str,
    /// `leader` (holds the lease and dispatches) or `standby`. Without a
    /// lease (standalone) always `leader` once schedules are loaded.
    pub role: &'static str,
    /// The lease's fencing number while leading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fence: Option<u64>,
    /// This instance's id (its lease token), with a lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub schedules: usize,
    /// `connected`, `unreachable`, or `none` without a database.
    pub database: &'static str,
    /// `connected` or `unreachable` (then not ready).
    pub broker: &'static str,
    /// Why the broker is unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_error: Option<String>,
}

/// Readiness: 200 once schedules are loaded, the loop runs and the broker
/// answers.
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "Schedules loaded, the broker answers; `role` says whether this instance dispatches", body = Ready),
    (status = 503, description = "The scheduler has stopped, or the broker does not answer", body = Ready)))]
async fn readyz(State(st): State<Shared>) -> Response {
    // The probe first: the role and counts below are then current even
    // when the broker is slow to answer.
    let broker_error = {
        let mut b = st.broker.lock().await;
        match tokio::time::timeout(BROKER_PROBE_TIMEOUT, b.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "no answer within {} ms",
                BROKER_PROBE_TIMEOUT.as_millis()
            )),
        }
    };
    let database = match &st.sync {
        None => "none",
        Some(s) if s.status.read().expect("status lock").connected => "connected",
        Some(_) => "unreachable",
    };
    let (role, fence, instance) = match &st.role {
        None => ("leader", None, None),
        Some((rx, id)) => {
            let r = rx.borrow().clone();
            let fence = match &r {
                Role::Leader(t) => Some(t.fence),
                Role::Standby => None,
            };
            (r.name(), fence, Some(id.clone()))
        }
    };
    let broker = if broker_error.is_some() {
        "unreachable"
    } else {
        "connected"
    };
    let schedules = st.handle.inspect(|s| s.len()).await;
    let status = match (schedules, &broker_error) {
        (None, _) => "stopped",
        (Some(_), Some(_)) => "broker unreachable",
        (Some(_), None) => "ready",
    };
    let body = Ready {
        status,
        role: if schedules.is_some() { role } else { "standby" },
        fence: fence.filter(|_| schedules.is_some()),
        instance,
        schedules: schedules.unwrap_or(0),
        database,
        broker,
        broker_error,
    };
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Prometheus text: run counters from the loop, schedule gauges computed now.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
async fn metrics_text(State(st): State<Shared>) -> Response {
    let counts = st
        .handle
        .inspect(|s| {
            let db = s
                .iter()
                .filter(|(e, _, _)| *e.origin.source == *SOURCE)
                .count();
            let next = crate::metrics::render_next_runs(
                s.iter()
                    .filter(|(e, _, _)| e.enabled)
                    .filter_map(|(e, _, n)| Some((e.name.as_str(), n?.due)))
                    .collect(),
            );
            (s.len() - db, db, next)
        })
        .await;
    let mut next_text = String::new();
    if let Some((file, db, next)) = counts {
        crate::metrics::set_schedules(file, db);
        next_text = next;
    }
    if let Some(s) = &st.sync {
        let status = s.status.read().expect("status lock");
        metrics::gauge!("metronome_schedules_invalid").set(status.invalid.len() as f64);
        metrics::gauge!("metronome_database_connected").set(if status.connected {
            1.0
        } else {
            0.0
        });
    }
    let h = metrics_handle();
    h.run_upkeep();
    let mut text = h.render();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&next_text);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

/// The schedule-file reload status.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReloadView {
    /// False without schedule files (database only): nothing is reloaded.
    pub enabled: bool,
    /// True if the last attempt was accepted (or none was made yet). When
    /// false, `errors` says why and the previous version keeps running.
    pub ok: bool,
    #[serde(flatten)]
    pub status: crate::service::inbox::ReloadStatus,
}

/// The result of the latest schedule-file reload (on change, checked every
/// second, or on SIGHUP). A rejected version leaves the previous schedule
/// running; its errors are listed here until a later version is accepted.
#[utoipa::path(get, path = "/api/v1/reload", tag = "schedules",
    responses((status = 200, description = "Reload status; `status` fields are flattened into the object", body = ReloadView)))]
async fn reload(State(st): State<Shared>) -> Json<ReloadView> {
    match &st.reload {
        Some(r) => {
            let status = r.lock().expect("reload status lock").clone();
            Json(ReloadView {
                enabled: true,
                ok: status.errors.is_empty(),
                status,
            })
        }
        None => Json(ReloadView {
            enabled: false,
            ok: true,
            status: Default::default(),
        }),
    }
}
