//! The email channel end to end against real Dovecot and Postfix on 127.0.0.1, started
//! by `scripts/test` (`ensure_mail` in `scripts/services.sh`). Each test makes its own
//! mailboxes (any address at example.test exists, password "password").

use frontdesk::config::Config;
use frontdesk_core::{Direction, Message};
use frontdesk_e2e::TestApp;
use frontdesk_e2e::mail::{Servers, customer_sends, header, mailbox, maildir, servers};
use frontdesk_store::testing::TestDatabase;
use std::time::{Duration, Instant};

/// A fresh pair of addresses for one test.
fn addresses() -> (String, String) {
    let n: u64 = rand::random();
    (
        format!("support-{n:x}@example.test"),
        format!("customer-{n:x}@example.test"),
    )
}

async fn start_app(
    db: &TestDatabase,
    servers: &Servers,
    support: &str,
    bot: bool,
    adjust: impl FnOnce(&mut Config) + Send + 'static,
) -> TestApp {
    let (imap, submission, ca) = (
        servers.imap.clone(),
        servers.submission.clone(),
        servers.ca.clone(),
    );
    let support = support.to_owned();
    TestApp::start_with(db.url(), &[], move |c: &mut Config| {
        let e = &mut c.channels.email;
        e.enabled = true;
        // IMAP with STARTTLS and submission with STARTTLS + AUTH, trusting the test CA.
        e.imap_url = Some(imap);
        e.smtp_url = Some(submission);
        e.ca_file = Some(ca);
        e.username = Some(support.clone());
        e.password = Some("password".into());
        e.address = Some(support);
        frontdesk_e2e::answering(c, bot);
        adjust(c);
    })
    .await
}

/// The app with the mailbox open (IDLE waiting), so mail sent now is the test's.
async fn start(db: &TestDatabase, servers: &Servers, support: &str, bot: bool) -> TestApp {
    start_with(db, servers, support, bot, |_| {}).await
}

/// As [`start`], with `adjust` applied to the configuration.
async fn start_with(
    db: &TestDatabase,
    servers: &Servers,
    support: &str,
    bot: bool,
    adjust: impl FnOnce(&mut Config) + Send + 'static,
) -> TestApp {
    let app = start_app(db, servers, support, bot, adjust).await;
    until("the mailbox to open", Duration::from_secs(20), || async {
        let ready: serde_json::Value = reqwest::get(app.url("/readyz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ready["channels"]["email:default"]["ok"] == true
    })
    .await;
    app
}

use frontdesk_e2e::until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_mail_arrives_by_idle_and_the_answer_lands_threaded() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start(&db, &servers, &support, true).await;
    let sent = Instant::now();
    customer_sends(
        &servers,
        &customer,
        &support,
        &format!(
            "From: Wang Fang <{customer}>\r\nTo: {support}\r\nSubject: =?UTF-8?B?6L2s6LSm?=\r\n\
             Message-ID: <first-{customer}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             转账一直pending怎么办\r\n"
        ),
    )
    .await;
    until(
        "the mail in a conversation",
        Duration::from_secs(10),
        || async { !app.inbound_messages().await.is_empty() },
    )
    .await;
    let took = sent.elapsed();
    eprintln!("intake took {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "within 2 s through IDLE: {took:?}"
    );
    let first = app.inbound_messages().await.remove(0);
    assert_eq!(first.text, "转账一直pending怎么办");
    // The bot's answer, threaded, in the customer's mailbox.
    until(
        "the answer in the customer's mailbox",
        Duration::from_secs(20),
        || async { !mailbox(&servers, &customer).is_empty() },
    )
    .await;
    let answer = mailbox(&servers, &customer).remove(0);
    assert_eq!(
        header(&answer, "In-Reply-To"),
        Some(format!("<first-{customer}>").as_str())
    );
    assert!(
        header(&answer, "References").is_some_and(|r| r.contains(&format!("<first-{customer}>")))
    );
    assert!(
        header(&answer, "Subject")
            .is_some_and(|s| s.starts_with("Re:") || s.starts_with("=?utf-8?")),
        "{answer}"
    );
    assert!(header(&answer, "From").is_some_and(|f| f.contains(&support)));
    // The bot's mail says it is automatic, so other robots do not answer it.
    assert_eq!(header(&answer, "Auto-Submitted"), Some("auto-replied"));
    let ours = header(&answer, "Message-ID").unwrap().to_owned();
    assert!(ours.ends_with("@example.test>"), "{ours}");
    // The customer answers from a mailer that keeps only References.
    customer_sends(
        &servers,
        &customer,
        &support,
        &format!(
            "From: <{customer}>\r\nTo: {support}\r\nSubject: Re: x\r\nMessage-ID: <second-{customer}>\r\n\
             References: {ours}\r\n\r\nStill nothing.\r\n\r\nOn Sunday Support wrote:\r\n> old text\r\n"
        ),
    )
    .await;
    until("the second mail", Duration::from_secs(10), || async {
        app.inbound_messages().await.len() == 2
    })
    .await;
    let both = app.inbound_messages().await;
    assert_eq!(
        both[0].conversation_id, both[1].conversation_id,
        "threaded into one conversation"
    );
    assert_eq!(both[1].text, "Still nothing.");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_responder_gets_no_answer_but_agents_see_it() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start(&db, &servers, &support, true).await;
    customer_sends(
        &servers,
        &customer,
        &support,
        &format!(
            "From: <{customer}>\r\nTo: {support}\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\
             Message-ID: <ooo-{customer}>\r\n\r\nI am away until Monday. 转账一直pending怎么办\r\n"
        ),
    )
    .await;
    until("the auto-reply stored", Duration::from_secs(10), || async {
        !app.inbound_messages().await.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        mailbox(&servers, &customer).is_empty(),
        "no answer to an auto-reply"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_attachment_in_big5_opens_from_the_inbox() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start(&db, &servers, &support, false).await;
    // A Big5 body ("提現沒到帳", base64) and a PDF with an RFC 2231 file name.
    customer_sends(
        &servers,
        &customer,
        &support,
        &format!(
            "From: <{customer}>\r\nTo: {support}\r\nSubject: receipt\r\nMessage-ID: <att-{customer}>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
             --B\r\nContent-Type: text/plain; charset=big5\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             tKOye6hTqOyxYg==\r\n\
             --B\r\nContent-Type: application/pdf\r\n\
             Content-Disposition: attachment; filename*=UTF-8''%E6%94%B6%E6%8D%AE.pdf\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQgcmVjZWlwdA==\r\n--B--\r\n"
        ),
    )
    .await;
    until("the mail", Duration::from_secs(10), || async {
        !app.inbound_messages().await.is_empty()
    })
    .await;
    let mail = app.inbound_messages().await.remove(0);
    assert_eq!(mail.text, "提現沒到帳");
    assert_eq!(mail.attachments[0].name, "收据.pdf");
    let http =
        frontdesk_e2e::signed_in(&app, "amy@desk.example", frontdesk_core::Role::Agent).await;
    let link = format!(
        "/conversations/{}/messages/{}/files/0",
        mail.conversation_id, mail.id
    );
    let file = http.get(app.url(&link)).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().await.unwrap().as_ref(), b"%PDF-1.4 receipt");
    app.stop().await;
}

/// All customer messages, once there are `n`.
async fn stored(app: &TestApp, n: usize) -> Vec<Message> {
    until(
        &format!("{n} mails stored"),
        Duration::from_secs(30),
        || async { app.inbound_messages().await.len() >= n },
    )
    .await;
    app.inbound_messages().await
}

fn plain_mail(from: &str, to: &str, id: &str, subject: &str, body: &str) -> String {
    format!(
        "From: <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_with_only_the_ticket_token_joins_its_conversation() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start(&db, &servers, &support, false).await;
    let first = format!("t1-{customer}");
    customer_sends(
        &servers,
        &customer,
        &support,
        &plain_mail(&customer, &support, &first, "Withdrawal", "Where is it?"),
    )
    .await;
    let conversation = stored(&app, 1).await[0].conversation_id;
    // A new mail (no In-Reply-To, no References) whose subject names the ticket.
    let token = frontdesk_email::thread::token_for(conversation.0);
    let second = format!("t2-{customer}");
    customer_sends(
        &servers,
        &customer,
        &support,
        &plain_mail(
            &customer,
            &support,
            &second,
            &format!("About [#{token}]"),
            "Any news?",
        ),
    )
    .await;
    // And one that answers their own first mail.
    let third = format!("t3-{customer}");
    customer_sends(
        &servers,
        &customer,
        &support,
        &format!(
            "From: <{customer}>\r\nTo: {support}\r\nSubject: hello again\r\nMessage-ID: <{third}>\r\n\
             In-Reply-To: <{second}>\r\n\r\nStill waiting.\r\n"
        ),
    )
    .await;
    let all = stored(&app, 3).await;
    assert!(
        all.iter().all(|m| m.conversation_id == conversation),
        "{all:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_a_restart_and_a_uidvalidity_reset_lose_and_double_nothing() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let send = |i: usize| {
        let (support, customer) = (support.clone(), customer.clone());
        let servers = &servers;
        async move {
            let id = format!("r{i}-{customer}");
            customer_sends(
                servers,
                &customer,
                &support,
                &plain_mail(&customer, &support, &id, "order", &format!("mail {i}")),
            )
            .await;
        }
    };
    // A process dies before its first mail; the mail that came meanwhile is not taken
    // for old mail when the next one starts.
    start(&db, &servers, &support, false).await.kill().await;
    send(0).await;
    let app = start(&db, &servers, &support, false).await;
    stored(&app, 1).await;
    for i in 1..3 {
        send(i).await;
    }
    stored(&app, 3).await;
    app.stop().await;
    // Mail arrives while Frontdesk is down.
    for i in 3..6 {
        send(i).await;
    }
    let app = start(&db, &servers, &support, false).await;
    stored(&app, 6).await;
    app.stop().await;
    // The server renumbers the mailbox (a new UIDVALIDITY), as after a restore.
    let uidlist = maildir(&servers, &support).join("dovecot-uidlist");
    std::fs::remove_file(&uidlist).expect("the mailbox's UID list");
    let app = start(&db, &servers, &support, false).await;
    send(6).await;
    let all = stored(&app, 7).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut texts: Vec<String> = app.inbound_texts().await;
    texts.sort();
    assert_eq!(texts.len(), 7, "{texts:?}");
    texts.dedup();
    assert_eq!(texts.len(), 7, "a mail was stored twice");
    assert_eq!(all.len(), 7);
    app.stop().await;
}

/// A TCP relay to a server that can be switched off: when off, open connections are
/// cut and new ones accepted and closed at once (as when the server is down).
struct Switch {
    port: u16,
    up: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Switch {
    async fn to(port: u16) -> Switch {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap().port();
        let (up, on) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !*on.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut on = on.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                    {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = on.wait_for(|up| !up) => {}
                        }
                    }
                });
            }
        });
        Switch {
            port: local,
            up,
            task,
        }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_imap_cut_and_back_the_mail_that_came_meanwhile_is_taken_once() {
    let Some(servers) = servers() else { return };
    let imap: u16 = servers.imap.rsplit(':').next().unwrap().parse().unwrap();
    let switch = Switch::to(imap).await;
    switch.set(true);
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let through_switch = Servers {
        imap: format!("imap://127.0.0.1:{}", switch.port),
        ..servers
    };
    let app = start(&db, &through_switch, &support, false).await;
    let send = |i: usize| {
        let mail = plain_mail(
            &customer,
            &support,
            &format!("cut{i}-{customer}"),
            "order",
            &format!("mail {i}"),
        );
        let (servers, customer, support) = (&through_switch, customer.clone(), support.clone());
        async move { customer_sends(servers, &customer, &support, &mail).await }
    };
    send(0).await;
    stored(&app, 1).await;
    // Dovecot goes away: the IDLE connection is cut, and so is every new one.
    switch.set(false);
    until(
        "the mailbox reported down",
        Duration::from_secs(20),
        || async { app.readiness().await["channels"]["email:default"]["ok"] == false },
    )
    .await;
    for i in 1..4 {
        send(i).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.inbound_texts().await.len(), 1);
    switch.set(true);
    stored(&app, 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut texts = app.inbound_texts().await;
    texts.sort();
    assert_eq!(texts, ["mail 0", "mail 1", "mail 2", "mail 3"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_smtp_down_and_back_up_the_answer_is_delivered_once() {
    let Some(servers) = servers() else { return };
    let submission: u16 = servers
        .submission
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let switch = Switch::to(submission).await;
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let servers_down = Servers {
        submission: format!("smtp://127.0.0.1:{}", switch.port),
        ..servers
    };
    let app = start(&db, &servers_down, &support, true).await;
    customer_sends(
        &servers_down,
        &customer,
        &support,
        &plain_mail(
            &customer,
            &support,
            &format!("d-{customer}"),
            "transfer",
            "转账一直pending怎么办",
        ),
    )
    .await;
    let asked = stored(&app, 1).await.remove(0);
    // The answer waits, with the reason shown.
    until("a failed attempt", Duration::from_secs(20), || async {
        app.store
            .messages(asked.conversation_id, None, 100)
            .await
            .unwrap()
            .iter()
            .any(|m| m.direction == Direction::Out)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(mailbox(&servers_down, &customer).is_empty());
    switch.set(true);
    until(
        "the answer after SMTP is back",
        Duration::from_secs(60),
        || async { !mailbox(&servers_down, &customer).is_empty() },
    )
    .await;
    // The bot answers this question with two messages: each arrives, once.
    let answers = app
        .store
        .messages(asked.conversation_id, None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == Direction::Out)
        .count();
    until("every answer", Duration::from_secs(60), || async {
        mailbox(&servers_down, &customer).len() >= answers
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let delivered = mailbox(&servers_down, &customer);
    let mut ids: Vec<&str> = delivered
        .iter()
        .filter_map(|m| header(m, "Message-ID"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        (delivered.len(), ids.len()),
        (answers, answers),
        "each delivered once"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_25_mb_mail_and_a_malformed_mail_are_kept() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start(&db, &servers, &support, false).await;
    // 25 MB of attachment, base64 in 76-character lines as mailers write it.
    let line = "A".repeat(76);
    let lines = 25 * 1024 * 1024 / 57;
    let mut big = format!(
        "From: <{customer}>\r\nTo: {support}\r\nSubject: logs\r\nMessage-ID: <big-{customer}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nThe logs you asked for.\r\n\
         --B\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=logs.zip\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    );
    big.reserve(lines * 78 + 16);
    for _ in 0..lines {
        big.push_str(&line);
        big.push_str("\r\n");
    }
    big.push_str("--B--\r\n");
    customer_sends(&servers, &customer, &support, &big).await;
    // An unknown charset, a bogus encoded word, and a part whose base64 is broken.
    let broken = format!(
        "From: <{customer}>\r\nTo: {support}\r\nSubject: =?bogus?Q?x?=\r\nMessage-ID: <bad-{customer}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
         --B\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\nhello world\r\n\
         --B\r\nContent-Type: application/pdf; name=scan.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         @@@@ this is not base64 @@@@\r\n--B--\r\n"
    );
    customer_sends(&servers, &customer, &support, &broken).await;
    let all = stored(&app, 2).await;
    let big = all
        .iter()
        .find(|m| m.text.contains("logs you asked"))
        .expect("the big mail");
    assert_eq!(big.attachments[0].name, "logs.zip");
    assert!(big.attachments[0].size > 20 * 1024 * 1024);
    assert!(big.text.contains("over the"), "{}", big.text);
    let bad = all
        .iter()
        .find(|m| m.text.contains("hello"))
        .expect("the malformed mail");
    assert!(bad.text.contains("could not be fully read"), "{}", bad.text);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_benchmark_reads_a_mailbox_and_times_idle() {
    let Some(_servers) = servers() else { return };
    let report = frontdesk::bench::email(60, 3)
        .await
        .expect("the benchmark runs");
    assert_eq!(report.messages, 60);
    assert_eq!(report.latencies.len(), 3);
    assert!(
        report
            .latencies
            .iter()
            .all(|l| *l < Duration::from_secs(30))
    );
    let shown = report.to_string();
    assert!(
        shown.contains("imap_mails_per_second") && shown.contains("p99"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_mail_is_flagged_seen_only_when_the_team_asks() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start_with(&db, &servers, &support, false, |c| {
        c.channels.email.mark_seen = true
    })
    .await;
    customer_sends(
        &servers,
        &customer,
        &support,
        &plain_mail(&customer, &support, &format!("s-{customer}"), "hi", "seen?"),
    )
    .await;
    stored(&app, 1).await;
    let cur = maildir(&servers, &support).join("cur");
    until("the mail flagged seen", Duration::from_secs(10), || async {
        std::fs::read_dir(&cur)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().contains(":2,S"))
            })
            .unwrap_or(false)
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_customer_verifies_their_email_with_a_code_sent_by_mail() {
    use frontdesk_testkit::telegram::FakeTelegram;
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let fake = FakeTelegram::start("7000000001:AAE-test-token").await;
    let api_url = fake.api_url().to_owned();
    let app = start_with(&db, &servers, &support, true, move |c| {
        let t = &mut c.channels.telegram;
        t.enabled = true;
        t.token = Some("7000000001:AAE-test-token".into());
        t.api_url = api_url;
    })
    .await;
    let said_to_42 = || {
        fake.sent()
            .into_iter()
            .filter(|s| s.chat_id == 42)
            .map(|s| s.text)
            .collect::<Vec<_>>()
    };
    fake.customer_writes(42, "I can't log in to my account");
    until("the bot's answer", Duration::from_secs(20), || async {
        !said_to_42().is_empty()
    })
    .await;
    // An agent asks them to prove an address (the engine's verification step; no page
    // has the button yet).
    let conversation = app.latest_conversation().await;
    app.engine
        .request_verification(conversation, None, None)
        .await
        .unwrap();
    until(
        "the request for an address",
        Duration::from_secs(20),
        || async { said_to_42().iter().any(|t| t.contains("email")) },
    )
    .await;
    fake.customer_writes(42, &customer);
    until(
        "the code in the customer's mailbox",
        Duration::from_secs(20),
        || async { !mailbox(&servers, &customer).is_empty() },
    )
    .await;
    let raw = mailbox(&servers, &customer).remove(0);
    assert_eq!(header(&raw, "Auto-Submitted"), Some("auto-replied"));
    let mail = frontdesk_email::parse::parse(raw.as_bytes(), Default::default());
    let code: String = mail
        .text
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() >= 6)
        .expect("a code in the mail")
        .to_owned();
    fake.customer_writes(42, &code);
    until("the verification", Duration::from_secs(20), || async {
        said_to_42().iter().any(|t| t.contains("verified"))
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_mail_opens_sandboxed_and_keeps_no_secret() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start(&db, &servers, &support, false).await;
    let entropy: Vec<u8> = (0..16u8)
        .map(|i| i.wrapping_mul(41).wrapping_add(3))
        .collect();
    let phrase = bip39::Mnemonic::from_entropy(&entropy).unwrap().to_string();
    let raw = format!(
        "From: <{customer}>\r\nTo: {support}\r\nSubject: help\r\nMessage-ID: <o-{customer}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n\
         --A\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Did you get it?\r\n\r\nOn Sunday I wrote:\r\n> my words are {phrase}\r\n\
         --A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <p>Did you get it?</p><blockquote>my words are {phrase}</blockquote>\
         <img src=\"https://tracker.example/pixel.gif\"><script>alert(1)</script>\r\n--A--\r\n"
    );
    customer_sends(&servers, &customer, &support, &raw).await;
    let mail = stored(&app, 1).await.remove(0);
    assert_eq!(mail.text, "Did you get it?");
    let http =
        frontdesk_e2e::signed_in(&app, "amy@desk.example", frontdesk_core::Role::Agent).await;
    let (_, page) = frontdesk_e2e::get(
        &http,
        &app,
        &format!("/conversations/{}", mail.conversation_id),
    )
    .await;
    let link = format!(
        "/conversations/{}/messages/{}/original",
        mail.conversation_id, mail.id
    );
    assert!(page.contains(&link), "a link to the original");
    let original = http.get(app.url(&link)).send().await.unwrap();
    let csp = original.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = original.text().await.unwrap();
    assert!(html.contains("Did you get it?"));
    assert!(html.contains("[redacted"), "{html}");
    let words: Vec<&str> = phrase.split(' ').collect();
    assert!(!html.contains(&words[..3].join(" ")), "{html}");
    app.stop().await;
    // Nowhere in the database file either.
    let path = db.url().strip_prefix("sqlite://").unwrap().to_owned();
    for file in [path.clone(), format!("{path}-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            let text = String::from_utf8_lossy(&bytes);
            for run in words.windows(3) {
                assert!(!text.contains(&run.join(" ")), "{run:?} in {file}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_each_reply_lands_in_the_sent_folder_when_asked() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start_with(&db, &servers, &support, true, |c| {
        c.channels.email.sent_folder = Some("Sent".into())
    })
    .await;
    customer_sends(
        &servers,
        &customer,
        &support,
        &plain_mail(
            &customer,
            &support,
            &format!("c-{customer}"),
            "transfer",
            "转账一直pending怎么办",
        ),
    )
    .await;
    until("the answer", Duration::from_secs(20), || async {
        !mailbox(&servers, &customer).is_empty()
    })
    .await;
    let sent = maildir(&servers, &support).join(".Sent");
    let copies = || {
        ["cur", "new"]
            .iter()
            .filter_map(|d| std::fs::read_dir(sent.join(d)).ok())
            .flat_map(|entries| entries.flatten())
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    until("a copy in Sent", Duration::from_secs(20), || async {
        !copies().is_empty()
    })
    .await;
    assert!(
        copies()[0].contains(&format!("<c-{customer}>")),
        "the copy is the reply"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mailbox_answers_from_its_own_address() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let sales = support.replace("support-", "sales-");
    let (imap, submission, ca, sales_address) = (
        servers.imap.clone(),
        servers.submission.clone(),
        servers.ca.clone(),
        sales.clone(),
    );
    let app = start_with(&db, &servers, &support, true, move |c| {
        let mut second = c.channels.email.clone();
        second.mailboxes.clear();
        second.imap_url = Some(imap);
        second.smtp_url = Some(submission);
        second.ca_file = Some(ca);
        second.username = Some(sales_address.clone());
        second.address = Some(sales_address);
        c.channels.email.mailboxes.insert("sales".into(), second);
    })
    .await;
    until(
        "the second mailbox to open",
        Duration::from_secs(20),
        || async {
            let ready: serde_json::Value = reqwest::get(app.url("/readyz"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ready["channels"]["email:sales"]["ok"] == true
        },
    )
    .await;
    customer_sends(
        &servers,
        &customer,
        &sales,
        &plain_mail(
            &customer,
            &sales,
            &format!("m-{customer}"),
            "transfer",
            "转账一直pending怎么办",
        ),
    )
    .await;
    let asked = stored(&app, 1).await.remove(0);
    let conversation = app
        .store
        .conversation(asked.conversation_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conversation.account.to_string(), "email:sales");
    until("the answer", Duration::from_secs(20), || async {
        !mailbox(&servers, &customer).is_empty()
    })
    .await;
    let answer = mailbox(&servers, &customer).remove(0);
    assert!(
        header(&answer, "From").is_some_and(|f| f.contains(&sales)),
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbk_and_utf16_mails_keep_every_character_through_the_servers() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start(&db, &servers, &support, false).await;
    // "提现没到账" in GBK and "转账到账了吗" in UTF-16 with a byte order mark, both base64.
    for (n, charset, body) in [
        (1, "gbk", "zOHP1sO7tb3Vyw=="),
        (2, "utf-16", "//5sjyaNMFImjYZOF1Q="),
    ] {
        customer_sends(
            &servers,
            &customer,
            &support,
            &format!(
                "From: <{customer}>\r\nTo: {support}\r\nSubject: =?gbk?B?zOHP1g==?=\r\n\
                 Message-ID: <cs{n}-{customer}>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n"
            ),
        )
        .await;
    }
    let mut texts: Vec<String> = stored(&app, 2).await.into_iter().map(|m| m.text).collect();
    texts.sort();
    assert_eq!(texts, ["提现没到账", "转账到账了吗"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_reply_goes_out_with_the_file_attached() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start(&db, &servers, &support, false).await;
    customer_sends(
        &servers,
        &customer,
        &support,
        &plain_mail(
            &customer,
            &support,
            &format!("f-{customer}"),
            "receipt",
            "请发我收据",
        ),
    )
    .await;
    let asked = stored(&app, 1).await.remove(0);
    let http =
        frontdesk_e2e::signed_in(&app, "amy@desk.example", frontdesk_core::Role::Agent).await;
    let path = format!("/conversations/{}", asked.conversation_id);
    let (_, page) = frontdesk_e2e::get(&http, &app, &path).await;
    let form = reqwest::multipart::Form::new()
        .text("csrf", frontdesk_e2e::csrf_of(&page))
        .text("key", frontdesk_e2e::reply_key_of(&page))
        .text("text", "这是您的收据。")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"%PDF-1.4 receipt".to_vec())
                .file_name("收据.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let sent = http
        .post(app.url(&format!("{path}/reply")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 303);
    until(
        "the reply in the customer's mailbox",
        Duration::from_secs(20),
        || async { !mailbox(&servers, &customer).is_empty() },
    )
    .await;
    let raw = mailbox(&servers, &customer).remove(0);
    let mail = frontdesk_email::parse::parse(raw.as_bytes(), Default::default());
    assert!(mail.text.contains("这是您的收据。"), "{}", mail.text);
    assert_eq!(mail.attachments.len(), 1);
    assert_eq!(mail.attachments[0].name, "收据.pdf");
    assert_eq!(
        mail.attachments[0].bytes.as_deref(),
        Some(&b"%PDF-1.4 receipt"[..])
    );
    // A person wrote it: not marked automatic.
    assert_eq!(header(&raw, "Auto-Submitted"), None);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idle_the_mailbox_is_polled() {
    let Some(servers) = servers() else { return };
    let db = TestDatabase::sqlite();
    let (support, customer) = addresses();
    let app = start_with(&db, &servers, &support, false, |c| {
        c.channels.email.idle = false;
        c.channels.email.poll_seconds = 1;
    })
    .await;
    let ready: serde_json::Value = reqwest::get(app.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["channels"]["email:default"]["detail"],
        "connected (polling)"
    );
    customer_sends(
        &servers,
        &customer,
        &support,
        &plain_mail(
            &customer,
            &support,
            &format!("p-{customer}"),
            "hi",
            "polled",
        ),
    )
    .await;
    assert_eq!(stored(&app, 1).await[0].text, "polled");
    app.stop().await;
}
