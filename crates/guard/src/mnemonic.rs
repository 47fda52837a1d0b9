//! BIP-39 recovery phrases in any of the ten official wordlists.
//!
//! Customers paste phrases in every shape: numbered ("1. abandon 2. ability"), one word
//! per line, comma separated, with ideographic spaces, in capitals, with invisible
//! characters or look-alike letters from a chat app. The scanner first builds a clean
//! view of the text (invisible characters dropped, NFKC, look-alikes mapped, case and
//! accents folded), keeping where each clean character came from, then looks for runs
//! of 12 or more consecutive wordlist words and checks the BIP-39 checksum.
//!
//! Chinese text is mostly made of wordlist characters, so a Chinese word counts only
//! when a separator stands between it and the next: a phrase is pasted as separate
//! characters, a sentence is not.

use bip39::Language;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Phrase lengths BIP-39 allows, longest first.
const LENGTHS: [usize; 5] = [24, 21, 18, 15, 12];

/// A phrase found: the byte range in the original text, and whether its checksum held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub range: Range<usize>,
    pub checksum_valid: bool,
}

/// FNV-1a: the index is looked up once per word of every message, and its keys are
/// our own wordlists, so a fast non-keyed hash is the right trade.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

/// Which lists a folded word belongs to, and its index in each: one lookup per token.
struct Index {
    words: FnvMap<String, Vec<(u8, u16)>>,
    /// The longest folded word, in characters.
    longest: usize,
    /// Per list: Chinese lists hold single characters that must be separated to count.
    needs_separators: Vec<bool>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let mut words: FnvMap<String, Vec<(u8, u16)>> = FnvMap::default();
    let mut needs_separators = Vec::new();
    for (l, &lang) in Language::ALL.iter().enumerate() {
        needs_separators.push(matches!(
            lang,
            Language::SimplifiedChinese | Language::TraditionalChinese
        ));
        for (i, w) in lang.word_list().iter().enumerate() {
            words
                .entry(fold_word(w))
                .or_default()
                .push((l as u8, i as u16));
        }
    }
    let longest = words.keys().map(|w| w.chars().count()).max().unwrap_or(0);
    Index {
        words,
        longest,
        needs_separators,
    }
});

/// NFKD, Latin accents removed, lower case: "Ábaco" and "abaco" meet. Kana voicing
/// marks stay: they tell Japanese words apart (が is not か).
fn fold_word(word: &str) -> String {
    if word.is_ascii() {
        return word.to_ascii_lowercase();
    }
    word.nfkd()
        .filter(|c| !matches!(c, '\u{0300}'..='\u{036F}'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Han characters of the main blocks: already NFKC, caseless, never folded.
fn is_plain_han(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}')
}

/// Letters from other scripts that look like Latin ones, as chat apps and scammers use.
fn unconfuse(c: char) -> char {
    match c {
        'а' | 'А' | 'α' | 'Α' => 'a',
        'в' | 'В' | 'β' => 'b',
        'с' | 'С' | 'ϲ' => 'c',
        'е' | 'Е' | 'ε' | 'Ε' => 'e',
        'һ' | 'Н' => 'h',
        'і' | 'І' | 'ι' | 'Ι' => 'i',
        'ј' | 'Ј' => 'j',
        'к' | 'К' | 'κ' | 'Κ' => 'k',
        'м' | 'М' | 'Μ' => 'm',
        'п' | 'η' => 'n',
        'о' | 'О' | 'ο' | 'Ο' => 'o',
        'р' | 'Р' | 'ρ' | 'Ρ' => 'p',
        'ѕ' | 'Ѕ' => 's',
        'т' | 'Т' | 'τ' | 'Τ' => 't',
        'у' | 'У' | 'υ' => 'y',
        'х' | 'Х' | 'χ' | 'Χ' => 'x',
        'ѡ' | 'ω' => 'w',
        'ν' => 'v',
        'ᴢ' | 'Ζ' => 'z',
        other => other,
    }
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}')
}

/// A Han character.
pub fn is_han(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FA1F}')
}

/// A word of the clean view: where it is in the original, and which wordlists hold it.
#[derive(Debug)]
struct Token {
    range: Range<usize>,
    /// A separator (space, punctuation, numbering, line break) stands before it.
    separated: bool,
    /// (list, index) for every wordlist that has this word; empty for other words.
    entries: &'static [(u8, u16)],
}

/// Cuts the text into words and looks each up as it ends: runs of letters, each Han
/// character on its own. Invisible characters vanish without separating; anything else
/// that is not a letter separates (numbering, commas, any kind of space). One buffer is
/// reused for every word, and a word longer than the longest wordlist word is not
/// looked up at all, so ordinary text costs no allocation per word.
fn tokens(text: &str) -> Vec<Token> {
    let index = &*INDEX;
    let lookup = |word: &str| -> &'static [(u8, u16)] {
        if word.len() > index.longest * 4 {
            return &[];
        }
        let hit = if word.is_ascii() {
            index.words.get(word)
        } else {
            index.words.get(fold_word(word).as_str())
        };
        hit.map_or(&[][..], Vec::as_slice)
    };
    let mut out: Vec<Token> = Vec::with_capacity(text.len() / 3);
    let mut word = String::new();
    let mut word_range: Option<Range<usize>> = None;
    let mut word_separated = true;
    let mut separated = true;
    let finish =
        |word: &mut String, range: &mut Option<Range<usize>>, sep: bool, out: &mut Vec<Token>| {
            if let Some(r) = range.take() {
                out.push(Token {
                    range: r,
                    separated: sep,
                    entries: lookup(word),
                });
            }
            word.clear();
        };
    for (i, original) in text.char_indices() {
        if is_invisible(original) {
            continue;
        }
        let end = i + original.len_utf8();
        if is_plain_han(original) {
            finish(&mut word, &mut word_range, word_separated, &mut out);
            // Looked up below, only where a separator stands next to it.
            out.push(Token {
                range: i..end,
                separated,
                entries: &[],
            });
            separated = false;
            continue;
        }
        let mut step = |c: char| {
            if c.is_alphabetic() || is_combining_mark(c) {
                if is_han(c) {
                    finish(&mut word, &mut word_range, word_separated, &mut out);
                    let mut buf = [0u8; 4];
                    out.push(Token {
                        range: i..end,
                        separated,
                        entries: lookup(c.encode_utf8(&mut buf)),
                    });
                    separated = false;
                    return;
                }
                match &mut word_range {
                    Some(r) => r.end = end,
                    None => {
                        word_range = Some(i..end);
                        word_separated = separated;
                        separated = false;
                    }
                }
                word.push(c);
            } else {
                finish(&mut word, &mut word_range, word_separated, &mut out);
                separated = true;
            }
        };
        // ASCII is already in NFKC and has no look-alikes to map: the common case.
        if original.is_ascii() {
            step(original.to_ascii_lowercase());
        } else {
            std::iter::once(original)
                .nfkc()
                .map(unconfuse)
                .for_each(step);
        }
    }
    finish(&mut word, &mut word_range, word_separated, &mut out);
    // A Chinese wordlist word only counts pasted apart from its neighbours, so a Han
    // character with no separator on either side can never be part of a phrase: most
    // of ordinary Chinese prose is skipped without a lookup.
    for i in 0..out.len() {
        let t = &out[i];
        let next_separated = out.get(i + 1).is_none_or(|n| n.separated);
        if t.entries.is_empty()
            && (t.separated || next_separated)
            && text[t.range.clone()].chars().all(is_plain_han)
        {
            out[i].entries = lookup(&text[out[i].range.clone()]);
        }
    }
    out
}

/// Whether these word indices form a valid BIP-39 phrase (entropy plus checksum).
pub fn checksum_ok(indices: &[u16]) -> bool {
    let n = indices.len();
    if !LENGTHS.contains(&n) {
        return false;
    }
    let total_bits = n * 11;
    let checksum_bits = total_bits / 33;
    let entropy_bits = total_bits - checksum_bits;
    let mut bits = Vec::with_capacity(total_bits);
    for &i in indices {
        for b in (0..11).rev() {
            bits.push((i >> b) & 1 == 1);
        }
    }
    let entropy: Vec<u8> = bits[..entropy_bits]
        .chunks(8)
        .map(|byte| byte.iter().fold(0u8, |acc, &b| (acc << 1) | u8::from(b)))
        .collect();
    let hash = Sha256::digest(&entropy);
    (0..checksum_bits).all(|k| {
        let expected = (hash[k / 8] >> (7 - k % 8)) & 1 == 1;
        expected == bits[entropy_bits + k]
    })
}

/// Every recovery phrase in `text`, valid or clearly one but with a bad checksum.
pub fn find(text: &str) -> Vec<Phrase> {
    let index = &*INDEX;
    let tokens = tokens(text);
    let entries: Vec<&[(u8, u16)]> = tokens.iter().map(|t| t.entries).collect();
    // A list can only hold a phrase if twelve of the words could belong to one of its
    // runs. Most messages fail this for every list: ordinary Chinese prose is made of
    // wordlist characters, but never of twelve separated ones.
    let mut candidates = vec![0usize; index.needs_separators.len()];
    for (t, e) in tokens.iter().zip(&entries) {
        for &(l, _) in e.iter() {
            if t.separated || !index.needs_separators[l as usize] {
                candidates[l as usize] += 1;
            }
        }
    }
    let shortest = LENGTHS[LENGTHS.len() - 1];
    let mut found: Vec<Phrase> = Vec::new();
    for (list, &needs_separators) in index.needs_separators.iter().enumerate() {
        if candidates[list] < shortest {
            continue;
        }
        let list = list as u8;
        let mut start = 0;
        while start < tokens.len() {
            // The run of consecutive words of this list beginning here.
            let mut end = start;
            let mut indices = Vec::new();
            while end < tokens.len() {
                let joined = end == start || tokens[end].separated || !needs_separators;
                match entries[end].iter().find(|(l, _)| *l == list) {
                    Some(&(_, i)) if joined => {
                        indices.push(i);
                        end += 1;
                    }
                    _ => break,
                }
            }
            if end - start >= LENGTHS[LENGTHS.len() - 1] {
                found.push(phrase_of_run(&tokens[start..end], &indices));
            }
            start = end.max(start + 1);
        }
    }
    found
}

/// A run of 12 or more wordlist words is redacted whole: as a recovery phrase if some
/// window of it passes the checksum, else as a possible one (a phrase typed wrong, not
/// a sentence; a Chinese run counts only because its characters were pasted apart).
/// Redacting the whole run, not just the valid window, leaves no word of the phrase
/// behind when the customer's own words happen to be wordlist words too.
fn phrase_of_run(run: &[Token], indices: &[u16]) -> Phrase {
    let checksum_valid = (0..run.len()).any(|i| {
        LENGTHS
            .iter()
            .any(|&n| i + n <= run.len() && checksum_ok(&indices[i..i + n]))
    });
    Phrase {
        range: run[0].range.start..run[run.len() - 1].range.end,
        checksum_valid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The BIP-39 test vector for all-zero entropy (12 words).
    const ZERO12: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    #[test]
    fn the_official_test_vector_passes_the_checksum() {
        let english = |w: &str| INDEX.words[w].iter().find(|(l, _)| *l == 0).unwrap().1;
        let idx: Vec<u16> = ZERO12.split(' ').map(english).collect();
        assert!(checksum_ok(&idx));
        let mut wrong = idx.clone();
        wrong[11] = english("abandon");
        assert!(!checksum_ok(&wrong));
    }

    #[test]
    fn a_numbered_phrase_with_capitals_and_invisible_characters_is_found() {
        let pasted = ZERO12
            .split(' ')
            .enumerate()
            .map(|(i, w)| format!("{}. {}\u{200B}", i + 1, w.to_uppercase()))
            .collect::<Vec<_>>()
            .join("\n");
        let text = format!("help!! my words:\n{pasted}\nplease fix");
        let found = find(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].checksum_valid);
        // The whole run of wordlist words goes, "please fix" included; "help!! my" stays.
        let (phrase_start, phrase_end) = (
            text.find("ABANDON").unwrap(),
            text.find("ABOUT").unwrap() + 5,
        );
        assert!(found[0].range.start <= phrase_start && found[0].range.end >= phrase_end);
        assert!(text[..found[0].range.start].contains("help!! my words"));
    }

    #[test]
    fn cyrillic_lookalikes_do_not_hide_a_phrase() {
        let sneaky = ZERO12.replace('a', "а"); // Cyrillic а
        assert_eq!(find(&sneaky).len(), 1);
    }

    #[test]
    fn an_ordinary_chinese_sentence_is_not_a_phrase() {
        assert!(
            find("我的转账一直没有到账，已经等了两个小时了，请帮我查一下是什么原因").is_empty()
        );
    }

    #[test]
    fn eleven_words_are_not_a_phrase() {
        let eleven: Vec<&str> = ZERO12.split(' ').take(11).collect();
        assert!(find(&eleven.join(" ")).is_empty());
    }
}
