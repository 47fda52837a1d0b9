//! Frontdesk's email channel, built in steps (see the README's "Not built yet"):
//!
//! - [`parse`]: a raw message to an [`Inbound`](frontdesk_core::Inbound): every charset,
//!   HTML to safe text, attachments with a size limit, quotes and signatures set
//!   apart, a malformed message kept with a warning.
//! - [`loops`]: which mail must never get an automatic answer.
//! - [`thread`]: which conversation a mail belongs to, and our replies' headers.

pub mod loops;
pub mod parse;
pub mod thread;
