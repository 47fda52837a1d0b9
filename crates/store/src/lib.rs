//! Frontdesk's storage: the [`Store`] trait and [`SqlStore`], its implementation on
//! SQLite (the embedded default) and PostgreSQL (several instances sharing the work).
//!
//! The two backends share one body of SQL ([`db`] explains how), so the exactly-once
//! ingest, the outbox leases and every read are the same code on both; the
//! conformance story (`story_tests.rs`) runs against each.
//!
//! - [`Store::ingest`]: one transaction per inbound message: dedupe, contact, open
//!   conversation, the inbound filter step, message, event, channel cursor.
//! - [`Store::reply`]: an outbound message and its outbox row in one transaction.
//! - [`Store::claim_outbox`] and the `mark_*` calls: the delivery worker's leases.
//! - [`Store::subscribe`]: events, in-process and (PostgreSQL) across instances through
//!   LISTEN/NOTIFY.

#[cfg(any(test, feature = "testing"))]
pub mod bench;
mod db;
mod events;
mod migrate;
mod sql_store;
#[cfg(test)]
mod story_tests;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use db::Backend;
pub use sql_store::{SqlStore, StoreOptions};

use frontdesk_core::{
    Agent, AgentId, Attachment, Author, ChannelAccount, ChannelKind, Contact, Conversation,
    ConversationId, Event, EventId, Inbound, IngestOutcome, Message, MessageId, MessageKind,
    Outbound, OutboxId, Role, Status, Timestamp,
};
use std::fmt;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// What can go wrong in the store. Messages never include message text or secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} {1} not found")]
    NotFound(&'static str, i64),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("the stored {column} is not valid: {reason}")]
    Corrupt {
        column: &'static str,
        reason: String,
    },
    #[error("internal: {0}")]
    Internal(&'static str),
    /// The outbound check refused a reply; the reason is for the agent.
    #[error("refused: {0}")]
    Refused(String),
}

impl StoreError {
    /// Whether this is a unique-constraint violation (a race another writer won).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// A reply or note to add to a conversation.
#[derive(Debug, Clone)]
pub struct NewReply {
    pub conversation_id: ConversationId,
    pub author: Author,
    pub agent_id: Option<AgentId>,
    /// `Text` goes to the customer through the outbox; `Note` and `Event` stay inside.
    pub kind: MessageKind,
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// A client's key for this send: the same key again returns the first message.
    pub idempotency_key: Option<String>,
}

impl NewReply {
    /// A message from the bot to the customer.
    pub fn from_bot(conversation_id: ConversationId, text: impl Into<String>) -> Self {
        Self {
            conversation_id,
            author: Author::Bot,
            agent_id: None,
            kind: MessageKind::Text,
            text: text.into(),
            attachments: Vec::new(),
            idempotency_key: None,
        }
    }
}

/// The stored reply, and whether this call created it (false: an earlier call with
/// the same idempotency key did).
#[derive(Debug, Clone)]
pub struct Replied {
    pub message: Message,
    pub created: bool,
}

/// Which conversations to list by assignee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssigneeFilter {
    #[default]
    Any,
    Unassigned,
    Agent(AgentId),
}

/// Where a page of conversations ends: the sort key of its last item. Opaque to
/// clients, written `MICROS.ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    pub last_message_at: Timestamp,
    pub id: ConversationId,
}

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.last_message_at.as_micros(), self.id.0)
    }
}

impl PageCursor {
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let bad = || {
            StoreError::Invalid(format!(
                "bad page cursor {:?}",
                s.chars().take(40).collect::<String>()
            ))
        };
        let (at, id) = s.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            last_message_at: Timestamp::from_micros(at.parse().map_err(|_| bad())?),
            id: ConversationId(id.parse().map_err(|_| bad())?),
        })
    }
}

/// A filter and a page position for listing conversations, newest activity first.
#[derive(Debug, Clone, Default)]
pub struct ConversationQuery {
    pub status: Option<Status>,
    pub assignee: AssigneeFilter,
    pub channel: Option<ChannelKind>,
    /// At most this many (1..=200; 0 means 50).
    pub limit: u32,
    pub after: Option<PageCursor>,
}

/// One page of results and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<PageCursor>,
}

/// A delivery worker's request for due outbox rows.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub account: ChannelAccount,
    /// Who holds the lease; only the holder can record the outcome.
    pub worker: String,
    pub now: Timestamp,
    /// How long the rows are ours. Longer than any single send may take.
    pub lease: Duration,
    pub limit: u32,
}

/// A change to a conversation; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ConversationChange {
    pub status: Option<Status>,
    pub priority: Option<frontdesk_core::Priority>,
    pub team: Option<String>,
    pub bot_misses: Option<u32>,
    /// Why, for the history (shown to agents; never message text).
    pub reason: Option<String>,
}

/// What replaces an erased message text.
pub const ERASED: &str = "[erased]";

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Who: an agent's email, `cli`, or `retention`.
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: serde_json::Value,
    pub created_at: Timestamp,
}

/// What erasing a contact removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ContactErasure {
    pub messages_erased: u64,
    pub identities_removed: u64,
    /// Conversations keep their rows (dates, channel, status) for reports.
    pub conversations_kept: u64,
}

/// A new agent, with the password already hashed.
#[derive(Clone)]
pub struct NewAgent {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
}

impl fmt::Debug for NewAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAgent")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// Whether a lease-holder's report was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseReport {
    Recorded,
    /// The lease had run out and another worker holds the row now; nothing changed.
    LeaseLost,
}

/// Everything Frontdesk keeps. Object safe: the binary holds an `Arc<dyn Store>`.
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    fn backend(&self) -> Backend;

    /// Brings the schema up to date (embedded migrations).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// One round trip to the database.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores one inbound message exactly once, with the adapter's cursor, in one
    /// transaction. See the crate documentation for the steps.
    async fn ingest(
        &self,
        inbound: &Inbound,
        cursor: Option<&str>,
    ) -> Result<IngestOutcome, StoreError>;

    /// The cursor stored by the last ingest of this account.
    async fn cursor(&self, account: &ChannelAccount) -> Result<Option<String>, StoreError>;

    /// Adds a reply or note; a reply's outbox row is written in the same transaction.
    async fn reply(&self, reply: NewReply) -> Result<Replied, StoreError>;

    /// Changes status, priority or team, and records the change as an event.
    async fn update_conversation(
        &self,
        id: ConversationId,
        change: &ConversationChange,
    ) -> Result<Conversation, StoreError>;

    /// Leases up to `limit` due rows of one account and returns them ready to send.
    async fn claim_outbox(&self, req: &ClaimRequest) -> Result<Vec<Outbound>, StoreError>;

    /// The channel took it.
    async fn mark_sent(
        &self,
        id: OutboxId,
        worker: &str,
        external_id: Option<&str>,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError>;

    /// Try again at `due_at`.
    async fn mark_retry(
        &self,
        id: OutboxId,
        worker: &str,
        due_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError>;

    /// Give up; the reason is shown to the agents and recorded as an event.
    async fn mark_failed(
        &self,
        id: OutboxId,
        worker: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError>;

    /// When the next queued row of this account is due (leased rows count from the end
    /// of their lease), if any.
    async fn next_due(&self, account: &ChannelAccount) -> Result<Option<Timestamp>, StoreError>;

    /// Rows still queued, over all accounts.
    async fn outbox_depth(&self) -> Result<i64, StoreError>;

    /// A signal that changes whenever a reply may have been queued (here or, on
    /// PostgreSQL, on another instance). Wake-ups may be spurious; the delivery worker
    /// re-checks the outbox, and also polls, so a missed signal only delays.
    fn outbox_signal(&self) -> watch::Receiver<u64>;

    async fn list_conversations(
        &self,
        query: &ConversationQuery,
    ) -> Result<Page<Conversation>, StoreError>;

    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError>;

    /// Messages of a conversation, oldest first, after `after` if given.
    async fn messages(
        &self,
        conversation_id: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;

    async fn contact(&self, id: frontdesk_core::ContactId) -> Result<Option<Contact>, StoreError>;

    async fn add_agent(&self, agent: NewAgent) -> Result<Agent, StoreError>;

    /// The agent and their password hash.
    async fn agent_by_email(&self, email: &str) -> Result<Option<(Agent, String)>, StoreError>;

    /// Erases the bodies (text, attachments, edits, metadata) of messages created before
    /// `before`, on one channel or all; with `anonymize`, also the sender ids that tie
    /// them to a person. Returns how many messages were erased; records it in the audit
    /// log.
    async fn apply_retention(
        &self,
        channel: Option<ChannelKind>,
        before: Timestamp,
        anonymize: bool,
        actor: &str,
    ) -> Result<u64, StoreError>;

    /// Everything stored about a contact, as JSON; recorded in the audit log.
    async fn export_contact(
        &self,
        id: frontdesk_core::ContactId,
        actor: &str,
    ) -> Result<serde_json::Value, StoreError>;

    /// Erases a contact: message texts and attachments, identities, name, thread keys;
    /// keeps anonymous rows (dates, channel, status) for reports. Recorded in the audit
    /// log.
    async fn delete_contact(
        &self,
        id: frontdesk_core::ContactId,
        actor: &str,
    ) -> Result<ContactErasure, StoreError>;

    /// The audit log, newest first.
    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;

    /// Events after `after`, oldest first, to catch up after a gap.
    async fn events_after(&self, after: EventId, limit: u32) -> Result<Vec<Event>, StoreError>;

    /// New events as they are committed.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
}
