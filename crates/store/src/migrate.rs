//! The schema migrations, embedded in the binary.
//!
//! Each backend has its own directory with the same file names (`migrations/sqlite`,
//! `migrations/postgres`); a test checks that the two lists agree. They are embedded
//! with `include_str!` rather than sqlx's `migrate!` macro, which would pull the whole
//! proc-macro driver stack into the build.

use crate::db::Backend;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// (version, description, SQLite SQL, PostgreSQL SQL)
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/sqlite/0001_initial.sql"),
        include_str!("../../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "privacy",
        include_str!("../../../migrations/sqlite/0002_privacy.sql"),
        include_str!("../../../migrations/postgres/0002_privacy.sql"),
    ),
    (
        3,
        "entities",
        include_str!("../../../migrations/sqlite/0003_entities.sql"),
        include_str!("../../../migrations/postgres/0003_entities.sql"),
    ),
    (
        4,
        "bot_misses",
        include_str!("../../../migrations/sqlite/0004_bot_misses.sql"),
        include_str!("../../../migrations/postgres/0004_bot_misses.sql"),
    ),
    (
        5,
        "conversation_engine",
        include_str!("../../../migrations/sqlite/0005_conversation_engine.sql"),
        include_str!("../../../migrations/postgres/0005_conversation_engine.sql"),
    ),
    (
        6,
        "outbox_order",
        include_str!("../../../migrations/sqlite/0006_outbox_order.sql"),
        include_str!("../../../migrations/postgres/0006_outbox_order.sql"),
    ),
    (
        7,
        "api",
        include_str!("../../../migrations/sqlite/0007_api.sql"),
        include_str!("../../../migrations/postgres/0007_api.sql"),
    ),
    (
        8,
        "sessions",
        include_str!("../../../migrations/sqlite/0008_sessions.sql"),
        include_str!("../../../migrations/postgres/0008_sessions.sql"),
    ),
    (
        9,
        "search",
        include_str!("../../../migrations/sqlite/0009_search.sql"),
        include_str!("../../../migrations/postgres/0009_search.sql"),
    ),
    (
        10,
        "inbox",
        include_str!("../../../migrations/sqlite/0010_inbox.sql"),
        include_str!("../../../migrations/postgres/0010_inbox.sql"),
    ),
    (
        11,
        "telegram",
        include_str!("../../../migrations/sqlite/0011_telegram.sql"),
        include_str!("../../../migrations/postgres/0011_telegram.sql"),
    ),
    (
        12,
        "crash safety",
        include_str!("../../../migrations/sqlite/0012_crash_safety.sql"),
        include_str!("../../../migrations/postgres/0012_crash_safety.sql"),
    ),
    (
        13,
        "search later",
        include_str!("../../../migrations/sqlite/0013_search_later.sql"),
        include_str!("../../../migrations/postgres/0013_search_later.sql"),
    ),
    (
        14,
        "search file",
        include_str!("../../../migrations/sqlite/0014_search_file.sql"),
        include_str!("../../../migrations/postgres/0014_search_file.sql"),
    ),
];

pub(crate) fn migrator(backend: Backend) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sqlite, postgres)| {
            let sql = match backend {
                Backend::Sqlite => sqlite,
                Backend::Postgres => postgres,
            };
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(sql),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn both_backends_have_the_same_migration_files() {
        let dir = |b: &str| {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/").to_owned() + b;
            let mut names: Vec<String> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        assert_eq!(dir("sqlite"), dir("postgres"));
        assert_eq!(
            dir("sqlite").len(),
            MIGRATIONS.len(),
            "embed every migration file"
        );
    }
}
