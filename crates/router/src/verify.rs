//! Email verification codes: the pure parts.
//!
//! A customer proves an email address is theirs by replying in the chat with the
//! 6-digit code mailed to it. This module makes the code ([`new_code`]), finds a code
//! or an address in a reply ([`find_code`], [`find_email`]), masks the address for
//! display ([`mask_email`]) and holds the texts of the exchange in Chinese and English.
//! Storing the pending code, counting tries and sending the mail happen elsewhere.
//!
//! The texts do not reveal whether an address is known: [`code_sent`] reads the same
//! whether or not a mail is actually sent.

use frontdesk_faq::Lang;
use rand::Rng;
use std::time::Duration;

/// How long a code may be used after it was sent.
pub const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Wrong codes allowed for one sent code before it stops working.
pub const MAX_TRIES: u32 = 5;

/// [`CODE_LIFETIME`] in whole minutes, for the texts.
const LIFETIME_MINUTES: u64 = CODE_LIFETIME.as_secs() / 60;

/// Six random digits, leading zeros kept ("004217"), from rand's thread-local
/// generator: a cryptographically secure generator seeded (and reseeded) from the
/// operating system.
pub fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// The first 6-digit code in a customer's reply, as six ASCII digits.
///
/// Accepts the digits written together (`123456`), as two groups of three separated by
/// one space or hyphen (`123 456`, `123-456`), and full-width digits (`１２３４５６`).
/// Rejects runs of 5 or 7 and more digits, other groupings (`12 34 56`), digits glued to
/// Latin letters (`0xab123456`) and numbers with a decimal point or thousands separator
/// (`123,456`).
pub fn find_code(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().map(fold_width).collect();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let (groups, end) = digit_run(&chars, i);
        let glued_before = i > 0 && chars[i - 1].is_ascii_alphabetic();
        let glued_after = chars.get(end).is_some_and(char::is_ascii_alphabetic);
        if !glued_before
            && !glued_after
            && let Some(code) = code_in_run(&groups)
        {
            return Some(code);
        }
        i = end;
    }
    None
}

/// A group of digits and the joiner before it (`None` for the first group of a run).
type Group = (Option<char>, String);

/// Digit groups from `start`, joined by one space, hyphen, point or comma between two
/// digits; also where the run ends.
fn digit_run(chars: &[char], start: usize) -> (Vec<Group>, usize) {
    let mut groups: Vec<Group> = Vec::new();
    let mut joiner = None;
    let mut i = start;
    loop {
        let digits: String = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        i += digits.len();
        groups.push((joiner, digits));
        let joins = chars.get(i).is_some_and(|c| is_joiner(*c))
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if !joins {
            return (groups, i);
        }
        joiner = chars.get(i).copied();
        i += 1;
    }
}

fn is_joiner(c: char) -> bool {
    matches!(c, ' ' | '\u{00A0}' | '-' | '.' | ',')
}

/// The code in one run: the whole run if it is `dddddd` or `ddd ddd`/`ddd-ddd`,
/// otherwise a lone six-digit group set apart by spaces or hyphens (`5 123456`).
fn code_in_run(groups: &[Group]) -> Option<String> {
    let spaced = |j: &Option<char>| matches!(j, Some(' ' | '\u{00A0}' | '-'));
    let lens: Vec<usize> = groups.iter().map(|(_, g)| g.len()).collect();
    let all_spaced = groups.iter().skip(1).all(|(j, _)| spaced(j));
    if all_spaced && (lens == [6] || lens == [3, 3]) {
        return Some(groups.iter().map(|(_, g)| g.as_str()).collect());
    }
    groups.iter().enumerate().find_map(|(k, (joiner, g))| {
        let apart_before = k == 0 || spaced(joiner);
        let apart_after = groups.get(k + 1).is_none_or(|(j, _)| spaced(j));
        (g.len() == 6 && apart_before && apart_after).then(|| g.clone())
    })
}

/// The first email address in `text`, lower-cased.
///
/// A careful scan rather than a pattern with word boundaries, so that an address written
/// straight after Chinese text (`邮箱是li.wei@example.com`) is found whole. The local
/// part may hold ASCII letters, digits and `. _ % + -` (no leading, trailing or double
/// dot); the domain needs at least two labels of letters, digits and inner hyphens,
/// and a top-level label of two or more letters. Full-width forms count as ASCII.
pub fn find_email(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().map(fold_width).collect();
    let is_local = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
    let is_domain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-');
    for (at, _) in chars.iter().enumerate().filter(|(_, c)| **c == '@') {
        let from = chars[..at]
            .iter()
            .rev()
            .take_while(|c| is_local(**c))
            .count();
        let local: String = chars[at - from..at].iter().collect();
        let domain: String = chars[at + 1..]
            .iter()
            .take_while(|c| is_domain(**c))
            .collect();
        let local = local.trim_start_matches('.');
        let domain = domain.trim_end_matches(['.', '-']);
        if valid_local(local) && valid_domain(domain) {
            return Some(format!("{local}@{domain}").to_ascii_lowercase());
        }
    }
    None
}

fn valid_local(local: &str) -> bool {
    !local.is_empty() && local.len() <= 64 && !local.ends_with('.') && !local.contains("..")
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let tld_ok = labels
        .last()
        .is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()));
    domain.len() <= 253 && labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
}

/// Full-width ASCII forms and the ideographic space as their ASCII counterparts.
fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// An address for display: the first character of the local part, `***`, and the
/// domain (`t***@example.com`). Never the whole address; `***` when there is no `@`.
pub fn mask_email(addr: &str) -> String {
    match addr.trim().rsplit_once('@') {
        Some((local, domain)) => match local.chars().next() {
            Some(first) => format!("{first}***@{domain}"),
            None => format!("***@{domain}"),
        },
        None => "***".to_owned(),
    }
}

/// Asks for the address to verify.
pub fn ask_email(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => {
            "请回复您账户绑定的邮箱地址，我们会发送一个 6 位验证码，以确认该邮箱属于您本人。"
        }
        Lang::En => {
            "Please reply with the email address linked to your account. We will send a 6-digit code to it to confirm it is yours."
        }
    }
}

/// Says a code is on its way to `masked` (see [`mask_email`]). It reads the same
/// whether or not the address is known, so it tells no one which addresses are.
pub fn code_sent(lang: Lang, masked: &str) -> String {
    match lang {
        Lang::Zh => format!(
            "如果该邮箱可以正常收信，一封含 6 位验证码的邮件正在发往 {masked}，验证码 {LIFETIME_MINUTES} 分钟内有效。请直接回复验证码。"
        ),
        Lang::En => format!(
            "If this address can receive mail, a 6-digit code is on its way to {masked}; it is valid for {LIFETIME_MINUTES} minutes. Reply with the code."
        ),
    }
}

/// The verification mail: subject and plain-text body.
pub fn code_mail(lang: Lang, code: &str) -> (String, String) {
    match lang {
        Lang::Zh => (
            "您的客服验证码".to_owned(),
            format!(
                "您的验证码是：{code}\n\n\
                 验证码 {LIFETIME_MINUTES} 分钟内有效，请在申请验证的客服对话中回复它。\n\n\
                 如果这不是您本人的操作，请忽略此邮件，您的账户不会有任何变化。\
                 我们绝不会向您索要助记词、私钥或密码。\n"
            ),
        ),
        Lang::En => (
            "Your support verification code".to_owned(),
            format!(
                "Your verification code is: {code}\n\n\
                 It is valid for {LIFETIME_MINUTES} minutes. Reply with it in the support chat \
                 where you asked for it.\n\n\
                 If you did not ask for this code, ignore this email; nothing changes on your \
                 account. We will never ask for your recovery phrase, private key or password.\n"
            ),
        ),
    }
}

/// The address is verified.
pub fn verified(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "验证成功，您的邮箱已确认，谢谢！",
        Lang::En => "Thank you, your email address is verified.",
    }
}

/// A wrong code, with the tries left for this code; with none left, the same as
/// [`too_many_tries`].
pub fn wrong_code(lang: Lang, tries_left: u32) -> String {
    match (lang, tries_left) {
        (_, 0) => too_many_tries(lang).to_owned(),
        (Lang::Zh, n) => format!("验证码不正确，您还可以再试 {n} 次。"),
        (Lang::En, 1) => "That code is not right. You have 1 try left.".to_owned(),
        (Lang::En, n) => format!("That code is not right. You have {n} tries left."),
    }
}

/// The code is past [`CODE_LIFETIME`].
pub fn expired(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "该验证码已过期。请重新发送您的邮箱地址，我们会给您发送新的验证码。",
        Lang::En => {
            "This code has expired. Send your email address again and we will send you a new code."
        }
    }
}

/// Too many codes for one conversation in an hour.
pub fn try_later(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "验证请求过于频繁，为了您的账户安全，请一小时后再试。",
        Lang::En => {
            "There have been too many verification attempts. For your security, please try again in an hour."
        }
    }
}

/// [`MAX_TRIES`] wrong codes: this code no longer works.
pub fn too_many_tries(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => {
            "错误次数过多，为了您的账户安全，该验证码已失效。请重新发送您的邮箱地址以获取新的验证码。"
        }
        Lang::En => {
            "Too many wrong codes. For your security this code no longer works; send your email address again to get a new one."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_codes_are_six_digits_and_vary() {
        let codes: Vec<String> = (0..50).map(|_| new_code()).collect();
        for code in &codes {
            assert_eq!(code.len(), 6, "{code}");
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        }
        let distinct: std::collections::BTreeSet<&String> = codes.iter().collect();
        assert!(
            distinct.len() > 40,
            "50 codes, only {} distinct",
            distinct.len()
        );
    }

    #[test]
    fn codes_are_found_as_customers_type_them() {
        let table: &[(&str, Option<&str>)] = &[
            ("123456", Some("123456")),
            (" 004217 ", Some("004217")),
            ("code: 123 456", Some("123456")),
            ("123-456", Some("123456")),
            ("１２３４５６", Some("123456")),
            ("验证码是１２３　４５６。", Some("123456")),
            ("验证码654321谢谢", Some("654321")),
            ("my order 12345, code 246810", Some("246810")),
            ("I sent 5 123456", Some("123456")),
            ("12345", None),
            ("1234567", None),
            ("12 34 56", None),
            ("123 456 789", None),
            ("138-1234-5678", None),
            ("123,456 USDT", None),
            ("1.234567", None),
            ("0xab123456cd", None),
            ("2026-10-01", None),
            ("no code here", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(find_code(text).as_deref(), *want, "reading {text:?}");
        }
    }

    #[test]
    fn the_first_email_address_is_found_and_lower_cased() {
        let table: &[(&str, Option<&str>)] = &[
            ("Li.Wei@Example.COM", Some("li.wei@example.com")),
            (
                "my email is tom+support@mail.example.co.uk.",
                Some("tom+support@mail.example.co.uk"),
            ),
            ("邮箱是li.wei@example.com谢谢", Some("li.wei@example.com")),
            ("邮箱：ｌｉ＠ｅｘａｍｐｌｅ．ｃｏｍ", Some("li@example.com")),
            ("(a_b@x-y.io), or c@d.org", Some("a_b@x-y.io")),
            ("...dots@example.com", Some("dots@example.com")),
            (
                "@handle and then real@example.net",
                Some("real@example.net"),
            ),
            ("user@localhost", None),
            ("user@example.c0m", None),
            ("a..b@example.com", None),
            ("name@-bad.com", None),
            ("no address here", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(find_email(text).as_deref(), *want, "reading {text:?}");
        }
    }

    #[test]
    fn a_masked_address_shows_one_letter_and_the_domain() {
        assert_eq!(mask_email("tom@example.com"), "t***@example.com");
        assert_eq!(mask_email("t@example.com"), "t***@example.com");
        assert_eq!(mask_email("李@example.com"), "李***@example.com");
        assert_eq!(mask_email("@example.com"), "***@example.com");
        assert_eq!(mask_email("not an address"), "***");
    }

    #[test]
    fn the_code_sent_text_names_only_the_masked_address() {
        let masked = mask_email("tom@example.com");
        for lang in [Lang::Zh, Lang::En] {
            let text = code_sent(lang, &masked);
            assert!(text.contains("t***@example.com"), "{text}");
            assert!(!text.contains("tom@"), "{text}");
            assert!(text.contains("10"), "{text}");
        }
        assert_eq!(
            code_sent(Lang::En, "t***@example.com"),
            "If this address can receive mail, a 6-digit code is on its way to t***@example.com; it is valid for 10 minutes. Reply with the code."
        );
    }

    #[test]
    fn the_mail_carries_the_code_and_a_warning() {
        for lang in [Lang::Zh, Lang::En] {
            let (subject, body) = code_mail(lang, "042042");
            assert!(!subject.is_empty());
            assert!(!subject.contains("042042"));
            assert!(body.contains("042042"), "{body}");
            assert!(body.contains("10"), "{body}");
        }
        assert!(code_mail(Lang::Zh, "1").1.contains("助记词"));
        assert!(code_mail(Lang::En, "1").1.contains("recovery phrase"));
    }

    #[test]
    fn a_wrong_code_counts_down_the_tries() {
        assert_eq!(
            wrong_code(Lang::En, 3),
            "That code is not right. You have 3 tries left."
        );
        assert_eq!(
            wrong_code(Lang::En, 1),
            "That code is not right. You have 1 try left."
        );
        assert!(wrong_code(Lang::Zh, 2).contains("2 次"));
        assert_eq!(wrong_code(Lang::En, 0), too_many_tries(Lang::En));
        assert_eq!(wrong_code(Lang::Zh, 0), too_many_tries(Lang::Zh));
    }

    #[test]
    fn every_text_exists_in_both_languages() {
        for lang in [Lang::Zh, Lang::En] {
            for text in [
                ask_email(lang),
                verified(lang),
                expired(lang),
                too_many_tries(lang),
            ] {
                assert!(!text.is_empty());
            }
        }
        assert_ne!(ask_email(Lang::Zh), ask_email(Lang::En));
        assert_eq!(CODE_LIFETIME, Duration::from_secs(600));
        assert_eq!(MAX_TRIES, 5);
    }
}
