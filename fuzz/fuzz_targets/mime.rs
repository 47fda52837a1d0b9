//! Any bytes as a mail -> `Inbound`: no panic, whatever the charset, structure or size;
//! every mail becomes a message (malformed ones with a warning), never nothing.
#![no_main]

use frontdesk_core::{ChannelAccount, ChannelKind};
use frontdesk_email::parse::{ParseOptions, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mail = parse(data, ParseOptions::default());
    let account = ChannelAccount::default_of(ChannelKind::Email);
    let thread = frontdesk_email::thread::fallback_thread(
        &mail.message_id,
        &mail.in_reply_to,
        &mail.references,
    );
    let inbound = frontdesk_email::channel::inbound_of(&account, &mail, &thread, 1, 1);
    assert!(!inbound.text.is_empty());
});
