//! [`Elected`]: a channel that receives only on the instance that leads it.
//!
//! Several `frontdesk serve` on one PostgreSQL all deliver (the outbox is shared with
//! `SKIP LOCKED`) and all take webhook calls, but only one of them may poll a provider:
//! two Telegram pollers end each other's `getUpdates` with 409, and two IMAP or X
//! pollers would fetch everything twice. Each instance asks the store for the lead of
//! `poller:ACCOUNT` ([`Store::try_lead`]); the one that gets it runs the channel's
//! receiving side, checks every few seconds that it still leads and stops receiving if
//! not; the others stand by and ask again, so a dead leader is replaced within seconds.
//! On SQLite there is one instance and it always leads.

use frontdesk_core::{
    Channel, ChannelAccount, ChannelContext, DeliveryOutcome, FileBody, FileError, Health,
    Outbound, pause,
};
use frontdesk_store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// How often a standby instance asks for the lead, and the leader checks it still has
/// it: the longest a dead leader's channel goes unread.
pub const ELECTION_EVERY: Duration = Duration::from_secs(2);

/// Where this instance stands for one channel.
const STARTING: u8 = 0;
const STANDBY: u8 = 1;
const LEADING: u8 = 2;

/// Wraps a channel so that only the elected instance receives for it.
#[derive(Debug)]
pub struct Elected {
    inner: Arc<dyn Channel>,
    store: Arc<dyn Store>,
    /// [`STARTING`] until the first election, then [`STANDBY`] or [`LEADING`].
    role: AtomicU8,
    every: Duration,
}

impl Elected {
    pub fn new(inner: Arc<dyn Channel>, store: Arc<dyn Store>) -> Self {
        Self {
            inner,
            store,
            role: AtomicU8::new(STARTING),
            every: ELECTION_EVERY,
        }
    }

    /// The job whose lead this channel's receiving side needs.
    pub fn job(account: &ChannelAccount) -> String {
        format!("poller:{account}")
    }

    /// Whether this instance receives for the channel now.
    pub fn leading(&self) -> bool {
        self.role.load(Ordering::SeqCst) == LEADING
    }

    /// Runs the channel's receiving side while the lead lasts. `Some` with the
    /// channel's own result if it ended by itself, `None` if the lead was lost.
    async fn lead(
        &self,
        mut lead: Box<dyn frontdesk_store::Leadership>,
        ctx: &ChannelContext,
    ) -> Option<Result<(), String>> {
        let account = self.inner.account();
        tracing::info!(%account, "this instance receives for the channel");
        self.role.store(LEADING, Ordering::SeqCst);
        let stop = ctx.shutdown.child_token();
        let receiving = self.inner.run(ChannelContext {
            intake: ctx.intake.clone(),
            shutdown: stop.clone(),
        });
        tokio::pin!(receiving);
        let ended = loop {
            tokio::select! {
                result = &mut receiving => break Some(result),
                _ = tokio::time::sleep(self.every) => {
                    if !lead.still_held().await {
                        tracing::warn!(%account, "lost the lead of the channel; another instance takes over");
                        stop.cancel();
                        let _ = receiving.await;
                        break None;
                    }
                }
            }
        };
        self.role.store(STANDBY, Ordering::SeqCst);
        ended
    }
}

#[async_trait::async_trait]
impl Channel for Elected {
    fn account(&self) -> &ChannelAccount {
        self.inner.account()
    }

    async fn run(&self, ctx: ChannelContext) -> Result<(), String> {
        let job = Self::job(self.inner.account());
        let mut standing_by = false;
        loop {
            match self.store.try_lead(&job).await {
                Ok(Some(lead)) => {
                    if let Some(ended) = self.lead(lead, &ctx).await {
                        return ended;
                    }
                    standing_by = false;
                }
                Ok(None) => {
                    self.role.store(STANDBY, Ordering::SeqCst);
                    if !standing_by {
                        tracing::info!(account = %self.inner.account(), "another instance receives for the channel; standing by");
                        standing_by = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(account = %self.inner.account(), error = %e, "cannot ask the database who receives for the channel");
                }
            }
            if !pause(&ctx.shutdown, self.every).await {
                return Ok(());
            }
        }
    }

    async fn deliver(&self, outbound: &Outbound) -> DeliveryOutcome {
        self.inner.deliver(outbound).await
    }

    async fn health(&self) -> Health {
        match self.role.load(Ordering::SeqCst) {
            LEADING => self.inner.health().await,
            STANDBY => Health::ok("standby: another instance receives; this one delivers"),
            // Not ready before it knows: a message that came now could be taken for
            // one from before the channel started.
            _ => Health::failing("starting: asking the database who receives"),
        }
    }

    fn invite_link(&self, payload: &str) -> Option<String> {
        self.inner.invite_link(payload)
    }

    async fn fetch_file(&self, reference: &str) -> Result<FileBody, FileError> {
        self.inner.fetch_file(reference).await
    }
}
