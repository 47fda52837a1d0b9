//! Frontdesk's email channel, built in steps (see the README's "Not built yet"):
//!
//! - [`parse`]: a raw message to an [`Inbound`](frontdesk_core::Inbound): every charset,
//!   HTML to safe text, attachments with a size limit, quotes and signatures set
//!   apart, a malformed message kept with a warning.
//! - [`loops`]: which mail must never get an automatic answer.
//! - [`thread`]: which conversation a mail belongs to, and our replies' headers.
//! - [`net`]: where the servers are and how to reach them (TLS, STARTTLS).
//! - [`channel`]: [`EmailChannel`], IMAP intake with IDLE and SMTP replies.

pub mod channel;
pub mod loops;
pub mod net;
pub mod parse;
pub mod thread;

pub use channel::{EmailChannel, EmailConfig};
