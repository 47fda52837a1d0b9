//! A fake Telegram Bot API server on 127.0.0.1, following the Bot API documentation
//! closely enough that the real client (teloxide) cannot tell: `{"ok": ...}` answers
//! with `error_code`, `description` and `parameters.retry_after`; method names matched
//! whatever their case (teloxide sends `GetUpdates`); JSON, form or query parameters.
//!
//! - `getUpdates`: an update is confirmed, and forgotten, once a call's `offset` is
//!   higher than its `update_id`; a negative offset keeps only the last updates;
//!   `limit` 1-100; `timeout` waits for the first new update; a second poller ends the
//!   first with 409, and so does a set webhook.
//! - `sendMessage`: 1-4096 characters after entities (HTML tags and entities parsed,
//!   counted in UTF-16 code units as Telegram counts), else 400; HTML Telegram cannot
//!   parse (unknown or unclosed tags, a bare `&`) is refused with its description.
//! - `setWebhook`, `deleteWebhook`, `getWebhookInfo` (pending count, last error);
//!   `getFile` and the download path `/file/bot<token>/<path>`; `getMe`,
//!   `answerCallbackQuery`, `sendDocument`, `sendPhoto`.
//! - Rate limits as the Bot API FAQ states them, enforced on everything sent to a chat
//!   (`sendMessage`, `sendPhoto`, `sendDocument`): more than 30 messages in a second
//!   overall, a second message to one chat within 0.9 s, or more than 20 a minute to a
//!   group get 429 with `retry_after` ([`FakeTelegram::rate_limited`] counts them).
//! - Scripted answers for the next calls of a method ([`Scripted`]): 429 with
//!   retry_after, 403 blocked, 400, 409, 500, a slow answer.
//! - Every request recorded ([`FakeTelegram::requests`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// An answer to give instead of the normal one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// 429 with `parameters.retry_after`.
    TooManyRequests { retry_after: u32 },
    /// 403: the user blocked the bot.
    Blocked,
    /// 403: the user deleted their account.
    Deactivated,
    /// 400 with this description.
    BadRequest(String),
    /// 409 (another poller, or a webhook).
    Conflict,
    /// 500.
    ServerError,
    /// The normal answer, this late.
    Slow(Duration),
    /// The connection breaks before an answer (nothing was done).
    Dropped,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Lower case (`sendmessage`).
    pub method: String,
    pub params: Value,
}

/// A text the bot sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub chat_id: i64,
    pub text: String,
    pub message_id: i64,
    /// The customer message it replies to, if any.
    pub reply_to: Option<i64>,
    pub parse_mode: Option<String>,
    pub reply_markup: Option<Value>,
}

#[derive(Debug, Default)]
struct Inner {
    updates: VecDeque<Value>,
    next_update_id: i64,
    next_message_id: i64,
    scripted: HashMap<String, VecDeque<Scripted>>,
    requests: Vec<Recorded>,
    sent: Vec<Sent>,
    webhook: Option<(String, Option<String>)>,
    webhook_error: Option<(i64, String)>,
    files: HashMap<String, (String, Vec<u8>)>,
    /// Bumped by each getUpdates: an older long poll sees it and ends with 409.
    poll_generation: u64,
    /// When each message of the last minute was sent, and to which chat.
    recent: VecDeque<(tokio::time::Instant, i64)>,
    rate_limited: usize,
}

impl Inner {
    /// Telegram's limits for a new message to `chat`: the seconds to wait, if any.
    fn over_limit(&mut self, chat: i64) -> Option<u32> {
        let now = tokio::time::Instant::now();
        while self
            .recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= Duration::from_secs(60))
        {
            self.recent.pop_front();
        }
        let within = |limit: Duration| {
            move |(at, _): &&(tokio::time::Instant, i64)| now.duration_since(*at) < limit
        };
        let second = Duration::from_secs(1);
        let overall = self.recent.iter().filter(within(second)).count();
        let same_chat = self
            .recent
            .iter()
            .filter(|(_, c)| *c == chat)
            .filter(within(Duration::from_millis(900)))
            .count();
        let group_minute = self.recent.iter().filter(|(_, c)| *c == chat).count();
        let wait = if overall >= 30 || same_chat >= 1 {
            Some(1)
        } else if chat < 0 && group_minute >= 20 {
            let oldest = self
                .recent
                .iter()
                .find(|(_, c)| *c == chat)
                .map(|(at, _)| *at)?;
            let left = Duration::from_secs(60).saturating_sub(now.duration_since(oldest));
            Some(u32::try_from(left.as_secs()).unwrap_or(60).max(1))
        } else {
            None
        };
        match wait {
            Some(_) => self.rate_limited += 1,
            None => self.recent.push_back((now, chat)),
        }
        wait
    }
}

#[derive(Clone)]
struct Shared {
    token: String,
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<Notify>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The fake server; it stops when dropped.
pub struct FakeTelegram {
    shared: Shared,
    server: crate::Served,
}

impl std::fmt::Debug for FakeTelegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTelegram")
            .field("url", &self.server.url)
            .finish()
    }
}

impl FakeTelegram {
    /// Starts a fake for a bot with this token (requests with another get 401).
    pub async fn start(token: &str) -> FakeTelegram {
        let shared = Shared {
            token: token.to_owned(),
            inner: Arc::new(Mutex::new(Inner {
                next_update_id: 100_000,
                next_message_id: 1,
                ..Inner::default()
            })),
            arrived: Arc::new(Notify::new()),
        };
        let app = Router::new()
            .route("/{bot}/{method}", axum::routing::any(method))
            .route("/file/{bot}/{*path}", axum::routing::get(download))
            .with_state(shared.clone());
        let server = crate::Served::start(app).await;
        FakeTelegram { shared, server }
    }

    /// The base URL to give the client (`Bot::set_api_url`).
    pub fn api_url(&self) -> &str {
        &self.server.url
    }

    /// Queues an update (its `update_id` is given if it has none); returns the id.
    pub fn push_update(&self, mut update: Value) -> i64 {
        let id = {
            let mut inner = self.shared.lock();
            let id = match update["update_id"].as_i64() {
                Some(id) => id,
                None => {
                    let id = inner.next_update_id;
                    update["update_id"] = json!(id);
                    id
                }
            };
            inner.next_update_id = inner.next_update_id.max(id + 1);
            inner.updates.push_back(update);
            id
        };
        self.shared.arrived.notify_waiters();
        id
    }

    /// A private text message from a user (their chat id is their user id).
    pub fn customer_writes(&self, user_id: i64, text: &str) -> i64 {
        let message_id = {
            let mut inner = self.shared.lock();
            inner.next_message_id += 1;
            inner.next_message_id
        };
        self.push_update(json!({
            "message": {
                "message_id": message_id,
                "date": 1_790_000_000,
                "chat": { "id": user_id, "type": "private", "first_name": "Wang" },
                "from": { "id": user_id, "is_bot": false, "first_name": "Wang",
                          "language_code": "zh-hans" },
                "text": text,
            }
        }))
    }

    /// The next `times` calls of `method` (any case) get `answer`.
    pub fn script(&self, method: &str, answer: Scripted, times: usize) {
        let mut inner = self.shared.lock();
        let queue = inner.scripted.entry(method.to_lowercase()).or_default();
        queue.extend(std::iter::repeat_n(answer, times));
    }

    /// A file `getFile` can describe and the download path serves.
    pub fn add_file(&self, file_id: &str, path: &str, bytes: Vec<u8>) {
        self.shared
            .lock()
            .files
            .insert(file_id.to_owned(), (path.to_owned(), bytes));
    }

    /// What `getWebhookInfo` reports as the last error (as Telegram does after a
    /// failed delivery to the webhook).
    pub fn webhook_failed(&self, at_unix: i64, message: &str) {
        self.shared.lock().webhook_error = Some((at_unix, message.to_owned()));
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Every text the bot sent, oldest first.
    pub fn sent(&self) -> Vec<Sent> {
        self.shared.lock().sent.clone()
    }

    /// Messages refused with 429 because they came too fast (not the scripted ones).
    pub fn rate_limited(&self) -> usize {
        self.shared.lock().rate_limited
    }

    /// Updates not yet confirmed.
    pub fn pending(&self) -> usize {
        self.shared.lock().updates.len()
    }

    /// The webhook URL and secret token set, if any.
    pub fn webhook(&self) -> Option<(String, Option<String>)> {
        self.shared.lock().webhook.clone()
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({ "ok": true, "result": result })).into_response()
}

fn error(code: u16, description: &str, retry_after: Option<u32>) -> Response {
    let mut body = json!({ "ok": false, "error_code": code, "description": description });
    if let Some(after) = retry_after {
        body["parameters"] = json!({ "retry_after": after });
    }
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

fn too_many(retry_after: u32) -> Response {
    error(
        429,
        &format!("Too Many Requests: retry after {retry_after}"),
        Some(retry_after),
    )
}

/// Parameters from the query, a JSON body, a form body, or a multipart body (its
/// text fields; a file field is recorded by name and size, under the parameter that
/// names it with `attach://`).
async fn params(headers: &HeaderMap, query: HashMap<String, String>, body: Bytes) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in query {
        out.insert(k, Value::String(v));
    }
    let kind = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if kind.starts_with("application/json") {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) {
            out.extend(map);
        }
    } else if kind.starts_with("application/x-www-form-urlencoded") {
        for (k, v) in form_urlencoded(&body) {
            out.insert(k, Value::String(v));
        }
    } else if kind.starts_with("multipart/form-data")
        && let Some(boundary) = kind.split("boundary=").nth(1)
    {
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
        let mut parts = multer::Multipart::new(stream, boundary.trim_matches('"'));
        while let Ok(Some(field)) = parts.next_field().await {
            let name = field.name().unwrap_or_default().to_owned();
            let file = field.file_name().map(str::to_owned);
            let bytes = field.bytes().await.unwrap_or_default();
            let value = match file {
                Some(file) => json!({ "file_name": file, "size": bytes.len() }),
                None => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            };
            out.insert(name, value);
        }
        // A file sent as `attach://NAME` is the part called NAME (teloxide sends files so).
        let attached: Vec<(String, String)> = out
            .iter()
            .filter_map(|(k, v)| {
                Some((k.clone(), v.as_str()?.strip_prefix("attach://")?.to_owned()))
            })
            .collect();
        for (field, part) in attached {
            if let Some(file) = out.remove(&part) {
                out.insert(field, file);
            }
        }
    }
    Value::Object(out)
}

fn form_urlencoded(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if bytes[i] == b'%'
                && let Some(b) = hex
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// An integer parameter, sent as a number or a string.
fn int(params: &Value, key: &str) -> Option<i64> {
    match &params[key] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The length Telegram checks: the text after HTML is parsed, in UTF-16 code units.
/// In HTML mode, what Telegram cannot parse is refused as it refuses it: an unknown or
/// unclosed tag, or an `&` that starts no known entity.
fn visible_len(text: &str, parse_mode: Option<&str>) -> Result<usize, String> {
    const TAGS: [&str; 15] = [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "tg-spoiler",
        "span",
        "blockquote",
    ];
    let html = parse_mode.is_some_and(|m| m.eq_ignore_ascii_case("html"));
    if !html {
        return Ok(text.trim().encode_utf16().count());
    }
    let mut shown = String::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(ch) = rest.chars().next() {
        let at = text.len() - rest.len();
        match ch {
            '<' => {
                let Some(end) = rest.find('>') else {
                    return Err(format!(
                        "can't parse entities: unclosed start tag at byte offset {at}"
                    ));
                };
                let inner = &rest[1..end];
                let (closing, name) = match inner.strip_prefix('/') {
                    Some(name) => (true, name),
                    None => (false, inner),
                };
                let name = name
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_lowercase();
                if !TAGS.contains(&name.as_str()) {
                    return Err(format!(
                        "can't parse entities: Unsupported start tag \"{name}\" at byte offset {at}"
                    ));
                }
                if closing {
                    if open.pop().as_deref() != Some(name.as_str()) {
                        return Err(format!(
                            "can't parse entities: Unmatched end tag at byte offset {at}, expected \"</{name}>\""
                        ));
                    }
                } else {
                    open.push(name);
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let entity = ["&lt;", "&gt;", "&amp;", "&quot;"]
                    .into_iter()
                    .find(|e| rest.starts_with(e));
                let Some(entity) = entity else {
                    return Err(format!(
                        "can't parse entities: Character '&' is reserved and must be escaped at byte offset {at}"
                    ));
                };
                shown.push(match entity {
                    "&lt;" => '<',
                    "&gt;" => '>',
                    "&amp;" => '&',
                    _ => '"',
                });
                rest = &rest[entity.len()..];
            }
            _ => {
                shown.push(ch);
                rest = &rest[ch.len_utf8()..];
            }
        }
    }
    if let Some(tag) = open.pop() {
        return Err(format!(
            "can't parse entities: Can't find end tag corresponding to start tag \"{tag}\""
        ));
    }
    Ok(shown.trim().encode_utf16().count())
}

async fn download(
    State(shared): State<Shared>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    if bot != format!("bot{}", shared.token) {
        return error(401, "Unauthorized", None);
    }
    let inner = shared.lock();
    match inner.files.values().find(|(p, _)| *p == path) {
        Some((_, bytes)) => bytes.clone().into_response(),
        None => error(404, "Not Found", None),
    }
}

async fn method(
    State(shared): State<Shared>,
    Path((bot, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if bot != format!("bot{}", shared.token) {
        return error(401, "Unauthorized", None);
    }
    let name = name.to_lowercase();
    let params = params(&headers, query, body).await;
    let scripted = {
        let mut inner = shared.lock();
        inner.requests.push(Recorded {
            method: name.clone(),
            params: params.clone(),
        });
        inner.scripted.get_mut(&name).and_then(VecDeque::pop_front)
    };
    match scripted {
        Some(Scripted::TooManyRequests { retry_after }) => return too_many(retry_after),
        Some(Scripted::Blocked) => {
            return error(403, "Forbidden: bot was blocked by the user", None);
        }
        Some(Scripted::Deactivated) => return error(403, "Forbidden: user is deactivated", None),
        Some(Scripted::BadRequest(why)) => return error(400, &format!("Bad Request: {why}"), None),
        Some(Scripted::Conflict) => {
            return error(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                None,
            );
        }
        Some(Scripted::ServerError) => return error(500, "Internal Server Error", None),
        Some(Scripted::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Scripted::Dropped) => return dropped(),
        None => {}
    }
    match name.as_str() {
        "getme" => ok(json!({
            "id": 7_000_000_001i64, "is_bot": true, "first_name": "Frontdesk",
            "username": "frontdesk_test_bot", "can_join_groups": true,
            "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false,
        })),
        "getupdates" => get_updates(&shared, &params).await,
        "sendmessage" => send_message(&shared, &params),
        "senddocument" | "sendphoto" => {
            let Some(chat_id) = int(&params, "chat_id") else {
                return error(400, "Bad Request: chat not found", None);
            };
            let message_id = {
                let mut inner = shared.lock();
                if let Some(wait) = inner.over_limit(chat_id) {
                    return too_many(wait);
                }
                inner.next_message_id += 1;
                inner.next_message_id
            };
            ok(json!({
                "message_id": message_id, "date": 1_790_000_000,
                "chat": { "id": chat_id, "type": "private" },
                "caption": params["caption"],
            }))
        }
        "answercallbackquery" => ok(json!(true)),
        "setwebhook" => {
            let Some(url) = params["url"].as_str().filter(|u| !u.is_empty()) else {
                shared.lock().webhook = None;
                return ok(json!(true));
            };
            if !url.starts_with("https://") && !url.starts_with("http://127.0.0.1") {
                return error(
                    400,
                    "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
                    None,
                );
            }
            let secret = params["secret_token"].as_str().map(str::to_owned);
            shared.lock().webhook = Some((url.to_owned(), secret));
            ok(json!(true))
        }
        "deletewebhook" => {
            let mut inner = shared.lock();
            inner.webhook = None;
            if params["drop_pending_updates"] == json!(true) {
                inner.updates.clear();
            }
            ok(json!(true))
        }
        "getwebhookinfo" => {
            let inner = shared.lock();
            let mut info = json!({
                "url": inner.webhook.as_ref().map(|w| w.0.clone()).unwrap_or_default(),
                "has_custom_certificate": false,
                "pending_update_count": inner.updates.len(),
            });
            if let Some((at, message)) = &inner.webhook_error {
                info["last_error_date"] = json!(at);
                info["last_error_message"] = json!(message);
            }
            ok(info)
        }
        "getfile" => {
            let id = params["file_id"].as_str().unwrap_or_default();
            match shared.lock().files.get(id) {
                Some((path, bytes)) => ok(json!({
                    "file_id": id, "file_unique_id": format!("u{id}"),
                    "file_size": bytes.len(), "file_path": path,
                })),
                None => error(400, "Bad Request: invalid file_id", None),
            }
        }
        _ => error(404, "Not Found", None),
    }
}

async fn get_updates(shared: &Shared, params: &Value) -> Response {
    let offset = int(params, "offset").unwrap_or(0);
    let limit = int(params, "limit").unwrap_or(100).clamp(1, 100) as usize;
    let timeout = Duration::from_secs(int(params, "timeout").unwrap_or(0).clamp(0, 50) as u64);
    let generation = {
        let mut inner = shared.lock();
        if inner.webhook.is_some() {
            return error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                None,
            );
        }
        // Confirm what the offset says is done.
        if offset > 0 {
            inner
                .updates
                .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
        } else if offset < 0 {
            let keep = offset.unsigned_abs() as usize;
            while inner.updates.len() > keep {
                inner.updates.pop_front();
            }
        }
        inner.poll_generation += 1;
        inner.poll_generation
    };
    // An older long poll ends now, with 409.
    shared.arrived.notify_waiters();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = shared.arrived.notified();
        {
            let inner = shared.lock();
            if inner.poll_generation != generation {
                return error(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                    None,
                );
            }
            if !inner.updates.is_empty() || tokio::time::Instant::now() >= deadline {
                let batch: Vec<Value> = inner.updates.iter().take(limit).cloned().collect();
                return ok(Value::Array(batch));
            }
        }
        // A new update, another poller, or the end of the timeout.
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

fn send_message(shared: &Shared, params: &Value) -> Response {
    let Some(chat_id) = int(params, "chat_id") else {
        return error(400, "Bad Request: chat not found", None);
    };
    let text = params["text"].as_str().unwrap_or_default();
    let parse_mode = params["parse_mode"].as_str();
    match visible_len(text, parse_mode) {
        Err(why) => return error(400, &format!("Bad Request: {why}"), None),
        Ok(0) => return error(400, "Bad Request: message text is empty", None),
        Ok(n) if n > 4096 => return error(400, "Bad Request: message is too long", None),
        Ok(_) => {}
    }
    let reply_to = params["reply_parameters"]["message_id"]
        .as_i64()
        .or_else(|| int(params, "reply_to_message_id"));
    let mut inner = shared.lock();
    if let Some(wait) = inner.over_limit(chat_id) {
        return too_many(wait);
    }
    inner.next_message_id += 1;
    let message_id = inner.next_message_id;
    inner.sent.push(Sent {
        chat_id,
        text: text.to_owned(),
        message_id,
        reply_to,
        parse_mode: parse_mode.map(str::to_owned),
        reply_markup: params.get("reply_markup").cloned(),
    });
    ok(json!({
        "message_id": message_id,
        "date": 1_790_000_000,
        "chat": { "id": chat_id, "type": "private" },
        "text": text,
    }))
}

/// An answer that breaks off: the status line goes out, then the body fails and the
/// server closes the connection, which the client sees as a network error.
fn dropped() -> Response {
    let broken = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::other("connection dropped"))
    });
    Response::new(axum::body::Body::from_stream(broken))
}
