//! A raw message (RFC 5322 bytes) to what the email channel needs of it. Never fails:
//! what cannot be read is kept with a warning, because a customer's mail is never
//! dropped.
//!
//! - Headers decoded (RFC 2047 words, RFC 2231 file names) and bodies in their charset
//!   (GBK, GB2312, GB18030, Big5, UTF-16, ISO-2022-JP...), by mail-parser with its full
//!   encoding tables.
//! - The readable text: the plain body, else the HTML body turned into text (never
//!   markup); the HTML itself kept for a sandboxed view.
//! - The new part of a reply: the text without the quoted history ("On ... wrote:",
//!   "在 ... 写道：", Outlook's original-message block, `>` lines) and the signature.
//! - Attachments up to a size limit; a larger one is kept as a name and a size.

use crate::loops::{self, Signals};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

/// What to keep of a message.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// The largest attachment kept; a larger one is listed by name and size.
    pub max_attachment: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_attachment: 10 * 1024 * 1024,
        }
    }
}

/// An address and the name shown with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Lower case.
    pub address: String,
    pub name: Option<String>,
}

/// A file that came with a message.
#[derive(Clone, PartialEq, Eq)]
pub struct MailAttachment {
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// `None` when it was over the limit: listed, not kept.
    pub bytes: Option<Vec<u8>>,
}

impl std::fmt::Debug for MailAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailAttachment")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("size", &self.size)
            .field("kept", &self.bytes.is_some())
            .finish()
    }
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The Message-ID without angle brackets; made from the content when missing.
    pub message_id: String,
    pub from: Option<Mailbox>,
    pub subject: String,
    /// When it was written (the Date header), in Unix seconds.
    pub sent_at: Option<i64>,
    /// Message-IDs, without angle brackets.
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Everything readable: the plain body, or the HTML body as text.
    pub text: String,
    /// `text` without the quoted history and the signature.
    pub new_text: String,
    /// The HTML body as sent, for a sandboxed view.
    pub html: Option<String>,
    pub attachments: Vec<MailAttachment>,
    /// Why no automatic answer may go to this mail (an auto-reply, a list, a bounce).
    pub automatic: Option<String>,
    /// What could not be read, in words for agents.
    pub warnings: Vec<String>,
    /// SHA-256 (hex) of the sender, date, subject and text: the same mail seen again
    /// under another UID (a UIDVALIDITY change) is known by it.
    pub content_hash: String,
}

/// Parses one message. Whatever happens, the result has a text to show.
pub fn parse(raw: &[u8], options: ParseOptions) -> Mail {
    match MessageParser::default().parse(raw) {
        Some(message) if !message.parts.is_empty() => from_message(&message, options),
        _ => unreadable(raw),
    }
}

fn unreadable(raw: &[u8]) -> Mail {
    let text: String = String::from_utf8_lossy(raw).chars().take(100_000).collect();
    let content_hash = hash(&[&text]);
    Mail {
        message_id: format!("{content_hash}@frontdesk.invalid"),
        from: None,
        subject: String::new(),
        sent_at: None,
        in_reply_to: Vec::new(),
        references: Vec::new(),
        new_text: text.trim().to_owned(),
        text,
        html: None,
        attachments: Vec::new(),
        automatic: None,
        warnings: vec!["this mail could not be read as a message; its raw text is shown".into()],
        content_hash,
    }
}

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `id` if it can name a message, a sender or a thread (1-512 bytes, not blank, no
/// NUL); otherwise a stable stand-in made from it (`HASH@frontdesk.invalid`), so a
/// hostile header can neither fail the mail nor pass for another one.
pub fn usable_id(id: &str) -> String {
    let fits = !id.trim().is_empty()
        && id.len() <= frontdesk_core::envelope::MAX_ID_BYTES
        && !id.contains('\0');
    if fits {
        id.to_owned()
    } else {
        format!("{}@frontdesk.invalid", &hash(&[id])[..32])
    }
}

/// Message-IDs from a header value (`<a@b> <c@d>`), without brackets.
fn ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match value {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    };
    list.iter()
        .flat_map(|s| s.split_whitespace())
        .map(|s| s.trim_matches(|c| c == '<' || c == '>').to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn from_message(message: &mail_parser::Message<'_>, options: ParseOptions) -> Mail {
    let mut warnings = Vec::new();
    let from = message.from().and_then(|a| a.first()).and_then(|a| {
        Some(Mailbox {
            address: a.address()?.trim().to_lowercase(),
            name: a
                .name()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        })
    });
    if from.is_none() {
        warnings.push("no sender address could be read".into());
    }
    let subject = message.subject().unwrap_or_default().trim().to_owned();
    let sent_at = message.date().map(|d| d.to_timestamp());
    let text = message
        .body_text(0)
        .map(|t| t.replace("\r\n", "\n"))
        .unwrap_or_default();
    let html = message.html_bodies().find_map(|p| match &p.body {
        PartType::Html(h) => Some(h.to_string()),
        _ => None,
    });
    if message.parts.iter().any(|p| p.is_encoding_problem) {
        warnings.push("part of this mail was in an encoding that could not be fully read".into());
    }
    let mut attachments = Vec::new();
    for part in message.attachments() {
        let name = part
            .attachment_name()
            .map(str::to_owned)
            .unwrap_or_else(|| "attachment".into());
        let content_type = part.content_type().map_or_else(
            || "application/octet-stream".to_owned(),
            |t| match t.subtype() {
                Some(sub) => format!("{}/{}", t.ctype(), sub).to_lowercase(),
                None => t.ctype().to_lowercase(),
            },
        );
        let bytes = part.contents();
        let size = bytes.len() as u64;
        let kept = bytes.len() <= options.max_attachment;
        if !kept {
            warnings.push(format!(
                "the attachment {name} ({size} bytes) is over the {} byte limit and was not kept",
                options.max_attachment
            ));
        }
        attachments.push(MailAttachment {
            name,
            content_type,
            size,
            bytes: kept.then(|| bytes.to_vec()),
        });
    }
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_owned());
    let report = message.root_part().content_type().is_some_and(|t| {
        t.ctype().eq_ignore_ascii_case("multipart")
            && t.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    let signals = Signals {
        auto_submitted: header("Auto-Submitted"),
        precedence: header("Precedence"),
        list_id: header("List-Id").or_else(|| header("List-Unsubscribe")),
        x_autoreply: header("X-Autoreply").or_else(|| header("X-Autorespond")),
        delivery_report: report,
    };
    let automatic = loops::automatic(&signals, from.as_ref().map(|f| f.address.as_str()));
    let date = sent_at.map(|s| s.to_string()).unwrap_or_default();
    let sender = from
        .as_ref()
        .map(|f| f.address.as_str())
        .unwrap_or_default();
    let content_hash = hash(&[sender, &date, &subject, &text]);
    let message_id = message
        .message_id()
        .map(|id| id.trim_matches(|c| c == '<' || c == '>').trim().to_owned())
        .filter(|id| !id.is_empty())
        .map(|id| {
            let usable = usable_id(&id);
            if usable != id {
                warnings.push("a Message-ID too long or not readable; one was made from it".into());
            }
            usable
        })
        .unwrap_or_else(|| {
            warnings.push("no Message-ID; one was made from the content".into());
            format!("{content_hash}@frontdesk.invalid")
        });
    let new_text = new_part(&text);
    Mail {
        message_id,
        from,
        subject,
        sent_at,
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        new_text,
        text,
        html,
        attachments,
        automatic,
        warnings,
        content_hash,
    }
}

/// The text a customer wrote in this mail: without the quoted history below it and
/// without their signature. The whole text when nothing new is left.
pub fn new_part(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or_default();
        let introduces_quote = (t.starts_with("On ")
            && (t.ends_with("wrote:") || next.ends_with("wrote:")))
            || ((t.starts_with('在') || t.starts_with('於'))
                && (t.ends_with("写道：") || t.ends_with("寫道：") || t.ends_with("写道:")))
            || t.starts_with("-----Original Message-----")
            || t.contains("原始邮件")
            || t.contains("原始郵件")
            || (t.len() >= 20 && t.chars().all(|c| c == '_'))
            || ((t.starts_with("From:") || t.starts_with("发件人:") || t.starts_with("发件人："))
                && lines[i + 1..].iter().take(4).any(|l| {
                    let l = l.trim();
                    l.starts_with("Sent:")
                        || l.starts_with("Date:")
                        || l.starts_with("发送时间")
                        || l.starts_with("时间")
                }))
            || t == "--"
            || line.trim_end_matches(['\r', '\n']) == "-- ";
        if introduces_quote {
            end = i;
            break;
        }
    }
    // A trailing block of `>` lines (and blank lines) is quoted history too.
    while end > 0 {
        let t = lines[end - 1].trim();
        if t.is_empty() || t.starts_with('>') {
            end -= 1;
        } else {
            break;
        }
    }
    let mut kept: Vec<&str> = lines[..end].to_vec();
    // A phone's signature line at the very end.
    while let Some(last) = kept.last() {
        let t = last.trim();
        if t.is_empty()
            || t.starts_with("Sent from my ")
            || t.starts_with("发自我的")
            || t.starts_with("從我的")
        {
            kept.pop();
        } else {
            break;
        }
    }
    let new = kept.join("\n").trim().to_owned();
    if new.is_empty() {
        text.trim().to_owned()
    } else {
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(raw: &[u8]) -> Mail {
        parse(raw, ParseOptions::default())
    }

    #[test]
    fn a_plain_mail_gives_its_sender_ids_and_text() {
        let m = mail(
            b"From: =?UTF-8?B?546L6Iqz?= <Wang.Fang@Customer.Example>\r\n\
To: support@example.test\r\n\
Subject: =?UTF-8?B?5o+Q546w5rKh5Yiw6LSm?=\r\n\
Date: Sun, 22 Nov 2026 10:00:00 +0800\r\n\
Message-ID: <a1@customer.example>\r\n\
In-Reply-To: <fd.1@example.test>\r\n\
References: <a0@customer.example> <fd.1@example.test>\r\n\
\r\n\
My withdrawal has not arrived.\r\n",
        );
        assert_eq!(
            m.from,
            Some(Mailbox {
                address: "wang.fang@customer.example".into(),
                name: Some("王芳".into())
            })
        );
        assert_eq!(m.subject, "提现没到账");
        assert_eq!(m.message_id, "a1@customer.example");
        assert_eq!(m.in_reply_to, ["fd.1@example.test"]);
        assert_eq!(m.references, ["a0@customer.example", "fd.1@example.test"]);
        assert_eq!(m.sent_at, Some(1_795_312_800));
        assert_eq!(m.text.trim(), "My withdrawal has not arrived.");
        assert!(m.warnings.is_empty() && m.automatic.is_none());
    }

    #[test]
    fn legacy_chinese_and_japanese_charsets_keep_every_character() {
        // "提现没到账" in GBK, "提現沒到帳" in Big5, "出金" in ISO-2022-JP.
        let gbk: &[u8] = &[0xCC, 0xE1, 0xCF, 0xD6, 0xC3, 0xBB, 0xB5, 0xBD, 0xD5, 0xCB];
        let big5: &[u8] = &[0xB4, 0xA3, 0xB2, 0x7B, 0xA8, 0x53, 0xA8, 0xEC, 0xB1, 0x62];
        let jis: &[u8] = b"\x1b$B=P6b\x1b(B";
        for (charset, body, expected) in [
            ("gbk", gbk, "提现没到账"),
            ("gb2312", gbk, "提现没到账"),
            ("gb18030", gbk, "提现没到账"),
            ("big5", big5, "提現沒到帳"),
            ("iso-2022-jp", jis, "出金"),
        ] {
            let mut raw = format!(
                "From: a@b.example\r\nSubject: x\r\nMessage-ID: <{charset}@b>\r\n\
                 Content-Type: text/plain; charset={charset}\r\n\r\n"
            )
            .into_bytes();
            raw.extend_from_slice(body);
            assert_eq!(mail(&raw).text.trim(), expected, "{charset}");
        }
        // UTF-16 with a byte order mark, base64 as mailers send it.
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("转账".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let raw = format!(
            "From: a@b.example\r\nMessage-ID: <u16@b>\r\nContent-Type: text/plain; charset=utf-16\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64(&utf16)
        );
        assert_eq!(mail(raw.as_bytes()).text.trim(), "转账");
    }

    fn base64(bytes: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn html_becomes_text_and_the_markup_is_kept_apart() {
        let m = mail(
            b"From: a@b.example\r\nMessage-ID: <h@b>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<html><body><p>Hello &amp; welcome</p><script>alert(1)</script><p>Hash: <b>0xabc</b></p></body></html>\r\n",
        );
        assert!(m.text.contains("Hello & welcome"), "{}", m.text);
        assert!(m.text.contains("0xabc"));
        assert!(!m.text.contains('<'), "{}", m.text);
        assert!(m.html.as_deref().is_some_and(|h| h.contains("<script>")));
    }

    #[test]
    fn attachments_over_the_limit_are_listed_not_kept() {
        let raw = "From: a@b.example\r\nMessage-ID: <att@b>\r\n\
Content-Type: multipart/mixed; boundary=XX\r\n\r\n\
--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
--XX\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename*=UTF-8''%E6%94%B6%E6%8D%AE.pdf\r\n\r\n\
%PDF-1.4 small\r\n\
--XX\r\nContent-Type: image/png; name=big.png\r\nContent-Disposition: attachment\r\n\r\n\
PNGPNGPNGPNGPNGPNGPNGPNGPNGPNG\r\n\
--XX--\r\n";
        let m = parse(raw.as_bytes(), ParseOptions { max_attachment: 20 });
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(m.attachments[0].name, "收据.pdf");
        assert_eq!(m.attachments[0].content_type, "application/pdf");
        assert!(m.attachments[0].bytes.is_some());
        assert_eq!(m.attachments[1].name, "big.png");
        assert!(m.attachments[1].bytes.is_none() && m.attachments[1].size > 20);
        assert!(m.warnings[0].contains("big.png"), "{:?}", m.warnings);
    }

    #[test]
    fn a_part_that_cannot_be_decoded_is_named_in_a_warning() {
        let m = mail(
            b"From: a@b.example\r\nMessage-ID: <bad@b>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=B\r\n\r\n\
--B\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\nhello world\r\n\
--B\r\nContent-Type: application/pdf; name=scan.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
@@@@ this is not base64 @@@@\r\n--B--\r\n",
        );
        assert_eq!(m.text.trim(), "hello world");
        assert!(
            m.warnings
                .iter()
                .any(|w| w.contains("could not be fully read")),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn a_mail_that_is_not_a_message_is_kept_with_a_warning() {
        for raw in [
            &b"\xff\xfe\x00garbage without headers"[..],
            b"",
            b"\r\n\r\n",
        ] {
            let m = mail(raw);
            assert!(!m.message_id.is_empty());
            assert!(!m.warnings.is_empty(), "{raw:?}");
        }
    }

    #[test]
    fn the_new_part_leaves_out_quotes_and_signatures() {
        let cases = [
            (
                "Still not there.\n\nOn Sun, 22 Nov 2026 at 10:00, Support <support@example.test> wrote:\n> Please send the hash.\n",
                "Still not there.",
            ),
            (
                "还是没到。\n\n在 2026年11月22日 10:00，客服 <support@example.test> 写道：\n> 请提供交易哈希。\n",
                "还是没到。",
            ),
            (
                "Here is the hash: 0xabc\n\n________________________________\nFrom: Support <support@example.test>\nSent: Sunday, November 22, 2026 10:00\nSubject: Re: withdrawal\n\nPlease send the hash.\n",
                "Here is the hash: 0xabc",
            ),
            ("Thanks!\n-- \nWang Fang\nCustomer Inc.\n", "Thanks!"),
            ("好的\n\n发自我的iPhone\n", "好的"),
            ("> only quoted\n> text\n", "> only quoted\n> text"),
        ];
        for (text, expected) in cases {
            assert_eq!(new_part(text), expected, "{text:?}");
        }
    }
}
