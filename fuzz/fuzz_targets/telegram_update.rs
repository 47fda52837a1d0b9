//! Any bytes as a Telegram update -> `Inbound`: no panic; an update with an id is kept
//! (read by the client, or salvaged from the raw JSON), never lost.
#![no_main]

use frontdesk_core::{ChannelAccount, ChannelKind};
use frontdesk_telegram::mapping::{MapOptions, read_update};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let account = ChannelAccount::default_of(ChannelKind::Telegram);
    let has_id = serde_json::from_str::<serde_json::Value>(text)
        .is_ok_and(|v| v["update_id"].as_i64().is_some());
    let options = MapOptions {
        bot_username: "FrontWalletBot".into(),
        bot_id: 7_000_000_001,
        groups: true,
    };
    let read = read_update(text, &account, &options);
    assert_eq!(read.is_some(), has_id, "an update with an id was lost");
});
