//! Posts as X counts them, and replies cut into posts.
//!
//! X measures a post in weighted characters (twitter-text, configuration v3): after
//! NFC normalisation, characters in the Latin, Greek, Cyrillic, Hebrew, Arabic and
//! similar blocks (U+0000-U+10FF) and a few punctuation ranges weigh 1; everything
//! else, CJK and emoji included, weighs 2; every URL weighs 23, however long; a post
//! holds 280. This count never comes out lower than X's: an emoji sequence is counted
//! per code point (X counts the sequence as 2), and a bare domain (`help.example.com`)
//! is counted as a URL or as its own length, whichever is more.
//!
//! X also takes at most one cashtag (`$BTC`) a post: later ones lose their `$`.

use unicode_normalization::UnicodeNormalization;

/// The most one post holds, in weighted characters.
pub const MAX_WEIGHT: usize = 280;
/// What X counts for any URL.
pub const URL_WEIGHT: usize = 23;
/// Room kept for the ` 2/3` that numbers the posts of a thread.
const NUMBERING: usize = 6;

/// A character's weight: 1 or 2.
fn char_weight(c: char) -> usize {
    match u32::from(c) {
        0..=4351 | 8192..=8205 | 8208..=8223 | 8242..=8247 => 1,
        _ => 2,
    }
}

/// Characters that may stand in a URL or a domain, as far as counting goes.
fn urlish(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// Punctuation X leaves out of the end of a URL.
fn trailing_punctuation(c: char) -> bool {
    ".,;:!?)]'\"".contains(c)
}

/// A run of URL characters that X may take for a link, and what it weighs if so.
fn link_weight(run: &str) -> Option<usize> {
    let lower = run.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Some(URL_WEIGHT);
    }
    let host = run.split(['/', '?', '#']).next().unwrap_or_default();
    let mut labels = host.split('.');
    let first = labels.next().unwrap_or_default();
    let last = host.rsplit('.').next().unwrap_or_default();
    let domain = host.contains('.')
        && !first.is_empty()
        && last.len() >= 2
        && last.bytes().all(|b| b.is_ascii_alphabetic())
        && !run.starts_with(['@', '$', '#']);
    domain.then(|| run.len().max(URL_WEIGHT))
}

/// The pieces of `text` in order, each with its weight: a link as one piece, every
/// other character alone. `text` is expected in NFC already.
fn weighted(text: &str) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    // (start, end, weight) in bytes.
    let mut at = 0;
    std::iter::from_fn(move || {
        let rest = &text[at..];
        let c = rest.chars().next()?;
        let starts_word = at == 0 || text[..at].chars().next_back().is_some_and(|p| !urlish(p));
        if starts_word && urlish(c) {
            let run_len = rest.find(|c: char| !urlish(c)).unwrap_or(rest.len());
            let run = rest[..run_len].trim_end_matches(trailing_punctuation);
            if let Some(weight) = link_weight(run) {
                let start = at;
                at += run.len();
                return Some((start, at, weight));
            }
        }
        let start = at;
        at += c.len_utf8();
        Some((start, at, char_weight(c)))
    })
}

/// What X counts for `text`.
pub fn weight(text: &str) -> usize {
    let text: String = text.nfc().collect();
    weighted(&text).map(|(_, _, w)| w).sum()
}

/// The longest prefix of `text` (bytes) that weighs at most `max`; never inside a link.
fn prefix_within(text: &str, max: usize) -> usize {
    let mut total = 0;
    for (start, _, w) in weighted(text) {
        total += w;
        if total > max {
            return start;
        }
    }
    text.len()
}

/// Keeps the first cashtag of `post` and writes the others without their `$`.
pub fn one_cashtag(post: &str) -> String {
    let mut out = String::with_capacity(post.len());
    let mut seen = false;
    let mut prev: Option<char> = None;
    for (at, c) in post.char_indices() {
        let boundary = prev.is_none_or(|p| p.is_whitespace());
        if c == '$' && boundary && cashtag_len(&post[at + 1..]).is_some() {
            if seen {
                prev = Some(c);
                continue;
            }
            seen = true;
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// The length of the symbol a cashtag's `$` stands before: 1-6 letters, optionally `.`
/// or `_` and 1-2 letters more, then the end, a space or punctuation.
fn cashtag_len(after: &str) -> Option<usize> {
    let letters = |s: &str| s.bytes().take_while(u8::is_ascii_alphabetic).count();
    let mut len = letters(after);
    if !(1..=6).contains(&len) {
        return None;
    }
    if let Some(sep @ (b'.' | b'_')) = after.as_bytes().get(len).copied() {
        let more = letters(&after[len + 1..]);
        if (1..=2).contains(&more) {
            len += 1 + more;
        } else if sep == b'_' {
            return None;
        }
    }
    match after[len..].chars().next() {
        None => Some(len),
        Some(c) if c.is_whitespace() || (c.is_ascii_punctuation() && c != '_') => Some(len),
        Some(_) => None,
    }
}

/// `text` as the posts of a thread: each at most [`MAX_WEIGHT`], numbered ` 1/3` when
/// there are several, with at most one cashtag each. Each post opens with `@to` when
/// given: a reply on X says whom it answers, and the same answer to two customers is
/// then not refused as duplicate content.
pub fn posts(text: &str, to: Option<&str>) -> Vec<String> {
    let opening = to.map(|user| format!("@{user} ")).unwrap_or_default();
    let room = MAX_WEIGHT - weight(&opening);
    let text: String = text.nfc().collect();
    let text = text.trim();
    if text.is_empty() {
        return vec![];
    }
    if weight(text) <= room {
        return vec![one_cashtag(&format!("{opening}{text}"))];
    }
    let pieces =
        frontdesk_core::split::split_within(text, |rest| prefix_within(rest, room - NUMBERING));
    let n = pieces.len();
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| one_cashtag(&format!("{opening}{piece} {}/{n}", i + 1)))
        .collect()
}

/// `text` cut into pieces of at most `max` characters (direct messages).
pub fn pieces_of(text: &str, max: usize) -> Vec<String> {
    frontdesk_core::split::split_within(text, |rest| {
        rest.char_indices()
            .nth(max)
            .map_or(rest.len(), |(at, _)| at)
    })
    .into_iter()
    .map(str::to_owned)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_counts_one_and_chinese_two() {
        assert_eq!(weight("hello"), 5);
        assert_eq!(weight("你好"), 4);
        assert_eq!(weight("提现，"), 6);
        // Curly quotes and the dash are in the light ranges.
        assert_eq!(weight("“—”"), 3);
    }

    #[test]
    fn a_url_counts_twenty_three_however_long() {
        let long = format!("https://help.example.com/{}", "a".repeat(100));
        assert_eq!(weight(&long), 23);
        assert_eq!(weight(&format!("see {long}.")), 4 + 23 + 1);
        // A short bare domain counts as a URL; a long one as itself.
        assert_eq!(weight("x.com"), 23);
        assert_eq!(weight("e.g. 3.5 U.S"), 12);
        // Chinese right after a URL is not part of it.
        assert_eq!(weight("请看https://a.example/x说明"), 4 + 23 + 4);
    }

    #[test]
    fn an_emoji_never_counts_less_than_x_counts_it() {
        assert_eq!(weight("🔐"), 2);
        assert!(weight("👨‍👩‍👧") >= 2);
    }

    #[test]
    fn decomposed_accents_count_as_the_composed_letter() {
        assert_eq!(weight("e\u{301}"), 1);
    }

    #[test]
    fn only_the_first_cashtag_keeps_its_dollar() {
        assert_eq!(
            one_cashtag("$BTC and $ETH fees, $USDT.e too; US$5 $5"),
            "$BTC and ETH fees, USDT.e too; US$5 $5"
        );
        assert_eq!(one_cashtag("no tags"), "no tags");
    }

    #[test]
    fn a_long_chinese_reply_becomes_a_numbered_thread_within_the_limit() {
        let text = "您的提现申请已经提交，区块确认通常需要十到三十分钟。".repeat(12);
        let posts = posts(&text, None);
        assert!(posts.len() >= 3, "{}", posts.len());
        let n = posts.len();
        for (i, post) in posts.iter().enumerate() {
            assert!(weight(post) <= MAX_WEIGHT, "{} > 280: {post}", weight(post));
            assert!(post.ends_with(&format!(" {}/{n}", i + 1)), "{post}");
            assert!(
                post.trim_end_matches(char::is_numeric)
                    .trim_end_matches('/')
                    .trim_end_matches(char::is_numeric)
                    .trim_end()
                    .ends_with('。'),
                "{post}"
            );
        }
        let joined: String = posts
            .iter()
            .map(|p| p.rsplit_once(' ').unwrap().0)
            .collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn a_short_reply_is_one_post_without_a_number() {
        assert_eq!(posts("  Thanks!  ", None), vec!["Thanks!"]);
        assert!(posts(" ", Some("liwei")).is_empty());
    }

    #[test]
    fn every_post_of_a_thread_opens_with_whom_it_answers_within_the_limit() {
        let text = "您的提现申请已经提交，区块确认通常需要十到三十分钟。".repeat(12);
        let posts = posts(&text, Some("customer_1234567"));
        assert!(posts.len() >= 3);
        for post in &posts {
            assert!(post.starts_with("@customer_1234567 "), "{post}");
            assert!(weight(post) <= MAX_WEIGHT, "{} > 280: {post}", weight(post));
        }
        assert_eq!(posts_of_one("Thanks!"), vec!["@sam Thanks!"]);
    }

    fn posts_of_one(text: &str) -> Vec<String> {
        posts(text, Some("sam"))
    }

    #[test]
    fn a_thread_never_cuts_a_link() {
        let link = "https://help.example.com/withdrawals/pending";
        let text = format!("{} {link} {}", "word ".repeat(50), "more ".repeat(20));
        for post in posts(&text, None) {
            assert!(weight(&post) <= MAX_WEIGHT);
            if post.contains("https://") {
                assert!(post.contains(link), "{post}");
            }
        }
    }
}
