//! The path between the message bus and the channels.
//!
//! - [`Pipeline`]: what channel adapters push into ([`frontdesk_core::Intake`]): stores
//!   each inbound message exactly once and counts it. The bot and the handoff to agents
//!   (the conversation engine) hang off this point.
//! - [`bot`]: the bot's turn in a conversation still with the bot: answer, ask, or
//!   hand off, and silence once people have it.
//! - [`delivery`]: one worker per channel account that claims due outbox rows, sends
//!   them through the channel, and records sent, retry-at or failed-for-good.
//! - [`Metrics`]: the counters and histograms `/metrics` shows.
//! - [`TokioClock`]: wall time that follows tokio's clock, so timers can be tested on
//!   paused time.

pub mod bot;
pub mod clock;
pub mod delivery;
pub mod intake;
pub mod metrics;

pub use bot::{Bot, BotConfig, Turn};
pub use clock::TokioClock;
pub use delivery::{DeliveryConfig, DeliveryWorker};
pub use intake::Pipeline;
pub use metrics::Metrics;
