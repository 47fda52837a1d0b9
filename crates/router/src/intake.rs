//! The pipeline every channel adapter pushes into.

use crate::engine::ConversationEngine;
use crate::metrics::Metrics;
use frontdesk_core::{ChannelAccount, Inbound, IngestOutcome, Intake, IntakeError};
use frontdesk_store::{Ingested, Store};
use std::sync::Arc;

/// Stores inbound messages exactly once (the store's ingest transaction), counts them,
/// and hands each new one to the conversation engine (bot, handoff, reopen, ratings,
/// verification, the guard's escalation). The message is stored whatever the engine
/// does; an engine failure is logged, and the timers catch up.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Arc<dyn Store>,
    metrics: Metrics,
    engine: Option<Arc<ConversationEngine>>,
}

impl Pipeline {
    /// Storage alone (benchmarks, and tests of the delivery path).
    pub fn new(store: Arc<dyn Store>, metrics: Metrics) -> Self {
        Self {
            store,
            metrics,
            engine: None,
        }
    }

    /// Lets the conversation engine act on each new customer message.
    pub fn with_engine(mut self, engine: Arc<ConversationEngine>) -> Self {
        self.engine = Some(engine);
        self
    }
}

#[async_trait::async_trait]
impl Intake for Pipeline {
    async fn cursor(&self, account: &ChannelAccount) -> Result<Option<String>, IntakeError> {
        self.store.cursor(account).await.map_err(intake_error)
    }

    async fn move_cursor(
        &self,
        account: &ChannelAccount,
        cursor: String,
    ) -> Result<(), IntakeError> {
        self.store
            .put_cursor(account, &cursor)
            .await
            .map_err(intake_error)
    }

    async fn thread_of_messages(
        &self,
        account: &ChannelAccount,
        external_ids: &[String],
    ) -> Result<Option<String>, IntakeError> {
        self.store
            .thread_of_messages(account, external_ids)
            .await
            .map_err(intake_error)
    }

    async fn thread_of_conversation(
        &self,
        account: &ChannelAccount,
        id: frontdesk_core::ConversationId,
    ) -> Result<Option<String>, IntakeError> {
        self.store
            .thread_of_conversation(account, id)
            .await
            .map_err(intake_error)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(account = %inbound.account))]
    async fn ingest(
        &self,
        inbound: Inbound,
        cursor: Option<String>,
    ) -> Result<IngestOutcome, IntakeError> {
        // A question the bot can answer is answered in the transaction that stores it;
        // a deep link is the engine's to follow first.
        let quick = match (&self.engine, inbound.meta["start_payload"].is_null()) {
            (Some(engine), true) => engine.quick_answer(&inbound.text),
            _ => None,
        };
        let ingested = match quick {
            Some(responder) => {
                self.store
                    .ingest_answering(&inbound, cursor.as_deref(), responder)
                    .await
            }
            None => self
                .store
                .ingest(&inbound, cursor.as_deref())
                .await
                .map(|outcome| Ingested {
                    outcome,
                    answered: false,
                }),
        };
        let Ingested { outcome, answered } = ingested.map_err(|e| {
            tracing::error!(error = %e, "ingest failed");
            intake_error(e)
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
                if let (Some(engine), Some(payload)) =
                    (&self.engine, inbound.meta["start_payload"].as_str())
                    && let Err(e) = engine.on_deep_link(conversation_id, payload).await
                {
                    tracing::warn!(%conversation_id, error = %e, "cannot follow a deep link");
                }
                // The store noted the turn with the message (unless the bot's answer
                // took it there); the engine's timers take it if this process dies
                // first or the engine fails now.
                if answered {
                    tracing::debug!(%conversation_id, "answered with the message");
                } else if let (Some(engine), true) = (&self.engine, inbound.wants_turn(findings)) {
                    engine
                        .take_turn(conversation_id, message_id, &inbound.text, findings)
                        .await;
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

/// A store error as an adapter sees it.
fn intake_error(e: frontdesk_store::StoreError) -> IntakeError {
    IntakeError {
        message: e.to_string(),
        disk_full: e.is_disk_full(),
    }
}
