//! Mail loops: which mail must never get an automatic answer (the bot's, a notice, a
//! survey). Agents still see all of it; only the automatic answers stop.
//!
//! - `Auto-Submitted` other than `no` (RFC 3834: auto-replies, auto-generated mail);
//! - `Precedence: bulk`, `junk` or `list`;
//! - mailing lists (`List-Id`, `List-Unsubscribe`);
//! - `X-Autoreply` / `X-Autorespond` (older vacation responders);
//! - delivery status notifications (`multipart/report`);
//! - senders that are robots: mailer-daemon, postmaster, noreply and its spellings.
//!
//! Per sender, at most a few automatic answers an hour go out even to mail that passes
//! these checks ([`AnswerBudget`]).

use std::collections::HashMap;
use std::time::Duration;

/// The headers that tell an automatic mail, as read from a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: Option<String>,
    pub x_autoreply: Option<String>,
    pub delivery_report: bool,
}

/// Why a mail is automatic, in words for agents; `None` for a person's mail.
pub fn automatic(signals: &Signals, from: Option<&str>) -> Option<String> {
    if let Some(value) = &signals.auto_submitted {
        let kind = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        if !kind.is_empty() && kind != "no" {
            return Some(format!("Auto-Submitted: {kind}"));
        }
    }
    if let Some(value) = &signals.precedence {
        let p = value.trim().to_lowercase();
        if matches!(p.as_str(), "bulk" | "junk" | "list") {
            return Some(format!("Precedence: {p}"));
        }
    }
    if signals.list_id.is_some() {
        return Some("a mailing list".into());
    }
    if signals.x_autoreply.is_some() {
        return Some("an automatic reply".into());
    }
    if signals.delivery_report {
        return Some("a delivery status notification".into());
    }
    let local = from?.split('@').next()?.to_lowercase();
    let squeezed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let robot = matches!(squeezed.as_str(), "mailerdaemon" | "postmaster")
        || squeezed.starts_with("noreply")
        || squeezed.starts_with("donotreply")
        || squeezed.starts_with("bounce");
    robot.then(|| format!("a robot sender ({local})"))
}

/// At most `per_hour` automatic answers to one address in any hour.
#[derive(Debug)]
pub struct AnswerBudget {
    per_hour: usize,
    sent: HashMap<String, Vec<u64>>,
}

impl AnswerBudget {
    pub fn new(per_hour: usize) -> Self {
        Self {
            per_hour,
            sent: HashMap::new(),
        }
    }

    /// Whether one more automatic answer may go to `address` at `now` (seconds).
    pub fn has_room(&mut self, address: &str, now: u64) -> bool {
        self.recent(address, now).len() < self.per_hour
    }

    /// Counts an automatic answer sent to `address` at `now` (only what was sent
    /// counts, not a failed attempt).
    pub fn spend(&mut self, address: &str, now: u64) {
        self.recent(address, now).push(now);
    }

    /// The answers to `address` in the hour before `now`.
    fn recent(&mut self, address: &str, now: u64) -> &mut Vec<u64> {
        let hour = Duration::from_secs(3600).as_secs();
        // Keep the map small: forget addresses with nothing in the last hour.
        if self.sent.len() > 10_000 {
            self.sent
                .retain(|_, times| times.iter().any(|&t| now.saturating_sub(t) < hour));
        }
        let times = self.sent.entry(address.to_lowercase()).or_default();
        times.retain(|&t| now.saturating_sub(t) < hour);
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Signals)) -> Signals {
        let mut s = Signals::default();
        f(&mut s);
        s
    }

    #[test]
    fn a_persons_mail_may_be_answered() {
        assert_eq!(
            automatic(&Signals::default(), Some("wang@customer.example")),
            None
        );
        let no = with(|s| s.auto_submitted = Some("no".into()));
        assert_eq!(automatic(&no, Some("wang@customer.example")), None);
    }

    #[test]
    fn automatic_mail_is_recognised_with_the_reason() {
        let table = [
            (
                with(|s| s.auto_submitted = Some("auto-replied; owner-email=x".into())),
                "Auto-Submitted: auto-replied",
            ),
            (
                with(|s| s.auto_submitted = Some("Auto-Generated".into())),
                "Auto-Submitted: auto-generated",
            ),
            (
                with(|s| s.precedence = Some("Bulk".into())),
                "Precedence: bulk",
            ),
            (
                with(|s| s.precedence = Some("junk".into())),
                "Precedence: junk",
            ),
            (
                with(|s| s.list_id = Some("<users.lists.example>".into())),
                "a mailing list",
            ),
            (
                with(|s| s.x_autoreply = Some("yes".into())),
                "an automatic reply",
            ),
            (
                with(|s| s.delivery_report = true),
                "a delivery status notification",
            ),
        ];
        for (signals, why) in table {
            assert_eq!(
                automatic(&signals, Some("wang@customer.example")).as_deref(),
                Some(why)
            );
        }
        for robot in [
            "MAILER-DAEMON@mx.example",
            "postmaster@x.example",
            "no-reply@bank.example",
            "noreply@x",
            "do_not_reply@x",
            "bounces+123@x",
        ] {
            assert!(
                automatic(&Signals::default(), Some(robot)).is_some(),
                "{robot}"
            );
        }
        assert!(automatic(&Signals::default(), Some("nora@x.example")).is_none());
    }

    #[test]
    fn a_sender_gets_a_few_automatic_answers_an_hour_at_most() {
        let mut budget = AnswerBudget::new(3);
        let t = 1_000_000;
        for i in 0..3 {
            assert!(budget.has_room("Wang@x.example", t + i));
            budget.spend("Wang@x.example", t + i);
        }
        assert!(!budget.has_room("wang@x.example", t + 10));
        assert!(budget.has_room("li@x.example", t + 10));
        // An hour after the first, there is room again.
        assert!(budget.has_room("wang@x.example", t + 3600));
    }
}
