//! The whole distributed topology (`./run.sh --distributed`, `bench --spawn`): command API,
//! relay, the Redis, MongoDB and warehouse projectors, the process managers and the query API,
//! against the real services. A player's timeline and career are served from MongoDB over HTTP
//! exactly as the event store holds the events, paged, by time range, revalidated by ETag, and
//! private to their owner; the warehouse projector keeps up.
//!
//! Needs `deploy/local/services.sh up` and the binaries (`cargo build --workspace --bins`).

use std::time::Duration;

use chaos_tests::process::metric_value;
use chaos_tests::wait::wait_until;
use chaos_tests::{Stack, StackOptions};
use serde_json::Value;

const PIPELINE: Duration = Duration::from_secs(90);

/// `(aggregate_type, sequence, event_type)` of each entry or event.
fn keys(items: &[Value]) -> Vec<(String, u64, String)> {
    items
        .iter()
        .map(|e| {
            (
                e["aggregate_type"]
                    .as_str()
                    .unwrap_or("character")
                    .to_owned(),
                e["sequence"].as_u64().unwrap_or(0),
                e["event_type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_topology_serves_timelines_and_careers_from_mongodb() {
    let stack = Stack::start(StackOptions {
        mongo: true,
        warehouse: true,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let api = stack.commands();
    let owner = api.player("chronicler").await.unwrap();
    let stranger = api.player("onlooker").await.unwrap();
    let created = api
        .create_character(&owner.token, "Clio", "warrior", &[])
        .await
        .unwrap()
        .answer()
        .unwrap();
    let id = created.aggregate_id;
    let cast = api
        .cast_skill(&owner.token, &id, "strike", &[])
        .await
        .unwrap();
    assert_eq!(cast.status, 200, "{cast:?}");
    let travelled = api
        .travel(&owner.token, &id, "starter_meadow")
        .await
        .unwrap();
    assert_eq!(travelled.status, 200, "{travelled:?}");
    let last = travelled.answer().unwrap();

    // The character's own events, from the event store.
    let history = api.history(&owner.token, &id).await.unwrap();
    let stored = history.body["events"].as_array().cloned().unwrap();
    assert_eq!(stored.len() as u64, last.sequence);

    let queries = stack.anonymous_queries().with_token(&owner.token);
    let path = format!("/v1/characters/{id}/timeline?limit=500");
    // Waits on the last command's token: the timeline holds at least that version.
    let page = queries
        .get(&path, &[("Consistency-Token", &last.consistency_token)])
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{page:?}");
    // The wallet (opened by the rewards process manager after the creation) joins the timeline
    // on its own time; from then on nothing changes it. Every read on the way is one state:
    // the page's count (the timeline document) equals its entries (the log, written apart).
    let page = wait_until(
        "the timeline holds the wallet's opening too",
        PIPELINE,
        Duration::from_millis(100),
        || async {
            let page = queries.get(&path, &[]).await.map_err(|e| e.to_string())?;
            let entries = page.body["entries"].as_array().cloned().unwrap_or_default();
            assert_eq!(
                page.body["total"].as_u64(),
                Some(entries.len() as u64),
                "a page's total and its entries describe one state: {page:?}"
            );
            if entries.iter().any(|e| e["aggregate_type"] == "wallet") {
                Ok(Some(page))
            } else {
                Err(format!("{page:?}"))
            }
        },
    )
    .await
    .unwrap();
    let entries = page.body["entries"].as_array().cloned().unwrap();
    let character: Vec<Value> = entries
        .iter()
        .filter(|e| e["aggregate_type"] == "character")
        .cloned()
        .collect();
    assert_eq!(
        keys(&character),
        keys(&stored),
        "the timeline's character entries are the stored events, in order"
    );
    assert_eq!(page.body["total"].as_u64(), Some(entries.len() as u64));
    assert!(page.body["next_after"].is_null(), "one page: {page:?}");

    // A page at a time: the same entries.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let p = queries
            .get(
                &format!("/v1/characters/{id}/timeline?limit=1&after={after}"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(p.status, 200, "{p:?}");
        paged.extend(p.body["entries"].as_array().cloned().unwrap());
        match p.body["next_after"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
        assert!(paged.len() <= entries.len(), "paging does not end");
    }
    assert_eq!(keys(&paged), keys(&entries));

    // By time range: from the last entry's time on, and before the first entry's time.
    let at = |e: &Value| e["at"].as_i64().unwrap();
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let (first_at, last_at) = (at(&entries[0]), at(entries.last().unwrap()));
    let late = queries
        .get(
            &format!("/v1/characters/{id}/timeline?from={}", iso(last_at)),
            &[],
        )
        .await
        .unwrap();
    let expected_late = entries.iter().filter(|e| at(e) >= last_at).count();
    assert_eq!(
        late.body["entries"].as_array().map(Vec::len),
        Some(expected_late),
        "{late:?}"
    );
    let early = queries
        .get(
            &format!("/v1/characters/{id}/timeline?to={}", iso(first_at)),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(early.body["entries"].as_array().map(Vec::len), Some(0));

    // Revalidation: the same page with its ETag is 304.
    let etag = page.header("etag").unwrap().to_owned();
    let again = queries
        .get(&path, &[("If-None-Match", &etag)])
        .await
        .unwrap();
    assert_eq!(again.status, 304, "{again:?}");

    // Private: another player's token is refused.
    stack
        .anonymous_queries()
        .with_token(&stranger.token)
        .get(&path, &[])
        .await
        .unwrap()
        .assert_problem(403, Some("forbidden"));

    // The career is public, without the currency totals for strangers.
    let career = stack
        .anonymous_queries()
        .get(
            &format!("/v1/characters/{id}/career"),
            &[("Consistency-Token", &last.consistency_token)],
        )
        .await
        .unwrap();
    assert_eq!(career.status, 200, "{career:?}");
    assert_eq!(career.body["character"]["name"], "Clio", "{career:?}");
    assert!(career.body.get("granted").is_none(), "{career:?}");
    assert!(career.body.get("spent").is_none(), "{career:?}");

    // The warehouse projector took every event of both topics and is not behind.
    let warehouse = stack.warehouse_projector.as_ref().unwrap();
    let total = stack.store().count().await.unwrap() as u64;
    wait_until(
        "the warehouse projector has applied every stored event",
        PIPELINE,
        Duration::from_millis(200),
        || async {
            let metrics = warehouse.metrics().await.map_err(|e| e.to_string())?;
            let applied = metric_value(&metrics, "chaos_projector_events_applied_total")
                .unwrap_or(0.0) as u64;
            if applied >= total {
                Ok(Some(()))
            } else {
                Err(format!("{applied} of {total} applied"))
            }
        },
    )
    .await
    .unwrap();
}
