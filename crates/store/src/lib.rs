//! Frontdesk's storage: the [`Store`] trait and [`SqlStore`], its implementation on
//! SQLite (the embedded default) and PostgreSQL (several instances sharing the work).
//!
//! The two backends share one body of SQL ([`db`] explains how), so the exactly-once
//! ingest, the outbox leases and every read are the same code on both; the
//! conformance story (`story_tests.rs`) runs against each.
//!
//! - [`Store::ingest`]: one transaction per inbound message: dedupe, contact, open
//!   conversation, the inbound filter step, message, event, channel cursor.
//! - [`Store::ingest_answering`]: the same, with the bot's answer in that transaction
//!   when a [`Responder`] can decide it there.
//! - [`Store::reply`]: an outbound message and its outbox row in one transaction.
//! - [`Store::claim_outbox`] and the `mark_*` calls: the delivery worker's leases.
//! - [`Store::subscribe`]: events, in-process and (PostgreSQL) across instances through
//!   LISTEN/NOTIFY.

#[cfg(any(test, feature = "testing"))]
pub mod bench;
mod db;
mod events;
mod group;
mod leader;
mod migrate;
pub mod search;
mod sql_api;
mod sql_engine;
mod sql_inbox;
mod sql_reply;
mod sql_store;
#[cfg(test)]
mod story_tests;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use db::Backend;
pub use leader::Leadership;
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
    /// A commit several writes shared failed, or another write's failure took it down:
    /// none of them was kept.
    #[error("database error: {0}")]
    Shared(std::sync::Arc<sqlx::Error>),
    /// Another write sharing this one's transaction failed in a way that took the
    /// transaction down (SQLite's group commit): nothing of this one was kept, and
    /// trying again is safe.
    #[error("not stored: a write sharing its transaction failed; try again")]
    RolledBack,
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
    /// A conditional change found the row changed by someone else first (another
    /// instance's timer, the customer's message); nothing was written.
    #[error("changed meanwhile: {0}")]
    Changed(String),
}

impl StoreError {
    /// Whether this is a unique-constraint violation (a race another writer won).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self.database(), Some(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    fn database(&self) -> Option<&sqlx::Error> {
        match self {
            StoreError::Database(e) => Some(e),
            StoreError::Shared(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the database's disk is full (SQLite's SQLITE_FULL, PostgreSQL's
    /// 53100): nothing of the failed write was kept, and writing works again once
    /// there is room.
    pub fn is_disk_full(&self) -> bool {
        match self.database() {
            Some(sqlx::Error::Database(e)) => matches!(e.code().as_deref(), Some("13" | "53100")),
            Some(sqlx::Error::Io(e)) => e.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
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
    /// Answers to offer as buttons where the channel has them (the text must make sense
    /// without them).
    pub quick_replies: Vec<String>,
    /// Agents named in a note (@name), told in their inbox.
    pub mentions: Vec<AgentId>,
    /// The customer message this answers as the engine's turn on it: the turn's note
    /// ([`Store::take_turns`]) goes in the reply's transaction.
    pub answers: Option<MessageId>,
    /// The topic the bot recognised in the message it answers, noted on the
    /// conversation (its first) in the reply's transaction.
    pub intent: Option<String>,
}

impl NewReply {
    /// A reply from an agent, or with `private` a note only agents see.
    pub fn from_agent(
        conversation_id: ConversationId,
        agent: AgentId,
        text: impl Into<String>,
        private: bool,
    ) -> Self {
        Self {
            author: Author::Agent,
            agent_id: Some(agent),
            kind: if private {
                MessageKind::Note
            } else {
                MessageKind::Text
            },
            ..Self::from_bot(conversation_id, text)
        }
    }

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
            quick_replies: Vec::new(),
            mentions: Vec::new(),
            answers: None,
            intent: None,
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

/// The bot's answer to one customer message, written in one transaction
/// ([`Store::answer`], or with the message itself: [`Store::ingest_answering`]).
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// Sent in order; each names the message it answers.
    pub replies: Vec<NewReply>,
    /// The topic the bot recognised, noted on the conversation when it has none yet
    /// (when no reply carries it).
    pub intent: Option<String>,
    /// The language the customer writes in, when the conversation had another.
    pub language: Option<String>,
    /// The bot's misses in a row, when they change.
    pub bot_misses: Option<u32>,
}

/// What [`Store::ingest_answering`] knows of a customer message once it is stored, for
/// a [`Responder`] to decide the bot's answer from without another read.
#[derive(Debug)]
pub struct TurnFacts<'a> {
    /// The conversation as the message left it.
    pub conversation: &'a Conversation,
    pub message: MessageId,
    /// The customer's message before this one ([`Store::contact_text_before`]).
    pub previous_text: Option<&'a str>,
    /// A verification waits for the customer's answer ([`Store::active_verification`]).
    pub verifying: bool,
}

/// Decides the bot's answer inside the transaction that stores the customer's message,
/// so the question and its answer take one write. Asked only about a new message that
/// wants the engine's turn and had no secret in it. Returns `None` when the answer
/// needs more than the facts (a handoff, a verification): the caller then takes the
/// engine's turn as for any stored message.
pub trait Responder: Send + Sync + fmt::Debug {
    fn answer(&self, facts: &TurnFacts<'_>) -> Option<Answer>;
}

/// What [`Store::ingest_answering`] did.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub outcome: IngestOutcome,
    /// The responder's answer was written with the message: the engine's turn is taken.
    pub answered: bool,
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
    pub priority: Option<frontdesk_core::Priority>,
    pub team: Option<String>,
    /// Conversations with this label.
    pub label: Option<String>,
    /// Conversations where a note names this agent and they have not looked yet.
    pub mentioning: Option<AgentId>,
    /// Words that one message of the conversation contains (any case; Latin words as
    /// prefixes), or a part of the contact's name or channel identity. Indexed: see
    /// [`search`].
    pub text: Option<String>,
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

/// A customer message the conversation engine has yet to act on (see
/// [`Store::take_turns`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTurn {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    /// The stored text (through the guard).
    pub text: String,
    /// Secrets the guard found in it.
    pub findings: usize,
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
///
/// The store keeps the bookkeeping that follows from a status change in the same
/// statement: `status_since`; `queued_at` the first time it becomes open (its place in
/// the queue); `resolved_at`; the reopen count when a resolved conversation opens
/// again; `snoozed_until` cleared when it leaves `snoozed`.
#[derive(Debug, Clone, Default)]
pub struct ConversationChange {
    pub status: Option<Status>,
    pub priority: Option<frontdesk_core::Priority>,
    pub team: Option<String>,
    pub bot_misses: Option<u32>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<AgentId>>,
    pub tier: Option<u8>,
    /// With `status: Some(Snoozed)`: until when.
    pub snoozed_until: Option<Timestamp>,
    pub language: Option<String>,
    /// The whole new set of labels.
    pub labels: Option<Vec<String>>,
    pub first_response_due: Option<Timestamp>,
    pub resolution_due: Option<Timestamp>,
    /// Change only if the status is still this; else [`StoreError::Changed`]. Timers
    /// use it so that two instances, or a timer and a customer, never both act.
    pub expect_status: Option<Status>,
    /// Why, for the history (shown to agents; never message text).
    pub reason: Option<String>,
}

/// Conversations the engine's timers look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sweep {
    /// Snoozed until a time that has come.
    SnoozeOver(Timestamp),
    /// Pending, with no message either way since this time.
    PendingSilentSince(Timestamp),
    /// Still with the bot, with no message since this time.
    BotIdleSince(Timestamp),
    /// No first agent reply, and the first-response target has passed (not yet
    /// recorded as breached).
    FirstResponseOverdue(Timestamp),
    /// Not resolved, and the resolution target has passed (not yet recorded).
    ResolutionOverdue(Timestamp),
    /// Not resolved and assigned to this agent.
    AssignedTo(AgentId),
    /// Open and unassigned, in queue order: urgent first, then high, normal, low; then
    /// the longest waiting (since it became open; a return to the queue keeps its place).
    Queue,
    /// The same, of one team.
    QueueOf(String),
    /// Resolved, with a customer message after the resolve (and not the rating) that is
    /// older than this: the engine missed it (it was down); reopen.
    ResolvedWithNewMessageBefore(Timestamp),
}

/// Which service-level target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaTarget {
    FirstResponse,
    Resolution,
}

/// An agent's working settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProfile {
    pub teams: Vec<String>,
    pub capacity: u32,
    pub tier: u8,
}

/// An agent and how many unresolved conversations they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLoad {
    pub agent: Agent,
    pub open: u32,
}

/// The satisfaction survey of one conversation.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct Csat {
    pub conversation_id: ConversationId,
    pub agent_id: Option<AgentId>,
    pub team: Option<String>,
    pub asked_at: Timestamp,
    pub rating: Option<u8>,
    pub comment: Option<String>,
    pub answered_at: Option<Timestamp>,
}

impl fmt::Debug for Csat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The comment is the customer's words: not for logs.
        f.debug_struct("Csat")
            .field("conversation_id", &self.conversation_id)
            .field("agent_id", &self.agent_id)
            .field("rating", &self.rating)
            .field("has_comment", &self.comment.is_some())
            .finish_non_exhaustive()
    }
}

/// Where an email verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationState {
    /// Asked the customer for the address.
    AwaitingEmail,
    /// A code went out; waiting for it.
    AwaitingCode,
    Verified,
    Expired,
    /// Too many wrong codes.
    Failed,
    /// Replaced by a newer request.
    Cancelled,
}

impl VerificationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingEmail => "awaiting_email",
            Self::AwaitingCode => "awaiting_code",
            Self::Verified => "verified",
            Self::Expired => "expired",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::AwaitingEmail,
            Self::AwaitingCode,
            Self::Verified,
            Self::Expired,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Still waiting on the customer.
    pub fn is_active(self) -> bool {
        matches!(self, Self::AwaitingEmail | Self::AwaitingCode)
    }
}

/// One email verification. The code itself is never stored: only its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Verification {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub agent_id: Option<AgentId>,
    pub state: VerificationState,
    pub email: Option<String>,
    pub code_hash: Option<String>,
    pub tries: u32,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl fmt::Debug for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verification")
            .field("id", &self.id)
            .field("conversation_id", &self.conversation_id)
            .field("state", &self.state)
            .field("tries", &self.tries)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A change to a verification; `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct VerificationChange {
    pub state: Option<VerificationState>,
    pub email: Option<String>,
    pub code_hash: Option<String>,
    pub tries: Option<u32>,
    pub expires_at: Option<Timestamp>,
}

impl fmt::Debug for VerificationChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationChange")
            .field("state", &self.state)
            .field("tries", &self.tries)
            .finish_non_exhaustive()
    }
}

/// What reports are made of: one row per conversation created in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationFacts {
    pub id: ConversationId,
    pub channel: ChannelKind,
    pub team: Option<String>,
    pub assignee: Option<AgentId>,
    pub priority: frontdesk_core::Priority,
    pub status: Status,
    pub created_at: Timestamp,
    pub queued_at: Option<Timestamp>,
    pub first_response_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub reopened: u32,
    pub first_response_breached: bool,
    pub resolution_breached: bool,
    pub rating: Option<u8>,
    /// The agent the rating was given for (who had it when it was resolved).
    pub rated_agent: Option<AgentId>,
    /// The first intent the bot recognised.
    pub intent: Option<String>,
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

    /// The lead of `job` (`poller:telegram:default`) among the instances sharing this
    /// database, if no other instance holds it; held until the returned value is
    /// dropped or its connection is lost. See [`Leadership`].
    async fn try_lead(&self, job: &str) -> Result<Option<Box<dyn Leadership>>, StoreError>;

    /// Stores one inbound message exactly once, with the adapter's cursor, in one
    /// transaction. See the crate documentation for the steps.
    async fn ingest(
        &self,
        inbound: &Inbound,
        cursor: Option<&str>,
    ) -> Result<IngestOutcome, StoreError>;

    /// [`Store::ingest`], and in the same transaction the bot's answer when `responder`
    /// can decide it from what the ingest knows ([`TurnFacts`]): one write, one commit
    /// and no reads for a question the bot answers. A message the responder declines,
    /// or that wants no turn, is stored as by [`Store::ingest`].
    async fn ingest_answering(
        &self,
        inbound: &Inbound,
        cursor: Option<&str>,
        responder: std::sync::Arc<dyn Responder>,
    ) -> Result<Ingested, StoreError>;

    /// Writes the bot's answer to a conversation in one transaction: the topic, the
    /// language, the misses, then the replies.
    async fn answer(&self, id: ConversationId, answer: &Answer) -> Result<(), StoreError>;

    /// The cursor stored by the last ingest of this account.
    async fn cursor(&self, account: &ChannelAccount) -> Result<Option<String>, StoreError>;

    /// Stores a cursor without a message: where a channel starts on its first run (X's
    /// newest post when it is switched on), so a restart before the first message
    /// neither re-reads history nor skips what came in between.
    async fn put_cursor(&self, account: &ChannelAccount, cursor: &str) -> Result<(), StoreError>;

    /// The thread key of the conversation holding the newest customer message of
    /// `account` with one of `external_ids` (at most 100 are looked at).
    async fn thread_of_messages(
        &self,
        account: &ChannelAccount,
        external_ids: &[String],
    ) -> Result<Option<String>, StoreError>;

    /// What the channel kept with a message (`meta`), already through the guard.
    async fn message_meta(
        &self,
        conversation: ConversationId,
        message: MessageId,
    ) -> Result<Option<serde_json::Value>, StoreError>;

    /// The thread key of conversation `id` if it is on `account`.
    async fn thread_of_conversation(
        &self,
        account: &ChannelAccount,
        id: ConversationId,
    ) -> Result<Option<String>, StoreError>;

    /// Adds a reply or note; a reply's outbox row is written in the same transaction.
    async fn reply(&self, reply: NewReply) -> Result<Replied, StoreError>;

    /// Changes status, priority or team, and records the change as an event.
    async fn update_conversation(
        &self,
        id: ConversationId,
        change: &ConversationChange,
    ) -> Result<Conversation, StoreError>;

    /// Turns the engine has not taken: customer messages whose turn was noted at ingest
    /// (the note is written with the message) at or before `noted_before`, so that a
    /// turn still running on some instance is left alone. Each one returned is the
    /// caller's: its note moves to `now`, and no other caller gets it until it is due
    /// again. Notes of messages something already answered (an outgoing message
    /// follows them), and of messages older than a day, are dropped, not returned.
    async fn take_turns(
        &self,
        noted_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingTurn>, StoreError>;

    /// The engine has acted on `message`: its note goes.
    async fn turn_taken(&self, message: MessageId) -> Result<(), StoreError>;

    /// What a channel noted on delivery `id` during earlier attempts (see
    /// [`frontdesk_core::Progress`]), if anything.
    async fn delivery_progress(
        &self,
        id: OutboxId,
    ) -> Result<Option<serde_json::Value>, StoreError>;

    /// Replaces the channel's note on delivery `id`.
    async fn save_delivery_progress(
        &self,
        id: OutboxId,
        progress: &serde_json::Value,
    ) -> Result<(), StoreError>;

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

    /// Give up because the recipient cannot be reached on the channel (blocked the
    /// bot): as [`Store::mark_failed`], and the contact's identity on that channel is
    /// marked unreachable until they write again.
    async fn mark_unreachable(
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

    /// The text of the customer's last message in a conversation before `before`, for
    /// the bot's "the same thing again" check: one row, however long the conversation.
    async fn contact_text_before(
        &self,
        conversation_id: ConversationId,
        before: MessageId,
    ) -> Result<Option<String>, StoreError>;

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

    /// Conversations a timer of the conversation engine looks for, at most `limit`.
    async fn sweep(&self, sweep: Sweep, limit: u32) -> Result<Vec<Conversation>, StoreError>;

    /// Records a breached target once; false if it was recorded already.
    async fn mark_breach(&self, id: ConversationId, target: SlaTarget) -> Result<bool, StoreError>;

    /// Every agent with their settings and how many unresolved conversations they hold.
    async fn agents(&self) -> Result<Vec<AgentLoad>, StoreError>;

    async fn set_agent_profile(
        &self,
        id: AgentId,
        profile: &AgentProfile,
    ) -> Result<Agent, StoreError>;

    /// Online, away or offline; recorded as an event.
    async fn set_agent_status(
        &self,
        id: AgentId,
        status: frontdesk_core::AgentStatus,
    ) -> Result<Agent, StoreError>;

    /// Gives a conversation to an agent (or none). With `auto` (the queue's
    /// assignment), does nothing and returns `None` unless the conversation is still
    /// unassigned and the agent online with room, checked under a lock on the agent: two
    /// instances assigning at once can neither both win nor overfill an agent. An agent
    /// given a conversation moves to the back of the round-robin.
    async fn assign(
        &self,
        id: ConversationId,
        to: Option<AgentId>,
        auto: bool,
        reason: &str,
    ) -> Result<Option<Conversation>, StoreError>;

    /// Records that the customer was asked for a rating; false if they were asked
    /// before (never twice).
    async fn csat_asked(
        &self,
        id: ConversationId,
        agent: Option<AgentId>,
        team: Option<&str>,
    ) -> Result<bool, StoreError>;

    async fn csat(&self, id: ConversationId) -> Result<Option<Csat>, StoreError>;

    /// Adds a comment (the customer's `message`) to an answered survey that has none;
    /// false otherwise.
    async fn csat_comment(
        &self,
        id: ConversationId,
        comment: &str,
        message: MessageId,
    ) -> Result<bool, StoreError>;

    /// Stores the customer's rating once; false if it was answered already.
    async fn csat_answer(
        &self,
        id: ConversationId,
        rating: u8,
        comment: Option<&str>,
        message: MessageId,
    ) -> Result<bool, StoreError>;

    /// Starts a verification in a conversation, cancelling any earlier one there.
    async fn start_verification(
        &self,
        id: ConversationId,
        agent: Option<AgentId>,
        change: &VerificationChange,
    ) -> Result<Verification, StoreError>;

    /// The conversation's verification still waiting on the customer, if any.
    async fn active_verification(
        &self,
        id: ConversationId,
    ) -> Result<Option<Verification>, StoreError>;

    async fn update_verification(
        &self,
        id: i64,
        change: &VerificationChange,
    ) -> Result<Verification, StoreError>;

    /// Counts one try of a code, atomically: the new count, or `None` when the
    /// verification no longer waits for a code or has used `max` tries.
    async fn count_code_try(&self, id: i64, max: u32) -> Result<Option<u32>, StoreError>;

    /// How many verifications the conversation started since `since` (to limit codes).
    async fn verifications_since(
        &self,
        id: ConversationId,
        since: Timestamp,
    ) -> Result<u32, StoreError>;

    /// The contact proved they own `email`. If another contact has that address as a
    /// verified identity, the two become one (the older keeps its id; identities and
    /// conversations move to it). If another contact has it unverified (a `From:`
    /// header proves nothing), the identity moves to this contact, verified; if nobody
    /// has it, it becomes a verified identity of this contact. Returns the contact that
    /// remains.
    async fn link_verified_email(
        &self,
        contact: frontdesk_core::ContactId,
        email: &str,
    ) -> Result<frontdesk_core::ContactId, StoreError>;

    /// Joins two contacts that are one person (an agent's decision): the older keeps its
    /// id, identities and conversations; recorded in the audit log.
    async fn merge_contacts(
        &self,
        a: frontdesk_core::ContactId,
        b: frontdesk_core::ContactId,
        actor: &str,
    ) -> Result<frontdesk_core::ContactId, StoreError>;

    /// One row per conversation created in `[since, until)`, for reports.
    async fn conversation_facts(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ConversationFacts>, StoreError>;

    /// The customer-visible messages (text, both directions) of every conversation of
    /// one thread, oldest first, after `after`: what a webchat visitor sees.
    async fn thread_messages(
        &self,
        account: &ChannelAccount,
        thread_key: &str,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;

    /// Stores a new API token's hash; returns its id.
    async fn create_api_token(
        &self,
        agent: AgentId,
        name: &str,
        token_hash: &str,
        scopes: &[String],
    ) -> Result<i64, StoreError>;

    /// The agent and scopes of a live token, by its hash (and notes its use).
    async fn agent_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(Agent, Vec<String>)>, StoreError>;

    /// Starts an agent's browser session (the token's hash, its CSRF token, until when).
    async fn create_session(
        &self,
        agent: AgentId,
        token_hash: &str,
        csrf: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// The agent and CSRF token of a live session.
    async fn session(&self, token_hash: &str) -> Result<Option<(Agent, String)>, StoreError>;

    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError>;

    /// Appends an agent's action to the audit log (`actor` their email).
    async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError>;

    /// A value all instances share: the stored one, or `init` stored now if none is.
    async fn setting_or_init(&self, key: &str, init: &str) -> Result<String, StoreError>;

    /// A value all instances share, if one is stored.
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Stores `value` under `key`, replacing what was there (a rotated credential).
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;

    /// Events after `after`, oldest first, to catch up after a gap.
    async fn events_after(&self, after: EventId, limit: u32) -> Result<Vec<Event>, StoreError>;

    /// New events as they are committed.
    fn subscribe(&self) -> broadcast::Receiver<Event>;

    /// Canned responses, by shortcut.
    async fn canned_responses(&self) -> Result<Vec<Canned>, StoreError>;

    /// Creates a canned response, or replaces the text of the one with this shortcut.
    async fn save_canned(
        &self,
        shortcut: &str,
        title: &str,
        text: &str,
        by: AgentId,
    ) -> Result<Canned, StoreError>;

    async fn delete_canned(&self, id: i64) -> Result<(), StoreError>;

    /// The agent has opened the conversation: its mentions of them are seen.
    async fn mark_mentions_seen(
        &self,
        agent: AgentId,
        conversation: ConversationId,
    ) -> Result<u64, StoreError>;

    /// Counts a failed login for an email (on every instance); `Some(until)` when it is
    /// locked now: `max` failures within `lockout`.
    async fn login_failed(
        &self,
        email: &str,
        max: u32,
        lockout: Duration,
    ) -> Result<Option<Timestamp>, StoreError>;

    /// Until when logins for this email are refused, if they are.
    async fn login_locked_until(&self, email: &str) -> Result<Option<Timestamp>, StoreError>;

    async fn login_succeeded(&self, email: &str) -> Result<(), StoreError>;

    /// Keeps a file for a conversation (an agent's attachment).
    async fn save_file(
        &self,
        conversation: ConversationId,
        name: &str,
        content_type: &str,
        sha256: &str,
        data: Vec<u8>,
    ) -> Result<StoredFile, StoreError>;

    async fn file(&self, id: i64) -> Result<Option<(StoredFile, Vec<u8>)>, StoreError>;

    /// The inbox's language for an agent: `en` or `zh`.
    async fn set_agent_locale(&self, agent: AgentId, locale: &str) -> Result<(), StoreError>;

    /// An agent's live API tokens (never the tokens themselves).
    async fn api_tokens(&self, agent: AgentId) -> Result<Vec<ApiToken>, StoreError>;

    /// Revokes one of the agent's own tokens.
    async fn revoke_api_token(&self, agent: AgentId, id: i64) -> Result<(), StoreError>;

    /// Per channel account: when a customer last wrote, when a reply last left, what
    /// waits, the last delivery error.
    async fn channel_activity(&self) -> Result<Vec<ChannelActivity>, StoreError>;

    /// Takes (or renews) the lease of an outbound webhook's cursor for `lease`; `None`
    /// while another instance holds it. A webhook seen the first time starts at the
    /// newest event.
    async fn claim_webhook(
        &self,
        name: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<WebhookCursor>, StoreError>;

    /// Moves a webhook's cursor to `to` (the lease holder only): `delivered`, or given
    /// up on. Clears the attempts.
    async fn advance_webhook(
        &self,
        name: &str,
        owner: &str,
        to: EventId,
        delivered: bool,
    ) -> Result<bool, StoreError>;

    /// Records a failed delivery attempt and when to try again.
    async fn webhook_failed(
        &self,
        name: &str,
        owner: &str,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Every webhook's cursor, for the channel status page.
    async fn webhooks(&self) -> Result<Vec<WebhookState>, StoreError>;

    /// A website-chat visitor (the thread `thread_key` of `account`) leaves an email
    /// address for replies (at most five): kept apart from identities, since an
    /// address typed into a chat proves nothing and mail from it must not join them.
    async fn leave_email(
        &self,
        account: &ChannelAccount,
        thread_key: &str,
        email: &str,
    ) -> Result<EmailLeft, StoreError>;

    /// A one-use code that joins a customer's other channel (a Telegram deep link) to
    /// the contact of `conversation`, until `expires_at`.
    async fn create_link_code(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        code: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Uses a link code: the conversation it was made for, if it is unused and
    /// unexpired; it cannot be used again.
    async fn redeem_link_code(
        &self,
        code: &str,
        now: Timestamp,
    ) -> Result<Option<ConversationId>, StoreError>;

    /// The intent the bot recognised in a conversation, for reports: the first one
    /// stays (what the conversation was about). Bookkeeping, not an event.
    async fn note_intent(&self, id: ConversationId, intent: &str) -> Result<(), StoreError>;

    /// Addresses a website-chat visitor left for replies, oldest first.
    async fn visitor_emails(
        &self,
        contact: frontdesk_core::ContactId,
    ) -> Result<Vec<String>, StoreError>;

    /// Business hours admins set in the pages: (team, JSON of the hours' fields).
    async fn team_hours(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// Replaces a team's hours (JSON, checked by the caller); in the audit log.
    async fn set_team_hours(&self, team: &str, config: &str, by: &str) -> Result<(), StoreError>;
}

/// What came of a visitor's email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailLeft {
    /// The visitor's latest conversation.
    pub conversation: ConversationId,
    pub contact: frontdesk_core::ContactId,
    /// Another contact who has the address as an identity, if one does.
    pub other_contact: Option<frontdesk_core::ContactId>,
}

/// Where a webhook's deliveries stand, for the lease holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCursor {
    /// Delivered (or given up on) up to this event.
    pub last_event_id: EventId,
    /// Failed attempts at the next event.
    pub attempts: u32,
    /// Not before this time (a retry's backoff).
    pub due_at: Timestamp,
}

/// A webhook's state, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookState {
    pub name: String,
    pub last_event_id: EventId,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub delivered: u64,
    pub updated_at: Timestamp,
}

/// A live API token, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// What the database knows of a channel account's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelActivity {
    /// `channel:account`
    pub account: String,
    pub last_inbound_at: Option<Timestamp>,
    pub last_sent_at: Option<Timestamp>,
    pub queued: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// A reply an agent inserts by typing `/shortcut`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Canned {
    pub id: i64,
    /// Lower case letters, digits, `-`, `_`; typed after a `/`.
    pub shortcut: String,
    pub title: String,
    pub text: String,
}

/// A kept file, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredFile {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}
