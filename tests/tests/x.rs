//! The X channel end to end: `frontdesk serve` (in-process) with the real X client
//! against the fake X API v2 in the testkit, which checks every OAuth 1.0a signature.

use frontdesk::config::Config;
use frontdesk_core::{Delivery, Role};
use frontdesk_e2e::{TestApp, get, signed_in, until};
use frontdesk_store::testing::TestDatabase;
use frontdesk_testkit::x::{ACCOUNT_ID, FakeX, OAuth1Keys, weighted_length};
use std::time::Duration;

frontdesk_e2e::on_every_backend!(mentions_and_dms_arrive_once_across_a_restart);

const CUSTOMER: &str = "2244994945";
const WAIT: Duration = Duration::from_secs(20);

/// The app with the X account pointed at `fake`; the FAQ bot only with `bot`.
async fn start(
    db: &TestDatabase,
    fake: &FakeX,
    bot: bool,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    TestApp::start_with(db.url(), &[], move |c| {
        frontdesk_e2e::on_fake_x(c, fake);
        frontdesk_e2e::answering(c, bot);
        adjust(c);
    })
    .await
}

/// Waits until the channel reports itself ready on /readyz.
async fn until_receiving(app: &TestApp) {
    until("the X channel to be ready", WAIT, || async {
        app.readiness().await["channels"]["x:default"]["ok"] == true
    })
    .await;
}

/// Waits until `n` customer messages are stored; returns them.
async fn stored(app: &TestApp, n: usize) -> Vec<frontdesk_core::Message> {
    until(&format!("{n} customer messages"), WAIT, || async {
        app.inbound_messages().await.len() >= n
    })
    .await;
    app.inbound_messages().await
}

#[tokio::test]
async fn a_question_mentioned_on_x_is_answered_in_a_reply_that_invites_to_a_dm() {
    let db = TestDatabase::sqlite();
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let app = start(&db, &fake, true, |_| {}).await;
    until_receiving(&app).await;
    let mention = fake.mention(CUSTOMER, "转账一直pending怎么办");
    // The bot answers (the FAQ answer, then a request for the transaction hash); both
    // reach X.
    let conversation = {
        stored(&app, 1).await;
        app.latest_conversation().await
    };
    until("the bot's answers to be sent", WAIT, || async {
        let messages = app.store.messages(conversation, None, 100).await.unwrap();
        let out: Vec<_> = messages
            .iter()
            .filter(|m| m.direction == frontdesk_core::Direction::Out)
            .collect();
        out.len() >= 2 && out.iter().all(|m| m.delivery == Some(Delivery::Sent))
    })
    .await;
    let posts = fake.posted();
    // The long answer is a thread: its first post answers the customer's, its second
    // the first; the next message answers the customer's post again. None is over X's
    // limit as the fake counts it.
    assert!(posts.len() >= 3, "{posts:#?}");
    assert_eq!(posts[0].in_reply_to.as_deref(), Some(mention.as_str()));
    assert!(posts[0].text.ends_with(" 1/2"), "{posts:#?}");
    assert_eq!(posts[1].in_reply_to.as_deref(), Some(posts[0].id.as_str()));
    assert!(posts[1].text.ends_with(" 2/2"), "{posts:#?}");
    assert_eq!(posts[2].in_reply_to.as_deref(), Some(mention.as_str()));
    assert!(posts.iter().all(|p| weighted_length(&p.text) <= 280));
    // The bot's public answer invites to a DM, once.
    let invitations = posts
        .iter()
        .filter(|p| p.text.contains(&format!("recipient_id={ACCOUNT_ID}")))
        .count();
    assert_eq!(invitations, 1, "{posts:#?}");
    app.stop().await;
}

async fn mentions_and_dms_arrive_once_across_a_restart(db: TestDatabase) {
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let app = start(&db, &fake, false, |_| {}).await;
    until_receiving(&app).await;
    fake.mention(CUSTOMER, "mention one");
    fake.dm(CUSTOMER, "dm one");
    stored(&app, 2).await;
    app.stop().await;

    fake.mention(CUSTOMER, "mention two, while the desk restarts");
    fake.dm(CUSTOMER, "dm two, while the desk restarts");
    let app = start(&db, &fake, false, |_| {}).await;
    let messages = stored(&app, 4).await;
    // Ready again, reading on from where it stopped.
    until_receiving(&app).await;
    // A few more polls: nothing comes twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut texts: Vec<String> = app.inbound_texts().await;
    texts.sort();
    assert_eq!(
        texts,
        [
            "dm one",
            "dm two, while the desk restarts",
            "mention one",
            "mention two, while the desk restarts"
        ]
    );
    // The DMs are one conversation, the mentions another.
    let dm = messages.iter().find(|m| m.text == "dm one").unwrap();
    let dm2 = messages
        .iter()
        .find(|m| m.text.starts_with("dm two"))
        .unwrap();
    assert_eq!(dm.conversation_id, dm2.conversation_id);
    app.stop().await;
}

#[tokio::test]
async fn an_agents_reply_to_a_dm_goes_back_as_a_dm() {
    let db = TestDatabase::sqlite();
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let app = start(&db, &fake, false, |_| {}).await;
    until_receiving(&app).await;
    fake.dm(CUSTOMER, "my deposit has not arrived");
    let message = stored(&app, 1).await.remove(0);
    app.agent_replies(
        message.conversation_id.0,
        "Please send the transaction hash here.",
    )
    .await;
    until("the DM", WAIT, || async { !fake.dms_sent().is_empty() }).await;
    let sent = fake.dms_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, CUSTOMER);
    assert_eq!(sent[0].text, "Please send the transaction hash here.");
    assert!(fake.posted().is_empty(), "nothing went public");
    app.stop().await;
}

#[tokio::test]
async fn a_public_reply_with_an_email_address_fails_with_the_reason_and_is_not_posted() {
    let db = TestDatabase::sqlite();
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    fake.customer(CUSTOMER, "liwei");
    let app = start(&db, &fake, false, |_| {}).await;
    until_receiving(&app).await;
    fake.mention(CUSTOMER, "I cannot log in");
    let message = stored(&app, 1).await.remove(0);
    app.agent_replies(
        message.conversation_id.0,
        "We wrote to li.wei@example.com about it.",
    )
    .await;
    let failure = || async {
        app.store
            .messages(message.conversation_id, None, 100)
            .await
            .unwrap()
            .into_iter()
            .find_map(|m| match m.delivery {
                Some(Delivery::Failed { reason }) => Some(reason),
                _ => None,
            })
    };
    until("the reply to fail", WAIT, || async {
        failure().await.is_some()
    })
    .await;
    assert!(fake.posted().is_empty());
    let reason = failure().await.unwrap();
    assert!(reason.contains("account details (email)"), "{reason}");
    app.stop().await;
}

#[tokio::test]
async fn bad_credentials_show_on_readyz_and_the_channels_page() {
    let db = TestDatabase::sqlite();
    let fake = FakeX::start(OAuth1Keys::for_tests()).await;
    let app = start(&db, &fake, false, |c| {
        c.channels.x.access_token_secret = Some("revoked-secret".to_owned().into());
    })
    .await;
    until("the X channel to say why it fails", WAIT, || async {
        app.readiness().await["channels"]["x:default"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("401"))
    })
    .await;
    let answer = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(answer.status(), 503);
    let body = answer.text().await.unwrap();
    assert!(!body.contains("revoked-secret"), "{body}");
    let admin = signed_in(&app, "root@desk.example", Role::Admin).await;
    let (status, page) = get(&admin, &app, "/admin/channels").await;
    assert_eq!(status, 200);
    assert!(page.contains("x:default") && page.contains("401"), "{page}");
    app.stop().await;
}
