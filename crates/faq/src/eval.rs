//! `frontdesk faq eval`: accuracy, macro-F1, coverage and precision at the threshold,
//! and latency, on a labelled CSV file.

use crate::engine::{Engine, EngineOptions};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

/// Reads `text` and `label_column` from a CSV file with a header.
pub fn read_csv(path: &Path, label_column: &str) -> Result<Vec<(String, String)>, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            format!(
                "{}: no column {name:?} (columns: {})",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })
    };
    let (text, label) = (column("text")?, column(label_column)?);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{}: row {}: {e}", path.display(), i + 2))?;
        let (Some(t), Some(l)) = (record.get(text), record.get(label)) else {
            return Err(format!("{}: row {} is short", path.display(), i + 2));
        };
        rows.push((t.to_owned(), l.to_owned()));
    }
    Ok(rows)
}

/// `shots` examples of each label, drawn with `seed`; all of them when `shots` is None.
pub fn sample(rows: &[(String, String)], shots: Option<usize>, seed: u64) -> Vec<(String, String)> {
    let Some(shots) = shots else {
        return rows.to_vec();
    };
    let mut by_label: BTreeMap<&str, Vec<&(String, String)>> = BTreeMap::new();
    for row in rows {
        by_label.entry(&row.1).or_default().push(row);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for (_, mut group) in by_label {
        group.shuffle(&mut rng);
        out.extend(group.into_iter().take(shots).cloned());
    }
    out
}

/// What `faq eval` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub messages: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Share of messages the engine would act on (confidence at or over the threshold).
    pub coverage: f64,
    /// Accuracy among those.
    pub precision_at_threshold: f64,
    /// The most that could be covered, by some threshold, with precision >= 0.95.
    pub coverage_at_precision_95: f64,
    pub us_per_message: f64,
    pub us_p99: f64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "accuracy: {:.4}", self.accuracy)?;
        writeln!(f, "macro_f1: {:.4}", self.macro_f1)?;
        writeln!(f, "coverage: {:.4}", self.coverage)?;
        writeln!(
            f,
            "precision_at_threshold: {:.4}",
            self.precision_at_threshold
        )?;
        writeln!(
            f,
            "coverage_at_precision_95: {:.4}",
            self.coverage_at_precision_95
        )?;
        writeln!(f, "us_per_message: {:.1}", self.us_per_message)?;
        write!(f, "us_p99: {:.1}", self.us_p99)
    }
}

/// Scores `engine` on labelled rows.
pub fn evaluate(engine: &Engine, test: &[(String, String)]) -> Report {
    let mut outcomes: Vec<(f32, bool, bool)> = Vec::with_capacity(test.len());
    let mut micros: Vec<f64> = Vec::with_capacity(test.len());
    let mut predicted_pairs: Vec<(&str, String)> = Vec::with_capacity(test.len());
    for (text, label) in test {
        let started = Instant::now();
        let (predicted, confidence, acts) = engine.classify(text);
        micros.push(started.elapsed().as_secs_f64() * 1e6);
        outcomes.push((confidence, acts, predicted == *label));
        predicted_pairs.push((label.as_str(), predicted));
    }
    let n = test.len().max(1) as f64;
    let correct = outcomes.iter().filter(|o| o.2).count() as f64;
    let covered: Vec<&(f32, bool, bool)> = outcomes.iter().filter(|o| o.1).collect();
    let covered_correct = covered.iter().filter(|o| o.2).count() as f64;
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| {
        micros
            .get(((micros.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Report {
        messages: test.len(),
        accuracy: correct / n,
        macro_f1: macro_f1(&predicted_pairs),
        coverage: covered.len() as f64 / n,
        precision_at_threshold: if covered.is_empty() {
            0.0
        } else {
            covered_correct / covered.len() as f64
        },
        coverage_at_precision_95: coverage_at_precision(&outcomes, 0.95),
        us_per_message: at(0.5),
        us_p99: at(0.99),
    }
}

/// Ranks by confidence and finds the largest top share whose precision is >= `target`.
fn coverage_at_precision(outcomes: &[(f32, bool, bool)], target: f64) -> f64 {
    let mut ranked: Vec<&(f32, bool, bool)> = outcomes.iter().collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut right = 0usize;
    let mut best = 0usize;
    for (k, o) in ranked.iter().enumerate() {
        if o.2 {
            right += 1;
        }
        if right as f64 / (k + 1) as f64 >= target {
            best = k + 1;
        }
    }
    best as f64 / outcomes.len().max(1) as f64
}

/// The mean over labels (those in the test set) of F1.
fn macro_f1(pairs: &[(&str, String)]) -> f64 {
    let mut tp: HashMap<&str, f64> = HashMap::new();
    let mut fp: HashMap<&str, f64> = HashMap::new();
    let mut fn_: HashMap<&str, f64> = HashMap::new();
    for (gold, predicted) in pairs {
        if *gold == predicted.as_str() {
            *tp.entry(gold).or_default() += 1.0;
        } else {
            *fn_.entry(gold).or_default() += 1.0;
            *fp.entry(predicted.as_str()).or_default() += 1.0;
        }
    }
    let mut labels: Vec<&str> = pairs.iter().map(|(g, _)| *g).collect();
    labels.sort_unstable();
    labels.dedup();
    let f1s: Vec<f64> = labels
        .iter()
        .map(|l| {
            let t = tp.get(l).copied().unwrap_or(0.0);
            let p = t + fp.get(l).copied().unwrap_or(0.0);
            let r = t + fn_.get(l).copied().unwrap_or(0.0);
            if t == 0.0 { 0.0 } else { 2.0 * t / (p + r) }
        })
        .collect();
    f1s.iter().sum::<f64>() / f1s.len().max(1) as f64
}

/// Trains on `train` (sampled) and scores on `test`.
pub fn train_and_evaluate(
    train: &[(String, String)],
    shots: Option<usize>,
    seed: u64,
    test: &[(String, String)],
    options: EngineOptions,
) -> Report {
    let examples = sample(train, shots, seed);
    let engine = Engine::from_examples(&examples, options);
    evaluate(&engine, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_averages_over_the_labels_of_the_test_set() {
        let pairs = vec![
            ("a", "a".to_string()),
            ("a", "b".to_string()),
            ("b", "b".to_string()),
        ];
        // a: tp 1, fn 1 -> F1 2/3; b: tp 1, fp 1 -> F1 2/3.
        assert!((macro_f1(&pairs) - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn coverage_at_precision_takes_the_most_confident_first() {
        let outcomes = vec![
            (0.9, true, true),
            (0.8, true, true),
            (0.7, true, false),
            (0.6, true, true),
        ];
        assert_eq!(coverage_at_precision(&outcomes, 0.95), 0.5);
        assert_eq!(coverage_at_precision(&outcomes, 0.75), 1.0);
    }
}
