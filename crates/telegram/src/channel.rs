//! The Telegram channel: one bot, receiving by long polling or by webhook, sending
//! through the Bot API with teloxide.
//!
//! Receiving, exactly once: every update is stored through the [`Intake`] together with
//! the offset that confirms it, and only then is the next `getUpdates` sent with that
//! offset. A crash between the two fetches the update again; the store knows its id
//! (`CHAT:MESSAGE`) and does not store it twice. After a restart polling resumes from
//! the stored offset. In webhook mode Telegram retries until we answer 200, which we do
//! only after the commit.
//!
//! Sending: a reply is cut into pieces Telegram accepts ([`crate::split`]), escaped for
//! HTML parse mode, and sent as a reply to the customer's message; buttons (quick
//! replies, the satisfaction survey) ride on the last piece. Sends are paced to
//! Telegram's limits ([`crate::pace`]: 1 a second per chat, 30 a second overall, 20 a
//! minute in a group); a 429 all the same goes back to the delivery worker as
//! [`DeliveryOutcome::RetryAfter`]. Pieces already sent are remembered, so a retry
//! sends only the rest.

use crate::mapping::{MapOptions, Mapped, message_key, read_update};
use crate::pace::Pacer;
use crate::split::{MAX_UNITS, escape_html, split};
use frontdesk_core::{
    Channel, ChannelAccount, ChannelContext, DeliveryOutcome, FileBody, FileError, Files, Health,
    HealthCell, Intake, IntakeError, MemoryProgress, Outbound, Pieces, Progress, json_error, pause,
    reconnect_backoff,
};
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use teloxide::net::Download;
use teloxide::payloads::{SendMessageSetters, SetWebhookSetters};
use teloxide::requests::{JsonRequest, Payload, Request, Requester};
use teloxide::types::{
    AllowedUpdate, CallbackQueryId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile,
    MessageId, ParseMode, ReplyParameters,
};
use teloxide::{ApiError, Bot, RequestError};
use tokio_util::sync::CancellationToken;

/// The largest file the Bot API lets a bot download.
pub const MAX_DOWNLOAD: u64 = 20 * 1024 * 1024;
/// Customer files kept in memory for agents who open them again.
const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// A photo larger than this goes as a document (the Bot API's limit for photos).
const MAX_PHOTO: usize = 10 * 1024 * 1024;
/// Callback data holds at most 64 bytes.
const MAX_CALLBACK_DATA: usize = 64;
/// The updates the inbox uses; the rest are not even fetched.
const ALLOWED: [AllowedUpdate; 3] = [
    AllowedUpdate::Message,
    AllowedUpdate::EditedMessage,
    AllowedUpdate::CallbackQuery,
];

/// How the bot receives.
#[derive(Debug, Clone)]
pub enum Mode {
    /// `getUpdates` in a loop (the default; works behind any firewall).
    Polling,
    /// Telegram calls `url` (our own server, [`webhook_path`]) with `secret` in the
    /// `X-Telegram-Bot-Api-Secret-Token` header.
    Webhook { url: String, secret: SecretString },
}

/// What the channel needs to run.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub account: ChannelAccount,
    pub token: SecretString,
    /// `https://api.telegram.org`, or a test server.
    pub api_url: String,
    pub mode: Mode,
    /// Take messages from groups where the bot is mentioned or replied to.
    pub groups: bool,
    /// How long one `getUpdates` waits for something to arrive.
    pub poll_timeout: Duration,
    /// How often the webhook's state is read back from Telegram (`getWebhookInfo`).
    pub webhook_check: Duration,
}

impl TelegramConfig {
    pub fn new(account: ChannelAccount, token: SecretString, api_url: &str) -> Self {
        Self {
            account,
            token,
            api_url: api_url.to_owned(),
            mode: Mode::Polling,
            groups: false,
            poll_timeout: Duration::from_secs(25),
            webhook_check: Duration::from_secs(60),
        }
    }
}

/// Why the channel could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("channels.telegram.api_url {0:?} is not a URL")]
    ApiUrl(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The path on our server where Telegram posts updates for this account.
pub fn webhook_path(account: &ChannelAccount) -> String {
    format!("/telegram/{}/webhook", account.name())
}

/// One bot account.
pub struct TelegramChannel {
    account: ChannelAccount,
    bot: Bot,
    /// Every message sent to a chat waits for its turn here.
    pacer: Pacer,
    mode: Mode,
    groups: bool,
    poll_timeout: Duration,
    webhook_check: Duration,
    files: Arc<dyn Files>,
    health: HealthCell,
    /// Who the bot is (getMe); set once `run` has introduced itself.
    me: OnceLock<MapOptions>,
    /// Where webhook calls go; set when `run` starts.
    intake: OnceLock<Arc<dyn Intake>>,
    cache: Mutex<FileCache>,
    /// Where the pieces of a long reply already sent are noted.
    progress: Arc<dyn Progress>,
}

impl std::fmt::Debug for TelegramChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the bot: teloxide's Debug shows the token.
        f.debug_struct("TelegramChannel")
            .field("account", &self.account)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl TelegramChannel {
    /// Builds the client.
    pub fn new(config: TelegramConfig, files: Arc<dyn Files>) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(&config.api_url)
            .map_err(|_| ConfigError::ApiUrl(config.api_url.clone()))?;
        // teloxide's client gives up after 17 s; a long poll must be allowed its wait.
        let client = teloxide::net::default_reqwest_settings()
            .timeout(config.poll_timeout + Duration::from_secs(15))
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        let bot = Bot::with_client(config.token.expose_secret(), client).set_api_url(url);
        Ok(Self {
            account: config.account,
            bot,
            pacer: Pacer::default(),
            mode: config.mode,
            groups: config.groups,
            poll_timeout: config.poll_timeout,
            webhook_check: config.webhook_check,
            files,
            health: HealthCell::default(),
            me: OnceLock::new(),
            intake: OnceLock::new(),
            cache: Mutex::new(FileCache::default()),
            progress: Arc::new(MemoryProgress::default()),
        })
    }

    /// Notes the pieces of long replies sent in `progress` (the server's are kept in
    /// the outbox, so a crash mid-reply repeats none); by default they are kept in
    /// memory.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    pub(crate) fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Asks Telegram who the bot is, until it answers or we stop.
    async fn introduce(&self, stop: &CancellationToken) -> Option<MapOptions> {
        let mut failures = 0;
        loop {
            let answer = tokio::select! {
                _ = stop.cancelled() => return None,
                answer = self.bot.get_me().send() => answer,
            };
            match answer {
                Ok(me) => {
                    let options = MapOptions {
                        bot_username: me.username().to_owned(),
                        bot_id: me.user.id.0,
                        groups: self.groups,
                    };
                    tracing::info!(account = %self.account, bot = %options.bot_username, "Telegram bot ready");
                    return Some(self.me.get_or_init(|| options).clone());
                }
                Err(e) => {
                    failures += 1;
                    let why = describe(&e);
                    if self.health.set(Health::failing(why.clone())) {
                        tracing::warn!(account = %self.account, error = %why, "cannot reach the Telegram bot");
                    }
                    if !pause(stop, reconnect_backoff(failures)).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Stores one update; the cursor, if any, is committed with it.
    pub(crate) async fn take(
        &self,
        intake: &dyn Intake,
        update_id: i64,
        mapped: Mapped,
        cursor: Option<String>,
    ) -> Result<(), IntakeError> {
        match mapped {
            Mapped::Inbound(inbound) => {
                let callback = inbound.meta["callback_query_id"]
                    .as_str()
                    .map(str::to_owned);
                intake.ingest(*inbound, cursor).await?;
                if let Some(id) = callback {
                    // Stops the spinner on the customer's button; the tap is stored.
                    let answered = self
                        .bot
                        .answer_callback_query(CallbackQueryId(id))
                        .send()
                        .await;
                    if let Err(e) = answered {
                        tracing::debug!(error = %describe(&e), "cannot answer a button tap");
                    }
                }
            }
            Mapped::Skipped(why) => {
                tracing::debug!(update_id, why, "update not for the inbox");
            }
        }
        Ok(())
    }

    async fn poll(&self, ctx: &ChannelContext, options: &MapOptions) {
        let stop = &ctx.shutdown;
        if !self.leave_webhook_mode(stop).await {
            return;
        }
        let mut offset = match self.stored_offset(ctx).await {
            Some(offset) => offset,
            None => return,
        };
        let wait = u32::try_from(self.poll_timeout.as_secs()).unwrap_or(25);
        let mut failures = 0;
        // Telegram knows the bot and no webhook stands in the way: polling, though the
        // first long poll may wait its whole timeout for an update.
        if self.health.set(Health::ok("polling")) {
            tracing::info!(account = %self.account, "polling Telegram for updates");
        }
        loop {
            let request = JsonRequest::new(
                self.bot.clone(),
                RawUpdates {
                    offset,
                    timeout: wait,
                    allowed_updates: ALLOWED,
                },
            );
            let answer = tokio::select! {
                _ = stop.cancelled() => return,
                answer = request.send() => answer,
            };
            let updates: Option<Vec<(i64, Mapped)>> = match answer {
                Ok(raw) => raw
                    .iter()
                    .map(|u| read_update(&u.to_string(), &self.account, options))
                    .collect(),
                Err(e) => {
                    failures += 1;
                    let pause_for = self.polling_failed(&e, failures);
                    if !pause(stop, pause_for).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(updates) = updates else {
                // An update without an id cannot be confirmed, so nothing after it can.
                failures += 1;
                let why = "Telegram sent an update without an update_id; polling cannot go past it";
                if self.health.set(Health::failing(why)) {
                    tracing::error!(account = %self.account, "{why}");
                }
                if !pause(stop, reconnect_backoff(failures)).await {
                    return;
                }
                continue;
            };
            failures = 0;
            if self.health.set(Health::ok("polling")) {
                tracing::info!(account = %self.account, "polling Telegram for updates");
            }
            for (update_id, mapped) in updates {
                let next = i32::try_from(update_id)
                    .unwrap_or(i32::MAX)
                    .saturating_add(1);
                match self
                    .take(&*ctx.intake, update_id, mapped, Some(next.to_string()))
                    .await
                {
                    Ok(()) => offset = next,
                    Err(e) => {
                        // Not confirmed: Telegram gives it to us again.
                        tracing::warn!(account = %self.account, error = %e, "cannot store an update; fetching it again");
                        self.health
                            .set(Health::failing(format!("cannot store updates: {e}")));
                        if !pause(stop, Duration::from_secs(2)).await {
                            return;
                        }
                        break;
                    }
                }
            }
        }
    }

    /// The offset to poll from: the one committed with the last stored update.
    async fn stored_offset(&self, ctx: &ChannelContext) -> Option<i32> {
        let mut failures = 0;
        loop {
            match ctx.intake.cursor(&self.account).await {
                Ok(cursor) => return Some(cursor.and_then(|c| c.parse().ok()).unwrap_or(0)),
                Err(e) => {
                    failures += 1;
                    tracing::warn!(account = %self.account, error = %e, "cannot read the Telegram offset");
                    if !pause(&ctx.shutdown, reconnect_backoff(failures)).await {
                        return None;
                    }
                }
            }
        }
    }

    /// How long to wait after a failed `getUpdates`, with the reason made visible.
    fn polling_failed(&self, e: &RequestError, failures: u32) -> Duration {
        let (why, wait) = match e {
            RequestError::RetryAfter(after) => (
                format!("Telegram asked us to wait {} s", after.seconds()),
                after.duration(),
            ),
            e if is_conflict(e) => (
                "409 Conflict: another program is receiving this bot's updates (only one \
                 may poll), or a webhook is set; stop the other one"
                    .to_owned(),
                reconnect_backoff(failures).max(Duration::from_secs(5)),
            ),
            e => (describe(e), reconnect_backoff(failures)),
        };
        if self.health.set(Health::failing(why.clone())) {
            tracing::warn!(account = %self.account, error = %why, "polling Telegram failed");
        }
        wait
    }

    /// A webhook left set (by an earlier webhook mode) makes `getUpdates` fail: remove
    /// it, keeping the updates Telegram holds.
    async fn leave_webhook_mode(&self, stop: &CancellationToken) -> bool {
        let mut failures = 0;
        loop {
            let answer = tokio::select! {
                _ = stop.cancelled() => return false,
                answer = self.bot.get_webhook_info().send() => answer,
            };
            let result = match answer {
                Ok(info) if info.url.is_none() => return true,
                Ok(_) => self.bot.delete_webhook().send().await.map(|_| ()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    tracing::info!(account = %self.account, "removed the Telegram webhook to poll instead");
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    let why = format!("cannot check or remove the webhook: {}", describe(&e));
                    if self.health.set(Health::failing(why.clone())) {
                        tracing::warn!(account = %self.account, error = %why, "Telegram");
                    }
                    if !pause(stop, reconnect_backoff(failures)).await {
                        return false;
                    }
                }
            }
        }
    }

    /// Webhook mode: registers the webhook, then reads its state back now and then,
    /// registering it again if it was removed or replaced.
    async fn keep_webhook(&self, stop: &CancellationToken, url: &str, secret: &SecretString) {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            self.health.set(Health::failing(format!(
                "the webhook URL {url:?} is not a URL"
            )));
            return;
        };
        let mut registered = false;
        let mut failures = 0;
        loop {
            if !registered {
                let answer = self
                    .bot
                    .set_webhook(parsed.clone())
                    .secret_token(secret.expose_secret().to_owned())
                    .allowed_updates(ALLOWED)
                    .send()
                    .await;
                match answer {
                    Ok(_) => {
                        registered = true;
                        tracing::info!(account = %self.account, url, "Telegram webhook set");
                    }
                    Err(e) => {
                        let why = format!("cannot set the webhook: {}", describe(&e));
                        if self.health.set(Health::failing(why.clone())) {
                            tracing::warn!(account = %self.account, error = %why, "Telegram");
                        }
                    }
                }
            }
            if registered {
                match self.bot.get_webhook_info().send().await {
                    Ok(info) if info.url.as_ref().map(reqwest::Url::as_str) != Some(url) => {
                        registered = false;
                        let now = info
                            .url
                            .map_or_else(|| "none".to_owned(), |u| u.to_string());
                        let why = format!(
                            "the webhook was removed or replaced (now: {now}); setting it again"
                        );
                        tracing::warn!(account = %self.account, "{why}");
                        self.health.set(Health::failing(why));
                        continue;
                    }
                    Ok(info) => {
                        failures = 0;
                        let health = webhook_health(
                            info.pending_update_count,
                            info.last_error_date.map(|d| d.timestamp()),
                            info.last_error_message.as_deref(),
                        );
                        if self.health.set(health.clone()) && !health.ok {
                            tracing::warn!(account = %self.account, detail = %health.detail, "Telegram cannot reach the webhook");
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        let why = format!("cannot read the webhook's state: {}", describe(&e));
                        if self.health.set(Health::failing(why.clone())) {
                            tracing::warn!(account = %self.account, error = %why, "Telegram");
                        }
                    }
                }
            }
            let wait = if registered {
                self.webhook_check
            } else {
                reconnect_backoff(failures.max(1))
            };
            if !pause(stop, wait).await {
                return;
            }
        }
    }

    pub(crate) fn ready_for_webhook(&self) -> Option<(Arc<dyn Intake>, MapOptions)> {
        Some((self.intake.get()?.clone(), self.me.get()?.clone()))
    }

    async fn send_piece(&self, piece: Piece<'_>, chat: ChatId) -> Result<i32, RequestError> {
        self.pacer.wait_turn(chat.0).await;
        let sent = match piece {
            Piece::Text {
                text,
                reply_to,
                buttons,
            } => {
                let mut request = self
                    .bot
                    .send_message(chat, escape_html(text))
                    .parse_mode(ParseMode::Html);
                if let Some(id) = reply_to {
                    request = request
                        .reply_parameters(ReplyParameters::new(id).allow_sending_without_reply());
                }
                if let Some(keyboard) = buttons {
                    request = request.reply_markup(keyboard);
                }
                request.send().await?
            }
            Piece::File(file) => {
                let photo = file.bytes.len() <= MAX_PHOTO
                    && matches!(
                        file.content_type.as_str(),
                        "image/jpeg" | "image/png" | "image/webp"
                    );
                let input = InputFile::memory(file.bytes).file_name(file.name);
                if photo {
                    self.bot.send_photo(chat, input).send().await?
                } else {
                    self.bot.send_document(chat, input).send().await?
                }
            }
        };
        Ok(sent.id.0)
    }
}

/// `getUpdates` with the updates left as JSON: teloxide's own `Update` turns what it
/// cannot read into an empty value, and the message would be lost; this keeps the raw
/// JSON for [`read_update`]. Sent by teloxide like any request.
#[derive(Debug, Clone, serde::Serialize)]
struct RawUpdates {
    offset: i32,
    timeout: u32,
    allowed_updates: [AllowedUpdate; 3],
}

impl Payload for RawUpdates {
    type Output = Vec<serde_json::Value>;
    const NAME: &'static str = "GetUpdates";

    fn timeout_hint(&self) -> Option<Duration> {
        Some(Duration::from_secs(u64::from(self.timeout)))
    }
}

/// One message of a reply.
enum Piece<'a> {
    Text {
        text: &'a str,
        reply_to: Option<MessageId>,
        buttons: Option<InlineKeyboardMarkup>,
    },
    File(FileBody),
}

/// A webhook is healthy unless Telegram failed to reach it in the last ten minutes.
fn webhook_health(pending: u32, last_error_at: Option<i64>, last_error: Option<&str>) -> Health {
    let now = frontdesk_core::Timestamp::now().as_micros() / 1_000_000;
    match (last_error_at, last_error) {
        (Some(at), Some(message)) if now - at < 600 => Health::failing(format!(
            "webhook set; {pending} updates waiting; Telegram's last error {} s ago: {message}",
            now - at
        )),
        _ => Health::ok(format!("webhook set; {pending} updates waiting")),
    }
}

/// The quick replies as one row of buttons per choice.
fn keyboard(choices: &[String]) -> Option<InlineKeyboardMarkup> {
    (!choices.is_empty()).then(|| {
        InlineKeyboardMarkup::new(choices.iter().enumerate().map(|(i, choice)| {
            let data = if choice.len() <= MAX_CALLBACK_DATA {
                choice.clone()
            } else {
                format!("qr:{i}")
            };
            [InlineKeyboardButton::callback(choice.clone(), data)]
        }))
    })
}

/// The customer message to reply to, if it is in this chat.
fn reply_target(reply_to: Option<&str>, chat: i64) -> Option<MessageId> {
    let (in_chat, message) = reply_to?.split_once(':')?;
    let message = message.split(':').next()?;
    (in_chat.parse::<i64>().ok()? == chat)
        .then(|| message.parse().ok().map(MessageId))
        .flatten()
}

#[async_trait::async_trait]
impl Channel for TelegramChannel {
    fn account(&self) -> &ChannelAccount {
        &self.account
    }

    async fn run(&self, ctx: ChannelContext) -> Result<(), String> {
        let _ = self.intake.set(ctx.intake.clone());
        let Some(options) = self.introduce(&ctx.shutdown).await else {
            return Ok(());
        };
        match &self.mode {
            Mode::Polling => self.poll(&ctx, &options).await,
            Mode::Webhook { url, secret } => self.keep_webhook(&ctx.shutdown, url, secret).await,
        }
        Ok(())
    }

    async fn deliver(&self, out: &Outbound) -> DeliveryOutcome {
        let Ok(chat) = out.thread_key.parse::<i64>() else {
            return DeliveryOutcome::Permanent(format!(
                "{:?} is not a Telegram chat id",
                out.thread_key
            ));
        };
        let reply_to = reply_target(out.reply_to.as_deref(), chat);
        let texts = split(&out.text, MAX_UNITS);
        let last_text = texts.len().checked_sub(1);
        let mut buttons = keyboard(&out.quick_replies);
        let mut pieces: Vec<Piece<'_>> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| Piece::Text {
                text,
                // The first piece answers the customer; the rest follow it.
                reply_to: reply_to.filter(|_| i == 0),
                buttons: if Some(i) == last_text {
                    buttons.take()
                } else {
                    None
                },
            })
            .collect();
        let mut sent = match Pieces::of(&*self.progress, out).await {
            Ok(sent) => sent,
            Err(e) => return DeliveryOutcome::Transient(e),
        };
        for attachment in &out.attachments {
            match self.files.read(&attachment.reference).await {
                Ok(file) => pieces.push(Piece::File(file)),
                Err(FileError::Unavailable(e)) => return DeliveryOutcome::Transient(e),
                Err(e) => {
                    return DeliveryOutcome::Permanent(format!(
                        "the attachment {} cannot be read: {e}",
                        attachment.name
                    ));
                }
            }
        }
        if pieces.is_empty() {
            return DeliveryOutcome::Permanent("nothing to send: the reply is empty".into());
        }
        let total = pieces.len();
        for piece in pieces.into_iter().skip(sent.done) {
            match self.send_piece(piece, ChatId(chat)).await {
                Ok(message_id) => {
                    let id = message_key(chat, message_id);
                    sent.sent(&*self.progress, out, Some(id), total).await;
                }
                Err(e) => return outcome_of(&e),
            }
        }
        DeliveryOutcome::Sent {
            external_id: sent.first,
        }
    }

    async fn health(&self) -> Health {
        self.health.get()
    }

    fn invite_link(&self, payload: &str) -> Option<String> {
        let me = self.me.get()?;
        let valid = (1..=64).contains(&payload.len())
            && payload
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        valid.then(|| format!("https://t.me/{}?start={payload}", me.bot_username))
    }

    async fn fetch_file(&self, reference: &str) -> Result<FileBody, FileError> {
        let id = reference
            .strip_prefix("telegram:")
            .ok_or(FileError::NotFound)?;
        if let Some(hit) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            return Ok(hit);
        }
        let file = match self
            .bot
            .get_file(teloxide::types::FileId(id.to_owned()))
            .send()
            .await
        {
            Ok(file) => file,
            Err(RequestError::Api(ApiError::FileIdInvalid | ApiError::WrongFileId)) => {
                return Err(FileError::NotFound);
            }
            Err(RequestError::Api(ApiError::Unknown(why))) if why.starts_with("Bad Request") => {
                return Err(FileError::NotFound);
            }
            Err(e) => return Err(FileError::Unavailable(describe(&e))),
        };
        let size = u64::from(file.size);
        if size > MAX_DOWNLOAD {
            return Err(FileError::TooBig {
                size,
                max: MAX_DOWNLOAD,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let mut stream = self.bot.download_file_stream(&file.path);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FileError::Unavailable(e.to_string()))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > MAX_DOWNLOAD {
                return Err(FileError::TooBig {
                    size: bytes.len() as u64,
                    max: MAX_DOWNLOAD,
                });
            }
        }
        let name = file
            .path
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or("file")
            .to_owned();
        let body = FileBody {
            content_type: content_type_of(&name).to_owned(),
            name,
            bytes,
        };
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(id, body.clone());
        Ok(body)
    }
}

/// What a failed send means for the delivery worker.
fn outcome_of(e: &RequestError) -> DeliveryOutcome {
    use ApiError as A;
    match e {
        RequestError::RetryAfter(after) => DeliveryOutcome::RetryAfter(after.duration()),
        RequestError::Api(
            A::BotBlocked
            | A::UserDeactivated
            | A::BotKicked
            | A::BotKickedFromSupergroup
            | A::BotKickedFromChannel
            | A::CantInitiateConversation
            | A::GroupDeactivated,
        ) => DeliveryOutcome::Unreachable(e.to_string().replace("A Telegram's error: ", "")),
        RequestError::Api(A::InvalidToken) => {
            DeliveryOutcome::Transient("Telegram refused the bot token (401)".into())
        }
        RequestError::Api(A::Unknown(why)) if why.starts_with("Forbidden") => {
            DeliveryOutcome::Unreachable(why.clone())
        }
        RequestError::Api(A::Unknown(why))
            if why.starts_with("Bad Request") || why.starts_with("Not Found") =>
        {
            DeliveryOutcome::Permanent(why.clone())
        }
        RequestError::Api(A::Unknown(why)) => DeliveryOutcome::Transient(why.clone()),
        RequestError::Api(known) => DeliveryOutcome::Permanent(known.to_string()),
        RequestError::MigrateToChatId(to) => {
            DeliveryOutcome::Permanent(format!("the group moved to chat {}", to.0))
        }
        RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
            DeliveryOutcome::Transient(describe(e))
        }
    }
}

fn is_conflict(e: &RequestError) -> bool {
    match e {
        RequestError::Api(ApiError::TerminatedByOtherGetUpdates | ApiError::CantGetUpdates) => true,
        RequestError::Api(ApiError::Unknown(why)) => why.starts_with("Conflict"),
        _ => false,
    }
}

/// A failure in words for agents and logs (teloxide already hides the token in URLs).
fn describe(e: &RequestError) -> String {
    match e {
        RequestError::Api(ApiError::InvalidToken) => {
            "Telegram refused the bot token (401 Unauthorized); check channels.telegram.token"
                .into()
        }
        RequestError::Network(e) => format!("cannot reach Telegram: {e}"),
        RequestError::InvalidJson { source, .. } => format!(
            "Telegram answered with something that is not the Bot API's JSON ({})",
            json_error(source)
        ),
        e => e.to_string().replace("A Telegram's error: ", ""),
    }
}

fn content_type_of(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or_default().to_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "oga" | "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// The files agents opened lately, oldest evicted first, at most [`CACHE_BYTES`].
#[derive(Debug, Default)]
struct FileCache {
    entries: VecDeque<(String, FileBody)>,
    bytes: usize,
}

impl FileCache {
    fn get(&mut self, id: &str) -> Option<FileBody> {
        let at = self.entries.iter().position(|(k, _)| k == id)?;
        let entry = self.entries.remove(at)?;
        let body = entry.1.clone();
        self.entries.push_back(entry);
        Some(body)
    }

    fn put(&mut self, id: &str, body: FileBody) {
        if body.bytes.len() > CACHE_BYTES {
            return;
        }
        self.bytes += body.bytes.len();
        self.entries.push_back((id.to_owned(), body));
        while self.bytes > CACHE_BYTES {
            let Some((_, old)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.bytes.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct NoFiles;

    #[async_trait::async_trait]
    impl Files for NoFiles {
        async fn read(&self, _: &str) -> Result<FileBody, FileError> {
            Err(FileError::NotFound)
        }
    }

    #[tokio::test]
    async fn the_token_and_the_webhook_secret_never_show_in_debug_output() {
        let account = ChannelAccount::default_of(frontdesk_core::ChannelKind::Telegram);
        let mut config = TelegramConfig::new(
            account,
            "123456:SECRET-TOKEN".to_owned().into(),
            "http://127.0.0.1:9",
        );
        config.mode = Mode::Webhook {
            url: "https://desk.example/telegram/default/webhook".into(),
            secret: "WEBHOOK-SECRET".to_owned().into(),
        };
        let shown = format!("{config:?}");
        let channel = TelegramChannel::new(config, Arc::new(NoFiles)).unwrap();
        let shown = format!("{shown} {channel:?}");
        assert!(
            !shown.contains("SECRET-TOKEN") && !shown.contains("WEBHOOK-SECRET"),
            "{shown}"
        );
    }

    #[test]
    fn a_json_error_names_the_place_not_the_value() {
        let e = serde_json::from_str::<u32>("\"abandon ability able\"").unwrap_err();
        let shown = json_error(&e);
        assert!(!shown.contains("abandon"), "{shown}");
        assert!(shown.contains("line 1"), "{shown}");
    }

    #[test]
    fn a_reply_goes_to_the_customers_message_in_the_same_chat_only() {
        assert_eq!(reply_target(Some("42:15"), 42), Some(MessageId(15)));
        assert_eq!(
            reply_target(Some("42:15:edit:1790000060"), 42),
            Some(MessageId(15))
        );
        assert_eq!(reply_target(Some("43:15"), 42), None);
        assert_eq!(reply_target(Some("callback:77"), 42), None);
        assert_eq!(reply_target(None, 42), None);
    }

    #[test]
    fn long_choices_travel_as_an_index_short_ones_as_themselves() {
        let long = "我的转账一直显示 pending，已经超过两个小时了，怎么办？".to_owned();
        let k = keyboard(&["5".into(), long.clone()]).unwrap();
        let data: Vec<_> = k
            .inline_keyboard
            .iter()
            .flatten()
            .map(|b| match &b.kind {
                teloxide::types::InlineKeyboardButtonKind::CallbackData(d) => d.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(data, ["5", "qr:1"]);
        assert_eq!(k.inline_keyboard[1][0].text, long);
        assert!(keyboard(&[]).is_none());
    }

    #[test]
    fn blocked_users_are_unreachable_and_bad_requests_permanent() {
        let api = |e| RequestError::Api(e);
        assert!(
            matches!(outcome_of(&api(ApiError::BotBlocked)), DeliveryOutcome::Unreachable(r) if r.contains("blocked"))
        );
        assert!(matches!(
            outcome_of(&api(ApiError::Unknown(
                "Forbidden: bot can't send messages to bots".into()
            ))),
            DeliveryOutcome::Unreachable(_)
        ));
        assert!(matches!(
            outcome_of(&api(ApiError::ChatNotFound)),
            DeliveryOutcome::Permanent(r) if r.contains("chat not found")
        ));
        assert!(matches!(
            outcome_of(&api(ApiError::Unknown("Internal Server Error".into()))),
            DeliveryOutcome::Transient(_)
        ));
        assert_eq!(
            outcome_of(&RequestError::RetryAfter(
                teloxide::types::Seconds::from_seconds(7)
            )),
            DeliveryOutcome::RetryAfter(Duration::from_secs(7))
        );
    }

    #[test]
    fn a_webhook_is_unhealthy_only_while_telegram_fails_to_reach_it() {
        let now = frontdesk_core::Timestamp::now().as_micros() / 1_000_000;
        assert!(webhook_health(0, None, None).ok);
        let failing = webhook_health(3, Some(now - 30), Some("Connection refused"));
        assert!(!failing.ok);
        assert!(
            failing.detail.contains("3 updates waiting")
                && failing.detail.contains("Connection refused")
        );
        assert!(webhook_health(0, Some(now - 3600), Some("Connection refused")).ok);
    }

    #[test]
    fn the_cache_keeps_the_latest_files_within_its_budget() {
        let body = |n: usize| FileBody {
            name: "f".into(),
            content_type: "image/jpeg".into(),
            bytes: vec![0; n],
        };
        let mut cache = FileCache::default();
        cache.put("a", body(CACHE_BYTES / 2));
        cache.put("b", body(CACHE_BYTES / 2));
        assert!(cache.get("a").is_some());
        cache.put("c", body(CACHE_BYTES / 2));
        // "b" was the least recently used.
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        assert!(cache.bytes <= CACHE_BYTES);
    }
}
