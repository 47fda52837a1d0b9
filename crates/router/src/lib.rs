//! The path between the message bus and the channels.
//!
//! - [`Pipeline`]: what channel adapters push into ([`frontdesk_core::Intake`]): stores
//!   each inbound message exactly once, counts it, and hands it to the engine.
//! - [`engine`]: the conversation engine: handoff, queue and business hours,
//!   assignment, transfer and escalation, statuses and their timers, verification,
//!   CSAT, SLA. Its texts for customers are in [`notices`], [`csat`] and [`verify`].
//! - [`bot`]: the bot's turn in a conversation still with the bot: answer, ask, or
//!   decide a handoff; silence once people have it.
//! - [`hours`]: business hours per team (zone, weekly schedule, holidays).
//! - [`report`]: per team and agent figures (first response, resolution, CSAT, reopen
//!   and bot resolution rates).
//! - [`delivery`]: one worker per channel account that claims due outbox rows, sends
//!   them through the channel, and records sent, retry-at or failed-for-good.
//! - [`Metrics`]: the counters and histograms `/metrics` shows.
//! - [`TokioClock`]: wall time that follows tokio's clock, so timers can be tested on
//!   paused time.

pub mod bot;
pub mod clock;
pub mod csat;
pub mod deep_link;
pub mod delivery;
pub mod elected;
pub mod engine;
pub mod files;
pub mod hours;
pub mod intake;
pub mod metrics;
pub mod notices;
pub mod report;
pub mod secret_hash;
pub mod verify;

pub use bot::{Bot, BotConfig, Turn};
pub use clock::TokioClock;
pub use delivery::{DeliveryConfig, DeliveryWorker};
pub use elected::Elected;
pub use engine::{
    CodeMailer, ConversationEngine, EngineConfig, Escalation, HandOff, Outcome, SlaState,
    SlaTargets, Transfer, VerificationStep,
};
pub use files::{StoredFiles, StoredProgress};
pub use hours::BusinessHours;
pub use intake::Pipeline;
pub use metrics::Metrics;
pub use report::{Report, Stats};
