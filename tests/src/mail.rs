//! The test mail servers (Dovecot and Postfix on 127.0.0.1, started by `scripts/test`:
//! `ensure_mail` in `scripts/services.sh`) as the tests reach them: any address at
//! example.test exists, with the password "password".

use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::PathBuf;

/// Where the test mail servers listen, and where Dovecot keeps the mailboxes.
#[derive(Debug, Clone)]
pub struct Servers {
    pub imap: String,
    pub submission: String,
    pub smtp_port: u16,
    pub ca: String,
    pub maildirs: PathBuf,
}

/// The test mail servers, or `None` (a skip) where `scripts/test` did not start them;
/// under CI=true their absence fails the test.
pub fn servers() -> Option<Servers> {
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

/// Sends a raw message through Postfix (port 25-style, no AUTH) as a customer would.
pub async fn customer_sends(servers: &Servers, from: &str, to: &str, raw: &str) {
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

/// Where Dovecot keeps `address`'s mail (a Maildir: `new`, `cur`, `.Sent`...).
pub fn maildir(servers: &Servers, address: &str) -> PathBuf {
    let name = address.split('@').next().unwrap();
    servers
        .maildirs
        .join("example.test")
        .join(name)
        .join("Maildir")
}

/// The mails delivered to `address`, as raw text.
pub fn mailbox(servers: &Servers, address: &str) -> Vec<String> {
    let dir = maildir(servers, address);
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

pub fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    let head = mail.split("\r\n\r\n").next().unwrap_or(mail);
    head.lines()
        .find(|l| {
            l.to_lowercase()
                .starts_with(&format!("{}:", name.to_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}
