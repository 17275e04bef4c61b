//! Process managers: events in, commands on other aggregates out. Cross-aggregate work (a
//! level-up grants gold; a PvP hit damages the victim, a kill rewards the killer) is never a
//! multi-aggregate transaction: a process manager reacts to the event after it is stored,
//! exactly once per step.
//!
//! - Durable: fed by a feed with its own checkpoint (its Kafka consumer group in the distributed
//!   mode, a named checkpoint in the embedded event store), which moves only after the batch's
//!   commands are stored.
//! - Idempotent: each step's command carries an idempotency key derived from the causing event's
//!   id and the step's index, so a redelivered or replayed event (a killed runner, a rebalance)
//!   returns the first answer and appends nothing.
//! - Traceable: the commands' events carry the causing event's id as their causation id, and its
//!   correlation id (or, without one, its event id) as their correlation id.
//! - A command a rule refuses is final for that step: the event goes to the dead letters with the
//!   rule's code, and a metric counts it; an unavailable store retries the whole batch.

mod combat;
mod rewards;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use chaos_domain::{GameAggregate, RuleError};
use chaos_eventstore::{CommandContext, CommandError, CommandService};
use chaos_platform::telemetry;
use chaos_readmodel::{StoreError, Verdict};
use chaos_schemas::PublishedEvent;
use prometheus::{IntCounterVec, Opts, Registry};
use tracing::Instrument;

pub use combat::Combat;
pub use rewards::Rewards;

use crate::runner::{FeedOffset, ProjectionSink};

/// How one step ended.
#[derive(Debug)]
pub enum StepOutcome {
    /// Stored (or already stored: a replay).
    Done { replayed: bool },
    /// A rule refused it: `code` is the rule's problem code.
    Refused { code: &'static str, detail: String },
    /// The store is unavailable: retry later.
    Unavailable(String),
}

type Run = Box<
    dyn FnOnce(CommandService, CommandContext) -> Pin<Box<dyn Future<Output = StepOutcome> + Send>>
        + Send,
>;

/// One command a process manager sends.
pub struct Step {
    /// For logs: `wallet <id> Grant`.
    pub label: String,
    run: Run,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step").field("label", &self.label).finish()
    }
}

impl Step {
    /// `command` on aggregate `id` of type `A`.
    pub fn command<A>(id: impl Into<String>, command: A::Command) -> Self
    where
        A: GameAggregate + Send + Sync,
        A::Command: Clone + Send + std::fmt::Debug + 'static,
    {
        let id = id.into();
        let label = format!("{} {id} {:?}", A::TYPE, command)
            .chars()
            .take(120)
            .collect();
        Self {
            label,
            run: Box::new(move |service: CommandService, context: CommandContext| {
                Box::pin(async move {
                    match service.execute::<A>(&id, command, &context).await {
                        Ok(outcome) => StepOutcome::Done {
                            replayed: outcome.replayed,
                        },
                        Err(CommandError::Rule(e)) => StepOutcome::Refused {
                            code: e.code(),
                            detail: e.to_string(),
                        },
                        Err(CommandError::Store(e)) => StepOutcome::Unavailable(e.to_string()),
                        Err(e @ CommandError::Conflict) => StepOutcome::Unavailable(e.to_string()),
                        Err(e @ CommandError::Taken { .. })
                        | Err(e @ CommandError::IdempotencyKeyReused) => StepOutcome::Refused {
                            code: "refused",
                            detail: e.to_string(),
                        },
                    }
                })
            }),
        }
    }
}

/// A process manager (see the module documentation).
pub trait ProcessManager: Send + Sync + std::fmt::Debug + 'static {
    /// Persisted: names its consumer group, its checkpoint and its idempotency keys. Never change.
    fn name(&self) -> &'static str;

    /// The aggregate types it reacts to.
    fn sources(&self) -> &'static [&'static str];

    /// The event types (of those aggregates) it may react to: the feeds skip the others
    /// without decoding them. [`Self::react`] still decides for these.
    fn event_types(&self) -> &'static [&'static str];

    /// The commands `event` calls for, in order. Pure: decisions belong to the aggregates.
    fn react(&self, event: &PublishedEvent) -> Vec<Step>;
}

/// Every process manager. Registering one is one line here.
pub fn all() -> Vec<Arc<dyn ProcessManager>> {
    vec![Arc::new(Rewards), Arc::new(Combat)]
}

/// `chaos_process_manager_commands_total{manager, outcome}`: stored, replayed, refused, retried.
#[derive(Debug, Clone)]
pub struct ProcessMetrics {
    pub commands: IntCounterVec,
}

impl ProcessMetrics {
    pub fn new(registry: &Registry) -> Self {
        let commands = IntCounterVec::new(
            Opts::new(
                "chaos_process_manager_commands_total",
                "Commands sent by process managers, by outcome (stored, replayed, refused, retried)",
            ),
            &["manager", "outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(commands.clone()))
            .expect("metric registered twice");
        for manager in all() {
            for outcome in ["stored", "replayed", "refused", "retried"] {
                commands.with_label_values(&[manager.name(), outcome]);
            }
        }
        Self { commands }
    }
}

/// Runs a process manager as a feed's sink: the Kafka runner or the store feed calls it with
/// batches and moves its checkpoint only after it returns.
#[derive(Debug, Clone)]
pub struct ProcessSink {
    manager: Arc<dyn ProcessManager>,
    commands: CommandService,
    metrics: ProcessMetrics,
}

impl ProcessSink {
    pub fn new(
        manager: Arc<dyn ProcessManager>,
        commands: CommandService,
        metrics: ProcessMetrics,
    ) -> Self {
        Self {
            manager,
            commands,
            metrics,
        }
    }

    pub fn manager(&self) -> &Arc<dyn ProcessManager> {
        &self.manager
    }

    /// The context of step `index` caused by `event`.
    pub fn context(&self, event: &PublishedEvent, index: usize) -> CommandContext {
        let e = &event.envelope;
        // Deterministic: the same event and step always give the same key. Do not change.
        let key = format!("pm:{}:{}:{index}", self.manager.name(), e.event_id);
        CommandContext {
            account: None,
            idempotency_key: Some(key.clone()),
            request_hash: Some(key),
            correlation_id: Some(
                e.correlation_id
                    .clone()
                    .unwrap_or_else(|| e.event_id.to_string()),
            ),
            causation_id: Some(e.event_id.to_string()),
            traceparent: e.traceparent.clone(),
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .commands
            .with_label_values(&[self.manager.name(), outcome])
            .inc();
    }
}

#[async_trait]
impl ProjectionSink for ProcessSink {
    fn name(&self) -> &str {
        self.manager.name()
    }

    fn wants(&self, aggregate_type: &str, event_type: &str) -> bool {
        self.manager.sources().contains(&aggregate_type)
            && self.manager.event_types().contains(&event_type)
    }

    fn filters(&self) -> bool {
        true
    }

    async fn apply_batch(
        &self,
        events: &[PublishedEvent],
        _checkpoint: &[FeedOffset],
    ) -> Result<Vec<Verdict>, StoreError> {
        let mut verdicts = Vec::with_capacity(events.len());
        for event in events {
            if !self.wants(&event.envelope.aggregate_type, &event.envelope.event_type) {
                verdicts.push(Verdict::Ignored);
                continue;
            }
            let steps = self.manager.react(event);
            if steps.is_empty() {
                verdicts.push(Verdict::Ignored);
                continue;
            }
            let mut verdict = Verdict::Duplicate;
            for (index, step) in steps.into_iter().enumerate() {
                let label = step.label.clone();
                let mut context = self.context(event, index);
                // The command this step sends goes on the causing command's trace.
                let span = if telemetry::exporting()
                    && telemetry::sampled(event.envelope.traceparent.as_deref())
                {
                    let span = tracing::info_span!(
                        "process.step",
                        otel.name = %format!("{} step", self.manager.name()),
                        manager = self.manager.name(),
                        step = %label,
                    );
                    telemetry::follow(&span, event.envelope.traceparent.as_deref());
                    if let Some(traceparent) = telemetry::traceparent(&span) {
                        context.traceparent = Some(traceparent);
                    }
                    span
                } else {
                    tracing::Span::none()
                };
                match (step.run)(self.commands.clone(), context)
                    .instrument(span)
                    .await
                {
                    StepOutcome::Done { replayed: true } => self.count("replayed"),
                    StepOutcome::Done { replayed: false } => {
                        self.count("stored");
                        verdict = Verdict::Applied;
                    }
                    StepOutcome::Refused { code, detail } => {
                        self.count("refused");
                        tracing::warn!(manager = self.manager.name(), step = %label, code, detail, "a process step was refused");
                        verdict =
                            Verdict::DeadLetter(format!("{label}: refused ({code}): {detail}"));
                    }
                    StepOutcome::Unavailable(detail) => {
                        self.count("retried");
                        // The whole batch is retried: the steps already done replay harmlessly.
                        return Err(StoreError::message(format!("{label}: {detail}")));
                    }
                }
            }
            verdicts.push(verdict);
        }
        Ok(verdicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A misspelt event type would silently turn a process manager off: the feeds skip what it
    /// does not list.
    #[test]
    fn every_manager_names_registered_event_types() {
        for manager in all() {
            for source in manager.sources() {
                let aggregate = chaos_schemas::registry::aggregate(source)
                    .unwrap_or_else(|| panic!("{}: unknown aggregate {source}", manager.name()));
                for event_type in manager.event_types() {
                    assert!(
                        aggregate.events.iter().any(|e| e.name == *event_type),
                        "{}: {source} has no event type {event_type}",
                        manager.name()
                    );
                }
            }
            assert!(!manager.event_types().is_empty(), "{}", manager.name());
        }
    }
}
