//! Frontdesk's answer engine.
//!
//! - [`kb`]: the knowledge-base file (intents, phrasings, answers, out-of-scope);
//! - [`text`]: normalisation (NFKC, case, traditional to simplified), language
//!   detection, features (words and their character n-grams, Chinese character n-grams,
//!   token bigrams);
//! - [`model`]: TF-IDF + multinomial logistic regression trained at load time, with
//!   temperature-calibrated confidence;
//! - [`engine`]: handoff requests first, then triggers, then the model and its
//!   threshold; returns intent, confidence, language, action, answer and entities;
//! - [`entities`]: transaction hashes, addresses, email addresses, amounts;
//! - [`eval`]: accuracy, macro-F1, coverage and latency on labelled CSV files.

pub mod engine;
pub mod entities;
pub mod eval;
pub mod kb;
pub mod model;
pub mod text;

pub use engine::{Decision, Engine, EngineOptions, Match};
pub use kb::KnowledgeBase;

/// The languages the bot answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Zh,
    En,
}
