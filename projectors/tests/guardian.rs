//! A lost read model is rebuilt once, however many processes find it lost: the replicas of a
//! projector share one store, and only the holder of the rebuild lease rebuilds it.

use std::sync::Arc;

use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::testing::fresh_sqlite;
use chaos_eventstore::EventLog;
use chaos_projectors::runner::{Guardian, ProjectorMetrics};
use chaos_readmodel::{Keys, MemoryStore, ViewProjection};
use prometheus::Registry;

mod common;
use common::history;

/// A guardian over `store` with metrics of its own, to count its rebuilds.
fn guardian(
    store: &Arc<MemoryStore>,
    log: &Arc<dyn EventLog>,
) -> (Guardian, ViewProjection, ProjectorMetrics) {
    let metrics = ProjectorMetrics::new(&Registry::new());
    let projection = ViewProjection::new(
        store.clone(),
        Keys::new("g:", "v1"),
        chaos_readmodel::views::all(),
    );
    let guardian = Guardian::new("redis", projection.clone(), log.clone(), metrics.clone());
    (guardian, projection, metrics)
}

fn rebuilds(metrics: &ProjectorMetrics) -> u64 {
    metrics.rebuilds.with_label_values(&["redis"]).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_that_find_the_store_lost_rebuild_it_once() {
    let (pool, _dir) = fresh_sqlite().await;
    let repo = SqliteEventRepository::new(pool);
    let ids = history(&repo).await;
    let log: Arc<dyn EventLog> = Arc::new(repo.log());
    let store = Arc::new(MemoryStore::default());
    let (first, projection, first_metrics) = guardian(&store, &log);
    let (second, _, second_metrics) = guardian(&store, &log);

    // Both find the store without its marker at once.
    let (a, b) = tokio::join!(first.check(), second.check());
    a.unwrap();
    b.unwrap();
    assert!(projection.is_marked().await.unwrap());
    assert_eq!(
        rebuilds(&first_metrics) + rebuilds(&second_metrics),
        1,
        "one of the two rebuilt the store"
    );
    for id in &ids {
        let sheet = projection
            .store()
            .get(&projection.keys().doc("sheet", id))
            .await
            .unwrap();
        assert!(sheet.is_some_and(|d| d.applied > 0), "sheet {id} rebuilt");
    }

    // Another process holds the lease of a store found lost again: it is left to that one,
    // until the lease is given up (or runs out), and then rebuilt here.
    let lost = Arc::new(MemoryStore::default());
    let (waiting, projection, metrics) = guardian(&lost, &log);
    let minute = std::time::Duration::from_secs(60);
    assert!(projection
        .take_rebuild_lease("elsewhere", minute)
        .await
        .unwrap());
    waiting.check().await.unwrap();
    assert!(!projection.is_marked().await.unwrap());
    assert_eq!(rebuilds(&metrics), 0);
    projection.release_rebuild_lease("elsewhere").await.unwrap();
    waiting.check().await.unwrap();
    assert!(projection.is_marked().await.unwrap());
    assert_eq!(rebuilds(&metrics), 1);
}
