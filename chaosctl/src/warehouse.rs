//! `chaosctl rebuild warehouse --from kafka|store` and `chaosctl checksum warehouse`, on the
//! warehouse's rebuild API (projectors/src/warehouse: rebuild.rs, switch.rs).
//!
//! The new warehouse is built in `<stem>.rebuild.duckdb` beside the live file, which keeps
//! serving; its position is kept in that file (store: the feed's checkpoint; Kafka: the file names
//! its consumer group), so an interrupted rebuild resumes from it. When caught up, its checksum is
//! printed and the live warehouse is switched to it: the process holding the live file (the
//! warehouse projector, the embedded backend) merges in what the live file has and the new one
//! lacks, renames the new file over the old one and goes on from its own position; with no process
//! holding it, chaosctl does the same itself. The old file is gone with the rename.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_projectors::runner::{Batching, KafkaRunner, ProjectorMetrics, StoreFeed};
use chaos_projectors::warehouse::{rebuild_path, Warehouse};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cli::{RebuildArgs, Source};
use crate::deploy::EventStore;
use crate::progress::Progress;
use crate::{exit, Ctx, Unreachable, Usage};

/// How long the live process may take to honour the switch.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The live warehouse file of the deployment.
fn live_path(ctx: &Ctx) -> PathBuf {
    match &ctx.embedded {
        Some(dir) => dir.join("warehouse.duckdb"),
        None => PathBuf::from(&ctx.settings.warehouse.path),
    }
}

fn digest_json(c: &chaos_projectors::warehouse::Checksum) -> serde_json::Value {
    json!({
        "digest": c.digest,
        "tables": c.tables.iter().map(|t| json!({"table": t.table, "rows": t.rows})).collect::<Vec<_>>(),
    })
}

/// `chaosctl checksum warehouse`: the live file's checksum (only while no process holds it).
pub async fn checksum(ctx: &Ctx) -> anyhow::Result<u8> {
    let live = live_path(ctx);
    if !live.is_file() {
        return Err(anyhow::anyhow!("{} does not exist", live.display())
            .context(Unreachable("the warehouse".into())));
    }
    let w = Warehouse::open(&live)
        .await
        .with_context(|| Unreachable(format!("{} (held by a running process?)", live.display())))?;
    let sum = w.checksum().await;
    w.close().await?;
    let sum = sum?;
    ctx.print(
        &json!({ "read_model": "warehouse", "checksum": digest_json(&sum) }),
        &format!("warehouse {}: {}\n", live.display(), sum.digest),
    );
    Ok(exit::OK)
}

pub async fn rebuild(ctx: &Ctx, args: &RebuildArgs) -> anyhow::Result<u8> {
    let s = &ctx.settings;
    if ctx.embedded.is_some() && args.from == Source::Kafka {
        return Err(Usage("the embedded deployment has no Kafka: --from store".into()).into());
    }
    let live = live_path(ctx);
    let target_path = rebuild_path(&live);
    if target_path.exists() {
        if args.restart {
            for f in [
                target_path.clone(),
                PathBuf::from(format!("{}.wal", target_path.display())),
            ] {
                let _ = std::fs::remove_file(f);
            }
            eprintln!("dropped the partial rebuild {}", target_path.display());
        } else if !args.resume {
            eprintln!(
                "chaosctl: a warehouse rebuild is in progress ({}): `--resume` goes on with it, \
                 `--restart` drops it and starts over",
                target_path.display()
            );
            return Ok(exit::FAILED);
        }
    } else if args.resume {
        eprintln!("chaosctl: no warehouse rebuild in progress to resume");
        return Ok(exit::FAILED);
    }
    let events = EventStore::open(ctx).await?;
    let target = Warehouse::open_rebuild(&live)
        .await
        .with_context(|| format!("opening {}", target_path.display()))?;
    let target = match args.from {
        // Fed once, in order, its position committed with its rows: no keys while it is
        // written, big transactions (see `Warehouse::for_store_rebuild`).
        Source::Store => target.for_store_rebuild(s.rebuild.warehouse_commit).await?,
        Source::Kafka => target,
    };
    eprintln!(
        "rebuilding the warehouse into {} from {} (serving {})",
        target_path.display(),
        args.from.name(),
        live.display()
    );
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    let signals = tokio::spawn(async move {
        chaos_platform::shutdown_signal().await;
        trigger.cancel();
    });
    let metrics = ProjectorMetrics::new(&prometheus::Registry::new());
    let started = Instant::now();
    let done = match args.from {
        Source::Store => {
            let feed = StoreFeed::new(
                "warehouse-rebuild",
                events.log(),
                Arc::new(target.clone()),
                metrics,
            )
            .with_batch(s.rebuild.warehouse_batch)
            .with_checkpoint(target.store_checkpoint());
            let from = feed.resume_position().await?;
            let mut progress = Progress::new("rebuild", events.log().count_after(from).await?);
            let done = feed
                .catch_up_until(from, &stop, |c| progress.update(c.events))
                .await?;
            progress.finish(done.events);
            done.events
        }
        Source::Kafka => {
            let group = target.rebuild_group(&s.rebuild.group_prefix).await?;
            let topics: Vec<String> = chaos_schemas::AGGREGATES
                .iter()
                .map(|a| s.kafka.topic(&a.topic()))
                .collect();
            let dead_letters = s
                .kafka
                .topic(&chaos_schemas::dead_letter_topic("rebuild-warehouse"));
            chaos_platform::kafka::ensure_topics(
                &s.kafka,
                std::slice::from_ref(&dead_letters),
                &[("retention.ms", "-1")],
            )
            .await
            .context(Unreachable("Kafka (kafka.bootstrap_servers)".into()))?;
            let runner = KafkaRunner::new(
                "rebuild-warehouse",
                &s.kafka,
                &group,
                topics,
                dead_letters,
                chaos_schemas::AvroCodec::new(&s.schema_registry.url)?,
                target.clone(),
                metrics,
                Batching::new(s.rebuild.kafka_batch, Duration::from_millis(50)),
            )?;
            let until = runner.high_watermarks().await?;
            let at = runner.group_positions(&until).await?;
            let total: i64 = until
                .iter()
                .map(|(tp, end)| (end - at.get(tp).copied().unwrap_or(0)).max(0))
                .sum();
            let mut progress = Progress::new("rebuild", total as u64);
            let n = runner
                .run_until(&until, &stop, |n| progress.update(n))
                .await?;
            progress.finish(n);
            n
        }
    };
    signals.abort();
    if stop.is_cancelled() {
        target.close().await?;
        eprintln!(
            "interrupted: {done} events this run; the position is kept in {}, \
             `chaosctl rebuild warehouse --from {} --resume` goes on",
            target_path.display(),
            args.from.name()
        );
        return Ok(exit::FAILED);
    }
    // Part of the rebuild's time: the last commit, the keys a store rebuild left out and the
    // checkpoint (the switch would do them otherwise).
    target.finish_rebuild().await?;
    let seconds = started.elapsed().as_secs_f64();
    let sum = target.checksum().await?;
    eprintln!("checksum of the rebuilt warehouse: {}", sum.digest);
    let ack = target
        .switch_into(&live, SWITCH_TIMEOUT)
        .await
        .context("switching the live warehouse to the rebuilt file")?;
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    ctx.print(
        &json!({
            "read_model": "warehouse",
            "from": args.from.name(),
            "events": done,
            "seconds": seconds,
            "events_per_second": rate,
            "checksum": digest_json(&sum),
            "switched_by": ack.by,
            "merged_events": ack.merged_events,
        }),
        &format!(
            "rebuilt the warehouse from {}: {done} events in {seconds:.1} s ({rate:.0} events/s)\n\
             checksum before the switch: {}\nswitched {} to it ({}, {} events merged from the \
             old file); the old file is gone\n",
            args.from.name(),
            sum.digest,
            live.display(),
            ack.by,
            ack.merged_events
        ),
    );
    Ok(exit::OK)
}
