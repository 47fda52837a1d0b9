//! Threading: which conversation a mail belongs to, and the headers that keep our
//! replies in the customer's thread.
//!
//! A conversation's thread key is the Message-ID of the mail that started it. A mail
//! finds its thread, in this order:
//!
//! 1. one of our Message-IDs in In-Reply-To or References: ours carry the thread
//!    (`fd.<hex of the key>.<random>@our.domain`), so even a mailer that keeps only
//!    In-Reply-To (Outlook) lands in the right place;
//! 2. a customer mail we stored, named by In-Reply-To, then by any Message-ID of
//!    References (the channel asks the store);
//! 3. the ticket token in the subject (`[#K7Q2]`, the conversation's number);
//! 4. the root of References, else In-Reply-To, else the mail's own Message-ID.

/// The thread by the mail's headers alone (steps 1 and 4 above).
pub fn thread_key(message_id: &str, in_reply_to: &[String], references: &[String]) -> String {
    let ours = in_reply_to
        .iter()
        .chain(references.iter().rev())
        .find_map(|id| thread_in_our_id(id));
    ours.unwrap_or_else(|| fallback_thread(message_id, in_reply_to, references))
}

/// One of our threads named by the ids, if any (step 1).
pub fn our_thread(in_reply_to: &[String], references: &[String]) -> Option<String> {
    in_reply_to
        .iter()
        .chain(references.iter().rev())
        .find_map(|id| thread_in_our_id(id))
}

/// The ids to look up in the store, most telling first (step 2).
pub fn ids_to_look_up(in_reply_to: &[String], references: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = in_reply_to.to_vec();
    for r in references.iter().rev() {
        if !ids.contains(r) {
            ids.push(r.clone());
        }
    }
    ids
}

/// Step 4: the root of References, else In-Reply-To, else the mail itself.
pub fn fallback_thread(message_id: &str, in_reply_to: &[String], references: &[String]) -> String {
    references
        .first()
        .cloned()
        .or_else(|| in_reply_to.first().cloned())
        .unwrap_or_else(|| message_id.to_owned())
}

const TOKEN_DIGITS: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A conversation's ticket token: its number in Crockford's base 32 (`#1` is `1`,
/// `#123456` is `3RJ0`).
pub fn token_for(conversation: i64) -> String {
    let mut n = conversation.max(0) as u64;
    let mut out = Vec::new();
    loop {
        out.push(TOKEN_DIGITS[(n % 32) as usize]);
        n /= 32;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The conversation named by a `[#TOKEN]` in a subject (step 3).
pub fn token_in(subject: &str) -> Option<i64> {
    let start = subject.rfind("[#")? + 2;
    let end = start + subject[start..].find(']')?;
    let token = &subject[start..end];
    if token.is_empty() || token.len() > 12 {
        return None;
    }
    token.bytes().try_fold(0i64, |n, b| {
        let digit = TOKEN_DIGITS
            .iter()
            .position(|&d| d == b.to_ascii_uppercase())?;
        n.checked_mul(32)?.checked_add(digit as i64)
    })
}

/// A Message-ID for one of our replies in `thread`, at `domain`.
pub fn our_message_id(thread: &str, domain: &str) -> String {
    let random: [u8; 8] = rand::random();
    format!("fd.{}.{}@{domain}", hex(thread.as_bytes()), hex(&random))
}

/// The thread key inside one of our Message-IDs, if it is one.
pub fn thread_in_our_id(id: &str) -> Option<String> {
    let local = id.split('@').next()?;
    let mut parts = local.split('.');
    if parts.next()? != "fd" {
        return None;
    }
    let encoded = parts.next()?;
    parts.next()?;
    let bytes = unhex(encoded)?;
    String::from_utf8(bytes).ok().filter(|k| !k.is_empty())
}

/// The References of our reply: the customer's whole chain, then their message.
pub fn references_for_reply(references: &[String], message_id: &str) -> Vec<String> {
    let mut chain: Vec<String> = references.to_vec();
    if !chain.iter().any(|r| r == message_id) {
        chain.push(message_id.to_owned());
    }
    chain
}

/// "Re: ", the subject without its own reply prefixes (Re, RE, Fwd, 回复, 答复), and the
/// conversation's ticket token unless it is there already.
pub fn reply_subject(subject: &str, conversation: i64) -> String {
    let token = format!("[#{}]", token_for(conversation));
    let base = reply_subject_without_token(subject);
    if token_in(&base) == Some(conversation) {
        base
    } else {
        format!("{base} {token}")
    }
}

fn reply_subject_without_token(subject: &str) -> String {
    let mut rest = subject.trim();
    loop {
        let lower = rest.to_lowercase();
        let prefix = [
            "re:",
            "re：",
            "aw:",
            "fwd:",
            "fw:",
            "回复:",
            "回复：",
            "答复:",
            "答复：",
            "回覆:",
            "回覆：",
        ]
        .iter()
        .find(|p| lower.starts_with(*p));
        match prefix {
            // The prefixes are ASCII or CJK whose lower case has the same length.
            Some(p) => rest = rest[p.len()..].trim_start(),
            None => break,
        }
    }
    if rest.is_empty() {
        "Re: your message".into()
    } else {
        format!("Re: {rest}")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_first_mail_starts_its_own_thread() {
        assert_eq!(
            thread_key("a1@customer.example", &[], &[]),
            "a1@customer.example"
        );
    }

    #[test]
    fn a_reply_to_our_mail_finds_the_thread_even_with_only_in_reply_to() {
        let ours = our_message_id("a1@customer.example", "example.test");
        assert!(ours.ends_with("@example.test"));
        // Outlook: In-Reply-To only.
        assert_eq!(
            thread_key("a2@customer.example", &ids(&[&ours]), &[]),
            "a1@customer.example"
        );
        // A full chain whose root is another mail still joins our thread.
        assert_eq!(
            thread_key(
                "a3@customer.example",
                &[],
                &ids(&["zz@elsewhere.example", &ours])
            ),
            "a1@customer.example"
        );
        assert_ne!(ours, our_message_id("a1@customer.example", "example.test"));
    }

    #[test]
    fn otherwise_the_root_of_references_then_in_reply_to() {
        assert_eq!(
            thread_key("c@x", &ids(&["b@x"]), &ids(&["a@x", "b@x"])),
            "a@x"
        );
        assert_eq!(thread_key("c@x", &ids(&["b@x"]), &[]), "b@x");
    }

    #[test]
    fn ids_that_only_look_like_ours_are_not_read_as_ours() {
        assert_eq!(thread_in_our_id("fd.zz.1@x"), None);
        assert_eq!(thread_in_our_id("fd.616263@x"), None);
        assert_eq!(thread_in_our_id("ab.616263.1@x"), None);
        assert_eq!(thread_in_our_id("fd.616263.1@x").as_deref(), Some("abc"));
    }

    #[test]
    fn our_reply_carries_the_whole_chain_and_one_re() {
        assert_eq!(
            references_for_reply(&ids(&["a@x", "b@x"]), "c@x"),
            ids(&["a@x", "b@x", "c@x"])
        );
        assert_eq!(
            reply_subject("Re: RE: 提现没到账", 42),
            "Re: 提现没到账 [#1A]"
        );
        assert_eq!(
            reply_subject("回复：提现没到账 [#1A]", 42),
            "Re: 提现没到账 [#1A]"
        );
        assert_eq!(reply_subject("Withdrawal", 1), "Re: Withdrawal [#1]");
        assert_eq!(reply_subject("  ", 1), "Re: your message [#1]");
    }

    #[test]
    fn a_ticket_token_names_its_conversation() {
        for n in [1, 31, 32, 42, 123_456, 9_999_999_999] {
            assert_eq!(token_in(&format!("Re: x [#{}]", token_for(n))), Some(n));
        }
        assert_eq!(token_for(123_456), "3RJ0");
        assert_eq!(token_in("Re: x [#3rj0]"), Some(123_456));
        assert_eq!(token_in("Re: [#] x"), None);
        assert_eq!(token_in("Re: [#UUUU] x"), None);
        assert_eq!(token_in("[#ZZZZZZZZZZZZZZ]"), None);
    }

    #[test]
    fn the_store_is_asked_about_in_reply_to_first_then_the_chain_newest_first() {
        assert_eq!(
            ids_to_look_up(&ids(&["c@x"]), &ids(&["a@x", "b@x", "c@x"])),
            ids(&["c@x", "b@x", "a@x"])
        );
    }
}
