//! The delivery worker: one per channel account.
//!
//! It claims due outbox rows with a lease, sends each through the channel with at most
//! `concurrency` sends in flight, and records the outcome:
//!
//! | channel says         | the worker records                                        |
//! |----------------------|-----------------------------------------------------------|
//! | `Sent`               | sent, with the channel's id for the message               |
//! | `RetryAfter(d)`      | due again no sooner than `d` from now (rate limits)       |
//! | `Transient(e)`       | due again after exponential backoff with jitter; failed   |
//! |                      | for good after `max_attempts`                             |
//! | `Permanent(reason)`  | failed for good; the reason is shown to the agents        |
//! | `Unreachable(reason)`| failed for good, and the contact marked unreachable on    |
//! |                      | that channel until they write again                      |
//!
//! A worker that dies mid-send leaves its rows leased; when the lease runs out, any
//! worker (on any instance) claims them again. On shutdown it stops claiming and
//! finishes the sends in flight.

use crate::metrics::Metrics;
use frontdesk_core::{Channel, Clock, DeliveryOutcome, Outbound};
use frontdesk_store::{ClaimRequest, LeaseReport, Store};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How a delivery worker paces itself.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Sends in flight at once for this channel account.
    pub concurrency: usize,
    /// How long a claimed row is ours. Must exceed `send_timeout`.
    pub lease: Duration,
    /// A send that takes longer counts as a transient failure.
    pub send_timeout: Duration,
    /// Transient failures before a row is failed for good.
    pub max_attempts: u32,
    /// First retry delay after a transient failure; doubles each attempt.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
    /// How often the outbox is checked even without a wake-up signal.
    pub poll_interval: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            // A send waiting for its chat's turn (Telegram: one a second per chat)
            // holds its slot; with 16, a few busy chats do not hold up the rest.
            concurrency: 16,
            lease: Duration::from_secs(120),
            send_timeout: Duration::from_secs(60),
            max_attempts: 10,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(15 * 60),
            poll_interval: Duration::from_secs(5),
        }
    }
}

impl DeliveryConfig {
    /// The delay before retry `attempt + 1` after a transient failure: exponential,
    /// capped, and spread over its upper half so that many rows failing together do not
    /// retry together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
        let capped = exp.min(self.backoff_max);
        capped.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// Delivers one channel account's outbox.
#[derive(Debug)]
pub struct DeliveryWorker {
    store: Arc<dyn Store>,
    channel: Arc<dyn Channel>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    config: DeliveryConfig,
    /// Unique per worker and process: only the lease holder may record an outcome.
    name: String,
}

impl DeliveryWorker {
    pub fn new(
        store: Arc<dyn Store>,
        channel: Arc<dyn Channel>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        config: DeliveryConfig,
    ) -> Self {
        let name = format!(
            "{}/{}/{:08x}",
            channel.account(),
            std::process::id(),
            rand::rng().random::<u32>()
        );
        Self {
            store,
            channel,
            clock,
            metrics,
            config,
            name,
        }
    }

    /// Runs until `shutdown`, then waits for the sends in flight.
    #[tracing::instrument(skip_all, fields(account = %self.channel.account()))]
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.config.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        let mut signal = this.store.outbox_signal();
        let mut store_errors = 0u32;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            signal.borrow_and_update();
            let free = slots.available_permits();
            let mut wait = this.config.poll_interval;
            if free > 0 {
                match this.claim(free).await {
                    Ok(rows) => {
                        store_errors = 0;
                        let full = rows.len() == free;
                        for row in rows {
                            let Ok(slot) = slots.clone().acquire_owned().await else {
                                break;
                            };
                            let worker = this.clone();
                            in_flight.spawn(async move {
                                worker.deliver(row).await;
                                drop(slot);
                            });
                        }
                        if full {
                            // There may be more due right now; claim again once a slot frees.
                            wait = Duration::ZERO;
                        } else {
                            wait = this.until_next_due().await.unwrap_or(wait);
                        }
                    }
                    Err(e) => {
                        store_errors += 1;
                        wait = this.config.backoff(store_errors);
                        tracing::warn!(error = %e, retry_in = ?wait, "cannot claim outbox rows");
                    }
                }
            }
            let wait = wait.min(this.config.poll_interval);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = signal.changed() => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = tokio::time::sleep(wait), if !wait.is_zero() || in_flight.is_empty() => {}
            }
        }
        let pending = in_flight.len();
        if pending > 0 {
            tracing::info!(pending, "finishing deliveries in flight before stopping");
        }
        while in_flight.join_next().await.is_some() {}
    }

    async fn claim(&self, free: usize) -> Result<Vec<Outbound>, frontdesk_store::StoreError> {
        self.store
            .claim_outbox(&ClaimRequest {
                account: self.channel.account().clone(),
                worker: self.name.clone(),
                now: self.clock.now(),
                lease: self.config.lease,
                limit: u32::try_from(free).unwrap_or(u32::MAX),
            })
            .await
    }

    async fn until_next_due(&self) -> Option<Duration> {
        match self.store.next_due(self.channel.account()).await {
            Ok(Some(due)) => Some(due.since(self.clock.now())),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the next due time");
                None
            }
        }
    }

    #[tracing::instrument(skip_all, fields(outbox_id = %out.outbox_id, attempt = out.attempt))]
    async fn deliver(&self, out: Outbound) {
        let started = tokio::time::Instant::now();
        let outcome = match tokio::time::timeout(
            self.config.send_timeout,
            self.channel.deliver(&out),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => DeliveryOutcome::Transient(format!(
                "no answer from the channel within {:?}",
                self.config.send_timeout
            )),
        };
        let took = started.elapsed();
        let now = self.clock.now();
        let account = self.channel.account();
        let (label, report) = match &outcome {
            DeliveryOutcome::Sent { external_id } => (
                "sent",
                self.store
                    .mark_sent(out.outbox_id, &self.name, external_id.as_deref(), now)
                    .await,
            ),
            DeliveryOutcome::RetryAfter(wait) => {
                tracing::info!(?wait, "the channel asked us to wait");
                let due = now.plus(*wait);
                let note = format!("rate limited; retry after {} s", wait.as_secs_f64().ceil());
                (
                    "retry",
                    self.store
                        .mark_retry(out.outbox_id, &self.name, due, &note, now)
                        .await,
                )
            }
            DeliveryOutcome::Transient(error) if out.attempt >= self.config.max_attempts => {
                tracing::warn!(error = %error, "giving up after {} attempts", out.attempt);
                let reason = format!("gave up after {} attempts: {error}", out.attempt);
                (
                    "failed",
                    self.store
                        .mark_failed(out.outbox_id, &self.name, &reason, now)
                        .await,
                )
            }
            DeliveryOutcome::Transient(error) => {
                let wait = self.config.backoff(out.attempt);
                tracing::info!(error = %error, ?wait, "transient failure; retrying later");
                (
                    "retry",
                    self.store
                        .mark_retry(out.outbox_id, &self.name, now.plus(wait), error, now)
                        .await,
                )
            }
            DeliveryOutcome::Unreachable(reason) => {
                // A customer who blocked the bot: their choice, not our fault.
                tracing::info!(reason = %reason, "the recipient cannot be reached on this channel");
                (
                    "unreachable",
                    self.store
                        .mark_unreachable(out.outbox_id, &self.name, reason, now)
                        .await,
                )
            }
            DeliveryOutcome::Permanent(reason) => {
                // Expected in normal operation (a customer blocked the bot): not an error.
                tracing::info!(reason = %reason, "delivery failed for good");
                (
                    "failed",
                    self.store
                        .mark_failed(out.outbox_id, &self.name, reason, now)
                        .await,
                )
            }
        };
        self.metrics.delivery(account, label, took);
        match report {
            Ok(LeaseReport::Recorded) => {}
            Ok(LeaseReport::LeaseLost) => tracing::warn!(
                "the lease ran out before the outcome was recorded; another worker owns the row"
            ),
            // The row stays leased and is claimed again when the lease ends: a send may
            // repeat, but nothing is lost.
            Err(e) => tracing::error!(error = %e, "cannot record the delivery outcome"),
        }
    }
}
