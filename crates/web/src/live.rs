//! Live updates over server-sent events: the inbox and the chat learn that something
//! changed and fetch it (the stream carries ids, never message text). Events come from
//! the store's feed, which on PostgreSQL includes every instance's (LISTEN/NOTIFY), so
//! an agent on one instance sees a message another instance took in.

use crate::WebState;
use crate::auth::SignedIn;
use crate::error::ApiError;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use frontdesk_core::{ConversationId, Event, EventKind};
use futures_util::Stream;
use serde::Deserialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// What a listener is told: which conversation changed, and how.
fn notice(event: &Event) -> SseEvent {
    SseEvent::default().event("update").data(
        serde_json::json!({
            "kind": event.kind,
            "conversation_id": event.conversation_id,
            "message_id": event.message_id,
        })
        .to_string(),
    )
}

/// A stream of the events `keep` lets through; a listener that fell behind is told to
/// fetch everything again (`resync`).
fn stream<F, Fut>(
    state: &WebState,
    keep: F,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + use<F, Fut>
where
    F: FnMut(Event) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<Event>> + Send,
{
    let events = state.store.subscribe();
    let stop = state.shutdown.clone().cancelled_owned();
    let feed = futures_util::stream::unfold((events, keep), |(mut events, mut keep)| async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(event) = keep(event).await {
                        return Some((Ok(notice(&event)), (events, keep)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let resync = SseEvent::default().event("resync").data("{}");
                    return Some((Ok(resync), (events, keep)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    // The stream ends when the server stops.
    futures_util::StreamExt::take_until(feed, stop)
}

/// GET /events: every conversation change, for signed-in agents.
pub async fn agent_events(
    State(state): State<WebState>,
    _me: SignedIn,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    Sse::new(stream(&state, |e| async move {
        e.conversation_id.is_some().then_some(e)
    }))
    .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// The visitor token, for clients that cannot send headers (EventSource).
    token: Option<String>,
}

/// GET /chat/api/stream: changes to this visitor's conversations. The token comes as a
/// bearer header, the cookie, or `?token=` (EventSource cannot set headers). It only
/// says that something changed; the messages themselves come from
/// `GET /chat/api/messages`, which needs the token.
pub async fn visitor_events(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let token = crate::api::bearer(&headers)
        .map(str::to_owned)
        .or(q.token)
        .or_else(|| crate::auth::cookie(&headers, crate::webchat::COOKIE))
        .ok_or_else(|| ApiError::unauthorized("a visitor token is needed"))?;
    let visitor = state
        .visitor_keys
        .check(&token)
        .ok_or_else(|| ApiError::unauthorized("not a visitor token of this site"))?;
    let store = state.store.clone();
    // Which conversations are this visitor's, learned as events name them.
    let known: Arc<Mutex<HashMap<ConversationId, bool>>> = Arc::default();
    let keep = move |event: Event| {
        let (store, visitor, known) = (store.clone(), visitor.clone(), known.clone());
        async move {
            let id = event.conversation_id?;
            if !matches!(
                event.kind,
                EventKind::MessageCreated
                    | EventKind::ConversationUpdated
                    | EventKind::DeliverySent
            ) {
                return None;
            }
            let cached = known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .copied();
            let mine = match cached {
                Some(mine) => mine,
                None => {
                    let mine = store
                        .conversation(id)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|c| {
                            c.account == crate::webchat::account() && c.thread_key == visitor
                        });
                    let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
                    if known.len() > 10_000 {
                        known.clear();
                    }
                    known.insert(id, mine);
                    mine
                }
            };
            mine.then_some(event)
        }
    };
    Ok(Sse::new(stream(&state, keep))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
