//! Threading: which conversation a mail belongs to, and the headers that keep our
//! replies in the customer's thread.
//!
//! A conversation's thread key is the Message-ID of the mail that started it. Our
//! replies' Message-IDs carry that key (`fd.<hex of the key>.<random>@our.domain`),
//! so a reply to one of our mails finds its thread even when the customer's mailer
//! kept only In-Reply-To (Outlook does). Otherwise the first Message-ID of References,
//! the root of the chain, is the thread; else In-Reply-To; else the mail starts its
//! own.

/// The thread a mail belongs to, from its own id, In-Reply-To and References.
pub fn thread_key(message_id: &str, in_reply_to: &[String], references: &[String]) -> String {
    let ours = in_reply_to
        .iter()
        .chain(references.iter().rev())
        .find_map(|id| thread_in_our_id(id));
    ours.or_else(|| references.first().cloned())
        .or_else(|| in_reply_to.first().cloned())
        .unwrap_or_else(|| message_id.to_owned())
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

/// "Re: " and the subject without its own reply prefixes (Re, RE, Fwd, 回复, 答复).
pub fn reply_subject(subject: &str) -> String {
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
        assert_eq!(reply_subject("Re: RE: 提现没到账"), "Re: 提现没到账");
        assert_eq!(reply_subject("回复：提现没到账"), "Re: 提现没到账");
        assert_eq!(reply_subject("Withdrawal"), "Re: Withdrawal");
        assert_eq!(reply_subject("  "), "Re: your message");
    }
}
