//! Events: appended inside the transaction that caused them, published after commit.
//!
//! In one process, subscribers get events through a tokio broadcast channel. On
//! PostgreSQL every event is also announced with NOTIFY (delivered only on commit), and
//! each instance LISTENs and republishes the events of the others, so an inbox open on
//! instance A sees a message ingested by instance B.

use crate::StoreError;
use crate::db::{Exec, MessageRef, Query, Row};
use frontdesk_core::{ConversationId, Event, EventId, EventKind, MessageId, Timestamp};
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{broadcast, watch};

/// NOTIFY channel for events; the payload is `INSTANCE EVENT_ID`.
pub(crate) const EVENTS_CHANNEL: &str = "frontdesk_events";
/// NOTIFY channel that says "the outbox has new rows"; the payload is the instance.
pub(crate) const OUTBOX_CHANNEL: &str = "frontdesk_outbox";

/// The columns [`event_from_row`] reads.
macro_rules! event_select {
    () => {
        "SELECT id, kind, conversation_id, message_id, data, created_at FROM events"
    };
}
pub(crate) use event_select;

pub(crate) fn event_from_row(row: &Row) -> Result<Event, StoreError> {
    let kind: String = row.get("kind")?;
    let data: String = row.get("data")?;
    Ok(Event {
        id: EventId(row.get("id")?),
        kind: EventKind::parse(&kind).map_err(|e| StoreError::Corrupt {
            column: "events.kind",
            reason: e.to_string(),
        })?,
        conversation_id: row
            .get::<Option<i64>>("conversation_id")?
            .map(ConversationId),
        message_id: row.get::<Option<i64>>("message_id")?.map(MessageId),
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
            column: "events.data",
            reason: e.to_string(),
        })?,
        created_at: Timestamp::from_micros(row.get("created_at")?),
    })
}

/// An event about to be appended: its INSERT, and the [`Event`] once the id is known.
pub(crate) struct NewEvent {
    kind: EventKind,
    conversation_id: Option<ConversationId>,
    message_id: Option<MessageId>,
    data: serde_json::Value,
    at: Timestamp,
}

impl NewEvent {
    pub(crate) fn new(
        kind: EventKind,
        conversation_id: Option<ConversationId>,
        message_id: Option<MessageId>,
        data: serde_json::Value,
        at: Timestamp,
    ) -> Self {
        Self {
            kind,
            conversation_id,
            message_id,
            data,
            at,
        }
    }

    /// The INSERT; it returns the row's `id`.
    pub(crate) fn insert(&self) -> Query {
        self.insert_with("$3", self.message_id.map(|m| m.0))
    }

    /// The INSERT of an event about `message`, which may be one its batch inserts
    /// before its id is known; it returns the row's `id`.
    pub(crate) fn insert_about(&self, message: MessageRef) -> Query {
        self.insert_with(&message.sql("$3"), message.value())
    }

    /// The INSERT with `message_sql` for the message's id, where `$3` is `message`.
    fn insert_with(&self, message_sql: &str, message: Option<i64>) -> Query {
        Query::assembled(format!(
            "INSERT INTO events (kind, conversation_id, message_id, data, created_at)
             VALUES ($1, $2, {message_sql}, $4, $5) RETURNING id"
        ))
        .bind(self.kind.as_str())
        .bind(self.conversation_id.map(|c| c.0))
        .bind(message)
        .bind(self.data.to_string())
        .bind(self.at.as_micros())
    }

    /// The event [`Self::insert_about`] wrote, given message's id and the row the
    /// INSERT returned.
    pub(crate) fn stored_about(
        mut self,
        message: MessageId,
        row: &Row,
    ) -> Result<Event, StoreError> {
        self.message_id = Some(message);
        self.stored(row)
    }

    /// The event, given the row the INSERT returned.
    pub(crate) fn stored(self, row: &Row) -> Result<Event, StoreError> {
        Ok(Event {
            id: EventId(row.get("id")?),
            kind: self.kind,
            conversation_id: self.conversation_id,
            message_id: self.message_id,
            data: self.data,
            created_at: self.at,
        })
    }
}

/// Appends one event inside `q`'s transaction and returns it, to publish after commit.
pub(crate) async fn append(
    q: &mut Exec<'_>,
    kind: EventKind,
    conversation_id: Option<ConversationId>,
    message_id: Option<MessageId>,
    data: serde_json::Value,
    now: Timestamp,
) -> Result<Event, StoreError> {
    let event = NewEvent::new(kind, conversation_id, message_id, data, now);
    let row = q.fetch_one(event.insert()).await?;
    event.stored(&row)
}

/// Republishes other instances' events and outbox wake-ups until aborted.
pub(crate) async fn listen_postgres(
    pool: PgPool,
    instance: String,
    events: broadcast::Sender<Event>,
    outbox: watch::Sender<u64>,
) {
    loop {
        if let Err(e) = listen_once(&pool, &instance, &events, &outbox).await {
            tracing::warn!(error = %e, "LISTEN connection lost; reconnecting in 1 s");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}

async fn listen_once(
    pool: &PgPool,
    instance: &str,
    events: &broadcast::Sender<Event>,
    outbox: &watch::Sender<u64>,
) -> Result<(), StoreError> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([EVENTS_CHANNEL, OUTBOX_CHANNEL])
        .await?;
    // Rows may have been queued while we were not listening.
    outbox.send_modify(|n| *n += 1);
    loop {
        let note = listener.recv().await?;
        if note.channel() == OUTBOX_CHANNEL {
            if note.payload() != instance {
                outbox.send_modify(|n| *n += 1);
            }
            continue;
        }
        let Some((from, id)) = note.payload().split_once(' ') else {
            continue;
        };
        if from == instance {
            continue;
        }
        let Ok(id) = id.parse::<i64>() else { continue };
        let mut conn = pool.acquire().await?;
        let row = Exec::Pg(&mut conn)
            .fetch_optional(Query::new(concat!(event_select!(), " WHERE id = $1")).bind(id))
            .await?;
        if let Some(row) = row {
            let _ = events.send(event_from_row(&row)?);
        }
    }
}
