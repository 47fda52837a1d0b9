//! The agent inbox: server-rendered pages (askama escapes every value, so a customer's
//! `<img onerror=...>` shows as text), plain forms with CSRF tokens, no script.
//!
//! - `/`: conversations, newest activity first: mine, unassigned or all, by status;
//! - `/conversations/{id}`: the messages with delivery states, the guard's warning
//!   (never the secret), entities to copy; reply or private note; assign to me,
//!   pending, resolve, escalate with a reason;
//! - `/admin/agents` and `/admin/audit`: admins only.

use crate::WebState;
use crate::auth::SignedIn;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use frontdesk_core::{AgentId, ConversationId, Delivery, Message, MessageKind, Status};
use frontdesk_router::Escalation;
use frontdesk_store::{AssigneeFilter, ConversationQuery, NewReply, PageCursor};
use serde::Deserialize;
use std::collections::HashMap;

/// Pages run only their own script and are never framed.
pub(crate) const PAGE_POLICY: &str = "default-src 'self'; frame-ancestors 'none'";

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (
            [
                (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            Html(html),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

fn store_failed(e: frontdesk_store::StoreError) -> Response {
    match e {
        frontdesk_store::StoreError::NotFound(..) => (
            StatusCode::NOT_FOUND,
            Html(message_page("Not found", "There is no such page.")),
        )
            .into_response(),
        frontdesk_store::StoreError::Invalid(m) | frontdesk_store::StoreError::Refused(m) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(message_page("Not done", &m)),
        )
            .into_response(),
        other => {
            tracing::error!(error = %other, "a page's store call failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

/// A page with a title and one sentence.
pub fn message_page(title: &str, message: &str) -> String {
    MessagePage { title, message }
        .render()
        .unwrap_or_else(|_| message.to_owned())
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

pub fn login(csrf: &str, error: Option<&str>) -> String {
    LoginPage { csrf, error }.render().unwrap_or_default()
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    csrf: &'a str,
    error: Option<&'a str>,
}

pub fn setup(csrf: &str, error: Option<&str>) -> String {
    SetupPage { csrf, error }.render().unwrap_or_default()
}

/// GET /static/inbox.js
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../assets/inbox.js"),
    )
        .into_response()
}

/// GET /static/inbox.css
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../assets/inbox.css"),
    )
        .into_response()
}

struct Row {
    id: i64,
    contact: String,
    channel: String,
    status: String,
    priority: String,
    team: String,
    assignee: String,
    sla: String,
    last_message_at: String,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    me: String,
    csrf: String,
    is_admin: bool,
    heading: String,
    view: String,
    status: String,
    search: String,
    priority: String,
    team: String,
    /// Each status, and whether it is the one shown.
    statuses: Vec<(&'static str, bool)>,
    rows: Vec<Row>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    view: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    q: Option<String>,
    priority: Option<String>,
    team: Option<String>,
}

/// Agent names by id, for lists.
async fn agent_names(state: &WebState) -> HashMap<AgentId, String> {
    state
        .store
        .agents()
        .await
        .map(|all| {
            all.into_iter()
                .map(|l| (l.agent.id, l.agent.name))
                .collect()
        })
        .unwrap_or_default()
}

fn sla_word(state: &WebState, c: &frontdesk_core::Conversation) -> String {
    state.engine.sla_state(c).as_str().to_owned()
}

/// GET /
pub async fn inbox(
    State(state): State<WebState>,
    me: SignedIn,
    Query(q): Query<InboxQuery>,
) -> Response {
    let view = q.view.unwrap_or_else(|| "mine".into());
    let (assignee, heading) = match view.as_str() {
        "all" => (AssigneeFilter::Any, "All conversations"),
        "unassigned" => (AssigneeFilter::Unassigned, "Unassigned"),
        _ => (AssigneeFilter::Agent(me.agent.id), "Mine"),
    };
    let status = q.status.unwrap_or_else(|| "open".into());
    let Ok(parsed) = Status::parse(&status) else {
        return (
            StatusCode::BAD_REQUEST,
            Html(message_page("Bad filter", "Unknown status.")),
        )
            .into_response();
    };
    let after = match q.cursor.as_deref().map(PageCursor::parse).transpose() {
        Ok(after) => after,
        Err(e) => return store_failed(e),
    };
    let search = q.q.clone().filter(|t| !t.trim().is_empty());
    let priority = q
        .priority
        .as_deref()
        .filter(|p| !p.is_empty())
        .and_then(|p| frontdesk_core::Priority::parse(p).ok());
    let team = q.team.clone().filter(|t| !t.trim().is_empty());
    let page = match state
        .store
        .list_conversations(&ConversationQuery {
            status: Some(parsed),
            assignee,
            priority,
            team: team.clone(),
            text: search.clone(),
            limit: 50,
            after,
            ..ConversationQuery::default()
        })
        .await
    {
        Ok(page) => page,
        Err(e) => return store_failed(e),
    };
    let names = agent_names(&state).await;
    let rows = page
        .items
        .iter()
        .map(|c| Row {
            id: c.id.0,
            contact: c
                .contact_name
                .clone()
                .unwrap_or_else(|| format!("contact {}", c.contact_id)),
            channel: c.account.kind().to_string(),
            status: c.status.to_string(),
            priority: c.priority.to_string(),
            team: c.team.clone().unwrap_or_default(),
            assignee: c
                .assignee
                .and_then(|a| names.get(&a).cloned())
                .unwrap_or_default(),
            sla: sla_word(&state, c),
            last_message_at: c.last_message_at.to_rfc3339(),
        })
        .collect();
    render(&InboxPage {
        me: me.agent.name.clone(),
        csrf: me.csrf.clone(),
        is_admin: me.agent.role == frontdesk_core::Role::Admin,
        heading: heading.into(),
        view,
        status,
        search: search.unwrap_or_default(),
        priority: priority.map(|p| p.to_string()).unwrap_or_default(),
        team: team.unwrap_or_default(),
        statuses: Status::ALL
            .iter()
            .map(|s| (s.as_str(), *s == parsed))
            .collect(),
        rows,
        next: page.next.map(|c| c.to_string()),
    })
}

struct Shown {
    author: String,
    kind: String,
    created_at: String,
    delivery: Option<String>,
    redacted: bool,
    text: String,
    entities: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "conversation.html")]
struct ConversationPage {
    me: String,
    csrf: String,
    is_admin: bool,
    id: i64,
    contact: String,
    channel: String,
    status: String,
    priority: String,
    team: String,
    assignee: String,
    sla: String,
    messages: Vec<Shown>,
    reply_key: String,
}

fn shown(m: &Message, names: &HashMap<AgentId, String>) -> Shown {
    let agent = m.agent_id.and_then(|a| names.get(&a));
    Shown {
        // Also the CSS class: contact, bot, agent, system.
        author: m.author.to_string(),
        kind: m.kind.to_string(),
        created_at: m.created_at.to_rfc3339(),
        delivery: m.delivery.as_ref().map(|d| match d {
            Delivery::Queued => "queued".to_owned(),
            Delivery::Sent => "sent".to_owned(),
            Delivery::Failed { reason } => format!("failed: {reason}"),
        }),
        redacted: !m.findings.is_empty(),
        text: match (m.kind, agent) {
            (MessageKind::Note, Some(name)) => format!("{name} (private note): {}", m.text),
            (_, Some(name)) => format!("{name}: {}", m.text),
            _ => m.text.clone(),
        },
        entities: m
            .entities
            .iter()
            .map(|e| (e.kind.clone(), e.value.clone()))
            .collect(),
    }
}

/// GET /conversations/{id}
pub async fn conversation(
    State(state): State<WebState>,
    me: SignedIn,
    Path(id): Path<i64>,
) -> Response {
    let id = ConversationId(id);
    let c = match state.store.conversation(id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return store_failed(frontdesk_store::StoreError::NotFound("conversation", id.0));
        }
        Err(e) => return store_failed(e),
    };
    let messages = match state.store.messages(id, None, 1000).await {
        Ok(m) => m,
        Err(e) => return store_failed(e),
    };
    let names = agent_names(&state).await;
    let reply_key: [u8; 16] = rand::random();
    render(&ConversationPage {
        me: me.agent.name.clone(),
        csrf: me.csrf.clone(),
        is_admin: me.agent.role == frontdesk_core::Role::Admin,
        id: id.0,
        contact: c
            .contact_name
            .clone()
            .unwrap_or_else(|| format!("contact {}", c.contact_id)),
        channel: c.account.to_string(),
        status: c.status.to_string(),
        priority: c.priority.to_string(),
        team: c.team.clone().unwrap_or_else(|| "-".into()),
        assignee: c
            .assignee
            .and_then(|a| names.get(&a).cloned())
            .unwrap_or_else(|| "-".into()),
        sla: sla_word(&state, &c),
        messages: messages.iter().map(|m| shown(m, &names)).collect(),
        reply_key: crate::api::hex(&reply_key),
    })
}

#[derive(Debug, Deserialize)]
pub struct ReplyForm {
    csrf: String,
    text: String,
    /// One key per rendering of the form: a double submit sends once.
    key: String,
    private: Option<String>,
}

/// POST /conversations/{id}/reply
pub async fn reply(
    State(state): State<WebState>,
    me: SignedIn,
    Path(id): Path<i64>,
    Form(form): Form<ReplyForm>,
) -> Response {
    if let Err(refused) = me.check_csrf(&form.csrf) {
        return refused.into_response();
    }
    let reply = NewReply {
        idempotency_key: Some(format!(
            "form-{}",
            form.key.chars().take(64).collect::<String>()
        )),
        ..NewReply::from_agent(
            ConversationId(id),
            me.agent.id,
            form.text,
            form.private.is_some(),
        )
    };
    match state.store.reply(reply).await {
        Ok(_) => Redirect::to(&format!("/conversations/{id}")).into_response(),
        Err(e) => store_failed(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    action: String,
    reason: Option<String>,
}

/// POST /conversations/{id}/actions: take, pending, resolve, tier2, supervisor.
pub async fn action(
    State(state): State<WebState>,
    me: SignedIn,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(refused) = me.check_csrf(&form.csrf) {
        return refused.into_response();
    }
    let cid = ConversationId(id);
    let engine = &state.engine;
    let by = me.agent.id;
    let reason = form.reason.unwrap_or_default();
    let done = match form.action.as_str() {
        "take" => engine.assign(cid, by, Some(by)).await.map(|_| ()),
        "pending" => engine.set_pending(cid).await.map(|_| ()),
        "resolve" => engine
            .resolve(cid, &format!("resolved by agent {by}"))
            .await
            .map(|_| ()),
        "tier2" => engine
            .escalate(cid, Escalation::Tier2, &reason, Some(by))
            .await
            .map(|_| ()),
        "supervisor" => engine
            .escalate(cid, Escalation::Supervisor, &reason, Some(by))
            .await
            .map(|_| ()),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Html(message_page("Bad action", "Unknown action.")),
            )
                .into_response();
        }
    };
    if let Err(e) = done {
        return store_failed(e);
    }
    let _ = state
        .store
        .record_audit(
            &me.agent.email,
            &form.action,
            &format!("conversation {id}"),
            serde_json::json!({ "agent": by }),
        )
        .await;
    Redirect::to(&format!("/conversations/{id}")).into_response()
}

struct AgentRow {
    name: String,
    email: String,
    role: String,
    status: String,
    teams: String,
    tier: u8,
    capacity: u32,
    open: u32,
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    me: String,
    csrf: String,
    is_admin: bool,
    agents: Vec<AgentRow>,
}

/// GET /admin/agents (admins only)
pub async fn agents(State(state): State<WebState>, me: SignedIn) -> Response {
    if let Err(refused) = me.require_admin() {
        return refused.into_response();
    }
    let loads = match state.store.agents().await {
        Ok(l) => l,
        Err(e) => return store_failed(e),
    };
    render(&AgentsPage {
        me: me.agent.name.clone(),
        csrf: me.csrf.clone(),
        is_admin: true,
        agents: loads
            .into_iter()
            .map(|l| AgentRow {
                name: l.agent.name,
                email: l.agent.email,
                role: l.agent.role.to_string(),
                status: l.agent.status.to_string(),
                teams: l.agent.teams.join(", "),
                tier: l.agent.tier,
                capacity: l.agent.capacity,
                open: l.open,
            })
            .collect(),
    })
}

struct AuditRow {
    when: String,
    actor: String,
    action: String,
    subject: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    me: String,
    csrf: String,
    is_admin: bool,
    entries: Vec<AuditRow>,
}

/// GET /admin/audit (admins only): who exported, erased, logged in, assigned,
/// resolved, newest first.
pub async fn audit(State(state): State<WebState>, me: SignedIn) -> Response {
    if let Err(refused) = me.require_admin() {
        return refused.into_response();
    }
    let entries = match state.store.audit_log(500).await {
        Ok(e) => e,
        Err(e) => return store_failed(e),
    };
    render(&AuditPage {
        me: me.agent.name.clone(),
        csrf: me.csrf.clone(),
        is_admin: true,
        entries: entries
            .into_iter()
            .map(|e| AuditRow {
                when: e.created_at.to_rfc3339(),
                actor: e.actor,
                action: e.action,
                subject: e.subject,
                detail: e.detail.to_string(),
            })
            .collect(),
    })
}
