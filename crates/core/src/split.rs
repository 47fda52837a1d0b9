//! Cutting a long reply into the pieces a channel takes, each channel measuring in its
//! own way (Telegram in UTF-16 units, X in weighted characters).
//!
//! The channel says how much of a text fits in one piece; this module chooses where
//! to end the piece within that: a paragraph break, then a line break, then the end of a
//! sentence (Chinese or Latin), then a space. A piece is cut mid-word only when it has
//! no such place in its second half, and never inside a character.

/// Splits `text` into trimmed, non-empty pieces. `fits(rest)` is the length in bytes
/// of the longest prefix of `rest` that one piece may hold: on a character boundary and
/// at least one character, so that splitting always moves on.
pub fn split_within(text: &str, fits: impl Fn(&str) -> usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let room = fits(rest).clamp(first_char_len(rest), rest.len());
        if room == rest.len() {
            pieces.push(rest);
            break;
        }
        let cut = best_cut(&rest[..room]).unwrap_or(room);
        let piece = rest[..cut].trim_end();
        if !piece.is_empty() {
            pieces.push(piece);
        }
        rest = rest[cut..].trim_start();
    }
    pieces
}

fn first_char_len(s: &str) -> usize {
    s.chars().next().map_or(0, char::len_utf8)
}

/// Where to end a piece within `window`: the latest good break in its second half.
fn best_cut(window: &str) -> Option<usize> {
    let half = window.len() / 2;
    let after = |pattern: &str| {
        window
            .rfind(pattern)
            .map(|at| at + pattern.len())
            .filter(|&at| at > half)
    };
    after("\n\n")
        .or_else(|| after("\n"))
        .or_else(|| {
            ["。", "！", "？", ". ", "! ", "? "]
                .iter()
                .filter_map(|p| after(p))
                .max()
        })
        .or_else(|| {
            window
                .char_indices()
                .rev()
                .find(|&(at, c)| c.is_whitespace() && at > half)
                .map(|(at, _)| at)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At most `max` characters a piece.
    fn chars(max: usize) -> impl Fn(&str) -> usize {
        move |s: &str| s.char_indices().nth(max).map_or(s.len(), |(at, _)| at)
    }

    #[test]
    fn a_piece_ends_at_a_sentence_rather_than_at_a_later_space() {
        let pieces = split_within("One two three. Four five six", chars(20));
        assert_eq!(pieces, ["One two three.", "Four five six"]);
    }

    #[test]
    fn a_text_without_breaks_is_cut_where_it_must_be() {
        assert_eq!(split_within("abcdefgh", chars(3)), ["abc", "def", "gh"]);
    }

    #[test]
    fn a_measure_that_allows_nothing_still_moves_on_by_one_character() {
        assert_eq!(split_within("转账", |_| 0), ["转", "账"]);
    }
}
