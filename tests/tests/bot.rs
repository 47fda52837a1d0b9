//! The bot in conversations: it answers what it is sure of, asks when it is not, hands
//! off when it should, and says nothing once a person has the conversation.

use frontdesk_core::{Channel, ChannelAccount, ChannelKind, Inbound, Sender, Status};
use frontdesk_e2e::TestApp;
use frontdesk_store::testing::TestDatabase;
use frontdesk_store::{ConversationQuery, Store};
use frontdesk_testkit::MemoryChannel;
use std::sync::Arc;
use std::time::Duration;

struct Chat {
    app: TestApp,
    channel: MemoryChannel,
    sent: usize,
}

impl Chat {
    async fn start(db: &TestDatabase) -> Chat {
        let channel = MemoryChannel::new(ChannelAccount::default_of(ChannelKind::Telegram));
        let app =
            TestApp::start_with_bot(db.url(), &[Arc::new(channel.clone()) as Arc<dyn Channel>])
                .await;
        Chat {
            app,
            channel,
            sent: 0,
        }
    }

    fn customer_says(&mut self, text: &str) {
        self.sent += 1;
        let sender = Sender {
            external_id: "user-9".into(),
            display_name: None,
            language: None,
        };
        let account = ChannelAccount::default_of(ChannelKind::Telegram);
        let id = format!("m{}", self.sent);
        self.channel
            .customer_sends(Inbound::new(account, id, sender, "chat-9", text).unwrap());
    }

    /// The texts the customer has received so far, once there are at least `n`.
    async fn replies(&self, n: usize) -> Vec<String> {
        self.channel
            .wait_for_attempts(n, Duration::from_secs(15))
            .await;
        self.channel.received()
    }

    async fn status(&self) -> Status {
        let page = self
            .app
            .store
            .list_conversations(&ConversationQuery::default())
            .await
            .unwrap();
        page.items[0].status
    }
}

frontdesk_e2e::on_every_backend!(
    a_faq_question_is_answered_in_the_customers_language_and_the_bot_stays,
    asking_for_a_person_hands_off_and_the_bot_then_stays_silent,
    two_questions_the_bot_cannot_answer_bring_a_person,
    the_same_message_twice_brings_a_person,
);

async fn a_faq_question_is_answered_in_the_customers_language_and_the_bot_stays(db: TestDatabase) {
    let mut chat = Chat::start(&db).await;
    chat.customer_says("转账一直pending怎么办");
    let replies = chat.replies(1).await;
    assert!(
        replies[0].contains("人工"),
        "the answer says how to reach a person: {}",
        replies[0]
    );
    assert!(
        replies[0]
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    );
    assert_eq!(chat.status().await, Status::Bot);
    chat.app.stop().await;
}

async fn asking_for_a_person_hands_off_and_the_bot_then_stays_silent(db: TestDatabase) {
    let mut chat = Chat::start(&db).await;
    chat.customer_says("转人工");
    let replies = chat.replies(1).await;
    assert_eq!(replies.len(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while chat.status().await != Status::Open {
        assert!(tokio::time::Instant::now() < deadline, "not handed off");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    chat.customer_says("在吗？我的转账一直没到");
    chat.customer_says("how do I reset my password");
    // Give the bot every chance to speak; it must not.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let store: &dyn Store = &*chat.app.store;
    let conversation = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap()
        .items[0]
        .clone();
    assert_eq!(
        store
            .messages(conversation.id, None, 0)
            .await
            .unwrap()
            .len(),
        4,
        "three from the customer, one from the bot"
    );
    assert_eq!(chat.channel.received().len(), 1);
    chat.app.stop().await;
}

async fn two_questions_the_bot_cannot_answer_bring_a_person(db: TestDatabase) {
    let mut chat = Chat::start(&db).await;
    chat.customer_says("明天北京天气怎么样");
    let first = chat.replies(1).await;
    assert!(first[0].contains("抱歉"), "it asks: {}", first[0]);
    // The two likeliest topics go along as buttons, for channels that have them.
    let asked = &chat.channel.attempts()[0].outbound;
    assert_eq!(asked.quick_replies.len(), 2, "{asked:?}");
    assert!(first[0].contains(&asked.quick_replies[0]));
    assert_eq!(chat.status().await, Status::Bot);
    chat.customer_says("给我讲个笑话吧");
    let second = chat.replies(2).await;
    assert!(
        second[1].contains("人工客服"),
        "it hands off: {}",
        second[1]
    );
    assert_eq!(chat.status().await, Status::Open);
    chat.app.stop().await;
}

async fn the_same_message_twice_brings_a_person(db: TestDatabase) {
    let mut chat = Chat::start(&db).await;
    chat.customer_says("how do I reset my password");
    chat.replies(1).await;
    chat.customer_says("How do I reset my password?");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while chat.status().await != Status::Open {
        assert!(tokio::time::Instant::now() < deadline, "not handed off");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let replies = chat.replies(2).await;
    assert!(
        replies[1].contains("a person will reply here"),
        "{replies:?}"
    );
    chat.app.stop().await;
}
