//! `chaosctl relay stopped | resume <aggregate> <id>`: the relay's stopped streams
//! (`relay_stopped_streams`, see command-api/src/relay/streams.rs).

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;

use crate::deploy::EventStore;
use crate::{exit, Ctx};

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
