//! The webhook endpoint, served by Frontdesk's own HTTP server:
//! `POST /telegram/{account}/webhook`.
//!
//! Telegram sends the secret we gave `setWebhook` in `X-Telegram-Bot-Api-Secret-Token`;
//! it is compared in constant time (teloxide's own webhook listener does not). The
//! answer is 200 only after the update is committed; anything else makes Telegram send
//! it again, and the store drops what it already has.

use crate::channel::{Mode, TelegramChannel, webhook_path};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use frontdesk_core::Channel;
use secrecy::ExposeSecret;
use std::sync::Arc;
use subtle::ConstantTimeEq;

const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The route for this channel's webhook (serves 404 in polling mode).
pub fn router(channel: Arc<TelegramChannel>) -> Router {
    Router::new()
        .route(
            &webhook_path(channel.account()),
            axum::routing::post(receive),
        )
        .with_state(channel)
}

async fn receive(
    State(channel): State<Arc<TelegramChannel>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Mode::Webhook { secret, .. } = channel.mode() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let sent = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !bool::from(sent.ct_eq(secret.expose_secret().as_bytes())) {
        return (StatusCode::UNAUTHORIZED, "wrong or missing secret token").into_response();
    }
    let Some((intake, options)) = channel.ready_for_webhook() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the bot is starting").into_response();
    };
    let Some((update_id, mapped)) = std::str::from_utf8(&body)
        .ok()
        .and_then(|text| crate::mapping::read_update(text, channel.account(), &options))
    else {
        tracing::warn!(account = %channel.account(), "a webhook call that is not a Telegram update");
        return (StatusCode::BAD_REQUEST, "not a Telegram update").into_response();
    };
    match channel.take(&*intake, update_id, mapped, None).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::warn!(account = %channel.account(), error = %e, "cannot store a webhook update; Telegram will send it again");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
