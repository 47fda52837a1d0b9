//! The fault suite: what breaks around Frontdesk (a disk that fills up, providers that
//! answer 429, 5xx, late or not at all, a database that restarts) gives a clear error,
//! loses nothing, doubles nothing, and passes.
//!
//! The crash suite (chaos.rs) kills Frontdesk itself. Faults tested where their
//! channel is: Telegram's 429 storm (telegram.rs), X's 5xx, 429 and a store outage
//! (crates/x/tests/channel.rs), Postfix and Dovecot going away and coming back
//! (email.rs: `with_smtp_down_and_back_up_the_answer_is_delivered_once`,
//! `with_imap_cut_and_back_the_mail_that_came_meanwhile_is_taken_once`).

use frontdesk_core::{ChannelAccount, ChannelKind, Delivery, Direction, Inbound, Sender};
use frontdesk_e2e::{TestApp, until};
use frontdesk_store::{SqlStore, StoreOptions};
use frontdesk_testkit::FakeTelegram;
use frontdesk_testkit::telegram::Scripted;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs of a given size, mounted for one test (root only; the test machines and
/// CI run as root).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "cannot mount a small tmpfs (the full-disk test needs root)"
            );
            eprintln!("skipped: cannot mount a small tmpfs (run as root)");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Room again: the same filesystem, bigger.
    fn grow(&self, size: &str) {
        let grown = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(grown.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn message(n: usize, bytes: usize) -> Inbound {
    let sender = Sender {
        external_id: format!("filler-{}", n % 50),
        display_name: None,
        language: None,
    };
    // Text that does not compress into nothing: the disk fills as a real one would.
    let text: String = (0..bytes / 8)
        .map(|i| {
            format!(
                "{:08x}",
                (i as u64 + n as u64 * 7919).wrapping_mul(2_654_435_761)
            )
        })
        .collect();
    Inbound::new(
        ChannelAccount::default_of(ChannelKind::Webchat),
        format!("filler-{n}"),
        sender,
        format!("filler-{}", n % 50),
        text,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk_says_so_keeps_what_it_had_and_recovers() {
    let Some(disk) = SmallDisk::mount("8m") else {
        return;
    };
    let file: PathBuf = disk.path().join("frontdesk.db");
    let url = format!("sqlite://{}", file.display());
    let app = TestApp::start_with(&url, &[], |c| {
        c.bot.enabled = false;
        c.channels.webchat.enabled = true;
    })
    .await;

    // Customers write until the disk is full, in ever smaller messages, so that at the
    // end not even a short one fits.
    let mut stored = 0;
    let mut n = 0;
    for size in [64 * 1024, 4096, 512, 64] {
        loop {
            n += 1;
            match app.store.ingest(&message(n, size), None).await {
                Ok(_) => stored += 1,
                Err(e) => {
                    assert!(e.is_disk_full(), "not taken for a full disk: {e}");
                    break;
                }
            }
            assert!(n < 10_000, "8 MB never filled up");
        }
    }
    assert!(stored > 5, "only {stored} messages fitted");

    // A visitor is told plainly; nothing half-stored.
    let visitor = app.visitor_token().await;
    let http = reqwest::Client::new();
    let send = || {
        http.post(app.url("/chat/api/messages"))
            .bearer_auth(&visitor)
            .json(&serde_json::json!({ "text": "我的提现还没到账", "client_id": "full-1" }))
            .send()
    };
    let refused = send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 507);
    let body = refused.text().await.unwrap();
    assert!(body.contains("storage is full"), "{body}");
    let check = SqlStore::connect(&url, StoreOptions::default())
        .await
        .expect("the full database opens");
    check.check_integrity().await.expect("the file is sound");

    // Room again: the same send goes through, once, next to everything kept before.
    disk.grow("64m");
    let taken = send().await.unwrap();
    assert!(taken.status().is_success(), "{}", taken.status());
    let again = send().await.unwrap();
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["duplicate"], true, "{again}");
    let texts = app.inbound_texts().await;
    assert_eq!(texts.len(), stored + 1);
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.as_str() == "我的提现还没到账")
            .count(),
        1
    );
    app.stop().await;
    // (Checked with the app stopped, as an operator would after an incident: SQLite
    // 3.51's check of the FTS5 contact index can report a checksum mismatch while
    // another connection is writing, which a fresh look then does not find.)
    let check = SqlStore::connect(&url, StoreOptions::default())
        .await
        .expect("the database opens");
    check.check_integrity().await.expect("the file is sound");
}

/// A PostgreSQL cluster of the test's own (the machine's is shared with every other
/// test), so that it can be restarted.
struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start() -> Option<OwnPostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.flatten().map(|v| v.path().join("bin")).max())
            .filter(|bin| bin.join("initdb").exists());
        let Some(bin) = bin else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL's server programs are missing (Debian's postgresql package)"
            );
            eprintln!("skipped: no PostgreSQL server programs to start a cluster of our own");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let as_postgres = |args: &[&str]| {
            let done = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .args(args)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(done.success(), "{args:?}");
        };
        Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        let data = dir.path().join("data");
        let initdb = bin.join("initdb");
        as_postgres(&[
            initdb.to_str().unwrap(),
            "-N",
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ]);
        let pg = OwnPostgres { dir, bin, port };
        pg.ctl("start");
        Some(pg)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start`, `restart` (fast: every connection is cut) or `stop`.
    fn ctl(&self, what: &str) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let done = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-m", "fast", "-o", &options, what])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(done.success(), "pg_ctl {what}");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

const TOKEN: &str = "7000000001:AAE-faults";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_and_a_failing_telegram_lose_and_double_nothing() {
    let Some(pg) = OwnPostgres::start() else {
        return;
    };
    let fake = FakeTelegram::start(TOKEN).await;
    // Telegram fails in the ways it does: 5xx on both sides, connections that break,
    // late answers, 429.
    fake.script("getUpdates", Scripted::ServerError, 3);
    fake.script("getUpdates", Scripted::Dropped, 2);
    fake.script("sendMessage", Scripted::ServerError, 2);
    fake.script("sendMessage", Scripted::Dropped, 2);
    fake.script("sendMessage", Scripted::Slow(Duration::from_secs(2)), 2);
    fake.script(
        "sendMessage",
        Scripted::TooManyRequests { retry_after: 1 },
        2,
    );
    let api_url = fake.api_url().to_owned();
    let app = TestApp::start_with(&pg.url(), &[], move |c| {
        let t = &mut c.channels.telegram;
        t.enabled = true;
        t.token = Some(TOKEN.into());
        t.api_url = api_url;
        frontdesk_e2e::answering(c, true);
        c.engine.tick_seconds = 1;
        c.delivery.send_timeout_seconds = 10;
    })
    .await;

    // Thirty customers over three seconds; the database restarts in the middle.
    let chats: Vec<i64> = (0..30).map(|i| 9000 + i).collect();
    for (i, chat) in chats.iter().enumerate() {
        fake.customer_writes(*chat, "怎么注册账号");
        if i == 12 {
            tokio::task::block_in_place(|| pg.ctl("restart"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every customer stored once and answered; every answer reached Telegram once.
    until(
        "every customer answered",
        Duration::from_secs(90),
        || async {
            let Ok(page) = app
                .store
                .list_conversations(&frontdesk_store::ConversationQuery {
                    limit: 100,
                    ..Default::default()
                })
                .await
            else {
                return false;
            };
            if page.items.len() < chats.len() {
                return false;
            }
            for c in page.items {
                let Ok(messages) = app.store.messages(c.id, None, 100).await else {
                    return false;
                };
                let replies: Vec<_> = messages
                    .iter()
                    .filter(|m| m.direction == Direction::Out && m.delivery.is_some())
                    .collect();
                if replies.is_empty() || replies.iter().any(|r| r.delivery != Some(Delivery::Sent))
                {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let texts = app.inbound_texts().await;
    assert_eq!(
        texts.len(),
        chats.len(),
        "each customer's message stored once"
    );
    let sent = fake.sent();
    for chat in &chats {
        let conversation = app
            .store
            .list_conversations(&frontdesk_store::ConversationQuery {
                text: Some(chat.to_string()),
                ..Default::default()
            })
            .await
            .unwrap();
        let id = conversation
            .items
            .iter()
            .find(|c| c.thread_key == chat.to_string())
            .expect("the customer's conversation")
            .id;
        let replies = app
            .store
            .messages(id, None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.direction == Direction::Out && m.delivery.is_some())
            .count();
        let delivered = sent.iter().filter(|s| s.chat_id == *chat).count();
        assert_eq!(delivered, replies, "chat {chat}");
    }
    app.stop().await;
}
