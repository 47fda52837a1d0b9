//! A fake X API v2 server on 127.0.0.1 for one support account, following X's
//! documentation closely enough that the real client cannot tell:
//!
//! - Authentication: OAuth 1.0a (HMAC-SHA1) signatures are checked as RFC 5849 says
//!   (the signature base string is rebuilt here from the request, independently of the
//!   client's signing library; a reused nonce or a stale timestamp is refused), or an
//!   OAuth 2.0 bearer token from `POST /2/oauth2/token`, whose refresh tokens rotate
//!   (each works once). Anything else gets X's 401 problem.
//! - `GET /2/users/me`; `GET /2/users/:id/mentions` (newest first, `since_id`,
//!   `max_results` 5-100, `pagination_token`, the 800 newest only, `includes.users` and
//!   `includes.tweets` for the expansions, `meta` with `newest_id`, `oldest_id`,
//!   `result_count`, `next_token`); `GET /2/dm_events` (newest first, sent and received,
//!   `max_results` 1-100, `pagination_token`, `event_types`).
//! - `POST /2/tweets`: 1-280 weighted characters (URLs 23, CJK 2), at most one cashtag,
//!   duplicate content refused (403), a reply allowed only to a post that mentioned the
//!   account or to one of its own (X's "summoned" rule, 403 otherwise).
//! - `POST /2/dm_conversations/with/:id/messages`: 1-10,000 characters; a user who does
//!   not take DMs from the account gets 403.
//! - Rate limits per endpoint and 15-minute window by default (settable): every answer
//!   has `x-rate-limit-limit`, `-remaining`, `-reset` (epoch seconds) and a `Date`, both
//!   on a clock that follows tokio's (paused time in tests moves them); a request over
//!   the limit gets 429.
//! - Scripted answers for the next calls of an endpoint ([`Scripted`]): 401, 403
//!   client-forbidden, 429, 5xx, a slow answer.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// The endpoints the fake serves, each with its own rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Me,
    Mentions,
    DmEvents,
    CreatePost,
    SendDm,
    Token,
}

impl Endpoint {
    /// X's documented per-user limits (15 minutes) for the Basic tier's busier endpoints.
    fn default_limit(self) -> u32 {
        match self {
            Endpoint::Me => 75,
            Endpoint::Mentions => 180,
            Endpoint::DmEvents => 300,
            Endpoint::CreatePost | Endpoint::SendDm => 200,
            Endpoint::Token => 1000,
        }
    }
}

/// An answer to give instead of the normal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// 401 Unauthorized.
    Unauthorized,
    /// 403 with X's `client-forbidden` problem (an app outside a Project).
    ClientForbidden,
    /// 429 with the window reset this many seconds from now.
    TooManyRequests { reset_in: u64 },
    /// This 5xx status.
    ServerError(u16),
    /// The normal answer, this late.
    Slow(Duration),
}

/// The app's OAuth 1.0a keys and the support account's access token.
#[derive(Debug, Clone)]
pub struct OAuth1Keys {
    pub consumer_key: String,
    pub consumer_secret: String,
    pub access_token: String,
    pub access_token_secret: String,
}

impl OAuth1Keys {
    /// A set of keys for tests.
    pub fn for_tests() -> Self {
        Self {
            consumer_key: "xvz1evFS4wEEPTGEFPHBog".into(),
            consumer_secret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw".into(),
            access_token: "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb".into(),
            access_token_secret: "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE".into(),
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub endpoint: Endpoint,
    /// tokio time (follows paused time).
    pub at: Instant,
    pub query: BTreeMap<String, String>,
    pub status: u16,
}

/// A post the support account made.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub id: String,
    pub text: String,
    pub in_reply_to: Option<String>,
}

/// A direct message the support account sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SentDm {
    pub event_id: String,
    pub to: String,
    pub text: String,
}

#[derive(Debug, Clone)]
struct Post {
    id: u64,
    text: String,
    author: String,
    conversation: u64,
    in_reply_to: Option<u64>,
    mentions_account: bool,
}

#[derive(Debug, Clone)]
struct DmEvent {
    id: u64,
    text: String,
    sender: String,
    conversation: String,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    used: u32,
}

#[derive(Debug)]
struct Inner {
    next_id: u64,
    users: HashMap<String, (String, String)>,
    posts: Vec<Post>,
    dms: Vec<DmEvent>,
    no_dms: HashSet<String>,
    scripted: HashMap<Endpoint, VecDeque<Scripted>>,
    limits: HashMap<Endpoint, (u32, Duration)>,
    windows: HashMap<Endpoint, Window>,
    requests: Vec<Recorded>,
    nonces: HashSet<(String, String)>,
    /// OAuth 2.0: the refresh token that works now, and the access tokens issued.
    refresh_token: Option<String>,
    access_tokens: HashSet<String>,
    issued: u32,
    rate_limited: usize,
}

impl Inner {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Counts a request against `endpoint`'s window; the seconds to its reset and the
    /// requests left, or `Err` with the reset when the window is used up.
    fn count(&mut self, endpoint: Endpoint) -> Result<(u32, u32, Duration), (u32, Duration)> {
        let now = Instant::now();
        let (limit, length) = self
            .limits
            .get(&endpoint)
            .copied()
            .unwrap_or((endpoint.default_limit(), Duration::from_secs(900)));
        let window = self.windows.entry(endpoint).or_insert(Window {
            started: now,
            used: 0,
        });
        if now.duration_since(window.started) >= length {
            *window = Window {
                started: now,
                used: 0,
            };
        }
        let reset = length.saturating_sub(now.duration_since(window.started));
        if window.used >= limit {
            self.rate_limited += 1;
            return Err((limit, reset));
        }
        window.used += 1;
        Ok((limit, limit - window.used, reset))
    }
}

#[derive(Clone)]
struct Shared {
    me: String,
    handle: String,
    oauth1: OAuth1Keys,
    client_id: String,
    inner: Arc<Mutex<Inner>>,
    /// Wall time at tokio's `started`: X's clock is this plus tokio's elapsed time, so
    /// `Date` and `x-rate-limit-reset` move with paused time.
    epoch: Duration,
    started: Instant,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Duration {
        self.epoch + self.started.elapsed()
    }
}

/// The fake server; it stops when dropped.
pub struct FakeX {
    shared: Shared,
    server: crate::Served,
}

impl std::fmt::Debug for FakeX {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeX")
            .field("url", &self.server.url)
            .finish()
    }
}

/// The support account's id and handle in the fake.
pub const ACCOUNT_ID: &str = "1500000000000000001";
pub const ACCOUNT_HANDLE: &str = "FrontWallet";
/// The OAuth 2.0 client id the fake knows.
pub const CLIENT_ID: &str = "frontdesk-test-client";

impl FakeX {
    /// Starts a fake for the support account [`ACCOUNT_ID`], signed for with `oauth1`
    /// (or OAuth 2.0 for [`CLIENT_ID`] with the refresh token [`FakeX::refresh_token`]).
    pub async fn start(oauth1: OAuth1Keys) -> FakeX {
        let mut users = HashMap::new();
        users.insert(
            ACCOUNT_ID.to_owned(),
            ("Front Wallet Support".to_owned(), ACCOUNT_HANDLE.to_owned()),
        );
        let shared = Shared {
            me: ACCOUNT_ID.into(),
            handle: ACCOUNT_HANDLE.into(),
            oauth1,
            client_id: CLIENT_ID.into(),
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1_800_000_000_000_000_000,
                users,
                posts: Vec::new(),
                dms: Vec::new(),
                no_dms: HashSet::new(),
                scripted: HashMap::new(),
                limits: HashMap::new(),
                windows: HashMap::new(),
                requests: Vec::new(),
                nonces: HashSet::new(),
                refresh_token: Some("rt-0".into()),
                access_tokens: HashSet::new(),
                issued: 0,
                rate_limited: 0,
            })),
            epoch: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            started: Instant::now(),
        };
        let app = Router::new()
            .route("/2/users/me", axum::routing::get(me))
            .route("/2/users/{id}/mentions", axum::routing::get(mentions))
            .route("/2/dm_events", axum::routing::get(dm_events))
            .route("/2/tweets", axum::routing::post(create_post))
            .route(
                "/2/dm_conversations/with/{id}/messages",
                axum::routing::post(send_dm),
            )
            .route("/2/oauth2/token", axum::routing::post(token))
            .route_layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                admission,
            ))
            .with_state(shared.clone());
        let server = crate::Served::start(app).await;
        FakeX { shared, server }
    }

    /// The base URL to give the client (`channels.x.api_url`).
    pub fn api_url(&self) -> &str {
        &self.server.url
    }

    /// The OAuth 1.0a keys the fake accepts.
    pub fn oauth1(&self) -> &OAuth1Keys {
        &self.shared.oauth1
    }

    /// The OAuth 2.0 refresh token that works now (each works once).
    pub fn refresh_token(&self) -> Option<String> {
        self.shared.lock().refresh_token.clone()
    }

    /// A customer with this id and handle (known to the fake from then on).
    pub fn customer(&self, id: &str, handle: &str) {
        self.shared.lock().users.insert(
            id.to_owned(),
            (format!("{handle} (customer)"), handle.to_owned()),
        );
    }

    /// Customer `author` posts `text` mentioning the account (`@FrontWallet text`),
    /// starting a conversation; the post's id.
    pub fn mention(&self, author: &str, text: &str) -> String {
        self.post_as(author, &format!("@{} {text}", self.shared.handle), None)
    }

    /// Customer `author` replies to post `to` with `text` (mentioning the account, as
    /// X's reply box does); the post's id.
    pub fn reply_mentioning(&self, author: &str, to: &str, text: &str) -> String {
        self.post_as(author, &format!("@{} {text}", self.shared.handle), Some(to))
    }

    /// Somebody posts `text` as they wrote it (no mention added); the post's id.
    pub fn post_as(&self, author: &str, text: &str, in_reply_to: Option<&str>) -> String {
        let mut inner = self.shared.lock();
        let id = inner.id();
        let parent = in_reply_to.and_then(|p| p.parse::<u64>().ok());
        let conversation = parent
            .and_then(|p| inner.posts.iter().find(|post| post.id == p))
            .map_or(id, |p| p.conversation);
        let mentions_account = text
            .to_lowercase()
            .contains(&format!("@{}", self.shared.handle.to_lowercase()));
        inner.posts.push(Post {
            id,
            text: text.to_owned(),
            author: author.to_owned(),
            conversation,
            in_reply_to: parent,
            mentions_account,
        });
        id.to_string()
    }

    /// Customer `sender` sends the account a direct message; the event's id.
    pub fn dm(&self, sender: &str, text: &str) -> String {
        let mut inner = self.shared.lock();
        let id = inner.id();
        let conversation = one_to_one(&self.shared.me, sender);
        inner.dms.push(DmEvent {
            id,
            text: text.to_owned(),
            sender: sender.to_owned(),
            conversation,
        });
        id.to_string()
    }

    /// `user` takes no direct messages from the account.
    pub fn refuses_dms(&self, user: &str) {
        self.shared.lock().no_dms.insert(user.to_owned());
    }

    /// Posts the support account made, oldest first.
    pub fn posted(&self) -> Vec<Posted> {
        let inner = self.shared.lock();
        inner
            .posts
            .iter()
            .filter(|p| p.author == self.shared.me)
            .map(|p| Posted {
                id: p.id.to_string(),
                text: p.text.clone(),
                in_reply_to: p.in_reply_to.map(|id| id.to_string()),
            })
            .collect()
    }

    /// Direct messages the support account sent, oldest first.
    pub fn dms_sent(&self) -> Vec<SentDm> {
        let inner = self.shared.lock();
        inner
            .dms
            .iter()
            .filter(|d| d.sender == self.shared.me)
            .map(|d| SentDm {
                event_id: d.id.to_string(),
                to: d
                    .conversation
                    .split('-')
                    .find(|p| *p != self.shared.me)
                    .unwrap_or_default()
                    .to_owned(),
                text: d.text.clone(),
            })
            .collect()
    }

    /// The next calls of `endpoint` get these answers, in order.
    pub fn script(&self, endpoint: Endpoint, answers: impl IntoIterator<Item = Scripted>) {
        self.shared
            .lock()
            .scripted
            .entry(endpoint)
            .or_default()
            .extend(answers);
    }

    /// `endpoint` takes `limit` requests a `window` from now on.
    pub fn limit(&self, endpoint: Endpoint, limit: u32, window: Duration) {
        let mut inner = self.shared.lock();
        inner.limits.insert(endpoint, (limit, window));
        inner.windows.remove(&endpoint);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Requests answered 429 because a window was used up (scripted ones aside).
    pub fn rate_limited(&self) -> usize {
        self.shared.lock().rate_limited
    }
}

/// X's id of a one-to-one DM conversation: the two user ids, smaller first.
fn one_to_one(a: &str, b: &str) -> String {
    let (x, y) = if (a.len(), a) <= (b.len(), b) {
        (a, b)
    } else {
        (b, a)
    };
    format!("{x}-{y}")
}

/// An X problem (RFC 7807-style) answer.
fn problem(status: StatusCode, title: &str, detail: &str, kind: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "title": title,
            "detail": detail,
            "type": kind,
            "status": status.as_u16(),
        })),
    )
        .into_response()
}

fn unauthorized() -> Response {
    problem(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "Unauthorized",
        "about:blank",
    )
}

fn forbidden(detail: &str) -> Response {
    problem(StatusCode::FORBIDDEN, "Forbidden", detail, "about:blank")
}

fn invalid(parameter: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "errors": [{"parameters": {parameter: []}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request",
        })),
    )
        .into_response()
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (RFC 5849
/// 3.6).
fn encode(s: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The parameters of an `Authorization: OAuth ...` header.
fn oauth_params(header: &str) -> Option<BTreeMap<String, String>> {
    let rest = header.strip_prefix("OAuth ")?;
    let mut params = BTreeMap::new();
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.strip_prefix('"')?.strip_suffix('"')?;
        params.insert(decode(k), decode(v));
    }
    Some(params)
}

impl Shared {
    /// Whether the request is signed for the support account.
    fn authorised(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
        let Some(header) = headers.get("authorization").and_then(|h| h.to_str().ok()) else {
            return false;
        };
        if let Some(token) = header.strip_prefix("Bearer ") {
            return self.lock().access_tokens.contains(token);
        }
        let Some(oauth) = oauth_params(header) else {
            return false;
        };
        let keys = &self.oauth1;
        let field = |k: &str| oauth.get(k).map(String::as_str).unwrap_or_default();
        if field("oauth_consumer_key") != keys.consumer_key
            || field("oauth_token") != keys.access_token
            || field("oauth_signature_method") != "HMAC-SHA1"
            || oauth.get("oauth_version").is_some_and(|v| v != "1.0")
        {
            return false;
        }
        // X refuses a timestamp far from its clock, and a nonce seen before.
        let Ok(timestamp) = field("oauth_timestamp").parse::<u64>() else {
            return false;
        };
        if timestamp.abs_diff(self.now().as_secs()) > 300 && timestamp.abs_diff(wall()) > 300 {
            return false;
        }
        let nonce = (
            field("oauth_nonce").to_owned(),
            field("oauth_timestamp").to_owned(),
        );
        if nonce.0.is_empty() || !self.lock().nonces.insert(nonce) {
            return false;
        }
        // RFC 5849 3.4.1: the method, the base URL and every parameter but the
        // signature, each encoded, sorted by name and value.
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let base_url = format!("http://{}{}", host.to_ascii_lowercase(), uri.path());
        let mut pairs: Vec<(String, String)> = oauth
            .iter()
            .filter(|(k, _)| *k != "oauth_signature")
            .map(|(k, v)| (encode(k), encode(v)))
            .collect();
        for (k, v) in uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
        {
            pairs.push((encode(&decode(k)), encode(&decode(v))));
        }
        pairs.sort();
        let normalised = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let base = format!(
            "{}&{}&{}",
            method.as_str().to_ascii_uppercase(),
            encode(&base_url),
            encode(&normalised)
        );
        let key = format!(
            "{}&{}",
            encode(&keys.consumer_secret),
            encode(&keys.access_token_secret)
        );
        let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key.as_bytes())
            .expect("HMAC takes any key");
        mac.update(base.as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        expected == field("oauth_signature")
    }

    /// Authentication, scripted answers and the rate limit of one request; `Ok` with the
    /// rate-limit headers to send, or the answer to give instead.
    async fn admit(
        &self,
        endpoint: Endpoint,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        query: &HashMap<String, String>,
    ) -> Result<HeaderMap, Response> {
        let scripted = self
            .lock()
            .scripted
            .get_mut(&endpoint)
            .and_then(VecDeque::pop_front);
        if let Some(Scripted::Slow(wait)) = scripted {
            tokio::time::sleep(wait).await;
        }
        let authorised = endpoint == Endpoint::Token || self.authorised(method, uri, headers);
        let counted = self.lock().count(endpoint);
        let (limit, remaining, reset) = match counted {
            Ok(counts) => counts,
            Err((limit, reset)) => (limit, 0, reset),
        };
        let mut rate = HeaderMap::new();
        let number = |n: u64| HeaderValue::from_str(&n.to_string()).expect("a number");
        let now = self.now();
        rate.insert("x-rate-limit-limit", number(u64::from(limit)));
        rate.insert("x-rate-limit-remaining", number(u64::from(remaining)));
        rate.insert("x-rate-limit-reset", number((now + reset).as_secs()));
        rate.insert("date", http_date(now));
        let answer = if !authorised {
            Some(unauthorized())
        } else {
            match scripted {
                Some(Scripted::Unauthorized) => Some(unauthorized()),
                Some(Scripted::ClientForbidden) => Some(client_forbidden()),
                Some(Scripted::TooManyRequests { reset_in }) => {
                    rate.insert("x-rate-limit-remaining", number(0));
                    rate.insert("x-rate-limit-reset", number(now.as_secs() + reset_in));
                    Some(too_many())
                }
                Some(Scripted::ServerError(status)) => Some(problem(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    "Service Unavailable",
                    "Service Unavailable",
                    "about:blank",
                )),
                Some(Scripted::Slow(_)) | None => counted.is_err().then(too_many),
            }
        };
        let status = answer.as_ref().map_or(200, |a| a.status().as_u16());
        self.lock().requests.push(Recorded {
            endpoint,
            at: Instant::now(),
            query: query.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            status,
        });
        match answer {
            Some(mut answer) => {
                answer.headers_mut().extend(rate);
                Err(answer)
            }
            None => Ok(rate),
        }
    }

    fn users(&self, inner: &Inner, ids: impl IntoIterator<Item = String>) -> Vec<Value> {
        let mut seen = HashSet::new();
        ids.into_iter()
            .filter(|id| seen.insert(id.clone()))
            .filter_map(|id| {
                inner
                    .users
                    .get(&id)
                    .map(|(name, username)| json!({"id": id, "name": name, "username": username}))
            })
            .collect()
    }
}

fn wall() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn http_date(since_epoch: Duration) -> HeaderValue {
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or_default();
    let ts = jiff::Timestamp::from_second(seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let text = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&ts)
        .unwrap_or_default();
    HeaderValue::from_str(&text).expect("an HTTP date")
}

fn too_many() -> Response {
    problem(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        "Too Many Requests",
        "about:blank",
    )
}

fn client_forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({
            "client_id": "28456378",
            "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project. You can create a project via the developer portal.",
            "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
            "title": "Client Forbidden",
            "required_enrollment": "Appropriate Level of API Access",
            "reason": "client-not-enrolled",
            "type": "https://api.twitter.com/2/problems/client-forbidden",
        })),
    )
        .into_response()
}

/// What a handler's helper refuses with: the answer to give (boxed, it is large).
type Refused = Box<Response>;

fn json_body(body: &[u8]) -> Result<Value, Refused> {
    serde_json::from_slice(body)
        .map_err(|_| Box::new(invalid("body", "The request body is not valid JSON")))
}

type Q = Query<HashMap<String, String>>;

/// Authentication, scripted answers and rate limits for every endpoint; the rate-limit
/// headers go on whatever the endpoint answers.
async fn admission(
    State(s): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let endpoint = if path == "/2/users/me" {
        Endpoint::Me
    } else if path.ends_with("/mentions") {
        Endpoint::Mentions
    } else if path == "/2/dm_events" {
        Endpoint::DmEvents
    } else if path == "/2/tweets" {
        Endpoint::CreatePost
    } else if path.starts_with("/2/dm_conversations/") {
        Endpoint::SendDm
    } else {
        Endpoint::Token
    };
    let query: HashMap<String, String> =
        url_form(request.uri().query().unwrap_or_default().as_bytes());
    let admitted = s
        .admit(
            endpoint,
            request.method(),
            request.uri(),
            request.headers(),
            &query,
        )
        .await;
    match admitted {
        Ok(rate) => {
            let mut answer = next.run(request).await;
            answer.headers_mut().extend(rate);
            answer
        }
        Err(answer) => answer,
    }
}

async fn me(State(s): State<Shared>) -> Response {
    let body = json!({"data": {"id": s.me, "name": "Front Wallet Support", "username": s.handle}});
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `max_results` within `range`, `default` when absent.
fn max_results(
    q: &HashMap<String, String>,
    range: std::ops::RangeInclusive<usize>,
    default: usize,
) -> Result<usize, Refused> {
    match q.get("max_results") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(Box::new(invalid(
                "max_results",
                &format!(
                    "The `max_results` query parameter value [{v}] is not between {} and {}",
                    range.start(),
                    range.end()
                ),
            ))),
        },
    }
}

/// One page of `ids` (newest first) from the pagination token on.
fn page_of(
    ids: &[u64],
    q: &HashMap<String, String>,
    max: usize,
) -> Result<(Vec<u64>, Option<String>), Refused> {
    let start = match q.get("pagination_token") {
        None => 0,
        Some(t) => match t
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n <= ids.len() => n,
            _ => {
                return Err(Box::new(invalid(
                    "pagination_token",
                    "The `pagination_token` query parameter value is not valid",
                )));
            }
        },
    };
    let end = (start + max).min(ids.len());
    let next = (end < ids.len()).then(|| format!("page-{end}"));
    Ok((ids[start..end].to_vec(), next))
}

fn meta(ids: &[u64], next: Option<String>) -> Value {
    let mut meta = json!({"result_count": ids.len()});
    if let (Some(newest), Some(oldest)) = (ids.first(), ids.last()) {
        meta["newest_id"] = json!(newest.to_string());
        meta["oldest_id"] = json!(oldest.to_string());
    }
    if let Some(next) = next {
        meta["next_token"] = json!(next);
    }
    meta
}

fn post_json(p: &Post) -> Value {
    let mut post = json!({
        "id": p.id.to_string(),
        "text": p.text,
        "author_id": p.author,
        "conversation_id": p.conversation.to_string(),
        "edit_history_tweet_ids": [p.id.to_string()],
        "lang": if p.text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) { "zh" } else { "en" },
        "created_at": "2026-12-01T10:30:00.000Z",
    });
    if let Some(parent) = p.in_reply_to {
        post["referenced_tweets"] = json!([{"type": "replied_to", "id": parent.to_string()}]);
    }
    post
}

async fn mentions(State(s): State<Shared>, Path(id): Path<String>, Query(q): Q) -> Response {
    if id != s.me {
        return forbidden("Sorry, you are not authorized to see the mentions of this user.");
    }
    let max = match max_results(&q, 5..=100, 10) {
        Ok(max) => max,
        Err(answer) => return *answer,
    };
    let since: u64 = q.get("since_id").and_then(|v| v.parse().ok()).unwrap_or(0);
    let inner = s.lock();
    // X keeps the 800 newest mentions on this timeline.
    let mut ids: Vec<u64> = inner
        .posts
        .iter()
        .filter(|p| p.mentions_account && p.author != s.me)
        .map(|p| p.id)
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids.truncate(800);
    ids.retain(|id| *id > since);
    let (page, next) = match page_of(&ids, &q, max) {
        Ok(page) => page,
        Err(answer) => return *answer,
    };
    let posts: Vec<&Post> = page
        .iter()
        .filter_map(|id| inner.posts.iter().find(|p| p.id == *id))
        .collect();
    let mut body = json!({"meta": meta(&page, next)});
    if !posts.is_empty() {
        body["data"] = posts.iter().map(|p| post_json(p)).collect();
        let referenced: Vec<&Post> = posts
            .iter()
            .filter_map(|p| p.in_reply_to)
            .filter_map(|r| inner.posts.iter().find(|p| p.id == r))
            .collect();
        let authors = posts.iter().chain(&referenced).map(|p| p.author.clone());
        body["includes"] = json!({
            "users": s.users(&inner, authors),
            "tweets": referenced.iter().map(|p| post_json(p)).collect::<Vec<_>>(),
        });
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn dm_events(State(s): State<Shared>, Query(q): Q) -> Response {
    let max = match max_results(&q, 1..=100, 100) {
        Ok(max) => max,
        Err(answer) => return *answer,
    };
    if q.get("event_types").is_some_and(|t| {
        t.split(',')
            .any(|t| !["MessageCreate", "ParticipantsJoin", "ParticipantsLeave"].contains(&t))
    }) {
        return invalid(
            "event_types",
            "The `event_types` query parameter value is not valid",
        );
    }
    let inner = s.lock();
    let mut ids: Vec<u64> = inner.dms.iter().map(|d| d.id).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let (page, next) = match page_of(&ids, &q, max) {
        Ok(page) => page,
        Err(answer) => return *answer,
    };
    let events: Vec<&DmEvent> = page
        .iter()
        .filter_map(|id| inner.dms.iter().find(|d| d.id == *id))
        .collect();
    let mut body = json!({"meta": meta(&page, next)});
    if !events.is_empty() {
        body["data"] = events
            .iter()
            .map(|d| {
                json!({
                    "id": d.id.to_string(),
                    "event_type": "MessageCreate",
                    "text": d.text,
                    "sender_id": d.sender,
                    "dm_conversation_id": d.conversation,
                    "created_at": "2026-12-01T10:30:00.000Z",
                })
            })
            .collect();
        body["includes"] =
            json!({"users": s.users(&inner, events.iter().map(|d| d.sender.clone()))});
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// X's weighted length, counted here on its own (twitter-text v3: code points up to
/// U+10FF and some punctuation weigh 1, the rest 2; a URL 23, wherever it starts after a
/// character that is not a letter, digit, `@`, `$` or `#`, and running to the next space
/// or non-ASCII character).
pub fn weighted_length(text: &str) -> usize {
    let mut total = 0;
    let mut prev: Option<char> = None;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let url = (rest.starts_with("https://") || rest.starts_with("http://"))
            && prev.is_none_or(|p| !(p.is_ascii_alphanumeric() || "@$#＠＃".contains(p)));
        let len = if url {
            total += 23;
            rest.find(|c: char| c.is_whitespace() || !c.is_ascii())
                .unwrap_or(rest.len())
        } else {
            total += match u32::from(c) {
                0..=0x10FF | 0x2000..=0x200D | 0x2010..=0x201F | 0x2032..=0x2037 => 1,
                _ => 2,
            };
            c.len_utf8()
        };
        prev = rest[..len].chars().next_back();
        rest = &rest[len..];
    }
    total
}

/// Cashtags in `text`: `$` then 1-6 letters, at the start or after a space.
fn cashtags(text: &str) -> usize {
    let mut count = 0;
    let mut prev = ' ';
    for (at, c) in text.char_indices() {
        if c == '$' && prev.is_whitespace() {
            let letters = text[at + 1..]
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .count();
            if (1..=6).contains(&letters) {
                count += 1;
            }
        }
        prev = c;
    }
    count
}

async fn create_post(State(s): State<Shared>, body: Bytes) -> Response {
    let request = match json_body(&body) {
        Ok(request) => request,
        Err(answer) => return *answer,
    };
    let Some(text) = request["text"].as_str() else {
        return invalid("text", "A post needs text");
    };
    if text.is_empty() || weighted_length(text) > 280 {
        return forbidden(
            "Your Tweet text is too long. For more information on how Twitter determines text length, see https://github.com/twitter/twitter-text.",
        );
    }
    if cashtags(text) > 1 {
        return forbidden("Tweets can contain at most one cashtag.");
    }
    let parent = match &request["reply"]["in_reply_to_tweet_id"] {
        Value::Null => None,
        Value::String(id) => match id.parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => return invalid("reply.in_reply_to_tweet_id", "not a post id"),
        },
        _ => return invalid("reply.in_reply_to_tweet_id", "not a post id"),
    };
    let mut inner = s.lock();
    if inner
        .posts
        .iter()
        .any(|p| p.author == s.me && p.text == text)
    {
        return forbidden("You are not allowed to create a Tweet with duplicate content.");
    }
    let conversation = match parent {
        None => None,
        Some(parent) => match inner.posts.iter().find(|p| p.id == parent) {
            None => {
                return invalid(
                    "reply.in_reply_to_tweet_id",
                    "The post you are replying to does not exist",
                );
            }
            // Summoned: the post mentioned the account, or it is the account's own.
            Some(p) if p.mentions_account || p.author == s.me => Some(p.conversation),
            Some(_) => {
                return forbidden(
                    "Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged by the author of the post you are replying to.",
                );
            }
        },
    };
    let id = inner.id();
    inner.posts.push(Post {
        id,
        text: text.to_owned(),
        author: s.me.clone(),
        conversation: conversation.unwrap_or(id),
        in_reply_to: parent,
        mentions_account: false,
    });
    let body = json!({"data": {"id": id.to_string(), "text": text, "edit_history_tweet_ids": [id.to_string()]}});
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn send_dm(State(s): State<Shared>, Path(to): Path<String>, body: Bytes) -> Response {
    let request = match json_body(&body) {
        Ok(request) => request,
        Err(answer) => return *answer,
    };
    let text = request["text"].as_str().unwrap_or_default();
    if text.is_empty() || text.chars().count() > 10_000 {
        return invalid("text", "A direct message has 1 to 10000 characters");
    }
    let mut inner = s.lock();
    if !inner.users.contains_key(&to) {
        return invalid("participant_id", "Could not find the user");
    }
    if inner.no_dms.contains(&to) {
        return forbidden("You cannot send messages to this user.");
    }
    let id = inner.id();
    let conversation = one_to_one(&s.me, &to);
    inner.dms.push(DmEvent {
        id,
        text: text.to_owned(),
        sender: s.me.clone(),
        conversation: conversation.clone(),
    });
    let body = json!({"data": {"dm_conversation_id": conversation, "dm_event_id": id.to_string()}});
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// OAuth 2.0 refresh (RFC 6749 6): the refresh token works once; the answer has a new
/// one.
async fn token(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form: HashMap<String, String> = url_form(&body);
    let client = form.get("client_id").cloned().or_else(|| {
        let basic = headers
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let pair = String::from_utf8(decoded).ok()?;
        Some(pair.split_once(':')?.0.to_owned())
    });
    let refused = |description: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_request", "error_description": description})),
        )
            .into_response()
    };
    if client.as_deref() != Some(s.client_id.as_str()) {
        return refused("Missing valid authorization header");
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return refused("Missing required parameter [grant_type].");
    }
    let mut inner = s.lock();
    if !form.contains_key("refresh_token")
        || form.get("refresh_token") != inner.refresh_token.as_ref()
    {
        return refused("Value passed for the token was invalid.");
    }
    inner.issued += 1;
    let access = format!("at-{}", inner.issued);
    let refresh = format!("rt-{}", inner.issued);
    inner.access_tokens.insert(access.clone());
    inner.refresh_token = Some(refresh.clone());
    let body = json!({
        "token_type": "bearer",
        "expires_in": 7200,
        "access_token": access,
        "scope": "tweet.read tweet.write users.read dm.read dm.write offline.access",
        "refresh_token": refresh,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(&k.replace('+', " ")), decode(&v.replace('+', " ")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_base_string_follows_rfc_5849() {
        // RFC 5849 3.4.1.3.2's example parameters, normalised.
        let mut pairs = [
            (encode("b5"), encode("=%3D")),
            (encode("a3"), encode("a")),
            (encode("c@"), encode("")),
            (encode("a2"), encode("r b")),
        ];
        pairs.sort();
        let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(joined.join("&"), "a2=r%20b&a3=a&b5=%3D%253D&c%40=");
    }

    #[test]
    fn weighted_length_counts_cjk_twice_and_urls_as_23() {
        assert_eq!(weighted_length("hello"), 5);
        assert_eq!(weighted_length("你好"), 4);
        assert_eq!(
            weighted_length("see https://example.com/a/very/long/path"),
            4 + 23
        );
    }

    #[test]
    fn cashtags_are_counted_after_a_space() {
        assert_eq!(cashtags("$BTC and $ETH"), 2);
        assert_eq!(cashtags("US$5 and $5"), 0);
    }
}
