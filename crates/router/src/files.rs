//! The files agents attach to replies, as adapters read them: `file:ID` references to
//! the store's files table.

use frontdesk_core::{FileBody, FileError, Files};
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
