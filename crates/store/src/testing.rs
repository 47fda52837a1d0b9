//! Fresh databases for tests and benchmarks (feature `testing`).
//!
//! SQLite: a file in a temporary directory. PostgreSQL: a new database named
//! `frontdesk_test_<random>` on the server at `FRONTDESK_TEST_POSTGRES_URL`, dropped
//! when the [`TestDatabase`] is dropped.

use crate::{SqlStore, Store, StoreError, StoreOptions};

/// The variable that enables the PostgreSQL half of the tests.
pub const POSTGRES_URL_VAR: &str = "FRONTDESK_TEST_POSTGRES_URL";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A SQLite file in a new temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("frontdesk.db").display());
        Self {
            url,
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A new PostgreSQL database, or `None` when `FRONTDESK_TEST_POSTGRES_URL` is unset.
    /// Under `CI=true` an unset variable is a failure, not a skip: CI must run both halves.
    pub async fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{POSTGRES_URL_VAR} is unset on CI; run the tests through scripts/test"
            );
            eprintln!(
                "skipping the PostgreSQL half: {POSTGRES_URL_VAR} is unset (scripts/test sets it)"
            );
            return None;
        };
        let name = format!("frontdesk_test_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {POSTGRES_URL_VAR}: {e}. Start it (scripts/test does) \
                 or unset the variable"
            )
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("CREATE DATABASE");
        admin.close().await;
        let url = with_database(&admin_url, &name);
        Some(Self {
            url,
            _dir: None,
            postgres: Some((admin_url, name)),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connected, migrated store on this database.
    pub async fn store(&self) -> SqlStore {
        self.store_with(StoreOptions::default())
            .await
            .expect("open and migrate the test database")
    }

    pub async fn store_with(&self, options: StoreOptions) -> Result<SqlStore, StoreError> {
        let store = SqlStore::connect(&self.url, options).await?;
        store.migrate().await?;
        Ok(store)
    }
}

/// `postgres://u@h:p/db?x` with the database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..authority_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async; a short-lived thread with its own runtime does it.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            rt.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_test_database_replaces_only_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
                "x"
            ),
            "postgres://postgres@127.0.0.1:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
