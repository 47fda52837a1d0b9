//! Scan cost per kilobyte of ordinary customer text (the common case: nothing found),
//! and of text that carries a phrase, against lower-casing the same text as the
//! baseline measured in the same run. Run with `cargo bench -p frontdesk-guard`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn kilobyte_of(sentence: &str) -> String {
    let mut text = String::new();
    while text.len() < 1024 {
        text.push_str(sentence);
    }
    text
}

fn scanning(c: &mut Criterion) {
    let mixed = kilobyte_of(
        "你好，我昨天的转账一直没有到账，交易哈希在截图里。My withdrawal of 250 USDT is still pending, please check. ",
    );
    let phrase = format!(
        "{} abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        kilobyte_of("my wallet was drained, these are my words: ")
    );
    let mut group = c.benchmark_group("guard");
    for (name, text) in [("ordinary_1kb", &mixed), ("with_phrase_1kb", &phrase)] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("baseline_lowercase/{name}"), |b| {
            b.iter(|| black_box(black_box(text.as_str()).to_lowercase()))
        });
        group.bench_function(format!("scan/{name}"), |b| {
            b.iter(|| black_box(frontdesk_guard::scan(black_box(text))))
        });
    }
    group.finish();
}

criterion_group!(benches, scanning);
criterion_main!(benches);
