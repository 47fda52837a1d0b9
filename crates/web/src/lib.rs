//! Frontdesk's HTTP surface.
//!
//! - `GET /healthz`: the process is up (no dependencies checked);
//! - `GET /readyz`: the database answers and every running channel is healthy, as JSON;
//!   503 when something is not;
//! - `GET /metrics`: Prometheus/OpenMetrics text;
//! - [`api`]: the REST API under `/api/v1` (bearer tokens with scopes);
//! - [`webchat`]: the website chat's HTTP API under `/chat/api` (when enabled).
//!
//! The agent inbox joins this router in a later issue.

pub mod admin;
pub mod api;
pub mod auth;
pub mod charts;
pub mod error;
pub mod i18n;
pub mod live;
pub mod pages;
pub mod webchat;
pub mod webhooks;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use frontdesk_core::{Channel, Health, Intake};
use frontdesk_router::{ConversationEngine, Metrics};
use frontdesk_store::Store;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long one readiness probe of a dependency may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
pub struct WebState {
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
    pub channels: Vec<Arc<dyn Channel>>,
    /// Where webchat messages enter (the same pipeline as every channel).
    pub intake: Arc<dyn Intake>,
    /// Agents' actions (assign, resolve...) through the API.
    pub engine: Arc<ConversationEngine>,
    pub visitor_keys: webchat::VisitorKeys,
    pub chat_limit: Arc<webchat::RateLimit>,
    /// Login attempts per client address (see [`auth::login_limit`]).
    pub login_limit: Arc<webchat::RateLimit>,
    /// Whether `/chat` is served.
    pub webchat: bool,
    /// Cookies only over HTTPS (`server.public_url` is https).
    pub secure_cookies: bool,
    /// Fires when the server stops: open event streams end, so the graceful shutdown
    /// does not wait on them.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The key that signs webchat visitor tokens: made once and kept in the database, so
/// every instance shares it and tokens survive restarts.
pub async fn visitor_keys(
    store: &dyn Store,
) -> Result<webchat::VisitorKeys, frontdesk_store::StoreError> {
    let fresh: [u8; 32] = rand::random();
    let key = store
        .setting_or_init("webchat.visitor_key", &api::hex(&fresh))
        .await?;
    Ok(webchat::VisitorKeys::new(key.as_bytes()))
}

/// All routes, ready to serve.
pub fn router(state: WebState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", axum::routing::post(auth::logout))
        .route("/setup", get(auth::setup_page).post(auth::setup))
        .route("/", get(pages::inbox))
        .route("/conversations/{id}", get(pages::conversation))
        .route(
            "/conversations/{id}/reply",
            // Room for one file and the form around it.
            axum::routing::post(pages::reply).layer(axum::extract::DefaultBodyLimit::max(
                pages::MAX_FILE + 256 * 1024,
            )),
        )
        .route(
            "/conversations/{id}/actions",
            axum::routing::post(pages::action),
        )
        .route("/files/{id}", get(pages::file))
        .route(
            "/conversations/{id}/messages/{message}/files/{index}",
            get(pages::channel_file),
        )
        .route(
            "/conversations/{id}/messages/{message}/original",
            get(pages::original),
        )
        .route(
            "/contacts/{id}/merge",
            axum::routing::post(pages::merge_contact),
        )
        .route("/settings/locale", axum::routing::post(pages::set_locale))
        .route(
            "/settings/tokens",
            get(admin::tokens).post(admin::create_token),
        )
        .route(
            "/settings/tokens/{id}/revoke",
            axum::routing::post(admin::revoke_token),
        )
        .route("/reports", get(admin::reports))
        .route("/admin/agents", get(admin::agents).post(admin::add_agent))
        .route(
            "/admin/agents/{id}",
            axum::routing::post(admin::agent_profile),
        )
        .route("/admin/audit", get(admin::audit))
        .route("/admin/canned", get(admin::canned).post(admin::save_canned))
        .route(
            "/admin/canned/{id}/delete",
            axum::routing::post(admin::delete_canned),
        )
        .route("/admin/teams", get(admin::teams))
        .route(
            "/admin/teams/{team}/hours",
            axum::routing::post(admin::set_hours),
        )
        .route("/admin/channels", get(admin::channels))
        .route("/admin/knowledge", get(admin::knowledge))
        .route("/static/inbox.css", get(pages::stylesheet))
        .route("/static/inbox.js", get(pages::script))
        .route("/events", get(live::agent_events))
        .merge(api::routes());
    if state.webchat {
        router = router.merge(webchat::routes());
    }
    router.with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// The readiness report.
#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub database: Health,
    pub channels: BTreeMap<String, Health>,
}

pub(crate) async fn probe<F: std::future::Future<Output = Health>>(what: &str, f: F) -> Health {
    tokio::time::timeout(PROBE_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| {
            Health::failing(format!("{what} did not answer within {PROBE_TIMEOUT:?}"))
        })
}

async fn readyz(State(state): State<WebState>) -> Response {
    let database = probe("the database", async {
        match state.store.ping().await {
            Ok(()) => Health::ok(format!("{:?}", state.store.backend()).to_lowercase()),
            Err(e) => Health::failing(e.to_string()),
        }
    })
    .await;
    let checks = state.channels.iter().map(|c| async move {
        (
            c.account().to_string(),
            probe("the channel", c.health()).await,
        )
    });
    let channels: BTreeMap<String, Health> = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .collect();
    let ready = database.ok && channels.values().all(|h| h.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            database,
            channels,
        }),
    )
        .into_response()
}

async fn metrics(State(state): State<WebState>) -> Response {
    match state.store.outbox_depth().await {
        Ok(depth) => state.metrics.set_outbox_depth(depth),
        Err(e) => tracing::warn!(error = %e, "cannot read the outbox depth for /metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
