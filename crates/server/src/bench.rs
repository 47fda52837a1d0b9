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
