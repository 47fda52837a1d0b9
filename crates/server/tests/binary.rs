//! The `frontdesk` binary as an operator runs it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_frontdesk");

fn frontdesk(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    // The tests choose their own configuration.
    for (k, _) in std::env::vars() {
        if k.starts_with("FRONTDESK_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A `frontdesk serve` process and the address it listens on.
struct Server {
    child: Child,
    address: String,
    /// Every line it has written to stderr so far.
    logs: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts `serve` on port 0 and waits for its "serving" log line, which carries the
    /// bound address: no sleeping, no polling.
    fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = frontdesk(dir);
        cmd.args(["--log-format", "json", "serve"])
            .env("FRONTDESK_SERVER__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start frontdesk serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
                drop(kept);
                let parsed: Option<serde_json::Value> = serde_json::from_str(&line).ok();
                if let Some(address) = parsed
                    .as_ref()
                    .filter(|v| v["message"] == "serving")
                    .and_then(|v| v["address"].as_str())
                {
                    let _ = tx.send(Ok(address.to_owned()));
                }
                if parsed.is_none() || line.contains("\"ERROR\"") {
                    let _ = tx.send(Err(line));
                }
            }
        });
        let address = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(address)) => address,
            Ok(Err(line)) => panic!("frontdesk serve failed: {line}"),
            Err(e) => panic!("frontdesk serve never said it was serving: {e}"),
        };
        Server {
            child,
            address,
            logs,
        }
    }

    fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` with `input` on its standard input and waits for it.
fn run_with_stdin(cmd: &mut Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `frontdesk bench ARGS` in a fresh directory: what it printed, once it succeeded.
fn bench(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = frontdesk(dir.path())
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that a benchmark printed each of `lines`.
fn assert_printed(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}

/// The `ratio: ` line a benchmark printed.
fn ratio_in(text: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix("ratio: "))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no ratio in\n{text}"))
}

fn get(url: &str) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::get(url).await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    })
}

#[test]
fn serve_on_the_defaults_answers_health_and_readiness_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (status, body) = get(&server.url("/healthz"));
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = get(&server.url("/readyz"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["database"]["detail"], "sqlite");
    let (status, metrics) = get(&server.url("/metrics"));
    assert_eq!(status, 200);
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("frontdesk_outbox_depth 0")
    );
    assert!(
        dir.path().join("data/frontdesk.db").exists(),
        "the default SQLite file is created"
    );

    let stopping = Instant::now();
    server.signal("TERM");
    let status = server
        .wait(Duration::from_secs(5))
        .expect("exited within 5 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(stopping.elapsed() < Duration::from_secs(5));
}

#[test]
fn serve_on_postgresql_reports_the_backend_as_ready() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(db) = rt.block_on(frontdesk_store::testing::TestDatabase::postgres()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[("FRONTDESK_DATABASE__URL", db.url())]);
    let (status, body) = get(&server.url("/readyz"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"]["detail"], "postgres");
    server.signal("INT");
    assert!(
        server
            .wait(Duration::from_secs(5))
            .expect("exited on SIGINT")
            .success()
    );
    drop(server);
    drop(db);
}

#[test]
fn check_names_the_line_and_key_of_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:8080\"\n\n[database]\nurll = \"sqlite://x.db\"\n\n[channels.telegram]\nmode = \"pigeon\"\n",
    )
    .unwrap();
    let out = frontdesk(dir.path())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.toml:5: key `database.urll`: unknown field"),
        "{stderr}"
    );
    assert!(
        stderr.contains("broken.toml:8: key `channels.telegram.mode`"),
        "{stderr}"
    );
    assert!(stderr.contains("2 configuration problem(s)"), "{stderr}");
}

/// From a checkout, `frontdesk check` reads config/frontdesk.toml and the knowledge
/// base it names, relative to the working directory.
#[test]
fn check_accepts_the_shipped_configuration_and_knowledge_base() {
    let out = frontdesk(&repo_config()).arg("check").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("config/frontdesk.toml: configuration OK"),
        "{stdout}"
    );
    assert!(
        stdout.contains("config/faq.toml: knowledge base OK"),
        "{stdout}"
    );
}

#[test]
fn an_agent_is_added_with_a_password_from_stdin_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let add = || {
        run_with_stdin(
            frontdesk(dir.path())
                .args([
                    "agent",
                    "add",
                    "--email",
                    "Li.Wei@Example.com",
                    "--name",
                    "Li Wei",
                ])
                .args(["--role", "admin", "--password-stdin"])
                .args(["--team", "Payments", "--team", "general", "--tier", "2"]),
            "a long enough passphrase\n",
        )
    };
    let first = add();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("<li.wei@example.com> as admin"), "{stdout}");
    assert!(
        stdout.contains("tier 2, capacity 5, teams: general, payments"),
        "{stdout}"
    );
    let second = add();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("exists already"));
    let online = frontdesk(dir.path())
        .args(["agent", "status", "--email", "li.wei@example.com", "online"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&online.stdout).contains("<li.wei@example.com> is online"),
        "{}",
        String::from_utf8_lossy(&online.stderr)
    );
    // An API token, printed once on stdout; only its hash is stored.
    let created = frontdesk(dir.path())
        .args([
            "token",
            "create",
            "--agent",
            "li.wei@example.com",
            "--name",
            "crm",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(token.starts_with("fdt_") && token.len() > 40, "{token}");
    assert!(String::from_utf8_lossy(&created.stderr).contains("read, write"));
    let db = std::fs::read(dir.path().join("data/frontdesk.db")).unwrap();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()));
    let nobody = frontdesk(dir.path())
        .args(["agent", "status", "--email", "nobody@example.com", "away"])
        .output()
        .unwrap();
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no agent with the email"));
    // The password itself is stored only as an argon2id hash.
    let db = std::fs::read(dir.path().join("data/frontdesk.db")).unwrap();
    let needle = b"a long enough passphrase";
    assert!(!db.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn bench_x_receives_every_mention_and_prints_the_ratio() {
    // More than X's 800-mention window, so the bursts and pages are exercised.
    let text = bench(&["x", "--mentions", "1200"]);
    assert!(text.contains("mentions: 1200\n"), "{text}");
    assert!(ratio_in(&text) > 0.0, "{text}");
}

#[test]
fn bench_e2e_answers_every_customer_and_prints_the_figures() {
    // 100 messages over 2 s, 5 of them over Telegram; no timing is asserted.
    let text = bench(&[
        "e2e",
        "--rate",
        "50",
        "--seconds",
        "2",
        "--capacity-messages",
        "100",
    ]);
    assert_printed(
        &text,
        &[
            "messages: 100\n",
            "send_failed: 0\n",
            "replied: 100\n",
            "no_reply: 0\n",
            "wrong_reply: 0\n",
            "capacity_messages: 100\n",
            "capacity_unanswered: 0\n",
            "telegram_latency_ms: p50",
            "webchat_latency_ms: p50",
            "webchat_post_ms: p50",
            "rss_idle_mib:",
            "rss_peak_mib:",
            "bare_insert_per_second:",
        ],
    );
    assert!(ratio_in(&text) > 0.0, "{text}");
}

#[test]
fn bench_inbox_prints_latencies_and_memory() {
    let text = bench(&[
        "inbox",
        "--conversations",
        "200",
        "--messages-per-conversation",
        "3",
    ]);
    assert_printed(
        &text,
        &[
            "conversations: 200",
            "messages: 600",
            "list_newest_ms: p50",
            "filter_open_unassigned_telegram_ms: p50",
            "index_seconds:",
            "search_rare_words_ms: p50",
            "search_common_chinese_ms: p50",
            "conversation_messages_ms: p50",
            "rss_mib:",
        ],
    );
}

#[test]
fn report_prints_the_figures_of_the_last_days_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = frontdesk(dir.path())
        .args(["report", "--days", "30"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["overall"]["conversations"], 0);
    assert!(report["overall"]["first_response_p50"].is_null());
    assert!(report["teams"].as_object().unwrap().is_empty());
}

/// `/readyz` once it says, with a 503, that `account` is failing for `words`.
fn until_channel_says(server: &Server, account: &str, words: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(&server.url("/readyz"));
        let detail = body["channels"][account]["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if detail.contains(words) {
            assert_eq!(status, 503);
            return body;
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_x_account_that_cannot_reach_x_says_so_without_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of 127.0.0.1: every call fails at once.
    let mut server = Server::start(
        dir.path(),
        &[
            ("FRONTDESK_CHANNELS__X__ENABLED", "true"),
            ("FRONTDESK_CHANNELS__X__API_URL", "http://127.0.0.1:9"),
            ("FRONTDESK_CHANNELS__X__USER_ID", "1234"),
            ("FRONTDESK_CHANNELS__X__CONSUMER_KEY", "secret-consumer-key"),
            (
                "FRONTDESK_CHANNELS__X__CONSUMER_SECRET",
                "secret-consumer-secret",
            ),
            ("FRONTDESK_CHANNELS__X__ACCESS_TOKEN", "secret-access-token"),
            (
                "FRONTDESK_CHANNELS__X__ACCESS_TOKEN_SECRET",
                "secret-token-secret",
            ),
        ],
    );
    let body = until_channel_says(&server, "x:default", "cannot reach X");
    assert!(!body.to_string().contains("secret-"), "{body}");
    server.signal("TERM");
    server.wait(Duration::from_secs(10)).expect("it stops");
    let logs = server.logs();
    assert!(logs.contains("cannot reach X"), "{logs}");
    assert!(!logs.contains("secret-"), "no key is ever logged: {logs}");
}

#[test]
fn a_telegram_bot_that_cannot_reach_telegram_says_so_without_its_token() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of 127.0.0.1: every call fails at once.
    let mut server = Server::start(
        dir.path(),
        &[
            ("FRONTDESK_CHANNELS__TELEGRAM__ENABLED", "true"),
            (
                "FRONTDESK_CHANNELS__TELEGRAM__TOKEN",
                "123456:secret-token-value",
            ),
            (
                "FRONTDESK_CHANNELS__TELEGRAM__API_URL",
                "http://127.0.0.1:9",
            ),
        ],
    );
    let body = until_channel_says(&server, "telegram:default", "cannot reach Telegram");
    assert!(!body.to_string().contains("secret-token-value"), "{body}");
    server.signal("TERM");
    server.wait(Duration::from_secs(10)).expect("it stops");
    let logs = server.logs();
    assert!(logs.contains("cannot reach the Telegram bot"), "{logs}");
    assert!(
        !logs.contains("secret-token-value"),
        "the token is never logged"
    );
}

fn repo_config() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn faq_match_prints_the_documented_json_object() {
    let out = frontdesk(&repo_config())
        .args(["faq", "match", "转账一直pending怎么办"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["intent"], "transfer_pending");
    assert_eq!(v["lang"], "zh");
    assert_eq!(v["action"], "answer");
    assert!(v["answer"].as_str().is_some_and(|a| !a.is_empty()));
    let c = v["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&c));
}

#[test]
fn faq_match_reads_one_message_per_line_and_survives_a_closed_pipe() {
    let out = run_with_stdin(
        frontdesk(&repo_config()).args(["faq", "match"]),
        "tell me a joke\n转人工\n",
    );
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["action"].as_str(), &lines[0]["intent"]),
        (Some("fallback"), &serde_json::Value::Null)
    );
    assert_eq!(lines[0]["answer"], serde_json::Value::Null);
    assert_eq!(
        (lines[1]["action"].as_str(), lines[1]["intent"].as_str()),
        (Some("handoff"), Some("contact_human"))
    );

    // A reader that stops after the first line gets no panic from us.
    let shell = format!(
        "yes 'hello' | head -n 2000 | {BIN} faq match | head -n 1 >/dev/null; echo ${{PIPESTATUS[2]}}"
    );
    let status = Command::new("bash")
        .arg("-c")
        .arg(shell)
        .current_dir(repo_config())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&status.stdout).trim(),
        "0",
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn check_reports_a_broken_knowledge_base_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let faq = dir.path().join("faq.toml");
    std::fs::write(
        &faq,
        "[[intent]]\nid = \"fees\"\naction = \"answer\"\n[intent.examples]\nen = [\"fees?\"]\n[intent.answer]\nzh = \"见 {hotline}\"\nen = \"see {hotline}\"\n",
    )
    .unwrap();
    let out = frontdesk(dir.path())
        .arg("check")
        .env("FRONTDESK_BOT__FAQ", &faq)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("faq.toml:2: intent \"fees\": answer.zh: {hotline} is not defined in [vars]"),
        "{stderr}"
    );
}

#[test]
fn guard_scan_prints_the_redacted_text_and_the_findings() {
    let phrase = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
    let out = frontdesk(&repo_config())
        .args(["guard", "scan", &format!("助记词：{phrase}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["redacted"], "助记词：[redacted recovery phrase]");
    assert_eq!(v["findings"][0]["kind"], "recovery_phrase");
    assert_eq!(v["findings"][0]["start"], 4);
    assert_eq!(v["findings"][0]["end"], 4 + phrase.chars().count());

    let lines = run_with_stdin(
        frontdesk(&repo_config()).args(["guard", "scan"]),
        "nothing secret here\ntxid 0x9f2c4a7b1e3d5f6a8b0c2d4e6f8a0b1c3d5e7f9a1b2c3d4e5f6a7b8c9d0e1f2a\n",
    );
    let parsed: Vec<serde_json::Value> = String::from_utf8_lossy(&lines.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 2);
    assert!(
        parsed
            .iter()
            .all(|v| v["findings"].as_array().unwrap().is_empty())
    );
}

#[test]
fn a_contact_is_exported_and_erased_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A customer wrote in, through the same store the binary opens.
    let url = format!("sqlite://{}/data/frontdesk.db", dir.path().display());
    rt.block_on(async {
        use frontdesk_core::{ChannelAccount, ChannelKind, Inbound, Sender};
        use frontdesk_store::{SqlStore, Store, StoreOptions};
        let store = SqlStore::connect(&url, StoreOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let sender = Sender {
            external_id: "77".into(),
            display_name: Some("Zhang".into()),
            language: None,
        };
        let m = Inbound::new(
            ChannelAccount::default_of(ChannelKind::Telegram),
            "1",
            sender,
            "chat-77",
            "my phone is 13800000000",
        )
        .unwrap();
        store.ingest(&m, None).await.unwrap();
    });
    let export = frontdesk(dir.path())
        .args(["contact", "export", "1"])
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(
        v["conversations"][0]["messages"][0]["text"],
        "my phone is 13800000000"
    );

    let refused = frontdesk(dir.path())
        .args(["contact", "delete", "1"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    let deleted = frontdesk(dir.path())
        .args(["contact", "delete", "1", "--yes"])
        .output()
        .unwrap();
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    assert!(String::from_utf8_lossy(&deleted.stdout).contains("1 message texts, 1 identities"));
    let after = frontdesk(dir.path())
        .args(["contact", "export", "1"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(v["conversations"][0]["messages"][0]["text"], "[erased]");
    assert_eq!(v["contact"]["identities"], serde_json::json!([]));
}
