//! Replies as Telegram takes them: at most 4096 characters a message, counted the way
//! Telegram counts (UTF-16 code units of the text after entities are parsed), sent in
//! HTML parse mode.
//!
//! Replies are plain text. The text is split first and each piece escaped afterwards,
//! so a cut never falls inside an escape (`&amp;`) or a tag, and every piece is valid
//! HTML on its own. Where a piece ends is core's choice
//! ([`frontdesk_core::split`]); how much fits is Telegram's.

/// The most Telegram shows in one message.
pub const MAX_UNITS: usize = 4096;

/// Splits `text` into pieces of at most `max` UTF-16 code units, trimmed, none empty.
pub fn split(text: &str, max: usize) -> Vec<&str> {
    frontdesk_core::split::split_within(text, |rest| prefix_within(rest, max))
}

/// The longest prefix of `s` (in bytes, on a character boundary) that is at most `max`
/// UTF-16 code units.
fn prefix_within(s: &str, max: usize) -> usize {
    let mut units = 0;
    for (at, ch) in s.char_indices() {
        units += ch.len_utf16();
        if units > max {
            return at;
        }
    }
    s.len()
}

/// Escapes text for Telegram's HTML parse mode (the three characters it requires).
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> usize {
        s.encode_utf16().count()
    }

    #[test]
    fn a_short_reply_is_one_piece() {
        assert_eq!(split("  您好！  ", MAX_UNITS), vec!["您好！"]);
        assert!(split(" \n ", MAX_UNITS).is_empty());
    }

    #[test]
    fn a_long_reply_splits_at_paragraphs_and_loses_nothing() {
        let paragraph = "Your withdrawal is confirmed on chain. ".repeat(40);
        let text = [paragraph.trim(); 4].join("\n\n");
        let pieces = split(&text, MAX_UNITS);
        assert!(pieces.len() >= 2);
        for p in &pieces {
            assert!(units(p) <= MAX_UNITS);
            assert!(
                p.ends_with("chain."),
                "cut inside a paragraph: …{}",
                &p[p.len() - 20..]
            );
        }
        let joined: String = pieces.concat();
        let squeezed: String = text.split_whitespace().collect();
        assert_eq!(joined.split_whitespace().collect::<String>(), squeezed);
    }

    #[test]
    fn chinese_without_spaces_splits_after_a_sentence() {
        let text = "请不要把助记词告诉任何人。".repeat(400);
        let pieces = split(&text, MAX_UNITS);
        assert!(pieces.len() >= 2);
        for p in &pieces {
            assert!(units(p) <= MAX_UNITS);
            assert!(p.ends_with('。'));
        }
    }

    #[test]
    fn emoji_are_counted_as_two_units_and_never_cut_in_half() {
        // Each 🔐 is two UTF-16 units: 4096 units hold 2048 of them.
        let text = "🔐".repeat(3000);
        let pieces = split(&text, MAX_UNITS);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].chars().count(), 2048);
        assert_eq!(pieces[1].chars().count(), 952);
    }

    #[test]
    fn escaping_comes_after_the_cut_so_every_piece_is_valid_html() {
        let text = "a<b & c>d ".repeat(1000);
        for piece in split(&text, MAX_UNITS) {
            let html = escape_html(piece);
            assert!(!html.contains('<') && !html.contains('>'));
            assert!(
                html.matches('&').count()
                    == html.matches("&amp;").count()
                        + html.matches("&lt;").count()
                        + html.matches("&gt;").count()
            );
        }
    }
}
