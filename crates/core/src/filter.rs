//! The seams where text is checked on its way in and out.
//!
//! The store's ingest calls a [`TextFilter`] on every inbound text first, before
//! anything stores, logs or emits it; the guard (recovery phrases, private keys) plugs
//! in here. Every reply to a customer passes an [`OutboundCheck`] before its outbox row
//! is written; the guard refuses messages that ask for a secret. [`NoFilter`] does
//! neither, for tests of other parts.

use serde::{Deserialize, Serialize};

/// Something a filter found and removed. Positions are byte offsets into the filtered
/// (stored) text, covering the marker that replaced the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

/// Something in a message an agent will want to copy (a transaction hash, an address,
/// an amount), found in the filtered text. Byte offsets into that text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    pub kind: String,
    pub value: String,
    pub start: usize,
    pub end: usize,
}

/// Filtered text, what was removed from it, and what is worth pointing out in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filtered {
    pub text: String,
    pub findings: Vec<Finding>,
    pub entities: Vec<Entity>,
}

/// Rewrites inbound text before it is stored.
pub trait TextFilter: Send + Sync + std::fmt::Debug {
    fn filter(&self, text: &str) -> Filtered;
}

/// Decides whether a reply may be sent to a customer.
pub trait OutboundCheck: Send + Sync + std::fmt::Debug {
    /// `Err(reason)` refuses it; the reason is shown to whoever wrote it.
    fn check(&self, text: &str) -> Result<(), String>;
}

/// Lets text through unchanged, both ways.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFilter;

impl OutboundCheck for NoFilter {
    fn check(&self, _text: &str) -> Result<(), String> {
        Ok(())
    }
}

impl TextFilter for NoFilter {
    fn filter(&self, text: &str) -> Filtered {
        Filtered {
            text: text.to_owned(),
            findings: Vec::new(),
            entities: Vec::new(),
        }
    }
}
