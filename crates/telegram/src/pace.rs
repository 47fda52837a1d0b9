//! Pacing of sends to Telegram's limits for a bot: one message a second to a chat, 30 a
//! second in all, 20 a minute to a group. A send within the limits goes at once; one
//! over them waits exactly until it is allowed.
//!
//! Written here rather than taken from a crate: teloxide's `Throttle` looks at its
//! queue every 250 ms, so every reply waited up to a quarter of a second even with the
//! bot far under its limits; token buckets (`governor`) let a full burst follow a steady
//! stream, which Telegram, counting sends in any one-second window, refuses.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::time::{Duration, Instant};

/// Sends a second to one chat.
const CHAT_GAP: Duration = Duration::from_secs(1);
/// Sends a second in all.
const OVERALL: usize = 30;
/// Sends a minute to one group.
const GROUP: usize = 20;
/// Telegram counts a send when it arrives, and concurrent requests may overtake each
/// other on the way: windows are kept this much longer than they are.
const MARGIN: Duration = Duration::from_millis(50);
/// Chats remembered before the ones with no recent send are forgotten.
const SWEEP_AT: usize = 1024;

/// Send times, kept only as long as a limit can still count them.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    windows: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    /// All chats, oldest first, within the last second.
    overall: VecDeque<Instant>,
    /// Per chat, oldest first: the last send (private chats) or the last minute's
    /// (groups, whose ids are negative).
    chats: HashMap<i64, VecDeque<Instant>>,
}

impl Pacer {
    /// Waits until a message to `chat` is within the limits, and counts it as sent.
    pub(crate) async fn wait_turn(&self, chat: i64) {
        loop {
            let now = Instant::now();
            let next = {
                let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
                match windows.next_slot(chat, now) {
                    None => {
                        windows.record(chat, now);
                        return;
                    }
                    Some(at) => at,
                }
            };
            // Another send may take the slot meanwhile: look again when it comes.
            tokio::time::sleep_until(next).await;
        }
    }
}

fn is_group(chat: i64) -> bool {
    chat < 0
}

/// How long one chat's send times are kept.
fn chat_window(chat: i64) -> Duration {
    if is_group(chat) {
        Duration::from_secs(60) + MARGIN
    } else {
        CHAT_GAP + MARGIN
    }
}

impl Windows {
    /// When a send to `chat` is next allowed; `None` if now.
    fn next_slot(&mut self, chat: i64, now: Instant) -> Option<Instant> {
        let second = Duration::from_secs(1) + MARGIN;
        while self.overall.front().is_some_and(|at| *at + second <= now) {
            self.overall.pop_front();
        }
        let mut earliest = now;
        if self.overall.len() >= OVERALL {
            earliest = earliest.max(self.overall[self.overall.len() - OVERALL] + second);
        }
        if let Some(sent) = self.chats.get_mut(&chat) {
            let window = chat_window(chat);
            while sent.front().is_some_and(|at| *at + window <= now) {
                sent.pop_front();
            }
            if let Some(last) = sent.back() {
                earliest = earliest.max(*last + CHAT_GAP + MARGIN);
            }
            if is_group(chat) && sent.len() >= GROUP {
                earliest = earliest.max(sent[sent.len() - GROUP] + window);
            }
        }
        (earliest > now).then_some(earliest)
    }

    fn record(&mut self, chat: i64, now: Instant) {
        self.overall.push_back(now);
        self.chats.entry(chat).or_default().push_back(now);
        if self.chats.len() > SWEEP_AT {
            self.chats.retain(|chat, sent| {
                sent.back()
                    .is_some_and(|last| *last + chat_window(*chat) > now)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `n` messages to `chat`, returning when each went, from the start.
    async fn sends(pacer: &Pacer, chats: impl IntoIterator<Item = i64>) -> Vec<Duration> {
        let start = Instant::now();
        let mut at = Vec::new();
        for chat in chats {
            pacer.wait_turn(chat).await;
            at.push(start.elapsed());
        }
        at
    }

    #[tokio::test(start_paused = true)]
    async fn a_bot_under_its_limits_sends_at_once() {
        let pacer = Pacer::default();
        let at = sends(&pacer, 1..=30).await;
        assert!(at.iter().all(|d| d.is_zero()), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_thirty_first_send_in_a_second_waits_for_the_window_to_move() {
        let pacer = Pacer::default();
        let at = sends(&pacer, 1..=31).await;
        assert_eq!(at[30], Duration::from_secs(1) + MARGIN);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_message_to_the_same_chat_waits_a_second() {
        let pacer = Pacer::default();
        let at = sends(&pacer, [7, 8, 7]).await;
        assert_eq!(at, [Duration::ZERO, Duration::ZERO, CHAT_GAP + MARGIN]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_group_gets_twenty_messages_a_minute() {
        let pacer = Pacer::default();
        let at = sends(&pacer, std::iter::repeat_n(-100, 21)).await;
        // One a second, then the 21st waits for the first to leave the minute.
        assert_eq!(at[19], (CHAT_GAP + MARGIN) * 19);
        assert_eq!(at[20], Duration::from_secs(60) + MARGIN);
    }

    #[tokio::test(start_paused = true)]
    async fn chats_with_no_recent_send_are_forgotten() {
        let pacer = Pacer::default();
        sends(&pacer, 1..=(SWEEP_AT as i64)).await;
        tokio::time::advance(Duration::from_secs(2)).await;
        sends(&pacer, [0]).await;
        let windows = pacer.windows.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(windows.chats.len(), 1);
    }
}
