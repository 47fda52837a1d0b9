//! Frontdesk's Telegram channel, built in steps (see the README's "Not built yet"):
//!
//! - [`mapping`]: a Bot API update to an [`Inbound`](frontdesk_core::Inbound), as a pure
//!   function tested against real JSON.

pub mod mapping;

pub use mapping::{MapOptions, Mapped, map_update, message_key};
