//! Agents in the browser: log in, sessions, CSRF, roles, the first admin.
//!
//! - A session is a random token in an HttpOnly, SameSite=Lax cookie; the database
//!   keeps its SHA-256, the agent, an expiry and the session's CSRF token, so every
//!   instance knows every session.
//! - Every form that changes something carries the CSRF token and is refused without
//!   it (the login and setup forms, before any session, use a double-submit cookie).
//! - Wrong passwords are counted per address in the database, so every instance
//!   agrees: after [`MAX_FAILURES`] within [`LOCKOUT`], that address is locked for
//!   [`LOCKOUT`]. The reply never says whether the address exists.
//! - `/setup` creates the first admin while there is no agent at all, and is gone after.

use crate::WebState;
use crate::api::{hex, token_hash};
use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use frontdesk_core::{Agent, Role, Timestamp};
use frontdesk_store::NewAgent;
use serde::Deserialize;
use std::time::Duration;

pub const SESSION_COOKIE: &str = "fd_session";
/// The double-submit cookie of the login and setup forms.
pub const FORM_COOKIE: &str = "fd_form";
/// How long a session lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Wrong passwords for one address before it is locked.
pub const MAX_FAILURES: u32 = 5;
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// The agent behind a page request, and their session's CSRF token. Without a session
/// the request is sent to the login page.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub agent: Agent,
    pub csrf: String,
}

impl SignedIn {
    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), Refused> {
        match constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            true => Ok(()),
            false => Err(Refused(EXPIRED_FORM)),
        }
    }

    /// Only admins may go on.
    pub fn require_admin(&self) -> Result<(), Refused> {
        match self.agent.role {
            Role::Admin => Ok(()),
            _ => Err(Refused("only admins may open this page")),
        }
    }
}

const EXPIRED_FORM: &str = "the form has expired; reload the page and try again";

/// A request refused for what the agent may do (403), with the reason.
#[derive(Debug, Clone, Copy)]
pub struct Refused(pub &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        forbidden(self.0)
    }
}

impl FromRequestParts<WebState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        match state.store.session(&token_hash(&token)).await {
            Ok(Some((agent, csrf))) => Ok(SignedIn { agent, csrf }),
            Ok(None) => Err(to_login()),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a session");
                Err((StatusCode::SERVICE_UNAVAILABLE, "try again in a moment").into_response())
            }
        }
    }
}

pub(crate) fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(crate::pages::message_page("Forbidden", message)),
    )
        .into_response()
}

/// The value of one cookie of the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// Compares secrets without leaking where they differ (subtle's comparison, as the
/// Telegram webhook's secret check uses).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex(&bytes)
}

fn set_cookie(state: &WebState, name: &str, value: &str, max_age: Duration) -> HeaderValue {
    cookie_header(state, name, value, "/", max_age)
}

/// An HttpOnly, SameSite=Lax cookie (Secure when served over HTTPS).
pub(crate) fn cookie_header(
    state: &WebState,
    name: &str,
    value: &str,
    path: &str,
    max_age: Duration,
) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn form_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, FORM_COOKIE)
}

/// GET /login.
pub async fn login_page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    // Keep the form token of an earlier visit, so two open tabs both work.
    let token = form_token(&headers).unwrap_or_else(random_token);
    let mut response = Html(crate::pages::login(&token, None)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&state, FORM_COOKIE, &token, Duration::from_secs(3600)),
    );
    response
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: String,
}

/// Login attempts per client address: 20 at once, then one every 3 seconds. This
/// slows a guesser who tries many addresses (each address also locks on its own,
/// on every instance); counted per instance.
pub fn login_limit() -> crate::webchat::RateLimit {
    crate::webchat::RateLimit::new(20, Duration::from_secs(3))
}

/// The bucket of a client address: IPv4 as it is, IPv6 by its /64 (one customer line
/// holds a whole /64). Behind a reverse proxy every client shares the proxy's bucket.
fn client_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The peer's IP address, when the server was started with connect info.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// POST /login.
pub async fn login(
    State(state): State<WebState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Some(ip) = ip
        && let Err(wait) = state.login_limit.take(&client_key(ip))
    {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())],
            Html(crate::pages::message_page(
                "Slow down",
                "Too many login attempts from this address; try again in a moment.",
            )),
        )
            .into_response();
    }
    let Some(expected) = form_token(&headers) else {
        return forbidden(EXPIRED_FORM);
    };
    if !constant_time_eq(form.csrf.as_bytes(), expected.as_bytes()) {
        return forbidden(EXPIRED_FORM);
    }
    let email = form.email.trim().to_lowercase();
    let again = |message: &str| {
        (
            StatusCode::UNAUTHORIZED,
            Html(crate::pages::login(&expected, Some(message))),
        )
            .into_response()
    };
    const LOCKED: &str = "Too many wrong passwords for this address; try again in 15 minutes.";
    match state.store.login_locked_until(&email).await {
        Ok(None) => {}
        Ok(Some(_)) => return again(LOCKED),
        Err(e) => {
            tracing::error!(error = %e, "cannot read login failures");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment").into_response();
        }
    }
    let found = match state.store.agent_by_email(&email).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "cannot look up an agent");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment").into_response();
        }
    };
    // The same work whether or not the address exists, so timing tells nothing.
    let stored = found
        .as_ref()
        .map(|(_, hash)| hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let password = form.password;
    let matches = tokio::task::spawn_blocking(move || {
        frontdesk_router::secret_hash::verify_secret(&password, &stored)
    })
    .await
    .unwrap_or(false);
    let Some((agent, _)) = found.filter(|_| matches) else {
        if let Err(e) = state
            .store
            .login_failed(&email, MAX_FAILURES, LOCKOUT)
            .await
        {
            tracing::error!(error = %e, "cannot count a failed login");
        }
        let _ = state
            .store
            .record_audit(&email, "login_failed", "agent", serde_json::Value::Null)
            .await;
        return again("Wrong email or password.");
    };
    if let Err(e) = state.store.login_succeeded(&email).await {
        tracing::error!(error = %e, "cannot clear login failures");
    }
    let token = random_token();
    let expires = Timestamp::now().plus(SESSION_LIFETIME);
    if let Err(e) = state
        .store
        .create_session(agent.id, &token_hash(&token), &random_token(), expires)
        .await
    {
        tracing::error!(error = %e, "cannot create a session");
        return (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment").into_response();
    }
    let _ = state
        .store
        .record_audit(
            &agent.email,
            "login",
            "agent",
            serde_json::json!({ "agent": agent.id }),
        )
        .await;
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &token, SESSION_LIFETIME),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, FORM_COOKIE, "", Duration::ZERO),
    );
    response
}

/// An argon2id hash of a random secret nobody knows, checked when the address is
/// unknown so that the reply takes as long as for a known one.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        frontdesk_router::secret_hash::hash_secret(&random_token()).unwrap_or_default()
    })
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// POST /logout.
pub async fn logout(
    State(state): State<WebState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refused) = signed_in.check_csrf(&form.csrf) {
        return refused.into_response();
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let _ = state.store.end_session(&token_hash(&token)).await;
    }
    let _ = state
        .store
        .record_audit(
            &signed_in.agent.email,
            "logout",
            "agent",
            serde_json::Value::Null,
        )
        .await;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", Duration::ZERO),
    );
    response
}

async fn no_agents_yet(state: &WebState) -> bool {
    state
        .store
        .agents()
        .await
        .map(|a| a.is_empty())
        .unwrap_or(false)
}

/// GET /setup: the first admin, while there is none.
pub async fn setup_page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    if !no_agents_yet(&state).await {
        return StatusCode::NOT_FOUND.into_response();
    }
    let token = form_token(&headers).unwrap_or_else(random_token);
    let mut response = Html(crate::pages::setup(&token, None)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&state, FORM_COOKIE, &token, Duration::from_secs(3600)),
    );
    response
}

#[derive(Debug, Deserialize)]
pub struct SetupForm {
    email: String,
    name: String,
    password: String,
    csrf: String,
}

/// POST /setup.
pub async fn setup(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    if !no_agents_yet(&state).await {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(expected) = form_token(&headers) else {
        return forbidden(EXPIRED_FORM);
    };
    if !constant_time_eq(form.csrf.as_bytes(), expected.as_bytes()) {
        return forbidden(EXPIRED_FORM);
    }
    let again = |message: &str| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(crate::pages::setup(&expected, Some(message))),
        )
            .into_response()
    };
    let added = new_agent(&state, &form.email, &form.name, Role::Admin, form.password).await;
    match added {
        Ok(agent) => {
            let _ = state
                .store
                .record_audit(
                    &agent.email,
                    "setup",
                    "agent",
                    serde_json::json!({ "agent": agent.id }),
                )
                .await;
            Redirect::to("/login").into_response()
        }
        Err(NewAgentError::Invalid(m)) => again(&m),
        Err(NewAgentError::Failed) => {
            (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment").into_response()
        }
    }
}

/// Why a new agent was not added.
#[derive(Debug)]
pub(crate) enum NewAgentError {
    /// Something to tell whoever filled in the form.
    Invalid(String),
    /// Logged; try again.
    Failed,
}

/// Adds an agent (at `/setup` or by an admin) with an argon2id hash of the password:
/// a name and at least 10 characters of password; the email in lower case.
pub(crate) async fn new_agent(
    state: &WebState,
    email: &str,
    name: &str,
    role: Role,
    password: String,
) -> Result<Agent, NewAgentError> {
    if password.chars().count() < 10 {
        return Err(NewAgentError::Invalid(
            "The password needs at least 10 characters.".into(),
        ));
    }
    if name.trim().is_empty() {
        return Err(NewAgentError::Invalid("A name is needed.".into()));
    }
    let hash =
        tokio::task::spawn_blocking(move || frontdesk_router::secret_hash::hash_secret(&password))
            .await;
    let Ok(Ok(hash)) = hash else {
        tracing::error!("cannot hash a password");
        return Err(NewAgentError::Failed);
    };
    let added = state
        .store
        .add_agent(NewAgent {
            email: email.trim().to_lowercase(),
            name: name.trim().to_owned(),
            role,
            password_hash: hash,
        })
        .await;
    match added {
        Ok(agent) => Ok(agent),
        Err(frontdesk_store::StoreError::Invalid(m)) => Err(NewAgentError::Invalid(m)),
        Err(e) => {
            tracing::error!(error = %e, "cannot add an agent");
            Err(NewAgentError::Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stand_in_hash_is_real_and_matches_nothing_typed() {
        let dummy = super::dummy_hash();
        assert!(dummy.starts_with("$argon2id$"));
        assert!(!frontdesk_router::secret_hash::verify_secret("", dummy));
        assert!(!frontdesk_router::secret_hash::verify_secret(
            "password", dummy
        ));
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("cookie", "a=1; fd_session=abc; b=".parse().unwrap());
        assert_eq!(
            super::cookie(&headers, "fd_session").as_deref(),
            Some("abc")
        );
        assert_eq!(super::cookie(&headers, "b"), None);
        assert!(
            super::constant_time_eq(b"abc", b"abc") && !super::constant_time_eq(b"abc", b"abd")
        );
    }
}
