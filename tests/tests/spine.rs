//! The spine end to end: a channel receives, the store keeps each message exactly once,
//! a reply leaves exactly once, across restarts, on SQLite and PostgreSQL.

use frontdesk_core::{
    Author, Channel, ChannelAccount, ChannelKind, EventKind, Inbound, Sender, Status,
};
use frontdesk_e2e::TestApp;
use frontdesk_store::testing::TestDatabase;
use frontdesk_store::{ConversationQuery, NewReply, Store};
use frontdesk_testkit::MemoryChannel;
use std::sync::Arc;
use std::time::Duration;

fn telegram() -> ChannelAccount {
    ChannelAccount::default_of(ChannelKind::Telegram)
}

fn from_customer(n: usize, customer: usize) -> Inbound {
    let sender = Sender {
        external_id: format!("user-{customer}"),
        display_name: Some(format!("客户 {customer}")),
        language: Some("zh".into()),
    };
    Inbound::new(
        telegram(),
        format!("update-{n}"),
        sender,
        format!("chat-{customer}"),
        format!("消息 {n}"),
    )
    .unwrap()
}

/// Counts inbound messages stored, over all conversations.
async fn stored_inbound(store: &dyn Store) -> Vec<String> {
    let mut texts = Vec::new();
    let mut query = ConversationQuery {
        limit: 200,
        ..Default::default()
    };
    loop {
        let page = store.list_conversations(&query).await.unwrap();
        for c in &page.items {
            for m in store.messages(c.id, None, 1000).await.unwrap() {
                if m.author == Author::Contact {
                    texts.push(m.text);
                }
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break texts,
        }
    }
}

async fn wait_for_inbound(store: &dyn Store, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let texts = stored_inbound(store).await;
        if texts.len() >= n || tokio::time::Instant::now() > deadline {
            return texts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

frontdesk_e2e::on_every_backend!(
    a_customer_message_is_stored_and_the_reply_arrives_once,
    a_restart_in_the_middle_of_a_stream_loses_and_doubles_nothing,
);

async fn a_customer_message_is_stored_and_the_reply_arrives_once(db: TestDatabase) {
    let channel = MemoryChannel::new(telegram());
    let app = TestApp::start(db.url(), &[Arc::new(channel.clone()) as Arc<dyn Channel>]).await;
    channel.customer_sends(from_customer(1, 7));
    channel.customer_sends(from_customer(1, 7)); // Telegram sends the same update again
    assert_eq!(wait_for_inbound(&*app.store, 1).await, ["消息 1"]);

    let page = app
        .store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let conversation = &page.items[0];
    // With the bot off, every conversation goes straight to the people's queue.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app
        .store
        .conversation(conversation.id)
        .await
        .unwrap()
        .unwrap()
        .status
        != Status::Open
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not handed to people"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut events = app.store.subscribe();
    app.store
        .reply(NewReply {
            author: Author::Agent,
            idempotency_key: Some("reply-1".into()),
            ..NewReply::from_bot(conversation.id, "您好，请提供交易哈希")
        })
        .await
        .unwrap();
    // The outcome is recorded once the worker commits it, after the channel took it.
    tokio::time::timeout(Duration::from_secs(10), async {
        while events.recv().await.unwrap().kind != EventKind::DeliverySent {}
    })
    .await
    .expect("the reply is recorded as sent");
    let attempts = channel.attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outbound.recipient, "user-7");
    assert_eq!(attempts[0].outbound.reply_to.as_deref(), Some("update-1"));

    // The repeated update is taken after the engine's turn on the first one, which may
    // still be running on a busy machine: wait for it to be counted.
    let duplicate = "frontdesk_duplicates_total{channel=\"telegram\",account=\"default\"} 1";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = reqwest::get(app.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains(duplicate) || tokio::time::Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(metrics.contains(duplicate), "{metrics}");
    assert!(
        metrics.contains("frontdesk_ingested_total{channel=\"telegram\",account=\"default\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("frontdesk_outbox_depth 0"), "{metrics}");
    let ready: serde_json::Value = reqwest::get(app.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["channels"]["telegram:default"]["ok"], true, "{ready}");
    app.stop().await;
    assert_eq!(
        channel.received(),
        ["您好，请提供交易哈希"],
        "delivered exactly once"
    );
}

async fn a_restart_in_the_middle_of_a_stream_loses_and_doubles_nothing(db: TestDatabase) {
    let channel = MemoryChannel::new(telegram());
    let attached = [Arc::new(channel.clone()) as Arc<dyn Channel>];
    let first = TestApp::start(db.url(), &attached).await;
    for n in 0..60 {
        channel.customer_sends(from_customer(n, n % 7));
    }
    wait_for_inbound(&*first.store, 20).await;
    first.stop().await;

    // While it is down, customers keep writing and an agent's reply is queued.
    for n in 60..120 {
        channel.customer_sends(from_customer(n, n % 7));
    }
    let store = db.store().await;
    let conversation = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap()
        .items[0]
        .clone();
    store
        .reply(NewReply {
            author: Author::Agent,
            ..NewReply::from_bot(conversation.id, "we are on it")
        })
        .await
        .unwrap();

    let second = TestApp::start(db.url(), &attached).await;
    let mut texts = wait_for_inbound(&*second.store, 120).await;
    channel.wait_for_attempts(1, Duration::from_secs(10)).await;
    second.stop().await;

    texts.sort();
    let mut expected: Vec<String> = (0..120).map(|n| format!("消息 {n}")).collect();
    expected.sort();
    assert_eq!(texts, expected, "every message stored exactly once");
    assert_eq!(
        channel.received(),
        ["we are on it"],
        "the queued reply left once"
    );
}
