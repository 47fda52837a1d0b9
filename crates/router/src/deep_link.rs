//! Deep links: a way for a customer to reach us on another channel and be known there.
//!
//! An agent makes a one-use code for a conversation ([`new_code`]); the channel turns it
//! into a link (Telegram: `https://t.me/BOT?start=c_CODE`); when the customer opens it,
//! the conversation engine joins the two contacts
//! ([`ConversationEngine::on_deep_link`](crate::ConversationEngine::on_deep_link)).
//! Any other payload (`/start website_footer`) only tags the source.

/// Marks a payload as a link code.
pub const PREFIX: &str = "c_";
/// How long a link code can be used.
pub const VALID_DAYS: u64 = 7;

/// A fresh code: 128 random bits as hex (a Telegram payload allows 64 characters of
/// `A-Z a-z 0-9 _ -`).
pub fn new_code() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The label for a source payload: `source:` and the payload, lower case, only
/// `a-z 0-9 _ -` (a customer can type anything after /start), 32 characters at most.
pub fn source_label(payload: &str) -> String {
    let clean: String = payload
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(25)
        .collect();
    if clean.is_empty() {
        "source:unknown".into()
    } else {
        format!("source:{clean}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_becomes_a_label_the_store_accepts() {
        assert_eq!(source_label("Website_Footer"), "source:website_footer");
        assert_eq!(source_label("\"a,b\\c\""), "source:abc");
        assert_eq!(source_label("！！"), "source:unknown");
        assert!(source_label(&"x".repeat(100)).chars().count() <= 32);
    }

    #[test]
    fn codes_are_fresh_and_fit_a_telegram_payload() {
        let (a, b) = (new_code(), new_code());
        assert_ne!(a, b);
        assert!((PREFIX.len() + a.len()) <= 64);
    }
}
