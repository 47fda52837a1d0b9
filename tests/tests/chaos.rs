//! The crash suite: a storm of customer messages over every channel (the website chat
//! over HTTP, Telegram and X through their fakes, mail through the real Postfix and
//! Dovecot) while real `frontdesk serve` processes are killed with SIGKILL at random
//! moments and started again. After each run has settled, every customer message must
//! be stored once and every reply must have reached the customer, as the fakes and the
//! mailboxes count them: once, or again only where a kill cut its send short after the
//! provider took it (Telegram and X DMs take no idempotency key; such resends are
//! counted and reported).
//!
//! One SQLite instance, and three instances on one PostgreSQL. Seeded (`CHAOS_SEED`)
//! and bounded: `CHAOS_RUNS` runs per backend (3 by default; `scripts/chaos` runs 100).
//! The instances are the `frontdesk` binary that `cargo test --workspace` builds next to
//! this test (`scripts/chaos` builds it first).

use frontdesk_core::{Delivery, Direction, Message};
use frontdesk_e2e::mail::{self, Servers};
use frontdesk_store::testing::TestDatabase;
use frontdesk_store::{ConversationQuery, SqlStore, Store, StoreOptions};
use frontdesk_testkit::FakeTelegram;
use frontdesk_testkit::x::{Endpoint, FakeX, OAuth1Keys};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "7000000001:AAE-chaos";

/// Questions the shipped knowledge base answers, in both languages.
const QUESTIONS: &[&str] = &[
    "怎么注册账号",
    "How do I reset my password?",
    "转账一直pending怎么办",
    "What are your service hours?",
    "忘记密码了怎么办",
    "How can I contact you?",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_one_instance_killed_at_random_loses_nothing() {
    let Some(mail) = mail::servers() else { return };
    let db = TestDatabase::sqlite();
    let report = storm(db.url(), 1, &mail).await;
    println!("chaos sqlite: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_three_instances_killed_at_random_lose_nothing() {
    let Some(mail) = mail::servers() else { return };
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let report = storm(db.url(), 3, &mail).await;
    println!("chaos postgres: {report}");
}

/// What a whole storm counted, over all runs.
#[derive(Debug, Default)]
struct Report {
    runs: usize,
    kills: usize,
    sent: usize,
    stored: usize,
    replies: usize,
    delivered: usize,
    /// Replies in the database that never reached the customer.
    lost: usize,
    /// Deliveries beyond one per reply.
    doubled: usize,
    /// Of those, replies sent again because the instance sending them was killed
    /// between the provider taking them and the outbox recording it (Telegram and X
    /// DMs take no idempotency key; see the README).
    resent_after_kill: usize,
    /// Copies of mails that went out twice with the same Message-ID (receivers show
    /// one); counted apart from `delivered`.
    mail_copies: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "runs {} kills {} | customer messages sent {} stored {} | replies {} delivered {} \
             lost {} doubled {} (resent after a kill mid-send {}) | mails resent with the same \
             Message-ID {}",
            self.runs,
            self.kills,
            self.sent,
            self.stored,
            self.replies,
            self.delivered,
            self.lost,
            self.doubled,
            self.resent_after_kill,
            self.mail_copies
        )
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the storm against `instances` processes on `database_url`.
async fn storm(database_url: &str, instances: usize, mail: &Servers) -> Report {
    let runs = env_number("CHAOS_RUNS", 3) as usize;
    let seed = env_number("CHAOS_SEED", 20261207);
    println!("CHAOS_SEED={seed} CHAOS_RUNS={runs} instances={instances}");
    let telegram = FakeTelegram::start(TOKEN).await;
    let x = FakeX::start(OAuth1Keys::for_tests()).await;
    // The Pro tier's windows: pacing is tested elsewhere; here the storm is the subject.
    for endpoint in [
        Endpoint::Mentions,
        Endpoint::DmEvents,
        Endpoint::CreatePost,
        Endpoint::SendDm,
    ] {
        x.limit(endpoint, 1_000_000, Duration::from_secs(900));
    }
    // Mailboxes of this storm's own: the other backend's storm may run alongside.
    let nonce: u32 = rand::random();
    let support = format!("support-chaos-{nonce:08x}@example.test");
    let env = environment(database_url, instances, &telegram, &x, mail, &support);
    let mut cluster: Vec<Instance> = (0..instances)
        .map(|i| Instance::new(i, env.clone()))
        .collect();
    for instance in &mut cluster {
        instance.start();
    }
    let cluster: Vec<Arc<Mutex<Instance>>> = cluster
        .into_iter()
        .map(|i| Arc::new(Mutex::new(i)))
        .collect();
    let store = SqlStore::connect(database_url, StoreOptions::default())
        .await
        .expect("the test's own connection to the database");
    let world = World {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
        cluster,
        telegram,
        x,
        mail,
        support,
        store,
        posts: Mutex::default(),
        visitors: Mutex::default(),
    };
    let mut report = Report::default();
    for run in 0..runs {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(run as u64));
        let plan = Plan::new(run, nonce, &mut rng);
        report.kills += world.run(&plan, &mut rng).await;
        world.settle(&plan, &mut report).await;
        report.runs += 1;
    }
    report
}

/// The configuration every instance gets, as `FRONTDESK_*` variables.
fn environment(
    database_url: &str,
    instances: usize,
    telegram: &FakeTelegram,
    x: &FakeX,
    mail: &Servers,
    support: &str,
) -> Vec<(String, String)> {
    let faq = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/faq.toml");
    let keys = x.oauth1();
    let pairs = [
        ("DATABASE__URL", database_url),
        ("SERVER__LISTEN", "127.0.0.1:0"),
        ("SERVER__SHUTDOWN_GRACE_SECONDS", "1"),
        ("BOT__FAQ", faq),
        // A killed worker's rows come back after its lease: short, to keep runs short.
        ("DELIVERY__LEASE_SECONDS", "6"),
        ("DELIVERY__SEND_TIMEOUT_SECONDS", "4"),
        ("ENGINE__TICK_SECONDS", "1"),
        ("CHANNELS__WEBCHAT__ENABLED", "true"),
        ("CHANNELS__TELEGRAM__ENABLED", "true"),
        ("CHANNELS__TELEGRAM__TOKEN", TOKEN),
        ("CHANNELS__TELEGRAM__API_URL", telegram.api_url()),
        ("CHANNELS__X__ENABLED", "true"),
        ("CHANNELS__X__API_URL", x.api_url()),
        ("CHANNELS__X__USER_ID", frontdesk_testkit::x::ACCOUNT_ID),
        ("CHANNELS__X__CONSUMER_KEY", &keys.consumer_key),
        ("CHANNELS__X__CONSUMER_SECRET", &keys.consumer_secret),
        ("CHANNELS__X__ACCESS_TOKEN", &keys.access_token),
        (
            "CHANNELS__X__ACCESS_TOKEN_SECRET",
            &keys.access_token_secret,
        ),
        ("CHANNELS__X__POLL_SECONDS", "1"),
        ("CHANNELS__EMAIL__ENABLED", "true"),
        ("CHANNELS__EMAIL__IMAP_URL", &mail.imap),
        ("CHANNELS__EMAIL__SMTP_URL", &mail.submission),
        ("CHANNELS__EMAIL__CA_FILE", &mail.ca),
        ("CHANNELS__EMAIL__USERNAME", support),
        ("CHANNELS__EMAIL__PASSWORD", "password"),
        ("CHANNELS__EMAIL__ADDRESS", support),
    ];
    let mut env: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (format!("FRONTDESK_{k}"), (*v).to_owned()))
        .collect();
    // Several instances on one database each keep a few connections.
    if instances > 1 {
        env.push(("FRONTDESK_DATABASE__MAX_CONNECTIONS".into(), "5".into()));
    }
    env
}

/// One `frontdesk serve` process, started again after each kill.
struct Instance {
    index: usize,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// Where it listens while it runs.
    address: Arc<Mutex<Option<String>>>,
    /// Its last log lines, for a failure's message.
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Instance {
    fn new(index: usize, env: Vec<(String, String)>) -> Instance {
        Instance {
            index,
            env,
            child: None,
            address: Arc::default(),
            log: Arc::default(),
        }
    }

    /// Starts the process (ending the one before, if two kills overlapped) and waits
    /// for the log line that says where it serves.
    fn start(&mut self) {
        self.kill();
        let mut cmd = Command::new(frontdesk_binary());
        cmd.args(["--log-format", "json", "serve"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("FRONTDESK_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().expect("start frontdesk serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let parsed: Option<serde_json::Value> = serde_json::from_str(&line).ok();
                if let Some(address) = parsed
                    .as_ref()
                    .filter(|v| v["message"] == "serving")
                    .and_then(|v| v["address"].as_str())
                {
                    let _ = tx.send(address.to_owned());
                }
                let mut log = log.lock().unwrap();
                log.push_back(line);
                if log.len() > 200 {
                    log.pop_front();
                }
            }
        });
        // Kept at once, so that it is killed with this instance whatever happens next.
        self.child = Some(child);
        let address = tokio::task::block_in_place(|| rx.recv_timeout(Duration::from_secs(60)))
            .unwrap_or_else(|_| {
                panic!(
                    "instance {} never said it was serving:\n{}",
                    self.index,
                    self.last_log()
                )
            });
        *self.address.lock().unwrap() = Some(address);
    }

    /// SIGKILL: no shutdown, no flush, no goodbye to the database or the providers.
    fn kill(&mut self) {
        *self.address.lock().unwrap() = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn last_log(&self) -> String {
        let log = self.log.lock().unwrap();
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `frontdesk` binary built beside this test (target/debug/frontdesk).
fn frontdesk_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug/deps");
    let binary = dir.join("frontdesk");
    assert!(
        binary.exists(),
        "{} is missing: `cargo test --workspace` builds it, or `cargo build -p frontdesk`",
        binary.display()
    );
    binary
}

/// One customer message of a run, and who sent it where.
#[derive(Debug, Clone)]
struct Planned {
    channel: Sent,
    /// A word only this message carries, to find it in the database.
    token: String,
    text: String,
    /// When in the run it is sent.
    at: Duration,
}

#[derive(Debug, Clone)]
enum Sent {
    Webchat { client_id: String },
    Telegram { chat: i64 },
    Mention { author: String },
    Dm { sender: String },
    Mail { from: String },
}

/// A run: seven customers, one message each, at random moments of a second and a half.
struct Plan {
    messages: Vec<Planned>,
}

impl Plan {
    fn new(run: usize, nonce: u32, rng: &mut StdRng) -> Plan {
        let channels = [
            Sent::Webchat {
                client_id: format!("chaos-{run}-a"),
            },
            Sent::Webchat {
                client_id: format!("chaos-{run}-b"),
            },
            Sent::Telegram {
                chat: 800_000 + run as i64 * 10,
            },
            Sent::Telegram {
                chat: 800_000 + run as i64 * 10 + 1,
            },
            Sent::Mention {
                author: format!("{}", 3_100_000 + run),
            },
            Sent::Dm {
                sender: format!("{}", 3_200_000 + run),
            },
            Sent::Mail {
                from: format!("customer-chaos-{nonce:08x}-{run}@example.test"),
            },
        ];
        let messages = channels
            .into_iter()
            .enumerate()
            .map(|(i, channel)| {
                let token = format!("chaos{run}x{i}");
                let question = QUESTIONS[rng.random_range(0..QUESTIONS.len())];
                Planned {
                    channel,
                    text: format!("{question} {token}"),
                    token,
                    at: Duration::from_millis(rng.random_range(0..1500)),
                }
            })
            .collect();
        Plan { messages }
    }
}

struct World<'a> {
    http: reqwest::Client,
    cluster: Vec<Arc<Mutex<Instance>>>,
    telegram: FakeTelegram,
    x: FakeX,
    mail: &'a Servers,
    support: String,
    store: SqlStore,
    /// The customers' posts on X, by token.
    posts: Mutex<BTreeMap<String, String>>,
    /// The website visitors' tokens, by token.
    visitors: Mutex<BTreeMap<String, String>>,
}

impl World<'_> {
    /// Sends the run's messages while instances are killed and started again; returns
    /// how many kills there were.
    async fn run(&self, plan: &Plan, rng: &mut StdRng) -> usize {
        // One or two kills, anywhere in the storm or just after it.
        let kills: Vec<(Duration, usize, Duration)> = (0..rng.random_range(1..=2))
            .map(|_| {
                (
                    Duration::from_millis(rng.random_range(0..2000)),
                    rng.random_range(0..self.cluster.len()),
                    Duration::from_millis(rng.random_range(0..800)),
                )
            })
            .collect();
        let killing = kills.iter().map(|&(at, which, down)| {
            let instance = self.cluster[which].clone();
            async move {
                tokio::time::sleep(at).await;
                tokio::task::block_in_place(|| instance.lock().unwrap().kill());
                tokio::time::sleep(down).await;
                tokio::task::block_in_place(|| instance.lock().unwrap().start());
            }
        });
        let sending = plan.messages.iter().map(|m| async move {
            tokio::time::sleep(m.at).await;
            self.send(m).await;
        });
        tokio::join!(
            futures_util::future::join_all(killing),
            futures_util::future::join_all(sending)
        );
        kills.len()
    }

    async fn send(&self, m: &Planned) {
        match &m.channel {
            Sent::Webchat { client_id } => {
                let visitor = self.webchat(&m.text, client_id).await;
                self.visitors
                    .lock()
                    .unwrap()
                    .insert(m.token.clone(), visitor);
            }
            Sent::Telegram { chat } => {
                self.telegram.customer_writes(*chat, &m.text);
            }
            Sent::Mention { author } => {
                self.x.customer(author, &format!("customer{author}"));
                let post = self.x.mention(author, &m.text);
                self.posts.lock().unwrap().insert(m.token.clone(), post);
            }
            Sent::Dm { sender } => {
                self.x.customer(sender, &format!("customer{sender}"));
                self.x.dm(sender, &m.text);
            }
            Sent::Mail { from } => {
                let raw = format!(
                    "From: <{from}>\r\nTo: <{}>\r\nSubject: help\r\nMessage-ID: <{}.{from}>\r\n\
                     Content-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
                    self.support, m.token, m.text
                );
                mail::customer_sends(self.mail, from, &self.support, &raw).await;
            }
        }
    }

    /// A website visitor: a session, then the message, each tried on whichever
    /// instance is up until one takes it (the same `client_id`, so a retry of a send
    /// that was stored is not stored again). Returns the visitor's token.
    async fn webchat(&self, text: &str, client_id: &str) -> String {
        let token = self
            .until_taken(|base| {
                self.http
                    .post(format!("{base}/chat/api/session"))
                    .build()
                    .unwrap()
            })
            .await;
        let token = token["visitor_token"].as_str().unwrap().to_owned();
        self.until_taken(|base| {
            self.http
                .post(format!("{base}/chat/api/messages"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "text": text, "client_id": client_id }))
                .build()
                .unwrap()
        })
        .await;
        token
    }

    async fn until_taken(&self, request: impl Fn(&str) -> reqwest::Request) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut turn = 0usize;
        loop {
            turn += 1;
            let live: Vec<String> = self
                .cluster
                .iter()
                .filter_map(|i| {
                    i.try_lock()
                        .ok()
                        .and_then(|i| i.address.lock().unwrap().clone())
                })
                .collect();
            if let Some(address) = live.get(turn % live.len().max(1)) {
                match self
                    .http
                    .execute(request(&format!("http://{address}")))
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        return r.json().await.unwrap_or_default();
                    }
                    Ok(r) if r.status().is_client_error() => {
                        panic!("the website chat refused a visitor: {}", r.status())
                    }
                    // Down, dying or starting: another try, maybe elsewhere.
                    _ => {}
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no instance took a visitor's request in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every message of the run is stored and answered and every answer is
    /// delivered, then counts at the providers.
    async fn settle(&self, plan: &Plan, report: &mut Report) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let found = loop {
            match self.found(plan).await {
                Ok(found) => break found,
                Err(waiting) => {
                    if tokio::time::Instant::now() > deadline {
                        let logs: Vec<String> = self
                            .cluster
                            .iter()
                            .map(|i| i.lock().unwrap().last_log())
                            .collect();
                        panic!(
                            "the run never settled: {waiting}\n{}\n{}",
                            self.diagnosis(plan).await,
                            logs.join("\n----\n")
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        let mut wrong = Vec::new();
        for (m, conversation) in plan.messages.iter().zip(found) {
            report.sent += 1;
            report.stored += conversation.inbound;
            let replies = conversation.replies.len();
            report.replies += replies;
            let (delivered, copies) = self.delivered(m, &conversation).await;
            report.delivered += delivered;
            report.mail_copies += copies;
            let lost = replies.saturating_sub(delivered);
            let doubled = delivered.saturating_sub(replies);
            report.lost += lost;
            report.doubled += doubled;
            // A reply can reach the customer twice only if its first attempt was cut
            // off by a kill: it took more than one attempt.
            let mut retried = 0;
            for reply in &conversation.replies {
                let attempts = self.store.delivery_attempts(reply.id).await.unwrap();
                retried += usize::from(attempts.unwrap_or(0) > 1);
            }
            report.resent_after_kill += doubled;
            if lost > 0 || doubled > retried {
                wrong.push(format!(
                    "{} ({:?}): {replies} replies in the database ({retried} retried), {delivered} \
                     reached the customer: {:?}",
                    m.token, m.channel, conversation.replies
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// For a run that never settled: each message stored or not (looked for message by
    /// message, not through the search index), and what the X poller asked.
    async fn diagnosis(&self, plan: &Plan) -> String {
        let mut said = Vec::new();
        let mut query = ConversationQuery {
            limit: 200,
            ..ConversationQuery::default()
        };
        let mut stored = Vec::new();
        while let Ok(page) = self.store.list_conversations(&query).await {
            for c in &page.items {
                if let Ok(messages) = self.store.messages(c.id, None, 1000).await {
                    stored.extend(messages.into_iter().map(|m| (c.id, m.text)));
                }
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        for m in &plan.messages {
            let found: Vec<_> = stored
                .iter()
                .filter(|(_, t)| t.contains(&m.token))
                .collect();
            said.push(format!("{} {:?}: stored as {found:?}", m.token, m.channel));
        }
        let polls: Vec<String> = self
            .x
            .requests()
            .iter()
            .rev()
            .take(12)
            .map(|r| format!("{:?} {:?} {}", r.endpoint, r.query, r.status))
            .collect();
        said.push(format!("X's last requests, newest first: {polls:#?}"));
        said.push(format!(
            "the customers' posts: {:?}",
            self.posts.lock().unwrap()
        ));
        said.join("\n")
    }

    /// Each planned message's conversation once it is stored once, answered, and every
    /// answer is sent; otherwise what is still awaited.
    async fn found(&self, plan: &Plan) -> Result<Vec<Found>, String> {
        let mut all = Vec::new();
        for m in &plan.messages {
            let query = ConversationQuery {
                text: Some(m.token.clone()),
                ..ConversationQuery::default()
            };
            let page = self
                .store
                .list_conversations(&query)
                .await
                .map_err(|e| e.to_string())?;
            let conversation = match page.items.as_slice() {
                [] => return Err(format!("{} is not stored yet", m.token)),
                [one] => one.id,
                more => panic!("{} is in {} conversations", m.token, more.len()),
            };
            let messages = self
                .store
                .messages(conversation, None, 1000)
                .await
                .map_err(|e| e.to_string())?;
            let inbound = messages
                .iter()
                .filter(|x| x.direction == Direction::In && x.text.contains(&m.token))
                .count();
            assert_eq!(inbound, 1, "{} stored {inbound} times", m.token);
            let replies: Vec<Message> = messages
                .into_iter()
                .filter(|x| x.direction == Direction::Out && x.delivery.is_some())
                .collect();
            if replies.is_empty() {
                return Err(format!("{} has no answer yet", m.token));
            }
            // One turn on one message says each thing once: the same text twice is the
            // engine acting twice.
            let mut texts: Vec<&str> = replies.iter().map(|r| r.text.as_str()).collect();
            texts.sort_unstable();
            texts.dedup();
            assert_eq!(
                texts.len(),
                replies.len(),
                "{} answered twice: {replies:?}",
                m.token
            );
            if let Some(r) = replies.iter().find(|r| r.delivery != Some(Delivery::Sent)) {
                match &r.delivery {
                    Some(Delivery::Failed { reason }) => {
                        panic!("{}: a reply failed: {reason}", m.token)
                    }
                    _ => return Err(format!("{}: a reply is still queued", m.token)),
                }
            }
            all.push(Found { inbound, replies });
        }
        Ok(all)
    }

    /// How many of the conversation's replies the customer received (the fakes and the
    /// mailbox count), and how many mails arrived twice with one Message-ID.
    async fn delivered(&self, m: &Planned, found: &Found) -> (usize, usize) {
        match &m.channel {
            // What the visitor reads (from any instance).
            Sent::Webchat { .. } => {
                let visitor = self.visitors.lock().unwrap()[&m.token].clone();
                let page = self
                    .until_taken(|base| {
                        self.http
                            .get(format!("{base}/chat/api/messages"))
                            .bearer_auth(&visitor)
                            .build()
                            .unwrap()
                    })
                    .await;
                let items = page["items"].as_array().cloned().unwrap_or_default();
                (items.iter().filter(|i| i["author"] != "contact").count(), 0)
            }
            Sent::Telegram { chat } => {
                let sent = self.telegram.sent();
                (sent.iter().filter(|s| s.chat_id == *chat).count(), 0)
            }
            Sent::Mention { .. } => {
                let customer_post = self.posts.lock().unwrap().get(&m.token).cloned();
                let posts = self.x.posted();
                // Each reply answers the customer's post (a long one continues in a thread).
                let answers = posts
                    .iter()
                    .filter(|p| p.in_reply_to.is_some() && p.in_reply_to == customer_post)
                    .count();
                (answers, 0)
            }
            Sent::Dm { sender } => (
                self.x.dms_sent().iter().filter(|d| &d.to == sender).count(),
                0,
            ),
            Sent::Mail { from } => {
                // Postfix hands the mail to Dovecot a moment after it took it.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                loop {
                    let mails = mail::mailbox(self.mail, from);
                    let ids: BTreeMap<String, usize> =
                        mails.iter().fold(BTreeMap::new(), |mut ids, mail| {
                            let id = mail::header(mail, "Message-ID").unwrap_or_default();
                            *ids.entry(id.to_owned()).or_default() += 1;
                            ids
                        });
                    if ids.len() >= found.replies.len() || tokio::time::Instant::now() > deadline {
                        return (ids.len(), mails.len() - ids.len());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// A planned message's conversation in the database.
#[derive(Debug)]
struct Found {
    inbound: usize,
    replies: Vec<Message>,
}
