//! `frontdesk`: the command line. Each command is a few lines over the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use frontdesk::bench::BenchBackend;
use frontdesk::config::{self, Config};
use frontdesk::logging::{self, LogFormat};
use frontdesk::{app, faq, passwords};
use frontdesk_core::Role;
use frontdesk_store::NewAgent;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "Customer support bridge for a crypto wallet"
)]
struct Cli {
    /// Configuration file (default: config/frontdesk.toml if present, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything configured: HTTP, channels, delivery.
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Validate the configuration; report every problem with file, line and key.
    Check,
    /// Manage agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Print the version.
    Version,
    /// The answer engine: match a message, or evaluate on a labelled CSV file.
    Faq {
        #[command(subcommand)]
        command: FaqCommand,
    },
    /// A customer's data: export it, or erase it.
    Contact {
        #[command(subcommand)]
        command: ContactCommand,
    },
    /// The guard: find and redact recovery phrases and private keys.
    Guard {
        #[command(subcommand)]
        command: GuardCommand,
    },
    /// API tokens for the REST API.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Per team and agent: first response and resolution times, CSAT, reopen and bot
    /// resolution rates, SLA breaches, as JSON.
    Report {
        /// Conversations created in the last this many days.
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
    /// Measure throughput against a baseline in the same run.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Add an agent who can log in to the inbox.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "agent")]
        role: RoleArg,
        /// Read the password from the first line of standard input instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
        /// A team whose conversations they take (repeat for several).
        #[arg(long = "team")]
        teams: Vec<String>,
        /// Open conversations at most, for auto-assignment.
        #[arg(long, default_value_t = 5)]
        capacity: u32,
        /// 1 (first line) or 2 (senior: takes escalations).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
        tier: u8,
    },
    /// Set an agent online (takes conversations), away or offline (gives them back).
    /// A running server acts on it at its next engine tick.
    Status {
        #[arg(long)]
        email: String,
        #[arg(value_enum)]
        status: StatusArg,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token for an agent and print it once (only its hash is kept).
    Create {
        #[arg(long)]
        agent: String,
        /// What the token is for, to recognise it later.
        #[arg(long, default_value = "api")]
        name: String,
        /// Read only (GET); without it the token can also write.
        #[arg(long)]
        read_only: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StatusArg {
    Online,
    Away,
    Offline,
}

impl From<StatusArg> for frontdesk_core::AgentStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Online => Self::Online,
            StatusArg::Away => Self::Away,
            StatusArg::Offline => Self::Offline,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Admin,
    Supervisor,
    Agent,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Supervisor => Role::Supervisor,
            RoleArg::Agent => Role::Agent,
        }
    }
}

#[derive(Debug, Subcommand)]
enum FaqCommand {
    /// Print the decision for TEXT as JSON, or for each line of standard input.
    Match { text: Option<String> },
    /// Accuracy, macro-F1, coverage, precision at the threshold and latency.
    Eval {
        /// Labelled CSV with a header; the text is in column `text`.
        #[arg(long)]
        test: PathBuf,
        /// Build the engine from this CSV instead of the configured knowledge base.
        #[arg(long)]
        train: Option<PathBuf>,
        /// Examples per label taken from --train (all when absent).
        #[arg(long, requires = "train")]
        shots: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value = "category")]
        label_column: String,
    },
}

#[derive(Debug, Subcommand)]
enum ContactCommand {
    /// Print everything stored about a contact as JSON (recorded in the audit log).
    Export { id: i64 },
    /// Erase a contact's texts, identities and name; keep anonymous counts.
    Delete {
        id: i64,
        /// Confirm: this cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum GuardCommand {
    /// Print {"redacted", "findings"} for TEXT as JSON, or for each line of standard input.
    Scan { text: Option<String> },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// N distinct messages from 1,000 contacts through the real ingest path, against a
    /// bare INSERT of the same rows.
    Ingest {
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: BenchBackend,
    },
    /// Telegram updates from a fake Bot API on 127.0.0.1 through long polling into a
    /// fresh store, against the same messages handed straight to the pipeline.
    Telegram {
        #[arg(long, default_value_t = 5_000)]
        updates: usize,
    },
    /// Posts mentioning the account on a fake X API v2 on 127.0.0.1 through the X
    /// channel's polling into a fresh store, against the same posts handed straight to
    /// the pipeline.
    X {
        #[arg(long, default_value_t = 5_000)]
        mentions: usize,
    },
    /// Read a mailbox of N mails over IMAP (the test Dovecot, see scripts/services.sh)
    /// against parsing and ingesting them directly; then IDLE latency through Postfix.
    Email {
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
        #[arg(long, default_value_t = 100)]
        latency_mails: usize,
    },
    /// The whole app on a fresh SQLite store, bot on: customers ask FAQ questions over
    /// the website chat and a fake Telegram at a given rate (open loop); latency from
    /// send to reply handed to the channel, memory; then the app's capacity against
    /// bare INSERTs of the same rows.
    E2e {
        /// Messages a second, both channels together.
        #[arg(long, default_value_t = 500)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// The share over Telegram (at most 30 messages a second, Telegram's limit).
        #[arg(long, default_value_t = 0.05)]
        telegram_share: f64,
        /// Messages of the capacity phase.
        #[arg(long, default_value_t = 5_000)]
        capacity_messages: usize,
        /// Customers writing at once in the capacity phase.
        #[arg(long, default_value_t = 8)]
        capacity_customers: usize,
    },
    /// Seed a large SQLite inbox and time the inbox's reads (p50, p95) and memory.
    Inbox {
        #[arg(long, default_value_t = 100_000)]
        conversations: usize,
        #[arg(long, default_value_t = 10)]
        messages_per_conversation: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration, or prints every problem and says which exit code to use.
fn load_config(path: Option<&std::path::Path>) -> Result<config::Loaded, ExitCode> {
    config::load(path, std::env::vars()).map_err(|errors| {
        eprintln!("{errors}");
        eprintln!("{} configuration problem(s)", errors.0.len());
        ExitCode::from(2)
    })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let path = cli.config.as_deref();
    match cli.command {
        Command::Version => {
            say(&format!("frontdesk {}", env!("CARGO_PKG_VERSION")))?;
        }
        Command::Check => {
            let loaded = match load_config(path) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            if let Err(errors) = faq::load_knowledge_base(&loaded.config) {
                eprintln!("{errors}");
                eprintln!("{} knowledge-base problem(s)", errors.0.len());
                return Ok(ExitCode::from(2));
            }
            match loaded.path {
                Some(p) => say(&format!("{}: configuration OK", p.display()))?,
                None => say("no configuration file; the built-in defaults are OK")?,
            }
            let kb = &loaded.config.bot.faq;
            match kb.exists() {
                true => say(&format!("{}: knowledge base OK", kb.display()))?,
                false => say("built-in knowledge base OK")?,
            }
        }
        Command::Migrate => {
            let Ok(loaded) = load_config(path) else {
                return Ok(ExitCode::from(2));
            };
            app::open_store(&loaded.config).await?;
            say("database schema is up to date")?;
        }
        Command::Serve => {
            let loaded = match load_config(path) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            serve(loaded.config).await?;
        }
        Command::Agent {
            command:
                AgentCommand::Add {
                    email,
                    name,
                    role,
                    password_stdin,
                    teams,
                    capacity,
                    tier,
                },
        } => {
            let loaded = match load_config(path) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let password = read_password(password_stdin)?;
            let password_hash = passwords::hash(&password)?;
            let store = app::open_store(&loaded.config).await?;
            let agent = store
                .add_agent(NewAgent {
                    email,
                    name,
                    role: role.into(),
                    password_hash,
                })
                .await?;
            let profile = frontdesk_store::AgentProfile {
                teams,
                capacity,
                tier,
            };
            let agent = store.set_agent_profile(agent.id, &profile).await?;
            say(&format!(
                "added {} <{}> as {} (id {}), tier {}, capacity {}, teams: {}",
                agent.name,
                agent.email,
                agent.role,
                agent.id,
                agent.tier,
                agent.capacity,
                match agent.teams.is_empty() {
                    true => "none (they get no conversations automatically)".to_owned(),
                    false => agent.teams.join(", "),
                }
            ))?;
        }
        Command::Agent {
            command: AgentCommand::Status { email, status },
        } => {
            let loaded = match load_config(path) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let store = app::open_store(&loaded.config).await?;
            let Some((agent, _)) = store.agent_by_email(&email).await? else {
                anyhow::bail!("no agent with the email {}", email.trim().to_lowercase());
            };
            let agent = store.set_agent_status(agent.id, status.into()).await?;
            say(&format!(
                "{} <{}> is {}",
                agent.name, agent.email, agent.status
            ))?;
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    agent,
                    name,
                    read_only,
                },
        } => {
            let loaded = match load_config(path) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let store = app::open_store(&loaded.config).await?;
            let Some((agent, _)) = store.agent_by_email(&agent).await? else {
                anyhow::bail!(
                    "no agent with the email {}; add one with frontdesk agent add",
                    agent.trim().to_lowercase()
                );
            };
            let scopes: Vec<String> = match read_only {
                true => vec!["read".into()],
                false => vec!["read".into(), "write".into()],
            };
            let token = frontdesk_web::api::new_token();
            store
                .create_api_token(
                    agent.id,
                    &name,
                    &frontdesk_web::api::token_hash(&token),
                    &scopes,
                )
                .await?;
            // The token alone on stdout, so scripts can capture it.
            say(&token)?;
            eprintln!(
                "token {name:?} for {} ({}); shown once, keep it safe",
                agent.email,
                scopes.join(", ")
            );
        }
        Command::Report { days } => {
            let loaded = match load_config(path) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let store = app::open_store(&loaded.config).await?;
            let engine = frontdesk_router::ConversationEngine::new(
                store,
                std::sync::Arc::new(frontdesk_core::SystemClock),
                frontdesk_router::Metrics::new(),
                loaded.config.engine_config()?,
            );
            let until = frontdesk_core::Timestamp::now();
            let since = frontdesk_core::Timestamp::from_micros(
                until
                    .as_micros()
                    .saturating_sub(i64::from(days).saturating_mul(86_400_000_000)),
            );
            let report = engine.report(since, until).await?;
            say(&serde_json::to_string_pretty(&report)?)?;
        }
        Command::Faq { command } => {
            let loaded = match load_config(path) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            match command {
                FaqCommand::Match { text } => faq::run_match(&loaded.config, text)?,
                FaqCommand::Eval {
                    test,
                    train,
                    shots,
                    seed,
                    label_column,
                } => {
                    let report = faq::run_eval(
                        &loaded.config,
                        &test,
                        train.as_deref(),
                        shots,
                        seed,
                        &label_column,
                    )?;
                    say(&report.to_string())?;
                }
            }
        }
        Command::Contact { command } => {
            let loaded = match load_config(path) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let store = app::open_store(&loaded.config).await?;
            match command {
                ContactCommand::Export { id } => {
                    let export = store
                        .export_contact(frontdesk_core::ContactId(id), "cli")
                        .await?;
                    say(&serde_json::to_string_pretty(&export)?)?;
                }
                ContactCommand::Delete { id, yes } => {
                    anyhow::ensure!(
                        yes,
                        "erasing a contact cannot be undone; add --yes to confirm"
                    );
                    let erased = store
                        .delete_contact(frontdesk_core::ContactId(id), "cli")
                        .await?;
                    say(&format!(
                        "contact {id} erased: {} message texts, {} identities; {} conversations kept without personal data",
                        erased.messages_erased,
                        erased.identities_removed,
                        erased.conversations_kept
                    ))?;
                }
            }
        }
        Command::Guard {
            command: GuardCommand::Scan { text },
        } => match text {
            Some(text) => say(&frontdesk_guard::scan_json(&text))?,
            None => {
                for line in std::io::stdin().lock().lines() {
                    let line = line.context("cannot read standard input")?;
                    say(&frontdesk_guard::scan_json(&line))?;
                }
            }
        },
        Command::Bench {
            command: BenchCommand::Ingest { messages, backend },
        } => {
            anyhow::ensure!(messages > 0, "--messages must be at least 1");
            let report = frontdesk::bench::ingest(messages, backend).await?;
            say(&report.to_string())?;
        }
        Command::Bench {
            command:
                BenchCommand::Email {
                    messages,
                    latency_mails,
                },
        } => {
            anyhow::ensure!(
                messages > 0 && latency_mails > 0,
                "--messages and --latency-mails must be at least 1"
            );
            let report = frontdesk::bench::email(messages, latency_mails).await?;
            say(&report.to_string())?;
        }
        Command::Bench {
            command: BenchCommand::Telegram { updates },
        } => {
            anyhow::ensure!(updates > 0, "--updates must be at least 1");
            let report = frontdesk::bench::telegram(updates).await?;
            say(&report.to_string())?;
        }
        Command::Bench {
            command:
                BenchCommand::E2e {
                    rate,
                    seconds,
                    telegram_share,
                    capacity_messages,
                    capacity_customers,
                },
        } => {
            let report = frontdesk::bench::e2e(frontdesk::bench::E2eSettings {
                rate: f64::from(rate),
                seconds: f64::from(seconds),
                telegram_share,
                capacity_messages,
                capacity_customers,
            })
            .await?;
            say(&report.to_string())?;
        }
        Command::Bench {
            command: BenchCommand::X { mentions },
        } => {
            anyhow::ensure!(mentions > 0, "--mentions must be at least 1");
            let report = frontdesk::bench::x(mentions).await?;
            say(&report.to_string())?;
        }
        Command::Bench {
            command:
                BenchCommand::Inbox {
                    conversations,
                    messages_per_conversation,
                },
        } => {
            anyhow::ensure!(
                conversations > 0 && messages_per_conversation > 0,
                "--conversations and --messages-per-conversation must be at least 1"
            );
            let report = frontdesk::bench::inbox(conversations, messages_per_conversation).await?;
            say(&report.to_string())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a line to standard output. A reader that went away (`frontdesk ... | head`)
/// is not an error.
fn say(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let app = app::App::build(config).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    app.run(listener, shutdown).await
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
    shutdown.cancel();
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ")
        .context("cannot prompt for a password (no terminal?); use --password-stdin")?;
    let again = rpassword::prompt_password("Again: ").context("cannot prompt for a password")?;
    anyhow::ensure!(first == again, "the passwords differ");
    Ok(first)
}
