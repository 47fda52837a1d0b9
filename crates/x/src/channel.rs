//! The X channel: one support account, its mentions and its direct messages.
//!
//! Receiving, exactly once: one loop polls the mentions timeline (`since_id`) and the DM
//! events (newest first, read back to the last one stored). Each page is read to the
//! end, then its items are stored oldest first, each together with the cursor that
//! names it (`{"mentions": ID, "dms": ID}`), so a crash repeats a fetch but never loses
//! or doubles a message: the store knows `post:ID` and `dm:ID`. The pace of each
//! endpoint follows X's rate-limit headers, never faster than `poll_every`; a 429
//! waits until the window resets.
//!
//! Sending: a reply in a public thread answers the customer's post, cut by weighted
//! length into a numbered thread ([`crate::text`]), each post answering the one
//! before; X lets the account reply only to posts that mention it, so a conversation
//! with no such post gets a permanent failure, not a guess. A public reply never
//! carries account details (addresses, transaction hashes, email addresses); the
//! bot's public answers can end with an invitation to go on by DM. DMs go to the
//! customer's DM conversation, in pieces of 10,000 characters.

use crate::api::{ApiError, Auth, Client, RateLimit, TokenKeeper};
use crate::mapping::{Mapped, Page, dm_fields, map_dm, map_mention, mention_fields, newer};
use crate::text;
use frontdesk_core::envelope::is_public_thread;
use frontdesk_core::{
    Channel, ChannelAccount, ChannelContext, DeliveryOutcome, Health, HealthCell, Intake,
    MemoryProgress, Outbound, Pieces, Progress, TextFilter, pause, reconnect_backoff,
};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The most characters X takes in one direct message.
pub const MAX_DM_CHARS: usize = 10_000;
/// Pages of mentions read in one round: X keeps the 800 newest, 100 a page.
const MENTION_PAGES: usize = 8;
/// Pages of DM events read back in one round.
const DM_PAGES: usize = 10;
/// Entities that are a customer's account details, never to be posted in public.
const ACCOUNT_DETAILS: [&str; 5] = [
    "email",
    "tx_hash",
    "evm_address",
    "tron_address",
    "bitcoin_address",
];

/// What the channel needs to run.
#[derive(Debug, Clone)]
pub struct XConfig {
    pub account: ChannelAccount,
    /// `https://api.x.com`, or a test server.
    pub api_url: String,
    /// The support account's numeric id.
    pub user_id: String,
    pub auth: Auth,
    /// Read the mentions timeline.
    pub mentions: bool,
    /// Read direct messages.
    pub dms: bool,
    /// The shortest time between two polls of one endpoint.
    pub poll_every: Duration,
    /// End the bot's public answers with an invitation to go on by DM.
    pub dm_invite: bool,
    /// On the very first start, import the mentions and DMs X still lists (otherwise
    /// only those that arrive from then on).
    pub import_existing: bool,
    /// What the desk itself publishes (its support address, its website): not a
    /// customer's account details, so a public reply may carry it. Any case.
    pub published: Vec<String>,
}

impl XConfig {
    pub fn new(account: ChannelAccount, api_url: &str, user_id: &str, auth: Auth) -> Self {
        Self {
            account,
            api_url: api_url.to_owned(),
            user_id: user_id.to_owned(),
            auth,
            mentions: true,
            dms: true,
            poll_every: Duration::from_secs(15),
            dm_invite: true,
            import_existing: false,
            published: Vec::new(),
        }
    }
}

/// Where each kind of item was read up to: the id of the newest one stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mentions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dms: Option<String>,
}

impl Cursor {
    fn read(stored: Option<&str>) -> Cursor {
        stored
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }

    fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a round of reading stopped short.
#[derive(Debug)]
enum RoundError {
    X(ApiError),
    /// Our own store failed; the cursor stays, so the round is repeated.
    Store(String),
}

impl From<ApiError> for RoundError {
    fn from(e: ApiError) -> Self {
        RoundError::X(e)
    }
}

/// Which timeline a round reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Feed {
    Mentions,
    Dms,
}

/// One support account on X.
pub struct XChannel {
    account: ChannelAccount,
    user_id: String,
    client: Client,
    config: XConfig,
    /// Finds account details in a reply about to go public.
    details: Arc<dyn TextFilter>,
    health: HealthCell,
    /// Who the account is (its @handle), once `run` has asked.
    handle: OnceLock<String>,
    /// Where the posts of a thread and the pieces of a long DM already sent are noted.
    progress: Arc<dyn Progress>,
    /// When the bot last invited each public thread to go on by DM: once a day is
    /// enough (the bot often answers in two messages).
    invited: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for XChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XChannel")
            .field("account", &self.account)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl XChannel {
    /// `details` finds account details in text (the app's entity finder); `keeper`
    /// keeps a rotated OAuth 2.0 refresh token.
    pub fn new(
        config: XConfig,
        details: Arc<dyn TextFilter>,
        keeper: Option<Arc<dyn TokenKeeper>>,
    ) -> Result<Self, String> {
        let client = Client::new(&config.api_url, config.auth.clone(), keeper)?;
        Ok(Self {
            account: config.account.clone(),
            user_id: config.user_id.clone(),
            client,
            config,
            details,
            health: HealthCell::default(),
            handle: OnceLock::new(),
            progress: Arc::new(MemoryProgress::default()),
            invited: Mutex::default(),
        })
    }

    /// Notes the posts of threads and pieces of DMs sent in `progress` (the server's
    /// are kept in the outbox, so a crash mid-thread repeats none); by default they are
    /// kept in memory.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// A failure made visible on /readyz, logged when it is news.
    fn failing(&self, why: String) {
        if self.health.set(Health::failing(why.clone())) {
            tracing::warn!(account = %self.account, error = %why, "X channel");
        }
    }

    /// Checks the credentials (`/2/users/me`) until X accepts them or we stop.
    async fn introduce(&self, stop: &CancellationToken) -> Result<bool, String> {
        let mut failures = 0;
        loop {
            let answer = tokio::select! {
                _ = stop.cancelled() => return Ok(false),
                answer = self.client.get("/2/users/me", &[]) => answer,
            };
            let wait = match answer {
                Ok(me) => {
                    let id = me.body["data"]["id"].as_str().unwrap_or_default();
                    let handle = me.body["data"]["username"].as_str().unwrap_or_default();
                    if id != self.user_id {
                        let why = format!(
                            "the credentials are for @{handle} (id {id}), not for channels.x.user_id {}",
                            self.user_id
                        );
                        self.health.set(Health::failing(why.clone()));
                        return Err(why);
                    }
                    let _ = self.handle.set(handle.to_owned());
                    tracing::info!(account = %self.account, handle, "X account ready");
                    return Ok(true);
                }
                // X took the credentials but allows /2/users/me 75 times in 15 minutes,
                // which a process restarted again and again (a crash loop, a deploy
                // storm) uses up. Waiting out the window would leave customers unread
                // for up to 15 minutes; the configured account is used unchecked.
                Err(ApiError::RateLimited { .. }) => {
                    tracing::info!(account = %self.account, "X limits /2/users/me for now; receiving for the configured account without checking it");
                    return Ok(true);
                }
                Err(e) => {
                    failures += 1;
                    self.failing(describe(&e));
                    retry_wait(&e, failures)
                }
            };
            if !pause(stop, wait).await {
                return Ok(false);
            }
        }
    }

    /// The stored cursor, retried until the store answers.
    async fn stored_cursor(&self, ctx: &ChannelContext) -> Option<Cursor> {
        let mut failures = 0;
        loop {
            match ctx.intake.cursor(&self.account).await {
                Ok(stored) => return Some(Cursor::read(stored.as_deref())),
                Err(e) => {
                    failures += 1;
                    tracing::warn!(account = %self.account, error = %e, "cannot read the X cursor");
                    if !pause(&ctx.shutdown, reconnect_backoff(failures)).await {
                        return None;
                    }
                }
            }
        }
    }

    /// On a first start: the newest item X lists now, so that only later ones are taken.
    async fn newest(&self, feed: Feed) -> Result<Option<String>, ApiError> {
        let answer = match feed {
            Feed::Mentions => {
                self.client
                    .get(&self.mentions_path(), &[("max_results", "5".into())])
                    .await?
            }
            Feed::Dms => {
                let mut query = dm_fields();
                query.push(("max_results", "1".into()));
                self.client.get("/2/dm_events", &query).await?
            }
        };
        let page = Page::read(&answer.body);
        Ok(page.meta.newest_id.or_else(|| {
            page.items
                .iter()
                .filter_map(|i| i["id"].as_str())
                .fold(None, |best: Option<&str>, id| match best {
                    Some(b) if !newer(id, b) => Some(b),
                    _ => Some(id),
                })
                .map(str::to_owned)
        }))
    }

    fn mentions_path(&self) -> String {
        format!("/2/users/{}/mentions", self.user_id)
    }

    /// Reads one feed from `after` on: every item newer than it, oldest first, and the
    /// rate limit of the last request.
    async fn fetch(
        &self,
        feed: Feed,
        after: Option<&str>,
    ) -> Result<(Vec<(String, Mapped)>, Option<RateLimit>), ApiError> {
        let mut items: Vec<(String, Mapped)> = Vec::new();
        let mut token: Option<String> = None;
        let mut limit = None;
        let pages = if feed == Feed::Mentions {
            MENTION_PAGES
        } else {
            DM_PAGES
        };
        for _ in 0..pages {
            let (path, mut query) = match feed {
                Feed::Mentions => (self.mentions_path(), mention_fields()),
                Feed::Dms => ("/2/dm_events".to_owned(), dm_fields()),
            };
            query.push(("max_results", "100".into()));
            if let (Feed::Mentions, Some(after)) = (feed, after.filter(|a| !a.is_empty())) {
                query.push(("since_id", after.to_owned()));
            }
            if let Some(t) = &token {
                query.push(("pagination_token", t.clone()));
            }
            let answer = self.client.get(&path, &query).await?;
            limit = answer.limit;
            let page = Page::read(&answer.body);
            let mut reached = false;
            for item in &page.items {
                let mapped = match feed {
                    Feed::Mentions => map_mention(item, &page, &self.account, &self.user_id),
                    Feed::Dms => map_dm(item, &page, &self.account, &self.user_id),
                };
                let id = match &mapped {
                    Mapped::Inbound { id, .. } | Mapped::Skipped { id, .. } => id.clone(),
                    Mapped::Unreadable => {
                        tracing::warn!(account = %self.account, "X sent an item without an id; it cannot be kept");
                        continue;
                    }
                };
                // DM events have no since_id: read back until the last one stored.
                if after.is_some_and(|a| !newer(&id, a)) {
                    reached = true;
                    continue;
                }
                items.push((id, mapped));
            }
            token = page.meta.next_token.filter(|t| !t.is_empty());
            if reached || token.is_none() || (after.is_none() && feed == Feed::Dms) {
                break;
            }
        }
        items.sort_by(|(a, _), (b, _)| (a.len(), a).cmp(&(b.len(), b)));
        items.dedup_by(|(a, _), (b, _)| a == b);
        Ok((items, limit))
    }

    /// Stores what one feed has after the cursor; moves the cursor with each item.
    async fn take(
        &self,
        intake: &dyn Intake,
        feed: Feed,
        cursor: &mut Cursor,
    ) -> Result<Option<RateLimit>, RoundError> {
        let after = match feed {
            Feed::Mentions => cursor.mentions.clone(),
            Feed::Dms => cursor.dms.clone(),
        };
        let (items, limit) = self.fetch(feed, after.as_deref()).await?;
        for (id, mapped) in items {
            let mut next = cursor.clone();
            match feed {
                Feed::Mentions => next.mentions = Some(id.clone()),
                Feed::Dms => next.dms = Some(id.clone()),
            }
            match mapped {
                Mapped::Inbound { inbound, .. } => {
                    if let Err(e) = intake.ingest(*inbound, Some(next.text())).await {
                        // Not stored, so the cursor stays: fetched again next round.
                        return Err(RoundError::Store(format!("cannot store what X sent: {e}")));
                    }
                }
                Mapped::Skipped { why, .. } => {
                    tracing::debug!(account = %self.account, item = %id, why, "not for the inbox");
                }
                Mapped::Unreadable => continue,
            }
            // Skipped items move the cursor in memory only; the next stored one commits it.
            *cursor = next;
        }
        Ok(limit)
    }

    /// Receives until stopped.
    async fn receive(&self, ctx: &ChannelContext) {
        let stop = &ctx.shutdown;
        let Some(mut cursor) = self.stored_cursor(ctx).await else {
            return;
        };
        let feeds: Vec<Feed> = [
            (self.config.mentions, Feed::Mentions),
            (self.config.dms, Feed::Dms),
        ]
        .into_iter()
        .filter_map(|(on, feed)| on.then_some(feed))
        .collect();
        let mut due: HashMap<Feed, Instant> = feeds.iter().map(|f| (*f, Instant::now())).collect();
        let mut failures: HashMap<Feed, u32> = HashMap::new();
        let mut started: HashMap<Feed, bool> = HashMap::new();
        loop {
            let Some((&feed, &when)) = due.iter().min_by_key(|(_, at)| **at) else {
                // Nothing to read: the channel only sends.
                self.health
                    .set(Health::ok("sending only (mentions and DMs off)"));
                stop.cancelled().await;
                return;
            };
            if !pause(stop, when.saturating_duration_since(Instant::now())).await {
                return;
            }
            let result = self.round(ctx, feed, &mut cursor, &mut started).await;
            let wait = match result {
                Ok(limit) => {
                    failures.remove(&feed);
                    // Ready once every feed knows where it starts: a message that
                    // comes after that is never taken for one from before.
                    let all_well = failures.is_empty()
                        && feeds
                            .iter()
                            .all(|f| started.get(f).copied().unwrap_or(false));
                    if all_well && self.health.set(Health::ok(self.receiving())) {
                        tracing::info!(account = %self.account, "receiving from X");
                    }
                    RateLimit::pace(limit, self.config.poll_every)
                }
                Err(RoundError::X(ApiError::RateLimited { reset_in })) => {
                    let wait = reset_in.unwrap_or(Duration::from_secs(60)) + Duration::from_secs(1);
                    tracing::info!(account = %self.account, ?feed, wait_s = wait.as_secs(), "X rate limit reached; waiting for the reset");
                    wait.max(self.config.poll_every)
                }
                Err(RoundError::X(e)) => {
                    let n = failures.entry(feed).or_default();
                    *n += 1;
                    self.failing(format!("{}: {}", feed_name(feed), describe(&e)));
                    retry_wait(&e, *n).max(self.config.poll_every.min(Duration::from_secs(5)))
                }
                Err(RoundError::Store(why)) => {
                    let n = failures.entry(feed).or_default();
                    *n += 1;
                    self.failing(format!("{}: {why}", feed_name(feed)));
                    reconnect_backoff(*n)
                }
            };
            due.insert(feed, Instant::now() + wait);
        }
    }

    /// One round of one feed; on a first start, finds where to begin.
    async fn round(
        &self,
        ctx: &ChannelContext,
        feed: Feed,
        cursor: &mut Cursor,
        started: &mut HashMap<Feed, bool>,
    ) -> Result<Option<RateLimit>, RoundError> {
        let slot = match feed {
            Feed::Mentions => &mut cursor.mentions,
            Feed::Dms => &mut cursor.dms,
        };
        if !started.get(&feed).copied().unwrap_or(false) {
            if slot.is_none() && !self.config.import_existing {
                // The newest item now; on an empty feed, its beginning (`""`: whatever
                // appears on it is new).
                *slot = Some(self.newest(feed).await?.unwrap_or_default());
                // Kept at once: a restart before the first message goes on from here
                // rather than from whatever X lists newest by then.
                ctx.intake
                    .move_cursor(&self.account, cursor.text())
                    .await
                    .map_err(|e| RoundError::Store(format!("cannot store the X cursor: {e}")))?;
            }
            started.insert(feed, true);
        }
        self.take(&*ctx.intake, feed, cursor).await
    }

    fn receiving(&self) -> String {
        match (self.config.mentions, self.config.dms) {
            (true, true) => "receiving mentions and DMs".into(),
            (true, false) => "receiving mentions".into(),
            _ => "receiving DMs".into(),
        }
    }

    /// Whether the bot has not invited this thread to a DM in the last day (and now
    /// will).
    fn first_invitation_today(&self, thread: &str) -> bool {
        const DAY: Duration = Duration::from_secs(86_400);
        let now = Instant::now();
        let mut invited = self.invited.lock().unwrap_or_else(|e| e.into_inner());
        invited.retain(|_, at| now.duration_since(*at) < DAY);
        if invited.contains_key(thread) {
            return false;
        }
        invited.insert(thread.to_owned(), now);
        true
    }

    /// The invitation to go on by DM, in the language of `reply`.
    fn dm_invitation(&self, reply: &str) -> String {
        let link = format!(
            "https://x.com/messages/compose?recipient_id={}",
            self.user_id
        );
        if reply
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
        {
            format!("如需私下沟通，请私信我们：{link}")
        } else {
            format!("To go on in private, send us a direct message: {link}")
        }
    }

    /// Why `text` may not be posted in public, if it may not.
    fn public_refusal(&self, text: &str) -> Option<String> {
        let filtered = self.details.filter(text);
        let mut kinds: Vec<&str> = filtered
            .entities
            .iter()
            .filter(|e| {
                !self
                    .config
                    .published
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(&e.value))
            })
            .map(|e| e.kind.as_str())
            .filter(|k| ACCOUNT_DETAILS.contains(k))
            .collect();
        if !filtered.findings.is_empty() {
            kinds.push("a recovery phrase or key");
        }
        kinds.sort_unstable();
        kinds.dedup();
        (!kinds.is_empty()).then(|| {
            format!(
                "a public reply on X must not carry account details ({}); ask the customer \
                 to send a direct message and answer there",
                kinds.join(", ").replace('_', " ")
            )
        })
    }

    async fn reply_in_public(&self, out: &Outbound) -> DeliveryOutcome {
        if !out.attachments.is_empty() {
            return DeliveryOutcome::Permanent(
                "Frontdesk cannot send files on X yet; describe it in words or send a link".into(),
            );
        }
        if let Some(why) = self.public_refusal(&out.text) {
            return DeliveryOutcome::Permanent(why);
        }
        let Some(target) = out
            .reply_to
            .as_deref()
            .and_then(|r| r.strip_prefix("post:"))
            .filter(|id| crate::mapping::is_id(id))
        else {
            return DeliveryOutcome::Permanent(
                "X lets the account reply only to posts that mention it, and this conversation \
                 has no such post to answer"
                    .into(),
            );
        };
        // Each post opens with whom it answers (an agent who wrote it already is not
        // made to say it twice).
        let to = out.meta["username"].as_str().filter(|u| is_handle(u));
        let mut text = match to {
            Some(user) => without_opening_handle(&out.text, user).to_owned(),
            None => out.text.trim().to_owned(),
        };
        if out.automatic && self.config.dm_invite && self.first_invitation_today(&out.thread_key) {
            text = format!("{text}\n\n{}", self.dm_invitation(&text));
        }
        let posts = text::posts(&text, to);
        if posts.is_empty() {
            return DeliveryOutcome::Permanent("nothing to send: the reply is empty".into());
        }
        let mut sent = match Pieces::of(&*self.progress, out).await {
            Ok(sent) => sent,
            Err(e) => return DeliveryOutcome::Transient(e),
        };
        for post in posts.iter().skip(sent.done) {
            // The first post answers the customer's; each next one the post before.
            let answers = sent.last.as_deref().unwrap_or(target);
            let body = json!({ "text": post, "reply": { "in_reply_to_tweet_id": answers } });
            match self.client.post("/2/tweets", &body).await {
                Ok(answer) => {
                    let Some(id) = answer.body["data"]["id"].as_str() else {
                        return DeliveryOutcome::Transient(
                            "X accepted a post but gave no id".into(),
                        );
                    };
                    let id = id.to_owned();
                    sent.sent(&*self.progress, out, Some(id), posts.len()).await;
                }
                // An earlier attempt died after X took this post and before it was
                // recorded: X's duplicate rule says it is out. Its id is lost, so a next
                // post answers the customer's.
                Err(e) if out.attempt > 1 && is_duplicate(&e) => {
                    tracing::info!(outbox_id = %out.outbox_id, "X already has this post from an earlier attempt");
                    sent.sent(&*self.progress, out, None, posts.len()).await;
                }
                Err(e) => return self.outcome_of(&e, false),
            }
        }
        DeliveryOutcome::Sent {
            external_id: sent.first.map(|first| format!("post:{first}")),
        }
    }

    async fn send_dm(&self, out: &Outbound) -> DeliveryOutcome {
        if !out.attachments.is_empty() {
            return DeliveryOutcome::Permanent(
                "Frontdesk cannot send files on X yet; describe it in words or send a link".into(),
            );
        }
        if !crate::mapping::is_id(&out.recipient) {
            return DeliveryOutcome::Permanent(format!("{:?} is not an X user id", out.recipient));
        }
        let pieces = text::pieces_of(&out.text, MAX_DM_CHARS);
        if pieces.is_empty() {
            return DeliveryOutcome::Permanent("nothing to send: the reply is empty".into());
        }
        let mut sent = match Pieces::of(&*self.progress, out).await {
            Ok(sent) => sent,
            Err(e) => return DeliveryOutcome::Transient(e),
        };
        let path = format!("/2/dm_conversations/with/{}/messages", out.recipient);
        for piece in pieces.iter().skip(sent.done) {
            match self.client.post(&path, &json!({ "text": piece })).await {
                Ok(answer) => {
                    let id = answer.body["data"]["dm_event_id"]
                        .as_str()
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned);
                    sent.sent(&*self.progress, out, id, pieces.len()).await;
                }
                Err(e) => return self.outcome_of(&e, true),
            }
        }
        DeliveryOutcome::Sent {
            external_id: sent.first.map(|first| format!("dm:{first}")),
        }
    }

    /// What a failed send means for the delivery worker.
    fn outcome_of(&self, e: &ApiError, dm: bool) -> DeliveryOutcome {
        if e.is_credentials() {
            // Replies wait until the credentials are fixed; the channel says why.
            self.failing(describe(e));
            return DeliveryOutcome::Transient(describe(e));
        }
        outcome_of(e, dm)
    }
}

/// A failed send, for the delivery worker (credentials aside).
fn outcome_of(e: &ApiError, dm: bool) -> DeliveryOutcome {
    match e {
        ApiError::RateLimited { reset_in } => DeliveryOutcome::RetryAfter(
            reset_in.unwrap_or(Duration::from_secs(60)) + Duration::from_secs(1),
        ),
        ApiError::Forbidden { detail, .. } if dm && refuses_dms(detail) => {
            DeliveryOutcome::Unreachable(detail.clone())
        }
        // Duplicate content, a reply X does not allow, a second cashtag: never.
        ApiError::Forbidden { detail, .. } => DeliveryOutcome::Permanent(detail.clone()),
        ApiError::Refused { detail, .. } => DeliveryOutcome::Permanent(detail.clone()),
        e => DeliveryOutcome::Transient(describe(e)),
    }
}

/// X's refusal of a post with the same text as one of the account's own.
fn is_duplicate(e: &ApiError) -> bool {
    matches!(e, ApiError::Forbidden { detail, .. } if detail.to_lowercase().contains("duplicate content"))
}

/// An X username: 1 to 15 letters, digits and underscores.
fn is_handle(user: &str) -> bool {
    (1..=15).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `text` without an opening `@user` (an agent who addressed them), trimmed.
fn without_opening_handle<'a>(text: &'a str, user: &str) -> &'a str {
    let text = text.trim();
    let rest = text
        .strip_prefix('@')
        .filter(|r| {
            r.get(..user.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(user))
        })
        .map(|r| &r[user.len()..]);
    match rest {
        // The handle must end there: `@sam` opens `@sam hi`, not `@samuel hi`.
        Some(r) if r.is_empty() || r.starts_with(char::is_whitespace) => r.trim_start(),
        _ => text,
    }
}

/// X's words for a recipient who does not take our DMs.
fn refuses_dms(detail: &str) -> bool {
    let d = detail.to_lowercase();
    d.contains("cannot send messages")
        || d.contains("not allowed to send")
        || d.contains("does not accept")
}

fn feed_name(feed: Feed) -> &'static str {
    match feed {
        Feed::Mentions => "mentions",
        Feed::Dms => "DMs",
    }
}

/// A failure in words for agents and logs.
fn describe(e: &ApiError) -> String {
    match e {
        ApiError::Unauthorized(_) => format!(
            "{e}; check channels.x.consumer_key, consumer_secret, access_token and \
             access_token_secret (or client_id and refresh_token)"
        ),
        ApiError::Forbidden {
            reason: Some(r), ..
        } => format!("{e} ({r})"),
        e => e.to_string(),
    }
}

/// How long to wait after a failure: credentials are not fixed in a second.
fn retry_wait(e: &ApiError, failures: u32) -> Duration {
    let backoff = reconnect_backoff(failures);
    if e.is_credentials() {
        backoff.max(Duration::from_secs(30))
    } else {
        backoff
    }
}

#[async_trait::async_trait]
impl Channel for XChannel {
    fn account(&self) -> &ChannelAccount {
        &self.account
    }

    async fn run(&self, ctx: ChannelContext) -> Result<(), String> {
        if !self.introduce(&ctx.shutdown).await? {
            return Ok(());
        }
        self.receive(&ctx).await;
        Ok(())
    }

    async fn deliver(&self, out: &Outbound) -> DeliveryOutcome {
        if is_public_thread(&out.thread_key) {
            self.reply_in_public(out).await
        } else if out.thread_key.starts_with("dm:") {
            self.send_dm(out).await
        } else {
            DeliveryOutcome::Permanent(format!(
                "{:?} is not an X thread (public:… or dm:…)",
                out.thread_key
            ))
        }
    }

    async fn health(&self) -> Health {
        self.health.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_keeps_both_feeds_and_reads_back() {
        let c = Cursor {
            mentions: Some("18".into()),
            dms: None,
        };
        assert_eq!(c.text(), r#"{"mentions":"18"}"#);
        assert_eq!(Cursor::read(Some(&c.text())), c);
        assert_eq!(Cursor::read(Some("garbage")), Cursor::default());
        assert_eq!(Cursor::read(None), Cursor::default());
    }

    #[test]
    fn duplicates_and_forbidden_replies_are_permanent_rate_limits_wait() {
        let forbidden = |detail: &str| ApiError::Forbidden {
            detail: detail.into(),
            kind: "about:blank".into(),
            reason: None,
        };
        assert_eq!(
            outcome_of(
                &forbidden("You are not allowed to create a Tweet with duplicate content."),
                false
            ),
            DeliveryOutcome::Permanent(
                "You are not allowed to create a Tweet with duplicate content.".into()
            )
        );
        assert!(matches!(
            outcome_of(&forbidden("You cannot send messages to this user."), true),
            DeliveryOutcome::Unreachable(_)
        ));
        assert_eq!(
            outcome_of(
                &ApiError::RateLimited {
                    reset_in: Some(Duration::from_secs(30))
                },
                false
            ),
            DeliveryOutcome::RetryAfter(Duration::from_secs(31))
        );
        assert!(matches!(
            outcome_of(&ApiError::Server(503), true),
            DeliveryOutcome::Transient(_)
        ));
    }
}
