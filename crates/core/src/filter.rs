//! The seam where inbound text is filtered before anything stores, logs or emits it.
//!
//! The store's ingest calls a [`TextFilter`] on every inbound text first. The guard
//! (recovery phrases, private keys) plugs in here; until it is configured, [`NoFilter`]
//! passes text through unchanged.

use serde::{Deserialize, Serialize};

/// Something a filter found and removed. Positions are byte offsets into the filtered
/// (stored) text, covering the marker that replaced the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

/// Filtered text and what was found in it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filtered {
    pub text: String,
    pub findings: Vec<Finding>,
}

/// Rewrites inbound text before it is stored.
pub trait TextFilter: Send + Sync + std::fmt::Debug {
    fn filter(&self, text: &str) -> Filtered;
}

/// Lets text through unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFilter;

impl TextFilter for NoFilter {
    fn filter(&self, text: &str) -> Filtered {
        Filtered {
            text: text.to_owned(),
            findings: Vec::new(),
        }
    }
}
