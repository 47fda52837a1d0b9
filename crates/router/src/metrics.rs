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
use std::sync::atomic::AtomicU64;
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
    handoffs: Family<Labels, Counter>,
    resolved: Family<Labels, Counter>,
    sla_breaches: Family<Labels, Counter>,
    csat_ratings: Family<Labels, Counter>,
    /// Last week's figures per team and agent, refreshed by the engine's tick.
    figures: Family<Labels, Gauge<f64, AtomicU64>>,
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
        let handoffs = Family::<Labels, Counter>::default();
        let resolved = Family::<Labels, Counter>::default();
        let sla_breaches = Family::<Labels, Counter>::default();
        let csat_ratings = Family::<Labels, Counter>::default();
        let figures = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "handoffs",
            "Conversations handed to people, by team",
            handoffs.clone(),
        );
        registry.register(
            "resolved",
            "Conversations resolved, by team and by whom (bot, agent)",
            resolved.clone(),
        );
        registry.register(
            "sla_breaches",
            "Service-level targets missed, by target and priority",
            sla_breaches.clone(),
        );
        registry.register(
            "csat_ratings",
            "Satisfaction ratings received, by team and rating",
            csat_ratings.clone(),
        );
        registry.register(
            "figures",
            "Last seven days per team and agent (scope, name, figure): first response and \
             resolution p50 seconds, CSAT average, reopen and bot resolution rates",
            figures.clone(),
        );
        Self {
            registry: std::sync::Arc::new(registry),
            handoffs,
            resolved,
            sla_breaches,
            csat_ratings,
            figures,
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

    pub fn handoff(&self, team: &str) {
        self.handoffs
            .get_or_create(&vec![("team".into(), team.into())])
            .inc();
    }

    pub fn resolved(&self, team: &str, by: &str) {
        self.resolved
            .get_or_create(&vec![
                ("team".into(), team.into()),
                ("by".into(), by.into()),
            ])
            .inc();
    }

    pub fn sla_breach(
        &self,
        target: frontdesk_store::SlaTarget,
        priority: frontdesk_core::Priority,
    ) {
        let target = match target {
            frontdesk_store::SlaTarget::FirstResponse => "first_response",
            frontdesk_store::SlaTarget::Resolution => "resolution",
        };
        self.sla_breaches
            .get_or_create(&vec![
                ("target".into(), target.into()),
                ("priority".into(), priority.as_str().into()),
            ])
            .inc();
    }

    pub fn csat(&self, team: &str, rating: u8) {
        self.csat_ratings
            .get_or_create(&vec![
                ("team".into(), team.into()),
                ("rating".into(), rating.to_string()),
            ])
            .inc();
    }

    /// Publishes a report's figures per team and agent.
    pub fn report(&self, report: &crate::report::Report) {
        let groups = report
            .teams
            .iter()
            .map(|(team, s)| ("team", team.clone(), s))
            .chain(
                report
                    .agents
                    .iter()
                    .map(|(agent, s)| ("agent", agent.to_string(), s)),
            );
        for (scope, name, s) in groups {
            let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
            let figures = [
                ("first_response_p50_seconds", secs(s.first_response_p50)),
                ("resolution_p50_seconds", secs(s.resolution_p50)),
                ("csat_average", s.csat_average),
                ("reopen_rate", s.reopen_rate),
                ("bot_resolution_rate", s.bot_resolution_rate),
            ];
            for (figure, value) in figures {
                let Some(value) = value else { continue };
                self.figures
                    .get_or_create(&vec![
                        ("scope".into(), scope.into()),
                        ("name".into(), name.clone()),
                        ("figure".into(), figure.into()),
                    ])
                    .set(value);
            }
        }
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
