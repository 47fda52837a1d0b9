//! [`SqlStore`]: the [`Store`] on SQLite or PostgreSQL.

use crate::db::{Backend, Conn, Exec, Query, Row, Tx};
use crate::events::{self, EVENTS_CHANNEL, OUTBOX_CHANNEL, event_select};
use crate::group::GroupWriter;
use crate::sql_reply::{AnswerRows, Written, next_row};
use crate::{
    AgentLoad, AgentProfile, Answer, AssigneeFilter, AuditEntry, ClaimRequest, ContactErasure,
    ConversationChange, ConversationFacts, ConversationQuery, Csat, Ingested, LeaseReport,
    NewAgent, NewReply, Page, PageCursor, PendingTurn, Replied, Responder, SlaTarget, Store,
    StoreError, Sweep, TurnFacts, Verification, VerificationChange,
};
use frontdesk_core::{
    Agent, AgentId, Attachment, Author, ChannelAccount, ChannelKind, Contact, ContactId,
    Conversation, ConversationId, Delivery, Direction, Edit, Event, EventId, EventKind, Filtered,
    Finding, Identity, Inbound, IngestOutcome, Message, MessageId, MessageKind, NoFilter, Outbound,
    OutboundCheck, OutboxId, Priority, Role, Status, SystemClock, TextFilter, Timestamp,
};
use frontdesk_core::{AgentStatus, Clock};
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size (SQLite in-memory databases always use one connection).
    pub max_connections: u32,
    /// The inbound filter run on every inbound text before it is stored.
    pub filter: Arc<dyn TextFilter>,
    /// The check every reply to a customer passes before its outbox row is written.
    pub outbound: Arc<dyn OutboundCheck>,
    /// Where every stored time comes from (tests walk a manual clock through a week).
    pub clock: Arc<dyn Clock>,
    /// A customer message within this time after a conversation was resolved goes back
    /// into it (the conversation engine reopens it); after it, a new conversation.
    pub reopen_window: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            filter: Arc::new(NoFilter),
            outbound: Arc::new(NoFilter),
            clock: Arc::new(SystemClock),
            reopen_window: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Clone)]
enum Pool {
    /// SQLite allows one writer at a time. All writes go through one dedicated
    /// connection, so they queue in-process instead of contending for the file lock,
    /// and its page cache stays warm (a connection's cache is dropped whenever another
    /// connection writes). Reads use their own pool; WAL lets them run during a write.
    Sqlite {
        writer: Arc<Writer>,
        readers: SqlitePool,
    },
    Pg(PgPool),
}

/// SQLite's one writer connection: migrations use it directly, writes through the group.
struct Writer {
    pool: SqlitePool,
    group: GroupWriter,
}

/// The store. Cheap to clone; clones share the pool and the event channel.
#[derive(Clone)]
pub struct SqlStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pool: Pool,
    filter: Arc<dyn TextFilter>,
    outbound: Arc<dyn OutboundCheck>,
    clock: Arc<dyn Clock>,
    reopen_window: Duration,
    events: broadcast::Sender<Event>,
    outbox: watch::Sender<u64>,
    /// This process's name in NOTIFY payloads, to skip its own notifications.
    instance: String,
    listener: Option<JoinHandle<()>>,
    /// SQLite: writes the search documents of new messages (see [`crate::search`]).
    indexer: Option<JoinHandle<()>>,
    /// SQLite in a file: copies the WAL into the database file ([`checkpoint_continually`]).
    checkpointer: Option<JoinHandle<()>>,
    /// Held by an indexing pass, one at a time (see [`crate::SqlStore::index_search`]);
    /// true once this process has seen that the search file marked every conversation.
    index_built: tokio::sync::Mutex<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in [&self.listener, &self.indexer, &self.checkpointer]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .field("instance", &self.inner.instance)
            .finish_non_exhaustive()
    }
}

/// Retries of an ingest that lost a race on a unique index (another instance created
/// the same contact or conversation at the same moment).
const INGEST_ATTEMPTS: usize = 3;

impl SqlStore {
    /// Fails a leased outbox row for good; with `unreachable`, also marks the contact
    /// unreachable on the conversation's channel (they blocked the bot).
    async fn fail(
        &self,
        id: OutboxId,
        worker: &str,
        reason: &str,
        unreachable: bool,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError> {
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let Some((message_id, conversation_id)) = finish_lease(
            &mut q,
            Query::new(
                "UPDATE outbox SET status = 'failed', last_error = $3, updated_at = $4,
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2 AND status = 'queued'
                 RETURNING message_id, conversation_id",
            )
            .bind(id.0)
            .bind(worker)
            .bind(reason)
            .bind(now.as_micros()),
        )
        .await?
        else {
            return Ok(LeaseReport::LeaseLost);
        };
        if unreachable {
            q.execute(
                Query::new(
                    "UPDATE contact_identities SET unreachable = $2, unreachable_at = $3
                     WHERE (contact_id, channel) IN
                           (SELECT contact_id, channel FROM conversations WHERE id = $1)",
                )
                .bind(conversation_id.0)
                .bind(reason)
                .bind(now.as_micros()),
            )
            .await?;
        }
        let events = self
            .record(
                &mut q,
                EventKind::DeliveryFailed,
                Some(conversation_id),
                Some(message_id),
                serde_json::json!({ "outbox_id": id, "reason": reason, "unreachable": unreachable }),
                now,
            )
            .await?;
        tx.commit().await?;
        self.publish(events);
        Ok(LeaseReport::Recorded)
    }

    /// Opens `sqlite://PATH` (created if missing, with its directory), `sqlite::memory:`,
    /// or `postgres://...`. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let (events, _) = broadcast::channel(1024);
        let (outbox, _) = watch::channel(0);
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let mut checkpointer = None;
        let (pool, listener) = if url.starts_with("sqlite:") {
            let (pool, readers, in_file) = open_sqlite(url, options.max_connections).await?;
            let writer = Arc::new(Writer {
                group: GroupWriter::new(pool.clone()).await?,
                pool,
            });
            checkpointer = in_file.then(|| tokio::spawn(checkpoint_continually(readers.clone())));
            (Pool::Sqlite { writer, readers }, None)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            let listener = tokio::spawn(events::listen_postgres(
                pool.clone(),
                instance.clone(),
                events.clone(),
                outbox.clone(),
            ));
            (Pool::Pg(pool), Some(listener))
        } else {
            let scheme: String = url
                .split(':')
                .next()
                .unwrap_or("")
                .chars()
                .take(20)
                .collect();
            return Err(StoreError::UnsupportedUrl(format!("{scheme}:...")));
        };
        let sqlite = matches!(pool, Pool::Sqlite { .. });
        Ok(Self {
            // The indexer holds the store weakly, and first looks a second from now.
            inner: Arc::new_cyclic(|store| Inner {
                pool,
                filter: options.filter,
                outbound: options.outbound,
                clock: options.clock,
                reopen_window: options.reopen_window,
                events,
                outbox,
                instance,
                listener,
                indexer: sqlite
                    .then(|| tokio::spawn(crate::search::index_continually(store.clone()))),
                checkpointer,
                index_built: tokio::sync::Mutex::new(false),
            }),
        })
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Held by an indexing pass (see [`crate::search`]): whether the search file is
    /// known to hold every conversation's mark.
    pub(crate) fn index_built(&self) -> &tokio::sync::Mutex<bool> {
        &self.inner.index_built
    }

    /// Now, by the store's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        Ok(match &self.inner.pool {
            Pool::Sqlite { readers, .. } => Conn::Sqlite(readers.acquire().await?),
            Pool::Pg(p) => Conn::Pg(p.acquire().await?),
        })
    }

    /// Runs one read on a pooled connection: every row.
    pub(crate) async fn read_all(&self, q: Query) -> Result<Vec<Row>, StoreError> {
        self.conn().await?.q().fetch_all(q).await
    }

    /// Runs one read on a pooled connection: the row, if there is one.
    pub(crate) async fn read_optional(&self, q: Query) -> Result<Option<Row>, StoreError> {
        self.conn().await?.q().fetch_optional(q).await
    }

    /// Runs one write in its own transaction: the rows it changed.
    pub(crate) async fn write(&self, q: Query) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = tx.q().execute(q).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Runs one write that returns a row (`RETURNING`) in its own transaction.
    pub(crate) async fn write_one(&self, q: Query) -> Result<Row, StoreError> {
        let mut tx = self.begin().await?;
        let row = tx.q().fetch_one(q).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Starts a write transaction. On SQLite it joins the one writer's shared
    /// transaction ([`crate::group`]), so writes arriving together commit together.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match &self.inner.pool {
            Pool::Sqlite { writer, .. } => Tx::Sqlite(writer.group.join().await?),
            Pool::Pg(p) => Tx::Pg(p.begin().await?),
        })
    }

    /// Starts a write transaction that shares no commit (SQLite: after the shared
    /// transaction, on the same connection). For the benchmark's baseline.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) async fn begin_alone(&self) -> Result<Tx, StoreError> {
        Ok(match &self.inner.pool {
            Pool::Sqlite { writer, .. } => {
                Tx::SqliteAlone(writer.pool.begin_with("BEGIN IMMEDIATE").await?)
            }
            Pool::Pg(p) => Tx::Pg(p.begin().await?),
        })
    }

    /// Announces committed-to-be events to other instances (PostgreSQL NOTIFY is sent
    /// on commit, and not at all on rollback).
    pub(crate) async fn announce(
        &self,
        q: &mut Exec<'_>,
        events: &[Event],
    ) -> Result<(), StoreError> {
        if self.backend() != Backend::Postgres {
            return Ok(());
        }
        for e in events {
            q.execute(
                Query::new("SELECT pg_notify($1, $2)")
                    .bind(EVENTS_CHANNEL)
                    .bind(format!("{} {}", self.inner.instance, e.id)),
            )
            .await?;
        }
        Ok(())
    }

    /// On PostgreSQL, the statement that wakes the other instances' delivery workers.
    pub(crate) fn outbox_notice(&self) -> Option<Query> {
        (self.backend() == Backend::Postgres).then(|| {
            Query::new("SELECT pg_notify($1, $2)")
                .bind(OUTBOX_CHANNEL)
                .bind(self.inner.instance.as_str())
        })
    }

    /// Appends one event in the transaction and announces it to other instances; hand
    /// the result to [`Self::publish`] after the commit.
    pub(crate) async fn record(
        &self,
        q: &mut Exec<'_>,
        kind: EventKind,
        conversation: Option<ConversationId>,
        message: Option<MessageId>,
        data: serde_json::Value,
        now: Timestamp,
    ) -> Result<Vec<Event>, StoreError> {
        let events = vec![events::append(q, kind, conversation, message, data, now).await?];
        self.announce(q, &events).await?;
        Ok(events)
    }

    /// The check every reply to a customer passes before its outbox row is written.
    pub(crate) fn outbound_check(&self) -> &dyn OutboundCheck {
        &*self.inner.outbound
    }

    /// Hands committed events to this process's subscribers.
    pub(crate) fn publish(&self, events: Vec<Event>) {
        for e in events {
            // No subscriber is fine: events are also in the table.
            let _ = self.inner.events.send(e);
        }
    }

    /// SQLite's own check of the database file (`PRAGMA integrity_check`): `Ok` when
    /// it finds nothing wrong, else what it lists. PostgreSQL checks itself.
    pub async fn check_integrity(&self) -> Result<(), StoreError> {
        if self.backend() != crate::Backend::Sqlite {
            return Ok(());
        }
        let rows = self
            .conn()
            .await?
            .q()
            .fetch_all(Query::new("PRAGMA integrity_check"))
            .await?;
        let found: Vec<String> = rows
            .iter()
            .map(|r| r.get::<String>("integrity_check"))
            .collect::<Result<_, _>>()?;
        match found.as_slice() {
            [ok] if ok == "ok" => Ok(()),
            _ => Err(StoreError::Corrupt {
                column: "database file",
                reason: found.join("; "),
            }),
        }
    }

    /// How many attempts the delivery of outgoing message `message` took so far, if
    /// it has an outbox row. For tests that tell a resend from a double.
    #[cfg(any(test, feature = "testing"))]
    pub async fn delivery_attempts(&self, message: MessageId) -> Result<Option<u32>, StoreError> {
        let row = self
            .read_optional(
                Query::new("SELECT attempts FROM outbox WHERE message_id = $1").bind(message.0),
            )
            .await?;
        row.map(|r| {
            r.get::<i64>("attempts")
                .map(|a| u32::try_from(a).unwrap_or(u32::MAX))
        })
        .transpose()
    }

    /// Runs a statement outside the store's API. For tests and benchmarks that need
    /// to shape the database (a failing trigger, a scratch table).
    #[cfg(any(test, feature = "testing"))]
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, StoreError> {
        self.conn()
            .await?
            .q()
            .execute(Query::assembled(sql.to_owned()))
            .await
    }

    /// After the commit: publishes what was written and wakes the delivery worker.
    fn written(&self, written: Written) {
        self.publish(written.events);
        if written.queued {
            self.inner.outbox.send_modify(|n| *n += 1);
        }
    }

    /// One try at [`Store::ingest_answering`] (`responder` given) or
    /// [`Store::ingest`].
    async fn ingest_once(
        &self,
        inbound: &Inbound,
        filtered: &Filtered,
        cursor: Option<&str>,
        responder: Option<&dyn Responder>,
    ) -> Result<Ingested, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let reopen_since = Timestamp::from_micros(
            now.as_micros() - i64::try_from(self.inner.reopen_window.as_micros()).unwrap_or(0),
        );
        // A message that wants the engine's turn, with no secret in it, is one a
        // responder may answer.
        let facts = responder.is_some()
            && filtered.findings.is_empty()
            && inbound.wants_turn(filtered.findings.len());
        let stored = match &inbound.edit_of {
            None => {
                let new = NewMessage {
                    inbound,
                    filtered,
                    cursor,
                    now,
                    reopen_since,
                };
                ingest_new(&mut q, new, facts).await?
            }
            Some(original) => ingest_edit(&mut q, inbound, original, filtered, cursor, now).await?,
        };
        let Some(Stored {
            outcome,
            mut events,
            facts,
            closing,
        }) = stored
        else {
            // Roll back (and, on SQLite, release the write lock) before writing the cursor.
            drop(tx);
            // Nothing of the message changes, but the adapter has moved past it.
            if let Some(cursor) = cursor {
                let mut tx = self.begin().await?;
                tx.q()
                    .execute(save_cursor(&inbound.account, cursor, now))
                    .await?;
                tx.commit().await?;
            }
            return Ok(Ingested {
                outcome: IngestOutcome::Duplicate,
                answered: false,
            });
        };
        // The answer is stamped as it is written: the message's stamp is from before
        // the wait for the writer.
        let answered_at = self.now();
        let answer = match (responder, facts, &outcome) {
            (Some(responder), Some(row), IngestOutcome::Stored { message_id, .. }) => {
                self.decided_answer(responder, &row, *message_id, now, answered_at)?
            }
            _ => None,
        };
        let answered = answer.is_some();
        // The rest in one batch: the message's closing statements, then the answer.
        let mut statements = Vec::new();
        let mut created = None;
        if let (
            Some(closing),
            IngestOutcome::Stored {
                conversation_id,
                message_id,
                ..
            },
        ) = (closing, &outcome)
        {
            statements.push(closing.created.insert());
            created = Some(closing.created);
            // A reply to the customer touches the conversation again a moment later.
            if !answer.as_ref().is_some_and(|(_, rows)| rows.touches()) {
                statements.push(closing.touch);
            }
            statements.extend(closing.cursor);
            // An answered message leaves the engine no turn to take.
            if !answered && inbound.wants_turn(filtered.findings.len()) {
                statements.push(note_turn(*conversation_id, *message_id, now));
            }
        }
        let (answer_statements, answer) = answer.unzip();
        statements.extend(answer_statements.into_iter().flatten());
        let mut queued = false;
        if !statements.is_empty() {
            let rows = q.batch(statements).await?;
            let mut rows = rows.iter();
            if let Some(created) = created {
                events.push(created.stored(next_row(&mut rows)?)?);
            }
            if let Some(answer) = answer {
                let written = answer.read(&mut rows)?;
                events.extend(written.events);
                queued = written.queued;
            }
        }
        self.announce(&mut q, &events).await?;
        tx.commit().await?;
        self.written(Written { events, queued });
        Ok(Ingested { outcome, answered })
    }

    /// The responder's answer to a message just stored, from the facts the ingest read
    /// with it (from before the message's closing statements, which touch the
    /// conversation at `stored_at`), as a batch; `None` when it declines, or when its
    /// answer could not be written (the engine's turn then takes the message as usual).
    fn decided_answer(
        &self,
        responder: &dyn Responder,
        facts: &Row,
        message: MessageId,
        stored_at: Timestamp,
        now: Timestamp,
    ) -> Result<Option<(Vec<Query>, AnswerRows)>, StoreError> {
        let mut conversation = conversation_from_row(facts)?;
        conversation.last_message_at = stored_at;
        conversation.updated_at = stored_at;
        let previous_text: Option<String> = facts.get("previous_text")?;
        let facts = TurnFacts {
            conversation: &conversation,
            message,
            previous_text: previous_text.as_deref(),
            verifying: facts.get::<i64>("verifying")? != 0,
        };
        let Some(answer) = responder.answer(&facts) else {
            return Ok(None);
        };
        // Answered means the engine has no turn to take: the answer must hold a reply
        // to the message that is new (a repeated idempotency key writes nothing).
        if !answer
            .replies
            .iter()
            .any(|r| r.answers == Some(message) && r.idempotency_key.is_none())
        {
            return Ok(None);
        }
        match self.answer_inserts(&answer, now) {
            // No turn was noted: the message is answered in the batch that stores it.
            Ok(inserts) => Ok(Some(self.answer_batch(
                conversation.id,
                &conversation.account,
                &answer,
                inserts,
                false,
                now,
            ))),
            Err(e) => {
                tracing::warn!(conversation_id = %conversation.id, error = %e,
                    "the bot's answer cannot go with the message; the engine takes the turn");
                Ok(None)
            }
        }
    }

    /// [`Store::ingest`] with or without a responder: the inbound filter, then
    /// [`Self::ingest_once`], again if it lost a race on a unique index.
    async fn ingest_with(
        &self,
        inbound: &Inbound,
        cursor: Option<&str>,
        responder: Option<Arc<dyn Responder>>,
    ) -> Result<Ingested, StoreError> {
        // The inbound filter step: nothing below this line sees the unfiltered text,
        // nor the unfiltered texts an adapter keeps in `meta` (an email's full text and
        // HTML, a subject).
        let filtered = self.inner.filter.filter(&inbound.text);
        let inbound = match redact_strings(&inbound.meta, &*self.inner.filter) {
            Some(meta) => Inbound {
                meta,
                ..inbound.clone()
            },
            None => inbound.clone(),
        };
        let cursor = cursor.map(str::to_owned);
        self.on_writer(move |store| async move {
            let (mut attempt, mut responder) = (1, responder);
            loop {
                match store
                    .ingest_once(&inbound, &filtered, cursor.as_deref(), responder.as_deref())
                    .await
                {
                    Err(e) if e.is_unique_violation() && attempt < INGEST_ATTEMPTS => {
                        tracing::debug!(attempt, "ingest lost a race on a unique index; retrying");
                        attempt += 1;
                    }
                    // Nothing of it was kept. The message matters more than the answer
                    // going with it: stored alone, it gets the engine's turn.
                    Err(e) if responder.is_some() => {
                        tracing::warn!(error = %e,
                            "the message and the bot's answer could not be stored together; storing the message alone");
                        responder = None;
                    }
                    other => return other,
                }
            }
        })
        .await
    }

    /// Runs a whole write where it holds SQLite's writer for the least time: on the
    /// writer's thread ([`GroupWriter::run`]). On PostgreSQL, here.
    async fn on_writer<T, F>(&self, write: impl FnOnce(SqlStore) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        match &self.inner.pool {
            Pool::Sqlite { writer, .. } => writer.group.run(write(self.clone())).await,
            Pool::Pg(_) => write(self.clone()).await,
        }
    }
}

/// How often the WAL is copied into the database file ([`checkpoint_continually`]).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies what the WAL holds into the database file every [`CHECKPOINT_EVERY`], on a
/// reader connection. Left to itself, SQLite does it inside the writer's COMMIT once
/// the WAL passes 1000 pages, with an fsync of each file, and every write waits that
/// long: tens of milliseconds on a busy disk, the p99 of `frontdesk bench e2e`. A
/// PASSIVE checkpoint waits for no reader and no writer; what it cannot copy yet, the
/// next one does. A failure (a full disk) is logged once and tried again.
async fn checkpoint_continually(readers: SqlitePool) {
    let mut failing = false;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        let outcome = sqlx::raw_sql("PRAGMA main.wal_checkpoint(PASSIVE)")
            .execute(&readers)
            .await;
        note_background(
            &mut failing,
            outcome.map(drop),
            "cannot copy the WAL into the database file; it grows until this works",
            "the WAL is copied into the database file again",
        );
    }
}

/// Logs how a background task's pass went: a failure once (`failed`), until a pass
/// works again (`recovered`).
pub(crate) fn note_background(
    failing: &mut bool,
    outcome: Result<(), impl fmt::Display>,
    failed: &str,
    recovered: &str,
) {
    match outcome {
        Ok(()) if *failing => {
            tracing::info!("{recovered}");
            *failing = false;
        }
        Ok(()) => {}
        Err(e) if !*failing => {
            tracing::warn!(error = %e, "{failed}");
            *failing = true;
        }
        Err(_) => {}
    }
}

/// Opens the writer connection and the reader pool (one shared connection for an
/// in-memory database, which exists only inside its connection), with the search
/// index's file attached to the readers; and whether the database is in a file.
async fn open_sqlite(
    url: &str,
    max_connections: u32,
) -> Result<(SqlitePool, SqlitePool, bool), StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL with NORMAL is durable against process crashes; a power cut may lose the
        // last transactions but never corrupts the file.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        // Savepoints keep the pages they change in a journal of their own: in memory.
        .pragma("temp_store", "memory")
        .foreign_keys(true);
    let in_memory = options.get_filename().as_os_str().is_empty()
        || url.contains(":memory:")
        || url.contains("mode=memory");
    let dir = options
        .get_filename()
        .parent()
        .filter(|d| !d.as_os_str().is_empty());
    if let (false, Some(dir)) = (in_memory, dir) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    }
    // SQLite connections do not go stale, and a liveness ping per checkout would cost a
    // round trip to the connection's thread.
    let pool = |size: u32| {
        SqlitePoolOptions::new()
            .max_connections(size)
            .test_before_acquire(false)
    };
    // The search index lives in a file of its own, written by a reader connection
    // (crate::search): readers attach it; the writer does not need it.
    let sidecar = match in_memory {
        true => ":memory:".to_owned(),
        false => crate::search::sidecar(options.get_filename()),
    };
    let with_search = |size: u32| {
        pool(size).after_connect(move |conn, _| {
            let sidecar = sidecar.clone();
            Box::pin(async move { crate::search::attach(conn, &sidecar).await })
        })
    };
    if in_memory {
        // One connection, reads and writes alike.
        let only = with_search(1).connect_with(options).await?;
        crate::search::create_schema(&only).await?;
        return Ok((only.clone(), only, false));
    }
    // The writer never checkpoints: checkpoint_continually does, on a reader.
    let writer = pool(1)
        .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
        .await?;
    let readers = with_search(max_connections.max(1))
        .connect_with(options)
        .await?;
    crate::search::create_schema(&readers).await?;
    Ok((writer, readers, true))
}

/// The inbound steps of one new message, with the cursor. `None` means it was stored
/// before; the caller then rolls back, undoing anything done here.
///
/// Every statement is a round trip (on SQLite, to the connection's thread), so the
/// common case, a message in a thread whose conversation is open, takes one here:
/// insert the message straight into that conversation (the unique index on the
/// external id is the dedupe), with the [`turn_facts`] read behind it when asked for.
/// What is left (the event, the conversation's touch, the cursor) comes back as
/// [`Closing`], for the caller's one batch, with the bot's answer when there is one.
async fn ingest_new(
    q: &mut Exec<'_>,
    new: NewMessage<'_>,
    with_facts: bool,
) -> Result<Option<Stored>, StoreError> {
    let NewMessage {
        inbound,
        filtered,
        cursor,
        now,
        reopen_since,
    } = new;
    let account = &inbound.account;
    let facts = || with_facts.then(|| turn_facts(account, &inbound.external_id));
    let mut events = Vec::new();
    let into_open = insert_with_facts(
        q,
        insert_message(
            "INSERT INTO messages (conversation_id, channel, account, direction, author,
                     kind, text, attachments, findings, sender_id, external_id, reply_to, meta,
                     created_at, entities, search_text)
                 SELECT c.id, $2, $3, 'in', 'contact', 'text', $4, $5, $6, $7, $8, $9, $10, $11,
                     $12, $13
                 FROM conversations c
                 WHERE c.channel = $2 AND c.account = $3 AND c.thread_key = $1
                   AND c.status <> 'resolved'
                 ON CONFLICT (channel, account, external_id) WHERE direction = 'in' DO NOTHING
                 RETURNING id, conversation_id",
            inbound.thread_key.as_str(),
            inbound,
            filtered,
            now,
        ),
        facts(),
    )
    .await?;
    let (conversation_id, message_id, new_conversation, facts) = match into_open {
        Some((row, facts)) => (
            ConversationId(row.get("conversation_id")?),
            MessageId(row.get("id")?),
            false,
            facts,
        ),
        // Nothing inserted: a duplicate, or the first message of its thread.
        None => {
            if already_stored(q, account, &inbound.external_id).await? {
                return Ok(None);
            }
            let recent = recently_resolved(q, inbound, reopen_since).await?;
            let new_conversation = recent.is_none();
            let conversation_id = match recent {
                // The conversation engine decides: a rating, or reopen it.
                Some(id) => id,
                None => {
                    let contact_id = find_or_create_contact(q, inbound, now).await?;
                    let id = create_conversation(q, inbound, contact_id, now).await?;
                    events.push(
                        events::append(
                            q,
                            EventKind::ConversationCreated,
                            Some(id),
                            None,
                            serde_json::json!({ "channel": account.kind() }),
                            now,
                        )
                        .await?,
                    );
                    id
                }
            };
            let inserted = insert_with_facts(
                q,
                insert_message(
                    "INSERT INTO messages (conversation_id, channel, account, direction, author,
                         kind, text, attachments, findings, sender_id, external_id, reply_to,
                         meta, created_at, entities, search_text)
                     VALUES ($1, $2, $3, 'in', 'contact', 'text', $4, $5, $6, $7, $8, $9, $10, $11,
                         $12, $13)
                     ON CONFLICT (channel, account, external_id) WHERE direction = 'in' DO NOTHING
                     RETURNING id",
                    conversation_id.0,
                    inbound,
                    filtered,
                    now,
                ),
                facts(),
            )
            .await?;
            // Another instance stored it a moment ago.
            let Some((row, facts)) = inserted else {
                return Ok(None);
            };
            let message_id = MessageId(row.get("id")?);
            (conversation_id, message_id, new_conversation, facts)
        }
    };
    let created = events::NewEvent::new(
        EventKind::MessageCreated,
        Some(conversation_id),
        Some(message_id),
        serde_json::json!({ "direction": "in", "findings": filtered.findings.len() }),
        now,
    );
    Ok(Some(Stored {
        outcome: IngestOutcome::Stored {
            conversation_id,
            message_id,
            new_conversation,
            findings: filtered.findings.len(),
        },
        events,
        facts,
        closing: Some(Closing {
            created,
            touch: touch_conversation(conversation_id, now),
            cursor: cursor.map(|cursor| save_cursor(account, cursor, now)),
        }),
    }))
}

/// Runs a message's INSERT and, when given, the [`turn_facts`] read behind it in the
/// same round trip: the INSERT's row and the facts' row, or `None` when the INSERT
/// inserted nothing.
async fn insert_with_facts(
    q: &mut Exec<'_>,
    insert: Query,
    facts: Option<Query>,
) -> Result<Option<(Row, Option<Row>)>, StoreError> {
    let Some(facts) = facts else {
        return Ok(q.fetch_optional(insert).await?.map(|row| (row, None)));
    };
    let mut rows = q.batch(vec![insert, facts]).await?.into_iter();
    Ok(match (rows.next(), rows.next()) {
        // The INSERT returned its row, so the read found the message.
        (Some(inserted), Some(facts)) => Some((inserted, Some(facts))),
        // At most the read's row, of the copy stored before.
        _ => None,
    })
}

/// A new inbound message, as [`ingest_new`] stores it.
struct NewMessage<'a> {
    inbound: &'a Inbound,
    filtered: &'a Filtered,
    cursor: Option<&'a str>,
    now: Timestamp,
    reopen_since: Timestamp,
}

/// A message stored by the ingest, with the events to publish after the commit, the
/// row of [`turn_facts`] when asked for, and what is left to write.
struct Stored {
    outcome: IngestOutcome,
    events: Vec<Event>,
    facts: Option<Row>,
    closing: Option<Closing>,
}

/// A new message's last statements, for one batch with whatever goes with them: its
/// MessageCreated event (the batch's first row), the conversation's touch, the cursor.
struct Closing {
    created: events::NewEvent,
    touch: Query,
    cursor: Option<Query>,
}

/// The customer's text before message `before` in conversation `conversation` (SQL
/// expressions), newest first: the bot's "the same thing again" check.
fn contact_text_before(conversation: &str, before: &str) -> String {
    format!(
        "SELECT earlier.text FROM messages earlier
         WHERE earlier.conversation_id = {conversation} AND earlier.id < {before}
           AND earlier.author = 'contact'
         ORDER BY earlier.id DESC LIMIT 1"
    )
}

/// The condition on `verifications` of those in conversation `conversation` (an SQL
/// expression) that wait for the customer's answer.
pub(crate) fn verification_waiting(conversation: &str) -> String {
    format!("conversation_id = {conversation} AND state IN ('awaiting_email', 'awaiting_code')")
}

/// What a [`Responder`] decides from ([`TurnFacts`]), read in one statement for the
/// inbound message with external id `external_id` on `account`: the conversation,
/// `previous_text` and `verifying`.
fn turn_facts(account: &ChannelAccount, external_id: &str) -> Query {
    Query::assembled(format!(
        "SELECT c.*,
             ({}) AS previous_text,
             CAST(CASE WHEN EXISTS (SELECT 1 FROM verifications WHERE {})
                       THEN 1 ELSE 0 END AS BIGINT) AS verifying
         FROM messages m JOIN ({}) c ON c.id = m.conversation_id
         WHERE m.channel = $1 AND m.account = $2 AND m.external_id = $3
           AND m.direction = 'in'",
        contact_text_before("m.conversation_id", "m.id"),
        verification_waiting("m.conversation_id"),
        conversation_select!()
    ))
    .bind(account.kind().as_str())
    .bind(account.name())
    .bind(external_id)
}

/// The first topic the bot recognised in a conversation, for the reports.
pub(crate) fn note_intent(id: ConversationId, intent: &str) -> Query {
    Query::new("UPDATE conversations SET intent = $2 WHERE id = $1 AND intent IS NULL")
        .bind(id.0)
        .bind(intent)
}

/// Notes that the engine has a turn to take on a stored message (see
/// [`Store::take_turns`]); the pipeline takes it at once and deletes the note.
fn note_turn(conversation: ConversationId, message: MessageId, now: Timestamp) -> Query {
    Query::new(
        "INSERT INTO engine_turns (message_id, conversation_id, due_at) VALUES ($1, $2, $3)
         ON CONFLICT (message_id) DO UPDATE SET due_at = excluded.due_at",
    )
    .bind(message.0)
    .bind(conversation.0)
    .bind(now.as_micros())
}

/// An inbound message INSERT: `$1` is the conversation (or, for the INSERT ... SELECT
/// form, the thread key that finds it); `$2`..`$12` are the message's columns.
fn insert_message(
    sql: &'static str,
    first: impl Into<crate::db::Value>,
    inbound: &Inbound,
    filtered: &Filtered,
    now: Timestamp,
) -> Query {
    Query::new(sql)
        .bind(first)
        .bind(inbound.account.kind().as_str())
        .bind(inbound.account.name())
        .bind(filtered.text.as_str())
        .bind(to_json(&inbound.attachments))
        .bind(to_json(&filtered.findings))
        .bind(inbound.sender.external_id.as_str())
        .bind(inbound.external_id.as_str())
        .bind(inbound.reply_to.as_deref())
        .bind(inbound.meta.to_string())
        .bind(now.as_micros())
        .bind(to_json(&filtered.entities))
        .bind(crate::search::terms(&filtered.text))
}

async fn already_stored(
    q: &mut Exec<'_>,
    account: &ChannelAccount,
    external_id: &str,
) -> Result<bool, StoreError> {
    let row = q
        .fetch_optional(
            Query::new(
                "SELECT id FROM messages
                 WHERE channel = $1 AND account = $2 AND external_id = $3 AND direction = 'in'",
            )
            .bind(account.kind().as_str())
            .bind(account.name())
            .bind(external_id),
        )
        .await?;
    Ok(row.is_some())
}

/// A new version of an earlier inbound message: the old text goes to the edit history.
/// An edit of a message we never saw is stored as a new message.
async fn ingest_edit(
    q: &mut Exec<'_>,
    inbound: &Inbound,
    original: &str,
    filtered: &Filtered,
    cursor: Option<&str>,
    now: Timestamp,
) -> Result<Option<Stored>, StoreError> {
    let account = &inbound.account;
    let found = q
        .fetch_optional(
            Query::new(
                "SELECT id, conversation_id, text FROM messages
                 WHERE channel = $1 AND account = $2 AND external_id = $3 AND direction = 'in'",
            )
            .bind(account.kind().as_str())
            .bind(account.name())
            .bind(original),
        )
        .await?;
    let Some(row) = found else {
        // Never a reopen: an edit is not a new message.
        let new = NewMessage {
            inbound,
            filtered,
            cursor,
            now,
            reopen_since: now,
        };
        return ingest_new(q, new, false).await;
    };
    let message_id = MessageId(row.get("id")?);
    let conversation_id = ConversationId(row.get("conversation_id")?);
    let old_text: String = row.get("text")?;
    let recorded = q
        .execute(
            Query::new(
                "INSERT INTO message_edits (message_id, external_id, text, replaced_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (message_id, external_id) DO NOTHING",
            )
            .bind(message_id.0)
            .bind(inbound.external_id.as_str())
            .bind(old_text)
            .bind(now.as_micros()),
        )
        .await?;
    if recorded == 0 {
        return Ok(None);
    }
    q.execute(
        Query::new(
            "UPDATE messages SET text = $2, findings = $3, edited_at = $4, entities = $5,
                 search_text = $6
             WHERE id = $1",
        )
        .bind(message_id.0)
        .bind(filtered.text.as_str())
        .bind(to_json(&filtered.findings))
        .bind(now.as_micros())
        .bind(to_json(&filtered.entities))
        .bind(crate::search::terms(&filtered.text)),
    )
    .await?;
    let event = events::append(
        q,
        EventKind::MessageEdited,
        Some(conversation_id),
        Some(message_id),
        serde_json::json!({ "findings": filtered.findings.len() }),
        now,
    )
    .await?;
    if inbound.wants_turn(filtered.findings.len()) {
        q.execute(note_turn(conversation_id, message_id, now))
            .await?;
    }
    if let Some(cursor) = cursor {
        q.execute(save_cursor(account, cursor, now)).await?;
    }
    Ok(Some(Stored {
        outcome: IngestOutcome::Stored {
            conversation_id,
            message_id,
            new_conversation: false,
            findings: filtered.findings.len(),
        },
        events: vec![event],
        facts: None,
        closing: None,
    }))
}

/// The thread's conversation resolved at or after `since`, if any.
async fn recently_resolved(
    q: &mut Exec<'_>,
    inbound: &Inbound,
    since: Timestamp,
) -> Result<Option<ConversationId>, StoreError> {
    let row = q
        .fetch_optional(
            Query::new(
                "SELECT id FROM conversations
                 WHERE channel = $1 AND account = $2 AND thread_key = $3
                   AND status = 'resolved' AND resolved_at >= $4
                 ORDER BY resolved_at DESC, id DESC LIMIT 1",
            )
            .bind(inbound.account.kind().as_str())
            .bind(inbound.account.name())
            .bind(inbound.thread_key.as_str())
            .bind(since.as_micros()),
        )
        .await?;
    row.map(|r| Ok(ConversationId(r.get("id")?))).transpose()
}

/// `meta` with every string that could hold a secret passed through the inbound
/// filter; `None` when the filter changed nothing (the common case: no copy).
fn redact_strings(
    meta: &serde_json::Value,
    filter: &dyn frontdesk_core::TextFilter,
) -> Option<serde_json::Value> {
    use serde_json::Value;
    // Ids, numbers and short words cannot hold a recovery phrase or a key.
    const SHORTEST_SECRET: usize = 16;
    match meta {
        Value::String(text) if text.len() >= SHORTEST_SECRET => {
            let filtered = filter.filter(text);
            (!filtered.findings.is_empty()).then_some(Value::String(filtered.text))
        }
        Value::Array(items) => {
            let changed: Vec<Option<Value>> =
                items.iter().map(|v| redact_strings(v, filter)).collect();
            changed.iter().any(Option::is_some).then(|| {
                Value::Array(
                    items
                        .iter()
                        .zip(changed)
                        .map(|(old, new)| new.unwrap_or_else(|| old.clone()))
                        .collect(),
                )
            })
        }
        Value::Object(map) => {
            let changed: Vec<(String, Value)> = map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), redact_strings(v, filter)?)))
                .collect();
            (!changed.is_empty()).then(|| {
                let mut out = map.clone();
                out.extend(changed);
                Value::Object(out)
            })
        }
        _ => None,
    }
}

async fn find_or_create_contact(
    q: &mut Exec<'_>,
    inbound: &Inbound,
    now: Timestamp,
) -> Result<ContactId, StoreError> {
    let channel = inbound.account.kind().as_str();
    let sender = &inbound.sender;
    let found = q
        .fetch_optional(
            Query::new(
                "SELECT contact_id, display_name FROM contact_identities
                 WHERE channel = $1 AND external_id = $2",
            )
            .bind(channel)
            .bind(sender.external_id.as_str()),
        )
        .await?;
    if let Some(row) = found {
        let contact_id = ContactId(row.get("contact_id")?);
        let known: Option<String> = row.get("display_name")?;
        if sender.display_name.is_some() && sender.display_name != known {
            q.execute(
                Query::new(
                    "UPDATE contact_identities SET display_name = $3
                     WHERE channel = $1 AND external_id = $2",
                )
                .bind(channel)
                .bind(sender.external_id.as_str())
                .bind(sender.display_name.as_deref()),
            )
            .await?;
        }
        return Ok(contact_id);
    }
    let row = q
        .fetch_one(
            Query::new(
                "INSERT INTO contacts (name, language, created_at, updated_at)
                 VALUES ($1, $2, $3, $3) RETURNING id",
            )
            .bind(sender.display_name.as_deref())
            .bind(sender.language.as_deref())
            .bind(now.as_micros()),
        )
        .await?;
    let contact_id = ContactId(row.get("id")?);
    q.execute(
        Query::new(
            "INSERT INTO contact_identities (contact_id, channel, external_id, display_name, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(contact_id.0)
        .bind(channel)
        .bind(sender.external_id.as_str())
        .bind(sender.display_name.as_deref())
        .bind(now.as_micros()),
    )
    .await?;
    Ok(contact_id)
}

async fn create_conversation(
    q: &mut Exec<'_>,
    inbound: &Inbound,
    contact_id: ContactId,
    now: Timestamp,
) -> Result<ConversationId, StoreError> {
    let account = &inbound.account;
    let row = q
        .fetch_one(
            Query::new(
                "INSERT INTO conversations (channel, account, contact_id, thread_key, status,
                     priority, created_at, updated_at, last_message_at)
                 VALUES ($1, $2, $3, $4, 'bot', 'normal', $5, $5, $5) RETURNING id",
            )
            .bind(account.kind().as_str())
            .bind(account.name())
            .bind(contact_id.0)
            .bind(inbound.thread_key.as_str())
            .bind(now.as_micros()),
        )
        .await?;
    Ok(ConversationId(row.get("id")?))
}

/// The UPDATE of [`Store::update_conversation`]: `labels` are the change's, checked.
/// Reopening (resolved -> anything else) starts a new resolution target: the engine
/// passes the new due time, and the old breach no longer counts.
pub(crate) fn change_conversation(
    id: ConversationId,
    change: &ConversationChange,
    labels: Option<Vec<String>>,
    now: Timestamp,
) -> Query {
    Query::new(
        "UPDATE conversations SET
             resolution_breached = CASE
                 WHEN status = 'resolved' AND $2 IS NOT NULL AND $2 <> 'resolved'
                 THEN 0 ELSE resolution_breached END,
             resolution_due = CASE
                 WHEN status = 'resolved' AND $2 IS NOT NULL AND $2 <> 'resolved'
                 THEN $13 ELSE COALESCE($13, resolution_due) END,
             reopened = reopened
                 + CASE WHEN status = 'resolved' AND $2 IS NOT NULL AND $2 <> 'resolved'
                        THEN 1 ELSE 0 END,
             status_since = CASE WHEN $2 IS NOT NULL AND $2 <> status THEN $5
                                 ELSE status_since END,
             queued_at = CASE WHEN $2 = 'open' THEN COALESCE(queued_at, $5)
                              ELSE queued_at END,
             resolved_at = CASE WHEN $2 = 'resolved' THEN $5
                                WHEN $2 IS NOT NULL THEN NULL
                                ELSE resolved_at END,
             snoozed_until = CASE WHEN $2 = 'snoozed' THEN $9
                                  WHEN $2 IS NOT NULL THEN NULL
                                  ELSE snoozed_until END,
             status = COALESCE($2, status),
             priority = COALESCE($3, priority),
             team = COALESCE($4, team),
             bot_misses = COALESCE($6, bot_misses),
             assignee_id = CASE WHEN $7 = 1 THEN $8 ELSE assignee_id END,
             tier = COALESCE($10, tier),
             language = COALESCE($11, language),
             first_response_due = COALESCE($12, first_response_due),
             labels = COALESCE($15, labels),
             updated_at = $5
         WHERE id = $1 AND ($14 IS NULL OR status = $14)",
    )
    .bind(id.0)
    .bind(change.status.map(Status::as_str))
    .bind(change.priority.map(Priority::as_str))
    .bind(change.team.as_deref())
    .bind(now.as_micros())
    .bind(change.bot_misses.map(i64::from))
    .bind(i64::from(change.assignee.is_some()))
    .bind(change.assignee.flatten().map(|a| a.0))
    .bind(change.snoozed_until.map(Timestamp::as_micros))
    .bind(change.tier.map(i64::from))
    .bind(change.language.as_deref())
    .bind(change.first_response_due.map(Timestamp::as_micros))
    .bind(change.resolution_due.map(Timestamp::as_micros))
    .bind(change.expect_status.map(Status::as_str))
    .bind(labels.map(|l| to_json(&l)))
}

/// The event that records a change of a conversation.
pub(crate) fn changed_event(
    id: ConversationId,
    change: &ConversationChange,
    now: Timestamp,
) -> events::NewEvent {
    events::NewEvent::new(
        EventKind::ConversationUpdated,
        Some(id),
        None,
        serde_json::json!({
            "status": change.status,
            "priority": change.priority,
            "team": change.team,
            "assignee": change.assignee,
            "tier": change.tier,
            "snoozed_until": change.snoozed_until,
            "labels": change.labels,
            "reason": change.reason,
        }),
        now,
    )
}

/// Marks a conversation active now.
pub(crate) fn touch_conversation(id: ConversationId, now: Timestamp) -> Query {
    Query::new("UPDATE conversations SET last_message_at = $2, updated_at = $2 WHERE id = $1")
        .bind(id.0)
        .bind(now.as_micros())
}

/// Stores a channel account's cursor.
fn save_cursor(account: &ChannelAccount, cursor: &str, now: Timestamp) -> Query {
    Query::new(
        "INSERT INTO cursors (channel, account, value, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (channel, account) DO UPDATE SET value = $3, updated_at = $4",
    )
    .bind(account.kind().as_str())
    .bind(account.name())
    .bind(cursor)
    .bind(now.as_micros())
}

/// Labels as stored: trimmed, without repeats, sorted; each 1 to 32 characters with
/// no quote, backslash or control character; at most 20.
fn checked_labels(labels: &[String]) -> Result<Vec<String>, StoreError> {
    // Lower case, so that `VIP` and `vip` are one label on both backends.
    let mut out: Vec<String> = labels
        .iter()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .collect();
    out.sort();
    out.dedup();
    let bad = out.iter().find(|l| {
        l.chars().count() > 32
            || l.chars()
                .any(|c| c.is_control() || c == '"' || c == '\\' || c == ',')
    });
    if let Some(bad) = bad {
        return Err(StoreError::Invalid(format!(
            "the label {bad:?} is too long or has a quote, comma, backslash or control character"
        )));
    }
    if out.len() > 20 {
        return Err(StoreError::Invalid("at most 20 labels".into()));
    }
    Ok(out)
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

fn from_json<T: DeserializeOwned>(column: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        column,
        reason: e.to_string(),
    })
}

pub(crate) fn word<T>(
    column: &'static str,
    parsed: Result<T, frontdesk_core::UnknownWord>,
) -> Result<T, StoreError> {
    parsed.map_err(|e| StoreError::Corrupt {
        column,
        reason: e.to_string(),
    })
}

pub(crate) fn account_of(row: &Row) -> Result<ChannelAccount, StoreError> {
    let channel: String = row.get("channel")?;
    let name: String = row.get("account")?;
    let kind = word("channel", ChannelKind::parse(&channel))?;
    ChannelAccount::new(kind, &name).map_err(|e| StoreError::Corrupt {
        column: "account",
        reason: e.to_string(),
    })
}

/// The quick replies kept in an outbound message's `meta`.
fn quick_replies_of(meta: &str) -> Result<Vec<String>, StoreError> {
    let meta: serde_json::Value = from_json("messages.meta", meta)?;
    match meta.get("quick_replies") {
        Some(q) => serde_json::from_value(q.clone()).map_err(|e| StoreError::Corrupt {
            column: "messages.meta",
            reason: e.to_string(),
        }),
        None => Ok(Vec::new()),
    }
}

pub(crate) fn micros(row: &Row, column: &str) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_micros(row.get(column)?))
}

pub(crate) fn opt_micros(row: &Row, column: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(row.get::<Option<i64>>(column)?.map(Timestamp::from_micros))
}

/// The columns [`conversation_from_row`] reads, joined with the contact's name.
macro_rules! conversation_select {
    () => {
        "SELECT c.id, c.channel, c.account, c.contact_id, k.name AS contact_name, c.thread_key,
                c.status, c.priority, c.assignee_id, c.team, c.labels, c.created_at,
                c.updated_at, c.last_message_at, c.snoozed_until, c.resolved_at, c.bot_misses,
                c.tier, c.queued_at, c.status_since, c.first_response_at, c.first_response_due,
                c.resolution_due, c.first_response_breached, c.resolution_breached, c.reopened,
                c.language
         FROM conversations c JOIN contacts k ON k.id = c.contact_id"
    };
}

pub(crate) use conversation_select;

pub(crate) fn conversation_from_row(row: &Row) -> Result<Conversation, StoreError> {
    let status: String = row.get("status")?;
    let priority: String = row.get("priority")?;
    let labels: String = row.get("labels")?;
    Ok(Conversation {
        id: ConversationId(row.get("id")?),
        account: account_of(row)?,
        contact_id: ContactId(row.get("contact_id")?),
        contact_name: row.get("contact_name")?,
        thread_key: row.get("thread_key")?,
        status: word("conversations.status", Status::parse(&status))?,
        priority: word("conversations.priority", Priority::parse(&priority))?,
        assignee: row.get::<Option<i64>>("assignee_id")?.map(AgentId),
        team: row.get("team")?,
        labels: from_json("conversations.labels", &labels)?,
        created_at: micros(row, "created_at")?,
        updated_at: micros(row, "updated_at")?,
        last_message_at: micros(row, "last_message_at")?,
        snoozed_until: opt_micros(row, "snoozed_until")?,
        resolved_at: opt_micros(row, "resolved_at")?,
        bot_misses: u32::try_from(row.get::<i64>("bot_misses")?).unwrap_or(u32::MAX),
        tier: u8::try_from(row.get::<i64>("tier")?).unwrap_or(u8::MAX),
        queued_at: opt_micros(row, "queued_at")?,
        status_since: match opt_micros(row, "status_since")? {
            Some(t) => t,
            None => micros(row, "created_at")?,
        },
        first_response_at: opt_micros(row, "first_response_at")?,
        first_response_due: opt_micros(row, "first_response_due")?,
        resolution_due: opt_micros(row, "resolution_due")?,
        first_response_breached: row.get::<i64>("first_response_breached")? != 0,
        resolution_breached: row.get::<i64>("resolution_breached")? != 0,
        reopened: u32::try_from(row.get::<i64>("reopened")?).unwrap_or(u32::MAX),
        language: row.get("language")?,
    })
}

/// The columns [`message_from_row`] reads, with the outbox state of outbound messages.
macro_rules! message_select {
    () => {
        "SELECT m.id, m.conversation_id, m.direction, m.author, m.agent_id, m.kind, m.text,
                m.attachments, m.findings, m.entities, m.external_id, m.created_at, m.edited_at,
                m.meta, o.status AS delivery_status, o.last_error AS delivery_error
         FROM messages m LEFT JOIN outbox o ON o.message_id = m.id"
    };
}

pub(crate) use message_select;

pub(crate) fn message_from_row(row: &Row) -> Result<Message, StoreError> {
    let direction: String = row.get("direction")?;
    let author: String = row.get("author")?;
    let kind: String = row.get("kind")?;
    let attachments: String = row.get("attachments")?;
    let findings: String = row.get("findings")?;
    let delivery = match row.get::<Option<String>>("delivery_status")?.as_deref() {
        None => None,
        Some("queued") => Some(Delivery::Queued),
        Some("sent") => Some(Delivery::Sent),
        Some(_) => Some(Delivery::Failed {
            reason: row
                .get::<Option<String>>("delivery_error")?
                .unwrap_or_default(),
        }),
    };
    Ok(Message {
        id: MessageId(row.get("id")?),
        conversation_id: ConversationId(row.get("conversation_id")?),
        direction: word("messages.direction", Direction::parse(&direction))?,
        author: word("messages.author", Author::parse(&author))?,
        agent_id: row.get::<Option<i64>>("agent_id")?.map(AgentId),
        kind: word("messages.kind", MessageKind::parse(&kind))?,
        text: row.get("text")?,
        attachments: from_json::<Vec<Attachment>>("messages.attachments", &attachments)?,
        findings: from_json::<Vec<Finding>>("messages.findings", &findings)?,
        entities: from_json("messages.entities", &row.get::<String>("entities")?)?,
        external_id: row.get("external_id")?,
        delivery,
        edits: Vec::new(),
        quick_replies: match direction.as_str() {
            "out" => quick_replies_of(&row.get::<String>("meta")?)?,
            _ => Vec::new(),
        },
        created_at: micros(row, "created_at")?,
    })
}

/// The columns [`agent_from_row`] reads.
macro_rules! agent_select {
    () => {
        "SELECT a.id, a.email, a.name, a.role, a.password_hash, a.created_at, a.status,
                a.status_since, a.capacity, a.tier, a.last_assigned_at, a.locale
         FROM agents a"
    };
}
pub(crate) use agent_select;

/// An agent without their teams (see [`load_agent_teams`]).
pub(crate) fn agent_from_row(row: &Row) -> Result<Agent, StoreError> {
    let role: String = row.get("role")?;
    let status: String = row.get("status")?;
    let created_at = micros(row, "created_at")?;
    Ok(Agent {
        id: AgentId(row.get("id")?),
        email: row.get("email")?,
        name: row.get("name")?,
        role: word("agents.role", Role::parse(&role))?,
        created_at,
        status: word("agents.status", AgentStatus::parse(&status))?,
        status_since: opt_micros(row, "status_since")?.unwrap_or(created_at),
        capacity: u32::try_from(row.get::<i64>("capacity")?).unwrap_or(0),
        tier: u8::try_from(row.get::<i64>("tier")?).unwrap_or(u8::MAX),
        teams: Vec::new(),
        last_assigned_at: opt_micros(row, "last_assigned_at")?,
        locale: row.get("locale")?,
    })
}

/// One agent with their teams, if they exist (inside or outside a transaction).
pub(crate) async fn find_agent(q: &mut Exec<'_>, id: AgentId) -> Result<Option<Agent>, StoreError> {
    let Some(row) = q
        .fetch_optional(Query::new(concat!(agent_select!(), " WHERE a.id = $1")).bind(id.0))
        .await?
    else {
        return Ok(None);
    };
    let mut agent = [agent_from_row(&row)?];
    load_agent_teams(q, &mut agent).await?;
    let [agent] = agent;
    Ok(Some(agent))
}

/// Fills in the teams of these agents.
pub(crate) async fn load_agent_teams(
    q: &mut Exec<'_>,
    agents: &mut [Agent],
) -> Result<(), StoreError> {
    let rows = q
        .fetch_all(Query::new(
            "SELECT agent_id, team FROM agent_teams ORDER BY agent_id, team",
        ))
        .await?;
    for row in rows {
        let id = AgentId(row.get("agent_id")?);
        let team: String = row.get("team")?;
        if let Some(agent) = agents.iter_mut().find(|a| a.id == id) {
            agent.teams.push(team);
        }
    }
    Ok(())
}

/// Reads one conversation by id (inside or outside a transaction).
pub(crate) async fn load_conversation(
    q: &mut Exec<'_>,
    id: ConversationId,
) -> Result<Option<Conversation>, StoreError> {
    let row = q
        .fetch_optional(Query::new(concat!(conversation_select!(), " WHERE c.id = $1")).bind(id.0))
        .await?;
    row.as_ref().map(conversation_from_row).transpose()
}

/// Reads one message by id (inside or outside a transaction).
pub(crate) async fn load_message(q: &mut Exec<'_>, id: MessageId) -> Result<Message, StoreError> {
    let row = q
        .fetch_optional(Query::new(concat!(message_select!(), " WHERE m.id = $1")).bind(id.0))
        .await?
        .ok_or(StoreError::NotFound("message", id.0))?;
    message_from_row(&row)
}

/// Records a lease-holder's outcome; `None` when the lease was lost. The statement
/// must return the row's `message_id` and `conversation_id`.
async fn finish_lease(
    q: &mut Exec<'_>,
    statement: Query,
) -> Result<Option<(MessageId, ConversationId)>, StoreError> {
    let row = q.fetch_optional(statement).await?;
    row.map(|r| {
        Ok((
            MessageId(r.get("message_id")?),
            ConversationId(r.get("conversation_id")?),
        ))
    })
    .transpose()
}

#[async_trait::async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        match self.inner.pool {
            Pool::Sqlite { .. } => Backend::Sqlite,
            Pool::Pg(_) => Backend::Postgres,
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = crate::migrate::migrator(self.backend());
        match &self.inner.pool {
            Pool::Sqlite { writer, .. } => migrator.run(&writer.pool).await?,
            Pool::Pg(p) => migrator.run(p).await?,
        }
        let indexed = self.write_search_terms().await?;
        if indexed > 0 {
            tracing::info!(messages = indexed, "wrote search terms of older messages");
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.conn()
            .await?
            .q()
            .fetch_one(Query::new("SELECT 1 AS one"))
            .await?;
        Ok(())
    }

    async fn try_lead(&self, job: &str) -> Result<Option<Box<dyn crate::Leadership>>, StoreError> {
        Ok(match &self.inner.pool {
            Pool::Sqlite { .. } => Some(Box::new(crate::leader::Sole)),
            Pool::Pg(pool) => {
                // The lock lives and dies with the session of the connection it is on.
                crate::leader::AdvisoryLock::try_take(pool.acquire().await?, job)
                    .await?
                    .map(|lock| Box::new(lock) as Box<dyn crate::Leadership>)
            }
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(account = %inbound.account))]
    async fn ingest(
        &self,
        inbound: &Inbound,
        cursor: Option<&str>,
    ) -> Result<IngestOutcome, StoreError> {
        Ok(self.ingest_with(inbound, cursor, None).await?.outcome)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(account = %inbound.account))]
    async fn ingest_answering(
        &self,
        inbound: &Inbound,
        cursor: Option<&str>,
        responder: Arc<dyn Responder>,
    ) -> Result<Ingested, StoreError> {
        self.ingest_with(inbound, cursor, Some(responder)).await
    }

    async fn cursor(&self, account: &ChannelAccount) -> Result<Option<String>, StoreError> {
        let row = self
            .conn()
            .await?
            .q()
            .fetch_optional(
                Query::new("SELECT value FROM cursors WHERE channel = $1 AND account = $2")
                    .bind(account.kind().as_str())
                    .bind(account.name()),
            )
            .await?;
        row.map(|r| r.get("value")).transpose()
    }

    async fn put_cursor(&self, account: &ChannelAccount, cursor: &str) -> Result<(), StoreError> {
        self.write(save_cursor(account, cursor, self.now())).await?;
        Ok(())
    }

    async fn thread_of_messages(
        &self,
        account: &ChannelAccount,
        external_ids: &[String],
    ) -> Result<Option<String>, StoreError> {
        let ids = &external_ids[..external_ids.len().min(100)];
        if ids.is_empty() {
            return Ok(None);
        }
        let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT c.thread_key FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.channel = $1 AND m.account = $2 AND m.direction = 'in'
               AND m.external_id IN ({})
             ORDER BY m.id DESC LIMIT 1",
            placeholders.join(", ")
        );
        let mut query = Query::assembled(sql)
            .bind(account.kind().as_str())
            .bind(account.name());
        for id in ids {
            query = query.bind(id.as_str());
        }
        let row = self.read_optional(query).await?;
        row.map(|r| r.get("thread_key")).transpose()
    }

    async fn message_meta(
        &self,
        conversation: ConversationId,
        message: MessageId,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let row = self
            .read_optional(
                Query::new("SELECT meta FROM messages WHERE id = $1 AND conversation_id = $2")
                    .bind(message.0)
                    .bind(conversation.0),
            )
            .await?;
        match row {
            Some(r) => {
                let meta: Option<String> = r.get("meta")?;
                meta.map(|m| from_json("messages.meta", &m)).transpose()
            }
            None => Ok(None),
        }
    }

    async fn thread_of_conversation(
        &self,
        account: &ChannelAccount,
        id: ConversationId,
    ) -> Result<Option<String>, StoreError> {
        let row = self
            .read_optional(
                Query::new(
                    "SELECT thread_key FROM conversations
                     WHERE id = $1 AND channel = $2 AND account = $3",
                )
                .bind(id.0)
                .bind(account.kind().as_str())
                .bind(account.name()),
            )
            .await?;
        row.map(|r| r.get("thread_key")).transpose()
    }

    /// One transaction of few round trips (each crosses the network to PostgreSQL): the
    /// message, its conversation's channel read in the same INSERT ... SELECT; the
    /// outbox row when it goes to the customer; one batch of everything else.
    #[tracing::instrument(level = "debug", skip_all, fields(conversation_id = %reply.conversation_id))]
    async fn reply(&self, reply: NewReply) -> Result<Replied, StoreError> {
        let now = self.now();
        let insert = self.reply_insert(&reply, now)?;
        self.on_writer(move |store| async move {
            let mut tx = store.begin().await?;
            let mut q = tx.q();
            let (replied, written) = store.write_reply(&mut q, &reply, insert, now).await?;
            store.announce(&mut q, &written.events).await?;
            tx.commit().await?;
            store.written(written);
            Ok(replied)
        })
        .await
    }

    async fn answer(&self, id: ConversationId, answer: &Answer) -> Result<(), StoreError> {
        let now = self.now();
        let inserts = self.answer_inserts(answer, now)?;
        // A conversation's channel never changes: read outside the transaction.
        let row = self
            .read_optional(
                Query::new("SELECT channel, account FROM conversations WHERE id = $1").bind(id.0),
            )
            .await?
            .ok_or(StoreError::NotFound("conversation", id.0))?;
        let account = account_of(&row)?;
        // The turn it takes may be noted.
        let (statements, answer) = self.answer_batch(id, &account, answer, inserts, true, now);
        self.on_writer(move |store| async move {
            let mut tx = store.begin().await?;
            let mut q = tx.q();
            let rows = q.batch(statements).await?;
            let written = answer.read(&mut rows.iter())?;
            store.announce(&mut q, &written.events).await?;
            tx.commit().await?;
            store.written(written);
            Ok(())
        })
        .await
    }

    async fn update_conversation(
        &self,
        id: ConversationId,
        change: &ConversationChange,
    ) -> Result<Conversation, StoreError> {
        if change.status == Some(Status::Snoozed) && change.snoozed_until.is_none() {
            return Err(StoreError::Invalid("snoozed needs an until time".into()));
        }
        let labels = change.labels.as_deref().map(checked_labels).transpose()?;
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let updated = q
            .execute(change_conversation(id, change, labels, now))
            .await?;
        if updated == 0 {
            return match (change.expect_status, load_conversation(&mut q, id).await?) {
                (Some(expected), Some(found)) => Err(StoreError::Changed(format!(
                    "conversation {id} is {} now, not {expected}",
                    found.status
                ))),
                _ => Err(StoreError::NotFound("conversation", id.0)),
            };
        }
        let event = changed_event(id, change, now);
        let row = q.fetch_one(event.insert()).await?;
        let events = vec![event.stored(&row)?];
        self.announce(&mut q, &events).await?;
        let conversation = load_conversation(&mut q, id)
            .await?
            .ok_or(StoreError::NotFound("conversation", id.0))?;
        tx.commit().await?;
        self.publish(events);
        Ok(conversation)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(account = %req.account, worker = %req.worker))]
    async fn claim_outbox(&self, req: &ClaimRequest) -> Result<Vec<Outbound>, StoreError> {
        // A conversation's messages go out in order: a row waits while an earlier one
        // of its conversation is still queued (in flight, or waiting for a retry).
        // PostgreSQL: rows another worker is claiming right now are skipped, not waited
        // for. SQLite: the IMMEDIATE transaction already makes claims one at a time.
        let claim = match self.backend() {
            Backend::Sqlite => {
                "UPDATE outbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1,
                     updated_at = $3
                 WHERE id IN (SELECT o.id FROM outbox o
                     WHERE o.status = 'queued' AND o.channel = $4 AND o.account = $5
                       AND o.due_at <= $3 AND (o.lease_until IS NULL OR o.lease_until <= $3)
                       AND NOT EXISTS (SELECT 1 FROM outbox e
                           WHERE e.conversation_id = o.conversation_id AND e.status = 'queued'
                             AND e.id < o.id)
                     ORDER BY o.due_at, o.id LIMIT CAST($6 AS BIGINT))
                 RETURNING id"
            }
            Backend::Postgres => {
                "UPDATE outbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1,
                     updated_at = $3
                 WHERE id IN (SELECT o.id FROM outbox o
                     WHERE o.status = 'queued' AND o.channel = $4 AND o.account = $5
                       AND o.due_at <= $3 AND (o.lease_until IS NULL OR o.lease_until <= $3)
                       AND NOT EXISTS (SELECT 1 FROM outbox e
                           WHERE e.conversation_id = o.conversation_id AND e.status = 'queued'
                             AND e.id < o.id)
                     ORDER BY o.due_at, o.id LIMIT CAST($6 AS BIGINT) FOR UPDATE SKIP LOCKED)
                 RETURNING id"
            }
        };
        // Most wake-ups find nothing due (a reply on any account wakes every worker, and
        // a worker that took rows looks again): a read says so without a write
        // transaction (on SQLite, without the single writer).
        let due = self
            .read_optional(
                Query::new(
                    "SELECT id FROM outbox
                     WHERE status = 'queued' AND channel = $1 AND account = $2 AND due_at <= $3
                       AND (lease_until IS NULL OR lease_until <= $3)
                     LIMIT 1",
                )
                .bind(req.account.kind().as_str())
                .bind(req.account.name())
                .bind(req.now.as_micros()),
            )
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let claimed = q
            .fetch_all(
                Query::new(claim)
                    .bind(req.worker.as_str())
                    .bind(req.now.plus(req.lease).as_micros())
                    .bind(req.now.as_micros())
                    .bind(req.account.kind().as_str())
                    .bind(req.account.name())
                    .bind(i64::from(req.limit.max(1))),
            )
            .await?;
        let mut out = Vec::with_capacity(claimed.len());
        for row in claimed {
            let id: i64 = row.get("id")?;
            let r = q
                .fetch_one(
                    Query::new(
                        "SELECT o.id, o.attempts, o.message_id, o.conversation_id, m.text,
                                m.attachments, m.meta AS own_meta, m.author, c.thread_key,
                                i.external_id AS reply_to,
                                i.sender_id, i.meta,
                                (SELECT ci.external_id FROM contact_identities ci
                                 WHERE ci.contact_id = c.contact_id AND ci.channel = c.channel
                                 ORDER BY ci.id LIMIT 1) AS identity
                         FROM outbox o
                         JOIN messages m ON m.id = o.message_id
                         JOIN conversations c ON c.id = o.conversation_id
                         LEFT JOIN messages i ON i.id = (
                             SELECT max(p.id) FROM messages p
                             WHERE p.conversation_id = o.conversation_id
                               AND p.direction = 'in' AND p.id < o.message_id)
                         WHERE o.id = $1",
                    )
                    .bind(id),
                )
                .await?;
            let attachments: String = r.get("attachments")?;
            let meta: Option<String> = r.get("meta")?;
            let recipient = match r.get::<Option<String>>("sender_id")? {
                Some(sender) => sender,
                None => r.get::<Option<String>>("identity")?.unwrap_or_default(),
            };
            let quick_replies = quick_replies_of(&r.get::<String>("own_meta")?)?;
            let author: String = r.get("author")?;
            out.push(Outbound {
                quick_replies,
                automatic: author == Author::Bot.as_str() || author == Author::System.as_str(),
                outbox_id: OutboxId(id),
                attempt: u32::try_from(r.get::<i64>("attempts")?).unwrap_or(u32::MAX),
                account: req.account.clone(),
                conversation_id: ConversationId(r.get("conversation_id")?),
                message_id: MessageId(r.get("message_id")?),
                recipient,
                thread_key: r.get("thread_key")?,
                reply_to: r.get("reply_to")?,
                text: r.get("text")?,
                attachments: from_json("messages.attachments", &attachments)?,
                meta: match meta {
                    Some(m) => from_json("messages.meta", &m)?,
                    None => serde_json::Value::Null,
                },
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn mark_sent(
        &self,
        id: OutboxId,
        worker: &str,
        external_id: Option<&str>,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError> {
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let Some((message_id, conversation_id)) = finish_lease(
            &mut q,
            Query::new(
                "UPDATE outbox SET status = 'sent', external_id = $3, sent_at = $4,
                     updated_at = $4, lease_owner = NULL, lease_until = NULL, last_error = NULL
                 WHERE id = $1 AND lease_owner = $2 AND status = 'queued'
                 RETURNING message_id, conversation_id",
            )
            .bind(id.0)
            .bind(worker)
            .bind(external_id)
            .bind(now.as_micros()),
        )
        .await?
        else {
            return Ok(LeaseReport::LeaseLost);
        };
        if let Some(external_id) = external_id {
            q.execute(
                Query::new("UPDATE messages SET external_id = $2 WHERE id = $1")
                    .bind(message_id.0)
                    .bind(external_id),
            )
            .await?;
        }
        let events = self
            .record(
                &mut q,
                EventKind::DeliverySent,
                Some(conversation_id),
                Some(message_id),
                serde_json::json!({ "outbox_id": id }),
                now,
            )
            .await?;
        tx.commit().await?;
        self.publish(events);
        Ok(LeaseReport::Recorded)
    }

    async fn mark_retry(
        &self,
        id: OutboxId,
        worker: &str,
        due_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError> {
        let mut tx = self.begin().await?;
        let done = finish_lease(
            &mut tx.q(),
            Query::new(
                "UPDATE outbox SET due_at = $4, last_error = $3, updated_at = $5,
                     lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2 AND status = 'queued'
                 RETURNING message_id, conversation_id",
            )
            .bind(id.0)
            .bind(worker)
            .bind(error)
            .bind(due_at.as_micros())
            .bind(now.as_micros()),
        )
        .await?;
        tx.commit().await?;
        Ok(match done {
            Some(_) => LeaseReport::Recorded,
            None => LeaseReport::LeaseLost,
        })
    }

    async fn mark_failed(
        &self,
        id: OutboxId,
        worker: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError> {
        self.fail(id, worker, reason, false, now).await
    }

    async fn mark_unreachable(
        &self,
        id: OutboxId,
        worker: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError> {
        self.fail(id, worker, reason, true, now).await
    }

    async fn next_due(&self, account: &ChannelAccount) -> Result<Option<Timestamp>, StoreError> {
        let row = self
            .conn()
            .await?
            .q()
            .fetch_one(
                Query::new(
                    "SELECT min(CASE WHEN lease_until IS NOT NULL AND lease_until > due_at
                                     THEN lease_until ELSE due_at END) AS next
                     FROM outbox WHERE status = 'queued' AND channel = $1 AND account = $2",
                )
                .bind(account.kind().as_str())
                .bind(account.name()),
            )
            .await?;
        opt_micros(&row, "next")
    }

    async fn outbox_depth(&self) -> Result<i64, StoreError> {
        let row = self
            .conn()
            .await?
            .q()
            .fetch_one(Query::new(
                "SELECT count(*) AS n FROM outbox WHERE status = 'queued'",
            ))
            .await?;
        row.get("n")
    }

    fn outbox_signal(&self) -> watch::Receiver<u64> {
        self.inner.outbox.subscribe()
    }

    async fn list_conversations(
        &self,
        query: &ConversationQuery,
    ) -> Result<Page<Conversation>, StoreError> {
        let limit = match query.limit {
            0 => 50,
            n => n.min(200),
        };
        // Assembled from fixed fragments; every value is bound.
        let mut sql = String::from(conversation_select!());
        let mut args: Vec<crate::db::Value> = Vec::new();
        let mut clauses: Vec<String> = Vec::new();
        if let Some(status) = query.status {
            args.push(status.as_str().into());
            clauses.push(format!("c.status = ${}", args.len()));
        }
        match query.assignee {
            AssigneeFilter::Any => {}
            AssigneeFilter::Unassigned => clauses.push("c.assignee_id IS NULL".into()),
            AssigneeFilter::Agent(agent) => {
                args.push(agent.0.into());
                clauses.push(format!("c.assignee_id = ${}", args.len()));
            }
        }
        if let Some(channel) = query.channel {
            args.push(channel.as_str().into());
            clauses.push(format!("c.channel = ${}", args.len()));
        }
        if let Some(priority) = query.priority {
            args.push(priority.as_str().into());
            clauses.push(format!("c.priority = ${}", args.len()));
        }
        if let Some(team) = &query.team {
            args.push(team.as_str().into());
            clauses.push(format!("c.team = ${}", args.len()));
        }
        if let Some(label) = &query.label {
            // Labels are a JSON array of strings: look for the quoted label.
            let quoted = serde_json::Value::from(label.trim().to_lowercase()).to_string();
            args.push(format!("%{}%", crate::search::like_escape(&quoted)).into());
            clauses.push(format!("c.labels LIKE ${} ESCAPE '\\'", args.len()));
        }
        if let Some(agent) = query.mentioning {
            args.push(agent.0.into());
            clauses.push(format!(
                "c.id IN (SELECT conversation_id FROM mentions
                          WHERE agent_id = ${} AND seen_at IS NULL)",
                args.len()
            ));
        }
        if let Some(text) = query
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            clauses.push(self.search_clause(text, &mut args).await?);
        }
        if let Some(after) = query.after {
            args.push(after.last_message_at.as_micros().into());
            let at = args.len();
            args.push(after.id.0.into());
            let id = args.len();
            clauses.push(format!(
                "(c.last_message_at < ${at} OR (c.last_message_at = ${at} AND c.id < ${id}))"
            ));
        }
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        args.push(i64::from(limit + 1).into());
        sql.push_str(&format!(
            " ORDER BY c.last_message_at DESC, c.id DESC LIMIT CAST(${} AS BIGINT)",
            args.len()
        ));
        let mut q = Query::assembled(sql);
        for a in args {
            q = q.bind(a);
        }
        let rows = self.conn().await?.q().fetch_all(q).await?;
        let mut items = rows
            .iter()
            .map(conversation_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|c| PageCursor {
                last_message_at: c.last_message_at,
                id: c.id,
            })
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        load_conversation(&mut self.conn().await?.q(), id).await
    }

    async fn messages(
        &self,
        conversation_id: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let after = after.map_or(0, |m| m.0);
        let limit = i64::from(if limit == 0 { 100 } else { limit.min(1000) });
        let mut conn = self.conn().await?;
        let mut q = conn.q();
        let rows = q
            .fetch_all(
                Query::new(concat!(
                    message_select!(),
                    " WHERE m.conversation_id = $1 AND m.id > $2 ORDER BY m.id LIMIT CAST($3 AS BIGINT)"
                ))
                .bind(conversation_id.0)
                .bind(after)
                .bind(limit),
            )
            .await?;
        let mut messages = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(last) = messages.last().map(|m| m.id.0) {
            let edits = q
                .fetch_all(
                    Query::new(
                        "SELECT e.message_id, e.text, e.replaced_at FROM message_edits e
                         JOIN messages m ON m.id = e.message_id
                         WHERE m.conversation_id = $1 AND m.id > $2 AND m.id <= $3
                         ORDER BY e.id",
                    )
                    .bind(conversation_id.0)
                    .bind(after)
                    .bind(last),
                )
                .await?;
            let mut by_message: HashMap<i64, Vec<Edit>> = HashMap::new();
            for e in &edits {
                by_message
                    .entry(e.get("message_id")?)
                    .or_default()
                    .push(Edit {
                        text: e.get("text")?,
                        replaced_at: micros(e, "replaced_at")?,
                    });
            }
            for m in &mut messages {
                if let Some(edits) = by_message.remove(&m.id.0) {
                    m.edits = edits;
                }
            }
        }
        Ok(messages)
    }

    async fn contact_text_before(
        &self,
        conversation_id: ConversationId,
        before: MessageId,
    ) -> Result<Option<String>, StoreError> {
        let row = self
            .read_optional(
                Query::assembled(contact_text_before("$1", "$2"))
                    .bind(conversation_id.0)
                    .bind(before.0),
            )
            .await?;
        row.map(|r| r.get("text")).transpose()
    }

    async fn contact(&self, id: ContactId) -> Result<Option<Contact>, StoreError> {
        let mut conn = self.conn().await?;
        let mut q = conn.q();
        let Some(row) = q
            .fetch_optional(
                Query::new("SELECT id, name, language, created_at FROM contacts WHERE id = $1")
                    .bind(id.0),
            )
            .await?
        else {
            return Ok(None);
        };
        let identities = q
            .fetch_all(
                Query::new(
                    // Unreachable only until they write again on that channel: derived
                    // here, so ingest writes nothing for it.
                    "SELECT ci.channel, ci.external_id, ci.display_name, ci.verified_at,
                            CASE WHEN ci.unreachable_at > COALESCE(
                                (SELECT max(m.created_at) FROM messages m
                                 JOIN conversations c ON c.id = m.conversation_id
                                 WHERE c.contact_id = ci.contact_id AND c.channel = ci.channel
                                   AND m.direction = 'in'), 0)
                                 THEN ci.unreachable END AS unreachable
                     FROM contact_identities ci WHERE ci.contact_id = $1 ORDER BY ci.id",
                )
                .bind(id.0),
            )
            .await?
            .iter()
            .map(|r| {
                let channel: String = r.get("channel")?;
                Ok(Identity {
                    channel: word("contact_identities.channel", ChannelKind::parse(&channel))?,
                    external_id: r.get("external_id")?,
                    display_name: r.get("display_name")?,
                    verified_at: opt_micros(r, "verified_at")?,
                    unreachable: r.get("unreachable")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(Contact {
            id,
            name: row.get("name")?,
            language: row.get("language")?,
            identities,
            created_at: micros(&row, "created_at")?,
        }))
    }

    async fn add_agent(&self, agent: NewAgent) -> Result<Agent, StoreError> {
        let email = agent.email.trim().to_lowercase();
        if !email.contains('@') || email.len() > 254 {
            return Err(StoreError::Invalid(format!(
                "{email:?} is not an email address"
            )));
        }
        let now = self.now();
        // Writes go through the write transaction (on SQLite, the one writer).
        let mut tx = self.begin().await?;
        let inserted = tx
            .q()
            .fetch_one(
                Query::new(
                    "INSERT INTO agents (email, name, role, password_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(email.as_str())
                .bind(agent.name.as_str())
                .bind(agent.role.as_str())
                .bind(agent.password_hash.as_str())
                .bind(now.as_micros()),
            )
            .await;
        if inserted.is_ok() {
            tx.commit().await?;
        }
        match inserted {
            Ok(row) => Ok(Agent {
                id: AgentId(row.get("id")?),
                email,
                name: agent.name,
                role: agent.role,
                created_at: now,
                status: AgentStatus::Offline,
                status_since: now,
                capacity: 5,
                tier: 1,
                teams: Vec::new(),
                last_assigned_at: None,
                locale: "en".into(),
            }),
            Err(e) if e.is_unique_violation() => Err(StoreError::Invalid(format!(
                "an agent with the email {email} exists already"
            ))),
            Err(e) => Err(e),
        }
    }

    async fn agent_by_email(&self, email: &str) -> Result<Option<(Agent, String)>, StoreError> {
        let mut conn = self.conn().await?;
        let mut q = conn.q();
        let Some(row) = q
            .fetch_optional(
                Query::new(concat!(agent_select!(), " WHERE a.email = $1"))
                    .bind(email.trim().to_lowercase()),
            )
            .await?
        else {
            return Ok(None);
        };
        let mut agent = [agent_from_row(&row)?];
        load_agent_teams(&mut q, &mut agent).await?;
        let [agent] = agent;
        Ok(Some((agent, row.get("password_hash")?)))
    }

    async fn sweep(&self, sweep: Sweep, limit: u32) -> Result<Vec<Conversation>, StoreError> {
        self.sweep_conversations(sweep, limit).await
    }

    async fn mark_breach(&self, id: ConversationId, target: SlaTarget) -> Result<bool, StoreError> {
        self.record_breach(id, target).await
    }

    async fn take_turns(
        &self,
        noted_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingTurn>, StoreError> {
        self.pending_turns(noted_before, now, limit).await
    }

    async fn turn_taken(&self, message: MessageId) -> Result<(), StoreError> {
        // Most turns end with the bot's reply, which took the note already: a read
        // says so without a write transaction.
        let noted = self
            .read_optional(
                Query::new("SELECT message_id FROM engine_turns WHERE message_id = $1")
                    .bind(message.0),
            )
            .await?;
        if noted.is_some() {
            self.write(
                Query::new("DELETE FROM engine_turns WHERE message_id = $1").bind(message.0),
            )
            .await?;
        }
        Ok(())
    }

    async fn delivery_progress(
        &self,
        id: OutboxId,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let row = self
            .conn()
            .await?
            .q()
            .fetch_optional(Query::new("SELECT progress FROM outbox WHERE id = $1").bind(id.0))
            .await?;
        let Some(text) = row
            .map(|r| r.get::<Option<String>>("progress"))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Invalid(format!("outbox {id} progress: {e}")))
    }

    async fn save_delivery_progress(
        &self,
        id: OutboxId,
        progress: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.q()
            .execute(
                Query::new("UPDATE outbox SET progress = $2 WHERE id = $1")
                    .bind(id.0)
                    .bind(progress.to_string()),
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn agents(&self) -> Result<Vec<AgentLoad>, StoreError> {
        self.agent_loads().await
    }

    async fn set_agent_profile(
        &self,
        id: AgentId,
        profile: &AgentProfile,
    ) -> Result<Agent, StoreError> {
        self.save_agent_profile(id, profile).await
    }

    async fn set_agent_status(
        &self,
        id: AgentId,
        status: AgentStatus,
    ) -> Result<Agent, StoreError> {
        self.save_agent_status(id, status).await
    }

    async fn assign(
        &self,
        id: ConversationId,
        to: Option<AgentId>,
        auto: bool,
        reason: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        self.assign_conversation(id, to, auto, reason).await
    }

    async fn csat_comment(
        &self,
        id: ConversationId,
        comment: &str,
        message: MessageId,
    ) -> Result<bool, StoreError> {
        self.comment_csat(id, comment, message).await
    }

    async fn count_code_try(&self, id: i64, max: u32) -> Result<Option<u32>, StoreError> {
        self.code_try(id, max).await
    }

    async fn verifications_since(
        &self,
        id: ConversationId,
        since: Timestamp,
    ) -> Result<u32, StoreError> {
        self.count_verifications(id, since).await
    }

    async fn csat_asked(
        &self,
        id: ConversationId,
        agent: Option<AgentId>,
        team: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.ask_csat(id, agent, team).await
    }

    async fn csat(&self, id: ConversationId) -> Result<Option<Csat>, StoreError> {
        self.load_csat(id).await
    }

    async fn csat_answer(
        &self,
        id: ConversationId,
        rating: u8,
        comment: Option<&str>,
        message: MessageId,
    ) -> Result<bool, StoreError> {
        self.answer_csat(id, rating, comment, message).await
    }

    async fn start_verification(
        &self,
        id: ConversationId,
        agent: Option<AgentId>,
        change: &VerificationChange,
    ) -> Result<Verification, StoreError> {
        self.new_verification(id, agent, change).await
    }

    async fn active_verification(
        &self,
        id: ConversationId,
    ) -> Result<Option<Verification>, StoreError> {
        self.current_verification(id).await
    }

    async fn update_verification(
        &self,
        id: i64,
        change: &VerificationChange,
    ) -> Result<Verification, StoreError> {
        self.change_verification(id, change).await
    }

    async fn link_verified_email(
        &self,
        contact: ContactId,
        email: &str,
    ) -> Result<ContactId, StoreError> {
        self.merge_by_verified_email(contact, email).await
    }

    async fn conversation_facts(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ConversationFacts>, StoreError> {
        self.facts(since, until).await
    }

    async fn merge_contacts(
        &self,
        a: ContactId,
        b: ContactId,
        actor: &str,
    ) -> Result<ContactId, StoreError> {
        self.merge(a, b, actor).await
    }

    async fn thread_messages(
        &self,
        account: &ChannelAccount,
        thread_key: &str,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.messages_of_thread(account, thread_key, after, limit)
            .await
    }

    async fn create_api_token(
        &self,
        agent: AgentId,
        name: &str,
        token_hash: &str,
        scopes: &[String],
    ) -> Result<i64, StoreError> {
        self.new_api_token(agent, name, token_hash, scopes).await
    }

    async fn agent_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(Agent, Vec<String>)>, StoreError> {
        self.token_agent(token_hash).await
    }

    async fn setting_or_init(&self, key: &str, init: &str) -> Result<String, StoreError> {
        self.shared_setting(key, init).await
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .read_optional(Query::new("SELECT value FROM settings WHERE key = $1").bind(key))
            .await?;
        row.map(|r| r.get("value")).transpose()
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.write(
            Query::new(
                "INSERT INTO settings (key, value, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .bind(self.now().as_micros()),
        )
        .await?;
        Ok(())
    }

    async fn create_session(
        &self,
        agent: AgentId,
        token_hash: &str,
        csrf: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.new_session(agent, token_hash, csrf, expires_at).await
    }

    async fn session(&self, token_hash: &str) -> Result<Option<(Agent, String)>, StoreError> {
        self.live_session(token_hash).await
    }

    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.drop_session(token_hash).await
    }

    async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        audit(&mut tx.q(), actor, action, subject, detail, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn events_after(&self, after: EventId, limit: u32) -> Result<Vec<Event>, StoreError> {
        let rows = self
            .conn()
            .await?
            .q()
            .fetch_all(
                Query::new(concat!(
                    event_select!(),
                    " WHERE id > $1 ORDER BY id LIMIT CAST($2 AS BIGINT)"
                ))
                .bind(after.0)
                .bind(i64::from(limit.clamp(1, 1000))),
            )
            .await?;
        rows.iter().map(events::event_from_row).collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    async fn canned_responses(&self) -> Result<Vec<crate::Canned>, StoreError> {
        self.list_canned().await
    }

    async fn save_canned(
        &self,
        shortcut: &str,
        title: &str,
        text: &str,
        by: AgentId,
    ) -> Result<crate::Canned, StoreError> {
        self.put_canned(shortcut, title, text, by).await
    }

    async fn delete_canned(&self, id: i64) -> Result<(), StoreError> {
        self.remove_canned(id).await
    }

    async fn mark_mentions_seen(
        &self,
        agent: AgentId,
        conversation: ConversationId,
    ) -> Result<u64, StoreError> {
        self.see_mentions(agent, conversation).await
    }

    async fn login_failed(
        &self,
        email: &str,
        max: u32,
        lockout: Duration,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.count_login_failure(email, max, lockout).await
    }

    async fn login_locked_until(&self, email: &str) -> Result<Option<Timestamp>, StoreError> {
        self.login_lock(email).await
    }

    async fn login_succeeded(&self, email: &str) -> Result<(), StoreError> {
        self.forget_login_failures(email).await
    }

    async fn save_file(
        &self,
        conversation: ConversationId,
        name: &str,
        content_type: &str,
        sha256: &str,
        data: Vec<u8>,
    ) -> Result<crate::StoredFile, StoreError> {
        self.put_file(conversation, name, content_type, sha256, data)
            .await
    }

    async fn file(&self, id: i64) -> Result<Option<(crate::StoredFile, Vec<u8>)>, StoreError> {
        self.get_file(id).await
    }

    async fn set_agent_locale(&self, agent: AgentId, locale: &str) -> Result<(), StoreError> {
        self.put_agent_locale(agent, locale).await
    }

    async fn api_tokens(&self, agent: AgentId) -> Result<Vec<crate::ApiToken>, StoreError> {
        self.tokens_of(agent).await
    }

    async fn revoke_api_token(&self, agent: AgentId, id: i64) -> Result<(), StoreError> {
        self.revoke_token(agent, id).await
    }

    async fn channel_activity(&self) -> Result<Vec<crate::ChannelActivity>, StoreError> {
        self.activity().await
    }

    async fn claim_webhook(
        &self,
        name: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<crate::WebhookCursor>, StoreError> {
        self.claim_webhook_lease(name, owner, lease).await
    }

    async fn advance_webhook(
        &self,
        name: &str,
        owner: &str,
        to: EventId,
        delivered: bool,
    ) -> Result<bool, StoreError> {
        SqlStore::advance_webhook(self, name, owner, to, delivered).await
    }

    async fn webhook_failed(
        &self,
        name: &str,
        owner: &str,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.webhook_attempt_failed(name, owner, error, retry_at)
            .await
    }

    async fn webhooks(&self) -> Result<Vec<crate::WebhookState>, StoreError> {
        self.webhook_states().await
    }

    async fn leave_email(
        &self,
        account: &ChannelAccount,
        thread_key: &str,
        email: &str,
    ) -> Result<crate::EmailLeft, StoreError> {
        self.put_visitor_email(account, thread_key, email).await
    }

    async fn team_hours(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.all_team_hours().await
    }

    async fn visitor_emails(
        &self,
        contact: frontdesk_core::ContactId,
    ) -> Result<Vec<String>, StoreError> {
        self.visitor_emails_of(contact).await
    }

    async fn create_link_code(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        code: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(
            Query::new(
                "INSERT INTO link_codes (code, conversation_id, created_by, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(code)
            .bind(conversation.0)
            .bind(agent.0)
            .bind(self.now().as_micros())
            .bind(expires_at.as_micros()),
        )
        .await
        .map(|_| ())
    }

    async fn redeem_link_code(
        &self,
        code: &str,
        now: Timestamp,
    ) -> Result<Option<ConversationId>, StoreError> {
        let mut tx = self.begin().await?;
        let row = tx
            .q()
            .fetch_optional(
                Query::new(
                    "UPDATE link_codes SET used_at = $2
                     WHERE code = $1 AND used_at IS NULL AND expires_at > $2
                     RETURNING conversation_id",
                )
                .bind(code)
                .bind(now.as_micros()),
            )
            .await?;
        tx.commit().await?;
        row.map(|r| Ok(ConversationId(r.get("conversation_id")?)))
            .transpose()
    }

    async fn note_intent(&self, id: ConversationId, intent: &str) -> Result<(), StoreError> {
        self.write(note_intent(id, intent)).await.map(|_| ())
    }

    async fn set_team_hours(&self, team: &str, config: &str, by: &str) -> Result<(), StoreError> {
        self.put_team_hours(team, config, by).await
    }

    async fn apply_retention(
        &self,
        channel: Option<ChannelKind>,
        before: Timestamp,
        anonymize: bool,
        actor: &str,
    ) -> Result<u64, StoreError> {
        let now = self.now();
        let channel = channel.map(ChannelKind::as_str);
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        q.execute(
            Query::new(
                "DELETE FROM message_edits WHERE message_id IN (
                     SELECT id FROM messages
                     WHERE created_at < $1 AND ($2 IS NULL OR channel = $2) AND text <> $3)",
            )
            .bind(before.as_micros())
            .bind(channel)
            .bind(crate::ERASED),
        )
        .await?;
        let erased = q
            .execute(
                Query::new(
                    "UPDATE messages SET text = $3, attachments = '[]', meta = 'null',
                         entities = '[]', search_text = '',
                         sender_id = CASE WHEN $4 = 1 THEN NULL ELSE sender_id END,
                         reply_to = CASE WHEN $4 = 1 THEN NULL ELSE reply_to END
                     WHERE created_at < $1 AND ($2 IS NULL OR channel = $2) AND text <> $3",
                )
                .bind(before.as_micros())
                .bind(channel)
                .bind(crate::ERASED)
                .bind(i64::from(anonymize)),
            )
            .await?;
        // Files agents attached go with the texts of their time.
        q.execute(
            Query::new(
                "DELETE FROM files WHERE created_at < $1
                   AND ($2 IS NULL OR conversation_id IN (
                        SELECT id FROM conversations WHERE channel = $2))",
            )
            .bind(before.as_micros())
            .bind(channel),
        )
        .await?;
        audit(
            &mut q,
            actor,
            "retention",
            channel.unwrap_or("all channels"),
            serde_json::json!({ "before": before, "anonymize": anonymize, "messages": erased }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(erased)
    }

    async fn export_contact(
        &self,
        id: ContactId,
        actor: &str,
    ) -> Result<serde_json::Value, StoreError> {
        let contact = self
            .contact(id)
            .await?
            .ok_or(StoreError::NotFound("contact", id.0))?;
        let rows = self
            .conn()
            .await?
            .q()
            .fetch_all(
                Query::new(concat!(
                    conversation_select!(),
                    " WHERE c.contact_id = $1 ORDER BY c.id"
                ))
                .bind(id.0),
            )
            .await?;
        let mut conversations = Vec::with_capacity(rows.len());
        for row in &rows {
            let conversation = conversation_from_row(row)?;
            let mut messages = Vec::new();
            let mut after = None;
            loop {
                let page = self.messages(conversation.id, after, 1000).await?;
                let Some(last) = page.last().map(|m| m.id) else {
                    break;
                };
                after = Some(last);
                messages.extend(page);
            }
            conversations
                .push(serde_json::json!({ "conversation": conversation, "messages": messages }));
        }
        let mut tx = self.begin().await?;
        audit(
            &mut tx.q(),
            actor,
            "contact_export",
            &format!("contact {id}"),
            serde_json::json!({ "conversations": conversations.len() }),
            self.now(),
        )
        .await?;
        tx.commit().await?;
        let emails_left = self.visitor_emails_of(id).await?;
        Ok(serde_json::json!({
            "exported_at": self.now(),
            "contact": contact,
            "emails_left_in_chat": emails_left,
            "conversations": conversations,
        }))
    }

    async fn delete_contact(
        &self,
        id: ContactId,
        actor: &str,
    ) -> Result<ContactErasure, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let exists = q
            .fetch_optional(Query::new("SELECT id FROM contacts WHERE id = $1").bind(id.0))
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound("contact", id.0));
        }
        q.execute(
            Query::new(
                "DELETE FROM message_edits WHERE message_id IN (
                     SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id
                     WHERE c.contact_id = $1)",
            )
            .bind(id.0),
        )
        .await?;
        let messages_erased = q
            .execute(
                Query::new(
                    "UPDATE messages SET text = $2, attachments = '[]', meta = 'null',
                         entities = '[]', sender_id = NULL, reply_to = NULL, search_text = ''
                     WHERE conversation_id IN (SELECT id FROM conversations WHERE contact_id = $1)",
                )
                .bind(id.0)
                .bind(crate::ERASED),
            )
            .await?;
        for statement in [
            "DELETE FROM files WHERE conversation_id IN (
                 SELECT id FROM conversations WHERE contact_id = $1)",
            "DELETE FROM visitor_emails WHERE contact_id = $1",
        ] {
            q.execute(Query::new(statement).bind(id.0)).await?;
        }
        // Nothing more may be sent to a person who asked to be forgotten.
        q.execute(
            Query::new(
                "UPDATE outbox SET status = 'failed', last_error = 'the contact was erased',
                     lease_owner = NULL, lease_until = NULL, updated_at = $2
                 WHERE status = 'queued'
                   AND conversation_id IN (SELECT id FROM conversations WHERE contact_id = $1)",
            )
            .bind(id.0)
            .bind(now.as_micros()),
        )
        .await?;
        let identities_removed = q
            .execute(Query::new("DELETE FROM contact_identities WHERE contact_id = $1").bind(id.0))
            .await?;
        q.execute(
            Query::new(
                "UPDATE contacts SET name = NULL, language = NULL, updated_at = $2 WHERE id = $1",
            )
            .bind(id.0)
            .bind(now.as_micros()),
        )
        .await?;
        // Thread keys name people too (a chat id, an email thread); resolved, so a new
        // message from the same person starts afresh.
        let conversations_kept = q
            .execute(
                Query::new(
                    "UPDATE conversations SET thread_key = 'erased:' || id, status = 'resolved',
                         resolved_at = COALESCE(resolved_at, $2), updated_at = $2
                     WHERE contact_id = $1",
                )
                .bind(id.0)
                .bind(now.as_micros()),
            )
            .await?;
        let erasure = ContactErasure {
            messages_erased,
            identities_removed,
            conversations_kept,
        };
        audit(
            &mut q,
            actor,
            "contact_delete",
            &format!("contact {id}"),
            serde_json::to_value(erasure).unwrap_or_default(),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(erasure)
    }

    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .conn()
            .await?
            .q()
            .fetch_all(
                Query::new(
                    "SELECT id, actor, action, subject, detail, created_at FROM audit_log
                     ORDER BY id DESC LIMIT CAST($1 AS BIGINT)",
                )
                .bind(i64::from(limit.clamp(1, 1000))),
            )
            .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.get("detail")?;
                Ok(AuditEntry {
                    id: r.get("id")?,
                    actor: r.get("actor")?,
                    action: r.get("action")?,
                    subject: r.get("subject")?,
                    detail: from_json("audit_log.detail", &detail)?,
                    created_at: micros(r, "created_at")?,
                })
            })
            .collect()
    }
}

/// Appends to the audit log inside `q`'s transaction.
pub(crate) async fn audit(
    q: &mut Exec<'_>,
    actor: &str,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    q.execute(
        Query::new(
            "INSERT INTO audit_log (actor, action, subject, detail, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(detail.to_string())
        .bind(now.as_micros()),
    )
    .await?;
    Ok(())
}
