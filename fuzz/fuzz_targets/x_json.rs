//! Any bytes as an X API v2 answer (a page of mentions or DM events) -> `Inbound`s.
//! Must never panic; what has an id is kept or skipped, never lost in a panic.
#![no_main]

use frontdesk_core::{ChannelAccount, ChannelKind};
use frontdesk_x::mapping::{Page, map_dm, map_mention};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let account = ChannelAccount::default_of(ChannelKind::X);
    let page = Page::read(&body);
    for item in &page.items {
        let _ = map_mention(item, &page, &account, "1500000000000000001");
        let _ = map_dm(item, &page, &account, "1500000000000000001");
    }
});
