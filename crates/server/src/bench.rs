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
