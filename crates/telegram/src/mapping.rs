//! From a Bot API update to Frontdesk's [`Inbound`]: a pure function, so that every
//! kind of message Telegram sends can be checked against a table of real JSON.
//!
//! - Private chats always; groups only when enabled and the bot is mentioned or
//!   replied to.
//! - Text and captions as they are; photos (the largest size), documents, voice
//!   messages, stickers and locations as readable placeholders, with the file kept as
//!   an attachment (`telegram:FILE_ID`, fetched on demand).
//! - An edited message is a new version of the stored one (`edit_of`); the store keeps
//!   the original in the history.
//! - `/start PAYLOAD` (a deep link) keeps its payload in `meta.start_payload`.
//! - `language_code` becomes the sender's language hint (`zh-hans` -> `zh`).
//! - A tap on an inline button (a quick reply) is the customer saying that choice.
//!
//! Ids: Telegram numbers messages per chat, so a message's external id is
//! `CHAT:MESSAGE`; a chat is a thread (`thread_key` = the chat id).

use frontdesk_core::{Attachment, ChannelAccount, Inbound, Sender, Timestamp};
use serde_json::json;
use teloxide::types::{InlineKeyboardButtonKind, Message, Update, UpdateKind, User};

/// What the mapping needs to know of the bot and its settings.
#[derive(Debug, Clone)]
pub struct MapOptions {
    /// The bot's own username, without `@` (from getMe).
    pub bot_username: String,
    /// The bot's user id (from getMe).
    pub bot_id: u64,
    /// Take messages from groups where the bot is mentioned or replied to.
    pub groups: bool,
}

/// What became of an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    Inbound(Box<Inbound>),
    /// Nothing for the inbox, and why (never the text).
    Skipped(&'static str),
}

/// The external id of a message: Telegram numbers them per chat.
pub fn message_key(chat_id: i64, message_id: i32) -> String {
    format!("{chat_id}:{message_id}")
}

/// Maps one update. Never fails on what Telegram sends: an update it cannot read is
/// [`Mapped::Skipped`] with the reason.
pub fn map_update(update: &Update, account: &ChannelAccount, options: &MapOptions) -> Mapped {
    match &update.kind {
        UpdateKind::Message(m) => map_message(m, false, account, options),
        UpdateKind::EditedMessage(m) => map_message(m, true, account, options),
        UpdateKind::CallbackQuery(q) => {
            let (Some(data), Some(message)) = (q.data.as_deref(), q.message.as_ref()) else {
                return Mapped::Skipped("a button without data");
            };
            let chat_id = message.chat().id.0;
            // The choice as the customer saw it on the button: long choices travel as
            // `qr:N` (callback data holds 64 bytes at most).
            let choice = message
                .regular_message()
                .and_then(Message::reply_markup)
                .into_iter()
                .flat_map(|k| k.inline_keyboard.iter().flatten())
                .find(|b| matches!(&b.kind, InlineKeyboardButtonKind::CallbackData(d) if d == data))
                .map_or(data, |b| b.text.as_str());
            let inbound = Inbound::new(
                account.clone(),
                format!("callback:{}", q.id),
                sender_of(&q.from),
                chat_id.to_string(),
                choice,
            );
            match inbound {
                Ok(mut inbound) => {
                    inbound.meta = json!({
                        "chat_id": chat_id,
                        "callback_query_id": q.id.0,
                    });
                    Mapped::Inbound(Box::new(inbound))
                }
                Err(_) => Mapped::Skipped("a button whose data cannot be stored"),
            }
        }
        _ => Mapped::Skipped("not a message"),
    }
}

/// An update the client could not read (a field newer than it, a value of another
/// type): a private message is kept with a placeholder rather than lost, as long as it
/// says who wrote in which chat.
/// One update as Telegram sent it (JSON text): its id and what it maps to. An update
/// teloxide cannot read (a field newer than it; teloxide keeps nothing of it) is mapped
/// from the raw JSON instead of being lost; `None` only for what has no `update_id`.
pub fn read_update(
    text: &str,
    account: &ChannelAccount,
    options: &MapOptions,
) -> Option<(i64, Mapped)> {
    let unreadable = |why: &dyn std::fmt::Display| {
        let raw: serde_json::Value = serde_json::from_str(text).ok()?;
        let id = raw["update_id"].as_i64()?;
        tracing::warn!(%account, update_id = id, error = %why, "an update the Telegram client cannot read; keeping what it can");
        Some((id, map_unreadable(&raw, account)))
    };
    match serde_json::from_str::<Update>(text) {
        Ok(update) if matches!(update.kind, UpdateKind::Error(_)) => {
            unreadable(&"an unknown kind of update")
        }
        Ok(update) => Some((
            i64::from(update.id.0),
            map_update(&update, account, options),
        )),
        Err(e) => unreadable(&frontdesk_core::json_error(&e)),
    }
}

pub fn map_unreadable(raw: &serde_json::Value, account: &ChannelAccount) -> Mapped {
    let (m, edited) = match (raw.get("message"), raw.get("edited_message")) {
        (Some(m), _) => (m, false),
        (None, Some(m)) => (m, true),
        (None, None) => return Mapped::Skipped("not a message"),
    };
    let (Some(chat_id), Some(message_id), Some(from)) = (
        m["chat"]["id"].as_i64(),
        m["message_id"].as_i64(),
        m["from"]["id"].as_u64(),
    ) else {
        return Mapped::Skipped("not a message");
    };
    if m["chat"]["type"] != "private" || m["from"]["is_bot"] == true {
        return Mapped::Skipped("an unreadable message outside a private chat");
    }
    let key = format!("{chat_id}:{message_id}");
    let written = m["text"].as_str().or(m["caption"].as_str()).unwrap_or("");
    let text = format!("[a message Frontdesk could not fully read]\n{written}");
    let sender = Sender {
        external_id: from.to_string(),
        display_name: m["from"]["first_name"].as_str().map(str::to_owned),
        language: m["from"]["language_code"].as_str().and_then(language_hint),
    };
    let id = if edited {
        format!("{key}:edit")
    } else {
        key.clone()
    };
    match Inbound::new(
        account.clone(),
        id,
        sender,
        chat_id.to_string(),
        text.trim_end(),
    ) {
        Ok(mut inbound) => {
            inbound.edit_of = edited.then_some(key);
            inbound.meta = json!({ "chat_id": chat_id, "message_id": message_id });
            Mapped::Inbound(Box::new(inbound))
        }
        Err(_) => Mapped::Skipped("an unreadable message that cannot be stored"),
    }
}

fn sender_of(user: &User) -> Sender {
    let name = match (&user.last_name, user.first_name.trim()) {
        (Some(last), first) if !last.trim().is_empty() => format!("{first} {}", last.trim()),
        (_, first) if !first.is_empty() => first.to_owned(),
        _ => user.username.clone().unwrap_or_default(),
    };
    Sender {
        external_id: user.id.0.to_string(),
        display_name: Some(name).filter(|n| !n.is_empty()),
        language: user.language_code.as_deref().and_then(language_hint),
    }
}

/// `zh-hans`, `zh-TW`, `en-US` -> `zh`, `zh`, `en`.
fn language_hint(code: &str) -> Option<String> {
    let primary = code.split(['-', '_']).next()?.trim().to_lowercase();
    (!primary.is_empty() && primary.len() <= 8).then_some(primary)
}

/// Whether a group message is for the bot: it mentions `@bot` or replies to the bot.
fn addressed_to_bot(m: &Message, options: &MapOptions) -> bool {
    let mention = format!("@{}", options.bot_username.to_lowercase());
    let mentioned = [m.text(), m.caption()]
        .into_iter()
        .flatten()
        .any(|t| t.to_lowercase().contains(&mention));
    let replied = m
        .reply_to_message()
        .and_then(|r| r.from.as_ref())
        .is_some_and(|u| u.id.0 == options.bot_id);
    mentioned || replied
}

/// A file Telegram keeps, as an attachment to fetch on demand.
fn file(name: String, content_type: &str, size: u32, id: &str) -> Attachment {
    Attachment {
        name,
        content_type: content_type.to_owned(),
        size: u64::from(size),
        reference: format!("telegram:{id}"),
    }
}

fn map_message(
    m: &Message,
    edited: bool,
    account: &ChannelAccount,
    options: &MapOptions,
) -> Mapped {
    let Some(from) = m.from.as_ref() else {
        return Mapped::Skipped("no sender (a channel post)");
    };
    if from.is_bot {
        return Mapped::Skipped("from a bot");
    }
    let for_us = m.chat.is_private() || (options.groups && addressed_to_bot(m, options));
    if !for_us {
        return Mapped::Skipped("a group message not for the bot");
    }
    let mut parts: Vec<String> = Vec::new();
    let mut attachments = Vec::new();
    if let Some(sizes) = m.photo() {
        if let Some(largest) = sizes
            .iter()
            .max_by_key(|p| u64::from(p.width) * u64::from(p.height))
        {
            attachments.push(file(
                "photo.jpg".into(),
                "image/jpeg",
                largest.file.size,
                &largest.file.id.0,
            ));
        }
        parts.push("[photo]".into());
    }
    if let Some(doc) = m.document() {
        let name = doc.file_name.clone().unwrap_or_else(|| "document".into());
        let kind = doc.mime_type.as_ref().map_or_else(
            || "application/octet-stream".to_owned(),
            ToString::to_string,
        );
        parts.push(format!("[document: {name}]"));
        attachments.push(file(name, &kind, doc.file.size, &doc.file.id.0));
    }
    if let Some(voice) = m.voice() {
        parts.push(format!("[voice message, {} s]", voice.duration.seconds()));
        attachments.push(file(
            "voice.ogg".into(),
            "audio/ogg",
            voice.file.size,
            &voice.file.id.0,
        ));
    }
    if let Some(sticker) = m.sticker() {
        parts.push(match &sticker.emoji {
            Some(e) => format!("[sticker {e}]"),
            None => "[sticker]".into(),
        });
    }
    if let Some(place) = m.location() {
        parts.push(format!(
            "[location: {:.5}, {:.5}]",
            place.latitude, place.longitude
        ));
    }
    let written = m.text().or(m.caption()).unwrap_or_default().trim();
    if !written.is_empty() {
        parts.push(written.to_owned());
    }
    if parts.is_empty() {
        return Mapped::Skipped("nothing to read (a service message)");
    }
    let chat_id = m.chat.id.0;
    let key = message_key(chat_id, m.id.0);
    let external_id = match (edited, m.edit_date()) {
        (true, Some(at)) => format!("{key}:edit:{}", at.timestamp()),
        (true, None) => format!("{key}:edit"),
        (false, _) => key.clone(),
    };
    let Ok(mut inbound) = Inbound::new(
        account.clone(),
        external_id,
        sender_of(from),
        chat_id.to_string(),
        parts.join("\n"),
    ) else {
        return Mapped::Skipped("a message that cannot be stored (too long)");
    };
    inbound.attachments = attachments;
    inbound.sent_at = Some(Timestamp::from_micros(m.date.timestamp() * 1_000_000));
    inbound.edit_of = edited.then_some(key);
    inbound.reply_to = m.reply_to_message().map(|r| message_key(chat_id, r.id.0));
    let mut meta = json!({ "chat_id": chat_id, "message_id": m.id.0 });
    if let Some(payload) = written
        .strip_prefix("/start ")
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        meta["start_payload"] = json!(payload);
    }
    inbound.meta = meta;
    Mapped::Inbound(Box::new(inbound))
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::ChannelKind;
    use serde_json::{Value, json};

    fn options() -> MapOptions {
        MapOptions {
            bot_username: "WalletHelpBot".into(),
            bot_id: 7_000_000_001,
            groups: true,
        }
    }

    fn map(update: Value) -> Mapped {
        // From text, as the client reads it: teloxide's `Update` does not read its
        // message out of a `serde_json::Value` (it comes back as `UpdateKind::Error`).
        let update: Update = serde_json::from_str(&update.to_string()).expect("real Bot API JSON");
        map_update(
            &update,
            &ChannelAccount::default_of(ChannelKind::Telegram),
            &options(),
        )
    }

    fn inbound(update: Value) -> Inbound {
        match map(update) {
            Mapped::Inbound(i) => *i,
            Mapped::Skipped(why) => panic!("skipped: {why}"),
        }
    }

    fn private(message: Value) -> Value {
        let mut m = json!({
            "message_id": 15,
            "date": 1_790_000_000,
            "chat": { "id": 42, "type": "private", "first_name": "芳" },
            "from": { "id": 42, "is_bot": false, "first_name": "芳", "last_name": "王",
                      "language_code": "zh-hans" },
        });
        m.as_object_mut()
            .unwrap()
            .extend(message.as_object().unwrap().clone());
        json!({ "update_id": 100, "message": m })
    }

    #[test]
    fn a_private_text_is_one_inbound_message_in_the_chats_thread() {
        let i = inbound(private(json!({ "text": "转账一直pending" })));
        assert_eq!(i.text, "转账一直pending");
        assert_eq!(
            (i.external_id.as_str(), i.thread_key.as_str()),
            ("42:15", "42")
        );
        assert_eq!(i.sender.external_id, "42");
        assert_eq!(i.sender.display_name.as_deref(), Some("芳 王"));
        assert_eq!(i.sender.language.as_deref(), Some("zh"));
        assert_eq!(
            i.sent_at,
            Some(Timestamp::from_micros(1_790_000_000_000_000))
        );
        assert_eq!(i.meta["chat_id"], 42);
    }

    #[test]
    fn media_become_placeholders_with_the_file_kept() {
        let photo = inbound(private(json!({
            "caption": "这是截图",
            "photo": [
                { "file_id": "small", "file_unique_id": "s", "file_size": 900, "width": 90, "height": 60 },
                { "file_id": "large", "file_unique_id": "l", "file_size": 90000, "width": 1280, "height": 853 },
            ],
        })));
        assert_eq!(photo.text, "[photo]\n这是截图");
        assert_eq!(photo.attachments[0].reference, "telegram:large");
        let table = [
            (
                json!({ "document": { "file_id": "d1", "file_unique_id": "d", "file_size": 1234,
                                      "file_name": "tx.pdf", "mime_type": "application/pdf" } }),
                "[document: tx.pdf]",
                Some("application/pdf"),
            ),
            (
                json!({ "voice": { "file_id": "v1", "file_unique_id": "v", "file_size": 5000,
                                   "duration": 7, "mime_type": "audio/ogg" } }),
                "[voice message, 7 s]",
                Some("audio/ogg"),
            ),
            (
                json!({ "sticker": { "file_id": "st", "file_unique_id": "st", "type": "regular",
                                     "width": 512, "height": 512, "is_animated": false,
                                     "is_video": false, "emoji": "👍", "file_size": 100 } }),
                "[sticker 👍]",
                None,
            ),
            (
                json!({ "location": { "latitude": 31.230416, "longitude": 121.473701 } }),
                "[location: 31.23042, 121.47370]",
                None,
            ),
        ];
        for (message, text, kind) in table {
            let i = inbound(private(message));
            assert_eq!(i.text, text);
            assert_eq!(i.attachments.first().map(|a| a.content_type.as_str()), kind);
        }
    }

    #[test]
    fn an_edit_points_at_the_original_and_has_its_own_id() {
        let mut update = private(json!({ "text": "金额是 100 USDT", "edit_date": 1_790_000_060 }));
        let message = update["message"].take();
        let edited = json!({ "update_id": 101, "edited_message": message });
        let i = inbound(edited);
        assert_eq!(i.edit_of.as_deref(), Some("42:15"));
        assert_eq!(i.external_id, "42:15:edit:1790000060");
    }

    #[test]
    fn start_with_a_deep_link_keeps_the_payload() {
        let i = inbound(private(json!({ "text": "/start order-8841" })));
        assert_eq!(i.meta["start_payload"], "order-8841");
        let plain = inbound(private(json!({ "text": "/start" })));
        assert!(plain.meta.get("start_payload").is_none());
    }

    #[test]
    fn groups_only_when_the_bot_is_mentioned_or_replied_to() {
        let group = |message: Value| {
            let mut m = json!({
                "message_id": 3,
                "date": 1_790_000_000,
                "chat": { "id": -100_123, "type": "supergroup", "title": "Wallet users" },
                "from": { "id": 55, "is_bot": false, "first_name": "Lee" },
            });
            m.as_object_mut()
                .unwrap()
                .extend(message.as_object().unwrap().clone());
            json!({ "update_id": 7, "message": m })
        };
        assert!(matches!(
            map(group(json!({ "text": "anyone here?" }))),
            Mapped::Skipped(_)
        ));
        let asked = inbound(group(
            json!({ "text": "@wallethelpbot my withdrawal is stuck" }),
        ));
        assert_eq!(asked.thread_key, "-100123");
        let replied = inbound(group(json!({
            "text": "still stuck",
            "reply_to_message": {
                "message_id": 2, "date": 1_789_999_000,
                "chat": { "id": -100_123, "type": "supergroup", "title": "Wallet users" },
                "from": { "id": 7_000_000_001u64, "is_bot": true, "first_name": "Help" },
                "text": "How can I help?"
            }
        })));
        assert_eq!(replied.reply_to.as_deref(), Some("-100123:2"));
    }

    #[test]
    fn a_button_tap_is_the_customer_saying_that_choice() {
        let i = inbound(json!({
            "update_id": 9,
            "callback_query": {
                "id": "4382bfdwdsb323b2d9",
                "from": { "id": 42, "is_bot": false, "first_name": "芳" },
                "chat_instance": "-1",
                "data": "5",
                "message": {
                    "message_id": 16, "date": 1_790_000_100,
                    "chat": { "id": 42, "type": "private", "first_name": "芳" },
                    "from": { "id": 7_000_000_001u64, "is_bot": true, "first_name": "Help" },
                    "text": "请为本次服务打分"
                }
            }
        }));
        assert_eq!((i.text.as_str(), i.thread_key.as_str()), ("5", "42"));
        assert_eq!(i.meta["callback_query_id"], "4382bfdwdsb323b2d9");
    }

    #[test]
    fn a_long_choice_comes_back_as_the_buttons_text() {
        let choice = "我的转账一直显示 pending，已经超过两个小时了，怎么办？";
        let i = inbound(json!({
            "update_id": 10,
            "callback_query": {
                "id": "77", "chat_instance": "-1", "data": "qr:0",
                "from": { "id": 42, "is_bot": false, "first_name": "芳" },
                "message": {
                    "message_id": 17, "date": 1_790_000_100,
                    "chat": { "id": 42, "type": "private", "first_name": "芳" },
                    "from": { "id": 7_000_000_001u64, "is_bot": true, "first_name": "Help" },
                    "text": "您是想问哪一个？",
                    "reply_markup": { "inline_keyboard": [[
                        { "text": choice, "callback_data": "qr:0" },
                        { "text": "别的问题", "callback_data": "别的问题" }
                    ]] }
                }
            }
        }));
        assert_eq!(i.text, choice);
    }

    #[test]
    fn a_private_message_the_client_cannot_read_is_kept_not_lost() {
        // `date` as a string: teloxide cannot read the message, but it has an author.
        let update = json!({
            "update_id": 13,
            "message": {
                "message_id": 20, "date": "soon",
                "chat": { "id": 42, "type": "private" },
                "from": { "id": 42, "is_bot": false, "first_name": "芳" },
                "text": "还在吗"
            }
        });
        // teloxide reads it as an update of an unknown kind and keeps nothing of it: the
        // channel maps the raw JSON instead.
        let parsed: Update = serde_json::from_str(&update.to_string()).unwrap();
        assert!(matches!(parsed.kind, UpdateKind::Error(_)));
        let account = ChannelAccount::default_of(ChannelKind::Telegram);
        let Mapped::Inbound(i) = map_unreadable(&update, &account) else {
            panic!("lost");
        };
        assert_eq!(i.external_id, "42:20");
        assert!(i.text.ends_with("还在吗"), "{}", i.text);
    }

    #[test]
    fn what_is_not_for_the_inbox_is_skipped_with_a_reason() {
        let from_bot = json!({
            "update_id": 11,
            "message": {
                "message_id": 1, "date": 1_790_000_000,
                "chat": { "id": 42, "type": "private", "first_name": "x" },
                "from": { "id": 9, "is_bot": true, "first_name": "OtherBot" },
                "text": "spam"
            }
        });
        assert_eq!(map(from_bot), Mapped::Skipped("from a bot"));
        let service = private(json!({ "new_chat_title": "renamed" }));
        assert!(matches!(map(service), Mapped::Skipped(_)));
        // What the client cannot read at all (a kind newer than it, or junk).
        let junk = json!({ "update_id": 12, "message": { "weird": true } });
        assert_eq!(map(junk), Mapped::Skipped("not a message"));
    }
}
