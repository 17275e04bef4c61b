//! `chaosctl relay stopped | resume <aggregate> <id>`: the relay's stopped streams
//! (`relay_stopped_streams`, see command-api/src/relay/streams.rs).
//! `chaosctl relay audit`: events the relay's checkpoint has passed that no topic holds.

use std::collections::HashSet;
use std::fmt::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use rdkafka::Message;
use serde_json::json;
use sqlx::Row;

use crate::deploy::EventStore;
use crate::progress::Progress;
use crate::{exit, Ctx, Unreachable};

/// How many missing events are listed (all are counted).
const LISTED: usize = 100;

/// One stopped stream.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stopped {
    pub relay: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub from_sequence: i64,
    pub reason: String,
    pub stopped_at: DateTime<Utc>,
    pub resume_requested: bool,
}

pub async fn list(pool: &sqlx::PgPool) -> anyhow::Result<Vec<Stopped>> {
    let rows = sqlx::query(
        "SELECT relay, aggregate_type, aggregate_id, from_sequence, reason, stopped_at,
                resume_requested
         FROM relay_stopped_streams ORDER BY stopped_at",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Stopped {
                relay: r.try_get("relay")?,
                aggregate_type: r.try_get("aggregate_type")?,
                aggregate_id: r.try_get("aggregate_id")?,
                from_sequence: r.try_get("from_sequence")?,
                reason: r.try_get("reason")?,
                stopped_at: r.try_get("stopped_at")?,
                resume_requested: r.try_get("resume_requested")?,
            })
        })
        .collect()
}

pub async fn stopped(ctx: &Ctx) -> anyhow::Result<u8> {
    let store = EventStore::open(ctx).await?;
    let streams = list(store.postgres("relay stopped")?).await?;
    let mut human = String::new();
    if streams.is_empty() {
        human.push_str("no stopped streams\n");
    }
    for s in &streams {
        let _ = writeln!(
            human,
            "{} {} stopped at sequence {} since {} by relay {}{}\n    reason: {}",
            s.aggregate_type,
            s.aggregate_id,
            s.from_sequence,
            s.stopped_at.to_rfc3339(),
            s.relay,
            if s.resume_requested {
                " (resume requested)"
            } else {
                ""
            },
            s.reason
        );
    }
    ctx.print(&json!({ "stopped": streams }), &human);
    Ok(exit::OK)
}

pub async fn resume(ctx: &Ctx, aggregate: &str, id: &str) -> anyhow::Result<u8> {
    let store = EventStore::open(ctx).await?;
    let pool = store.postgres("relay resume")?;
    let updated = sqlx::query(
        "UPDATE relay_stopped_streams SET resume_requested = true
         WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate)
    .bind(id)
    .execute(pool)
    .await?
    .rows_affected();
    if updated == 0 {
        eprintln!("chaosctl: the relay has not stopped {aggregate} {id}");
        return Ok(exit::FAILED);
    }
    ctx.print(
        &json!({ "aggregate_type": aggregate, "aggregate_id": id, "resume_requested": true }),
        &format!(
            "resume requested for {aggregate} {id}: the active relay republishes it from the \
             stopped event and forgets the stop (see `chaosctl relay stopped`)\n"
        ),
    );
    Ok(exit::OK)
}

/// An event the relay's checkpoint has passed that is on no topic.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Missing {
    pub tx_id: String,
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
}

/// Compares the event store up to the relay's checkpoint with every aggregate topic: an event
/// the checkpoint has passed that no topic holds was lost on the way (decision 39 found such a
/// gap), unless its stream is stopped (`relay stopped`: held back on purpose). Exit 1 when any
/// is missing, with the checkpoint to rewind the relay to.
pub async fn audit(ctx: &Ctx, since: i64) -> anyhow::Result<u8> {
    let store = EventStore::open(ctx).await?;
    let pool = store.postgres("relay audit")?;
    // The checkpoint first: the relay saves it only after Kafka acknowledged everything before
    // it, so the high watermarks read after it cover every event it has passed.
    let checkpoint = store
        .checkpoint(&ctx.settings.relay.checkpoint)
        .load()
        .await?;
    let settings = ctx.settings.clone();
    let published = tokio::task::spawn_blocking(move || published_positions(&settings, since))
        .await?
        .context(Unreachable("Kafka (kafka.bootstrap_servers)".into()))?;
    let stopped = list(pool).await?;
    let mut rows = sqlx::query(
        "SELECT tx_id::text AS tx_id, global_position, aggregate_type, aggregate_id, sequence,
                event_type
         FROM events
         WHERE (tx_id, global_position) <= ($1::text::xid8, $2) AND global_position > $3
         ORDER BY tx_id, global_position",
    )
    .bind(checkpoint.tx_id.to_string())
    .bind(checkpoint.global_position)
    .bind(since)
    .fetch(pool);
    let mut progress = Progress::new("relay audit: store", 0);
    let (mut checked, mut held_back, mut count) = (0u64, 0u64, 0u64);
    let mut missing: Vec<Missing> = Vec::new();
    while let Some(row) = rows.try_next().await? {
        checked += 1;
        progress.update(checked);
        let global_position: i64 = row.try_get("global_position")?;
        if published.contains(&global_position) {
            continue;
        }
        let event = Missing {
            tx_id: row.try_get("tx_id")?,
            global_position,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
        };
        if stopped.iter().any(|s| {
            s.aggregate_type == event.aggregate_type
                && s.aggregate_id == event.aggregate_id
                && event.sequence >= s.from_sequence
        }) {
            held_back += 1;
            continue;
        }
        count += 1;
        if missing.len() < LISTED {
            missing.push(event);
        }
    }
    progress.finish(checked);
    // The reader re-reads rows after its checkpoint: one just before the first missing event.
    let rewind = missing
        .first()
        .map(|m| (m.tx_id.clone(), m.global_position - 1));
    let mut human = format!(
        "relay audit: {checked} events up to the relay's checkpoint (tx {}, position {}) \
         against {} on the topics; {held_back} held back by stopped streams; ",
        checkpoint.tx_id,
        checkpoint.global_position,
        published.len()
    );
    match &rewind {
        None => human.push_str("none missing\n"),
        Some((tx, position)) => {
            let _ = writeln!(human, "{count} MISSING");
            for m in &missing {
                let _ = writeln!(
                    human,
                    "  tx {} position {}: {} {} sequence {} {}",
                    m.tx_id,
                    m.global_position,
                    m.aggregate_type,
                    m.aggregate_id,
                    m.sequence,
                    m.event_type
                );
            }
            let _ = writeln!(
                human,
                "repair: stop every relay, then \
                 UPDATE checkpoints SET tx_id = '{tx}'::xid8, global_position = {position} \
                 WHERE name = '{}'; and start them: the relay publishes again from there, and \
                 consumers drop what they already have (docs/decisions.md, 39)",
                ctx.settings.relay.checkpoint
            );
        }
    }
    ctx.print(
        &json!({
            "checkpoint": { "name": ctx.settings.relay.checkpoint,
                            "tx_id": checkpoint.tx_id.to_string(),
                            "global_position": checkpoint.global_position },
            "checked": checked,
            "on_topics": published.len(),
            "held_back": held_back,
            "missing_count": count,
            "missing": missing,
            "rewind_to": rewind.map(|(tx_id, global_position)|
                json!({ "tx_id": tx_id, "global_position": global_position })),
        }),
        &human,
    );
    Ok(if count == 0 { exit::OK } else { exit::FAILED })
}

/// The global positions (header `global_position`) of every message on every aggregate topic
/// above `since`, read to the high watermarks without a consumer group.
fn published_positions(s: &crate::config::Settings, since: i64) -> anyhow::Result<HashSet<i64>> {
    let topics: HashSet<String> = chaos_schemas::AGGREGATES
        .iter()
        .map(|a| s.kafka.topic(&chaos_schemas::topic_for(a.name)))
        .collect();
    let mut positions = HashSet::new();
    crate::topics::read_to_end(
        s,
        "chaosctl-relay-audit",
        |topic| topics.contains(topic),
        Some("relay audit: topics"),
        |m| {
            let position = crate::topics::header(m, chaos_schemas::headers::GLOBAL_POSITION)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<i64>().ok());
            match position {
                Some(p) if p > since => {
                    positions.insert(p);
                }
                Some(_) => {}
                None => tracing::warn!(
                    topic = m.topic(),
                    partition = m.partition(),
                    offset = m.offset(),
                    "a message without a global_position header"
                ),
            }
        },
    )?;
    Ok(positions)
}
