//! The inbox's part of [`SqlStore`]: canned responses, @mentions, login failures,
//! attached files, agents' interface language. The [`Store`](crate::Store)
//! implementation delegates here.

use crate::db::Query;
use crate::{Canned, SqlStore, StoreError, StoredFile};
use frontdesk_core::{AgentId, ConversationId, Timestamp};

fn canned_from_row(row: &crate::db::Row) -> Result<Canned, StoreError> {
    Ok(Canned {
        id: row.get("id")?,
        shortcut: row.get("shortcut")?,
        title: row.get("title")?,
        text: row.get("text")?,
    })
}

fn file_from_row(row: &crate::db::Row) -> Result<StoredFile, StoreError> {
    Ok(StoredFile {
        id: row.get("id")?,
        conversation_id: ConversationId(row.get("conversation_id")?),
        name: row.get("name")?,
        content_type: row.get("content_type")?,
        size: u64::try_from(row.get::<i64>("size")?).unwrap_or(0),
        sha256: row.get("sha256")?,
    })
}

impl SqlStore {
    pub(crate) async fn list_canned(&self) -> Result<Vec<Canned>, StoreError> {
        let rows = self
            .read_all(Query::new(
                "SELECT id, shortcut, title, text FROM canned_responses ORDER BY shortcut",
            ))
            .await?;
        rows.iter().map(canned_from_row).collect()
    }

    pub(crate) async fn put_canned(
        &self,
        shortcut: &str,
        title: &str,
        text: &str,
        by: AgentId,
    ) -> Result<Canned, StoreError> {
        let shortcut = shortcut.trim().trim_start_matches('/').to_lowercase();
        let valid = !shortcut.is_empty()
            && shortcut.chars().count() <= 32
            && shortcut
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(StoreError::Invalid(
                "a shortcut is 1 to 32 letters, digits, - or _".into(),
            ));
        }
        if text.trim().is_empty() || title.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a canned response needs a title and a text".into(),
            ));
        }
        let now = self.now().as_micros();
        let row = self
            .write_one(
                Query::new(
                    "INSERT INTO canned_responses (shortcut, title, text, created_by, created_at,
                         updated_at)
                     VALUES ($1, $2, $3, $4, $5, $5)
                     ON CONFLICT (shortcut) DO UPDATE SET title = $2, text = $3, updated_at = $5
                     RETURNING id, shortcut, title, text",
                )
                .bind(shortcut.as_str())
                .bind(title.trim())
                .bind(text.trim())
                .bind(by.0)
                .bind(now),
            )
            .await?;
        let canned = canned_from_row(&row)?;
        Ok(canned)
    }

    pub(crate) async fn remove_canned(&self, id: i64) -> Result<(), StoreError> {
        let n = self
            .write(Query::new("DELETE FROM canned_responses WHERE id = $1").bind(id))
            .await?;
        match n {
            0 => Err(StoreError::NotFound("canned response", id)),
            _ => Ok(()),
        }
    }

    pub(crate) async fn see_mentions(
        &self,
        agent: AgentId,
        conversation: ConversationId,
    ) -> Result<u64, StoreError> {
        let now = self.now().as_micros();
        let n = self
            .write(
                Query::new(
                    "UPDATE mentions SET seen_at = $3
                     WHERE agent_id = $1 AND conversation_id = $2 AND seen_at IS NULL",
                )
                .bind(agent.0)
                .bind(conversation.0)
                .bind(now),
            )
            .await?;
        Ok(n)
    }

    /// Counts a failed login; returns until when the email is locked, if it is now.
    pub(crate) async fn count_login_failure(
        &self,
        email: &str,
        max: u32,
        lockout: std::time::Duration,
    ) -> Result<Option<Timestamp>, StoreError> {
        let now = self.now();
        let window_start = now.as_micros() - lockout.as_micros() as i64;
        let until = now.as_micros() + lockout.as_micros() as i64;
        let mut tx = self.begin().await?;
        // A count older than the lockout window starts again from one.
        let row = tx
            .q()
            .fetch_one(
                Query::new(
                    "INSERT INTO login_failures (email, failures, first_at) VALUES ($1, 1, $2)
                     ON CONFLICT (email) DO UPDATE SET
                         failures = CASE WHEN login_failures.first_at < $3 THEN 1
                                         ELSE login_failures.failures + 1 END,
                         first_at = CASE WHEN login_failures.first_at < $3 THEN $2
                                         ELSE login_failures.first_at END
                     RETURNING failures",
                )
                .bind(email)
                .bind(now.as_micros())
                .bind(window_start),
            )
            .await?;
        let failures: i64 = row.get("failures")?;
        let locked = failures >= i64::from(max);
        if locked {
            tx.q()
                .execute(
                    Query::new("UPDATE login_failures SET locked_until = $2 WHERE email = $1")
                        .bind(email)
                        .bind(until),
                )
                .await?;
        }
        tx.commit().await?;
        Ok(locked.then(|| Timestamp::from_micros(until)))
    }

    pub(crate) async fn login_lock(&self, email: &str) -> Result<Option<Timestamp>, StoreError> {
        let row = self
            .read_optional(
                Query::new(
                    "SELECT locked_until FROM login_failures
                     WHERE email = $1 AND locked_until > $2",
                )
                .bind(email)
                .bind(self.now().as_micros()),
            )
            .await?;
        row.map(|r| r.get::<i64>("locked_until").map(Timestamp::from_micros))
            .transpose()
    }

    pub(crate) async fn forget_login_failures(&self, email: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.q()
            .execute(Query::new("DELETE FROM login_failures WHERE email = $1").bind(email))
            .await?;
        tx.commit().await
    }

    pub(crate) async fn put_file(
        &self,
        conversation: ConversationId,
        name: &str,
        content_type: &str,
        sha256: &str,
        data: Vec<u8>,
    ) -> Result<StoredFile, StoreError> {
        let now = self.now().as_micros();
        let size = data.len() as i64;
        let row = self
            .write_one(
                Query::new(
                    "INSERT INTO files (conversation_id, name, content_type, size, sha256, data,
                         created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     RETURNING id, conversation_id, name, content_type, size, sha256",
                )
                .bind(conversation.0)
                .bind(name)
                .bind(content_type)
                .bind(size)
                .bind(sha256)
                .bind(data)
                .bind(now),
            )
            .await?;
        let file = file_from_row(&row)?;
        Ok(file)
    }

    pub(crate) async fn get_file(
        &self,
        id: i64,
    ) -> Result<Option<(StoredFile, Vec<u8>)>, StoreError> {
        let row = self
            .read_optional(
                Query::new(
                    "SELECT id, conversation_id, name, content_type, size, sha256, data
                     FROM files WHERE id = $1",
                )
                .bind(id),
            )
            .await?;
        row.map(|r| Ok((file_from_row(&r)?, r.get::<Vec<u8>>("data")?)))
            .transpose()
    }

    pub(crate) async fn put_agent_locale(
        &self,
        agent: AgentId,
        locale: &str,
    ) -> Result<(), StoreError> {
        if !["en", "zh"].contains(&locale) {
            return Err(StoreError::Invalid("the language is en or zh".into()));
        }
        let mut tx = self.begin().await?;
        tx.q()
            .execute(
                Query::new("UPDATE agents SET locale = $2 WHERE id = $1")
                    .bind(agent.0)
                    .bind(locale),
            )
            .await?;
        tx.commit().await
    }
}

fn opt_time(row: &crate::db::Row, column: &str) -> Result<Option<Timestamp>, StoreError> {
    Ok(row.get::<Option<i64>>(column)?.map(Timestamp::from_micros))
}

impl SqlStore {
    pub(crate) async fn tokens_of(
        &self,
        agent: AgentId,
    ) -> Result<Vec<crate::ApiToken>, StoreError> {
        let rows = self
            .read_all(
                Query::new(
                    "SELECT id, name, scopes, created_at, last_used_at FROM api_tokens
                     WHERE agent_id = $1 AND revoked_at IS NULL ORDER BY id",
                )
                .bind(agent.0),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::ApiToken {
                    id: r.get("id")?,
                    name: r.get("name")?,
                    scopes: r
                        .get::<String>("scopes")?
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                    created_at: Timestamp::from_micros(r.get("created_at")?),
                    last_used_at: opt_time(r, "last_used_at")?,
                })
            })
            .collect()
    }

    pub(crate) async fn revoke_token(&self, agent: AgentId, id: i64) -> Result<(), StoreError> {
        let now = self.now().as_micros();
        let n = self
            .write(
                Query::new(
                    "UPDATE api_tokens SET revoked_at = $3
                     WHERE id = $1 AND agent_id = $2 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(agent.0)
                .bind(now),
            )
            .await?;
        match n {
            0 => Err(StoreError::NotFound("api token", id)),
            _ => Ok(()),
        }
    }

    pub(crate) async fn activity(&self) -> Result<Vec<crate::ChannelActivity>, StoreError> {
        let rows = self
            .read_all(Query::new(
                "SELECT a.channel, a.account,
                     (SELECT max(m.created_at) FROM messages m
                      WHERE m.channel = a.channel AND m.account = a.account
                        AND m.direction = 'in') AS last_inbound_at,
                     (SELECT max(o.sent_at) FROM outbox o
                      WHERE o.channel = a.channel AND o.account = a.account) AS last_sent_at,
                     (SELECT count(*) FROM outbox o
                      WHERE o.channel = a.channel AND o.account = a.account
                        AND o.status = 'queued') AS queued,
                     (SELECT o.last_error FROM outbox o
                      WHERE o.channel = a.channel AND o.account = a.account
                        AND o.last_error IS NOT NULL
                      ORDER BY o.updated_at DESC LIMIT 1) AS last_error,
                     (SELECT max(o.updated_at) FROM outbox o
                      WHERE o.channel = a.channel AND o.account = a.account
                        AND o.last_error IS NOT NULL) AS last_error_at
                 FROM (SELECT DISTINCT channel, account FROM conversations) a
                 ORDER BY a.channel, a.account",
            ))
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::ChannelActivity {
                    account: format!(
                        "{}:{}",
                        r.get::<String>("channel")?,
                        r.get::<String>("account")?
                    ),
                    last_inbound_at: opt_time(r, "last_inbound_at")?,
                    last_sent_at: opt_time(r, "last_sent_at")?,
                    queued: u64::try_from(r.get::<i64>("queued")?).unwrap_or(0),
                    last_error: r.get("last_error")?,
                    last_error_at: opt_time(r, "last_error_at")?,
                })
            })
            .collect()
    }
}

impl SqlStore {
    pub(crate) async fn claim_webhook_lease(
        &self,
        name: &str,
        owner: &str,
        lease: std::time::Duration,
    ) -> Result<Option<crate::WebhookCursor>, StoreError> {
        let now = self.now().as_micros();
        let until = now + i64::try_from(lease.as_micros()).unwrap_or(i64::MAX / 2);
        let mut tx = self.begin().await?;
        // A new webhook starts at the newest event: it is not sent the past. (`WHERE
        // true`: SQLite reads an upsert after a bare SELECT ... FROM as a join.)
        tx.q()
            .execute(
                Query::new(
                    "INSERT INTO webhook_cursors (name, last_event_id, updated_at)
                     SELECT $1, COALESCE(max(id), 0), $2 FROM events WHERE true
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(now),
            )
            .await?;
        let row = tx
            .q()
            .fetch_optional(
                Query::new(
                    "UPDATE webhook_cursors SET lease_owner = $2, lease_until = $3, updated_at = $4
                     WHERE name = $1
                       AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < $4)
                     RETURNING last_event_id, attempts, due_at",
                )
                .bind(name)
                .bind(owner)
                .bind(until)
                .bind(now),
            )
            .await?;
        tx.commit().await?;
        row.map(|r| {
            Ok(crate::WebhookCursor {
                last_event_id: frontdesk_core::EventId(r.get("last_event_id")?),
                attempts: u32::try_from(r.get::<i64>("attempts")?).unwrap_or(u32::MAX),
                due_at: Timestamp::from_micros(r.get("due_at")?),
            })
        })
        .transpose()
    }

    /// Moves the cursor (the lease holder only): delivered, or given up.
    pub(crate) async fn advance_webhook(
        &self,
        name: &str,
        owner: &str,
        to: frontdesk_core::EventId,
        delivered: bool,
    ) -> Result<bool, StoreError> {
        let n = self
            .write(
                Query::new(
                    "UPDATE webhook_cursors SET last_event_id = $3, attempts = 0, due_at = 0,
                         last_error = CASE WHEN $4 = 1 THEN NULL ELSE last_error END,
                         delivered = delivered + $4, updated_at = $5
                     WHERE name = $1 AND lease_owner = $2 AND last_event_id < $3",
                )
                .bind(name)
                .bind(owner)
                .bind(to.0)
                .bind(i64::from(delivered))
                .bind(self.now().as_micros()),
            )
            .await?;
        Ok(n == 1)
    }

    pub(crate) async fn webhook_attempt_failed(
        &self,
        name: &str,
        owner: &str,
        error: &str,
        due_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.q()
            .execute(
                Query::new(
                    "UPDATE webhook_cursors SET attempts = attempts + 1, last_error = $3,
                         due_at = $4, updated_at = $5
                     WHERE name = $1 AND lease_owner = $2",
                )
                .bind(name)
                .bind(owner)
                .bind(error)
                .bind(due_at.as_micros())
                .bind(self.now().as_micros()),
            )
            .await?;
        tx.commit().await
    }

    pub(crate) async fn webhook_states(&self) -> Result<Vec<crate::WebhookState>, StoreError> {
        let rows = self
            .read_all(Query::new(
                "SELECT name, last_event_id, attempts, last_error, delivered, updated_at
                 FROM webhook_cursors ORDER BY name",
            ))
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::WebhookState {
                    name: r.get("name")?,
                    last_event_id: frontdesk_core::EventId(r.get("last_event_id")?),
                    attempts: u32::try_from(r.get::<i64>("attempts")?).unwrap_or(u32::MAX),
                    last_error: r.get("last_error")?,
                    delivered: u64::try_from(r.get::<i64>("delivered")?).unwrap_or(0),
                    updated_at: Timestamp::from_micros(r.get("updated_at")?),
                })
            })
            .collect()
    }
}

impl SqlStore {
    pub(crate) async fn put_visitor_email(
        &self,
        account: &frontdesk_core::ChannelAccount,
        thread_key: &str,
        email: &str,
    ) -> Result<crate::EmailLeft, StoreError> {
        let now = self.now().as_micros();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let Some(row) = q
            .fetch_optional(
                Query::new(
                    "SELECT id, contact_id FROM conversations
                     WHERE channel = $1 AND account = $2 AND thread_key = $3
                     ORDER BY id DESC LIMIT 1",
                )
                .bind(account.kind().as_str())
                .bind(account.name())
                .bind(thread_key),
            )
            .await?
        else {
            return Err(StoreError::Invalid(
                "write a message first, then leave an email address".into(),
            ));
        };
        let conversation = ConversationId(row.get("id")?);
        let contact = frontdesk_core::ContactId(row.get("contact_id")?);
        let count: i64 = q
            .fetch_one(
                Query::new("SELECT count(*) AS n FROM visitor_emails WHERE contact_id = $1")
                    .bind(contact.0),
            )
            .await?
            .get("n")?;
        if count >= 5 {
            return Err(StoreError::Invalid(
                "five addresses are enough; an agent can help with more".into(),
            ));
        }
        q.execute(
            Query::new(
                "INSERT INTO visitor_emails (contact_id, email, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (contact_id, email) DO NOTHING",
            )
            .bind(contact.0)
            .bind(email)
            .bind(now),
        )
        .await?;
        let holder = q
            .fetch_optional(
                Query::new(
                    "SELECT contact_id FROM contact_identities
                     WHERE channel = 'email' AND external_id = $1 AND contact_id <> $2",
                )
                .bind(email)
                .bind(contact.0),
            )
            .await?
            .map(|r| r.get::<i64>("contact_id").map(frontdesk_core::ContactId))
            .transpose()?;
        tx.commit().await?;
        Ok(crate::EmailLeft {
            conversation,
            contact,
            other_contact: holder,
        })
    }
}

impl SqlStore {
    pub(crate) async fn all_team_hours(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .read_all(Query::new(
                "SELECT team, config FROM team_hours ORDER BY team",
            ))
            .await?;
        rows.iter()
            .map(|r| Ok((r.get("team")?, r.get("config")?)))
            .collect()
    }

    pub(crate) async fn put_team_hours(
        &self,
        team: &str,
        config: &str,
        by: &str,
    ) -> Result<(), StoreError> {
        let now = self.now().as_micros();
        let mut tx = self.begin().await?;
        tx.q()
            .execute(
                Query::new(
                    "INSERT INTO team_hours (team, config, updated_by, updated_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (team) DO UPDATE SET config = $2, updated_by = $3,
                         updated_at = $4",
                )
                .bind(team)
                .bind(config)
                .bind(by)
                .bind(now),
            )
            .await?;
        crate::sql_store::audit(
            &mut tx.q(),
            by,
            "team_hours",
            &format!("team {team}"),
            serde_json::json!({ "hours": serde_json::from_str::<serde_json::Value>(config).unwrap_or_default() }),
            self.now(),
        )
        .await?;
        tx.commit().await
    }
}

impl SqlStore {
    pub(crate) async fn visitor_emails_of(
        &self,
        contact: frontdesk_core::ContactId,
    ) -> Result<Vec<String>, StoreError> {
        let rows = self
            .read_all(
                Query::new(
                    "SELECT email FROM visitor_emails WHERE contact_id = $1 ORDER BY created_at",
                )
                .bind(contact.0),
            )
            .await?;
        rows.iter().map(|r| r.get("email")).collect()
    }
}
