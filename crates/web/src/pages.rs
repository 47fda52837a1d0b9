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
use crate::i18n::Tr;
use askama::Template;
use axum::Form;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use frontdesk_core::{
    AgentId, ChannelKind, ContactId, ConversationId, Delivery, Message, MessageKind, Role, Status,
};
use frontdesk_router::Escalation;
use frontdesk_router::engine::Transfer;
use frontdesk_store::{
    AssigneeFilter, ConversationChange, ConversationQuery, NewReply, PageCursor,
};
use serde::Deserialize;
use sha2::Digest;
use std::collections::HashMap;

/// Pages run only their own script and are never framed.
pub(crate) const PAGE_POLICY: &str = "default-src 'self'; frame-ancestors 'none'";

pub(crate) fn render(t: &impl Template) -> Response {
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

pub(crate) fn store_failed(e: frontdesk_store::StoreError) -> Response {
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

/// What every signed-in page shows around its content: who, the CSRF token for the
/// nav's forms, which links the role may see, the language.
pub(crate) struct Chrome {
    pub me: String,
    pub csrf: String,
    pub is_admin: bool,
    /// Admins and supervisors: reports.
    pub is_lead: bool,
    pub tr: Tr,
}

impl Chrome {
    pub(crate) fn of(me: &SignedIn) -> Self {
        Self {
            me: me.agent.name.clone(),
            csrf: me.csrf.clone(),
            is_admin: me.agent.role == Role::Admin,
            is_lead: matches!(me.agent.role, Role::Admin | Role::Supervisor),
            tr: Tr::new(&me.agent.locale),
        }
    }
}

struct Row {
    id: i64,
    contact: String,
    channel: String,
    status: String,
    priority: String,
    team: String,
    assignee: String,
    labels: Vec<String>,
    sla: String,
    last_message_at: String,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    chrome: Chrome,
    heading: String,
    view: String,
    status: String,
    search: String,
    priority: String,
    channel: String,
    team: String,
    label: String,
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
    channel: Option<String>,
    team: Option<String>,
    label: Option<String>,
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

fn bad_request(title: &str, message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Html(message_page(title, message))).into_response()
}

/// A filter's value: `None` when empty.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// GET /
pub async fn inbox(
    State(state): State<WebState>,
    me: SignedIn,
    Query(q): Query<InboxQuery>,
) -> Response {
    let view = q.view.unwrap_or_else(|| "mine".into());
    let (assignee, mentioning, heading) = match view.as_str() {
        "all" => (AssigneeFilter::Any, None, "All conversations"),
        "unassigned" => (AssigneeFilter::Unassigned, None, "Unassigned"),
        "mentions" => (AssigneeFilter::Any, Some(me.agent.id), "Mentions"),
        _ => (AssigneeFilter::Agent(me.agent.id), None, "Mine"),
    };
    // Mentions show whatever the status; the other views default to open.
    let status = q.status.unwrap_or_else(|| match mentioning {
        Some(_) => String::new(),
        None => "open".into(),
    });
    let parsed = match status.as_str() {
        "" => None,
        s => match Status::parse(s) {
            Ok(s) => Some(s),
            Err(_) => return bad_request("Bad filter", "Unknown status."),
        },
    };
    let after = match q.cursor.as_deref().map(PageCursor::parse).transpose() {
        Ok(after) => after,
        Err(e) => return store_failed(e),
    };
    let search = given(&q.q);
    let priority = given(&q.priority).and_then(|p| frontdesk_core::Priority::parse(&p).ok());
    let channel = given(&q.channel).and_then(|c| ChannelKind::parse(&c).ok());
    let team = given(&q.team);
    let label = given(&q.label);
    let page = match state
        .store
        .list_conversations(&ConversationQuery {
            status: parsed,
            assignee,
            priority,
            channel,
            team: team.clone(),
            label: label.clone(),
            mentioning,
            text: search.clone(),
            limit: 50,
            after,
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
            labels: c.labels.clone(),
            sla: sla_word(&state, c),
            last_message_at: c.last_message_at.to_rfc3339(),
        })
        .collect();
    render(&InboxPage {
        chrome: Chrome::of(&me),
        heading: heading.into(),
        view,
        status,
        search: search.unwrap_or_default(),
        priority: priority.map(|p| p.to_string()).unwrap_or_default(),
        channel: channel.map(|c| c.to_string()).unwrap_or_default(),
        team: team.unwrap_or_default(),
        label: label.unwrap_or_default(),
        statuses: Status::ALL
            .iter()
            .map(|s| (s.as_str(), Some(*s) == parsed))
            .collect(),
        rows,
        next: page.next.map(|c| c.to_string()),
    })
}

struct Shown {
    author: String,
    kind: String,
    created_at: String,
    /// Earlier versions: (replaced at, text).
    edits: Vec<(String, String)>,
    delivery: Option<String>,
    redacted: bool,
    text: String,
    /// (link, name) of attached files: kept here, or fetched from the channel.
    files: Vec<(String, String)>,
    /// A customer's mail as it came (full text with quotes, or its HTML, sandboxed).
    original: Option<String>,
    entities: Vec<(String, String)>,
}

struct ContactPanel {
    id: i64,
    name: String,
    language: Option<String>,
    identities: Vec<IdentityRow>,
    /// Addresses the customer typed into the website chat (not verified).
    emails_left: Vec<String>,
}

struct IdentityRow {
    channel: String,
    external_id: String,
    verified: bool,
    /// Why replies cannot reach them on this channel (they blocked the bot).
    unreachable: Option<String>,
}

#[derive(Template)]
#[template(path = "conversation.html")]
struct ConversationPage {
    chrome: Chrome,
    id: i64,
    contact: ContactPanel,
    channel: String,
    status: String,
    priority: String,
    team: String,
    assignee: String,
    labels: Vec<String>,
    sla: String,
    messages: Vec<Shown>,
    reply_key: String,
    canned: Vec<frontdesk_store::Canned>,
    /// (form value, shown name): `agent:ID` or `team:NAME`.
    transfer_targets: Vec<(String, String)>,
    /// The Telegram bot runs and this conversation is elsewhere: agents can make a link
    /// for the customer to continue on Telegram.
    telegram_invite: bool,
}

/// The running Telegram channel, if any.
fn telegram(state: &WebState) -> Option<&std::sync::Arc<dyn frontdesk_core::Channel>> {
    state
        .channels
        .iter()
        .find(|c| c.account().kind() == frontdesk_core::ChannelKind::Telegram)
}

/// A kept file's reference in a message's attachments (`file:ID`).
pub(crate) fn file_id(reference: &str) -> Option<i64> {
    reference.strip_prefix("file:")?.parse().ok()
}

fn shown(m: &Message, names: &HashMap<AgentId, String>, email: bool) -> Shown {
    let agent = m.agent_id.and_then(|a| names.get(&a));
    Shown {
        original: (email && m.direction == frontdesk_core::Direction::In).then(|| {
            format!(
                "/conversations/{}/messages/{}/original",
                m.conversation_id, m.id
            )
        }),
        // Also the CSS class: contact, bot, agent, system.
        author: m.author.to_string(),
        kind: m.kind.to_string(),
        created_at: m.created_at.to_rfc3339(),
        edits: m
            .edits
            .iter()
            .map(|e| (e.replaced_at.to_rfc3339(), e.text.clone()))
            .collect(),
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
        files: m
            .attachments
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let link = match file_id(&a.reference) {
                    Some(id) => format!("/files/{id}"),
                    None => format!(
                        "/conversations/{}/messages/{}/files/{i}",
                        m.conversation_id, m.id
                    ),
                };
                (link, a.name.clone())
            })
            .collect(),
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
    let (messages, contact, canned, agents, emails_left) = match tokio::try_join!(
        state.store.messages(id, None, 1000),
        state.store.contact(c.contact_id),
        state.store.canned_responses(),
        state.store.agents(),
        state.store.visitor_emails(c.contact_id),
    ) {
        Ok(all) => all,
        Err(e) => return store_failed(e),
    };
    if let Err(e) = state.store.mark_mentions_seen(me.agent.id, id).await {
        tracing::warn!(error = %e, "cannot mark mentions seen");
    }
    let names: HashMap<AgentId, String> = agents
        .iter()
        .map(|l| (l.agent.id, l.agent.name.clone()))
        .collect();
    let mut transfer_targets: Vec<(String, String)> = agents
        .iter()
        .filter(|l| l.agent.id != me.agent.id)
        .map(|l| (format!("agent:{}", l.agent.id), l.agent.name.clone()))
        .collect();
    transfer_targets.extend(
        state
            .engine
            .teams()
            .into_iter()
            .map(|t| (format!("team:{t}"), format!("team {t}"))),
    );
    let reply_key: [u8; 16] = rand::random();
    let contact_name = c
        .contact_name
        .clone()
        .unwrap_or_else(|| format!("contact {}", c.contact_id));
    render(&ConversationPage {
        chrome: Chrome::of(&me),
        id: id.0,
        contact: ContactPanel {
            id: c.contact_id.0,
            name: contact_name,
            language: contact.as_ref().and_then(|k| k.language.clone()),
            identities: contact
                .map(|k| {
                    k.identities
                        .into_iter()
                        .map(|i| IdentityRow {
                            channel: i.channel.to_string(),
                            external_id: i.external_id,
                            verified: i.verified_at.is_some(),
                            unreachable: i.unreachable,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            emails_left,
        },
        telegram_invite: c.account.kind() != frontdesk_core::ChannelKind::Telegram
            && telegram(&state).is_some(),
        channel: c.account.to_string(),
        status: c.status.to_string(),
        priority: c.priority.to_string(),
        team: c.team.clone().unwrap_or_else(|| "-".into()),
        assignee: c
            .assignee
            .and_then(|a| names.get(&a).cloned())
            .unwrap_or_else(|| "-".into()),
        labels: c.labels.clone(),
        sla: sla_word(&state, &c),
        messages: messages
            .iter()
            .map(|m| {
                shown(
                    m,
                    &names,
                    c.account.kind() == frontdesk_core::ChannelKind::Email,
                )
            })
            .collect(),
        reply_key: crate::api::hex(&reply_key),
        canned,
        transfer_targets,
    })
}

/// The largest file an agent may attach.
pub const MAX_FILE: usize = 10 * 1024 * 1024;

/// What the reply form sent, from a plain or a multipart form.
#[derive(Debug, Default)]
struct ReplyForm {
    csrf: String,
    text: String,
    /// One key per rendering of the form: a double submit sends once.
    key: String,
    private: bool,
    /// (name, content type, bytes)
    file: Option<(String, String, Vec<u8>)>,
}

async fn read_reply_form(request: Request) -> Result<ReplyForm, Response> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let bad = |why: String| bad_request("Not sent", &why);
    let too_big = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Html(message_page(
                "Not sent",
                &format!("A file may be at most {} MB.", MAX_FILE / 1024 / 1024),
            )),
        )
            .into_response()
    };
    let failed = |e: axum::extract::multipart::MultipartError| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_big(),
        _ => bad(e.body_text()),
    };
    let mut form = ReplyForm::default();
    if !multipart {
        #[derive(Deserialize)]
        struct Plain {
            csrf: String,
            text: String,
            key: String,
            private: Option<String>,
        }
        let Form(plain) = Form::<Plain>::from_request(request, &())
            .await
            .map_err(|e| bad(e.body_text()))?;
        return Ok(ReplyForm {
            csrf: plain.csrf,
            text: plain.text,
            key: plain.key,
            private: plain.private.is_some(),
            file: None,
        });
    }
    let mut parts = Multipart::from_request(request, &())
        .await
        .map_err(|e| bad(e.body_text()))?;
    while let Some(field) = parts.next_field().await.map_err(failed)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or_default().to_owned();
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            let bytes = field.bytes().await.map_err(failed)?;
            if bytes.len() > MAX_FILE {
                return Err(too_big());
            }
            if !file_name.is_empty() && !bytes.is_empty() {
                form.file = Some((file_name, content_type, bytes.to_vec()));
            }
            continue;
        }
        let value = field.text().await.map_err(failed)?;
        match name.as_str() {
            "csrf" => form.csrf = value,
            "text" => form.text = value,
            "key" => form.key = value,
            "private" => form.private = true,
            _ => {}
        }
    }
    Ok(form)
}

/// A file name safe to show and to send: the last path part, no control characters,
/// at most 120 characters.
fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(120)
        .collect();
    match clean.trim() {
        "" => "file".to_owned(),
        t => t.to_owned(),
    }
}

/// `/shortcut` alone expands to that canned response, `{name}` to the contact's name.
fn expand_canned(text: &str, canned: &[frontdesk_store::Canned], contact: &str) -> String {
    let trimmed = text.trim();
    let Some(shortcut) = trimmed.strip_prefix('/') else {
        return text.to_owned();
    };
    match canned
        .iter()
        .find(|c| c.shortcut == shortcut.to_lowercase())
    {
        Some(c) => c.text.replace("{name}", contact),
        None => text.to_owned(),
    }
}

/// Agents a note names: `@` and the part of their email before the `@`, or all of it.
fn mentioned(text: &str, agents: &[frontdesk_store::AgentLoad]) -> Vec<AgentId> {
    let mut found: Vec<AgentId> = text
        .split_whitespace()
        .filter_map(|word| word.strip_prefix('@'))
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter_map(|handle| {
            agents.iter().find(|l| {
                let email = l.agent.email.to_lowercase();
                email == handle || email.split('@').next() == Some(handle.as_str())
            })
        })
        .map(|l| l.agent.id)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// POST /conversations/{id}/reply (a plain form, or multipart with a file)
pub async fn reply(
    State(state): State<WebState>,
    me: SignedIn,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    let form = match read_reply_form(request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if let Err(refused) = me.check_csrf(&form.csrf) {
        return refused.into_response();
    }
    let cid = ConversationId(id);
    let conversation = match state.store.conversation(cid).await {
        Ok(Some(c)) => c,
        Ok(None) => return store_failed(frontdesk_store::StoreError::NotFound("conversation", id)),
        Err(e) => return store_failed(e),
    };
    // Canned responses only for a `/shortcut`, agents only for a note that names one.
    let text = match form.text.trim_start().starts_with('/') {
        true => match state.store.canned_responses().await {
            Ok(canned) => {
                let contact = conversation.contact_name.clone().unwrap_or_default();
                expand_canned(&form.text, &canned, &contact)
            }
            Err(e) => return store_failed(e),
        },
        false => form.text,
    };
    let mentions = match form.private && text.contains('@') {
        true => match state.store.agents().await {
            Ok(agents) => mentioned(&text, &agents),
            Err(e) => return store_failed(e),
        },
        false => Vec::new(),
    };
    let mut attachments = Vec::new();
    if let Some((name, content_type, bytes)) = form.file {
        let name = clean_file_name(&name);
        let sha = crate::api::hex(&sha2::Sha256::digest(&bytes));
        let size = bytes.len() as u64;
        match state
            .store
            .save_file(cid, &name, &content_type, &sha, bytes)
            .await
        {
            Ok(file) => attachments.push(frontdesk_core::Attachment {
                name,
                content_type,
                size,
                reference: format!("file:{}", file.id),
            }),
            Err(e) => return store_failed(e),
        }
    }
    if text.trim().is_empty() && attachments.is_empty() {
        return bad_request("Not sent", "Write a reply or attach a file.");
    }
    let reply = NewReply {
        idempotency_key: Some(format!(
            "form-{}",
            form.key.chars().take(64).collect::<String>()
        )),
        attachments,
        mentions,
        ..NewReply::from_agent(cid, me.agent.id, text, form.private)
    };
    match state.store.reply(reply).await {
        Ok(_) => Redirect::to(&format!("/conversations/{id}")).into_response(),
        Err(e) => store_failed(e),
    }
}

/// GET /files/{id}: a kept file, for agents. Always a download, never shown inline,
/// so a hostile HTML or SVG file cannot run in the inbox's origin.
pub async fn file(State(state): State<WebState>, _me: SignedIn, Path(id): Path<i64>) -> Response {
    match state.store.file(id).await {
        Ok(Some((meta, bytes))) => download(&meta.name, bytes),
        Ok(None) => store_failed(frontdesk_store::StoreError::NotFound("file", id)),
        Err(e) => store_failed(e),
    }
}

/// GET /conversations/{id}/messages/{message}/files/{index}: a file the customer sent,
/// fetched from their channel on demand (Telegram's getFile, up to 20 MB; the channel
/// keeps recent ones in a bounded cache).
pub async fn channel_file(
    State(state): State<WebState>,
    _me: SignedIn,
    Path((id, message, index)): Path<(i64, i64, usize)>,
) -> Response {
    use frontdesk_core::FileError;
    let conversation = match state.store.conversation(ConversationId(id)).await {
        Ok(Some(c)) => c,
        Ok(None) => return store_failed(frontdesk_store::StoreError::NotFound("conversation", id)),
        Err(e) => return store_failed(e),
    };
    let found = match state
        .store
        .messages(
            conversation.id,
            Some(frontdesk_core::MessageId(message - 1)),
            1,
        )
        .await
    {
        Ok(found) => found,
        Err(e) => return store_failed(e),
    };
    let Some(attachment) = found
        .into_iter()
        .find(|m| m.id.0 == message)
        .and_then(|m| m.attachments.into_iter().nth(index))
    else {
        return store_failed(frontdesk_store::StoreError::NotFound("file", message));
    };
    let Some(channel) = state
        .channels
        .iter()
        .find(|c| *c.account() == conversation.account)
    else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(message_page(
                "Channel not running",
                &format!(
                    "{} is not running here, so its files cannot be fetched.",
                    conversation.account
                ),
            )),
        )
            .into_response();
    };
    match channel.fetch_file(&attachment.reference).await {
        Ok(file) => download(&attachment.name, file.bytes),
        Err(FileError::NotFound) => {
            store_failed(frontdesk_store::StoreError::NotFound("file", message))
        }
        Err(e @ FileError::TooBig { .. }) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Html(message_page(
                "File too large",
                &format!("{e}. Ask the customer to send it another way."),
            )),
        )
            .into_response(),
        Err(e @ FileError::Unavailable(_)) => {
            tracing::warn!(account = %conversation.account, error = %e, "cannot fetch a customer's file");
            (
                StatusCode::BAD_GATEWAY,
                Html(message_page("Try again", &e.to_string())),
            )
                .into_response()
        }
    }
}

/// GET /conversations/{id}/messages/{message}/original: a customer's mail as it came.
/// Its HTML is served in a sandbox (no scripts, no same origin, nothing loaded from
/// elsewhere, so no tracking pixels); without HTML, the full text with its quotes.
/// Both passed the guard before they were stored.
pub async fn original(
    State(state): State<WebState>,
    _me: SignedIn,
    Path((id, message)): Path<(i64, i64)>,
) -> Response {
    let meta = match state
        .store
        .message_meta(ConversationId(id), frontdesk_core::MessageId(message))
        .await
    {
        Ok(Some(meta)) => meta,
        Ok(None) => return store_failed(frontdesk_store::StoreError::NotFound("message", message)),
        Err(e) => return store_failed(e),
    };
    let common = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    if let Some(html) = meta["html"].as_str() {
        return (
            common,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'",
                ),
            ],
            html.to_owned(),
        )
            .into_response();
    }
    let text = match meta["full_text"].as_str() {
        Some(text) => text.to_owned(),
        None => {
            // Nothing more than what the conversation shows: show that.
            let shown = state
                .store
                .messages(
                    ConversationId(id),
                    Some(frontdesk_core::MessageId(message - 1)),
                    1,
                )
                .await;
            match shown {
                Ok(found) => match found.into_iter().find(|m| m.id.0 == message) {
                    Some(m) => m.text,
                    None => {
                        return store_failed(frontdesk_store::StoreError::NotFound(
                            "message", message,
                        ));
                    }
                },
                Err(e) => return store_failed(e),
            }
        }
    };
    (
        common,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'",
            ),
        ],
        text,
    )
        .into_response()
}

/// A file as an attachment download (never shown inline: it may be anything).
pub(crate) fn download(name: &str, bytes: Vec<u8>) -> Response {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: String,
    action: String,
    reason: Option<String>,
    priority: Option<String>,
    hours: Option<u32>,
    labels: Option<String>,
    to: Option<String>,
}

/// POST /conversations/{id}/actions: take, pending, resolve, priority, snooze,
/// labels, transfer, tier2, supervisor.
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
    let reason = form.reason.clone().unwrap_or_default();
    let change = |change: ConversationChange| {
        let store = state.store.clone();
        async move { store.update_conversation(cid, &change).await.map(|_| ()) }
    };
    let done = match form.action.as_str() {
        "take" => engine.assign(cid, by, Some(by)).await.map(|_| ()),
        "pending" => engine.set_pending(cid).await.map(|_| ()),
        "resolve" => engine
            .resolve(cid, &format!("resolved by agent {by}"))
            .await
            .map(|_| ()),
        "priority" => {
            let Some(priority) = form
                .priority
                .as_deref()
                .and_then(|p| frontdesk_core::Priority::parse(p).ok())
            else {
                return bad_request("Bad priority", "Choose low, normal, high or urgent.");
            };
            change(ConversationChange {
                priority: Some(priority),
                reason: Some(format!("priority {priority} by agent {by}")),
                ..ConversationChange::default()
            })
            .await
        }
        "snooze" => {
            let hours = form.hours.unwrap_or(0);
            if !(1..=24 * 30).contains(&hours) {
                return bad_request("Bad snooze", "Snooze for 1 hour to 30 days.");
            }
            let until = state
                .engine
                .now()
                .plus(std::time::Duration::from_secs(u64::from(hours) * 3600));
            engine.snooze(cid, until).await.map(|_| ())
        }
        "labels" => {
            let labels = form
                .labels
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(str::to_owned)
                .collect();
            change(ConversationChange {
                labels: Some(labels),
                reason: Some(format!("labels by agent {by}")),
                ..ConversationChange::default()
            })
            .await
        }
        "transfer" => {
            let to = match form.to.as_deref().unwrap_or_default().split_once(':') {
                Some(("agent", n)) => match n.parse() {
                    Ok(n) => Transfer::Agent(AgentId(n)),
                    Err(_) => return bad_request("Bad transfer", "Unknown agent."),
                },
                Some(("team", t)) if !t.is_empty() => Transfer::Team(t.to_owned()),
                _ => return bad_request("Bad transfer", "Choose an agent or a team."),
            };
            engine.transfer(cid, &to, &reason).await.map(|_| ())
        }
        "tier2" => engine
            .escalate(cid, Escalation::Tier2, &reason, Some(by))
            .await
            .map(|_| ()),
        "supervisor" => engine
            .escalate(cid, Escalation::Supervisor, &reason, Some(by))
            .await
            .map(|_| ()),
        "telegram_link" => {
            let Some(link) = telegram(&state).and_then(|t| {
                let code = frontdesk_router::deep_link::new_code();
                let payload = format!("{}{code}", frontdesk_router::deep_link::PREFIX);
                Some((t.invite_link(&payload)?, code))
            }) else {
                return bad_request(
                    "Telegram is not ready",
                    "The Telegram bot is not running yet; try again in a moment.",
                );
            };
            let (link, code) = link;
            let days = frontdesk_router::deep_link::VALID_DAYS;
            let expires = state
                .engine
                .now()
                .plus(std::time::Duration::from_secs(days * 86_400));
            match state
                .store
                .create_link_code(cid, me.agent.id, &code, expires)
                .await
            {
                Ok(()) => state
                    .store
                    .reply(NewReply::from_agent(
                        cid,
                        me.agent.id,
                        format!(
                            "Link for this customer to continue on Telegram (one use, {days} days; it joins their Telegram to this contact): {link}"
                        ),
                        true,
                    ))
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            }
        }
        _ => return bad_request("Bad action", "Unknown action."),
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
            serde_json::json!({ "agent": by, "to": form.to, "priority": form.priority }),
        )
        .await;
    Redirect::to(&format!("/conversations/{id}")).into_response()
}

#[derive(Debug, Deserialize)]
pub struct MergeForm {
    csrf: String,
    other: String,
    /// The conversation to return to.
    back: i64,
}

/// POST /contacts/{id}/merge: two contacts are one person.
pub async fn merge_contact(
    State(state): State<WebState>,
    me: SignedIn,
    Path(id): Path<i64>,
    Form(form): Form<MergeForm>,
) -> Response {
    if let Err(refused) = me.check_csrf(&form.csrf) {
        return refused.into_response();
    }
    let Ok(other) = form.other.trim().trim_start_matches('#').parse::<i64>() else {
        return bad_request("Not merged", "Give the other contact's number.");
    };
    if other == id {
        return bad_request("Not merged", "That is the same contact.");
    }
    match state
        .store
        .merge_contacts(ContactId(id), ContactId(other), &me.agent.email)
        .await
    {
        Ok(_) => Redirect::to(&format!("/conversations/{}", form.back)).into_response(),
        Err(e) => store_failed(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct LocaleForm {
    csrf: String,
    locale: String,
}

/// POST /settings/locale: the agent's interface language.
pub async fn set_locale(
    State(state): State<WebState>,
    me: SignedIn,
    headers: axum::http::HeaderMap,
    Form(form): Form<LocaleForm>,
) -> Response {
    if let Err(refused) = me.check_csrf(&form.csrf) {
        return refused.into_response();
    }
    if let Err(e) = state
        .store
        .set_agent_locale(me.agent.id, &form.locale)
        .await
    {
        return store_failed(e);
    }
    // Back where they were, if that is a page of ours.
    let back = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.find("://").map(|i| &r[i + 3..]))
        .and_then(|r| r.find('/').map(|i| r[i..].to_owned()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//") && !p.contains('\\'))
        .unwrap_or_else(|| "/".into());
    Redirect::to(&back).into_response()
}
