//! What adapters keep in the store through core's traits: the files agents attach to
//! replies (`file:ID` references to the store's files table), and their notes on
//! deliveries in several pieces.

use frontdesk_core::{FileBody, FileError, Files, OutboxId, Progress};
use frontdesk_store::Store;
use std::sync::Arc;

/// Reads `file:ID` attachments from the store.
#[derive(Debug, Clone)]
pub struct StoredFiles(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl Files for StoredFiles {
    async fn read(&self, reference: &str) -> Result<FileBody, FileError> {
        let id = reference
            .strip_prefix("file:")
            .and_then(|id| id.parse::<i64>().ok())
            .ok_or(FileError::NotFound)?;
        match self.0.file(id).await {
            Ok(Some((meta, bytes))) => Ok(FileBody {
                name: meta.name,
                content_type: meta.content_type,
                bytes,
            }),
            Ok(None) => Err(FileError::NotFound),
            Err(e) => Err(FileError::Unavailable(e.to_string())),
        }
    }
}

/// Channels' notes on deliveries, kept in the outbox row they belong to, so they
/// outlive a crash (see [`frontdesk_core::Progress`]).
#[derive(Debug, Clone)]
pub struct StoredProgress(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl Progress for StoredProgress {
    async fn load(&self, outbox: OutboxId) -> Result<Option<serde_json::Value>, String> {
        self.0
            .delivery_progress(outbox)
            .await
            .map_err(|e| e.to_string())
    }

    async fn save(&self, outbox: OutboxId, note: &serde_json::Value) -> Result<(), String> {
        self.0
            .save_delivery_progress(outbox, note)
            .await
            .map_err(|e| e.to_string())
    }
}
