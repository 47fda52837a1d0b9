//! The agent's tools over HTTP: labels, priority, snooze, transfer, canned responses,
//! @mentions, attachments, the contact panel and merging, the Chinese interface, the
//! admin pages, reports, API tokens from the page, and a lockout every instance keeps.

use frontdesk_core::{Channel, ChannelAccount, ChannelKind, Inbound, Role, Sender};
use frontdesk_e2e::{TestApp, browser, csrf_of, get, log_in, post};
use frontdesk_store::testing::TestDatabase;
use frontdesk_testkit::MemoryChannel;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;

frontdesk_e2e::on_every_backend!(
    an_agent_labels_answers_with_a_canned_reply_mentions_and_attaches,
    the_interface_speaks_chinese_when_the_agent_chooses_it,
    admin_pages_and_reports_open_for_their_roles_only,
    an_agent_makes_and_revokes_an_api_token_from_the_page,
    a_lockout_holds_on_every_instance,
    many_login_attempts_from_one_address_are_slowed_down,
);

/// A customer writes on the memory channel; returns the conversation id once listed.
async fn customer_writes(app: &TestApp, channel: &MemoryChannel, text: &str) -> i64 {
    let sender = Sender {
        external_id: "user-9".into(),
        display_name: Some("Wang Fang".into()),
        language: None,
    };
    let account = ChannelAccount::default_of(ChannelKind::Telegram);
    channel.customer_sends(Inbound::new(account, "m-1", sender, "chat-9", text).unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = app
            .store
            .list_conversations(&frontdesk_store::ConversationQuery::default())
            .await
            .unwrap();
        if let Some(c) = page.items.first() {
            return c.id.0;
        }
        assert!(tokio::time::Instant::now() < deadline, "no conversation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn an_agent_labels_answers_with_a_canned_reply_mentions_and_attaches(db: TestDatabase) {
    let channel = MemoryChannel::new(ChannelAccount::default_of(ChannelKind::Telegram));
    let app = TestApp::start(db.url(), &[Arc::new(channel.clone()) as Arc<dyn Channel>]).await;
    app.agent("root@desk.example", Role::Admin, "root's passphrase")
        .await;
    app.agent("amy@desk.example", Role::Agent, "amy's passphrase")
        .await;
    app.agent("bob@desk.example", Role::Agent, "bob's passphrase")
        .await;
    let id = customer_writes(&app, &channel, "我的提现还没到账").await;
    // The admin adds a canned response.
    let admin = browser();
    log_in(&app, &admin, "root@desk.example", "root's passphrase").await;
    let (_, page) = get(&admin, &app, "/admin/canned").await;
    let (status, _) = post(
        &admin,
        &app,
        "/admin/canned",
        &[
            ("csrf", &csrf_of(&page)),
            ("shortcut", "delay"),
            ("title", "Withdrawal delay"),
            ("text", "{name}，您好：提现通常在 30 分钟内到账。"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // A canned text that asks for a recovery phrase is refused.
    let (status, _) = post(
        &admin,
        &app,
        "/admin/canned",
        &[
            ("csrf", &csrf_of(&page)),
            ("shortcut", "bad"),
            ("title", "Bad"),
            (
                "text",
                "Please send us your 12-word recovery phrase to verify.",
            ),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let amy = browser();
    log_in(&app, &amy, "amy@desk.example", "amy's passphrase").await;
    let path = format!("/conversations/{id}");
    let (_, page) = get(&amy, &app, &path).await;
    assert!(
        page.contains("data-shortcut=\"delay\""),
        "offered in the reply box"
    );
    assert!(
        page.contains("user-9"),
        "the contact panel shows the identity"
    );
    let csrf = csrf_of(&page);
    let actions = format!("{path}/actions");
    let act = |form: Vec<(&'static str, String)>| {
        let (amy, url, csrf) = (amy.clone(), app.url(&actions), csrf.clone());
        async move {
            let mut form = form;
            form.push(("csrf", csrf));
            amy.post(url).form(&form).send().await.unwrap().status()
        }
    };
    assert_eq!(
        act(vec![
            ("action", "labels".into()),
            ("labels", "vip, 提现".into())
        ])
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        act(vec![
            ("action", "priority".into()),
            ("priority", "high".into())
        ])
        .await,
        StatusCode::SEE_OTHER
    );
    let (_, listed) = get(&amy, &app, "/?view=all&status=bot&label=vip").await;
    let (_, listed_open) = get(&amy, &app, "/?view=all&label=vip").await;
    assert!(
        listed.contains(&path) || listed_open.contains(&path),
        "found by its label"
    );
    let (_, none) = get(&amy, &app, "/?view=all&status=open&label=other").await;
    assert!(!none.contains(&format!("{path}\"")));
    // A reply that is just /delay goes out as the canned text, with the name.
    let (status, _) = post(
        &amy,
        &app,
        &format!("{path}/reply"),
        &[
            ("csrf", &csrf),
            ("text", "/delay"),
            ("key", &frontdesk_e2e::reply_key_of(&page)),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    channel.wait_for_attempts(1, Duration::from_secs(10)).await;
    assert_eq!(
        channel.received(),
        ["Wang Fang，您好：提现通常在 30 分钟内到账。"]
    );
    // A private note naming @bob shows under Bob's mentions until he opens it.
    let (_, page) = get(&amy, &app, &path).await;
    let (status, _) = post(
        &amy,
        &app,
        &format!("{path}/reply"),
        &[
            ("csrf", &csrf),
            ("text", "@bob could you check the chain?"),
            ("key", &frontdesk_e2e::reply_key_of(&page)),
            ("private", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let bob = browser();
    log_in(&app, &bob, "bob@desk.example", "bob's passphrase").await;
    let (_, mentions) = get(&bob, &app, "/?view=mentions").await;
    assert!(mentions.contains(&path), "Bob sees the mention");
    get(&bob, &app, &path).await;
    let (_, mentions) = get(&bob, &app, "/?view=mentions").await;
    assert!(!mentions.contains(&format!("{path}\"")), "seen once opened");
    // An attachment: kept, linked on the message, downloaded byte for byte and never
    // shown inline.
    let (_, page) = get(&amy, &app, &path).await;
    let bytes: Vec<u8> = b"<html><script>alert(1)</script></html>".to_vec();
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("key", frontdesk_e2e::reply_key_of(&page))
        .text("text", "the receipt")
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.clone())
                .file_name("../receipt.html")
                .mime_str("text/html")
                .unwrap(),
        );
    let sent = amy
        .post(app.url(&format!("{path}/reply")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    let (_, page) = get(&amy, &app, &path).await;
    let link = page
        .split("href=\"/files/")
        .nth(1)
        .expect("a link to the file")
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(page.contains(">receipt.html<"), "the name without its path");
    let file = amy
        .get(app.url(&format!("/files/{link}")))
        .send()
        .await
        .unwrap();
    assert_eq!(file.headers()["content-type"], "application/octet-stream");
    assert!(
        file.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(file.bytes().await.unwrap().to_vec(), bytes);
    assert_eq!(
        browser()
            .get(app.url(&format!("/files/{link}")))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER,
        "not without a session"
    );
    // A 3 MB file goes (above axum's usual 2 MB); one over 10 MB is refused with 413.
    let upload = |size: usize| {
        let (amy, app, path, csrf) = (amy.clone(), &app, path.clone(), csrf.clone());
        async move {
            let (_, page) = get(&amy, app, &path).await;
            let url = app.url(&format!("{path}/reply"));
            let form = reqwest::multipart::Form::new()
                .text("csrf", csrf)
                .text("key", frontdesk_e2e::reply_key_of(&page))
                .text("text", "")
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(vec![7u8; size]).file_name("scan.bin"),
                );
            amy.post(url).multipart(form).send().await.unwrap().status()
        }
    };
    assert_eq!(upload(3 * 1024 * 1024).await, StatusCode::SEE_OTHER);
    assert_eq!(
        upload(frontdesk_web::pages::MAX_FILE + 1024).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Transfer to Bob with a reason; snooze; then merge the contact into another.
    let bob_id = app
        .store
        .agent_by_email("bob@desk.example")
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    assert_eq!(
        act(vec![
            ("action", "transfer".into()),
            ("to", format!("agent:{bob_id}")),
            ("reason", "knows the chain".into()),
        ])
        .await,
        StatusCode::SEE_OTHER
    );
    let c = app
        .store
        .conversation(frontdesk_core::ConversationId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.assignee, Some(bob_id));
    assert_eq!(c.labels, ["vip", "提现"]);
    assert_eq!(c.priority, frontdesk_core::Priority::High);
    assert_eq!(
        act(vec![("action", "snooze".into()), ("hours", "4".into())]).await,
        StatusCode::SEE_OTHER
    );
    let c = app
        .store
        .conversation(frontdesk_core::ConversationId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, frontdesk_core::Status::Snoozed);
    // The same customer wrote from the website chat too: merge the two contacts from
    // the contact panel; the older keeps its number and both identities.
    let other = app
        .store
        .ingest(
            &Inbound::new(
                ChannelAccount::default_of(ChannelKind::Webchat),
                "v-1",
                Sender {
                    external_id: "visitor-1".into(),
                    display_name: None,
                    language: None,
                },
                "visitor-1",
                "还是我",
            )
            .unwrap(),
            None,
        )
        .await
        .unwrap();
    let frontdesk_core::IngestOutcome::Stored {
        conversation_id: other_conversation,
        ..
    } = other
    else {
        panic!("stored")
    };
    let other_contact = app
        .store
        .conversation(other_conversation)
        .await
        .unwrap()
        .unwrap()
        .contact_id;
    let (status, _) = post(
        &amy,
        &app,
        &format!("/contacts/{}/merge", c.contact_id),
        &[
            ("csrf", &csrf),
            ("other", &other_contact.to_string()),
            ("back", &id.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let merged = app.store.contact(c.contact_id).await.unwrap().unwrap();
    assert_eq!(merged.identities.len(), 2, "{merged:?}");
    let (status, _) = post(
        &amy,
        &app,
        &format!("/contacts/{}/merge", c.contact_id),
        &[("csrf", &csrf), ("other", "x"), ("back", &id.to_string())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn the_interface_speaks_chinese_when_the_agent_chooses_it(db: TestDatabase) {
    let app = TestApp::start(db.url(), &[]).await;
    app.agent("amy@desk.example", Role::Agent, "amy's passphrase")
        .await;
    let amy = browser();
    log_in(&app, &amy, "amy@desk.example", "amy's passphrase").await;
    let (_, page) = get(&amy, &app, "/").await;
    assert!(page.contains("Unassigned") && page.contains("lang=\"en\""));
    let (status, _) = post(
        &amy,
        &app,
        "/settings/locale",
        &[("csrf", &csrf_of(&page)), ("locale", "zh")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = get(&amy, &app, "/").await;
    assert!(page.contains("未分配") && page.contains("lang=\"zh-CN\""));
    assert!(!page.contains(">Unassigned<"));
    let (status, _) = post(
        &amy,
        &app,
        "/settings/locale",
        &[("csrf", &csrf_of(&page)), ("locale", "klingon")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

async fn admin_pages_and_reports_open_for_their_roles_only(db: TestDatabase) {
    let channel = MemoryChannel::new(ChannelAccount::default_of(ChannelKind::Telegram));
    let app =
        TestApp::start_with_bot(db.url(), &[Arc::new(channel.clone()) as Arc<dyn Channel>]).await;
    app.agent("root@desk.example", Role::Admin, "root's passphrase")
        .await;
    app.agent("sue@desk.example", Role::Supervisor, "sue's passphrase")
        .await;
    app.agent("amy@desk.example", Role::Agent, "amy's passphrase")
        .await;
    customer_writes(&app, &channel, "转账一直pending").await;
    let (admin, sue, amy) = (browser(), browser(), browser());
    log_in(&app, &admin, "root@desk.example", "root's passphrase").await;
    log_in(&app, &sue, "sue@desk.example", "sue's passphrase").await;
    log_in(&app, &amy, "amy@desk.example", "amy's passphrase").await;
    for path in [
        "/admin/agents",
        "/admin/teams",
        "/admin/canned",
        "/admin/channels",
        "/admin/knowledge",
        "/admin/audit",
    ] {
        assert_eq!(
            get(&amy, &app, path).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            get(&sue, &app, path).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(get(&admin, &app, path).await.0, StatusCode::OK, "{path}");
    }
    let (_, teams) = get(&admin, &app, "/admin/teams").await;
    assert!(teams.contains("general"));
    // Hours set in the page are checked, kept, and shown.
    let (status, _) = post(
        &admin,
        &app,
        "/admin/teams/general/hours",
        &[
            ("csrf", &csrf_of(&teams)),
            ("timezone", "Asia/Shanghai"),
            ("mon", "08:00-12:00, 13:00-17:00"),
            ("tue", "08:00-17:00"),
            ("holidays", "2026-10-01, 2026-10-02"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, teams) = get(&admin, &app, "/admin/teams").await;
    assert!(
        teams.contains("Mon 08:00-12:00,13:00-17:00 Tue 08:00-17:00 Wed closed"),
        "{teams}"
    );
    assert!(teams.contains("2 holiday(s)"));
    let (status, body) = post(
        &admin,
        &app,
        "/admin/teams/general/hours",
        &[("csrf", &csrf_of(&teams)), ("mon", "18:00-09:00")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("18:00-09:00"), "says which value is wrong");
    assert_eq!(
        post(
            &sue,
            &app,
            "/admin/teams/general/hours",
            &[("csrf", &csrf_of(&teams)), ("mon", "08:00-09:00")],
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (_, channels) = get(&admin, &app, "/admin/channels").await;
    assert!(channels.contains("telegram:default"), "{channels}");
    let (_, tried) = get(
        &admin,
        &app,
        "/admin/knowledge?text=%E8%BD%AC%E8%B4%A6%E4%B8%80%E7%9B%B4pending",
    )
    .await;
    assert!(
        tried.contains("transfer_pending"),
        "the intent of the message"
    );
    // Reports: supervisors and admins; charts drawn on the server.
    assert_eq!(get(&amy, &app, "/reports").await.0, StatusCode::FORBIDDEN);
    let (status, report) = get(&sue, &app, "/reports").await;
    assert_eq!(status, StatusCode::OK);
    assert!(report.matches("<svg").count() >= 6, "charts");
    assert!(report.contains("telegram"), "volume by channel");
    assert!(report.contains("transfer_pending"), "volume by intent");
    assert_eq!(
        get(&sue, &app, "/reports?from=2026-13-01").await.0,
        StatusCode::BAD_REQUEST
    );
    // A new agent from the admin page can log in.
    let (_, page) = get(&admin, &app, "/admin/agents").await;
    let (status, _) = post(
        &admin,
        &app,
        "/admin/agents",
        &[
            ("csrf", &csrf_of(&page)),
            ("email", "Kai@Desk.example"),
            ("name", "Kai"),
            ("role", "agent"),
            ("password", "kai's long passphrase"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let kai = browser();
    let r = log_in(&app, &kai, "kai@desk.example", "kai's long passphrase").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Teams, tier and capacity from the same page.
    let kai_id = app
        .store
        .agent_by_email("kai@desk.example")
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    let (status, _) = post(
        &admin,
        &app,
        &format!("/admin/agents/{kai_id}"),
        &[
            ("csrf", &csrf_of(&page)),
            ("teams", "payments, general"),
            ("tier", "2"),
            ("capacity", "8"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, agents) = get(&admin, &app, "/admin/agents").await;
    assert!(agents.contains("general, payments") || agents.contains("payments, general"));
    // A canned response is deleted from its page; an agent cannot.
    let (_, page) = get(&admin, &app, "/admin/canned").await;
    post(
        &admin,
        &app,
        "/admin/canned",
        &[
            ("csrf", &csrf_of(&page)),
            ("shortcut", "hi"),
            ("title", "Hi"),
            ("text", "您好"),
        ],
    )
    .await;
    let canned = app.store.canned_responses().await.unwrap();
    let (_, amy_page) = get(&amy, &app, "/").await;
    let (status, _) = post(
        &amy,
        &app,
        &format!("/admin/canned/{}/delete", canned[0].id),
        &[("csrf", &csrf_of(&amy_page))],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(
        &admin,
        &app,
        &format!("/admin/canned/{}/delete", canned[0].id),
        &[("csrf", &csrf_of(&page))],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(app.store.canned_responses().await.unwrap().is_empty());
    app.stop().await;
}

async fn an_agent_makes_and_revokes_an_api_token_from_the_page(db: TestDatabase) {
    let app = TestApp::start(db.url(), &[]).await;
    app.agent("amy@desk.example", Role::Agent, "amy's passphrase")
        .await;
    let amy = browser();
    log_in(&app, &amy, "amy@desk.example", "amy's passphrase").await;
    let (_, page) = get(&amy, &app, "/settings/tokens").await;
    let (status, page) = post(
        &amy,
        &app,
        "/settings/tokens",
        &[("csrf", &csrf_of(&page)), ("name", "crm")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token = page
        .split("id=\"new-token\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(token.starts_with("fdt_"));
    let api = |token: String| {
        let url = app.url("/api/v1/conversations");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(api(token.clone()).await, StatusCode::OK);
    let (_, page) = get(&amy, &app, "/settings/tokens").await;
    assert!(page.contains("crm") && !page.contains(&token), "shown once");
    let id = page
        .split("/settings/tokens/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (status, _) = post(
        &amy,
        &app,
        &format!("/settings/tokens/{id}/revoke"),
        &[("csrf", &csrf_of(&page))],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(api(token).await, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn a_lockout_holds_on_every_instance(db: TestDatabase) {
    let one = TestApp::start(db.url(), &[]).await;
    let two = TestApp::start(db.url(), &[]).await;
    one.agent("amy@desk.example", Role::Agent, "amy's passphrase")
        .await;
    let http = browser();
    for _ in 0..frontdesk_web::auth::MAX_FAILURES {
        let wrong = log_in(&one, &http, "amy@desk.example", "not it at all").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let elsewhere = browser();
    let locked = log_in(&two, &elsewhere, "amy@desk.example", "amy's passphrase").await;
    assert_eq!(locked.status(), StatusCode::UNAUTHORIZED);
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("Too many wrong passwords")
    );
    one.stop().await;
    two.stop().await;
}

async fn many_login_attempts_from_one_address_are_slowed_down(db: TestDatabase) {
    let app = TestApp::start(db.url(), &[]).await;
    let http = browser();
    let mut statuses = Vec::new();
    // Different addresses each time: no single address locks, the client does.
    for i in 0..25 {
        let r = log_in(
            &app,
            &http,
            &format!("guess{i}@desk.example"),
            "password1234",
        )
        .await;
        statuses.push(r.status());
    }
    assert!(
        statuses[..20]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED)
    );
    assert_eq!(statuses[24], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    app.stop().await;
}
