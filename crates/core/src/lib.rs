//! The domain of Frontdesk, free of I/O.
//!
//! Everything that crosses a boundary is turned into these types at the edge, by
//! `parse`/`new` constructors that reject what cannot be trusted, so the store, the
//! router and the web layer can rely on their inputs:
//!
//! - [`model`]: contacts, conversations, messages and their small enums;
//! - [`envelope`]: [`Inbound`] (what an adapter received) and [`Outbound`] (what the
//!   delivery worker hands back to an adapter);
//! - [`channel`]: the [`Channel`] trait every adapter implements, and the [`Intake`]
//!   it pushes into;
//! - [`event`]: what happened, for the inbox and other instances;
//! - [`filter`]: the seam where inbound text is filtered before it is stored;
//! - [`clock`]: timestamps and the clock that tests can pause;
//! - [`split`]: long replies cut where a reader would cut them, for every channel.

pub mod channel;
pub mod clock;
pub mod envelope;
pub mod event;
pub mod filter;
pub mod ids;
pub mod model;
pub mod split;

pub use channel::{
    Channel, ChannelAccount, ChannelContext, ChannelKind, DeliveryOutcome, FileBody, FileError,
    Files, Health, HealthCell, IngestOutcome, Intake, IntakeError, MemoryProgress, Pieces,
    Progress, json_error, pause, reconnect_backoff,
};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use envelope::{Attachment, Inbound, InvalidInbound, Outbound, Sender};
pub use event::{Event, EventKind};
pub use filter::{Entity, Filtered, Finding, NoFilter, OutboundCheck, TextFilter};
pub use ids::{AgentId, ContactId, ConversationId, EventId, MessageId, OutboxId};
pub use model::{
    Agent, AgentStatus, Author, Contact, Conversation, Delivery, Direction, Edit, Identity,
    Message, MessageKind, Priority, Role, Status, UnknownWord,
};
