//! The website chat over its plain HTTP API: a visitor talks to the bot, asks for a
//! person, reads the agent's reply and the survey; retries double nothing; tokens
//! cannot be forged; a visitor who floods is slowed down.

use frontdesk_e2e::TestApp;
use frontdesk_store::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

frontdesk_e2e::on_every_backend!(
    a_visitor_talks_to_the_bot_then_a_person_and_rates_them,
    a_retried_send_is_stored_once_and_visitors_see_only_their_own,
    forged_tokens_and_bad_messages_are_refused,
    a_visitor_who_floods_is_slowed_down,
    the_chat_page_and_widget_are_served_and_the_cookie_keeps_the_visitor,
    a_visitor_hears_of_a_reply_over_server_sent_events,
    a_visitor_leaves_an_email_and_gets_the_files_an_agent_sends,
);

struct Visitor {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Visitor {
    async fn arrive(app: &TestApp) -> Visitor {
        Visitor {
            http: reqwest::Client::new(),
            base: app.url(""),
            token: app.visitor_token().await,
        }
    }

    async fn says(&self, text: &str, client_id: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/chat/api/messages", self.base))
            .bearer_auth(&self.token)
            .header("accept-language", "zh-CN,zh;q=0.9")
            .json(&json!({ "text": text, "client_id": client_id }))
            .send()
            .await
            .unwrap()
    }

    async fn read(&self, after: i64) -> Vec<Value> {
        let page: Value = self
            .http
            .get(format!("{}/chat/api/messages?after={after}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"].as_array().unwrap().clone()
    }

    /// Everything after `after`, once there are `n` new items.
    async fn read_until(&self, after: i64, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let items = self.read(after).await;
            if items.len() >= n {
                return items;
            }
            assert!(tokio::time::Instant::now() < deadline, "only {items:?}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

impl Visitor {
    async fn leaves_email(&self, email: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/chat/api/email", self.base))
            .bearer_auth(&self.token)
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }
}

async fn start(db: &TestDatabase) -> TestApp {
    TestApp::start_with(db.url(), &[], |c| {
        c.channels.webchat.enabled = true;
        c.bot.faq = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/faq.toml").into();
    })
    .await
}

async fn a_visitor_talks_to_the_bot_then_a_person_and_rates_them(db: TestDatabase) {
    let app = start(&db).await;
    let visitor = Visitor::arrive(&app).await;
    let sent = visitor.says("转账一直pending怎么办", "c-1").await;
    assert_eq!(sent.status(), StatusCode::CREATED);
    let items = visitor.read_until(0, 2).await;
    assert_eq!(items[0]["author"], "contact");
    assert_eq!(items[0]["text"], "转账一直pending怎么办");
    assert_eq!(items[1]["author"], "bot");
    assert!(
        items[1]["text"].as_str().unwrap().contains("人工"),
        "{}",
        items[1]
    );
    let seen = items.last().unwrap()["id"].as_i64().unwrap();

    visitor.says("转人工", "c-2").await;
    let items = visitor.read_until(seen, 2).await;
    assert!(
        items[1]["text"].as_str().unwrap().contains("人工客服"),
        "{}",
        items[1]
    );
    let seen = items.last().unwrap()["id"].as_i64().unwrap();

    // An agent answers through the API, and resolves.
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
        .json(&json!({ "text": "您好，我是客服 Amy，已为您查询到账情况。" }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::CREATED);
    let items = visitor.read_until(seen, 1).await;
    assert_eq!(items[0]["author"], "agent");
    assert!(items[0]["text"].as_str().unwrap().contains("Amy"));
    let seen = items.last().unwrap()["id"].as_i64().unwrap();
    http.patch(app.url(&format!("/api/v1/conversations/{conversation}")))
        .bearer_auth(&token)
        .json(&json!({ "status": "resolved" }))
        .send()
        .await
        .unwrap();
    let items = visitor.read_until(seen, 1).await;
    assert_eq!(
        items[0]["choices"],
        json!(["5", "4", "3", "2", "1"]),
        "{}",
        items[0]
    );
    let seen = items.last().unwrap()["id"].as_i64().unwrap();
    visitor.says("5 谢谢", "c-3").await;
    let items = visitor.read_until(seen, 2).await;
    assert_eq!(items[0]["text"], "5 谢谢");
    assert_eq!(items[1]["author"], "bot");
    let survey = app.store.csat(conversation).await.unwrap().unwrap();
    assert_eq!(survey.rating, Some(5));
    app.stop().await;
}

async fn a_retried_send_is_stored_once_and_visitors_see_only_their_own(db: TestDatabase) {
    let app = start(&db).await;
    let ann = Visitor::arrive(&app).await;
    let bob = Visitor::arrive(&app).await;
    assert_eq!(
        ann.says("hello", "same-id").await.status(),
        StatusCode::CREATED
    );
    // The response was lost; the widget sends again with the same client id.
    let again = ann.says("hello", "same-id").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["duplicate"], true);
    // Bob happens to use the same client id: his message is his own.
    assert_eq!(
        bob.says("hi there", "same-id").await.status(),
        StatusCode::CREATED
    );
    let anns = ann.read_until(0, 2).await;
    let from_ann: Vec<&Value> = anns.iter().filter(|m| m["author"] == "contact").collect();
    assert_eq!(from_ann.len(), 1);
    assert!(anns.iter().all(|m| m["text"] != "hi there"));
    let bobs = bob.read_until(0, 2).await;
    assert!(bobs.iter().all(|m| m["text"] != "hello"));
    app.stop().await;
}

async fn forged_tokens_and_bad_messages_are_refused(db: TestDatabase) {
    let app = start(&db).await;
    let visitor = Visitor::arrive(&app).await;
    let forged = Visitor {
        token: visitor.token.replacen("v1.", "v1.0", 1),
        http: reqwest::Client::new(),
        base: visitor.base.clone(),
    };
    assert_eq!(
        forged.says("hi", "x").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let anonymous = reqwest::Client::new()
        .get(app.url("/chat/api/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    for (text, client_id) in [("", "a"), ("x", ""), ("x", "not a uuid!")] {
        let response = visitor.says(text, client_id).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{text:?} {client_id:?}"
        );
    }
    let long = visitor
        .says(&"长".repeat(frontdesk_web::webchat::MAX_TEXT + 1), "long")
        .await;
    assert_eq!(long.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let huge = visitor
        .says(&"x".repeat(frontdesk_web::webchat::BODY_LIMIT + 1), "huge")
        .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let broken = reqwest::Client::new()
        .post(app.url("/chat/api/messages"))
        .bearer_auth(&visitor.token)
        .header("content-type", "application/json")
        .body("{\"text\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    assert!(visitor.read(0).await.is_empty(), "nothing was stored");
    app.stop().await;
}

async fn a_visitor_who_floods_is_slowed_down(db: TestDatabase) {
    let app = start(&db).await;
    let visitor = Visitor::arrive(&app).await;
    let mut statuses = Vec::new();
    for n in 0..12 {
        let response = visitor.says(&format!("spam {n}"), &format!("c{n}")).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status());
    }
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(limited >= 1, "{statuses:?}");
    assert_eq!(
        statuses[..10],
        [StatusCode::CREATED; 10],
        "a burst of ten is fine"
    );
    // Another visitor is not held back by this one.
    let other = Visitor::arrive(&app).await;
    assert_eq!(
        other.says("hello", "o1").await.status(),
        StatusCode::CREATED
    );
    app.stop().await;
}

async fn the_chat_page_and_widget_are_served_and_the_cookie_keeps_the_visitor(db: TestDatabase) {
    let app = start(&db).await;
    let http = reqwest::Client::new();
    let page = http.get(app.url("/chat")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && !csp.contains("script-src 'unsafe-inline'"),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("/chat/chat.js"));
    for script in ["/chat/chat.js", "/widget.js"] {
        let js = http.get(app.url(script)).send().await.unwrap();
        assert!(
            js.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        let body = js.text().await.unwrap();
        assert!(!body.contains("innerHTML"), "{script} writes text only");
    }

    // The session sets a signed cookie; the visitor who returns with it is the same one.
    let first = http
        .post(app.url("/chat/api/session"))
        .send()
        .await
        .unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let token = first.json::<Value>().await.unwrap()["visitor_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let again: Value = http
        .post(app.url("/chat/api/session"))
        .header("cookie", &pair)
        .header("x-requested-with", "frontdesk-chat")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["visitor_token"], token.as_str());
    // The cookie works with the page's header, and never alone (a forged cross-site
    // form cannot send as the visitor).
    let with_header = http
        .post(app.url("/chat/api/messages"))
        .header("cookie", &pair)
        .header("x-requested-with", "frontdesk-chat")
        .json(&json!({ "text": "hello", "client_id": "k1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(with_header.status(), StatusCode::CREATED);
    let alone = http
        .post(app.url("/chat/api/messages"))
        .header("cookie", &pair)
        .json(&json!({ "text": "hello again", "client_id": "k2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(alone.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn a_visitor_hears_of_a_reply_over_server_sent_events(db: TestDatabase) {
    let app = start(&db).await;
    let visitor = Visitor::arrive(&app).await;
    let other = Visitor::arrive(&app).await;
    visitor.says("hello", "s1").await;
    let mine = app.latest_conversation().await;
    let mut stream = reqwest::Client::new()
        .get(app.url(&format!("/chat/api/stream?token={}", visitor.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // Someone else's conversation says nothing to this visitor; their own does.
    other.says("hi from elsewhere", "o1").await;
    let agent = app
        .agent(
            "amy@desk.example",
            frontdesk_core::Role::Agent,
            "amy's passphrase",
        )
        .await;
    let token = app.api_token(agent.id, &["write"]).await;
    reqwest::Client::new()
        .post(app.url(&format!("/api/v1/conversations/{mine}/messages")))
        .bearer_auth(&token)
        .json(&json!({ "text": "hello from Amy" }))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("\"message_id\"") || !seen.contains("update") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    for line in seen.lines().filter(|l| l.starts_with("data:")) {
        let data: Value = serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap();
        assert_eq!(
            data["conversation_id"], mine.0,
            "only the visitor's own conversation"
        );
    }
    assert!(!seen.contains("hello from Amy"), "ids only, never text");
    let refused = reqwest::Client::new()
        .get(app.url("/chat/api/stream?token=v1.x.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn a_visitor_leaves_an_email_and_gets_the_files_an_agent_sends(db: TestDatabase) {
    let app = start(&db).await;
    let visitor = Visitor::arrive(&app).await;
    let (status, _) = visitor.leaves_email("li@example.com").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "nothing written yet"
    );
    visitor.says("人工", "e-1").await;
    visitor.read_until(0, 2).await;
    let (status, _) = visitor.leaves_email("not an address").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = visitor.leaves_email(" Li@Example.com ").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["email"], "l***@example.com", "masked in the answer");
    let id = app.latest_conversation().await;
    let c = app.store.conversation(id).await.unwrap().unwrap();
    assert_eq!(
        app.store.visitor_emails(c.contact_id).await.unwrap(),
        ["li@example.com"]
    );
    let contact = app.store.contact(c.contact_id).await.unwrap().unwrap();
    assert!(
        contact
            .identities
            .iter()
            .all(|i| i.channel != frontdesk_core::ChannelKind::Email),
        "typed in a chat: not an identity that mail could join"
    );
    // Another visitor typing the same address is not joined to this contact.
    let other = Visitor::arrive(&app).await;
    other.says("hello", "o-1").await;
    other.read_until(0, 2).await;
    let (status, _) = other.leaves_email("li@example.com").await;
    assert_eq!(status, StatusCode::OK);
    let theirs = app.latest_conversation().await;
    let c2 = app.store.conversation(theirs).await.unwrap().unwrap();
    assert_ne!(c2.contact_id, c.contact_id);
    let notes = app.store.messages(theirs, None, 100).await.unwrap();
    assert!(
        notes
            .iter()
            .any(|m| m.text.contains("left an email")
                && m.kind == frontdesk_core::MessageKind::Event),
        "agents are told"
    );
    // An agent sends a file: the visitor gets a link that works, and only that one.
    let bytes = b"%PDF-1.4 receipt".to_vec();
    let file = app
        .store
        .save_file(id, "收据.pdf", "application/pdf", "x", bytes.clone())
        .await
        .unwrap();
    let reply = frontdesk_store::NewReply {
        attachments: vec![frontdesk_core::Attachment {
            name: "收据.pdf".into(),
            content_type: "application/pdf".into(),
            size: bytes.len() as u64,
            reference: format!("file:{}", file.id),
        }],
        ..frontdesk_store::NewReply::from_bot(id, "这是您的收据")
    };
    app.store.reply(reply).await.unwrap();
    let items = visitor.read(0).await;
    let sent = items
        .iter()
        .find(|m| m["text"] == "这是您的收据")
        .expect("the reply");
    let url = sent["files"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(sent["files"][0]["name"], "收据.pdf");
    let got = reqwest::get(app.url(&url)).await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert!(
        got.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("UTF-8''%E6%94%B6%E6%8D%AE.pdf")
    );
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    let forged = url.replace(&format!("f1.{}.", file.id), &format!("f1.{}.", file.id + 1));
    assert_eq!(
        reqwest::get(app.url(&forged)).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
