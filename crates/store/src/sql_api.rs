//! The HTTP surface's part of [`SqlStore`]: webchat threads, API tokens, shared
//! settings. The [`Store`](crate::Store) implementation delegates here.

use crate::db::Query;
use crate::sql_store::{find_agent, message_from_row, message_select};
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
                      ORDER BY m.id LIMIT CAST($5 AS BIGINT)"
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
        let Some(agent) = find_agent(&mut q, AgentId(token.get("agent_id")?)).await? else {
            return Ok(None);
        };
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

impl SqlStore {
    pub(crate) async fn new_session(
        &self,
        agent: AgentId,
        token_hash: &str,
        csrf: &str,
        expires_at: frontdesk_core::Timestamp,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        // Expired sessions of anyone go when someone logs in.
        q.execute(Query::new("DELETE FROM sessions WHERE expires_at <= $1").bind(now.as_micros()))
            .await?;
        q.execute(
            Query::new(
                "INSERT INTO sessions (token_hash, agent_id, csrf, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash)
            .bind(agent.0)
            .bind(csrf)
            .bind(now.as_micros())
            .bind(expires_at.as_micros()),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn live_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(Agent, String)>, StoreError> {
        let mut conn = self.conn().await?;
        let mut q = conn.q();
        let Some(session) = q
            .fetch_optional(
                Query::new(
                    "SELECT agent_id, csrf FROM sessions WHERE token_hash = $1 AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(self.now().as_micros()),
            )
            .await?
        else {
            return Ok(None);
        };
        let Some(agent) = find_agent(&mut q, AgentId(session.get("agent_id")?)).await? else {
            return Ok(None);
        };
        Ok(Some((agent, session.get("csrf")?)))
    }

    pub(crate) async fn drop_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.q()
            .execute(Query::new("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash))
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
