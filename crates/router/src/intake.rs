//! The pipeline every channel adapter pushes into.

use crate::bot::Bot;
use crate::metrics::Metrics;
use frontdesk_core::{
    ChannelAccount, ConversationId, Inbound, IngestOutcome, Intake, IntakeError, MessageId,
    Priority, Status,
};
use frontdesk_store::{ConversationChange, NewReply, Store};
use std::sync::Arc;

/// Stores inbound messages exactly once (the store's ingest transaction) and counts
/// them. A message that carried a secret (the guard redacted it before storage) makes
/// its conversation urgent, hands it to the security team, and warns the customer.
/// This is also where the conversation engine will route each new message to the bot
/// or to the agents.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Arc<dyn Store>,
    metrics: Metrics,
    bot: Option<Arc<Bot>>,
}

impl Pipeline {
    pub fn new(store: Arc<dyn Store>, metrics: Metrics) -> Self {
        Self {
            store,
            metrics,
            bot: None,
        }
    }

    /// Lets the bot take its turn after each new customer message.
    pub fn with_bot(mut self, bot: Arc<Bot>) -> Self {
        self.bot = Some(bot);
        self
    }

    /// The bot's turn. The message is stored whatever happens here.
    async fn bot_turn(&self, bot: &Bot, conversation_id: ConversationId, text: &str) {
        let conversation = match self.store.conversation(conversation_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(%conversation_id, error = %e, "cannot read the conversation for the bot");
                return;
            }
        };
        match bot.respond(&*self.store, &conversation, text).await {
            Ok(turn) => tracing::debug!(%conversation_id, ?turn, "bot turn"),
            Err(e) => tracing::error!(%conversation_id, error = %e, "the bot's turn failed"),
        }
    }
}

impl Pipeline {
    /// The customer sent a recovery phrase or key (already redacted): urgent handoff to
    /// the security team, and a warning to the customer. The message itself is stored
    /// whatever happens here; a failure is logged, not hidden.
    async fn secret_received(
        &self,
        conversation_id: ConversationId,
        message_id: MessageId,
        original: &str,
    ) {
        tracing::warn!(%conversation_id, %message_id, "a secret was redacted from a customer message");
        let change = ConversationChange {
            status: Some(Status::Open),
            priority: Some(Priority::Urgent),
            team: Some("security".into()),
            bot_misses: None,
            reason: Some("the customer sent a recovery phrase or private key (redacted)".into()),
        };
        if let Err(e) = self
            .store
            .update_conversation(conversation_id, &change)
            .await
        {
            tracing::error!(%conversation_id, error = %e, "cannot escalate the conversation");
        }
        let warning = NewReply {
            // One warning per message, even if this runs again.
            idempotency_key: Some(format!("guard-warning-{message_id}")),
            ..NewReply::from_bot(conversation_id, frontdesk_guard::customer_warning(original))
        };
        if let Err(e) = self.store.reply(warning).await {
            tracing::error!(%conversation_id, error = %e, "cannot queue the safety warning");
        }
    }
}

#[async_trait::async_trait]
impl Intake for Pipeline {
    async fn cursor(&self, account: &ChannelAccount) -> Result<Option<String>, IntakeError> {
        self.store
            .cursor(account)
            .await
            .map_err(|e| IntakeError(e.to_string()))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(account = %inbound.account))]
    async fn ingest(
        &self,
        inbound: Inbound,
        cursor: Option<String>,
    ) -> Result<IngestOutcome, IntakeError> {
        let outcome = self
            .store
            .ingest(&inbound, cursor.as_deref())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "ingest failed");
                IntakeError(e.to_string())
            })?;
        match outcome {
            IngestOutcome::Stored {
                conversation_id,
                message_id,
                findings,
                ..
            } => {
                self.metrics.ingested(&inbound.account);
                tracing::debug!(%conversation_id, %message_id, "stored");
                if findings > 0 {
                    self.secret_received(conversation_id, message_id, &inbound.text)
                        .await;
                } else if let (Some(bot), None) = (&self.bot, &inbound.edit_of) {
                    self.bot_turn(bot, conversation_id, &inbound.text).await;
                }
            }
            IngestOutcome::Duplicate => {
                self.metrics.duplicate(&inbound.account);
                tracing::debug!("duplicate; not stored again");
            }
        }
        Ok(outcome)
    }
}
