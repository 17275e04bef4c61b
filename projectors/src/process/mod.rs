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
//! - Steps on different aggregates run at once (up to [`CONCURRENT_TARGETS`]), so their commands
//!   share the store's group commit; the steps on one aggregate run one after another, in the
//!   order of their events (decision 51).

mod combat;
mod rewards;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use chaos_domain::{GameAggregate, RuleError};
use chaos_eventstore::{CommandContext, CommandError, CommandService};
use chaos_platform::telemetry;
use chaos_readmodel::{StoreError, Verdict};
use chaos_schemas::PublishedEvent;
use futures::StreamExt;
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
    /// The aggregate it commands, `<type>/<id>`: steps on one aggregate keep their order.
    target: String,
    run: Run,
}

/// How many aggregates' steps of one batch run at once. Each step waits for its command's
/// commit; run one by one, a batch of level-ups paid a WAL flush per grant, at once they share
/// group-commit batches (decision 51: the process managers' flushes fell from 186 to 67 a
/// second under the contended cast load). Bounded: one large batch keeps at most this many
/// commands, and their aggregates' loads from the store, in flight.
pub const CONCURRENT_TARGETS: usize = 64;

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
            target: format!("{}/{id}", A::TYPE),
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
        // Each event's steps, queued per target aggregate in the events' order.
        let mut verdicts = Vec::with_capacity(events.len());
        let mut queues: Vec<Vec<Queued>> = Vec::new();
        let mut queue_of: HashMap<String, usize> = HashMap::new();
        for (at, event) in events.iter().enumerate() {
            let steps = if self.wants(&event.envelope.aggregate_type, &event.envelope.event_type) {
                self.manager.react(event)
            } else {
                Vec::new()
            };
            // An event whose steps were all stored before (a replay) is a duplicate.
            verdicts.push(if steps.is_empty() {
                Verdict::Ignored
            } else {
                Verdict::Duplicate
            });
            for (index, step) in steps.into_iter().enumerate() {
                let queue = *queue_of.entry(step.target.clone()).or_insert_with(|| {
                    queues.push(Vec::new());
                    queues.len() - 1
                });
                queues[queue].push(Queued {
                    event: at,
                    index,
                    step,
                });
            }
        }
        let done: Vec<Vec<Done>> = futures::stream::iter(queues)
            .map(|queue| self.run_queue(events, queue))
            .buffer_unordered(CONCURRENT_TARGETS)
            .collect()
            .await;
        let mut unavailable = None;
        for Done {
            event,
            label,
            outcome,
        } in done.into_iter().flatten()
        {
            let verdict = match outcome {
                StepOutcome::Done { replayed: true } => {
                    self.count("replayed");
                    Verdict::Duplicate
                }
                StepOutcome::Done { replayed: false } => {
                    self.count("stored");
                    Verdict::Applied
                }
                StepOutcome::Refused { code, detail } => {
                    self.count("refused");
                    tracing::warn!(manager = self.manager.name(), step = %label, code, detail, "a process step was refused");
                    Verdict::DeadLetter(format!("{label}: refused ({code}): {detail}"))
                }
                StepOutcome::Unavailable(detail) => {
                    self.count("retried");
                    unavailable.get_or_insert(format!("{label}: {detail}"));
                    continue;
                }
            };
            verdicts[event] =
                std::mem::replace(&mut verdicts[event], Verdict::Ignored).merge(verdict);
        }
        match unavailable {
            // The whole batch is retried: the steps already done replay harmlessly.
            Some(detail) => Err(StoreError::message(detail)),
            None => Ok(verdicts),
        }
    }
}

/// A step waiting in its aggregate's queue: `index` is its place among its event's steps.
struct Queued {
    event: usize,
    index: usize,
    step: Step,
}

/// How a step of the event at `event` (its index in the batch) ended.
struct Done {
    event: usize,
    label: String,
    outcome: StepOutcome,
}

impl ProcessSink {
    /// Runs one aggregate's steps in order. Stops at the first the store could not take: a
    /// later step must not be stored before an earlier one (the batch is retried).
    async fn run_queue(&self, events: &[PublishedEvent], queue: Vec<Queued>) -> Vec<Done> {
        let mut done = Vec::with_capacity(queue.len());
        for Queued { event, index, step } in queue {
            let label = step.label.clone();
            let outcome = self.run_step(&events[event], index, step).await;
            let stop = matches!(outcome, StepOutcome::Unavailable(_));
            done.push(Done {
                event,
                label,
                outcome,
            });
            if stop {
                break;
            }
        }
        done
    }

    /// Sends step `index` of `event`, on the causing command's trace when it is sampled.
    async fn run_step(&self, event: &PublishedEvent, index: usize, step: Step) -> StepOutcome {
        let mut context = self.context(event, index);
        let span = if telemetry::exporting()
            && telemetry::sampled(event.envelope.traceparent.as_deref())
        {
            let span = tracing::info_span!(
                "process.step",
                otel.name = %format!("{} step", self.manager.name()),
                manager = self.manager.name(),
                step = %step.label,
            );
            telemetry::follow(&span, event.envelope.traceparent.as_deref());
            if let Some(traceparent) = telemetry::traceparent(&span) {
                context.traceparent = Some(traceparent);
            }
            span
        } else {
            tracing::Span::none()
        };
        (step.run)(self.commands.clone(), context)
            .instrument(span)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use chaos_domain::{
        AccountId, CharacterEvent, CharacterId, CharacterName, Content, Currency, GameEvent, Wallet,
    };
    use chaos_eventstore::command::{CommandMetrics, CommandSettings};
    use chaos_eventstore::repository::Repository;
    use chaos_eventstore::snapshot::SnapshotMetrics;
    use chaos_eventstore::sqlite::SqliteEventRepository;
    use chaos_eventstore::testing::{fresh_sqlite, TempDir};
    use chaos_schemas::{AnyEvent, EventEnvelope};
    use uuid::Uuid;

    use super::*;

    impl Step {
        /// A step that runs `run` instead of a command, on aggregate `target`.
        fn scripted(
            target: &str,
            run: impl FnOnce() -> Pin<Box<dyn Future<Output = StepOutcome> + Send>> + Send + 'static,
        ) -> Self {
            Self {
                label: format!("scripted {target}"),
                target: target.to_owned(),
                run: Box::new(move |_, _| run()),
            }
        }
    }

    async fn service() -> (CommandService, TempDir) {
        let (pool, dir) = fresh_sqlite().await;
        let registry = Registry::new();
        let service = CommandService::new(
            Repository::sqlite(SqliteEventRepository::new(pool)),
            chaos_platform::game::game_services(Content::builtin().unwrap()),
            CommandSettings::default(),
            CommandMetrics::new(&registry),
            SnapshotMetrics::new(&registry),
        );
        (service, dir)
    }

    fn sink(manager: impl ProcessManager, commands: CommandService) -> ProcessSink {
        ProcessSink::new(
            Arc::new(manager),
            commands,
            ProcessMetrics::new(&Registry::new()),
        )
    }

    fn character(n: u128) -> CharacterId {
        CharacterId::from_uuid(Uuid::from_u128(n))
    }

    /// `event`, stored at `sequence` of character `id`.
    fn published(id: CharacterId, sequence: u64, event: CharacterEvent) -> PublishedEvent {
        PublishedEvent {
            envelope: EventEnvelope {
                event_id: chaos_eventstore::publish::event_id(
                    chaos_domain::character::AGGREGATE_TYPE,
                    &id.to_string(),
                    i64::try_from(sequence).unwrap(),
                ),
                event_type: event.type_name().to_owned(),
                aggregate_type: chaos_domain::character::AGGREGATE_TYPE.to_owned(),
                aggregate_id: id.to_string(),
                sequence,
                global_position: 0,
                occurred_at: event.occurred_at(),
                correlation_id: None,
                causation_id: None,
                traceparent: None,
            },
            event: AnyEvent::Character(event),
        }
    }

    fn leveled_up(level: u8, gold_reward: u64) -> CharacterEvent {
        CharacterEvent::LeveledUp {
            level,
            max_hp: 100,
            max_mana: 50,
            skills_unlocked: Vec::new(),
            gold_reward,
            leveled_at: chrono::Utc::now(),
        }
    }

    /// Reacts to every `LeveledUp` with the steps `script` gives for the character (its
    /// aggregate id) and the event's place in the batch (its sequence).
    type React = Box<dyn Fn(&str, u64) -> Vec<Step> + Send + Sync>;

    struct Scripted(React);

    impl std::fmt::Debug for Scripted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Scripted")
        }
    }

    type Script =
        Arc<dyn Fn(String, u64) -> Pin<Box<dyn Future<Output = StepOutcome> + Send>> + Send + Sync>;

    /// A sink whose manager sends one step per event, on the event's character: `step` runs
    /// with the character's id and the event's sequence.
    async fn one_step_per_event(step: Script) -> (ProcessSink, TempDir) {
        let (commands, dir) = service().await;
        let manager = Scripted(Box::new(move |target, at| {
            let step = step.clone();
            let id = target.to_owned();
            vec![Step::scripted(target, move || step(id, at))]
        }));
        (sink(manager, commands), dir)
    }

    impl ProcessManager for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn sources(&self) -> &'static [&'static str] {
            &[chaos_domain::character::AGGREGATE_TYPE]
        }
        fn event_types(&self) -> &'static [&'static str] {
            &["LeveledUp"]
        }
        fn react(&self, event: &PublishedEvent) -> Vec<Step> {
            (self.0)(&event.envelope.aggregate_id, event.envelope.sequence)
        }
    }

    /// Events on characters 1, 2, 1, 3, 2, 1 (sequences 0 to 5): each calls for one step on its
    /// character.
    fn interleaved() -> Vec<PublishedEvent> {
        [1, 2, 1, 3, 2, 1]
            .into_iter()
            .enumerate()
            .map(|(at, n)| published(character(n), at as u64, leveled_up(2, 0)))
            .collect()
    }

    /// The steps each character ran, by the sequence of the event that called for them.
    type Ran = Arc<Mutex<Vec<(String, u64)>>>;

    fn ran_on(ran: &Ran, n: u128) -> Vec<u64> {
        let target = character(n).to_string();
        let ran = ran.lock().unwrap();
        ran.iter()
            .filter(|(t, _)| *t == target)
            .map(|(_, at)| *at)
            .collect()
    }

    /// Steps on three characters in one batch: the first step of each waits until all three
    /// have started, which only steps run at once get past (one at a time, the first would wait
    /// for ever and the batch time out). Each character's steps still run in its events' order.
    #[tokio::test]
    async fn steps_on_different_aggregates_run_at_once_in_order_per_aggregate() {
        let ran = Ran::default();
        let all_started = Arc::new(tokio::sync::Barrier::new(3));
        let (sink, _dir) = one_step_per_event({
            let ran = ran.clone();
            Arc::new(move |target, at| {
                let (ran, all_started) = (ran.clone(), all_started.clone());
                Box::pin(async move {
                    let first = {
                        let mut ran = ran.lock().unwrap();
                        let first = !ran.iter().any(|(t, _)| *t == target);
                        ran.push((target, at));
                        first
                    };
                    if first {
                        all_started.wait().await;
                    }
                    StepOutcome::Done { replayed: false }
                })
            })
        })
        .await;

        let verdicts = tokio::time::timeout(
            Duration::from_secs(10),
            sink.apply_batch(&interleaved(), &[]),
        )
        .await
        .expect("the three characters' first steps ran at once")
        .unwrap();

        assert!(
            verdicts.iter().all(|v| matches!(v, Verdict::Applied)),
            "{verdicts:?}"
        );
        assert_eq!(ran_on(&ran, 1), [0, 2, 5]);
        assert_eq!(ran_on(&ran, 2), [1, 4]);
        assert_eq!(ran_on(&ran, 3), [3]);
    }

    /// A step the store cannot take stops its aggregate's later steps (they must not be stored
    /// before it) and fails the batch, to be retried whole; the other aggregates' steps run.
    #[tokio::test]
    async fn an_unavailable_store_stops_only_that_aggregates_later_steps() {
        let ran = Ran::default();
        let (sink, _dir) = one_step_per_event({
            let ran = ran.clone();
            Arc::new(move |target, at| {
                ran.lock().unwrap().push((target, at));
                Box::pin(async move {
                    if at == 2 {
                        StepOutcome::Unavailable("the store is down".into())
                    } else {
                        StepOutcome::Done { replayed: false }
                    }
                })
            })
        })
        .await;

        let failed = sink.apply_batch(&interleaved(), &[]).await;

        assert!(failed.is_err(), "{failed:?}");
        assert_eq!(
            ran_on(&ran, 1),
            [0, 2],
            "character 1's step at 5 waits for the retry"
        );
        assert_eq!(ran_on(&ran, 2), [1, 4]);
        assert_eq!(ran_on(&ran, 3), [3]);
    }

    /// An event whose steps were refused and stored both goes to the dead letters: the refusal
    /// is not lost behind the step that was stored.
    #[tokio::test]
    async fn a_refused_step_dead_letters_its_event_whatever_its_other_steps_did() {
        let (commands, _dir) = service().await;
        let sink = sink(
            Scripted(Box::new(|target, _| {
                vec![
                    Step::scripted(target, || {
                        Box::pin(async {
                            StepOutcome::Refused {
                                code: "wallet-closed",
                                detail: "no wallet".into(),
                            }
                        })
                    }),
                    Step::scripted(&format!("{target}-other"), || {
                        Box::pin(async { StepOutcome::Done { replayed: false } })
                    }),
                ]
            })),
            commands,
        );

        let verdicts = sink
            .apply_batch(&[published(character(1), 1, leveled_up(2, 0))], &[])
            .await
            .unwrap();

        assert!(
            matches!(&verdicts[..], [Verdict::DeadLetter(reason)] if reason.contains("wallet-closed")),
            "{verdicts:?}"
        );
    }

    /// The rewards manager over a real store, one batch: characters created, then levelled up
    /// (one of them twice). Each wallet opens before its grants (a grant to an unopened wallet is
    /// refused, so a step run out of order would dead-letter), every level grants once, and the
    /// same batch again (a redelivery) grants nothing more.
    #[tokio::test]
    async fn rewards_open_each_wallet_before_its_grants_and_grant_once_per_level() {
        let (commands, _dir) = service().await;
        let sink = sink(Rewards, commands.clone());
        let created = |n: u128| CharacterEvent::CharacterCreated {
            owner: AccountId::from_uuid(Uuid::from_u128(n)),
            name: CharacterName::parse(&format!("Hero{n}")).unwrap(),
            class: "warrior".into(),
            level: 1,
            max_hp: 100,
            max_mana: 50,
            zone: "starter".into(),
            skills: Vec::new(),
            created_at: chrono::Utc::now(),
        };
        let mut batch: Vec<_> = (1..=4)
            .map(|n| published(character(n), 1, created(n)))
            .collect();
        batch.extend((1..=4).map(|n| published(character(n), 2, leveled_up(2, 10))));
        batch.push(published(character(1), 3, leveled_up(3, 25)));

        let first = sink.apply_batch(&batch, &[]).await.unwrap();
        let again = sink.apply_batch(&batch, &[]).await.unwrap();

        assert!(
            first.iter().all(|v| matches!(v, Verdict::Applied)),
            "{first:?}"
        );
        assert!(
            again.iter().all(|v| matches!(v, Verdict::Duplicate)),
            "{again:?}"
        );
        for (n, gold, version) in [(1, 35, 3), (2, 10, 2), (3, 10, 2), (4, 10, 2)] {
            let (wallet, at) = commands
                .load_current::<Wallet>(&character(n).to_string())
                .await
                .unwrap();
            let balance = wallet.state().map(|w| w.balance(Currency::Gold));
            assert_eq!((balance, at), (Some(gold), version), "character {n}");
        }
    }

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
