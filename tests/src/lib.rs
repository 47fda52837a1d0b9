//! Helpers for end-to-end tests: the whole app, in-process, on `127.0.0.1:0`, with a
//! fresh database, like `frontdesk serve` but with test channels attached.
//!
//! (These live here rather than in frontdesk-testkit so that the testkit stays free of
//! the app: the router's own tests use the testkit, and the app depends on the router.)

pub mod mail;

use frontdesk::app::App;
use frontdesk::config::Config;
use frontdesk_core::{Agent, AgentId, Channel, ConversationId, Role};
use frontdesk_router::Metrics;
use frontdesk_store::NewAgent;
use frontdesk_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running app.
#[derive(Debug)]
pub struct TestApp {
    pub address: SocketAddr,
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
    /// The conversation engine, for what agents do that has no page yet.
    pub engine: Arc<frontdesk_router::ConversationEngine>,
    shutdown: CancellationToken,
    running: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    /// Starts the app on `database_url` with `channels` attached and the bot off, for
    /// tests of everything but the bot.
    pub async fn start(database_url: &str, channels: &[Arc<dyn Channel>]) -> TestApp {
        Self::start_with(database_url, channels, |c| c.bot.enabled = false).await
    }

    /// Starts the app with the bot answering from the shipped knowledge base.
    pub async fn start_with_bot(database_url: &str, channels: &[Arc<dyn Channel>]) -> TestApp {
        Self::start_with(database_url, channels, |c| answering(c, true)).await
    }

    /// Starts the app with `adjust` applied to the default configuration
    /// (`{address}` in `server.public_url` becomes the address it listens on).
    pub async fn start_with(
        database_url: &str,
        channels: &[Arc<dyn Channel>],
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut config = Config::default();
        // The website chat only where a test turns it on.
        config.channels.webchat.enabled = false;
        adjust(&mut config);
        config.database.url = database_url.to_owned();
        config.server.listen = "127.0.0.1:0".into();
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().unwrap();
        // A public URL may name the address the app got: `http://{address}`.
        if let Some(url) = &mut config.server.public_url {
            *url = url.replace("{address}", &address.to_string());
        }
        let mut app = App::build(config).await.expect("the app builds");
        for c in channels {
            app = app.with_channel(c.clone());
        }
        let (store, metrics, engine) = (app.store(), app.metrics(), app.engine());
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(app.run(listener, shutdown.clone()));
        TestApp {
            address,
            store,
            metrics,
            engine,
            shutdown,
            running,
        }
    }

    /// An agent who can log in with `password`.
    pub async fn agent(&self, email: &str, role: Role, password: &str) -> Agent {
        let password_hash = frontdesk_router::secret_hash::hash_secret(password).unwrap();
        self.store
            .add_agent(NewAgent {
                email: email.into(),
                name: email.split('@').next().unwrap_or(email).into(),
                role,
                password_hash,
            })
            .await
            .expect("the agent is added")
    }

    /// An API token for `agent` with these scopes (`read`, `write`).
    pub async fn api_token(&self, agent: AgentId, scopes: &[&str]) -> String {
        let token = frontdesk_web::api::new_token();
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        self.store
            .create_api_token(
                agent,
                "tests",
                &frontdesk_web::api::token_hash(&token),
                &scopes,
            )
            .await
            .expect("the token is stored");
        token
    }

    /// The conversation with the newest activity.
    pub async fn latest_conversation(&self) -> ConversationId {
        self.store
            .list_conversations(&frontdesk_store::ConversationQuery::default())
            .await
            .expect("the conversations")
            .items
            .first()
            .expect("a conversation")
            .id
    }

    /// A new website-chat visitor's token.
    pub async fn visitor_token(&self) -> String {
        let session: serde_json::Value = reqwest::Client::new()
            .post(self.url("/chat/api/session"))
            .send()
            .await
            .expect("a session")
            .json()
            .await
            .expect("a JSON session");
        session["visitor_token"]
            .as_str()
            .expect("a visitor token")
            .to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Customer messages stored, over the newest 100 conversations, oldest first in
    /// each.
    pub async fn inbound_messages(&self) -> Vec<frontdesk_core::Message> {
        let page = self
            .store
            .list_conversations(&frontdesk_store::ConversationQuery {
                limit: 100,
                ..frontdesk_store::ConversationQuery::default()
            })
            .await
            .expect("the conversations");
        let mut all = Vec::new();
        for c in page.items {
            let messages = self.store.messages(c.id, None, 10_000).await.unwrap();
            all.extend(
                messages
                    .into_iter()
                    .filter(|m| m.direction == frontdesk_core::Direction::In),
            );
        }
        all
    }

    /// The texts of the customer messages stored (as [`TestApp::inbound_messages`]).
    pub async fn inbound_texts(&self) -> Vec<String> {
        self.inbound_messages()
            .await
            .into_iter()
            .map(|m| m.text)
            .collect()
    }

    /// An agent's reply to `conversation` through the REST API (201 expected).
    pub async fn agent_replies(&self, conversation: i64, text: &str) {
        let agent = match self.store.agent_by_email("amy@desk.example").await.unwrap() {
            Some((agent, _)) => agent,
            None => {
                self.agent("amy@desk.example", Role::Agent, "a long passphrase")
                    .await
            }
        };
        let token = self.api_token(agent.id, &["read", "write"]).await;
        let answer = reqwest::Client::new()
            .post(self.url(&format!("/api/v1/conversations/{conversation}/messages")))
            .bearer_auth(token)
            .json(&serde_json::json!({ "text": text }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
    }

    /// `/readyz` as JSON.
    pub async fn readiness(&self) -> serde_json::Value {
        reqwest::get(self.url("/readyz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Ends the app as a crash would: its tasks are dropped where they stand and its
    /// database connections close without a goodbye (what PostgreSQL sees of a
    /// process killed with SIGKILL).
    pub async fn kill(self) {
        self.running.abort();
        let _ = self.running.await;
    }

    /// Shuts down as on SIGTERM and waits until it has.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.running
            .await
            .expect("the app task panicked")
            .expect("the app stopped with an error");
    }
}

/// The FAQ bot on (answering from the shipped knowledge base) or off.
pub fn answering(config: &mut Config, bot: bool) {
    if bot {
        config.bot.faq = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/faq.toml").into();
    } else {
        config.bot.enabled = false;
    }
}

/// The X channel on, pointed at `fake` with its OAuth 1.0a keys, polling every second.
pub fn on_fake_x(config: &mut Config, fake: &frontdesk_testkit::FakeX) {
    let keys = fake.oauth1().clone();
    let x = &mut config.channels.x;
    x.enabled = true;
    x.api_url = fake.api_url().to_owned();
    x.user_id = Some(frontdesk_testkit::x::ACCOUNT_ID.into());
    x.consumer_key = Some(keys.consumer_key.into());
    x.consumer_secret = Some(keys.consumer_secret.into());
    x.access_token = Some(keys.access_token.into());
    x.access_token_secret = Some(keys.access_token_secret.into());
    x.poll_seconds = 1;
}

/// Waits until `check` holds, `limit` at most.
pub async fn until<F, Fut>(what: &str, limit: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Runs each listed story, an `async fn(TestDatabase)` in the calling module, on SQLite
/// and on PostgreSQL (when `FRONTDESK_TEST_POSTGRES_URL` is set; under `CI=true` it
/// must be). The calling module imports `TestDatabase`.
#[macro_export]
macro_rules! on_every_backend {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    super::$story(super::TestDatabase::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let Some(db) = super::TestDatabase::postgres().await else { return };
                    super::$story(db).await;
                }
            )*
        }
    };
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The reply form's idempotency key (`name="key"`) in a conversation page.
pub fn reply_key_of(page: &str) -> String {
    let at = page
        .find("name=\"key\" value=\"")
        .expect("a reply key field")
        + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

/// The value of `<input type="hidden" name="csrf" value="...">` in a page.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

pub async fn log_in(
    app: &TestApp,
    http: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = http
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    http.post(app.url("/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf", &csrf_of(&page)),
        ])
        .send()
        .await
        .unwrap()
}

/// A browser signed in as a new agent with this address and `role`.
pub async fn signed_in(app: &TestApp, email: &str, role: Role) -> reqwest::Client {
    app.agent(email, role, "a long passphrase").await;
    let http = browser();
    log_in(app, &http, email, "a long passphrase").await;
    http
}

/// GET a page as this browser: its status and text.
pub async fn get(
    http: &reqwest::Client,
    app: &TestApp,
    path: &str,
) -> (reqwest::StatusCode, String) {
    let r = http.get(app.url(path)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// POST a form as this browser: the status and text of the answer.
pub async fn post(
    http: &reqwest::Client,
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
) -> (reqwest::StatusCode, String) {
    let r = http.post(app.url(path)).form(form).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}
