//! Test doubles for Frontdesk, used only by tests.
//!
//! [`MemoryChannel`] stands in for a provider: it keeps an ordered log of inbound
//! messages the way Telegram keeps updates (each with an offset), hands them to the
//! intake from the stored cursor on, and records every delivery attempt, answering with
//! scripted outcomes. It lets a test drive ingest -> outbox -> deliver end to end and
//! check what a customer would have received, and when.
//!
//! [`MemoryIntake`] is the other side: what a channel adapter pushes into, stored each
//! once with its cursor, for tests of one adapter without a database.
//!
//! [`FakeTelegram`] is the Telegram Bot API on 127.0.0.1, for the real client;
//! [`FakeX`] is X API v2, with OAuth 1.0a signatures checked.

mod memory_channel;
mod memory_intake;
pub mod telegram;
pub mod x;

pub use memory_channel::{Attempt, MemoryChannel};
pub use memory_intake::MemoryIntake;
pub use telegram::FakeTelegram;
pub use x::FakeX;

/// A fake provider's HTTP server on 127.0.0.1, stopped when dropped.
#[derive(Debug)]
pub(crate) struct Served {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Serves `app` on a free port of 127.0.0.1.
    pub(crate) async fn start(app: axum::Router) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Served { url, task }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}
