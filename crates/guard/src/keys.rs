//! Private keys: raw 64-hex keys (told from transaction hashes by their context), WIF
//! keys and extended private keys (base58check), and keystore JSON pastes.

use regex::Regex;
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::sync::LazyLock;

/// What kind of key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    PrivateKey,
    ExtendedPrivateKey,
    Keystore,
}

static HEX64: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?-u:\b)(0x)?[0-9a-f]{64}(?-u:\b)").expect("valid"));
static KEY_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)priv(ate)?[\s_-]*key|secret[\s_-]*key|(?-u:\b)privkey(?-u:\b)|私钥|私鑰|密钥|密鑰|秘钥")
        .expect("valid")
});
static TX_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(tx|txid|tx[\s_-]*id|txn|tx[\s_-]*hash|hash|transaction|transfer|block|explorer|etherscan|bscscan|tronscan)(?-u:\b)|交易|哈希|转账|轉賬|区块|區塊")
        .expect("valid")
});
static WIF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)[59KLc][1-9A-HJ-NP-Za-km-z]{50,51}(?-u:\b)").expect("valid")
});
static XPRV: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)[xyztuvYZUV]prv[1-9A-HJ-NP-Za-km-z]{100,112}(?-u:\b)").expect("valid")
});

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Decodes base58check; `None` if a character is not base58 or the checksum is wrong.
pub fn base58check(s: &str) -> Option<Vec<u8>> {
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.bytes() {
        let mut carry = BASE58.iter().position(|&b| b == c)? as u32;
        for b in bytes.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&b| b == b'1').count();
    let mut full = vec![0u8; zeros];
    full.extend(bytes);
    if full.len() < 4 {
        return None;
    }
    let (payload, checksum) = full.split_at(full.len() - 4);
    let hash = Sha256::digest(Sha256::digest(payload));
    (hash[..4] == *checksum).then(|| payload.to_vec())
}

/// Whether `text` has `n` ASCII letters or digits in a row. Every key format here is at
/// least 51 of them long, so ordinary text skips the regexes after one pass over bytes.
fn has_alphanumeric_run(text: &str, n: usize) -> bool {
    let mut run = 0;
    text.bytes().any(|b| {
        run = if b.is_ascii_alphanumeric() {
            run + 1
        } else {
            0
        };
        run >= n
    })
}

/// Whether `text[within]` speaks of a private key. Our own marker (`[redacted private
/// key]`) does not count, even where `within` cuts it: a text the guard has redacted
/// must read the same on a second look, or a hex string next to a redacted key would
/// turn from a transaction hash into a key.
fn key_words_in(text: &str, within: Range<usize>) -> bool {
    let marker = crate::SecretKind::PrivateKey.marker();
    let markers: Vec<Range<usize>> = text
        .match_indices(marker)
        .map(|(at, m)| at..at + m.len())
        .collect();
    KEY_WORDS.find_iter(&text[within.clone()]).any(|m| {
        let (start, end) = (within.start + m.start(), within.start + m.end());
        !markers.iter().any(|r| r.start <= start && end <= r.end)
    })
}

/// Every key in `text`, as byte ranges.
pub fn find(text: &str) -> Vec<(KeyKind, Range<usize>)> {
    let mut out = Vec::new();
    if let Some(range) = keystore(text) {
        out.push((KeyKind::Keystore, range));
    }
    if !has_alphanumeric_run(text, 51) {
        return out;
    }
    let tx_context = TX_WORDS.is_match(text);
    for m in HEX64.find_iter(text) {
        // The words just before a hex string say what it is.
        let window = floor_char(text, m.start().saturating_sub(60))..m.start();
        let before = &text[window.clone()];
        let is_key = key_words_in(text, window)
            || (!TX_WORDS.is_match(before) && key_words_in(text, 0..text.len()));
        let bare = !m.as_str().starts_with("0x") && !m.as_str().starts_with("0X");
        if is_key || (bare && !tx_context) {
            out.push((KeyKind::PrivateKey, m.range()));
        }
    }
    for m in WIF.find_iter(text) {
        let valid = base58check(m.as_str()).is_some_and(|p| {
            matches!(p.first(), Some(0x80 | 0xef))
                && (p.len() == 33 || (p.len() == 34 && p[33] == 1))
        });
        if valid {
            out.push((KeyKind::PrivateKey, m.range()));
        }
    }
    for m in XPRV.find_iter(text) {
        // A mistyped one is still a secret; the shape alone (111 characters) is enough.
        if base58check(m.as_str()).is_some() || m.as_str().len() == 111 {
            out.push((KeyKind::ExtendedPrivateKey, m.range()));
        }
    }
    out
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// An Ethereum-style keystore (encrypted key JSON): from the `{` that opens the object
/// around `"ciphertext"` to its matching `}`, or to the end if the paste was cut short.
fn keystore(text: &str) -> Option<Range<usize>> {
    if !text
        .as_bytes()
        .windows(12)
        .any(|w| w.eq_ignore_ascii_case(b"\"ciphertext\""))
    {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    let at = lower.find("\"ciphertext\"")?;
    if !(lower.contains("\"kdf\"")
        || lower.contains("\"cipherparams\"")
        || lower.contains("\"crypto\""))
    {
        return None;
    }
    // The outermost object that contains the ciphertext.
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut start = None;
    for i in (0..at).rev() {
        match bytes[i] {
            b'}' => depth += 1,
            b'{' if depth == 0 => start = Some(i),
            b'{' => depth -= 1,
            _ => {}
        }
    }
    let start = start?;
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(start..i + 1);
                }
            }
            _ => {}
        }
    }
    Some(start..text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

    fn kinds(text: &str) -> Vec<KeyKind> {
        find(text).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn a_hex_key_is_told_from_a_transaction_hash_by_its_context() {
        assert_eq!(
            kinds(&format!("my private key is {HEX}")),
            [KeyKind::PrivateKey]
        );
        assert_eq!(kinds(&format!("私钥：0x{HEX}")), [KeyKind::PrivateKey]);
        assert_eq!(
            kinds(&format!("here it is {HEX}")),
            [KeyKind::PrivateKey],
            "bare hex with no context"
        );
        assert!(kinds(&format!("txid {HEX} is still pending")).is_empty());
        assert!(kinds(&format!("txid 0x{HEX} is still pending")).is_empty());
        assert!(kinds(&format!("交易哈希 {HEX}")).is_empty());
        assert!(
            kinds(&format!("0x{HEX}")).is_empty(),
            "0x with no context reads as a transaction hash"
        );
    }

    #[test]
    fn wif_and_extended_keys_are_found_by_their_checksum() {
        // The well-known example keys from the Bitcoin wiki.
        let wif = "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ";
        let xprv = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";
        assert_eq!(kinds(&format!("wif: {wif}")), [KeyKind::PrivateKey]);
        assert_eq!(
            kinds(&format!("backup {xprv} thanks")),
            [KeyKind::ExtendedPrivateKey]
        );
        let mut broken = wif.to_owned();
        broken.replace_range(10..11, "z");
        assert!(
            kinds(&broken).is_empty(),
            "a WIF-shaped string with a bad checksum"
        );
    }

    #[test]
    fn a_keystore_paste_is_found_whole_even_when_cut_short() {
        let ks = r#"here: {"address":"a1","crypto":{"cipher":"aes-128-ctr","ciphertext":"5318b4","cipherparams":{"iv":"6087"},"kdf":"scrypt"},"version":3} ok"#;
        let found = find(ks);
        assert_eq!(found.len(), 1);
        assert!(
            ks[found[0].1.clone()].starts_with("{\"address\"")
                && ks[found[0].1.clone()].ends_with("3}")
        );
        let cut = &ks[..ks.find("cipherparams").unwrap()];
        assert_eq!(kinds(&format!("{cut} \"kdf\"")), [KeyKind::Keystore]);
    }

    #[test]
    fn the_guards_own_marker_is_no_context_for_a_key() {
        // What libFuzzer found: a 0x hash judged a transaction hash, and next to it a
        // bare key that was redacted; on a second look the marker must not make the
        // hash a key.
        let text = format!("key 0x{HEX} and [redacted private key]");
        assert!(kinds(&text).is_empty());
        // Nor the end of one, just inside the words before a hash.
        let text = format!("[redacted private key] and tx 0x{HEX}");
        assert!(kinds(&text).is_empty());
        assert_eq!(
            kinds(&format!("private key 0x{HEX}")),
            [KeyKind::PrivateKey]
        );
    }

    #[test]
    fn addresses_are_not_keys() {
        assert!(kinds("send to 0x52908400098527886E0F7030069857D2E4169EE7").is_empty());
        assert!(kinds("TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL").is_empty());
        assert!(
            kinds("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")
                .is_empty()
        );
    }
}
