//! A keyed command's idempotency key is stored on its first event (`command_key`, unique), and
//! stores made before, which kept the key only in the metadata under an expression index, are
//! upgraded in place: each key's first command stays its answer.

use chaos_eventstore::group_commit::GroupCommitConfig;
use chaos_eventstore::repository::Repository;
use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::testing::{fresh_pg, TempDir};
use chaos_eventstore::StoredEvent;

/// `(aggregate_id, sequence)` of each event.
fn positions(events: &[StoredEvent]) -> Vec<(String, i64)> {
    events
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect()
}

const KEY: &str = "00000000-0000-0000-0000-000000000009:retry-me";

fn metadata(key: Option<&str>) -> String {
    let value = match key {
        Some(key) => serde_json::json!({ "idempotency_key": key, "request_hash": "h" }),
        None => serde_json::json!({}),
    };
    value.to_string()
}

/// The legacy rows: two events of one keyed command on `a`, a later unkeyed one, and (as a
/// store from before could hold after a race) the same key once more on `b`.
fn legacy_rows() -> Vec<(&'static str, i64, &'static str, Option<&'static str>)> {
    vec![
        ("a", 1, "ExperienceGained", Some(KEY)),
        ("a", 2, "LeveledUp", Some(KEY)),
        ("a", 3, "ExperienceGained", None),
        ("b", 1, "ExperienceGained", Some(KEY)),
    ]
}

/// The events marked with their command's key.
const MARKED: &str = "SELECT aggregate_id, sequence FROM events WHERE command_key IS NOT NULL";

/// Another command's first event under the upgraded key (`?`: the key).
const TAKEN: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
        event_version, payload, metadata, command_key)
    VALUES ('character', 'c', 1, 'ExperienceGained', '1', '{}', '{}', ?)";

/// What an upgraded store shows, either kind: the key answers with its first command's events
/// (not its later use on `b`), only that command's first event is marked, the old index is
/// gone, another command under the key is refused, and an unused key has no answer.
async fn assert_upgraded(
    repository: &Repository,
    marked: Vec<(String, i64)>,
    old_index: Option<String>,
    again: Result<(), sqlx::Error>,
) {
    let answer = repository.by_idempotency_key(KEY).await.unwrap();
    assert_eq!(
        positions(&answer),
        [("a".to_owned(), 1), ("a".to_owned(), 2)]
    );
    assert_eq!(marked, [("a".to_owned(), 1)]);
    assert_eq!(old_index, None);
    assert!(
        matches!(&again, Err(sqlx::Error::Database(e)) if e.is_unique_violation()),
        "{again:?}"
    );
    let unused = repository
        .by_idempotency_key("nobody:unused")
        .await
        .unwrap();
    assert!(unused.is_empty(), "{unused:?}");
}

#[tokio::test]
async fn a_postgres_store_from_before_keeps_its_keys() {
    let pool = fresh_pg().await;
    for statement in [
        "DROP INDEX events_command_key",
        "ALTER TABLE events DROP COLUMN command_key",
        "CREATE INDEX events_idempotency ON events ((metadata->>'idempotency_key'))
            WHERE (metadata->>'idempotency_key') IS NOT NULL",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    for (id, sequence, event_type, key) in legacy_rows() {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                 event_version, payload, metadata)
             VALUES ('character', $1, $2, $3, '1', '{}', $4::json)",
        )
        .bind(id)
        .bind(sequence)
        .bind(event_type)
        .bind(metadata(key))
        .execute(&pool)
        .await
        .unwrap();
    }
    chaos_eventstore::pg::migrate(&pool).await.unwrap();
    // Twice: the upgrade runs once, the second start changes nothing.
    chaos_eventstore::pg::migrate(&pool).await.unwrap();

    let repository = Repository::postgres(pool.clone(), GroupCommitConfig::default(), None);
    let marked = sqlx::query_as(MARKED).fetch_all(&pool).await.unwrap();
    let old_index: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('events_idempotency')::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    let again = sqlx::query(&TAKEN.replace('?', "$1"))
        .bind(KEY)
        .execute(&pool)
        .await
        .map(|_| ());
    assert_upgraded(&repository, marked, old_index, again).await;
}

#[tokio::test]
async fn an_sqlite_store_from_before_keeps_its_keys() {
    let dir = TempDir(std::env::temp_dir().join(format!("chaos-t-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("events.db");
    {
        // The table and index as the embedded store made them before.
        let old = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        for statement in [
            "CREATE TABLE events (
                global_position INTEGER PRIMARY KEY AUTOINCREMENT,
                aggregate_type  TEXT NOT NULL,
                aggregate_id    TEXT NOT NULL,
                sequence        INTEGER NOT NULL CHECK (sequence >= 0),
                event_type      TEXT NOT NULL,
                event_version   TEXT NOT NULL,
                payload         TEXT NOT NULL,
                metadata        TEXT NOT NULL,
                idempotency_key TEXT GENERATED ALWAYS AS
                    (json_extract(metadata, '$.idempotency_key')) VIRTUAL,
                UNIQUE (aggregate_type, aggregate_id, sequence)
            )",
            "CREATE INDEX events_idempotency ON events (idempotency_key)
                WHERE idempotency_key IS NOT NULL",
        ] {
            sqlx::query(statement).execute(&old).await.unwrap();
        }
        for (id, sequence, event_type, key) in legacy_rows() {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                     event_version, payload, metadata)
                 VALUES ('character', ?, ?, ?, '1', '{}', ?)",
            )
            .bind(id)
            .bind(sequence)
            .bind(event_type)
            .bind(metadata(key))
            .execute(&old)
            .await
            .unwrap();
        }
        old.close().await;
    }
    let pool = chaos_eventstore::sqlite::open(&path).await.unwrap();
    pool.close().await;
    // A second start changes nothing.
    let pool = chaos_eventstore::sqlite::open(&path).await.unwrap();
    let repository = Repository::sqlite(SqliteEventRepository::new(pool.clone()));
    let marked = sqlx::query_as(MARKED).fetch_all(&pool).await.unwrap();
    let old_index: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'events_idempotency'",
    )
    .fetch_optional(&pool)
    .await
    .unwrap();
    let again = sqlx::query(TAKEN)
        .bind(KEY)
        .execute(&pool)
        .await
        .map(|_| ());
    assert_upgraded(&repository, marked, old_index, again).await;
}
