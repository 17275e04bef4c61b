//! Idempotence, atomicity of rows and offsets, positions, the file's own facts.

use chaos_eventstore::Position;
use chrono::Utc;
use uuid::Uuid;

use super::super::rows::{self, MappedBatch, TableRows};
use super::super::writer::Writer;
use super::super::{schema, Warehouse, STORE_FEED};
use super::{count, counts, life, purse, query_strings, TempDir};
use crate::runner::{FeedOffset, Verdict};
use chaos_schemas::PublishedEvent;

/// A live warehouse, or a rebuild target (its own checkpoint threshold): both append `events`
/// rows unchecked while nothing conflicts, and both must refuse replays and impostors alike.
async fn open(dir: &TempDir, rebuild: bool) -> Warehouse {
    let w = Warehouse::open(dir.db()).await.unwrap();
    if rebuild {
        w.for_rebuild().await.unwrap()
    } else {
        w
    }
}

#[tokio::test]
async fn replaying_a_batch_changes_nothing() {
    for rebuild in [false, true] {
        let dir = TempDir::new();
        let w = open(&dir, rebuild).await;
        replaying_a_batch_changes_nothing_in(&w).await;
    }
}

async fn replaying_a_batch_changes_nothing_in(w: &Warehouse) {
    let events = life("c-1");
    let feed = "chaos.character.events";
    w.apply_batch(&events[..3], &[FeedOffset::new(feed, 0, 3)])
        .await
        .unwrap();
    let before = counts(w).await;
    let checksum = w.checksum().await.unwrap();

    let again = w
        .apply_batch(&events[..3], &[FeedOffset::new(feed, 0, 3)])
        .await
        .unwrap();
    assert_eq!(again, vec![Verdict::Duplicate; 3]);
    assert_eq!(counts(w).await, before);
    assert_eq!(w.checksum().await.unwrap(), checksum);

    // An overlapping batch (a re-send after a crash) applies only what is new.
    let overlap = w
        .apply_batch(&events[1..5], &[FeedOffset::new(feed, 0, 5)])
        .await
        .unwrap();
    assert_eq!(
        overlap,
        vec![
            Verdict::Duplicate,
            Verdict::Duplicate,
            Verdict::Applied,
            Verdict::Applied
        ]
    );
    assert_eq!(count(w, "events").await, 5);
    // A replay from an older offset never moves the checkpoint back.
    w.apply_batch(&events[..1], &[FeedOffset::new(feed, 0, 1)])
        .await
        .unwrap();
    assert_eq!(
        w.offsets(feed).await.unwrap(),
        vec![FeedOffset::new(feed, 0, 5)]
    );
}

#[tokio::test]
async fn every_table_is_idempotent_under_redelivery_in_any_batching() {
    for rebuild in [false, true] {
        let dir = TempDir::new();
        let w = open(&dir, rebuild).await;
        every_table_is_idempotent_under_redelivery_in_any_batching_in(&w).await;
    }
}

async fn every_table_is_idempotent_under_redelivery_in_any_batching_in(w: &Warehouse) {
    let mut events = life("c-1");
    events.extend(purse("c-1"));
    w.apply_batch(&events, &[]).await.unwrap();
    let once = counts(w).await;
    let checksum = w.checksum().await.unwrap();
    // Redelivered one by one, in reverse, and as one batch holding each twice.
    for e in events.iter().rev() {
        let v = w.apply_batch(std::slice::from_ref(e), &[]).await.unwrap();
        assert_eq!(v, vec![Verdict::Duplicate]);
    }
    let twice: Vec<PublishedEvent> = events.iter().chain(events.iter()).cloned().collect();
    let v = w.apply_batch(&twice, &[]).await.unwrap();
    assert!(v.iter().all(|v| *v == Verdict::Duplicate), "{v:?}");
    assert_eq!(counts(w).await, once);
    assert_eq!(w.checksum().await.unwrap(), checksum);
}

#[tokio::test]
async fn duplicates_and_conflicts_within_and_across_batches() {
    for rebuild in [false, true] {
        let dir = TempDir::new();
        let w = open(&dir, rebuild).await;
        duplicates_and_conflicts_within_and_across_batches_in(&w).await;
    }
}

async fn duplicates_and_conflicts_within_and_across_batches_in(w: &Warehouse) {
    let events = life("c-1");
    let mut impostor = events[1].clone();
    impostor.envelope.event_id = Uuid::new_v4();
    let batch = vec![
        events[0].clone(),
        events[1].clone(),
        events[1].clone(),
        impostor.clone(),
    ];
    let verdicts = w.apply_batch(&batch, &[]).await.unwrap();
    assert_eq!(
        verdicts[..3],
        [Verdict::Applied, Verdict::Applied, Verdict::Duplicate]
    );
    assert!(matches!(&verdicts[3], Verdict::DeadLetter(r) if r.contains("sequence 2")));

    // Across batches: the mapping refuses the impostor again (its id is not its position's),
    // and the database's key refuses the replay of a stored event.
    let verdicts = w
        .apply_batch(&[impostor, events[1].clone()], &[])
        .await
        .unwrap();
    assert!(matches!(&verdicts[0], Verdict::DeadLetter(r) if r.contains("is not the id of")));
    assert_eq!(verdicts[1], Verdict::Duplicate);
    assert_eq!(count(w, "events").await, 2);
    assert_eq!(count(w, "characters").await, 1);
    assert_eq!(count(w, "skill_casts").await, 1);
}

#[tokio::test]
async fn offsets_commit_with_rows_or_not_at_all() {
    let dir = TempDir::new();
    let events = life("c-1");
    let feed = "chaos.character.events";
    let content = std::sync::Arc::new(chaos_domain::Content::builtin().unwrap());
    let mut writer = Writer::open(&dir.db(), content).unwrap();
    let batch = |events: &[PublishedEvent]| -> MappedBatch { rows::batch_rows(events) };
    writer
        .apply(
            batch(&events[..2]),
            &[FeedOffset::new(feed, 0, 7), FeedOffset::new(feed, 3, 2)],
            Utc::now(),
        )
        .unwrap();

    // A batch that fails half-way (its last modelled row cannot be appended) leaves neither its
    // rows nor its offsets behind.
    let mut failing = batch(&events[2..]);
    let last = u32::try_from(failing.keys.len() - 1).unwrap();
    failing.modelled.push(TableRows {
        table: schema::ZONE_ENTRIES,
        rows: Some(
            duckdb::arrow::record_batch::RecordBatch::try_new_with_options(
                std::sync::Arc::new(duckdb::arrow::datatypes::Schema::empty()),
                vec![],
                &duckdb::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(1)),
            )
            .unwrap(),
        ),
        owners: vec![last],
    });
    let err = writer.apply(failing, &[FeedOffset::new(feed, 0, 10)], Utc::now());
    assert!(err.is_err());
    let events_rows = writer
        .counts()
        .unwrap()
        .into_iter()
        .find(|c| c.table == "events")
        .unwrap();
    assert_eq!(events_rows.rows, 2);
    assert_eq!(
        writer.offsets(feed).unwrap(),
        vec![FeedOffset::new(feed, 0, 7), FeedOffset::new(feed, 3, 2)]
    );
    drop(writer);

    // Committed state survives reopening; the failed batch applies cleanly when retried.
    let w = Warehouse::open(dir.db()).await.unwrap();
    let verdicts = w
        .apply_batch(&events[2..], &[FeedOffset::new(feed, 0, 10)])
        .await
        .unwrap();
    assert_eq!(verdicts, vec![Verdict::Applied; events.len() - 2]);
    assert_eq!(
        w.offsets(feed).await.unwrap(),
        vec![FeedOffset::new(feed, 0, 10), FeedOffset::new(feed, 3, 2)]
    );
    assert!(w.offsets(STORE_FEED).await.unwrap().is_empty());
    w.close().await.unwrap();
}

#[tokio::test]
async fn the_store_position_keeps_its_tx_id_and_never_moves_back() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    assert_eq!(w.store_position(STORE_FEED).await.unwrap(), Position::START);
    // Only the feed's offset (the embedded store): the position it implies, tx_id 0.
    w.apply_batch(&life("c-1")[..1], &[FeedOffset::new(STORE_FEED, 0, 8)])
        .await
        .unwrap();
    let implied = Position {
        tx_id: 0,
        global_position: 7,
    };
    assert_eq!(w.store_position(STORE_FEED).await.unwrap(), implied);
    let checkpoint = w.store_checkpoint();
    assert_eq!(checkpoint.load().await.unwrap(), implied);
    // A PostgreSQL position saved by the checkpoint wins, and survives reopening.
    let pg = Position {
        tx_id: 4_000_000_123,
        global_position: 7,
    };
    checkpoint.save(pg).await.unwrap();
    checkpoint
        .save(Position {
            tx_id: 4_000_000_100,
            global_position: 90,
        })
        .await
        .unwrap();
    w.close().await.unwrap();
    let w = Warehouse::open(dir.db()).await.unwrap();
    assert_eq!(w.store_checkpoint().load().await.unwrap(), pg);
}

#[tokio::test]
async fn content_dimensions_carry_the_content_version() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let content = chaos_domain::Content::builtin().unwrap();
    let conn = w.connect().await.unwrap();
    for (table, expected) in [
        ("classes", content.classes.len()),
        ("skills", content.skills.len()),
        ("zones", content.zones.len()),
        ("items", content.items.len()),
        ("npcs", content.npcs.len()),
        ("recipes", content.recipes.len()),
        (
            "recipe_ingredients",
            content.recipes.values().map(|r| r.ingredients.len()).sum(),
        ),
    ] {
        let versions = query_strings(
            &conn,
            &format!("SELECT DISTINCT content_version FROM {table}"),
        );
        assert_eq!(versions, vec![content.version.clone()], "{table}");
        assert_eq!(count(&w, table).await, expected as u64, "{table}");
    }
    let wolf = query_strings(
        &conn,
        "SELECT concat_ws('|', name, level, max_hp, defense, xp_reward) FROM npcs WHERE npc = 'wolf'",
    );
    let def = &content.npcs["wolf"];
    assert_eq!(
        wolf,
        vec![format!(
            "{}|{}|{}|{}|{}",
            def.name, def.level, def.max_hp, def.defense, def.xp_reward
        )]
    );
    // Reopening writes the same rows again: nothing changes.
    let checksum = w.checksum().await.unwrap();
    drop(conn);
    w.close().await.unwrap();
    let w = Warehouse::open(dir.db()).await.unwrap();
    assert_eq!(w.checksum().await.unwrap(), checksum);
    assert_eq!(w.model_version().await.unwrap(), schema::MODEL_VERSION);
}

#[tokio::test]
async fn a_file_is_open_once_per_process_and_a_closed_warehouse_says_so() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let again = Warehouse::open(dir.0.join(".").join("warehouse.duckdb")).await;
    assert!(
        matches!(&again, Err(e) if e.to_string().contains("already open")),
        "{again:?}"
    );
    let other = w.clone();
    w.close().await.unwrap();
    assert!(matches!(
        other.ping().await,
        Err(super::super::Error::Closed)
    ));
    // Closed: the file can be opened again.
    Warehouse::open(dir.db())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let memory = Warehouse::open(":memory:").await.unwrap();
    memory.ping().await.unwrap();
}

#[tokio::test]
async fn the_checksum_ignores_batching_and_order_but_not_content() {
    let dir = TempDir::new();
    let mut events = life("c-1");
    events.extend(purse("c-1"));
    events.extend(life("c-2"));
    let one = Warehouse::open(dir.0.join("one.duckdb")).await.unwrap();
    one.apply_batch(&events, &[FeedOffset::new(STORE_FEED, 0, 99)])
        .await
        .unwrap();
    let two = Warehouse::open(dir.0.join("two.duckdb")).await.unwrap();
    // Streams interleaved differently, in batches of 3, fed under another feed's offsets.
    let mut shuffled = events.clone();
    shuffled.sort_by_key(|e| (e.envelope.sequence, e.envelope.aggregate_id.clone()));
    for chunk in shuffled.chunks(3) {
        two.apply_batch(chunk, &[FeedOffset::new("topic", 1, 5)])
            .await
            .unwrap();
    }
    let a = one.checksum().await.unwrap();
    assert_eq!(a, two.checksum().await.unwrap());
    assert!(a.tables.iter().all(|t| t.table != "feed_offsets"));
    assert!(a
        .tables
        .iter()
        .any(|t| t.table == "item_flows" && t.rows > 0));
    // One event less, or one row changed, and it differs.
    let three = Warehouse::open(dir.0.join("three.duckdb")).await.unwrap();
    three
        .apply_batch(&events[..events.len() - 1], &[])
        .await
        .unwrap();
    assert_ne!(three.checksum().await.unwrap().digest, a.digest);
    let conn = two.connect().await.unwrap();
    conn.execute(
        "UPDATE item_flows SET quantity = quantity + 1 WHERE line = 1",
        [],
    )
    .unwrap();
    assert_ne!(two.checksum().await.unwrap().digest, a.digest);
}

#[tokio::test]
async fn a_batch_prepared_ahead_is_written_as_if_it_had_not_been() {
    let dir = TempDir::new();
    let mut events = life("c-1");
    events.extend(purse("c-1"));
    events.extend(life("c-2"));
    let (first, second) = events.split_at(events.len() / 2);
    let checkpoint = [FeedOffset::new(STORE_FEED, 0, 99)];
    let plain = Warehouse::open(dir.0.join("plain.duckdb")).await.unwrap();
    let mut plain_verdicts = plain.apply_batch(first, &checkpoint).await.unwrap();
    plain_verdicts.extend(plain.apply_batch(second, &checkpoint).await.unwrap());

    let ahead = Warehouse::open(dir.0.join("ahead.duckdb")).await.unwrap();
    // As a feed does: the next batch is prepared while the one in hand is written.
    ahead.prepare_batch(first);
    let (mut verdicts, ()) = tokio::join!(
        async { ahead.apply_batch(first, &checkpoint).await.unwrap() },
        async { ahead.prepare_batch(second) }
    );
    verdicts.extend(ahead.apply_batch(second, &checkpoint).await.unwrap());
    assert_eq!(verdicts, plain_verdicts);
    assert!(verdicts.iter().all(|v| *v == Verdict::Applied));
    assert_eq!(
        ahead.checksum().await.unwrap(),
        plain.checksum().await.unwrap()
    );

    // A hint for other events than those that come is not used: these are mapped as they are.
    let other = Warehouse::open(dir.0.join("other.duckdb")).await.unwrap();
    other.prepare_batch(second);
    other.apply_batch(first, &checkpoint).await.unwrap();
    other.prepare_batch(&second[1..]);
    other.apply_batch(second, &checkpoint).await.unwrap();
    assert_eq!(
        other.checksum().await.unwrap(),
        plain.checksum().await.unwrap()
    );
}
