//! `chaosctl history <aggregate> <id> [--at N]`: the events and the state folded at version N.

use std::fmt::Write;

use chaos_schemas::AnyEvent;
use serde_json::json;

use crate::deploy::EventStore;
use crate::{exit, Ctx, Usage};

pub async fn run(ctx: &Ctx, aggregate: &str, id: &str, at: Option<u64>) -> anyhow::Result<u8> {
    if !chaos_schemas::AGGREGATES
        .iter()
        .any(|a| a.name == aggregate)
    {
        let known: Vec<&str> = chaos_schemas::AGGREGATES.iter().map(|a| a.name).collect();
        return Err(Usage(format!(
            "unknown aggregate {aggregate:?} (one of: {})",
            known.join(", ")
        ))
        .into());
    }
    let store = EventStore::open(ctx).await?;
    let stored = store.stream(aggregate, id, None).await?;
    let latest = stored.last().map_or(0, |e| e.sequence as u64);
    if latest == 0 {
        eprintln!("chaosctl: no events for {aggregate} {id}");
        return Ok(exit::FAILED);
    }
    let version = at.unwrap_or(latest);
    if version == 0 || version > latest {
        return Err(Usage(format!(
            "--at {version}: the {aggregate} is at version {latest}"
        ))
        .into());
    }
    let shown = &stored[..version as usize];
    let mut events = Vec::with_capacity(shown.len());
    for s in shown {
        events.push(
            AnyEvent::from_stored_json(
                &s.aggregate_type,
                &s.event_type,
                &s.event_version,
                s.payload.get(),
            )
            .map_err(|e| anyhow::anyhow!("event {} does not decode: {e}", s.sequence))?,
        );
    }
    let state = AnyEvent::fold_state(aggregate, &events)?;
    let rows: Vec<serde_json::Value> = shown
        .iter()
        .zip(&events)
        .map(|(s, e)| {
            json!({
                "sequence": s.sequence,
                "type": s.event_type,
                "version": s.event_version,
                "time": s.occurred_at().unwrap_or_else(|| e.occurred_at()).to_rfc3339(),
                "global_position": s.position.global_position,
                "payload": s.payload_value(),
            })
        })
        .collect();
    let mut human = format!("{aggregate} {id}: {latest} events\n\n");
    for r in &rows {
        let _ = writeln!(
            human,
            "{:>6}  {:<24} {}  {}",
            r["sequence"].as_i64().unwrap_or(0),
            r["type"].as_str().unwrap_or(""),
            r["time"].as_str().unwrap_or(""),
            r["payload"]
        );
    }
    if version < latest {
        let _ = writeln!(human, "   ...  {} later events not shown", latest - version);
    }
    let _ = writeln!(
        human,
        "\nstate at version {version}:\n{}",
        serde_json::to_string_pretty(&state).unwrap_or_default()
    );
    ctx.print(
        &json!({
            "aggregate_type": aggregate,
            "aggregate_id": id,
            "latest": latest,
            "version": version,
            "events": rows,
            "state": state,
        }),
        &human,
    );
    Ok(exit::OK)
}
