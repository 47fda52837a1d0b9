//! Test doubles for Frontdesk, used only by tests.
//!
//! [`MemoryChannel`] stands in for a provider: it keeps an ordered log of inbound
//! messages the way Telegram keeps updates (each with an offset), hands them to the
//! intake from the stored cursor on, and records every delivery attempt, answering with
//! scripted outcomes. It lets a test drive ingest -> outbox -> deliver end to end and
//! check what a customer would have received, and when.

mod memory_channel;

pub use memory_channel::{Attempt, MemoryChannel};
