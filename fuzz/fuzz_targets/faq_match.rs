//! Any text through the answer engine built from the shipped knowledge base: no panic,
//! a confidence between 0 and 1.
#![no_main]

use frontdesk_faq::engine::{Engine, EngineOptions};
use frontdesk_faq::kb::KnowledgeBase;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/faq.toml");
        let kb = KnowledgeBase::load(std::path::Path::new(path)).expect("the shipped knowledge base");
        Engine::from_kb(kb, EngineOptions::default())
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let m = engine().match_text(text);
    assert!((0.0..=1.0).contains(&m.confidence), "{}", m.confidence);
});
