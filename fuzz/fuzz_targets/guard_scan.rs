//! Any text through the guard: no panic; findings lie inside the text; and what the
//! guard lets through holds no secret it would find on a second look.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scan = frontdesk_guard::scan(text);
    let chars = text.chars().count();
    for finding in &scan.findings {
        assert!(finding.start <= finding.end && finding.end <= chars);
    }
    assert!(
        frontdesk_guard::scan(&scan.redacted).is_clean(),
        "a secret is left in the redacted text"
    );
});
