//! A rebuild from the event store: no keys while written, the feed's position committed with
//! the rows it covers, the keys built at the end.

use chaos_eventstore::Position;

use super::super::writer::Writer;
use super::super::{Warehouse, STORE_FEED};
use super::{life, TempDir};
use crate::runner::{FeedOffset, Verdict};

/// The named unique indexes of `events` (the keys of [`super::super::schema::EVENTS_KEYS`]).
fn event_keys(conn: &duckdb::Connection) -> Vec<String> {
    super::query_strings(
        conn,
        "SELECT index_name FROM duckdb_indexes()
         WHERE table_name = 'events' AND is_unique ORDER BY 1",
    )
}

fn position(global_position: i64) -> Position {
    Position {
        tx_id: 4_000_000_000 + u64::try_from(global_position).unwrap(),
        global_position,
    }
}

fn rows(conn: &duckdb::Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// What a connection of its own sees: only what is committed.
fn committed(conn: &duckdb::Connection) -> (i64, Option<(u64, i64)>) {
    let events = rows(conn, "events");
    let mut stmt = conn
        .prepare("SELECT tx_id, global_position FROM store_positions WHERE feed = ?")
        .unwrap();
    let saved = stmt
        .query_map([STORE_FEED], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .next()
        .map(Result::unwrap);
    (events, saved)
}

#[tokio::test]
async fn a_store_rebuild_commits_its_position_with_its_rows_and_builds_the_keys_last() {
    let dir = TempDir::new();
    let events = life("c-1");
    assert!(events.len() >= 9, "the test needs three batches of three");
    let w = Warehouse::open(dir.db())
        .await
        .unwrap()
        // A transaction carries at least 4 events: here, two batches of 3.
        .for_store_rebuild(4)
        .await
        .unwrap();
    let own = w
        .call(|w| Ok(w.connection().try_clone().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        event_keys(&own),
        Vec::<String>::new(),
        "no keys while written"
    );

    let checkpoint = w.store_checkpoint();
    let mut seen = Vec::new();
    for (n, batch) in events[..9].chunks(3).enumerate() {
        let last = batch.last().unwrap().envelope.global_position;
        let verdicts = w
            .apply_batch(batch, &[FeedOffset::new(STORE_FEED, 0, last + 1)])
            .await
            .unwrap();
        assert_eq!(verdicts, vec![Verdict::Applied; 3], "batch {n}");
        checkpoint.save(position(last)).await.unwrap();
        seen.push(committed(&own));
    }
    let end_of_second = events[5].envelope.global_position;
    assert_eq!(
        seen,
        vec![
            (0, None),
            (0, None),
            // The third batch committed the first two first, with the position saved after
            // the second: never rows without their position, nor a position ahead of its rows.
            (6, Some((position(end_of_second).tx_id, end_of_second))),
        ]
    );

    // A connection for readers (a checksum, an export) sees every batch applied.
    let reader = w.connect().await.unwrap();
    assert_eq!(rows(&reader, "events"), 9);

    w.finish_rebuild().await.unwrap();
    assert_eq!(event_keys(&own), vec!["events_event_id"]);
    // Keyed again: a replay is refused as one, an impostor at a stored stream position too.
    let again = w
        .apply_batch(&events[..2], &[FeedOffset::new(STORE_FEED, 0, 1)])
        .await
        .unwrap();
    assert_eq!(again, vec![Verdict::Duplicate; 2]);
    let mut impostor = events[2].clone();
    impostor.envelope.event_id = uuid::Uuid::new_v4();
    let refused = w
        .apply_batch(&[impostor], &[FeedOffset::new(STORE_FEED, 0, 1)])
        .await
        .unwrap();
    assert!(
        matches!(&refused[..], [Verdict::DeadLetter(r)] if r.contains("is not the id of")),
        "{refused:?}"
    );
    drop((own, reader));
    w.close().await.unwrap();

    let reopened = Warehouse::open(dir.db()).await.unwrap();
    assert_eq!(
        reopened.store_checkpoint().load().await.unwrap(),
        position(events[8].envelope.global_position)
    );
}

#[tokio::test]
async fn closing_an_interrupted_store_rebuild_keeps_its_work_and_a_live_open_keys_it() {
    let dir = TempDir::new();
    let events = life("c-1");
    let w = Warehouse::open(dir.db())
        .await
        .unwrap()
        .for_store_rebuild(1_000_000)
        .await
        .unwrap();
    let last = events[3].envelope.global_position;
    w.apply_batch(&events[..4], &[FeedOffset::new(STORE_FEED, 0, last + 1)])
        .await
        .unwrap();
    w.store_checkpoint().save(position(last)).await.unwrap();
    // Ctrl-C: the rebuild stops and closes its target with the transaction open.
    w.close().await.unwrap();

    // Resumed: the rows and the position are there, still without keys.
    let resumed = Warehouse::open(dir.db())
        .await
        .unwrap()
        .for_store_rebuild(1_000_000)
        .await
        .unwrap();
    assert_eq!(
        resumed.store_checkpoint().load().await.unwrap(),
        position(last)
    );
    let conn = resumed.connect().await.unwrap();
    assert_eq!(rows(&conn, "events"), 4);
    assert_eq!(event_keys(&conn), Vec::<String>::new());
    drop(conn);
    resumed.close().await.unwrap();

    // Opened as a live file (a switch that went wrong, an operator's open): keyed at once.
    let live = Warehouse::open(dir.db()).await.unwrap();
    let conn = live.connect().await.unwrap();
    assert_eq!(event_keys(&conn), vec!["events_event_id"]);
    assert_eq!(rows(&conn, "events"), 4);
}

#[tokio::test]
async fn a_file_with_the_stream_position_index_loses_it_and_stays_keyed() {
    let dir = TempDir::new();
    let events = life("c-1");
    let w = Warehouse::open(dir.db()).await.unwrap();
    w.apply_batch(&events[..4], &[FeedOffset::new(STORE_FEED, 0, 4)])
        .await
        .unwrap();
    w.close().await.unwrap();
    {
        // The keys as files made before decision 48 have them: a second unique index.
        let conn = duckdb::Connection::open(dir.db()).unwrap();
        conn.execute_batch(
            "CREATE UNIQUE INDEX events_stream ON events (aggregate_type, aggregate_id, sequence)",
        )
        .unwrap();
        assert_eq!(event_keys(&conn), vec!["events_event_id", "events_stream"]);
    }

    let w = Warehouse::open(dir.db()).await.unwrap();
    let conn = w.connect().await.unwrap();
    assert_eq!(event_keys(&conn), vec!["events_event_id"]);
    assert_eq!(rows(&conn, "events"), 4);
    // The one key still refuses a replay, and the mapping an impostor.
    let mut impostor = events[1].clone();
    impostor.envelope.event_id = uuid::Uuid::new_v4();
    let verdicts = w
        .apply_batch(&[events[0].clone(), impostor, events[4].clone()], &[])
        .await
        .unwrap();
    assert_eq!(verdicts[0], Verdict::Duplicate);
    assert!(
        matches!(&verdicts[1], Verdict::DeadLetter(r) if r.contains("sequence 2")),
        "{verdicts:?}"
    );
    assert_eq!(verdicts[2], Verdict::Applied);
    assert_eq!(rows(&conn, "events"), 5);
}

#[test]
fn a_file_keyed_by_constraints_gets_no_second_set_of_keys() {
    let dir = TempDir::new();
    {
        // `events` as files made before the keys were indexes define it.
        let conn = duckdb::Connection::open(dir.db()).unwrap();
        conn.execute_batch(
            "CREATE TABLE events (
                event_id UUID PRIMARY KEY, event_type VARCHAR NOT NULL,
                aggregate_type VARCHAR NOT NULL, aggregate_id VARCHAR NOT NULL,
                sequence BIGINT NOT NULL, global_position BIGINT NOT NULL,
                occurred_at TIMESTAMP NOT NULL, correlation_id VARCHAR, causation_id VARCHAR,
                schema_version INTEGER NOT NULL, payload VARCHAR NOT NULL,
                UNIQUE (aggregate_type, aggregate_id, sequence))",
        )
        .unwrap();
    }
    let content = std::sync::Arc::new(chaos_domain::Content::builtin().unwrap());
    let writer = Writer::open(&dir.db(), content).unwrap();
    assert_eq!(event_keys(writer.connection()), Vec::<String>::new());
    let constraints = super::query_strings(
        writer.connection(),
        "SELECT constraint_type FROM duckdb_constraints()
         WHERE table_name = 'events' AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')
         ORDER BY 1",
    );
    assert_eq!(constraints, vec!["PRIMARY KEY", "UNIQUE"]);
}
