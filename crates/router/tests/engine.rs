//! The conversation engine end to end: a real store on both backends, the shipped
//! knowledge base, and a manual clock that walks the store and the engine through
//! days and weeks together. One test runs the engine's own timer on paused tokio time.

use frontdesk_core::{
    AgentId, AgentStatus, Author, ChannelAccount, ChannelKind, Clock, ConversationId, EventKind,
    Inbound, IngestOutcome, Intake, ManualClock, MessageKind, Priority, Role, Sender, Status,
    Timestamp,
};
use frontdesk_faq::{Engine, EngineOptions, KnowledgeBase, Lang};
use frontdesk_router::hours::HoursConfig;
use frontdesk_router::{
    Bot, BotConfig, BusinessHours, CodeMailer, ConversationEngine, EngineConfig, Escalation,
    HandOff, Metrics, Outcome, Pipeline, SlaState, Transfer, VerificationStep,
};
use frontdesk_store::testing::TestDatabase;
use frontdesk_store::{
    AgentProfile, NewAgent, NewReply, Store, StoreOptions, Sweep, VerificationState,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod elsewhere;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// An instant given as Shanghai local time, `2026-11-23T10:00` (a Monday).
fn shanghai(local: &str) -> Timestamp {
    format!("{local}[Asia/Shanghai]")
        .parse::<jiff::Zoned>()
        .expect("a local time")
        .timestamp()
        .into()
}

/// The shipped knowledge base, trained once for the whole test binary.
fn bot() -> Arc<Bot> {
    static BOT: OnceLock<Arc<Bot>> = OnceLock::new();
    BOT.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/faq.toml");
        let kb = KnowledgeBase::load(std::path::Path::new(path)).expect("the shipped KB");
        let engine = Engine::from_kb(kb, EngineOptions::default());
        Arc::new(Bot::new(Arc::new(engine), BotConfig::default()))
    })
    .clone()
}

/// Codes "sent" by email. The email channel is not built yet; the engine reaches it
/// through [`CodeMailer`], and this one keeps what it was given.
#[derive(Debug, Default)]
struct Mailbox(Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl CodeMailer for Mailbox {
    async fn send(&self, to: &str, _subject: &str, body: &str) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .push((to.to_owned(), body.to_owned()));
        Ok(())
    }
}

impl Mailbox {
    /// The 6-digit code in the last mail to `to`.
    fn last_code(&self, to: &str) -> String {
        let mails = self.0.lock().unwrap();
        let (_, body) = mails.iter().rev().find(|(t, _)| t == to).expect("a mail");
        frontdesk_router::verify::find_code(body).expect("a code in the mail")
    }
}

/// A desk: store, engine and intake on one manual clock.
struct Desk {
    store: Arc<dyn Store>,
    engine: Arc<ConversationEngine>,
    intake: Pipeline,
    clock: ManualClock,
    metrics: Metrics,
    mailbox: Arc<Mailbox>,
    next_id: AtomicUsize,
    _db: TestDatabase,
}

impl Desk {
    async fn open(
        db: TestDatabase,
        start: Timestamp,
        adjust: impl FnOnce(&mut EngineConfig),
    ) -> Desk {
        let clock = ManualClock::at(start);
        let options = StoreOptions {
            clock: Arc::new(clock.clone()),
            ..StoreOptions::default()
        };
        let store: Arc<dyn Store> = Arc::new(db.store_with(options).await.expect("store"));
        let metrics = Metrics::new();
        let mut config = EngineConfig::default();
        adjust(&mut config);
        let mailbox = Arc::new(Mailbox::default());
        let engine = Arc::new(
            ConversationEngine::new(
                store.clone(),
                Arc::new(clock.clone()),
                metrics.clone(),
                config,
            )
            .with_bot(bot())
            .with_mailer(mailbox.clone()),
        );
        let intake = Pipeline::new(store.clone(), metrics.clone()).with_engine(engine.clone());
        Desk {
            store,
            engine,
            intake,
            clock,
            metrics,
            mailbox,
            next_id: AtomicUsize::new(1),
            _db: db,
        }
    }

    /// `who` writes `text` on `channel`; returns the conversation it landed in.
    async fn writes_on(&self, channel: ChannelKind, who: &str, text: &str) -> ConversationId {
        self.arrives(channel, who, who.to_owned(), text).await
    }

    /// `who` posts `text` in a thread everybody can read (a mention on X).
    async fn posts_in_public(&self, who: &str, text: &str) -> ConversationId {
        let n = self.next_id.load(Ordering::SeqCst);
        let thread = format!("{}{n}:{who}", frontdesk_core::envelope::PUBLIC_THREAD);
        self.arrives(ChannelKind::X, who, thread, text).await
    }

    /// A message from `who` in `thread` on `channel`, through the intake.
    async fn arrives(
        &self,
        channel: ChannelKind,
        who: &str,
        thread: String,
        text: &str,
    ) -> ConversationId {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let sender = Sender {
            external_id: who.into(),
            display_name: None,
            language: None,
        };
        let inbound = Inbound::new(
            ChannelAccount::default_of(channel),
            format!("m-{n}"),
            sender,
            thread,
            text,
        )
        .unwrap();
        match self.intake.ingest(inbound, None).await.unwrap() {
            IngestOutcome::Stored {
                conversation_id, ..
            } => conversation_id,
            IngestOutcome::Duplicate => panic!("a new message was taken for a duplicate"),
        }
    }

    /// A message from `who` on the website chat stored as a process that then died
    /// would leave it: the engine never saw it.
    async fn stored_unseen(&self, who: &str, external_id: &str, text: &str) -> IngestOutcome {
        let sender = Sender {
            external_id: who.into(),
            display_name: None,
            language: None,
        };
        let inbound = Inbound::new(
            ChannelAccount::default_of(ChannelKind::Webchat),
            external_id,
            sender,
            who,
            text,
        )
        .unwrap();
        self.store.ingest(&inbound, None).await.unwrap()
    }

    async fn writes(&self, who: &str, text: &str) -> ConversationId {
        self.writes_on(ChannelKind::Webchat, who, text).await
    }

    /// What the bot and the engine said to the customer in a conversation, in order.
    async fn said(&self, id: ConversationId) -> Vec<String> {
        self.store
            .messages(id, None, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.author == Author::Bot && m.kind == MessageKind::Text)
            .map(|m| m.text)
            .collect()
    }

    async fn last_said(&self, id: ConversationId) -> String {
        self.said(id).await.pop().unwrap_or_default()
    }

    /// The history lines agents see (assignments, escalations, returns).
    async fn history(&self, id: ConversationId) -> Vec<String> {
        self.store
            .messages(id, None, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.kind == MessageKind::Event)
            .map(|m| m.text)
            .collect()
    }

    async fn agent(&self, name: &str, teams: &[&str], capacity: u32, tier: u8) -> AgentId {
        let agent = self
            .store
            .add_agent(NewAgent {
                email: format!("{name}@desk.example"),
                name: name.into(),
                role: Role::Agent,
                password_hash: "not used here".into(),
            })
            .await
            .unwrap();
        let profile = AgentProfile {
            teams: teams.iter().map(|t| t.to_string()).collect(),
            capacity,
            tier,
        };
        self.store
            .set_agent_profile(agent.id, &profile)
            .await
            .unwrap();
        agent.id
    }

    async fn online(&self, agent: AgentId) {
        self.engine
            .set_agent_status(agent, AgentStatus::Online)
            .await
            .unwrap();
    }

    async fn agent_replies(&self, id: ConversationId, agent: AgentId, text: &str) {
        self.store
            .reply(NewReply::from_agent(id, agent, text, false))
            .await
            .unwrap();
    }

    async fn conversation(&self, id: ConversationId) -> frontdesk_core::Conversation {
        self.store.conversation(id).await.unwrap().unwrap()
    }

    /// Moves the clock and runs the engine's timers once.
    async fn later(&self, by: Duration) {
        self.clock.advance(by);
        self.engine.tick().await.unwrap();
    }
}

/// One test per backend; the PostgreSQL half runs when scripts/test provides a server.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::TestDatabase::sqlite()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = super::TestDatabase::postgres().await {
                        super::$name(db).await;
                    }
                }
            )+
        }
    };
}

on_both_backends!(
    a_week_of_customers_is_told_honestly_when_people_are_back,
    the_queue_serves_urgent_first_and_estimates_the_wait_from_recent_replies,
    assignment_is_round_robin_among_online_agents_with_room,
    an_agent_away_too_long_gives_their_conversations_back,
    escalation_goes_to_tier_two_or_the_supervisors_with_its_reason_in_the_history,
    a_transfer_moves_the_conversation_with_its_reason,
    pending_conversations_wake_on_a_reply_and_resolve_themselves_after_silent_days,
    a_snoozed_conversation_comes_back_when_its_time_comes,
    a_reply_within_the_window_reopens_and_after_it_starts_a_new_conversation,
    ratings_in_chinese_and_english_are_understood_and_asked_for_once,
    a_verified_email_joins_the_customers_contacts_across_channels,
    an_address_someone_merely_wrote_from_moves_to_the_customer_who_proves_it,
    a_verification_asks_for_the_address_once_then_lets_it_drop,
    a_customer_answering_a_verification_while_pending_is_heard,
    codes_are_limited_per_conversation_and_hour,
    two_timers_at_once_resolve_a_silent_conversation_once,
    two_assigners_at_once_never_overfill_an_agent,
    a_message_the_engine_missed_in_a_resolved_conversation_reopens_it,
    a_question_stored_just_before_a_crash_is_answered_once_by_the_timers,
    a_second_message_stored_before_the_bot_answers_the_first_is_no_repeat,
    a_comment_just_after_the_rating_is_kept_with_it,
    verification_codes_expire_and_allow_five_tries,
    the_bot_asks_for_a_verified_email_before_account_talk,
    nobody_is_asked_for_an_email_address_where_the_public_reads_along,
    the_reply_to_a_verification_does_not_tell_whether_an_address_is_known,
    sla_breaches_are_recorded_once_and_due_soon_is_flagged_before,
    the_report_gives_each_agent_and_team_their_figures,
    a_secret_makes_the_conversation_urgent_for_the_security_team,
    the_bot_says_nothing_after_a_handoff_but_its_one_notice,
);

fn weekday_hours(config: &mut EngineConfig) {
    let hours = HoursConfig {
        timezone: Some("Asia/Shanghai".into()),
        hours: ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|d| (d.to_string(), "09:00-18:00".to_string()))
            .collect(),
        holidays: vec!["2026-11-25".into()],
    };
    config.hours.insert(
        "general".into(),
        BusinessHours::from_config(&hours).unwrap(),
    );
}

async fn a_week_of_customers_is_told_honestly_when_people_are_back(db: TestDatabase) {
    // Monday 23 November 2026, 10:00 in Shanghai; Wednesday the 25th is a holiday.
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), weekday_hours).await;

    let a = desk.writes("ann", "转人工").await;
    let monday = desk.last_said(a).await;
    assert!(
        monday.contains("您是下一位"),
        "open hours: the queue: {monday}"
    );
    assert!(!monday.contains("非工作时间"), "{monday}");

    desk.clock.set(shanghai("2026-11-23T19:30"));
    let b = desk.writes("bo", "我要人工").await;
    let evening = desk.last_said(b).await;
    assert!(evening.contains("非工作时间"), "{evening}");
    assert!(
        evening.contains("11月24日（周二）09:00"),
        "back Tuesday at nine: {evening}"
    );

    desk.clock.set(shanghai("2026-11-25T11:00"));
    let c = desk.writes("cy", "human").await;
    let holiday = desk.last_said(c).await;
    assert!(holiday.contains("away right now"), "in English: {holiday}");
    assert!(
        holiday.contains("Thursday 26 November at 09:00"),
        "the holiday is skipped: {holiday}"
    );

    desk.clock.set(shanghai("2026-11-28T15:00"));
    let d = desk.writes("di", "human please").await;
    let saturday = desk.last_said(d).await;
    assert!(
        saturday.contains("Monday 30 November at 09:00"),
        "{saturday}"
    );

    // Monday again: open; four customers are waiting before this one.
    desk.clock.set(shanghai("2026-11-30T10:00"));
    let e = desk.writes("ed", "human").await;
    let thursday = desk.last_said(e).await;
    assert!(thursday.contains("number 5 in the queue"), "{thursday}");
    for id in [a, b, c, d, e] {
        assert_eq!(desk.conversation(id).await.status, Status::Open);
        assert_eq!(desk.said(id).await.len(), 1, "one handoff message each");
    }
}

async fn the_queue_serves_urgent_first_and_estimates_the_wait_from_recent_replies(
    db: TestDatabase,
) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    // Last week's replies: 4 and 6 minutes after the handoff.
    let agent = desk.agent("amy", &["general"], 1, 1).await;
    desk.online(agent).await;
    for (who, wait) in [("p1", 4), ("p2", 6)] {
        let id = desk.writes(who, "转人工").await;
        assert_eq!(desk.conversation(id).await.assignee, Some(agent));
        desk.clock.advance(MINUTE * wait);
        desk.agent_replies(id, agent, "您好").await;
        desk.engine.resolve(id, "done").await.unwrap();
    }
    desk.engine
        .set_agent_status(agent, AgentStatus::Away)
        .await
        .unwrap();

    let first = desk.writes("n1", "human").await;
    desk.clock.advance(MINUTE);
    let second = desk.writes("n2", "human").await;
    let said = desk.last_said(second).await;
    // The typical wait (the median of 4 and 6 minutes, nearest rank: 4) times the rounds
    // before this customer's turn with one agent: 2.
    assert!(
        said.contains("number 2 in the queue; the wait is about 8 minutes"),
        "{said}"
    );
    desk.clock.advance(MINUTE);
    let urgent = desk.writes("n3", "human").await;
    desk.engine
        .hand_off(
            urgent,
            &HandOff {
                reason: "stolen funds".into(),
                priority: Priority::Urgent,
                team: None,
                lang: Lang::En,
                quiet: true,
            },
            None,
        )
        .await
        .unwrap();
    let queue: Vec<ConversationId> = desk
        .store
        .sweep(Sweep::Queue, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(queue, [urgent, first, second], "urgent first, then by age");
}

async fn assignment_is_round_robin_among_online_agents_with_room(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let a = desk.agent("a", &["general"], 2, 1).await;
    let b = desk.agent("b", &["general"], 2, 1).await;
    let c = desk.agent("c", &["general"], 2, 1).await;
    let offline = desk.agent("d", &["general"], 2, 1).await;
    let elsewhere = desk.agent("e", &["payments"], 9, 1).await;
    for agent in [a, b, c, elsewhere] {
        desk.online(agent).await;
    }
    let mut conversations = Vec::new();
    for n in 0..7 {
        conversations.push(desk.writes(&format!("customer-{n}"), "转人工").await);
        desk.clock.advance(MINUTE);
    }
    let mut assignees = Vec::new();
    for id in &conversations {
        assignees.push(desk.conversation(*id).await.assignee);
    }
    assert_eq!(
        assignees,
        [Some(a), Some(b), Some(c), Some(a), Some(b), Some(c), None],
        "in turn, up to each agent's capacity of two"
    );
    assert!(!assignees.contains(&Some(offline)) && !assignees.contains(&Some(elsewhere)));
    assert!(
        desk.last_said(conversations[6])
            .await
            .contains("您是下一位")
    );

    // a stops: both of a's conversations go back, and wait for room.
    desk.engine
        .set_agent_status(a, AgentStatus::Offline)
        .await
        .unwrap();
    let queued = desk.store.sweep(Sweep::Queue, 10).await.unwrap();
    assert_eq!(queued.len(), 3);
    assert!(desk.history(conversations[0]).await[0].contains("went offline"));
    // b resolves one: the longest waiting goes to b.
    desk.engine
        .resolve(conversations[1], "solved")
        .await
        .unwrap();
    desk.later(MINUTE).await;
    assert_eq!(desk.conversation(conversations[0]).await.assignee, Some(b));
    // d comes online and takes the other two.
    desk.online(offline).await;
    assert_eq!(
        desk.conversation(conversations[3]).await.assignee,
        Some(offline)
    );
    assert_eq!(
        desk.conversation(conversations[6]).await.assignee,
        Some(offline)
    );
}

async fn an_agent_away_too_long_gives_their_conversations_back(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |c| {
        c.away_timeout = 15 * MINUTE
    })
    .await;
    let amy = desk.agent("amy", &["general"], 5, 1).await;
    desk.online(amy).await;
    let id = desk.writes("ann", "转人工").await;
    assert_eq!(desk.conversation(id).await.assignee, Some(amy));
    desk.engine
        .set_agent_status(amy, AgentStatus::Away)
        .await
        .unwrap();
    desk.later(10 * MINUTE).await;
    assert_eq!(
        desk.conversation(id).await.assignee,
        Some(amy),
        "a short break keeps them"
    );
    desk.later(6 * MINUTE).await;
    assert_eq!(desk.conversation(id).await.assignee, None);
    assert!(
        desk.history(id)
            .await
            .iter()
            .any(|h| h.contains("away too long"))
    );
}

async fn escalation_goes_to_tier_two_or_the_supervisors_with_its_reason_in_the_history(
    db: TestDatabase,
) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let first_line = desk.agent("fay", &["general"], 5, 1).await;
    let senior = desk.agent("sam", &["general"], 5, 2).await;
    let manager = desk.agent("max", &["supervisors"], 5, 1).await;
    desk.online(first_line).await;
    let id = desk.writes("ann", "转人工").await;
    assert_eq!(desk.conversation(id).await.assignee, Some(first_line));
    desk.online(senior).await;

    let c = desk
        .engine
        .escalate(
            id,
            Escalation::Tier2,
            "refund over the agent's limit",
            Some(first_line),
        )
        .await
        .unwrap();
    assert_eq!(
        (c.tier, c.priority, c.assignee),
        (2, Priority::High, Some(senior))
    );
    let history = desk.history(id).await;
    assert!(
        history
            .iter()
            .any(|h| h.contains("tier 2") && h.contains("refund over the agent's limit")),
        "{history:?}"
    );

    let c = desk
        .engine
        .escalate(
            id,
            Escalation::Supervisor,
            "the customer asks for a manager",
            Some(senior),
        )
        .await
        .unwrap();
    assert_eq!((c.team.as_deref(), c.assignee), (Some("supervisors"), None));
    desk.online(manager).await;
    assert_eq!(desk.conversation(id).await.assignee, Some(manager));
    assert!(
        desk.history(id)
            .await
            .iter()
            .any(|h| h.contains("asks for a manager"))
    );
    assert!(
        desk.engine
            .escalate(id, Escalation::Tier2, "  ", None)
            .await
            .is_err(),
        "a reason is required"
    );
}

async fn a_transfer_moves_the_conversation_with_its_reason(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let general = desk.agent("gus", &["general"], 5, 1).await;
    let payments = desk.agent("pat", &["payments"], 5, 1).await;
    let other = desk.agent("oli", &["general"], 5, 1).await;
    desk.online(general).await;
    let id = desk.writes("ann", "转人工").await;
    desk.engine
        .transfer(id, &Transfer::Agent(other), "speaks Cantonese")
        .await
        .unwrap();
    assert_eq!(desk.conversation(id).await.assignee, Some(other));
    desk.online(payments).await;
    let c = desk
        .engine
        .transfer(id, &Transfer::Team("payments".into()), "a deposit question")
        .await
        .unwrap();
    assert_eq!(
        (c.team.as_deref(), c.assignee),
        (Some("payments"), Some(payments))
    );
    let history = desk.history(id).await;
    assert!(
        history.iter().any(|h| h.contains("speaks Cantonese")),
        "{history:?}"
    );
    assert!(
        history.iter().any(|h| h.contains("a deposit question")),
        "{history:?}"
    );
}

async fn pending_conversations_wake_on_a_reply_and_resolve_themselves_after_silent_days(
    db: TestDatabase,
) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |c| {
        c.pending_resolve_after = 3 * DAY;
    })
    .await;
    let amy = desk.agent("amy", &["general"], 5, 1).await;
    desk.online(amy).await;
    let id = desk.writes("ann", "转人工").await;
    desk.agent_replies(id, amy, "请提供交易哈希").await;
    desk.engine.set_pending(id).await.unwrap();
    desk.later(HOUR).await;
    assert_eq!(desk.writes("ann", "好的，稍等").await, id);
    assert_eq!(
        desk.conversation(id).await.status,
        Status::Open,
        "the reply wakes it"
    );
    // Amy leaves while it waits again; the customer's reply finds someone else.
    let bea = desk.agent("bea", &["general"], 5, 1).await;
    desk.online(bea).await;
    desk.engine.set_pending(id).await.unwrap();
    desk.engine
        .set_agent_status(amy, AgentStatus::Offline)
        .await
        .unwrap();
    assert_eq!(
        desk.conversation(id).await.assignee,
        Some(amy),
        "pending stays"
    );
    desk.writes("ann", "哈希是 0xabc").await;
    assert_eq!(
        desk.conversation(id).await.assignee,
        Some(bea),
        "not left with nobody"
    );

    desk.engine.set_pending(id).await.unwrap();
    desk.later(2 * DAY).await;
    assert_eq!(desk.conversation(id).await.status, Status::Pending);
    desk.later(DAY + MINUTE).await;
    let c = desk.conversation(id).await;
    assert_eq!(c.status, Status::Resolved);
    let said = desk.said(id).await;
    assert!(
        said.iter().any(|s| s.contains("3 天内没有收到您的回复")),
        "{said:?}"
    );
    assert!(
        said.last().unwrap().contains("1") && said.last().unwrap().contains("5"),
        "then the survey"
    );
}

async fn a_snoozed_conversation_comes_back_when_its_time_comes(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let id = desk.writes("ann", "转人工").await;
    let until = desk.clock.now().plus(2 * HOUR);
    let c = desk.engine.snooze(id, until).await.unwrap();
    assert_eq!((c.status, c.snoozed_until), (Status::Snoozed, Some(until)));
    desk.later(HOUR).await;
    assert_eq!(desk.conversation(id).await.status, Status::Snoozed);
    desk.later(HOUR).await;
    let c = desk.conversation(id).await;
    assert_eq!((c.status, c.snoozed_until), (Status::Open, None));
    assert!(
        desk.engine.snooze(id, desk.clock.now()).await.is_err(),
        "not into the past"
    );
}

async fn a_reply_within_the_window_reopens_and_after_it_starts_a_new_conversation(
    db: TestDatabase,
) {
    // The store's reopen window is 7 days by default.
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let amy = desk.agent("amy", &["general"], 5, 1).await;
    desk.online(amy).await;
    let id = desk.writes("ann", "转人工").await;
    desk.agent_replies(id, amy, "已处理").await;
    desk.engine.resolve(id, "done").await.unwrap();

    // Five days on: past the first resolution target (72 hours), within the window.
    desk.later(5 * DAY).await;
    assert_eq!(desk.writes("ann", "还有一个问题，提现没到账").await, id);
    let c = desk.conversation(id).await;
    assert_eq!(
        (c.status, c.reopened, c.assignee),
        (Status::Open, 1, Some(amy))
    );
    // A new resolution target from now; the old one does not count against it.
    assert_eq!(c.resolution_due, Some(desk.clock.now().plus(72 * HOUR)));
    desk.later(MINUTE).await;
    let c = desk.conversation(id).await;
    assert!(!c.resolution_breached);
    assert_eq!(desk.engine.sla_state(&c), SlaState::OnTrack);

    desk.engine.resolve(id, "done again").await.unwrap();
    desk.later(8 * DAY).await;
    let new = desk.writes("ann", "你好").await;
    assert_ne!(new, id, "after the window, a new conversation");
    assert_eq!(desk.conversation(id).await.status, Status::Resolved);
}

async fn ratings_in_chinese_and_english_are_understood_and_asked_for_once(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let amy = desk.agent("amy", &["general"], 50, 1).await;
    desk.online(amy).await;
    // (customer, first message, their answer to the survey, score, comment)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Option<u8>,
        Option<&'static str>,
    );
    let cases: &[Case] = &[
        ("zh-1", "转人工", "5", Some(5), None),
        (
            "zh-2",
            "转人工",
            "五星，回复很快",
            Some(5),
            Some("回复很快"),
        ),
        ("zh-3", "转人工", "非常满意", Some(5), None),
        (
            "zh-4",
            "转人工",
            "不满意，等太久了",
            Some(2),
            Some("等太久了"),
        ),
        ("en-1", "human", "great, thanks!", Some(5), Some("thanks!")),
        ("en-2", "human", "⭐⭐⭐⭐", Some(4), None),
        ("en-3", "human", "my withdrawal is stuck again", None, None),
    ];
    for &(who, first, answer, score, comment) in cases {
        let id = desk.writes(who, first).await;
        desk.agent_replies(id, amy, "ok").await;
        desk.engine.resolve(id, "done").await.unwrap();
        let question = desk.last_said(id).await;
        match who.starts_with("zh") {
            true => assert!(question.contains("满意"), "asked in Chinese: {question}"),
            false => assert!(
                question.contains("1") && question.contains("5"),
                "{question}"
            ),
        }
        desk.writes(who, answer).await;
        let survey = desk.store.csat(id).await.unwrap().unwrap();
        assert_eq!(survey.rating, score, "{answer:?}");
        assert_eq!(survey.comment.as_deref(), comment, "{answer:?}");
        let status = desk.conversation(id).await.status;
        match score {
            Some(_) => {
                assert_eq!(survey.agent_id, Some(amy));
                assert_eq!(status, Status::Resolved, "a rating does not reopen");
            }
            None => assert_eq!(status, Status::Open, "not a rating: reopened"),
        }
        // Resolved again: never asked twice.
        let before = desk.said(id).await.len();
        desk.engine.resolve(id, "done").await.unwrap();
        assert_eq!(desk.said(id).await.len(), before, "{who}: asked twice");
    }
    let metrics = desk.metrics.render();
    assert!(
        metrics.contains("frontdesk_csat_ratings_total{team=\"general\",rating=\"5\"} 4"),
        "{metrics}"
    );
}

async fn a_verified_email_joins_the_customers_contacts_across_channels(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    // The customer wrote by email last month and proved the address theirs...
    let by_mail = desk
        .writes_on(ChannelKind::Email, "li@example.com", "我的提现没到账")
        .await;
    let mail_contact = desk.conversation(by_mail).await.contact_id;
    desk.engine
        .request_verification(by_mail, None, Some("li@example.com"))
        .await
        .unwrap();
    let code = desk.mailbox.last_code("li@example.com");
    desk.writes_on(ChannelKind::Email, "li@example.com", &code)
        .await;
    assert!(desk.last_said(by_mail).await.contains("验证成功"));
    // ...and now in the website chat, where an agent asks them to verify.
    let chat = desk.writes("visitor-9", "转人工").await;
    let chat_contact = desk.conversation(chat).await.contact_id;
    assert_ne!(mail_contact, chat_contact);
    let step = desk
        .engine
        .request_verification(chat, None, None)
        .await
        .unwrap();
    assert_eq!(step, VerificationStep::AskedForEmail);
    assert!(
        desk.last_said(chat).await.contains("邮箱"),
        "asked in their language"
    );

    desk.writes("visitor-9", "it's Li@Example.com").await;
    assert!(desk.last_said(chat).await.contains("l***@example.com"));
    let pending = desk.store.active_verification(chat).await.unwrap().unwrap();
    let code = desk.mailbox.last_code("li@example.com");
    let stored = pending.code_hash.clone().unwrap();
    assert!(
        stored.starts_with("$argon2id$") && !stored.contains(&code),
        "stored hashed"
    );

    desk.writes("visitor-9", &code).await;
    assert!(desk.last_said(chat).await.contains("verified"));
    // One customer now: the older contact keeps both identities, the address verified.
    let c = desk.conversation(chat).await;
    assert_eq!(c.contact_id, mail_contact);
    let contact = desk.store.contact(mail_contact).await.unwrap().unwrap();
    let channels: Vec<_> = contact.identities.iter().map(|i| i.channel).collect();
    assert!(channels.contains(&ChannelKind::Webchat) && channels.contains(&ChannelKind::Email));
    let email = contact
        .identities
        .iter()
        .find(|i| i.channel == ChannelKind::Email)
        .unwrap();
    assert!(email.verified_at.is_some());
    assert!(desk.store.contact(chat_contact).await.unwrap().is_none());
    let events = desk
        .store
        .events_after(frontdesk_core::EventId(0), 1000)
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::ContactsMerged));
}

async fn an_address_someone_merely_wrote_from_moves_to_the_customer_who_proves_it(
    db: TestDatabase,
) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    // A mail from this address proves nothing (a From: header is easy to forge).
    let forged = desk
        .writes_on(ChannelKind::Email, "mo@example.com", "please reset my 2FA")
        .await;
    let forger = desk.conversation(forged).await.contact_id;
    let chat = desk.writes("visitor-3", "human").await;
    let owner = desk.conversation(chat).await.contact_id;
    desk.engine
        .request_verification(chat, None, Some("mo@example.com"))
        .await
        .unwrap();
    desk.writes("visitor-3", &desk.mailbox.last_code("mo@example.com"))
        .await;
    // Not merged: the address is the verified customer's; the other contact keeps its
    // conversation and nothing of the verified customer.
    assert_eq!(desk.conversation(chat).await.contact_id, owner);
    assert_eq!(desk.conversation(forged).await.contact_id, forger);
    let verified = desk.store.contact(owner).await.unwrap().unwrap();
    assert!(
        verified
            .identities
            .iter()
            .any(|i| i.external_id == "mo@example.com" && i.verified_at.is_some())
    );
    let other = desk.store.contact(forger).await.unwrap().unwrap();
    assert!(other.identities.is_empty(), "{other:?}");
}

async fn verification_codes_expire_and_allow_five_tries(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let id = desk.writes("zoe", "human").await;
    let step = desk
        .engine
        .request_verification(id, None, Some("zoe@example.com"))
        .await
        .unwrap();
    assert_eq!(step, VerificationStep::CodeSent);
    let code = desk.mailbox.last_code("zoe@example.com");
    desk.clock.advance(11 * MINUTE);
    desk.writes("zoe", &code).await;
    assert!(desk.last_said(id).await.contains("expired"));
    let again = desk.store.active_verification(id).await.unwrap().unwrap();
    assert_eq!(
        again.state,
        VerificationState::AwaitingEmail,
        "a new code needs the address again"
    );

    desk.writes("zoe", "zoe@example.com").await;
    let code = desk.mailbox.last_code("zoe@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..5).rev() {
        let outcome = desk
            .engine
            .on_customer_message(id, frontdesk_core::MessageId(0), wrong, 0)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            Outcome::Verification(VerificationStep::WrongCode { tries_left: left })
        );
    }
    desk.writes("zoe", wrong).await;
    assert!(desk.last_said(id).await.contains("Too many wrong codes"));
    // The right code, too late: it no longer works.
    desk.writes("zoe", &code).await;
    assert!(!desk.last_said(id).await.contains("verified"));
    let contact = desk
        .store
        .contact(desk.conversation(id).await.contact_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        contact
            .identities
            .iter()
            .all(|i| i.channel != ChannelKind::Email)
    );
}

async fn nobody_is_asked_for_an_email_address_where_the_public_reads_along(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let id = desk.posts_in_public("kai", "I can't log in").await;
    let accounts = HandOff {
        reason: "login problem".into(),
        priority: Priority::Normal,
        team: Some("accounts".into()),
        lang: Lang::En,
        quiet: false,
    };
    desk.engine.hand_off(id, &accounts, None).await.unwrap();
    let notice = desk.last_said(id).await;
    assert!(notice.contains("next in the queue"), "{notice}");
    assert!(!notice.contains("email address"), "{notice}");
    assert!(desk.store.active_verification(id).await.unwrap().is_none());
}

async fn the_bot_asks_for_a_verified_email_before_account_talk(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let accounts = |lang| HandOff {
        reason: "login problem".into(),
        priority: Priority::Normal,
        team: Some("accounts".into()),
        lang,
        quiet: false,
    };
    let id = desk.writes("kai", "I can't log in").await;
    desk.engine
        .hand_off(id, &accounts(Lang::En), None)
        .await
        .unwrap();
    let notice = desk.last_said(id).await;
    assert!(notice.contains("next in the queue"), "{notice}");
    assert!(
        notice.contains("email address linked to your account"),
        "in the same message: {notice}"
    );
    desk.writes("kai", "kai@example.com").await;
    desk.writes("kai", &desk.mailbox.last_code("kai@example.com"))
        .await;
    assert!(desk.last_said(id).await.contains("verified"));

    // Verified once is enough: the next account question is not asked again.
    desk.engine.resolve(id, "done").await.unwrap();
    desk.later(8 * DAY).await;
    let next = desk.writes("kai", "still can't log in").await;
    assert_ne!(next, id);
    desk.engine
        .hand_off(next, &accounts(Lang::En), None)
        .await
        .unwrap();
    assert!(!desk.last_said(next).await.contains("email address"));
    assert!(
        desk.store
            .active_verification(next)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_verification_asks_for_the_address_once_then_lets_it_drop(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let id = desk.writes("ivy", "human").await;
    desk.engine
        .request_verification(id, None, None)
        .await
        .unwrap();
    let asked = desk.said(id).await.len();
    desk.writes("ivy", "why do you need it?").await;
    assert_eq!(desk.said(id).await.len(), asked + 1, "asked once more");
    desk.writes("ivy", "I'd rather not").await;
    desk.writes("ivy", "can someone just help me").await;
    assert_eq!(
        desk.said(id).await.len(),
        asked + 1,
        "then silent: people have it"
    );
    assert!(desk.store.active_verification(id).await.unwrap().is_none());
}

async fn a_customer_answering_a_verification_while_pending_is_heard(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let amy = desk.agent("amy", &["general"], 5, 1).await;
    desk.online(amy).await;
    let id = desk.writes("ned", "human").await;
    desk.engine
        .request_verification(id, Some(amy), None)
        .await
        .unwrap();
    desk.engine.set_pending(id).await.unwrap();
    desk.writes("ned", "ned@example.com").await;
    assert_eq!(desk.conversation(id).await.status, Status::Open);
    assert!(desk.last_said(id).await.contains("n***@example.com"));
    desk.engine.set_pending(id).await.unwrap();
    desk.writes("ned", &desk.mailbox.last_code("ned@example.com"))
        .await;
    assert!(desk.last_said(id).await.contains("verified"));
}

async fn codes_are_limited_per_conversation_and_hour(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let id = desk.writes("rex", "human").await;
    for n in 0..5 {
        let step = desk
            .engine
            .request_verification(id, None, Some(&format!("rex{n}@example.com")))
            .await
            .unwrap();
        assert_eq!(step, VerificationStep::CodeSent);
    }
    let step = desk
        .engine
        .request_verification(id, None, Some("rex9@example.com"))
        .await
        .unwrap();
    assert_eq!(step, VerificationStep::TryLater);
    assert!(desk.last_said(id).await.contains("try again in an hour"));
    desk.clock.advance(HOUR + MINUTE);
    let step = desk
        .engine
        .request_verification(id, None, Some("rex9@example.com"))
        .await
        .unwrap();
    assert_eq!(step, VerificationStep::CodeSent);
}

async fn two_timers_at_once_resolve_a_silent_conversation_once(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let amy = desk.agent("amy", &["general"], 5, 1).await;
    desk.online(amy).await;
    let id = desk.writes("uma", "转人工").await;
    desk.agent_replies(id, amy, "请提供交易哈希").await;
    desk.engine.set_pending(id).await.unwrap();
    desk.clock.advance(4 * DAY);
    // Two instances' timers fire together.
    let (a, b) = tokio::join!(desk.engine.tick(), desk.engine.tick());
    a.unwrap();
    b.unwrap();
    let said = desk.said(id).await;
    let notices = said
        .iter()
        .filter(|s| s.contains("天内没有收到您的回复"))
        .count();
    assert_eq!(notices, 1, "{said:?}");
    let surveys = said
        .iter()
        .filter(|s| s.contains("请为本次服务打分"))
        .count();
    assert_eq!(surveys, 1, "{said:?}");
}

async fn two_assigners_at_once_never_overfill_an_agent(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let mut waiting = Vec::new();
    for n in 0..4 {
        waiting.push(desk.writes(&format!("w{n}"), "转人工").await);
    }
    let amy = desk.agent("amy", &["general"], 1, 1).await;
    desk.store
        .set_agent_status(amy, AgentStatus::Online)
        .await
        .unwrap();
    let (a, b, c) = tokio::join!(
        desk.engine.assign_queue(),
        desk.engine.assign_queue(),
        desk.engine.assign_queue()
    );
    assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), 1);
    let mut held = 0;
    for id in waiting {
        held += usize::from(desk.conversation(id).await.assignee == Some(amy));
    }
    assert_eq!(held, 1, "capacity 1");
}

async fn a_message_the_engine_missed_in_a_resolved_conversation_reopens_it(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let amy = desk.agent("amy", &["general"], 5, 1).await;
    desk.online(amy).await;
    let id = desk.writes("val", "转人工").await;
    desk.agent_replies(id, amy, "好了").await;
    desk.engine.resolve(id, "done").await.unwrap();
    desk.later(HOUR).await;
    // Stored, but the engine never saw it (as if the process died right after).
    desk.stored_unseen("val", "missed-1", "还是没到账").await;
    assert_eq!(desk.conversation(id).await.status, Status::Resolved);
    desk.later(2 * MINUTE).await;
    let c = desk.conversation(id).await;
    assert_eq!((c.status, c.reopened), (Status::Open, 1));
}

async fn a_question_stored_just_before_a_crash_is_answered_once_by_the_timers(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    // Stored, but the process died before the engine's turn on it.
    let IngestOutcome::Stored {
        conversation_id: id,
        ..
    } = desk.stored_unseen("wen", "crashed-1", "怎么注册账号").await
    else {
        panic!("not stored");
    };
    // A turn this young may still be running in the process that stored it.
    desk.later(Duration::from_secs(1)).await;
    assert!(desk.said(id).await.is_empty());
    // Two instances' timers at once: one of them answers.
    desk.clock.advance(MINUTE);
    let (a, b) = tokio::join!(desk.engine.tick(), desk.engine.tick());
    a.unwrap();
    b.unwrap();
    assert_eq!(desk.said(id).await.len(), 1, "{:?}", desk.said(id).await);
    desk.later(HOUR).await;
    assert_eq!(desk.said(id).await.len(), 1, "answered once");
    // A turn the engine took at once is not taken again.
    let asked = desk.writes("xia", "怎么注册账号").await;
    let said = desk.said(asked).await;
    assert!(!said.is_empty());
    desk.later(HOUR).await;
    assert_eq!(desk.said(asked).await, said);
}

async fn a_second_message_stored_before_the_bot_answers_the_first_is_no_repeat(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    // A busy moment: both messages are stored before the engine's turn on the first.
    let first = desk.stored_unseen("mei", "busy-1", "怎么注册账号").await;
    desk.stored_unseen("mei", "busy-2", "How do I reset my password?")
        .await;
    let IngestOutcome::Stored {
        conversation_id: id,
        message_id,
        ..
    } = first
    else {
        panic!("not stored");
    };
    desk.engine
        .take_turn(id, message_id, "怎么注册账号", 0)
        .await;
    let c = desk.conversation(id).await;
    assert_eq!(c.status, Status::Bot, "taken for a repeat and handed off");
    assert_eq!(desk.said(id).await.len(), 1);
}

async fn a_comment_just_after_the_rating_is_kept_with_it(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let amy = desk.agent("amy", &["general"], 5, 1).await;
    desk.online(amy).await;
    let id = desk.writes("wes", "human").await;
    desk.agent_replies(id, amy, "done").await;
    desk.engine.resolve(id, "done").await.unwrap();
    desk.writes("wes", "5").await;
    desk.writes("wes", "quick and kind, thanks").await;
    let survey = desk.store.csat(id).await.unwrap().unwrap();
    assert_eq!(survey.rating, Some(5));
    assert_eq!(survey.comment.as_deref(), Some("quick and kind, thanks"));
    assert_eq!(desk.conversation(id).await.status, Status::Resolved);
    // The missed-message sweep does not take the comment for a new question.
    desk.later(5 * MINUTE).await;
    assert_eq!(desk.conversation(id).await.status, Status::Resolved);
    // Later words are a new matter.
    desk.later(HOUR).await;
    desk.writes("wes", "one more thing").await;
    assert_eq!(desk.conversation(id).await.status, Status::Open);
}

async fn the_reply_to_a_verification_does_not_tell_whether_an_address_is_known(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    desk.writes_on(ChannelKind::Email, "known@example.com", "hello")
        .await;
    let one = desk.writes("v1", "human").await;
    let two = desk.writes("v2", "human").await;
    desk.engine
        .request_verification(one, None, Some("known@example.com"))
        .await
        .unwrap();
    desk.engine
        .request_verification(two, None, Some("kno@example.com"))
        .await
        .unwrap();
    let (a, b) = (desk.last_said(one).await, desk.last_said(two).await);
    assert_eq!(
        a.replace("k***@example.com", "X"),
        b.replace("k***@example.com", "X")
    );
    assert_eq!(a, b, "even the masked addresses read alike");
}

async fn sla_breaches_are_recorded_once_and_due_soon_is_flagged_before(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |c| {
        c.due_soon = 10 * MINUTE
    })
    .await;
    let id = desk.writes("ann", "转人工").await;
    desk.engine
        .hand_off(
            id,
            &HandOff {
                reason: "stolen funds".into(),
                priority: Priority::Urgent,
                team: None,
                lang: Lang::Zh,
                quiet: true,
            },
            None,
        )
        .await
        .unwrap();
    // Urgent: first response within 15 minutes.
    let c = desk.conversation(id).await;
    assert_eq!(desk.engine.sla_state(&c), SlaState::OnTrack);
    desk.later(6 * MINUTE).await;
    assert_eq!(
        desk.engine.sla_state(&desk.conversation(id).await),
        SlaState::DueSoon
    );
    desk.later(10 * MINUTE).await;
    desk.later(MINUTE).await;
    let c = desk.conversation(id).await;
    assert!(c.first_response_breached);
    assert_eq!(desk.engine.sla_state(&c), SlaState::Breached);
    let events = desk
        .store
        .events_after(frontdesk_core::EventId(0), 1000)
        .await
        .unwrap();
    let breaches = events
        .iter()
        .filter(|e| e.kind == EventKind::SlaBreached)
        .count();
    assert_eq!(breaches, 1, "recorded once");
    assert!(
        desk.metrics.render().contains(
            "frontdesk_sla_breaches_total{target=\"first_response\",priority=\"urgent\"} 1"
        )
    );
}

async fn the_report_gives_each_agent_and_team_their_figures(db: TestDatabase) {
    let start = shanghai("2026-11-23T10:00");
    let desk = Desk::open(db, start, |_| {}).await;
    let amy = desk.agent("amy", &["general"], 5, 1).await;
    desk.online(amy).await;
    // The bot answers one and the customer goes quiet: a bot resolution.
    let bot_only = desk.writes("q", "转账一直pending怎么办").await;
    // Two go to amy: replies after 2 and 4 minutes, ratings 4 and 2, one reopened.
    for (who, wait, rating) in [("r1", 2, "4"), ("r2", 4, "2")] {
        let id = desk.writes(who, "转人工").await;
        desk.clock.advance(MINUTE * wait);
        desk.agent_replies(id, amy, "您好").await;
        desk.engine.resolve(id, "done").await.unwrap();
        desk.writes(who, rating).await;
        if who == "r2" {
            // Past the moments after a rating when more words are its comment.
            desk.clock.advance(HOUR);
            desk.writes(who, "又出问题了").await;
            desk.engine.resolve(id, "done").await.unwrap();
        }
    }
    desk.later(DAY + MINUTE).await;
    assert_eq!(desk.conversation(bot_only).await.status, Status::Resolved);
    let report = desk.engine.report(start, desk.clock.now()).await.unwrap();
    let mine = &report.agents[&amy];
    assert_eq!(mine.conversations, 2);
    assert_eq!(mine.first_response_p50, Some(2 * MINUTE));
    assert_eq!(mine.first_response_p90, Some(4 * MINUTE));
    assert_eq!(mine.csat_average, Some(3.0));
    assert_eq!(mine.reopen_rate, Some(0.5));
    assert_eq!(report.overall.bot_resolution_rate, Some(1.0 / 3.0));
    assert_eq!(report.teams["general"].handed_off, 2);
    // What the customers asked about: the bot's answer noted its topic.
    assert_eq!(
        report.by_intent.get("transfer_pending"),
        Some(&1),
        "{:?}",
        report.by_intent
    );
    let metrics = desk.metrics.render();
    let line =
        format!("frontdesk_figures{{scope=\"agent\",name=\"{amy}\",figure=\"csat_average\"}} 3.0");
    assert!(metrics.contains(&line), "{line} in\n{metrics}");
}

async fn a_secret_makes_the_conversation_urgent_for_the_security_team(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let id = desk.writes("ann", "你好").await;
    let outcome = desk
        .engine
        .on_customer_message(id, frontdesk_core::MessageId(0), "[redacted]", 1)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::SecretEscalated);
    let c = desk.conversation(id).await;
    assert_eq!(
        (c.status, c.priority, c.team.as_deref()),
        (Status::Open, Priority::Urgent, Some("security"))
    );
    assert!(c.first_response_due.is_some(), "urgent targets apply");
}

async fn the_bot_says_nothing_after_a_handoff_but_its_one_notice(db: TestDatabase) {
    let desk = Desk::open(db, shanghai("2026-11-23T10:00"), |_| {}).await;
    let id = desk.writes("ann", "转人工").await;
    assert_eq!(desk.said(id).await.len(), 1);
    for text in [
        "在吗",
        "转账一直pending怎么办",
        "转人工",
        "how do I back up my wallet",
    ] {
        desk.writes("ann", text).await;
    }
    desk.later(HOUR).await;
    assert_eq!(desk.said(id).await.len(), 1, "silent until resolved");
}

/// Wall time that follows the paused tokio clock of one runtime, read from any thread
/// (the store runs on another runtime).
#[derive(Debug, Clone)]
struct FollowsPausedTime {
    wall: Timestamp,
    start: tokio::time::Instant,
    runtime: tokio::runtime::Handle,
}

impl Clock for FollowsPausedTime {
    fn now(&self) -> Timestamp {
        let _paused = self.runtime.enter();
        self.wall.plus(self.start.elapsed())
    }
}

/// The engine's own timer, on paused time: a snooze ends at the first tick after its
/// time, and no later.
#[test]
fn the_engines_timer_ends_a_snooze_on_time() {
    elsewhere::on_paused_time(Duration::from_secs(60), || async {
        let clock = FollowsPausedTime {
            wall: shanghai("2026-11-23T10:00"),
            start: tokio::time::Instant::now(),
            runtime: tokio::runtime::Handle::current(),
        };
        let shared = clock.clone();
        let (store, _db) = elsewhere::ElsewhereStore::sqlite_with(move || StoreOptions {
            clock: Arc::new(shared),
            ..StoreOptions::default()
        });
        let store: Arc<dyn Store> = Arc::new(store);
        let config = EngineConfig {
            tick_every: Duration::from_secs(30),
            ..EngineConfig::default()
        };
        let engine = Arc::new(ConversationEngine::new(
            store.clone(),
            Arc::new(clock.clone()),
            Metrics::new(),
            config,
        ));
        let intake = Pipeline::new(store.clone(), Metrics::new()).with_engine(engine.clone());
        let sender = Sender {
            external_id: "ann".into(),
            display_name: None,
            language: None,
        };
        let account = ChannelAccount::default_of(ChannelKind::Webchat);
        let inbound = Inbound::new(account, "1", sender, "ann", "hi").unwrap();
        let IngestOutcome::Stored {
            conversation_id: id,
            ..
        } = intake.ingest(inbound, None).await.unwrap()
        else {
            panic!("stored")
        };
        let until = clock.now().plus(HOUR);
        engine.snooze(id, until).await.unwrap();
        // Wait on the event log, not on a timer: the engine's tick is the only timer,
        // so paused time moves exactly from one tick to the next.
        let mut events = store.subscribe();
        let stop = CancellationToken::new();
        let running = tokio::spawn(engine.clone().run(stop.clone()));
        let woke = loop {
            let event = events.recv().await.expect("the event stream");
            if event.kind == EventKind::ConversationUpdated
                && event.conversation_id == Some(id)
                && event.data["status"] == "open"
            {
                break event.created_at;
            }
        };
        stop.cancel();
        running.await.unwrap();
        assert!(woke >= until, "not before its time: {woke}");
        assert!(
            woke <= until.plus(Duration::from_secs(30)),
            "within one tick: {woke}"
        );
        assert_eq!(
            store.conversation(id).await.unwrap().unwrap().status,
            Status::Open
        );
    });
}
