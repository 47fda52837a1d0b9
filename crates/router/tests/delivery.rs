//! The delivery worker end to end: real SQLite store, in-memory channel.
//!
//! Timing tests run the worker and the channel on paused tokio time. The store runs on
//! a second, ordinary runtime (see [`ElsewhereStore`]): paused time jumps ahead whenever
//! its runtime idles, which would otherwise fire sqlx's own timeouts while a query is
//! in flight on SQLite's thread.

use frontdesk_core::{
    Author, Channel, ChannelAccount, ChannelContext, ChannelKind, Clock, ConversationId,
    DeliveryOutcome, EventKind, Inbound, IngestOutcome, Sender,
};
use frontdesk_router::{DeliveryConfig, DeliveryWorker, Metrics, Pipeline, TokioClock};
use frontdesk_store::testing::TestDatabase;
use frontdesk_store::{NewReply, Store};
use frontdesk_testkit::MemoryChannel;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod elsewhere;
use elsewhere::{ElsewhereStore, on_paused_time};

/// A channel the delivery worker sends through (the website chat's replies are
/// delivered when stored and never reach the worker).
fn account() -> ChannelAccount {
    ChannelAccount::default_of(ChannelKind::Telegram)
}

fn customer(id: &str, text: &str) -> Inbound {
    let sender = Sender {
        external_id: "visitor-1".into(),
        display_name: None,
        language: Some("en".into()),
    };
    Inbound::new(account(), id, sender, "visitor-1", text).unwrap()
}

fn reply(conversation_id: ConversationId, text: &str) -> NewReply {
    NewReply {
        author: Author::Agent,
        ..NewReply::from_bot(conversation_id, text)
    }
}

fn quick() -> DeliveryConfig {
    DeliveryConfig {
        poll_interval: Duration::from_secs(1),
        ..DeliveryConfig::default()
    }
}

/// Starts a delivery worker for `channel`; cancel the token to stop it.
fn start_worker(
    store: &Arc<dyn Store>,
    channel: &MemoryChannel,
    config: DeliveryConfig,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let worker = DeliveryWorker::new(
        store.clone(),
        Arc::new(channel.clone()),
        Arc::new(TokioClock::new()),
        Metrics::new(),
        config,
    );
    (shutdown.clone(), tokio::spawn(worker.run(shutdown)))
}

async fn start_conversation(store: &dyn Store) -> ConversationId {
    match store
        .ingest(&customer("c1", "where is my withdrawal?"), None)
        .await
        .unwrap()
    {
        IngestOutcome::Stored {
            conversation_id, ..
        } => conversation_id,
        IngestOutcome::Duplicate => unreachable!(),
    }
}

#[test]
fn retry_after_delays_the_next_attempt_at_least_that_long() {
    on_paused_time(Duration::from_secs(60), || async {
        let (store, _db) = ElsewhereStore::sqlite();
        let store: Arc<dyn Store> = Arc::new(store);
        let channel = MemoryChannel::new(account());
        channel.script([DeliveryOutcome::RetryAfter(Duration::from_secs(30))]);
        let conversation_id = start_conversation(&*store).await;
        store
            .reply(reply(conversation_id, "we are checking"))
            .await
            .unwrap();

        let (shutdown, running) = start_worker(&store, &channel, quick());
        let attempts = channel.attempts_reach(2).await;
        let waited = attempts[1].at - attempts[0].at;
        assert!(
            waited >= Duration::from_secs(30),
            "retried after only {waited:?}"
        );
        assert!(
            waited <= Duration::from_secs(33),
            "retried late, after {waited:?}"
        );
        assert_eq!(channel.received(), ["we are checking"]);
        shutdown.cancel();
        running.await.unwrap();
    });
}

#[test]
fn transient_failures_back_off_and_then_fail_for_good() {
    on_paused_time(Duration::from_secs(60), || async {
        let (store, _db) = ElsewhereStore::sqlite();
        let store: Arc<dyn Store> = Arc::new(store);
        let channel = MemoryChannel::new(account());
        channel.script((0..3).map(|_| DeliveryOutcome::Transient("connection reset".into())));
        let conversation_id = start_conversation(&*store).await;
        store.reply(reply(conversation_id, "hello")).await.unwrap();
        let config = DeliveryConfig {
            max_attempts: 3,
            backoff_base: Duration::from_secs(10),
            ..quick()
        };
        let mut events = store.subscribe();
        let (shutdown, running) = start_worker(&store, &channel, config);
        let attempts = channel.attempts_reach(3).await;
        // Backoff doubles: at least 5 s (half of 10 s), then at least 10 s (half of 20 s).
        assert!(attempts[1].at - attempts[0].at >= Duration::from_secs(5));
        assert!(attempts[2].at - attempts[1].at >= Duration::from_secs(10));
        // After the third failure the row is failed for good: no fourth attempt.
        while events.recv().await.unwrap().kind != EventKind::DeliveryFailed {}
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(channel.attempts().len(), 3);
        let messages = store.messages(conversation_id, None, 0).await.unwrap();
        let delivery = messages.last().unwrap().delivery.clone();
        assert!(
            matches!(&delivery, Some(frontdesk_core::Delivery::Failed { reason }) if reason.contains("gave up after 3 attempts")),
            "{delivery:?}"
        );
        shutdown.cancel();
        running.await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_flows_from_the_channel_through_the_store_and_back_out() {
    let db = TestDatabase::sqlite();
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let metrics = Metrics::new();
    let channel = MemoryChannel::new(account());
    let shutdown = CancellationToken::new();
    let ctx = ChannelContext {
        intake: Arc::new(Pipeline::new(store.clone(), metrics.clone())),
        shutdown: shutdown.clone(),
    };
    let intake = {
        let channel = channel.clone();
        tokio::spawn(async move { channel.run(ctx).await })
    };
    let worker = DeliveryWorker::new(
        store.clone(),
        Arc::new(channel.clone()),
        Arc::new(TokioClock::new()),
        metrics.clone(),
        quick(),
    );
    let delivering = tokio::spawn(worker.run(shutdown.clone()));

    channel.customer_sends(customer("m1", "hi"));
    channel.customer_sends(customer("m1", "hi")); // the provider redelivers
    let mut events = store.subscribe();
    let conversation_id = loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        if let Some(c) = e.conversation_id {
            break c;
        }
    };
    store
        .reply(reply(conversation_id, "hello, how can we help?"))
        .await
        .unwrap();
    channel.wait_for_attempts(1, Duration::from_secs(10)).await;
    assert_eq!(channel.received(), ["hello, how can we help?"]);
    assert_eq!(
        channel.attempts()[0].outbound.reply_to.as_deref(),
        Some("m1")
    );
    shutdown.cancel();
    intake.await.unwrap().unwrap();
    delivering.await.unwrap();
    let text = metrics.render();
    assert!(
        text.contains("frontdesk_ingested_total{channel=\"telegram\",account=\"default\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("frontdesk_duplicates_total{channel=\"telegram\",account=\"default\"} 1"),
        "{text}"
    );
    assert_eq!(
        store
            .messages(conversation_id, None, 0)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_sends_in_flight() {
    let db = TestDatabase::sqlite();
    let store: Arc<dyn Store> = Arc::new(db.store().await);
    let channel = MemoryChannel::new(account());
    channel.hold_deliveries();
    let conversation_id = start_conversation(&*store).await;
    store
        .reply(reply(conversation_id, "one moment"))
        .await
        .unwrap();
    let (shutdown, running) = start_worker(&store, &channel, quick());
    channel
        .wait_for_sends_started(1, Duration::from_secs(10))
        .await;
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !running.is_finished(),
        "the worker waits for the send in flight"
    );
    channel.release();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(channel.received(), ["one moment"]);
    assert_eq!(
        store.outbox_depth().await.unwrap(),
        0,
        "the outcome was recorded"
    );
}

/// The clock the worker uses follows tokio time.
#[test]
fn the_tokio_clock_moves_with_paused_time() {
    on_paused_time(Duration::from_secs(10), || async {
        let clock = TokioClock::new();
        let t0 = clock.now();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now().since(t0), Duration::from_secs(90));
    });
}
