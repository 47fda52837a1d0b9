//! Match latency on one thread: the shipped knowledge base (19 intents, zh and en), and
//! a 77-intent model trained on Banking77 when the data set is beside the checkout
//! (`../shared/data/banking77/train.csv`), against normalising the same text as the
//! baseline measured in the same run. Run with `cargo bench -p frontdesk-faq`.

use criterion::{Criterion, criterion_group, criterion_main};
use frontdesk_faq::{Engine, EngineOptions, KnowledgeBase, eval};
use std::hint::black_box;
use std::path::Path;

const MESSAGES: [&str; 6] = [
    "转账一直pending怎么办",
    "my withdrawal has been stuck for two hours",
    "我的錢包被盜了，資產全沒了",
    "how do I reset my password",
    "what's the weather tomorrow",
    "someone who says they are support asked me for my seed phrase",
];

fn matching(c: &mut Criterion) {
    // The baseline: normalising the text, which any matcher must do first.
    c.bench_function("baseline/normalize", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % MESSAGES.len();
            black_box(frontdesk_faq::text::normalize(black_box(MESSAGES[i])))
        })
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let kb =
        KnowledgeBase::load(&root.join("config/faq.toml")).expect("the shipped knowledge base");
    let engine = Engine::from_kb(kb, EngineOptions::default());
    c.bench_function("match/default_kb", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % MESSAGES.len();
            black_box(engine.match_text(black_box(MESSAGES[i])))
        })
    });

    let banking = root.join("../shared/data/banking77");
    match (
        eval::read_csv(&banking.join("train.csv"), "category"),
        eval::read_csv(&banking.join("test.csv"), "category"),
    ) {
        (Ok(train), Ok(test)) => {
            let engine = Engine::from_examples(&train, EngineOptions::default());
            c.bench_function("match/banking77_full", |b| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % test.len();
                    black_box(engine.match_text(black_box(&test[i].0)))
                })
            });
        }
        _ => eprintln!(
            "skipping match/banking77_full: {} not found",
            banking.display()
        ),
    }
}

criterion_group!(benches, matching);
criterion_main!(benches);
