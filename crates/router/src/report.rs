//! Team and agent figures from the conversations of a period: response speed,
//! resolution efficiency and satisfaction, as the seeds ask of a support team.

use frontdesk_core::{AgentId, Status};
use frontdesk_store::ConversationFacts;
use std::collections::BTreeMap;
use std::time::Duration;

/// Figures for one group of conversations (all, a team, an agent).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    pub conversations: u32,
    /// Went to people.
    pub handed_off: u32,
    pub resolved: u32,
    /// Resolved without ever going to people.
    pub resolved_by_bot: u32,
    /// From the handoff to the first agent reply.
    #[serde(serialize_with = "seconds")]
    pub first_response_p50: Option<Duration>,
    #[serde(serialize_with = "seconds")]
    pub first_response_p90: Option<Duration>,
    /// From the first message to the (last) resolution.
    #[serde(serialize_with = "seconds")]
    pub resolution_p50: Option<Duration>,
    #[serde(serialize_with = "seconds")]
    pub resolution_p90: Option<Duration>,
    pub csat_count: u32,
    pub csat_average: Option<f64>,
    /// Resolved conversations that were reopened at least once, of all resolved.
    pub reopen_rate: Option<f64>,
    /// Resolved by the bot, of all resolved.
    pub bot_resolution_rate: Option<f64>,
    pub sla_breaches: u32,
}

/// Durations in reports read as seconds.
fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// The figures of a period, overall, per team and per agent.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Report {
    pub overall: Stats,
    pub teams: BTreeMap<String, Stats>,
    /// By agent id.
    pub agents: BTreeMap<AgentId, Stats>,
    /// Conversations by channel.
    pub by_channel: BTreeMap<String, u32>,
    /// Conversations by the first intent the bot recognised (`none` without one).
    pub by_intent: BTreeMap<String, u32>,
    /// Conversations by the day they began (UTC, `YYYY-MM-DD`).
    pub per_day: BTreeMap<String, u32>,
}

/// Builds the report of these conversations.
pub fn build(facts: &[ConversationFacts]) -> Report {
    let mut report = Report {
        overall: stats(facts.iter()),
        ..Report::default()
    };
    let mut teams: BTreeMap<&str, Vec<&ConversationFacts>> = BTreeMap::new();
    let mut agents: BTreeMap<AgentId, Vec<&ConversationFacts>> = BTreeMap::new();
    for f in facts {
        *report.by_channel.entry(f.channel.to_string()).or_default() += 1;
        let intent = f.intent.clone().unwrap_or_else(|| "none".into());
        *report.by_intent.entry(intent).or_default() += 1;
        let day: String = f.created_at.to_rfc3339().chars().take(10).collect();
        *report.per_day.entry(day).or_default() += 1;
        if let Some(team) = f.team.as_deref() {
            teams.entry(team).or_default().push(f);
        }
        if let Some(agent) = f.assignee {
            agents.entry(agent).or_default().push(f);
        }
    }
    report.teams = teams
        .into_iter()
        .map(|(team, group)| (team.to_owned(), stats(group.into_iter())))
        .collect();
    report.agents = agents
        .into_iter()
        .map(|(agent, group)| (agent, stats(group.into_iter())))
        .collect();
    // A rating counts for the agent who had the conversation when it was resolved,
    // not for whoever holds it now.
    let mut ratings: BTreeMap<AgentId, Vec<f64>> = BTreeMap::new();
    for f in facts {
        if let (Some(agent), Some(r)) = (f.rated_agent, f.rating) {
            ratings.entry(agent).or_default().push(f64::from(r));
        }
    }
    for s in report.agents.values_mut() {
        s.csat_count = 0;
        s.csat_average = None;
    }
    for (agent, rs) in ratings {
        let s = report.agents.entry(agent).or_default();
        (s.csat_count, s.csat_average) = average(&rs);
    }
    report
}

/// How many, and their mean.
fn average(values: &[f64]) -> (u32, Option<f64>) {
    let n = u32::try_from(values.len()).unwrap_or(u32::MAX);
    let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    (n, mean)
}

fn stats<'a>(facts: impl Iterator<Item = &'a ConversationFacts>) -> Stats {
    let mut s = Stats::default();
    let mut first_responses = Vec::new();
    let mut resolutions = Vec::new();
    let mut ratings = Vec::new();
    let mut reopened = 0u32;
    for f in facts {
        s.conversations += 1;
        if f.queued_at.is_some() {
            s.handed_off += 1;
        }
        // An agent who answered while the bot still had it did not keep anyone waiting
        // in the queue; that reply is not a queue wait.
        if let (Some(queued), Some(first)) = (f.queued_at, f.first_response_at)
            && first >= queued
        {
            first_responses.push(first.since(queued));
        }
        if f.status == Status::Resolved {
            s.resolved += 1;
            if f.queued_at.is_none() {
                s.resolved_by_bot += 1;
            }
            if f.reopened > 0 {
                reopened += 1;
            }
            if let Some(at) = f.resolved_at {
                resolutions.push(at.since(f.created_at));
            }
        }
        if let Some(r) = f.rating {
            ratings.push(f64::from(r));
        }
        s.sla_breaches += u32::from(f.first_response_breached) + u32::from(f.resolution_breached);
    }
    s.first_response_p50 = percentile(&mut first_responses, 50);
    s.first_response_p90 = percentile(&mut first_responses, 90);
    s.resolution_p50 = percentile(&mut resolutions, 50);
    s.resolution_p90 = percentile(&mut resolutions, 90);
    (s.csat_count, s.csat_average) = average(&ratings);
    let rate = |n: u32, of: u32| (of > 0).then(|| f64::from(n) / f64::from(of));
    s.reopen_rate = rate(reopened, s.resolved);
    s.bot_resolution_rate = rate(s.resolved_by_bot, s.resolved);
    s
}

/// The nearest-rank percentile (`p` in 1..=100) of `values`, sorting them.
pub fn percentile(values: &mut [Duration], p: usize) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (p.clamp(1, 100) * values.len()).div_ceil(100);
    values.get(rank.saturating_sub(1)).copied()
}

/// The median (nearest rank).
pub fn median(values: &mut [Duration]) -> Option<Duration> {
    percentile(values, 50)
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::{ChannelKind, ConversationId, Priority, Timestamp};

    fn fact(id: i64, team: &str, agent: Option<i64>) -> ConversationFacts {
        ConversationFacts {
            id: ConversationId(id),
            channel: ChannelKind::Webchat,
            team: Some(team.into()),
            assignee: agent.map(AgentId),
            priority: Priority::Normal,
            status: Status::Resolved,
            created_at: Timestamp::from_micros(0),
            queued_at: Some(Timestamp::from_micros(0)),
            first_response_at: Some(Timestamp::from_micros(60_000_000)),
            resolved_at: Some(Timestamp::from_micros(600_000_000)),
            reopened: 0,
            first_response_breached: false,
            resolution_breached: false,
            rating: Some(5),
            rated_agent: agent.map(AgentId),
            intent: Some("transfer_pending".into()),
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<Duration> = (1..=10).map(Duration::from_secs).collect();
        assert_eq!(percentile(&mut v, 50), Some(Duration::from_secs(5)));
        assert_eq!(percentile(&mut v, 90), Some(Duration::from_secs(9)));
        assert_eq!(percentile(&mut [], 50), None);
    }

    #[test]
    fn the_report_splits_by_team_and_agent_and_counts_bot_resolutions() {
        let mut bot = fact(3, "support", None);
        bot.queued_at = None;
        bot.first_response_at = None;
        bot.rating = None;
        let mut reopened = fact(2, "security", Some(7));
        reopened.reopened = 1;
        reopened.rating = Some(2);
        let r = build(&[fact(1, "support", Some(7)), reopened, bot]);
        assert_eq!(r.overall.conversations, 3);
        assert_eq!(r.overall.bot_resolution_rate, Some(1.0 / 3.0));
        assert_eq!(r.agents[&AgentId(7)].csat_average, Some(3.5));
        assert_eq!(r.agents[&AgentId(7)].reopen_rate, Some(0.5));
        assert_eq!(
            r.teams["support"].first_response_p50,
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            r.teams["security"].resolution_p50,
            Some(Duration::from_secs(600))
        );
    }
}
