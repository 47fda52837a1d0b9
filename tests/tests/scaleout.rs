//! Several instances on one PostgreSQL: one poller per channel account, elected with an
//! advisory lock and taken over within seconds when its instance dies.

use frontdesk_e2e::{TestApp, until};
use frontdesk_store::testing::TestDatabase;
use frontdesk_testkit::FakeTelegram;
use frontdesk_testkit::x::{FakeX, OAuth1Keys};
use std::time::Duration;

const TOKEN: &str = "7000000001:AAE-scale-out";
const CUSTOMER: &str = "2244994945";
const WAIT: Duration = Duration::from_secs(20);
const CHANNELS: [&str; 2] = ["telegram:default", "x:default"];

/// An instance with the Telegram bot and the X account, the bot off.
async fn instance(db: &TestDatabase, telegram: &FakeTelegram, x: &FakeX) -> TestApp {
    let telegram_url = telegram.api_url().to_owned();
    TestApp::start_with(db.url(), &[], move |c| {
        frontdesk_e2e::answering(c, false);
        frontdesk_e2e::on_fake_x(c, x);
        let t = &mut c.channels.telegram;
        t.enabled = true;
        t.token = Some(TOKEN.into());
        t.api_url = telegram_url;
    })
    .await
}

/// Whether `app` is ready and receives for `channel` itself (not standing by).
async fn receives(app: &TestApp, channel: &str) -> bool {
    let ready = app.readiness().await;
    ready["channels"][channel]["ok"] == true
        && !ready["channels"][channel]["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("standby")
}

async fn stored_texts(app: &TestApp, n: usize) -> Vec<String> {
    until(&format!("{n} customer messages"), WAIT, || async {
        app.inbound_messages().await.len() >= n
    })
    .await;
    let mut texts = app.inbound_texts().await;
    texts.sort();
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_polls_each_channel_and_another_takes_over_when_it_dies() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let telegram = FakeTelegram::start(TOKEN).await;
    let x = FakeX::start(OAuth1Keys::for_tests()).await;
    x.customer(CUSTOMER, "liwei");
    let first = instance(&db, &telegram, &x).await;
    // The first instance leads both channels before the second starts.
    for channel in CHANNELS {
        until(
            &format!("the first instance to receive for {channel}"),
            WAIT,
            || receives(&first, channel),
        )
        .await;
    }
    let second = instance(&db, &telegram, &x).await;
    until("the second instance to be ready", WAIT, || async {
        second.readiness().await["ready"] == true
    })
    .await;
    // A few election rounds: the second keeps standing by, and is ready as it does.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for channel in CHANNELS {
        assert!(
            !receives(&second, channel).await,
            "{channel} has two pollers"
        );
        assert!(receives(&first, channel).await);
    }

    telegram.customer_writes(42, "telegram one");
    x.mention(CUSTOMER, "x one");
    assert_eq!(stored_texts(&second, 2).await, ["telegram one", "x one"]);

    // The leader dies; the second takes both channels over within seconds and reads on
    // from the cursors the first committed.
    first.kill().await;
    telegram.customer_writes(42, "telegram two");
    x.mention(CUSTOMER, "x two");
    for channel in CHANNELS {
        until(
            &format!("the second instance to take {channel} over"),
            WAIT,
            || receives(&second, channel),
        )
        .await;
    }
    let texts = stored_texts(&second, 4).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        second.inbound_texts().await.len(),
        4,
        "nothing stored twice: {texts:?}"
    );
    assert_eq!(texts, ["telegram one", "telegram two", "x one", "x two"]);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_webhook_mode_every_instance_takes_telegrams_calls_and_stores_each_once() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    const SECRET: &str = "webhook-secret-0123456789";
    let telegram = FakeTelegram::start(TOKEN).await;
    let start = || {
        let url = telegram.api_url().to_owned();
        TestApp::start_with(db.url(), &[], move |c| {
            frontdesk_e2e::answering(c, false);
            // Both behind one proxy: the same public address.
            c.server.public_url = Some("https://support.example.test".into());
            let t = &mut c.channels.telegram;
            t.enabled = true;
            t.token = Some(TOKEN.into());
            t.api_url = url;
            t.mode = frontdesk::config::TelegramMode::Webhook;
            t.webhook_secret = Some(SECRET.into());
        })
    };
    let (first, second) = (start().await, start().await);
    let update = |id: i64, text: &str| {
        serde_json::json!({
            "update_id": id,
            "message": {
                "message_id": id, "date": 1_790_000_000,
                "chat": { "id": 42, "type": "private", "first_name": "Wang" },
                "from": { "id": 42, "is_bot": false, "first_name": "Wang" },
                "text": text,
            }
        })
    };
    let post = |app: &TestApp, body: serde_json::Value| {
        reqwest::Client::new()
            .post(app.url("/telegram/default/webhook"))
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .json(&body)
            .send()
    };
    for (app, id, text) in [(&first, 1, "to the first"), (&second, 2, "to the second")] {
        until(&format!("update {id} to be taken"), WAIT, || async {
            post(app, update(id, text)).await.unwrap().status() == 200
        })
        .await;
    }
    // Telegram retries through the proxy, which may pick the other instance.
    assert_eq!(
        post(&first, update(2, "to the second"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        stored_texts(&first, 2).await,
        ["to the first", "to the second"]
    );
    assert_eq!(second.inbound_texts().await.len(), 2);
    first.stop().await;
    second.stop().await;
}
