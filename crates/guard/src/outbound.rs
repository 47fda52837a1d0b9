//! The outbound guard: a message that asks a customer for their recovery phrase or
//! private key, or to "verify" or "sync" their wallet on an outside link, never leaves.
//! This is exactly what impersonators write; a real support desk never does.
//!
//! Warnings pass: "we will never ask for your recovery phrase" is a negated sentence.

use regex::Regex;
use std::sync::LazyLock;

/// Why a message was refused, for the agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub reason: &'static str,
}

static ASKS_FOR_SECRET_EN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?-u:\b)(send|share|give|provide|tell|enter|type|paste|submit|confirm|verify|input|reply with|dm|forward|write down for us)(?-u:\b)[^.!?\n]{0,50}?((?-u:\b)(recovery|seed|secret|backup|mnemonic|wallet)[\s-]*(phrase|words?|key)(?-u:\b)|(?-u:\b)private[\s-]*key(?-u:\b)|(?-u:\b)mnemonic(?-u:\b)|(?-u:\b)(12|24)[\s-]*words?(?-u:\b)|(?-u:\b)keystore(?-u:\b))",
    )
    .expect("valid")
});
static ASKS_FOR_SECRET_ZH: LazyLock<Regex> = LazyLock::new(|| {
    // Verb before the secret (提供助记词), or after it (把私钥发给我).
    Regex::new(r"(发送|发给|發送|提供|告诉|告訴|告知|输入|輸入|填写|填寫|填入|给我|給我|私信|回复|回覆|上传|上傳|导入|導入|验证|驗證|核对|核對)[^。！？\n]{0,15}?(助记词|助記詞|私钥|私鑰|密钥|密鑰|恢复短语|恢復短語|keystore)|(助记词|助記詞|私钥|私鑰|密钥|密鑰|恢复短语|恢復短語)[^。！？\n]{0,10}?(发给|發給|发送|發送|给我|給我|提供|告诉|告訴|填到|输入到|輸入到|上传|上傳)")
        .expect("valid")
});
static VERIFY_ON_A_LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)((?-u:\b)(verify|validate|sync|synchronize|synchronise|rectify|restore|reactivate|authenticate|connect|unlock|whitelist)(?-u:\b)[^\n]{0,40}(?-u:\b)wallet(?-u:\b)|(验证|驗證|同步|认证|認證|修复|修復|激活|解锁|解鎖|连接|連接)[^\n]{0,12}钱包|錢包)[^\n]{0,120}(https?://|www\.|(?-u:\b)[a-z0-9-]+\.(com|io|app|net|org|xyz|site|online|top)(?-u:\b))",
    )
    .expect("valid")
});
static NEGATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(never|not|don't|dont|do not|won't|will not|no one|nobody|cannot|can't|shouldn't|should not)(?-u:\b)|绝不|絕不|不会|不會|不要|切勿|请勿|請勿|永远不|永遠不|从不|從不|不得|别|別|勿")
        .expect("valid")
});

/// Refuses a message that asks for a secret or pushes a wallet "verification" link.
pub fn check_outbound(text: &str) -> Result<(), Refusal> {
    for sentence in text.split(['.', '!', '?', '\n', '。', '！', '？']) {
        let asks = ASKS_FOR_SECRET_EN.is_match(sentence) || ASKS_FOR_SECRET_ZH.is_match(sentence);
        if asks && !NEGATION.is_match(sentence) {
            return Err(Refusal {
                reason: "asks the customer for a recovery phrase or private key; support never does, and scammers always do",
            });
        }
    }
    // Links can span sentences ("Verify your wallet. Go to https://...").
    if VERIFY_ON_A_LINK.is_match(text) && !NEGATION.is_match(text) {
        return Err(Refusal {
            reason: "asks the customer to verify or sync their wallet on a link, the pattern of wallet-drainer scams",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_outbound;

    #[test]
    fn requests_for_secrets_are_refused_in_both_languages() {
        for text in [
            "To verify your account, please send us your 12-word recovery phrase.",
            "Please share your seed phrase so we can restore the funds",
            "Reply with your private key and we will fix it",
            "Kindly enter your mnemonic on the form",
            "请提供您的助记词，我们帮您找回资产",
            "为了核实身份，请把私钥发给我",
            "請輸入您的助記詞以完成驗證",
            "Your wallet is out of sync. Validate your wallet at https://wallet-sync.example.io now",
            "请点击链接验证钱包 https://verify-wallet.xyz",
            // English words written straight after Chinese, with no space.
            "为了恢复资产请send你的private key给我们",
        ] {
            assert!(check_outbound(text).is_err(), "should refuse: {text}");
        }
    }

    #[test]
    fn warnings_and_ordinary_replies_pass() {
        for text in [
            "We will never ask for your recovery phrase or private key.",
            "Do not share your seed phrase with anyone, including us.",
            "客服绝不会索要您的助记词或私钥。",
            "请勿向任何人提供助记词。",
            "Please send us the transaction hash and a screenshot.",
            "请提供交易哈希和转账时间，我们帮您查询。",
            "You can find the fee schedule at https://wallet.example.com/help",
            "Your transfer is confirmed on the block explorer.",
            "You can re-import the wallet with your recovery phrase on your own device.",
        ] {
            assert_eq!(check_outbound(text), Ok(()), "should pass: {text}");
        }
    }
}
