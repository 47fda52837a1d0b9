//! What `/metrics` shows, in the Prometheus text format.
//!
//! An explicit registry (no global recorder), so every app in a test process has its
//! own and tests can read exact values.

use frontdesk_core::ChannelAccount;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::fmt;
use std::time::Duration;

type Labels = Vec<(String, String)>;

fn channel_labels(account: &ChannelAccount) -> Labels {
    vec![
        ("channel".into(), account.kind().as_str().into()),
        ("account".into(), account.name().into()),
    ]
}

/// Frontdesk's metrics. Cheap to clone; clones share the values.
#[derive(Clone)]
pub struct Metrics {
    registry: std::sync::Arc<Registry>,
    ingested: Family<Labels, Counter>,
    duplicates: Family<Labels, Counter>,
    deliveries: Family<Labels, Counter>,
    delivery_seconds: Family<Labels, Histogram>,
    outbox_depth: Gauge,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("frontdesk");
        let ingested = Family::<Labels, Counter>::default();
        let duplicates = Family::<Labels, Counter>::default();
        let deliveries = Family::<Labels, Counter>::default();
        let delivery_seconds = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let outbox_depth = Gauge::default();
        registry.register(
            "ingested",
            "Inbound messages stored, by channel account",
            ingested.clone(),
        );
        registry.register(
            "duplicates",
            "Inbound messages seen again and not stored twice",
            duplicates.clone(),
        );
        registry.register(
            "deliveries",
            "Delivery attempts by outcome (sent, retry, failed)",
            deliveries.clone(),
        );
        registry.register(
            "delivery_seconds",
            "Time a channel took to accept one outbound message",
            delivery_seconds.clone(),
        );
        registry.register(
            "outbox_depth",
            "Outbound messages waiting to be delivered",
            outbox_depth.clone(),
        );
        Self {
            registry: std::sync::Arc::new(registry),
            ingested,
            duplicates,
            deliveries,
            delivery_seconds,
            outbox_depth,
        }
    }

    pub fn ingested(&self, account: &ChannelAccount) {
        self.ingested.get_or_create(&channel_labels(account)).inc();
    }

    pub fn duplicate(&self, account: &ChannelAccount) {
        self.duplicates
            .get_or_create(&channel_labels(account))
            .inc();
    }

    pub fn delivery(&self, account: &ChannelAccount, outcome: &str, took: Duration) {
        let mut labels = channel_labels(account);
        self.delivery_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        labels.push(("outcome".into(), outcome.into()));
        self.deliveries.get_or_create(&labels).inc();
    }

    pub fn set_outbox_depth(&self, depth: i64) {
        self.outbox_depth.set(depth);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::ChannelKind;

    #[test]
    fn the_exposition_names_every_promised_metric() {
        let m = Metrics::new();
        let a = ChannelAccount::default_of(ChannelKind::Webchat);
        m.ingested(&a);
        m.duplicate(&a);
        m.delivery(&a, "sent", Duration::from_millis(20));
        m.set_outbox_depth(3);
        let text = m.render();
        for name in [
            "frontdesk_ingested_total{channel=\"webchat\",account=\"default\"} 1",
            "frontdesk_duplicates_total{channel=\"webchat\",account=\"default\"} 1",
            "frontdesk_outbox_depth 3",
            "frontdesk_delivery_seconds_bucket",
            "frontdesk_deliveries_total{channel=\"webchat\",account=\"default\",outcome=\"sent\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
