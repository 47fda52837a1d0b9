//! The HTTP surface's part of [`SqlStore`]: webchat threads, API tokens, shared
//! settings. The [`Store`](crate::Store) implementation delegates here.

use crate::db::Query;
use crate::sql_store::{
    agent_from_row, agent_select, load_agent_teams, message_from_row, message_select,
};
use crate::{SqlStore, StoreError};
use frontdesk_core::{Agent, AgentId, ChannelAccount, Message, MessageId};

impl SqlStore {
    pub(crate) async fn messages_of_thread(
        &self,
        account: &ChannelAccount,
        thread_key: &str,
        after: Option<MessageId>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = self
            .conn()
            .await?
            .q()
            .fetch_all(
                Query::new(concat!(
                    message_select!(),
                    " JOIN conversations c ON c.id = m.conversation_id
                      WHERE c.channel = $1 AND c.account = $2 AND c.thread_key = $3
                        AND m.kind = 'text' AND m.id > $4
                      ORDER BY m.id LIMIT $5"
                ))
                .bind(account.kind().as_str())
                .bind(account.name())
                .bind(thread_key)
                .bind(after.map_or(0, |m| m.0))
                .bind(i64::from(limit.clamp(1, 500))),
            )
            .await?;
        rows.iter().map(message_from_row).collect()
    }

    pub(crate) async fn new_api_token(
        &self,
        agent: AgentId,
        name: &str,
        token_hash: &str,
        scopes: &[String],
    ) -> Result<i64, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let row = tx
            .q()
            .fetch_one(
                Query::new(
                    "INSERT INTO api_tokens (agent_id, name, token_hash, scopes, created_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(agent.0)
                .bind(name)
                .bind(token_hash)
                .bind(scopes.join(" "))
                .bind(now.as_micros()),
            )
            .await?;
        tx.commit().await?;
        row.get("id")
    }

    pub(crate) async fn token_agent(
        &self,
        token_hash: &str,
    ) -> Result<Option<(Agent, Vec<String>)>, StoreError> {
        let mut conn = self.conn().await?;
        let mut q = conn.q();
        let Some(token) = q
            .fetch_optional(
                Query::new(
                    "SELECT id, agent_id, scopes FROM api_tokens
                     WHERE token_hash = $1 AND revoked_at IS NULL",
                )
                .bind(token_hash),
            )
            .await?
        else {
            return Ok(None);
        };
        let agent_id: i64 = token.get("agent_id")?;
        let Some(row) = q
            .fetch_optional(Query::new(concat!(agent_select!(), " WHERE a.id = $1")).bind(agent_id))
            .await?
        else {
            return Ok(None);
        };
        let mut agent = [agent_from_row(&row)?];
        load_agent_teams(&mut q, &mut agent).await?;
        let [agent] = agent;
        let scopes: String = token.get("scopes")?;
        drop(conn);
        // When a token was last used, for the admin page; not worth a failed request.
        let token_id: i64 = token.get("id")?;
        if let Ok(mut tx) = self.begin().await {
            let used = tx
                .q()
                .execute(
                    Query::new("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                        .bind(token_id)
                        .bind(self.now().as_micros()),
                )
                .await;
            if used.is_ok() {
                let _ = tx.commit().await;
            }
        }
        Ok(Some((
            agent,
            scopes.split_whitespace().map(str::to_owned).collect(),
        )))
    }

    pub(crate) async fn shared_setting(&self, key: &str, init: &str) -> Result<String, StoreError> {
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        q.execute(
            Query::new(
                "INSERT INTO settings (key, value, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(init)
            .bind(self.now().as_micros()),
        )
        .await?;
        let row = q
            .fetch_one(Query::new("SELECT value FROM settings WHERE key = $1").bind(key))
            .await?;
        let value = row.get("value")?;
        tx.commit().await?;
        Ok(value)
    }
}
