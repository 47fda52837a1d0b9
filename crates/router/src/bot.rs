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
use frontdesk_faq::engine::Decision;
use frontdesk_faq::{Engine, Lang};
use frontdesk_store::{ConversationChange, NewReply, Store, StoreError};
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

    /// Takes the bot's turn after the customer's message `message` (`text`) in
    /// `conversation`.
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
        let known = match frontdesk_faq::text::has_words(text) {
            true => None,
            false => crate::engine::lang_of_code(conversation.language.as_deref()),
        };
        let m = self.engine.match_text_in(text, known);
        let id = conversation.id;
        let hand_off = |reason: String, priority, team, said| Turn::HandOff {
            reason,
            priority,
            team,
            said,
            lang: m.lang,
        };
        if self.repeated(store, conversation, message, text).await? {
            return Ok(hand_off(
                "the customer repeated the same message".into(),
                Priority::Normal,
                None,
                None,
            ));
        }
        let reply = |text: String| NewReply {
            answers: Some(message),
            ..NewReply::from_bot(id, text)
        };
        match (m.action, m.intent.clone(), m.answer.clone()) {
            (Decision::Answer, Some(intent), Some(answer)) => {
                // The topic is noted with the answer, in its transaction.
                let answered = NewReply {
                    intent: Some(intent.clone()),
                    ..reply(format!("{answer}\n\n{}", hint(m.lang)))
                };
                store.reply(answered).await?;
                if let Some(follow_up) = m.follow_up.filter(|f| !f.is_empty()) {
                    store.reply(reply(follow_up)).await?;
                }
                if conversation.bot_misses > 0 {
                    let reset = ConversationChange {
                        bot_misses: Some(0),
                        ..ConversationChange::default()
                    };
                    store.update_conversation(id, &reset).await?;
                }
                Ok(Turn::Answered { intent })
            }
            (Decision::Handoff, Some(intent), said) => {
                store.note_intent(id, &intent).await?;
                Ok(hand_off(
                    format!("intent {intent}"),
                    priority_of(m.priority),
                    m.team.clone(),
                    said,
                ))
            }
            _ => {
                if let Some(intent) = &m.intent {
                    store.note_intent(id, intent).await?;
                }
                let misses = conversation.bot_misses + 1;
                if misses >= self.config.misses_before_handoff {
                    return Ok(hand_off(
                        format!("the bot could not answer {misses} times in a row"),
                        Priority::Normal,
                        None,
                        None,
                    ));
                }
                let choices: Vec<String> = m
                    .candidates
                    .iter()
                    .filter_map(|(intent, _)| self.example(intent, m.lang))
                    .collect();
                // The two likeliest topics, also as buttons where the channel has them.
                let question = NewReply {
                    quick_replies: choices.iter().take(2).cloned().collect(),
                    ..reply(clarify(m.lang, &choices))
                };
                store.reply(question).await?;
                let change = ConversationChange {
                    bot_misses: Some(misses),
                    ..ConversationChange::default()
                };
                store.update_conversation(id, &change).await?;
                Ok(Turn::Asked)
            }
        }
    }

    /// Whether the customer sent the same thing in the message before `message` (not
    /// their newest: the next one may be stored before the bot answers this one).
    async fn repeated(
        &self,
        store: &dyn Store,
        conversation: &Conversation,
        message: MessageId,
        text: &str,
    ) -> Result<bool, StoreError> {
        let Some(previous) = store.contact_text_before(conversation.id, message).await? else {
            return Ok(false);
        };
        // The same words, whatever the case, spacing or punctuation.
        let words = |t: &str| -> String {
            frontdesk_faq::text::normalize(t)
                .chars()
                .filter(|c| c.is_alphanumeric())
                .collect()
        };
        Ok(words(&previous) == words(text))
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
