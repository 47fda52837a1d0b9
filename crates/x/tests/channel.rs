//! The X channel's real client against the fake X API v2 in the testkit, which checks
//! every OAuth 1.0a signature: receiving mentions and DMs exactly once, replies threaded
//! and cut by weighted length, rate limits with paused time, and bad credentials.

use frontdesk_core::{
    Channel, ChannelAccount, ChannelContext, ChannelKind, DeliveryOutcome, Entity, Filtered,
    Inbound, Outbound, TextFilter,
};
use frontdesk_testkit::MemoryIntake;
use frontdesk_testkit::x::{ACCOUNT_ID, CLIENT_ID, Endpoint, FakeX, OAuth1Keys, Scripted};
use frontdesk_x::{Auth, TokenKeeper, XChannel, XConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CUSTOMER: &str = "2244994945";

/// Marks email addresses as account details, as the app's entity finder does.
#[derive(Debug)]
struct Emails;

impl TextFilter for Emails {
    fn filter(&self, text: &str) -> Filtered {
        let entities = text
            .split_whitespace()
            .filter(|w| w.contains('@') && w.contains('.') && !w.starts_with('@'))
            .map(|w| {
                let start = text.find(w).unwrap_or_default();
                Entity {
                    kind: "email".into(),
                    value: w.into(),
                    start,
                    end: start + w.len(),
                }
            })
            .collect();
        Filtered {
            text: text.into(),
            findings: Vec::new(),
            entities,
        }
    }
}

fn account() -> ChannelAccount {
    ChannelAccount::default_of(ChannelKind::X)
}

fn oauth1(keys: &OAuth1Keys) -> Auth {
    Auth::OAuth1 {
        consumer_key: keys.consumer_key.clone().into(),
        consumer_secret: keys.consumer_secret.clone().into(),
        access_token: keys.access_token.clone().into(),
        access_token_secret: keys.access_token_secret.clone().into(),
    }
}

fn config(fake: &FakeX, auth: Auth) -> XConfig {
    let mut config = XConfig::new(account(), fake.api_url(), ACCOUNT_ID, auth);
    config.poll_every = Duration::from_millis(50);
    config
}

fn channel(config: XConfig) -> Arc<XChannel> {
    Arc::new(XChannel::new(config, Arc::new(Emails), None).expect("the channel builds"))
}

/// A running channel; `stop` ends it as a shutdown would.
struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<(), String>>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("no panic").expect("a clean stop");
    }
}

fn run(channel: &Arc<XChannel>, intake: &MemoryIntake) -> Running {
    let stop = CancellationToken::new();
    let ctx = ChannelContext {
        intake: Arc::new(intake.clone()),
        shutdown: stop.clone(),
    };
    let channel = channel.clone();
    let task = tokio::spawn(async move { channel.run(ctx).await });
    Running { stop, task }
}

/// Waits until the channel's health is `ok` (a minute of tokio time at most).
async fn until_health(channel: &XChannel, ok: bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let health = channel.health().await;
        if health.ok == ok && health.detail != "starting" {
            return health.detail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the channel's health stayed {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A reply to what `inbound` started, as the delivery worker hands it over.
fn reply_to(inbound: &Inbound, text: &str, outbox: i64) -> Outbound {
    Outbound {
        outbox_id: frontdesk_core::OutboxId(outbox),
        attempt: 1,
        account: account(),
        conversation_id: frontdesk_core::ConversationId(1),
        message_id: frontdesk_core::MessageId(outbox),
        recipient: inbound.sender.external_id.clone(),
        thread_key: inbound.thread_key.clone(),
        reply_to: Some(inbound.external_id.clone()),
        text: text.into(),
        attachments: Vec::new(),
        meta: inbound.meta.clone(),
        quick_replies: Vec::new(),
        automatic: false,
    }
}

/// A channel that has taken the customer's mention `text` (imported at its start).
async fn with_stored_mention(fake: &FakeX, text: &str) -> (Arc<XChannel>, Inbound) {
    fake.mention(CUSTOMER, text);
    let intake = MemoryIntake::default();
    let mut settings = config(fake, oauth1(fake.oauth1()));
    settings.import_existing = true;
    let x = channel(settings);
    let running = run(&x, &intake);
    let stored = intake.wait_for(1).await;
    running.stop().await;
    (x, stored[0].clone())
}

fn texts(stored: &[Inbound]) -> Vec<&str> {
    stored.iter().map(|i| i.text.as_str()).collect()
}

#[tokio::test]
async fn mentions_arrive_once_across_restarts() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    fake.mention(CUSTOMER, "an old mention, before Frontdesk");
    let intake = MemoryIntake::default();
    let x = channel(config(&fake, oauth1(fake.oauth1())));

    let running = run(&x, &intake);
    until_health(&x, true).await;
    // The cursor starts at the newest mention X lists, and is kept at once.
    assert!(intake.cursor_of(&account()).is_some());
    fake.mention(CUSTOMER, "first");
    fake.mention(CUSTOMER, "second");
    intake.wait_for(2).await;
    running.stop().await;

    fake.mention(CUSTOMER, "third, while Frontdesk was down");
    let x = channel(config(&fake, oauth1(fake.oauth1())));
    let running = run(&x, &intake);
    fake.mention(CUSTOMER, "fourth");
    let stored = intake.wait_for(4).await;
    // A few more rounds: nothing comes twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.stop().await;
    let stored_after = intake.stored();
    assert_eq!(stored_after.len(), stored.len());
    assert_eq!(
        texts(&stored_after),
        [
            "first",
            "second",
            "third, while Frontdesk was down",
            "fourth"
        ]
    );
    let first = &stored_after[0];
    assert!(
        first.thread_key.starts_with("public:"),
        "{}",
        first.thread_key
    );
    assert!(first.external_id.starts_with("post:"));
    assert_eq!(
        first.sender.display_name.as_deref(),
        Some("liwei (customer) (@liwei)")
    );
    // Every request was signed as the fake checks: none was refused.
    assert!(
        fake.requests().iter().all(|r| r.status == 200),
        "{:?}",
        fake.requests()
    );
}

#[tokio::test]
async fn the_mentions_x_still_lists_are_imported_when_asked_over_several_pages() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    for i in 0..130 {
        fake.mention(CUSTOMER, &format!("mention {i}"));
    }
    let intake = MemoryIntake::default();
    let mut settings = config(&fake, oauth1(fake.oauth1()));
    settings.import_existing = true;
    settings.dms = false;
    let x = channel(settings);
    let running = run(&x, &intake);
    let stored = intake.wait_for(130).await;
    running.stop().await;
    // Oldest first, each once, across two pages of 100.
    let expected: Vec<String> = (0..130).map(|i| format!("mention {i}")).collect();
    assert_eq!(texts(&stored), expected);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.endpoint == Endpoint::Mentions && r.query.contains_key("pagination_token"))
    );
}

#[tokio::test]
async fn a_reply_threads_to_the_customers_post() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let intake = MemoryIntake::default();
    let x = channel(config(&fake, oauth1(fake.oauth1())));
    let running = run(&x, &intake);
    until_health(&x, true).await;
    let root = fake.mention(CUSTOMER, "my withdrawal is pending");
    let follow_up = fake.reply_mentioning(CUSTOMER, &root, "still pending after an hour");
    let stored = intake.wait_for(2).await;
    running.stop().await;
    assert_eq!(
        stored[0].thread_key, stored[1].thread_key,
        "one conversation"
    );

    let outcome = x
        .deliver(&reply_to(&stored[1], "We are looking at it now.", 1))
        .await;
    let posted = fake.posted();
    assert_eq!(
        outcome,
        DeliveryOutcome::Sent {
            external_id: Some(format!("post:{}", posted[0].id))
        }
    );
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].in_reply_to.as_deref(), Some(follow_up.as_str()));
    assert_eq!(posted[0].text, "@liwei We are looking at it now.");
}

#[tokio::test]
async fn a_long_chinese_reply_is_split_by_weighted_length_into_a_thread() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let intake = MemoryIntake::default();
    let x = channel(config(&fake, oauth1(fake.oauth1())));
    let running = run(&x, &intake);
    until_health(&x, true).await;
    let post = fake.mention(CUSTOMER, "提现一直没到账");
    let stored = intake.wait_for(1).await;
    running.stop().await;

    // 400 CJK characters: 800 weighted, though only 400 characters.
    let reply = "您的提现申请已经提交，区块确认通常需要十到三十分钟，请耐心等待。".repeat(13);
    assert!(reply.chars().count() < 500);
    let outcome = x.deliver(&reply_to(&stored[0], &reply, 2)).await;
    assert!(
        matches!(outcome, DeliveryOutcome::Sent { .. }),
        "{outcome:?}"
    );
    let posted = fake.posted();
    assert!(posted.len() >= 3, "{} posts", posted.len());
    // The fake counts on its own and refuses anything over 280; each post answers the
    // one before, the first the customer's.
    assert_eq!(posted[0].in_reply_to.as_deref(), Some(post.as_str()));
    for pair in posted.windows(2) {
        assert_eq!(pair[1].in_reply_to.as_deref(), Some(pair[0].id.as_str()));
    }
    let n = posted.len();
    for (i, p) in posted.iter().enumerate() {
        assert!(frontdesk_testkit::x::weighted_length(&p.text) <= 280);
        assert!(p.text.ends_with(&format!(" {}/{n}", i + 1)), "{}", p.text);
    }
}

#[tokio::test]
async fn a_thread_cut_short_goes_on_where_it_stopped_even_in_a_new_process() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let (_, inbound) = with_stored_mention(&fake, "fees?").await;
    // Where the server keeps its notes (the outbox row), outliving the process.
    let notes: Arc<dyn frontdesk_core::Progress> =
        Arc::new(frontdesk_core::MemoryProgress::default());
    let process = || {
        let x = XChannel::new(config(&fake, oauth1(fake.oauth1())), Arc::new(Emails), None)
            .expect("the channel builds");
        x.with_progress(notes.clone())
    };
    let root = inbound.external_id.trim_start_matches("post:").to_owned();
    let reply = "Fees depend on the network. ".repeat(25);
    // The second post of the thread hits the limit; the process then ends.
    fake.limit(Endpoint::CreatePost, 1, Duration::from_secs(900));
    let first = process().deliver(&reply_to(&inbound, &reply, 3)).await;
    assert!(
        matches!(first, DeliveryOutcome::RetryAfter(wait) if wait > Duration::from_secs(800)),
        "{first:?}"
    );
    assert_eq!(fake.posted().len(), 1);
    fake.limit(Endpoint::CreatePost, 200, Duration::from_secs(900));
    let mut retry = reply_to(&inbound, &reply, 3);
    retry.attempt = 2;
    let second = process().deliver(&retry).await;
    let posted = fake.posted();
    assert!(matches!(second, DeliveryOutcome::Sent { .. }), "{second:?}");
    assert_eq!(posted.len(), 3, "no post twice: {posted:?}");
    assert_eq!(posted[0].in_reply_to.as_deref(), Some(root.as_str()));
    assert_eq!(
        posted[2].in_reply_to.as_deref(),
        Some(posted[1].id.as_str())
    );
    assert_eq!(
        second,
        DeliveryOutcome::Sent {
            external_id: Some(format!("post:{}", posted[0].id))
        }
    );
}

#[tokio::test]
async fn a_dm_round_trip() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let intake = MemoryIntake::default();
    let x = channel(config(&fake, oauth1(fake.oauth1())));
    let running = run(&x, &intake);
    until_health(&x, true).await;
    fake.dm(CUSTOMER, "My deposit has not arrived");
    let stored = intake.wait_for(1).await;
    let dm = &stored[0];
    assert_eq!(dm.thread_key, format!("dm:{CUSTOMER}-{ACCOUNT_ID}"));
    assert!(dm.external_id.starts_with("dm:"));

    let outcome = x
        .deliver(&reply_to(
            dm,
            "Please send us the transaction hash here.",
            4,
        ))
        .await;
    assert!(
        matches!(outcome, DeliveryOutcome::Sent { external_id: Some(ref id) } if id.starts_with("dm:")),
        "{outcome:?}"
    );
    let sent = fake.dms_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, CUSTOMER);
    assert_eq!(sent[0].text, "Please send us the transaction hash here.");
    // Our own DM shows in the DM events too, and is not taken for the customer's.
    fake.dm(CUSTOMER, "0xabc sent");
    let stored = intake.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.stop().await;
    assert_eq!(
        texts(&intake.stored()),
        ["My deposit has not arrived", "0xabc sent"]
    );
    assert_eq!(stored[1].thread_key, dm.thread_key);

    fake.refuses_dms(CUSTOMER);
    let outcome = x.deliver(&reply_to(dm, "One more thing", 5)).await;
    assert!(
        matches!(outcome, DeliveryOutcome::Unreachable(_)),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn polling_follows_xs_rate_limit_headers_and_waits_out_a_429() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    // Five requests a minute: pacing must spread them, never running into a 429.
    fake.limit(Endpoint::Mentions, 5, Duration::from_secs(60));
    let intake = MemoryIntake::default();
    let mut settings = config(&fake, oauth1(fake.oauth1()));
    settings.poll_every = Duration::from_secs(1);
    settings.dms = false;
    let x = channel(settings);
    let running = run(&x, &intake);
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    let polls: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::Mentions)
        .collect();
    assert_eq!(fake.rate_limited(), 0, "the pace ran into the limit");
    // Ten minutes at five a minute: close to 50 polls, not the 600 of the 1 s floor.
    assert!((30..=50).contains(&polls.len()), "{} polls", polls.len());

    // A 429 (another app on the same account used the window): wait for the reset.
    fake.script(
        Endpoint::Mentions,
        [Scripted::TooManyRequests { reset_in: 120 }],
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    let requests = fake.requests();
    let refused = requests
        .iter()
        .find(|r| r.status == 429)
        .expect("the scripted 429")
        .at;
    tokio::time::sleep(Duration::from_secs(3 * 60)).await;
    let next = fake
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::Mentions && r.at > refused)
        .expect("polling went on")
        .at;
    assert!(
        next - refused >= Duration::from_secs(120),
        "polled again after {:?}",
        next - refused
    );
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn bad_credentials_show_as_an_unhealthy_channel_with_the_reason() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    let mut wrong = fake.oauth1().clone();
    wrong.consumer_secret = "not the secret".into();
    let x = channel(config(&fake, oauth1(&wrong)));
    let intake = MemoryIntake::default();
    let running = run(&x, &intake);
    let detail = until_health(&x, false).await;
    running.stop().await;
    assert!(detail.contains("401"), "{detail}");
    assert!(
        detail.contains("consumer_key"),
        "says what to check: {detail}"
    );
    assert!(!detail.contains("not the secret"));

    // An app outside a Project: X's 403 client-forbidden, with its reason.
    let x = channel(config(&fake, oauth1(fake.oauth1())));
    fake.script(Endpoint::Me, [Scripted::ClientForbidden]);
    let running = run(&x, &intake);
    let detail = until_health(&x, false).await;
    assert!(detail.contains("client-not-enrolled"), "{detail}");
    // Then it is fixed: the channel recovers by itself.
    until_health(&x, true).await;
    running.stop().await;
}

#[tokio::test]
async fn credentials_for_another_account_are_refused_at_start() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    let mut settings = config(&fake, oauth1(fake.oauth1()));
    settings.user_id = "42".into();
    let x = channel(settings);
    let intake = MemoryIntake::default();
    let running = run(&x, &intake);
    let error = running.task.await.unwrap().unwrap_err();
    assert!(error.contains("not for channels.x.user_id 42"), "{error}");
    assert!(!x.health().await.ok);
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_a_store_outage_are_retried_without_losing_a_mention() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let intake = MemoryIntake::default();
    let mut settings = config(&fake, oauth1(fake.oauth1()));
    settings.dms = false;
    let x = channel(settings);
    let running = run(&x, &intake);
    until_health(&x, true).await;
    fake.script(
        Endpoint::Mentions,
        [Scripted::ServerError(503), Scripted::ServerError(500)],
    );
    intake.fail_next(2);
    fake.mention(CUSTOMER, "is the app down?");
    fake.mention(CUSTOMER, "hello?");
    let stored = intake.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.stop().await;
    assert_eq!(texts(&stored), ["is the app down?", "hello?"]);
    assert_eq!(intake.stored().len(), 2);
}

#[tokio::test]
async fn a_process_restarted_past_xs_users_me_limit_receives_what_came_meanwhile() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    // One look at /2/users/me in the window, which the first start takes.
    fake.limit(Endpoint::Me, 1, Duration::from_secs(900));
    let intake = MemoryIntake::default();
    let first = channel(config(&fake, oauth1(fake.oauth1())));
    let running = run(&first, &intake);
    until_health(&first, true).await;
    running.stop().await;
    // Written while no process runs, to an account nobody had mentioned before: new.
    fake.mention(CUSTOMER, "still there?");
    let again = channel(config(&fake, oauth1(fake.oauth1())));
    let running = run(&again, &intake);
    let stored = intake.wait_for(1).await;
    running.stop().await;
    assert_eq!(texts(&stored), ["still there?"]);
    assert!(fake.rate_limited() >= 1, "the second start met the limit");
}

#[tokio::test]
async fn a_duplicate_and_an_unsummoned_reply_fail_for_good_with_xs_reason() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let (x, mention) = with_stored_mention(&fake, "hi").await;
    let stored = [mention];

    assert!(matches!(
        x.deliver(&reply_to(&stored[0], "Hello!", 6)).await,
        DeliveryOutcome::Sent { .. }
    ));
    let again = x.deliver(&reply_to(&stored[0], "Hello!", 7)).await;
    assert_eq!(
        again,
        DeliveryOutcome::Permanent(
            "You are not allowed to create a Tweet with duplicate content.".into()
        )
    );
    // A retry of a reply X took before the process that sent it died unrecorded: X's
    // duplicate rule says it is out, so it is sent, not failed.
    let mut retried = reply_to(&stored[0], "Hello!", 6);
    retried.attempt = 2;
    assert!(matches!(
        x.deliver(&retried).await,
        DeliveryOutcome::Sent { .. }
    ));
    assert_eq!(fake.posted().len(), 1);
    // The same answer to another customer is another post: each opens with its handle.
    fake.customer("2244994946", "sam");
    fake.mention("2244994946", "hi");
    let intake = MemoryIntake::default();
    let running = run(&x, &intake);
    // (This channel imports what X lists: Li Wei's mention again, and Sam's.)
    let listed = intake.wait_for(2).await;
    running.stop().await;
    let sams = listed
        .iter()
        .find(|m| m.sender.external_id == "2244994946")
        .expect("Sam's mention");
    let to_sam = x.deliver(&reply_to(sams, "Hello!", 9)).await;
    assert!(matches!(to_sam, DeliveryOutcome::Sent { .. }), "{to_sam:?}");
    let texts: Vec<String> = fake.posted().into_iter().map(|p| p.text).collect();
    assert_eq!(texts, ["@liwei Hello!", "@sam Hello!"]);

    // A post that did not mention the account cannot be answered.
    let unrelated = fake.post_as(CUSTOMER, "just a post", None);
    let mut out = reply_to(&stored[0], "Can we help?", 8);
    out.reply_to = Some(format!("post:{unrelated}"));
    let refused = x.deliver(&out).await;
    assert!(
        matches!(refused, DeliveryOutcome::Permanent(ref why) if why.contains("not been mentioned")),
        "{refused:?}"
    );
    // And with no post to answer at all, the channel says so without asking X.
    out.reply_to = None;
    let refused = x.deliver(&out).await;
    assert!(
        matches!(refused, DeliveryOutcome::Permanent(ref why) if why.contains("only to posts that mention it")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_public_reply_never_carries_account_details_and_keeps_one_cashtag() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let (x, mention) = with_stored_mention(&fake, "which coins?").await;
    let stored = [mention];

    let refused = x
        .deliver(&reply_to(
            &stored[0],
            "We wrote to you at li.wei@example.com",
            9,
        ))
        .await;
    assert!(
        matches!(refused, DeliveryOutcome::Permanent(ref why) if why.contains("email")),
        "{refused:?}"
    );
    assert!(fake.posted().is_empty());

    let sent = x
        .deliver(&reply_to(&stored[0], "We support $BTC and $ETH.", 10))
        .await;
    assert!(matches!(sent, DeliveryOutcome::Sent { .. }), "{sent:?}");
    assert_eq!(fake.posted()[0].text, "@liwei We support $BTC and ETH.");

    // The desk's own address, which its answers quote, is not an account detail.
    let mut settings = config(&fake, oauth1(fake.oauth1()));
    settings.published = vec!["Support@Example.com".into()];
    let desk = channel(settings);
    let ours = desk
        .deliver(&reply_to(&stored[0], "Write to support@example.com", 11))
        .await;
    assert!(matches!(ours, DeliveryOutcome::Sent { .. }), "{ours:?}");
}

/// A refresh token kept in memory, as the store keeps it in production.
#[derive(Debug, Default)]
struct Kept(Mutex<Option<String>>);

#[async_trait::async_trait]
impl TokenKeeper for Kept {
    async fn load(&self) -> Result<Option<String>, String> {
        Ok(self.0.lock().unwrap().clone())
    }
    async fn save(&self, refresh_token: &str) -> Result<(), String> {
        *self.0.lock().unwrap() = Some(refresh_token.to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn oauth2_refresh_tokens_rotate_and_the_new_one_survives_a_restart() {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let configured = fake.refresh_token().unwrap();
    let auth = Auth::OAuth2 {
        client_id: CLIENT_ID.into(),
        client_secret: None,
        refresh_token: configured.clone().into(),
    };
    let kept = Arc::new(Kept::default());
    let start = |kept: &Arc<Kept>| {
        let settings = config(&fake, auth.clone());
        Arc::new(XChannel::new(settings, Arc::new(Emails), Some(kept.clone())).unwrap())
    };
    let intake = MemoryIntake::default();
    let x = start(&kept);
    let running = run(&x, &intake);
    until_health(&x, true).await;
    fake.dm(CUSTOMER, "hello over OAuth 2.0");
    intake.wait_for(1).await;
    running.stop().await;
    let rotated = kept
        .0
        .lock()
        .unwrap()
        .clone()
        .expect("the new refresh token is kept");
    assert_ne!(rotated, configured);

    // The configured token no longer works; the kept one does.
    let x = start(&kept);
    let running = run(&x, &intake);
    until_health(&x, true).await;
    running.stop().await;
}
