//! [`MemoryIntake`]: the intake a channel pushes into, kept in memory, for tests of a
//! channel adapter on its own (with paused time, where a real database's pool timers
//! would fire as time jumps).

use frontdesk_core::{
    ChannelAccount, ConversationId, Inbound, IngestOutcome, Intake, IntakeError, MessageId,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct State {
    stored: Vec<Inbound>,
    seen: HashSet<(ChannelAccount, String)>,
    threads: HashMap<String, i64>,
    cursors: HashMap<ChannelAccount, String>,
    /// Ingests still to refuse, as a broken store would.
    failing: usize,
}

/// Stores each (account, external id) once, with its cursor in the same step, as the
/// real intake does. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct MemoryIntake {
    state: Arc<Mutex<State>>,
    stored: Arc<Notify>,
}

impl MemoryIntake {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What was stored, in order.
    pub fn stored(&self) -> Vec<Inbound> {
        self.state().stored.clone()
    }

    /// The cursor stored for `account`.
    pub fn cursor_of(&self, account: &ChannelAccount) -> Option<String> {
        self.state().cursors.get(account).cloned()
    }

    /// The next `n` ingests fail, as when the database is down.
    pub fn fail_next(&self, n: usize) {
        self.state().failing = n;
    }

    /// Waits until at least `n` messages are stored (a minute of tokio time at most).
    pub async fn wait_for(&self, n: usize) -> Vec<Inbound> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let notified = self.stored.notified();
            let stored = self.stored();
            if stored.len() >= n {
                return stored;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {n} stored messages (have {})",
                stored.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

#[async_trait::async_trait]
impl Intake for MemoryIntake {
    async fn cursor(&self, account: &ChannelAccount) -> Result<Option<String>, IntakeError> {
        Ok(self.cursor_of(account))
    }

    async fn ingest(
        &self,
        inbound: Inbound,
        cursor: Option<String>,
    ) -> Result<IngestOutcome, IntakeError> {
        let mut state = self.state();
        if state.failing > 0 {
            state.failing -= 1;
            return Err(IntakeError::new("the database is down"));
        }
        if let Some(cursor) = cursor {
            state.cursors.insert(inbound.account.clone(), cursor);
        }
        let key = (inbound.account.clone(), inbound.external_id.clone());
        if !state.seen.insert(key) {
            return Ok(IngestOutcome::Duplicate);
        }
        let next_thread = i64::try_from(state.threads.len()).unwrap_or(i64::MAX) + 1;
        let conversation = *state
            .threads
            .entry(inbound.thread_key.clone())
            .or_insert(next_thread);
        let new_conversation = conversation == next_thread;
        state.stored.push(inbound);
        let message = i64::try_from(state.stored.len()).unwrap_or(i64::MAX);
        drop(state);
        self.stored.notify_waiters();
        Ok(IngestOutcome::Stored {
            conversation_id: ConversationId(conversation),
            message_id: MessageId(message),
            new_conversation,
            findings: 0,
        })
    }

    async fn move_cursor(
        &self,
        account: &ChannelAccount,
        cursor: String,
    ) -> Result<(), IntakeError> {
        self.state().cursors.insert(account.clone(), cursor);
        Ok(())
    }
}
