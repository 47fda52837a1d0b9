//! The engine: one message in, one decision out.
//!
//! Order of checks: an explicit request for a person (人工, 转人工, human, agent...) hands
//! off at once; then an intent's own high-precision triggers; then the model. The model
//! is trusted only when its calibrated confidence clears the threshold and the answer
//! is an intent (not the out-of-scope class); otherwise the bot does not answer.

use crate::entities::{self, Entity};
use crate::kb::{Action, KnowledgeBase, Priority};
use crate::model::{Model, TrainOptions};
use crate::{Lang, text};
use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;

/// The label of the out-of-scope class.
pub const OUT_OF_SCOPE: &str = "out_of_scope";
/// The intent an explicit request for a person maps to.
pub const CONTACT_HUMAN: &str = "contact_human";

/// Checked before anything else, on the normalised text.
static ASKS_FOR_A_PERSON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"人工|真人|活人|客服人员|客服专员|找客服|(?i)(?-u:\b)(human|humans|agent|real person|live person|live agent|operator|representative|talk to (a |an )?(person|someone)|speak to (a |an )?(person|someone))(?-u:\b)",
    )
    .expect("valid")
});

/// What the bot should do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Reply with the answer.
    Answer,
    /// Hand the conversation to a person (possibly after the answer).
    Handoff,
    /// Not sure, or not ours to answer.
    Fallback,
}

/// The engine's verdict on one message.
#[derive(Debug, Clone, Serialize)]
pub struct Match {
    /// The intent, when the engine acts on one.
    pub intent: Option<String>,
    /// Calibrated probability of the most likely intent.
    pub confidence: f32,
    pub lang: Lang,
    pub action: Decision,
    /// The reply in the customer's language, when there is one.
    pub answer: Option<String>,
    pub follow_up: Option<String>,
    pub priority: Option<Priority>,
    pub team: Option<String>,
    /// The two likeliest intents with their confidence, to offer as choices.
    pub candidates: Vec<(String, f32)>,
    pub entities: Vec<Entity>,
}

/// How sure the engine must be.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Least calibrated confidence to act on an intent.
    pub threshold: f32,
    /// Least lead of the likeliest intent over the next: two close candidates mean the
    /// customer should be asked, not answered.
    pub margin: f32,
    pub train: TrainOptions,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            margin: 0.1,
            train: TrainOptions::default(),
        }
    }
}

/// A trained engine.
#[derive(Debug, Clone)]
pub struct Engine {
    kb: Option<KnowledgeBase>,
    labels: Vec<String>,
    model: Model,
    options: EngineOptions,
}

impl Engine {
    /// Trains on the knowledge base's phrasings, with its out-of-scope phrasings as a
    /// class of their own.
    pub fn from_kb(kb: KnowledgeBase, options: EngineOptions) -> Engine {
        let mut labels: Vec<String> = kb.intents.iter().map(|i| i.id.clone()).collect();
        let mut examples: Vec<(String, usize)> = Vec::new();
        for (c, intent) in kb.intents.iter().enumerate() {
            examples.extend(intent.examples.all().map(|t| (text::normalize(t), c)));
        }
        if !kb.out_of_scope.is_empty() {
            let c = labels.len();
            labels.push(OUT_OF_SCOPE.to_owned());
            examples.extend(kb.out_of_scope.all().map(|t| (text::normalize(t), c)));
        }
        let model = Model::train(&examples, labels.len(), &options.train);
        Engine {
            kb: Some(kb),
            labels,
            model,
            options,
        }
    }

    /// Trains on labelled texts alone (for evaluation on public data sets).
    pub fn from_examples(examples: &[(String, String)], options: EngineOptions) -> Engine {
        let mut labels: Vec<String> = examples.iter().map(|(_, l)| l.clone()).collect();
        labels.sort();
        labels.dedup();
        let indexed: Vec<(String, usize)> = examples
            .iter()
            .map(|(t, l)| (text::normalize(t), labels.binary_search(l).unwrap_or(0)))
            .collect();
        let model = Model::train(&indexed, labels.len(), &options.train);
        Engine {
            kb: None,
            labels,
            model,
            options,
        }
    }

    pub fn threshold(&self) -> f32 {
        self.options.threshold
    }

    pub fn knowledge_base(&self) -> Option<&KnowledgeBase> {
        self.kb.as_ref()
    }

    /// How many intents the knowledge base has (0 without one).
    pub fn intent_count(&self) -> usize {
        self.kb.as_ref().map_or(0, |kb| kb.intents.len())
    }

    /// Decides what to do with one message.
    pub fn match_text(&self, message: &str) -> Match {
        self.match_text_in(message, None)
    }

    /// As [`Engine::match_text`], answering in `known` (the customer's language as the
    /// channel or earlier messages told it) when the message has no words to tell its
    /// own language by (`/start`, an emoji).
    pub fn match_text_in(&self, message: &str, known: Option<Lang>) -> Match {
        let normalized = text::normalize(message);
        let lang = match known {
            Some(known) if !text::has_words(message) => known,
            _ => text::detect_language(message),
        };
        let entities = entities::extract(message);
        let probabilities = self.model.probabilities(&normalized);
        let mut ranked: Vec<(usize, f32)> = probabilities
            .iter()
            .copied()
            .enumerate()
            .filter(|(c, _)| self.labels[*c] != OUT_OF_SCOPE)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let candidates: Vec<(String, f32)> = ranked
            .iter()
            .take(2)
            .map(|&(c, p)| (self.labels[c].clone(), p))
            .collect();
        let best = ranked.first().copied();
        let top = probabilities
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c);

        let mut decided = Match {
            intent: None,
            confidence: best.map_or(0.0, |b| b.1),
            lang,
            action: Decision::Fallback,
            answer: None,
            follow_up: None,
            priority: None,
            team: None,
            candidates,
            entities,
        };
        let runner_up = ranked.get(1).map_or(0.0, |r| r.1);
        let model_says = match (best, top) {
            (Some((c, p)), Some(t))
                if t == c
                    && p >= self.options.threshold
                    && p - runner_up >= self.options.margin =>
            {
                Some((self.labels[c].as_str(), p))
            }
            _ => None,
        };
        let Some(kb) = &self.kb else {
            // Without a knowledge base there is nothing to say: report the label only.
            if let Some((id, _)) = model_says {
                decided.intent = Some(id.to_owned());
                decided.action = Decision::Answer;
            }
            return decided;
        };
        let hands_off = |id: &str| {
            kb.intent(id)
                .is_some_and(|i| matches!(i.action, Action::Handoff | Action::AnswerThenHandoff))
        };
        let chosen =
            if ASKS_FOR_A_PERSON.is_match(&normalized) && kb.intent(CONTACT_HUMAN).is_some() {
                // A person it is. If the message is also clearly a scam report or a stolen
                // wallet, say so: that handoff carries the higher priority and the right team.
                match model_says {
                    Some((id, p)) if hands_off(id) => Some((id, p)),
                    _ => Some((CONTACT_HUMAN, 1.0)),
                }
            } else if let Some(i) = kb.triggers.iter().position(|ts| {
                ts.iter()
                    .any(|t| t.is_match(message) || t.is_match(&normalized))
            }) {
                Some((kb.intents[i].id.as_str(), 1.0))
            } else {
                model_says
            };
        if let Some((id, confidence)) = chosen
            && let Some(intent) = kb.intent(id)
        {
            decided.intent = Some(intent.id.clone());
            decided.confidence = confidence;
            decided.action = match intent.action {
                Action::Answer => Decision::Answer,
                Action::Handoff | Action::AnswerThenHandoff => Decision::Handoff,
            };
            decided.answer = Some(intent.answer.get(lang).to_owned());
            decided.follow_up = intent.follow_up.as_ref().map(|f| f.get(lang).to_owned());
            if decided.action == Decision::Handoff {
                decided.priority = Some(intent.priority);
                decided.team = intent.team.clone();
            }
        }
        decided
    }

    /// The most likely label of a message, its calibrated probability, and whether the
    /// engine would act on it (for evaluation).
    pub fn classify(&self, message: &str) -> (String, f32, bool) {
        let m = self.match_text(message);
        match (&self.kb, m.intent) {
            (Some(_), Some(intent)) => (intent, m.confidence, true),
            (Some(_), None) => (OUT_OF_SCOPE.to_owned(), m.confidence, false),
            (None, intent) => {
                let label = m
                    .candidates
                    .first()
                    .map(|c| c.0.clone())
                    .unwrap_or_default();
                (label, m.confidence, intent.is_some())
            }
        }
    }
}
