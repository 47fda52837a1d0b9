//! The fake Bot API behaves as the documentation says, so client code tested against
//! it meets the real thing prepared.

use frontdesk_testkit::FakeTelegram;
use frontdesk_testkit::telegram::Scripted;
use serde_json::{Value, json};
use std::time::Duration;

const TOKEN: &str = "123456:TEST-token";

async fn call(fake: &FakeTelegram, method: &str, params: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/bot{TOKEN}/{method}", fake.api_url()))
        .json(&params)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn ids(body: &Value) -> Vec<i64> {
    body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["update_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn updates_stay_until_an_offset_past_them_confirms_them() {
    let fake = FakeTelegram::start(TOKEN).await;
    let a = fake.customer_writes(42, "转账一直pending");
    let b = fake.customer_writes(42, "在吗");
    let (_, first) = call(&fake, "GetUpdates", json!({})).await;
    assert_eq!(ids(&first), [a, b]);
    // Not confirmed yet: the same again.
    let (_, again) = call(&fake, "getUpdates", json!({ "offset": a })).await;
    assert_eq!(ids(&again), [a, b]);
    let (_, rest) = call(&fake, "getupdates", json!({ "offset": a + 1 })).await;
    assert_eq!(ids(&rest), [b]);
    let (_, none) = call(&fake, "getUpdates", json!({ "offset": b + 1 })).await;
    assert!(ids(&none).is_empty());
    assert_eq!(fake.pending(), 0, "confirmed updates are forgotten");
    let (_, limited) = {
        let c = fake.customer_writes(7, "one");
        fake.customer_writes(7, "two");
        let r = call(&fake, "getUpdates", json!({ "offset": c, "limit": 1 })).await;
        assert_eq!(ids(&r.1), [c]);
        r
    };
    assert_eq!(limited["ok"], true);
}

#[tokio::test]
async fn a_long_poll_returns_when_an_update_arrives_and_a_second_poller_ends_the_first() {
    let fake = std::sync::Arc::new(FakeTelegram::start(TOKEN).await);
    let waiting = {
        let fake = fake.clone();
        tokio::spawn(async move { call(&fake, "getUpdates", json!({ "timeout": 20 })).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = fake.customer_writes(42, "hello");
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("answered before its timeout")
        .unwrap();
    assert_eq!((status, ids(&body)), (200, vec![id]));
    // Two pollers at once: the first one is told.
    let first = {
        let fake = fake.clone();
        tokio::spawn(async move {
            call(
                &fake,
                "getUpdates",
                json!({ "offset": id + 1, "timeout": 20 }),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = {
        let fake = fake.clone();
        tokio::spawn(async move {
            call(
                &fake,
                "getUpdates",
                json!({ "offset": id + 1, "timeout": 1 }),
            )
            .await
        })
    };
    // The first one ends as soon as the second one asks.
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("ended at once")
        .unwrap();
    fake.customer_writes(42, "wake up");
    let (second_status, _) = second.await.unwrap();
    assert_eq!(status, 409, "the first poller is ended: {body}");
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("terminated by other getUpdates request")
    );
    assert_eq!(second_status, 200);
}

#[tokio::test]
async fn send_message_counts_what_is_shown_and_refuses_too_long_or_empty() {
    let fake = FakeTelegram::start(TOKEN).await;
    let full: String = "好".repeat(4096);
    let (status, body) = call(&fake, "SendMessage", json!({ "chat_id": 42, "text": full })).await;
    assert_eq!(status, 200, "{body}");
    let too_long: String = "a".repeat(4097);
    let (status, body) = call(
        &fake,
        "sendMessage",
        json!({ "chat_id": 42, "text": too_long }),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: message is too long"))
    );
    // An emoji outside the BMP is two UTF-16 units, as Telegram counts.
    let emoji: String = "😀".repeat(2049);
    assert_eq!(
        call(
            &fake,
            "sendMessage",
            json!({ "chat_id": 42, "text": emoji })
        )
        .await
        .0,
        400
    );
    // HTML tags are not shown, so they do not count.
    let html = format!("<b>{}</b>", "x".repeat(4096));
    let (status, _) = call(
        &fake,
        "sendMessage",
        json!({ "chat_id": 43, "text": html, "parse_mode": "HTML",
                "reply_parameters": { "message_id": 5 } }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        call(&fake, "sendMessage", json!({ "chat_id": 42, "text": "  " }))
            .await
            .0,
        400
    );
    let sent = fake.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].reply_to, Some(5));
}

#[tokio::test]
async fn html_telegram_cannot_parse_is_refused_with_its_reason() {
    let fake = FakeTelegram::start(TOKEN).await;
    for (chat, text) in [(1, "a <wallet> b"), (2, "fees & gas"), (3, "<b>open")] {
        let (status, body) = call(
            &fake,
            "sendMessage",
            json!({ "chat_id": chat, "text": text, "parse_mode": "HTML" }),
        )
        .await;
        assert_eq!(status, 400, "{text}");
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .starts_with("Bad Request: can't parse entities"),
            "{body}"
        );
    }
    let (status, _) = call(
        &fake,
        "sendMessage",
        json!({ "chat_id": 4, "text": "a &lt;wallet&gt; &amp; <b>gas</b>", "parse_mode": "HTML" }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fake.sent()[0].text, "a &lt;wallet&gt; &amp; <b>gas</b>");
}

#[tokio::test]
async fn messages_sent_faster_than_telegram_allows_get_429() {
    let fake = FakeTelegram::start(TOKEN).await;
    let send = |chat: i64| {
        call(
            &fake,
            "sendMessage",
            json!({ "chat_id": chat, "text": "hi" }),
        )
    };
    assert_eq!(send(1).await.0, 200);
    // A second message to the same chat within a second.
    let (status, body) = send(1).await;
    assert_eq!(
        (status, body["parameters"]["retry_after"].as_i64()),
        (429, Some(1))
    );
    // Thirty chats in a second are fine; the thirty-first is not.
    for chat in 2..=30 {
        assert_eq!(send(chat).await.0, 200, "chat {chat}");
    }
    assert_eq!(send(31).await.0, 429);
    assert_eq!(fake.rate_limited(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(send(1).await.0, 200);
}

#[tokio::test]
async fn a_dropped_connection_gives_no_answer_and_sends_nothing() {
    let fake = FakeTelegram::start(TOKEN).await;
    fake.script("sendMessage", Scripted::Dropped, 1);
    let answer = reqwest::Client::new()
        .post(format!("{}/bot{TOKEN}/sendMessage", fake.api_url()))
        .json(&json!({ "chat_id": 1, "text": "hi" }))
        .send()
        .await;
    let body = match answer {
        Ok(r) => r.text().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(body.is_err(), "the client saw an answer");
    assert!(fake.sent().is_empty());
    let (status, _) = call(&fake, "sendMessage", json!({ "chat_id": 1, "text": "hi" })).await;
    assert_eq!(status, 200);
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn scripted_errors_come_as_the_bot_api_writes_them() {
    let fake = FakeTelegram::start(TOKEN).await;
    fake.script(
        "sendMessage",
        Scripted::TooManyRequests { retry_after: 7 },
        1,
    );
    fake.script("sendMessage", Scripted::Blocked, 1);
    let (status, body) = call(&fake, "sendMessage", json!({ "chat_id": 1, "text": "hi" })).await;
    assert_eq!(status, 429);
    assert_eq!(body["parameters"]["retry_after"], 7);
    assert_eq!(body["ok"], false);
    let (status, body) = call(&fake, "sendMessage", json!({ "chat_id": 1, "text": "hi" })).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (403, Some("Forbidden: bot was blocked by the user"))
    );
    assert_eq!(
        call(&fake, "sendMessage", json!({ "chat_id": 1, "text": "hi" }))
            .await
            .0,
        200
    );
    // Another bot's token.
    let r = reqwest::Client::new()
        .post(format!("{}/bot999:other/getMe", fake.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(call(&fake, "noSuchMethod", json!({})).await.0, 404);
    assert_eq!(
        fake.requests().len(),
        4,
        "every request to this bot is recorded"
    );
}

#[tokio::test]
async fn a_webhook_stops_get_updates_and_reports_its_state() {
    let fake = FakeTelegram::start(TOKEN).await;
    fake.customer_writes(42, "hello");
    let (status, _) = call(
        &fake,
        "setWebhook",
        json!({ "url": "https://desk.example/telegram", "secret_token": "s3cret" }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&fake, "getUpdates", json!({})).await;
    assert_eq!(status, 409);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("webhook is active")
    );
    fake.webhook_failed(
        1_790_000_100,
        "Wrong response from the webhook: 500 Internal Server Error",
    );
    let (_, info) = call(&fake, "getWebhookInfo", json!({})).await;
    assert_eq!(info["result"]["url"], "https://desk.example/telegram");
    assert_eq!(info["result"]["pending_update_count"], 1);
    assert!(
        info["result"]["last_error_message"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    assert_eq!(
        call(
            &fake,
            "setWebhook",
            json!({ "url": "http://desk.example/t" })
        )
        .await
        .0,
        400,
        "HTTPS only"
    );
    call(&fake, "deleteWebhook", json!({})).await;
    let (status, body) = call(&fake, "getUpdates", json!({})).await;
    assert_eq!((status, ids(&body).len()), (200, 1));
}

#[tokio::test]
async fn a_file_is_described_then_downloaded() {
    let fake = FakeTelegram::start(TOKEN).await;
    fake.add_file("AgAD-photo", "photos/file_7.jpg", vec![0xff, 0xd8, 0xff]);
    let (_, file) = call(&fake, "getFile", json!({ "file_id": "AgAD-photo" })).await;
    let path = file["result"]["file_path"].as_str().unwrap().to_owned();
    let bytes = reqwest::get(format!("{}/file/bot{TOKEN}/{path}", fake.api_url()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.to_vec(), vec![0xff, 0xd8, 0xff]);
    assert_eq!(
        call(&fake, "getFile", json!({ "file_id": "nope" })).await.0,
        400
    );
    // A document sent as multipart: recorded with its name and size.
    let form = reqwest::multipart::Form::new().text("chat_id", "42").part(
        "document",
        reqwest::multipart::Part::bytes(vec![1u8; 10]).file_name("r.pdf"),
    );
    let r = reqwest::Client::new()
        .post(format!("{}/bot{TOKEN}/sendDocument", fake.api_url()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let recorded = fake.requests().pop().unwrap();
    assert_eq!(recorded.params["document"]["size"], 10);
    assert_eq!(recorded.params["chat_id"], "42");
}
