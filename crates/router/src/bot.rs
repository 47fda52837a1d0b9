//! The bot's turn in a conversation that is still with the bot.
//!
//! It answers what the answer engine is sure of, with a hint that 人工 / "human"
//! reaches a person; it hands off when the engine says so (a request for a person, a
//! sensitive intent), when it could not answer `misses_before_handoff` times in a row,
//! or when the customer repeats themselves; otherwise it asks, offering the two likeliest
//! topics. Once a conversation is handed off the bot says nothing more in it.
//!
//! The bot decides a handoff; the conversation engine carries it out (status, team,
//! SLA, queue notice, assignment), so there is one way to hand a conversation to people.

use frontdesk_core::{Conversation, MessageId, Priority, Status};
use frontdesk_faq::engine::{Decision, Match};
use frontdesk_faq::{Engine, Lang};
use frontdesk_store::{Answer, NewReply, Store, StoreError};
use std::sync::Arc;

/// How patient the bot is.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Unanswered messages in a row before a person takes over.
    pub misses_before_handoff: u32,
}

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            misses_before_handoff: 2,
        }
    }
}

/// What the bot did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// The conversation is with people: the bot stays silent.
    Silent,
    Answered {
        intent: String,
    },
    /// Asked the customer to say more (a miss).
    Asked,
    /// People should take over. Nothing is changed yet: the conversation engine hands
    /// it off, then sends `said` (an answer that goes with the handoff, if any).
    HandOff {
        reason: String,
        priority: Priority,
        team: Option<String>,
        said: Option<String>,
        lang: Lang,
    },
}

/// What the bot decided about one message ([`Bot::plan`]).
#[derive(Debug, Clone)]
pub struct Plan {
    pub turn: Turn,
    /// What to write: empty for a silent turn, the topic alone for a handoff.
    pub answer: Answer,
}

/// The bot: the answer engine and its patience.
#[derive(Debug)]
pub struct Bot {
    engine: Arc<Engine>,
    config: BotConfig,
}

impl Bot {
    pub fn new(engine: Arc<Engine>, config: BotConfig) -> Self {
        Self { engine, config }
    }

    /// The knowledge base's matcher the bot answers with.
    pub fn knowledge(&self) -> &Engine {
        &self.engine
    }

    /// Matches a customer's `text` against the knowledge base, in the conversation's
    /// language (`language`) when the text has no words of its own (a code, a number).
    pub fn matched(&self, text: &str, language: Option<&str>) -> Match {
        let known = match frontdesk_faq::text::has_words(text) {
            true => None,
            false => crate::engine::lang_of_code(language),
        };
        self.engine.match_text_in(text, known)
    }

    /// Takes the bot's turn after the customer's message `message` (`text`) in
    /// `conversation`: decides ([`Self::plan`]), then writes the answer in one
    /// transaction.
    pub async fn respond(
        &self,
        store: &dyn Store,
        conversation: &Conversation,
        message: MessageId,
        text: &str,
    ) -> Result<Turn, StoreError> {
        if conversation.status != Status::Bot {
            return Ok(Turn::Silent);
        }
        // The engine has set the conversation's language from the channel's hint where
        // the message has no words of its own.
        let m = self.matched(text, conversation.language.as_deref());
        let previous = store.contact_text_before(conversation.id, message).await?;
        let plan = self.plan(conversation, message, text, &m, previous.as_deref());
        let answer = &plan.answer;
        if !answer.replies.is_empty() || answer.intent.is_some() || answer.bot_misses.is_some() {
            store.answer(conversation.id, answer).await?;
        }
        Ok(plan.turn)
    }

    /// What the bot does about the customer's message `message` (`text`, matched as
    /// `m`) in `conversation`, whose customer sent `previous` before it. Writes nothing:
    /// the answer goes to [`Store::answer`], or with the message itself
    /// ([`Store::ingest_answering`]).
    pub fn plan(
        &self,
        conversation: &Conversation,
        message: MessageId,
        text: &str,
        m: &Match,
        previous: Option<&str>,
    ) -> Plan {
        let mut answer = Answer::default();
        if conversation.status != Status::Bot {
            return Plan {
                turn: Turn::Silent,
                answer,
            };
        }
        let id = conversation.id;
        let hand_off = |reason: String, priority, team, said| Turn::HandOff {
            reason,
            priority,
            team,
            said,
            lang: m.lang,
        };
        if previous.is_some_and(|previous| same_words(previous, text)) {
            let turn = hand_off(
                "the customer repeated the same message".into(),
                Priority::Normal,
                None,
                None,
            );
            return Plan { turn, answer };
        }
        let reply = |text: String| NewReply {
            answers: Some(message),
            ..NewReply::from_bot(id, text)
        };
        let turn = match (m.action, m.intent.clone(), m.answer.clone()) {
            (Decision::Answer, Some(intent), Some(answer_text)) => {
                // The topic is noted with the answer, in its transaction.
                answer.replies.push(NewReply {
                    intent: Some(intent.clone()),
                    ..reply(format!("{answer_text}\n\n{}", hint(m.lang)))
                });
                if let Some(follow_up) = m.follow_up.clone().filter(|f| !f.is_empty()) {
                    answer.replies.push(reply(follow_up));
                }
                if conversation.bot_misses > 0 {
                    answer.bot_misses = Some(0);
                }
                Turn::Answered { intent }
            }
            (Decision::Handoff, Some(intent), said) => {
                answer.intent = Some(intent.clone());
                hand_off(
                    format!("intent {intent}"),
                    priority_of(m.priority),
                    m.team.clone(),
                    said,
                )
            }
            _ => {
                answer.intent = m.intent.clone();
                let misses = conversation.bot_misses + 1;
                if misses >= self.config.misses_before_handoff {
                    hand_off(
                        format!("the bot could not answer {misses} times in a row"),
                        Priority::Normal,
                        None,
                        None,
                    )
                } else {
                    let choices: Vec<String> = m
                        .candidates
                        .iter()
                        .filter_map(|(intent, _)| self.example(intent, m.lang))
                        .collect();
                    // The two likeliest topics, also as buttons where the channel has them.
                    answer.replies.push(NewReply {
                        quick_replies: choices.iter().take(2).cloned().collect(),
                        ..reply(clarify(m.lang, &choices))
                    });
                    answer.bot_misses = Some(misses);
                    Turn::Asked
                }
            }
        };
        Plan { turn, answer }
    }

    /// A phrasing of an intent in the customer's language, to offer as a choice.
    fn example(&self, intent: &str, lang: Lang) -> Option<String> {
        let kb = self.engine.knowledge_base()?;
        let examples = &kb.intent(intent)?.examples;
        match lang {
            Lang::Zh => examples.zh.first(),
            Lang::En => examples.en.first(),
        }
        .cloned()
    }
}

/// Whether two messages say the same thing: the same words, whatever the case,
/// spacing or punctuation. The message compared is the one before the answered one
/// (not the customer's newest: the next may be stored before the bot answers this one).
fn same_words(a: &str, b: &str) -> bool {
    let words = |t: &str| -> String {
        frontdesk_faq::text::normalize(t)
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect()
    };
    words(a) == words(b)
}

/// The knowledge base's priority hint as a conversation priority.
fn priority_of(hint: Option<frontdesk_faq::kb::Priority>) -> Priority {
    use frontdesk_faq::kb::Priority as Hint;
    match hint {
        Some(Hint::Low) => Priority::Low,
        Some(Hint::High) => Priority::High,
        Some(Hint::Urgent) => Priority::Urgent,
        Some(Hint::Normal) | None => Priority::Normal,
    }
}

fn hint(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "（如需人工客服，请回复“人工”。）",
        Lang::En => "(Reply \"human\" to reach a person.)",
    }
}

fn clarify(lang: Lang, choices: &[String]) -> String {
    match (lang, choices) {
        (Lang::Zh, [a, b, ..]) => format!(
            "抱歉，我不太确定您的问题。您是想问：\n1. {a}\n2. {b}\n也可以换个说法，或回复“人工”联系客服。"
        ),
        (Lang::En, [a, b, ..]) => format!(
            "Sorry, I'm not sure what you mean. Did you mean:\n1. {a}\n2. {b}\nYou can also rephrase, or reply \"human\" to reach a person."
        ),
        (Lang::Zh, _) => "抱歉，我不太确定您的问题，能换个说法吗？也可以回复“人工”联系客服。".to_owned(),
        (Lang::En, _) => {
            "Sorry, I'm not sure what you mean. Could you rephrase? Or reply \"human\" to reach a person.".to_owned()
        }
    }
}
