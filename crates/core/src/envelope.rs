//! The envelopes that cross between adapters and the rest of Frontdesk.

use crate::channel::ChannelAccount;
use crate::clock::Timestamp;
use crate::ids::{ConversationId, MessageId, OutboxId};
use serde::{Deserialize, Serialize};

/// The longest message text accepted (bytes of UTF-8). Longer bodies belong in an
/// attachment; the adapter decides how to keep them.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// The longest id, thread key or sender id accepted (bytes).
pub const MAX_ID_BYTES: usize = 512;

/// Thread keys that begin with this are threads everybody can read (replies to a post
/// on X). Nothing there may ask for or show account details: the bot does not ask for
/// an email address in one, and the channel refuses a public reply that carries them.
pub const PUBLIC_THREAD: &str = "public:";

/// Whether a conversation with this thread key is read by the public.
pub fn is_public_thread(thread_key: &str) -> bool {
    thread_key.starts_with(PUBLIC_THREAD)
}

/// Metadata of a file that came with or goes with a message. The bytes stay with the
/// channel (fetched on demand) or in the attachment store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// The channel's handle for the file (Telegram file_id, MIME part path, URL).
    pub reference: String,
}

/// Who sent an inbound message, as the channel names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The channel's id for the person; with the channel kind, it finds the contact.
    pub external_id: String,
    pub display_name: Option<String>,
    /// A language hint from the channel (Telegram `language_code`).
    pub language: Option<String>,
}

/// One thing a customer sent, normalised by an adapter.
///
/// Build it with [`Inbound::new`], which checks the limits; the fields are public for
/// reading, and the optional ones may be filled in afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    pub account: ChannelAccount,
    /// Unique per account for this delivery: the same id twice is the same message.
    pub external_id: String,
    pub sender: Sender,
    /// Which conversation this belongs to on the channel's side.
    pub thread_key: String,
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// When the customer sent it, by the channel's clock.
    pub sent_at: Option<Timestamp>,
    /// Set when this is a new version of an earlier message (its external id).
    pub edit_of: Option<String>,
    /// The external id of the message this one answers, if the channel says.
    pub reply_to: Option<String>,
    /// Whatever else the adapter needs later (email Message-ID and References, the
    /// Telegram chat id). Kept with the message.
    pub meta: serde_json::Value,
}

/// Why an inbound message was refused at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInbound {
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{field} is {len} bytes, more than the {max} allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

fn check_id(field: &'static str, value: &str) -> Result<(), InvalidInbound> {
    if value.trim().is_empty() {
        return Err(InvalidInbound::Empty(field));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(InvalidInbound::TooLong {
            field,
            len: value.len(),
            max: MAX_ID_BYTES,
        });
    }
    Ok(())
}

/// NUL cannot be stored in PostgreSQL text and has no meaning in a message.
fn without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

impl Inbound {
    pub fn new(
        account: ChannelAccount,
        external_id: impl Into<String>,
        sender: Sender,
        thread_key: impl Into<String>,
        text: impl Into<String>,
    ) -> Result<Self, InvalidInbound> {
        let external_id = without_nul(external_id.into());
        let thread_key = without_nul(thread_key.into());
        let text = without_nul(text.into());
        let sender = Sender {
            external_id: without_nul(sender.external_id),
            display_name: sender.display_name.map(without_nul),
            language: sender.language.map(without_nul),
        };
        check_id("external id", &external_id)?;
        check_id("thread key", &thread_key)?;
        check_id("sender id", &sender.external_id)?;
        if text.len() > MAX_TEXT_BYTES {
            return Err(InvalidInbound::TooLong {
                field: "text",
                len: text.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        Ok(Self {
            account,
            external_id,
            sender,
            thread_key,
            text,
            attachments: Vec::new(),
            sent_at: None,
            edit_of: None,
            reply_to: None,
            meta: serde_json::Value::Null,
        })
    }

    /// Whether the conversation engine acts on this message once it is stored with
    /// `findings` secrets found in it: a new message is a turn, an edit is not, and
    /// nothing answers an automatic mail (an auto-reply, a bounce: a loop otherwise);
    /// a secret is acted on whatever brought it.
    pub fn wants_turn(&self, findings: usize) -> bool {
        (self.edit_of.is_none() && self.meta["automatic"].is_null()) || findings > 0
    }
}

/// One message to send, as the delivery worker hands it to the adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    pub outbox_id: OutboxId,
    /// 1 for the first try.
    pub attempt: u32,
    pub account: ChannelAccount,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    /// The contact's id on this channel.
    pub recipient: String,
    pub thread_key: String,
    /// The external id of the customer's latest message, to reply to where the channel
    /// threads replies.
    pub reply_to: Option<String>,
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// The `meta` of the customer's latest message (email headers to thread on).
    pub meta: serde_json::Value,
    /// Answers the customer can tap, where the channel has buttons (Telegram's inline
    /// keyboard); channels without them have the choices in the text already.
    pub quick_replies: Vec<String>,
    /// Written by the bot or the system, not a person: email marks it
    /// `Auto-Submitted: auto-replied` and sends a sender only a few an hour.
    #[serde(default)]
    pub automatic: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelKind;

    fn sender(id: &str) -> Sender {
        Sender {
            external_id: id.into(),
            display_name: None,
            language: None,
        }
    }

    fn webchat() -> ChannelAccount {
        ChannelAccount::default_of(ChannelKind::Webchat)
    }

    #[test]
    fn an_inbound_without_an_id_is_refused() {
        let e = Inbound::new(webchat(), " ", sender("v1"), "t", "hi").unwrap_err();
        assert_eq!(e, InvalidInbound::Empty("external id"));
    }

    #[test]
    fn an_oversized_text_is_refused_with_its_size() {
        let big = "x".repeat(MAX_TEXT_BYTES + 1);
        let e = Inbound::new(webchat(), "1", sender("v1"), "t", big).unwrap_err();
        assert!(e.to_string().contains("1048577 bytes"), "{e}");
    }

    #[test]
    fn nul_characters_are_replaced_not_stored() {
        let m = Inbound::new(webchat(), "1", sender("v\u{0}1"), "t", "a\0b").unwrap();
        assert_eq!(m.text, "a\u{FFFD}b");
        assert_eq!(m.sender.external_id, "v\u{FFFD}1");
    }
}
