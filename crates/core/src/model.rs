//! Contacts, conversations and messages.

use crate::channel::{ChannelAccount, ChannelKind};
use crate::clock::Timestamp;
use crate::envelope::Attachment;
use crate::filter::Finding;
use crate::ids::{AgentId, ContactId, ConversationId, MessageId};
use serde::{Deserialize, Serialize};

/// Declares a fieldless enum that is stored and shown as a fixed lower-case word,
/// with `as_str` and a `parse` that names the accepted words when it fails.
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        // In JSON as in the database: the same word.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = String::deserialize(d)?;
                Self::parse(&word).map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            pub fn parse(s: &str) -> Result<Self, $crate::model::UnknownWord> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err($crate::model::UnknownWord {
                        what: stringify!($name),
                        got: s.chars().take(40).collect(),
                        expected: &[$($word),+],
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::model::UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Self::parse(s) }
        }
    };
}
pub(crate) use word_enum;

/// A word that is not one of an enum's accepted words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {got:?}; expected one of {expected:?}")]
pub struct UnknownWord {
    pub what: &'static str,
    pub got: String,
    pub expected: &'static [&'static str],
}

word_enum!(
    /// Where a conversation stands.
    Status {
        /// The bot is handling it; no human has been asked yet.
        Bot = "bot",
        /// Handed to the agents: queued or assigned.
        Open = "open",
        /// Waiting on the customer.
        Pending = "pending",
        /// Put aside until a time.
        Snoozed = "snoozed",
        /// Done. A new customer message may reopen it or start a new one.
        Resolved = "resolved",
    }
);

word_enum!(
    /// How urgent a conversation is; the queue serves urgent first.
    Priority {
        Low = "low",
        Normal = "normal",
        High = "high",
        Urgent = "urgent",
    }
);

word_enum!(
    /// Whether a message came from the customer or goes to them.
    Direction {
        In = "in",
        Out = "out",
    }
);

word_enum!(
    /// Who wrote a message.
    Author {
        Contact = "contact",
        Bot = "bot",
        Agent = "agent",
        System = "system",
    }
);

word_enum!(
    /// What a message is: text for the customer, a private note among agents, or a
    /// record of something that happened (handoff, assignment).
    MessageKind {
        Text = "text",
        Note = "note",
        Event = "event",
    }
);

/// One way to reach a contact: their id on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub channel: ChannelKind,
    /// The channel's own id for the person (Telegram user id, email address, X user id,
    /// webchat visitor id).
    pub external_id: String,
    pub display_name: Option<String>,
    /// When the contact proved it is theirs (an email address, by a code).
    #[serde(default)]
    pub verified_at: Option<Timestamp>,
    /// Why replies cannot reach them here (they blocked the bot), until they write again.
    #[serde(default)]
    pub unreachable: Option<String>,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub name: Option<String>,
    /// A language hint ("zh", "en"), from the channel or from what they wrote.
    pub language: Option<String>,
    pub identities: Vec<Identity>,
    pub created_at: Timestamp,
}

/// A conversation (ticket) with one contact, on one channel account, for one thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub account: ChannelAccount,
    pub contact_id: ContactId,
    pub contact_name: Option<String>,
    /// The channel's notion of a thread: a Telegram chat id, an email thread root, an X
    /// conversation id plus author, a webchat visitor.
    pub thread_key: String,
    pub status: Status,
    pub priority: Priority,
    pub assignee: Option<AgentId>,
    pub team: Option<String>,
    pub labels: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_message_at: Timestamp,
    pub snoozed_until: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    /// How many customer messages in a row the bot could not answer.
    pub bot_misses: u32,
    /// The agent tier that must handle it (1, or 2 after an escalation).
    pub tier: u8,
    /// When it first reached the people's queue (handed off); its place in the queue.
    pub queued_at: Option<Timestamp>,
    /// When the status last changed.
    pub status_since: Timestamp,
    /// The first reply of an agent to the customer.
    pub first_response_at: Option<Timestamp>,
    /// SLA targets, set at handoff from the priority.
    pub first_response_due: Option<Timestamp>,
    pub resolution_due: Option<Timestamp>,
    pub first_response_breached: bool,
    pub resolution_breached: bool,
    /// How many times a customer message reopened it after it was resolved.
    pub reopened: u32,
    /// The customer's language ("zh", "en"), as last seen in what they wrote.
    pub language: Option<String>,
}

/// A previous text of a message that was edited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub text: String,
    /// When this text was replaced.
    pub replaced_at: Timestamp,
}

/// How far an outbound message has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "state")]
pub enum Delivery {
    Queued,
    Sent,
    Failed { reason: String },
}

/// One message in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub author: Author,
    pub agent_id: Option<AgentId>,
    pub kind: MessageKind,
    /// The text as stored: already filtered (secrets redacted) for inbound messages.
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// What the inbound filter found (kinds and positions, never the secret itself).
    pub findings: Vec<Finding>,
    /// Transaction hashes, addresses, amounts... in the text, for agents to copy.
    pub entities: Vec<crate::filter::Entity>,
    /// The channel's id for this message (inbound), or the id the channel gave it when
    /// it was sent (outbound).
    pub external_id: Option<String>,
    /// Outbound only: the delivery state; `None` for inbound messages and notes.
    pub delivery: Option<Delivery>,
    pub edits: Vec<Edit>,
    /// Outbound only: answers offered as buttons (a clarifying question, the survey).
    #[serde(default)]
    pub quick_replies: Vec<String>,
    pub created_at: Timestamp,
}

word_enum!(
    /// Whether an agent takes conversations now.
    AgentStatus {
        /// Working: gets new conversations up to their capacity.
        Online = "online",
        /// Stepped away: keeps their conversations for a while, gets no new ones.
        Away = "away",
        /// Not working: their conversations go back to the queue.
        Offline = "offline",
    }
);

word_enum!(
    /// What an agent may do.
    Role {
        Admin = "admin",
        Supervisor = "supervisor",
        Agent = "agent",
    }
);

/// A human agent (never carries the password hash out of the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
    pub status: AgentStatus,
    /// When the status last changed.
    pub status_since: Timestamp,
    /// Open conversations at most, for auto-assignment.
    pub capacity: u32,
    /// 1 (first line) or 2 (senior staff).
    pub tier: u8,
    pub teams: Vec<String>,
    /// When auto-assignment last gave them a conversation (round-robin order).
    pub last_assigned_at: Option<Timestamp>,
    /// The inbox's language for them: `en` or `zh`.
    pub locale: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_read_the_same_in_json_as_in_the_database() {
        let kind = crate::EventKind::MessageCreated;
        assert_eq!(serde_json::to_value(kind).unwrap(), "message_created");
        let back: crate::EventKind = serde_json::from_str("\"message_created\"").unwrap();
        assert_eq!(back, kind);
        assert!(serde_json::from_str::<crate::Status>("\"closed\"").is_err());
    }
}
