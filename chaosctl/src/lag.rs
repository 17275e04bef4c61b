//! `chaosctl lag`: every projection's position and lag, per partition, in events and seconds.
//!
//! Distributed: the projectors' and process managers' consumer groups (committed offset against
//! the high watermark; seconds: the age of the next unconsumed message) and the relay (the event
//! store against its checkpoint; seconds: the age of the oldest unpublished event). Embedded: each
//! store-fed feed's checkpoint against the event store's head.

use std::fmt::Write;
use std::time::Duration;

use anyhow::Context;
use chaos_eventstore::{EventLog, Position};
use chaos_projectors::runner::FeedCheckpoint;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;
use serde_json::json;

use crate::deploy::{existing, EventStore};
use crate::{exit, Ctx, Unreachable};

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// One partition (or feed) of one projection.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub projection: String,
    pub feed: String,
    pub partition: i32,
    pub position: i64,
    pub end: i64,
    pub lag_events: i64,
    pub lag_seconds: Option<f64>,
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<u8> {
    let store = EventStore::open(ctx).await?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut stopped = Vec::new();
    match &ctx.embedded {
        Some(dir) => embedded(ctx, dir, &store, &mut rows, &mut notes).await?,
        None => {
            let pool = store.postgres("lag")?;
            let checkpoint = store.checkpoint(&ctx.settings.relay.checkpoint);
            rows.push(feed_row("relay", &store, checkpoint.as_ref()).await?);
            stopped = crate::relay::list(pool).await?;
            let kafka = ctx.settings.clone();
            rows.extend(
                tokio::task::spawn_blocking(move || kafka_groups(&kafka))
                    .await?
                    .context(Unreachable("Kafka (kafka.bootstrap_servers)".into()))?,
            );
        }
    }
    let mut human = format!(
        "{:<32} {:<34} {:>4} {:>12} {:>12} {:>10} {:>9}\n",
        "projection", "feed", "part", "position", "end", "lag", "lag s"
    );
    for r in &rows {
        let _ = writeln!(
            human,
            "{:<32} {:<34} {:>4} {:>12} {:>12} {:>10} {:>9}",
            r.projection,
            r.feed,
            r.partition,
            r.position,
            r.end,
            r.lag_events,
            r.lag_seconds.map_or("-".to_owned(), |s| format!("{s:.1}"))
        );
    }
    for s in &stopped {
        let _ = writeln!(
            human,
            "relay stopped stream: {} {} at sequence {} ({})",
            s.aggregate_type, s.aggregate_id, s.from_sequence, s.reason
        );
    }
    for n in &notes {
        let _ = writeln!(human, "note: {n}");
    }
    ctx.print(
        &json!({ "projections": rows, "stopped_streams": stopped, "notes": notes }),
        &human,
    );
    Ok(exit::OK)
}

/// A store-fed reader (the relay, an embedded feed) at `checkpoint`: its lag is what the store
/// holds after it; its age, that of the first event after it.
async fn feed_row(
    name: &str,
    store: &EventStore,
    checkpoint: &dyn FeedCheckpoint,
) -> anyhow::Result<Row> {
    let at = checkpoint.load().await?;
    feed_row_at(name, store.log().as_ref(), at).await
}

async fn feed_row_at(name: &str, log: &dyn EventLog, at: Position) -> anyhow::Result<Row> {
    let behind = log.count_after(at).await?;
    let next = log.read_after(at, 1).await?;
    let seconds = next
        .first()
        .and_then(|e| e.occurred_at())
        .map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
    Ok(Row {
        projection: name.to_owned(),
        feed: "event store".into(),
        partition: 0,
        position: at.global_position,
        end: at.global_position + behind as i64,
        lag_events: behind as i64,
        lag_seconds: Some(if behind == 0 {
            0.0
        } else {
            seconds.unwrap_or(0.0)
        }),
    })
}

async fn embedded(
    ctx: &Ctx,
    dir: &std::path::Path,
    store: &EventStore,
    rows: &mut Vec<Row>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let EventStore::Sqlite(repo) = store else {
        unreachable!("--embedded opens the SQLite event store")
    };
    // The read models: the checkpoint of the version served.
    let rm = crate::deploy::ReadModels::open(ctx, crate::cli::Model::Embedded).await?;
    let served = rm.served().await?;
    let sqlite = rm.sqlite.clone().context("the embedded read models")?;
    let checkpoint = chaos_projectors::runner::ReadModelCheckpoint {
        store: sqlite,
        name: chaos_standalone::views_checkpoint(&served),
    };
    rows.push(
        feed_row(
            &format!("views ({})", served.model_version),
            store,
            &checkpoint,
        )
        .await?,
    );
    for manager in chaos_projectors::process::all() {
        let checkpoint = chaos_projectors::runner::SqliteCheckpoint {
            repo: repo.clone(),
            name: format!("process-manager:{}", manager.name()),
        };
        rows.push(feed_row(&format!("pm-{}", manager.name()), store, &checkpoint).await?);
    }
    // DuckDB admits one process per file: readable only while the backend is stopped.
    let path = existing(dir, "warehouse.duckdb");
    match path {
        Ok(path) => match chaos_projectors::warehouse::Warehouse::open(&path).await {
            Ok(w) => {
                let offsets = w.offsets(chaos_projectors::warehouse::STORE_FEED).await;
                let _ = w.close().await;
                let at = offsets?.first().map_or(Position::START, |o| Position {
                    tx_id: 0,
                    global_position: o.next_offset - 1,
                });
                rows.push(feed_row_at("warehouse", store.log().as_ref(), at).await?);
            }
            Err(e) => notes.push(format!(
                "warehouse: not readable while the backend holds it ({e})"
            )),
        },
        Err(_) => notes.push("warehouse: no warehouse.duckdb yet".into()),
    }
    Ok(())
}

/// The consumer groups of the projectors and process managers, per partition.
fn kafka_groups(s: &crate::config::Settings) -> anyhow::Result<Vec<Row>> {
    let admin: BaseConsumer = s
        .kafka
        .client_config()
        .set("group.id", "chaosctl-lag")
        .create()?;
    let groups = admin.fetch_group_list(None, KAFKA_TIMEOUT)?;
    let mut names: Vec<String> = groups
        .groups()
        .iter()
        .map(|g| g.name().to_owned())
        .filter(|n| {
            s.lag.groups.contains(n) || s.lag.group_prefixes.iter().any(|p| n.starts_with(p))
        })
        .collect();
    for g in &s.lag.groups {
        if !names.contains(g) {
            names.push(g.clone());
        }
    }
    names.sort();
    // Every partition of every event topic (a group reports the topics it committed on).
    let metadata = admin.fetch_metadata(None, KAFKA_TIMEOUT)?;
    let mut partitions = Vec::new();
    for a in chaos_schemas::AGGREGATES {
        let topic = s.kafka.topic(&a.topic());
        if let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) {
            for p in t.partitions() {
                partitions.push((topic.clone(), p.id()));
            }
        }
    }
    let peek: BaseConsumer = s
        .kafka
        .client_config()
        .set("group.id", "chaosctl-lag-peek")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut rows = Vec::new();
    for group in names {
        let member: BaseConsumer = s
            .kafka
            .client_config()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in &partitions {
            tpl.add_partition(topic, *partition);
        }
        let committed = member.committed_offsets(tpl, KAFKA_TIMEOUT)?;
        for e in committed.elements() {
            let Offset::Offset(position) = e.offset() else {
                continue; // the group never committed here: not its topic
            };
            let (_, end) = admin.fetch_watermarks(e.topic(), e.partition(), KAFKA_TIMEOUT)?;
            let lag = (end - position).max(0);
            let seconds = if lag == 0 {
                Some(0.0)
            } else {
                next_message_age(&peek, e.topic(), e.partition(), position)
            };
            rows.push(Row {
                projection: group.clone(),
                feed: e.topic().to_owned(),
                partition: e.partition(),
                position,
                end,
                lag_events: lag,
                lag_seconds: seconds,
            });
        }
    }
    Ok(rows)
}

/// The age of the message at `offset` (the next one the group will read).
fn next_message_age(peek: &BaseConsumer, topic: &str, partition: i32, offset: i64) -> Option<f64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .ok()?;
    peek.assign(&tpl).ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match peek.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let ts = m.timestamp().to_millis()?;
                let now = chrono::Utc::now().timestamp_millis();
                return Some((now - ts).max(0) as f64 / 1000.0);
            }
            Some(Err(_)) => return None,
            None => {}
        }
    }
    None
}
