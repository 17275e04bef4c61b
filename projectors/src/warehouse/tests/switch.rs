//! The switch to a rebuilt file, with and without a live writer, and after a crash.

use std::time::Duration;

use super::super::switch::{self, SwitchRequest};
use super::super::{rebuild_path, Warehouse, STORE_FEED};
use super::{count, life, purse, TempDir};
use crate::runner::{FeedOffset, Verdict};
use chaos_schemas::PublishedEvent;

fn history() -> Vec<PublishedEvent> {
    let mut events = life("c-1");
    events.extend(purse("c-1"));
    events.extend(life("c-2"));
    events
}

/// A warehouse built from scratch from `events`, in one batch: what a switch must end equal to.
async fn scratch(dir: &TempDir, events: &[PublishedEvent]) -> super::super::Checksum {
    let w = Warehouse::open(
        dir.0
            .join(format!("scratch-{}.duckdb", uuid::Uuid::new_v4())),
    )
    .await
    .unwrap();
    w.apply_batch(events, &[]).await.unwrap();
    let sum = w.checksum().await.unwrap();
    w.close().await.unwrap();
    sum
}

#[tokio::test]
async fn without_a_live_process_the_switch_merges_and_renames() {
    let dir = TempDir::new();
    let events = history();
    let live = dir.db();
    // The live file has the first 20 events (offsets of a feed at 20), the rebuild the first 25:
    // each holds something the other lacks only if the live one got events out of order, so
    // also give the live one an event the rebuild never saw.
    let w = Warehouse::open(&live).await.unwrap();
    w.apply_batch(&events[..20], &[FeedOffset::new(STORE_FEED, 0, 20)])
        .await
        .unwrap();
    w.apply_batch(&events[30..31], &[]).await.unwrap();
    w.close().await.unwrap();
    let rebuilt = Warehouse::open_rebuild(&live).await.unwrap();
    assert_eq!(rebuilt.path(), rebuild_path(&live));
    // A Kafka rebuild's consumer group is made once and kept in the file.
    let group = rebuilt
        .rebuild_group("chaos-projector-warehouse")
        .await
        .unwrap();
    assert!(group.starts_with("chaos-projector-warehouse-rebuild-"));
    assert_eq!(rebuilt.rebuild_group("other").await.unwrap(), group);
    assert_eq!(rebuilt.path(), dir.0.join("warehouse.rebuild.duckdb"));
    rebuilt
        .apply_batch(&events[..25], &[FeedOffset::new(STORE_FEED, 0, 25)])
        .await
        .unwrap();
    let ack = rebuilt
        .switch_into(&live, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!((ack.by.as_str(), ack.merged_events), ("offline", 1));
    assert!(!rebuild_path(&live).exists());

    let w = Warehouse::open(&live).await.unwrap();
    assert_eq!(count(&w, "events").await, 26);
    assert_eq!(
        w.offsets(STORE_FEED).await.unwrap(),
        vec![FeedOffset::new(STORE_FEED, 0, 25)]
    );
    let mut expected: Vec<PublishedEvent> = events[..25].to_vec();
    expected.push(events[30].clone());
    assert_eq!(w.checksum().await.unwrap(), scratch(&dir, &expected).await);
}

#[tokio::test]
async fn a_live_writer_switches_between_batches_and_goes_on() {
    let dir = TempDir::new();
    let events = history();
    let live = dir.db();
    let w = Warehouse::open(&live).await.unwrap();
    w.apply_batch(&events[..10], &[FeedOffset::new(STORE_FEED, 0, 10)])
        .await
        .unwrap();
    // One the rebuild never sees (the live feed got it early): the merge must carry it over.
    w.apply_batch(&events[20..21], &[]).await.unwrap();
    let rebuilt = Warehouse::open_rebuild(&live).await.unwrap();
    rebuilt
        .apply_batch(&events[..15], &[FeedOffset::new(STORE_FEED, 0, 15)])
        .await
        .unwrap();
    // While the switch is pending, the live feed goes on (the switch waits for its poll).
    let switching = tokio::spawn({
        let live = live.clone();
        async move { rebuilt.switch_into(&live, Duration::from_secs(10)).await }
    });
    w.apply_batch(&events[10..12], &[FeedOffset::new(STORE_FEED, 0, 12)])
        .await
        .unwrap();
    let ack = switching.await.unwrap().unwrap();
    assert_eq!(ack.by, "live");
    assert!(ack.is_ok());
    assert!(!switch::request_path(&live).exists());
    // The live feed resumes from its own position: what the rebuild held beyond it is refused
    // as duplicates, what comes after is applied, nothing is missing.
    let verdicts = w
        .apply_batch(&events[12..], &[FeedOffset::new(STORE_FEED, 0, 40)])
        .await
        .unwrap();
    let duplicates = verdicts
        .iter()
        .filter(|v| **v == Verdict::Duplicate)
        .count();
    // 12..15 were in the rebuild, 20 came over by the merge.
    assert_eq!(duplicates, 4);
    assert_eq!(ack.merged_events, 1, "{ack:?}");
    assert_eq!(count(&w, "events").await, events.len() as u64);
    assert_eq!(w.checksum().await.unwrap(), scratch(&dir, &events).await);
    // The file at the live path is the rebuilt one (the rebuild's name is gone).
    assert!(!rebuild_path(&live).exists());
    w.close().await.unwrap();
}

#[tokio::test]
async fn a_request_is_answered_after_a_crash_and_a_bad_one_changes_nothing() {
    let dir = TempDir::new();
    let live = dir.db();
    let w = Warehouse::open(&live).await.unwrap();
    w.apply_batch(&life("c-1"), &[]).await.unwrap();
    let before = w.checksum().await.unwrap();

    // A request naming a file that does not exist: refused, the live file untouched.
    let missing = SwitchRequest {
        id: "bad".into(),
        rebuilt: dir.0.join("nothing.duckdb"),
    };
    // As chaosctl writes it (the live writer may look at any moment: a file it finds half
    // written is an unreadable request).
    switch::write_atomically(
        &switch::request_path(&live),
        &serde_json::to_vec(&missing).unwrap(),
    )
    .unwrap();
    w.serve_switch_request().await.unwrap();
    let ack: switch::SwitchAck =
        serde_json::from_slice(&std::fs::read(switch::ack_path(&live)).unwrap()).unwrap();
    assert_eq!(ack.id, "bad");
    assert!(ack.error.unwrap().contains("is not a file"));
    assert!(!switch::request_path(&live).exists());
    assert_eq!(w.checksum().await.unwrap(), before);

    // A request whose rename happened before a crash (the rebuilt name is gone, the live file
    // carries the request id): acknowledged as done, again, without touching anything.
    let rebuilt = Warehouse::open_rebuild(&live).await.unwrap();
    rebuilt.apply_batch(&life("c-1"), &[]).await.unwrap();
    let request = SwitchRequest {
        id: "done-before".into(),
        rebuilt: rebuild_path(&live),
    };
    rebuilt.close().await.unwrap();
    switch::write_atomically(
        &switch::request_path(&live),
        &serde_json::to_vec(&request).unwrap(),
    )
    .unwrap();
    w.serve_switch_request().await.unwrap();
    let first: switch::SwitchAck =
        serde_json::from_slice(&std::fs::read(switch::ack_path(&live)).unwrap()).unwrap();
    assert!(first.is_ok(), "{first:?}");
    switch::write_atomically(
        &switch::request_path(&live),
        &serde_json::to_vec(&request).unwrap(),
    )
    .unwrap();
    w.serve_switch_request().await.unwrap();
    let again: switch::SwitchAck =
        serde_json::from_slice(&std::fs::read(switch::ack_path(&live)).unwrap()).unwrap();
    assert_eq!((again.id.as_str(), again.error), ("done-before", None));
    assert_eq!(again.merged_events, 0);
    assert_eq!(w.checksum().await.unwrap(), before);
    w.close().await.unwrap();
}
