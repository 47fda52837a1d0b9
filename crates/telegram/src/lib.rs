//! Frontdesk's Telegram channel: the official bot through teloxide.
//!
//! - [`mapping`]: a Bot API update to an [`Inbound`](frontdesk_core::Inbound), as a pure
//!   function tested against real JSON.
//! - [`channel`]: [`TelegramChannel`], receiving by long polling or webhook exactly once,
//!   sending paced replies, fetching customers' files for agents.
//! - `pace`: sends paced to Telegram's limits, each at once when within them.
//! - [`split`]: replies cut to Telegram's 4096 UTF-16 units and escaped for HTML.
//! - [`webhook`]: the webhook endpoint on Frontdesk's own server.

pub mod channel;
pub mod mapping;
mod pace;
pub mod split;
pub mod webhook;

pub use channel::{MAX_DOWNLOAD, Mode, TelegramChannel, TelegramConfig, webhook_path};
pub use mapping::{MapOptions, Mapped, map_unreadable, map_update, message_key};
