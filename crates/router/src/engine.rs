//! The conversation engine: what happens to a conversation between the bus and the
//! agents.
//!
//! - After each stored customer message ([`ConversationEngine::on_customer_message`]):
//!   a secret makes it urgent for the security team; a rating answers the satisfaction
//!   survey; a message after resolve reopens (within the store's reopen window; after
//!   it the store has already started a new conversation); pending and snoozed wake
//!   up; a verification in progress takes the message; the bot takes its turn while
//!   the conversation is with the bot.
//! - Handoff ([`ConversationEngine::hand_off`]): team, priority, SLA due times, then
//!   one notice to the customer: off hours, when people are back; else an agent at
//!   once, or the place in the queue and an estimated wait.
//! - Assignment: round-robin among online agents of the team, of the right tier, with
//!   room; manual assign, transfer, escalation (tier 2 or the supervisor team), each
//!   with a reason kept in the history.
//! - Timers ([`ConversationEngine::tick`], run by [`ConversationEngine::run`]): snoozes
//!   that end, pending conversations that resolve themselves, idle bot conversations,
//!   agents away too long, SLA breaches, the queue.

use crate::bot::{Bot, Turn};
use crate::csat;
use crate::hours::{BusinessHours, HoursConfig};
use crate::metrics::Metrics;
use crate::notices;
use crate::report::{self, Report};
use crate::verify;
use frontdesk_core::{
    AgentId, AgentStatus, Author, Clock, Conversation, ConversationId, MessageId, MessageKind,
    Priority, Status, Timestamp,
};
use frontdesk_faq::Lang;
use frontdesk_store::{
    AgentLoad, Answer, ConversationChange, NewReply, Responder, SlaTarget, Store, StoreError,
    Sweep, TurnFacts, VerificationChange, VerificationState,
};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long after a rating a further message counts as its comment.
const COMMENT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// How often the per-team and per-agent figures on /metrics are recomputed.
const REPORT_EVERY: Duration = Duration::from_secs(300);

/// Verifications (each with at most one code) a conversation may start in an hour.
const VERIFICATIONS_PER_HOUR: u32 = 5;

/// How long the bot waits for the address to verify before it lets the matter drop.
const EMAIL_WAIT: Duration = Duration::from_secs(3600);

/// First-response and resolution targets for one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTargets {
    pub first_response: Duration,
    pub resolution: Duration,
}

/// How the engine behaves. [`EngineConfig::default`] is what a small team starts with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The team that takes handoffs the knowledge base does not route elsewhere.
    pub default_team: String,
    /// Where escalations "to a manager" go.
    pub supervisor_team: String,
    /// Each team's hours; a team not listed works around the clock.
    pub hours: BTreeMap<String, BusinessHours>,
    /// Targets by priority.
    pub sla: BTreeMap<Priority, SlaTargets>,
    /// "Due soon" this long before a target.
    pub due_soon: Duration,
    /// A pending conversation with no message for this long resolves itself.
    pub pending_resolve_after: Duration,
    /// A conversation still with the bot and silent for this long is resolved (the bot
    /// solved it, or the customer left).
    pub bot_idle_resolve_after: Duration,
    /// An agent away for longer than this gives their conversations back to the queue.
    pub away_timeout: Duration,
    /// Ask for a rating when a conversation people handled is resolved.
    pub csat: bool,
    /// Teams that talk about a customer's account: at handoff the bot asks a customer
    /// without a verified email address to verify one (when email is configured).
    pub verify_teams: Vec<String>,
    /// How often [`ConversationEngine::run`] ticks.
    pub tick_every: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let sla = [
            (Priority::Urgent, minutes(15), hours(4)),
            (Priority::High, minutes(60), hours(24)),
            (Priority::Normal, hours(4), hours(72)),
            (Priority::Low, hours(24), hours(168)),
        ]
        .into_iter()
        .map(|(p, first_response, resolution)| {
            (
                p,
                SlaTargets {
                    first_response,
                    resolution,
                },
            )
        })
        .collect();
        Self {
            default_team: "general".into(),
            supervisor_team: "supervisors".into(),
            hours: BTreeMap::new(),
            sla,
            due_soon: minutes(30),
            pending_resolve_after: hours(72),
            bot_idle_resolve_after: hours(24),
            away_timeout: minutes(15),
            csat: true,
            verify_teams: vec!["accounts".into()],
            tick_every: Duration::from_secs(30),
        }
    }
}

/// How long a turn noted at ingest is left to the process that stored the message
/// before the timers take it (at least one tick).
const TURN_GRACE: Duration = Duration::from_secs(10);

/// Sends a verification code by email. The email channel provides it when configured.
#[async_trait::async_trait]
pub trait CodeMailer: Send + Sync + fmt::Debug {
    async fn send(&self, to: &str, subject: &str, body: &str) -> std::result::Result<(), String>;
}

/// Why a conversation goes to people.
#[derive(Debug, Clone)]
pub struct HandOff {
    pub reason: String,
    pub priority: Priority,
    /// `None`: the default team.
    pub team: Option<String>,
    pub lang: Lang,
    /// Send no queue or off-hours notice (the bot is off: nothing automated speaks).
    pub quiet: bool,
}

/// Where a transfer sends a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    Agent(AgentId),
    /// Back to that team's queue.
    Team(String),
}

/// Where an escalation sends a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// Senior staff of the same team.
    Tier2,
    /// The supervisor team (a manager).
    Supervisor,
}

/// How a conversation stands against its targets, for the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// No target (still with the bot, or no SLA for its priority).
    None,
    OnTrack,
    /// A target falls within `due_soon`.
    DueSoon,
    Breached,
    /// Resolved within its targets.
    Met,
}

impl SlaState {
    /// The word shown in the inbox (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            SlaState::None => "none",
            SlaState::OnTrack => "on_track",
            SlaState::DueSoon => "due_soon",
            SlaState::Breached => "breached",
            SlaState::Met => "met",
        }
    }
}

/// A conversation's place in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePlace {
    /// 1 is next.
    pub position: usize,
    pub estimated_wait: Option<Duration>,
}

/// What the engine did with a customer message, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do (with people, who will read it).
    Stored,
    Bot(Turn),
    HandedOff,
    SecretEscalated,
    Reopened,
    Woke,
    Rated(u8),
    /// A comment right after a rating, added to it.
    Commented,
    Verification(VerificationStep),
}

/// A step of an email verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationStep {
    AskedForEmail,
    CodeSent,
    Verified,
    WrongCode {
        tries_left: u32,
    },
    Expired,
    TooManyTries,
    /// Too many codes for this conversation in the last hour.
    TryLater,
}

/// The conversation engine. Cheap to share behind an `Arc`.
pub struct ConversationEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    config: EngineConfig,
    bot: Option<Arc<Bot>>,
    mailer: Option<Arc<dyn CodeMailer>>,
    /// When the report gauges on /metrics were last computed.
    report_refreshed: std::sync::Mutex<Option<std::time::Instant>>,
    /// Hours admins set in the pages (kept in the database, read again on every
    /// tick so that all instances agree); they take the place of the configuration's.
    hours_set: std::sync::RwLock<BTreeMap<String, BusinessHours>>,
}

impl fmt::Debug for ConversationEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConversationEngine")
            .field("bot", &self.bot.is_some())
            .field("mailer", &self.mailer.is_some())
            .finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, StoreError>;

impl ConversationEngine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        config: EngineConfig,
    ) -> Self {
        Self {
            store,
            clock,
            metrics,
            config,
            bot: None,
            mailer: None,
            report_refreshed: std::sync::Mutex::new(None),
            hours_set: std::sync::RwLock::default(),
        }
    }

    /// Lets the bot take its turn in conversations still with the bot.
    pub fn with_bot(mut self, bot: Arc<Bot>) -> Self {
        self.bot = Some(bot);
        self
    }

    /// Lets the bot and agents verify email addresses.
    pub fn with_mailer(mut self, mailer: Arc<dyn CodeMailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The bot, when one answers before people.
    pub fn bot(&self) -> Option<&Arc<Bot>> {
        self.bot.as_ref()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The engine's clock (a manual one in tests).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A team's business hours: set in the pages, else from the configuration, else
    /// around the clock.
    pub fn hours(&self, team: &str) -> BusinessHours {
        let set = self.hours_set.read().unwrap_or_else(|e| e.into_inner());
        set.get(team)
            .or_else(|| self.config.hours.get(team))
            .cloned()
            .unwrap_or_else(BusinessHours::always)
    }

    /// Whether a team has business hours (from the pages or the configuration);
    /// without, it works around the clock.
    pub fn has_hours(&self, team: &str) -> bool {
        let set = self.hours_set.read().unwrap_or_else(|e| e.into_inner());
        set.contains_key(team) || self.config.hours.contains_key(team)
    }

    /// Every team the engine knows: those with hours, the default team and the
    /// supervisors' team; sorted.
    pub fn teams(&self) -> Vec<String> {
        let set = self.hours_set.read().unwrap_or_else(|e| e.into_inner());
        let mut teams: Vec<String> = set
            .keys()
            .chain(self.config.hours.keys())
            .chain([&self.config.default_team, &self.config.supervisor_team])
            .cloned()
            .collect();
        teams.sort();
        teams.dedup();
        teams
    }

    /// An admin sets a team's hours: checked, kept in the database, in force at once
    /// here and on other instances at their next tick.
    pub async fn set_hours(&self, team: &str, config: &HoursConfig, by: &str) -> Result<()> {
        let team = team.trim();
        if team.is_empty() {
            return Err(StoreError::Invalid("a team name is needed".into()));
        }
        let hours =
            BusinessHours::from_config(config).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let json = serde_json::to_string(config).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.store.set_team_hours(team, &json, by).await?;
        self.hours_set
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(team.to_owned(), hours);
        Ok(())
    }

    /// Reads the hours set in the pages again (another instance may have changed them).
    async fn reload_hours(&self) -> Result<()> {
        let mut fresh = BTreeMap::new();
        for (team, json) in self.store.team_hours().await? {
            let parsed = serde_json::from_str::<HoursConfig>(&json)
                .map_err(|e| e.to_string())
                .and_then(|c| BusinessHours::from_config(&c).map_err(|e| e.to_string()));
            match parsed {
                Ok(hours) => {
                    fresh.insert(team, hours);
                }
                Err(e) => tracing::warn!(%team, error = %e, "stored business hours do not check"),
            }
        }
        *self.hours_set.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The customer's language as the conversation knows it, else as their channel
    /// told it (Telegram's `language_code`).
    async fn known_language(&self, conversation: &Conversation) -> Result<Option<Lang>> {
        if let Some(lang) = lang_of_code(conversation.language.as_deref()) {
            return Ok(Some(lang));
        }
        let contact = self.store.contact(conversation.contact_id).await?;
        Ok(lang_of_code(contact.and_then(|c| c.language).as_deref()))
    }

    async fn load(&self, id: ConversationId) -> Result<Conversation> {
        self.store
            .conversation(id)
            .await?
            .ok_or(StoreError::NotFound("conversation", id.0))
    }

    async fn say(&self, id: ConversationId, text: impl Into<String>) -> Result<()> {
        self.store.reply(NewReply::from_bot(id, text)).await?;
        Ok(())
    }

    /// A line in the conversation's history for agents (never sent to the customer).
    async fn record(&self, id: ConversationId, text: String) -> Result<()> {
        self.store
            .reply(NewReply {
                author: Author::System,
                kind: MessageKind::Event,
                ..NewReply::from_bot(id, text)
            })
            .await?;
        Ok(())
    }

    /// A customer came through a deep link (Telegram's `/start PAYLOAD`). A link code an
    /// agent made (`c_CODE`, one use, unexpired) joins this customer to the contact of
    /// the conversation it was made for, so agents see one person across channels; any
    /// other payload tags where they came from (`source:PAYLOAD`). What happened is
    /// written in the conversation's history.
    pub async fn on_deep_link(&self, id: ConversationId, payload: &str) -> Result<()> {
        let Some(code) = payload.strip_prefix(crate::deep_link::PREFIX) else {
            let label = crate::deep_link::source_label(payload);
            let mut labels = self.load(id).await?.labels;
            if labels.contains(&label) {
                return Ok(());
            }
            labels.push(label.clone());
            self.store
                .update_conversation(
                    id,
                    &ConversationChange {
                        labels: Some(labels),
                        reason: Some(format!("came through the link {label}")),
                        ..ConversationChange::default()
                    },
                )
                .await?;
            return Ok(());
        };
        let Some(origin) = self.store.redeem_link_code(code, self.clock.now()).await? else {
            return self
                .record(
                    id,
                    "The customer opened a link to continue another conversation, but it was \
                     used or expired; nothing was joined."
                        .into(),
                )
                .await;
        };
        let here = self.load(id).await?.contact_id;
        let there = self.load(origin).await?.contact_id;
        if here != there {
            self.store
                .merge_contacts(there, here, "the customer's link")
                .await?;
        }
        self.record(
            id,
            format!("The customer continued conversation #{origin} here through its link; their contacts are joined."),
        )
        .await
    }

    /// The bot's answer to a customer's `text` as [`Store::ingest_answering`] can
    /// decide it in the transaction that stores the message: for a text with words
    /// (whose language it tells), matched once here, before the transaction. `None`
    /// when there is no bot.
    pub fn quick_answer(&self, text: &str) -> Option<Arc<dyn Responder>> {
        let bot = self.bot.clone()?;
        if !frontdesk_faq::text::has_words(text) {
            return None;
        }
        Some(Arc::new(QuickAnswer {
            m: bot.matched(text, None),
            text: text.to_owned(),
            bot,
        }))
    }

    /// Takes the engine's turn on a stored customer message and records it taken. A
    /// failure is logged; the turn stays noted and the timers ([`Self::tick`]) take it
    /// again, as they take the turns of a process that died before taking them.
    pub async fn take_turn(
        &self,
        id: ConversationId,
        message: MessageId,
        text: &str,
        findings: usize,
    ) {
        match self.on_customer_message(id, message, text, findings).await {
            Ok(outcome) => {
                tracing::debug!(conversation_id = %id, ?outcome, "engine");
                if let Err(e) = self.store.turn_taken(message).await {
                    // The next tick finds the message answered and drops the note.
                    tracing::warn!(conversation_id = %id, error = %e, "cannot record a turn as taken");
                }
            }
            Err(e) => {
                tracing::error!(conversation_id = %id, error = %e, "the conversation engine failed on a message; the timers will try again")
            }
        }
    }

    /// Everything that follows one stored customer message. `findings` is how many
    /// secrets the guard redacted from it.
    pub async fn on_customer_message(
        &self,
        id: ConversationId,
        message: MessageId,
        text: &str,
        findings: usize,
    ) -> Result<Outcome> {
        let mut conversation = self.load(id).await?;
        // A code, a number or a bare `/start` says nothing about the language: the
        // conversation's, else the one the channel gave the contact, stands.
        let known = match frontdesk_faq::text::has_words(text) {
            true => Some(frontdesk_faq::text::detect_language(text)),
            false => self.known_language(&conversation).await?,
        };
        let lang = known.unwrap_or_else(|| lang_of(&conversation));
        if let Some(code) = known.and_then(|lang| language_change(&conversation, lang)) {
            let change = ConversationChange {
                language: Some(code.into()),
                ..ConversationChange::default()
            };
            conversation = self.store.update_conversation(id, &change).await?;
        }
        if findings > 0 {
            self.secret_received(&conversation, message, text, lang)
                .await?;
            return Ok(Outcome::SecretEscalated);
        }
        match conversation.status {
            Status::Resolved => self.after_resolve(&conversation, message, text, lang).await,
            Status::Pending | Status::Snoozed => {
                let change = ConversationChange {
                    status: Some(Status::Open),
                    expect_status: Some(conversation.status),
                    reason: Some("the customer replied".into()),
                    ..ConversationChange::default()
                };
                let woken = match self.store.update_conversation(id, &change).await {
                    Ok(c) => c,
                    // A timer or another instance moved it first; it is open or resolved.
                    Err(StoreError::Changed(_)) => self.load(id).await?,
                    Err(e) => return Err(e),
                };
                let woken = self.keep_with_present_agent(woken).await?;
                // The customer may be answering what the agent asked (a verification).
                match self.verification_reply(&woken, text, lang).await? {
                    Some(step) => Ok(Outcome::Verification(step)),
                    None => Ok(Outcome::Woke),
                }
            }
            Status::Bot | Status::Open => {
                if let Some(step) = self.verification_reply(&conversation, text, lang).await? {
                    return Ok(Outcome::Verification(step));
                }
                if conversation.status == Status::Bot {
                    return self.bot_turn(&conversation, message, text).await;
                }
                Ok(Outcome::Stored)
            }
        }
    }

    /// A customer message in a resolved conversation (within the reopen window): the
    /// answer to the survey, a comment just after it, or a reason to reopen.
    async fn after_resolve(
        &self,
        conversation: &Conversation,
        message: MessageId,
        text: &str,
        lang: Lang,
    ) -> Result<Outcome> {
        let id = conversation.id;
        let survey = self.store.csat(id).await?;
        if let Some(survey) = &survey {
            if survey.rating.is_none()
                && let Some(rating) = csat::parse_rating(text)
            {
                let recorded = self
                    .store
                    .csat_answer(id, rating.score, rating.comment.as_deref(), message)
                    .await?;
                if recorded {
                    self.metrics.csat(survey_team(conversation), rating.score);
                    self.say(id, csat::thanks(lang, rating.score)).await?;
                }
                return Ok(Outcome::Rated(rating.score));
            }
            // "5", then "quick and kind": the second message is the comment.
            let just_rated = survey.comment.is_none()
                && survey
                    .answered_at
                    .is_some_and(|t| t.plus(COMMENT_WINDOW) >= self.now());
            if just_rated && self.store.csat_comment(id, text.trim(), message).await? {
                return Ok(Outcome::Commented);
            }
        }
        self.reopen(
            conversation,
            "the customer wrote again after it was resolved",
        )
        .await?;
        let reopened = self.load(id).await?;
        if reopened.status == Status::Bot {
            return self.bot_turn(&reopened, message, text).await;
        }
        Ok(Outcome::Reopened)
    }

    /// Opens a resolved conversation again: to the people (and the same agent, if they
    /// are there) when people had it, else to the bot; with a new resolution target.
    async fn reopen(&self, conversation: &Conversation, reason: &str) -> Result<()> {
        let status = match conversation.queued_at {
            Some(_) => Status::Open,
            None => Status::Bot,
        };
        let targets = self.config.sla.get(&conversation.priority).copied();
        let change = ConversationChange {
            status: Some(status),
            expect_status: Some(Status::Resolved),
            resolution_due: targets
                .filter(|_| status == Status::Open)
                .map(|t| self.now().plus(t.resolution)),
            reason: Some(reason.to_owned()),
            ..ConversationChange::default()
        };
        match self
            .store
            .update_conversation(conversation.id, &change)
            .await
        {
            Ok(reopened) if status == Status::Open => {
                self.keep_with_present_agent(reopened).await?;
                self.assign_queue().await?;
                Ok(())
            }
            Ok(_) | Err(StoreError::Changed(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// An open conversation whose agent is offline (or away too long) goes back to the
    /// queue rather than waiting on nobody.
    async fn keep_with_present_agent(&self, conversation: Conversation) -> Result<Conversation> {
        let Some(agent) = conversation.assignee else {
            return Ok(conversation);
        };
        if conversation.status != Status::Open {
            return Ok(conversation);
        }
        let present = self
            .store
            .agents()
            .await?
            .into_iter()
            .any(|l| l.agent.id == agent && self.present(&l.agent));
        if present {
            return Ok(conversation);
        }
        let reason = "the agent is not available";
        self.store
            .assign(conversation.id, None, false, reason)
            .await?;
        self.record(conversation.id, format!("Returned to the queue: {reason}."))
            .await?;
        self.assign_queue().await?;
        self.load(conversation.id).await
    }

    /// Whether an agent still holds their conversations: online, or away for less than
    /// `away_timeout`.
    fn present(&self, agent: &frontdesk_core::Agent) -> bool {
        match agent.status {
            AgentStatus::Online => true,
            AgentStatus::Away => agent.status_since.plus(self.config.away_timeout) > self.now(),
            AgentStatus::Offline => false,
        }
    }

    async fn bot_turn(
        &self,
        conversation: &Conversation,
        message: MessageId,
        text: &str,
    ) -> Result<Outcome> {
        let Some(bot) = &self.bot else {
            let handoff = HandOff {
                reason: "the bot is off".into(),
                priority: Priority::Normal,
                team: None,
                lang: lang_of(conversation),
                quiet: true,
            };
            self.hand_off(conversation.id, &handoff, None).await?;
            return Ok(Outcome::HandedOff);
        };
        let turn = bot
            .respond(&*self.store, conversation, message, text)
            .await?;
        if let Turn::HandOff {
            reason,
            priority,
            team,
            said,
            lang,
        } = turn
        {
            let handoff = HandOff {
                reason: format!("handed off by the bot: {reason}"),
                priority,
                team,
                lang,
                quiet: false,
            };
            self.hand_off(conversation.id, &handoff, said).await?;
            return Ok(Outcome::HandedOff);
        }
        Ok(Outcome::Bot(turn))
    }

    /// The customer sent a recovery phrase or key (already redacted): an urgent
    /// handoff to the security team, with a warning to the customer.
    async fn secret_received(
        &self,
        conversation: &Conversation,
        message: MessageId,
        original: &str,
        lang: Lang,
    ) -> Result<()> {
        tracing::warn!(conversation_id = %conversation.id, %message, "a secret was redacted from a customer message");
        let warning = NewReply {
            // One warning per message, even if this runs again.
            idempotency_key: Some(format!("guard-warning-{message}")),
            ..NewReply::from_bot(conversation.id, frontdesk_guard::customer_warning(original))
        };
        let handoff = HandOff {
            reason: "the customer sent a recovery phrase or private key (redacted)".into(),
            priority: Priority::Urgent,
            team: Some("security".into()),
            lang,
            quiet: self.bot.is_none(),
        };
        // With the people first, then tell the customer.
        if conversation.status == Status::Bot || conversation.status == Status::Resolved {
            self.hand_off(conversation.id, &handoff, None).await?;
        } else {
            // With people already: the security team's, to treat first.
            let (first_response_due, resolution_due) =
                self.due_times(conversation, Priority::Urgent);
            let change = ConversationChange {
                status: Some(Status::Open),
                priority: Some(Priority::Urgent),
                team: handoff.team.clone(),
                first_response_due,
                resolution_due,
                reason: Some(handoff.reason.clone()),
                ..ConversationChange::default()
            };
            self.store
                .update_conversation(conversation.id, &change)
                .await?;
            if let Some(agent) = conversation.assignee {
                let in_security =
                    self.store.agents().await?.iter().any(|l| {
                        l.agent.id == agent && l.agent.teams.iter().any(|t| t == "security")
                    });
                if !in_security {
                    self.store
                        .assign(conversation.id, None, false, "for the security team")
                        .await?;
                }
            }
            self.assign_queue().await?;
        }
        self.store.reply(warning).await?;
        Ok(())
    }

    /// Hands a conversation to people: team, priority, SLA due times, assignment if an
    /// agent has room, and one notice to the customer (after `said`, the bot's answer
    /// that goes with the handoff).
    pub async fn hand_off(
        &self,
        id: ConversationId,
        handoff: &HandOff,
        said: Option<String>,
    ) -> Result<Conversation> {
        let now = self.now();
        let team = handoff
            .team
            .clone()
            .unwrap_or_else(|| self.config.default_team.clone());
        let before = self.load(id).await?;
        let (first_response_due, resolution_due) = self.due_times(&before, handoff.priority);
        let change = ConversationChange {
            status: Some(Status::Open),
            priority: Some(handoff.priority),
            team: Some(team.clone()),
            bot_misses: Some(0),
            first_response_due,
            resolution_due,
            reason: Some(handoff.reason.clone()),
            ..ConversationChange::default()
        };
        // With the people first, then tell the customer so.
        self.store.update_conversation(id, &change).await?;
        self.metrics.handoff(&team);
        self.assign_queue().await?;
        let conversation = self.load(id).await?;
        if handoff.quiet {
            if let Some(said) = said {
                self.say(id, said).await?;
            }
            return Ok(conversation);
        }
        // One message: what the bot says (or that people have it), then when they will
        // answer.
        let lang = handoff.lang;
        let hours = self.hours(&team);
        let when = if !hours.is_open(now) {
            Some(notices::off_hours(
                lang,
                hours.describe_return(now, lang).as_deref(),
            ))
        } else if conversation.assignee.is_some() {
            Some(notices::assigned(lang).to_owned())
        } else {
            self.queue_place(&conversation)
                .await?
                .map(|place| notices::queued(lang, place.position, place.estimated_wait))
        };
        let lead = said.unwrap_or_else(|| notices::handed_off(lang).to_owned());
        let mut notice = lead.trim_end().to_owned();
        if let Some(when) = when {
            notice = format!("{notice}\n\n{when}");
        }
        // Asked at most once per conversation: a customer who ignores it is not pressed.
        if self.needs_verification(&conversation, &team).await?
            && self
                .store
                .verifications_since(id, Timestamp::from_micros(0))
                .await?
                == 0
            && self.start_verification(id, None).await?.is_some()
        {
            notice = format!("{notice}\n\n{}", verify::ask_email(lang));
        }
        self.say(id, notice).await?;
        Ok(conversation)
    }

    /// Whether the bot should ask for a verified email before people of `team` talk
    /// about the customer's account.
    async fn needs_verification(&self, conversation: &Conversation, team: &str) -> Result<bool> {
        // Nobody is asked for an email address where everybody can read the answer.
        if self.mailer.is_none()
            || !self.config.verify_teams.iter().any(|t| t == team)
            || frontdesk_core::envelope::is_public_thread(&conversation.thread_key)
        {
            return Ok(false);
        }
        let verified = self
            .store
            .contact(conversation.contact_id)
            .await?
            .is_some_and(|c| c.identities.iter().any(|i| i.verified_at.is_some()));
        Ok(!verified)
    }

    /// The SLA due times for `priority` from now, or the conversation's own where they
    /// come sooner (a raised priority never pushes a target back). No first-response
    /// target once an agent has answered.
    fn due_times(
        &self,
        conversation: &Conversation,
        priority: Priority,
    ) -> (Option<Timestamp>, Option<Timestamp>) {
        let now = self.now();
        let targets = self.config.sla.get(&priority).copied();
        let sooner = |old: Option<Timestamp>, new: Option<Timestamp>| match (old, new) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => b.or(a),
        };
        let first = match conversation.first_response_at {
            Some(_) => None,
            None => sooner(
                conversation.first_response_due,
                targets.map(|t| now.plus(t.first_response)),
            ),
        };
        let resolution = sooner(
            conversation.resolution_due,
            targets.map(|t| now.plus(t.resolution)),
        );
        (first, resolution)
    }

    /// Where an open, unassigned conversation stands in its team's queue, and a guess
    /// at the wait from the team's first responses of the last week.
    pub async fn queue_place(&self, conversation: &Conversation) -> Result<Option<QueuePlace>> {
        if conversation.status != Status::Open || conversation.assignee.is_some() {
            return Ok(None);
        }
        let team = conversation.team.as_deref();
        let queue = self.store.sweep(Sweep::Queue, 10_000).await?;
        let Some(position) = queue
            .iter()
            .filter(|c| c.team.as_deref() == team)
            .position(|c| c.id == conversation.id)
        else {
            return Ok(None);
        };
        let position = position + 1;
        let now = self.now();
        let week = Duration::from_secs(7 * 24 * 3600);
        let facts = self
            .store
            .conversation_facts(Timestamp::from_micros(now.as_micros() - micros(week)), now)
            .await?;
        let mut waits: Vec<Duration> = facts
            .iter()
            .filter(|f| f.team.as_deref() == team)
            .filter_map(|f| Some(f.first_response_at?.since(f.queued_at?)))
            .collect();
        let agents = self.store.agents().await?;
        let working = agents
            .iter()
            .filter(|a| {
                a.agent.status == AgentStatus::Online
                    && team.is_some_and(|t| a.agent.teams.iter().any(|x| x == t))
            })
            .count()
            .max(1);
        let estimated_wait = report::median(&mut waits).map(|typical| {
            let rounds = u32::try_from(position.div_ceil(working)).unwrap_or(u32::MAX);
            typical.saturating_mul(rounds)
        });
        Ok(Some(QueuePlace {
            position,
            estimated_wait,
        }))
    }

    /// Gives queued conversations, urgent first, to online agents of their team and
    /// tier with room: the agent given one longest ago first (round-robin). Returns how
    /// many were assigned.
    pub async fn assign_queue(&self) -> Result<usize> {
        let mut agents = self.store.agents().await?;
        // Only teams someone can serve now: one team's backlog never blocks another's.
        let mut teams: Vec<String> = agents
            .iter()
            .filter(|l| l.agent.status == AgentStatus::Online && l.open < l.agent.capacity)
            .flat_map(|l| l.agent.teams.iter().cloned())
            .collect();
        teams.sort();
        teams.dedup();
        let mut assigned = 0;
        for team in teams {
            let queue = self.store.sweep(Sweep::QueueOf(team.clone()), 200).await?;
            for conversation in queue {
                let Some(pick) = next_agent(&agents, &team, conversation.tier) else {
                    continue;
                };
                let agent = agents[pick].agent.id;
                let reason = format!("auto-assigned (round-robin, team {team})");
                if self
                    .store
                    .assign(conversation.id, Some(agent), true, &reason)
                    .await?
                    .is_some()
                {
                    agents[pick].open += 1;
                    agents[pick].agent.last_assigned_at = Some(self.now());
                    assigned += 1;
                }
            }
        }
        Ok(assigned)
    }

    /// An agent changes presence. Online: they get queued conversations. Offline:
    /// their open conversations go back to the queue at once (away waits for
    /// `away_timeout`, see [`Self::tick`]).
    pub async fn set_agent_status(&self, agent: AgentId, status: AgentStatus) -> Result<()> {
        self.store.set_agent_status(agent, status).await?;
        match status {
            AgentStatus::Online => {}
            AgentStatus::Offline => {
                self.return_to_queue(agent, "the agent went offline")
                    .await?;
            }
            AgentStatus::Away => return Ok(()),
        }
        self.assign_queue().await?;
        Ok(())
    }

    async fn return_to_queue(&self, agent: AgentId, reason: &str) -> Result<usize> {
        let held = self.store.sweep(Sweep::AssignedTo(agent), 10_000).await?;
        let mut returned = 0;
        for conversation in held.iter().filter(|c| c.status == Status::Open) {
            self.store
                .assign(conversation.id, None, false, reason)
                .await?;
            self.record(conversation.id, format!("Returned to the queue: {reason}."))
                .await?;
            returned += 1;
        }
        Ok(returned)
    }

    /// Gives a conversation to an agent, whatever the queue says.
    pub async fn assign(
        &self,
        id: ConversationId,
        agent: AgentId,
        by: Option<AgentId>,
    ) -> Result<Conversation> {
        let reason = match by {
            Some(by) => format!("assigned by agent {by}"),
            None => "assigned".to_owned(),
        };
        self.store.assign(id, Some(agent), false, &reason).await?;
        self.take_from_bot(id, &reason).await
    }

    /// A conversation an agent takes while the bot still has it is the people's now:
    /// the bot stops answering.
    async fn take_from_bot(&self, id: ConversationId, reason: &str) -> Result<Conversation> {
        let change = ConversationChange {
            status: Some(Status::Open),
            expect_status: Some(Status::Bot),
            reason: Some(reason.to_owned()),
            ..ConversationChange::default()
        };
        match self.store.update_conversation(id, &change).await {
            Ok(c) => Ok(c),
            Err(StoreError::Changed(_)) => self.load(id).await,
            Err(e) => Err(e),
        }
    }

    /// Moves a conversation to another agent, or to another team's queue.
    pub async fn transfer(
        &self,
        id: ConversationId,
        to: &Transfer,
        reason: &str,
    ) -> Result<Conversation> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StoreError::Invalid("a transfer needs a reason".into()));
        }
        match to {
            Transfer::Agent(agent) => {
                self.store.assign(id, Some(*agent), false, reason).await?;
                self.take_from_bot(id, reason).await?;
                self.record(id, format!("Transferred to agent {agent}: {reason}"))
                    .await?;
            }
            Transfer::Team(team) => {
                let change = ConversationChange {
                    status: Some(Status::Open),
                    team: Some(team.clone()),
                    // The other team's first line takes it.
                    tier: Some(1),
                    reason: Some(reason.to_owned()),
                    ..ConversationChange::default()
                };
                self.store.update_conversation(id, &change).await?;
                self.store.assign(id, None, false, reason).await?;
                self.record(id, format!("Transferred to team {team}: {reason}"))
                    .await?;
                self.assign_queue().await?;
            }
        }
        self.load(id).await
    }

    /// Escalates to senior staff (tier 2 of the same team) or to the supervisor team,
    /// with a reason kept in the history. The conversation goes back to the queue for
    /// them, at least high priority.
    pub async fn escalate(
        &self,
        id: ConversationId,
        to: Escalation,
        reason: &str,
        by: Option<AgentId>,
    ) -> Result<Conversation> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(StoreError::Invalid("an escalation needs a reason".into()));
        }
        let conversation = self.load(id).await?;
        let priority = conversation.priority.max(Priority::High);
        let (change, label) = match to {
            Escalation::Tier2 => (
                ConversationChange {
                    tier: Some(2),
                    ..ConversationChange::default()
                },
                "tier 2".to_owned(),
            ),
            Escalation::Supervisor => (
                ConversationChange {
                    team: Some(self.config.supervisor_team.clone()),
                    // Any supervisor, whatever their tier.
                    tier: Some(1),
                    ..ConversationChange::default()
                },
                format!("the {} team", self.config.supervisor_team),
            ),
        };
        let by = by.map(|a| format!(" by agent {a}")).unwrap_or_default();
        let (first_response_due, resolution_due) = self.due_times(&conversation, priority);
        let change = ConversationChange {
            status: Some(Status::Open),
            priority: Some(priority),
            first_response_due,
            resolution_due,
            reason: Some(format!("escalated to {label}{by}: {reason}")),
            ..change
        };
        self.store.update_conversation(id, &change).await?;
        self.store
            .assign(id, None, false, &format!("escalated to {label}"))
            .await?;
        self.record(id, format!("Escalated to {label}{by}: {reason}"))
            .await?;
        self.assign_queue().await?;
        self.load(id).await
    }

    /// Waiting on the customer.
    pub async fn set_pending(&self, id: ConversationId) -> Result<Conversation> {
        let change = ConversationChange {
            status: Some(Status::Pending),
            reason: Some("waiting on the customer".into()),
            ..ConversationChange::default()
        };
        self.store.update_conversation(id, &change).await
    }

    /// Put aside until `until`; a customer message wakes it earlier.
    pub async fn snooze(&self, id: ConversationId, until: Timestamp) -> Result<Conversation> {
        if until <= self.now() {
            return Err(StoreError::Invalid("snooze until a time to come".into()));
        }
        let change = ConversationChange {
            status: Some(Status::Snoozed),
            snoozed_until: Some(until),
            reason: Some(format!("snoozed until {until}")),
            ..ConversationChange::default()
        };
        self.store.update_conversation(id, &change).await
    }

    /// Resolves a conversation. If people handled it, the customer is asked once for
    /// a rating, on the same channel, in their language.
    pub async fn resolve(&self, id: ConversationId, reason: &str) -> Result<Conversation> {
        self.resolve_if(id, reason, None, None)
            .await?
            .ok_or_else(|| StoreError::Changed(format!("conversation {id}")))
    }

    /// Resolves if the status is still `expect` (timers: `None` when the customer or
    /// another instance got there first), telling the customer `notice` first.
    async fn resolve_if(
        &self,
        id: ConversationId,
        reason: &str,
        expect: Option<Status>,
        notice: Option<String>,
    ) -> Result<Option<Conversation>> {
        let change = ConversationChange {
            status: Some(Status::Resolved),
            expect_status: expect,
            reason: Some(reason.to_owned()),
            ..ConversationChange::default()
        };
        let conversation = match self.store.update_conversation(id, &change).await {
            Ok(c) => c,
            Err(StoreError::Changed(_)) if expect.is_some() => return Ok(None),
            Err(e) => return Err(e),
        };
        if let Some(notice) = notice {
            self.say(id, notice).await?;
        }
        let by = if conversation.queued_at.is_some() {
            "agent"
        } else {
            "bot"
        };
        self.metrics.resolved(survey_team(&conversation), by);
        if self.config.csat && conversation.queued_at.is_some() {
            let asked = self
                .store
                .csat_asked(id, conversation.assignee, conversation.team.as_deref())
                .await?;
            if asked {
                let question = NewReply {
                    quick_replies: (1..=5).rev().map(|n| n.to_string()).collect(),
                    ..NewReply::from_bot(id, csat::question(lang_of(&conversation)))
                };
                self.store.reply(question).await?;
            }
        }
        Ok(Some(conversation))
    }

    /// Asks the customer to prove they own an email address: with `email`, a code goes
    /// there now; without, the customer is asked for the address first.
    pub async fn request_verification(
        &self,
        id: ConversationId,
        agent: Option<AgentId>,
        email: Option<&str>,
    ) -> Result<VerificationStep> {
        if self.mailer.is_none() {
            return Err(StoreError::Invalid(
                "email verification needs the email channel (channels.email)".into(),
            ));
        }
        let conversation = self.load(id).await?;
        let lang = lang_of(&conversation);
        let Some(started) = self.start_verification(id, agent).await? else {
            self.say(id, verify::try_later(lang)).await?;
            return Ok(VerificationStep::TryLater);
        };
        match email.and_then(verify::find_email) {
            Some(address) => self.send_code(started.id, id, &address, lang).await,
            None => {
                self.say(id, verify::ask_email(lang)).await?;
                Ok(VerificationStep::AskedForEmail)
            }
        }
    }

    /// A new verification waiting for the address, unless the conversation has started
    /// too many in the last hour (each new code is a new verification).
    async fn start_verification(
        &self,
        id: ConversationId,
        agent: Option<AgentId>,
    ) -> Result<Option<frontdesk_store::Verification>> {
        let now = self.now();
        let hour_ago = Timestamp::from_micros(now.as_micros() - micros(Duration::from_secs(3600)));
        if self.store.verifications_since(id, hour_ago).await? >= VERIFICATIONS_PER_HOUR {
            return Ok(None);
        }
        let waiting = VerificationChange {
            state: Some(VerificationState::AwaitingEmail),
            expires_at: Some(now.plus(EMAIL_WAIT)),
            ..VerificationChange::default()
        };
        Ok(Some(
            self.store.start_verification(id, agent, &waiting).await?,
        ))
    }

    async fn send_code(
        &self,
        verification: i64,
        id: ConversationId,
        address: &str,
        lang: Lang,
    ) -> Result<VerificationStep> {
        let code = verify::new_code();
        let hash = hash_off_thread(code.clone()).await?;
        let change = VerificationChange {
            state: Some(VerificationState::AwaitingCode),
            email: Some(address.to_owned()),
            code_hash: Some(hash),
            tries: Some(0),
            expires_at: Some(self.now().plus(verify::CODE_LIFETIME)),
        };
        self.store
            .update_verification(verification, &change)
            .await?;
        let (subject, body) = verify::code_mail(lang, &code);
        if let Some(mailer) = &self.mailer {
            // Whether or not it is delivered, the customer hears the same words: the
            // reply never tells whether an address is known. (The error may name the
            // address: not logged.)
            if mailer.send(address, &subject, &body).await.is_err() {
                tracing::warn!(conversation_id = %id, "a verification code could not be sent");
            }
        }
        self.say(id, verify::code_sent(lang, &verify::mask_email(address)))
            .await?;
        Ok(VerificationStep::CodeSent)
    }

    /// A customer message while a verification waits on them: the address, or the
    /// code. `None`: an ordinary message (the bot does not keep asking).
    async fn verification_reply(
        &self,
        conversation: &Conversation,
        text: &str,
        lang: Lang,
    ) -> Result<Option<VerificationStep>> {
        let Some(v) = self.store.active_verification(conversation.id).await? else {
            return Ok(None);
        };
        let id = conversation.id;
        let set = |state| VerificationChange {
            state: Some(state),
            ..VerificationChange::default()
        };
        let expired = v.expires_at.is_some_and(|t| t <= self.now());
        match v.state {
            VerificationState::AwaitingEmail => {
                if expired {
                    self.store
                        .update_verification(v.id, &set(VerificationState::Cancelled))
                        .await?;
                    return Ok(None);
                }
                match verify::find_email(text) {
                    Some(address) => Ok(Some(self.send_code(v.id, id, &address, lang).await?)),
                    // Asked once more, then the bot lets it drop.
                    None if v.tries == 0 => {
                        let asked = VerificationChange {
                            tries: Some(1),
                            ..VerificationChange::default()
                        };
                        self.store.update_verification(v.id, &asked).await?;
                        self.say(id, verify::ask_email(lang)).await?;
                        Ok(Some(VerificationStep::AskedForEmail))
                    }
                    None => {
                        self.store
                            .update_verification(v.id, &set(VerificationState::Cancelled))
                            .await?;
                        Ok(None)
                    }
                }
            }
            VerificationState::AwaitingCode => {
                let Some(code) = verify::find_code(text) else {
                    // A corrected address gets a new code.
                    if let Some(address) = verify::find_email(text) {
                        return Ok(Some(
                            match self.start_verification(id, v.agent_id).await? {
                                Some(again) => self.send_code(again.id, id, &address, lang).await?,
                                None => {
                                    self.say(id, verify::try_later(lang)).await?;
                                    VerificationStep::TryLater
                                }
                            },
                        ));
                    }
                    if expired {
                        self.store
                            .update_verification(v.id, &set(VerificationState::Expired))
                            .await?;
                    }
                    return Ok(None);
                };
                if expired {
                    self.store
                        .update_verification(v.id, &set(VerificationState::Expired))
                        .await?;
                    return self
                        .verification_again(
                            &v,
                            lang,
                            verify::expired(lang),
                            VerificationStep::Expired,
                        )
                        .await
                        .map(Some);
                }
                // Count the try first, atomically: parallel guesses cannot add up to
                // more than MAX_TRIES.
                let Some(tries) = self.store.count_code_try(v.id, verify::MAX_TRIES).await? else {
                    return Ok(None);
                };
                let matches = match v.code_hash.clone() {
                    Some(hash) => verify_off_thread(code, hash).await?,
                    None => false,
                };
                if matches {
                    self.store
                        .update_verification(v.id, &set(VerificationState::Verified))
                        .await?;
                    let email = v.email.clone().unwrap_or_default();
                    let kept = self
                        .store
                        .link_verified_email(conversation.contact_id, &email)
                        .await?;
                    self.record(
                        id,
                        format!(
                            "The customer verified the email address {} (contact {kept}).",
                            verify::mask_email(&email)
                        ),
                    )
                    .await?;
                    self.say(id, verify::verified(lang)).await?;
                    return Ok(Some(VerificationStep::Verified));
                }
                if tries >= verify::MAX_TRIES {
                    self.store
                        .update_verification(v.id, &set(VerificationState::Failed))
                        .await?;
                    return self
                        .verification_again(
                            &v,
                            lang,
                            verify::too_many_tries(lang),
                            VerificationStep::TooManyTries,
                        )
                        .await
                        .map(Some);
                }
                let tries_left = verify::MAX_TRIES - tries;
                self.say(id, verify::wrong_code(lang, tries_left)).await?;
                Ok(Some(VerificationStep::WrongCode { tries_left }))
            }
            _ => Ok(None),
        }
    }

    /// After an expired code or too many tries: wait for the address again, for a new
    /// code (the old row stays as it ended, for the history), unless the conversation
    /// has had enough codes for the hour.
    async fn verification_again(
        &self,
        ended: &frontdesk_store::Verification,
        lang: Lang,
        say: &str,
        step: VerificationStep,
    ) -> Result<VerificationStep> {
        let id = ended.conversation_id;
        match self.start_verification(id, ended.agent_id).await? {
            Some(_) => {
                self.say(id, say).await?;
                Ok(step)
            }
            None => {
                self.say(id, verify::try_later(lang)).await?;
                Ok(VerificationStep::TryLater)
            }
        }
    }

    /// How a conversation stands against its SLA targets now.
    pub fn sla_state(&self, conversation: &Conversation) -> SlaState {
        sla_state(conversation, self.now(), self.config.due_soon)
    }

    /// Runs the timers once: ends snoozes, resolves silent pending and idle bot
    /// conversations, returns the conversations of agents away too long, records SLA
    /// breaches, fills the queue, and refreshes the report gauges.
    pub async fn tick(&self) -> Result<()> {
        self.reload_hours().await?;
        let now = self.now();
        let ago = |d: Duration| Timestamp::from_micros(now.as_micros() - micros(d));
        // Turns left behind: the process that stored the message died before the
        // engine's turn, or the turn failed. A turn younger than this may still run.
        let noted_before = ago(self.config.tick_every.max(TURN_GRACE));
        for turn in self.store.take_turns(noted_before, now, 100).await? {
            tracing::info!(conversation_id = %turn.conversation_id, "taking a turn left behind");
            self.take_turn(
                turn.conversation_id,
                turn.message_id,
                &turn.text,
                turn.findings,
            )
            .await;
        }
        for c in self.store.sweep(Sweep::SnoozeOver(now), 500).await? {
            let change = ConversationChange {
                status: Some(Status::Open),
                expect_status: Some(Status::Snoozed),
                reason: Some("the snooze ended".into()),
                ..ConversationChange::default()
            };
            match self.store.update_conversation(c.id, &change).await {
                Ok(woken) => {
                    self.keep_with_present_agent(woken).await?;
                }
                Err(StoreError::Changed(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let silent = self.config.pending_resolve_after;
        for c in self
            .store
            .sweep(Sweep::PendingSilentSince(ago(silent)), 500)
            .await?
        {
            let days = silent.as_secs().div_ceil(86_400);
            let reason = format!("no reply from the customer in {days} days");
            let notice = notices::auto_resolved(lang_of(&c), days);
            self.resolve_if(c.id, &reason, Some(Status::Pending), Some(notice))
                .await?;
        }
        for c in self
            .store
            .sweep(
                Sweep::BotIdleSince(ago(self.config.bot_idle_resolve_after)),
                500,
            )
            .await?
        {
            self.resolve_if(c.id, "idle with the bot", Some(Status::Bot), None)
                .await?;
        }
        // Conversations of agents who left (offline, or away too long) go back to the
        // queue: also those that woke up or reopened after the agent left.
        for load in self.store.agents().await? {
            if load.open > 0 && !self.present(&load.agent) {
                let reason = match load.agent.status {
                    AgentStatus::Away => "the agent was away too long",
                    _ => "the agent is offline",
                };
                self.return_to_queue(load.agent.id, reason).await?;
            }
        }
        // A message that reached a resolved conversation while the engine could not act
        // on it (a crash between the ingest and the reopen): reopen now.
        for c in self
            .store
            .sweep(
                Sweep::ResolvedWithNewMessageBefore(ago(Duration::from_secs(60))),
                500,
            )
            .await?
        {
            self.reopen(&c, "a customer message arrived after it was resolved")
                .await?;
        }
        for (sweep, target) in [
            (Sweep::FirstResponseOverdue(now), SlaTarget::FirstResponse),
            (Sweep::ResolutionOverdue(now), SlaTarget::Resolution),
        ] {
            for c in self.store.sweep(sweep, 500).await? {
                if self.store.mark_breach(c.id, target).await? {
                    self.metrics.sla_breach(target, c.priority);
                }
            }
        }
        self.assign_queue().await?;
        // The figures read a week of conversations: refreshed now and then, not every
        // tick.
        let due = self
            .report_refreshed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|at| at.elapsed() >= REPORT_EVERY);
        if due {
            let report = self
                .report(ago(Duration::from_secs(7 * 24 * 3600)), now)
                .await?;
            self.metrics.report(&report);
            *self
                .report_refreshed
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// Per agent and team: first response and resolution times, CSAT, reopen rate, bot
    /// resolution rate, SLA breaches, for conversations created in `[since, until)`.
    pub async fn report(&self, since: Timestamp, until: Timestamp) -> Result<Report> {
        let facts = self.store.conversation_facts(since, until).await?;
        Ok(report::build(&facts))
    }

    /// Ticks every `tick_every` until `stop`. An error is logged, and the next tick
    /// tries again.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.tick().await {
                tracing::error!(error = %e, "conversation engine tick failed; retrying next tick");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.config.tick_every) => {}
            }
        }
    }
}

/// The online agent of `team` and at least `tier` with room who was given a
/// conversation longest ago (never first; then the lowest id).
fn next_agent(agents: &[AgentLoad], team: &str, tier: u8) -> Option<usize> {
    agents
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l.agent.status == AgentStatus::Online
                && l.agent.tier >= tier
                && l.open < l.agent.capacity
                && l.agent.teams.iter().any(|t| t == team)
        })
        .min_by_key(|(_, l)| (l.agent.last_assigned_at, l.agent.id))
        .map(|(i, _)| i)
}

/// How `conversation` stands against its targets at `now`.
pub fn sla_state(conversation: &Conversation, now: Timestamp, due_soon: Duration) -> SlaState {
    if conversation.first_response_breached || conversation.resolution_breached {
        return SlaState::Breached;
    }
    let resolved = conversation.status == Status::Resolved;
    let mut dues = Vec::new();
    if conversation.first_response_at.is_none() && !resolved {
        dues.extend(conversation.first_response_due);
    }
    if !resolved {
        dues.extend(conversation.resolution_due);
    }
    let Some(next) = dues.into_iter().min() else {
        return match (resolved, conversation.resolution_due) {
            (true, Some(_)) => SlaState::Met,
            _ => SlaState::None,
        };
    };
    if next <= now {
        SlaState::Breached
    } else if next <= now.plus(due_soon) {
        SlaState::DueSoon
    } else {
        SlaState::OnTrack
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The bot's answer to a message in a conversation still with the bot, decided with
/// the ingest ([`ConversationEngine::quick_answer`]). It answers what
/// [`ConversationEngine::on_customer_message`] would answer with the bot alone (an
/// answer, or a question back) and declines the rest: a verification, a conversation
/// with people, a handoff (the store never asks about a message with a secret).
struct QuickAnswer {
    bot: Arc<Bot>,
    text: String,
    /// The text matched, in the language it is written in (it has words).
    m: frontdesk_faq::Match,
}

/// Without the customer's text, which is not yet through the guard.
impl fmt::Debug for QuickAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuickAnswer")
            .field("lang", &self.m.lang)
            .field("intent", &self.m.intent)
            .field("action", &self.m.action)
            .finish_non_exhaustive()
    }
}

impl Responder for QuickAnswer {
    fn answer(&self, facts: &TurnFacts<'_>) -> Option<Answer> {
        let conversation = facts.conversation;
        if facts.verifying || conversation.status != Status::Bot {
            return None;
        }
        let plan = self.bot.plan(
            conversation,
            facts.message,
            &self.text,
            &self.m,
            facts.previous_text,
        );
        match plan.turn {
            Turn::Answered { .. } | Turn::Asked => Some(Answer {
                language: language_change(conversation, self.m.lang).map(str::to_owned),
                ..plan.answer
            }),
            Turn::Silent | Turn::HandOff { .. } => None,
        }
    }
}

/// The conversation's new language when the customer writes in `lang` and it had
/// another (or none).
fn language_change(conversation: &Conversation, lang: Lang) -> Option<&'static str> {
    let code = lang_code(lang);
    (conversation.language.as_deref() != Some(code)).then_some(code)
}

fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    }
}

/// A stored language code as one the bot answers in.
pub(crate) fn lang_of_code(code: Option<&str>) -> Option<Lang> {
    match code {
        Some("zh") => Some(Lang::Zh),
        Some("en") => Some(Lang::En),
        _ => None,
    }
}

/// The customer's language as last seen; English if unknown.
fn lang_of(conversation: &Conversation) -> Lang {
    lang_of_code(conversation.language.as_deref()).unwrap_or(Lang::En)
}

fn survey_team(conversation: &Conversation) -> &str {
    conversation.team.as_deref().unwrap_or("none")
}

/// Hashes a verification code on the blocking pool (argon2 takes milliseconds of CPU).
async fn hash_off_thread(code: String) -> Result<String> {
    tokio::task::spawn_blocking(move || crate::secret_hash::hash_secret(&code))
        .await
        .map_err(|_| StoreError::Internal("the hashing task failed"))?
        .map_err(StoreError::Invalid)
}

/// Checks a code against its hash on the blocking pool.
async fn verify_off_thread(code: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || crate::secret_hash::verify_secret(&code, &hash))
        .await
        .map_err(|_| StoreError::Internal("the hashing task failed"))
}
