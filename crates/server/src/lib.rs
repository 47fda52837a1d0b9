//! The Frontdesk binary as a library, so tests can run the whole app in-process.
//!
//! - [`config`]: defaults, TOML file, `FRONTDESK_*` overrides, every error at once;
//! - [`app`]: builds the store from the URL, the channels and the workers, and runs them
//!   with the HTTP server until shutdown;
//! - [`faq`]: `frontdesk faq match|eval`, the answer engine on the command line;
//! - [`logging`]: tracing to stderr, readable or JSON;
//! - [`passwords`]: argon2id hashes for agent logins;
//! - [`bench`]: `frontdesk bench`, measured against a bare baseline in the same run.

pub mod app;
pub mod bench;
pub mod config;
pub mod faq;
pub mod logging;
pub mod passwords;
