//! `frontdesk bench`: throughput measured against a baseline in the same run.
//!
//! The machine this runs on is shared and noisy, so absolute rates mean little; the
//! ratio to a baseline measured moments apart on the same database is the figure.

use anyhow::Context;
use frontdesk_core::{
    ChannelAccount, ChannelKind, Inbound, IngestOutcome, Intake, Sender, Timestamp,
};
use frontdesk_router::{Metrics, Pipeline};
use frontdesk_store::Store;
use frontdesk_store::bench::BareRow;
use frontdesk_store::testing::TestDatabase;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchBackend {
    Sqlite,
    Postgres,
}

/// What `bench ingest` measured.
#[derive(Debug, Clone)]
pub struct IngestReport {
    pub messages: usize,
    pub contacts: usize,
    pub ingest: Duration,
    pub bare: Duration,
}

impl IngestReport {
    pub fn ingest_rate(&self) -> f64 {
        self.messages as f64 / self.ingest.as_secs_f64()
    }
    pub fn bare_rate(&self) -> f64 {
        self.messages as f64 / self.bare.as_secs_f64()
    }
    pub fn ratio(&self) -> f64 {
        self.ingest_rate() / self.bare_rate()
    }
}

impl std::fmt::Display for IngestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "messages: {}", self.messages)?;
        writeln!(f, "contacts: {}", self.contacts)?;
        writeln!(f, "ingest_per_second: {:.0}", self.ingest_rate())?;
        writeln!(f, "bare_insert_per_second: {:.0}", self.bare_rate())?;
        write!(f, "ratio: {:.3}", self.ratio())
    }
}

const CONTACTS: usize = 1000;
/// Messages per alternation between the two sides.
const CHUNK: usize = 500;

/// Ingests `messages` distinct messages from 1,000 contacts through the real pipeline,
/// and writes the same rows with bare INSERTs into a table with the same indexes.
pub async fn ingest(messages: usize, backend: BenchBackend) -> anyhow::Result<IngestReport> {
    let db = match backend {
        BenchBackend::Sqlite => TestDatabase::sqlite(),
        BenchBackend::Postgres => TestDatabase::postgres().await.with_context(|| {
            format!(
                "set {} to a PostgreSQL server URL (a scratch database is created on it)",
                frontdesk_store::testing::POSTGRES_URL_VAR
            )
        })?,
    };
    // The production store options: the guard and the entity finder run on every message.
    let options = crate::app::store_options(&crate::config::Config::default());
    let store = Arc::new(db.store_with(options).await?);
    let account = ChannelAccount::new(ChannelKind::Telegram, "bench")?;
    let inbound: Vec<Inbound> = (0..messages)
        .map(|i| {
            let contact = i % CONTACTS;
            let sender = Sender {
                external_id: format!("user-{contact}"),
                display_name: Some(format!("Customer {contact}")),
                language: Some(
                    if contact.is_multiple_of(2) {
                        "zh"
                    } else {
                        "en"
                    }
                    .into(),
                ),
            };
            let text = format!(
                "Message {i}: my transfer from yesterday is still pending, order {}",
                100_000 + i
            );
            Inbound::new(
                account.clone(),
                format!("u{i}"),
                sender,
                format!("chat-{contact}"),
                text,
            )
        })
        .collect::<Result<_, _>>()?;

    store.bench_create_bare_table().await?;
    let now = Timestamp::now().as_micros();
    let rows: Vec<BareRow> = inbound
        .iter()
        .enumerate()
        .map(|(i, m)| BareRow {
            conversation_id: (i % CONTACTS) as i64 + 1,
            channel: account.kind().as_str().into(),
            account: account.name().into(),
            sender_id: m.sender.external_id.clone(),
            external_id: m.external_id.clone(),
            text: m.text.clone(),
            created_at: now,
        })
        .collect();

    // The two sides alternate in chunks, so that the machine's load, which drifts over
    // seconds, weighs on both alike.
    let pipeline = Pipeline::new(store.clone() as Arc<dyn Store>, Metrics::new());
    let (mut ingest, mut bare) = (Duration::ZERO, Duration::ZERO);
    for (chunk, (messages, rows)) in inbound.chunks(CHUNK).zip(rows.chunks(CHUNK)).enumerate() {
        let started = Instant::now();
        for (j, message) in messages.iter().enumerate() {
            let cursor = (chunk * CHUNK + j + 1).to_string();
            let outcome = pipeline.ingest(message.clone(), Some(cursor)).await?;
            anyhow::ensure!(
                matches!(outcome, IngestOutcome::Stored { .. }),
                "message not stored"
            );
        }
        ingest += started.elapsed();
        let started = Instant::now();
        for row in rows {
            store.bench_bare_insert(row).await?;
        }
        bare += started.elapsed();
    }
    Ok(IngestReport {
        messages,
        contacts: CONTACTS.min(messages),
        ingest,
        bare,
    })
}

/// What `bench inbox` measured: p50 and p95 of the inbox's reads over a large
/// database, and the process's resident memory.
#[derive(Debug, Clone)]
pub struct InboxReport {
    pub conversations: usize,
    pub messages: usize,
    pub seed: Duration,
    /// Writing the search terms of every seeded message.
    pub index: Duration,
    /// (what, p50, p95)
    pub reads: Vec<(&'static str, Duration, Duration)>,
    pub rss_kib: Option<u64>,
}

impl std::fmt::Display for InboxReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "conversations: {}", self.conversations)?;
        writeln!(f, "messages: {}", self.messages)?;
        writeln!(f, "seed_seconds: {:.1}", self.seed.as_secs_f64())?;
        writeln!(f, "index_seconds: {:.1}", self.index.as_secs_f64())?;
        for (what, p50, p95) in &self.reads {
            writeln!(
                f,
                "{what}_ms: p50 {:.2} p95 {:.2}",
                p50.as_secs_f64() * 1000.0,
                p95.as_secs_f64() * 1000.0
            )?;
        }
        match self.rss_kib {
            Some(kib) => write!(f, "rss_mib: {:.1}", kib as f64 / 1024.0),
            None => write!(f, "rss_mib: unknown"),
        }
    }
}

/// The resident set size of this process, from /proc (Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Seeds a fresh SQLite database with `conversations` conversations of `per`
/// messages each (in SQL, in one transaction), then times the inbox's reads through
/// the store: the newest page, a filtered page, a search, a conversation's messages.
pub async fn inbox(conversations: usize, per: usize) -> anyhow::Result<InboxReport> {
    use frontdesk_store::{AssigneeFilter, ConversationQuery};
    let db = TestDatabase::sqlite();
    let store = db.store().await;
    let n = conversations.max(1);
    let started = Instant::now();
    // A recursive CTE makes the rows inside the database: the seed is not the subject.
    let seed = format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
         INSERT INTO contacts (id, name, created_at, updated_at)
             SELECT i, 'customer ' || i, i * 1000000, i * 1000000 FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
         INSERT INTO conversations (id, channel, account, contact_id, thread_key, status,
                 priority, assignee_id, team, created_at, updated_at, last_message_at)
             SELECT i, CASE i % 4 WHEN 0 THEN 'telegram' WHEN 1 THEN 'email'
                              WHEN 2 THEN 'webchat' ELSE 'x' END,
                    'default', i, 'thread-' || i,
                    CASE i % 5 WHEN 0 THEN 'open' WHEN 1 THEN 'resolved' WHEN 2 THEN 'pending'
                               WHEN 3 THEN 'bot' ELSE 'resolved' END,
                    CASE i % 10 WHEN 0 THEN 'urgent' WHEN 1 THEN 'high' ELSE 'normal' END,
                    NULL, 'general', i * 1000000, i * 1000000, i * 1000000 FROM n;
         WITH RECURSIVE m(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM m WHERE j < {n} * {per} - 1)
         INSERT INTO messages (conversation_id, channel, account, direction, author, kind,
                 text, external_id, created_at)
             SELECT j / {per} + 1, 'telegram', 'default',
                    CASE j % 2 WHEN 0 THEN 'in' ELSE 'out' END,
                    CASE j % 2 WHEN 0 THEN 'contact' ELSE 'agent' END, 'text',
                    CASE j % 7 WHEN 0 THEN '转账一直 pending，交易哈希 0x' || hex(j) || ' 请帮忙查一下'
                               WHEN 1 THEN 'My withdrawal of ' || (j % 997) || ' USDT has not arrived'
                               WHEN 2 THEN '您好，请提供交易哈希和账户邮箱，我们马上为您查询。'
                               WHEN 3 THEN 'How do I reset my password? Order ' || j
                               ELSE '谢谢，已经收到了 ' || j END,
                    'seed-' || j, (j / {per} + 1) * 1000000 + j % {per}
             FROM m;
         COMMIT;"
    );
    store
        .execute_raw(&seed)
        .await
        .context("seeding the benchmark database")?;
    let seed_took = started.elapsed();
    // The search terms, as `migrate` writes them for rows that lack them.
    let started = Instant::now();
    store.write_search_terms().await?;
    let index_took = started.elapsed();
    let store: Arc<dyn Store> = Arc::new(store);
    let time = |q: ConversationQuery| {
        let store = store.clone();
        async move {
            let mut took = Vec::new();
            for _ in 0..50 {
                let t = Instant::now();
                store.list_conversations(&q).await?;
                took.push(t.elapsed());
            }
            anyhow::Ok(took)
        }
    };
    let pct = |mut v: Vec<Duration>| {
        v.sort();
        let at = |p: usize| v[(v.len() * p / 100).min(v.len() - 1)];
        (at(50), at(95))
    };
    let mut reads = Vec::new();
    let list = time(ConversationQuery::default()).await?;
    let (a, b) = pct(list);
    reads.push(("list_newest", a, b));
    let filter = time(ConversationQuery {
        status: Some(frontdesk_core::Status::Open),
        assignee: AssigneeFilter::Unassigned,
        channel: Some(ChannelKind::Telegram),
        ..ConversationQuery::default()
    })
    .await?;
    let (a, b) = pct(filter);
    reads.push(("filter_open_unassigned_telegram", a, b));
    // A rare phrase, a common Chinese word, a common English prefix, and a word
    // nobody wrote (the index must say "none" fast, not scan).
    for (what, text) in [
        ("search_rare_words", "order 12345"),
        ("search_common_chinese", "转账"),
        ("search_common_prefix", "withdraw"),
        ("search_absent", "nonexistentword"),
    ] {
        let took = time(ConversationQuery {
            text: Some(text.into()),
            ..ConversationQuery::default()
        })
        .await?;
        let (a, b) = pct(took);
        reads.push((what, a, b));
    }
    let mut took = Vec::new();
    for i in 0..50u64 {
        let id = frontdesk_core::ConversationId(((i * 7919) % n as u64 + 1) as i64);
        let t = Instant::now();
        store.messages(id, None, 200).await?;
        took.push(t.elapsed());
    }
    let (a, b) = pct(took);
    reads.push(("conversation_messages", a, b));
    Ok(InboxReport {
        conversations: n,
        messages: n * per,
        seed: seed_took,
        index: index_took,
        reads,
        rss_kib: rss_kib(),
    })
}

/// What a channel benchmark (`bench telegram`, `bench x`) measured: customer messages
/// from a fake provider through the channel's receiving side into the store, against
/// the same messages handed straight to the pipeline.
#[derive(Debug, Clone)]
pub struct ChannelReport {
    /// What was received (`updates`, `mentions`).
    pub what: &'static str,
    /// How it was received (`polling`).
    pub how: &'static str,
    pub messages: usize,
    pub through_channel: Duration,
    /// The mean of two direct runs, one before and one after the channel's run.
    pub direct: Duration,
}

impl std::fmt::Display for ChannelReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = |d: Duration| self.messages as f64 / d.as_secs_f64();
        writeln!(f, "{}: {}", self.what, self.messages)?;
        writeln!(
            f,
            "{}_{}_per_second: {:.0}",
            self.how,
            self.what,
            rate(self.through_channel)
        )?;
        writeln!(f, "direct_ingest_per_second: {:.0}", rate(self.direct))?;
        write!(
            f,
            "ratio: {:.3}",
            self.direct.as_secs_f64() / self.through_channel.as_secs_f64()
        )
    }
}

/// Stores `n` messages (`message(i)`, each with cursor `i + 1`) by calling the pipeline
/// directly, into a fresh SQLite store: the channel benchmarks' baseline.
async fn direct_ingest(
    n: usize,
    message: impl Fn(usize) -> anyhow::Result<Inbound>,
) -> anyhow::Result<Duration> {
    let options = crate::app::store_options(&crate::config::Config::default());
    let db = TestDatabase::sqlite();
    let store: Arc<dyn Store> = Arc::new(db.store_with(options).await?);
    let pipeline = Pipeline::new(store, Metrics::new());
    let started = Instant::now();
    for i in 0..n {
        pipeline
            .ingest(message(i)?, Some((i + 1).to_string()))
            .await?;
    }
    Ok(started.elapsed())
}

/// Times `channel` receiving until `intake` has stored its target.
async fn through(
    channel: Arc<dyn frontdesk_core::Channel>,
    intake: Arc<Counting>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let (stop, receiving) = receive(channel, intake.clone());
    tokio::time::timeout(Duration::from_secs(600), intake.done.notified())
        .await
        .context("the channel did not store every message within 10 minutes")?;
    let elapsed = started.elapsed();
    stop.cancel();
    let _ = receiving.await;
    Ok(elapsed)
}

/// Runs `channel`'s receiving side into `intake` until the returned token is cancelled.
fn receive(
    channel: Arc<dyn frontdesk_core::Channel>,
    intake: Arc<Counting>,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<Result<(), String>>,
) {
    let stop = tokio_util::sync::CancellationToken::new();
    let ctx = frontdesk_core::ChannelContext {
        intake,
        shutdown: stop.clone(),
    };
    (
        stop.clone(),
        tokio::spawn(async move { channel.run(ctx).await }),
    )
}

/// Counts what the pipeline stores and says when `target` is reached.
#[derive(Debug)]
struct Counting {
    pipeline: Pipeline,
    stored: std::sync::atomic::AtomicUsize,
    target: usize,
    done: tokio::sync::Notify,
}

impl Counting {
    fn new(store: Arc<dyn Store>, target: usize) -> Self {
        Self {
            pipeline: Pipeline::new(store, Metrics::new()),
            stored: Default::default(),
            target,
            done: tokio::sync::Notify::new(),
        }
    }

    /// Messages stored so far.
    fn stored(&self) -> usize {
        self.stored.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Intake for Counting {
    async fn cursor(
        &self,
        account: &ChannelAccount,
    ) -> Result<Option<String>, frontdesk_core::IntakeError> {
        self.pipeline.cursor(account).await
    }

    async fn move_cursor(
        &self,
        account: &ChannelAccount,
        cursor: String,
    ) -> Result<(), frontdesk_core::IntakeError> {
        self.pipeline.move_cursor(account, cursor).await
    }

    async fn thread_of_messages(
        &self,
        account: &ChannelAccount,
        external_ids: &[String],
    ) -> Result<Option<String>, frontdesk_core::IntakeError> {
        self.pipeline
            .thread_of_messages(account, external_ids)
            .await
    }

    async fn thread_of_conversation(
        &self,
        account: &ChannelAccount,
        id: frontdesk_core::ConversationId,
    ) -> Result<Option<String>, frontdesk_core::IntakeError> {
        self.pipeline.thread_of_conversation(account, id).await
    }

    async fn ingest(
        &self,
        inbound: Inbound,
        cursor: Option<String>,
    ) -> Result<IngestOutcome, frontdesk_core::IntakeError> {
        let outcome = self.pipeline.ingest(inbound, cursor).await?;
        if matches!(outcome, IngestOutcome::Stored { .. }) {
            let n = self
                .stored
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1;
            if n == self.target {
                self.done.notify_one();
            }
        }
        Ok(outcome)
    }
}

/// The text of bench message `i`.
fn bench_text(i: usize) -> String {
    format!(
        "Message {i}: my transfer from yesterday is still pending, order {}",
        100_000 + i
    )
}

/// `updates` private messages from 1,000 customers queued in a fake Bot API on
/// 127.0.0.1 and received by the Telegram channel's long polling (teloxide, offsets
/// committed with each message) into a fresh SQLite store; the baseline stores the
/// same messages by calling the pipeline directly.
pub async fn telegram(updates: usize) -> anyhow::Result<ChannelReport> {
    let token = "7000000001:bench-token";
    let account = ChannelAccount::default_of(ChannelKind::Telegram);
    let direct = |round: usize| {
        let account = account.clone();
        direct_ingest(updates, move |i| {
            let user = 1000 + (i % CONTACTS) as i64;
            let sender = Sender {
                external_id: user.to_string(),
                display_name: Some("Wang".into()),
                language: Some("zh".into()),
            };
            Ok(Inbound::new(
                account.clone(),
                format!("{user}:{round}{i}"),
                sender,
                user.to_string(),
                bench_text(i),
            )?)
        })
    };
    let before = direct(1).await?;

    let fake = frontdesk_testkit::FakeTelegram::start(token).await;
    for i in 0..updates {
        fake.customer_writes(1000 + (i % CONTACTS) as i64, &bench_text(i));
    }
    let options = crate::app::store_options(&crate::config::Config::default());
    let db = TestDatabase::sqlite();
    let store: Arc<dyn Store> = Arc::new(db.store_with(options).await?);
    let intake = Arc::new(Counting::new(store.clone(), updates));
    let config = frontdesk_telegram::TelegramConfig::new(
        account.clone(),
        token.to_owned().into(),
        fake.api_url(),
    );
    let channel = Arc::new(frontdesk_telegram::TelegramChannel::new(
        config,
        Arc::new(frontdesk_router::StoredFiles(store)),
    )?);
    let polling = through(channel, intake).await?;

    let after = direct(2).await?;
    Ok(ChannelReport {
        what: "updates",
        how: "polling",
        messages: updates,
        through_channel: polling,
        direct: (before + after) / 2,
    })
}

/// `mentions` posts mentioning the account from 1,000 customers, put on the fake X's
/// timeline 500 at a time (X lists only the newest 800 mentions, so a bigger burst
/// between two polls would lose the oldest), received by the X channel's polling
/// (OAuth 1.0a signed, `since_id`, pages of 100, each post committed with its cursor)
/// into a fresh SQLite store; the baseline stores the same posts by calling the
/// pipeline directly.
pub async fn x(mentions: usize) -> anyhow::Result<ChannelReport> {
    use frontdesk_testkit::x::{ACCOUNT_ID, Endpoint, FakeX, OAuth1Keys};
    let account = ChannelAccount::default_of(ChannelKind::X);
    let customer = |i: usize| (2_000_000_000 + (i % CONTACTS)).to_string();
    let direct = |round: usize| {
        let account = account.clone();
        direct_ingest(mentions, move |i| {
            let sender = Sender {
                external_id: customer(i),
                display_name: Some("Wang (@wang)".into()),
                language: Some("en".into()),
            };
            Ok(Inbound::new(
                account.clone(),
                format!("post:{round}{i}"),
                sender,
                format!("public:{round}{i}:{}", customer(i)),
                bench_text(i),
            )?)
        })
    };
    let before = direct(1).await?;

    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.limit(Endpoint::Mentions, u32::MAX, Duration::from_secs(900));
    for i in 0..CONTACTS.min(mentions) {
        fake.customer(&customer(i), &format!("customer{i}"));
    }
    let options = crate::app::store_options(&crate::config::Config::default());
    let db = TestDatabase::sqlite();
    let store: Arc<dyn Store> = Arc::new(db.store_with(options).await?);
    let intake = Arc::new(Counting::new(store, mentions));
    let keys = fake.oauth1().clone();
    let auth = frontdesk_x::Auth::OAuth1 {
        consumer_key: keys.consumer_key.into(),
        consumer_secret: keys.consumer_secret.into(),
        access_token: keys.access_token.into(),
        access_token_secret: keys.access_token_secret.into(),
    };
    let mut config = frontdesk_x::XConfig::new(account.clone(), fake.api_url(), ACCOUNT_ID, auth);
    config.dms = false;
    config.import_existing = true;
    config.poll_every = Duration::from_millis(10);
    let channel = Arc::new(
        frontdesk_x::XChannel::new(config, Arc::new(crate::app::InboundFilter), None)
            .map_err(anyhow::Error::msg)?,
    );
    // The posts go up while the channel reads, in bursts it can keep up with.
    let feeding = {
        let intake = intake.clone();
        async move {
            for start in (0..mentions).step_by(500) {
                while intake.stored() < start {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                for i in start..(start + 500).min(mentions) {
                    fake.mention(&customer(i), &bench_text(i));
                }
            }
            fake
        }
    };
    let (polling, _fake) = tokio::join!(through(channel, intake), feeding);
    let polling = polling?;

    let after = direct(2).await?;
    Ok(ChannelReport {
        what: "mentions",
        how: "polling",
        messages: mentions,
        through_channel: polling,
        direct: (before + after) / 2,
    })
}

/// What `bench email` measured.
#[derive(Debug, Clone)]
pub struct EmailReport {
    pub messages: usize,
    /// Reading the whole mailbox over IMAP (search, fetch, parse, thread, ingest).
    pub imap: Duration,
    /// Parsing and ingesting the same raw mails directly.
    pub direct: Duration,
    /// From handing a mail to Postfix to its message being stored, through IDLE.
    pub latencies: Vec<Duration>,
}

impl std::fmt::Display for EmailReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = |d: Duration| self.messages as f64 / d.as_secs_f64();
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = |p: f64| {
            sorted
                .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        writeln!(f, "messages: {}", self.messages)?;
        writeln!(f, "imap_mails_per_second: {:.0}", rate(self.imap))?;
        writeln!(f, "direct_mails_per_second: {:.0}", rate(self.direct))?;
        writeln!(
            f,
            "ratio: {:.3}",
            self.direct.as_secs_f64() / self.imap.as_secs_f64()
        )?;
        write!(
            f,
            "idle_latency_ms ({} mails): p50 {:.0} p99 {:.0}",
            sorted.len(),
            at(0.50),
            at(0.99)
        )
    }
}

/// A bench mail: a plain question in Chinese and English, its own Message-ID.
fn bench_mail(i: usize, from: &str, to: &str) -> String {
    format!(
        "From: Customer {i} <{from}>\r\nTo: {to}\r\nSubject: order {}\r\n\
         Message-ID: <bench-{i}-{from}>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0800\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n\r\n\
         On Sunday Support wrote:\r\n> What is the transaction hash?\r\n",
        100_000 + i,
        bench_text(i)
    )
}

/// Reads the test mail servers' settings (`ensure_mail` in scripts/services.sh).
fn mail_servers() -> anyhow::Result<(String, String, u16, String, std::path::PathBuf)> {
    let var = |k: &str| {
        std::env::var(k).with_context(|| {
            format!("{k} is not set: start the test mail servers (ensure_mail in scripts/services.sh) and export its variables")
        })
    };
    let smtp = var("FRONTDESK_TEST_MAIL_SMTP")?;
    let port = smtp
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("FRONTDESK_TEST_MAIL_SMTP has no port")?;
    Ok((
        var("FRONTDESK_TEST_MAIL_IMAP")?,
        var("FRONTDESK_TEST_MAIL_SUBMISSION")?,
        port,
        var("FRONTDESK_TEST_MAIL_CA")?,
        var("FRONTDESK_TEST_MAIL_DIR")?.into(),
    ))
}

/// `messages` mails put straight into a fresh mailbox of the test Dovecot (Maildir
/// files), read by the email channel over IMAP (STARTTLS) into a fresh SQLite store;
/// the baseline parses and ingests the same raw mails directly. Then `latency_mails`
/// mails go through Postfix one at a time, each timed until it is stored (IDLE).
pub async fn email(messages: usize, latency_mails: usize) -> anyhow::Result<EmailReport> {
    let (imap, submission, smtp_port, ca, maildirs) = mail_servers()?;
    let n: u64 = rand::random();
    let (support, customer) = (
        format!("bench-{n:x}@example.test"),
        format!("customer-{n:x}@example.test"),
    );
    let raws: Vec<String> = (0..messages)
        .map(|i| bench_mail(i, &customer, &support))
        .collect();
    // The mailbox, as Dovecot keeps it: one file per mail in Maildir/new.
    let maildir = maildirs
        .join("example.test")
        .join(format!("bench-{n:x}"))
        .join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub))?;
    }
    for (i, raw) in raws.iter().enumerate() {
        std::fs::write(
            maildir.join("new").join(format!("1795312800.M{i}P1.bench")),
            raw,
        )?;
    }
    // Dovecot runs as nobody (65534).
    for dir in [
        &maildirs.join("example.test").join(format!("bench-{n:x}")),
        &maildir,
    ] {
        std::os::unix::fs::chown(dir, Some(65534), Some(65534))?;
    }
    for sub in ["new", "cur", "tmp"] {
        std::os::unix::fs::chown(maildir.join(sub), Some(65534), Some(65534))?;
        for entry in std::fs::read_dir(maildir.join(sub))? {
            std::os::unix::fs::chown(entry?.path(), Some(65534), Some(65534))?;
        }
    }

    let account = ChannelAccount::default_of(ChannelKind::Email);
    let options = crate::app::store_options(&crate::config::Config::default());

    // Baseline: the same mails parsed and ingested without IMAP.
    let db = TestDatabase::sqlite();
    let store: Arc<dyn Store> = Arc::new(db.store_with(options.clone()).await?);
    let pipeline = Pipeline::new(store.clone(), Metrics::new());
    let started = Instant::now();
    for (i, raw) in raws.iter().enumerate() {
        let mail = frontdesk_email::parse::parse(raw.as_bytes(), Default::default());
        let thread = frontdesk_email::thread::thread_key(
            &mail.message_id,
            &mail.in_reply_to,
            &mail.references,
        );
        let sender = Sender {
            external_id: customer.clone(),
            display_name: None,
            language: None,
        };
        let inbound = Inbound::new(
            account.clone(),
            mail.message_id,
            sender,
            thread,
            mail.new_text,
        )?;
        pipeline
            .ingest(inbound, Some(format!("1:{}", i + 1)))
            .await?;
    }
    let direct = started.elapsed();

    // The channel reads the mailbox.
    let db = TestDatabase::sqlite();
    let store: Arc<dyn Store> = Arc::new(db.store_with(options).await?);
    let intake = Arc::new(Counting::new(store.clone(), messages));
    let config = frontdesk_email::EmailConfig {
        account: account.clone(),
        imap: frontdesk_email::net::Endpoint::parse(&imap, false)?,
        smtp: frontdesk_email::net::Endpoint::parse(&submission, false)?,
        login: frontdesk_email::net::Login {
            username: support.clone(),
            password: "password".to_owned().into(),
        },
        address: support.clone(),
        ca_file: Some(ca),
        mailbox: "INBOX".into(),
        import_existing: true,
        mark_seen: false,
        move_to: None,
        sent_folder: None,
        idle_refresh: Duration::from_secs(25 * 60),
        poll_every: Duration::from_secs(30),
        use_idle: true,
        parse: Default::default(),
    };
    let channel = Arc::new(frontdesk_email::EmailChannel::new(
        config,
        Arc::new(frontdesk_router::StoredFiles(store)),
    )?);
    let started = Instant::now();
    let (stop, receiving) = receive(channel.clone(), intake.clone());
    tokio::time::timeout(Duration::from_secs(1800), intake.done.notified())
        .await
        .context("the mailbox was not read within 30 minutes")?;
    let imap_time = started.elapsed();

    // Latency through Postfix and IDLE, one mail at a time.
    use lettre::AsyncTransport;
    let smtp = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp_port)
        .build();
    let envelope = lettre::address::Envelope::new(Some(customer.parse()?), vec![support.parse()?])?;
    let mut latencies = Vec::with_capacity(latency_mails);
    for i in 0..latency_mails {
        let before = intake.stored.load(std::sync::atomic::Ordering::SeqCst);
        let raw = bench_mail(messages + i, &customer, &support);
        let sent = Instant::now();
        smtp.send_raw(&envelope, raw.as_bytes()).await?;
        let deadline = sent + Duration::from_secs(30);
        while intake.stored.load(std::sync::atomic::Ordering::SeqCst) == before {
            anyhow::ensure!(
                Instant::now() < deadline,
                "mail {i} was not stored within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(sent.elapsed());
    }
    stop.cancel();
    let _ = receiving.await;
    let _ = std::fs::remove_dir_all(maildirs.join("example.test").join(format!("bench-{n:x}")));
    Ok(EmailReport {
        messages,
        imap: imap_time,
        direct,
        latencies,
    })
}

/// What `bench e2e` is asked to do.
#[derive(Debug, Clone)]
pub struct E2eSettings {
    /// Customer messages a second, both channels together.
    pub rate: f64,
    /// How long the customers write.
    pub seconds: f64,
    /// The share of the messages that come over Telegram.
    pub telegram_share: f64,
    /// Messages of the capacity phase, sent as fast as the app takes them.
    pub capacity_messages: usize,
    /// Customers writing at once in the capacity phase, each again as soon as their
    /// last message was taken.
    pub capacity_customers: usize,
}

/// What `bench e2e` measured.
#[derive(Debug, Clone)]
pub struct E2eReport {
    pub settings: E2eSettings,
    /// Customers who wrote, per channel.
    pub webchat_customers: usize,
    pub telegram_customers: usize,
    /// Messages sent, per channel.
    pub webchat_messages: usize,
    pub telegram_messages: usize,
    /// Messages the app did not take (a webchat POST that did not answer 201).
    pub send_failed: usize,
    /// From each message sent to its reply handed to the channel, for the messages
    /// answered before the grace period ran out.
    pub webchat_latencies: Vec<Duration>,
    pub telegram_latencies: Vec<Duration>,
    /// The visitors' POST round trips (the bot's answer is stored when they return).
    pub post_latencies: Vec<Duration>,
    /// Messages whose reply was not the answer to the question asked.
    pub wrong_replies: usize,
    /// From the first message sent to the last reply handed to its channel.
    pub span: Duration,
    /// How late the sender was against its schedule, per message.
    pub late: Vec<Duration>,
    /// Sends the fake Bot API refused for going over Telegram's limits.
    pub telegram_rate_limited: usize,
    /// Resident memory once started, before any message.
    pub rss_idle_kib: Option<u64>,
    /// The most resident memory seen under the load (sampled every 100 ms).
    pub rss_peak_kib: Option<u64>,
    /// Capacity-phase messages left without a reply.
    pub capacity_unanswered: usize,
    /// The capacity phase's time through the app, until every reply was handed over.
    pub capacity: Duration,
    /// The same rows with bare INSERTs.
    pub bare: Duration,
}

impl E2eReport {
    pub fn messages(&self) -> usize {
        self.webchat_messages + self.telegram_messages
    }
    pub fn replied(&self) -> usize {
        self.webchat_latencies.len() + self.telegram_latencies.len()
    }
    pub fn capacity_rate(&self) -> f64 {
        self.settings.capacity_messages as f64 / self.capacity.as_secs_f64()
    }
    pub fn bare_rate(&self) -> f64 {
        self.settings.capacity_messages as f64 / self.bare.as_secs_f64()
    }
    pub fn ratio(&self) -> f64 {
        self.capacity_rate() / self.bare_rate()
    }
}

/// p50, p99 and the maximum in milliseconds, or `none`.
fn spread(durations: &[Duration]) -> String {
    let mut sorted = durations.to_vec();
    sorted.sort();
    let Some(max) = sorted.last() else {
        return "none".into();
    };
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let at = |p: f64| &sorted[((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    format!(
        "p50 {:.2} p99 {:.2} max {:.2}",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(max)
    )
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("unknown".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

impl std::fmt::Display for E2eReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.settings;
        let telegram_rate = s.rate * s.telegram_share;
        let replied = self.replied();
        writeln!(f, "seconds: {}", s.seconds)?;
        writeln!(f, "offered_per_second: {}", s.rate)?;
        writeln!(f, "webchat_per_second: {:.1}", s.rate - telegram_rate)?;
        writeln!(f, "telegram_per_second: {telegram_rate:.1}")?;
        writeln!(
            f,
            "customers: {}",
            self.webchat_customers + self.telegram_customers
        )?;
        writeln!(f, "messages: {}", self.messages())?;
        writeln!(f, "send_failed: {}", self.send_failed)?;
        writeln!(f, "replied: {replied}")?;
        writeln!(
            f,
            "no_reply: {}",
            self.messages()
                .saturating_sub(replied + self.wrong_replies + self.send_failed)
        )?;
        writeln!(f, "wrong_reply: {}", self.wrong_replies)?;
        writeln!(
            f,
            "replies_per_second: {:.0}",
            replied as f64 / self.span.as_secs_f64().max(f64::EPSILON)
        )?;
        writeln!(
            f,
            "latency: from the customer's send to the reply handed to the channel \
             (the delivery worker's Sent: Telegram, the fake Bot API answered sendMessage; \
             webchat, the POST answered, after the reply's commit)"
        )?;
        let all: Vec<Duration> = self
            .webchat_latencies
            .iter()
            .chain(&self.telegram_latencies)
            .copied()
            .collect();
        writeln!(f, "latency_ms: {}", spread(&all))?;
        writeln!(f, "webchat_latency_ms: {}", spread(&self.webchat_latencies))?;
        writeln!(
            f,
            "telegram_latency_ms: {}",
            spread(&self.telegram_latencies)
        )?;
        writeln!(f, "webchat_post_ms: {}", spread(&self.post_latencies))?;
        writeln!(f, "sender_late_ms: {}", spread(&self.late))?;
        writeln!(f, "telegram_rate_limited: {}", self.telegram_rate_limited)?;
        writeln!(f, "rss_idle_mib: {}", mib(self.rss_idle_kib))?;
        writeln!(f, "rss_peak_mib: {}", mib(self.rss_peak_kib))?;
        writeln!(f, "capacity_messages: {}", s.capacity_messages)?;
        writeln!(f, "capacity_customers: {}", s.capacity_customers)?;
        writeln!(f, "capacity_unanswered: {}", self.capacity_unanswered)?;
        writeln!(
            f,
            "capacity_replies_per_second: {:.0}",
            self.capacity_rate()
        )?;
        writeln!(f, "bare_insert_per_second: {:.0}", self.bare_rate())?;
        write!(f, "ratio: {:.3}", self.ratio())
    }
}

/// A customer writes again this long after their previous message: Telegram takes one
/// message a second per chat, and the bot has long answered.
const CUSTOMER_PAUSE: Duration = Duration::from_secs(2);
/// How long replies may still come after the last message was sent.
const GRACE: Duration = Duration::from_secs(10);
/// Telegram's own limit for a bot, which its client paces itself to.
const TELEGRAM_MAX_PER_SECOND: f64 = 30.0;

/// A question the bot answers, and the answer it gives.
#[derive(Debug, Clone)]
struct Question {
    text: String,
    answer: String,
}

/// The shipped knowledge base's example questions that the engine answers with their
/// own intent, and no follow-up, so that each question gets exactly one reply.
fn questions(config: &crate::config::Config) -> anyhow::Result<Vec<Question>> {
    use frontdesk_faq::Decision;
    use frontdesk_faq::kb::Action;
    let engine = crate::faq::load_engine(config)?;
    let kb = engine
        .knowledge_base()
        .context("the answer engine has no knowledge base")?;
    let mut out = Vec::new();
    for intent in kb.intents.iter().filter(|i| i.action == Action::Answer) {
        for text in intent.examples.all() {
            let m = engine.match_text(text);
            if frontdesk_faq::text::has_words(text)
                && m.action == Decision::Answer
                && m.intent.as_deref() == Some(intent.id.as_str())
                && m.follow_up.as_deref().is_none_or(str::is_empty)
                && let Some(answer) = m.answer
            {
                out.push(Question {
                    text: text.to_owned(),
                    answer,
                });
            }
        }
    }
    anyhow::ensure!(
        out.len() >= 2,
        "the knowledge base has too few questions the bot answers"
    );
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Via {
    Webchat,
    Telegram,
}

/// One message of the schedule.
#[derive(Debug, Clone, Copy)]
struct Planned {
    /// From the start of the load.
    at: Duration,
    via: Via,
    /// The customer of that channel.
    customer: usize,
    question: usize,
}

/// The schedule: `rate` messages a second, evenly spaced, every n-th over Telegram;
/// each channel's customers take turns, so each writes every [`CUSTOMER_PAUSE`], and
/// never the same question twice in a row (the bot hands a repeated one to a person).
/// Returns it with the number of customers per channel who write.
fn plan(s: &E2eSettings, questions: usize) -> (Vec<Planned>, usize, usize) {
    let n = (s.rate * s.seconds).round() as usize;
    let telegram_rate = s.rate * s.telegram_share;
    let pool = |rate: f64| ((rate * CUSTOMER_PAUSE.as_secs_f64()).ceil() as usize).max(1);
    let (webchat_pool, telegram_pool) = (pool(s.rate - telegram_rate), pool(telegram_rate));
    let (mut webchat, mut telegram) = (0, 0);
    let planned = (0..n)
        .map(|i| {
            let over_telegram =
                ((i + 1) as f64 * s.telegram_share).floor() > (i as f64 * s.telegram_share).floor();
            let (via, sent, pool) = match over_telegram {
                true => (Via::Telegram, &mut telegram, telegram_pool),
                false => (Via::Webchat, &mut webchat, webchat_pool),
            };
            let (customer, turn) = (*sent % pool, *sent / pool);
            *sent += 1;
            Planned {
                at: Duration::from_secs_f64(i as f64 / s.rate),
                via,
                customer,
                question: (customer * 31 + turn) % questions,
            }
        })
        .collect();
    (
        planned,
        webchat.min(webchat_pool),
        telegram.min(telegram_pool),
    )
}

/// One message as it was sent.
#[derive(Debug, Clone)]
struct Offered {
    /// When, on the app's kind of clock (wall time at start plus monotonic time).
    sent: Timestamp,
    /// How late against the schedule.
    late: Duration,
    /// Webchat: the POST's round trip, or why it failed.
    post: Option<Result<Duration, String>>,
}

fn telegram_user(customer: usize) -> i64 {
    6_000_000 + customer as i64
}

/// Sends the schedule open loop: each message at its planned instant, whether or not
/// earlier ones were answered (a webchat POST runs on its own task).
async fn offer(
    plan: Arc<Vec<Planned>>,
    questions: Arc<Vec<Question>>,
    base: String,
    visitors: Arc<Vec<String>>,
    fake: Arc<frontdesk_testkit::FakeTelegram>,
) -> anyhow::Result<Vec<Offered>> {
    use frontdesk_core::Clock;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = format!("{base}/chat/api/messages");
    let clock = frontdesk_router::TokioClock::new();
    let start = tokio::time::Instant::now();
    let mut offered: Vec<Option<Offered>> = vec![None; plan.len()];
    let mut posts = tokio::task::JoinSet::new();
    for (i, p) in plan.iter().enumerate() {
        tokio::time::sleep_until(start + p.at).await;
        let late = start.elapsed().saturating_sub(p.at);
        let text = &questions[p.question].text;
        let sent = clock.now();
        match p.via {
            Via::Telegram => {
                fake.customer_writes(telegram_user(p.customer), text);
                offered[i] = Some(Offered {
                    sent,
                    late,
                    post: None,
                });
            }
            Via::Webchat => {
                let request = client
                    .post(&url)
                    .bearer_auth(&visitors[p.customer])
                    .json(&serde_json::json!({ "text": text, "client_id": format!("m{i}") }));
                let took = Instant::now();
                posts.spawn(async move {
                    let outcome = match request.send().await {
                        Ok(r) if r.status() == reqwest::StatusCode::CREATED => Ok(took.elapsed()),
                        Ok(r) => Err(format!("HTTP {}", r.status())),
                        Err(e) => Err(e.to_string()),
                    };
                    (
                        i,
                        Offered {
                            sent,
                            late,
                            post: Some(outcome),
                        },
                    )
                });
            }
        }
    }
    while let Some(done) = posts.join_next().await {
        let (i, o) = done?;
        offered[i] = Some(o);
    }
    offered
        .into_iter()
        .map(|o| o.context("a planned message was not sent"))
        .collect()
}

/// `n` new website-chat visitors: (token, visitor id).
async fn visitors(
    client: &reqwest::Client,
    base: &str,
    n: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let session: serde_json::Value = client
            .post(format!("{base}/chat/api/session"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = session["visitor_token"]
            .as_str()
            .context("no visitor token")?
            .to_owned();
        // `v1.VISITOR.TAG`
        let id = token
            .split('.')
            .nth(1)
            .context("a visitor token without a visitor")?
            .to_owned();
        out.push((token, id));
    }
    Ok(out)
}

/// Every customer-visible message of one thread, oldest first.
async fn thread(
    store: &dyn Store,
    account: &ChannelAccount,
    key: &str,
) -> anyhow::Result<Vec<frontdesk_core::Message>> {
    let mut all: Vec<frontdesk_core::Message> = Vec::new();
    loop {
        let after = all.last().map(|m| m.id);
        let page = store.thread_messages(account, key, after, 200).await?;
        let done = page.len() < 200;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

/// When each outbound message was handed to its channel: the `delivery_sent` events,
/// stamped by the delivery worker's clock once the channel's `deliver` returned Sent.
async fn handed_over(
    store: &dyn Store,
) -> anyhow::Result<std::collections::HashMap<frontdesk_core::MessageId, Timestamp>> {
    let mut out = std::collections::HashMap::new();
    let mut after = frontdesk_core::EventId(0);
    loop {
        let page = store.events_after(after, 1000).await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = last.id;
        for e in &page {
            if e.kind == frontdesk_core::EventKind::DeliverySent
                && let Some(id) = e.message_id
            {
                out.entry(id).or_insert(e.created_at);
            }
        }
    }
}

/// A thread's stored customer messages, each with the schedule index of the message it
/// is: a webchat message by its client id (`VISITOR:mI`, since a visitor's messages in
/// flight together may be stored in any order); a Telegram chat's in the order sent
/// (the channel takes one chat's updates in order, one at a time).
fn stored_as_sent(
    via: Via,
    messages: &[frontdesk_core::Message],
    sent: &[usize],
) -> Vec<(frontdesk_core::MessageId, usize)> {
    let theirs = messages
        .iter()
        .filter(|m| m.author == frontdesk_core::Author::Contact);
    let by_client_id = |m: &frontdesk_core::Message| {
        m.external_id
            .as_deref()?
            .rsplit_once(":m")?
            .1
            .parse::<usize>()
            .ok()
    };
    match via {
        Via::Webchat => theirs
            .filter_map(|m| Some((m.id, by_client_id(m)?)))
            .filter(|(_, i)| sent.contains(i))
            .collect(),
        Via::Telegram => theirs.map(|m| m.id).zip(sent.iter().copied()).collect(),
    }
}

/// Pairs a thread's stored customer messages (oldest first, each with its schedule
/// index) with the replies handed to the channel (oldest first): a message gets the
/// first reply after it that is its question's answer and no earlier message's
/// (`Some(when it was handed over)`); else the first other reply after it, which is
/// wrong (`None`); else nothing, and is left out.
fn pair<'a>(
    stored: &[(frontdesk_core::MessageId, usize)],
    replies: &[(frontdesk_core::MessageId, &str, Timestamp)],
    answer: impl Fn(usize) -> &'a str,
) -> Vec<(usize, Option<Timestamp>)> {
    let mut used = vec![false; replies.len()];
    let mut answered: Vec<Option<(usize, Option<Timestamp>)>> = vec![None; stored.len()];
    for (n, &(id, i)) in stored.iter().enumerate() {
        let right = (0..replies.len())
            .find(|&r| !used[r] && replies[r].0 > id && replies[r].1.starts_with(answer(i)));
        if let Some(r) = right {
            used[r] = true;
            answered[n] = Some((i, Some(replies[r].2)));
        }
    }
    for (n, &(id, i)) in stored.iter().enumerate() {
        if answered[n].is_some() {
            continue;
        }
        if let Some(r) = (0..replies.len()).find(|&r| !used[r] && replies[r].0 > id) {
            used[r] = true;
            answered[n] = Some((i, None));
        }
    }
    answered.into_iter().flatten().collect()
}

/// Waits until `check` holds, `limit` at most; says whether it did.
async fn until<F, Fut>(limit: Duration, every: Duration, mut check: F) -> anyhow::Result<bool>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(every).await;
    }
}

/// The whole app in this process on a fresh SQLite database, as `serve` runs it with
/// the bot answering from the shipped knowledge base, the website chat on, and the
/// Telegram channel polling a fake Bot API on 127.0.0.1. Customers write at
/// `settings.rate` for `settings.seconds`, open loop, each message a question the bot
/// answers; every latency runs from a customer's send to the delivery worker handing
/// the reply to the channel. Then the capacity phase: webchat customers, a few at a
/// time, each sending as soon as their last message was taken, in chunks timed until
/// every reply was handed over, alternating with bare INSERTs of the same rows on the
/// same database.
pub async fn e2e(settings: E2eSettings) -> anyhow::Result<E2eReport> {
    let s = &settings;
    anyhow::ensure!(
        s.rate > 0.0 && s.seconds > 0.0 && s.capacity_messages > 0 && s.capacity_customers > 0,
        "--rate, --seconds, --capacity-messages and --capacity-customers must be above 0"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&s.telegram_share),
        "--telegram-share must be between 0 and 1"
    );
    anyhow::ensure!(
        s.rate * s.telegram_share <= TELEGRAM_MAX_PER_SECOND,
        "Telegram takes at most {TELEGRAM_MAX_PER_SECOND} messages a second from a bot \
         (the client paces its replies to that): lower --telegram-share"
    );
    let mut config = crate::config::Config::default();
    let questions = Arc::new(questions(&config)?);
    let (plan, webchat_customers, telegram_customers) = plan(s, questions.len());
    let plan = Arc::new(plan);

    let token = "7000000002:e2e-bench-token";
    let fake = Arc::new(frontdesk_testkit::FakeTelegram::start(token).await);
    let db = TestDatabase::sqlite();
    config.database.url = db.url().to_owned();
    config.server.listen = "127.0.0.1:0".into();
    config.channels.webchat.enabled = true;
    let telegram = &mut config.channels.telegram;
    telegram.enabled = true;
    telegram.token = Some(token.to_owned().into());
    telegram.api_url = fake.api_url().to_owned();
    let listener = tokio::net::TcpListener::bind(&config.server.listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = crate::app::App::build(config).await?;
    let store = app.store();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(app.run(listener, shutdown.clone()));
    let polling = until(
        Duration::from_secs(30),
        Duration::from_millis(10),
        || async { Ok(fake.requests().iter().any(|r| r.method == "getupdates")) },
    )
    .await?;
    anyhow::ensure!(polling, "the Telegram channel did not poll within 30 s");
    // Started: the channels' first calls made, nothing else to do.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle_kib = rss_kib();

    let client = reqwest::Client::new();
    let webchat_visitors = visitors(&client, &base, webchat_customers).await?;
    let tokens = Arc::new(
        webchat_visitors
            .iter()
            .map(|(t, _)| t.clone())
            .collect::<Vec<_>>(),
    );

    // The load, sent from a thread and runtime of its own, so that its schedule does
    // not wait for the app's tasks.
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = tokio::spawn({
        let stop = sampling.clone();
        async move {
            let mut peak = rss_kib();
            while !stop.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                peak = peak.max(rss_kib());
            }
            peak
        }
    });
    let offered = {
        let (plan, questions, base, fake) =
            (plan.clone(), questions.clone(), base.clone(), fake.clone());
        tokio::task::spawn_blocking(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(offer(plan, questions, base, tokens, fake))
        })
        .await??
    };
    // Every message taken and every reply handed over, or the grace period over.
    until(GRACE, Duration::from_millis(10), || async {
        Ok(fake.pending() == 0 && store.outbox_depth().await? == 0)
    })
    .await?;
    sampling.cancel();
    let rss_peak_kib = sampler.await?;

    // Which reply answered which message, from each customer's thread as stored.
    let handed = handed_over(&*store).await?;
    let mut sent_by: std::collections::HashMap<(Via, usize), Vec<usize>> = Default::default();
    for (i, p) in plan.iter().enumerate() {
        sent_by.entry((p.via, p.customer)).or_default().push(i);
    }
    let (mut webchat_latencies, mut telegram_latencies) = (Vec::new(), Vec::new());
    let (mut wrong_replies, mut send_failed) = (0, 0);
    let (mut first_sent, mut last_handed) = (None::<Timestamp>, None::<Timestamp>);
    for ((via, customer), sent) in &sent_by {
        let (account, key) = match via {
            Via::Webchat => (
                frontdesk_web::webchat::account(),
                webchat_visitors[*customer].1.clone(),
            ),
            Via::Telegram => (
                ChannelAccount::default_of(ChannelKind::Telegram),
                telegram_user(*customer).to_string(),
            ),
        };
        let taken: Vec<usize> = sent
            .iter()
            .copied()
            .filter(|&i| !matches!(offered[i].post, Some(Err(_))))
            .collect();
        send_failed += sent.len() - taken.len();
        let messages = thread(&*store, &account, &key).await?;
        let stored = stored_as_sent(*via, &messages, &taken);
        let replies: Vec<(frontdesk_core::MessageId, &str, Timestamp)> = messages
            .iter()
            .filter(|m| m.author != frontdesk_core::Author::Contact)
            .filter_map(|m| Some((m.id, m.text.as_str(), *handed.get(&m.id)?)))
            .collect();
        let answer = |i: usize| questions[plan[i].question].answer.as_str();
        for (i, fate) in pair(&stored, &replies, answer) {
            let Some(at) = fate else {
                wrong_replies += 1;
                continue;
            };
            // A webchat reply is readable once its transaction commits, and the POST
            // answers after that; the reply's stamp is taken as its write begins,
            // maybe before a wait for the writer, so the POST's return bounds it.
            let latency = match (via, &offered[i].post) {
                (Via::Webchat, Some(Ok(post))) => at.since(offered[i].sent).max(*post),
                _ => at.since(offered[i].sent),
            };
            match via {
                Via::Webchat => webchat_latencies.push(latency),
                Via::Telegram => telegram_latencies.push(latency),
            }
            first_sent = Some(first_sent.map_or(offered[i].sent, |t| t.min(offered[i].sent)));
            last_handed = Some(last_handed.map_or(at, |t| t.max(at)));
        }
    }
    let span = match (first_sent, last_handed) {
        (Some(a), Some(b)) => b.since(a),
        _ => Duration::ZERO,
    };

    let (capacity, bare, capacity_unanswered) =
        capacity(&client, &base, &store, &db, &questions, s).await?;

    shutdown.cancel();
    running.await??;
    let count = |via: Via| plan.iter().filter(|p| p.via == via).count();
    Ok(E2eReport {
        webchat_customers,
        telegram_customers,
        webchat_messages: count(Via::Webchat),
        telegram_messages: count(Via::Telegram),
        send_failed,
        webchat_latencies,
        telegram_latencies,
        post_latencies: offered
            .iter()
            .filter_map(|o| o.post.clone()?.ok())
            .collect(),
        wrong_replies,
        span,
        late: offered.iter().map(|o| o.late).collect(),
        telegram_rate_limited: fake.rate_limited(),
        rss_idle_kib,
        rss_peak_kib,
        capacity_unanswered,
        capacity,
        bare,
        settings,
    })
}

/// Capacity-phase message `m`'s visitor (of `pool`, in turn) and question (never the
/// visitor's previous one).
fn pick(m: usize, pool: usize, questions: usize) -> (usize, usize) {
    let visitor = m % pool;
    (visitor, (visitor * 31 + m / pool) % questions)
}

/// The capacity phase: `n` webchat messages, `customers` at a time each
/// sending as soon as their last was taken, in chunks timed from the first send until
/// every reply was handed over; after each chunk the same rows with bare INSERTs on
/// the same database (timed apart), so the machine's drift weighs on both alike.
/// Returns both times and the messages left without a reply.
async fn capacity(
    client: &reqwest::Client,
    base: &str,
    store: &Arc<dyn Store>,
    db: &TestDatabase,
    questions: &Arc<Vec<Question>>,
    settings: &E2eSettings,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let (n, writers) = (settings.capacity_messages, settings.capacity_customers);
    // The open phase's replies are all handed over (or given up) first.
    let drained = until(
        Duration::from_secs(60),
        Duration::from_millis(10),
        || async { Ok(store.outbox_depth().await? == 0) },
    )
    .await?;
    anyhow::ensure!(drained, "replies of the open-loop phase are still queued");
    // Few enough messages each that no visitor meets the chat's rate limit.
    let pool = n.div_ceil(5).max(2 * writers);
    let visitors = Arc::new(visitors(client, base, pool).await?);
    let options = crate::app::store_options(&crate::config::Config::default());
    let bare_store = db.store_with(options).await?;
    bare_store.bench_create_bare_table().await?;
    let now = Timestamp::now().as_micros();
    let account = frontdesk_web::webchat::account();
    let rows: Vec<BareRow> = (0..n)
        .map(|m| {
            let (v, q) = pick(m, pool, questions.len());
            BareRow {
                conversation_id: v as i64 + 1,
                channel: account.kind().as_str().into(),
                account: account.name().into(),
                sender_id: visitors[v].1.clone(),
                external_id: format!("{}:c{m}", visitors[v].1),
                text: questions[q].text.clone(),
                created_at: now,
            }
        })
        .collect();
    let url = format!("{base}/chat/api/messages");
    let (mut through, mut bare) = (Duration::ZERO, Duration::ZERO);
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(start));
        let mut customers = tokio::task::JoinSet::new();
        for _ in 0..writers {
            let (next, visitors, questions, client, url) = (
                next.clone(),
                visitors.clone(),
                questions.clone(),
                client.clone(),
                url.clone(),
            );
            customers.spawn(async move {
                loop {
                    let m = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if m >= end {
                        return anyhow::Ok(());
                    }
                    let (v, q) = pick(m, pool, questions.len());
                    let answer = client
                        .post(&url)
                        .bearer_auth(&visitors[v].0)
                        .json(&serde_json::json!({
                            "text": questions[q].text,
                            "client_id": format!("c{m}"),
                        }))
                        .send()
                        .await?;
                    anyhow::ensure!(
                        answer.status() == reqwest::StatusCode::CREATED,
                        "a capacity-phase message got HTTP {}",
                        answer.status()
                    );
                }
            });
        }
        while let Some(done) = customers.join_next().await {
            done??;
        }
        let handed = until(
            Duration::from_secs(60),
            Duration::from_millis(1),
            || async { Ok(store.outbox_depth().await? == 0) },
        )
        .await?;
        anyhow::ensure!(handed, "replies still queued a minute after a chunk");
        through += started.elapsed();

        let started = Instant::now();
        for row in &rows[start..end] {
            bare_store.bench_bare_insert(row).await?;
        }
        bare += started.elapsed();
    }
    let mut replied = 0;
    for (_, visitor) in visitors.iter() {
        replied += thread(&**store, &account, visitor)
            .await?
            .iter()
            .filter(|m| m.author == frontdesk_core::Author::Bot)
            .count();
    }
    Ok((through, bare, n.saturating_sub(replied)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::MessageId;

    #[test]
    fn replies_pair_with_their_questions_whatever_the_order_and_a_stray_one_is_wrong() {
        let at = Timestamp::from_micros;
        // Messages 10 (question 0), 11 (question 1), 12 (question 2), 13 (question 3).
        let stored = [
            (MessageId(10), 0),
            (MessageId(11), 1),
            (MessageId(12), 2),
            (MessageId(13), 3),
        ];
        let answers = ["zero", "one", "two", "three"];
        // 11 answered before 10; 12 got a handoff notice; 13 got nothing.
        let replies = [
            (MessageId(20), "one, and a hint", at(5)),
            (MessageId(21), "zero, and a hint", at(6)),
            (MessageId(22), "a person will answer", at(7)),
        ];
        let mut paired = pair(&stored, &replies, |i| answers[i]);
        paired.sort_by_key(|(i, _)| *i);
        assert_eq!(paired, vec![(0, Some(at(6))), (1, Some(at(5))), (2, None)]);
    }

    #[test]
    fn the_schedule_keeps_telegram_within_its_share_and_never_repeats_a_question() {
        let settings = E2eSettings {
            rate: 500.0,
            seconds: 10.0,
            telegram_share: 0.05,
            capacity_messages: 1,
            capacity_customers: 1,
        };
        let (planned, webchat, telegram) = plan(&settings, 40);
        assert_eq!(planned.len(), 5000);
        assert_eq!((webchat, telegram), (950, 50));
        let over_telegram = planned.iter().filter(|p| p.via == Via::Telegram).count();
        assert_eq!(over_telegram, 250);
        // Each customer writes every 2 s at most, and never the same question twice
        // in a row (the bot hands a repeated message to a person).
        let mut last: std::collections::HashMap<(Via, usize), &Planned> = Default::default();
        for p in &planned {
            if let Some(before) = last.insert((p.via, p.customer), p) {
                assert!(p.at - before.at >= Duration::from_millis(1999), "{p:?}");
                assert_ne!(p.question, before.question, "{p:?}");
            }
        }
    }
}
