//! The Telegram channel end to end: `frontdesk serve` (in-process) with the real
//! teloxide client against the fake Bot API in the testkit.

use frontdesk::config::{Config, TelegramMode};
use frontdesk_core::{Delivery, Direction, Role};
use frontdesk_e2e::{TestApp, get};
use frontdesk_store::ConversationQuery;
use frontdesk_store::testing::TestDatabase;
use frontdesk_testkit::telegram::{FakeTelegram, Scripted, Sent};
use serde_json::json;
use std::future::Future;
use std::time::Duration;

const TOKEN: &str = "7000000001:AAE-test-token";
const SECRET: &str = "webhook-secret-0123456789";

frontdesk_e2e::on_every_backend!(
    a_restart_in_the_middle_of_a_stream_loses_and_doubles_nothing,
    an_agents_reply_arrives_as_a_reply_to_the_customers_message,
);

/// The app with the Telegram bot pointed at `fake`; the FAQ bot only with `bot`.
async fn start(db: &TestDatabase, fake: &FakeTelegram, bot: bool) -> TestApp {
    start_with(db, fake, bot, |_| {}).await
}

async fn start_with(
    db: &TestDatabase,
    fake: &FakeTelegram,
    bot: bool,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let api_url = fake.api_url().to_owned();
    TestApp::start_with(db.url(), &[], move |c| {
        let t = &mut c.channels.telegram;
        t.enabled = true;
        t.token = Some(TOKEN.into());
        t.api_url = api_url;
        frontdesk_e2e::answering(c, bot);
        adjust(c);
    })
    .await
}

/// Waits until `check` holds (20 s at most).
async fn until<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    frontdesk_e2e::until(what, Duration::from_secs(20), check).await
}

/// What the bot sent to `chat`, once there are at least `n`.
async fn sent_to(fake: &FakeTelegram, chat: i64, n: usize) -> Vec<Sent> {
    let to_chat = || {
        fake.sent()
            .into_iter()
            .filter(|s| s.chat_id == chat)
            .collect::<Vec<_>>()
    };
    until(&format!("{n} messages to chat {chat}"), || async {
        to_chat().len() >= n
    })
    .await;
    to_chat()
}

/// Customer 42 writes `text`; returns the message once it is stored.
async fn customer_writes(
    app: &TestApp,
    fake: &FakeTelegram,
    text: &str,
) -> frontdesk_core::Message {
    fake.customer_writes(42, text);
    let stored = || async {
        app.inbound_messages()
            .await
            .into_iter()
            .find(|m| m.text == text)
    };
    until(&format!("{text:?} to be stored"), || async {
        stored().await.is_some()
    })
    .await;
    stored().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faq_question_is_answered_as_a_reply_to_the_customers_message() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start(&db, &fake, true).await;
    let update = fake.customer_writes(42, "转账一直pending怎么办");
    let sent = sent_to(&fake, 42, 1).await;
    let asked = app.inbound_messages().await;
    assert_eq!(asked.len(), 1);
    let message_id: i64 = asked[0]
        .external_id
        .as_deref()
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sent[0].reply_to, Some(message_id));
    assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
    assert!(sent[0].text.contains("人工"), "{}", sent[0].text);
    // The update was confirmed: Telegram forgets it.
    until("the offset to be confirmed", || async {
        fake.pending() == 0
    })
    .await;
    let confirmed = fake
        .requests()
        .iter()
        .filter(|r| r.method == "getupdates")
        .any(|r| r.params["offset"].as_i64() == Some(update + 1));
    assert!(confirmed);
    let ready = app.readiness().await;
    assert_eq!(ready["channels"]["telegram:default"]["ok"], true, "{ready}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_a_person_hands_off_and_the_bot_says_what_happens_next() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start(&db, &fake, true).await;
    fake.customer_writes(42, "转人工");
    let sent = sent_to(&fake, 42, 1).await;
    assert!(!sent[0].text.is_empty());
    until("the handoff", || async {
        let page = app
            .store
            .list_conversations(&ConversationQuery::default())
            .await
            .unwrap();
        page.items
            .first()
            .is_some_and(|c| c.status == frontdesk_core::Status::Open)
    })
    .await;
    app.stop().await;
}

async fn an_agents_reply_arrives_as_a_reply_to_the_customers_message(db: TestDatabase) {
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start(&db, &fake, false).await;
    customer_writes(&app, &fake, "我的提现还没到").await;
    let latest = customer_writes(&app, &fake, "订单号 8841").await;
    let before = fake.sent().len();
    app.agent_replies(
        latest.conversation_id.0,
        "您好 <王先生>，我们正在查 & 处理。",
    )
    .await;
    let sent = sent_to(&fake, 42, before + 1).await;
    let reply = sent.last().unwrap();
    // Escaped for HTML (the fake refuses what Telegram cannot parse) and shown as typed.
    assert_eq!(reply.text, "您好 &lt;王先生&gt;，我们正在查 &amp; 处理。");
    let latest_id: i64 = latest
        .external_id
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(reply.reply_to, Some(latest_id));
    app.stop().await;
}

async fn a_restart_in_the_middle_of_a_stream_loses_and_doubles_nothing(db: TestDatabase) {
    let fake = FakeTelegram::start(TOKEN).await;
    for i in 0..300 {
        fake.customer_writes(1000 + i % 7, &format!("message {i}"));
    }
    let app = start(&db, &fake, false).await;
    until("the first messages", || async {
        app.inbound_messages().await.len() >= 20
    })
    .await;
    app.stop().await;
    let stored_at_stop = inbound_messages_count(&db).await;
    // Stopped in the middle: some of the first 300 stored, not all.
    assert!(
        (20..300).contains(&stored_at_stop),
        "stored {stored_at_stop} of 300 before the restart"
    );
    // More arrive while it is down.
    for i in 300..400 {
        fake.customer_writes(1000 + i % 7, &format!("message {i}"));
    }
    let app = start(&db, &fake, false).await;
    until("all 400 messages", || async {
        app.inbound_messages().await.len() >= 400
    })
    .await;
    until("every update confirmed", || async { fake.pending() == 0 }).await;
    // A moment for anything doubled to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut texts: Vec<String> = app.inbound_texts().await;
    assert_eq!(
        texts.len(),
        400,
        "stored {stored_at_stop} before the restart"
    );
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 400, "a message was stored twice");
    app.stop().await;
}

/// Counts stored customer messages with a short-lived app-less store.
async fn inbound_messages_count(db: &TestDatabase) -> usize {
    let store = frontdesk::app::open_store(&{
        let mut c = Config::default();
        c.database.url = db.url().to_owned();
        c
    })
    .await
    .unwrap();
    let mut n = 0;
    for c in store
        .list_conversations(&ConversationQuery {
            limit: 100,
            ..ConversationQuery::default()
        })
        .await
        .unwrap()
        .items
    {
        n += store
            .messages(c.id, None, 10_000)
            .await
            .unwrap()
            .iter()
            .filter(|m| m.direction == Direction::In)
            .count();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_is_paced_and_every_reply_arrives_once() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    fake.script(
        "sendMessage",
        Scripted::TooManyRequests { retry_after: 1 },
        8,
    );
    let app = start(&db, &fake, true).await;
    // Forty customers at once, each answered by the bot.
    for chat in 0..40 {
        fake.customer_writes(5000 + chat, "转账一直pending怎么办");
    }
    // The bot's answer to this question is two messages (the article, then what to
    // send us).
    until("both answers in each of the 40 chats", || async {
        let sent = fake.sent();
        (0..40).all(|chat| sent.iter().filter(|s| s.chat_id == 5000 + chat).count() >= 2)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = fake.sent();
    for chat in 0..40 {
        let answers: Vec<&str> = sent
            .iter()
            .filter(|s| s.chat_id == 5000 + chat)
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(answers.len(), 2, "chat {chat} got {answers:?}");
        assert_ne!(answers[0], answers[1], "chat {chat} got one answer twice");
    }
    // Every refusal was scripted: the pacing itself never went over Telegram's limits,
    // and each refused message was sent again exactly once.
    assert_eq!(fake.rate_limited(), 0);
    let attempts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "sendmessage")
        .count();
    assert_eq!(attempts, sent.len() + 8);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_blocked_the_bot_is_unreachable_until_they_write_again() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start(&db, &fake, false).await;
    let conversation = customer_writes(&app, &fake, "我的提现还没到")
        .await
        .conversation_id;
    // Whatever the engine said on arrival has gone; now the customer blocks the bot.
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.script("sendMessage", Scripted::Blocked, 1);
    app.agent_replies(conversation.0, "已经到账了").await;
    let failed = || async {
        let messages = app.store.messages(conversation, None, 100).await.unwrap();
        messages
            .iter()
            .rev()
            .find(|m| m.text == "已经到账了")
            .and_then(|m| match &m.delivery {
                Some(Delivery::Failed { reason }) => Some(reason.clone()),
                _ => None,
            })
    };
    until("the reply to fail", || async { failed().await.is_some() }).await;
    assert!(failed().await.unwrap().contains("blocked"));
    let contact_id = app
        .store
        .conversation(conversation)
        .await
        .unwrap()
        .unwrap()
        .contact_id;
    let contact = app.store.contact(contact_id).await.unwrap().unwrap();
    assert!(
        contact.identities[0]
            .unreachable
            .as_deref()
            .is_some_and(|r| r.contains("blocked"))
    );
    // Agents see it on the conversation.
    let http = frontdesk_e2e::signed_in(&app, "lead@desk.example", Role::Admin).await;
    let (_, page) = get(&http, &app, &format!("/conversations/{conversation}")).await;
    assert!(page.contains("class=\"unreachable\""), "{page}");
    // They unblock and write: reachable again.
    customer_writes(&app, &fake, "我解除屏蔽了").await;
    until("the block to be lifted", || async {
        let contact = app.store.contact(contact_id).await.unwrap().unwrap();
        contact.identities[0].unreachable.is_none()
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5000_character_reply_arrives_in_two_messages_cut_between_paragraphs() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start(&db, &fake, false).await;
    let asked = customer_writes(&app, &fake, "请详细说明提现流程").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = fake.sent().len();
    let paragraph =
        "提现需要在链上确认，通常需要几分钟到一小时。请在钱包里查看交易哈希。".repeat(25);
    let text = [paragraph.as_str(); 5].join("\n\n");
    let long = format!("{text}\n\n{}", "Check the hash in your wallet. ".repeat(50));
    assert!(
        long.encode_utf16().count() >= 5000,
        "{}",
        long.encode_utf16().count()
    );
    app.agent_replies(asked.conversation_id.0, &long).await;
    let sent = sent_to(&fake, 42, before + 2).await;
    let parts = &sent[before..];
    assert_eq!(parts.len(), 2);
    for part in parts {
        assert!(part.text.encode_utf16().count() <= 4096);
    }
    assert!(parts[0].text.ends_with('。'), "cut inside a paragraph");
    assert!(parts[0].reply_to.is_some() && parts[1].reply_to.is_none());
    let joined: String = parts.iter().map(|p| p.text.as_str()).collect();
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(squeeze(&joined), squeeze(&long));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_message_keeps_the_original_in_its_history() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start(&db, &fake, false).await;
    let original = json!({
        "message_id": 77, "date": 1_790_000_000,
        "chat": { "id": 42, "type": "private", "first_name": "Wang" },
        "from": { "id": 42, "is_bot": false, "first_name": "Wang" },
        "text": "金额是 100 USDT",
    });
    fake.push_update(json!({ "message": original }));
    let mut edited = original.clone();
    edited["text"] = json!("金额是 1000 USDT");
    edited["edit_date"] = json!(1_790_000_060);
    fake.push_update(json!({ "edited_message": edited }));
    until("the edit", || async {
        app.inbound_messages()
            .await
            .first()
            .is_some_and(|m| !m.edits.is_empty())
    })
    .await;
    let messages = app.inbound_messages().await;
    assert_eq!(messages.len(), 1, "an edit is not a new message");
    assert_eq!(messages[0].text, "金额是 1000 USDT");
    assert_eq!(messages[0].edits[0].text, "金额是 100 USDT");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_conflict_is_reported_on_readyz_and_polling_recovers() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    fake.script("getUpdates", Scripted::Conflict, 3);
    let app = start(&db, &fake, false).await;
    until("readyz to name the conflict", || async {
        let ready = app.readiness().await;
        ready["channels"]["telegram:default"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("409 Conflict"))
    })
    .await;
    assert_eq!(app.readiness().await["ready"], false);
    customer_writes(&app, &fake, "还在吗").await;
    assert_eq!(app.readiness().await["ready"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_mode_end_to_end() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let webhook = |c: &mut Config| {
        c.server.public_url = Some("http://{address}".into());
        c.channels.telegram.mode = TelegramMode::Webhook;
        c.channels.telegram.webhook_secret = Some(SECRET.into());
        c.channels.telegram.webhook_check_seconds = 1;
    };
    let app = start_with(&db, &fake, true, webhook).await;
    let url = app.url("/telegram/default/webhook");
    until("the webhook to be set", || async {
        fake.webhook() == Some((url.clone(), Some(SECRET.to_owned())))
    })
    .await;
    let update = json!({
        "update_id": 900_001,
        "message": {
            "message_id": 5, "date": 1_790_000_000,
            "chat": { "id": 42, "type": "private", "first_name": "Wang" },
            "from": { "id": 42, "is_bot": false, "first_name": "Wang" },
            "text": "转账一直pending怎么办",
        }
    });
    let post = |secret: Option<&str>| {
        let mut request = reqwest::Client::new().post(&url).json(&update);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(
        post(Some("webhook-secret-0123456788"))
            .await
            .unwrap()
            .status(),
        401
    );
    assert!(app.inbound_messages().await.is_empty());
    until("the bot to be ready for webhooks", || async {
        post(Some(SECRET)).await.unwrap().status() == 200
    })
    .await;
    // Telegram retries what it is not sure we got: the second copy changes nothing.
    assert_eq!(post(Some(SECRET)).await.unwrap().status(), 200);
    assert_eq!(app.inbound_messages().await.len(), 1);
    let sent = sent_to(&fake, 42, 1).await;
    assert_eq!(sent[0].reply_to, Some(5));
    assert_eq!(sent.len(), 1);
    // Not polling: getUpdates is never called in webhook mode.
    assert!(!fake.requests().iter().any(|r| r.method == "getupdates"));
    until("readyz to show the webhook", || async {
        let ready = app.readiness().await;
        ready["channels"]["telegram:default"]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("webhook set"))
    })
    .await;
    // Telegram cannot reach us: readyz says so, with Telegram's words.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    fake.webhook_failed(now - 5, "Connection refused");
    until("readyz to show the webhook's error", || async {
        let ready = app.readiness().await;
        ready["channels"]["telegram:default"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Connection refused"))
    })
    .await;
    app.stop().await;
    // Back to polling: the webhook is removed so that getUpdates works.
    let app = start(&db, &fake, false).await;
    until("the webhook to be removed", || async {
        fake.webhook().is_none()
    })
    .await;
    customer_writes(&app, &fake, "我换回轮询了").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_telegram_lost_is_set_again() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start_with(&db, &fake, false, |c| {
        c.server.public_url = Some("http://{address}".into());
        c.channels.telegram.mode = TelegramMode::Webhook;
        c.channels.telegram.webhook_secret = Some(SECRET.into());
        c.channels.telegram.webhook_check_seconds = 1;
    })
    .await;
    until("the webhook to be set", || async {
        fake.webhook().is_some()
    })
    .await;
    // Somebody (another deployment, a script) deletes it.
    let deleted = reqwest::Client::new()
        .post(format!("{}/bot{TOKEN}/deleteWebhook", fake.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    until("the webhook to be set again", || async {
        fake.webhook().is_some()
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_open_a_customers_photo_through_the_inbox() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain(0..=255u8)
        .collect();
    fake.add_file("AgACAgQ-large", "photos/file_7.jpg", jpeg.clone());
    fake.add_file(
        "BQACAgQ-huge",
        "documents/file_8.zip",
        vec![0; 21 * 1024 * 1024],
    );
    let app = start(&db, &fake, false).await;
    fake.push_update(json!({ "message": {
        "message_id": 9, "date": 1_790_000_000,
        "chat": { "id": 42, "type": "private", "first_name": "Wang" },
        "from": { "id": 42, "is_bot": false, "first_name": "Wang" },
        "caption": "转账截图",
        "photo": [
            { "file_id": "AgACAgQ-small", "file_unique_id": "s", "file_size": 900, "width": 90, "height": 60 },
            { "file_id": "AgACAgQ-large", "file_unique_id": "l", "file_size": 260, "width": 1280, "height": 853 }
        ]
    }}));
    fake.push_update(json!({ "message": {
        "message_id": 10, "date": 1_790_000_001,
        "chat": { "id": 42, "type": "private", "first_name": "Wang" },
        "from": { "id": 42, "is_bot": false, "first_name": "Wang" },
        "document": { "file_id": "BQACAgQ-huge", "file_unique_id": "h",
                      "file_size": 22_020_096, "file_name": "logs.zip" }
    }}));
    until("both messages", || async {
        app.inbound_messages().await.len() == 2
    })
    .await;
    let conversation = app.inbound_messages().await[0].conversation_id;
    let http = frontdesk_e2e::signed_in(&app, "amy@desk.example", Role::Agent).await;
    let (_, page) = get(&http, &app, &format!("/conversations/{conversation}")).await;
    assert!(page.contains("[photo]"), "{page}");
    let link = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|l| l.contains("/files/0") && l.contains("/messages/"))
        .expect("a link to the photo")
        .to_owned();
    for _ in 0..2 {
        let photo = http.get(app.url(&link)).send().await.unwrap();
        assert_eq!(photo.status(), 200);
        assert!(
            photo.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        assert_eq!(photo.bytes().await.unwrap().to_vec(), jpeg);
    }
    // Opened twice, fetched once.
    let get_file = fake
        .requests()
        .iter()
        .filter(|r| r.method == "getfile" && r.params["file_id"] == "AgACAgQ-large")
        .count();
    assert_eq!(get_file, 1);
    // Over the 20 MB a bot may download: a clear answer, not a hang.
    let huge_link = link.replace(
        &format!("/messages/{}/", app.inbound_messages().await[0].id),
        &format!("/messages/{}/", app.inbound_messages().await[1].id),
    );
    let huge = http.get(app.url(&huge_link)).send().await.unwrap();
    assert_eq!(huge.status(), 413);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_satisfaction_question_comes_as_buttons_and_a_tap_answers_it() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start(&db, &fake, false).await;
    let conversation = customer_writes(&app, &fake, "我的提现还没到")
        .await
        .conversation_id;
    app.agent_replies(conversation.0, "已经到账了，请查收")
        .await;
    sent_to(&fake, 42, 1).await;
    let before = fake.sent().len();
    let agent = app
        .agent("lead@desk.example", Role::Agent, "a long passphrase")
        .await;
    let token = app.api_token(agent.id, &["read", "write"]).await;
    let resolved = reqwest::Client::new()
        .patch(app.url(&format!("/api/v1/conversations/{conversation}")))
        .bearer_auth(token)
        .json(&json!({ "status": "resolved" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
    let sent = sent_to(&fake, 42, before + 1).await;
    let question = sent.last().unwrap();
    let buttons: Vec<String> = question.reply_markup.as_ref().expect("buttons")["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|b| b["callback_data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(buttons, ["5", "4", "3", "2", "1"]);
    fake.push_update(json!({ "callback_query": {
        "id": "cb-1", "chat_instance": "-1", "data": "5",
        "from": { "id": 42, "is_bot": false, "first_name": "Wang" },
        "message": {
            "message_id": question.message_id, "date": 1_790_000_100,
            "chat": { "id": 42, "type": "private", "first_name": "Wang" },
            "from": { "id": 7_000_000_001u64, "is_bot": true, "first_name": "Frontdesk" },
            "text": question.text,
            "reply_markup": question.reply_markup,
        }
    }}));
    until("the rating", || async {
        app.store
            .csat(conversation)
            .await
            .unwrap()
            .is_some_and(|c| c.rating == Some(5))
    })
    .await;
    // The tap was answered, so the customer's button stops spinning.
    until("the callback to be answered", || async {
        fake.requests()
            .iter()
            .any(|r| r.method == "answercallbackquery" && r.params["callback_query_id"] == "cb-1")
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_from_a_website_link_greets_in_the_customers_language_and_tags_the_source() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start(&db, &fake, true).await;
    // The Start button with a deep link, from a customer whose Telegram is in Chinese.
    let opened = customer_writes(&app, &fake, "/start website_footer").await;
    let greeting = sent_to(&fake, 42, 1).await;
    assert!(
        greeting[0]
            .text
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "greeted in Chinese: {}",
        greeting[0].text
    );
    let conversation = app
        .store
        .conversation(opened.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        conversation
            .labels
            .contains(&"source:website_footer".to_owned())
    );
    // A greeting, not a question the bot missed or a report to hand off.
    assert_eq!(conversation.status, frontdesk_core::Status::Bot);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_an_agent_made_joins_the_customers_telegram_to_their_contact_once() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start_with(&db, &fake, false, |c| c.channels.webchat.enabled = true).await;
    // A customer on the website chat.
    let visitor = app.visitor_token().await;
    let said = reqwest::Client::new()
        .post(app.url("/chat/api/messages"))
        .bearer_auth(&visitor)
        .json(&json!({ "text": "我想在 Telegram 上继续", "client_id": "c-1" }))
        .send()
        .await
        .unwrap();
    assert!(said.status().is_success());
    let web = app.latest_conversation().await;
    let web_contact = app
        .store
        .conversation(web)
        .await
        .unwrap()
        .unwrap()
        .contact_id;
    // The agent makes a Telegram link for them.
    let http = frontdesk_e2e::signed_in(&app, "amy@desk.example", Role::Agent).await;
    let (_, page) = get(&http, &app, &format!("/conversations/{web}")).await;
    until("the bot to know its name", || async {
        let (_, page) = get(&http, &app, &format!("/conversations/{web}")).await;
        page.contains("id=\"telegram-link\"")
    })
    .await;
    let made = http
        .post(app.url(&format!("/conversations/{web}/actions")))
        .form(&[
            ("csrf", frontdesk_e2e::csrf_of(&page).as_str()),
            ("action", "telegram_link"),
        ])
        .send()
        .await
        .unwrap();
    assert!(made.status().is_redirection(), "{}", made.status());
    let note = app
        .store
        .messages(web, None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.text.contains("https://t.me/frontdesk_test_bot?start=c_"))
        .expect("a private note with the link");
    assert_eq!(note.kind, frontdesk_core::MessageKind::Note);
    let payload = note.text.split("?start=").nth(1).unwrap().trim().to_owned();
    // The customer opens it on Telegram.
    let opened = customer_writes(&app, &fake, &format!("/start {payload}")).await;
    let telegram = app
        .store
        .conversation(opened.conversation_id)
        .await
        .unwrap()
        .unwrap();
    until("the contacts to be joined", || async {
        app.store
            .conversation(opened.conversation_id)
            .await
            .unwrap()
            .unwrap()
            .contact_id
            == web_contact
    })
    .await;
    let contact = app.store.contact(web_contact).await.unwrap().unwrap();
    assert!(
        contact
            .identities
            .iter()
            .any(|i| i.channel == frontdesk_core::ChannelKind::Telegram && i.external_id == "42")
    );
    // One use: somebody else with the same link joins nothing.
    fake.push_update(json!({ "message": {
        "message_id": 900, "date": 1_790_000_000,
        "chat": { "id": 77, "type": "private", "first_name": "Eve" },
        "from": { "id": 77, "is_bot": false, "first_name": "Eve" },
        "text": format!("/start {payload}"),
    }}));
    until("the second use to be refused", || async {
        let Some(eve) = app
            .inbound_messages()
            .await
            .into_iter()
            .find(|m| m.external_id.as_deref() == Some("77:900"))
        else {
            return false;
        };
        app.store
            .messages(eve.conversation_id, None, 100)
            .await
            .unwrap()
            .iter()
            .any(|m| m.text.contains("used or expired"))
    })
    .await;
    let contact = app.store.contact(web_contact).await.unwrap().unwrap();
    assert!(!contact.identities.iter().any(|i| i.external_id == "77"));
    assert_ne!(telegram.id, web);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_attachments_go_as_a_document_or_a_photo() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start(&db, &fake, false).await;
    let conversation = customer_writes(&app, &fake, "请发我收据")
        .await
        .conversation_id;
    let http = frontdesk_e2e::signed_in(&app, "amy@desk.example", Role::Agent).await;
    let path = format!("/conversations/{conversation}");
    let reply = |text: &'static str, name: &'static str, kind: &'static str, bytes: Vec<u8>| {
        let http = http.clone();
        let url = app.url(&format!("{path}/reply"));
        let page_url = app.url(&path);
        async move {
            let page = http
                .get(page_url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let key = frontdesk_e2e::reply_key_of(&page);
            let form = reqwest::multipart::Form::new()
                .text("csrf", frontdesk_e2e::csrf_of(&page))
                .text("key", key)
                .text("text", text)
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(bytes)
                        .file_name(name)
                        .mime_str(kind)
                        .unwrap(),
                );
            let sent = http.post(url).multipart(form).send().await.unwrap();
            assert_eq!(sent.status(), 303);
        }
    };
    reply(
        "这是收据",
        "receipt.pdf",
        "application/pdf",
        b"%PDF-1.4 receipt".to_vec(),
    )
    .await;
    reply(
        "",
        "screenshot.png",
        "image/png",
        b"\x89PNG\r\n\x1a\n....".to_vec(),
    )
    .await;
    until("the document and the photo", || async {
        let methods: Vec<String> = fake.requests().into_iter().map(|r| r.method).collect();
        methods.contains(&"senddocument".to_owned()) && methods.contains(&"sendphoto".to_owned())
    })
    .await;
    let requests = fake.requests();
    let document = requests
        .iter()
        .find(|r| r.method == "senddocument")
        .unwrap();
    assert_eq!(document.params["chat_id"], "42", "{}", document.params);
    assert_eq!(
        document.params["document"]["file_name"], "receipt.pdf",
        "{}",
        document.params
    );
    assert_eq!(document.params["document"]["size"], 16);
    let photo = requests.iter().find(|r| r.method == "sendphoto").unwrap();
    assert_eq!(photo.params["photo"]["file_name"], "screenshot.png");
    // The text went first, then its file.
    let order: Vec<&str> = requests
        .iter()
        .filter(|r| r.method.starts_with("send"))
        .map(|r| r.method.as_str())
        .collect();
    let text_at = order.iter().rposition(|m| *m == "sendmessage").unwrap();
    let document_at = order.iter().position(|m| *m == "senddocument").unwrap();
    assert!(text_at < document_at, "{order:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_client_cannot_read_is_kept_and_polling_goes_on() {
    let db = TestDatabase::sqlite();
    let fake = FakeTelegram::start(TOKEN).await;
    let app = start(&db, &fake, false).await;
    // A field of a type the client does not expect (a newer Bot API, say).
    fake.push_update(json!({ "message": {
        "message_id": 31, "date": "soon",
        "chat": { "id": 42, "type": "private" },
        "from": { "id": 42, "is_bot": false, "first_name": "Wang" },
        "text": "还在吗",
    }}));
    fake.customer_writes(42, "后面这条也要收到");
    until("both messages", || async {
        app.inbound_messages().await.len() == 2
    })
    .await;
    let kept = app.inbound_messages().await;
    assert!(kept.iter().any(|m| m.text.ends_with("还在吗")));
    until("both confirmed", || async { fake.pending() == 0 }).await;
    app.stop().await;
}
