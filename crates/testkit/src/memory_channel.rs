use frontdesk_core::{
    Channel, ChannelAccount, ChannelContext, DeliveryOutcome, Health, Inbound, Outbound,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// One call of `deliver`, as the channel saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outbound: Outbound,
    /// tokio time of the call (follows paused time in tests).
    pub at: Instant,
    pub outcome: DeliveryOutcome,
}

#[derive(Debug, Default)]
struct State {
    /// The provider's log of inbound messages; a message's offset is its index + 1.
    log: Vec<Inbound>,
    script: VecDeque<DeliveryOutcome>,
    attempts: Vec<Attempt>,
    /// Calls of `deliver` so far, including ones still held.
    started: usize,
    sent: u64,
    /// Deliveries hold here until released (to test shutdown with sends in flight).
    hold: bool,
}

/// An in-memory channel account. Clones share state.
#[derive(Debug, Clone)]
pub struct MemoryChannel {
    account: ChannelAccount,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    released: Arc<Notify>,
    delivered: Arc<Notify>,
}

impl MemoryChannel {
    pub fn new(account: ChannelAccount) -> Self {
        Self {
            account,
            state: Arc::default(),
            arrived: Arc::default(),
            released: Arc::default(),
            delivered: Arc::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the state from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A customer sends something: it enters the provider's log.
    pub fn customer_sends(&self, inbound: Inbound) {
        self.state().log.push(inbound);
        self.arrived.notify_waiters();
    }

    /// The next deliveries answer with these outcomes, in order; then `Sent`.
    pub fn script(&self, outcomes: impl IntoIterator<Item = DeliveryOutcome>) {
        self.state().script.extend(outcomes);
    }

    /// Deliveries wait inside `deliver` until [`MemoryChannel::release`].
    pub fn hold_deliveries(&self) {
        self.state().hold = true;
    }

    pub fn release(&self) {
        self.state().hold = false;
        self.released.notify_waiters();
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        self.state().attempts.clone()
    }

    /// Texts the customer actually received, in order.
    pub fn received(&self) -> Vec<String> {
        self.state()
            .attempts
            .iter()
            .filter(|a| matches!(a.outcome, DeliveryOutcome::Sent { .. }))
            .map(|a| a.outbound.text.clone())
            .collect()
    }

    /// Waits until at least `n` deliveries were attempted, or panics after `within`.
    pub async fn wait_for_attempts(&self, n: usize, within: Duration) -> Vec<Attempt> {
        self.wait_until(Some(within), "delivery attempts", n, |s| s.attempts.len())
            .await;
        self.attempts()
    }

    /// Waits, with no deadline of its own, until `n` deliveries were attempted. For
    /// tests on paused time, where a deadline timer would be the next thing the paused
    /// clock jumps to; bound such tests in real time instead.
    pub async fn attempts_reach(&self, n: usize) -> Vec<Attempt> {
        self.wait_until(None, "delivery attempts", n, |s| s.attempts.len())
            .await;
        self.attempts()
    }

    /// Waits until `deliver` was called `n` times (held calls count), or panics.
    pub async fn wait_for_sends_started(&self, n: usize, within: Duration) {
        self.wait_until(Some(within), "calls of deliver", n, |s| s.started)
            .await;
    }

    async fn wait_until(
        &self,
        within: Option<Duration>,
        what: &str,
        n: usize,
        count: impl Fn(&State) -> usize,
    ) {
        let deadline = within.map(|w| Instant::now() + w);
        loop {
            let notified = self.delivered.notified();
            let seen = count(&self.state());
            if seen >= n {
                return;
            }
            match deadline {
                None => notified.await,
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        panic!("expected {n} {what} within {within:?}, saw {seen}");
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Channel for MemoryChannel {
    fn account(&self) -> &ChannelAccount {
        &self.account
    }

    /// Like a long-polling adapter: read from the stored cursor on, push each message
    /// with the offset after it as the new cursor, and only then move on.
    async fn run(&self, ctx: ChannelContext) -> Result<(), String> {
        let stored = ctx
            .intake
            .cursor(&self.account)
            .await
            .map_err(|e| e.to_string())?;
        let mut next: usize = stored.and_then(|c| c.parse().ok()).unwrap_or(0);
        loop {
            let arrived = self.arrived.notified();
            let pending: Vec<Inbound> = self.state().log.iter().skip(next).cloned().collect();
            for inbound in pending {
                if ctx.shutdown.is_cancelled() {
                    return Ok(());
                }
                let cursor = (next + 1).to_string();
                match ctx.intake.ingest(inbound, Some(cursor)).await {
                    Ok(_) => next += 1,
                    // Not acknowledged: it is fetched again on the next round.
                    Err(_) => break,
                }
            }
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(()),
                _ = arrived => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    async fn deliver(&self, outbound: &Outbound) -> DeliveryOutcome {
        self.state().started += 1;
        self.delivered.notify_waiters();
        loop {
            let released = self.released.notified();
            if !self.state().hold {
                break;
            }
            released.await;
        }
        let outcome = {
            let mut state = self.state();
            let outcome = state.script.pop_front().unwrap_or_else(|| {
                state.sent += 1;
                DeliveryOutcome::Sent {
                    external_id: Some(format!("mem-{}", state.sent)),
                }
            });
            state.attempts.push(Attempt {
                outbound: outbound.clone(),
                at: Instant::now(),
                outcome: outcome.clone(),
            });
            outcome
        };
        self.delivered.notify_waiters();
        outcome
    }

    async fn health(&self) -> Health {
        Health::ok("in memory")
    }
}
