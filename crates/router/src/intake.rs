//! The pipeline every channel adapter pushes into.

use crate::metrics::Metrics;
use frontdesk_core::{ChannelAccount, Inbound, IngestOutcome, Intake, IntakeError};
use frontdesk_store::Store;
use std::sync::Arc;

/// Stores inbound messages exactly once (the store's ingest transaction) and counts
/// them. This is where the conversation engine will route each new message to the bot
/// or to the agents.
#[derive(Debug, Clone)]
pub struct Pipeline {
    store: Arc<dyn Store>,
    metrics: Metrics,
}

impl Pipeline {
    pub fn new(store: Arc<dyn Store>, metrics: Metrics) -> Self {
        Self { store, metrics }
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
                ..
            } => {
                self.metrics.ingested(&inbound.account);
                tracing::debug!(%conversation_id, %message_id, "stored");
            }
            IngestOutcome::Duplicate => {
                self.metrics.duplicate(&inbound.account);
                tracing::debug!("duplicate; not stored again");
            }
        }
        Ok(outcome)
    }
}
