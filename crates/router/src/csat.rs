//! Understanding a customer's satisfaction rating (CSAT) after a conversation.
//!
//! After [`question`] the customer's next message is read by [`parse_rating`]: a score
//! from 1 to 5 at the start of the message, written as a digit (`5`, `4分`, `5/5`,
//! `5 stars`), stars (`⭐⭐⭐⭐`), a Chinese numeral (`五`, `五星`) or a word (`非常满意`,
//! `还行`, `great`, `not good`), optionally followed by a comment (`5，回复很快`).
//!
//! The reading is deliberately strict, because a message that is not a rating (a new
//! question, an order number, an amount) must not be filed as one:
//!
//! - The score must come first; only whitespace and punctuation such as quotes,
//!   brackets, `,` `.` `:` `!` may precede it (not `$`, `#`, `+` or `-`).
//! - A digit must be a single `1`-`5` standing alone: `0`, `6`, `10`, `12345` are not
//!   ratings. After it (and after its optional `/5`, `分`, `星`, `颗星`, a star or
//!   ` stars`) must come the end of the message, whitespace, or a separator that is not
//!   followed by a digit (so `5.5`, `5,000`, `5-6`, `5:30` are not ratings). A letter or
//!   Chinese character glued to the digit (`5个`, `5元`, `5u`) is not a rating either.
//! - A digit followed by whitespace and a unit is an amount or a quantity, not a rating:
//!   the assets USDT, BTC, ETH, TRX, USDC, BNB, and `usd`, `u`, `dollar(s)`, `hour(s)`,
//!   `day(s)`, `minute(s)`, `min(s)`, `times`, `元`, `块`, `个`, `笔`, `次`, `天`,
//!   `小时`, `分钟` (so `5 USDT missing` is not a rating).
//! - `分` and `星` after a number must not begin a longer word: `5分钟`, `1分钱`,
//!   `3星期`, `五星级` are not ratings.
//! - Chinese words need a boundary too (end, whitespace, separator, or one modal
//!   particle such as `吧` or `了` and then a boundary), so `一般多久到账？` is a question,
//!   not a 3. The phrases with `满意` and `好评`/`差评` may run straight into a comment
//!   (`非常满意谢谢`), except into `度`, `吗`, `么`, `嘛` or `不` (`满意度`, `满意吗`).
//! - English words must end at a word boundary; `good morning` (afternoon, evening,
//!   night, day) is a greeting, not a 4.
//!
//! Full-width digits and letters count as their ASCII forms, English is read without
//! case, and the traditional characters 滿, 還, 顆, 評 as their simplified forms.

use frontdesk_faq::Lang;

/// A customer's rating of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    /// From 1 (worst) to 5 (best).
    pub score: u8,
    /// What the customer wrote after the score, if anything.
    pub comment: Option<String>,
}

/// Reads a rating from the start of `text`; `None` when the message is not a rating.
/// See the module documentation for what counts.
pub fn parse_rating(text: &str) -> Option<Rating> {
    let folded: Vec<char> = text.chars().map(fold).collect();
    let offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();

    let start = folded.iter().take_while(|c| is_leading_noise(**c)).count();
    let s = &folded[start..];
    let (score, used) = stars(s)
        .or_else(|| chinese_word(s))
        .or_else(|| english_word(s))
        .or_else(|| digit(s))
        .or_else(|| chinese_numeral(s))?;

    let rest_at = offsets.get(start + used).copied().unwrap_or(text.len());
    let comment = text
        .get(rest_at..)
        .unwrap_or("")
        .trim_start_matches(|c: char| {
            c.is_whitespace() || COMMENT_TRIM.contains(&c) || CLOSING.contains(&c)
        })
        .trim_end_matches(|c: char| c.is_whitespace() || COMMENT_TRIM.contains(&c));
    // Punctuation alone ("Awful!") is not a comment.
    let says_something = comment
        .chars()
        .any(|c| !c.is_whitespace() && !c.is_ascii_punctuation() && !PUNCTUATION.contains(&c));
    Some(Rating {
        score,
        comment: says_something.then(|| comment.to_owned()),
    })
}

/// The request for a rating, sent when a conversation is resolved.
pub fn question(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => {
            "请为本次服务打分：回复 1 到 5 的数字，5 分表示非常满意。也可以在分数后面写下您的意见，例如“5 回复很快”。"
        }
        Lang::En => {
            "How did we do? Please reply with a number from 1 to 5 (5 is best). You can add a comment after the number, e.g. \"5 quick and helpful\"."
        }
    }
}

/// The answer to a rating; `score` is clamped to 1..=5.
pub fn thanks(lang: Lang, score: u8) -> String {
    let score = score.clamp(1, 5);
    match (lang, score) {
        (Lang::Zh, 4..=5) => format!("感谢您的 {score} 分评价！很高兴能帮到您。"),
        (Lang::Zh, 3) => "感谢您的 3 分评价，我们会继续改进服务。".to_owned(),
        (Lang::Zh, _) => format!(
            "感谢您的 {score} 分评价。很抱歉这次没能让您满意，我们会认真查看您的意见并改进。"
        ),
        (Lang::En, 4..=5) => {
            format!("Thank you for rating us {score}/5! We're glad we could help.")
        }
        (Lang::En, 3) => "Thank you for rating us 3/5; we'll keep improving.".to_owned(),
        (Lang::En, _) => format!(
            "Thank you for rating us {score}/5. We're sorry we fell short this time; we'll look into your feedback."
        ),
    }
}

/// Trimmed from both ends of a comment.
const COMMENT_TRIM: &[char] = &[
    ',', '，', '。', '.', '-', '—', '–', ':', '：', ';', '；', '、', '~', '～',
];

/// Closing quotes and brackets: they end a rating token (`“5”`) and are dropped from
/// the start of its comment.
const CLOSING: &[char] = &['"', '\'', ')', ']', '”', '’', '」', '』', '】', '》', '）'];

/// Non-ASCII punctuation that alone does not make a comment.
const PUNCTUATION: &[char] = &[
    '，', '。', '！', '？', '：', '；', '、', '…', '—', '–', '～', '“', '”', '‘', '’', '「', '」',
    '『', '』', '【', '】', '《', '》', '（', '）',
];

/// Chinese rating phrases, longest first where one begins another; the flag says whether
/// a comment may follow with no separator.
const ZH_WORDS: &[(&str, u8, bool)] = &[
    ("非常不满意", 1, true),
    ("很不满意", 1, true),
    ("非常满意", 5, true),
    ("十分满意", 5, true),
    ("很满意", 5, true),
    ("不太满意", 2, true),
    ("不满意", 2, true),
    ("满意", 4, true),
    ("好评", 5, true),
    ("差评", 1, true),
    ("中评", 3, true),
    ("非常好", 5, false),
    ("很好", 5, false),
    ("还可以", 3, false),
    ("还行", 3, false),
    ("一般", 3, false),
    ("很差", 1, false),
    ("太差", 1, false),
];

/// What may not follow a phrase of [`ZH_WORDS`] that otherwise runs into its comment.
const GLUE_STOP: &[char] = &['度', '吗', '么', '嘛', '不'];

/// One of these may sit between a Chinese rating and the boundary after it.
const PARTICLES: &[char] = &['吧', '啊', '呀', '哦', '了', '的', '哈', '啦'];

/// Characters that turn `分`/`星` after a number into a longer word.
const SUFFIX_STOP: &[char] = &['钟', '钱', '之', '期', '半', '级'];

/// After a digit and whitespace, these make the digit an amount or a quantity.
const UNIT_WORDS: &[&str] = &[
    "usdt", "btc", "eth", "trx", "usdc", "bnb", "usd", "u", "dollar", "dollars", "hour", "hours",
    "day", "days", "minute", "minutes", "min", "mins", "times",
];
const CJK_UNITS: &[&str] = &["元", "块", "个", "笔", "次", "天", "小时", "分钟"];

/// Full-width ASCII to ASCII, ASCII lower case, a few traditional characters to
/// simplified. One char for one char, so positions carry over to the original text.
fn fold(c: char) -> char {
    let c = match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        '滿' => '满',
        '還' => '还',
        '顆' => '颗',
        '評' => '评',
        _ => c,
    };
    c.to_ascii_lowercase()
}

/// What may come before the score (after folding full-width forms).
fn is_leading_noise(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\''
                | '('
                | ')'
                | '['
                | ']'
                | ','
                | '.'
                | '!'
                | '?'
                | ':'
                | ';'
                | '~'
                | '*'
                | '“'
                | '”'
                | '‘'
                | '’'
                | '「'
                | '」'
                | '『'
                | '』'
                | '【'
                | '】'
                | '《'
                | '》'
                | '。'
                | '、'
                | '…'
        )
}

fn is_separator(c: char) -> bool {
    CLOSING.contains(&c)
        || matches!(
            c,
            ',' | '.' | '!' | '?' | ';' | ':' | '~' | '-' | '、' | '。' | '…' | '—' | '–'
        )
}

/// The end of a rating token: the end of the text, whitespace, or a separator not
/// followed by a digit.
fn free_end(rest: &[char]) -> bool {
    match rest.first() {
        None => true,
        Some(c) if c.is_whitespace() => true,
        Some(c) if is_separator(*c) => !rest.get(1).is_some_and(char::is_ascii_digit),
        Some(_) => false,
    }
}

/// After a Chinese rating: a boundary (0 chars used) or a particle and a boundary (1).
fn after_chinese(rest: &[char]) -> Option<usize> {
    if free_end(rest) {
        return Some(0);
    }
    let particle = rest.first().is_some_and(|c| PARTICLES.contains(c));
    (particle && free_end(&rest[1..])).then_some(1)
}

/// How many chars of `s` the word takes, if `s` begins with it.
fn prefix(s: &[char], word: &str) -> Option<usize> {
    let mut n = 0;
    for w in word.chars() {
        if s.get(n) != Some(&w) {
            return None;
        }
        n += 1;
    }
    Some(n)
}

fn is_star(c: char) -> bool {
    matches!(c, '⭐' | '★' | '🌟')
}

/// A star character (with its emoji variation selector, if any): chars used.
fn star_len(s: &[char]) -> Option<usize> {
    let first = *s.first()?;
    is_star(first).then(|| if s.get(1) == Some(&'\u{FE0F}') { 2 } else { 1 })
}

/// `⭐⭐⭐⭐`, `★★★☆☆`: 1 to 5 filled stars, then any empty ones.
fn stars(s: &[char]) -> Option<(u8, usize)> {
    let mut used = 0;
    let mut filled: u8 = 0;
    while let Some(n) = star_len(&s[used..]) {
        used += n;
        filled = filled.saturating_add(1);
    }
    if filled == 0 {
        return None;
    }
    used += s[used..].iter().take_while(|c| **c == '☆').count();
    (1..=5).contains(&filled).then_some((filled, used))
}

/// `分`, `星`, `颗星` or a star after a number, not beginning a longer word.
fn score_suffix(rest: &[char]) -> Option<usize> {
    if let Some(n) = star_len(rest) {
        return Some(n);
    }
    let n = ["颗星", "星", "分"].iter().find_map(|w| prefix(rest, w))?;
    let next = rest.get(n);
    let stop = next.is_some_and(|c| c.is_ascii_digit() || SUFFIX_STOP.contains(c));
    (!stop).then_some(n)
}

/// Whether whitespace and then a unit or an asset follow.
fn unit_follows(rest: &[char]) -> bool {
    let ws = rest.iter().take_while(|c| c.is_whitespace()).count();
    let rest = &rest[ws..];
    let word: String = rest
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    if !word.is_empty() {
        return UNIT_WORDS.contains(&word.as_str());
    }
    CJK_UNITS.iter().any(|u| prefix(rest, u).is_some())
}

/// `5`, `4分`, `5/5`, `3星`, `5⭐`, `5 stars`.
fn digit(s: &[char]) -> Option<(u8, usize)> {
    let first = *s.first()?;
    if !first.is_ascii_digit() || s.get(1).is_some_and(char::is_ascii_digit) {
        return None;
    }
    let score = u8::try_from(first.to_digit(10)?).ok()?;
    if !(1..=5).contains(&score) {
        return None;
    }
    let rest = &s[1..];
    if let Some(n) = prefix(rest, "/5") {
        return free_end(&rest[n..]).then_some((score, 1 + n));
    }
    if let Some(n) = score_suffix(rest) {
        return Some((score, 1 + n));
    }
    let ws = rest.iter().take_while(|c| c.is_whitespace()).count();
    if let Some(n) = prefix(&rest[ws..], "stars").or_else(|| prefix(&rest[ws..], "star")) {
        let used = 1 + ws + n;
        return free_end(&s[used..]).then_some((score, used));
    }
    (free_end(rest) && !unit_follows(rest)).then_some((score, 1))
}

/// `五`, `五星`, `四分`, `两颗星`.
fn chinese_numeral(s: &[char]) -> Option<(u8, usize)> {
    let score = match s.first()? {
        '一' => 1,
        '二' | '两' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        _ => return None,
    };
    let rest = &s[1..];
    if let Some(n) = score_suffix(rest) {
        return Some((score, 1 + n));
    }
    after_chinese(rest).map(|n| (score, 1 + n))
}

/// The phrases of [`ZH_WORDS`].
fn chinese_word(s: &[char]) -> Option<(u8, usize)> {
    ZH_WORDS.iter().find_map(|(word, score, glue)| {
        let n = prefix(s, word)?;
        let rest = &s[n..];
        if let Some(extra) = after_chinese(rest) {
            return Some((*score, n + extra));
        }
        let glued = *glue && rest.first().is_some_and(|c| !GLUE_STOP.contains(c));
        glued.then_some((*score, n))
    })
}

/// The English words and pairs (`very good`, `not bad`).
fn english_word(s: &[char]) -> Option<(u8, usize)> {
    let word_at = |from: usize| -> String {
        s[from..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect()
    };
    let first = word_at(0);
    if first.is_empty() {
        return None;
    }
    let mut used = first.chars().count();
    let score = if first == "very" || first == "not" {
        let ws = s[used..].iter().take_while(|c| c.is_whitespace()).count();
        let second = word_at(used + ws);
        used += ws + second.chars().count();
        match (first.as_str(), second.as_str()) {
            ("very", "good") => 5,
            ("very", "bad" | "poor") => 1,
            ("not", "good") => 2,
            ("not", "bad") => 4,
            _ => return None,
        }
    } else {
        match first.as_str() {
            "great" | "excellent" | "perfect" | "awesome" => 5,
            "good" => 4,
            "ok" | "okay" | "fine" | "average" => 3,
            "bad" | "poor" => 2,
            "terrible" | "awful" | "horrible" => 1,
            _ => return None,
        }
    };
    if s.get(used).is_some_and(char::is_ascii_digit) {
        return None;
    }
    if first == "good" {
        let ws = s[used..].iter().take_while(|c| c.is_whitespace()).count();
        let next = word_at(used + ws);
        if ["morning", "afternoon", "evening", "night", "day"].contains(&next.as_str()) {
            return None;
        }
    }
    Some((score, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message and what it should read as: score and comment, or not a rating.
    type Case<'a> = (&'a str, Option<(u8, Option<&'a str>)>);

    fn check(table: &[Case<'_>]) {
        for (text, want) in table {
            let got = parse_rating(text);
            let want = want.map(|(score, comment)| Rating {
                score,
                comment: comment.map(str::to_owned),
            });
            assert_eq!(got, want, "reading {text:?}");
        }
    }

    #[test]
    fn chinese_ratings_are_understood() {
        check(&[
            ("5", Some((5, None))),
            ("  4分", Some((4, None))),
            ("5/5", Some((5, None))),
            ("五", Some((5, None))),
            ("五星", Some((5, None))),
            ("五星好评", Some((5, Some("好评")))),
            ("两颗星", Some((2, None))),
            ("３分，等太久了", Some((3, Some("等太久了")))),
            ("⭐⭐⭐⭐", Some((4, None))),
            ("⭐️⭐️⭐️⭐️⭐️ 谢谢", Some((5, Some("谢谢")))),
            ("★★★☆☆", Some((3, None))),
            ("🌟🌟", Some((2, None))),
            ("非常满意", Some((5, None))),
            ("非常满意谢谢！", Some((5, Some("谢谢！")))),
            ("满意", Some((4, None))),
            ("滿意", Some((4, None))),
            ("一般", Some((3, None))),
            ("还行吧", Some((3, None))),
            ("不满意，到账太慢。", Some((2, Some("到账太慢")))),
            ("非常不满意", Some((1, None))),
            ("很差", Some((1, None))),
            ("太差了！", Some((1, None))),
            ("“5” 回复很快", Some((5, Some("回复很快")))),
            ("5 回复很快", Some((5, Some("回复很快")))),
        ]);
    }

    #[test]
    fn english_ratings_are_understood() {
        check(&[
            ("Great", Some((5, None))),
            ("excellent, thanks!", Some((5, Some("thanks!")))),
            ("PERFECT", Some((5, None))),
            ("awesome service", Some((5, Some("service")))),
            ("good", Some((4, None))),
            ("OK", Some((3, None))),
            ("okay I guess", Some((3, Some("I guess")))),
            ("fine.", Some((3, None))),
            ("average", Some((3, None))),
            ("bad", Some((2, None))),
            ("poor - took a day", Some((2, Some("took a day")))),
            ("terrible", Some((1, None))),
            ("Awful!", Some((1, None))),
            ("horrible", Some((1, None))),
            ("very good", Some((5, None))),
            (
                "Very  bad, nobody answered",
                Some((1, Some("nobody answered"))),
            ),
            ("not good", Some((2, None))),
            (
                "4 - quick and helpful",
                Some((4, Some("quick and helpful"))),
            ),
            ("5 stars", Some((5, None))),
            ("(4/5) slow", Some((4, Some("slow")))),
            ("[5]", Some((5, None))),
        ]);
    }

    #[test]
    fn messages_that_are_not_ratings_are_left_alone() {
        check(&[
            ("", None),
            ("   ", None),
            ("6", None),
            ("0", None),
            ("10", None),
            ("12345 is my order", None),
            ("my transfer is stuck", None),
            ("5 USDT missing", None),
            ("5 usdt missing", None),
            ("1 BTC", None),
            ("5USDT", None),
            ("5.5", None),
            ("5,000 gone", None),
            ("5-6 days", None),
            ("3 hours ago I sent it", None),
            ("$5", None),
            ("#5", None),
            ("5个USDT没到账", None),
            ("5 元没到账", None),
            ("5分钟了还没到账", None),
            ("1分钱都没到", None),
            ("五星级", None),
            ("一般多久到账？", None),
            ("一直没到账", None),
            ("两笔转账", None),
            ("满意度调查", None),
            ("很好奇", None),
            ("good morning, my withdrawal is pending", None),
            ("goodbye", None),
            ("not sure", None),
            ("⭐⭐⭐⭐⭐⭐", None),
            ("☆☆☆", None),
            ("okx deposit", None),
        ]);
    }

    #[test]
    fn the_example_in_the_question_reads_as_a_rating() {
        for (lang, example) in [(Lang::Zh, "5 回复很快"), (Lang::En, "5 quick and helpful")] {
            assert!(question(lang).contains(example));
            assert_eq!(parse_rating(example).map(|r| r.score), Some(5));
        }
    }

    #[test]
    fn thanks_match_the_score_and_the_language() {
        assert!(thanks(Lang::Zh, 5).contains("很高兴"));
        assert!(thanks(Lang::Zh, 1).contains("抱歉"));
        assert!(thanks(Lang::En, 4).contains("4/5"));
        assert!(thanks(Lang::En, 2).contains("sorry"));
        assert!(thanks(Lang::En, 9).contains("5/5"));
        assert!(thanks(Lang::En, 0).contains("1/5"));
    }
}
