//! A real store whose queries run on another runtime.

use frontdesk_core::{
    Agent, ChannelAccount, ChannelKind, Contact, ContactId, Conversation, ConversationId, Event,
    EventId, Inbound, IngestOutcome, Message, MessageId, Outbound, OutboxId, Timestamp,
};
use frontdesk_store::testing::TestDatabase;
use frontdesk_store::{
    AuditEntry, Backend, ClaimRequest, ContactErasure, ConversationChange, ConversationQuery,
    LeaseReport, NewAgent, NewReply, Page, Replied, SqlStore, Store, StoreError,
};
use std::future::Future;
use tokio::sync::{broadcast, watch};

/// Forwards every call to a [`SqlStore`] living on an ordinary multi-thread runtime,
/// so the caller's runtime can run on paused time without sqlx's timers firing early.
#[derive(Debug)]
pub struct ElsewhereStore {
    inner: SqlStore,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for ElsewhereStore {
    fn drop(&mut self) {
        // A runtime dropped inside another runtime's task would block; let it go instead.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl ElsewhereStore {
    /// A migrated SQLite store on a fresh temporary file, and its database guard.
    pub fn sqlite() -> (Self, TestDatabase) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let db = TestDatabase::sqlite();
        let inner = std::thread::scope(|s| s.spawn(|| rt.block_on(db.store())).join().unwrap());
        (
            Self {
                inner,
                rt: Some(rt),
            },
            db,
        )
    }

    async fn run<T, F>(&self, call: impl FnOnce(SqlStore) -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let rt = self
            .rt
            .as_ref()
            .expect("the runtime lives as long as the store");
        rt.spawn(call(self.inner.clone()))
            .await
            .expect("store call panicked")
    }
}

#[async_trait::async_trait]
impl Store for ElsewhereStore {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        self.run(|s| async move { s.migrate().await }).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|s| async move { s.ping().await }).await
    }
    async fn ingest(
        &self,
        inbound: &Inbound,
        cursor: Option<&str>,
    ) -> Result<IngestOutcome, StoreError> {
        let (inbound, cursor) = (inbound.clone(), cursor.map(str::to_owned));
        self.run(|s| async move { s.ingest(&inbound, cursor.as_deref()).await })
            .await
    }
    async fn cursor(&self, account: &ChannelAccount) -> Result<Option<String>, StoreError> {
        let account = account.clone();
        self.run(|s| async move { s.cursor(&account).await }).await
    }
    async fn reply(&self, reply: NewReply) -> Result<Replied, StoreError> {
        self.run(|s| async move { s.reply(reply).await }).await
    }
    async fn update_conversation(
        &self,
        id: ConversationId,
        change: &ConversationChange,
    ) -> Result<Conversation, StoreError> {
        let change = change.clone();
        self.run(|s| async move { s.update_conversation(id, &change).await })
            .await
    }
    async fn claim_outbox(&self, req: &ClaimRequest) -> Result<Vec<Outbound>, StoreError> {
        let req = req.clone();
        self.run(|s| async move { s.claim_outbox(&req).await })
            .await
    }
    async fn mark_sent(
        &self,
        id: OutboxId,
        worker: &str,
        external_id: Option<&str>,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError> {
        let (worker, external_id) = (worker.to_owned(), external_id.map(str::to_owned));
        self.run(|s| async move { s.mark_sent(id, &worker, external_id.as_deref(), now).await })
            .await
    }
    async fn mark_retry(
        &self,
        id: OutboxId,
        worker: &str,
        due_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError> {
        let (worker, error) = (worker.to_owned(), error.to_owned());
        self.run(|s| async move { s.mark_retry(id, &worker, due_at, &error, now).await })
            .await
    }
    async fn mark_failed(
        &self,
        id: OutboxId,
        worker: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError> {
        let (worker, reason) = (worker.to_owned(), reason.to_owned());
        self.run(|s| async move { s.mark_failed(id, &worker, &reason, now).await })
            .await
    }
    async fn next_due(&self, account: &ChannelAccount) -> Result<Option<Timestamp>, StoreError> {
        let account = account.clone();
        self.run(|s| async move { s.next_due(&account).await })
            .await
    }
    async fn outbox_depth(&self) -> Result<i64, StoreError> {
        self.run(|s| async move { s.outbox_depth().await }).await
    }
    fn outbox_signal(&self) -> watch::Receiver<u64> {
        self.inner.outbox_signal()
    }
    async fn list_conversations(
        &self,
        query: &ConversationQuery,
    ) -> Result<Page<Conversation>, StoreError> {
        let query = query.clone();
        self.run(|s| async move { s.list_conversations(&query).await })
            .await
    }
    async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, StoreError> {
        self.run(|s| async move { s.conversation(id).await }).await
    }
    async fn messages(
        &self,
        conversation_id: ConversationId,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.run(|s| async move { s.messages(conversation_id, after, limit).await })
            .await
    }
    async fn contact(&self, id: ContactId) -> Result<Option<Contact>, StoreError> {
        self.run(|s| async move { s.contact(id).await }).await
    }
    async fn add_agent(&self, agent: NewAgent) -> Result<Agent, StoreError> {
        self.run(|s| async move { s.add_agent(agent).await }).await
    }
    async fn agent_by_email(&self, email: &str) -> Result<Option<(Agent, String)>, StoreError> {
        let email = email.to_owned();
        self.run(|s| async move { s.agent_by_email(&email).await })
            .await
    }
    async fn events_after(&self, after: EventId, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.run(|s| async move { s.events_after(after, limit).await })
            .await
    }
    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.subscribe()
    }
    async fn apply_retention(
        &self,
        channel: Option<ChannelKind>,
        before: Timestamp,
        anonymize: bool,
        actor: &str,
    ) -> Result<u64, StoreError> {
        let actor = actor.to_owned();
        self.run(
            move |s| async move { s.apply_retention(channel, before, anonymize, &actor).await },
        )
        .await
    }
    async fn export_contact(
        &self,
        id: ContactId,
        actor: &str,
    ) -> Result<serde_json::Value, StoreError> {
        let actor = actor.to_owned();
        self.run(move |s| async move { s.export_contact(id, &actor).await })
            .await
    }
    async fn delete_contact(
        &self,
        id: ContactId,
        actor: &str,
    ) -> Result<ContactErasure, StoreError> {
        let actor = actor.to_owned();
        self.run(move |s| async move { s.delete_contact(id, &actor).await })
            .await
    }
    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.run(move |s| async move { s.audit_log(limit).await })
            .await
    }
}
