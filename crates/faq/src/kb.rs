//! The knowledge-base file (`config/faq.toml`): intents with example phrasings and
//! answers in Chinese and English, and the out-of-scope phrasings the bot must not
//! answer. See the shipped file's header for the format.

use crate::Lang;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// What the bot does when it is sure of an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Reply with the answer; the bot stays in the conversation.
    Answer,
    /// Hand the conversation to the agents (the answer says a person will join).
    Handoff,
    /// Reply with the answer (first steps to take now) and hand off as well.
    AnswerThenHandoff,
}

/// Urgency hint for a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

/// Text in both languages.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bilingual {
    #[serde(default)]
    pub zh: String,
    #[serde(default)]
    pub en: String,
}

impl Bilingual {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

/// Example phrasings in both languages.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    #[serde(default)]
    pub zh: Vec<String>,
    #[serde(default)]
    pub en: Vec<String>,
}

impl Examples {
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.zh.iter().chain(self.en.iter()).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.zh.len() + self.en.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One intent as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub id: String,
    pub action: Action,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub team: Option<String>,
    /// High-precision regexes checked before the model.
    #[serde(default)]
    pub triggers: Vec<String>,
    #[serde(default)]
    pub follow_up: Option<Bilingual>,
    pub examples: Examples,
    pub answer: Bilingual,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default, rename = "intent")]
    intents: Vec<Intent>,
    #[serde(default)]
    out_of_scope: Examples,
}

/// A loaded and checked knowledge base, answers filled in from `[vars]`.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    pub intents: Vec<Intent>,
    pub out_of_scope: Examples,
    pub vars: BTreeMap<String, String>,
    /// Compiled triggers, by intent index.
    pub(crate) triggers: Vec<Vec<regex::Regex>>,
}

/// A problem in a knowledge-base file, with its line where known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct KbError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// All problems found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct KbErrors(pub Vec<KbError>);

impl KnowledgeBase {
    pub fn load(path: &Path) -> Result<Self, KbErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            KbErrors(vec![KbError {
                file: path.display().to_string(),
                line: None,
                message: format!("cannot read the knowledge base: {e}"),
            }])
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses and checks a knowledge base; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, KbErrors> {
        let error = |line: Option<usize>, message: String| KbError {
            file: file.to_owned(),
            line,
            message,
        };
        let parsed: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            KbErrors(vec![error(line, e.message().to_owned())])
        })?;
        let mut errors = Vec::new();
        let mut seen = HashSet::new();
        let mut triggers = Vec::with_capacity(parsed.intents.len());
        let placeholder = regex::Regex::new(r"\{([A-Za-z0-9_]+)\}").expect("a valid regex");
        let mut intents = parsed.intents;
        for intent in &mut intents {
            let line = line_of_intent(text, &intent.id);
            let key = |k: &str| format!("intent {:?}: {k}", intent.id);
            if intent.id.is_empty()
                || !intent
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
            {
                errors.push(error(
                    line,
                    format!("{}: ids are lower-case words joined by _", key("id")),
                ));
            }
            if !seen.insert(intent.id.clone()) {
                errors.push(error(line, format!("{}: defined twice", key("id"))));
            }
            if intent.examples.is_empty() && intent.triggers.is_empty() {
                errors.push(error(
                    line,
                    format!(
                        "{}: no examples and no triggers: it could never match",
                        key("examples")
                    ),
                ));
            }
            for (lang, answer) in [("zh", &mut intent.answer.zh), ("en", &mut intent.answer.en)] {
                if answer.trim().is_empty() {
                    errors.push(error(
                        line,
                        format!("{}: empty", key(&format!("answer.{lang}"))),
                    ));
                }
                match fill(&placeholder, answer, &parsed.vars) {
                    Ok(filled) => *answer = filled,
                    Err(name) => errors.push(error(
                        line,
                        format!(
                            "{}: {{{name}}} is not defined in [vars]",
                            key(&format!("answer.{lang}"))
                        ),
                    )),
                }
            }
            if let Some(follow_up) = &mut intent.follow_up {
                for text in [&mut follow_up.zh, &mut follow_up.en] {
                    match fill(&placeholder, text, &parsed.vars) {
                        Ok(filled) => *text = filled,
                        Err(name) => errors.push(error(
                            line,
                            format!("{}: {{{name}}} is not defined in [vars]", key("follow_up")),
                        )),
                    }
                }
            }
            let mut compiled = Vec::new();
            for t in &intent.triggers {
                match regex::Regex::new(t) {
                    Ok(r) => compiled.push(r),
                    Err(e) => errors.push(error(
                        line,
                        format!("{}: {t:?} is not a valid regex: {e}", key("triggers")),
                    )),
                }
            }
            triggers.push(compiled);
        }
        if errors.is_empty() {
            Ok(Self {
                intents,
                out_of_scope: parsed.out_of_scope,
                vars: parsed.vars,
                triggers,
            })
        } else {
            Err(KbErrors(errors))
        }
    }

    pub fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }
}

/// Replaces `{name}` with `vars[name]`; the first undefined name is the error.
fn fill(
    placeholder: &regex::Regex,
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, String> {
    if let Some(missing) = placeholder
        .captures_iter(text)
        .map(|c| c[1].to_owned())
        .find(|name| !vars.contains_key(name))
    {
        return Err(missing);
    }
    Ok(placeholder
        .replace_all(text, |c: &regex::Captures<'_>| vars[&c[1]].clone())
        .into_owned())
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The line of `id = "ID"` in the file, to point at an intent's problems.
fn line_of_intent(text: &str, id: &str) -> Option<usize> {
    let quoted = format!("\"{id}\"");
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with("id") && l.contains(&quoted)
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
[vars]
email = "help@example.com"

[[intent]]
id = "fees"
action = "answer"
[intent.examples]
zh = ["手续费多少"]
en = ["how much are the fees"]
[intent.answer]
zh = "请写信到 {email}。"
en = "Write to {email}."
"#;

    #[test]
    fn answers_are_filled_from_vars() {
        let kb = KnowledgeBase::parse("faq.toml", SMALL).unwrap();
        assert_eq!(
            kb.intent("fees").unwrap().answer.en,
            "Write to help@example.com."
        );
    }

    #[test]
    fn an_undefined_placeholder_names_its_intent_and_line() {
        let text = SMALL.replace("{email}。", "{hotline}。");
        let e = KnowledgeBase::parse("faq.toml", &text)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "faq.toml:6: intent \"fees\": answer.zh: {hotline} is not defined in [vars]"
        );
    }

    #[test]
    fn a_bad_action_is_reported_with_its_line() {
        let text = SMALL.replace("action = \"answer\"", "action = \"shrug\"");
        let e = KnowledgeBase::parse("faq.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("faq.toml:7: unknown variant `shrug`"), "{e}");
    }
}
