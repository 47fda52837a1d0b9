//! The event log: what happened, in order, for the inbox and for other instances.

use crate::clock::Timestamp;
use crate::ids::{ConversationId, EventId, MessageId};
use crate::model::word_enum;
use serde::{Deserialize, Serialize};

word_enum!(
    /// What an event records.
    EventKind {
        ConversationCreated = "conversation_created",
        MessageCreated = "message_created",
        MessageEdited = "message_edited",
        ConversationUpdated = "conversation_updated",
        DeliverySent = "delivery_sent",
        DeliveryFailed = "delivery_failed",
        /// A first-response or resolution target passed.
        SlaBreached = "sla_breached",
        CsatReceived = "csat_received",
        /// A verified identity joined two contacts into one.
        ContactsMerged = "contacts_merged",
        AgentStatusChanged = "agent_status_changed",
    }
);

/// One entry of the event log. `data` never holds message text: subscribers read the
/// message by id, through the same access checks as everything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub kind: EventKind,
    pub conversation_id: Option<ConversationId>,
    pub message_id: Option<MessageId>,
    pub data: serde_json::Value,
    pub created_at: Timestamp,
}
