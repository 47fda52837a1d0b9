//! The REST API over real HTTP: tokens and scopes, the documented shapes, sends with
//! idempotency keys, changes through the conversation engine, and clear errors.

use frontdesk_core::{
    Channel, ChannelAccount, ChannelKind, ConversationId, Inbound, Role, Sender, Status,
};
use frontdesk_e2e::TestApp;
use frontdesk_store::ConversationQuery;
use frontdesk_store::testing::TestDatabase;
use frontdesk_testkit::MemoryChannel;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

frontdesk_e2e::on_every_backend!(
    contacts_are_read_merged_exported_and_erased_by_whom_may,
    an_integration_reads_and_answers_a_conversation,
    requests_without_a_good_token_or_scope_are_refused,
    bad_requests_get_a_clear_error_and_change_nothing,
    a_patch_assigns_prioritises_and_resolves_through_the_engine,
    a_reply_that_asks_for_a_recovery_phrase_is_refused_with_the_reason,
);

struct Api {
    app: TestApp,
    channel: MemoryChannel,
    http: reqwest::Client,
    token: String,
    agent: i64,
}

impl Api {
    async fn start(db: &TestDatabase) -> Api {
        let channel = MemoryChannel::new(ChannelAccount::default_of(ChannelKind::Telegram));
        let app = TestApp::start(db.url(), &[Arc::new(channel.clone()) as Arc<dyn Channel>]).await;
        let (agent, token) = token_for(&app, "amy@desk.example", &["read", "write"]).await;
        Api {
            app,
            channel,
            http: reqwest::Client::new(),
            token,
            agent,
        }
    }

    /// A customer writes on Telegram; returns their conversation once it is stored.
    async fn customer_writes(&self, text: &str) -> i64 {
        let sender = Sender {
            external_id: "user-7".into(),
            display_name: Some("王先生".into()),
            language: None,
        };
        let account = ChannelAccount::default_of(ChannelKind::Telegram);
        self.channel
            .customer_sends(Inbound::new(account, "update-1", sender, "chat-7", text).unwrap());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let page = self
                .app
                .store
                .list_conversations(&ConversationQuery::default())
                .await
                .unwrap();
            if let Some(c) = page.items.first()
                && c.status == Status::Open
            {
                return c.id.0;
            }
            assert!(tokio::time::Instant::now() < deadline, "not stored");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The contact of a conversation.
    async fn contact_of(&self, conversation: i64) -> i64 {
        let c = self
            .app
            .store
            .conversation(ConversationId(conversation))
            .await
            .unwrap();
        c.expect("the conversation").contact_id.0
    }

    fn call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.call(reqwest::Method::GET, path).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn token_for(app: &TestApp, email: &str, scopes: &[&str]) -> (i64, String) {
    let agent = app.agent(email, Role::Agent, "a long passphrase").await;
    (agent.id.0, app.api_token(agent.id, scopes).await)
}

async fn an_integration_reads_and_answers_a_conversation(db: TestDatabase) {
    let api = Api::start(&db).await;
    let id = api
        .customer_writes("转账一直没到账 <img src=x onerror=alert(1)>")
        .await;

    let (status, list) = api.get("/api/v1/conversations?status=open&limit=10").await;
    assert_eq!(status, StatusCode::OK);
    let item = &list["items"][0];
    assert_eq!(item["id"], id);
    assert_eq!(item["status"], "open");
    assert_eq!(item["priority"], "normal");
    assert_eq!(item["channel"], "telegram");
    assert_eq!(item["contact"]["name"], "王先生");
    assert!(item["contact"]["id"].is_i64() && item["assignee"].is_null());
    assert!(item["last_message_at"].is_string());
    assert!(list["next"].is_null());
    let (_, one) = api.get(&format!("/api/v1/conversations/{id}")).await;
    assert_eq!(&one, item);
    let (_, found) = api
        .get("/api/v1/conversations?q=%E6%B2%A1%E5%88%B0%E8%B4%A6&channel=telegram")
        .await;
    assert_eq!(
        found["items"][0]["id"], id,
        "found by a word of the message"
    );
    let (_, none) = api.get("/api/v1/conversations?q=nothing+like+this").await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let (status, _) = api.get("/api/v1/conversations?priority=whenever").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, messages) = api
        .get(&format!("/api/v1/conversations/{id}/messages"))
        .await;
    let first = &messages["items"][0];
    assert_eq!(
        (first["direction"].as_str(), first["author"].as_str()),
        (Some("in"), Some("contact"))
    );
    // Stored and returned as the customer wrote it: data, never markup.
    assert_eq!(first["text"], "转账一直没到账 <img src=x onerror=alert(1)>");
    assert!(first["delivery"].is_null() && first["created_at"].is_string());

    // The same send twice with one key: one message, one delivery.
    let send = || {
        api.call(
            reqwest::Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
        )
        .header("Idempotency-Key", "reply-1")
        .json(&json!({ "text": "您好，请提供交易哈希", "private": false }))
        .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    assert_eq!(
        (first["author"].as_str(), first["agent_id"].as_i64()),
        (Some("agent"), Some(api.agent))
    );
    let note = api
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
        )
        .json(&json!({ "text": "customer seems legit", "private": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(note.status(), StatusCode::CREATED);
    api.channel
        .wait_for_attempts(1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        api.channel.received(),
        ["您好，请提供交易哈希"],
        "the note stays inside"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, messages) = api
            .get(&format!("/api/v1/conversations/{id}/messages"))
            .await;
        let reply = messages["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == first["id"])
            .cloned()
            .unwrap();
        if reply["delivery"] == "sent" {
            let private: Vec<bool> = messages["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["private"].as_bool().unwrap())
                .collect();
            assert_eq!(private, [false, false, true]);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{reply}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api.app.stop().await;
}

async fn requests_without_a_good_token_or_scope_are_refused(db: TestDatabase) {
    let api = Api::start(&db).await;
    let id = api.customer_writes("hello").await;
    let http = reqwest::Client::new();
    let bare = http
        .get(api.app.url("/api/v1/conversations"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bare.headers()["www-authenticate"], "Bearer");
    let wrong = http
        .get(api.app.url("/api/v1/conversations"))
        .bearer_auth("fdt_0000")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (_, reader) = token_for(&api.app, "reader@desk.example", &["read"]).await;
    let read = http
        .get(api.app.url("/api/v1/conversations"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let write = http
        .post(api.app.url(&format!("/api/v1/conversations/{id}/messages")))
        .bearer_auth(&reader)
        .json(&json!({ "text": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), StatusCode::FORBIDDEN);
    let body: Value = write.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("write"), "{body}");
    api.app.stop().await;
}

async fn bad_requests_get_a_clear_error_and_change_nothing(db: TestDatabase) {
    let api = Api::start(&db).await;
    let id = api.customer_writes("hello").await;
    let path = format!("/api/v1/conversations/{id}/messages");
    let raw = |body: &'static str| {
        api.call(reqwest::Method::POST, &path)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let broken = raw("{\"text\": \"hi\"").await.unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let error: Value = broken.json().await.unwrap();
    assert!(error["error"].is_string());
    let typed = raw("{\"text\": 5}").await.unwrap();
    assert_eq!(typed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = raw("{\"text\": \"hi\", \"sudo\": true}").await.unwrap();
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let empty = raw("{\"text\": \"   \"}").await.unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let huge = api
        .call(reqwest::Method::POST, &path)
        .json(&json!({ "text": "x".repeat(frontdesk_web::api::BODY_LIMIT + 1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = api.get("/api/v1/conversations/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api.get("/api/v1/conversations?status=closed").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"].as_str().unwrap().contains("resolved"),
        "{body}"
    );
    let (status, _) = api.get("/api/v1/conversations?cursor=garbage").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let patch = api
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/conversations/{id}"),
        )
        .json(&json!({ "status": "snoozed" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing above was stored.
    let messages = api
        .app
        .store
        .messages(ConversationId(id), None, 0)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        api.app
            .store
            .conversation(ConversationId(id))
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Open
    );
    api.app.stop().await;
}

async fn a_patch_assigns_prioritises_and_resolves_through_the_engine(db: TestDatabase) {
    let api = Api::start(&db).await;
    let id = api.customer_writes("hello").await;
    let patch = |body: Value| {
        api.call(
            reqwest::Method::PATCH,
            &format!("/api/v1/conversations/{id}"),
        )
        .json(&body)
        .send()
    };
    let changed: Value = patch(json!({ "assignee": api.agent, "priority": "urgent" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (changed["assignee"].as_i64(), changed["priority"].as_str()),
        (Some(api.agent), Some("urgent"))
    );
    let labelled: Value = patch(json!({ "labels": ["vip", "提现", "vip"] }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(labelled["labels"], json!(["vip", "提现"]));
    let by_label: Value = api
        .call(
            reqwest::Method::GET,
            "/api/v1/conversations?label=%E6%8F%90%E7%8E%B0",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_label["items"][0]["id"].as_i64(), Some(id));
    let bad = patch(json!({ "labels": "vip" })).await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let pending: Value = patch(json!({ "status": "pending" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending["status"], "pending");
    let snoozed: Value =
        patch(json!({ "status": "snoozed", "snoozed_until": "2099-01-01T00:00:00Z" }))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(snoozed["snoozed_until"], "2099-01-01T00:00:00Z");
    let resolved = patch(json!({ "status": "resolved" })).await.unwrap();
    assert_eq!(resolved.status(), StatusCode::OK);
    // People handled it: the customer is asked for a rating, on Telegram.
    let received = api
        .channel
        .wait_for_attempts(1, Duration::from_secs(10))
        .await;
    assert!(
        received[0].outbound.text.contains("1") && received[0].outbound.quick_replies.len() == 5
    );
    let unassigned: Value = patch(json!({ "assignee": null }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(unassigned["assignee"].is_null());
    api.app.stop().await;
}

async fn a_reply_that_asks_for_a_recovery_phrase_is_refused_with_the_reason(db: TestDatabase) {
    let api = Api::start(&db).await;
    let id = api.customer_writes("my wallet is empty").await;
    let refused = api
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
        )
        .json(&json!({ "text": "Please send us your 12-word recovery phrase so we can check." }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().starts_with("refused"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(api.channel.attempts().is_empty());
    api.app.stop().await;
}

/// The OpenAPI description and the router agree: every route the API serves is
/// described, and every described route is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_description_lists_every_route_the_api_serves() {
    let db = TestDatabase::sqlite();
    let api = Api::start(&db).await;
    let id = api.customer_writes("hello").await;
    let spec: Value = reqwest::get(api.app.url("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    let mut described: Vec<(String, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            described.push((method.clone(), path.clone()));
        }
    }
    described.sort();
    let mut served: Vec<(String, String)> = frontdesk_web::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(described, served);
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    // Each route answers (as an admin, with the right bodies; erasure last).
    let admin = api
        .app
        .agent("root@desk.example", Role::Admin, "root's passphrase")
        .await;
    let token = api.app.api_token(admin.id, &["read", "write"]).await;
    let contact = api.contact_of(id).await;
    let mut routes = frontdesk_web::api::ROUTES.to_vec();
    routes.sort_by_key(|(method, _)| *method == "delete");
    for (method, path) in routes {
        let target = if path.starts_with("/api/v1/contacts") {
            contact
        } else {
            id
        };
        let url = api.app.url(&path.replace("{id}", &target.to_string()));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = match (method.as_str(), path) {
            ("POST", "/api/v1/contacts/{id}/merge") => None,
            ("POST", _) => Some(json!({ "text": "checking the route", "private": true })),
            ("PATCH", _) => Some(json!({ "priority": "high" })),
            _ => None,
        };
        if path.ends_with("/merge") {
            // Merging needs a second contact: it is checked in its own test.
            let status = api
                .http
                .post(url)
                .bearer_auth(&token)
                .json(&json!({ "with": target }))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path}: a contact with itself"
            );
            continue;
        }
        let mut request = api.http.request(method.clone(), url).bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let status = request.send().await.unwrap().status();
        assert!(status.is_success(), "{method} {path} answered {status}");
    }
    api.app.stop().await;
}

async fn contacts_are_read_merged_exported_and_erased_by_whom_may(db: TestDatabase) {
    let api = Api::start(&db).await;
    let id = api.customer_writes("hello").await;
    let first = api.contact_of(id).await;
    // The same person writes from a second Telegram account.
    let sender = Sender {
        external_id: "user-8".into(),
        display_name: None,
        language: None,
    };
    let account = ChannelAccount::default_of(ChannelKind::Telegram);
    api.channel.customer_sends(
        Inbound::new(account, "update-2", sender, "chat-8", "it's me again").unwrap(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let second = loop {
        let latest = api.app.latest_conversation().await;
        let c = api.app.store.conversation(latest).await.unwrap().unwrap();
        if c.contact_id.0 != first {
            break c.contact_id.0;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second message never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, one) = api.get(&format!("/api/v1/contacts/{first}")).await;
    assert_eq!(one["identities"][0]["external_id"], "user-7");
    let merged: Value = api
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/contacts/{second}/merge"),
        )
        .json(&json!({ "with": first }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(merged["kept"], first, "the older contact remains");
    let (_, joined) = api.get(&format!("/api/v1/contacts/{first}")).await;
    assert_eq!(joined["identities"].as_array().unwrap().len(), 2);
    let (status, _) = api.get(&format!("/api/v1/contacts/{second}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An agent may not export or erase; a supervisor may.
    let (status, _) = api.get(&format!("/api/v1/contacts/{first}/export")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let boss = api
        .app
        .agent("boss@desk.example", Role::Supervisor, "boss passphrase")
        .await;
    let token = api.app.api_token(boss.id, &["read", "write"]).await;
    let export: Value = api
        .http
        .get(api.app.url(&format!("/api/v1/contacts/{first}/export")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(export.to_string().contains("it's me again"));
    let erased = api
        .http
        .delete(api.app.url(&format!("/api/v1/contacts/{first}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::OK);
    let log = api.app.store.audit_log(20).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"merge_contacts"), "{actions:?}");
    let (_, agents) = api.get("/api/v1/agents").await;
    assert_eq!(agents["items"].as_array().unwrap().len(), 2);
    let (status, report) = api.get("/api/v1/reports/summary?days=7").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["overall"]["conversations"], 2);
    api.app.stop().await;
}
