//! Text as the matcher sees it: normalised, its language detected, cut into features.

use crate::Lang;
use unicode_normalization::UnicodeNormalization;

/// NFKC (full-width letters and digits become ASCII), lower case, traditional Chinese
/// to simplified, invisible characters removed, white space collapsed.
pub fn normalize(text: &str) -> String {
    let folded: String = text
        .nfkc()
        .filter(|c| !is_invisible(*c))
        .flat_map(char::to_lowercase)
        .collect();
    let simplified = fast2s::convert(&folded);
    simplified.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}')
}

/// A Han character (CJK unified ideographs and their extensions, compatibility forms).
pub fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}')
}

/// Chinese if Han characters carry the message, else English. A few Latin words in a
/// Chinese sentence ("转账一直pending") keep it Chinese; one Chinese name in an English
/// sentence keeps it English.
pub fn detect_language(text: &str) -> Lang {
    let han = text.chars().filter(|c| is_han(*c)).count();
    let latin = text.chars().filter(char::is_ascii_alphabetic).count();
    if han > 0 && han * 4 >= latin {
        Lang::Zh
    } else {
        Lang::En
    }
}

/// Whether a message has words of its own to tell its language by: Han characters, or
/// Latin letters outside a leading bot command (`/start src_site` has none; emoji and
/// numbers have none).
pub fn has_words(text: &str) -> bool {
    let text = text.trim_start();
    let payload = |w: &&str| {
        w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let words: Vec<&str> = match text.strip_prefix('/') {
        // The command, and a deep-link payload after it, are not words.
        Some(command) => {
            let mut rest = command.split_whitespace().skip(1).peekable();
            rest.next_if(payload);
            rest.collect()
        }
        None => vec![text],
    };
    words
        .iter()
        .flat_map(|w| w.chars())
        .any(|c| is_han(c) || c.is_ascii_alphabetic())
}

/// 64-bit FNV-1a: a feature's identity. Collisions among the few thousand features of
/// one model are vanishingly rare.
fn fnv(namespace: u8, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(namespace);
    h = h.wrapping_mul(0x100_0000_01b3);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0x1f;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// The features of a normalised text, as hashes (repeats kept: they count).
///
/// - Latin words: the word itself, and the character 3- to 5-grams of `<word>`, which
///   survive typos ("tranfer", "widthdraw") and inflections;
/// - Chinese: character 1- and 2-grams within each run of Han characters, which need no
///   segmenter (on held-out folds of MASSIVE's training data, 3-grams and jieba words
///   both made accuracy worse, not better);
/// - token bigrams (words and Han characters alike) for word order, except pairs of Han
///   characters, which the character bigrams already are.
pub fn features(normalized: &str, out: &mut Vec<u64>) {
    out.clear();
    let mut tokens: Vec<&str> = Vec::new();
    let mut han_run: Vec<&str> = Vec::new();
    let flush_han = |run: &mut Vec<&str>, out: &mut Vec<u64>| {
        for n in 1..=2 {
            for w in run.windows(n) {
                out.push(fnv(b'h' + n as u8, w));
            }
        }
        run.clear();
    };
    let mut start = None;
    for (i, c) in normalized.char_indices() {
        if c.is_alphanumeric() && !is_han(c) {
            if start.is_none() {
                flush_han(&mut han_run, out);
                start = Some(i);
            }
            continue;
        }
        if let Some(s) = start.take() {
            let word = &normalized[s..i];
            word_features(word, out);
            tokens.push(word);
        }
        if is_han(c) {
            let ch = &normalized[i..i + c.len_utf8()];
            han_run.push(ch);
            tokens.push(ch);
        } else {
            flush_han(&mut han_run, out);
        }
    }
    if let Some(s) = start {
        let word = &normalized[s..];
        word_features(word, out);
        tokens.push(word);
    }
    flush_han(&mut han_run, out);
    let han_pair = |pair: &[&str]| pair.iter().all(|t| t.chars().all(is_han));
    for pair in tokens.windows(2).filter(|p| !han_pair(p)) {
        out.push(fnv(b'b', pair));
    }
}

fn word_features(word: &str, out: &mut Vec<u64>) {
    out.push(fnv(b'w', &[word]));
    let padded: Vec<char> = std::iter::once('<')
        .chain(word.chars())
        .chain(std::iter::once('>'))
        .collect();
    let mut gram = String::new();
    for n in 3..=5 {
        for w in padded.windows(n) {
            gram.clear();
            gram.extend(w);
            out.push(fnv(b'c' + n as u8, &[&gram]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_command_or_an_emoji_has_no_words_to_tell_a_language_by() {
        for text in [
            "/start",
            "/start website_footer",
            "👍",
            "12345",
            "  /start c_0af3 ",
        ] {
            assert!(!has_words(text), "{text:?}");
        }
        for text in ["hello", "你好", "/start 我想问转账", "0x12ab is my hash"] {
            assert!(has_words(text), "{text:?}");
        }
    }

    #[test]
    fn full_width_traditional_and_invisible_characters_fold_away() {
        assert_eq!(normalize("ＨＥＬＬＯ\u{200B}　轉賬"), "hello 转账");
        assert_eq!(normalize("  many   spaces "), "many spaces");
    }

    #[test]
    fn languages_are_told_apart_by_their_script() {
        assert_eq!(detect_language("转账一直pending"), Lang::Zh);
        assert_eq!(detect_language("my transfer is stuck"), Lang::En);
        assert_eq!(detect_language("my friend 李 sent me coins"), Lang::En);
        assert_eq!(detect_language("轉賬沒到"), Lang::Zh);
        assert_eq!(detect_language("???"), Lang::En);
    }

    #[test]
    fn a_typo_shares_most_features_with_the_word() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        features("transfer", &mut a);
        features("tranfer", &mut b);
        let shared = a.iter().filter(|f| b.contains(f)).count();
        assert!(shared >= 4, "only {shared} shared");
    }
}
