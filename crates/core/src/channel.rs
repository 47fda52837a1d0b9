//! Channels: the kinds, the accounts, and the trait every adapter implements.
//!
//! An adapter does two things. `run` receives from the outside world and pushes each
//! [`Inbound`] into the [`Intake`], which stores it in one transaction together with the
//! adapter's cursor; only then may the adapter acknowledge it upstream. `deliver` sends
//! one [`Outbound`] and says how it went; the delivery worker owns retries and backoff.

use crate::envelope::{Inbound, Outbound};
use crate::ids::{ConversationId, MessageId, OutboxId};
use crate::model::word_enum;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

word_enum!(
    /// The kinds of channel customers write on.
    ChannelKind {
        Telegram = "telegram",
        Email = "email",
        X = "x",
        Webchat = "webchat",
    }
);

/// One configured account of a channel kind: the support bot, one mailbox, the X
/// account. Written `kind:name`, e.g. `email:support`; the name defaults to `default`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelAccount {
    kind: ChannelKind,
    name: String,
}

/// Why a channel account name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAccount {
    #[error(transparent)]
    Kind(#[from] crate::model::UnknownWord),
    #[error("account name must be 1-64 characters of a-z, 0-9, '-' or '_', got {0:?}")]
    Name(String),
}

impl ChannelAccount {
    pub const DEFAULT_NAME: &'static str = "default";

    pub fn new(kind: ChannelKind, name: &str) -> Result<Self, InvalidAccount> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(InvalidAccount::Name(name.chars().take(70).collect()));
        }
        Ok(Self {
            kind,
            name: name.to_owned(),
        })
    }

    /// The account called `default` of a kind.
    pub fn default_of(kind: ChannelKind) -> Self {
        Self {
            kind,
            name: Self::DEFAULT_NAME.to_owned(),
        }
    }

    /// Parses `kind` or `kind:name`.
    pub fn parse(s: &str) -> Result<Self, InvalidAccount> {
        match s.split_once(':') {
            Some((kind, name)) => Self::new(ChannelKind::parse(kind)?, name),
            None => Ok(Self::default_of(ChannelKind::parse(s)?)),
        }
    }

    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ChannelAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

impl fmt::Debug for ChannelAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for ChannelAccount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChannelAccount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ChannelAccount::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The channel accepted it; `external_id` is the channel's id for the sent message
    /// where it gives one.
    Sent { external_id: Option<String> },
    /// The channel asked us to wait (Telegram 429 `retry_after`, X rate-limit reset).
    /// The next attempt is not made before this much time has passed.
    RetryAfter(Duration),
    /// Something that may pass (network error, 5xx): retry with backoff.
    Transient(String),
    /// It will never work (invalid recipient, a message the channel refuses, 5xx SMTP
    /// reply): stop and show the reason to the agents.
    Permanent(String),
    /// The recipient cannot be reached on this channel (they blocked the bot, deleted
    /// their account): a permanent failure, and the contact is marked unreachable there
    /// until they write again. Normal in a support team's day; not an error.
    Unreachable(String),
}

/// A file's name, type and bytes: one an agent attached (read from the store), or one a
/// customer sent (fetched from the channel).
#[derive(Clone, PartialEq, Eq)]
pub struct FileBody {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for FileBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes are somebody's document: their size is enough for a log.
        f.debug_struct("FileBody")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// Why a file could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// No such file, or this channel does not keep files by that reference.
    #[error("no such file")]
    NotFound,
    /// Bigger than the channel lets us fetch (Telegram: 20 MB).
    #[error("the file is {size} bytes, more than the {max} that can be fetched")]
    TooBig { size: u64, max: u64 },
    /// The channel or the store did not answer; try again later.
    #[error("cannot fetch the file now: {0}")]
    Unavailable(String),
}

/// Where adapters read the files agents attach to replies (`file:ID` references).
#[async_trait::async_trait]
pub trait Files: Send + Sync + fmt::Debug {
    async fn read(&self, reference: &str) -> Result<FileBody, FileError>;
}

/// Where a channel keeps its own note on one delivery across attempts, restarts and
/// crashes: how many pieces of a long reply went out and the ids they got, the
/// Message-ID a mail goes out with. The server keeps notes in the outbox row
/// (`frontdesk_router::StoredProgress`); [`MemoryProgress`] serves tests and tools.
#[async_trait::async_trait]
pub trait Progress: Send + Sync + fmt::Debug {
    /// The note on delivery `outbox`, if a earlier attempt left one.
    async fn load(&self, outbox: OutboxId) -> Result<Option<serde_json::Value>, String>;
    /// Replaces the note; `Null` clears it.
    async fn save(&self, outbox: OutboxId, note: &serde_json::Value) -> Result<(), String>;
}

/// Notes kept in this process's memory: they do not outlive it.
#[derive(Debug, Default)]
pub struct MemoryProgress(std::sync::Mutex<std::collections::HashMap<OutboxId, serde_json::Value>>);

#[async_trait::async_trait]
impl Progress for MemoryProgress {
    async fn load(&self, outbox: OutboxId) -> Result<Option<serde_json::Value>, String> {
        let notes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok(notes.get(&outbox).cloned())
    }

    async fn save(&self, outbox: OutboxId, note: &serde_json::Value) -> Result<(), String> {
        let mut notes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if note.is_null() {
            notes.remove(&outbox);
        } else {
            notes.insert(outbox, note.clone());
        }
        Ok(())
    }
}

/// How far a reply in several pieces has gone: the [`Progress`] note of the channels
/// that cut long replies (Telegram, X).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pieces {
    /// Pieces sent, counted from the first.
    pub done: usize,
    /// The channel's id for the first piece (the reply's id).
    pub first: Option<String>,
    /// The channel's id for the last piece sent (what the next one answers).
    pub last: Option<String>,
}

impl Pieces {
    /// What earlier attempts of `out` sent. Only a retry can have a note, so a first
    /// attempt costs no read. An error means the note cannot be read now: sending
    /// anyway could repeat pieces.
    pub async fn of(progress: &dyn Progress, out: &Outbound) -> Result<Pieces, String> {
        if out.attempt <= 1 {
            return Ok(Pieces::default());
        }
        let note = progress.load(out.outbox_id).await?;
        // A note this version cannot read is treated as none: at worst a piece repeats.
        Ok(note
            .and_then(|n| serde_json::from_value(n).ok())
            .unwrap_or_default())
    }

    /// Records that the next piece went out as `id`, of `total` pieces. The last is
    /// not noted: the delivery worker records the whole reply as sent next. A note
    /// that cannot be written is logged and sending goes on (only a crash before the
    /// reply is recorded would then repeat a piece).
    pub async fn sent(
        &mut self,
        progress: &dyn Progress,
        out: &Outbound,
        id: Option<String>,
        total: usize,
    ) {
        self.done += 1;
        if self.first.is_none() {
            self.first.clone_from(&id);
        }
        self.last = id;
        if self.done >= total {
            return;
        }
        let note = serde_json::to_value(&*self).unwrap_or_default();
        if let Err(e) = progress.save(out.outbox_id, &note).await {
            tracing::warn!(outbox_id = %out.outbox_id, error = %e, "cannot note the pieces sent");
        }
    }
}

/// A channel's own view of whether it works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub ok: bool,
    /// Why not, or a short status ("polling", "webhook set").
    pub detail: String,
}

impl Health {
    pub fn ok(detail: impl Into<String>) -> Self {
        Self {
            ok: true,
            detail: detail.into(),
        }
    }

    pub fn failing(detail: impl Into<String>) -> Self {
        Self {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// A channel's health as its own tasks last saw it; "starting" until they say more.
#[derive(Debug)]
pub struct HealthCell(std::sync::Mutex<Health>);

impl Default for HealthCell {
    fn default() -> Self {
        Self(std::sync::Mutex::new(Health::failing("starting")))
    }
}

impl HealthCell {
    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        // A task that panicked must not hide the channel's state from `/readyz`.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the channel's state; says whether it changed (worth a log line).
    pub fn set(&self, now: Health) -> bool {
        let mut health = self.lock();
        let changed = *health != now;
        *health = now;
        changed
    }

    pub fn get(&self) -> Health {
        self.lock().clone()
    }
}

/// The result of handing one inbound message to the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored, and committed together with the cursor the adapter passed.
    Stored {
        conversation_id: ConversationId,
        message_id: MessageId,
        /// The message opened a new conversation.
        new_conversation: bool,
        /// Secrets the inbound filter removed before storing it.
        findings: usize,
    },
    /// This (account, external id) was stored before; nothing changed but the cursor.
    Duplicate,
}

/// Why an inbound message could not be taken. The adapter must not advance its cursor
/// past it; it will see it again after a retry or restart.
#[derive(Debug, thiserror::Error)]
#[error("intake failed: {message}")]
pub struct IntakeError {
    pub message: String,
    /// The database's disk is full: nothing is taken until there is room again.
    pub disk_full: bool,
}

impl IntakeError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            disk_full: false,
        }
    }
}

/// Where adapters push what they receive.
#[async_trait::async_trait]
pub trait Intake: Send + Sync + fmt::Debug {
    /// The cursor stored with the last committed ingest of this account (Telegram
    /// offset, IMAP UIDVALIDITY and UID, X since_id), if any.
    async fn cursor(&self, account: &ChannelAccount) -> Result<Option<String>, IntakeError>;

    /// Stores `inbound` exactly once and, in the same transaction, `cursor` as the
    /// account's new cursor. When this returns `Ok` the message is durable.
    async fn ingest(
        &self,
        inbound: Inbound,
        cursor: Option<String>,
    ) -> Result<IngestOutcome, IntakeError>;

    /// Stores `cursor` as the account's cursor with no message: where a first run
    /// starts reading, so that a restart before the first message goes on from there.
    async fn move_cursor(
        &self,
        account: &ChannelAccount,
        cursor: String,
    ) -> Result<(), IntakeError>;

    /// The thread key of the conversation that holds a customer message with one of
    /// these external ids on `account` (the newest such message), for channels whose
    /// replies name earlier messages (email's In-Reply-To and References).
    async fn thread_of_messages(
        &self,
        account: &ChannelAccount,
        external_ids: &[String],
    ) -> Result<Option<String>, IntakeError> {
        let _ = (account, external_ids);
        Ok(None)
    }

    /// The thread key of conversation `id`, if it is on `account` (a ticket token in an
    /// email subject names a conversation).
    async fn thread_of_conversation(
        &self,
        account: &ChannelAccount,
        id: ConversationId,
    ) -> Result<Option<String>, IntakeError> {
        let _ = (account, id);
        Ok(None)
    }
}

/// How long a channel waits before it tries its provider again after `failures`
/// failures in a row: 1, 2, 4 ... 60 seconds.
pub fn reconnect_backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// Where JSON from a provider could not be read, without the value itself: serde's
/// message quotes the offending value, which may be a customer's text.
pub fn json_error(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

/// Sleeps for `wait` unless `stop` fires first; says whether to go on (every channel's
/// wait between two tries).
pub async fn pause(stop: &CancellationToken, wait: Duration) -> bool {
    stop.run_until_cancelled(tokio::time::sleep(wait))
        .await
        .is_some()
}

/// What `Channel::run` gets: where to push, and when to stop.
#[derive(Debug, Clone)]
pub struct ChannelContext {
    pub intake: std::sync::Arc<dyn Intake>,
    pub shutdown: CancellationToken,
}

/// A channel adapter: one account of one channel kind.
#[async_trait::async_trait]
pub trait Channel: Send + Sync + fmt::Debug {
    fn account(&self) -> &ChannelAccount;

    /// Receives until `ctx.shutdown` is cancelled, pushing every inbound message into
    /// `ctx.intake`. Returns an error only for what retrying cannot fix (bad config).
    async fn run(&self, ctx: ChannelContext) -> Result<(), String>;

    /// Sends one message. Must not retry by itself: the delivery worker does.
    async fn deliver(&self, outbound: &Outbound) -> DeliveryOutcome;

    /// Whether the channel can reach its provider now.
    async fn health(&self) -> Health;

    /// A link that opens a chat with us on this channel carrying `payload` (Telegram's
    /// `https://t.me/BOT?start=PAYLOAD`), where the channel has such links and knows
    /// its own name by now.
    fn invite_link(&self, payload: &str) -> Option<String> {
        let _ = payload;
        None
    }

    /// A file a customer sent, by its attachment reference (Telegram `telegram:FILE_ID`),
    /// for an agent to open. Channels that keep no files by reference have none.
    async fn fetch_file(&self, reference: &str) -> Result<FileBody, FileError> {
        let _ = reference;
        Err(FileError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_read_and_print_as_kind_colon_name() {
        let a = ChannelAccount::parse("email:support").unwrap();
        assert_eq!(a.kind(), ChannelKind::Email);
        assert_eq!(a.name(), "support");
        assert_eq!(a.to_string(), "email:support");
        assert_eq!(
            ChannelAccount::parse("telegram").unwrap().to_string(),
            "telegram:default"
        );
    }

    #[test]
    fn a_bad_account_says_what_was_expected() {
        let e = ChannelAccount::parse("fax:main").unwrap_err().to_string();
        assert!(e.contains("telegram"), "{e}");
        assert!(ChannelAccount::parse("email:Sup port").is_err());
        assert!(ChannelAccount::parse("email:").is_err());
    }
}
