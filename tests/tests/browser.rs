//! The website chat in a real browser: Debian's chromium, headless, driven through
//! chromedriver. scripts/test installs both; without them these tests are skipped,
//! except under CI=true, where they must run.
//!
//! Screenshots go to `$FRONTDESK_ARTIFACTS` (default `/tmp/frontdesk-artifacts`).

use fantoccini::{Client, ClientBuilder, Locator};
use frontdesk_e2e::TestApp;
use frontdesk_store::testing::TestDatabase;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver process on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn driver() -> Option<Driver> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium and chromedriver are missing on CI; scripts/test installs them"
        );
        eprintln!("skipping the browser test: install chromium and chromium-driver");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    Some(Driver { child, port })
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=480,800", "--lang=zh-CN"],
            "prefs": { "intl.accept_languages": "zh-CN,zh" }
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "chromedriver did not start: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn artifacts() -> PathBuf {
    let dir = std::env::var("FRONTDESK_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/tmp/frontdesk-artifacts"));
    std::fs::create_dir_all(&dir).expect("the artifacts directory");
    dir
}

/// Waits until the chat shows a message of `author` whose text contains `needle`.
async fn shows(client: &Client, author: &str, needle: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let boxes = client
            .find_all(Locator::Css(&format!("#log .msg.{author}")))
            .await
            .unwrap();
        for b in boxes {
            if b.text().await.unwrap_or_default().contains(needle) {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {author} message with {needle:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn say(client: &Client, text: &str) {
    let input = client.find(Locator::Css("#text")).await.unwrap();
    input.send_keys(text).await.unwrap();
    client
        .find(Locator::Css("#go"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_in_the_browser_reaches_a_person_and_rates_them() {
    let Some(driver) = driver() else { return };
    let db = TestDatabase::sqlite();
    let app = TestApp::start_with(db.url(), &[], |c| {
        c.channels.webchat.enabled = true;
        c.bot.faq = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/faq.toml").into();
    })
    .await;
    let client = browser(&driver).await;
    client.goto(&app.url("/chat")).await.unwrap();
    assert_eq!(
        client
            .find(Locator::Css("#title"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "在线客服"
    );

    say(&client, "转账一直pending怎么办").await;
    shows(&client, "bot", "人工").await;
    // Markup a customer types stays text.
    say(&client, "<img src=x onerror=alert(1)>").await;
    shows(&client, "contact", "<img src=x onerror=alert(1)>").await;
    assert!(
        client
            .find_all(Locator::Css("#log img"))
            .await
            .unwrap()
            .is_empty()
    );
    say(&client, "转人工").await;
    shows(&client, "bot", "人工客服").await;

    // An agent answers (through the API) and resolves.
    let agent = app
        .store
        .add_agent(frontdesk_store::NewAgent {
            email: "amy@desk.example".into(),
            name: "Amy".into(),
            role: frontdesk_core::Role::Agent,
            password_hash: "unused".into(),
        })
        .await
        .unwrap();
    let token = frontdesk_web::api::new_token();
    app.store
        .create_api_token(
            agent.id,
            "browser test",
            &frontdesk_web::api::token_hash(&token),
            &["read".into(), "write".into()],
        )
        .await
        .unwrap();
    let conversation = app
        .store
        .list_conversations(&frontdesk_store::ConversationQuery::default())
        .await
        .unwrap()
        .items[0]
        .id;
    let http = reqwest::Client::new();
    let reply = http
        .post(app.url(&format!("/api/v1/conversations/{conversation}/messages")))
        .bearer_auth(&token)
        .json(&json!({ "text": "您好，我是客服 Amy，转账已到账。" }))
        .send()
        .await
        .unwrap();
    assert!(reply.status().is_success());
    shows(&client, "agent", "Amy").await;
    http.patch(app.url(&format!("/api/v1/conversations/{conversation}")))
        .bearer_auth(&token)
        .json(&json!({ "status": "resolved" }))
        .send()
        .await
        .unwrap();
    shows(&client, "bot", "打分").await;
    let screenshot = client.screenshot().await.unwrap();
    std::fs::write(artifacts().join("chat.png"), screenshot).unwrap();

    // The survey's buttons answer it.
    let five = client
        .find(Locator::XPath("//div[@class='choices']/button[text()='5']"))
        .await
        .unwrap();
    five.click().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let survey = app.store.csat(conversation).await.unwrap().unwrap();
        if survey.rating == Some(5) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no rating stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A reload shows the same conversation, each message once.
    client.refresh().await.unwrap();
    shows(&client, "agent", "Amy").await;
    let contact_messages = client
        .find_all(Locator::Css("#log .msg.contact"))
        .await
        .unwrap()
        .len();
    assert_eq!(contact_messages, 4);
    client.close().await.unwrap();
    app.stop().await;
}
