//! Group commit on the real PostgreSQL: batching keeps every command atomic and keeps optimistic
//! concurrency per command.

use std::collections::BTreeMap;

use chaos_domain::Character;
use chaos_eventstore::group_commit::{GroupCommitConfig, GroupCommitRepository, GroupCommitter};
use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::testing::{fresh_pg, fresh_sqlite, serialized_event};
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use sqlx::{PgPool, Row};

fn event(aggregate_id: &str, sequence: usize, writer: &str) -> SerializedEvent {
    let payload = serde_json::json!({ "writer": writer, "n": sequence });
    serialized_event(aggregate_id, sequence, payload, serde_json::json!({}))
}

fn command(
    aggregate_id: &str,
    seqs: std::ops::RangeInclusive<usize>,
    writer: &str,
) -> Vec<SerializedEvent> {
    seqs.map(|s| event(aggregate_id, s, writer)).collect()
}

fn repository(pool: &PgPool) -> GroupCommitRepository {
    let committer =
        GroupCommitter::postgres(pool.clone(), GroupCommitConfig::default(), None, None);
    GroupCommitRepository::new(pool.clone(), committer)
}

/// (aggregate id) -> [(sequence, writer)] as stored.
async fn stored(pool: &PgPool) -> BTreeMap<String, Vec<(i64, String)>> {
    let rows = sqlx::query(
        "SELECT aggregate_id, sequence, payload->>'writer' AS writer FROM events
         ORDER BY aggregate_id, sequence",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for row in rows {
        out.entry(row.get("aggregate_id"))
            .or_default()
            .push((row.get("sequence"), row.get("writer")));
    }
    out
}

/// 120 aggregates, each created by a two-event command; a third of them also get a stale
/// one-event command racing for sequence 1. All 160 commands are in flight at once: exactly one
/// command per aggregate wins, and the store holds all of the winner's events and none of the
/// loser's. Returns how many commands were accepted.
async fn race<R: PersistedEventRepository + Clone + 'static>(repo: R) -> usize {
    let ids: Vec<String> = (0..120).map(|i| format!("agg-{i:03}")).collect();
    let mut commands = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        commands.push((id.clone(), command(id, 1..=2, "main")));
        if i % 3 == 0 {
            commands.push((id.clone(), command(id, 1..=1, "rival")));
        }
    }
    let results = futures::future::join_all(commands.iter().map(|(id, events)| {
        let repo = repo.clone();
        async move { (id.clone(), repo.persist::<Character>(events, None).await) }
    }))
    .await;

    let mut winners: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for ((id, result), (_, events)) in results.iter().zip(&commands) {
        let writer = events[0].payload["writer"].as_str().unwrap();
        match result {
            Ok(()) => winners.entry(id.clone()).or_default().push(writer),
            Err(PersistenceError::OptimisticLockError) => {}
            Err(e) => panic!("{id}: unexpected error {e}"),
        }
    }
    for id in &ids {
        let won = winners.get(id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(won.len(), 1, "{id}: exactly one command wins, got {won:?}");
        let expected: Vec<(usize, String)> = match won[0] {
            "main" => vec![(1, "main".into()), (2, "main".into())],
            _ => vec![(1, "rival".into())],
        };
        let stored: Vec<(usize, String)> = repo
            .get_events::<Character>(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.sequence, e.payload["writer"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(stored, expected, "{id}");
    }
    winners.len()
}

#[tokio::test]
async fn concurrent_commands_are_batched_and_each_keeps_its_own_outcome() {
    let pool = fresh_pg().await;
    let accepted = race(repository(&pool)).await;
    // Batching happened: fewer transactions than accepted commands.
    let transactions: i64 = sqlx::query_scalar("SELECT count(DISTINCT tx_id::text) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        (transactions as usize) < accepted,
        "{transactions} transactions for {accepted} accepted commands"
    );
}

#[tokio::test]
async fn the_embedded_store_keeps_each_commands_outcome_under_the_same_race() {
    let (pool, _dir) = fresh_sqlite().await;
    race(SqliteEventRepository::new(pool)).await;
}

#[tokio::test]
async fn a_command_whose_later_event_conflicts_stores_none_of_its_events() {
    let pool = fresh_pg().await;
    let repo = repository(&pool);
    repo.persist::<Character>(&command("a", 1..=1, "first"), None)
        .await
        .unwrap();
    // Sequence 3 taken out of band: a command appending 2..=3 must leave sequence 2 free.
    repo.persist::<Character>(&command("a", 3..=3, "other"), None)
        .await
        .unwrap();
    let refused = repo
        .persist::<Character>(&command("a", 2..=3, "late"), None)
        .await;
    assert!(
        matches!(refused, Err(PersistenceError::OptimisticLockError)),
        "{refused:?}"
    );
    let a = stored(&pool).await.remove("a").unwrap();
    assert_eq!(a, vec![(1, "first".into()), (3, "other".into())]);
}

#[tokio::test]
async fn a_burst_of_commands_racing_for_one_sequence_has_exactly_one_winner() {
    let pool = fresh_pg().await;
    let repo = repository(&pool);
    repo.persist::<Character>(&command("solo", 1..=1, "created"), None)
        .await
        .unwrap();
    // Twenty commands decided on the same version, queued together: they must not share a
    // statement (nor make one another fail wholesale); one of them wins.
    let burst: Vec<Vec<SerializedEvent>> = (0..20)
        .map(|w| command("solo", 2..=3, &format!("w{w}")))
        .collect();
    let results =
        futures::future::join_all(burst.iter().map(|c| repo.persist::<Character>(c, None))).await;
    let winners: Vec<usize> = (0..20).filter(|w| results[*w].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .filter(|r| r.is_err())
        .all(|r| matches!(r, Err(PersistenceError::OptimisticLockError))));
    let winner = format!("w{}", winners[0]);
    let solo = stored(&pool).await.remove("solo").unwrap();
    assert_eq!(
        solo,
        vec![(1, "created".into()), (2, winner.clone()), (3, winner)]
    );
}

#[tokio::test]
async fn reads_go_through_postgres_es() {
    let pool = fresh_pg().await;
    let repo = repository(&pool);
    repo.persist::<Character>(&command("r", 1..=3, "x"), None)
        .await
        .unwrap();
    let events = repo.get_events::<Character>("r").await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        events[0].payload,
        serde_json::json!({ "writer": "x", "n": 1 })
    );
    let last = repo.get_last_events::<Character>("r", 2).await.unwrap();
    assert_eq!(last.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![3]);
}
