//! Frontdesk's X channel: mentions, replies and direct messages on X API v2.
//!
//! - [`api`]: a thin client (OAuth 1.0a signing or OAuth 2.0 with refresh, X's error
//!   bodies, the rate-limit headers read against X's own clock).
//! - [`mapping`]: mentions and DM events to [`Inbound`](frontdesk_core::Inbound)s, as
//!   pure functions tested against X's documented JSON.
//! - [`text`]: X's weighted length, one cashtag a post, replies cut into threads.
//! - [`channel`]: [`XChannel`], receiving exactly once and replying where X allows.

pub mod api;
pub mod channel;
pub mod mapping;
pub mod text;

pub use api::{Auth, TokenKeeper};
pub use channel::{XChannel, XConfig};
