//! Test doubles for Frontdesk, used only by tests.
//!
//! [`MemoryChannel`] stands in for a provider: it keeps an ordered log of inbound
//! messages the way Telegram keeps updates (each with an offset), hands them to the
//! intake from the stored cursor on, and records every delivery attempt, answering with
//! scripted outcomes. It lets a test drive ingest -> outbox -> deliver end to end and
//! check what a customer would have received, and when.
//!
//! [`FakeTelegram`] is the Telegram Bot API on 127.0.0.1, for the real client.

mod memory_channel;
pub mod telegram;

pub use memory_channel::{Attempt, MemoryChannel};
pub use telegram::FakeTelegram;
