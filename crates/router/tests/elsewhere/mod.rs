//! A real store whose queries run on another runtime, and a way to run a test on
//! paused time.

use frontdesk_core::{
    Agent, AgentId, AgentStatus, ChannelAccount, ChannelKind, Contact, ContactId, Conversation,
    ConversationId, Event, EventId, Inbound, IngestOutcome, Message, MessageId, Outbound, OutboxId,
    Timestamp,
};
use frontdesk_store::testing::TestDatabase;
use frontdesk_store::{
    AgentLoad, AgentProfile, Answer, AuditEntry, Backend, ClaimRequest, ContactErasure,
    ConversationChange, ConversationFacts, ConversationQuery, Csat, Ingested, LeaseReport,
    NewAgent, NewReply, Page, PendingTurn, Replied, Responder, SlaTarget, SqlStore, Store,
    StoreError, StoreOptions, Sweep, Verification, VerificationChange,
};
use std::future::Future;
use std::time::Duration;
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
    #[allow(dead_code)] // not every test binary that includes this module uses it
    pub fn sqlite() -> (Self, TestDatabase) {
        Self::sqlite_with(StoreOptions::default)
    }

    /// The same, opened with these options (a manual clock, say).
    #[allow(dead_code)] // not every test binary that includes this module uses it
    pub fn sqlite_with(options: impl FnOnce() -> StoreOptions + Send) -> (Self, TestDatabase) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let db = TestDatabase::sqlite();
        let inner = std::thread::scope(|s| {
            s.spawn(|| {
                rt.block_on(async {
                    db.store_with(options())
                        .await
                        .expect("open and migrate the test database")
                })
            })
            .join()
            .unwrap()
        });
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
    async fn try_lead(
        &self,
        job: &str,
    ) -> Result<Option<Box<dyn frontdesk_store::Leadership>>, StoreError> {
        let job = job.to_owned();
        self.run(move |s| async move { s.try_lead(&job).await })
            .await
    }
    async fn put_cursor(&self, account: &ChannelAccount, cursor: &str) -> Result<(), StoreError> {
        let (account, cursor) = (account.clone(), cursor.to_owned());
        self.run(move |s| async move { s.put_cursor(&account, &cursor).await })
            .await
    }
    async fn ingest_answering(
        &self,
        inbound: &Inbound,
        cursor: Option<&str>,
        responder: std::sync::Arc<dyn Responder>,
    ) -> Result<Ingested, StoreError> {
        let (inbound, cursor) = (inbound.clone(), cursor.map(str::to_owned));
        self.run(|s| async move {
            s.ingest_answering(&inbound, cursor.as_deref(), responder)
                .await
        })
        .await
    }
    async fn answer(&self, id: ConversationId, answer: &Answer) -> Result<(), StoreError> {
        let answer = answer.clone();
        self.run(|s| async move { s.answer(id, &answer).await })
            .await
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
    async fn take_turns(
        &self,
        noted_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingTurn>, StoreError> {
        self.run(|s| async move { s.take_turns(noted_before, now, limit).await })
            .await
    }
    async fn turn_taken(&self, message: MessageId) -> Result<(), StoreError> {
        self.run(|s| async move { s.turn_taken(message).await })
            .await
    }
    async fn delivery_progress(
        &self,
        id: OutboxId,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.run(|s| async move { s.delivery_progress(id).await })
            .await
    }
    async fn save_delivery_progress(
        &self,
        id: OutboxId,
        progress: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let progress = progress.clone();
        self.run(|s| async move { s.save_delivery_progress(id, &progress).await })
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
    async fn thread_of_messages(
        &self,
        account: &ChannelAccount,
        external_ids: &[String],
    ) -> Result<Option<String>, StoreError> {
        let (account, ids) = (account.clone(), external_ids.to_vec());
        self.run(|s| async move { s.thread_of_messages(&account, &ids).await })
            .await
    }
    async fn message_meta(
        &self,
        conversation: ConversationId,
        message: MessageId,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.run(|s| async move { s.message_meta(conversation, message).await })
            .await
    }
    async fn thread_of_conversation(
        &self,
        account: &ChannelAccount,
        id: ConversationId,
    ) -> Result<Option<String>, StoreError> {
        let account = account.clone();
        self.run(|s| async move { s.thread_of_conversation(&account, id).await })
            .await
    }
    async fn create_link_code(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        code: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let code = code.to_owned();
        self.run(|s| async move {
            s.create_link_code(conversation, agent, &code, expires_at)
                .await
        })
        .await
    }
    async fn redeem_link_code(
        &self,
        code: &str,
        now: Timestamp,
    ) -> Result<Option<ConversationId>, StoreError> {
        let code = code.to_owned();
        self.run(|s| async move { s.redeem_link_code(&code, now).await })
            .await
    }
    async fn mark_unreachable(
        &self,
        id: OutboxId,
        worker: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<LeaseReport, StoreError> {
        let (worker, reason) = (worker.to_owned(), reason.to_owned());
        self.run(|s| async move { s.mark_unreachable(id, &worker, &reason, now).await })
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
    async fn contact_text_before(
        &self,
        conversation_id: ConversationId,
        before: MessageId,
    ) -> Result<Option<String>, StoreError> {
        self.run(|s| async move { s.contact_text_before(conversation_id, before).await })
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

    async fn sweep(&self, sweep: Sweep, limit: u32) -> Result<Vec<Conversation>, StoreError> {
        self.run(move |s| async move { s.sweep(sweep, limit).await })
            .await
    }
    async fn mark_breach(&self, id: ConversationId, target: SlaTarget) -> Result<bool, StoreError> {
        self.run(move |s| async move { s.mark_breach(id, target).await })
            .await
    }
    async fn agents(&self) -> Result<Vec<AgentLoad>, StoreError> {
        self.run(|s| async move { s.agents().await }).await
    }
    async fn set_agent_profile(
        &self,
        id: AgentId,
        profile: &AgentProfile,
    ) -> Result<Agent, StoreError> {
        let profile = profile.clone();
        self.run(|s| async move { s.set_agent_profile(id, &profile).await })
            .await
    }
    async fn set_agent_status(
        &self,
        id: AgentId,
        status: AgentStatus,
    ) -> Result<Agent, StoreError> {
        self.run(move |s| async move { s.set_agent_status(id, status).await })
            .await
    }
    async fn assign(
        &self,
        id: ConversationId,
        to: Option<AgentId>,
        auto: bool,
        reason: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let reason = reason.to_owned();
        self.run(move |s| async move { s.assign(id, to, auto, &reason).await })
            .await
    }
    async fn csat_comment(
        &self,
        id: ConversationId,
        comment: &str,
        message: MessageId,
    ) -> Result<bool, StoreError> {
        let comment = comment.to_owned();
        self.run(move |s| async move { s.csat_comment(id, &comment, message).await })
            .await
    }
    async fn count_code_try(&self, id: i64, max: u32) -> Result<Option<u32>, StoreError> {
        self.run(move |s| async move { s.count_code_try(id, max).await })
            .await
    }
    async fn verifications_since(
        &self,
        id: ConversationId,
        since: Timestamp,
    ) -> Result<u32, StoreError> {
        self.run(move |s| async move { s.verifications_since(id, since).await })
            .await
    }
    async fn csat_asked(
        &self,
        id: ConversationId,
        agent: Option<AgentId>,
        team: Option<&str>,
    ) -> Result<bool, StoreError> {
        let team = team.map(str::to_owned);
        self.run(move |s| async move { s.csat_asked(id, agent, team.as_deref()).await })
            .await
    }
    async fn csat(&self, id: ConversationId) -> Result<Option<Csat>, StoreError> {
        self.run(move |s| async move { s.csat(id).await }).await
    }
    async fn csat_answer(
        &self,
        id: ConversationId,
        rating: u8,
        comment: Option<&str>,
        message: MessageId,
    ) -> Result<bool, StoreError> {
        let comment = comment.map(str::to_owned);
        self.run(
            move |s| async move { s.csat_answer(id, rating, comment.as_deref(), message).await },
        )
        .await
    }
    async fn start_verification(
        &self,
        id: ConversationId,
        agent: Option<AgentId>,
        change: &VerificationChange,
    ) -> Result<Verification, StoreError> {
        let change = change.clone();
        self.run(move |s| async move { s.start_verification(id, agent, &change).await })
            .await
    }
    async fn active_verification(
        &self,
        id: ConversationId,
    ) -> Result<Option<Verification>, StoreError> {
        self.run(move |s| async move { s.active_verification(id).await })
            .await
    }
    async fn update_verification(
        &self,
        id: i64,
        change: &VerificationChange,
    ) -> Result<Verification, StoreError> {
        let change = change.clone();
        self.run(move |s| async move { s.update_verification(id, &change).await })
            .await
    }
    async fn link_verified_email(
        &self,
        contact: ContactId,
        email: &str,
    ) -> Result<ContactId, StoreError> {
        let email = email.to_owned();
        self.run(move |s| async move { s.link_verified_email(contact, &email).await })
            .await
    }
    async fn thread_messages(
        &self,
        account: &ChannelAccount,
        thread_key: &str,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let (account, thread_key) = (account.clone(), thread_key.to_owned());
        self.run(
            move |s| async move { s.thread_messages(&account, &thread_key, after, limit).await },
        )
        .await
    }
    async fn create_api_token(
        &self,
        agent: AgentId,
        name: &str,
        token_hash: &str,
        scopes: &[String],
    ) -> Result<i64, StoreError> {
        let (name, hash, scopes) = (name.to_owned(), token_hash.to_owned(), scopes.to_vec());
        self.run(move |s| async move { s.create_api_token(agent, &name, &hash, &scopes).await })
            .await
    }
    async fn agent_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(Agent, Vec<String>)>, StoreError> {
        let hash = token_hash.to_owned();
        self.run(move |s| async move { s.agent_by_token(&hash).await })
            .await
    }
    async fn create_session(
        &self,
        agent: AgentId,
        token_hash: &str,
        csrf: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (hash, csrf) = (token_hash.to_owned(), csrf.to_owned());
        self.run(move |s| async move { s.create_session(agent, &hash, &csrf, expires_at).await })
            .await
    }
    async fn session(&self, token_hash: &str) -> Result<Option<(Agent, String)>, StoreError> {
        let hash = token_hash.to_owned();
        self.run(move |s| async move { s.session(&hash).await })
            .await
    }
    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let hash = token_hash.to_owned();
        self.run(move |s| async move { s.end_session(&hash).await })
            .await
    }
    async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        let (actor, action, subject) = (actor.to_owned(), action.to_owned(), subject.to_owned());
        self.run(move |s| async move { s.record_audit(&actor, &action, &subject, detail).await })
            .await
    }
    async fn canned_responses(&self) -> Result<Vec<frontdesk_store::Canned>, StoreError> {
        self.run(move |s| async move { s.canned_responses().await })
            .await
    }
    async fn save_canned(
        &self,
        shortcut: &str,
        title: &str,
        text: &str,
        by: AgentId,
    ) -> Result<frontdesk_store::Canned, StoreError> {
        let (shortcut, title, text) = (shortcut.to_owned(), title.to_owned(), text.to_owned());
        self.run(move |s| async move { s.save_canned(&shortcut, &title, &text, by).await })
            .await
    }
    async fn delete_canned(&self, id: i64) -> Result<(), StoreError> {
        self.run(move |s| async move { s.delete_canned(id).await })
            .await
    }
    async fn mark_mentions_seen(
        &self,
        agent: AgentId,
        conversation: ConversationId,
    ) -> Result<u64, StoreError> {
        self.run(move |s| async move { s.mark_mentions_seen(agent, conversation).await })
            .await
    }
    async fn login_failed(
        &self,
        email: &str,
        max: u32,
        lockout: Duration,
    ) -> Result<Option<Timestamp>, StoreError> {
        let email = email.to_owned();
        self.run(move |s| async move { s.login_failed(&email, max, lockout).await })
            .await
    }
    async fn login_locked_until(&self, email: &str) -> Result<Option<Timestamp>, StoreError> {
        let email = email.to_owned();
        self.run(move |s| async move { s.login_locked_until(&email).await })
            .await
    }
    async fn login_succeeded(&self, email: &str) -> Result<(), StoreError> {
        let email = email.to_owned();
        self.run(move |s| async move { s.login_succeeded(&email).await })
            .await
    }
    async fn save_file(
        &self,
        conversation: ConversationId,
        name: &str,
        content_type: &str,
        sha256: &str,
        data: Vec<u8>,
    ) -> Result<frontdesk_store::StoredFile, StoreError> {
        let (name, content_type, sha256) =
            (name.to_owned(), content_type.to_owned(), sha256.to_owned());
        self.run(move |s| async move {
            s.save_file(conversation, &name, &content_type, &sha256, data)
                .await
        })
        .await
    }
    async fn file(
        &self,
        id: i64,
    ) -> Result<Option<(frontdesk_store::StoredFile, Vec<u8>)>, StoreError> {
        self.run(move |s| async move { s.file(id).await }).await
    }
    async fn set_agent_locale(&self, agent: AgentId, locale: &str) -> Result<(), StoreError> {
        let locale = locale.to_owned();
        self.run(move |s| async move { s.set_agent_locale(agent, &locale).await })
            .await
    }
    async fn api_tokens(
        &self,
        agent: AgentId,
    ) -> Result<Vec<frontdesk_store::ApiToken>, StoreError> {
        self.run(move |s| async move { s.api_tokens(agent).await })
            .await
    }
    async fn revoke_api_token(&self, agent: AgentId, id: i64) -> Result<(), StoreError> {
        self.run(move |s| async move { s.revoke_api_token(agent, id).await })
            .await
    }
    async fn channel_activity(&self) -> Result<Vec<frontdesk_store::ChannelActivity>, StoreError> {
        self.run(move |s| async move { s.channel_activity().await })
            .await
    }
    async fn claim_webhook(
        &self,
        name: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<frontdesk_store::WebhookCursor>, StoreError> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.run(move |s| async move { s.claim_webhook(&name, &owner, lease).await })
            .await
    }
    async fn advance_webhook(
        &self,
        name: &str,
        owner: &str,
        to: EventId,
        delivered: bool,
    ) -> Result<bool, StoreError> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.run(move |s| async move { s.advance_webhook(&name, &owner, to, delivered).await })
            .await
    }
    async fn webhook_failed(
        &self,
        name: &str,
        owner: &str,
        error: &str,
        retry_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (name, owner, error) = (name.to_owned(), owner.to_owned(), error.to_owned());
        self.run(move |s| async move { s.webhook_failed(&name, &owner, &error, retry_at).await })
            .await
    }
    async fn webhooks(&self) -> Result<Vec<frontdesk_store::WebhookState>, StoreError> {
        self.run(move |s| async move { s.webhooks().await }).await
    }
    async fn leave_email(
        &self,
        account: &ChannelAccount,
        thread_key: &str,
        email: &str,
    ) -> Result<frontdesk_store::EmailLeft, StoreError> {
        let (account, thread_key, email) =
            (account.clone(), thread_key.to_owned(), email.to_owned());
        self.run(move |s| async move { s.leave_email(&account, &thread_key, &email).await })
            .await
    }
    async fn note_intent(&self, id: ConversationId, intent: &str) -> Result<(), StoreError> {
        let intent = intent.to_owned();
        self.run(move |s| async move { s.note_intent(id, &intent).await })
            .await
    }
    async fn visitor_emails(&self, contact: ContactId) -> Result<Vec<String>, StoreError> {
        self.run(move |s| async move { s.visitor_emails(contact).await })
            .await
    }
    async fn team_hours(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.run(move |s| async move { s.team_hours().await }).await
    }
    async fn set_team_hours(&self, team: &str, config: &str, by: &str) -> Result<(), StoreError> {
        let (team, config, by) = (team.to_owned(), config.to_owned(), by.to_owned());
        self.run(move |s| async move { s.set_team_hours(&team, &config, &by).await })
            .await
    }
    async fn setting_or_init(&self, key: &str, init: &str) -> Result<String, StoreError> {
        let (key, init) = (key.to_owned(), init.to_owned());
        self.run(move |s| async move { s.setting_or_init(&key, &init).await })
            .await
    }
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.run(move |s| async move { s.setting(&key).await })
            .await
    }
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.run(move |s| async move { s.put_setting(&key, &value).await })
            .await
    }
    async fn merge_contacts(
        &self,
        a: ContactId,
        b: ContactId,
        actor: &str,
    ) -> Result<ContactId, StoreError> {
        let actor = actor.to_owned();
        self.run(move |s| async move { s.merge_contacts(a, b, &actor).await })
            .await
    }
    async fn conversation_facts(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ConversationFacts>, StoreError> {
        self.run(move |s| async move { s.conversation_facts(since, until).await })
            .await
    }
}

/// Runs `test` on a current-thread runtime with paused time, in its own thread, and
/// fails if it has not finished within `limit` of real time.
pub fn on_paused_time<F, Fut>(limit: Duration, test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(test());
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the test panicked (see above)")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the test did not finish within {limit:?}")
        }
    }
}
