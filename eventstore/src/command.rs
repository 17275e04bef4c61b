//! Command handling for every aggregate: one service, generic per call over
//! [`GameAggregate`]. Per command: wait for the aggregate's turn, answer a repeated idempotency
//! key with the first answer, load (cache, else snapshot + the events after it), decide, reserve
//! the values the events claim, append with the expected version (group-committed), update the
//! cache and maybe queue a snapshot. A conflict (another writer appended first) brings the cached
//! state up to date with the winner's events (one read of the few events after it, not a reload
//! from the snapshot) and decides again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_domain::{
    decode_stored, decode_stored_json, AccountId, GameAggregate, GameEvent, GameServices,
};
use chaos_schemas::ConsistencyToken;
use chrono::SecondsFormat;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use cqrs_es::DomainEvent;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::cache::AggregateCache;
use crate::group_commit::Row;
use crate::locks::KeyedLocks;
use crate::pg::{
    META_ACCOUNT_ID, META_CAUSATION_ID, META_CORRELATION_ID, META_IDEMPOTENCY_KEY,
    META_OCCURRED_AT, META_REQUEST_HASH, META_TRACEPARENT,
};
use crate::repository::Repository;
use crate::reservations::{ReservationRequest, ABANDONED_AFTER};
use crate::snapshot::{SnapshotMetrics, SnapshotPolicy, SnapshotWriter};
use crate::watch::{StoreWatch, WatchMetrics};
use crate::StoredEvent;

/// A failure of the event store, as the command side sees it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else appended first: reload and decide again.
    #[error("concurrent modification")]
    Conflict,
    #[error("event store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store did not answer in time. An append that timed out may still commit: a retry
    /// with the same Idempotency-Key then finds it.
    #[error("event store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("stored events cannot be read: {0}")]
    Corrupt(String),
}

impl From<crate::Error> for StoreError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Corrupt(m) => Self::Corrupt(m),
            other => Self::Unavailable(Box::new(other)),
        }
    }
}

impl From<PersistenceError> for StoreError {
    fn from(e: PersistenceError) -> Self {
        match e {
            PersistenceError::OptimisticLockError => Self::Conflict,
            PersistenceError::DeserializationError(e) => Self::Corrupt(e.to_string()),
            PersistenceError::ConnectionError(e) | PersistenceError::UnknownError(e) => {
                Self::Unavailable(e)
            }
        }
    }
}

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// A game rule refused it.
    #[error(transparent)]
    Rule(E),
    #[error("the idempotency key was used with a different request")]
    IdempotencyKeyReused,
    /// The aggregate kept changing under the command (other instances kept winning).
    #[error("the aggregate kept changing under the command")]
    Conflict,
    /// A value the command claims game-wide belongs to another aggregate.
    #[error("{scope} {value} is taken")]
    Taken { scope: &'static str, value: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who is asking, and the request's tracing context, recorded as event metadata.
#[derive(Debug, Clone, Default)]
pub struct CommandContext {
    /// The authenticated account; `None` for the game itself (process managers).
    pub account: Option<AccountId>,
    /// The client's `Idempotency-Key` (or a process manager's derived key), unscoped.
    pub idempotency_key: Option<String>,
    /// Hash of the request (route + body): a replayed key with another request is refused.
    pub request_hash: Option<String>,
    pub correlation_id: Option<String>,
    /// The event (id) or request that caused this command.
    pub causation_id: Option<String>,
    pub traceparent: Option<String>,
}

impl CommandContext {
    /// `<account>:<key>`: scoping keys by account keeps clients from colliding.
    pub fn scoped_key(&self) -> Option<String> {
        let account = self.account.map(|a| a.to_string()).unwrap_or_default();
        self.idempotency_key
            .as_ref()
            .map(|k| format!("{account}:{k}"))
    }
}

/// A command's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommandOutcome {
    pub aggregate_id: String,
    /// The sequence of the last event the command appended (the aggregate's version after it).
    pub sequence: u64,
    /// The types of the events appended, in order.
    pub events: Vec<String>,
    /// Send back as `Consistency-Token` on a query to read at least this state.
    pub consistency_token: String,
    /// True when this answer is the replay of an earlier identical request.
    #[serde(skip)]
    pub replayed: bool,
}

impl CommandOutcome {
    fn new(
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: u64,
        events: Vec<String>,
        replayed: bool,
    ) -> Self {
        let token = ConsistencyToken {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            sequence,
        };
        Self {
            aggregate_id: aggregate_id.to_owned(),
            sequence,
            events,
            consistency_token: token.to_string(),
            replayed,
        }
    }

    fn from_stored(events: &[StoredEvent]) -> Option<Self> {
        let last = events.last()?;
        let types = events.iter().map(|e| e.event_type.clone()).collect();
        let sequence = u64::try_from(last.sequence).ok()?;
        Some(Self::new(
            &last.aggregate_type,
            &last.aggregate_id,
            sequence,
            types,
            true,
        ))
    }
}

/// How the command service behaves.
#[derive(Debug, Clone, Copy)]
pub struct CommandSettings {
    /// Aggregates kept in memory; 0 disables the cache.
    pub cache_capacity: usize,
    pub snapshots: SnapshotPolicy,
    /// Longest wait for the store on one load or append before answering "unavailable".
    pub store_timeout: Duration,
    /// Rounds of deciding and appending, each after losing an optimistic-concurrency race to
    /// another process; between rounds a random pause, up to 1 ms after the first round and
    /// doubling to at most 32 ms (8 rounds wait at most about 0.1 s in all).
    pub conflict_retries: usize,
    /// How long an unused reservation blocks its value.
    pub abandoned_after: Duration,
    /// Bring every cached aggregate up to date with the store (one read of the events after
    /// the cached version) before deciding, instead of deciding on the cache and losing the
    /// append's race when another process wrote since. For a writer whose targets are mostly
    /// commanded by others (a process manager: a PvP victim is casting on the command API
    /// between two hits), where a stale decision costs a failed append in a shared group-commit
    /// batch (which the batch then writes again), a read for the prior answer and one for the
    /// catch-up, and the append again. Off for the command API, whose players' characters are
    /// mostly its own: there only an entry the store watch ([`crate::watch`]) found behind is
    /// brought up to date first.
    pub refresh_cached: bool,
}

impl Default for CommandSettings {
    fn default() -> Self {
        Self {
            cache_capacity: 100_000,
            snapshots: SnapshotPolicy::default(),
            store_timeout: Duration::from_secs(2),
            // A process manager may append to one aggregate many times in a row (a volley of
            // hits landing on a character that just died): three rounds without a pause lost
            // a respawn to such a burst in CI.
            conflict_retries: 8,
            abandoned_after: ABANDONED_AFTER,
            refresh_cached: false,
        }
    }
}

/// The pause after losing round `round` (from 1) to another process: random, up to 1 ms after
/// the first, doubling to at most 32 ms, so that two writers racing for one aggregate fall out
/// of step instead of colliding again (8 rounds wait at most about 0.1 s in all).
fn conflict_pause(round: usize) -> Duration {
    let cap_us = 1_000u64 << round.saturating_sub(1).min(5);
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    Duration::from_micros(random % (cap_us + 1))
}

/// `state` (at `version`) with `newer`, the stored events after it, applied in order.
fn fold_newer<A: GameAggregate>(
    id: &str,
    mut state: A,
    mut version: u64,
    newer: Vec<SerializedEvent>,
) -> Result<(A, u64), StoreError> {
    for stored in newer {
        let event = decode_stored::<A>(&stored.event_type, &stored.event_version, stored.payload)
            .map_err(|e| {
            StoreError::Corrupt(format!("{} {id}#{}: {e}", A::TYPE, stored.sequence))
        })?;
        state.apply(event);
        version = stored.sequence as u64;
    }
    Ok((state, version))
}

/// What operators watch of command handling.
#[derive(Debug, Clone)]
pub struct CommandMetrics {
    /// `chaos_events_appended_total{aggregate}`.
    pub appended: IntCounterVec,
    /// `chaos_aggregate_load_seconds{aggregate, source}`: `cache`, `store` (the newest snapshot
    /// and the events after it), `catch-up` (the cached state and the events another writer
    /// appended since, read after a lost race), or `refresh` (the same, read before deciding:
    /// [`CommandSettings::refresh_cached`]; the cache's own time counts as `cache` too).
    pub load_seconds: HistogramVec,
    /// `chaos_command_conflicts_total{aggregate}`: decisions redone after another instance won.
    pub conflicts: IntCounterVec,
}

impl CommandMetrics {
    pub fn new(registry: &Registry) -> Self {
        let m = Self::unregistered();
        for c in [
            Box::new(m.appended.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.load_seconds.clone()),
            Box::new(m.conflicts.clone()),
        ] {
            registry.register(c).expect("metric registered twice");
        }
        m
    }

    /// Metrics nobody scrapes (tools, tests).
    pub fn unregistered() -> Self {
        let appended = IntCounterVec::new(
            Opts::new(
                "chaos_events_appended_total",
                "Events appended to the event store",
            ),
            &["aggregate"],
        )
        .expect("valid metric");
        let load_seconds = HistogramVec::new(
            HistogramOpts::new(
                "chaos_aggregate_load_seconds",
                "Time to load an aggregate for a command, by source (cache, store, catch-up, refresh)",
            )
            .buckets(vec![
                0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
            ]),
            &["aggregate", "source"],
        )
        .expect("valid metric");
        let conflicts = IntCounterVec::new(
            Opts::new(
                "chaos_command_conflicts_total",
                "Commands decided again after another writer appended to their aggregate first",
            ),
            &["aggregate"],
        )
        .expect("valid metric");
        // Exported at 0 from the start, for every registered aggregate, so rate() sees the first.
        for aggregate in chaos_schemas::AGGREGATES {
            appended.with_label_values(&[aggregate.name]);
            conflicts.with_label_values(&[aggregate.name]);
        }
        Self {
            appended,
            load_seconds,
            conflicts,
        }
    }
}

struct Inner {
    repository: Repository,
    cache: AggregateCache,
    locks: KeyedLocks,
    services: GameServices,
    snapshots: SnapshotWriter,
    settings: CommandSettings,
    metrics: CommandMetrics,
}

/// See the module documentation. Cheap to clone.
#[derive(Clone)]
pub struct CommandService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CommandService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandService")
            .field("settings", &self.inner.settings)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

fn timed_out(timeout: Duration) -> StoreError {
    StoreError::Timeout(timeout)
}

impl CommandService {
    /// Must be called inside a Tokio runtime (it starts the snapshot writer).
    pub fn new(
        repository: Repository,
        services: GameServices,
        settings: CommandSettings,
        metrics: CommandMetrics,
        snapshot_metrics: SnapshotMetrics,
    ) -> Self {
        let snapshots = SnapshotWriter::spawn(repository.clone(), snapshot_metrics);
        Self {
            inner: Arc::new(Inner {
                cache: AggregateCache::new(settings.cache_capacity),
                locks: KeyedLocks::default(),
                repository,
                services,
                snapshots,
                settings,
                metrics,
            }),
        }
    }

    pub fn repository(&self) -> &Repository {
        &self.inner.repository
    }

    /// The aggregates this service holds in memory.
    pub fn cache(&self) -> &AggregateCache {
        &self.inner.cache
    }

    /// The store watch over this service's cache, reading at most every `interval`: for a
    /// shared PostgreSQL store; None for the embedded store, which one process writes, and
    /// without a cache (nothing to mark).
    pub fn store_watch(&self, interval: Duration, metrics: WatchMetrics) -> Option<StoreWatch> {
        if self.inner.settings.cache_capacity == 0 {
            return None;
        }
        match &self.inner.repository {
            Repository::Postgres { pool, .. } => Some(StoreWatch::new(
                pool.clone(),
                self.inner.cache.clone(),
                interval,
                metrics,
            )),
            Repository::Sqlite(_) => None,
        }
    }

    pub fn services(&self) -> &GameServices {
        &self.inner.services
    }

    /// Executes `command` against aggregate `id` of type `A`, exactly once per idempotency key.
    ///
    /// A keyed command is not looked up first: a fresh key (nearly every one) would cost a read
    /// per command. The command's first event carries its key under a unique index instead, so
    /// a repeated request cannot append twice; the earlier answer is looked up only when this
    /// attempt appends nothing — refused by a rule (a retried cast is on cooldown), by a taken
    /// name, or by the store (the key is taken: a conflict), or deciding no change.
    #[tracing::instrument(skip_all, fields(aggregate = A::TYPE, aggregate_id = %id))]
    pub async fn execute<A>(
        &self,
        id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<CommandOutcome, CommandError<A::Error>>
    where
        A: GameAggregate + Send + Sync,
        A::Command: Clone,
    {
        // Commands for one aggregate take turns: this instance never races itself.
        let _turn = self.inner.locks.lock(A::TYPE, id).await;
        let fresh = self.attempt::<A>(id, command, context).await;
        let appended_nothing = match &fresh {
            Ok(outcome) => outcome.events.is_empty(),
            Err(CommandError::Rule(_) | CommandError::Taken { .. } | CommandError::Conflict) => {
                true
            }
            Err(CommandError::IdempotencyKeyReused | CommandError::Store(_)) => false,
        };
        if appended_nothing {
            if let Some(prior) = self.prior_answer(context).await? {
                return Ok(prior);
            }
        }
        fresh
    }

    /// One attempt at `command`, deciding again after each lost optimistic-concurrency race.
    async fn attempt<A>(
        &self,
        id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<CommandOutcome, CommandError<A::Error>>
    where
        A: GameAggregate + Send + Sync,
        A::Command: Clone,
    {
        let inner = &self.inner;
        let base_metadata = metadata(context);
        let mut rechecked = false;
        let mut round = 0;
        while round < inner.settings.conflict_retries.max(1) {
            round += 1;
            let behind = inner.cache.behind(A::TYPE, id);
            let cached = behind.is_some();
            let (mut state, mut version) = self.load::<A>(id).await?;
            if round == 1 && (behind == Some(true) || (cached && inner.settings.refresh_cached)) {
                // Decided on the store's latest state: a refusal needs no recheck. (After a
                // lost race, the catch-up has refreshed the cache already.)
                rechecked = true;
                (state, version) = self.refresh::<A>(id, state, version).await?;
            }
            let now = inner.services.clock.now();
            let ctx = inner.services.ctx_at(now);
            let events = match state.decide(command.clone(), &ctx) {
                Ok(events) => events,
                // A refusal decided on cached state is checked against the store once: another
                // process (a process manager, another replica) may have changed the aggregate
                // since (a grant that makes a spend affordable). Acceptance needs no such
                // check: the append's optimistic concurrency catches stale state.
                Err(e) if cached && !rechecked => {
                    rechecked = true;
                    let started = Instant::now();
                    let newer = self.newer_events::<A>(id, version).await?;
                    if newer.is_empty() {
                        return Err(CommandError::Rule(e));
                    }
                    self.cache_newer::<A>(id, &state, version, newer, started, "catch-up");
                    tracing::debug!(
                        aggregate_id = id,
                        "refused on stale cached state; deciding again"
                    );
                    round -= 1;
                    continue;
                }
                Err(e) => return Err(CommandError::Rule(e)),
            };
            let types: Vec<String> = events.iter().map(|e| e.type_name().to_owned()).collect();
            if events.is_empty() {
                return Ok(CommandOutcome::new(A::TYPE, id, version, types, false));
            }
            let reservations = A::reservations(&events);
            for reservation in &reservations {
                let request = ReservationRequest {
                    scope: reservation.scope,
                    value: &reservation.value,
                    aggregate_type: A::TYPE,
                    aggregate_id: id,
                    abandoned_after: inner.settings.abandoned_after,
                };
                let reserved = self
                    .with_timeout(inner.repository.reserve(&request))
                    .await?
                    .map_err(StoreError::from)?;
                if !reserved {
                    return Err(CommandError::Taken {
                        scope: reservation.scope,
                        value: reservation.value.clone(),
                    });
                }
            }
            let mut metadata = base_metadata.clone();
            metadata.insert(
                META_OCCURRED_AT.into(),
                ctx.now.to_rfc3339_opts(SecondsFormat::Millis, true),
            );
            // Encoded straight to the text the store keeps: the metadata once for all the
            // events, each payload without a `serde_json::Value` in between.
            let metadata = serde_json::to_string(&metadata).unwrap_or_else(|_| "{}".into());
            let command_key = context.scoped_key();
            let rows = events
                .iter()
                .zip(version + 1..)
                .enumerate()
                .map(|(i, (event, sequence))| {
                    Ok(Row {
                        aggregate_type: A::TYPE.to_owned(),
                        aggregate_id: id.to_owned(),
                        sequence: i64::try_from(sequence)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        event_type: event.event_type(),
                        event_version: event.event_version(),
                        payload: chaos_domain::encode_stored_text(event),
                        metadata: metadata.clone(),
                        command_key: if i == 0 { command_key.clone() } else { None },
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let appended = self.with_timeout(inner.repository.append(rows)).await;
            match appended.map(|r| r.map_err(StoreError::from)) {
                Ok(Ok(())) => {
                    for reservation in &reservations {
                        let request = ReservationRequest {
                            scope: reservation.scope,
                            value: &reservation.value,
                            aggregate_type: A::TYPE,
                            aggregate_id: id,
                            abandoned_after: inner.settings.abandoned_after,
                        };
                        // Best effort: an unconfirmed reservation of an aggregate with events is
                        // never taken over either.
                        if let Err(e) = inner.repository.confirm_reservation(&request).await {
                            tracing::warn!(error = %e, "reservation not confirmed");
                        }
                    }
                    let last = version + events.len() as u64;
                    let mut next = (*state).clone();
                    for event in events {
                        next.apply(event);
                    }
                    let next = Arc::new(next);
                    if inner.settings.snapshots.due_after_append(version, last) {
                        inner.snapshots.offer(id, next.as_ref(), last);
                    }
                    inner.cache.put(id, next, last);
                    inner
                        .metrics
                        .appended
                        .with_label_values(&[A::TYPE])
                        .inc_by(types.len() as u64);
                    return Ok(CommandOutcome::new(A::TYPE, id, last, types, false));
                }
                Ok(Err(StoreError::Conflict)) => {
                    // This very request may have been appended before (its key is taken): a
                    // retry, or a concurrent one on another instance that won.
                    if let Some(prior) = self.prior_answer(context).await? {
                        inner.cache.evict(A::TYPE, id);
                        return Ok(prior);
                    }
                    self.catch_up::<A>(id, &state, version).await;
                    inner.metrics.conflicts.with_label_values(&[A::TYPE]).inc();
                    tracing::debug!("optimistic concurrency conflict, deciding again");
                    if round < inner.settings.conflict_retries {
                        tokio::time::sleep(conflict_pause(round)).await;
                    }
                }
                Ok(Err(e)) | Err(e) => {
                    // The append may or may not have happened: forget what we think we know.
                    inner.cache.evict(A::TYPE, id);
                    return Err(e.into());
                }
            }
        }
        Err(CommandError::Conflict)
    }

    /// After a lost race: `state` (what this command decided on, at `version`) brought up to
    /// date with the events the winner appended, and cached for the next round. One read of the
    /// few events after `version`, where evicting meant a reload from the snapshot (up to
    /// [`SnapshotPolicy::every`] events decoded again). If the read fails, the entry is evicted
    /// and the next round loads in full.
    async fn catch_up<A>(&self, id: &str, state: &A, version: u64)
    where
        A: GameAggregate + Send + Sync,
    {
        let started = Instant::now();
        match self.newer_events::<A>(id, version).await {
            Ok(newer) => {
                self.cache_newer::<A>(id, state, version, newer, started, "catch-up");
            }
            Err(e) => {
                tracing::debug!(error = %e, aggregate_id = id, "catch-up after a lost race failed");
                self.inner.cache.evict(A::TYPE, id);
            }
        }
    }

    /// `state` (cached at `version`) with the events stored after it applied, and cached:
    /// [`CommandSettings::refresh_cached`], or an entry the store watch found behind.
    async fn refresh<A>(
        &self,
        id: &str,
        state: Arc<A>,
        version: u64,
    ) -> Result<(Arc<A>, u64), StoreError>
    where
        A: GameAggregate + Send + Sync,
    {
        let started = Instant::now();
        let newer = self.newer_events::<A>(id, version).await?;
        if newer.is_empty() {
            self.inner
                .metrics
                .load_seconds
                .with_label_values(&[A::TYPE, "refresh"])
                .observe(started.elapsed().as_secs_f64());
            return Ok((state, version));
        }
        match self.cache_newer::<A>(id, &state, version, newer, started, "refresh") {
            Some(current) => Ok(current),
            // Unreadable: the full load reports it.
            None => self.load::<A>(id).await,
        }
    }

    /// The stored events of aggregate `id` after `version`, within the store timeout.
    async fn newer_events<A>(
        &self,
        id: &str,
        version: u64,
    ) -> Result<Vec<SerializedEvent>, StoreError>
    where
        A: GameAggregate + Send + Sync,
    {
        let read = self
            .inner
            .repository
            .get_last_events::<A>(id, usize::try_from(version).unwrap_or(usize::MAX));
        Ok(self.with_timeout(read).await??)
    }

    /// Caches `state` (at `version`) with `newer` (the stored events after it) applied, and
    /// returns it; evicts the entry instead if one of them cannot be decoded (the full load then
    /// reports it). `source` labels the load's time: `catch-up` after a lost race or a stale
    /// refusal, `refresh` before deciding ([`CommandSettings::refresh_cached`]).
    fn cache_newer<A>(
        &self,
        id: &str,
        state: &A,
        version: u64,
        newer: Vec<SerializedEvent>,
        started: Instant,
        source: &'static str,
    ) -> Option<(Arc<A>, u64)>
    where
        A: GameAggregate + Send + Sync,
    {
        let inner = &self.inner;
        match fold_newer(id, state.clone(), version, newer) {
            Ok((state, version)) => {
                inner
                    .metrics
                    .load_seconds
                    .with_label_values(&[A::TYPE, source])
                    .observe(started.elapsed().as_secs_f64());
                let state = Arc::new(state);
                inner.cache.put(id, state.clone(), version);
                Some((state, version))
            }
            Err(e) => {
                tracing::warn!(error = %e, aggregate_id = id, source, "stored events after the cached version unreadable");
                inner.cache.evict(A::TYPE, id);
                None
            }
        }
    }

    async fn with_timeout<T>(
        &self,
        future: impl std::future::Future<Output = T>,
    ) -> Result<T, StoreError> {
        let limit = self.inner.settings.store_timeout;
        tokio::time::timeout(limit, future)
            .await
            .map_err(|_| timed_out(limit))
    }

    /// The aggregate and its version (the sequence of its last event; 0 if it has none): from the
    /// cache, else from the newest usable snapshot plus the events after it.
    pub async fn load<A>(&self, id: &str) -> Result<(Arc<A>, u64), StoreError>
    where
        A: GameAggregate + Send + Sync,
    {
        let inner = &self.inner;
        let started = Instant::now();
        if let Some(hit) = inner.cache.get::<A>(id) {
            inner
                .metrics
                .load_seconds
                .with_label_values(&[A::TYPE, "cache"])
                .observe(started.elapsed().as_secs_f64());
            return Ok(hit);
        }
        let (state, version, folded) = self.with_timeout(self.load_from_store::<A>(id)).await??;
        inner
            .metrics
            .load_seconds
            .with_label_values(&[A::TYPE, "store"])
            .observe(started.elapsed().as_secs_f64());
        if inner.settings.snapshots.due_after_load(folded) {
            inner.snapshots.offer(id, &state, version);
        }
        let state = Arc::new(state);
        if version > 0 {
            inner.cache.put(id, state.clone(), version);
        }
        Ok((state, version))
    }

    /// The aggregate as the store has it now: the cached state brought up to date with the
    /// events appended since (by another process: a process manager, another replica), else a
    /// full load (which caches). For reads of an aggregate this process is not about to write (a command's
    /// target), where the cache alone could be stale.
    pub async fn load_current<A>(&self, id: &str) -> Result<(Arc<A>, u64), StoreError>
    where
        A: GameAggregate + Send + Sync,
    {
        let Some((cached, version)) = self.inner.cache.get::<A>(id) else {
            return self.load::<A>(id).await;
        };
        let events = self.newer_events::<A>(id, version).await?;
        if events.is_empty() {
            return Ok((cached, version));
        }
        let (state, version) = fold_newer(id, (*cached).clone(), version, events)?;
        // Not cached: the command path owns the cache (under the aggregate's lock), and this
        // read holds no lock.
        Ok((Arc::new(state), version))
    }

    /// Loads from the store, bypassing the cache: (state, version, events folded).
    pub async fn load_from_store<A: GameAggregate>(
        &self,
        id: &str,
    ) -> Result<(A, u64, u64), StoreError> {
        let inner = &self.inner;
        let snapshots = inner.snapshots.metrics();
        let (state, version) = match inner.repository.load_snapshot(A::TYPE, id).await? {
            Some(s) if s.state_version == A::STATE_VERSION => {
                match serde_json::from_value::<A>(s.payload) {
                    Ok(state) => {
                        snapshots.count(A::TYPE, "loaded");
                        (state, s.last_sequence)
                    }
                    Err(e) => {
                        snapshots.count(A::TYPE, "discarded");
                        tracing::warn!(error = %e, aggregate_id = id, "unreadable snapshot ignored");
                        (A::default(), 0)
                    }
                }
            }
            Some(_) => {
                snapshots.count(A::TYPE, "discarded");
                (A::default(), 0)
            }
            None => (A::default(), 0),
        };
        let events = inner
            .repository
            .get_last_events::<A>(id, usize::try_from(version).unwrap_or(usize::MAX))
            .await?;
        let folded = events.len() as u64;
        let (state, version) = fold_newer(id, state, version, events)?;
        Ok((state, version, folded))
    }

    /// The state of an aggregate as of `version` (every event up to it folded), for history
    /// views and operators. Ignores snapshots and the cache.
    pub async fn state_at<A: GameAggregate>(
        &self,
        id: &str,
        version: u64,
    ) -> Result<(A, u64), StoreError> {
        let mut state = A::default();
        let mut at = 0;
        loop {
            let page = self
                .inner
                .repository
                .history_page(A::TYPE, id, at as i64, 10_000, Some(version as i64))
                .await?;
            let Some(last) = page.last().map(|e| e.sequence) else {
                return Ok((state, at));
            };
            for stored in page {
                let event = decode_stored_json::<A>(
                    &stored.event_type,
                    &stored.event_version,
                    stored.payload.get(),
                )
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                state.apply(event);
            }
            at = last as u64;
        }
    }

    /// One page of the aggregate's history.
    pub async fn history(
        &self,
        aggregate_type: &str,
        id: &str,
        after: u64,
        limit: u32,
        up_to: Option<u64>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let up_to = up_to.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        Ok(self
            .with_timeout(self.inner.repository.history_page(
                aggregate_type,
                id,
                after,
                limit,
                up_to,
            ))
            .await??)
    }

    async fn prior_answer<E>(
        &self,
        context: &CommandContext,
    ) -> Result<Option<CommandOutcome>, CommandError<E>> {
        let Some(key) = context.scoped_key() else {
            return Ok(None);
        };
        let prior = self
            .with_timeout(self.inner.repository.by_idempotency_key(&key))
            .await?
            .map_err(StoreError::from)?;
        let Some(first) = prior.first() else {
            return Ok(None);
        };
        if first.meta().request_hash.as_deref() != context.request_hash.as_deref() {
            return Err(CommandError::IdempotencyKeyReused);
        }
        // Only the events of the first aggregate the key touched form the answer.
        let same: Vec<StoredEvent> = prior
            .iter()
            .filter(|e| {
                e.aggregate_id == first.aggregate_id && e.aggregate_type == first.aggregate_type
            })
            .cloned()
            .collect();
        Ok(CommandOutcome::from_stored(&same))
    }

    /// Answers when the store can take writes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.with_timeout(self.inner.repository.ping()).await??)
    }
}

/// A command's metadata, in key order (the stored text is the same for the same command).
fn metadata(context: &CommandContext) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put(META_ACCOUNT_ID, context.account.map(|a| a.to_string()));
    put(META_IDEMPOTENCY_KEY, context.scoped_key());
    put(META_REQUEST_HASH, context.request_hash.clone());
    put(META_CORRELATION_ID, context.correlation_id.clone());
    put(META_CAUSATION_ID, context.causation_id.clone());
    put(META_TRACEPARENT, context.traceparent.clone());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_pauses_are_random_within_a_cap_that_doubles_to_32_ms() {
        for (round, cap_ms) in [(1, 1), (2, 2), (3, 4), (6, 32), (8, 32), (20, 32)] {
            let pauses: Vec<Duration> = (0..200).map(|_| conflict_pause(round)).collect();
            let cap = Duration::from_millis(cap_ms);
            assert!(
                pauses.iter().all(|p| *p <= cap),
                "round {round}: {pauses:?}"
            );
            // Random, not one fixed pause: two racing writers must fall out of step.
            assert!(
                pauses.iter().any(|p| *p != pauses[0]),
                "round {round}: {pauses:?}"
            );
        }
    }
}
