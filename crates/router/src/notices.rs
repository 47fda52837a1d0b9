//! What the conversation engine tells customers, in their language.

use frontdesk_faq::Lang;
use std::time::Duration;

/// The first line of the handoff notice when the bot had nothing of its own to say.
pub fn handed_off(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "我已为您转接人工客服，客服会在这里回复您。",
        Lang::En => "I've passed your conversation to our support team; a person will reply here.",
    }
}

/// While people are at work: the place in the queue and, when recent first responses
/// allow a guess, the wait.
pub fn queued(lang: Lang, position: usize, wait: Option<Duration>) -> String {
    let wait = wait.map(rounded_minutes);
    let ahead = position.saturating_sub(1);
    match (lang, wait) {
        _ if ahead == 0 => match lang {
            Lang::Zh => "您是下一位，客服很快会回复您。".to_owned(),
            Lang::En => "You are next in the queue.".to_owned(),
        },
        (Lang::Zh, Some(m)) => format!("您前面还有 {ahead} 位客户，预计等待约 {m} 分钟。"),
        (Lang::Zh, None) => format!("您前面还有 {ahead} 位客户。"),
        (Lang::En, Some(m)) => format!(
            "You are number {position} in the queue; the wait is about {m} minute{s}.",
            s = if m == 1 { "" } else { "s" }
        ),
        (Lang::En, None) => format!("You are number {position} in the queue."),
    }
}

/// When an agent took the conversation at once.
pub fn assigned(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "客服马上会回复您。",
        Lang::En => "An agent will reply shortly.",
    }
}

/// Outside the team's hours: when people are back.
pub fn off_hours(lang: Lang, back: Option<&str>) -> String {
    match (lang, back) {
        (Lang::Zh, Some(when)) => format!(
            "现在是非工作时间，客服将于 {when} 上线后回复您。如遇资产被盗等紧急情况，请直接说明，我们会优先处理。"
        ),
        (Lang::Zh, None) => "现在是非工作时间，客服上线后会回复您。".to_owned(),
        (Lang::En, Some(when)) => format!(
            "Our team is away right now and back {when}; a person will reply then. If funds were stolen, say so and we will treat it first."
        ),
        (Lang::En, None) => {
            "Our team is away right now; a person will reply when we're back.".to_owned()
        }
    }
}

/// Sent when a pending conversation resolves itself after days of silence.
pub fn auto_resolved(lang: Lang, days: u64) -> String {
    match lang {
        Lang::Zh => format!(
            "由于 {days} 天内没有收到您的回复，我们已将此会话标记为已解决。如仍需帮助，直接回复本消息即可。"
        ),
        Lang::En => format!(
            "We haven't heard from you in {days} days, so we've marked this conversation as resolved. If you still need help, just reply here."
        ),
    }
}

/// Minutes, at least one, for a customer-facing estimate.
fn rounded_minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_notice_gives_the_place_and_the_wait_in_the_customers_language() {
        let en = queued(Lang::En, 3, Some(Duration::from_secs(250)));
        assert!(en.contains("number 3") && en.contains("5 minutes"), "{en}");
        let zh = queued(Lang::Zh, 3, Some(Duration::from_secs(60)));
        assert!(
            zh.contains("前面还有 2 位") && zh.contains("1 分钟"),
            "{zh}"
        );
        assert_eq!(queued(Lang::En, 1, None), "You are next in the queue.");
        assert!(queued(Lang::Zh, 1, Some(Duration::from_secs(60))).contains("下一位"));
    }
}
