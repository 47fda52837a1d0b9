//! The REST API under `/api/v1`, for integrations and scripts.
//!
//! Every call sends `Authorization: Bearer TOKEN` (`frontdesk token create`). A token
//! has scopes: `read` for GET, `write` for the rest. Errors are `{"error": "..."}` with
//! a fitting status: 400 bad JSON, 401 no or unknown token, 403 missing scope, 404, 409
//! changed meanwhile, 413 too large, 422 invalid (or refused by the guard).

use crate::WebState;
use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use frontdesk_core::{
    Agent, AgentId, Conversation, ConversationId, Delivery, Message, MessageId, MessageKind,
    Priority, Status, Timestamp,
};
use frontdesk_store::{ConversationChange, ConversationQuery, NewReply, PageCursor};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The largest request body the API takes.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Every route of the API, as the OpenAPI description lists them; a test checks that
/// the router serves each and the description has no other.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/conversations"),
    ("get", "/api/v1/conversations/{id}"),
    ("patch", "/api/v1/conversations/{id}"),
    ("get", "/api/v1/conversations/{id}/messages"),
    ("post", "/api/v1/conversations/{id}/messages"),
    ("get", "/api/v1/contacts/{id}"),
    ("delete", "/api/v1/contacts/{id}"),
    ("get", "/api/v1/contacts/{id}/export"),
    ("post", "/api/v1/contacts/{id}/merge"),
    ("get", "/api/v1/agents"),
    ("get", "/api/v1/reports/summary"),
];

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Frontdesk API", description = "Conversations and messages of the support desk."),
    paths(
        list_conversations, get_conversation, patch_conversation, list_messages, post_message,
        get_contact, delete_contact, export_contact, merge_contact, list_agents, report_summary,
    ),
    components(schemas(NewMessage, ConversationPatch, MergeRequest)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("frontdesk token create; scopes read (GET) and write"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI 3.1 description, served at `/api/openapi.json`.
pub fn openapi() -> serde_json::Value {
    serde_json::to_value(<ApiDoc as utoipa::OpenApi>::openapi()).unwrap_or_default()
}

async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi())
}

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/v1/conversations", get(list_conversations))
        .route(
            "/api/v1/conversations/{id}",
            get(get_conversation).patch(patch_conversation),
        )
        .route(
            "/api/v1/conversations/{id}/messages",
            get(list_messages).post(post_message),
        )
        .route(
            "/api/v1/contacts/{id}",
            get(get_contact).delete(delete_contact),
        )
        .route("/api/v1/contacts/{id}/export", get(export_contact))
        .route(
            "/api/v1/contacts/{id}/merge",
            axum::routing::post(merge_contact),
        )
        .route("/api/v1/agents", get(list_agents))
        .route("/api/v1/reports/summary", get(report_summary))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
}

/// A new API token: shown once; only its SHA-256 is stored.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("fdt_{}", hex(&bytes))
}

/// What is stored of a token (tokens are long random strings, so a fast hash is safe).
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The agent behind the request's bearer token, checked for the scope the method
/// needs.
#[derive(Debug)]
pub struct ApiAgent {
    pub agent: Agent,
}

impl FromRequestParts<WebState> for ApiAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, ApiError> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized("send Authorization: Bearer TOKEN (frontdesk token create)")
        })?;
        let (agent, scopes) = state
            .store
            .agent_by_token(&token_hash(token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))?;
        let needed = if parts.method == Method::GET || parts.method == Method::HEAD {
            "read"
        } else {
            "write"
        };
        if !scopes.iter().any(|s| s == needed) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this token lacks the {needed} scope"),
            ));
        }
        Ok(ApiAgent { agent })
    }
}

/// The token of an `Authorization: Bearer ...` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

pub(crate) fn conversation_json(c: &Conversation) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "status": c.status,
        "priority": c.priority,
        "channel": c.account.kind(),
        "account": c.account.to_string(),
        "contact": { "id": c.contact_id, "name": c.contact_name },
        "assignee": c.assignee,
        "team": c.team,
        "tier": c.tier,
        "labels": c.labels,
        "created_at": c.created_at,
        "last_message_at": c.last_message_at,
        "snoozed_until": c.snoozed_until,
        "resolved_at": c.resolved_at,
        "first_response_due": c.first_response_due,
        "resolution_due": c.resolution_due,
    })
}

pub(crate) fn message_json(m: &Message) -> serde_json::Value {
    let (delivery, failure) = match &m.delivery {
        None => (None, None),
        Some(Delivery::Queued) => (Some("queued"), None),
        Some(Delivery::Sent) => (Some("sent"), None),
        Some(Delivery::Failed { reason }) => (Some("failed"), Some(reason.as_str())),
    };
    serde_json::json!({
        "id": m.id,
        "direction": m.direction,
        "author": m.author,
        "agent_id": m.agent_id,
        "kind": m.kind,
        "private": m.kind == MessageKind::Note,
        "text": m.text,
        "created_at": m.created_at,
        "edited": !m.edits.is_empty(),
        "delivery": delivery,
        "failure_reason": failure,
        "choices": m.quick_replies,
        "entities": m.entities,
        // Kinds and positions only: the secret itself was never stored.
        "findings": m.findings,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    channel: Option<String>,
    priority: Option<String>,
    team: Option<String>,
    label: Option<String>,
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// List conversations, newest activity first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations",
    params(
        ("status" = Option<String>, Query, description = "bot, open, pending, snoozed or resolved"),
        ("channel" = Option<String>, Query, description = "telegram, email, x or webchat"),
        ("priority" = Option<String>, Query, description = "low, normal, high or urgent"),
        ("team" = Option<String>, Query, description = "the team"),
        ("label" = Option<String>, Query, description = "conversations with this label"),
        ("q" = Option<String>, Query, description = "words in the conversation's messages (Latin words as prefixes), or a part of the contact's name or identity"),
        ("limit" = Option<u32>, Query, description = "1 to 200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "the `next` of the previous page"),
    ),
    responses(
        (status = 200, description = "`{items: [conversation], next: cursor or null}`"),
        (status = 401, description = "no or unknown token"),
        (status = 422, description = "a bad status or cursor"),
    ),
    security(("bearer" = [])))]
async fn list_conversations(
    State(state): State<WebState>,
    _agent: ApiAgent,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let status = q
        .status
        .as_deref()
        .map(Status::parse)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let after = q.cursor.as_deref().map(PageCursor::parse).transpose()?;
    let channel = q
        .channel
        .as_deref()
        .map(frontdesk_core::ChannelKind::parse)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let priority = q
        .priority
        .as_deref()
        .map(Priority::parse)
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let page = state
        .store
        .list_conversations(&ConversationQuery {
            status,
            channel,
            priority,
            team: q.team,
            label: q.label,
            text: q.q,
            limit: q.limit.unwrap_or(50).clamp(1, 200),
            after,
            ..ConversationQuery::default()
        })
        .await?;
    Ok(Json(serde_json::json!({
        "items": page.items.iter().map(conversation_json).collect::<Vec<_>>(),
        "next": page.next.map(|c| c.to_string()),
    })))
}

async fn load(state: &WebState, id: i64) -> Result<Conversation, ApiError> {
    state
        .store
        .conversation(ConversationId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))
}

/// One conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations",
    params(("id" = i64, Path, description = "the conversation")),
    responses(
        (status = 200, description = "the conversation: id, status, priority, channel, contact {id, name}, assignee, last_message_at, ..."),
        (status = 404, description = "no such conversation"),
    ),
    security(("bearer" = [])))]
async fn get_conversation(
    State(state): State<WebState>,
    _agent: ApiAgent,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(conversation_json(&load(&state, id).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagesQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// The messages of a conversation, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "messages",
    params(
        ("id" = i64, Path, description = "the conversation"),
        ("after" = Option<i64>, Query, description = "only messages after this id"),
        ("limit" = Option<u32>, Query, description = "1 to 1000 (default 200)"),
    ),
    responses(
        (status = 200, description = "`{items: [message]}`: id, direction, author, text, created_at, delivery (null, queued, sent, failed), private, ..."),
        (status = 404, description = "no such conversation"),
    ),
    security(("bearer" = [])))]
async fn list_messages(
    State(state): State<WebState>,
    _agent: ApiAgent,
    Path(id): Path<i64>,
    query: Result<Query<MessagesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let conversation = load(&state, id).await?;
    let messages = state
        .store
        .messages(
            conversation.id,
            q.after.map(MessageId),
            q.limit.unwrap_or(200).clamp(1, 1000),
        )
        .await?;
    Ok(Json(serde_json::json!({
        "items": messages.iter().map(message_json).collect::<Vec<_>>(),
    })))
}

/// A reply or a note.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewMessage {
    text: String,
    /// A note only agents see.
    #[serde(default)]
    private: bool,
}

/// Any of these fields.
#[allow(dead_code)] // the body is read field by field; this describes it
#[derive(utoipa::ToSchema)]
struct ConversationPatch {
    /// open, pending, snoozed (with snoozed_until) or resolved.
    status: Option<String>,
    /// low, normal, high or urgent.
    priority: Option<String>,
    /// An agent id, or null to unassign.
    assignee: Option<i64>,
    /// RFC 3339, with status snoozed.
    snoozed_until: Option<String>,
}

/// Reply to the customer, or write a private note.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "messages",
    params(
        ("id" = i64, Path, description = "the conversation"),
        ("Idempotency-Key" = Option<String>, Header, description = "the same key again returns the first message"),
    ),
    request_body = NewMessage,
    responses(
        (status = 201, description = "the message"),
        (status = 400, description = "broken JSON"),
        (status = 403, description = "the token lacks the write scope"),
        (status = 413, description = "over 256 KiB"),
        (status = 422, description = "invalid, or refused by the guard (the reason is given)"),
    ),
    security(("bearer" = [])))]
async fn post_message(
    State(state): State<WebState>,
    ApiAgent { agent }: ApiAgent,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Json<NewMessage>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let conversation = load(&state, id).await?;
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 200)
                .ok_or_else(|| ApiError::invalid("Idempotency-Key: 1 to 200 visible characters"))?;
            Some(key.to_owned())
        }
    };
    let reply = NewReply {
        idempotency_key: key,
        ..NewReply::from_agent(conversation.id, agent.id, body.text, body.private)
    };
    let replied = state.store.reply(reply).await?;
    Ok((StatusCode::CREATED, Json(message_json(&replied.message))).into_response())
}

/// `PATCH /api/v1/conversations/{id}`: any of `status` (open, pending, snoozed with
/// `snoozed_until`, resolved), `priority`, `assignee` (an agent id, or null).
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "conversations",
    params(("id" = i64, Path, description = "the conversation")),
    request_body = ConversationPatch,
    responses(
        (status = 200, description = "the conversation as changed"),
        (status = 409, description = "changed meanwhile"),
        (status = 422, description = "an unknown field or value"),
    ),
    security(("bearer" = [])))]
async fn patch_conversation(
    State(state): State<WebState>,
    ApiAgent { agent }: ApiAgent,
    Path(id): Path<i64>,
    body: Result<Json<serde_json::Map<String, serde_json::Value>>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    if let Some(unknown) = body.keys().find(|k| {
        !["status", "priority", "assignee", "snoozed_until", "labels"].contains(&k.as_str())
    }) {
        return Err(ApiError::invalid(format!(
            "unknown field {unknown:?}; expected status, priority, assignee, snoozed_until \
             or labels"
        )));
    }
    let labels = match body.get("labels") {
        None => None,
        Some(serde_json::Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| ApiError::invalid("labels must be an array of strings"))?,
        ),
        Some(_) => return Err(ApiError::invalid("labels must be an array of strings")),
    };
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match body.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::invalid(format!("{key} must be a string"))),
        }
    };
    let status = text("status")?
        .map(|s| Status::parse(&s))
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let priority = text("priority")?
        .map(|s| Priority::parse(&s))
        .transpose()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let snoozed_until = text("snoozed_until")?
        .map(|s| {
            Timestamp::parse_rfc3339(&s)
                .map_err(|_| ApiError::invalid("snoozed_until: an RFC 3339 time"))
        })
        .transpose()?;
    let assignee = match body.get("assignee") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(v) => Some(Some(AgentId(v.as_i64().ok_or_else(|| {
            ApiError::invalid("assignee must be an agent id or null")
        })?))),
    };
    let conversation = load(&state, id).await?;
    let engine = &state.engine;
    let id = conversation.id;
    let by = format!("by agent {} through the API", agent.id);
    let _ = state
        .store
        .record_audit(
            &agent.email,
            "api_update",
            &format!("conversation {id}"),
            serde_json::Value::Object(body.clone()),
        )
        .await;
    if priority.is_some() || labels.is_some() {
        let change = ConversationChange {
            priority,
            reason: Some(format!("priority or labels {by}")),
            labels,
            ..ConversationChange::default()
        };
        state.store.update_conversation(id, &change).await?;
    }
    if let Some(assignee) = assignee {
        match assignee {
            Some(to) => {
                engine.assign(id, to, Some(agent.id)).await?;
            }
            None => {
                state
                    .store
                    .assign(id, None, false, &format!("unassigned {by}"))
                    .await?;
            }
        }
    }
    match (status, snoozed_until) {
        (None, None) => {}
        (Some(Status::Resolved), None) => {
            engine.resolve(id, &format!("resolved {by}")).await?;
        }
        (Some(Status::Pending), None) => {
            engine.set_pending(id).await?;
        }
        (Some(Status::Snoozed), Some(until)) => {
            engine.snooze(id, until).await?;
        }
        (Some(Status::Snoozed), None) => {
            return Err(ApiError::invalid("snoozed needs snoozed_until"));
        }
        (Some(Status::Open), None) => {
            let change = ConversationChange {
                status: Some(Status::Open),
                reason: Some(format!("opened {by}")),
                ..ConversationChange::default()
            };
            state.store.update_conversation(id, &change).await?;
        }
        (Some(Status::Bot), _) => {
            return Err(ApiError::invalid(
                "a conversation goes back to the bot only when a new one starts",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid("snoozed_until goes with status snoozed"));
        }
    }
    Ok(Json(conversation_json(&load(&state, id.0).await?)))
}

/// A contact with every channel identity and whether it is verified.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = i64, Path, description = "the contact")),
    responses((status = 200, description = "id, name, language, identities [{channel, external_id, display_name, verified_at}]"),
        (status = 404, description = "no such contact")),
    security(("bearer" = [])))]
async fn get_contact(
    State(state): State<WebState>,
    _agent: ApiAgent,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let contact = state
        .store
        .contact(frontdesk_core::ContactId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    Ok(Json(serde_json::to_value(contact).unwrap_or_default()))
}

/// Everything stored about a contact (a data request); recorded in the audit log.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/export", tag = "contacts",
    params(("id" = i64, Path, description = "the contact")),
    responses((status = 200, description = "the contact, their conversations and messages"),
        (status = 403, description = "agents below supervisor may not export"),
        (status = 404, description = "no such contact")),
    security(("bearer" = [])))]
async fn export_contact(
    State(state): State<WebState>,
    ApiAgent { agent }: ApiAgent,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    supervisor_or_admin(&agent)?;
    let export = state
        .store
        .export_contact(frontdesk_core::ContactId(id), &agent.email)
        .await?;
    Ok(Json(export))
}

/// Erases a contact's texts, identities and name; counts stay for reports. Recorded in
/// the audit log.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = i64, Path, description = "the contact")),
    responses((status = 200, description = "what was erased"),
        (status = 403, description = "agents below supervisor may not erase"),
        (status = 404, description = "no such contact")),
    security(("bearer" = [])))]
async fn delete_contact(
    State(state): State<WebState>,
    ApiAgent { agent }: ApiAgent,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    supervisor_or_admin(&agent)?;
    let erased = state
        .store
        .delete_contact(frontdesk_core::ContactId(id), &agent.email)
        .await?;
    Ok(Json(serde_json::to_value(erased).unwrap_or_default()))
}

/// Which contact to merge with.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    /// The other contact; the older of the two keeps its id.
    with: i64,
}

/// Joins two contacts that are one person; recorded in the audit log.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/merge", tag = "contacts",
    params(("id" = i64, Path, description = "the contact")),
    request_body = MergeRequest,
    responses((status = 200, description = "`{kept: id}`: the contact that remains"),
        (status = 404, description = "no such contact"),
        (status = 422, description = "the same contact twice")),
    security(("bearer" = [])))]
async fn merge_contact(
    State(state): State<WebState>,
    ApiAgent { agent }: ApiAgent,
    Path(id): Path<i64>,
    body: Result<Json<MergeRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body?;
    let kept = state
        .store
        .merge_contacts(
            frontdesk_core::ContactId(id),
            frontdesk_core::ContactId(body.with),
            &agent.email,
        )
        .await?;
    Ok(Json(serde_json::json!({ "kept": kept })))
}

fn supervisor_or_admin(agent: &Agent) -> Result<(), ApiError> {
    match agent.role {
        frontdesk_core::Role::Admin | frontdesk_core::Role::Supervisor => Ok(()),
        frontdesk_core::Role::Agent => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only supervisors and admins may export or erase a contact",
        )),
    }
}

/// The agents, their status, teams, tier, capacity and open conversations.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, description = "`{items: [agent]}`")),
    security(("bearer" = [])))]
async fn list_agents(
    State(state): State<WebState>,
    _agent: ApiAgent,
) -> Result<Json<serde_json::Value>, ApiError> {
    let loads = state.store.agents().await?;
    let items: Vec<serde_json::Value> = loads
        .iter()
        .map(|l| {
            serde_json::json!({
                "id": l.agent.id,
                "email": l.agent.email,
                "name": l.agent.name,
                "role": l.agent.role,
                "status": l.agent.status,
                "teams": l.agent.teams,
                "tier": l.agent.tier,
                "capacity": l.agent.capacity,
                "open": l.open,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    days: Option<u32>,
}

/// First response and resolution times, CSAT, reopen and bot resolution rates, SLA
/// breaches: overall, per team and per agent, for conversations of the last days.
#[utoipa::path(get, path = "/api/v1/reports/summary", tag = "reports",
    params(("days" = Option<u32>, Query, description = "1 to 366 (default 7)")),
    responses((status = 200, description = "`{overall, teams: {team: stats}, agents: {id: stats}}`; durations in seconds")),
    security(("bearer" = [])))]
async fn report_summary(
    State(state): State<WebState>,
    _agent: ApiAgent,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let days = q.days.unwrap_or(7).clamp(1, 366);
    let until = Timestamp::now();
    let since = Timestamp::from_micros(until.as_micros() - i64::from(days) * 86_400_000_000);
    let report = state.engine.report(since, until).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}
