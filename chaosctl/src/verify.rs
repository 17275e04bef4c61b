//! `chaosctl verify <read model> [--sample N | --all]`: recomputes documents from the event store
//! and reports every difference.
//!
//! For each document of the served version: its source streams are read from the event store up
//! to the positions the document records, merged in global order, and applied through the same
//! views to an empty in-memory store; the recomputed document (events applied, positions, body),
//! its log entries and its board scores must equal the stored ones. A document written while it
//! is checked is compared at the positions it recorded when read, so live traffic is no
//! difference; a log entry past those positions is not compared.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use chaos_eventstore::publish::to_published;
use chaos_readmodel::{DocumentStore, KeyKind, Keys, MemoryStore, View, ViewProjection};
use chaos_schemas::PublishedEvent;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::checksum::{canonical, keys_under};
use crate::cli::Model;
use crate::deploy::{EventStore, ReadModels};
use crate::{exit, Ctx};

/// One difference found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Difference {
    pub key: String,
    pub what: String,
    pub expected: Value,
    pub found: Value,
}

pub async fn run(ctx: &Ctx, model: Model, sample: Option<usize>) -> anyhow::Result<u8> {
    let rm = ReadModels::open(ctx, model).await?;
    let events = EventStore::open(ctx).await?;
    let keys = rm.served().await?;
    let root = keys.root();
    let mut docs: Vec<(String, Arc<dyn View>, String)> = keys_under(rm.store.as_ref(), &root)
        .await?
        .into_iter()
        .filter(|(_, kind)| *kind == KeyKind::Document)
        .filter_map(|(key, _)| {
            let (view, id) = key[root.len()..].split_once(':')?;
            let id = id.strip_prefix('{')?.strip_suffix('}')?.to_owned();
            let view = rm.views.iter().find(|v| v.name() == view)?.clone();
            Some((key, view, id))
        })
        .collect();
    let total = docs.len();
    if let Some(n) = sample {
        // A different sample each run: order by a hash of the key salted with the time.
        let salt = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        docs.sort_by_cached_key(|(key, _, _)| {
            let mut h = Sha256::new();
            h.update(salt.to_le_bytes());
            h.update(key.as_bytes());
            h.finalize().to_vec()
        });
        docs.truncate(n);
    }
    let mut differences = Vec::new();
    for (key, view, id) in &docs {
        differences.extend(check(rm.store.as_ref(), &events, &keys, view, id, key).await?);
    }
    let mut human = format!(
        "verified {} of {} documents of {} {}: {} differences\n",
        docs.len(),
        total,
        model.name(),
        keys.model_version,
        differences.len()
    );
    for d in &differences {
        let _ = writeln!(
            human,
            "  {} {}\n    expected: {}\n    found:    {}",
            d.key, d.what, d.expected, d.found
        );
    }
    ctx.print(
        &json!({
            "read_model": model.name(),
            "model_version": keys.model_version,
            "documents": total,
            "checked": docs.len(),
            "differences": differences,
        }),
        &human,
    );
    Ok(if differences.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// Recomputes one document and compares it.
async fn check(
    store: &dyn DocumentStore,
    events: &EventStore,
    keys: &Keys,
    view: &Arc<dyn View>,
    id: &str,
    key: &str,
) -> anyhow::Result<Vec<Difference>> {
    let diff = |what: &str, expected: Value, found: Value| Difference {
        key: key.to_owned(),
        what: what.to_owned(),
        expected,
        found,
    };
    let Some(stored) = store.get(key).await? else {
        return Ok(Vec::new()); // deleted since the scan
    };
    // The source streams up to the recorded positions, merged in global order.
    let mut replay: Vec<PublishedEvent> = Vec::new();
    for (source, position) in &stored.positions {
        let Some((aggregate_type, aggregate_id)) = source.split_once('/') else {
            return Ok(vec![diff("positions", json!("<type>/<id>"), json!(source))]);
        };
        let stream = events
            .stream(aggregate_type, aggregate_id, Some(*position as i64))
            .await?;
        if stream.len() as u64 != *position {
            return Ok(vec![diff(
                &format!("position of {source}"),
                json!(stream.len()),
                json!(position),
            )]);
        }
        for s in &stream {
            replay.push(to_published(s)?);
        }
    }
    replay.sort_by_key(|e| e.envelope.global_position);
    let memory = Arc::new(MemoryStore::default());
    let projection = ViewProjection::new(memory.clone(), keys.clone(), vec![view.clone()]);
    projection.apply_batch(&replay).await?;
    let mut out = Vec::new();
    let Some(expected) = memory.get(key).await? else {
        out.push(diff("document", Value::Null, json!("present")));
        return Ok(out);
    };
    if expected.applied != stored.applied {
        out.push(diff(
            "applied",
            json!(expected.applied),
            json!(stored.applied),
        ));
    }
    if expected.positions != stored.positions {
        out.push(diff(
            "positions",
            json!(expected.positions),
            json!(stored.positions),
        ));
    }
    let expected_body = expected.body.to_value()?;
    match stored.body.to_value() {
        Ok(stored_body) if canonical(&expected_body) != canonical(&stored_body) => {
            for (path, e, f) in json_differences("", &expected_body, &stored_body) {
                out.push(diff(&format!("body{path}"), e, f));
            }
        }
        Ok(_) => {}
        Err(e) => out.push(diff(
            "body",
            expected_body.clone(),
            json!(format!("not JSON: {e}")),
        )),
    }
    for log in view.logs() {
        let log_key = keys.log(view.name(), log, id);
        let want = read_log(memory.as_ref(), &log_key).await?;
        let mut have = read_log(store, &log_key).await?;
        // Entries past the last expected one were written after the document was read.
        let last = want.keys().next_back().copied().unwrap_or(0);
        have.retain(|score, _| *score <= last);
        let differing = want.iter().filter(|(s, e)| have.get(*s) != Some(e)).count()
            + have.keys().filter(|s| !want.contains_key(s)).count();
        if differing > 0 {
            out.push(diff(
                &format!("log {log}"),
                json!(format!("{} entries", want.len())),
                json!(format!("{} entries, {differing} differ", have.len())),
            ));
        }
    }
    for (board, score) in view.boards(id, &expected_body) {
        let board_key = keys.board(view.name(), &board);
        let found = store.board_rank(&board_key, id).await?.map(|(_, s)| s);
        if found != Some(score) {
            out.push(diff(&format!("board {board}"), json!(score), json!(found)));
        }
    }
    Ok(out)
}

async fn read_log(store: &dyn DocumentStore, key: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store.log_range(key, after, 1000).await?;
        let full = page.len() == 1000;
        for (score, entry) in page {
            after = score;
            out.insert(score, canonical(&entry));
        }
        if !full {
            return Ok(out);
        }
    }
}

/// Where two JSON values differ: (path, expected, found) per differing leaf or shape.
fn json_differences(path: &str, expected: &Value, found: &Value) -> Vec<(String, Value, Value)> {
    match (expected, found) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = Vec::new();
            for (k, va) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(vb) => out.extend(json_differences(&p, va, vb)),
                    None => out.push((p, va.clone(), Value::Null)),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push((format!("{path}.{k}"), Value::Null, vb.clone()));
                }
            }
            out
        }
        (a, b) if canonical(a) == canonical(b) => Vec::new(),
        (a, b) => vec![(path.to_owned(), a.clone(), b.clone())],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_differences_name_the_paths() {
        let a = serde_json::json!({"x": 1, "y": {"z": [1, 2]}, "gone": true});
        let b = serde_json::json!({"x": 2, "y": {"z": [1, 2]}, "new": 0});
        let d = super::json_differences("", &a, &b);
        let paths: Vec<&str> = d.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(paths, vec![".x", ".gone", ".new"]);
    }
}
