//! One story, told on every backend: what the store promises, checked the way the rest
//! of Frontdesk relies on it. Each test runs on SQLite (a temporary file) and, when
//! `FRONTDESK_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL database.

use crate::testing::TestDatabase;
use crate::{
    Answer, AssigneeFilter, Backend, ClaimRequest, ConversationChange, ConversationQuery,
    LeaseReport, NewReply, Responder, SqlStore, Store, TurnFacts,
};
use frontdesk_core::{
    Author, ChannelAccount, ChannelKind, Delivery, Direction, EventKind, Inbound, IngestOutcome,
    MessageKind, Sender, Status, Timestamp,
};
use std::collections::HashSet;
use std::time::Duration;

fn telegram() -> ChannelAccount {
    ChannelAccount::default_of(ChannelKind::Telegram)
}

fn inbound(external_id: &str, from: &str, text: &str) -> Inbound {
    let sender = Sender {
        external_id: from.into(),
        display_name: Some(format!("Customer {from}")),
        language: Some("zh".into()),
    };
    Inbound::new(
        telegram(),
        external_id,
        sender,
        format!("chat-{from}"),
        text,
    )
    .unwrap()
}

fn stored(outcome: IngestOutcome) -> (frontdesk_core::ConversationId, frontdesk_core::MessageId) {
    match outcome {
        IngestOutcome::Stored {
            conversation_id,
            message_id,
            ..
        } => (conversation_id, message_id),
        IngestOutcome::Duplicate => panic!("expected the message to be stored"),
    }
}

/// How many messages a conversation holds.
async fn message_count(store: &SqlStore, id: frontdesk_core::ConversationId) -> usize {
    store.messages(id, None, 0).await.unwrap().len()
}

/// The kinds of the events received so far, in order.
fn received_kinds(
    events: &mut tokio::sync::broadcast::Receiver<frontdesk_core::Event>,
) -> Vec<EventKind> {
    std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.kind)
        .collect()
}

fn bot_reply(conversation_id: frontdesk_core::ConversationId, text: &str) -> NewReply {
    NewReply::from_bot(conversation_id, text)
}

fn claim(worker: &str, now: Timestamp) -> ClaimRequest {
    ClaimRequest {
        account: telegram(),
        worker: worker.into(),
        now,
        lease: Duration::from_secs(30),
        limit: 10,
    }
}

/// Runs each listed story on SQLite and on PostgreSQL.
macro_rules! on_every_backend {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let db = super::TestDatabase::sqlite();
                    super::$story(db.store().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let Some(db) = super::TestDatabase::postgres().await else { return };
                    super::$story(db.store().await).await;
                }
            )*
        }
    };
}

async fn labels_mentions_canned_responses_and_files_are_kept(store: SqlStore) {
    let (id, _) = stored(
        store
            .ingest(&inbound("1", "5", "my transfer is stuck"), None)
            .await
            .unwrap(),
    );
    let amy = store
        .add_agent(crate::NewAgent {
            email: "amy@example.com".into(),
            name: "Amy".into(),
            role: frontdesk_core::Role::Agent,
            password_hash: "x".into(),
        })
        .await
        .unwrap();
    // Labels: trimmed, sorted, without repeats; found by label; bad ones refused.
    let labels = |l: &[&str]| ConversationChange {
        labels: Some(l.iter().map(|s| s.to_string()).collect()),
        ..ConversationChange::default()
    };
    let c = store
        .update_conversation(id, &labels(&[" VIP ", "退款", "vip"]))
        .await
        .unwrap();
    assert_eq!(c.labels, ["vip", "退款"]);
    let by_label = |label: &str| ConversationQuery {
        label: Some(label.into()),
        ..ConversationQuery::default()
    };
    assert_eq!(
        store
            .list_conversations(&by_label("退款"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        store
            .list_conversations(&by_label("Vip"))
            .await
            .unwrap()
            .items
            .len(),
        1,
        "any case"
    );
    assert!(
        store
            .list_conversations(&by_label("vi"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        store.update_conversation(id, &labels(&["a\"b"])).await,
        Err(crate::StoreError::Invalid(_))
    ));
    // A note that names Amy shows under her mentions until she opens it.
    let note = NewReply {
        mentions: vec![amy.id],
        ..NewReply::from_agent(id, amy.id, "@amy please look", true)
    };
    store.reply(note).await.unwrap();
    let mentioning = ConversationQuery {
        mentioning: Some(amy.id),
        ..ConversationQuery::default()
    };
    assert_eq!(
        store
            .list_conversations(&mentioning)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(store.mark_mentions_seen(amy.id, id).await.unwrap(), 1);
    assert!(
        store
            .list_conversations(&mentioning)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Canned responses: one per shortcut, the second save replaces the text.
    store
        .save_canned("/refund", "Refund", "We refund within 3 days.", amy.id)
        .await
        .unwrap();
    store
        .save_canned("refund", "Refund", "Within 5 days.", amy.id)
        .await
        .unwrap();
    let canned = store.canned_responses().await.unwrap();
    assert_eq!(canned.len(), 1);
    assert_eq!(
        (canned[0].shortcut.as_str(), canned[0].text.as_str()),
        ("refund", "Within 5 days.")
    );
    assert!(
        store
            .save_canned("no spaces", "t", "x", amy.id)
            .await
            .is_err()
    );
    store.delete_canned(canned[0].id).await.unwrap();
    assert!(store.canned_responses().await.unwrap().is_empty());
    // Files keep their bytes exactly.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let file = store
        .save_file(id, "receipt.pdf", "application/pdf", "abc", bytes.clone())
        .await
        .unwrap();
    let (meta, back) = store.file(file.id).await.unwrap().unwrap();
    assert_eq!((meta.size, meta.name.as_str()), (70_000, "receipt.pdf"));
    assert_eq!(back, bytes);
    // Five failed logins lock the email, on every instance, until a success clears it.
    let lockout = Duration::from_secs(900);
    for _ in 0..4 {
        assert!(
            store
                .login_failed("amy@example.com", 5, lockout)
                .await
                .unwrap()
                .is_none()
        );
    }
    assert!(
        store
            .login_failed("amy@example.com", 5, lockout)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .login_locked_until("amy@example.com")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .login_locked_until("bob@example.com")
            .await
            .unwrap()
            .is_none()
    );
    store.login_succeeded("amy@example.com").await.unwrap();
    assert!(
        store
            .login_locked_until("amy@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // The interface language.
    store.set_agent_locale(amy.id, "zh").await.unwrap();
    assert!(store.set_agent_locale(amy.id, "fr").await.is_err());
    // Erasing the contact takes the files with it.
    let contact = store.conversation(id).await.unwrap().unwrap().contact_id;
    store
        .delete_contact(contact, "admin@example.com")
        .await
        .unwrap();
    assert!(store.file(file.id).await.unwrap().is_none());
}

/// Enough conversations with a common word that search takes its other path: the
/// newest 2,000 by id, plus older ones active again. Seeded in SQL (the triggers and
/// `write_search_terms` index them as they would any row).
async fn a_common_word_finds_the_newest_activity_first_even_in_an_old_conversation(
    store: SqlStore,
) {
    let n = 2_600;
    let numbers =
        format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})");
    for insert in [
        "INSERT INTO contacts (id, name, created_at, updated_at)
             SELECT i, 'c' || i, i, i FROM n",
        "INSERT INTO conversations (id, channel, account, contact_id, thread_key, status,
                 priority, created_at, updated_at, last_message_at)
             SELECT i, 'telegram', 'default', i, 't' || i, 'open', 'normal', i, i,
                    CASE WHEN i = 7 THEN 999999999 ELSE i * 1000 END
             FROM n",
        "INSERT INTO messages (conversation_id, channel, account, direction, author, kind,
                 text, created_at)
             SELECT i, 'telegram', 'default', 'in', 'contact', 'text',
                    CASE WHEN i % 10 = 3 THEN 'hello' ELSE '转账没到' END, i
             FROM n",
    ] {
        store
            .execute_raw(&format!("{numbers} {insert}"))
            .await
            .unwrap();
    }
    store.write_search_terms().await.unwrap();
    let page = store
        .list_conversations(&ConversationQuery {
            text: Some("转账".into()),
            limit: 50,
            ..ConversationQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<i64> = page.items.iter().map(|c| c.id.0).collect();
    assert_eq!(ids[0], 7, "the old conversation with the newest activity");
    let expected: Vec<i64> = (1..=n)
        .rev()
        .filter(|i| i % 10 != 3 && *i != 7)
        .take(50)
        .collect();
    assert_eq!(&ids[1..], &expected[..49]);
    // The next page goes on without a gap.
    let next = store
        .list_conversations(&ConversationQuery {
            text: Some("转账".into()),
            limit: 50,
            after: page.next,
            ..ConversationQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(next.items[0].id.0, expected[49]);
}

on_every_backend!(
    a_common_word_finds_the_newest_activity_first_even_in_an_old_conversation,
    labels_mentions_canned_responses_and_files_are_kept,
    a_customer_message_becomes_a_conversation_and_the_reply_leaves_once,
    the_same_inbound_twice_is_stored_once,
    a_failed_ingest_keeps_neither_the_message_nor_the_cursor,
    a_row_whose_worker_died_is_delivered_after_the_lease_expires,
    a_retry_waits_until_its_due_time,
    a_conversations_replies_leave_in_order_one_at_a_time,
    conversations_are_found_by_their_words_priority_and_team,
    an_edit_keeps_the_original_text_in_the_history,
    a_repeated_idempotency_key_sends_one_reply,
    conversations_page_by_recent_activity_without_gaps_or_repeats,
    a_permanent_failure_is_shown_on_the_message_and_as_an_event,
    a_customer_who_blocked_us_is_unreachable_until_they_write_again,
    a_thread_is_found_by_a_message_it_holds_or_by_its_number,
    retention_erases_old_message_bodies_and_keeps_recent_ones,
    a_contact_is_exported_whole_and_then_erased_leaving_only_counts,
    a_question_is_stored_with_the_answer_its_facts_allow,
);

async fn retention_erases_old_message_bodies_and_keeps_recent_ones(store: SqlStore) {
    let (conversation_id, _) = stored(
        store
            .ingest(
                &inbound("old", "5", "my old address is Beijing Road 1"),
                None,
            )
            .await
            .unwrap(),
    );
    let mut edit = inbound("old:edit", "5", "my old address is Beijing Road 2");
    edit.edit_of = Some("old".into());
    store.ingest(&edit, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .ingest(&inbound("new", "5", "and a new question"), None)
        .await
        .unwrap();
    // Another channel's old messages are not this policy's business.
    let email = Inbound::new(
        ChannelAccount::default_of(ChannelKind::Email),
        "<m1@example.com>",
        Sender {
            external_id: "li@example.com".into(),
            display_name: None,
            language: None,
        },
        "<m1@example.com>",
        "an old email",
    )
    .unwrap();
    store.ingest(&email, None).await.unwrap();

    let erased = store
        .apply_retention(Some(ChannelKind::Telegram), cutoff, true, "retention")
        .await
        .unwrap();
    assert_eq!(erased, 1);
    let messages = store.messages(conversation_id, None, 0).await.unwrap();
    assert_eq!(messages[0].text, crate::ERASED);
    assert!(messages[0].edits.is_empty(), "earlier versions go too");
    assert_eq!(messages[1].text, "and a new question");
    let all = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap();
    let email_conversation = all
        .items
        .iter()
        .find(|c| c.account.kind() == ChannelKind::Email)
        .unwrap();
    assert_eq!(
        store
            .messages(email_conversation.id, None, 0)
            .await
            .unwrap()[0]
            .text,
        "an old email"
    );
    // Running it again changes nothing and says so.
    assert_eq!(
        store
            .apply_retention(Some(ChannelKind::Telegram), cutoff, true, "retention")
            .await
            .unwrap(),
        0
    );
    let log = store.audit_log(10).await.unwrap();
    assert_eq!(log[1].action, "retention");
    assert_eq!(log[1].detail["messages"], 1);
}

async fn a_contact_is_exported_whole_and_then_erased_leaving_only_counts(store: SqlStore) {
    let (conversation_id, _) = stored(
        store
            .ingest(&inbound("1", "42", "我叫李伟，邮箱 li@example.com"), None)
            .await
            .unwrap(),
    );
    store
        .reply(bot_reply(conversation_id, "收到"))
        .await
        .unwrap();
    let contact_id = store
        .conversation(conversation_id)
        .await
        .unwrap()
        .unwrap()
        .contact_id;

    let export = store
        .export_contact(contact_id, "admin@example.com")
        .await
        .unwrap();
    assert_eq!(export["contact"]["identities"][0]["external_id"], "42");
    let texts: Vec<&str> = export["conversations"][0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["我叫李伟，邮箱 li@example.com", "收到"]);

    let erasure = store
        .delete_contact(contact_id, "admin@example.com")
        .await
        .unwrap();
    assert_eq!(
        (
            erasure.messages_erased,
            erasure.identities_removed,
            erasure.conversations_kept
        ),
        (2, 1, 1)
    );
    let contact = store.contact(contact_id).await.unwrap().unwrap();
    assert!(contact.identities.is_empty() && contact.name.is_none());
    let conversation = store.conversation(conversation_id).await.unwrap().unwrap();
    assert_eq!(conversation.status, Status::Resolved);
    assert!(!conversation.thread_key.contains("42"));
    assert!(
        store
            .messages(conversation_id, None, 0)
            .await
            .unwrap()
            .iter()
            .all(|m| m.text == crate::ERASED)
    );
    assert_eq!(
        store.outbox_depth().await.unwrap(),
        0,
        "nothing more is sent to them"
    );
    // The same person writing again is a stranger with a new conversation.
    let (again, _) = stored(
        store
            .ingest(&inbound("2", "42", "hello again"), None)
            .await
            .unwrap(),
    );
    assert_ne!(again, conversation_id);
    let actions: Vec<String> = store
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["contact_delete", "contact_export"]);
}

async fn a_customer_message_becomes_a_conversation_and_the_reply_leaves_once(store: SqlStore) {
    let mut events = store.subscribe();
    let (conversation_id, message_id) = stored(
        store
            .ingest(&inbound("1001", "42", "转账一直pending"), Some("1002"))
            .await
            .unwrap(),
    );

    let conversation = store.conversation(conversation_id).await.unwrap().unwrap();
    assert_eq!(conversation.status, Status::Bot);
    assert_eq!(conversation.account, telegram());
    assert_eq!(conversation.contact_name.as_deref(), Some("Customer 42"));
    let contact = store
        .contact(conversation.contact_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(contact.identities.len(), 1);
    assert_eq!(contact.identities[0].external_id, "42");
    assert_eq!(contact.language.as_deref(), Some("zh"));
    assert_eq!(
        store.cursor(&telegram()).await.unwrap().as_deref(),
        Some("1002")
    );

    // A second message in the same chat joins the same conversation.
    let (again, _) = stored(
        store
            .ingest(&inbound("1002", "42", "还在吗"), Some("1003"))
            .await
            .unwrap(),
    );
    assert_eq!(again, conversation_id);

    let reply = store
        .reply(bot_reply(conversation_id, "请提供交易哈希"))
        .await
        .unwrap();
    assert!(reply.created);
    assert_eq!(reply.message.delivery, Some(Delivery::Queued));
    assert_eq!(store.outbox_depth().await.unwrap(), 1);

    let now = Timestamp::now();
    let claimed = store.claim_outbox(&claim("w1", now)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let out = &claimed[0];
    assert_eq!(out.recipient, "42");
    assert_eq!(
        out.reply_to.as_deref(),
        Some("1002"),
        "answers the latest customer message"
    );
    assert_eq!(out.text, "请提供交易哈希");
    assert_eq!(out.attempt, 1);
    // Leased rows are not handed to anyone else.
    assert!(
        store
            .claim_outbox(&claim("w2", now))
            .await
            .unwrap()
            .is_empty()
    );

    let report = store
        .mark_sent(out.outbox_id, "w1", Some("tg-77"), now)
        .await
        .unwrap();
    assert_eq!(report, LeaseReport::Recorded);
    assert_eq!(store.outbox_depth().await.unwrap(), 0);
    let later = now.plus(Duration::from_secs(3600));
    assert!(
        store
            .claim_outbox(&claim("w2", later))
            .await
            .unwrap()
            .is_empty(),
        "sent once"
    );

    let messages = store.messages(conversation_id, None, 0).await.unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0].id, message_id);
    assert_eq!(messages[0].direction, Direction::In);
    assert_eq!(messages[0].text, "转账一直pending");
    assert_eq!(messages[2].author, Author::Bot);
    assert_eq!(messages[2].delivery, Some(Delivery::Sent));
    assert_eq!(messages[2].external_id.as_deref(), Some("tg-77"));

    assert_eq!(
        received_kinds(&mut events),
        [
            EventKind::ConversationCreated,
            EventKind::MessageCreated,
            EventKind::MessageCreated,
            EventKind::MessageCreated,
            EventKind::DeliverySent,
        ]
    );
}

/// Answers every message it is asked about (unless told to decline, or to answer
/// into a conversation that does not exist), and keeps the facts it was given: the
/// conversation's status, the customer's message before.
#[derive(Debug, Default)]
struct Recording {
    seen: std::sync::Mutex<Vec<(Status, Option<String>, bool)>>,
    behaviour: std::sync::Mutex<Behaviour>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Behaviour {
    decline: bool,
    broken: bool,
    /// A second reply follows the answer.
    follow_up: bool,
}

impl Recording {
    fn behave(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }
}

/// Stores `inbound` with `responder` asked for the answer.
async fn answering(
    store: &SqlStore,
    responder: &std::sync::Arc<Recording>,
    inbound: &frontdesk_core::Inbound,
) -> crate::Ingested {
    store
        .ingest_answering(inbound, None, responder.clone())
        .await
        .unwrap()
}

impl Responder for Recording {
    fn answer(&self, facts: &TurnFacts<'_>) -> Option<Answer> {
        let seen = (
            facts.conversation.status,
            facts.previous_text.map(str::to_owned),
            facts.verifying,
        );
        self.seen.lock().unwrap().push(seen);
        let behaviour = *self.behaviour.lock().unwrap();
        if behaviour.decline {
            return None;
        }
        let into = match behaviour.broken {
            true => frontdesk_core::ConversationId(i64::MAX),
            false => facts.conversation.id,
        };
        let mut replies = vec![NewReply {
            answers: Some(facts.message),
            ..bot_reply(into, "注册请点击首页的“创建钱包”")
        }];
        if behaviour.follow_up {
            replies.push(bot_reply(into, "还有其他问题吗？"));
        }
        Some(Answer {
            replies,
            intent: Some("register".into()),
            language: Some("zh".into()),
            bot_misses: Some(1),
        })
    }
}

async fn a_question_is_stored_with_the_answer_its_facts_allow(store: SqlStore) {
    let responder = std::sync::Arc::new(Recording::default());
    let mut events = store.subscribe();
    let ingested = answering(&store, &responder, &inbound("2001", "77", "怎么注册账号")).await;
    assert!(ingested.answered);
    let (conversation_id, _) = stored(ingested.outcome);
    let said: Vec<(Author, String)> = store
        .messages(conversation_id, None, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.author, m.text))
        .collect();
    assert_eq!(
        said,
        [
            (Author::Contact, "怎么注册账号".to_owned()),
            (Author::Bot, "注册请点击首页的“创建钱包”".to_owned()),
        ]
    );
    let conversation = store.conversation(conversation_id).await.unwrap().unwrap();
    assert_eq!(conversation.language.as_deref(), Some("zh"));
    assert_eq!(conversation.bot_misses, 1);
    assert_eq!(
        store.outbox_depth().await.unwrap(),
        1,
        "the answer is queued"
    );
    let later = Timestamp::now().plus(Duration::from_secs(3600));
    assert!(
        store.take_turns(later, later, 10).await.unwrap().is_empty(),
        "no turn is left for the engine's timers to take again"
    );
    assert_eq!(
        received_kinds(&mut events),
        [
            EventKind::ConversationCreated,
            EventKind::MessageCreated,
            EventKind::ConversationUpdated,
            EventKind::MessageCreated,
        ]
    );

    // The next message's facts hold the customer's message before it.
    let again = answering(&store, &responder, &inbound("2002", "77", "还在吗")).await;
    assert!(again.answered);
    assert_eq!(
        responder.seen.lock().unwrap().last(),
        Some(&(Status::Bot, Some("怎么注册账号".to_owned()), false))
    );

    // Declined: stored as by a plain ingest, its turn left for the engine.
    responder.behave(Behaviour {
        decline: true,
        ..Behaviour::default()
    });
    let declined = answering(&store, &responder, &inbound("2003", "77", "人工")).await;
    assert!(!declined.answered);
    let (_, message_id) = stored(declined.outcome);
    let turns = store.take_turns(later, later, 10).await.unwrap();
    assert_eq!(
        turns.iter().map(|t| t.message_id).collect::<Vec<_>>(),
        [message_id]
    );

    // A duplicate is not answered again; the responder is not even asked.
    let asked = responder.seen.lock().unwrap().len();
    let duplicate = answering(&store, &responder, &inbound("2003", "77", "人工")).await;
    assert!(matches!(duplicate.outcome, IngestOutcome::Duplicate));
    assert!(!duplicate.answered);
    assert_eq!(responder.seen.lock().unwrap().len(), asked);
    assert_eq!(message_count(&store, conversation_id).await, 5);

    // An answer that cannot be written does not cost the message: it is stored alone,
    // its turn left for the engine.
    responder.behave(Behaviour {
        broken: true,
        ..Behaviour::default()
    });
    let unanswerable = answering(&store, &responder, &inbound("2004", "77", "怎么注册账号")).await;
    assert!(!unanswerable.answered);
    let (_, message_id) = stored(unanswerable.outcome);
    assert_eq!(message_count(&store, conversation_id).await, 6);
    let turns = store.take_turns(later, later, 10).await.unwrap();
    assert!(turns.iter().any(|t| t.message_id == message_id));

    // An answer of two replies: both stored after the question, both queued.
    responder.behave(Behaviour {
        follow_up: true,
        ..Behaviour::default()
    });
    let depth = store.outbox_depth().await.unwrap();
    let twice = answering(&store, &responder, &inbound("2005", "77", "怎么注册账号")).await;
    assert!(twice.answered);
    let said: Vec<String> = store
        .messages(conversation_id, None, 0)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .take(3)
        .map(|m| m.text)
        .collect();
    assert_eq!(
        said,
        [
            "还有其他问题吗？",
            "注册请点击首页的“创建钱包”",
            "怎么注册账号"
        ]
    );
    assert_eq!(store.outbox_depth().await.unwrap(), depth + 2);

    // On the website chat the answer is delivered as it is stored, and its Sent event
    // names its outbox row.
    responder.behave(Behaviour::default());
    let mut visitor = inbound("w-1", "v-1", "怎么注册账号");
    visitor.account = ChannelAccount::default_of(ChannelKind::Webchat);
    let chat = answering(&store, &responder, &visitor).await;
    assert!(chat.answered);
    let (chat_id, _) = stored(chat.outcome);
    let answer = store
        .messages(chat_id, None, 0)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(answer.author, Author::Bot);
    assert_eq!(answer.delivery, Some(Delivery::Sent));
    let sent = store
        .events_after(frontdesk_core::EventId(0), 1000)
        .await
        .unwrap()
        .into_iter()
        .rfind(|e| e.kind == EventKind::DeliverySent)
        .unwrap();
    assert_eq!(sent.message_id, Some(answer.id));
    assert!(
        sent.data["outbox_id"].as_i64().is_some_and(|id| id > 0),
        "{}",
        sent.data
    );
}

async fn the_same_inbound_twice_is_stored_once(store: SqlStore) {
    let first = store
        .ingest(&inbound("500", "7", "hello"), Some("501"))
        .await
        .unwrap();
    let (conversation_id, _) = stored(first);
    let second = store
        .ingest(&inbound("500", "7", "hello"), Some("502"))
        .await
        .unwrap();
    assert_eq!(second, IngestOutcome::Duplicate);
    assert_eq!(message_count(&store, conversation_id).await, 1);
    let all = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
    // The adapter moved past it, so its cursor moves too.
    assert_eq!(
        store.cursor(&telegram()).await.unwrap().as_deref(),
        Some("502")
    );
}

async fn a_failed_ingest_keeps_neither_the_message_nor_the_cursor(store: SqlStore) {
    store
        .ingest(&inbound("1", "9", "first"), Some("2"))
        .await
        .unwrap();
    // Make the last step of the transaction (the event) fail, as a full disk would.
    match store.backend() {
        Backend::Sqlite => {
            store
                .execute_raw(
                    "CREATE TRIGGER no_events BEFORE INSERT ON events
                     BEGIN SELECT RAISE(ABORT, 'disk full'); END",
                )
                .await
                .unwrap();
        }
        Backend::Postgres => {
            store
                .execute_raw(
                    "CREATE FUNCTION no_events() RETURNS trigger LANGUAGE plpgsql AS
                     $$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
                )
                .await
                .unwrap();
            store
                .execute_raw(
                    "CREATE TRIGGER no_events BEFORE INSERT ON events
                     FOR EACH ROW EXECUTE FUNCTION no_events()",
                )
                .await
                .unwrap();
        }
    }
    let failed = store.ingest(&inbound("2", "10", "second"), Some("3")).await;
    assert!(failed.is_err());
    assert_eq!(
        store.cursor(&telegram()).await.unwrap().as_deref(),
        Some("2")
    );
    let all = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1, "no conversation was left behind");
    store
        .execute_raw("DROP TRIGGER no_events ON events")
        .await
        .ok();
    store.execute_raw("DROP TRIGGER no_events").await.ok();
    // Once the fault is gone, the same message goes in, exactly once.
    let retried = store
        .ingest(&inbound("2", "10", "second"), Some("3"))
        .await
        .unwrap();
    let (conversation_id, _) = stored(retried);
    assert_eq!(message_count(&store, conversation_id).await, 1);
    assert_eq!(
        store.cursor(&telegram()).await.unwrap().as_deref(),
        Some("3")
    );
}

async fn a_row_whose_worker_died_is_delivered_after_the_lease_expires(store: SqlStore) {
    let (conversation_id, _) = stored(store.ingest(&inbound("1", "5", "hi"), None).await.unwrap());
    store
        .reply(bot_reply(conversation_id, "hello"))
        .await
        .unwrap();
    let t0 = Timestamp::now();
    let first = store.claim_outbox(&claim("dead", t0)).await.unwrap();
    assert_eq!(first.len(), 1);
    // The worker "dies": it never reports. Before the lease ends nobody gets the row.
    let during = t0.plus(Duration::from_secs(29));
    assert!(
        store
            .claim_outbox(&claim("alive", during))
            .await
            .unwrap()
            .is_empty()
    );
    let after = t0.plus(Duration::from_secs(31));
    let second = store.claim_outbox(&claim("alive", after)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].outbox_id, first[0].outbox_id);
    assert_eq!(second[0].attempt, 2);
    // The dead worker's late report is refused; the live one's is recorded.
    let late = store
        .mark_sent(first[0].outbox_id, "dead", None, after)
        .await
        .unwrap();
    assert_eq!(late, LeaseReport::LeaseLost);
    let ok = store
        .mark_sent(second[0].outbox_id, "alive", None, after)
        .await
        .unwrap();
    assert_eq!(ok, LeaseReport::Recorded);
    assert_eq!(store.outbox_depth().await.unwrap(), 0);
}

async fn conversations_are_found_by_their_words_priority_and_team(store: SqlStore) {
    let (hash, _) = stored(
        store
            .ingest(
                &inbound("1", "5", "我的交易哈希是 0xABC，手续费 100%"),
                None,
            )
            .await
            .unwrap(),
    );
    let (other, _) = stored(
        store
            .ingest(&inbound("2", "6", "hello there"), None)
            .await
            .unwrap(),
    );
    let change = ConversationChange {
        priority: Some(frontdesk_core::Priority::Urgent),
        team: Some("security".into()),
        ..ConversationChange::default()
    };
    store.update_conversation(other, &change).await.unwrap();
    let find = |text: Option<&str>, priority, team: Option<&str>| {
        let store = store.clone();
        let query = ConversationQuery {
            text: text.map(str::to_owned),
            priority,
            team: team.map(str::to_owned),
            ..ConversationQuery::default()
        };
        async move {
            let page = store.list_conversations(&query).await.unwrap();
            page.items.iter().map(|c| c.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(find(Some("哈希"), None, None).await, [hash]);
    assert_eq!(find(Some("手续"), None, None).await, [hash], "inside a run");
    assert_eq!(find(Some("交易哈希"), None, None).await, [hash], "a phrase");
    assert!(
        find(Some("哈交"), None, None).await.is_empty(),
        "not adjacent"
    );
    assert_eq!(find(Some("0xABC"), None, None).await, [hash], "any case");
    assert_eq!(find(Some("0xa"), None, None).await, [hash], "a prefix");
    assert_eq!(find(Some("100%"), None, None).await, [hash]);
    assert!(find(Some("%"), None, None).await.is_empty());
    assert!(
        find(Some("hello 哈希"), None, None).await.is_empty(),
        "every word, in one conversation"
    );
    store
        .ingest(&inbound("3", "6", "my withdrawal is late"), None)
        .await
        .unwrap();
    assert_eq!(
        find(Some("hello withdraw"), None, None).await,
        [other],
        "words from two messages of one conversation"
    );
    assert_eq!(
        find(Some("Customer 6"), None, None).await,
        [other],
        "the contact's name"
    );
    assert_eq!(
        find(Some("6"), None, None).await,
        [other],
        "the channel identity"
    );
    assert_eq!(
        find(None, Some(frontdesk_core::Priority::Urgent), None).await,
        [other]
    );
    assert_eq!(find(None, None, Some("security")).await, [other]);
    let contact = store.conversation(hash).await.unwrap().unwrap().contact_id;
    store
        .delete_contact(contact, "admin@example.com")
        .await
        .unwrap();
    assert!(
        find(Some("哈希"), None, None).await.is_empty(),
        "erased words are not found"
    );
}

async fn a_conversations_replies_leave_in_order_one_at_a_time(store: SqlStore) {
    let (one, _) = stored(store.ingest(&inbound("1", "5", "hi"), None).await.unwrap());
    let (other, _) = stored(store.ingest(&inbound("2", "6", "hey"), None).await.unwrap());
    for text in ["first", "second"] {
        store.reply(bot_reply(one, text)).await.unwrap();
    }
    store.reply(bot_reply(other, "elsewhere")).await.unwrap();
    let t0 = Timestamp::now();
    // Several workers may send at once, but never two of one conversation: the second
    // could overtake the first.
    let batch = store.claim_outbox(&claim("w", t0)).await.unwrap();
    let texts: Vec<&str> = batch.iter().map(|o| o.text.as_str()).collect();
    assert_eq!(texts, ["first", "elsewhere"]);
    // A retry of the first holds the second back too.
    store
        .mark_retry(
            batch[0].outbox_id,
            "w",
            t0.plus(Duration::from_secs(60)),
            "busy",
            t0,
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_outbox(&claim("w", t0))
            .await
            .unwrap()
            .is_empty()
    );
    let later = t0.plus(Duration::from_secs(61));
    let retried = store.claim_outbox(&claim("w", later)).await.unwrap();
    assert_eq!(retried[0].text, "first");
    store
        .mark_sent(retried[0].outbox_id, "w", None, later)
        .await
        .unwrap();
    let next = store.claim_outbox(&claim("w", later)).await.unwrap();
    assert_eq!(next[0].text, "second");
}

async fn a_retry_waits_until_its_due_time(store: SqlStore) {
    let (conversation_id, _) = stored(store.ingest(&inbound("1", "5", "hi"), None).await.unwrap());
    store
        .reply(bot_reply(conversation_id, "hello"))
        .await
        .unwrap();
    let t0 = Timestamp::now();
    let rows = store.claim_outbox(&claim("w", t0)).await.unwrap();
    let due = t0.plus(Duration::from_secs(60));
    store
        .mark_retry(rows[0].outbox_id, "w", due, "429 Too Many Requests", t0)
        .await
        .unwrap();
    assert_eq!(store.next_due(&telegram()).await.unwrap(), Some(due));
    let early = t0.plus(Duration::from_secs(59));
    assert!(
        store
            .claim_outbox(&claim("w", early))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.claim_outbox(&claim("w", due)).await.unwrap().len(), 1);
}

async fn an_edit_keeps_the_original_text_in_the_history(store: SqlStore) {
    let (conversation_id, message_id) = stored(
        store
            .ingest(&inbound("m1", "5", "my adress is wrong"), None)
            .await
            .unwrap(),
    );
    let mut edit = inbound("m1:edit:1", "5", "my address is wrong");
    edit.edit_of = Some("m1".into());
    let (c2, m2) = stored(store.ingest(&edit, None).await.unwrap());
    assert_eq!((c2, m2), (conversation_id, message_id));
    // The same edit delivered twice is applied once.
    assert_eq!(
        store.ingest(&edit, None).await.unwrap(),
        IngestOutcome::Duplicate
    );
    let messages = store.messages(conversation_id, None, 0).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text, "my address is wrong");
    assert_eq!(messages[0].edits.len(), 1);
    assert_eq!(messages[0].edits[0].text, "my adress is wrong");
}

async fn a_repeated_idempotency_key_sends_one_reply(store: SqlStore) {
    let (conversation_id, _) = stored(store.ingest(&inbound("1", "5", "hi"), None).await.unwrap());
    let mut reply = bot_reply(conversation_id, "we are on it");
    reply.author = Author::Agent;
    reply.idempotency_key = Some("key-1".into());
    let first = store.reply(reply.clone()).await.unwrap();
    let second = store.reply(reply).await.unwrap();
    assert!(first.created && !second.created);
    assert_eq!(first.message.id, second.message.id);
    assert_eq!(store.outbox_depth().await.unwrap(), 1);
    // A private note never reaches the outbox.
    let mut note = bot_reply(conversation_id, "customer sounds upset");
    note.kind = MessageKind::Note;
    note.author = Author::Agent;
    store.reply(note).await.unwrap();
    assert_eq!(store.outbox_depth().await.unwrap(), 1);
}

async fn conversations_page_by_recent_activity_without_gaps_or_repeats(store: SqlStore) {
    for i in 0..7 {
        store
            .ingest(&inbound(&format!("m{i}"), &format!("c{i}"), "hi"), None)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut query = ConversationQuery {
        limit: 3,
        status: Some(Status::Bot),
        assignee: AssigneeFilter::Unassigned,
        channel: Some(ChannelKind::Telegram),
        after: None,
        ..ConversationQuery::default()
    };
    loop {
        let page = store.list_conversations(&query).await.unwrap();
        seen.extend(page.items.iter().map(|c| c.id));
        match page.next {
            Some(next) => query.after = Some(crate::PageCursor::parse(&next.to_string()).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);
    let newest_first: Vec<_> = {
        let mut s = seen.clone();
        s.sort_by(|a, b| b.cmp(a));
        s
    };
    assert_eq!(seen, newest_first);
    let email_only = ConversationQuery {
        channel: Some(ChannelKind::Email),
        ..ConversationQuery::default()
    };
    assert!(
        store
            .list_conversations(&email_only)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn a_thread_is_found_by_a_message_it_holds_or_by_its_number(store: SqlStore) {
    let (conversation_id, _) = stored(
        store
            .ingest(&inbound("m-1", "5", "hi"), None)
            .await
            .unwrap(),
    );
    let account = telegram();
    let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        store
            .thread_of_messages(&account, &ids(&["nope", "m-1"]))
            .await
            .unwrap()
            .as_deref(),
        Some("chat-5")
    );
    assert_eq!(
        store
            .thread_of_messages(&account, &ids(&["nope"]))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.thread_of_messages(&account, &[]).await.unwrap(), None);
    // Another account does not see it.
    let other = ChannelAccount::new(ChannelKind::Telegram, "other").unwrap();
    assert_eq!(
        store
            .thread_of_messages(&other, &ids(&["m-1"]))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .thread_of_conversation(&account, conversation_id)
            .await
            .unwrap()
            .as_deref(),
        Some("chat-5")
    );
    assert_eq!(
        store
            .thread_of_conversation(&other, conversation_id)
            .await
            .unwrap(),
        None
    );
}

async fn a_customer_who_blocked_us_is_unreachable_until_they_write_again(store: SqlStore) {
    let (conversation_id, _) = stored(store.ingest(&inbound("1", "5", "hi"), None).await.unwrap());
    store
        .reply(bot_reply(conversation_id, "hello"))
        .await
        .unwrap();
    let now = Timestamp::now();
    let rows = store.claim_outbox(&claim("w", now)).await.unwrap();
    let reason = "Forbidden: bot was blocked by the user";
    store
        .mark_unreachable(rows[0].outbox_id, "w", reason, now)
        .await
        .unwrap();
    let contact_of = |store: SqlStore| async move {
        let c = store.conversation(conversation_id).await.unwrap().unwrap();
        store.contact(c.contact_id).await.unwrap().unwrap()
    };
    let contact = contact_of(store.clone()).await;
    assert_eq!(contact.identities[0].unreachable.as_deref(), Some(reason));
    // Their next message, into the same open conversation, lifts it.
    store
        .ingest(&inbound("2", "5", "unblocked"), None)
        .await
        .unwrap();
    assert_eq!(
        contact_of(store.clone()).await.identities[0].unreachable,
        None
    );
}

async fn a_permanent_failure_is_shown_on_the_message_and_as_an_event(store: SqlStore) {
    let (conversation_id, _) = stored(store.ingest(&inbound("1", "5", "hi"), None).await.unwrap());
    let reply = store
        .reply(bot_reply(conversation_id, "hello"))
        .await
        .unwrap();
    let mut events = store.subscribe();
    let now = Timestamp::now();
    let rows = store.claim_outbox(&claim("w", now)).await.unwrap();
    store
        .mark_failed(
            rows[0].outbox_id,
            "w",
            "Forbidden: bot was blocked by the user",
            now,
        )
        .await
        .unwrap();
    let messages = store
        .messages(
            conversation_id,
            Some(reply.message.id).map(|m| frontdesk_core::MessageId(m.0 - 1)),
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        messages[0].delivery,
        Some(Delivery::Failed {
            reason: "Forbidden: bot was blocked by the user".into()
        })
    );
    let event = events.try_recv().unwrap();
    assert_eq!(event.kind, EventKind::DeliveryFailed);
    assert_eq!(
        event.data["reason"],
        "Forbidden: bot was blocked by the user"
    );
    assert!(
        store
            .claim_outbox(&claim("w", now.plus(Duration::from_secs(3600))))
            .await
            .unwrap()
            .is_empty()
    );
}

/// PostgreSQL only: several instances share one database.
mod shared_postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_workers_racing_never_claim_one_row_twice() {
        let Some(db) = TestDatabase::postgres().await else {
            return;
        };
        let a = db.store().await;
        let b = db.store().await;
        // 20 conversations of 10 replies: one conversation's replies go out one at a
        // time, in order, so the workers share the conversations.
        let mut conversations = Vec::new();
        for c in 0..20 {
            let message = inbound(&format!("m{c}"), &format!("customer-{c}"), "hi");
            conversations.push(stored(a.ingest(&message, None).await.unwrap()).0);
        }
        for i in 0..200 {
            a.reply(bot_reply(conversations[i % 20], &format!("reply {i}")))
                .await
                .unwrap();
        }
        let now = Timestamp::now();
        let race = |store: SqlStore, worker: &'static str| async move {
            let mut mine = Vec::new();
            loop {
                let mut req = claim(worker, now);
                req.limit = 3;
                let rows = store.claim_outbox(&req).await.unwrap();
                if rows.is_empty() {
                    break mine;
                }
                for r in rows {
                    assert_eq!(
                        store
                            .mark_sent(r.outbox_id, worker, None, now)
                            .await
                            .unwrap(),
                        LeaseReport::Recorded
                    );
                    mine.push(r.outbox_id);
                }
            }
        };
        let (ra, rb) = tokio::join!(
            tokio::spawn(race(a.clone(), "instance-a")),
            tokio::spawn(race(b.clone(), "instance-b"))
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(!ra.is_empty() && !rb.is_empty(), "both workers took part");
        let all: HashSet<_> = ra.iter().chain(rb.iter()).collect();
        assert_eq!(ra.len() + rb.len(), 200, "every row delivered");
        assert_eq!(all.len(), 200, "no row delivered twice");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_instance_sees_events_through_listen_notify() {
        let Some(db) = TestDatabase::postgres().await else {
            return;
        };
        let a = db.store().await;
        let b = db.store().await;
        let mut on_b = b.subscribe();
        let mut b_outbox = b.outbox_signal();
        // Give b's listener a moment to subscribe, then prove it by a round trip.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let (conversation_id, message_id) = loop {
            let id = format!("probe-{}", uuid::Uuid::new_v4());
            let outcome = a.ingest(&inbound(&id, "5", "hi"), None).await.unwrap();
            let (c, m) = stored(outcome);
            match tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    let e = on_b.recv().await.unwrap();
                    if e.message_id == Some(m) {
                        break e;
                    }
                }
            })
            .await
            {
                Ok(_) => break (c, m),
                Err(_) => assert!(tokio::time::Instant::now() < deadline, "no event reached b"),
            }
        };
        assert!(message_id.0 > 0);
        b_outbox.borrow_and_update();
        a.reply(bot_reply(conversation_id, "hello")).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), b_outbox.changed())
            .await
            .expect("b's delivery worker is woken by a's reply")
            .unwrap();
    }
}

/// Two stores on one PostgreSQL database stand for two instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_leads_a_job_until_it_lets_go_or_its_connection_dies() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let (first, second) = (db.store().await, db.store().await);
    let mut lead = first
        .try_lead("poller:telegram:default")
        .await
        .unwrap()
        .expect("the first asks first and leads");
    assert!(lead.still_held().await);
    assert!(
        second
            .try_lead("poller:telegram:default")
            .await
            .unwrap()
            .is_none(),
        "a second leader"
    );
    // Another job has its own lead.
    let other = second.try_lead("poller:x:default").await.unwrap();
    assert!(other.is_some());
    // Letting go (or a process dying, which closes the connection the same way) frees
    // the job for the next instance that asks.
    drop(lead);
    let mut taken = None;
    for _ in 0..50 {
        taken = second.try_lead("poller:telegram:default").await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(taken.is_some(), "the job was not freed");
}

#[tokio::test]
async fn the_only_instance_on_sqlite_always_leads() {
    let db = TestDatabase::sqlite();
    let store = db.store().await;
    let mut lead = store
        .try_lead("poller:telegram:default")
        .await
        .unwrap()
        .unwrap();
    assert!(lead.still_held().await);
}

/// A store on a fresh SQLite file holding one customer's question, in its conversation.
async fn sqlite_with_a_question(
    text: &str,
) -> (TestDatabase, SqlStore, frontdesk_core::ConversationId) {
    let db = TestDatabase::sqlite();
    let store = db.store().await;
    let (id, _) = stored(store.ingest(&inbound("1", "5", text), None).await.unwrap());
    (db, store, id)
}

/// On SQLite a message marks its conversation for the search index rather than
/// rewriting the conversation's document in its own transaction; the store writes the
/// marked documents within seconds, with no search to prompt it.
#[tokio::test]
async fn new_messages_reach_the_search_index_without_a_search() {
    use crate::db::Query;
    let (_db, store, id) = sqlite_with_a_question("my withdrawal is late").await;
    store
        .reply(bot_reply(id, "Withdrawals take up to 30 minutes."))
        .await
        .unwrap();
    let indexed = |word: &'static str| {
        let store = store.clone();
        async move {
            store
                .read_all(
                    Query::new(
                        "SELECT rowid FROM search.conversation_search WHERE conversation_search MATCH $1",
                    )
                    .bind(word),
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<i64>("rowid").unwrap())
                .collect::<Vec<_>>()
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while indexed("minutes").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reply's words were not indexed within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(indexed("withdrawal").await, [id.0]);
    assert_eq!(indexed("minutes").await, [id.0]);
}

/// The conversations a search for `text` finds, newest activity first.
async fn found(store: &SqlStore, text: &str) -> Vec<frontdesk_core::ConversationId> {
    let query = ConversationQuery {
        text: Some(text.into()),
        ..ConversationQuery::default()
    };
    let page = store.list_conversations(&query).await.unwrap();
    page.items.iter().map(|c| c.id).collect()
}

/// SQLite's search documents are a file beside the database, which can always be
/// written again from the messages: lost (or missing on the first start after the
/// upgrade that moved them there), it is filled from scratch.
#[tokio::test]
async fn a_lost_search_file_is_built_again_from_the_messages() {
    let (db, store, id) = sqlite_with_a_question("my withdrawal is late").await;
    assert_eq!(found(&store, "withdrawal").await, [id]);
    drop(store);

    // Removed under any connection still closing: those keep writing to the old file.
    let path = db.url().strip_prefix("sqlite://").unwrap();
    for suffix in ["-search", "-search-wal", "-search-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let store = db.store().await;
    assert_eq!(found(&store, "withdrawal").await, [id]);
    assert_eq!(found(&store, "deposit").await, []);
}

/// Writing search documents takes the search file's lock, not the database writer's:
/// while an indexing pass waits for that lock (another process holds it here), a
/// customer's message is stored, and the pass writes it once the lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_stored_while_the_search_index_is_written() {
    use sqlx::Connection;
    let (db, store, _) = sqlite_with_a_question("my withdrawal is late").await;
    store.index_search().await.unwrap();
    let path = db.url().strip_prefix("sqlite://").unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{path}-search"))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE; UPDATE state SET written_at = written_at + 1")
        .execute(&mut other)
        .await
        .unwrap();
    store
        .ingest(&inbound("2", "6", "where is my deposit?"), None)
        .await
        .unwrap();
    let pass = tokio::spawn({
        let store = store.clone();
        async move { store.index_search().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pass.is_finished(), "the pass did not wait for the lock");

    let stored = tokio::time::timeout(
        Duration::from_secs(5),
        store.ingest(&inbound("3", "7", "is my deposit lost?"), None),
    )
    .await;
    assert!(
        matches!(stored, Ok(Ok(IngestOutcome::Stored { .. }))),
        "a message waited for the search index: {stored:?}"
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    assert!(pass.await.unwrap().unwrap() >= 1);
    assert_eq!(found(&store, "deposit").await.len(), 2);
}
