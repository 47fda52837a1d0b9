//! Group commit for SQLite's one writer.
//!
//! SQLite runs one write transaction at a time on one connection, and sqlx runs that
//! connection on a thread of its own: each statement is a round trip between threads,
//! and a COMMIT writes every page the transaction touched. Under load the writer is
//! what limits, so a write holds it for as few round trips as possible:
//!
//! - Writes share the writer's open transaction, one at a time in arrival order (a
//!   fair lock), each inside its own SAVEPOINT. The savepoint (and, for the first write
//!   of a transaction, its BEGIN) rides in front of the write's first statement instead
//!   of costing a round trip of its own.
//! - Done, a write hands the writer on and waits. The committer task commits whatever
//!   was written since its last commit and tells each waiting write how it went; the
//!   writes that queued during one commit go in the next together. A caller hears
//!   "stored" only after the COMMIT that holds its write, so nothing is acknowledged
//!   that a crash could lose. A write alone commits at once, as before.
//! - A write that fails or is dropped is rolled back to its savepoint, undoing only
//!   itself. Savepoints are not released: each write's nests in the one before, and
//!   rolling back to the innermost of that name undoes exactly the last write.
//! - If SQLite rolled the whole transaction back (a full disk, an I/O error), or a write
//!   was dropped while its savepoint was on its way (so whether it exists is not
//!   known), the transaction is rolled back and every write waiting on it is told it
//!   failed ([`StoreError::RolledBack`]: none of it was kept, trying again is safe).
//! - Rollbacks run on a task of their own (or in the committer), so a caller that stops
//!   waiting cannot leave one half done.
//!
//! - The busiest writes (a message with the bot's answer, a reply) run whole on the
//!   writer's own thread ([`GroupWriter::run`]). Every statement hands the task that
//!   holds the writer back and forth with the connection's thread; on the app's
//!   runtime each hand-back waits in line behind HTTP work while every other write
//!   waits for the writer (under `frontdesk bench e2e` that tripled the hold).
//!
//! PostgreSQL needs none of this: it commits concurrent transactions in parallel.

use crate::StoreError;
use crate::db::Query;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Sqlite, SqlitePool};
use std::sync::{Arc, Weak};
use tokio::runtime::Handle;
use tokio::sync::{Mutex, Notify, OwnedMutexGuard, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Why the writes waiting on a transaction were not kept.
#[derive(Debug, Clone)]
enum Failure {
    /// The COMMIT (or the rollback of a failed write) failed with this.
    Database(Arc<sqlx::Error>),
    /// A write failed or was dropped in a way that took the transaction down.
    Undone,
}

/// How a transaction ended for the writes waiting on it.
type Outcome = Result<(), Failure>;

/// SQLite's writer connection, shared by writes that commit together.
pub(crate) struct GroupWriter {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    committer: JoinHandle<()>,
    thread: WriterThread,
}

/// A thread with a runtime of its own for the committer and the writes given to
/// [`GroupWriter::run`]; it ends when this is dropped.
struct WriterThread {
    runtime: Handle,
    _stop: oneshot::Sender<()>,
}

impl WriterThread {
    async fn start() -> Result<Self, StoreError> {
        let (started, runtime) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("frontdesk-writer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                let _ = started.send(Ok(runtime.handle().clone()));
                // Until the sender is dropped; the runtime, and what still runs on it,
                // goes with this thread.
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| StoreError::Invalid(format!("cannot start the writer's thread: {e}")))?;
        let runtime = runtime
            .await
            .map_err(|_| StoreError::Internal("the writer's thread stopped at its start"))?
            .map_err(|e| StoreError::Invalid(format!("cannot start the writer's runtime: {e}")))?;
        Ok(Self {
            runtime,
            _stop: stop,
        })
    }
}

struct State {
    pool: SqlitePool,
    /// The writer's connection while a transaction is open (or about to be); between
    /// transactions it goes back to the pool, for migrations and the benchmark.
    conn: Option<PoolConnection<Sqlite>>,
    /// A transaction is open on `conn`.
    open: bool,
    /// What an ended write left to undo before anything else runs.
    undo: Undo,
    /// Writes done in the open transaction, waiting for its commit.
    waiting: Vec<oneshot::Sender<Outcome>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    Nothing,
    /// Roll back to the innermost savepoint.
    Savepoint,
    /// Roll back the whole transaction.
    Transaction,
}

/// Where a write's savepoint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Savepoint {
    /// Not sent: the write has changed nothing.
    Unsent,
    /// Sent with a statement that has not come back, or failed: it may or may not exist.
    Unknown,
    Made,
}

impl GroupWriter {
    /// Starts the writer's thread, and the committer on it.
    pub(crate) async fn new(pool: SqlitePool) -> Result<Self, StoreError> {
        let state = Arc::new(Mutex::new(State {
            pool,
            conn: None,
            open: false,
            undo: Undo::Nothing,
            waiting: Vec::new(),
        }));
        let wake = Arc::new(Notify::new());
        let thread = WriterThread::start().await?;
        let committer = thread
            .runtime
            .spawn(commit_continually(Arc::downgrade(&state), wake.clone()));
        Ok(Self {
            state,
            wake,
            committer,
            thread,
        })
    }

    /// Runs `write`, a whole write, on the writer's thread (in the caller's tracing
    /// span). It runs to its end even if the caller stops waiting.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        write: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.thread
            .runtime
            .spawn(write.instrument(tracing::Span::current()))
            .await
            .map_err(|_| StoreError::Internal("a write on the writer's thread stopped"))?
    }

    /// Starts a write: waits for the writer.
    pub(crate) async fn join(&self) -> Result<Member, StoreError> {
        let mut state = self.state.clone().lock_owned().await;
        if state.undo != Undo::Nothing {
            // On a task of its own: a rollback given up half-way, because this caller
            // stopped waiting, would leave the state out of step with the connection.
            state = self
                .thread
                .runtime
                .spawn(async move {
                    state.settle().await;
                    state
                })
                .await
                .map_err(|_| StoreError::Internal("the writer's rollback stopped"))?;
        }
        if state.conn.is_none() {
            state.conn = Some(state.pool.acquire().await?);
        }
        Ok(Member {
            state: Some(state),
            savepoint: Savepoint::Unsent,
            wake: self.wake.clone(),
        })
    }
}

impl Drop for GroupWriter {
    fn drop(&mut self) {
        self.committer.abort();
    }
}

impl State {
    /// Undoes what an ended write left behind.
    async fn settle(&mut self) {
        match std::mem::replace(&mut self.undo, Undo::Nothing) {
            Undo::Nothing => {}
            Undo::Savepoint => {
                if let Err(e) = self.run("ROLLBACK TO member; RELEASE member").await {
                    // The savepoint is gone: SQLite rolled the whole transaction back.
                    tracing::warn!(error = %e, writes = self.waiting.len(),
                        "a failed write took its transaction down; the writes in it are not kept");
                    self.end(Err(Failure::Database(Arc::new(e)))).await;
                }
            }
            Undo::Transaction => {
                tracing::warn!(
                    writes = self.waiting.len(),
                    "a write ended without a known savepoint; its transaction is rolled back"
                );
                self.end(Err(Failure::Undone)).await;
            }
        }
    }

    /// Commits the open transaction and tells the writes in it.
    async fn commit(&mut self) {
        self.settle().await;
        if !self.open {
            self.idle();
            return;
        }
        let outcome = self.run("COMMIT").await.map_err(|e| {
            tracing::warn!(error = %e, writes = self.waiting.len(), "a commit failed");
            Failure::Database(Arc::new(e))
        });
        self.end(outcome).await;
    }

    /// Ends the open transaction: kept if `outcome` is Ok (it was committed), rolled
    /// back otherwise. The connection goes back to the pool.
    async fn end(&mut self, outcome: Outcome) {
        if outcome.is_err() && self.run("ROLLBACK").await.is_err() {
            // SQLite rolled it back already (a full disk), or the connection is broken:
            // never back into the pool in doubt.
            if let Some(conn) = self.conn.as_mut() {
                conn.close_on_drop();
            }
        }
        self.open = false;
        self.conn = None;
        for write in self.waiting.drain(..) {
            // A write whose caller went away has no one to tell.
            let _ = write.send(outcome.clone());
        }
    }

    /// Gives the connection back to the pool when no transaction holds it (for reads
    /// on an in-memory database, whose only connection this is, and for migrations).
    fn idle(&mut self) {
        if !self.open {
            self.conn = None;
        }
    }

    async fn run(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        let conn = self.conn.as_deref_mut().ok_or(sqlx::Error::PoolClosed)?;
        sqlx::raw_sql(sql).execute(conn).await.map(drop)
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if self.open
            && let Some(conn) = self.conn.as_mut()
        {
            // Never back into the pool inside a transaction: closing rolls it back.
            conn.close_on_drop();
        }
    }
}

/// Commits, each time a write has been done (or dropped), until the writer goes.
async fn commit_continually(state: Weak<Mutex<State>>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(state) = state.upgrade() else { return };
        state.lock().await.commit().await;
    }
}

/// One write in the shared transaction; holds the writer until it commits or drops.
/// Dropped without [`Member::commit`], it is rolled back.
pub(crate) struct Member {
    state: Option<OwnedMutexGuard<State>>,
    savepoint: Savepoint,
    wake: Arc<Notify>,
}

impl Member {
    fn connection(&mut self) -> &mut SqliteConnection {
        self.state
            .as_mut()
            .and_then(|state| state.conn.as_deref_mut())
            // `join` put the connection there, and only the committer takes it away,
            // after waiting for this member's hold on the writer to end.
            .expect("a member holds the writer's connection until it ends")
    }

    fn state(&mut self) -> &mut State {
        self.state
            .as_mut()
            .expect("a member holds the writer until it ends")
    }

    /// What must run before this write's next statement: the transaction's BEGIN if
    /// none is open, and this write's SAVEPOINT. Once returned, the savepoint counts as
    /// sent; report the statement's outcome with [`Member::ran`].
    fn prologue(&mut self) -> Option<&'static str> {
        if self.savepoint == Savepoint::Made {
            return None;
        }
        self.savepoint = Savepoint::Unknown;
        Some(if self.state().open {
            "SAVEPOINT member;\n"
        } else {
            "BEGIN IMMEDIATE;\nSAVEPOINT member;\n"
        })
    }

    /// The connection, and `q` with the prologue in front (it returns no rows). Report
    /// the outcome with [`Member::ran`].
    pub(crate) fn prepare(&mut self, q: Query) -> (&mut SqliteConnection, Query) {
        let q = match self.prologue() {
            Some(prologue) => q.prefixed(prologue),
            None => q,
        };
        (self.connection(), q)
    }

    /// Notes how a statement from [`Member::prepare`] went. A constraint violation
    /// can only come from the statement itself, after the prologue ran: SQLite undid
    /// that statement alone, and the savepoint stands.
    pub(crate) fn ran<T>(&mut self, outcome: &Result<T, sqlx::Error>) {
        let made = match outcome {
            Ok(_) => true,
            Err(sqlx::Error::Database(e)) => e.kind() != sqlx::error::ErrorKind::Other,
            Err(_) => false,
        };
        if made && self.savepoint == Savepoint::Unknown {
            self.savepoint = Savepoint::Made;
            self.state().open = true;
        }
    }

    /// The connection, with the prologue run on its own: for a statement that cannot
    /// carry it (one whose affected-row count is read, which SQLite would mix up with
    /// stale counts for BEGIN and SAVEPOINT).
    pub(crate) async fn ready(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if let Some(prologue) = self.prologue() {
            let made = sqlx::raw_sql(prologue).execute(self.connection()).await;
            self.ran(&made);
            made?;
        }
        Ok(self.connection())
    }

    /// Keeps this write and waits for the commit that holds it.
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        match self.savepoint {
            // Nothing written, nothing to wait for (dropping gives the writer back).
            Savepoint::Unsent => return Ok(()),
            // Its first statement failed and the caller commits anyway: the savepoint
            // may be missing, so nothing can be kept with certainty (dropping rolls
            // the transaction back).
            Savepoint::Unknown => {
                return Err(StoreError::Internal(
                    "a write committed after a failed statement",
                ));
            }
            Savepoint::Made => {}
        }
        let Some(mut state) = self.state.take() else {
            return Err(StoreError::Internal("a write committed twice"));
        };
        let (done, outcome) = oneshot::channel();
        state.waiting.push(done);
        drop(state);
        self.wake.notify_one();
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Failure::Database(e))) => Err(StoreError::Shared(e)),
            Ok(Err(Failure::Undone)) => Err(StoreError::RolledBack),
            Err(_) => Err(StoreError::Internal("the writer stopped before committing")),
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let Some(mut state) = self.state.take() else {
            return;
        };
        state.undo = match self.savepoint {
            Savepoint::Unsent => {
                state.idle();
                return;
            }
            Savepoint::Made => Undo::Savepoint,
            Savepoint::Unknown => Undo::Transaction,
        };
        drop(state);
        // The committer undoes it even if no other write comes.
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use crate::db::Query;
    use crate::testing::TestDatabase;
    use crate::{SqlStore, StoreError};

    async fn store_with_table() -> (TestDatabase, SqlStore) {
        let db = TestDatabase::sqlite();
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        tx.q()
            .execute(Query::new("CREATE TABLE notes (text TEXT NOT NULL UNIQUE)"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        (db, store)
    }

    async fn write(store: &SqlStore, text: &str) -> Result<(), StoreError> {
        let mut tx = store.begin().await?;
        tx.q()
            .execute(Query::new("INSERT INTO notes (text) VALUES ($1)").bind(text))
            .await?;
        tx.commit().await
    }

    async fn notes(store: &SqlStore) -> Vec<String> {
        let rows = store
            .read_all(Query::new("SELECT text FROM notes ORDER BY text"))
            .await
            .unwrap();
        rows.iter().map(|r| r.get("text").unwrap()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_arriving_together_are_all_kept_and_readable_once_committed() {
        let (_db, store) = store_with_table().await;
        let writers: Vec<_> = (0..64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    write(&store, &format!("note {i:02}")).await?;
                    // Told stored: another connection reads it.
                    let seen = notes(&store).await.contains(&format!("note {i:02}"));
                    Ok::<_, StoreError>(seen)
                })
            })
            .collect();
        for writer in writers {
            assert!(writer.await.unwrap().unwrap());
        }
        assert_eq!(notes(&store).await.len(), 64);
    }

    // On one thread the order is fixed: the first write hands the writer on before
    // the committer runs, so the second joins the same transaction.
    #[tokio::test]
    async fn a_write_that_fails_is_undone_alone_and_the_one_before_it_is_kept() {
        let (_db, store) = store_with_table().await;
        write(&store, "taken").await.unwrap();
        let (kept, failed) = tokio::join!(write(&store, "kept"), async {
            let mut tx = store.begin().await?;
            tx.q()
                .execute(Query::new("INSERT INTO notes (text) VALUES ('undone')"))
                .await?;
            // A unique violation: SQLite undoes the statement, the write gives up.
            tx.q()
                .execute(Query::new("INSERT INTO notes (text) VALUES ('taken')"))
                .await?;
            tx.commit().await
        });
        kept.unwrap();
        assert!(failed.unwrap_err().is_unique_violation());
        assert_eq!(notes(&store).await, ["kept", "taken"]);
    }

    #[tokio::test]
    async fn a_write_dropped_without_commit_leaves_nothing_and_the_writer_goes_on() {
        let (_db, store) = store_with_table().await;
        let (kept, ()) = tokio::join!(write(&store, "kept"), async {
            let mut tx = store.begin().await.unwrap();
            tx.q()
                .execute(Query::new("INSERT INTO notes (text) VALUES ('dropped')"))
                .await
                .unwrap();
        });
        kept.unwrap();
        write(&store, "later").await.unwrap();
        assert_eq!(notes(&store).await, ["kept", "later"]);
    }

    #[tokio::test]
    async fn when_a_failure_may_have_taken_the_transaction_down_no_write_in_it_is_told_stored() {
        let (_db, store) = store_with_table().await;
        let (first, failed) = tokio::join!(write(&store, "first"), async {
            let mut tx = store.begin().await?;
            // Fails after the savepoint was sent with it; whether that ran is not
            // known from the error, so the whole transaction is rolled back.
            tx.q()
                .fetch_all(Query::new("SELECT * FROM no_such_table"))
                .await?;
            tx.commit().await
        });
        assert!(failed.is_err());
        assert!(
            matches!(first, Err(StoreError::RolledBack)),
            "told {first:?}, but rolled back"
        );
        write(&store, "after").await.unwrap();
        assert_eq!(notes(&store).await, ["after"]);
    }
}
