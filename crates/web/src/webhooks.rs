//! Outbound webhooks: `conversation.created`, `message.created` and
//! `conversation.status_changed`, POSTed as JSON to each configured URL, signed with
//! HMAC-SHA256.
//!
//! The events table is the outbox: every change appends its event in the same
//! transaction, so nothing committed is missed and nothing uncommitted is sent. Each
//! webhook keeps a cursor in the database; one instance at a time holds its lease and
//! sends events in order. A failed POST (an error, a timeout, any status but 2xx) is
//! retried with exponential backoff and the cursor does not move, so later events
//! wait; after [`MAX_ATTEMPTS`] the event is given up on (recorded in the audit log)
//! and the next one goes. Delivery is at least once: receivers deduplicate by the
//! `X-Frontdesk-Event-Id` header.
//!
//! Signature: `X-Frontdesk-Signature: t=UNIX_SECONDS,v1=HEX` where HEX is
//! HMAC-SHA256(secret, `"{t}.{body}"`); receivers check it and reject old `t`.

use crate::api::{conversation_json, hex, message_json};
use frontdesk_core::{Event, EventKind, MessageId, Timestamp};
use frontdesk_store::Store;
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Attempts at one event before it is given up on (about an hour of backoff).
pub const MAX_ATTEMPTS: u32 = 12;
/// How long one instance holds a webhook before another may take it over.
const LEASE: Duration = Duration::from_secs(30);
/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long one step sends before it renews the lease (well inside [`LEASE`]).
const STEP: Duration = Duration::from_secs(10);
/// On PostgreSQL event ids are taken when a transaction inserts, not when it
/// commits: a slower transaction may commit an id below one already read. Events
/// younger than this wait, so that reading past them never skips one. (SQLite has one
/// writer at a time: ids commit in order.)
const SETTLE: Duration = Duration::from_secs(2);

/// The events a webhook can ask for.
pub const EVENT_TYPES: [&str; 3] = [
    "conversation.created",
    "message.created",
    "conversation.status_changed",
];

/// One configured endpoint.
#[derive(Clone)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    pub secret: SecretString,
    /// Some of [`EVENT_TYPES`]; all of them when empty.
    pub events: Vec<String>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("events", &self.events)
            .finish()
    }
}

impl Webhook {
    fn wants(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e == event_type)
    }
}

/// `t=...,v1=...` for a body sent at `unix_seconds`.
pub fn signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={unix_seconds},v1={}", hex(&mac.finalize().into_bytes()))
}

/// The event's type and body, if it is one webhooks carry.
async fn payload(
    store: &dyn Store,
    event: &Event,
) -> Result<Option<(&'static str, serde_json::Value)>, frontdesk_store::StoreError> {
    let Some(conversation_id) = event.conversation_id else {
        return Ok(None);
    };
    let kind = match event.kind {
        EventKind::ConversationCreated => "conversation.created",
        EventKind::MessageCreated => "message.created",
        EventKind::ConversationUpdated if !event.data["status"].is_null() => {
            "conversation.status_changed"
        }
        _ => return Ok(None),
    };
    let Some(conversation) = store.conversation(conversation_id).await? else {
        return Ok(None);
    };
    let mut body = serde_json::json!({
        "id": event.id.0,
        "type": kind,
        "created_at": event.created_at,
        "conversation": conversation_json(&conversation),
    });
    if event.kind == EventKind::MessageCreated {
        let Some(id) = event.message_id else {
            return Ok(None);
        };
        let found = store
            .messages(conversation_id, Some(MessageId(id.0 - 1)), 1)
            .await?;
        match found.into_iter().find(|m| m.id == id) {
            // Events of the conversation's history are not messages to anyone.
            Some(m) if m.kind != frontdesk_core::MessageKind::Event => {
                body["message"] = message_json(&m);
            }
            _ => return Ok(None),
        }
    }
    Ok(Some((kind, body)))
}

/// Sends one webhook's events until `stop`.
pub async fn run(store: Arc<dyn Store>, webhook: Webhook, worker: String, stop: CancellationToken) {
    let http = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(webhook = %webhook.name, error = %e, "cannot build the webhook client");
            return;
        }
    };
    let mut events = store.subscribe();
    loop {
        let wait = match step(&*store, &http, &webhook, &worker).await {
            Ok(Some(wait)) => wait,
            // More to send at once.
            Ok(None) => Duration::ZERO,
            Err(e) => {
                tracing::warn!(webhook = %webhook.name, error = %e, "webhook step failed");
                Duration::from_secs(2)
            }
        };
        if wait.is_zero() {
            if stop.is_cancelled() {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            // A new event: look at once (unless a backoff is running, which the
            // step checks again).
            _ = events.recv() => {}
        }
    }
}

/// Sends what is due. `Some(wait)` when there is nothing to do for a while.
async fn step(
    store: &dyn Store,
    http: &reqwest::Client,
    webhook: &Webhook,
    worker: &str,
) -> Result<Option<Duration>, frontdesk_store::StoreError> {
    let Some(cursor) = store.claim_webhook(&webhook.name, worker, LEASE).await? else {
        // Another instance sends this one.
        return Ok(Some(LEASE / 2));
    };
    let now = Timestamp::now();
    if cursor.due_at > now {
        return Ok(Some(cursor.due_at.since(now).min(LEASE / 2)));
    }
    let settled = match store.backend() {
        frontdesk_store::Backend::Postgres => now.minus(SETTLE),
        frontdesk_store::Backend::Sqlite => now,
    };
    let batch: Vec<Event> = store
        .events_after(cursor.last_event_id, 50)
        .await?
        .into_iter()
        .take_while(|e| e.created_at <= settled)
        .collect();
    if batch.is_empty() {
        return Ok(Some(SETTLE.min(LEASE / 2)));
    }
    let started = std::time::Instant::now();
    // Failed attempts at the event in hand; a delivered one starts the next at zero.
    let mut attempts = cursor.attempts;
    for event in batch {
        if started.elapsed() > STEP {
            // Renew the lease before going on.
            return Ok(None);
        }
        let body = match payload(store, &event).await? {
            Some((kind, body)) if webhook.wants(kind) => (kind, body),
            // Not for webhooks, or not for this one: step over it.
            _ => {
                if !store
                    .advance_webhook(&webhook.name, worker, event.id, false)
                    .await?
                {
                    return Ok(Some(LEASE / 2));
                }
                continue;
            }
        };
        match post(http, webhook, event.id.0, body.0, &body.1).await {
            Ok(()) => {
                attempts = 0;
                if !store
                    .advance_webhook(&webhook.name, worker, event.id, true)
                    .await?
                {
                    // Another instance holds the webhook now: it goes on from here.
                    return Ok(Some(LEASE / 2));
                }
            }
            Err(why) => {
                let attempts = attempts + 1;
                tracing::warn!(webhook = %webhook.name, event = event.id.0, attempts, error = %why, "webhook delivery failed");
                if attempts >= MAX_ATTEMPTS {
                    store
                        .advance_webhook(&webhook.name, worker, event.id, false)
                        .await?;
                    store
                        .record_audit(
                            "webhooks",
                            "webhook_gave_up",
                            &format!("webhook {}", webhook.name),
                            serde_json::json!({ "event": event.id.0, "error": why }),
                        )
                        .await?;
                    return Ok(None);
                }
                let backoff = Duration::from_secs(1u64 << attempts.min(11));
                store
                    .webhook_failed(&webhook.name, worker, &why, now.plus(backoff))
                    .await?;
                return Ok(Some(backoff.min(LEASE / 2)));
            }
        }
    }
    Ok(None)
}

/// One signed POST; `Err` with a short reason (never the body).
async fn post(
    http: &reqwest::Client,
    webhook: &Webhook,
    event_id: i64,
    kind: &str,
    body: &serde_json::Value,
) -> Result<(), String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let t = Timestamp::now().as_micros() / 1_000_000;
    let response = http
        .post(&webhook.url)
        .header("content-type", "application/json")
        .header("user-agent", "Frontdesk-Webhooks")
        .header("x-frontdesk-event", kind)
        .header("x-frontdesk-event-id", event_id.to_string())
        .header(
            "x-frontdesk-signature",
            signature(webhook.secret.expose_secret(), t, &bytes),
        )
        .body(bytes)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "cannot connect".to_owned()
            } else {
                "request failed".to_owned()
            }
        })?;
    match response.status() {
        s if s.is_success() => Ok(()),
        s => Err(format!("HTTP {}", s.as_u16())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_covers_the_time_and_the_body() {
        let a = super::signature("s3cret", 1_700_000_000, b"{\"id\":1}");
        assert!(a.starts_with("t=1700000000,v1="));
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, super::signature("s3cret", 1_700_000_001, b"{\"id\":1}"));
        assert_ne!(a, super::signature("s3cret", 1_700_000_000, b"{\"id\":2}"));
        assert_ne!(a, super::signature("other", 1_700_000_000, b"{\"id\":1}"));
    }
}
