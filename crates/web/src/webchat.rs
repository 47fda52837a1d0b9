//! The website chat: a channel whose provider is Frontdesk itself.
//!
//! A visitor gets a token (`POST /chat/api/session`): their id, signed with a key all
//! instances share (HMAC-SHA256), so any instance can check it and no one can forge
//! another visitor's. They send with `POST /chat/api/messages` (`{"text", "client_id"}`:
//! a repeated `client_id` is stored once, so a retry after a lost response doubles
//! nothing) and read with `GET /chat/api/messages?after=ID` (what the bot and agents
//! said, and their own messages; a reconnect asks for everything after the last id it
//! has, so nothing is lost or doubled). Messages go through the same intake as every
//! channel: the bot, the handoff and the guard apply.
//!
//! [`WebchatChannel`] is the delivery side: a reply is "delivered" when it is stored,
//! because the visitor reads it from here.

use crate::WebState;
use crate::api::bearer;
use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use frontdesk_core::{
    Author, Channel, ChannelAccount, ChannelContext, ChannelKind, DeliveryOutcome, Health, Inbound,
    IngestOutcome, MessageId, Outbound, Sender,
};
use frontdesk_store::NewReply;
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest message a visitor can send, in characters.
pub const MAX_TEXT: usize = 4000;
/// The largest request body the chat API takes.
pub const BODY_LIMIT: usize = 32 * 1024;

/// The account webchat conversations live on.
pub fn account() -> ChannelAccount {
    ChannelAccount::default_of(ChannelKind::Webchat)
}

/// The delivery side of the website chat.
#[derive(Debug, Clone)]
pub struct WebchatChannel {
    account: ChannelAccount,
}

impl Default for WebchatChannel {
    fn default() -> Self {
        Self { account: account() }
    }
}

#[async_trait::async_trait]
impl Channel for WebchatChannel {
    fn account(&self) -> &ChannelAccount {
        &self.account
    }

    /// Messages arrive over HTTP (the routes below), not from a provider to poll.
    async fn run(&self, ctx: ChannelContext) -> Result<(), String> {
        ctx.shutdown.cancelled().await;
        Ok(())
    }

    async fn deliver(&self, outbound: &Outbound) -> DeliveryOutcome {
        DeliveryOutcome::Sent {
            external_id: Some(outbound.message_id.to_string()),
        }
    }

    async fn health(&self) -> Health {
        Health::ok("served by this instance")
    }
}

/// Signs and checks visitor tokens: `v1.<visitor id>.<hex HMAC-SHA256>`.
#[derive(Clone)]
pub struct VisitorKeys {
    key: Arc<[u8]>,
}

impl std::fmt::Debug for VisitorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VisitorKeys(<redacted>)")
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl VisitorKeys {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.into() }
    }

    fn mac(&self, visitor: &str) -> HmacSha256 {
        // HMAC takes a key of any length.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(visitor.as_bytes());
        mac
    }

    pub fn issue(&self, visitor: &str) -> String {
        let tag = self.mac(visitor).finalize().into_bytes();
        format!("v1.{visitor}.{}", crate::api::hex(&tag))
    }

    /// A link's token for one file, good until `expires` (Unix seconds):
    /// `f1.ID.EXPIRES.TAG`. Its own form and its own signed text, so it never passes
    /// for a visitor token, nor one for it.
    pub fn issue_file(&self, id: i64, expires: i64) -> String {
        let tag = self
            .mac(&format!("\0file:{id}:{expires}"))
            .finalize()
            .into_bytes();
        format!("f1.{id}.{expires}.{}", crate::api::hex(&tag))
    }

    /// The file id of a genuine, unexpired file token.
    pub fn check_file(&self, token: &str, now: i64) -> Option<i64> {
        let mut parts = token.strip_prefix("f1.")?.splitn(3, '.');
        let id: i64 = parts.next()?.parse().ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        let tag = decode_hex(parts.next()?)?;
        self.mac(&format!("\0file:{id}:{expires}"))
            .verify_slice(&tag)
            .ok()?;
        (now < expires).then_some(id)
    }

    /// The visitor id of a genuine token.
    pub fn check(&self, token: &str) -> Option<String> {
        let rest = token.strip_prefix("v1.")?;
        let (visitor, tag) = rest.split_once('.')?;
        let tag = decode_hex(tag)?;
        // Constant-time comparison inside `verify_slice`.
        self.mac(visitor).verify_slice(&tag).ok()?;
        Some(visitor.to_owned())
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Per-visitor sending pace: a burst, then one message per `refill`.
#[derive(Debug)]
pub struct RateLimit {
    burst: f64,
    refill: Duration,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new(10, Duration::from_secs(1))
    }
}

impl RateLimit {
    pub fn new(burst: u32, refill: Duration) -> Self {
        Self {
            burst: f64::from(burst),
            refill,
            buckets: Mutex::default(),
        }
    }

    /// `Ok` to go ahead, or how long to wait (per key: a visitor, a client address).
    pub(crate) fn take(&self, visitor: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Forget the visitors who have been quiet longest rather than grow forever.
            let burst = self.burst;
            let refill = self.refill;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() / refill.as_secs_f64() < burst
            });
        }
        let (tokens, at) = buckets
            .entry(visitor.to_owned())
            .or_insert((self.burst, now));
        let refilled = (*tokens
            + now.duration_since(*at).as_secs_f64() / self.refill.as_secs_f64())
        .min(self.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(self.refill.mul_f64(1.0 - refilled))
        }
    }
}

/// The cookie that keeps a visitor's token (signed; see [`VisitorKeys`]).
pub const COOKIE: &str = "fd_visitor";
/// The header the chat page sends with cookie-authenticated calls. A cross-site form
/// cannot set it, and a cross-site script cannot without the browser asking first
/// (CORS), so a cookie alone never acts for the visitor.
pub const PAGE_HEADER: &str = "x-requested-with";

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/chat", get(page))
        .route("/chat/chat.js", get(script))
        .route("/widget.js", get(widget))
        .route("/chat/api/session", post(new_session))
        .route("/chat/api/messages", post(send).get(read))
        .route("/chat/api/email", post(leave_email))
        .route("/chat/files/{token}", get(file))
        .route("/chat/api/stream", get(crate::live::visitor_events))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
}

const PAGE: &str = include_str!("../assets/chat.html");
const SCRIPT: &str = include_str!("../assets/chat.js");
const WIDGET: &str = include_str!("../assets/widget.js");

/// The chat page may be framed by any site (that is what the widget does), runs only
/// its own script, and loads nothing from elsewhere.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors *",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

async fn script() -> Response {
    javascript(SCRIPT)
}

async fn widget() -> Response {
    javascript(WIDGET)
}

fn javascript(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// One visitor's sends, within [`RateLimit`]: else 429 with Retry-After.
fn slow_down(state: &WebState, visitor: &str) -> Result<(), ApiError> {
    state.chat_limit.take(visitor).map_err(|wait| ApiError {
        retry_after: Some(wait.as_secs().max(1)),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many messages; slow down",
        )
    })
}

/// The visitor behind a request: a bearer token, or the cookie with the page's header.
fn visitor(state: &WebState, headers: &HeaderMap) -> Result<String, ApiError> {
    let token = match bearer(headers) {
        Some(token) => token.to_owned(),
        None => {
            let cookie = crate::auth::cookie(headers, COOKIE).ok_or_else(|| {
                ApiError::unauthorized(
                    "send Authorization: Bearer VISITOR_TOKEN (POST /chat/api/session)",
                )
            })?;
            if !headers.contains_key(PAGE_HEADER) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("a call with the visitor cookie needs the {PAGE_HEADER} header"),
                ));
            }
            cookie
        }
    };
    state
        .visitor_keys
        .check(&token)
        .ok_or_else(|| ApiError::unauthorized("not a visitor token of this site"))
}

/// A visitor token: the caller's own if it still checks out (a returning visitor is
/// the same visitor), else a new visitor's. Also set as a cookie on `/chat`.
async fn new_session(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let token = match visitor(&state, &headers) {
        Ok(known) => state.visitor_keys.issue(&known),
        Err(_) => state
            .visitor_keys
            .issue(&uuid::Uuid::new_v4().simple().to_string()),
    };
    let year = std::time::Duration::from_secs(365 * 24 * 3600);
    let cookie = crate::auth::cookie_header(&state, COOKIE, &token, "/chat", year);
    (
        [(header::SET_COOKIE, cookie)],
        Json(serde_json::json!({ "visitor_token": token })),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Send {
    text: String,
    client_id: String,
}

async fn send(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Result<Json<Send>, JsonRejection>,
) -> Result<Response, ApiError> {
    let visitor = visitor(&state, &headers)?;
    let Json(body) = body?;
    let text = body.text.trim();
    if text.is_empty() {
        return Err(ApiError::invalid("text is empty"));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(ApiError::invalid(format!(
            "text is longer than {MAX_TEXT} characters"
        )));
    }
    let client_id = body.client_id.trim();
    if client_id.is_empty()
        || client_id.len() > 64
        || !client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid(
            "client_id: 1 to 64 letters, digits, - or _ (a UUID)",
        ));
    }
    slow_down(&state, &visitor)?;
    let language = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split([',', ';', '-']).next())
        .map(|l| l.trim().to_lowercase())
        .filter(|l| matches!(l.as_str(), "zh" | "en"));
    let sender = Sender {
        external_id: visitor.clone(),
        display_name: None,
        language,
    };
    // The visitor's own id scopes the client id: no one can claim another's.
    let external_id = format!("{visitor}:{client_id}");
    let inbound = Inbound::new(account(), external_id, sender, visitor.as_str(), text)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    // On a task of its own: a visitor who hangs up does not stop a store half-way
    // (nor the bot's answer); sending again finds the message stored.
    let intake = state.intake.clone();
    let ingested = tokio::spawn(async move { intake.ingest(inbound, None).await })
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not store the message; send it again",
            )
        })?;
    let outcome = ingested.map_err(|e| {
        tracing::error!(error = %e, "a webchat message could not be stored");
        if e.disk_full {
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "the server's storage is full: nothing was stored; send it again later",
            )
        } else {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not store the message; send it again",
            )
        }
    })?;
    Ok(match outcome {
        IngestOutcome::Stored { message_id, .. } => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "id": message_id, "stored": true })),
        )
            .into_response(),
        IngestOutcome::Duplicate => (
            StatusCode::OK,
            Json(serde_json::json!({ "stored": false, "duplicate": true })),
        )
            .into_response(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Read {
    after: Option<i64>,
}

async fn read(
    State(state): State<WebState>,
    headers: HeaderMap,
    query: Result<Query<Read>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let visitor = visitor(&state, &headers)?;
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let messages = state
        .store
        .thread_messages(&account(), &visitor, q.after.map(MessageId), 200)
        .await?;
    let items: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let author = match m.author {
                Author::Contact => "contact",
                Author::Bot | Author::System => "bot",
                Author::Agent => "agent",
            };
            // Files agents attached: a link that is its own permission, made only
            // for messages of this visitor's thread.
            let files: Vec<serde_json::Value> = m
                .attachments
                .iter()
                .filter_map(|a| {
                    let id = crate::pages::file_id(&a.reference)?;
                    let token = state.visitor_keys.issue_file(id, file_link_expiry());
                    Some(serde_json::json!({
                        "name": a.name,
                        "size": a.size,
                        "url": format!("/chat/files/{token}"),
                    }))
                })
                .collect();
            serde_json::json!({
                "id": m.id,
                "author": author,
                "text": m.text,
                "created_at": m.created_at,
                "choices": m.quick_replies,
                "files": files,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

/// When a file link made now stops working: a day (the chat makes new ones each time
/// it reads the messages).
fn file_link_expiry() -> i64 {
    frontdesk_core::Timestamp::now().as_micros() / 1_000_000 + 24 * 3600
}

/// GET /chat/files/{token}: a file an agent sent, by the link the visitor was given.
async fn file(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    let now = frontdesk_core::Timestamp::now().as_micros() / 1_000_000;
    let id = state.visitor_keys.check_file(&token, now);
    let Some(id) = id else {
        return ApiError::new(StatusCode::NOT_FOUND, "no such file").into_response();
    };
    match state.store.file(id).await {
        Ok(Some((meta, bytes))) => crate::pages::download(&meta.name, bytes),
        Ok(None) => ApiError::new(StatusCode::NOT_FOUND, "no such file").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaveEmail {
    email: String,
}

/// POST /chat/api/email `{"email": ...}`: the visitor would like replies by email too.
/// Kept as an unverified address of their contact (agents see it in the contact
/// panel, with a note in the conversation); an address another contact has is not
/// joined to this one.
async fn leave_email(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Result<Json<LeaveEmail>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let visitor = visitor(&state, &headers)?;
    let Json(body) = body?;
    slow_down(&state, &visitor)?;
    let typed = body.email.trim().to_lowercase();
    let valid = typed.len() <= 254
        && frontdesk_router::verify::find_email(&typed).as_deref() == Some(typed.as_str());
    if !valid {
        return Err(ApiError::invalid("that is not an email address"));
    }
    let left = state
        .store
        .leave_email(&account(), &visitor, &typed)
        .await?;
    let masked = frontdesk_router::verify::mask_email(&typed);
    let note = match left.other_contact {
        None => format!("The visitor left an email address for replies: {typed} (not verified)."),
        Some(other) => format!(
            "The visitor left the email address {typed}, which contact #{other} already has; \
             not joined (verify before merging)."
        ),
    };
    let event = NewReply {
        author: Author::System,
        kind: frontdesk_core::MessageKind::Event,
        idempotency_key: Some(format!("left-email-{}", crate::api::token_hash(&typed))),
        ..NewReply::from_bot(left.conversation, note)
    };
    state.store.reply(event).await?;
    Ok(Json(
        serde_json::json!({ "email": masked, "verified": false }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visitor_token_checks_out_and_a_forged_one_does_not() {
        let keys = VisitorKeys::new(b"a shared secret");
        let token = keys.issue("abc");
        assert_eq!(keys.check(&token).as_deref(), Some("abc"));
        let forged = token.replace("v1.abc.", "v1.abd.");
        assert_eq!(keys.check(&forged), None);
        assert_eq!(VisitorKeys::new(b"another key").check(&token), None);
        for junk in ["", "v1.", "v1.abc", "v1.abc.zz", "v2.abc.00"] {
            assert_eq!(keys.check(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_file_link_expires_and_is_never_a_visitor_token() {
        let keys = VisitorKeys::new(b"a shared secret");
        let link = keys.issue_file(12, 1_000);
        assert_eq!(keys.check_file(&link, 999), Some(12));
        assert_eq!(keys.check_file(&link, 1_000), None, "expired");
        assert_eq!(keys.check(&link), None);
        assert_eq!(
            keys.check_file(&link.replace("f1.12.", "f1.13."), 999),
            None
        );
        assert_eq!(
            keys.check_file(&link.replace(".1000.", ".9999.",), 999),
            None
        );
        assert_eq!(keys.check_file(&keys.issue("abc"), 0), None);
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_one_per_interval() {
        let limit = RateLimit::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limit.take("v").is_ok());
        }
        let wait = limit.take("v").unwrap_err();
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        assert!(limit.take("other").is_ok(), "per visitor");
    }
}
