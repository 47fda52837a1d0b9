//! Full-text search over messages, in Chinese and English, on both backends.
//!
//! Neither backend's tokenizer splits Chinese into words, and customers search with
//! two-character words (转账, 提现), which a trigram index cannot find. So Frontdesk
//! writes each message's *search terms* next to its text (`messages.search_text`):
//! Latin words and numbers as they are (lower case), each run of Chinese, Japanese or
//! Korean characters as overlapping pairs plus its last character alone. Both indexes
//! then only split on spaces. PostgreSQL has a GIN index over each message's
//! `to_tsvector('simple', search_text)`.
//!
//! SQLite keeps one FTS5 document per conversation (all its messages' terms), so a
//! match yields conversation ids without touching the messages. The documents live in
//! a file of their own beside the database ([`sidecar`], attached to the reader
//! connections as `search`), because SQLite locks writes per file: the indexer
//! rewrites documents on a reader connection while messages go on being stored, instead
//! of holding the one writer (its FTS5 merges took a quarter of the writer's time under
//! `frontdesk bench e2e`). A new message only marks its conversation (`search_pending`,
//! by trigger); the indexer rewrites the marked documents in batches, every second and
//! before each search ([`crate::SqlStore::index_search`]). The index can always be
//! built again from the messages: a new or lost search file is filled from scratch.
//!
//! A query goes through the same split: every word must occur somewhere in the
//! conversation; a Latin word matches as a prefix (`withdraw` finds `withdrawal`), a
//! CJK run as the phrase of its pairs (`转账一直` finds `…转账一直pending…`), a single
//! CJK character as a prefix of a pair.

/// A character written without spaces between words.
fn is_cjk(ch: char) -> bool {
    matches!(ch as u32,
        0x3040..=0x30FF     // Hiragana, Katakana
        | 0x3400..=0x4DBF   // CJK Extension A
        | 0x4E00..=0x9FFF   // CJK Unified Ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK Compatibility Ideographs
        | 0x20000..=0x2FFFF // CJK Extensions B and later
    )
}

/// One piece of text as search sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    /// Letters and digits of other scripts, lower case.
    Word(String),
    /// Consecutive CJK characters.
    Cjk(Vec<char>),
}

fn runs(text: &str) -> Vec<Run> {
    let mut out = Vec::new();
    let mut current: Option<Run> = None;
    for ch in text.chars().flat_map(char::to_lowercase) {
        let next = if is_cjk(ch) {
            Some(true)
        } else if ch.is_alphanumeric() {
            Some(false)
        } else {
            None
        };
        match (next, &mut current) {
            (Some(true), Some(Run::Cjk(chars))) => chars.push(ch),
            (Some(false), Some(Run::Word(word))) => word.push(ch),
            (next, current) => {
                out.extend(current.take());
                *current = match next {
                    Some(true) => Some(Run::Cjk(vec![ch])),
                    Some(false) => Some(Run::Word(ch.to_string())),
                    None => None,
                };
            }
        }
    }
    out.extend(current);
    out
}

/// Overlapping pairs of a CJK run.
fn pairs(chars: &[char]) -> impl Iterator<Item = String> + '_ {
    chars.windows(2).map(|w| w.iter().collect())
}

/// What goes into `messages.search_text` for a message's text: terms separated by
/// single spaces, each made of letters and digits only.
pub fn terms(text: &str) -> String {
    let mut terms: Vec<String> = Vec::new();
    for run in runs(text) {
        match run {
            Run::Word(word) => terms.push(word),
            Run::Cjk(chars) => {
                terms.extend(pairs(&chars));
                // The last character alone, so that a one-character query finds it
                // at the end of a run too.
                terms.extend(chars.last().map(char::to_string));
            }
        }
    }
    terms.join(" ")
}

/// A search as each backend's query language writes it. Terms hold letters and
/// digits only, so quoting them is all the escaping either language needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// For `conversation_search MATCH ?` (SQLite FTS5): all the words.
    pub fts5: String,
    /// For `to_tsquery('simple', ?)` (PostgreSQL): one per word, each to be found in
    /// some message of the conversation.
    pub tsqueries: Vec<String>,
}

/// The query for what an agent typed; `None` when it holds no letter or digit.
pub fn query(text: &str) -> Option<SearchQuery> {
    let mut fts5 = Vec::new();
    let mut tsquery = Vec::new();
    for run in runs(text) {
        match run {
            Run::Word(word) => {
                fts5.push(format!("\"{word}\"*"));
                tsquery.push(format!("'{word}':*"));
            }
            Run::Cjk(chars) if chars.len() == 1 => {
                fts5.push(format!("\"{}\"*", chars[0]));
                tsquery.push(format!("'{}':*", chars[0]));
            }
            Run::Cjk(chars) => {
                let pairs: Vec<String> = pairs(&chars).collect();
                fts5.push(format!("\"{}\"", pairs.join(" ")));
                let phrase: Vec<String> = pairs.iter().map(|p| format!("'{p}'")).collect();
                tsquery.push(phrase.join(" <-> "));
            }
        }
    }
    if fts5.is_empty() {
        return None;
    }
    Some(SearchQuery {
        fts5: fts5.join(" AND "),
        tsqueries: tsquery,
    })
}

/// Conversations whose search documents one transaction rewrites. It holds the search
/// file's lock, not the database writer, so it can be large: each transaction adds an
/// FTS5 segment, and fewer segments mean less merging.
const INDEX_BATCH: i64 = 200;

/// The most batches a search writes before it runs. Enough for every message stored
/// since the last background pass (a second ago) at any rate this machine sustains;
/// a new search file being filled takes longer, and the search sees what is written.
const SEARCH_CATCH_UP: u32 = 10;

/// How often the store writes the search documents of new messages.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes the search documents of new messages every [`INDEX_EVERY`] for as long as the
/// store is open. A failure (a full disk, say) is logged once, and tried again each
/// time: the marks stay until their documents are written.
pub(crate) async fn index_continually(store: std::sync::Weak<crate::sql_store::Inner>) {
    let mut failing = false;
    loop {
        tokio::time::sleep(INDEX_EVERY).await;
        let Some(inner) = store.upgrade() else { return };
        let outcome = crate::SqlStore::from_inner(inner).index_search().await;
        crate::sql_store::note_background(
            &mut failing,
            outcome.map(drop),
            "cannot write the search index; trying again every second",
            "the search index is written again",
        );
    }
}

/// The search file beside the database file `main`: `<main>-search`, next to SQLite's
/// own `-wal` and `-shm`.
pub(crate) fn sidecar(main: &std::path::Path) -> String {
    let mut path = main.as_os_str().to_owned();
    path.push("-search");
    path.to_string_lossy().into_owned()
}

/// Attaches the search file `path` (`:memory:` beside an in-memory database) to a new
/// connection as `search`.
pub(crate) async fn attach(
    conn: &mut sqlx::SqliteConnection,
    path: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("ATTACH DATABASE $1 AS search")
        .bind(path)
        .execute(&mut *conn)
        .await?;
    // As the main file: durable against process crashes, see `open_sqlite`.
    sqlx::raw_sql("PRAGMA search.synchronous = NORMAL")
        .execute(conn)
        .await?;
    Ok(())
}

/// Creates the search file's tables if they are not there. `state` holds one row once
/// every conversation has been marked for indexing (a new file starts without it),
/// with the time the index was last written.
pub(crate) async fn create_schema(readers: &sqlx::SqlitePool) -> Result<(), crate::StoreError> {
    sqlx::raw_sql(
        "PRAGMA search.journal_mode = WAL;
         CREATE VIRTUAL TABLE IF NOT EXISTS search.conversation_search USING fts5 (
             terms,
             content = '',
             contentless_delete = 1,
             tokenize = 'unicode61 remove_diacritics 2'
         );
         CREATE TABLE IF NOT EXISTS search.state (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             built_at INTEGER NOT NULL,
             written_at INTEGER NOT NULL
         );",
    )
    .execute(readers)
    .await?;
    Ok(())
}

/// `value` as JSON text, for `json_each`.
fn to_json<T: serde::Serialize>(value: &T) -> Result<String, crate::StoreError> {
    serde_json::to_string(value).map_err(|_| crate::StoreError::Internal("search ids as JSON"))
}

/// `text` for a LIKE pattern with `ESCAPE '\\'`: `%`, `_` and `\\` taken literally.
pub(crate) fn like_escape(text: &str) -> String {
    text.chars()
        .flat_map(|ch| match ch {
            '%' | '_' | '\\' => vec!['\\', ch],
            _ => vec![ch],
        })
        .collect()
}

impl crate::SqlStore {
    /// The `WHERE` clause (on `conversations c`) for conversations whose messages
    /// hold every word of `text`, or whose contact's name or channel identity (an
    /// email address, a handle) contains it. Pushes its values onto `args`.
    pub(crate) async fn search_clause(
        &self,
        text: &str,
        args: &mut Vec<crate::db::Value>,
    ) -> Result<String, crate::StoreError> {
        use crate::Store;
        use crate::db::Query;
        let backend = self.backend();
        let text = text.trim();
        let contacts = match backend {
            // Three characters or more: the trigram index. Fewer: a scan.
            crate::Backend::Sqlite if text.chars().count() >= 3 => {
                args.push(format!("\"{}\"", text.replace('"', "\"\"")).into());
                format!(
                    "c.contact_id IN (SELECT rowid FROM contact_search
                                      WHERE contact_search MATCH ${})",
                    args.len()
                )
            }
            _ => {
                args.push(format!("%{}%", like_escape(&text.to_lowercase())).into());
                let like = args.len();
                format!(
                    "c.contact_id IN (
                         SELECT id FROM contacts WHERE lower(name) LIKE ${like} ESCAPE '\\'
                         UNION SELECT contact_id FROM contact_identities
                             WHERE lower(external_id) LIKE ${like} ESCAPE '\\'
                                OR lower(display_name) LIKE ${like} ESCAPE '\\')"
                )
            }
        };
        let Some(query) = query(text) else {
            return Ok(format!("({contacts})"));
        };
        let messages = match backend {
            crate::Backend::Sqlite => {
                // Every message stored so far is found (while a new search file is
                // filled, what is written so far: the background pass goes on).
                self.index_batches(SEARCH_CATCH_UP).await?;
                // The newest 2,000 matches by conversation id. Fewer: that is all of
                // them, bound as a list, and sorting them is cheap.
                // All 2,000: a common word. Then walk the conversations newest
                // activity first (`+c.id` keeps SQLite from sorting every match) and
                // take those in the list, or older ones (an old conversation active
                // again) that match when looked up one by one; a page fills after a
                // few dozen.
                let rows = self
                    .read_all(
                        Query::new(
                            "SELECT rowid FROM search.conversation_search
                             WHERE conversation_search MATCH $1
                             ORDER BY rowid DESC LIMIT 2000",
                        )
                        .bind(query.fts5.as_str()),
                    )
                    .await?;
                let newest: Vec<i64> = rows
                    .iter()
                    .map(|r| r.get::<i64>("rowid"))
                    .collect::<Result<_, _>>()?;
                if newest.len() < 2000 {
                    if newest.is_empty() {
                        return Ok(format!("({contacts})"));
                    }
                    let list: Vec<String> = newest
                        .into_iter()
                        .map(|id| {
                            args.push(id.into());
                            format!("${}", args.len())
                        })
                        .collect();
                    format!("c.id IN ({})", list.join(", "))
                } else {
                    // Not bound as a list: SQLite reads the newest matches again, by
                    // rowid range, faster than it parses 2,000 values.
                    let oldest = newest.last().copied().unwrap_or(0);
                    args.push(query.fts5.into());
                    let q = args.len();
                    args.push(oldest.into());
                    format!(
                        "(+c.id IN (SELECT rowid FROM search.conversation_search
                                    WHERE conversation_search MATCH ${q} AND rowid >= ${o})
                          OR (c.id < ${o} AND EXISTS (
                             SELECT 1 FROM search.conversation_search
                             WHERE conversation_search MATCH ${q} AND rowid = c.id)))",
                        o = args.len()
                    )
                }
            }
            crate::Backend::Postgres => {
                let words: Vec<String> = query
                    .tsqueries
                    .into_iter()
                    .map(|word| {
                        args.push(word.into());
                        format!(
                            "c.id IN (SELECT m.conversation_id FROM messages m
                                 WHERE m.search_text IS NOT NULL AND m.search_text <> ''
                                   AND to_tsvector('simple', m.search_text)
                                       @@ to_tsquery('simple', ${}))",
                            args.len()
                        )
                    })
                    .collect();
                format!("({})", words.join(" AND "))
            }
        };
        Ok(format!("({messages} OR {contacts})"))
    }

    /// SQLite: rewrites the search documents of every conversation with messages
    /// stored (or changed) since they were last written. Returns how many.
    /// PostgreSQL indexes as it stores: none.
    pub async fn index_search(&self) -> Result<u64, crate::StoreError> {
        self.index_batches(u32::MAX).await
    }

    /// Rewrites marked search documents, [`INDEX_BATCH`] conversations per
    /// transaction of the search file, at most `batches` transactions, in one walk
    /// through the marks by conversation id (a mark made meanwhile behind the walk waits
    /// for the next call, so a call ends under any load).
    ///
    /// Each batch reads the marks with their numbers, writes the documents on a reader
    /// connection, then removes the marks through the writer, those whose number is
    /// unchanged: a conversation that changed meanwhile keeps its mark, with a new
    /// number (`search_seq` never repeats one), for the next pass.
    ///
    /// On an in-memory database (tests) the reader connection is the only one, so a
    /// batch holds up every other read and write while it runs.
    async fn index_batches(&self, batches: u32) -> Result<u64, crate::StoreError> {
        use crate::db::{Conn, Exec, Query};
        if crate::Store::backend(self) != crate::Backend::Sqlite {
            return Ok(0);
        }
        // One pass at a time: two would contend for the search file's lock.
        let mut built = self.index_built().lock().await;
        if !*built {
            self.mark_all_if_new_index().await?;
            // Looked at once a process: the file does not go while it is open.
            *built = true;
        }
        // A look first, so that an idle store does not write every second.
        let pending = self
            .read_optional(Query::new("SELECT 1 AS found FROM search_pending LIMIT 1"))
            .await?;
        if pending.is_none() {
            return Ok(0);
        }
        let (mut indexed, mut after) = (0, 0);
        for _ in 0..batches {
            let Conn::Sqlite(mut conn) = self.conn().await? else {
                return Ok(indexed);
            };
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let mut q = Exec::Sqlite(&mut tx);
            // A write first takes the search file's lock, waiting for it if need be.
            // (FTS5 reads before it writes: had the transaction read first, another
            // process's indexer writing meanwhile would fail it at once as busy.)
            q.execute(
                Query::new("UPDATE search.state SET written_at = $1").bind(self.now().as_micros()),
            )
            .await?;
            let marks = q
                .fetch_all(
                    Query::new(
                        "SELECT conversation_id, seq FROM search_pending
                         WHERE conversation_id > $1
                         ORDER BY conversation_id LIMIT CAST($2 AS BIGINT)",
                    )
                    .bind(after)
                    .bind(INDEX_BATCH),
                )
                .await?;
            let marks = marks
                .iter()
                .map(|r| Ok((r.get::<i64>("conversation_id")?, r.get::<i64>("seq")?)))
                .collect::<Result<Vec<(i64, i64)>, crate::StoreError>>()?;
            let Some(&(last, _)) = marks.last() else {
                return Ok(indexed);
            };
            let ids: Vec<i64> = marks.iter().map(|(id, _)| *id).collect();
            let ids = to_json(&ids)?;
            q.batch(vec![
                Query::new(
                    "DELETE FROM search.conversation_search
                     WHERE rowid IN (SELECT value FROM json_each($1))",
                )
                .bind(ids.as_str()),
                Query::new(
                    "INSERT INTO search.conversation_search (rowid, terms)
                     SELECT conversation_id, group_concat(search_text, ' ') FROM messages
                     WHERE conversation_id IN (SELECT value FROM json_each($1))
                       AND search_text <> ''
                     GROUP BY conversation_id",
                )
                .bind(ids.as_str()),
            ])
            .await?;
            tx.commit().await?;
            drop(conn);
            self.write(
                Query::new(
                    "DELETE FROM search_pending WHERE (conversation_id, seq) IN
                         (SELECT value ->> 0, value ->> 1 FROM json_each($1))",
                )
                .bind(to_json(&marks)?),
            )
            .await?;
            indexed += marks.len() as u64;
            after = last;
            if (marks.len() as i64) < INDEX_BATCH {
                break;
            }
        }
        Ok(indexed)
    }

    /// A new search file (the first start after an upgrade, or the file was lost):
    /// marks every conversation, so that the passes that follow write them all. The
    /// marks go in a range of ids at a time, each a short write.
    async fn mark_all_if_new_index(&self) -> Result<(), crate::StoreError> {
        use crate::db::Query;
        const IDS_A_WRITE: i64 = 10_000;
        let built = self
            .read_optional(Query::new("SELECT built_at FROM search.state"))
            .await?;
        if built.is_some() {
            return Ok(());
        }
        let last: Option<i64> = self
            .read_optional(Query::new("SELECT max(id) AS last FROM conversations"))
            .await?
            .map(|r| r.get("last"))
            .transpose()?
            .flatten();
        let mut from = 0;
        while from < last.unwrap_or(0) {
            self.write(
                Query::new(
                    "INSERT INTO search_mark (conversation_id)
                     SELECT id FROM conversations WHERE id > $1 AND id <= $2",
                )
                .bind(from)
                .bind(from + IDS_A_WRITE),
            )
            .await?;
            from += IDS_A_WRITE;
        }
        // On a reader connection: the writer does not attach the search file.
        self.conn()
            .await?
            .q()
            .execute(
                Query::new(
                    "INSERT INTO search.state (id, built_at, written_at) VALUES (1, $1, $1)
                     ON CONFLICT DO NOTHING",
                )
                .bind(self.now().as_micros()),
            )
            .await?;
        Ok(())
    }

    /// Writes the search terms of messages stored before search existed (or by a
    /// tool that wrote rows in SQL), a thousand per transaction, then (SQLite) their
    /// conversations' documents through [`Self::index_search`]. Returns how many.
    pub async fn write_search_terms(&self) -> Result<u64, crate::StoreError> {
        use crate::db::Query;
        let mut written = 0;
        loop {
            let rows = self
                .read_all(Query::new(
                    "SELECT id, kind, text FROM messages WHERE search_text IS NULL
                     ORDER BY id LIMIT 1000",
                ))
                .await?;
            if rows.is_empty() {
                self.index_search().await?;
                return Ok(written);
            }
            let first: i64 = rows[0].get("id")?;
            let last: i64 = rows[rows.len() - 1].get("id")?;
            let mut tx = self.begin().await?;
            for row in &rows {
                let id: i64 = row.get("id")?;
                let kind: String = row.get("kind")?;
                let text: String = row.get("text")?;
                let search_text = match kind.as_str() {
                    _ if text == crate::ERASED => String::new(),
                    "event" => String::new(),
                    _ => terms(&text),
                };
                tx.q()
                    .execute(
                        Query::new("UPDATE messages SET search_text = $2 WHERE id = $1")
                            .bind(id)
                            .bind(search_text),
                    )
                    .await?;
            }
            if crate::Store::backend(self) == crate::Backend::Sqlite {
                // Their conversations' documents are rewritten below, as new messages'.
                tx.q()
                    .execute(
                        Query::new(
                            "INSERT INTO search_mark (conversation_id)
                             SELECT DISTINCT conversation_id FROM messages
                             WHERE id BETWEEN $1 AND $2",
                        )
                        .bind(first)
                        .bind(last),
                    )
                    .await?;
            }
            tx.commit().await?;
            written += rows.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_written_as_pairs_and_latin_as_words() {
        assert_eq!(
            terms("转账一直Pending，哈希0xAB12!"),
            "转账 账一 一直 直 pending 哈希 希 0xab12"
        );
        assert_eq!(terms("  ...  "), "");
    }

    #[test]
    fn a_query_is_every_word_with_latin_words_as_prefixes() {
        let q = query("转账 withdraw").unwrap();
        assert_eq!(q.fts5, "\"转账\" AND \"withdraw\"*");
        assert_eq!(q.tsqueries, ["'转账'", "'withdraw':*"]);
        let q = query("转账一直").unwrap();
        assert_eq!(q.fts5, "\"转账 账一 一直\"");
        assert_eq!(q.tsqueries, ["'转账' <-> '账一' <-> '一直'"]);
        assert_eq!(query("转").unwrap().fts5, "\"转\"*");
    }

    #[test]
    fn quotes_and_operators_in_a_query_are_only_separators() {
        let q = query("\"a' OR 1=1 -- NEAR(x)*").unwrap();
        assert_eq!(
            q.fts5,
            "\"a\"* AND \"or\"* AND \"1\"* AND \"1\"* AND \"near\"* AND \"x\"*"
        );
        assert!(query("'\"*()").is_none());
    }
}
