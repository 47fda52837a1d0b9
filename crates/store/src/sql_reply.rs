//! Writing replies and the bot's answers: the statements, and reading back what they
//! return.
//!
//! Every statement is a round trip (on SQLite, to the connection's thread, while the
//! one writer waits), so a reply goes in as few batches as its facts allow. Its
//! statements after the message's INSERT name the message with a [`MessageRef`]: by id
//! when the INSERT ran on its own (an agent's reply), or as the message just inserted
//! when the INSERT opens the same batch (the bot's answer, whose conversation is known
//! to exist). A batch's rows come back in statement order, one per `RETURNING`, and are
//! read back in that order.

use crate::db::{Exec, MessageRef, Query, Row};
use crate::events::NewEvent;
use crate::sql_store::{account_of, message_from_row, note_intent, to_json, touch_conversation};
use crate::sql_store::{change_conversation, changed_event, load_message};
use crate::{Answer, ConversationChange, NewReply, Replied, SqlStore, Store, StoreError};
use frontdesk_core::{
    Author, ChannelAccount, ChannelKind, ConversationId, Delivery, Event, EventKind, Message,
    MessageId, MessageKind, OutboxId, Timestamp,
};
use std::slice;

/// What a reply or an answer wrote, to hand on after the commit.
#[derive(Default)]
pub(crate) struct Written {
    pub(crate) events: Vec<Event>,
    /// A reply waits in the outbox for the delivery worker.
    pub(crate) queued: bool,
}

/// The rows of a batch, read in statement order.
pub(crate) type Rows<'a> = slice::Iter<'a, Row>;

/// The next row of a batch: the one the statement whose turn it is returned.
pub(crate) fn next_row<'a>(rows: &mut Rows<'a>) -> Result<&'a Row, StoreError> {
    rows.next()
        .ok_or(StoreError::Internal("a batch returned too few rows"))
}

/// What a reply's statements return, in order: the outbox row's id when it goes to the
/// customer, the MessageCreated event's id, and the DeliverySent event's id when the
/// website chat delivers it here.
struct ReplyRows {
    conversation: ConversationId,
    to_customer: bool,
    delivered_here: bool,
    queued: bool,
    created: NewEvent,
    now: Timestamp,
}

/// What an answer's statements return, in order: the ConversationUpdated event's id
/// when it changes the conversation, then each reply's message row and [`ReplyRows`].
pub(crate) struct AnswerRows {
    changed: Option<NewEvent>,
    replies: Vec<ReplyRows>,
}

impl SqlStore {
    /// Checks a reply and builds its INSERT: everything worked out before the
    /// transaction, so that it holds the writer only for the statements. The INSERT
    /// returns the message's row.
    pub(crate) fn reply_insert(
        &self,
        reply: &NewReply,
        now: Timestamp,
    ) -> Result<Query, StoreError> {
        if reply.author == Author::Contact {
            return Err(StoreError::Invalid(
                "a reply cannot be authored by the contact".into(),
            ));
        }
        if reply.text.trim().is_empty() && reply.attachments.is_empty() {
            return Err(StoreError::Invalid(
                "a reply needs text or an attachment".into(),
            ));
        }
        // The outbound check: nothing that asks a customer for a secret reaches the
        // outbox. Notes stay among agents and are not checked.
        if reply.kind == MessageKind::Text {
            self.outbound_check()
                .check(&reply.text)
                .map_err(StoreError::Refused)?;
        }
        Ok(Query::new(
            "INSERT INTO messages (conversation_id, channel, account, direction, author,
                 agent_id, kind, text, attachments, idempotency_key, created_at, meta,
                 search_text)
             SELECT c.id, c.channel, c.account, 'out', $2, $3, $4, $5, $6, $7, $8, $9, $10
             FROM conversations c WHERE c.id = $1
             RETURNING id, conversation_id, direction, author, agent_id, kind, text,
                 attachments, findings, entities, external_id, created_at, edited_at, meta,
                 channel, account, CAST(NULL AS TEXT) AS delivery_status,
                 CAST(NULL AS TEXT) AS delivery_error",
        )
        .bind(reply.conversation_id.0)
        .bind(reply.author.as_str())
        .bind(reply.agent_id.map(|a| a.0))
        .bind(reply.kind.as_str())
        .bind(reply.text.as_str())
        .bind(to_json(&reply.attachments))
        .bind(reply.idempotency_key.as_deref())
        .bind(now.as_micros())
        .bind(match reply.quick_replies.is_empty() {
            true => "null".to_owned(),
            false => to_json(&serde_json::json!({ "quick_replies": reply.quick_replies })),
        })
        .bind(match reply.kind {
            MessageKind::Event => String::new(),
            _ => crate::search::terms(&reply.text),
        }))
    }

    /// Writes a reply checked by [`Self::reply_insert`] in `q`'s transaction: the
    /// message (its INSERT reads the conversation's channel), then one batch of its
    /// outbox row, events and what it changes on the conversation.
    pub(crate) async fn write_reply(
        &self,
        q: &mut Exec<'_>,
        reply: &NewReply,
        insert: Query,
        now: Timestamp,
    ) -> Result<(Replied, Written), StoreError> {
        let conversation = reply.conversation_id;
        if let Some(key) = &reply.idempotency_key {
            let earlier = q
                .fetch_optional(
                    Query::new(
                        "SELECT id FROM messages WHERE conversation_id = $1 AND idempotency_key = $2",
                    )
                    .bind(conversation.0)
                    .bind(key.as_str()),
                )
                .await?;
            if let Some(row) = earlier {
                let message = load_message(q, MessageId(row.get("id")?)).await?;
                let replied = Replied {
                    message,
                    created: false,
                };
                return Ok((replied, Written::default()));
            }
        }
        let row = q
            .fetch_optional(insert)
            .await?
            .ok_or(StoreError::NotFound("conversation", conversation.0))?;
        let mut message = message_from_row(&row)?;
        let account = account_of(&row)?;
        // An agent may answer a message whose turn is noted.
        let (mut statements, tail) =
            self.reply_tail(reply, &account, MessageRef::Id(message.id), true, now);
        if tail.queued {
            statements.extend(self.outbox_notice());
        }
        let rows = q.batch(statements).await?;
        let written = tail.read(&mut message, &mut rows.iter())?;
        let replied = Replied {
            message,
            created: true,
        };
        Ok((replied, written))
    }

    /// The statements that follow a reply's INSERT, and how to read their rows: the
    /// outbox row first, then the events, then the rest, which returns nothing. The
    /// caller wakes other instances' delivery workers when it is queued, with the
    /// [`SqlStore::outbox_notice`] last in its batch: that returns a row. `turn_noted`: the message it
    /// answers may have a turn noted, which the reply takes.
    fn reply_tail(
        &self,
        reply: &NewReply,
        account: &ChannelAccount,
        message: MessageRef,
        turn_noted: bool,
        now: Timestamp,
    ) -> (Vec<Query>, ReplyRows) {
        let conversation = reply.conversation_id;
        let to_customer = reply.kind == MessageKind::Text;
        // The website chat's visitor reads replies from here: stored is delivered, with
        // no trip through the delivery worker (a claim and a Sent record saved).
        let delivered_here = to_customer && account.kind() == ChannelKind::Webchat;
        let queued = to_customer && !delivered_here;
        let mut statements = Vec::new();
        if to_customer {
            statements.push(
                Query::assembled(format!(
                    "INSERT INTO outbox (message_id, conversation_id, channel, account,
                         status, due_at, created_at, updated_at, sent_at, external_id)
                     SELECT m.id, $2, $3, $4, $5, $6, $6, $6, $7,
                         CASE WHEN $7 IS NULL THEN NULL ELSE CAST(m.id AS TEXT) END
                     FROM messages m WHERE m.id = {}
                     RETURNING id",
                    message.sql("$1")
                ))
                .bind(message.value())
                .bind(conversation.0)
                .bind(account.kind().as_str())
                .bind(account.name())
                .bind(if delivered_here { "sent" } else { "queued" })
                .bind(now.as_micros())
                .bind(delivered_here.then_some(now.as_micros())),
            );
        }
        let created = NewEvent::new(
            EventKind::MessageCreated,
            Some(conversation),
            None,
            serde_json::json!({
                "direction": "out",
                "author": reply.author,
                "mentions": reply.mentions,
            }),
            now,
        );
        statements.push(created.insert_about(message));
        if delivered_here {
            // Its data names the outbox row written above.
            statements.push(
                Query::assembled(format!(
                    "INSERT INTO events (kind, conversation_id, message_id, data, created_at)
                     SELECT $1, $2, message_id,
                         '{{\"outbox_id\":' || CAST(id AS TEXT) || '}}', $4
                     FROM outbox WHERE message_id = {}
                     RETURNING id",
                    message.sql("$3")
                ))
                .bind(EventKind::DeliverySent.as_str())
                .bind(conversation.0)
                .bind(message.value())
                .bind(now.as_micros()),
            );
        }
        for agent in &reply.mentions {
            statements.push(
                Query::assembled(format!(
                    "INSERT INTO mentions (message_id, conversation_id, agent_id, created_at)
                     VALUES ({}, $2, $3, $4) ON CONFLICT (message_id, agent_id) DO NOTHING",
                    message.sql("$1")
                ))
                .bind(message.value())
                .bind(conversation.0)
                .bind(agent.0)
                .bind(now.as_micros()),
            );
        }
        if to_customer {
            statements.push(touch_conversation(conversation, now));
            if reply.author == Author::Agent {
                // The first response, for the SLA and the reports.
                statements.push(
                    Query::new(
                        "UPDATE conversations SET first_response_at = $2
                         WHERE id = $1 AND first_response_at IS NULL",
                    )
                    .bind(conversation.0)
                    .bind(now.as_micros()),
                );
            }
        }
        if let Some(intent) = &reply.intent {
            statements.push(note_intent(conversation, intent));
        }
        if let (Some(answered), true) = (reply.answers, turn_noted) {
            statements.push(
                Query::new("DELETE FROM engine_turns WHERE message_id = $1").bind(answered.0),
            );
        }
        let rows = ReplyRows {
            conversation,
            to_customer,
            delivered_here,
            queued,
            created,
            now,
        };
        (statements, rows)
    }

    /// The INSERTs of an answer's replies, checked before its transaction.
    pub(crate) fn answer_inserts(
        &self,
        answer: &Answer,
        now: Timestamp,
    ) -> Result<Vec<Query>, StoreError> {
        answer
            .replies
            .iter()
            .map(|reply| self.reply_insert(reply, now))
            .collect()
    }

    /// The bot's answer in conversation `id` on `account` as one batch, and how to read
    /// its rows: what it changes on the conversation, then each reply, its INSERT first. The
    /// conversation must exist in the transaction the batch runs in. `turn_noted`: as
    /// for [`Self::reply_tail`].
    pub(crate) fn answer_batch(
        &self,
        id: ConversationId,
        account: &ChannelAccount,
        answer: &Answer,
        inserts: Vec<Query>,
        turn_noted: bool,
        now: Timestamp,
    ) -> (Vec<Query>, AnswerRows) {
        let (mut statements, mut changed) = (Vec::new(), None);
        if answer.language.is_some() || answer.bot_misses.is_some() {
            let change = ConversationChange {
                language: answer.language.clone(),
                bot_misses: answer.bot_misses,
                ..ConversationChange::default()
            };
            let event = changed_event(id, &change, now);
            statements.push(event.insert());
            statements.push(change_conversation(id, &change, None, now));
            changed = Some(event);
        }
        if let Some(intent) = &answer.intent {
            statements.push(note_intent(id, intent));
        }
        let inserted = MessageRef::Inserted(self.backend());
        let mut replies = Vec::new();
        for (reply, insert) in answer.replies.iter().zip(inserts) {
            statements.push(insert);
            let (tail, rows) = self.reply_tail(reply, account, inserted, turn_noted, now);
            statements.extend(tail);
            replies.push(rows);
        }
        if replies.iter().any(|reply| reply.queued) {
            statements.extend(self.outbox_notice());
        }
        (statements, AnswerRows { changed, replies })
    }
}

impl AnswerRows {
    /// A reply goes to the customer, and so touches the conversation.
    pub(crate) fn touches(&self) -> bool {
        self.replies.iter().any(|reply| reply.to_customer)
    }

    /// Reads the answer's rows, which follow on from wherever `rows` stands.
    pub(crate) fn read(self, rows: &mut Rows<'_>) -> Result<Written, StoreError> {
        let mut written = Written::default();
        if let Some(event) = self.changed {
            written.events.push(event.stored(next_row(rows)?)?);
        }
        for reply in self.replies {
            // Each reply's INSERT returned its message's row.
            let mut message = message_from_row(next_row(rows)?)?;
            if message.conversation_id != reply.conversation {
                return Err(StoreError::Internal("an answer's rows are out of step"));
            }
            let tail = reply.read(&mut message, rows)?;
            written.events.extend(tail.events);
            written.queued |= tail.queued;
        }
        Ok(written)
    }
}

impl ReplyRows {
    /// Reads what [`SqlStore::reply_tail`]'s statements returned for `message`, and
    /// notes its delivery on it.
    fn read(self, message: &mut Message, rows: &mut Rows<'_>) -> Result<Written, StoreError> {
        let outbox_id = match self.to_customer {
            true => Some(OutboxId(next_row(rows)?.get("id")?)),
            false => None,
        };
        if self.to_customer {
            message.delivery = Some(match self.delivered_here {
                true => Delivery::Sent,
                false => Delivery::Queued,
            });
        }
        let mut events = vec![self.created.stored_about(message.id, next_row(rows)?)?];
        if self.delivered_here {
            let sent = NewEvent::new(
                EventKind::DeliverySent,
                Some(self.conversation),
                Some(message.id),
                serde_json::json!({ "outbox_id": outbox_id }),
                self.now,
            );
            events.push(sent.stored(next_row(rows)?)?);
        }
        Ok(Written {
            events,
            queued: self.queued,
        })
    }
}
