//! The agent inbox over HTTP: the first admin, logging in and out, sessions that work
//! on every instance, CSRF, roles, lockout, and customer text that stays text.

use frontdesk_core::{Channel, ChannelAccount, ChannelKind, Inbound, Role, Sender};
use frontdesk_e2e::{TestApp, browser, csrf_of, log_in};
use frontdesk_store::testing::TestDatabase;
use frontdesk_testkit::MemoryChannel;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;

frontdesk_e2e::on_every_backend!(
    the_first_admin_is_created_once_then_logs_in,
    an_agent_answers_from_the_inbox_and_the_customer_gets_it,
    forms_without_the_sessions_token_are_refused,
    an_agent_cannot_open_admin_pages,
    wrong_passwords_lock_the_address_for_a_while,
    a_signed_in_agent_hears_of_new_messages_and_shutdown_ends_the_stream,
);

async fn add_agent(app: &TestApp, email: &str, role: Role, password: &str) {
    app.agent(email, role, password).await;
}

async fn the_first_admin_is_created_once_then_logs_in(db: TestDatabase) {
    let app = TestApp::start(db.url(), &[]).await;
    let http = browser();
    // Nobody yet: the inbox sends to the login page, and setup is open.
    let inbox = http.get(app.url("/")).send().await.unwrap();
    assert_eq!(inbox.status(), StatusCode::SEE_OTHER);
    assert_eq!(inbox.headers()["location"], "/login");
    let page = http
        .get(app.url("/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let created = http
        .post(app.url("/setup"))
        .form(&[
            ("name", "Li Wei"),
            ("email", "li@desk.example"),
            ("password", "a long passphrase"),
            ("csrf", &csrf_of(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    // Once there is an agent, the setup page is gone.
    assert_eq!(
        http.get(app.url("/setup")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let logged_in = log_in(&app, &http, "li@desk.example", "a long passphrase").await;
    assert_eq!(logged_in.status(), StatusCode::SEE_OTHER);
    let cookie = logged_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("fd_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let inbox = http.get(app.url("/?view=all")).send().await.unwrap();
    assert_eq!(inbox.status(), StatusCode::OK);
    let page = inbox.text().await.unwrap();
    assert!(page.contains("All conversations") && page.contains("Li Wei"));
    // Logging out ends the session everywhere.
    let out = http
        .post(app.url("/logout"))
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        http.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    let log = app.store.audit_log(10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"login") && actions.contains(&"logout") && actions.contains(&"setup"),
        "{actions:?}"
    );
    app.stop().await;
}

async fn an_agent_answers_from_the_inbox_and_the_customer_gets_it(db: TestDatabase) {
    let channel = MemoryChannel::new(ChannelAccount::default_of(ChannelKind::Telegram));
    let app = TestApp::start(db.url(), &[Arc::new(channel.clone()) as Arc<dyn Channel>]).await;
    add_agent(&app, "amy@desk.example", Role::Agent, "amy's passphrase").await;
    let sender = Sender {
        external_id: "user-1".into(),
        display_name: Some("<b>Mallory</b>".into()),
        language: None,
    };
    let account = ChannelAccount::default_of(ChannelKind::Telegram);
    let text = "<img src=x onerror=alert(1)> 转账没到账 0x5c69bee701ef814a2b6a3edd4b1652cb9cc5aa6f";
    channel.customer_sends(Inbound::new(account, "u-1", sender, "chat-1", text).unwrap());
    let http = browser();
    log_in(&app, &http, "amy@desk.example", "amy's passphrase").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let list = loop {
        let page = http
            .get(app.url("/?view=unassigned"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("/conversations/") {
            break page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no conversation listed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        list.contains("&#60;b&#62;Mallory&#60;/b&#62;") || list.contains("&lt;b&gt;Mallory"),
        "the name is escaped"
    );
    assert!(!list.contains("<b>Mallory</b>"));
    let id = list
        .split("/conversations/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let page = http
        .get(app.url(&format!("/conversations/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<img src=x"), "customer markup is text");
    assert!(page.contains("onerror=alert(1)"));
    assert!(
        page.contains("class=\"chip\""),
        "the address is a chip to copy"
    );
    let csrf = csrf_of(&page);
    let key = frontdesk_e2e::reply_key_of(&page);
    for _ in 0..2 {
        // A double click sends once.
        let sent = http
            .post(app.url(&format!("/conversations/{id}/reply")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("text", "您好，我们查一下"),
                ("key", key.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    }
    let took = http
        .post(app.url(&format!("/conversations/{id}/actions")))
        .form(&[("csrf", csrf.as_str()), ("action", "take")])
        .send()
        .await
        .unwrap();
    assert_eq!(took.status(), StatusCode::SEE_OTHER);
    channel.wait_for_attempts(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(channel.received(), ["您好，我们查一下"]);
    let mine = http
        .get(app.url("/?view=mine"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(mine.contains(&format!("/conversations/{id}")));
    let page = |query: &'static str| {
        let http = http.clone();
        let url = app.url(query);
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    // Search: a word of the message finds it; other words or another priority do not.
    let found = page("/?view=all&q=%E8%BD%AC%E8%B4%A6").await;
    assert!(
        found.contains(&format!("/conversations/{id}")),
        "found by a word"
    );
    let missed = page("/?view=all&q=refund").await;
    assert!(!missed.contains(&format!("/conversations/{id}\"")));
    let urgent = page("/?view=all&priority=urgent").await;
    assert!(!urgent.contains(&format!("/conversations/{id}\"")));
    app.stop().await;
}

async fn forms_without_the_sessions_token_are_refused(db: TestDatabase) {
    let app = TestApp::start(db.url(), &[]).await;
    add_agent(&app, "amy@desk.example", Role::Agent, "amy's passphrase").await;
    let http = browser();
    log_in(&app, &http, "amy@desk.example", "amy's passphrase").await;
    // A forged form from another site has the cookie but not the token.
    let forged = http
        .post(app.url("/logout"))
        .form(&[("csrf", "guessed")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        http.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::OK,
        "still logged in"
    );
    // The login form itself needs its double-submit token.
    let stranger = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let no_token = stranger
        .post(app.url("/login"))
        .form(&[
            ("email", "amy@desk.example"),
            ("password", "amy's passphrase"),
            ("csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn an_agent_cannot_open_admin_pages(db: TestDatabase) {
    let app = TestApp::start(db.url(), &[]).await;
    add_agent(&app, "amy@desk.example", Role::Agent, "amy's passphrase").await;
    add_agent(&app, "root@desk.example", Role::Admin, "root's passphrase").await;
    let agent = browser();
    log_in(&app, &agent, "amy@desk.example", "amy's passphrase").await;
    assert_eq!(
        agent
            .get(app.url("/admin/agents"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let admin = browser();
    log_in(&app, &admin, "root@desk.example", "root's passphrase").await;
    let page = admin.get(app.url("/admin/agents")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("amy@desk.example"));
    // The audit log: admins only; it shows who logged in.
    assert_eq!(
        agent
            .get(app.url("/admin/audit"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let log = admin
        .get(app.url("/admin/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(log.contains("root@desk.example") && log.contains("login"));
    app.stop().await;
}

async fn wrong_passwords_lock_the_address_for_a_while(db: TestDatabase) {
    let app = TestApp::start(db.url(), &[]).await;
    add_agent(&app, "amy@desk.example", Role::Agent, "amy's passphrase").await;
    let http = browser();
    for _ in 0..frontdesk_web::auth::MAX_FAILURES {
        let wrong = log_in(&app, &http, "amy@desk.example", "not it at all").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(
            wrong
                .text()
                .await
                .unwrap()
                .contains("Wrong email or password")
        );
    }
    // Locked now, even with the right password.
    let locked = log_in(&app, &http, "amy@desk.example", "amy's passphrase").await;
    assert_eq!(locked.status(), StatusCode::UNAUTHORIZED);
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("Too many wrong passwords")
    );
    // An unknown address gets the same words as a wrong password.
    let unknown = log_in(&app, &http, "nobody@desk.example", "whatever it is").await;
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("Wrong email or password")
    );
    app.stop().await;
}

async fn a_signed_in_agent_hears_of_new_messages_and_shutdown_ends_the_stream(db: TestDatabase) {
    let channel = MemoryChannel::new(ChannelAccount::default_of(ChannelKind::Telegram));
    let app = TestApp::start(db.url(), &[Arc::new(channel.clone()) as Arc<dyn Channel>]).await;
    add_agent(&app, "amy@desk.example", Role::Agent, "amy's passphrase").await;
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let refused = anonymous.get(app.url("/events")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SEE_OTHER, "only for agents");
    let http = browser();
    log_in(&app, &http, "amy@desk.example", "amy's passphrase").await;
    let mut stream = http.get(app.url("/events")).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let sender = Sender {
        external_id: "user-2".into(),
        display_name: None,
        language: None,
    };
    let account = ChannelAccount::default_of(ChannelKind::Telegram);
    channel.customer_sends(Inbound::new(account, "u-2", sender, "chat-2", "在吗").unwrap());
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("message_created") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("在吗"), "ids only, never text");
    // Stopping the server ends the open stream instead of waiting on it.
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the server stops with a stream open");
}
