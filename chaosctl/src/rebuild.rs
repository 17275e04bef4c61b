//! `chaosctl rebuild <read model> --from kafka|store`: builds the next model version beside the
//! served one, switches readers and writers to it, and drops the old one (the steps are in
//! `chaosctl rebuild --help` and docs/operations.md).
//!
//! The rebuild's state lives in the read-model store itself, so an interrupted rebuild resumes
//! wherever chaosctl runs next: `<prefix>rebuild` (JSON: target and old versions, source, phase)
//! and, for a rebuild from the event store, its position (`<prefix>rebuild:position`; the embedded
//! read models keep it as the checkpoint the embedded process resumes from after the switch,
//! `chaos_standalone::views_checkpoint`). A rebuild from Kafka keeps its offsets in its own
//! consumer group.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_eventstore::Position;
use chaos_projectors::runner::{
    Batching, FeedCheckpoint, KafkaRunner, ProjectorMetrics, ReadModelCheckpoint, StoreSource,
};
use chaos_readmodel::{DocumentStore, Keys, Served, ViewProjection};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::checksum::{self, Checksum};
use crate::cli::{Model, RebuildArgs, Source};
use crate::deploy::{EventStore, ReadModels};
use crate::progress::Progress;
use crate::replay::StoreReplay;
use crate::{exit, Ctx, Unreachable, Usage};

/// The rebuild in progress, as stored at `<prefix>rebuild`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    target: String,
    old: String,
    from: String,
    /// `building`, then `switched` once readers and writers moved to `target`.
    phase: String,
    started_at: String,
}

/// What one run did.
#[derive(Debug, Default)]
struct Figures {
    events: u64,
    seconds: f64,
    dead_letters: u64,
    final_events: u64,
}

pub async fn run(ctx: &Ctx, args: RebuildArgs) -> anyhow::Result<u8> {
    if args.model == Model::Warehouse {
        return crate::warehouse::rebuild(ctx, &args).await;
    }
    if ctx.embedded.is_some() && args.from == Source::Kafka {
        return Err(Usage("the embedded deployment has no Kafka: --from store".into()).into());
    }
    let rm = ReadModels::open(ctx, args.model).await?;
    let events = EventStore::open(ctx).await?;
    let store = rm.store.clone();
    let prefix = rm.keys.prefix.clone();
    let state_key = format!("{prefix}rebuild");
    let position_key = format!("{prefix}rebuild:position");
    let served = rm.served().await?;

    let mut state = match store.get_value(&state_key).await? {
        Some(text) => Some(
            serde_json::from_str::<State>(&text)
                .with_context(|| format!("the rebuild state at {state_key} is unreadable"))?,
        ),
        None => None,
    };
    if let Some(s) = &state {
        if args.restart {
            if s.phase != "building" {
                anyhow::bail!(
                    "the rebuild to {} has switched already: --resume finishes it",
                    s.target
                );
            }
            let dropped = store
                .delete_prefix(&Keys::new(&prefix, &s.target).root())
                .await?;
            store
                .delete(&[state_key.clone(), position_key.clone()])
                .await?;
            eprintln!("dropped the partial version {} ({dropped} keys)", s.target);
            state = None;
        } else if !args.resume {
            eprintln!(
                "chaosctl: a rebuild to {} (from {}, {}) is in progress since {}: \
                 `--resume` goes on with it, `--restart` drops it and starts over",
                s.target, s.from, s.phase, s.started_at
            );
            return Ok(exit::FAILED);
        } else if s.from != args.from.name() {
            return Err(Usage(format!(
                "the rebuild in progress reads from {}: resume it with --from {}",
                s.from, s.from
            ))
            .into());
        }
    } else if args.resume {
        eprintln!("chaosctl: no rebuild in progress to resume");
        return Ok(exit::FAILED);
    }
    let mut state = match state {
        Some(s) => s,
        None => {
            let target = next_version(&served.model_version);
            let leftover = store
                .delete_prefix(&Keys::new(&prefix, &target).root())
                .await?;
            if leftover > 0 {
                eprintln!("dropped {leftover} keys left under {target} by an earlier attempt");
            }
            let s = State {
                target,
                old: served.model_version.clone(),
                from: args.from.name().to_owned(),
                phase: "building".into(),
                started_at: chrono::Utc::now().to_rfc3339(),
            };
            save(store.as_ref(), &state_key, &s).await?;
            s
        }
    };
    let target = Keys::new(&prefix, &state.target);
    let old = Keys::new(&prefix, &state.old);
    eprintln!(
        "rebuilding {} {} -> {} from {} (serving {})",
        args.model.name(),
        state.old,
        state.target,
        state.from,
        served.model_version
    );

    let stop = CancellationToken::new();
    let trigger = stop.clone();
    let signals = tokio::spawn(async move {
        chaos_platform::shutdown_signal().await;
        trigger.cancel();
    });
    let projection = rm
        .projection(&target)
        .with_source(Arc::new(StoreSource::new(events.repository())));
    let mut source =
        RebuildSource::new(ctx, &args, &rm, &events, &target, projection.clone()).await?;
    let mut figures = Figures::default();
    let started = Instant::now();

    let outcome = if state.phase == "building" {
        let (n, dead) = source.replay("rebuild", &stop).await?;
        figures.events = n;
        figures.dead_letters = dead;
        figures.seconds = started.elapsed().as_secs_f64();
        if stop.is_cancelled() {
            eprintln!(
                "interrupted: {} events applied to {} this run; its checkpoint is saved, \
                 `chaosctl rebuild {} --from {} --resume` goes on",
                n,
                state.target,
                args.model.name(),
                state.from
            );
            return Ok(exit::FAILED);
        }
        projection
            .mark(json!({
                "built_from": format!("chaosctl rebuild --from {}", state.from),
                "at": chrono::Utc::now().to_rfc3339(),
            }))
            .await?;
        let sum = checksum::compute(store.as_ref(), &target.root()).await?;
        eprintln!("checksum of {}: {sum}", state.target);
        Served::switch(store.as_ref(), &prefix, &state.target).await?;
        state.phase = "switched".into();
        save(store.as_ref(), &state_key, &state).await?;
        eprintln!(
            "switched readers and writers to {} (was {})",
            state.target, state.old
        );
        finish(
            ctx,
            &args,
            &mut source,
            &state,
            &old,
            &figures,
            Some(sum),
            &stop,
        )
        .await
    } else {
        finish(ctx, &args, &mut source, &state, &old, &figures, None, &stop).await
    };
    signals.abort();
    outcome
}

/// After the switch: the grace period, the final catch-up, the old version dropped, the figures.
#[allow(clippy::too_many_arguments)]
async fn finish(
    ctx: &Ctx,
    args: &RebuildArgs,
    source: &mut RebuildSource,
    state: &State,
    old: &Keys,
    figures: &Figures,
    sum: Option<Checksum>,
    stop: &CancellationToken,
) -> anyhow::Result<u8> {
    let store = source.store.clone();
    let prefix = &old.prefix;
    let grace = args
        .grace
        .unwrap_or(Duration::from_millis(ctx.settings.rebuild.grace_ms));
    eprintln!(
        "waiting {:.1} s for the live projections to notice the switch",
        grace.as_secs_f64()
    );
    tokio::select! {
        () = tokio::time::sleep(grace) => {}
        () = stop.cancelled() => {}
    }
    let (final_events, _) = if stop.is_cancelled() {
        (0, 0)
    } else {
        source.replay("final catch-up", stop).await?
    };
    if stop.is_cancelled() {
        eprintln!(
            "interrupted after the switch ({} serves): `chaosctl rebuild {} --from {} --resume` \
             catches up once more and drops {}",
            state.target,
            args.model.name(),
            state.from,
            state.old
        );
        return Ok(exit::FAILED);
    }
    let dropped = store.delete_prefix(&old.root()).await?;
    store
        .delete(&[
            format!("{prefix}rebuild"),
            format!("{prefix}rebuild:position"),
        ])
        .await?;
    source.cleanup().await;
    let f = Figures {
        final_events,
        ..*figures
    };
    let rate = if f.seconds > 0.0 {
        f.events as f64 / f.seconds
    } else {
        0.0
    };
    let human = format!(
        "rebuilt {} {} from {}: {} events in {:.1} s ({:.0} events/s), {} more in the final \
         catch-up, {} dead letters\n{}now serving {}; dropped {} ({} keys)\n",
        args.model.name(),
        state.target,
        state.from,
        f.events,
        f.seconds,
        rate,
        f.final_events,
        f.dead_letters,
        sum.as_ref()
            .map(|s| format!("checksum of {} before the switch: {s}\n", state.target))
            .unwrap_or_default(),
        state.target,
        state.old,
        dropped
    );
    ctx.print(
        &json!({
            "read_model": args.model.name(),
            "from": state.from,
            "old_version": state.old,
            "new_version": state.target,
            "events": f.events,
            "seconds": f.seconds,
            "events_per_second": rate,
            "final_catch_up_events": f.final_events,
            "dead_letters": f.dead_letters,
            "checksum": sum,
            "dropped_keys": dropped,
        }),
        &human,
    );
    Ok(exit::OK)
}

async fn save(store: &dyn DocumentStore, key: &str, state: &State) -> anyhow::Result<()> {
    store.set_value(key, &serde_json::to_string(state)?).await?;
    Ok(())
}

/// `v1` -> `v2`, `v9` -> `v10`; a version without a number gets one (`blue` -> `blue2`).
pub fn next_version(version: &str) -> String {
    let digits = version
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .count();
    let (stem, number) = version.split_at(version.len() - digits);
    match number.parse::<u64>() {
        Ok(n) => format!("{stem}{}", n + 1),
        Err(_) => format!("{version}2"),
    }
}

/// The position of a rebuild from the event store, kept in the read-model store as
/// `<tx_id>:<global_position>`.
#[derive(Debug)]
struct ValueCheckpoint {
    store: Arc<dyn DocumentStore>,
    key: String,
}

#[async_trait::async_trait]
impl FeedCheckpoint for ValueCheckpoint {
    async fn load(&self) -> anyhow::Result<Position> {
        let Some(text) = self.store.get_value(&self.key).await? else {
            return Ok(Position::START);
        };
        let (tx, gp) = text
            .split_once(':')
            .with_context(|| format!("rebuild position {text:?}"))?;
        Ok(Position {
            tx_id: tx.parse()?,
            global_position: gp.parse()?,
        })
    }

    async fn save(&self, position: Position) -> anyhow::Result<()> {
        self.store
            .set_value(
                &self.key,
                &format!("{}:{}", position.tx_id, position.global_position),
            )
            .await?;
        Ok(())
    }
}

/// Where a rebuild's events come from.
enum Feed {
    Store(StoreReplay),
    /// The Kafka feed, once its consumer has left its group.
    Closed,
    Kafka {
        runner: Box<KafkaRunner>,
        group: String,
        kafka: chaos_platform::kafka::KafkaConfig,
    },
}

struct RebuildSource {
    feed: Feed,
    store: Arc<dyn DocumentStore>,
    log: Arc<dyn chaos_eventstore::EventLog>,
}

impl RebuildSource {
    async fn new(
        ctx: &Ctx,
        args: &RebuildArgs,
        rm: &ReadModels,
        events: &EventStore,
        target: &Keys,
        projection: ViewProjection,
    ) -> anyhow::Result<Self> {
        let s = &ctx.settings;
        let metrics = ProjectorMetrics::new(&prometheus_registry());
        let name = format!("rebuild-{}", args.model.name());
        let feed = match args.from {
            Source::Store => {
                let checkpoint: Arc<dyn FeedCheckpoint> = match &rm.sqlite {
                    // The name the embedded process resumes from once it serves `target`.
                    Some(sqlite) => Arc::new(ReadModelCheckpoint {
                        store: sqlite.clone(),
                        name: chaos_standalone::views_checkpoint(target),
                    }),
                    None => Arc::new(ValueCheckpoint {
                        store: rm.store.clone(),
                        key: format!("{}rebuild:position", target.prefix),
                    }),
                };
                Feed::Store(StoreReplay {
                    log: events.log(),
                    projection,
                    checkpoint,
                    batch: s.rebuild.batch,
                    lanes: s.rebuild.lanes,
                })
            }
            Source::Kafka => {
                let group = format!(
                    "{}{}{}",
                    s.rebuild.group_prefix, target.prefix, target.model_version
                );
                let topics: Vec<String> = projection
                    .sources()
                    .iter()
                    .map(|a| s.kafka.topic(&chaos_schemas::topic_for(a)))
                    .collect();
                let dead_letters = s.kafka.topic(&chaos_schemas::dead_letter_topic(&name));
                chaos_platform::kafka::ensure_topics(
                    &s.kafka,
                    std::slice::from_ref(&dead_letters),
                    &[("retention.ms", "-1")],
                )
                .await
                .context(Unreachable("Kafka (kafka.bootstrap_servers)".into()))?;
                let codec = chaos_schemas::AvroCodec::new(&s.schema_registry.url)?;
                let runner = KafkaRunner::new(
                    &name,
                    &s.kafka,
                    &group,
                    topics,
                    dead_letters,
                    codec,
                    projection,
                    metrics,
                    Batching::new(s.rebuild.kafka_batch, Duration::from_millis(20)),
                )?;
                Feed::Kafka {
                    runner: Box::new(runner),
                    group,
                    kafka: s.kafka.clone(),
                }
            }
        };
        Ok(Self {
            feed,
            store: rm.store.clone(),
            log: events.log(),
        })
    }

    /// Replays from the checkpoint to the end of the source as sampled now; returns the events
    /// handled and the dead letters.
    async fn replay(
        &mut self,
        label: &str,
        stop: &CancellationToken,
    ) -> anyhow::Result<(u64, u64)> {
        match &self.feed {
            Feed::Store(replay) => {
                let from = replay.position().await?;
                let total = self.log.count_after(from).await?;
                let mut progress = Progress::new(label, total);
                let done = replay.run(stop, |n| progress.update(n)).await?;
                progress.finish(done.events);
                Ok((done.events, done.dead_letters))
            }
            Feed::Closed => Ok((0, 0)),
            Feed::Kafka { runner, .. } => {
                let until = runner
                    .high_watermarks()
                    .await
                    .context(Unreachable("Kafka (kafka.bootstrap_servers)".into()))?;
                let at = runner.group_positions(&until).await?;
                let total: i64 = until
                    .iter()
                    .map(|(tp, end)| (end - at.get(tp).copied().unwrap_or(0)).max(0))
                    .sum();
                let mut progress = Progress::new(label, total as u64);
                let handled = runner
                    .run_until(&until, stop, |n| progress.update(n))
                    .await?;
                progress.finish(handled);
                Ok((handled, 0))
            }
        }
    }

    /// Removes the rebuild's consumer group (best effort: it is harmless if left).
    async fn cleanup(&mut self) {
        let Feed::Kafka { group, kafka, .. } = &self.feed else {
            return;
        };
        let (group, kafka) = (group.clone(), kafka.clone());
        // The consumer must leave the group before it can be deleted.
        self.feed = Feed::Closed;
        use rdkafka::admin::{AdminClient, AdminOptions};
        use rdkafka::client::DefaultClientContext;
        let admin: Result<AdminClient<DefaultClientContext>, _> = kafka.client_config().create();
        if let Ok(admin) = admin {
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
            if let Err(e) = admin.delete_groups(&[group.as_str()], &options).await {
                tracing::warn!(group, error = %e, "could not delete the rebuild's consumer group");
            }
        }
    }
}

fn prometheus_registry() -> prometheus::Registry {
    prometheus::Registry::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_next_version_counts_up() {
        assert_eq!(super::next_version("v1"), "v2");
        assert_eq!(super::next_version("v9"), "v10");
        assert_eq!(super::next_version("blue"), "blue2");
        assert_eq!(super::next_version("2026-11-v3"), "2026-11-v4");
    }
}
