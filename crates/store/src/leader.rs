//! Leadership of a named job among the instances that share one database: one poller
//! per channel account (one Telegram `getUpdates`, one IMAP IDLE, one X poller), even
//! when several `frontdesk serve` run on one PostgreSQL.
//!
//! On PostgreSQL the leader holds a session-level advisory lock
//! (`pg_try_advisory_lock(hashtextextended(job, 0))`) on a connection of its own, taken
//! out of the pool once the lock is had. A process that dies closes that connection and PostgreSQL lets the
//! lock go at once, so the next instance that asks takes over; a leader whose
//! connection breaks (the server restarted) finds out at its next check and stops. On
//! SQLite one instance owns the file, so it always leads.

use crate::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, Postgres};
use std::fmt;
use std::time::Duration;

/// Held leadership. Dropping it gives the lead up.
#[async_trait::async_trait]
pub trait Leadership: Send + Sync + fmt::Debug {
    /// Whether this instance still leads (on PostgreSQL: the connection holding the
    /// lock still answers).
    async fn still_held(&mut self) -> bool;
}

/// SQLite: the only instance leads.
#[derive(Debug)]
pub(crate) struct Sole;

#[async_trait::async_trait]
impl Leadership for Sole {
    async fn still_held(&mut self) -> bool {
        true
    }
}

/// PostgreSQL: the connection that holds the advisory lock.
pub(crate) struct AdvisoryLock {
    job: String,
    connection: PgConnection,
}

impl fmt::Debug for AdvisoryLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdvisoryLock")
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

/// How long a check of the lock's connection may take before the lead counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

impl AdvisoryLock {
    /// Takes the lock for `job` on a pooled connection if nobody holds it, and then
    /// keeps that connection out of the pool; when somebody does, the connection goes
    /// back to the pool (a standby asks every few seconds, so it must not open one
    /// each time).
    pub(crate) async fn try_take(
        mut pooled: PoolConnection<Postgres>,
        job: &str,
    ) -> Result<Option<AdvisoryLock>, StoreError> {
        let taken: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(job)
                .fetch_one(&mut *pooled)
                .await?;
        Ok(taken.then(|| AdvisoryLock {
            job: job.to_owned(),
            connection: pooled.detach(),
        }))
    }
}

#[async_trait::async_trait]
impl Leadership for AdvisoryLock {
    async fn still_held(&mut self) -> bool {
        // The lock lives as long as the session: a session that answers still holds it.
        matches!(
            tokio::time::timeout(CHECK_TIMEOUT, self.connection.ping()).await,
            Ok(Ok(()))
        )
    }
}
