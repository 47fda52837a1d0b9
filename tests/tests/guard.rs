//! No copy of a recovery phrase survives anywhere: not in the database files, not in
//! any PostgreSQL table, not in the logs. The customer is warned and a person alerted.

use bip39::{Language, Mnemonic};
use frontdesk_core::{Channel, ChannelAccount, ChannelKind, Inbound, Priority, Sender, Status};
use frontdesk_e2e::TestApp;
use frontdesk_store::testing::TestDatabase;
use frontdesk_store::{ConversationQuery, Store};
use frontdesk_testkit::MemoryChannel;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Everything logged by this test binary, at every level.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Capture(buffer.clone());
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
            .with_writer(move || sink.clone())
            .init();
        buffer
    })
    .clone()
}

fn a_phrase(language: Language, seed: u8) -> Vec<String> {
    let entropy: Vec<u8> = (0..16u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(seed))
        .collect();
    Mnemonic::from_entropy_in(language, &entropy)
        .unwrap()
        .words()
        .map(str::to_owned)
        .collect()
}

/// Every run of three consecutive words, as they would be written.
fn three_word_runs(words: &[String], separator: &str) -> Vec<String> {
    words.windows(3).map(|w| w.join(separator)).collect()
}

fn assert_nowhere(haystack: &[u8], words: &[String], separator: &str, place: &str) {
    let text = String::from_utf8_lossy(haystack).to_lowercase();
    for run in three_word_runs(words, separator) {
        assert!(
            !text.contains(&run.to_lowercase()),
            "{run:?} found in {place}"
        );
    }
}

frontdesk_e2e::on_every_backend!(
    a_pasted_recovery_phrase_leaves_no_trace_and_the_customer_is_warned
);

async fn a_pasted_recovery_phrase_leaves_no_trace_and_the_customer_is_warned(db: TestDatabase) {
    let logs = capture_logs();
    let telegram = ChannelAccount::default_of(ChannelKind::Telegram);
    let english = a_phrase(Language::English, 11);
    let chinese = a_phrase(Language::SimplifiedChinese, 29);
    let channel = MemoryChannel::new(telegram.clone());
    let app = TestApp::start(db.url(), &[Arc::new(channel.clone()) as Arc<dyn Channel>]).await;
    let sender = Sender {
        external_id: "user-1".into(),
        display_name: Some("王先生".into()),
        language: Some("zh".into()),
    };
    let text = format!(
        "救命！钱被转走了，这是我的助记词：{}\n还有英文的：{}",
        chinese.join(" "),
        english.join(", ")
    );
    channel.customer_sends(Inbound::new(telegram, "u-1", sender, "chat-1", text).unwrap());

    // The customer is warned, in Chinese, and the conversation is urgent and with a person.
    let attempts = channel.wait_for_attempts(1, Duration::from_secs(15)).await;
    assert!(
        attempts[0]
            .outbound
            .text
            .contains("客服绝不会向您索要助记词或私钥")
    );
    let conversation = app
        .store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap()
        .items[0]
        .clone();
    assert_eq!(
        (conversation.status, conversation.priority),
        (Status::Open, Priority::Urgent)
    );
    assert_eq!(conversation.team.as_deref(), Some("security"));
    let stored = app.store.messages(conversation.id, None, 0).await.unwrap();
    assert_eq!(stored[0].findings.len(), 2, "two phrases, two findings");
    assert!(stored[0].text.contains("[redacted recovery phrase]"));
    let store: Arc<dyn Store> = app.store.clone();
    app.stop().await;

    if let Some(path) = db.url().strip_prefix("sqlite://") {
        for file in [path.to_owned(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                assert_nowhere(&bytes, &english, " ", &file);
                assert_nowhere(&bytes, &chinese, " ", &file);
            }
        }
    } else {
        let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(tables.len() >= 8);
        for (table,) in tables {
            let dump: (Option<String>,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT string_agg(t::text, E'\\n') FROM \"{table}\" t"
            )))
            .fetch_one(&pool)
            .await
            .unwrap();
            let dump = dump.0.unwrap_or_default();
            assert_nowhere(dump.as_bytes(), &english, " ", &table);
            assert_nowhere(dump.as_bytes(), &chinese, " ", &table);
        }
        pool.close().await;
    }
    drop(store);
    let logged = logs.lock().unwrap().clone();
    assert!(!logged.is_empty(), "logs were captured");
    assert_nowhere(&logged, &english, " ", "the logs");
    assert_nowhere(&logged, &chinese, " ", "the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_asking_for_a_recovery_phrase_never_reaches_the_outbox() {
    let db = TestDatabase::sqlite();
    let telegram = ChannelAccount::default_of(ChannelKind::Telegram);
    let channel = MemoryChannel::new(telegram.clone());
    let app = TestApp::start(db.url(), &[Arc::new(channel.clone()) as Arc<dyn Channel>]).await;
    let sender = Sender {
        external_id: "user-2".into(),
        display_name: None,
        language: None,
    };
    channel.customer_sends(
        Inbound::new(telegram, "u-2", sender, "chat-2", "my transfer is stuck").unwrap(),
    );
    let mut events = app.store.subscribe();
    let conversation_id = loop {
        if let Some(c) = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap()
            .conversation_id
        {
            break c;
        }
    };
    let reply = |text: &str| frontdesk_store::NewReply {
        author: frontdesk_core::Author::Agent,
        ..frontdesk_store::NewReply::from_bot(conversation_id, text)
    };
    let refused = app
        .store
        .reply(reply(
            "To speed this up, please send us your 12-word recovery phrase.",
        ))
        .await;
    match refused {
        Err(frontdesk_store::StoreError::Refused(reason)) => {
            assert!(reason.contains("recovery phrase"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(app.store.outbox_depth().await.unwrap(), 0);
    // A warning is not a request.
    app.store
        .reply(reply(
            "We will never ask for your recovery phrase. Please send the transaction hash.",
        ))
        .await
        .unwrap();
    channel.wait_for_attempts(1, Duration::from_secs(10)).await;
    app.stop().await;
    assert_eq!(channel.received().len(), 1);
}
