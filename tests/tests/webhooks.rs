//! Outbound webhooks against a receiver on 127.0.0.1: signed, in order, retried after
//! a failure, and each event delivered once it succeeds.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use frontdesk_core::{Channel, ChannelAccount, ChannelKind, Inbound, Sender};
use frontdesk_e2e::TestApp;
use frontdesk_store::testing::TestDatabase;
use frontdesk_testkit::MemoryChannel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

frontdesk_e2e::on_every_backend!(webhooks_are_signed_sent_in_order_and_retried_after_a_failure,);

const SECRET: &str = "a-long-webhook-secret";

#[derive(Debug, Clone)]
struct Received {
    answered: u16,
    event: String,
    event_id: i64,
    signature: String,
    body: Vec<u8>,
}

/// A receiver that fails its first request with 500 and takes the rest.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                let answered = if log.is_empty() { 500 } else { 200 };
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                log.push(Received {
                    answered,
                    event: header("x-frontdesk-event"),
                    event_id: header("x-frontdesk-event-id").parse().unwrap_or(-1),
                    signature: header("x-frontdesk-signature"),
                    body: body.to_vec(),
                });
                StatusCode::from_u16(answered).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn webhooks_are_signed_sent_in_order_and_retried_after_a_failure(db: TestDatabase) {
    let (url, seen) = receiver().await;
    let channel = MemoryChannel::new(ChannelAccount::default_of(ChannelKind::Telegram));
    let app = TestApp::start_with(
        db.url(),
        &[Arc::new(channel.clone()) as Arc<dyn Channel>],
        |c| {
            c.bot.enabled = false;
            c.webhooks.insert(
                "crm".into(),
                frontdesk::config::Webhook {
                    url,
                    secret: SECRET.to_owned().into(),
                    events: Vec::new(),
                },
            );
        },
    )
    .await;
    // Let the webhook take its starting place before anything happens.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sender = Sender {
        external_id: "user-3".into(),
        display_name: Some("Zhao".into()),
        language: None,
    };
    let account = ChannelAccount::default_of(ChannelKind::Telegram);
    channel.customer_sends(
        Inbound::new(account, "w-1", sender, "chat-3", "我的USDT提现还没到").unwrap(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let log = seen.lock().unwrap().clone();
        let ok: Vec<Received> = log.iter().filter(|r| r.answered == 200).cloned().collect();
        let kinds: Vec<&str> = ok.iter().map(|r| r.event.as_str()).collect();
        if kinds.contains(&"conversation.status_changed") && kinds.contains(&"message.created") {
            break log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered: {:?}",
            log.iter()
                .map(|r| (&r.event, r.answered))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The first attempt failed and the same event came again, first.
    assert_eq!(delivered[0].answered, 500);
    assert_eq!(delivered[1].event_id, delivered[0].event_id);
    assert_eq!(delivered[0].event, "conversation.created");
    let ok: Vec<&Received> = delivered.iter().filter(|r| r.answered == 200).collect();
    let ids: Vec<i64> = ok.iter().map(|r| r.event_id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, once: {ids:?}"
    );
    for r in &ok {
        // t=...,v1=HMAC(secret, t + "." + body)
        let t: i64 = r.signature["t=".len()..r.signature.find(',').unwrap()]
            .parse()
            .unwrap();
        assert_eq!(
            r.signature,
            frontdesk_web::webhooks::signature(SECRET, t, &r.body)
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["type"], r.event.as_str());
        assert_eq!(body["id"], r.event_id);
    }
    let message = ok.iter().find(|r| r.event == "message.created").unwrap();
    let body: serde_json::Value = serde_json::from_slice(&message.body).unwrap();
    assert_eq!(body["message"]["text"], "我的USDT提现还没到");
    // A signature with the wrong secret does not match.
    assert_ne!(
        ok[0].signature,
        frontdesk_web::webhooks::signature("another-secret-entirely", 0, &ok[0].body)
    );
    app.stop().await;
}
