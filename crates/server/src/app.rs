//! The running application: store, channels, delivery workers and the HTTP server.
//!
//! [`App::build`] opens the store named by `database.url` (SQLite or PostgreSQL, by
//! the scheme), brings its schema up to date and builds the configured channels.
//! [`App::run`] serves on a listener the caller bound (tests bind `127.0.0.1:0`) until
//! the shutdown token fires, then stops taking work and gives the deliveries in flight
//! `server.shutdown_grace_seconds` to finish.

use crate::config::Config;
use crate::logging::redact_url;
use anyhow::Context;
use frontdesk_core::SystemClock;
use frontdesk_core::{Channel, ChannelContext, Entity, Filtered, TextFilter};
use frontdesk_guard::Guard;
use frontdesk_router::{
    Bot, BotConfig, ConversationEngine, DeliveryWorker, Metrics, Pipeline, TokioClock,
};
use frontdesk_store::{SqlStore, Store, StoreOptions};
use frontdesk_web::WebState;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Everything `frontdesk serve` runs.
#[derive(Debug)]
pub struct App {
    config: Config,
    store: Arc<dyn Store>,
    engine: Arc<ConversationEngine>,
    metrics: Metrics,
    channels: Vec<Arc<dyn Channel>>,
    /// Routes channels serve on our own server (the Telegram webhook).
    channel_routes: axum::Router,
}

/// How the store is opened in production: the guard and the entity finder on the way
/// in, the guard on the way out.
pub fn store_options(config: &Config) -> StoreOptions {
    StoreOptions {
        max_connections: config.database.max_connections,
        // Secrets are redacted before anything is stored, and no reply that asks for
        // one reaches the outbox.
        filter: Arc::new(InboundFilter),
        outbound: Arc::new(Guard),
        reopen_window: Duration::from_secs(u64::from(config.engine.reopen_days) * 86_400),
        ..StoreOptions::default()
    }
}

/// Opens the configured store and migrates it.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = &config.database.url;
    let options = store_options(config);
    let store = SqlStore::connect(url, options)
        .await
        .with_context(|| format!("cannot open the database at {}", redact_url(url)))?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the database at {}", redact_url(url)))?;
    Ok(Arc::new(store))
}

/// What runs on every inbound text before it is stored: the guard first, so a secret
/// reaches nothing else (the entity finder included), then the entities agents copy.
#[derive(Debug, Clone, Copy)]
pub struct InboundFilter;

impl TextFilter for InboundFilter {
    fn filter(&self, text: &str) -> Filtered {
        let mut filtered = Guard.filter(text);
        filtered.entities = frontdesk_faq::entities::extract(&filtered.text)
            .into_iter()
            .map(|e| Entity {
                kind: e.kind.as_str().to_owned(),
                value: e.value,
                start: e.start,
                end: e.end,
            })
            .collect();
        filtered
    }
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let bot = match config.bot.enabled {
            true => {
                let engine = crate::faq::load_engine(&config)?;
                let patience = BotConfig {
                    misses_before_handoff: config.bot.misses_before_handoff,
                };
                Some(Arc::new(Bot::new(Arc::new(engine), patience)))
            }
            false => None,
        };
        let engine_config = config.engine_config()?;
        let store = open_store(&config).await?;
        tracing::info!(
            database = %redact_url(&config.database.url),
            backend = ?store.backend(),
            "database ready"
        );
        let Configured {
            channels,
            routes: channel_routes,
            mailbox,
        } = configured_channels(&config, &store)?;
        let metrics = Metrics::new();
        let mut engine = ConversationEngine::new(
            store.clone(),
            Arc::new(SystemClock),
            metrics.clone(),
            engine_config,
        );
        if let Some(bot) = bot {
            engine = engine.with_bot(bot);
        }
        if let Some(mailbox) = mailbox {
            // Verification codes go out through the support mailbox.
            engine = engine.with_mailer(Arc::new(MailedCodes(mailbox)));
        }
        Ok(Self {
            config,
            store,
            engine: Arc::new(engine),
            metrics,
            channels,
            channel_routes,
        })
    }

    /// Adds a channel built outside the configuration (tests use an in-memory one).
    pub fn with_channel(mut self, channel: Arc<dyn Channel>) -> Self {
        self.channels.push(channel);
        self
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The conversation engine (agents' actions go through it).
    pub fn engine(&self) -> Arc<ConversationEngine> {
        self.engine.clone()
    }

    /// Serves until `shutdown` is cancelled, then shuts down gracefully.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let local = listener
            .local_addr()
            .context("the listener has no address")?;
        let intake = Arc::new(
            Pipeline::new(self.store.clone(), self.metrics.clone())
                .with_engine(self.engine.clone()),
        );
        let clock = Arc::new(TokioClock::new());
        let work = shutdown.child_token();
        let mut tasks = JoinSet::new();
        for channel in &self.channels {
            let ctx = ChannelContext {
                intake: intake.clone(),
                shutdown: work.clone(),
            };
            let receiving = channel.clone();
            tasks.spawn(async move {
                let account = receiving.account().clone();
                if let Err(e) = receiving.run(ctx).await {
                    tracing::error!(%account, error = %e, "the channel stopped receiving");
                }
            });
            let worker = DeliveryWorker::new(
                self.store.clone(),
                channel.clone(),
                clock.clone(),
                self.metrics.clone(),
                self.config.delivery.worker_config(),
            );
            tasks.spawn(worker.run(work.clone()));
        }

        tasks.spawn(self.engine.clone().run(work.clone()));
        let instance = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4());
        for (name, hook) in &self.config.webhooks {
            let webhook = frontdesk_web::webhooks::Webhook {
                name: name.clone(),
                url: hook.url.clone(),
                secret: hook.secret.clone(),
                events: hook.events.clone(),
            };
            tasks.spawn(frontdesk_web::webhooks::run(
                self.store.clone(),
                webhook,
                instance.clone(),
                work.clone(),
            ));
        }
        tasks.spawn(retention_job(
            self.store.clone(),
            self.config.privacy.clone(),
            work.clone(),
        ));

        let web = frontdesk_web::router(WebState {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            channels: self.channels.clone(),
            intake: intake.clone(),
            engine: self.engine.clone(),
            visitor_keys: frontdesk_web::visitor_keys(&*self.store)
                .await
                .context("cannot read or create the webchat visitor key")?,
            chat_limit: Arc::default(),
            login_limit: Arc::new(frontdesk_web::auth::login_limit()),
            webchat: self.config.channels.webchat.enabled,
            shutdown: shutdown.clone(),
            secure_cookies: self
                .config
                .server
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
        });
        let web = web.merge(self.channel_routes);
        tracing::info!(address = %local, channels = self.channels.len(), "serving");
        let server =
            // The peer's address reaches handlers (the login rate limit per address).
            axum::serve(
                listener,
                web.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let served = server.await.context("the HTTP server failed");

        tracing::info!("shutting down: finishing deliveries in flight");
        work.cancel();
        let grace = Duration::from_secs(self.config.server.shutdown_grace_seconds);
        let drained = tokio::time::timeout(grace, async {
            while let Some(done) = tasks.join_next().await {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a background task panicked");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "deliveries still running after {grace:?}; their rows are retried after the lease"
            );
            tasks.abort_all();
        }
        served
    }
}

/// What the configuration's channels give the app.
struct Configured {
    channels: Vec<Arc<dyn Channel>>,
    /// Routes channels serve on our own server (the Telegram webhook).
    routes: axum::Router,
    /// The support mailbox, which also mails verification codes.
    mailbox: Option<Arc<frontdesk_email::EmailChannel>>,
}

/// Verification codes by mail, through the email channel.
#[derive(Debug)]
struct MailedCodes(Arc<frontdesk_email::EmailChannel>);

#[async_trait::async_trait]
impl frontdesk_router::CodeMailer for MailedCodes {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        self.0.send_notice(to, subject, body).await
    }
}

/// The channels the configuration enables and this version can run, with the routes
/// they serve on our own server.
fn configured_channels(config: &Config, store: &Arc<dyn Store>) -> anyhow::Result<Configured> {
    let c = &config.channels;
    let mut channels: Vec<Arc<dyn Channel>> = Vec::new();
    let mut routes = axum::Router::new();
    if c.telegram.enabled {
        let telegram = Arc::new(telegram_channel(config, store)?);
        routes = routes.merge(frontdesk_telegram::webhook::router(telegram.clone()));
        // Polling is the elected instance's; in webhook mode every instance takes
        // Telegram's calls (and keeps the webhook set, which is idempotent).
        channels.push(match c.telegram.mode {
            crate::config::TelegramMode::Polling => elected(telegram, store),
            crate::config::TelegramMode::Webhook => telegram,
        });
    }
    // The first mailbox (the main one, if enabled) also mails verification codes.
    let mut mailbox = None;
    for (name, prefix, settings) in c.email.enabled_mailboxes() {
        let email = Arc::new(email_channel(&name, &prefix, settings, store)?);
        mailbox.get_or_insert_with(|| email.clone());
        channels.push(elected(email, store));
    }
    if c.x.enabled {
        let x = x_channel(&c.x, published(config), store)?;
        channels.push(elected(Arc::new(x), store));
    }
    if c.webchat.enabled {
        channels.push(Arc::new(frontdesk_web::webchat::WebchatChannel::default()));
    }
    Ok(Configured {
        channels,
        routes,
        mailbox,
    })
}

/// A channel that polls its provider, receiving only on the instance elected for it
/// (one poller per account when several instances share PostgreSQL).
fn elected(channel: Arc<dyn Channel>, store: &Arc<dyn Store>) -> Arc<dyn Channel> {
    Arc::new(frontdesk_router::Elected::new(channel, store.clone()))
}

/// The Telegram bot from `[channels.telegram]` (checked by the config loader).
fn telegram_channel(
    config: &Config,
    store: &Arc<dyn Store>,
) -> anyhow::Result<frontdesk_telegram::TelegramChannel> {
    use crate::config::TelegramMode;
    use frontdesk_core::{ChannelAccount, ChannelKind};
    let t = &config.channels.telegram;
    let account = ChannelAccount::default_of(ChannelKind::Telegram);
    let token = t
        .token
        .clone()
        .context("channels.telegram.token is required")?;
    let mut settings = frontdesk_telegram::TelegramConfig::new(account.clone(), token, &t.api_url);
    settings.groups = t.groups;
    settings.webhook_check = Duration::from_secs(t.webhook_check_seconds);
    if t.mode == TelegramMode::Webhook {
        let base = config
            .server
            .public_url
            .as_deref()
            .context("server.public_url is required for the Telegram webhook")?;
        settings.mode = frontdesk_telegram::Mode::Webhook {
            url: format!(
                "{}{}",
                base.trim_end_matches('/'),
                frontdesk_telegram::webhook_path(&account)
            ),
            secret: t
                .webhook_secret
                .clone()
                .context("channels.telegram.webhook_secret is required")?,
        };
    }
    let files = Arc::new(frontdesk_router::StoredFiles(store.clone()));
    Ok(frontdesk_telegram::TelegramChannel::new(settings, files)?.with_progress(progress(store)))
}

/// One support mailbox (`[channels.email]` or `[channels.email.mailboxes.NAME]`,
/// checked by the config loader) as the channel account `email:NAME`.
fn email_channel(
    name: &str,
    prefix: &str,
    e: &crate::config::Email,
    store: &Arc<dyn Store>,
) -> anyhow::Result<frontdesk_email::EmailChannel> {
    use frontdesk_core::{ChannelAccount, ChannelKind};
    use frontdesk_email::net::{Endpoint, Login};
    let required = |key: &str, v: &Option<String>| {
        v.clone()
            .with_context(|| format!("{prefix}.{key} is required"))
    };
    let settings = frontdesk_email::EmailConfig {
        account: ChannelAccount::new(ChannelKind::Email, name)?,
        imap: Endpoint::parse(&required("imap_url", &e.imap_url)?, e.allow_plain)?,
        smtp: Endpoint::parse(&required("smtp_url", &e.smtp_url)?, e.allow_plain)?,
        login: Login {
            username: required("username", &e.username)?,
            password: e
                .password
                .clone()
                .with_context(|| format!("{prefix}.password is required"))?,
        },
        address: required("address", &e.address)?,
        ca_file: e.ca_file.clone(),
        mailbox: e.mailbox.clone(),
        import_existing: e.import_existing,
        mark_seen: e.mark_seen,
        move_to: e.move_to.clone(),
        sent_folder: e.sent_folder.clone(),
        idle_refresh: Duration::from_secs(25 * 60),
        poll_every: Duration::from_secs(e.poll_seconds),
        use_idle: e.idle,
        parse: frontdesk_email::parse::ParseOptions::default(),
    };
    let files = Arc::new(frontdesk_router::StoredFiles(store.clone()));
    Ok(frontdesk_email::EmailChannel::new(settings, files)?.with_progress(progress(store)))
}

/// The X account from `[channels.x]` (checked by the config loader).
/// What the desk itself publishes: its mailboxes' addresses and the knowledge base's
/// `[vars]` (the support address, the website), which its answers quote.
fn published(config: &Config) -> Vec<String> {
    let mut published: Vec<String> = config
        .channels
        .email
        .enabled_mailboxes()
        .into_iter()
        .filter_map(|(_, _, mailbox)| mailbox.address.clone())
        .collect();
    if config.bot.enabled
        && let Ok(kb) = crate::faq::load_knowledge_base(config)
    {
        published.extend(kb.vars.into_values());
    }
    published
}

fn x_channel(
    x: &crate::config::X,
    published: Vec<String>,
    store: &Arc<dyn Store>,
) -> anyhow::Result<frontdesk_x::XChannel> {
    use frontdesk_core::{ChannelAccount, ChannelKind};
    let account = ChannelAccount::default_of(ChannelKind::X);
    let user_id = x
        .user_id
        .clone()
        .context("channels.x.user_id is required")?;
    let auth = match (
        &x.consumer_key,
        &x.consumer_secret,
        &x.access_token,
        &x.access_token_secret,
    ) {
        (Some(ck), Some(cs), Some(at), Some(ats)) => frontdesk_x::Auth::OAuth1 {
            consumer_key: ck.clone(),
            consumer_secret: cs.clone(),
            access_token: at.clone(),
            access_token_secret: ats.clone(),
        },
        _ => frontdesk_x::Auth::OAuth2 {
            client_id: x
                .client_id
                .clone()
                .context("channels.x.client_id is required")?,
            client_secret: x.client_secret.clone(),
            refresh_token: x
                .refresh_token
                .clone()
                .context("channels.x.refresh_token is required")?,
        },
    };
    let mut settings = frontdesk_x::XConfig::new(account.clone(), &x.api_url, &user_id, auth);
    settings.mentions = x.mentions;
    settings.dms = x.dms;
    settings.poll_every = Duration::from_secs(x.poll_seconds);
    settings.dm_invite = x.dm_invite;
    settings.import_existing = x.import_existing;
    settings.published = published;
    let keeper = Arc::new(KeptRefreshToken {
        store: store.clone(),
        key: format!("{account}.refresh_token"),
    });
    frontdesk_x::XChannel::new(settings, Arc::new(InboundFilter), Some(keeper))
        .map(|x| x.with_progress(progress(store)))
        .map_err(anyhow::Error::msg)
}

/// Where channels note how far a delivery has gone: its outbox row.
fn progress(store: &Arc<dyn Store>) -> Arc<dyn frontdesk_core::Progress> {
    Arc::new(frontdesk_router::StoredProgress(store.clone()))
}

/// X's rotated OAuth 2.0 refresh token, kept in the database (shared by every
/// instance), so a restart does not go back to the configured one X no longer takes.
#[derive(Debug)]
struct KeptRefreshToken {
    store: Arc<dyn Store>,
    key: String,
}

#[async_trait::async_trait]
impl frontdesk_x::TokenKeeper for KeptRefreshToken {
    async fn load(&self) -> Result<Option<String>, String> {
        self.store
            .setting(&self.key)
            .await
            .map_err(|e| e.to_string())
    }

    async fn save(&self, refresh_token: &str) -> Result<(), String> {
        self.store
            .put_setting(&self.key, refresh_token)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Erases expired message texts now and then, per the privacy settings.
async fn retention_job(
    store: Arc<dyn Store>,
    privacy: crate::config::Privacy,
    stop: CancellationToken,
) {
    use frontdesk_core::{ChannelKind, Timestamp};
    let every = Duration::from_secs(privacy.check_minutes.max(1) * 60);
    loop {
        for &kind in ChannelKind::ALL {
            let Some(keep) = privacy.retention(kind) else {
                continue;
            };
            let before = Timestamp::from_micros(
                Timestamp::now().as_micros() - i64::try_from(keep.as_micros()).unwrap_or(i64::MAX),
            );
            match store
                .apply_retention(Some(kind), before, privacy.anonymize, "retention")
                .await
            {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(channel = %kind, erased = n, "retention: erased expired message texts")
                }
                Err(e) => {
                    tracing::error!(channel = %kind, error = %e, "retention job failed; retrying next round")
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
