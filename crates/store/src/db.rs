//! One way to run SQL on either backend.
//!
//! Frontdesk's SQL is written once, with `$1, $2, ...` placeholders, which PostgreSQL
//! takes natively and sqlx's SQLite driver maps by number. Timestamps and ids are
//! integers and JSON is text on both sides, so the same statement and the same row
//! reading code serve both. Where the dialects really differ (row locking, NOTIFY) the
//! caller asks [`Backend`] and picks a statement.
//!
//! A bound row limit is written `LIMIT CAST($n AS BIGINT)`. SQLite plans a bare
//! `LIMIT $n` with the bound value in it, and so prepares the statement again at every
//! execution (sqlx binds afresh each time); the CAST makes it a run-time value.

use crate::StoreError;
use crate::group::Member;
use frontdesk_core::MessageId;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, Decode, Postgres, Row as _, SqlStr, Sqlite, Transaction, Type};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// SQL for the id of the row the transaction last inserted into `messages`: a
    /// batch that inserts a message refers to it with this before the id is known.
    /// Both read the table's own counter, which no other transaction moves in between
    /// (SQLite has one writer; PostgreSQL's `currval` is the session's own).
    pub(crate) fn last_message_id(self) -> &'static str {
        match self {
            // `messages.id` is AUTOINCREMENT: its counter is the largest id handed out.
            Backend::Sqlite => "(SELECT seq FROM sqlite_sequence WHERE name = 'messages')",
            Backend::Postgres => "currval(pg_get_serial_sequence('messages', 'id'))",
        }
    }
}

/// A message a statement names: by id, or as the message the transaction inserted
/// last ([`Backend::last_message_id`]), in a batch that inserts it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MessageRef {
    Id(MessageId),
    Inserted(Backend),
}

impl MessageRef {
    /// The message's id in SQL, where `placeholder` takes [`Self::value`].
    pub(crate) fn sql(self, placeholder: &str) -> String {
        match self {
            MessageRef::Id(_) => placeholder.to_owned(),
            MessageRef::Inserted(backend) => {
                format!("COALESCE({placeholder}, {})", backend.last_message_id())
            }
        }
    }

    /// The value [`Self::sql`]'s placeholder takes: NULL for the inserted message.
    pub(crate) fn value(self) -> Option<i64> {
        match self {
            MessageRef::Id(id) => Some(id.0),
            MessageRef::Inserted(_) => None,
        }
    }
}

/// A bound parameter. Nulls carry their type: PostgreSQL checks it.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Vec<u8>),
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}

/// A statement and its parameters, in placeholder order.
#[derive(Debug)]
pub(crate) struct Query {
    sql: SqlStr,
    args: Vec<Value>,
}

impl Query {
    pub(crate) fn new(sql: &'static str) -> Self {
        Self {
            sql: sqlx::SqlSafeStr::into_sql_str(sql),
            args: Vec::new(),
        }
    }

    /// A statement assembled at run time. Only for SQL put together from fixed
    /// fragments in this crate: values always go through [`Query::bind`].
    pub(crate) fn assembled(sql: String) -> Self {
        Self {
            sql: sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(sql)),
            args: Vec::new(),
        }
    }

    /// One multi-statement query: later statements' placeholders are renumbered to
    /// follow the earlier ones' arguments.
    fn joined(queries: Vec<Query>) -> Self {
        let mut sql = String::new();
        let mut args = Vec::new();
        for q in queries {
            let offset = args.len();
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            sql.push_str(&renumber(q.sql.as_str(), offset));
            args.extend(q.args);
        }
        let mut joined = Query::assembled(sql);
        joined.args = args;
        joined
    }

    /// This statement with `prefix` (statements without parameters) run first.
    pub(crate) fn prefixed(self, prefix: &str) -> Self {
        Self {
            sql: sqlx::SqlSafeStr::into_sql_str(AssertSqlSafe(format!(
                "{prefix}{}",
                self.sql.as_str()
            ))),
            args: self.args,
        }
    }

    pub(crate) fn bind(mut self, v: impl Into<Value>) -> Self {
        self.args.push(v.into());
        self
    }
}

/// `$N` -> `$(N + offset)`. Our statements have no `$` inside string literals.
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut pieces = sql.split('$');
    out.extend(pieces.next());
    for piece in pieces {
        out.push('$');
        let digits = piece.bytes().take_while(u8::is_ascii_digit).count();
        let (number, rest) = piece.split_at(digits);
        match number.parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(number),
        }
        out.push_str(rest);
    }
    out
}

/// A type both drivers can read from a column.
pub(crate) trait Column:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}
impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A result row from either backend.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Pg(PgRow),
}

impl Row {
    pub(crate) fn get<T: Column>(&self, column: &str) -> Result<T, StoreError> {
        match self {
            Row::Sqlite(r) => r.try_get(column),
            Row::Pg(r) => r.try_get(column),
        }
        .map_err(StoreError::from)
    }
}

/// A connection of either backend, borrowed for a few statements.
pub(crate) enum Exec<'a> {
    Sqlite(&'a mut SqliteConnection),
    /// A write in SQLite's shared transaction ([`crate::group`]).
    Group(&'a mut Member),
    Pg(&'a mut PgConnection),
}

macro_rules! bound {
    ($q:expr) => {{
        let mut query = sqlx::query($q.sql);
        for arg in $q.args {
            query = match arg {
                Value::Int(v) => query.bind(v),
                Value::Text(v) => query.bind(v),
                Value::Bytes(v) => query.bind(v),
            };
        }
        query
    }};
}

impl Exec<'_> {
    pub(crate) async fn execute(&mut self, q: Query) -> Result<u64, StoreError> {
        Ok(match self {
            Exec::Sqlite(c) => bound!(q).execute(&mut **c).await?.rows_affected(),
            Exec::Group(m) => bound!(q).execute(m.ready().await?).await?.rows_affected(),
            Exec::Pg(c) => bound!(q).execute(&mut **c).await?.rows_affected(),
        })
    }

    pub(crate) async fn fetch_all(&mut self, q: Query) -> Result<Vec<Row>, StoreError> {
        Ok(match self {
            Exec::Sqlite(c) => bound!(q)
                .fetch_all(&mut **c)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Exec::Group(m) => {
                let (conn, q) = m.prepare(q);
                let rows = bound!(q).fetch_all(conn).await;
                m.ran(&rows);
                rows?.into_iter().map(Row::Sqlite).collect()
            }
            Exec::Pg(c) => bound!(q)
                .fetch_all(&mut **c)
                .await?
                .into_iter()
                .map(Row::Pg)
                .collect(),
        })
    }

    pub(crate) async fn fetch_optional(&mut self, q: Query) -> Result<Option<Row>, StoreError> {
        Ok(match self {
            Exec::Sqlite(c) => bound!(q).fetch_optional(&mut **c).await?.map(Row::Sqlite),
            Exec::Group(m) => {
                let (conn, q) = m.prepare(q);
                let row = bound!(q).fetch_optional(conn).await;
                m.ran(&row);
                row?.map(Row::Sqlite)
            }
            Exec::Pg(c) => bound!(q).fetch_optional(&mut **c).await?.map(Row::Pg),
        })
    }

    /// Runs `queries` in order and returns all their rows, in one round trip where the
    /// backend allows it: SQLite takes several statements in one string (each binds its
    /// `$N` by number), PostgreSQL's extended protocol takes one at a time. For the
    /// writes at the end of a transaction that depend on nothing read in between.
    pub(crate) async fn batch(&mut self, queries: Vec<Query>) -> Result<Vec<Row>, StoreError> {
        match self {
            Exec::Sqlite(_) | Exec::Group(_) => self.fetch_all(Query::joined(queries)).await,
            Exec::Pg(_) => {
                let mut rows = Vec::new();
                for q in queries {
                    rows.extend(self.fetch_all(q).await?);
                }
                Ok(rows)
            }
        }
    }

    pub(crate) async fn fetch_one(&mut self, q: Query) -> Result<Row, StoreError> {
        self.fetch_optional(q)
            .await?
            .ok_or(StoreError::Internal("a statement returned no row"))
    }
}

/// A pooled connection outside a transaction, for reads.
pub(crate) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Pg(PoolConnection<Postgres>),
}

impl Conn {
    pub(crate) fn q(&mut self) -> Exec<'_> {
        match self {
            Conn::Sqlite(c) => Exec::Sqlite(c),
            Conn::Pg(c) => Exec::Pg(c),
        }
    }
}

/// An open transaction. Dropping it without [`Tx::commit`] rolls it back.
pub(crate) enum Tx {
    /// One write in SQLite's shared transaction ([`crate::group`]).
    Sqlite(Member),
    /// A transaction of its own on SQLite's writer, committed alone (the benchmark's
    /// baseline).
    #[cfg(any(test, feature = "testing"))]
    SqliteAlone(Transaction<'static, Sqlite>),
    Pg(Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn q(&mut self) -> Exec<'_> {
        match self {
            Tx::Sqlite(m) => Exec::Group(m),
            #[cfg(any(test, feature = "testing"))]
            Tx::SqliteAlone(t) => Exec::Sqlite(t),
            Tx::Pg(t) => Exec::Pg(t),
        }
    }

    /// Commits; returns once the write is durable (on SQLite, with the writes that
    /// share its commit).
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(m) => m.commit().await,
            #[cfg(any(test, feature = "testing"))]
            Tx::SqliteAlone(t) => Ok(t.commit().await?),
            Tx::Pg(t) => Ok(t.commit().await?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn later_statements_in_a_batch_take_the_arguments_after_the_earlier_ones() {
        assert_eq!(renumber("SELECT $1, $2, $10", 3), "SELECT $4, $5, $13");
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
        assert_eq!(renumber("SELECT '$', $2", 1), "SELECT '$', $3");
    }
}
