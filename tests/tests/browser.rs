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

async fn type_into(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The visitor types into the chat and presses Send.
async fn say(client: &Client, text: &str) {
    type_into(client, "#text", text).await;
    click(client, "#go").await;
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
        .agent(
            "amy@desk.example",
            frontdesk_core::Role::Agent,
            "amy's passphrase",
        )
        .await;
    let token = app.api_token(agent.id, &["read", "write"]).await;
    let conversation = app.latest_conversation().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_logs_in_and_answers_a_visitor_from_the_inbox() {
    let Some(driver) = driver() else { return };
    let db = TestDatabase::sqlite();
    let app = TestApp::start_with(db.url(), &[], |c| {
        c.channels.webchat.enabled = true;
        c.bot.faq = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/faq.toml").into();
    })
    .await;
    app.agent(
        "amy@desk.example",
        frontdesk_core::Role::Admin,
        "amy's passphrase",
    )
    .await;
    // A visitor asks for a person over the chat's HTTP API.
    let http = reqwest::Client::new();
    let visitor = app.visitor_token().await;
    for (n, text) in ["我的提现还没到账 <script>alert(1)</script>", "转人工"]
        .iter()
        .enumerate()
    {
        http.post(app.url("/chat/api/messages"))
            .bearer_auth(&visitor)
            .json(&json!({ "text": text, "client_id": format!("m{n}") }))
            .send()
            .await
            .unwrap();
    }

    let client = browser(&driver).await;
    client.set_window_size(1200, 800).await.unwrap();
    client.goto(&app.url("/")).await.unwrap();
    type_into(&client, "input[name=email]", "amy@desk.example").await;
    type_into(&client, "input[name=password]", "amy's passphrase").await;
    click(&client, "form button[type=submit]").await;
    client.goto(&app.url("/?view=unassigned")).await.unwrap();
    let link = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("table.list tbody a"))
        .await
        .unwrap();
    std::fs::write(
        artifacts().join("inbox.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    link.click().await.unwrap();
    // The customer's markup is shown as text, and did not run.
    let texts = client
        .find_all(Locator::Css("li.msg.contact .text"))
        .await
        .unwrap();
    assert!(
        texts[0]
            .text()
            .await
            .unwrap()
            .contains("<script>alert(1)</script>")
    );
    assert!(
        client
            .find_all(Locator::Css("ol.messages script"))
            .await
            .unwrap()
            .is_empty()
    );
    type_into(
        &client,
        "form.reply textarea",
        "您好，我是 Amy，这就帮您查提现。",
    )
    .await;
    click(&client, "form.reply button").await;
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//li[contains(@class,'agent')]"))
        .await
        .unwrap();
    std::fs::write(
        artifacts().join("conversation.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    let seen = |needle: &'static str| {
        let http = http.clone();
        let url = app.url("/chat/api/messages?after=0");
        let visitor = visitor.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
            loop {
                let page: serde_json::Value = http
                    .get(&url)
                    .bearer_auth(&visitor)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["text"].as_str().unwrap_or("").contains(needle))
                {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the visitor never saw {needle:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    seen("这就帮您查提现").await;
    click(&client, "button[value=resolve]").await;
    seen("打分").await;

    // The list updates itself when a new customer arrives: no reload.
    client.goto(&app.url("/?view=unassigned")).await.unwrap();
    let before = client
        .find_all(Locator::Css("table.list tbody tr"))
        .await
        .unwrap()
        .len();
    client
        .execute("window.__stayed = true;", vec![])
        .await
        .unwrap();
    let newcomer = app.visitor_token().await;
    http.post(app.url("/chat/api/messages"))
        .bearer_auth(&newcomer)
        .json(&json!({ "text": "human", "client_id": "n1" }))
        .send()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let rows = client
            .find_all(Locator::Css("table.list tbody tr"))
            .await
            .unwrap()
            .len();
        if rows > before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new conversation never showed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stayed = client
        .execute("return window.__stayed === true;", vec![])
        .await
        .unwrap();
    assert_eq!(
        stayed,
        serde_json::Value::Bool(true),
        "the page was not reloaded"
    );
    // Keyboard: j selects the first row, o opens it.
    let body = client.find(Locator::Css("body")).await.unwrap();
    body.send_keys("j").await.unwrap();
    body.send_keys("o").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !client
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/conversations/")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "j then o did not open a conversation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The reports page, drawn on the server.
    client.goto(&app.url("/reports")).await.unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("figure svg"))
        .await
        .unwrap();
    std::fs::write(
        artifacts().join("reports.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client.close().await.unwrap();
    app.stop().await;
}
