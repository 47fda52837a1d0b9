//! X's JSON to [`Inbound`]s: pure functions over a page of mentions or DM events.
//!
//! A conversation is one X conversation with one author (`public:CONVERSATION:AUTHOR`,
//! a thread everybody can read), or one DM conversation (`dm:CONVERSATION`). Posts are
//! `post:ID` and DM events `dm:ID`, so the two never collide in the store. An item that
//! cannot be read as X documents it is kept with what can be read of it (its id and
//! sender), never dropped, so nothing a customer wrote is lost to a format change.

use frontdesk_core::envelope::PUBLIC_THREAD;
use frontdesk_core::{ChannelAccount, Inbound, Sender, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `includes` of a page: the users (and posts) its items refer to.
#[derive(Debug, Default, Deserialize)]
pub struct Includes {
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub tweets: Vec<Post>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// A post (X's "tweet" object) with the fields Frontdesk asks for.
#[derive(Debug, Clone, Deserialize)]
pub struct Post {
    pub id: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub author_id: Option<String>,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub referenced_tweets: Vec<Reference>,
}

/// A DM event with the fields Frontdesk asks for.
#[derive(Debug, Clone, Deserialize)]
pub struct DmEvent {
    pub id: String,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub sender_id: Option<String>,
    #[serde(default)]
    pub dm_conversation_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// The `meta` of a page.
#[derive(Debug, Default, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub newest_id: Option<String>,
    #[serde(default)]
    pub next_token: Option<String>,
}

/// The query for the mentions timeline: what to expand and which fields to return.
pub fn mention_fields() -> Vec<(&'static str, String)> {
    vec![
        ("expansions", "author_id,referenced_tweets.id".into()),
        (
            "tweet.fields",
            "author_id,conversation_id,created_at,lang,referenced_tweets".into(),
        ),
        ("user.fields", "name,username".into()),
    ]
}

/// The query for DM events.
pub fn dm_fields() -> Vec<(&'static str, String)> {
    vec![
        ("event_types", "MessageCreate".into()),
        (
            "dm_event.fields",
            "id,event_type,text,sender_id,dm_conversation_id,created_at".into(),
        ),
        ("expansions", "sender_id".into()),
        ("user.fields", "name,username".into()),
    ]
}

/// Ids compare as numbers: longer is newer.
pub fn newer(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

/// An id X could have made: 1-19 digits.
pub fn is_id(s: &str) -> bool {
    (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// One page: its items (raw, to be read one by one), includes and meta.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Value>,
    pub includes: Includes,
    pub meta: Meta,
}

impl Page {
    pub fn read(body: &Value) -> Page {
        Page {
            items: body["data"].as_array().cloned().unwrap_or_default(),
            includes: Includes::deserialize(&body["includes"]).unwrap_or_default(),
            meta: Meta::deserialize(&body["meta"]).unwrap_or_default(),
        }
    }

    fn user(&self, id: &str) -> Option<&User> {
        self.includes.users.iter().find(|u| u.id == id)
    }

    fn sender(&self, id: &str) -> Sender {
        let user = self.user(id);
        Sender {
            external_id: id.to_owned(),
            display_name: user.and_then(|u| match (&u.name, &u.username) {
                (Some(name), Some(handle)) => Some(format!("{name} (@{handle})")),
                (None, Some(handle)) => Some(format!("@{handle}")),
                (name, None) => name.clone(),
            }),
            language: None,
        }
    }
}

/// What became of one item.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    /// For the inbox, with the item's id (the cursor moves to it once stored).
    Inbound { id: String, inbound: Box<Inbound> },
    /// Not a customer's (our own post or DM, an event that is not a message).
    Skipped { id: String, why: &'static str },
    /// Not even an id: cannot be stored or confirmed.
    Unreadable,
}

/// The text without the run of `@handles` X puts before a reply (the reply's context,
/// not what the customer wrote), unless nothing else is left.
pub fn without_leading_handles(text: &str) -> &str {
    let mut rest = text.trim_start();
    while let Some(after) = rest.strip_prefix('@') {
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if end == 0 {
            break;
        }
        rest = after[end..].trim_start();
    }
    if rest.is_empty() { text.trim() } else { rest }
}

fn timestamp(s: Option<&str>) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(s?).ok()
}

/// One item of the mentions timeline of `me` (the support account's id).
pub fn map_mention(item: &Value, page: &Page, account: &ChannelAccount, me: &str) -> Mapped {
    let post = match Post::deserialize(item) {
        Ok(post) if is_id(&post.id) => post,
        _ => return unreadable(item, account, "post", "author_id"),
    };
    let Some(author) = post.author_id.clone().filter(|a| is_id(a)) else {
        return unreadable(item, account, "post", "author_id");
    };
    if author == me {
        return Mapped::Skipped {
            id: post.id,
            why: "a post of the support account",
        };
    }
    let conversation = post
        .conversation_id
        .clone()
        .unwrap_or_else(|| post.id.clone());
    let replied_to = post
        .referenced_tweets
        .iter()
        .find(|r| r.kind == "replied_to")
        .map(|r| r.id.clone());
    let quoted = post
        .referenced_tweets
        .iter()
        .find(|r| r.kind == "quoted")
        .and_then(|r| page.includes.tweets.iter().find(|t| t.id == r.id));
    let mut sender = page.sender(&author);
    sender.language = post.lang.clone().filter(|l| l != "und" && l != "zxx");
    let text = without_leading_handles(&post.text).to_owned();
    let built = Inbound::new(
        account.clone(),
        format!("post:{}", post.id),
        sender,
        format!("{PUBLIC_THREAD}{conversation}:{author}"),
        text,
    );
    let mut inbound = match built {
        Ok(inbound) => inbound,
        Err(_) => return unreadable(item, account, "post", "author_id"),
    };
    inbound.sent_at = timestamp(post.created_at.as_deref());
    inbound.reply_to = replied_to.as_ref().map(|id| format!("post:{id}"));
    inbound.meta = json!({
        "kind": "mention",
        "post_id": post.id,
        "conversation_id": conversation,
        "username": page.user(&author).and_then(|u| u.username.clone()),
        "url": page.user(&author).and_then(|u| u.username.as_ref()).map(|h| format!("https://x.com/{h}/status/{}", post.id)),
        "quoted_text": quoted.map(|q| q.text.clone()),
    });
    Mapped::Inbound {
        id: post.id,
        inbound: Box::new(inbound),
    }
}

/// One DM event seen by `me`.
pub fn map_dm(item: &Value, page: &Page, account: &ChannelAccount, me: &str) -> Mapped {
    let event = match DmEvent::deserialize(item) {
        Ok(event) if is_id(&event.id) => event,
        _ => return unreadable(item, account, "dm", "sender_id"),
    };
    if event
        .event_type
        .as_deref()
        .is_some_and(|t| t != "MessageCreate")
    {
        return Mapped::Skipped {
            id: event.id,
            why: "not a message",
        };
    }
    let Some(sender_id) = event.sender_id.clone().filter(|s| is_id(s)) else {
        return unreadable(item, account, "dm", "sender_id");
    };
    if sender_id == me {
        return Mapped::Skipped {
            id: event.id,
            why: "a message of the support account",
        };
    }
    let conversation = event
        .dm_conversation_id
        .clone()
        .unwrap_or_else(|| one_to_one(me, &sender_id));
    let built = Inbound::new(
        account.clone(),
        format!("dm:{}", event.id),
        page.sender(&sender_id),
        format!("dm:{conversation}"),
        event.text.clone().unwrap_or_default(),
    );
    let mut inbound = match built {
        Ok(inbound) => inbound,
        Err(_) => return unreadable(item, account, "dm", "sender_id"),
    };
    inbound.sent_at = timestamp(event.created_at.as_deref());
    inbound.meta = json!({
        "kind": "dm",
        "dm_event_id": event.id,
        "dm_conversation_id": conversation,
        "username": page.user(&sender_id).and_then(|u| u.username.clone()),
    });
    Mapped::Inbound {
        id: event.id,
        inbound: Box::new(inbound),
    }
}

/// X's id of a one-to-one DM conversation: the two user ids, smaller first.
pub fn one_to_one(a: &str, b: &str) -> String {
    if newer(a, b) {
        format!("{b}-{a}")
    } else {
        format!("{a}-{b}")
    }
}

/// An item X sent in a shape we cannot read: kept, with a placeholder text for agents,
/// when it has at least an id and a sender; otherwise nothing can be done with it.
fn unreadable(item: &Value, account: &ChannelAccount, kind: &str, sender_key: &str) -> Mapped {
    let Some(id) = item["id"].as_str().filter(|id| is_id(id)) else {
        return Mapped::Unreadable;
    };
    let Some(sender) = item[sender_key].as_str().filter(|s| is_id(s)) else {
        return Mapped::Skipped {
            id: id.to_owned(),
            why: "an item without a sender",
        };
    };
    let thread = match kind {
        "dm" => format!(
            "dm:{}",
            item["dm_conversation_id"].as_str().unwrap_or(sender)
        ),
        _ => format!(
            "{PUBLIC_THREAD}{}:{sender}",
            item["conversation_id"].as_str().unwrap_or(id)
        ),
    };
    let sender = Sender {
        external_id: sender.to_owned(),
        display_name: None,
        language: None,
    };
    match Inbound::new(
        account.clone(),
        format!("{kind}:{id}"),
        sender,
        thread,
        "[a message Frontdesk could not read; open it on X]",
    ) {
        Ok(mut inbound) => {
            inbound.meta = json!({ "kind": if kind == "dm" { "dm" } else { "mention" }, "unreadable": true, "post_id": id });
            Mapped::Inbound {
                id: id.to_owned(),
                inbound: Box::new(inbound),
            }
        }
        Err(_) => Mapped::Unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::ChannelKind;

    const ME: &str = "1500000000000000001";

    fn account() -> ChannelAccount {
        ChannelAccount::default_of(ChannelKind::X)
    }

    /// A mentions page as X documents it.
    fn mentions_page() -> Value {
        json!({
            "data": [{
                "id": "1800000000000000010",
                "text": "@FrontWallet @someone 我的提现一直在处理中，怎么办？",
                "author_id": "2244994945",
                "conversation_id": "1800000000000000001",
                "created_at": "2026-12-01T10:30:00.000Z",
                "lang": "zh",
                "referenced_tweets": [{"type": "replied_to", "id": "1800000000000000001"}]
            }, {
                "id": "1800000000000000011",
                "text": "@FrontWallet thanks",
                "author_id": ME,
                "conversation_id": "1800000000000000001"
            }],
            "includes": {"users": [{"id": "2244994945", "name": "Li Wei", "username": "liwei"}]},
            "meta": {"newest_id": "1800000000000000011", "oldest_id": "1800000000000000010", "result_count": 2}
        })
    }

    #[test]
    fn a_mention_is_a_public_thread_of_its_conversation_and_author() {
        let body = mentions_page();
        let page = Page::read(&body);
        let Mapped::Inbound { id, inbound } = map_mention(&page.items[0], &page, &account(), ME)
        else {
            panic!("not mapped");
        };
        assert_eq!(id, "1800000000000000010");
        assert_eq!(inbound.external_id, "post:1800000000000000010");
        assert_eq!(inbound.thread_key, "public:1800000000000000001:2244994945");
        assert_eq!(inbound.text, "我的提现一直在处理中，怎么办？");
        assert_eq!(
            inbound.sender.display_name.as_deref(),
            Some("Li Wei (@liwei)")
        );
        assert_eq!(inbound.sender.language.as_deref(), Some("zh"));
        assert_eq!(
            inbound.reply_to.as_deref(),
            Some("post:1800000000000000001")
        );
        assert_eq!(inbound.meta["kind"], "mention");
        assert_eq!(
            inbound.meta["url"],
            "https://x.com/liwei/status/1800000000000000010"
        );
        assert!(inbound.sent_at.is_some());
        assert_eq!(page.meta.newest_id.as_deref(), Some("1800000000000000011"));
    }

    #[test]
    fn the_accounts_own_posts_are_not_customers() {
        let body = mentions_page();
        let page = Page::read(&body);
        assert!(matches!(
            map_mention(&page.items[1], &page, &account(), ME),
            Mapped::Skipped { .. }
        ));
    }

    #[test]
    fn a_dm_is_a_thread_of_its_dm_conversation() {
        let body = json!({
            "data": [{
                "id": "1582838499983564806",
                "event_type": "MessageCreate",
                "text": "Hi, my deposit has not arrived",
                "sender_id": "944480690",
                "dm_conversation_id": "944480690-1500000000000000001",
                "created_at": "2022-10-19T20:58:00.000Z"
            }, {"id": "1582838499983564807", "event_type": "ParticipantsJoin", "sender_id": "944480690"}],
            "includes": {"users": [{"id": "944480690", "name": "Sam", "username": "sam"}]},
            "meta": {"result_count": 2}
        });
        let page = Page::read(&body);
        let Mapped::Inbound { inbound, .. } = map_dm(&page.items[0], &page, &account(), ME) else {
            panic!("not mapped");
        };
        assert_eq!(inbound.external_id, "dm:1582838499983564806");
        assert_eq!(inbound.thread_key, "dm:944480690-1500000000000000001");
        assert_eq!(inbound.sender.external_id, "944480690");
        assert_eq!(inbound.text, "Hi, my deposit has not arrived");
        assert!(matches!(
            map_dm(&page.items[1], &page, &account(), ME),
            Mapped::Skipped { .. }
        ));
    }

    #[test]
    fn an_item_in_an_unknown_shape_is_kept_not_lost() {
        let page = Page::default();
        let odd = json!({"id": "1800000000000000099", "text": 42, "author_id": "2244994945"});
        let Mapped::Inbound { inbound, .. } = map_mention(&odd, &page, &account(), ME) else {
            panic!("lost");
        };
        assert!(inbound.text.contains("could not read"));
        assert_eq!(inbound.meta["unreadable"], true);
        assert_eq!(
            map_mention(&json!({"text": "no id"}), &page, &account(), ME),
            Mapped::Unreadable
        );
        assert_eq!(
            map_dm(&json!("not an object"), &page, &account(), ME),
            Mapped::Unreadable
        );
    }

    #[test]
    fn leading_handles_are_the_replys_context_not_its_text() {
        assert_eq!(without_leading_handles("@a @b_c hello @d"), "hello @d");
        assert_eq!(without_leading_handles("@FrontWallet"), "@FrontWallet");
        assert_eq!(without_leading_handles("email me@x.com"), "email me@x.com");
    }

    #[test]
    fn ids_compare_as_numbers() {
        assert!(newer("1800000000000000010", "999999999999999999"));
        assert!(!newer("5", "5"));
        assert_eq!(one_to_one("944480690", ME), "944480690-1500000000000000001");
        assert_eq!(one_to_one(ME, "944480690"), "944480690-1500000000000000001");
    }
}
