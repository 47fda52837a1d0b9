//! A thin client for the parts of X API v2 Frontdesk uses.
//!
//! Every request is signed for the support account: OAuth 1.0a user context (HMAC-SHA1
//! over the method, the URL and the query; a JSON body is not part of the signature,
//! RFC 5849 3.4.1.3), or an OAuth 2.0 user token refreshed with its refresh token.
//! X rotates refresh tokens (the old one stops working once used), so the new one is
//! handed to a [`TokenKeeper`] before it is used.
//!
//! Every answer carries X's rate-limit headers; [`RateLimit::reset_in`] reads the reset
//! against the `Date` of the same answer, so our clock's drift does not matter.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::fmt;
use std::time::Duration;
use tokio::sync::Mutex;

/// How requests are signed.
#[derive(Clone)]
pub enum Auth {
    /// OAuth 1.0a with the app's keys and the support account's access token.
    OAuth1 {
        consumer_key: SecretString,
        consumer_secret: SecretString,
        access_token: SecretString,
        access_token_secret: SecretString,
    },
    /// OAuth 2.0 user context: a refresh token (scope `offline.access`) for the app
    /// `client_id`; `client_secret` for confidential clients.
    OAuth2 {
        client_id: String,
        client_secret: Option<SecretString>,
        refresh_token: SecretString,
    },
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::OAuth1 { .. } => f.write_str("OAuth1"),
            Auth::OAuth2 { client_id, .. } => write!(f, "OAuth2({client_id})"),
        }
    }
}

/// Where a rotated OAuth 2.0 refresh token is kept, so a restart does not start from
/// the one in the configuration, which X no longer accepts.
#[async_trait::async_trait]
pub trait TokenKeeper: Send + Sync + fmt::Debug {
    async fn load(&self) -> Result<Option<String>, String>;
    async fn save(&self, refresh_token: &str) -> Result<(), String>;
}

/// The rate-limit window of one endpoint, as the last answer told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests left in the window (`x-rate-limit-remaining`).
    pub remaining: u32,
    /// Until the window starts again (`x-rate-limit-reset` minus the answer's `Date`).
    pub reset_in: Duration,
}

impl RateLimit {
    /// Reads the headers of an answer, if it has them.
    pub fn of(headers: &reqwest::header::HeaderMap) -> Option<RateLimit> {
        let number =
            |name: &str| -> Option<i64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let remaining = u32::try_from(number("x-rate-limit-remaining")?).ok()?;
        let reset = number("x-rate-limit-reset")?;
        let now = headers
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| jiff::fmt::rfc2822::parse(d).ok())
            .map_or_else(
                || jiff::Timestamp::now().as_second(),
                |z| z.timestamp().as_second(),
            );
        let reset_in = Duration::from_secs(u64::try_from(reset - now).unwrap_or(0));
        Some(RateLimit {
            remaining,
            reset_in,
        })
    }

    /// How long to wait before the next request to this endpoint: the rest of the
    /// window once it is used up, else the window spread over the requests left, and
    /// never less than `floor`.
    pub fn pace(limit: Option<RateLimit>, floor: Duration) -> Duration {
        match limit {
            Some(l) if l.remaining == 0 => (l.reset_in + Duration::from_secs(1)).max(floor),
            Some(l) => (l.reset_in / l.remaining).max(floor),
            None => floor,
        }
    }
}

/// What went wrong with a request, in X's words where it gave some.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 429: wait until the window resets.
    #[error("rate limited by X{}", .reset_in.map(|d| format!(" for {} s", d.as_secs())).unwrap_or_default())]
    RateLimited { reset_in: Option<Duration> },
    /// 401: the credentials are wrong, revoked or expired.
    #[error("X refused the credentials (401 Unauthorized): {0}")]
    Unauthorized(String),
    /// 403: what X does not allow; `kind` is the problem type's last part
    /// (`client-forbidden`, `about:blank`), `reason` X's reason where given.
    #[error("X refused (403 Forbidden): {detail}")]
    Forbidden {
        detail: String,
        kind: String,
        reason: Option<String>,
    },
    /// 400 or 404: a request X will never take.
    #[error("X refused the request ({status}): {detail}")]
    Refused { status: u16, detail: String },
    /// 5xx: X's trouble; try again.
    #[error("X answered {0}")]
    Server(u16),
    /// No answer: connection refused, reset, timed out.
    #[error("cannot reach X: {0}")]
    Network(String),
    /// An answer that is not X's JSON.
    #[error("X answered with something that is not its JSON ({0})")]
    Unreadable(String),
}

impl ApiError {
    /// The credentials or the app's access are at fault: the channel cannot work until
    /// somebody fixes its configuration.
    pub fn is_credentials(&self) -> bool {
        match self {
            ApiError::Unauthorized(_) => true,
            ApiError::Forbidden { kind, reason, .. } => {
                kind == "client-forbidden"
                    || kind == "unsupported-authentication"
                    || reason.as_deref() == Some("client-not-enrolled")
            }
            _ => false,
        }
    }
}

/// One answer: its JSON and the endpoint's rate limit.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Value,
    pub limit: Option<RateLimit>,
}

/// The OAuth 2.0 access token in use and when it stops working.
#[derive(Default)]
struct Session {
    access: Option<(SecretString, tokio::time::Instant)>,
    refresh: Option<SecretString>,
}

/// The client. Cheap to share; holds the OAuth 2.0 session, if any.
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    keeper: Option<std::sync::Arc<dyn TokenKeeper>>,
    session: Mutex<Session>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// The longest answer read (a page of 100 posts with their users is far below this).
const MAX_ANSWER: usize = 8 * 1024 * 1024;

impl Client {
    pub fn new(
        api_url: &str,
        auth: Auth,
        keeper: Option<std::sync::Arc<dyn TokenKeeper>>,
    ) -> Result<Client, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        reqwest::Url::parse(api_url).map_err(|_| format!("{api_url:?} is not a URL"))?;
        Ok(Client {
            http,
            base: api_url.trim_end_matches('/').to_owned(),
            auth,
            keeper,
            session: Mutex::default(),
        })
    }

    /// GET `path` with `query`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Answer, ApiError> {
        self.send("GET", path, query, None).await
    }

    /// POST `body` as JSON to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Answer, ApiError> {
        self.send("POST", path, &[], Some(body)).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, ApiError> {
        let mut refreshed = false;
        loop {
            let answer = self.send_once(method, path, query, body).await;
            match answer {
                // An OAuth 2.0 token can be revoked or expire early: refresh once.
                Err(ApiError::Unauthorized(_))
                    if !refreshed && matches!(self.auth, Auth::OAuth2 { .. }) =>
                {
                    self.session.lock().await.access = None;
                    refreshed = true;
                }
                answer => return answer,
            }
        }
    }

    async fn send_once(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, ApiError> {
        let url = format!("{}{path}", self.base);
        let params = oauth1_request::ParameterList::new(
            query
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        );
        let full = oauth1_request::to_query(url.clone(), &params);
        let authorization = match &self.auth {
            Auth::OAuth1 {
                consumer_key,
                consumer_secret,
                access_token,
                access_token_secret,
            } => {
                let token = oauth1_request::Token::from_parts(
                    consumer_key.expose_secret(),
                    consumer_secret.expose_secret(),
                    access_token.expose_secret(),
                    access_token_secret.expose_secret(),
                );
                oauth1_request::authorize(method, &url, &params, &token, oauth1_request::HMAC_SHA1)
            }
            Auth::OAuth2 { .. } => format!("Bearer {}", self.access_token().await?.expose_secret()),
        };
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| ApiError::Network(format!("bad method {method}")))?;
        let mut request = self
            .http
            .request(method, &full)
            .header(reqwest::header::AUTHORIZATION, authorization);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(network)?;
        read(response).await
    }

    /// The OAuth 2.0 access token, refreshed when it is missing or about to expire.
    async fn access_token(&self) -> Result<SecretString, ApiError> {
        let Auth::OAuth2 {
            client_id,
            client_secret,
            refresh_token,
        } = &self.auth
        else {
            return Err(ApiError::Unauthorized("no OAuth 2.0 client".into()));
        };
        let mut session = self.session.lock().await;
        if let Some((token, until)) = &session.access
            && tokio::time::Instant::now() + Duration::from_secs(60) < *until
        {
            return Ok(token.clone());
        }
        let refresh = match session.refresh.clone() {
            Some(r) => r,
            None => match &self.keeper {
                Some(keeper) => match keeper.load().await {
                    Ok(Some(kept)) => SecretString::from(kept),
                    Ok(None) => refresh_token.clone(),
                    Err(e) => {
                        return Err(ApiError::Network(format!(
                            "cannot read the kept refresh token: {e}"
                        )));
                    }
                },
                None => refresh_token.clone(),
            },
        };
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh.expose_secret().to_owned()),
        ];
        let mut request = self.http.post(format!("{}/2/oauth2/token", self.base));
        match client_secret {
            Some(secret) => request = request.basic_auth(client_id, Some(secret.expose_secret())),
            None => form.push(("client_id", client_id.clone())),
        }
        let response = request.form(&form).send().await.map_err(network)?;
        let answer = read(response).await.map_err(|e| match e {
            // A refused refresh token is a credentials problem, whatever the status.
            ApiError::Refused { detail, .. } => ApiError::Unauthorized(format!(
                "the OAuth 2.0 refresh token was refused ({detail}); authorise the app again and set channels.x.refresh_token"
            )),
            e => e,
        })?;
        let body = answer.body;
        let access = body["access_token"]
            .as_str()
            .ok_or_else(|| ApiError::Unreadable("no access_token in the token answer".into()))?;
        let expires = body["expires_in"].as_u64().unwrap_or(7200);
        if let Some(next) = body["refresh_token"].as_str() {
            // Kept before it is used: the old one no longer works.
            if let Some(keeper) = &self.keeper
                && let Err(e) = keeper.save(next).await
            {
                tracing::error!(error = %e, "cannot keep X's new refresh token; a restart will need a new one");
            }
            session.refresh = Some(SecretString::from(next.to_owned()));
        }
        let token = SecretString::from(access.to_owned());
        session.access = Some((
            token.clone(),
            tokio::time::Instant::now() + Duration::from_secs(expires),
        ));
        Ok(token)
    }
}

fn network(e: reqwest::Error) -> ApiError {
    // reqwest's message names the URL, which has no secret in it (query only).
    ApiError::Network(e.without_url().to_string())
}

/// An answer as [`Answer`] or the [`ApiError`] its status and body say.
async fn read(response: reqwest::Response) -> Result<Answer, ApiError> {
    let status = response.status().as_u16();
    let limit = RateLimit::of(response.headers());
    let bytes = response.bytes().await.map_err(network)?;
    if bytes.len() > MAX_ANSWER {
        return Err(ApiError::Unreadable(format!(
            "an answer of {} bytes",
            bytes.len()
        )));
    }
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) if status >= 500 => return Err(ApiError::Server(status)),
            Err(e) => return Err(ApiError::Unreadable(frontdesk_core::json_error(&e))),
        }
    };
    match status {
        200..=299 => Ok(Answer { body, limit }),
        429 => Err(ApiError::RateLimited {
            reset_in: limit.map(|l| l.reset_in),
        }),
        401 => Err(ApiError::Unauthorized(detail_of(&body))),
        403 => Err(ApiError::Forbidden {
            detail: detail_of(&body),
            kind: body["type"]
                .as_str()
                .unwrap_or("about:blank")
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            reason: body["reason"].as_str().map(str::to_owned),
        }),
        500..=599 => Err(ApiError::Server(status)),
        _ => Err(ApiError::Refused {
            status,
            detail: detail_of(&body),
        }),
    }
}

/// X's explanation: `detail`, then each of `errors[].message`, as one line.
pub fn detail_of(body: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    for key in ["detail", "title", "error_description", "error"] {
        if let Some(s) = body[key].as_str() {
            parts.push(s.to_owned());
            break;
        }
    }
    if let Some(errors) = body["errors"].as_array() {
        parts.extend(
            errors
                .iter()
                .filter_map(|e| e["message"].as_str().or(e["detail"].as_str()))
                .map(str::to_owned),
        );
    }
    let line = parts.join("; ");
    if line.is_empty() {
        "no reason given".into()
    } else {
        line.chars().take(500).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_reset_is_read_against_the_answers_own_date() {
        // 2024-01-16T16:00:00Z is 1705420800; the reset is 300 s after the Date.
        let h = headers(&[
            ("x-rate-limit-remaining", "3"),
            ("x-rate-limit-reset", "1705421100"),
            ("date", "Tue, 16 Jan 2024 16:00:00 GMT"),
        ]);
        let limit = RateLimit::of(&h).unwrap();
        assert_eq!(
            limit,
            RateLimit {
                remaining: 3,
                reset_in: Duration::from_secs(300)
            }
        );
        assert!(RateLimit::of(&headers(&[("x-rate-limit-remaining", "3")])).is_none());
    }

    #[test]
    fn pacing_spreads_the_window_and_waits_out_an_empty_one() {
        let floor = Duration::from_secs(15);
        let limit = |remaining, secs| {
            Some(RateLimit {
                remaining,
                reset_in: Duration::from_secs(secs),
            })
        };
        // 10 requests a 15-minute window (X's Basic tier for mentions): one every 90 s.
        assert_eq!(
            RateLimit::pace(limit(10, 900), floor),
            Duration::from_secs(90)
        );
        // A generous window: the configured floor.
        assert_eq!(RateLimit::pace(limit(300, 900), floor), floor);
        assert_eq!(
            RateLimit::pace(limit(0, 120), floor),
            Duration::from_secs(121)
        );
        assert_eq!(RateLimit::pace(None, floor), floor);
    }

    #[test]
    fn xs_reasons_are_read_from_detail_and_errors() {
        let body = serde_json::json!({
            "errors": [{"parameters": {"max_results": ["3"]}, "message": "The `max_results` query parameter value [3] is not between 5 and 100"}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request"
        });
        let d = detail_of(&body);
        assert!(
            d.starts_with("One or more parameters") && d.contains("between 5 and 100"),
            "{d}"
        );
        assert_eq!(detail_of(&Value::Null), "no reason given");
    }

    #[test]
    fn an_app_outside_a_project_is_a_credentials_problem() {
        let e = ApiError::Forbidden {
            detail: "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project.".into(),
            kind: "client-forbidden".into(),
            reason: Some("client-not-enrolled".into()),
        };
        assert!(e.is_credentials());
        let duplicate = ApiError::Forbidden {
            detail: "You are not allowed to create a Tweet with duplicate content.".into(),
            kind: "about:blank".into(),
            reason: None,
        };
        assert!(!duplicate.is_credentials());
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let auth = Auth::OAuth1 {
            consumer_key: "CK-SECRET".to_owned().into(),
            consumer_secret: "CS-SECRET".to_owned().into(),
            access_token: "AT-SECRET".to_owned().into(),
            access_token_secret: "ATS-SECRET".to_owned().into(),
        };
        let client = Client::new("http://127.0.0.1:9", auth, None).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        let auth = Auth::OAuth2 {
            client_id: "app".into(),
            client_secret: Some("CLIENT-SECRET".to_owned().into()),
            refresh_token: "REFRESH-SECRET".to_owned().into(),
        };
        assert!(!format!("{auth:?}").contains("SECRET"));
    }
}
