//! The guard: no recovery phrase or private key is ever stored, and no message that
//! asks a customer for one is ever sent.
//!
//! - [`scan`]: finds recovery phrases ([`mnemonic`], all ten BIP-39 wordlists, checksum
//!   checked) and private keys ([`keys`]: raw hex, WIF, extended keys, keystore JSON)
//!   and replaces each with a marker such as `[redacted recovery phrase]`. It runs inside
//!   the store's ingest, before anything is stored, logged, emitted or queued
//!   ([`Guard`] is the store's [`TextFilter`]).
//! - [`check_outbound`]: refuses bot and agent messages that ask for a phrase or key, or
//!   to "verify/sync the wallet" on an outside link.

pub mod keys;
pub mod mnemonic;
mod outbound;

pub use outbound::{Refusal, check_outbound};

use frontdesk_core::{Filtered, OutboundCheck, TextFilter};
use serde::Serialize;
use std::ops::Range;

/// What kind of secret a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// A BIP-39 phrase whose checksum holds.
    RecoveryPhrase,
    /// Twelve or more wordlist words in a row whose checksum does not hold.
    PossibleRecoveryPhrase,
    PrivateKey,
    ExtendedPrivateKey,
    Keystore,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::RecoveryPhrase => "recovery_phrase",
            SecretKind::PossibleRecoveryPhrase => "possible_recovery_phrase",
            SecretKind::PrivateKey => "private_key",
            SecretKind::ExtendedPrivateKey => "extended_private_key",
            SecretKind::Keystore => "keystore",
        }
    }

    /// What replaces the secret in stored text.
    pub fn marker(self) -> &'static str {
        match self {
            SecretKind::RecoveryPhrase | SecretKind::PossibleRecoveryPhrase => {
                "[redacted recovery phrase]"
            }
            SecretKind::PrivateKey | SecretKind::ExtendedPrivateKey => "[redacted private key]",
            SecretKind::Keystore => "[redacted keystore]",
        }
    }
}

/// One secret found, by character positions in the scanned text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: SecretKind,
    pub start: usize,
    pub end: usize,
}

/// The scanned text with every secret replaced by its marker, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub redacted: String,
    pub findings: Vec<Finding>,
    /// Byte ranges of the markers in `redacted`.
    marker_ranges: Vec<Range<usize>>,
}

impl Scan {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Finds and redacts every secret in `text`.
///
/// Whether a hex string is a key or a transaction hash depends on the words around it,
/// and a redaction changes those words (a 64-character key becomes a shorter marker,
/// bringing earlier words into reach). So the redacted text is looked at again, and
/// whatever that look finds is redacted in the original too, until a look finds
/// nothing: what the guard lets through reads the same on a second look.
pub fn scan(text: &str) -> Scan {
    let mut secrets = merged(find(text));
    for _ in 0..MAX_LOOKS {
        let scan = redact(text, &secrets);
        if secrets.is_empty() {
            // Nothing redacted: a second look would see the same text.
            return scan;
        }
        let again = find(&scan.redacted);
        if again.is_empty() {
            return scan;
        }
        let originals: Vec<Range<usize>> = secrets.iter().map(|(_, r)| r.clone()).collect();
        secrets.extend(
            again
                .into_iter()
                .map(|(kind, r)| (kind, in_original(&scan.marker_ranges, &originals, r))),
        );
        secrets = merged(secrets);
    }
    redact(text, &secrets)
}

/// Looks at a text again at most this often (each look can only widen what is redacted;
/// in practice one more look is the most ever needed).
const MAX_LOOKS: usize = 4;

/// Every secret in `text`, as byte ranges (overlapping, unsorted).
fn find(text: &str) -> Vec<(SecretKind, Range<usize>)> {
    let mut secrets: Vec<(SecretKind, Range<usize>)> = mnemonic::find(text)
        .into_iter()
        .map(|p| {
            let kind = if p.checksum_valid {
                SecretKind::RecoveryPhrase
            } else {
                SecretKind::PossibleRecoveryPhrase
            };
            (kind, p.range)
        })
        .collect();
    secrets.extend(keys::find(text).into_iter().map(|(k, r)| {
        let kind = match k {
            keys::KeyKind::PrivateKey => SecretKind::PrivateKey,
            keys::KeyKind::ExtendedPrivateKey => SecretKind::ExtendedPrivateKey,
            keys::KeyKind::Keystore => SecretKind::Keystore,
        };
        (kind, r)
    }));
    secrets
}

/// Sorted, with overlapping finds merged into the first (a keystore holds hex that
/// looks like a key).
fn merged(mut secrets: Vec<(SecretKind, Range<usize>)>) -> Vec<(SecretKind, Range<usize>)> {
    secrets.sort_by_key(|(_, r)| (r.start, std::cmp::Reverse(r.end)));
    let mut merged: Vec<(SecretKind, Range<usize>)> = Vec::new();
    for (kind, r) in secrets {
        match merged.last_mut() {
            Some((_, last)) if r.start < last.end => last.end = last.end.max(r.end),
            _ => merged.push((kind, r)),
        }
    }
    merged
}

/// A byte range of a redacted text as a range of its original: a bound inside a marker
/// moves out to the edge of what the marker replaced. `markers` and `originals` pair
/// each marker in the redacted text with the range of the original it replaced.
fn in_original(
    markers: &[Range<usize>],
    originals: &[Range<usize>],
    r: Range<usize>,
) -> Range<usize> {
    let map = |at: usize, end: bool| {
        // The original offset: `at` less what the markers before it added.
        let mut shift: isize = 0;
        for (m, o) in markers.iter().zip(originals) {
            let inside = if end {
                m.start < at && at <= m.end
            } else {
                m.start <= at && at < m.end
            };
            if inside {
                return if end { o.end } else { o.start };
            }
            if m.end <= at {
                shift += m.len() as isize - o.len() as isize;
            }
        }
        at.saturating_add_signed(-shift)
    };
    map(r.start, false)..map(r.end, true)
}

/// `text` with each of `secrets` (sorted, not overlapping) replaced by its marker.
fn redact(text: &str, secrets: &[(SecretKind, Range<usize>)]) -> Scan {
    let mut redacted = String::with_capacity(text.len());
    let mut findings = Vec::with_capacity(secrets.len());
    let mut marker_ranges = Vec::with_capacity(secrets.len());
    let mut at = 0;
    for (kind, r) in secrets {
        redacted.push_str(&text[at..r.start]);
        let m = redacted.len();
        redacted.push_str(kind.marker());
        marker_ranges.push(m..redacted.len());
        findings.push(Finding {
            kind: *kind,
            start: text[..r.start].chars().count(),
            end: text[..r.end].chars().count(),
        });
        at = r.end;
    }
    redacted.push_str(&text[at..]);
    Scan {
        redacted,
        findings,
        marker_ranges,
    }
}

/// What the customer is told when they sent a secret, in their language (Chinese if
/// their message has Chinese characters).
pub fn customer_warning(message: &str) -> &'static str {
    if message.chars().any(mnemonic::is_han) {
        "为了您的资产安全，我们没有保存您发来的助记词或私钥，并已将其从记录中删除。客服绝不会向您索要助记词或私钥。\
         请把这个钱包视为已泄露：立即创建一个新钱包（使用新的助记词），把剩余资产转入新钱包，并撤销所有代币授权。\
         我们已通知人工客服紧急跟进。"
    } else {
        "For your safety we did not keep the recovery phrase or private key you sent and removed it from our records. \
         Support will never ask you for it. Treat this wallet as compromised: create a new wallet with a new recovery \
         phrase now, move your remaining funds there, and revoke all token approvals. A member of our team has been \
         alerted and will follow up urgently."
    }
}

/// The guard as the store's inbound filter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guard;

impl TextFilter for Guard {
    fn filter(&self, text: &str) -> Filtered {
        let scan = scan(text);
        Filtered {
            findings: scan
                .findings
                .iter()
                .zip(&scan.marker_ranges)
                .map(|(f, r)| frontdesk_core::Finding {
                    kind: f.kind.as_str().to_owned(),
                    start: r.start,
                    end: r.end,
                })
                .collect(),
            text: scan.redacted,
            entities: Vec::new(),
        }
    }
}

impl OutboundCheck for Guard {
    fn check(&self, text: &str) -> Result<(), String> {
        check_outbound(text).map_err(|r| r.reason.to_owned())
    }
}

/// `{"redacted": TEXT, "findings": [{"kind", "start", "end"}]}`, positions in
/// characters of the scanned text: what `frontdesk guard scan` prints.
pub fn scan_json(text: &str) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        redacted: &'a str,
        findings: &'a [Finding],
    }
    let s = scan(text);
    serde_json::to_string(&Out {
        redacted: &s.redacted,
        findings: &s.findings,
    })
    .unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHRASE: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    #[test]
    fn a_phrase_is_replaced_by_its_marker_and_the_rest_is_kept() {
        let s = scan(&format!("我的助记词是 {PHRASE} 请帮我找回"));
        assert_eq!(
            s.redacted,
            "我的助记词是 [redacted recovery phrase] 请帮我找回"
        );
        assert_eq!(s.findings.len(), 1);
        assert_eq!(s.findings[0].kind, SecretKind::RecoveryPhrase);
        assert_eq!(
            s.findings[0].start, 7,
            "character positions in the scanned text"
        );
        assert_eq!(s.findings[0].end, 7 + PHRASE.chars().count());
    }

    #[test]
    fn the_stored_finding_points_at_the_marker() {
        let f = Guard.filter(&format!("words: {PHRASE}"));
        assert_eq!(
            &f.text[f.findings[0].start..f.findings[0].end],
            "[redacted recovery phrase]"
        );
        assert_eq!(f.findings[0].kind, "recovery_phrase");
    }
}
