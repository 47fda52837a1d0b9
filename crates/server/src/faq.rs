//! `frontdesk faq match` and `frontdesk faq eval`.

use crate::config::Config;
use anyhow::Context;
use frontdesk_faq::eval::{self, Report};
use frontdesk_faq::{Engine, EngineOptions, KnowledgeBase, Match};
use std::io::{BufRead, Write};
use std::path::Path;

/// The default knowledge base, built in, for when `config/faq.toml` is not there (a
/// binary run outside a checkout). A path configured explicitly must exist.
const BUILT_IN: &str = include_str!("../../../config/faq.toml");

/// Loads the configured knowledge base, or the built-in one when the default path is
/// absent.
pub fn load_knowledge_base(config: &Config) -> Result<KnowledgeBase, frontdesk_faq::kb::KbErrors> {
    let path = &config.bot.faq;
    let default = crate::config::Bot::default().faq;
    if *path == default && !path.exists() {
        return KnowledgeBase::parse("<built-in knowledge base>", BUILT_IN);
    }
    KnowledgeBase::load(path)
}

/// Loads the knowledge base and trains the engine on it.
pub fn load_engine(config: &Config) -> anyhow::Result<Engine> {
    let kb = load_knowledge_base(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Engine::from_kb(kb, options(config)))
}

fn options(config: &Config) -> EngineOptions {
    EngineOptions {
        threshold: config.bot.threshold,
        margin: config.bot.margin,
        ..EngineOptions::default()
    }
}

/// The JSON object `faq match` prints for one message.
pub fn match_json(m: &Match) -> serde_json::Value {
    serde_json::json!({
        "intent": m.intent,
        "confidence": (m.confidence * 10_000.0).round() / 10_000.0,
        "lang": m.lang,
        "action": m.action,
        "answer": m.answer,
        "follow_up": m.follow_up,
        "priority": m.priority,
        "team": m.team,
        "candidates": m.candidates.iter().map(|(id, p)| serde_json::json!({"intent": id, "confidence": p})).collect::<Vec<_>>(),
        "entities": m.entities,
    })
}

/// One message from the argument, or one per line of standard input.
pub fn run_match(config: &Config, text: Option<String>) -> anyhow::Result<()> {
    let engine = load_engine(config)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = match text {
        Some(text) => writeln!(out, "{}", match_json(&engine.match_text(&text))),
        None => {
            for line in std::io::stdin().lock().lines() {
                let line = line.context("cannot read standard input")?;
                let json = match_json(&engine.match_text(&line));
                if let Err(e) = writeln!(out, "{json}") {
                    return quiet_on_broken_pipe(e);
                }
            }
            Ok(())
        }
    };
    written.or_else(quiet_on_broken_pipe)
}

/// A reader that went away (`frontdesk faq match < file | head`) is not an error.
fn quiet_on_broken_pipe(e: std::io::Error) -> anyhow::Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e.into())
    }
}

/// Scores the configured knowledge base on `test`, or, with `train`, an engine built
/// from that file (N shots per label with `seed`, all examples without `shots`).
pub fn run_eval(
    config: &Config,
    test: &Path,
    train: Option<&Path>,
    shots: Option<usize>,
    seed: u64,
    label_column: &str,
) -> anyhow::Result<Report> {
    let test_rows = eval::read_csv(test, label_column).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(!test_rows.is_empty(), "{} has no rows", test.display());
    Ok(match train {
        Some(train) => {
            let train_rows = eval::read_csv(train, label_column).map_err(anyhow::Error::msg)?;
            eval::train_and_evaluate(&train_rows, shots, seed, &test_rows, options(config))
        }
        None => eval::evaluate(&load_engine(config)?, &test_rows),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bot's own words pass the outbound guard, or the bot could never send them.
    #[test]
    fn every_shipped_answer_passes_the_outbound_guard() {
        let kb = load_knowledge_base(&Config::default()).unwrap();
        for intent in &kb.intents {
            let follow_up = intent.follow_up.clone().unwrap_or_default();
            for text in [
                &intent.answer.zh,
                &intent.answer.en,
                &follow_up.zh,
                &follow_up.en,
            ] {
                if let Err(refusal) = frontdesk_guard::check_outbound(text) {
                    panic!("{}: {refusal}: {text}", intent.id);
                }
            }
        }
    }

    /// Only the default path falls back to the built-in knowledge base (the binary
    /// tests serve from an empty directory); a configured file that is missing is an
    /// error, not a silent fallback.
    #[test]
    fn an_explicitly_configured_knowledge_base_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.bot.faq = dir.path().join("missing.toml");
        let e = load_knowledge_base(&config).unwrap_err().to_string();
        assert!(
            e.contains("missing.toml") && e.contains("cannot read"),
            "{e}"
        );
    }
}
