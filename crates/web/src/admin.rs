//! Pages for admins (agents, teams and hours, canned responses, channel and webhook
//! status, the knowledge base's try box, the audit log), for supervisors (reports),
//! and for every agent (their API tokens).

use crate::WebState;
use crate::auth::SignedIn;
use crate::charts::{Bar, Series, bar_chart, line_chart};
use crate::pages::{Chrome, render, store_failed};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use frontdesk_core::{AgentId, Role, Timestamp};
use frontdesk_store::{AgentProfile, Sweep};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

fn refused_form(status: StatusCode, why: &str) -> Response {
    (status, Html(crate::pages::message_page("Not done", why))).into_response()
}

/// Admins only, with a good CSRF token for forms.
fn admin_form(me: &SignedIn, csrf: &str) -> Result<(), crate::auth::Refused> {
    me.require_admin()?;
    me.check_csrf(csrf)
}

struct AgentRow {
    id: i64,
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
    chrome: Chrome,
    agents: Vec<AgentRow>,
}

/// GET /admin/agents
pub async fn agents(State(state): State<WebState>, me: SignedIn) -> Response {
    if let Err(refused) = me.require_admin() {
        return refused.into_response();
    }
    let loads = match state.store.agents().await {
        Ok(l) => l,
        Err(e) => return store_failed(e),
    };
    render(&AgentsPage {
        chrome: Chrome::of(&me),
        agents: loads
            .into_iter()
            .map(|l| AgentRow {
                id: l.agent.id.0,
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

#[derive(Debug, Deserialize)]
pub struct NewAgentForm {
    csrf: String,
    email: String,
    name: String,
    role: String,
    password: String,
}

/// POST /admin/agents: a new agent.
pub async fn add_agent(
    State(state): State<WebState>,
    me: SignedIn,
    Form(form): Form<NewAgentForm>,
) -> Response {
    if let Err(r) = admin_form(&me, &form.csrf) {
        return r.into_response();
    }
    let Ok(role) = Role::parse(&form.role) else {
        return refused_form(
            StatusCode::BAD_REQUEST,
            "The role is agent, supervisor or admin.",
        );
    };
    match crate::auth::new_agent(&state, &form.email, &form.name, role, form.password).await {
        Ok(agent) => {
            let _ = state
                .store
                .record_audit(
                    &me.agent.email,
                    "agent_added",
                    &format!("agent {}", agent.id),
                    serde_json::json!({ "role": role }),
                )
                .await;
            Redirect::to("/admin/agents").into_response()
        }
        Err(crate::auth::NewAgentError::Invalid(m)) => {
            refused_form(StatusCode::UNPROCESSABLE_ENTITY, &m)
        }
        Err(crate::auth::NewAgentError::Failed) => {
            refused_form(StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment.")
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    csrf: String,
    teams: String,
    tier: u8,
    capacity: u32,
}

/// POST /admin/agents/{id}: teams, tier, capacity.
pub async fn agent_profile(
    State(state): State<WebState>,
    me: SignedIn,
    Path(id): Path<i64>,
    Form(form): Form<ProfileForm>,
) -> Response {
    if let Err(r) = admin_form(&me, &form.csrf) {
        return r.into_response();
    }
    let profile = AgentProfile {
        teams: form
            .teams
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        capacity: form.capacity,
        tier: form.tier,
    };
    match state.store.set_agent_profile(AgentId(id), &profile).await {
        Ok(_) => Redirect::to("/admin/agents").into_response(),
        Err(e) => store_failed(e),
    }
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
    chrome: Chrome,
    entries: Vec<AuditRow>,
}

/// GET /admin/audit: who exported, erased, logged in, assigned, resolved, newest
/// first.
pub async fn audit(State(state): State<WebState>, me: SignedIn) -> Response {
    if let Err(refused) = me.require_admin() {
        return refused.into_response();
    }
    let entries = match state.store.audit_log(500).await {
        Ok(e) => e,
        Err(e) => return store_failed(e),
    };
    render(&AuditPage {
        chrome: Chrome::of(&me),
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

#[derive(Template)]
#[template(path = "canned.html")]
struct CannedPage {
    chrome: Chrome,
    canned: Vec<frontdesk_store::Canned>,
}

/// GET /admin/canned
pub async fn canned(State(state): State<WebState>, me: SignedIn) -> Response {
    if let Err(refused) = me.require_admin() {
        return refused.into_response();
    }
    match state.store.canned_responses().await {
        Ok(canned) => render(&CannedPage {
            chrome: Chrome::of(&me),
            canned,
        }),
        Err(e) => store_failed(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct CannedForm {
    csrf: String,
    shortcut: String,
    title: String,
    text: String,
}

/// POST /admin/canned: adds one, or replaces the one with that shortcut.
pub async fn save_canned(
    State(state): State<WebState>,
    me: SignedIn,
    Form(form): Form<CannedForm>,
) -> Response {
    if let Err(r) = admin_form(&me, &form.csrf) {
        return r.into_response();
    }
    if let Err(refused) = frontdesk_guard::check_outbound(&form.text) {
        return refused_form(StatusCode::UNPROCESSABLE_ENTITY, refused.reason);
    }
    match state
        .store
        .save_canned(&form.shortcut, &form.title, &form.text, me.agent.id)
        .await
    {
        Ok(_) => Redirect::to("/admin/canned").into_response(),
        Err(e) => store_failed(e),
    }
}

/// POST /admin/canned/{id}/delete
pub async fn delete_canned(
    State(state): State<WebState>,
    me: SignedIn,
    Path(id): Path<i64>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = admin_form(&me, &form.csrf) {
        return r.into_response();
    }
    match state.store.delete_canned(id).await {
        Ok(()) => Redirect::to("/admin/canned").into_response(),
        Err(e) => store_failed(e),
    }
}

struct TeamRow {
    name: String,
    open_now: bool,
    hours: String,
    agents: String,
    queue: usize,
    /// The form's values: time zone, (day, intervals) Monday first, holidays.
    timezone: String,
    days: Vec<(&'static str, String)>,
    holidays: String,
}

#[derive(Template)]
#[template(path = "teams.html")]
struct TeamsPage {
    chrome: Chrome,
    teams: Vec<TeamRow>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// GET /admin/teams: each team's hours (to edit), whether it is open now, its agents
/// and queue.
pub async fn teams(State(state): State<WebState>, me: SignedIn) -> Response {
    if let Err(refused) = me.require_admin() {
        return refused.into_response();
    }
    let agents = match state.store.agents().await {
        Ok(a) => a,
        Err(e) => return store_failed(e),
    };
    let mut names: Vec<String> = state.engine.teams();
    names.extend(agents.iter().flat_map(|l| l.agent.teams.clone()));
    names.sort();
    names.dedup();
    let now = state.engine.now();
    let mut teams = Vec::new();
    for name in names {
        let queue = match state.store.sweep(Sweep::QueueOf(name.clone()), 1000).await {
            Ok(q) => q.len(),
            Err(e) => return store_failed(e),
        };
        let hours = state.engine.hours(&name);
        let form = hours.to_config();
        teams.push(TeamRow {
            open_now: hours.is_open(now),
            hours: match state.engine.has_hours(&name) {
                true => hours.summary(),
                false => "around the clock".into(),
            },
            agents: agents
                .iter()
                .filter(|l| l.agent.teams.contains(&name))
                .map(|l| format!("{} ({})", l.agent.name, l.agent.status))
                .collect::<Vec<_>>()
                .join(", "),
            queue,
            timezone: form.timezone.unwrap_or_else(|| "UTC".into()),
            days: DAYS
                .iter()
                .map(|d| (*d, form.hours.get(*d).cloned().unwrap_or_default()))
                .collect(),
            holidays: form.holidays.join(", "),
            name,
        });
    }
    render(&TeamsPage {
        chrome: Chrome::of(&me),
        teams,
    })
}

/// POST /admin/teams/{team}/hours: `timezone`, `mon` … `sun` (`09:00-12:00,
/// 13:00-18:00`; empty is closed), `holidays` (`YYYY-MM-DD, …`).
pub async fn set_hours(
    State(state): State<WebState>,
    me: SignedIn,
    Path(team): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admin_form(&me, form.get("csrf").map_or("", String::as_str)) {
        return r.into_response();
    }
    let config = frontdesk_router::hours::HoursConfig {
        timezone: form
            .get("timezone")
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty()),
        hours: DAYS
            .iter()
            .filter_map(|d| {
                let v = form.get(*d)?.trim();
                (!v.is_empty()).then(|| ((*d).to_owned(), v.to_owned()))
            })
            .collect(),
        holidays: form
            .get("holidays")
            .map(|h| {
                h.split([',', ' ', '\n'])
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    };
    match state
        .engine
        .set_hours(&team, &config, &me.agent.email)
        .await
    {
        Ok(()) => Redirect::to("/admin/teams").into_response(),
        Err(e) => store_failed(e),
    }
}

struct ChannelRow {
    account: String,
    ok: bool,
    detail: String,
    last_inbound: String,
    last_sent: String,
    queued: u64,
    last_error: String,
}

#[derive(Template)]
#[template(path = "channels.html")]
struct ChannelsPage {
    chrome: Chrome,
    channels: Vec<ChannelRow>,
}

fn when(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into())
}

/// GET /admin/channels: each running channel's health (polling, webhook, last error
/// as the channel reports it) and its traffic as the database knows it.
pub async fn channels(State(state): State<WebState>, me: SignedIn) -> Response {
    if let Err(refused) = me.require_admin() {
        return refused.into_response();
    }
    let activity = match state.store.channel_activity().await {
        Ok(a) => a,
        Err(e) => return store_failed(e),
    };
    let mut by_account: HashMap<String, frontdesk_store::ChannelActivity> = activity
        .into_iter()
        .map(|a| (a.account.clone(), a))
        .collect();
    let mut rows = Vec::new();
    for channel in &state.channels {
        let account = channel.account().to_string();
        let health = crate::probe("the channel", channel.health()).await;
        let seen = by_account.remove(&account);
        rows.push(channel_row(account, Some(health), seen));
    }
    // Accounts with stored traffic that run nowhere now.
    for (account, seen) in by_account {
        rows.push(channel_row(account, None, Some(seen)));
    }
    // Outbound webhooks: how far each has got, and its last failure.
    let hooks = match state.store.webhooks().await {
        Ok(h) => h,
        Err(e) => return store_failed(e),
    };
    rows.extend(hooks.into_iter().map(|h| ChannelRow {
        account: format!("webhook:{}", h.name),
        ok: h.attempts == 0,
        detail: format!(
            "{} delivered, up to event {}; {} failed attempt(s) at the next",
            h.delivered, h.last_event_id, h.attempts
        ),
        last_inbound: "-".into(),
        last_sent: when(Some(h.updated_at)),
        queued: 0,
        last_error: h.last_error.unwrap_or_default(),
    }));
    render(&ChannelsPage {
        chrome: Chrome::of(&me),
        channels: rows,
    })
}

fn channel_row(
    account: String,
    health: Option<frontdesk_core::Health>,
    seen: Option<frontdesk_store::ChannelActivity>,
) -> ChannelRow {
    let seen = seen.as_ref();
    ChannelRow {
        account,
        ok: health.as_ref().is_some_and(|h| h.ok),
        detail: health.map_or_else(|| "not running".into(), |h| h.detail),
        last_inbound: when(seen.and_then(|s| s.last_inbound_at)),
        last_sent: when(seen.and_then(|s| s.last_sent_at)),
        queued: seen.map_or(0, |s| s.queued),
        last_error: seen
            .and_then(|s| {
                s.last_error
                    .as_ref()
                    .map(|e| format!("{e} ({})", when(s.last_error_at)))
            })
            .unwrap_or_default(),
    }
}

struct Tried {
    intent: String,
    confidence: String,
    action: String,
    lang: String,
    answer: String,
    candidates: String,
}

#[derive(Template)]
#[template(path = "knowledge.html")]
struct KnowledgePage {
    chrome: Chrome,
    text: String,
    result: Option<Tried>,
    intents: usize,
}

#[derive(Debug, Deserialize)]
pub struct TryQuery {
    text: Option<String>,
}

/// GET /admin/knowledge?text=...: what the bot would make of a message.
pub async fn knowledge(
    State(state): State<WebState>,
    me: SignedIn,
    Query(q): Query<TryQuery>,
) -> Response {
    if let Err(refused) = me.require_admin() {
        return refused.into_response();
    }
    let Some(bot) = state.engine.bot() else {
        return refused_form(
            StatusCode::NOT_FOUND,
            "The bot is off in this configuration.",
        );
    };
    let engine = bot.knowledge();
    let text: String = q.text.unwrap_or_default().chars().take(4000).collect();
    let result = (!text.trim().is_empty()).then(|| {
        let m = engine.match_text(&text);
        Tried {
            intent: m.intent.clone().unwrap_or_else(|| "(none)".into()),
            confidence: format!("{:.2}", m.confidence),
            action: format!("{:?}", m.action).to_lowercase(),
            lang: format!("{:?}", m.lang).to_lowercase(),
            answer: m.answer.clone().unwrap_or_default(),
            candidates: m
                .candidates
                .iter()
                .map(|(i, c)| format!("{i} {c:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    });
    render(&KnowledgePage {
        chrome: Chrome::of(&me),
        text,
        result,
        intents: engine.intent_count(),
    })
}

struct TokenRow {
    id: i64,
    name: String,
    scopes: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    created: Option<String>,
}

async fn tokens_page(state: &WebState, me: &SignedIn, created: Option<String>) -> Response {
    match state.store.api_tokens(me.agent.id).await {
        Ok(tokens) => render(&TokensPage {
            chrome: Chrome::of(me),
            tokens: tokens
                .into_iter()
                .map(|t| TokenRow {
                    id: t.id,
                    name: t.name,
                    scopes: t.scopes.join(" "),
                    created: t.created_at.to_rfc3339(),
                    last_used: when(t.last_used_at),
                })
                .collect(),
            created,
        }),
        Err(e) => store_failed(e),
    }
}

/// GET /settings/tokens: the agent's own API tokens.
pub async fn tokens(State(state): State<WebState>, me: SignedIn) -> Response {
    tokens_page(&state, &me, None).await
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    csrf: String,
    name: String,
    read_only: Option<String>,
}

/// POST /settings/tokens: a new token, shown once on the page that answers.
pub async fn create_token(
    State(state): State<WebState>,
    me: SignedIn,
    Form(form): Form<TokenForm>,
) -> Response {
    if let Err(refused) = me.check_csrf(&form.csrf) {
        return refused.into_response();
    }
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return refused_form(
            StatusCode::BAD_REQUEST,
            "A token needs a name (80 characters at most).",
        );
    }
    let scopes: Vec<String> = match form.read_only {
        Some(_) => vec!["read".into()],
        None => vec!["read".into(), "write".into()],
    };
    let token = crate::api::new_token();
    if let Err(e) = state
        .store
        .create_api_token(me.agent.id, name, &crate::api::token_hash(&token), &scopes)
        .await
    {
        return store_failed(e);
    }
    let _ = state
        .store
        .record_audit(
            &me.agent.email,
            "token_created",
            "api token",
            serde_json::json!({ "name": name, "scopes": scopes }),
        )
        .await;
    tokens_page(&state, &me, Some(token)).await
}

/// POST /settings/tokens/{id}/revoke
pub async fn revoke_token(
    State(state): State<WebState>,
    me: SignedIn,
    Path(id): Path<i64>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = me.check_csrf(&form.csrf) {
        return refused.into_response();
    }
    match state.store.revoke_api_token(me.agent.id, id).await {
        Ok(()) => Redirect::to("/settings/tokens").into_response(),
        Err(e) => store_failed(e),
    }
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    chrome: Chrome,
    from: String,
    to: String,
    summary: String,
    /// SVG, made by [`crate::charts`] (every label escaped there).
    charts: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

/// Midnight UTC of a `YYYY-MM-DD` date.
fn day_start(date: &str) -> Option<Timestamp> {
    let d: jiff::civil::Date = date.parse().ok()?;
    let ts = d.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(Timestamp::from_micros(ts.as_microsecond()))
}

fn minutes(d: Option<std::time::Duration>) -> f64 {
    d.map_or(0.0, |d| d.as_secs_f64() / 60.0)
}

/// GET /reports?from=YYYY-MM-DD&to=YYYY-MM-DD (supervisors and admins): volume by
/// channel, intent and day; bot resolution rate; first-response and resolution
/// times; CSAT per agent and team; SLA breaches. `to` is inclusive; the default is
/// the last 7 days.
pub async fn reports(
    State(state): State<WebState>,
    me: SignedIn,
    Query(q): Query<RangeQuery>,
) -> Response {
    if !matches!(me.agent.role, Role::Admin | Role::Supervisor) {
        return refused_form(
            StatusCode::FORBIDDEN,
            "only supervisors and admins see reports",
        );
    }
    let now = state.engine.now();
    let today: String = now.to_rfc3339().chars().take(10).collect();
    let to = q.to.filter(|t| !t.is_empty()).unwrap_or(today);
    let Some(until) = day_start(&to).map(|t| t.plus(std::time::Duration::from_secs(86_400))) else {
        return refused_form(StatusCode::BAD_REQUEST, "Dates are YYYY-MM-DD.");
    };
    let week_before = until.minus(std::time::Duration::from_secs(7 * 86_400));
    let from = q
        .from
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| week_before.to_rfc3339().chars().take(10).collect());
    let Some(since) = day_start(&from) else {
        return refused_form(StatusCode::BAD_REQUEST, "Dates are YYYY-MM-DD.");
    };
    if since >= until {
        return refused_form(StatusCode::BAD_REQUEST, "From must be before to.");
    }
    let (report, agents) =
        match tokio::try_join!(state.engine.report(since, until), state.store.agents()) {
            Ok(both) => both,
            Err(e) => return store_failed(e),
        };
    let names: HashMap<AgentId, String> = agents
        .into_iter()
        .map(|l| (l.agent.id, l.agent.name))
        .collect();
    let tr = crate::i18n::Tr::new(&me.agent.locale);
    let o = &report.overall;
    let bars = |m: &std::collections::BTreeMap<String, u32>| -> Vec<Bar> {
        m.iter()
            .map(|(k, v)| Bar {
                label: k.clone(),
                value: f64::from(*v),
            })
            .collect()
    };
    let days = Series {
        name: tr.s("Conversations per day").to_owned(),
        points: report
            .per_day
            .iter()
            .map(|(d, n)| (d.chars().skip(5).collect(), f64::from(*n)))
            .collect(),
    };
    let times = vec![
        Bar {
            label: format!("{} {}", tr.s("First response"), tr.s("p50")),
            value: minutes(o.first_response_p50),
        },
        Bar {
            label: format!("{} {}", tr.s("First response"), tr.s("p90")),
            value: minutes(o.first_response_p90),
        },
        Bar {
            label: format!("{} {}", tr.s("Resolution"), tr.s("p50")),
            value: minutes(o.resolution_p50),
        },
        Bar {
            label: format!("{} {}", tr.s("Resolution"), tr.s("p90")),
            value: minutes(o.resolution_p90),
        },
    ];
    let csat_agents: Vec<Bar> = report
        .agents
        .iter()
        .filter_map(|(id, s)| {
            Some(Bar {
                label: names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| format!("agent {id}")),
                value: s.csat_average?,
            })
        })
        .collect();
    let csat_teams: Vec<Bar> = report
        .teams
        .iter()
        .filter_map(|(team, s)| {
            Some(Bar {
                label: team.clone(),
                value: s.csat_average?,
            })
        })
        .collect();
    let breaches: Vec<Bar> = report
        .teams
        .iter()
        .map(|(team, s)| Bar {
            label: team.clone(),
            value: f64::from(s.sla_breaches),
        })
        .collect();
    let charts = vec![
        line_chart(tr.s("Conversations per day"), &[days]),
        bar_chart(
            tr.s("Conversations by channel"),
            &bars(&report.by_channel),
            "",
        ),
        bar_chart(
            tr.s("Conversations by intent"),
            &bars(&report.by_intent),
            "",
        ),
        bar_chart(
            tr.s("Bot resolution rate"),
            &[Bar {
                label: "bot".into(),
                value: o.bot_resolution_rate.unwrap_or(0.0) * 100.0,
            }],
            "%",
        ),
        bar_chart(
            &format!("{} / {}", tr.s("First response"), tr.s("Resolution")),
            &times,
            " min",
        ),
        bar_chart(tr.s("CSAT by agent"), &csat_agents, ""),
        bar_chart(tr.s("CSAT by team"), &csat_teams, ""),
        bar_chart(tr.s("SLA breaches"), &breaches, ""),
    ];
    let summary = format!(
        "{} conversations · {} handed off · {} resolved ({} by the bot) · {} ratings, average {} · {} SLA breaches",
        o.conversations,
        o.handed_off,
        o.resolved,
        o.resolved_by_bot,
        o.csat_count,
        o.csat_average
            .map_or_else(|| "-".into(), |a| format!("{a:.2}")),
        o.sla_breaches
    );
    render(&ReportsPage {
        chrome: Chrome::of(&me),
        from,
        to,
        summary,
        charts,
    })
}
