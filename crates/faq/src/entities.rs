//! Things in a customer's message an agent will want to copy: transaction hashes,
//! addresses, email addresses, amounts with their token.

use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;

/// What an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    TxHash,
    EvmAddress,
    TronAddress,
    BitcoinAddress,
    Email,
    Amount,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::TxHash => "tx_hash",
            EntityKind::EvmAddress => "evm_address",
            EntityKind::TronAddress => "tron_address",
            EntityKind::BitcoinAddress => "bitcoin_address",
            EntityKind::Email => "email",
            EntityKind::Amount => "amount",
        }
    }
}

/// One entity: its kind, the text as written, and its byte range in the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub value: String,
    pub start: usize,
    pub end: usize,
}

static TX_PREFIXED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)0x[0-9a-fA-F]{64}(?-u:\b)").expect("valid"));
static HEX64: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)[0-9a-fA-F]{64}(?-u:\b)").expect("valid"));
static TX_CONTEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(tx|txid|tx\s*id|txn|hash|transaction|transfer)(?-u:\b)|交易|哈希|转账|轉賬|txid")
        .expect("valid")
});
static EVM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)0x[0-9a-fA-F]{40}(?-u:\b)").expect("valid"));
static TRON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)T[1-9A-HJ-NP-Za-km-z]{33}(?-u:\b)").expect("valid"));
static BTC_BASE58: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)[13][1-9A-HJ-NP-Za-km-z]{25,34}(?-u:\b)").expect("valid")
});
static BTC_BECH32: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)(bc1|tb1)[ac-hj-np-z02-9]{11,71}(?-u:\b)").expect("valid")
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?-u:\b)")
        .expect("valid")
});
/// An amount and its currency or token; group 1 is the amount without what follows.
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(\$\s?\d[\d,]*(?:\.\d+)?|(?-u:\b)\d[\d,]*(?:\.\d+)?\s?(?:usdt|usdc|busd|dai|eth|btc|trx|bnb|sol|matic|pol|ton|xrp|doge|ltc|ada|dot|avax|arb|op|usd|cny|rmb|元|美元))(?:[^a-z]|$)",
    )
    .expect("valid")
});

/// Finds the entities in `text`, in order of position; overlapping finds keep the first
/// (a transaction hash is not also reported as an address).
pub fn extract(text: &str) -> Vec<Entity> {
    let mut found: Vec<Entity> = Vec::new();
    let mut add = |kind: EntityKind, m: regex::Match<'_>| {
        found.push(Entity {
            kind,
            value: m.as_str().to_owned(),
            start: m.start(),
            end: m.end(),
        });
    };
    for m in TX_PREFIXED.find_iter(text) {
        add(EntityKind::TxHash, m);
    }
    if TX_CONTEXT.is_match(text) {
        for m in HEX64.find_iter(text) {
            add(EntityKind::TxHash, m);
        }
    }
    for (re, kind) in [
        (&*EVM, EntityKind::EvmAddress),
        (&*TRON, EntityKind::TronAddress),
        (&*BTC_BECH32, EntityKind::BitcoinAddress),
        (&*BTC_BASE58, EntityKind::BitcoinAddress),
        (&*EMAIL, EntityKind::Email),
    ] {
        for m in re.find_iter(text) {
            add(kind, m);
        }
    }
    for c in AMOUNT.captures_iter(text) {
        if let Some(m) = c.get(1) {
            add(EntityKind::Amount, m);
        }
    }
    found.sort_by_key(|e| (e.start, std::cmp::Reverse(e.end)));
    let mut kept: Vec<Entity> = Vec::with_capacity(found.len());
    for e in found {
        if kept.last().is_none_or(|k| e.start >= k.end) {
            kept.push(e);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use EntityKind::*;

    fn kinds(text: &str) -> Vec<(EntityKind, String)> {
        extract(text)
            .into_iter()
            .map(|e| (e.kind, e.value))
            .collect()
    }

    const HASH: &str = "9f2c4a7b1e3d5f6a8b0c2d4e6f8a0b1c3d5e7f9a1b2c3d4e5f6a7b8c9d0e1f2a";

    #[test]
    fn entities_are_found_as_an_agent_would_copy_them() {
        let table: Vec<(String, Vec<(EntityKind, String)>)> = vec![
            (format!("txid 0x{HASH} still pending"), vec![(TxHash, format!("0x{HASH}"))]),
            (format!("交易哈希 {HASH}"), vec![(TxHash, HASH.to_owned())]),
            (
                "send to 0x52908400098527886E0F7030069857D2E4169EE7 please".into(),
                vec![(EvmAddress, "0x52908400098527886E0F7030069857D2E4169EE7".into())],
            ),
            (
                "我的波场地址 TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL".into(),
                vec![(TronAddress, "TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL".into())],
            ),
            (
                "btc to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq and 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2".into(),
                vec![
                    (BitcoinAddress, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq".into()),
                    (BitcoinAddress, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2".into()),
                ],
            ),
            ("reach me at li.wei@example.com".into(), vec![(Email, "li.wei@example.com".into())]),
            (
                "I sent 1,250.5 USDT and 0.3 eth".into(),
                vec![(Amount, "1,250.5 USDT".into()), (Amount, "0.3 eth".into())],
            ),
            ("转了500元还没到".into(), vec![(Amount, "500元".into())]),
        ];
        for (text, expected) in table {
            assert_eq!(kinds(&text), expected, "in {text:?}");
        }
    }

    #[test]
    fn an_address_written_straight_after_chinese_is_found() {
        assert_eq!(
            kinds("我的地址0x52908400098527886E0F7030069857D2E4169EE7转不进去"),
            vec![(
                EvmAddress,
                "0x52908400098527886E0F7030069857D2E4169EE7".into()
            )]
        );
        assert_eq!(
            kinds(&format!("交易哈希是{HASH}，一直没到")),
            vec![(TxHash, HASH.to_owned())]
        );
    }

    #[test]
    fn a_bare_64_hex_string_without_transaction_context_is_not_a_hash() {
        assert!(kinds(&format!("my key is {HASH}")).is_empty());
    }

    #[test]
    fn ordinary_text_has_no_entities() {
        assert!(kinds("my transfer is stuck, please help").is_empty());
        assert!(kinds("转账一直没有到账").is_empty());
    }
}
