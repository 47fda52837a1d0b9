//! The conversation engine's part of [`SqlStore`]: timers' sweeps, SLA breaches,
//! agents and assignment, CSAT, email verification and contact merging, report facts.
//! The [`Store`](crate::Store) implementation delegates here.

use crate::db::{Exec, Query, Row};
use crate::sql_store::{
    account_of, agent_from_row, agent_select, conversation_from_row, conversation_select,
    find_agent, load_agent_teams, load_conversation, micros, opt_micros, verification_waiting,
    word,
};
use crate::{
    AgentLoad, AgentProfile, ConversationFacts, Csat, PendingTurn, SlaTarget, SqlStore, StoreError,
    Sweep, Verification, VerificationChange, VerificationState,
};
use frontdesk_core::{
    Agent, AgentId, AgentStatus, ChannelKind, ContactId, Conversation, ConversationId, EventKind,
    MessageId, Priority, Status, Timestamp,
};

/// The queue order: urgent, high, normal, low; then the longest open (a return to the
/// queue keeps the place; a reopen goes to the back).
const QUEUE_ORDER: &str = " ORDER BY CASE c.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1
    WHEN 'normal' THEN 2 ELSE 3 END, COALESCE(c.status_since, c.created_at), c.id";

impl SqlStore {
    pub(crate) async fn sweep_conversations(
        &self,
        sweep: Sweep,
        limit: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        let limit = i64::from(limit.clamp(1, 10_000));
        let query = match sweep {
            Sweep::QueueOf(team) => Query::assembled(format!(
                "{} WHERE c.status = 'open' AND c.assignee_id IS NULL AND c.team = $1
                 {QUEUE_ORDER} LIMIT CAST($2 AS BIGINT)",
                conversation_select!()
            ))
            .bind(team),
            Sweep::ResolvedWithNewMessageBefore(t) => Query::new(concat!(
                conversation_select!(),
                " WHERE c.status = 'resolved' AND c.last_message_at > c.resolved_at
                   AND EXISTS (SELECT 1 FROM messages m
                       WHERE m.conversation_id = c.id AND m.direction = 'in'
                         AND m.created_at > c.resolved_at AND m.created_at <= $1
                         AND m.id > COALESCE((SELECT s.message_id FROM csat s
                                              WHERE s.conversation_id = c.id), 0))
                  ORDER BY c.id LIMIT CAST($2 AS BIGINT)"
            ))
            .bind(t.as_micros()),
            Sweep::SnoozeOver(now) => Query::new(concat!(
                conversation_select!(),
                " WHERE c.status = 'snoozed' AND c.snoozed_until <= $1 ORDER BY c.snoozed_until, c.id LIMIT CAST($2 AS BIGINT)"
            ))
            .bind(now.as_micros()),
            Sweep::PendingSilentSince(t) => Query::new(concat!(
                conversation_select!(),
                " WHERE c.status = 'pending' AND COALESCE(c.status_since, c.updated_at) <= $1
                   AND c.last_message_at <= $1 ORDER BY c.last_message_at, c.id LIMIT CAST($2 AS BIGINT)"
            ))
            .bind(t.as_micros()),
            Sweep::BotIdleSince(t) => Query::new(concat!(
                conversation_select!(),
                " WHERE c.status = 'bot' AND c.last_message_at <= $1
                  ORDER BY c.last_message_at, c.id LIMIT CAST($2 AS BIGINT)"
            ))
            .bind(t.as_micros()),
            Sweep::FirstResponseOverdue(now) => Query::new(concat!(
                conversation_select!(),
                " WHERE c.status <> 'resolved' AND c.first_response_at IS NULL
                   AND c.first_response_due <= $1 AND c.first_response_breached = 0
                  ORDER BY c.first_response_due, c.id LIMIT CAST($2 AS BIGINT)"
            ))
            .bind(now.as_micros()),
            Sweep::ResolutionOverdue(now) => Query::new(concat!(
                conversation_select!(),
                " WHERE c.status <> 'resolved' AND c.resolution_due <= $1
                   AND c.resolution_breached = 0
                  ORDER BY c.resolution_due, c.id LIMIT CAST($2 AS BIGINT)"
            ))
            .bind(now.as_micros()),
            Sweep::AssignedTo(agent) => Query::new(concat!(
                conversation_select!(),
                " WHERE c.assignee_id = $1 AND c.status <> 'resolved'
                  ORDER BY c.id LIMIT CAST($2 AS BIGINT)"
            ))
            .bind(agent.0),
            Sweep::Queue => Query::assembled(format!(
                "{} WHERE c.status = 'open' AND c.assignee_id IS NULL {QUEUE_ORDER} LIMIT CAST($1 AS BIGINT)",
                conversation_select!()
            )),
        };
        let rows = self.conn().await?.q().fetch_all(query.bind(limit)).await?;
        rows.iter().map(conversation_from_row).collect()
    }

    pub(crate) async fn pending_turns(
        &self,
        noted_before: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<PendingTurn>, StoreError> {
        const STALE: i64 = 86_400 * 1_000_000;
        let mut conn = self.conn().await?;
        let rows = conn
            .q()
            .fetch_all(
                Query::new(
                    "SELECT t.message_id, t.conversation_id, t.due_at, m.text, m.findings,
                            m.created_at,
                            CAST(CASE WHEN EXISTS (
                                SELECT 1 FROM messages o
                                WHERE o.conversation_id = t.conversation_id
                                  AND o.id > t.message_id AND o.direction = 'out')
                            THEN 1 ELSE 0 END AS BIGINT) AS answered
                     FROM engine_turns t JOIN messages m ON m.id = t.message_id
                     WHERE t.due_at <= $1 ORDER BY t.due_at, t.message_id LIMIT CAST($2 AS BIGINT)",
                )
                .bind(noted_before.as_micros())
                .bind(i64::from(limit.clamp(1, 1000))),
            )
            .await?;
        drop(conn);
        let mut turns = Vec::new();
        for row in rows {
            let message: i64 = row.get("message_id")?;
            let due: i64 = row.get("due_at")?;
            let done = row.get::<i64>("answered")? != 0
                || row.get::<i64>("created_at")? < now.as_micros() - STALE;
            // Compare-and-set on the note's time: of several instances, one wins.
            let sql = if done {
                "DELETE FROM engine_turns WHERE message_id = $1 AND due_at = $2"
            } else {
                "UPDATE engine_turns SET due_at = $3 WHERE message_id = $1 AND due_at = $2"
            };
            let mut tx = self.begin().await?;
            let won = tx
                .q()
                .execute(
                    Query::new(sql)
                        .bind(message)
                        .bind(due)
                        .bind(now.as_micros()),
                )
                .await?
                == 1;
            tx.commit().await?;
            if won && !done {
                let findings: String = row.get("findings")?;
                turns.push(PendingTurn {
                    conversation_id: ConversationId(row.get("conversation_id")?),
                    message_id: MessageId(message),
                    text: row.get::<Option<String>>("text")?.unwrap_or_default(),
                    findings: serde_json::from_str::<Vec<serde_json::Value>>(&findings)
                        .map_or(0, |f| f.len()),
                });
            }
        }
        Ok(turns)
    }

    pub(crate) async fn record_breach(
        &self,
        id: ConversationId,
        target: SlaTarget,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let sql = match target {
            SlaTarget::FirstResponse => {
                "UPDATE conversations SET first_response_breached = 1
                 WHERE id = $1 AND first_response_breached = 0"
            }
            SlaTarget::Resolution => {
                "UPDATE conversations SET resolution_breached = 1
                 WHERE id = $1 AND resolution_breached = 0"
            }
        };
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        if q.execute(Query::new(sql).bind(id.0)).await? == 0 {
            return Ok(false);
        }
        let events = self
            .record(
                &mut q,
                EventKind::SlaBreached,
                Some(id),
                None,
                serde_json::json!({ "target": target }),
                now,
            )
            .await?;
        tx.commit().await?;
        self.publish(events);
        Ok(true)
    }

    pub(crate) async fn agent_loads(&self) -> Result<Vec<AgentLoad>, StoreError> {
        let mut conn = self.conn().await?;
        let mut q = conn.q();
        let rows = q
            .fetch_all(Query::new(concat!(agent_select!(), " ORDER BY a.id")))
            .await?;
        let mut agents = rows
            .iter()
            .map(agent_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        load_agent_teams(&mut q, &mut agents).await?;
        let counts = q
            .fetch_all(Query::new(
                "SELECT assignee_id, count(*) AS n FROM conversations
                 WHERE assignee_id IS NOT NULL AND status <> 'resolved'
                 GROUP BY assignee_id",
            ))
            .await?;
        let mut loads: Vec<AgentLoad> = agents
            .into_iter()
            .map(|agent| AgentLoad { agent, open: 0 })
            .collect();
        for row in counts {
            let id = AgentId(row.get("assignee_id")?);
            let n: i64 = row.get("n")?;
            if let Some(load) = loads.iter_mut().find(|l| l.agent.id == id) {
                load.open = u32::try_from(n).unwrap_or(u32::MAX);
            }
        }
        Ok(loads)
    }

    pub(crate) async fn save_agent_profile(
        &self,
        id: AgentId,
        profile: &AgentProfile,
    ) -> Result<Agent, StoreError> {
        if !(1..=2).contains(&profile.tier) {
            return Err(StoreError::Invalid(format!(
                "tier {} is not 1 or 2",
                profile.tier
            )));
        }
        let mut teams: Vec<String> = profile
            .teams
            .iter()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        teams.sort();
        teams.dedup();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let updated = q
            .execute(
                Query::new("UPDATE agents SET capacity = $2, tier = $3 WHERE id = $1")
                    .bind(id.0)
                    .bind(i64::from(profile.capacity))
                    .bind(i64::from(profile.tier)),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound("agent", id.0));
        }
        q.execute(Query::new("DELETE FROM agent_teams WHERE agent_id = $1").bind(id.0))
            .await?;
        for team in &teams {
            q.execute(
                Query::new("INSERT INTO agent_teams (agent_id, team) VALUES ($1, $2)")
                    .bind(id.0)
                    .bind(team.as_str()),
            )
            .await?;
        }
        let agent = find_agent(&mut q, id)
            .await?
            .ok_or(StoreError::NotFound("agent", id.0))?;
        tx.commit().await?;
        Ok(agent)
    }

    pub(crate) async fn save_agent_status(
        &self,
        id: AgentId,
        status: AgentStatus,
    ) -> Result<Agent, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let updated = q
            .execute(
                Query::new(
                    "UPDATE agents SET
                         status_since = CASE WHEN status <> $2 THEN $3
                                             ELSE COALESCE(status_since, $3) END,
                         status = $2
                     WHERE id = $1",
                )
                .bind(id.0)
                .bind(status.as_str())
                .bind(now.as_micros()),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound("agent", id.0));
        }
        let events = self
            .record(
                &mut q,
                EventKind::AgentStatusChanged,
                None,
                None,
                serde_json::json!({ "agent": id, "status": status }),
                now,
            )
            .await?;
        let agent = find_agent(&mut q, id)
            .await?
            .ok_or(StoreError::NotFound("agent", id.0))?;
        tx.commit().await?;
        self.publish(events);
        Ok(agent)
    }

    pub(crate) async fn assign_conversation(
        &self,
        id: ConversationId,
        to: Option<AgentId>,
        auto: bool,
        reason: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        if let (true, Some(agent), crate::Backend::Postgres) =
            (auto, to, crate::Store::backend(self))
        {
            // Assignments to one agent queue here, so the room check below sees every
            // committed one. (SQLite's writer runs one transaction at a time.)
            q.execute(Query::new("SELECT id FROM agents WHERE id = $1 FOR UPDATE").bind(agent.0))
                .await?;
        }
        let sql = if auto {
            "UPDATE conversations SET assignee_id = $2, updated_at = $3
             WHERE id = $1 AND assignee_id IS NULL AND status = 'open'
               AND EXISTS (SELECT 1 FROM agents a WHERE a.id = $2 AND a.status = 'online'
                   AND a.capacity > (SELECT count(*) FROM conversations x
                                     WHERE x.assignee_id = $2 AND x.status <> 'resolved'))"
        } else {
            "UPDATE conversations SET assignee_id = $2, updated_at = $3 WHERE id = $1"
        };
        let updated = q
            .execute(
                Query::new(sql)
                    .bind(id.0)
                    .bind(to.map(|a| a.0))
                    .bind(now.as_micros()),
            )
            .await?;
        if updated == 0 {
            return match auto {
                true => Ok(None),
                false => Err(StoreError::NotFound("conversation", id.0)),
            };
        }
        if let Some(agent) = to {
            let found = q
                .execute(
                    Query::new("UPDATE agents SET last_assigned_at = $2 WHERE id = $1")
                        .bind(agent.0)
                        .bind(now.as_micros()),
                )
                .await?;
            if found == 0 {
                return Err(StoreError::NotFound("agent", agent.0));
            }
        }
        let events = self
            .record(
                &mut q,
                EventKind::ConversationUpdated,
                Some(id),
                None,
                serde_json::json!({ "assignee": to, "reason": reason }),
                now,
            )
            .await?;
        let conversation = load_conversation(&mut q, id).await?;
        tx.commit().await?;
        self.publish(events);
        Ok(conversation)
    }

    pub(crate) async fn ask_csat(
        &self,
        id: ConversationId,
        agent: Option<AgentId>,
        team: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let inserted = tx
            .q()
            .execute(
                Query::new(
                    "INSERT INTO csat (conversation_id, agent_id, team, asked_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id) DO NOTHING",
                )
                .bind(id.0)
                .bind(agent.map(|a| a.0))
                .bind(team)
                .bind(now.as_micros()),
            )
            .await?;
        tx.commit().await?;
        Ok(inserted > 0)
    }

    pub(crate) async fn load_csat(&self, id: ConversationId) -> Result<Option<Csat>, StoreError> {
        let row = self
            .conn()
            .await?
            .q()
            .fetch_optional(
                Query::new(
                    "SELECT conversation_id, agent_id, team, asked_at, rating, comment, answered_at
                     FROM csat WHERE conversation_id = $1",
                )
                .bind(id.0),
            )
            .await?;
        row.map(|r| {
            Ok(Csat {
                conversation_id: ConversationId(r.get("conversation_id")?),
                agent_id: r.get::<Option<i64>>("agent_id")?.map(AgentId),
                team: r.get("team")?,
                asked_at: micros(&r, "asked_at")?,
                rating: r
                    .get::<Option<i64>>("rating")?
                    .and_then(|v| u8::try_from(v).ok()),
                comment: r.get("comment")?,
                answered_at: opt_micros(&r, "answered_at")?,
            })
        })
        .transpose()
    }

    pub(crate) async fn comment_csat(
        &self,
        id: ConversationId,
        comment: &str,
        message: MessageId,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let updated = tx
            .q()
            .execute(
                Query::new(
                    "UPDATE csat SET comment = $2, message_id = $3
                     WHERE conversation_id = $1 AND rating IS NOT NULL AND comment IS NULL",
                )
                .bind(id.0)
                .bind(comment)
                .bind(message.0),
            )
            .await?;
        tx.commit().await?;
        Ok(updated > 0)
    }

    pub(crate) async fn code_try(&self, id: i64, max: u32) -> Result<Option<u32>, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let row = tx
            .q()
            .fetch_optional(
                Query::new(
                    "UPDATE verifications SET tries = tries + 1, updated_at = $3
                     WHERE id = $1 AND state = 'awaiting_code' AND tries < $2
                     RETURNING tries",
                )
                .bind(id)
                .bind(i64::from(max))
                .bind(now.as_micros()),
            )
            .await?;
        tx.commit().await?;
        row.map(|r| Ok(u32::try_from(r.get::<i64>("tries")?).unwrap_or(u32::MAX)))
            .transpose()
    }

    pub(crate) async fn count_verifications(
        &self,
        id: ConversationId,
        since: Timestamp,
    ) -> Result<u32, StoreError> {
        let row = self
            .conn()
            .await?
            .q()
            .fetch_one(
                Query::new(
                    "SELECT count(*) AS n FROM verifications
                     WHERE conversation_id = $1 AND created_at >= $2",
                )
                .bind(id.0)
                .bind(since.as_micros()),
            )
            .await?;
        Ok(u32::try_from(row.get::<i64>("n")?).unwrap_or(u32::MAX))
    }

    pub(crate) async fn answer_csat(
        &self,
        id: ConversationId,
        rating: u8,
        comment: Option<&str>,
        message: MessageId,
    ) -> Result<bool, StoreError> {
        if !(1..=5).contains(&rating) {
            return Err(StoreError::Invalid(format!(
                "rating {rating} is not between 1 and 5"
            )));
        }
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let updated = q
            .execute(
                Query::new(
                    "UPDATE csat SET rating = $2, comment = $3, answered_at = $4, message_id = $5
                     WHERE conversation_id = $1 AND rating IS NULL",
                )
                .bind(id.0)
                .bind(i64::from(rating))
                .bind(comment)
                .bind(now.as_micros())
                .bind(message.0),
            )
            .await?;
        if updated == 0 {
            return Ok(false);
        }
        let events = self
            .record(
                &mut q,
                EventKind::CsatReceived,
                Some(id),
                Some(message),
                serde_json::json!({ "rating": rating }),
                now,
            )
            .await?;
        tx.commit().await?;
        self.publish(events);
        Ok(true)
    }

    pub(crate) async fn new_verification(
        &self,
        id: ConversationId,
        agent: Option<AgentId>,
        change: &VerificationChange,
    ) -> Result<Verification, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        q.execute(
            Query::new(
                "UPDATE verifications SET state = 'cancelled', updated_at = $2
                 WHERE conversation_id = $1 AND state IN ('awaiting_email', 'awaiting_code')",
            )
            .bind(id.0)
            .bind(now.as_micros()),
        )
        .await?;
        let state = change.state.unwrap_or(VerificationState::AwaitingEmail);
        let row = q
            .fetch_one(
                Query::new(
                    "INSERT INTO verifications (conversation_id, agent_id, state, email,
                         code_hash, tries, expires_at, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
                )
                .bind(id.0)
                .bind(agent.map(|a| a.0))
                .bind(state.as_str())
                .bind(change.email.as_deref())
                .bind(change.code_hash.as_deref())
                .bind(i64::from(change.tries.unwrap_or(0)))
                .bind(change.expires_at.map(Timestamp::as_micros))
                .bind(now.as_micros()),
            )
            .await?;
        let verification = load_verification(&mut q, row.get("id")?).await?;
        tx.commit().await?;
        Ok(verification)
    }

    pub(crate) async fn current_verification(
        &self,
        id: ConversationId,
    ) -> Result<Option<Verification>, StoreError> {
        let row = self
            .conn()
            .await?
            .q()
            .fetch_optional(
                Query::assembled(format!(
                    "{} WHERE {} ORDER BY id DESC LIMIT 1",
                    verification_select!(),
                    verification_waiting("$1")
                ))
                .bind(id.0),
            )
            .await?;
        row.as_ref().map(verification_from_row).transpose()
    }

    pub(crate) async fn change_verification(
        &self,
        id: i64,
        change: &VerificationChange,
    ) -> Result<Verification, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let updated = q
            .execute(
                Query::new(
                    "UPDATE verifications SET state = COALESCE($2, state),
                         email = COALESCE($3, email), code_hash = COALESCE($4, code_hash),
                         tries = COALESCE($5, tries), expires_at = COALESCE($6, expires_at),
                         updated_at = $7
                     WHERE id = $1",
                )
                .bind(id)
                .bind(change.state.map(VerificationState::as_str))
                .bind(change.email.as_deref())
                .bind(change.code_hash.as_deref())
                .bind(change.tries.map(i64::from))
                .bind(change.expires_at.map(Timestamp::as_micros))
                .bind(now.as_micros()),
            )
            .await?;
        if updated == 0 {
            return Err(StoreError::NotFound("verification", id));
        }
        let verification = load_verification(&mut q, id).await?;
        tx.commit().await?;
        Ok(verification)
    }

    pub(crate) async fn merge_by_verified_email(
        &self,
        contact: ContactId,
        email: &str,
    ) -> Result<ContactId, StoreError> {
        let email = email.trim().to_lowercase();
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        let owner = q
            .fetch_optional(
                Query::new(
                    "SELECT contact_id, verified_at FROM contact_identities
                     WHERE channel = 'email' AND external_id = $1",
                )
                .bind(email.as_str()),
            )
            .await?;
        let (owner, verified) = match &owner {
            Some(row) => (
                Some(ContactId(row.get("contact_id")?)),
                opt_micros(row, "verified_at")?.is_some(),
            ),
            None => (None, false),
        };
        let mut events = Vec::new();
        let survivor = match owner {
            // Nobody has the address: it becomes this contact's, verified.
            None => {
                q.execute(
                    Query::new(
                        "INSERT INTO contact_identities (contact_id, channel, external_id,
                             created_at, verified_at)
                         VALUES ($1, 'email', $2, $3, $3)",
                    )
                    .bind(contact.0)
                    .bind(email.as_str())
                    .bind(now.as_micros()),
                )
                .await?;
                contact
            }
            Some(owner) if owner == contact => {
                mark_verified(&mut q, &email, now).await?;
                contact
            }
            // Someone else wrote from this address but never proved it theirs: the
            // address is this customer's now, and nothing else of that contact moves.
            Some(_) if !verified => {
                q.execute(
                    Query::new(
                        "UPDATE contact_identities SET contact_id = $1, verified_at = $3
                         WHERE channel = 'email' AND external_id = $2",
                    )
                    .bind(contact.0)
                    .bind(email.as_str())
                    .bind(now.as_micros()),
                )
                .await?;
                contact
            }
            // Another contact proved it theirs before: the same person, on two
            // channels. The older contact keeps its id.
            Some(owner) => {
                let (keep, gone) = older_first(owner, contact);
                merge_into(&mut q, keep, gone).await?;
                mark_verified(&mut q, &email, now).await?;
                events = self
                    .record(
                        &mut q,
                        EventKind::ContactsMerged,
                        None,
                        None,
                        serde_json::json!({ "kept": keep, "merged": gone, "by": "verified_email" }),
                        now,
                    )
                    .await?;
                keep
            }
        };
        tx.commit().await?;
        self.publish(events);
        Ok(survivor)
    }

    pub(crate) async fn merge(
        &self,
        a: ContactId,
        b: ContactId,
        actor: &str,
    ) -> Result<ContactId, StoreError> {
        if a == b {
            return Err(StoreError::Invalid(
                "a contact cannot be merged with itself".into(),
            ));
        }
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut q = tx.q();
        for id in [a, b] {
            let found = q
                .fetch_optional(Query::new("SELECT id FROM contacts WHERE id = $1").bind(id.0))
                .await?;
            if found.is_none() {
                return Err(StoreError::NotFound("contact", id.0));
            }
        }
        let (keep, gone) = older_first(a, b);
        merge_into(&mut q, keep, gone).await?;
        let detail = serde_json::json!({ "kept": keep, "merged": gone, "by": actor });
        crate::sql_store::audit(
            &mut q,
            actor,
            "merge_contacts",
            &format!("contact {keep}"),
            detail.clone(),
            now,
        )
        .await?;
        let events = self
            .record(&mut q, EventKind::ContactsMerged, None, None, detail, now)
            .await?;
        tx.commit().await?;
        self.publish(events);
        Ok(keep)
    }

    pub(crate) async fn facts(
        &self,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ConversationFacts>, StoreError> {
        let rows = self
            .conn()
            .await?
            .q()
            .fetch_all(
                Query::new(
                    "SELECT c.id, c.channel, c.account, c.team, c.assignee_id, c.priority,
                            c.status, c.created_at, c.queued_at, c.first_response_at,
                            c.resolved_at, c.reopened, c.first_response_breached,
                            c.resolution_breached, s.rating, s.agent_id AS rated_agent,
                            c.intent
                     FROM conversations c LEFT JOIN csat s ON s.conversation_id = c.id
                     WHERE c.created_at >= $1 AND c.created_at < $2
                     ORDER BY c.id",
                )
                .bind(since.as_micros())
                .bind(until.as_micros()),
            )
            .await?;
        rows.iter().map(facts_from_row).collect()
    }
}

/// The older contact keeps its id.
fn older_first(a: ContactId, b: ContactId) -> (ContactId, ContactId) {
    if a.0 < b.0 { (a, b) } else { (b, a) }
}

/// Moves everything of `gone` to `keep` (identities, conversations; a name or
/// language `keep` lacks) and deletes `gone`.
async fn merge_into(q: &mut Exec<'_>, keep: ContactId, gone: ContactId) -> Result<(), StoreError> {
    for sql in [
        "UPDATE contact_identities SET contact_id = $1 WHERE contact_id = $2",
        "UPDATE conversations SET contact_id = $1 WHERE contact_id = $2",
        "UPDATE contacts SET
             name = COALESCE((SELECT name FROM contacts WHERE id = $1),
                             (SELECT name FROM contacts WHERE id = $2)),
             language = COALESCE((SELECT language FROM contacts WHERE id = $1),
                                 (SELECT language FROM contacts WHERE id = $2))
         WHERE id = $1",
    ] {
        q.execute(Query::new(sql).bind(keep.0).bind(gone.0)).await?;
    }
    q.execute(Query::new("DELETE FROM contacts WHERE id = $1").bind(gone.0))
        .await?;
    Ok(())
}

async fn mark_verified(q: &mut Exec<'_>, email: &str, now: Timestamp) -> Result<(), StoreError> {
    q.execute(
        Query::new(
            "UPDATE contact_identities SET verified_at = COALESCE(verified_at, $2)
             WHERE channel = 'email' AND external_id = $1",
        )
        .bind(email)
        .bind(now.as_micros()),
    )
    .await?;
    Ok(())
}

macro_rules! verification_select {
    () => {
        "SELECT id, conversation_id, agent_id, state, email, code_hash, tries, expires_at,
                created_at
         FROM verifications"
    };
}
use verification_select;

async fn load_verification(q: &mut Exec<'_>, id: i64) -> Result<Verification, StoreError> {
    let row = q
        .fetch_optional(Query::new(concat!(verification_select!(), " WHERE id = $1")).bind(id))
        .await?
        .ok_or(StoreError::NotFound("verification", id))?;
    verification_from_row(&row)
}

fn verification_from_row(row: &Row) -> Result<Verification, StoreError> {
    let state: String = row.get("state")?;
    Ok(Verification {
        id: row.get("id")?,
        conversation_id: ConversationId(row.get("conversation_id")?),
        agent_id: row.get::<Option<i64>>("agent_id")?.map(AgentId),
        state: VerificationState::parse(&state).ok_or_else(|| StoreError::Corrupt {
            column: "verifications.state",
            reason: format!("unknown state {state:?}"),
        })?,
        email: row.get("email")?,
        code_hash: row.get("code_hash")?,
        tries: u32::try_from(row.get::<i64>("tries")?).unwrap_or(u32::MAX),
        expires_at: opt_micros(row, "expires_at")?,
        created_at: micros(row, "created_at")?,
    })
}

fn facts_from_row(row: &Row) -> Result<ConversationFacts, StoreError> {
    let status: String = row.get("status")?;
    let priority: String = row.get("priority")?;
    let channel: ChannelKind = account_of(row)?.kind();
    Ok(ConversationFacts {
        id: ConversationId(row.get("id")?),
        channel,
        team: row.get("team")?,
        assignee: row.get::<Option<i64>>("assignee_id")?.map(AgentId),
        priority: word("conversations.priority", Priority::parse(&priority))?,
        status: word("conversations.status", Status::parse(&status))?,
        created_at: micros(row, "created_at")?,
        queued_at: opt_micros(row, "queued_at")?,
        first_response_at: opt_micros(row, "first_response_at")?,
        resolved_at: opt_micros(row, "resolved_at")?,
        reopened: u32::try_from(row.get::<i64>("reopened")?).unwrap_or(u32::MAX),
        first_response_breached: row.get::<i64>("first_response_breached")? != 0,
        resolution_breached: row.get::<i64>("resolution_breached")? != 0,
        rating: row
            .get::<Option<i64>>("rating")?
            .and_then(|v| u8::try_from(v).ok()),
        rated_agent: row.get::<Option<i64>>("rated_agent")?.map(AgentId),
        intent: row.get("intent")?,
    })
}
