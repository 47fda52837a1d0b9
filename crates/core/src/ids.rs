//! Typed row ids, so a message id can never be passed where a conversation id belongs.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type!(
    /// A customer, across all of their channel identities.
    ContactId,
    /// One conversation (a ticket) with one contact on one channel account.
    ConversationId,
    /// One message, inbound or outbound.
    MessageId,
    /// A human agent.
    AgentId,
    /// One row of the outbox: one attempt-tracked delivery of one message.
    OutboxId,
    /// One entry of the event log.
    EventId,
);
