//! The email channel end to end against real Dovecot and Postfix on 127.0.0.1, started
//! by `scripts/test` (`ensure_mail` in `scripts/services.sh`). Each test makes its own
//! mailboxes (any address at example.test exists, password "password").

use frontdesk::config::Config;
use frontdesk_core::{Direction, Message};
use frontdesk_e2e::TestApp;
use frontdesk_store::ConversationQuery;
use frontdesk_store::testing::TestDatabase;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The test mail servers, or `None` (a skip) where `scripts/test` did not start them;
/// under CI=true their absence fails the test.
struct Servers {
    imap: String,
    submission: String,
    smtp_port: u16,
    ca: String,
    maildirs: PathBuf,
}

fn servers() -> Option<Servers> {
    let var = |k: &str| std::env::var(k).ok();
    match (
        var("FRONTDESK_TEST_MAIL_IMAP"),
        var("FRONTDESK_TEST_MAIL_SUBMISSION"),
        var("FRONTDESK_TEST_MAIL_SMTP"),
        var("FRONTDESK_TEST_MAIL_CA"),
        var("FRONTDESK_TEST_MAIL_DIR"),
    ) {
        (Some(imap), Some(submission), Some(smtp), Some(ca), Some(dir)) => Some(Servers {
            imap,
            submission,
            smtp_port: smtp.rsplit(':').next()?.parse().ok()?,
            ca,
            maildirs: dir.into(),
        }),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the mail servers are not running: run scripts/test (ensure_mail in scripts/services.sh)"
            );
            eprintln!("skipped: no test mail servers (run scripts/test to start them)");
            None
        }
    }
}

/// A fresh pair of addresses for one test.
fn addresses() -> (String, String) {
    let n: u64 = rand::random();
    (
        format!("support-{n:x}@example.test"),
        format!("customer-{n:x}@example.test"),
    )
}

async fn start_app(db: &TestDatabase, servers: &Servers, support: &str, bot: bool) -> TestApp {
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
        if bot {
            c.bot.faq = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/faq.toml").into();
        } else {
            c.bot.enabled = false;
        }
    })
    .await
}

/// The app with the mailbox open (IDLE waiting), so mail sent now is the test's.
async fn start(db: &TestDatabase, servers: &Servers, support: &str, bot: bool) -> TestApp {
    let app = start_app(db, servers, support, bot).await;
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

/// Sends a raw message through Postfix (port 25-style, no AUTH) as a customer would.
async fn customer_sends(servers: &Servers, from: &str, to: &str, raw: &str) {
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(servers.smtp_port)
        .build();
    let envelope =
        lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()])
            .unwrap();
    smtp.send_raw(&envelope, raw.as_bytes())
        .await
        .expect("Postfix takes the mail");
}

async fn until<F, Fut>(what: &str, limit: Duration, mut check: F)
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn inbound(app: &TestApp) -> Vec<Message> {
    let mut all = Vec::new();
    for c in app
        .store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap()
        .items
    {
        all.extend(
            app.store
                .messages(c.id, None, 1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|m| m.direction == Direction::In),
        );
    }
    all
}

/// The mails delivered to `address`, as raw text.
fn mailbox(servers: &Servers, address: &str) -> Vec<String> {
    let name = address.split('@').next().unwrap();
    let dir = servers
        .maildirs
        .join("example.test")
        .join(name)
        .join("Maildir");
    let mut mails = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for entry in entries.flatten() {
                mails.push(
                    String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned(),
                );
            }
        }
    }
    mails
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    let head = mail.split("\r\n\r\n").next().unwrap_or(mail);
    head.lines()
        .find(|l| {
            l.to_lowercase()
                .starts_with(&format!("{}:", name.to_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}

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
        || async { !inbound(&app).await.is_empty() },
    )
    .await;
    let took = sent.elapsed();
    eprintln!("intake took {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "within 2 s through IDLE: {took:?}"
    );
    let first = inbound(&app).await.remove(0);
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
        inbound(&app).await.len() == 2
    })
    .await;
    let both = inbound(&app).await;
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
        !inbound(&app).await.is_empty()
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
        !inbound(&app).await.is_empty()
    })
    .await;
    let mail = inbound(&app).await.remove(0);
    assert_eq!(mail.text, "提現沒到帳");
    assert_eq!(mail.attachments[0].name, "收据.pdf");
    app.agent(
        "amy@desk.example",
        frontdesk_core::Role::Agent,
        "a long passphrase",
    )
    .await;
    let http = frontdesk_e2e::browser();
    frontdesk_e2e::log_in(&app, &http, "amy@desk.example", "a long passphrase").await;
    let link = format!(
        "/conversations/{}/messages/{}/files/0",
        mail.conversation_id, mail.id
    );
    let file = http.get(app.url(&link)).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().await.unwrap().as_ref(), b"%PDF-1.4 receipt");
    app.stop().await;
}
