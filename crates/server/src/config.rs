//! Configuration: built-in defaults, then the TOML file, then `FRONTDESK_SECTION__KEY`
//! environment variables.
//!
//! Every problem is reported at once, each naming where it came from: the file and line
//! of the key, or the environment variable. Unknown keys are errors (a misspelt key
//! silently ignored is a channel silently off). Secrets are [`SecretString`]s: they
//! never appear in `Debug` output or logs.

use secrecy::SecretString;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file read when `--config` is not given; built-in defaults apply if it is absent.
pub const DEFAULT_PATH: &str = "config/frontdesk.toml";
/// Environment variables with this prefix override keys: `FRONTDESK_SERVER__LISTEN`.
pub const ENV_PREFIX: &str = "FRONTDESK_";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    pub bot: Bot,
    pub delivery: Delivery,
    pub privacy: Privacy,
    pub channels: Channels,
    pub engine: Engine,
    /// Business hours per team (`[teams.support]`); a team not listed works around the
    /// clock.
    pub teams: std::collections::BTreeMap<String, frontdesk_router::hours::HoursConfig>,
    /// Outbound webhooks (`[webhooks.crm]`): events POSTed, signed, retried.
    pub webhooks: std::collections::BTreeMap<String, Webhook>,
}

/// One outbound webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where events are POSTed (http or https).
    pub url: String,
    /// Signs each body (HMAC-SHA256); the receiver checks it.
    pub secret: SecretString,
    /// Some of `conversation.created`, `message.created`,
    /// `conversation.status_changed`; all when absent.
    #[serde(default)]
    pub events: Vec<String>,
}

/// The conversation engine: teams, timers, SLA targets, surveys.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Engine {
    /// The team that takes handoffs the knowledge base does not route elsewhere.
    pub default_team: String,
    /// Where escalations to a manager go.
    pub supervisor_team: String,
    /// A customer message this many days after a conversation was resolved reopens
    /// it; later, a new conversation starts.
    pub reopen_days: u32,
    /// A pending conversation with no message for this many days resolves itself.
    pub pending_resolve_days: u32,
    /// A conversation still with the bot and silent this long is resolved.
    pub bot_idle_resolve_hours: u32,
    /// An agent away longer than this gives their conversations back to the queue.
    pub away_minutes: u32,
    /// Ask customers for a 1-5 rating when people resolve their conversation.
    pub csat: bool,
    /// Teams that handle account questions: the bot asks the customer to verify an
    /// email address at handoff (needs the email channel).
    pub verify_teams: Vec<String>,
    /// "Due soon" this many minutes before an SLA target.
    pub due_soon_minutes: u32,
    pub tick_seconds: u32,
    /// First-response and resolution targets per priority.
    pub sla: SlaTable,
}

impl Default for Engine {
    fn default() -> Self {
        let e = frontdesk_router::EngineConfig::default();
        let hours = |d: std::time::Duration| u32::try_from(d.as_secs() / 3600).unwrap_or(u32::MAX);
        let minutes = |d: std::time::Duration| u32::try_from(d.as_secs() / 60).unwrap_or(u32::MAX);
        Self {
            default_team: e.default_team,
            supervisor_team: e.supervisor_team,
            reopen_days: 7,
            pending_resolve_days: hours(e.pending_resolve_after) / 24,
            bot_idle_resolve_hours: hours(e.bot_idle_resolve_after),
            away_minutes: minutes(e.away_timeout),
            csat: e.csat,
            verify_teams: e.verify_teams,
            due_soon_minutes: minutes(e.due_soon),
            tick_seconds: u32::try_from(e.tick_every.as_secs()).unwrap_or(30),
            sla: SlaTable::default(),
        }
    }
}

/// SLA targets by priority.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlaTable {
    pub urgent: Sla,
    pub high: Sla,
    pub normal: Sla,
    pub low: Sla,
}

impl Default for SlaTable {
    fn default() -> Self {
        let e = frontdesk_router::EngineConfig::default();
        let of = |p: frontdesk_core::Priority| {
            let t = e.sla[&p];
            Sla {
                first_response_minutes: u32::try_from(t.first_response.as_secs() / 60)
                    .unwrap_or(u32::MAX),
                resolution_hours: u32::try_from(t.resolution.as_secs() / 3600).unwrap_or(u32::MAX),
            }
        };
        use frontdesk_core::Priority as P;
        Self {
            urgent: of(P::Urgent),
            high: of(P::High),
            normal: of(P::Normal),
            low: of(P::Low),
        }
    }
}

impl SlaTable {
    /// Each priority's targets.
    pub fn by_priority(&self) -> [(frontdesk_core::Priority, Sla); 4] {
        use frontdesk_core::Priority as P;
        [
            (P::Urgent, self.urgent),
            (P::High, self.high),
            (P::Normal, self.normal),
            (P::Low, self.low),
        ]
    }
}

/// One priority's targets.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    pub first_response_minutes: u32,
    pub resolution_hours: u32,
}

impl Config {
    /// The conversation engine's settings (the team hours were checked by `validate`).
    pub fn engine_config(&self) -> anyhow::Result<frontdesk_router::EngineConfig> {
        use std::time::Duration;
        let e = &self.engine;
        let mut hours = std::collections::BTreeMap::new();
        for (team, c) in &self.teams {
            let h = frontdesk_router::BusinessHours::from_config(c)
                .map_err(|err| anyhow::anyhow!("teams.{team}: {err}"))?;
            hours.insert(team.clone(), h);
        }
        let targets = |s: Sla| frontdesk_router::SlaTargets {
            first_response: Duration::from_secs(u64::from(s.first_response_minutes) * 60),
            resolution: Duration::from_secs(u64::from(s.resolution_hours) * 3600),
        };
        Ok(frontdesk_router::EngineConfig {
            default_team: e.default_team.clone(),
            supervisor_team: e.supervisor_team.clone(),
            hours,
            sla: e
                .sla
                .by_priority()
                .into_iter()
                .map(|(p, s)| (p, targets(s)))
                .collect(),
            due_soon: Duration::from_secs(u64::from(e.due_soon_minutes) * 60),
            pending_resolve_after: Duration::from_secs(u64::from(e.pending_resolve_days) * 86_400),
            bot_idle_resolve_after: Duration::from_secs(u64::from(e.bot_idle_resolve_hours) * 3600),
            away_timeout: Duration::from_secs(u64::from(e.away_minutes) * 60),
            csat: e.csat,
            verify_teams: e.verify_teams.clone(),
            tick_every: Duration::from_secs(u64::from(e.tick_seconds.max(1))),
        })
    }
}

/// How long message texts are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Privacy {
    /// Days after which message texts are erased; 0 keeps them.
    pub retention_days: u32,
    /// Per channel, overriding `retention_days` (0 keeps that channel's texts).
    pub channels: ChannelDays,
    /// Also clear the sender ids that tie old messages to a person.
    pub anonymize: bool,
    /// Minutes between runs of the retention job.
    pub check_minutes: u64,
}

impl Default for Privacy {
    fn default() -> Self {
        Self {
            retention_days: 0,
            channels: ChannelDays::default(),
            anonymize: false,
            check_minutes: 60,
        }
    }
}

/// A number of days per channel kind, where set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelDays {
    pub telegram: Option<u32>,
    pub email: Option<u32>,
    pub x: Option<u32>,
    pub webchat: Option<u32>,
}

impl Privacy {
    /// The retention period of a channel kind, if its texts expire.
    pub fn retention(&self, kind: frontdesk_core::ChannelKind) -> Option<std::time::Duration> {
        use frontdesk_core::ChannelKind::*;
        let days = match kind {
            Telegram => self.channels.telegram,
            Email => self.channels.email,
            X => self.channels.x,
            Webchat => self.channels.webchat,
        }
        .unwrap_or(self.retention_days);
        (days > 0).then(|| std::time::Duration::from_secs(u64::from(days) * 86_400))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Address the HTTP server binds.
    pub listen: String,
    /// The address customers' providers reach us at (webhooks, links in mail).
    pub public_url: Option<String>,
    /// Seconds to wait for deliveries in flight on shutdown.
    pub shutdown_grace_seconds: u64,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            shutdown_grace_seconds: 4,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// `sqlite://PATH` (the default, created if missing) or `postgres://...`.
    pub url: String,
    pub max_connections: u32,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            url: "sqlite://data/frontdesk.db".into(),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bot {
    /// Whether the bot answers customers at all (off: every conversation waits for a
    /// person).
    pub enabled: bool,
    /// Unanswered messages in a row before a person takes over.
    pub misses_before_handoff: u32,
    /// The FAQ knowledge base.
    pub faq: PathBuf,
    /// Least calibrated confidence for the bot to answer from the knowledge base.
    pub threshold: f32,
    /// Least lead of the likeliest intent over the next one.
    pub margin: f32,
}

impl Default for Bot {
    fn default() -> Self {
        Self {
            enabled: true,
            misses_before_handoff: frontdesk_router::BotConfig::default().misses_before_handoff,
            faq: PathBuf::from("config/faq.toml"),
            threshold: frontdesk_faq::EngineOptions::default().threshold,
            margin: frontdesk_faq::EngineOptions::default().margin,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Delivery {
    /// Sends in flight at once per channel account.
    pub concurrency: usize,
    /// Transient failures before a message is failed for good.
    pub max_attempts: u32,
    /// Seconds a claimed outbox row stays ours.
    pub lease_seconds: u64,
    /// Seconds one send may take.
    pub send_timeout_seconds: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        let d = frontdesk_router::DeliveryConfig::default();
        Self {
            concurrency: d.concurrency,
            max_attempts: d.max_attempts,
            lease_seconds: d.lease.as_secs(),
            send_timeout_seconds: d.send_timeout.as_secs(),
        }
    }
}

impl Delivery {
    pub fn worker_config(&self) -> frontdesk_router::DeliveryConfig {
        frontdesk_router::DeliveryConfig {
            concurrency: self.concurrency,
            max_attempts: self.max_attempts,
            lease: std::time::Duration::from_secs(self.lease_seconds),
            send_timeout: std::time::Duration::from_secs(self.send_timeout_seconds),
            ..frontdesk_router::DeliveryConfig::default()
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Channels {
    pub telegram: Telegram,
    pub email: Email,
    pub x: X,
    pub webchat: Webchat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    #[default]
    Polling,
    Webhook,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Telegram {
    pub enabled: bool,
    pub token: Option<SecretString>,
    pub api_url: String,
    pub mode: TelegramMode,
    pub webhook_secret: Option<SecretString>,
    /// Take messages from groups where the bot is mentioned or replied to.
    pub groups: bool,
    /// How often the webhook's state is read back from Telegram.
    pub webhook_check_seconds: u64,
}

impl Default for Telegram {
    fn default() -> Self {
        Self {
            enabled: false,
            token: None,
            api_url: "https://api.telegram.org".into(),
            mode: TelegramMode::Polling,
            webhook_secret: None,
            groups: false,
            webhook_check_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Email {
    pub enabled: bool,
    /// `imaps://host:993`, or `imap://host:143` (STARTTLS, or plain where configured).
    pub imap_url: Option<String>,
    /// `smtps://host:465`, `smtp://host:587` (STARTTLS).
    pub smtp_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The support address customers write to.
    pub address: Option<String>,
    /// The folder to read.
    pub mailbox: String,
    /// An extra CA certificate (PEM) to trust: a team's own CA.
    pub ca_file: Option<String>,
    /// Allow `imap://` and `smtp://` without STARTTLS (loopback test servers only).
    pub allow_plain: bool,
    /// On the very first start, import the mail already in the mailbox (otherwise
    /// only mail that arrives from then on).
    pub import_existing: bool,
    /// Flag each stored mail \Seen.
    pub mark_seen: bool,
    /// Move each stored mail to this folder (never deleted otherwise).
    pub move_to: Option<String>,
    /// Keep a copy of every mail sent in this folder.
    pub sent_folder: Option<String>,
    /// Wait with IDLE where the server has it; otherwise (or when off) poll.
    pub idle: bool,
    /// How often to look for new mail when polling.
    pub poll_seconds: u64,
    /// More support mailboxes, by name (`[channels.email.mailboxes.sales]`), with the
    /// same keys; each is the channel account `email:NAME` and needs `enabled = true`.
    pub mailboxes: std::collections::BTreeMap<String, Email>,
}

impl Email {
    /// Every enabled mailbox with its account name and its key prefix: this one as
    /// `default`, then the named ones.
    pub fn enabled_mailboxes(&self) -> Vec<(String, String, &Email)> {
        let mut all = Vec::new();
        if self.enabled {
            all.push(("default".to_owned(), "channels.email".to_owned(), self));
        }
        for (name, mailbox) in &self.mailboxes {
            if mailbox.enabled {
                all.push((
                    name.clone(),
                    format!("channels.email.mailboxes.{name}"),
                    mailbox,
                ));
            }
        }
        all
    }
}

impl Default for Email {
    fn default() -> Self {
        Self {
            enabled: false,
            imap_url: None,
            smtp_url: None,
            username: None,
            password: None,
            address: None,
            mailbox: "INBOX".into(),
            ca_file: None,
            allow_plain: false,
            import_existing: false,
            mark_seen: false,
            move_to: None,
            sent_folder: None,
            idle: true,
            poll_seconds: 30,
            mailboxes: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct X {
    pub enabled: bool,
    pub api_url: String,
    /// The support account's numeric user id.
    pub user_id: Option<String>,
    pub consumer_key: Option<SecretString>,
    pub consumer_secret: Option<SecretString>,
    pub access_token: Option<SecretString>,
    pub access_token_secret: Option<SecretString>,
    pub client_id: Option<String>,
    /// For confidential OAuth 2.0 clients only.
    pub client_secret: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
    /// Read the mentions timeline.
    pub mentions: bool,
    /// Read direct messages.
    pub dms: bool,
    /// The shortest time between two polls of one endpoint; X's rate-limit headers
    /// slow it down further when the window is tight.
    pub poll_seconds: u64,
    /// End the bot's public answers with an invitation to go on by DM.
    pub dm_invite: bool,
    /// On the very first start, import the mentions and DMs X still lists (otherwise
    /// only those that arrive from then on).
    pub import_existing: bool,
}

impl Default for X {
    fn default() -> Self {
        Self {
            enabled: false,
            api_url: "https://api.x.com".into(),
            user_id: None,
            consumer_key: None,
            consumer_secret: None,
            access_token: None,
            access_token_secret: None,
            client_id: None,
            client_secret: None,
            refresh_token: None,
            mentions: true,
            dms: true,
            poll_seconds: 15,
            dm_invite: true,
            import_existing: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webchat {
    pub enabled: bool,
}

impl Default for Webchat {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: Option<usize> },
    Env(String),
    Default,
}

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: Origin,
    /// Dotted key path (`channels.telegram.mode`); empty for whole-file problems.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{}:{line}: ", path.display())?,
            Origin::File { path, line: None } => write!(f, "{}: ", path.display())?,
            Origin::Env(var) => write!(f, "environment variable {var}: ")?,
            Origin::Default => f.write_str("built-in default: ")?,
        }
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// All problems found, in file order.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A loaded configuration and the file it came from, if any.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub path: Option<PathBuf>,
}

/// Loads the configuration: `path` if given (it must exist), else [`DEFAULT_PATH`] if it
/// exists, else the built-in defaults; then the `FRONTDESK_*` variables in `env`.
pub fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigErrors> {
    let (path, text) = match path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => (Some(p.to_path_buf()), text),
            Err(e) => {
                return Err(ConfigErrors(vec![ConfigError {
                    origin: Origin::File {
                        path: p.to_path_buf(),
                        line: None,
                    },
                    key: String::new(),
                    message: format!("cannot read the file: {e}"),
                }]));
            }
        },
        None => match std::fs::read_to_string(DEFAULT_PATH) {
            Ok(text) => (Some(PathBuf::from(DEFAULT_PATH)), text),
            Err(_) => (None, String::new()),
        },
    };
    let config = parse(path.as_deref(), &text, env)?;
    Ok(Loaded { config, path })
}

/// Parses `text` (from `path`, for messages) with `env` overrides applied.
pub fn parse(
    path: Option<&Path>,
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigErrors> {
    let file = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("<built-in>"));
    let at_line = |line: Option<usize>| Origin::File {
        path: file.clone(),
        line,
    };
    let (spanned, syntax) = toml::de::DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(ConfigErrors(
            syntax
                .iter()
                .map(|e| ConfigError {
                    origin: at_line(e.span().map(|s| line_of(text, s.start))),
                    key: String::new(),
                    message: e.message().to_owned(),
                })
                .collect(),
        ));
    }
    let mut tree: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            return Err(ConfigErrors(vec![ConfigError {
                origin: at_line(e.span().map(|s| line_of(text, s.start))),
                key: String::new(),
                message: e.message().to_owned(),
            }]));
        }
    };

    let mut errors = Vec::new();
    // Which keys the environment set, to name the variable instead of a line.
    let mut from_env: Vec<(Vec<String>, String)> = Vec::new();
    for (var, value) in env {
        // Only FRONTDESK_SECTION__KEY is configuration; other FRONTDESK_ variables
        // (FRONTDESK_TEST_POSTGRES_URL) belong to tools and tests.
        let Some(rest) = var.strip_prefix(ENV_PREFIX).filter(|r| r.contains("__")) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
        if path.iter().any(String::is_empty) {
            errors.push(ConfigError {
                origin: Origin::Env(var.clone()),
                key: String::new(),
                message:
                    "expected FRONTDESK_SECTION__KEY (sections and keys joined by two underscores)"
                        .into(),
            });
            continue;
        }
        if let Err(message) = set_path(&mut tree, &path, env_value(&value)) {
            errors.push(ConfigError {
                origin: Origin::Env(var.clone()),
                key: path.join("."),
                message,
            });
            continue;
        }
        from_env.push((path, var));
    }

    let origin_of = |key: &[String]| -> Origin {
        if let Some((_, var)) = from_env.iter().find(|(p, _)| key.starts_with(p)) {
            return Origin::Env(var.clone());
        }
        match line_of_key(text, &spanned, key) {
            Some(line) => at_line(Some(line)),
            None if path.is_some() => at_line(None),
            None => Origin::Default,
        }
    };

    // Deserialize; on an error, note it, drop the offending key and go again, so every
    // bad key is reported, not just the first.
    let config = loop {
        let value = toml::Value::Table(tree.clone());
        match serde_path_to_error::deserialize::<_, Config>(value) {
            Ok(config) => break config,
            Err(e) => {
                let mut key: Vec<String> = e
                    .path()
                    .iter()
                    .filter_map(|seg| match seg {
                        serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                        serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
                        _ => None,
                    })
                    .collect();
                let inner = e.into_inner();
                let message = inner.message().to_owned();
                if let Some(unknown) = unknown_field(&message)
                    && key.last().map(String::as_str) != Some(unknown)
                {
                    key.push(unknown.to_owned());
                }
                // An env value that looked like a number may be meant as text.
                if from_env.iter().any(|(p, _)| *p == key) && stringify(&mut tree, &key) {
                    continue;
                }
                errors.push(ConfigError {
                    origin: origin_of(&key),
                    key: key.join("."),
                    message,
                });
                if key.is_empty() || !remove_path(&mut tree, &key) {
                    break Config::default();
                }
            }
        }
    };

    for (key, message) in validate(&config) {
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        errors.push(ConfigError {
            origin: origin_of(&path),
            key,
            message,
        });
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        errors.sort_by_key(|e| match &e.origin {
            Origin::File { line, .. } => (0, line.unwrap_or(usize::MAX)),
            Origin::Env(_) => (1, 0),
            Origin::Default => (2, 0),
        });
        Err(ConfigErrors(errors))
    }
}

/// Checks that need more than a type: addresses, URLs, what an enabled channel needs.
fn validate(c: &Config) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut err = |key: &str, message: String| errors.push((key.to_owned(), message));
    for (team, hours) in &c.teams {
        if let Err(e) = frontdesk_router::BusinessHours::from_config(hours) {
            err(&format!("teams.{team}"), e.to_string());
        }
    }
    for (name, hook) in &c.webhooks {
        let key = |field: &str| format!("webhooks.{name}.{field}");
        let url_ok = hook.url.starts_with("https://") || hook.url.starts_with("http://");
        if !url_ok || reqwest::Url::parse(&hook.url).is_err() {
            err(&key("url"), format!("{:?} is not an http(s) URL", hook.url));
        }
        if secrecy::ExposeSecret::expose_secret(&hook.secret).len() < 16 {
            err(&key("secret"), "at least 16 characters".into());
        }
        for event in &hook.events {
            if !frontdesk_web::webhooks::EVENT_TYPES.contains(&event.as_str()) {
                err(
                    &key("events"),
                    format!(
                        "unknown event {event:?}; expected {}",
                        frontdesk_web::webhooks::EVENT_TYPES.join(", ")
                    ),
                );
            }
        }
    }
    if c.engine.default_team.trim().is_empty() {
        err("engine.default_team", "a team name is needed".into());
    }
    let mut at_least_one = vec![
        (
            "engine.pending_resolve_days".to_owned(),
            c.engine.pending_resolve_days,
        ),
        (
            "engine.bot_idle_resolve_hours".to_owned(),
            c.engine.bot_idle_resolve_hours,
        ),
        ("engine.away_minutes".to_owned(), c.engine.away_minutes),
    ];
    for (priority, sla) in c.engine.sla.by_priority() {
        let key = |field: &str| format!("engine.sla.{priority}.{field}");
        at_least_one.push((key("first_response_minutes"), sla.first_response_minutes));
        at_least_one.push((key("resolution_hours"), sla.resolution_hours));
    }
    for (key, value) in at_least_one {
        if value == 0 {
            err(
                &key,
                "at least 1 (0 would act at once on every conversation)".into(),
            );
        }
    }
    if c.engine.reopen_days == 0 {
        err(
            "engine.reopen_days",
            "at least 1 (0 would start a new conversation for every reply to a resolved one)"
                .into(),
        );
    }
    if c.server.listen.parse::<SocketAddr>().is_err() {
        err(
            "server.listen",
            format!(
                "{:?} is not an address like 127.0.0.1:8080",
                c.server.listen
            ),
        );
    }
    if let Some(url) = &c.server.public_url
        && !is_http_url(url)
    {
        err(
            "server.public_url",
            format!("{url:?} is not an http(s) URL"),
        );
    }
    let db = &c.database.url;
    if !(db.starts_with("sqlite:")
        || db.starts_with("postgres://")
        || db.starts_with("postgresql://"))
    {
        err(
            "database.url",
            "expected sqlite://PATH or postgres://USER@HOST/DB".into(),
        );
    }
    if !(0.0..=1.0).contains(&c.bot.threshold) {
        err("bot.threshold", "must be between 0 and 1".into());
    }
    if c.bot.misses_before_handoff == 0 {
        err("bot.misses_before_handoff", "must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&c.bot.margin) {
        err("bot.margin", "must be between 0 and 1".into());
    }
    if c.database.max_connections == 0 {
        err("database.max_connections", "must be at least 1".into());
    }
    if c.privacy.check_minutes == 0 {
        err("privacy.check_minutes", "must be at least 1".into());
    }
    if c.delivery.concurrency == 0 {
        err("delivery.concurrency", "must be at least 1".into());
    }
    if c.delivery.max_attempts == 0 {
        err("delivery.max_attempts", "must be at least 1".into());
    }
    if c.delivery.lease_seconds <= c.delivery.send_timeout_seconds {
        err(
            "delivery.lease_seconds",
            "must be longer than delivery.send_timeout_seconds, or a slow send is claimed twice"
                .into(),
        );
    }
    let t = &c.channels.telegram;
    if !is_http_url(&t.api_url) {
        err(
            "channels.telegram.api_url",
            format!("{:?} is not an http(s) URL", t.api_url),
        );
    }
    if t.enabled {
        if t.token.is_none() {
            err(
                "channels.telegram.token",
                "required when the Telegram channel is enabled".into(),
            );
        }
        if t.webhook_check_seconds == 0 {
            err(
                "channels.telegram.webhook_check_seconds",
                "must be at least 1".into(),
            );
        }
        if t.mode == TelegramMode::Webhook {
            if let Some(secret) = &t.webhook_secret
                && !valid_webhook_secret(secrecy::ExposeSecret::expose_secret(secret))
            {
                err(
                    "channels.telegram.webhook_secret",
                    "must be 1-256 characters of A-Z, a-z, 0-9, '_' and '-' (Telegram's rule)"
                        .into(),
                );
            }
            if t.webhook_secret.is_none() {
                err(
                    "channels.telegram.webhook_secret",
                    "required in webhook mode".into(),
                );
            }
            if c.server.public_url.is_none() {
                err(
                    "server.public_url",
                    "required for the Telegram webhook mode".into(),
                );
            }
        }
    }
    for (name, prefix, e) in c.channels.email.enabled_mailboxes() {
        if frontdesk_core::ChannelAccount::new(frontdesk_core::ChannelKind::Email, &name).is_err() {
            err(
                &prefix,
                "a mailbox name is 1-64 characters of a-z, 0-9, '-' or '_'".into(),
            );
        }
        if name == "default" && prefix != "channels.email" {
            err(&prefix, "the name default is the main mailbox's".into());
        }
        if !e.mailboxes.is_empty() && prefix != "channels.email" {
            err(
                &format!("{prefix}.mailboxes"),
                "mailboxes do not nest".into(),
            );
        }
        for (key, v) in [
            ("imap_url", &e.imap_url),
            ("smtp_url", &e.smtp_url),
            ("username", &e.username),
            ("address", &e.address),
        ] {
            if v.is_none() {
                err(
                    &format!("{prefix}.{key}"),
                    "required when the mailbox is enabled".into(),
                );
            }
        }
        if e.poll_seconds == 0 {
            err(
                &format!("{prefix}.poll_seconds"),
                "must be at least 1".into(),
            );
        }
        if e.password.is_none() {
            err(
                &format!("{prefix}.password"),
                "required when the mailbox is enabled".into(),
            );
        }
        if let Some(url) = &e.imap_url
            && !(url.starts_with("imaps://") || url.starts_with("imap://"))
        {
            err(
                &format!("{prefix}.imap_url"),
                format!("{url:?}: expected imaps://HOST:PORT or imap://HOST:PORT"),
            );
        }
        if let Some(url) = &e.smtp_url
            && !(url.starts_with("smtps://") || url.starts_with("smtp://"))
        {
            err(
                &format!("{prefix}.smtp_url"),
                format!("{url:?}: expected smtps://HOST:PORT or smtp://HOST:PORT"),
            );
        }
    }
    let x = &c.channels.x;
    if !is_http_url(&x.api_url) {
        err(
            "channels.x.api_url",
            format!("{:?} is not an http(s) URL", x.api_url),
        );
    }
    if x.enabled {
        match &x.user_id {
            Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => err(
                "channels.x.user_id",
                "the support account's numeric user id is required".into(),
            ),
        }
        let oauth1 = x.consumer_key.is_some()
            && x.consumer_secret.is_some()
            && x.access_token.is_some()
            && x.access_token_secret.is_some();
        let oauth2 = x.client_id.is_some() && x.refresh_token.is_some();
        if x.poll_seconds == 0 {
            err(
                "channels.x.poll_seconds",
                "must be at least 1 (X's rate limits slow polling further)".into(),
            );
        }
        if !oauth1 && !oauth2 {
            err(
                "channels.x.consumer_key",
                "X needs OAuth 1.0a keys (consumer_key, consumer_secret, access_token, \
                 access_token_secret) or OAuth 2.0 (client_id, refresh_token)"
                    .into(),
            );
        }
    }
    errors
}

/// Telegram's rule for `secret_token`: 1-256 of `A-Z a-z 0-9 _ -`.
fn valid_webhook_secret(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    matches!(rest, Some(host) if !host.is_empty() && !host.starts_with('/'))
}

/// The value of an environment variable as TOML: `true`, `42`, `[1, 2]` keep their
/// type; anything that is not a TOML literal is a string.
fn env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut here = table;
    for (i, key) in parents.iter().enumerate() {
        let entry = here
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "`{}` is a value, not a section",
                    path[..=i].join(".")
                ));
            }
        };
    }
    here.insert(last.clone(), value);
    Ok(())
}

/// Turns a number or boolean at `path` into its text; false if there was none.
fn stringify(table: &mut toml::Table, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut here = table;
    for key in parents {
        match here.get_mut(key).and_then(toml::Value::as_table_mut) {
            Some(t) => here = t,
            None => return false,
        }
    }
    let text = match here.get(last) {
        Some(toml::Value::Integer(i)) => i.to_string(),
        Some(toml::Value::Float(f)) => f.to_string(),
        Some(toml::Value::Boolean(b)) => b.to_string(),
        _ => return false,
    };
    here.insert(last.clone(), toml::Value::String(text));
    true
}

fn remove_path(table: &mut toml::Table, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut here = table;
    for key in parents {
        match here.get_mut(key).and_then(toml::Value::as_table_mut) {
            Some(t) => here = t,
            None => return false,
        }
    }
    here.remove(last).is_some()
}

/// serde's "unknown field `x`, expected ..." names the field; the path stops before it.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The line of the deepest key of `path` that the file has (a missing key is reported
/// at its section).
fn line_of_key(
    text: &str,
    root: &toml::Spanned<toml::de::DeTable<'_>>,
    path: &[String],
) -> Option<usize> {
    let mut table = root.get_ref();
    let mut line = None;
    for key in path {
        let Some((k, v)) = table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key.as_str())
        else {
            break;
        };
        line = Some(line_of(text, k.span().start));
        match v.get_ref() {
            toml::de::DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse_str(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        parse(
            Some(Path::new("frontdesk.toml")),
            text,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn no_file_means_the_documented_defaults() {
        let c = parse(None, "", std::iter::empty()).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.database.url, "sqlite://data/frontdesk.db");
        assert_eq!(c.bot.faq, PathBuf::from("config/faq.toml"));
        assert!(c.channels.webchat.enabled);
        assert!(!c.channels.telegram.enabled && !c.channels.email.enabled && !c.channels.x.enabled);
        assert_eq!(c.channels.telegram.api_url, "https://api.telegram.org");
        assert_eq!(c.channels.x.api_url, "https://api.x.com");
    }

    #[test]
    fn the_shipped_config_file_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/frontdesk.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let c = parse(Some(Path::new(path)), &text, std::iter::empty()).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert!(c.channels.webchat.enabled);
        let engine = c.engine_config().unwrap();
        assert_eq!(engine.default_team, "general");
        assert!(engine.hours.contains_key("payments") && !engine.hours.contains_key("security"));
        assert_eq!(
            engine.sla[&frontdesk_core::Priority::Urgent].first_response,
            std::time::Duration::from_secs(15 * 60)
        );
    }

    #[test]
    fn a_zero_timer_or_target_is_refused_with_its_key() {
        let text = "[engine]\npending_resolve_days = 0\n\n[engine.sla.urgent]\nfirst_response_minutes = 0\nresolution_hours = 4\n";
        let errors = parse_str(text, &[]).unwrap_err().to_string();
        assert!(errors.contains("engine.pending_resolve_days"), "{errors}");
        assert!(
            errors.contains("engine.sla.urgent.first_response_minutes"),
            "{errors}"
        );
        assert!(!errors.contains("resolution_hours"), "{errors}");
    }

    #[test]
    fn a_webhook_needs_a_url_a_long_secret_and_known_events() {
        let good = "[webhooks.crm]\nurl = \"https://crm.example.com/hook\"\nsecret = \"0123456789abcdef0123\"\nevents = [\"message.created\"]\n";
        let c = parse_str(good, &[]).unwrap();
        assert_eq!(c.webhooks["crm"].events, ["message.created"]);
        assert!(!format!("{:?}", c.webhooks["crm"]).contains("0123456789abcdef"));
        let bad = "[webhooks.crm]\nurl = \"ftp://crm\"\nsecret = \"short\"\nevents = [\"message.deleted\"]\n";
        let errors = parse_str(bad, &[]).unwrap_err().to_string();
        for key in [
            "webhooks.crm.url",
            "webhooks.crm.secret",
            "webhooks.crm.events",
        ] {
            assert!(errors.contains(key), "{key} in {errors}");
        }
    }

    #[test]
    fn bad_business_hours_name_the_team_and_the_value() {
        let text = "[teams.general]\ntimezone = \"Mars/Olympus\"\n\n[teams.payments]\nhours = { mon = \"18:00-09:00\" }\n";
        let errors = parse_str(text, &[]).unwrap_err().to_string();
        assert!(
            errors.contains("teams.general") && errors.contains("Mars/Olympus"),
            "{errors}"
        );
        assert!(
            errors.contains("teams.payments") && errors.contains("18:00-09:00"),
            "{errors}"
        );
    }

    #[test]
    fn every_error_is_reported_with_its_line_and_key() {
        let text = "[server]\nlisten = \"nowhere\"\nlistne = \"x\"\n\n[channels.telegram]\nmode = \"carrier-pigeon\"\n";
        let errors = parse_str(text, &[]).unwrap_err().to_string();
        let lines: Vec<&str> = errors.lines().collect();
        assert_eq!(lines.len(), 3, "{errors}");
        assert!(
            lines[0].starts_with("frontdesk.toml:2: key `server.listen`"),
            "{errors}"
        );
        assert!(
            lines[1].starts_with("frontdesk.toml:3: key `server.listne`: unknown field"),
            "{errors}"
        );
        assert!(
            lines[2].starts_with("frontdesk.toml:6: key `channels.telegram.mode`"),
            "{errors}"
        );
    }

    #[test]
    fn a_channel_retention_overrides_the_default_and_zero_keeps_texts() {
        use frontdesk_core::ChannelKind::*;
        let c = parse_str(
            "[privacy]\nretention_days = 30\n[privacy.channels]\nemail = 365\nx = 0\n",
            &[],
        )
        .unwrap();
        let days = |k| c.privacy.retention(k).map(|d| d.as_secs() / 86_400);
        assert_eq!(
            (days(Telegram), days(Email), days(X)),
            (Some(30), Some(365), None)
        );
        assert_eq!(
            Config::default().privacy.retention(Webchat),
            None,
            "kept by default"
        );
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let errors = parse_str("[server]\nlisten = \n", &[])
            .unwrap_err()
            .to_string();
        assert!(errors.starts_with("frontdesk.toml:2:"), "{errors}");
    }

    #[test]
    fn environment_variables_override_the_file() {
        let c = parse_str(
            "[channels.telegram]\nenabled = false\n",
            &[
                ("FRONTDESK_CHANNELS__TELEGRAM__ENABLED", "true"),
                ("FRONTDESK_CHANNELS__TELEGRAM__TOKEN", "123456:ABC-secret"),
                ("FRONTDESK_SERVER__LISTEN", "127.0.0.1:0"),
                ("FRONTDESK_CHANNELS__X__USER_ID", "1234567"),
                ("HOME", "/root"),
            ],
        )
        .unwrap();
        assert!(c.channels.telegram.enabled);
        assert_eq!(
            c.channels.telegram.token.as_ref().unwrap().expose_secret(),
            "123456:ABC-secret"
        );
        assert_eq!(c.server.listen, "127.0.0.1:0");
        assert_eq!(
            c.channels.x.user_id.as_deref(),
            Some("1234567"),
            "digits stay text"
        );
    }

    #[test]
    fn frontdesk_variables_without_a_section_are_not_configuration() {
        let c = parse_str("", &[("FRONTDESK_TEST_POSTGRES_URL", "postgres://x")]);
        assert!(c.is_ok(), "{:?}", c.err().map(|e| e.to_string()));
    }

    #[test]
    fn a_bad_environment_variable_is_named() {
        let errors = parse_str("", &[("FRONTDESK_SERVER__LISTNE", "x")])
            .unwrap_err()
            .to_string();
        assert!(
            errors.contains("environment variable FRONTDESK_SERVER__LISTNE: key `server.listne`"),
            "{errors}"
        );
    }

    #[test]
    fn an_enabled_channel_says_what_it_is_missing() {
        let errors = parse_str("[channels.telegram]\nenabled = true\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            errors.starts_with("frontdesk.toml:1: key `channels.telegram.token`: required"),
            "{errors}"
        );
    }

    #[test]
    fn every_enabled_mailbox_is_checked_under_its_own_keys() {
        let text = "[channels.email]\nenabled = false\n\n[channels.email.mailboxes.sales]\nenabled = true\nimap_url = \"pop3://x\"\n";
        let errors = parse_str(text, &[]).unwrap_err().to_string();
        assert!(
            errors.contains("`channels.email.mailboxes.sales.imap_url`"),
            "{errors}"
        );
        assert!(
            errors.contains("`channels.email.mailboxes.sales.password`: required"),
            "{errors}"
        );
        let bad_name = "[channels.email.mailboxes.Sales]\nenabled = true\n";
        let errors = parse_str(bad_name, &[]).unwrap_err().to_string();
        assert!(errors.contains("mailbox name"), "{errors}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = parse_str(
            "[channels.email]\npassword = \"hunter2-very-secret\"\n",
            &[],
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
