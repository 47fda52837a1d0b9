//! The email channel: one support mailbox, read over IMAP and answered over SMTP.
//!
//! Receiving: log in, select the mailbox, take every mail with a UID above the cursor
//! (`UIDVALIDITY:UID`, committed with each mail), then wait with IDLE (re-issued before
//! the server's 30-minute limit), or poll where the server has no IDLE. A mail is
//! known by its Message-ID, so a UIDVALIDITY change re-reads the mailbox without
//! doubling anything. Any error: reconnect with backoff; the channel never gives up.
//!
//! Sending: SMTP submission with AUTH over TLS or STARTTLS; our reply carries
//! In-Reply-To, the customer's whole References chain, a Message-ID of our domain that
//! names the thread, and "Re:" with the subject; text and simple HTML, agents' files
//! attached. A 4xx answer is retried, a 5xx one fails with the server's words.

use crate::loops::AnswerBudget;
use crate::net::{Endpoint, Io, Login, Security, secure, tls};
use crate::parse::{Mail, ParseOptions, parse};
use crate::thread;
use async_imap::Session;
use frontdesk_core::{
    Attachment, Channel, ChannelAccount, ChannelContext, DeliveryOutcome, FileBody, FileError,
    Files, Health, HealthCell, Inbound, Intake, MemoryProgress, Outbound, Progress, Sender,
    Timestamp, pause, reconnect_backoff,
};
use futures_util::TryStreamExt;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_rustls::TlsConnector;

/// Automatic answers (the bot's, notices) one address gets in an hour at most.
const AUTOMATIC_PER_HOUR: usize = 5;

/// `Auto-Submitted: auto-replied` (RFC 3834) on the bot's and the system's mails, so
/// that other robots do not answer them.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-replied".into())
    }
}

/// Mails fetched per IMAP command.
const BATCH: usize = 50;
/// The most of a mail's full text or HTML kept for the original view (bytes).
const MAX_KEPT: usize = 512 * 1024;
/// The largest attachment an agent can open.
const MAX_OPENED: usize = 25 * 1024 * 1024;

/// What the channel needs to run.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub account: ChannelAccount,
    pub imap: Endpoint,
    pub smtp: Endpoint,
    pub login: Login,
    /// The support address customers write to (our From).
    pub address: String,
    /// An extra CA certificate file to trust (a team's own CA, the tests' server).
    pub ca_file: Option<String>,
    pub mailbox: String,
    /// On the very first start, read the mail already in the mailbox too (otherwise
    /// only what arrives from now on).
    pub import_existing: bool,
    /// Flag each stored mail `\Seen` (off by default: the mailbox is left as it is).
    pub mark_seen: bool,
    /// Move each stored mail to this folder (IMAP MOVE); never deleted otherwise.
    pub move_to: Option<String>,
    /// Keep a copy of every mail we send in this folder (IMAP APPEND), so the team's
    /// mail client shows the replies too.
    pub sent_folder: Option<String>,
    /// How long one IDLE lasts before it is issued again (servers end it at 30 min).
    pub idle_refresh: Duration,
    /// How often to look without IDLE.
    pub poll_every: Duration,
    /// Use IDLE where the server has it (off: poll, for servers whose IDLE misbehaves).
    pub use_idle: bool,
    pub parse: ParseOptions,
}

/// Why the channel could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

type ImapSession = Session<Box<dyn Io>>;

/// One support mailbox.
pub struct EmailChannel {
    config: EmailConfig,
    tls: TlsConnector,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    files: Arc<dyn Files>,
    /// Where each reply's Message-ID is noted before it is sent, so a retry after a
    /// crash goes out with the same one (receivers take it for the same mail).
    progress: Arc<dyn Progress>,
    health: HealthCell,
    /// Automatic answers per address in the last hour: a loop with a robot that slips
    /// past the header checks stops here.
    budget: Mutex<AnswerBudget>,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel")
            .field("account", &self.config.account)
            .field("address", &self.config.address)
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    pub fn new(config: EmailConfig, files: Arc<dyn Files>) -> Result<Self, ConfigError> {
        let tls = tls(config.ca_file.as_deref()).map_err(ConfigError)?;
        let from: Mailbox = config
            .address
            .parse()
            .map_err(|e| ConfigError(format!("channels.email.address: {e}")))?;
        let smtp = smtp_transport(&config)?;
        Ok(Self {
            config,
            tls,
            smtp,
            from,
            files,
            progress: Arc::new(MemoryProgress::default()),
            health: HealthCell::default(),
            budget: Mutex::new(AnswerBudget::new(AUTOMATIC_PER_HOUR)),
        })
    }

    /// Notes each reply's Message-ID in `progress` before sending (the server's are
    /// kept in the outbox, so a retry after a crash keeps the id); by default they are
    /// kept in memory.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// The Message-ID reply `out` goes out with: the one an earlier attempt noted, or a
    /// new one, noted before it is used.
    async fn message_id_for(
        &self,
        out: &Outbound,
        domain: &str,
    ) -> Result<String, DeliveryOutcome> {
        if out.attempt > 1 {
            let note = self
                .progress
                .load(out.outbox_id)
                .await
                .map_err(DeliveryOutcome::Transient)?;
            if let Some(id) = note.as_ref().and_then(|n| n["message_id"].as_str()) {
                return Ok(id.to_owned());
            }
        }
        let id = thread::our_message_id(&out.thread_key, domain);
        self.progress
            .save(out.outbox_id, &serde_json::json!({ "message_id": id }))
            .await
            .map_err(DeliveryOutcome::Transient)?;
        Ok(id)
    }

    /// Connects and logs in.
    async fn connect(&self) -> Result<ImapSession, String> {
        let Endpoint {
            host,
            port,
            security,
        } = &self.config.imap;
        let tcp = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::net::TcpStream::connect((host.as_str(), *port)),
        )
        .await
        .map_err(|_| format!("no answer from {host}:{port} within 30 s"))?
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let stream: Box<dyn Io> = match security {
            Security::Tls => Box::new(
                secure(&self.tls, host, tcp)
                    .await
                    .map_err(|e| format!("TLS with {host}: {e}"))?,
            ),
            Security::StartTls => {
                let mut client = async_imap::Client::new(tcp);
                greeting(&mut client).await?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| format!("STARTTLS refused by {host}: {e}"))?;
                Box::new(
                    secure(&self.tls, host, client.into_inner())
                        .await
                        .map_err(|e| format!("TLS with {host}: {e}"))?,
                )
            }
            Security::Plain => Box::new(tcp),
        };
        let mut client = async_imap::Client::new(stream);
        if *security != Security::StartTls {
            greeting(&mut client).await?;
        }
        client
            .login(
                &self.config.login.username,
                self.config.login.password.expose_secret(),
            )
            .await
            .map_err(|(e, _)| format!("login refused: {e}"))
    }

    /// One connection's life: read what is new, wait, again; `Ok` only on shutdown.
    async fn session(&self, ctx: &ChannelContext) -> Result<(), String> {
        let mut session = self.connect().await?;
        let mailbox = session
            .select(&self.config.mailbox)
            .await
            .map_err(|e| format!("cannot open {}: {e}", self.config.mailbox))?;
        let validity = mailbox.uid_validity.unwrap_or(0);
        let idle = self.config.use_idle
            && session
                .capabilities()
                .await
                .map_err(|e| format!("CAPABILITY failed: {e}"))?
                .has_str("IDLE");
        let mode = if idle { "IDLE" } else { "polling" };
        if self.health.set(Health::ok(format!("connected ({mode})"))) {
            tracing::info!(account = %self.config.account, mode, "mailbox open");
        }
        let mut start = self
            .start_after(ctx, validity, mailbox.uid_next.unwrap_or(1))
            .await?;
        loop {
            start = self.take_new(&mut session, ctx, validity, start).await?;
            if idle {
                let mut handle = session.idle();
                handle
                    .init()
                    .await
                    .map_err(|e| format!("IDLE refused: {e}"))?;
                let (wait, _stop) = handle.wait_with_timeout(self.config.idle_refresh);
                let woke = tokio::select! {
                    woke = wait => Some(woke),
                    _ = ctx.shutdown.cancelled() => None,
                };
                let Some(woke) = woke else {
                    return Ok(());
                };
                woke.map_err(|e| format!("IDLE failed: {e}"))?;
                session = handle
                    .done()
                    .await
                    .map_err(|e| format!("ending IDLE failed: {e}"))?;
            } else {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(self.config.poll_every) => {}
                }
                session
                    .noop()
                    .await
                    .map_err(|e| format!("NOOP failed: {e}"))?;
            }
            if ctx.shutdown.is_cancelled() {
                let _ = session.logout().await;
                return Ok(());
            }
        }
    }

    /// The last UID already taken: from the cursor if it is for this UIDVALIDITY; on a
    /// change, 0 (everything is read again; Message-IDs keep it from doubling); on the
    /// very first start, the mailbox's end unless existing mail is imported. That end
    /// is stored at once: mail arriving while a process that never took a mail is down
    /// is taken when it is back, not skipped as old.
    async fn start_after(
        &self,
        ctx: &ChannelContext,
        validity: u32,
        uid_next: u32,
    ) -> Result<u32, String> {
        let cursor = ctx
            .intake
            .cursor(&self.config.account)
            .await
            .map_err(|e| e.to_string())?;
        Ok(match cursor.as_deref().and_then(parse_cursor) {
            Some((v, uid)) if v == validity => uid,
            Some(_) => {
                tracing::warn!(account = %self.config.account, "UIDVALIDITY changed; reading the mailbox again (nothing is doubled)");
                0
            }
            None if self.config.import_existing => 0,
            None => {
                let end = uid_next.saturating_sub(1);
                ctx.intake
                    .move_cursor(&self.config.account, format!("{validity}:{end}"))
                    .await
                    .map_err(|e| e.to_string())?;
                end
            }
        })
    }

    /// Takes every mail with a UID above `after`, in order, each committed with its
    /// UID; returns the last UID taken.
    async fn take_new(
        &self,
        session: &mut ImapSession,
        ctx: &ChannelContext,
        validity: u32,
        mut after: u32,
    ) -> Result<u32, String> {
        let mut uids: Vec<u32> = session
            .uid_search(format!("UID {}:*", after.saturating_add(1)))
            .await
            .map_err(|e| format!("SEARCH failed: {e}"))?
            .into_iter()
            .filter(|&uid| uid > after)
            .collect();
        uids.sort_unstable();
        for batch in uids.chunks(BATCH) {
            let set = batch
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let mut fetched: Vec<(u32, Vec<u8>)> = session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await
                .map_err(|e| format!("FETCH failed: {e}"))?
                .try_filter_map(|f| async move {
                    Ok(f.uid
                        .map(|uid| (uid, f.body().unwrap_or_default().to_vec())))
                })
                .try_collect()
                .await
                .map_err(|e| format!("FETCH failed: {e}"))?;
            fetched.sort_by_key(|(uid, _)| *uid);
            for (uid, raw) in fetched {
                let mail = parse(&raw, self.config.parse);
                let thread = self.thread_of(&*ctx.intake, &mail).await?;
                let inbound = inbound_of(&self.config.account, &mail, &thread, validity, uid);
                ctx.intake
                    .ingest(inbound, Some(format!("{validity}:{uid}")))
                    .await
                    .map_err(|e| e.to_string())?;
                after = uid;
                self.file_away(session, uid).await?;
            }
        }
        Ok(after)
    }

    /// Appends a sent mail to `folder` (created if missing), flagged seen.
    async fn keep_copy(&self, folder: &str, raw: &[u8]) -> Result<(), String> {
        let mut session = self.connect().await?;
        if session
            .append(folder, Some("(\\Seen)"), None, raw)
            .await
            .is_err()
        {
            // Most likely the folder does not exist yet (TRYCREATE).
            session
                .create(folder)
                .await
                .map_err(|e| format!("cannot create {folder}: {e}"))?;
            session
                .append(folder, Some("(\\Seen)"), None, raw)
                .await
                .map_err(|e| format!("cannot append to {folder}: {e}"))?;
        }
        let _ = session.logout().await;
        Ok(())
    }

    /// What the team asked to be done with a stored mail: flag it seen, move it.
    async fn file_away(&self, session: &mut ImapSession, uid: u32) -> Result<(), String> {
        if self.config.mark_seen {
            let _: Vec<_> = session
                .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
                .await
                .map_err(|e| format!("cannot flag a mail seen: {e}"))?
                .try_collect()
                .await
                .map_err(|e| format!("cannot flag a mail seen: {e}"))?;
        }
        if let Some(folder) = &self.config.move_to {
            session
                .uid_mv(uid.to_string(), folder)
                .await
                .map_err(|e| format!("cannot move a mail to {folder}: {e}"))?;
        }
        Ok(())
    }

    /// The conversation thread a mail belongs to (see [`crate::thread`]).
    async fn thread_of(&self, intake: &dyn Intake, mail: &Mail) -> Result<String, String> {
        if let Some(ours) = thread::our_thread(&mail.in_reply_to, &mail.references) {
            return Ok(ours);
        }
        let account = &self.config.account;
        let named = thread::ids_to_look_up(&mail.in_reply_to, &mail.references);
        if let Some(found) = intake
            .thread_of_messages(account, &named)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(found);
        }
        if let Some(conversation) = thread::token_in(&mail.subject)
            && let Some(found) = intake
                .thread_of_conversation(account, frontdesk_core::ConversationId(conversation))
                .await
                .map_err(|e| e.to_string())?
        {
            return Ok(found);
        }
        Ok(thread::fallback_thread(
            &mail.message_id,
            &mail.in_reply_to,
            &mail.references,
        ))
    }

    /// Sends a short automatic mail that is not a reply in a conversation (a
    /// verification code): from the support address, text only, `Auto-Submitted`.
    pub async fn send_notice(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| format!("{to:?} is not an email address: {e}"))?;
        let domain = self
            .config
            .address
            .rsplit('@')
            .next()
            .unwrap_or("frontdesk.invalid");
        let id = thread::our_message_id("notice", domain);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{id}>")))
            .header(AutoSubmitted)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        self.smtp
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }

    /// The reply as a MIME message.
    async fn message(&self, out: &Outbound) -> Result<(Message, String), DeliveryOutcome> {
        let to: Mailbox = out.recipient.parse().map_err(|e| {
            DeliveryOutcome::Permanent(format!("{:?} is not an email address: {e}", out.recipient))
        })?;
        let domain = self
            .config
            .address
            .rsplit('@')
            .next()
            .unwrap_or("frontdesk.invalid");
        let id = self.message_id_for(out, domain).await?;
        let subject = thread::reply_subject(
            out.meta["subject"].as_str().unwrap_or_default(),
            out.conversation_id.0,
        );
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{id}>")));
        if out.automatic {
            builder = builder.header(AutoSubmitted);
        }
        if let Some(theirs) = out.meta["message_id"].as_str() {
            let references: Vec<String> = out.meta["references"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let chain = thread::references_for_reply(&references, theirs)
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(" ");
            builder = builder.in_reply_to(format!("<{theirs}>")).references(chain);
        }
        let body = MultiPart::alternative_plain_html(out.text.clone(), html_of(&out.text));
        let mut mixed = MultiPart::mixed().multipart(body);
        for attachment in &out.attachments {
            let file = self
                .files
                .read(&attachment.reference)
                .await
                .map_err(|e| match e {
                    frontdesk_core::FileError::Unavailable(e) => DeliveryOutcome::Transient(e),
                    e => DeliveryOutcome::Permanent(format!(
                        "the attachment {} cannot be read: {e}",
                        attachment.name
                    )),
                })?;
            let kind = ContentType::parse(&file.content_type).unwrap_or_else(|_| {
                ContentType::parse("application/octet-stream").expect("a valid type")
            });
            mixed = mixed
                .singlepart(lettre::message::Attachment::new(file.name).body(file.bytes, kind));
        }
        let message = builder
            .multipart(mixed)
            .map_err(|e| DeliveryOutcome::Permanent(format!("cannot build the mail: {e}")))?;
        Ok((message, id))
    }
}

/// At most `max` bytes of `text`, cut on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The reply as simple HTML: escaped text with line breaks.
fn html_of(text: &str) -> String {
    let mut out = String::from("<div>");
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>\n"),
            c => out.push(c),
        }
    }
    out.push_str("</div>");
    out
}

async fn greeting<T: Io>(client: &mut async_imap::Client<T>) -> Result<(), String> {
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("the server closed the connection before its greeting".into()),
        Err(e) => Err(format!("no greeting: {e}")),
    }
}

fn parse_cursor(cursor: &str) -> Option<(u32, u32)> {
    let (validity, uid) = cursor.split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok()?))
}

fn smtp_transport(config: &EmailConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, ConfigError> {
    let Endpoint {
        host,
        port,
        security,
    } = &config.smtp;
    let parameters = || {
        let mut builder = TlsParameters::builder(host.clone());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| ConfigError(format!("cannot read the CA file {path}: {e}")))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| ConfigError(format!("the CA file {path}: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| ConfigError(format!("TLS for {host}: {e}")))
    };
    let tls = match security {
        Security::Tls => Tls::Wrapper(parameters()?),
        Security::StartTls => Tls::Required(parameters()?),
        Security::Plain => Tls::None,
    };
    Ok(
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(*port)
            .tls(tls)
            .credentials(Credentials::new(
                config.login.username.clone(),
                config.login.password.expose_secret().to_owned(),
            ))
            .timeout(Some(Duration::from_secs(60)))
            .build(),
    )
}

#[async_trait::async_trait]
impl Channel for EmailChannel {
    fn account(&self) -> &ChannelAccount {
        &self.config.account
    }

    async fn run(&self, ctx: ChannelContext) -> Result<(), String> {
        let mut failures = 0;
        loop {
            match self.session(&ctx).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    failures += 1;
                    if self.health.set(Health::failing(e.clone())) {
                        tracing::warn!(account = %self.config.account, error = %e, "the mailbox connection failed; reconnecting");
                    }
                    if !pause(&ctx.shutdown, reconnect_backoff(failures.min(7))).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn deliver(&self, out: &Outbound) -> DeliveryOutcome {
        let now = u64::try_from(Timestamp::now().as_micros() / 1_000_000).unwrap_or(0);
        if out.automatic {
            let room = self
                .budget
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .has_room(&out.recipient, now);
            if !room {
                return DeliveryOutcome::Permanent(format!(
                    "not sent: {} has had {AUTOMATIC_PER_HOUR} automatic answers in the last hour (a guard against mail loops)",
                    out.recipient
                ));
            }
        }
        let (message, id) = match self.message(out).await {
            Ok(built) => built,
            Err(outcome) => return outcome,
        };
        let copy = self
            .config
            .sent_folder
            .as_ref()
            .map(|_| message.formatted());
        match self.smtp.send(message).await {
            Ok(_) => {
                if out.automatic {
                    self.budget
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .spend(&out.recipient, now);
                }
                if let (Some(folder), Some(copy)) = (&self.config.sent_folder, copy) {
                    // The mail went out; a missing copy is worth a warning, not a retry.
                    if let Err(e) = self.keep_copy(folder, &copy).await {
                        tracing::warn!(account = %self.config.account, error = %e, "sent, but no copy in the Sent folder");
                    }
                }
                DeliveryOutcome::Sent {
                    external_id: Some(id),
                }
            }
            Err(e) if e.is_permanent() => {
                DeliveryOutcome::Permanent(format!("the mail server refused it: {e}"))
            }
            Err(e) => DeliveryOutcome::Transient(format!("SMTP: {e}")),
        }
    }

    async fn health(&self) -> Health {
        self.health.get()
    }
    /// A customer's attachment (`email:UIDVALIDITY:UID:INDEX`), read again from the
    /// mailbox when an agent opens it.
    async fn fetch_file(&self, reference: &str) -> Result<FileBody, FileError> {
        let mut parts = reference
            .strip_prefix("email:")
            .ok_or(FileError::NotFound)?
            .split(':')
            .map(str::parse::<u64>);
        let (Some(Ok(validity)), Some(Ok(uid)), Some(Ok(index)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(FileError::NotFound);
        };
        let mut session = self.connect().await.map_err(FileError::Unavailable)?;
        let mailbox = session
            .examine(&self.config.mailbox)
            .await
            .map_err(|e| FileError::Unavailable(e.to_string()))?;
        if u64::from(mailbox.uid_validity.unwrap_or(0)) != validity {
            return Err(FileError::NotFound);
        }
        let raw: Vec<Vec<u8>> = session
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
            .await
            .map_err(|e| FileError::Unavailable(e.to_string()))?
            .try_filter_map(|f| async move { Ok(f.body().map(<[u8]>::to_vec)) })
            .try_collect()
            .await
            .map_err(|e| FileError::Unavailable(e.to_string()))?;
        let _ = session.logout().await;
        let raw = raw.into_iter().next().ok_or(FileError::NotFound)?;
        let mail = parse(
            &raw,
            ParseOptions {
                max_attachment: MAX_OPENED,
            },
        );
        let attachment = mail
            .attachments
            .into_iter()
            .nth(usize::try_from(index).map_err(|_| FileError::NotFound)?)
            .ok_or(FileError::NotFound)?;
        let size = attachment.size;
        let bytes = attachment.bytes.ok_or(FileError::TooBig {
            size,
            max: MAX_OPENED as u64,
        })?;
        Ok(FileBody {
            name: attachment.name,
            content_type: attachment.content_type,
            bytes,
        })
    }
}

/// A parsed mail as Frontdesk's envelope on `account`, in `thread` (a pure function:
/// the fuzz target `mime` drives it with any bytes).
pub fn inbound_of(
    account: &ChannelAccount,
    mail: &Mail,
    thread: &str,
    validity: u32,
    uid: u32,
) -> Inbound {
    let from = mail.from.clone();
    let sender = Sender {
        external_id: from.as_ref().map_or_else(
            || "unknown-sender".to_owned(),
            |f| crate::parse::usable_id(&f.address),
        ),
        display_name: from.as_ref().and_then(|f| f.name.clone()),
        language: None,
    };
    let mut text = mail.new_text.clone();
    for warning in &mail.warnings {
        text.push_str(&format!("\n[{warning}]"));
    }
    if text.trim().is_empty() {
        text = if mail.attachments.is_empty() {
            "[an empty mail]".into()
        } else {
            "[attachments only]".into()
        };
    }
    let (id, thread) = (
        crate::parse::usable_id(&mail.message_id),
        crate::parse::usable_id(thread),
    );
    let build = |text: String| {
        Inbound::new(
            account.clone(),
            id.clone(),
            sender.clone(),
            thread.clone(),
            text,
        )
    };
    let mut inbound = build(text).unwrap_or_else(|e| {
        // Too long for one message: keep the start and say so.
        let cut: String = mail.new_text.chars().take(100_000).collect();
        build(format!("{cut}\n[the rest was cut: {e}]"))
            .or_else(|_| build("[a mail that could not be stored whole]".into()))
            .expect("a short text is always accepted")
    });
    inbound.sent_at = mail
        .sent_at
        .map(|s| Timestamp::from_micros(s.saturating_mul(1_000_000)));
    inbound.reply_to = mail.in_reply_to.first().cloned();
    inbound.attachments = mail
        .attachments
        .iter()
        .enumerate()
        .map(|(i, a)| Attachment {
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            reference: format!("email:{validity}:{uid}:{i}"),
        })
        .collect();
    let mut meta = json!({
        "message_id": mail.message_id,
        "references": mail.references,
        "subject": mail.subject,
        "from": mail.from.as_ref().map(|f| f.address.clone()),
    });
    if let Some(why) = &mail.automatic {
        meta["automatic"] = json!(why);
    }
    if !mail.warnings.is_empty() {
        meta["warnings"] = json!(mail.warnings);
    }
    // The whole mail for the "original" view: the text with its quoted history, and
    // the HTML as sent. The store passes both through the guard like the text.
    if mail.text.trim() != mail.new_text.trim() {
        meta["full_text"] = json!(cut(&mail.text, MAX_KEPT));
    }
    if let Some(html) = &mail.html {
        meta["html"] = json!(cut(html, MAX_KEPT));
    }
    inbound.meta = meta;
    inbound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mail as the channel would store it.
    fn stored(raw: &[u8]) -> Inbound {
        let mail = crate::parse::parse(raw, crate::parse::ParseOptions::default());
        let thread =
            crate::thread::fallback_thread(&mail.message_id, &mail.in_reply_to, &mail.references);
        inbound_of(
            &ChannelAccount::default_of(frontdesk_core::ChannelKind::Email),
            &mail,
            &thread,
            1,
            1,
        )
    }

    #[test]
    fn a_mail_with_ids_too_long_to_keep_is_still_stored_under_stand_ins() {
        let raw = format!(
            "From: <{}@example.test>\r\nMessage-ID: <{}@example.test>\r\nReferences: <{}@example.test>\r\n\r\nhello",
            "a".repeat(600),
            "b".repeat(600),
            "c".repeat(600)
        );
        let inbound = stored(raw.as_bytes());
        assert_eq!(inbound.text.lines().next(), Some("hello"));
        for id in [
            &inbound.external_id,
            &inbound.sender.external_id,
            &inbound.thread_key,
        ] {
            assert!(id.ends_with("@frontdesk.invalid") && id.len() < 100, "{id}");
        }
        // The same mail again has the same stand-in: it is still stored once.
        assert_eq!(stored(raw.as_bytes()).external_id, inbound.external_id);
    }

    #[test]
    fn the_mail_the_fuzzer_found_with_a_blank_sender_is_stored() {
        let inbound = stored(include_bytes!("../tests/data/fuzz-mime-blank-sender.eml"));
        assert!(!inbound.sender.external_id.trim().is_empty());
    }

    #[test]
    fn cursors_name_the_uidvalidity_and_the_uid() {
        assert_eq!(parse_cursor("1700000000:42"), Some((1_700_000_000, 42)));
        assert_eq!(parse_cursor("42"), None);
        assert_eq!(parse_cursor("a:b"), None);
    }

    #[test]
    fn the_html_part_is_the_text_escaped() {
        assert_eq!(
            html_of("a < b & \"c\"\nnext"),
            "<div>a &lt; b &amp; &quot;c&quot;<br>\nnext</div>"
        );
    }
}
