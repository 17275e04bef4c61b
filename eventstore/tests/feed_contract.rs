//! The event feed contract (the global-order reader), run against every implementation:
//! PostgreSQL (production) and SQLite (embedded).

use std::sync::Arc;
use std::time::Duration;

use chaos_domain::Character;
use chaos_eventstore::pg::PgEventLog;
use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::testing::{fresh_pg, fresh_sqlite, serialized_event};
use chaos_eventstore::{EventLog, Position};
use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use postgres_es::PostgresEventRepository;

fn event(aggregate_id: &str, sequence: usize) -> SerializedEvent {
    serialized_event(
        aggregate_id,
        sequence,
        serde_json::json!({ "n": sequence }),
        serde_json::json!({ "idempotency_key": format!("k-{aggregate_id}") }),
    )
}

async fn append<R: PersistedEventRepository>(
    repo: &R,
    id: &str,
    seqs: std::ops::RangeInclusive<usize>,
) {
    let events: Vec<_> = seqs.map(|s| event(id, s)).collect();
    repo.persist::<Character>(&events, None)
        .await
        .expect("append");
}

/// An event appended in `tx`, left open: an append in flight.
async fn append_in(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, aggregate_id: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('character', $1, 1, 'ZoneEntered', '1', '{}', '{}')",
    )
    .bind(aggregate_id)
    .execute(&mut **tx)
    .await
    .unwrap();
}

/// `announce` is what a writer does after committing (PostgreSQL: the append notifier; the
/// SQLite repository announces its own appends).
async fn contract<R: PersistedEventRepository + 'static>(
    repo: Arc<R>,
    log: Arc<dyn EventLog>,
    announce: Arc<dyn Fn() + Send + Sync>,
) {
    assert!(log
        .read_after(Position::START, 10)
        .await
        .unwrap()
        .is_empty());
    append(&*repo, "a", 1..=3).await;
    append(&*repo, "b", 1..=2).await;

    // xids are cluster-wide: a transaction left open in another database (a parallel test,
    // another tenant) delays visibility, so wait for the rows rather than assume them.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let all = loop {
        let rows = log.read_after(Position::START, 10).await.unwrap();
        if rows.len() >= 5 || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let order: Vec<(&str, i64)> = all
        .iter()
        .map(|e| (e.aggregate_id.as_str(), e.sequence))
        .collect();
    assert_eq!(
        order,
        vec![("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)]
    );
    assert!(
        all.windows(2).all(|w| w[0].position < w[1].position),
        "positions increase"
    );
    assert_eq!(all[4].payload_value(), serde_json::json!({ "n": 2 }));

    let page = log.read_after(Position::START, 2).await.unwrap();
    assert_eq!(page.len(), 2, "limit is honoured");
    let rest = log.read_after(page[1].position, 10).await.unwrap();
    assert_eq!(rest.len(), 3, "reading resumes exactly after the cursor");
    assert_eq!(rest[0].position, all[2].position);
    assert_eq!(log.count_after(page[1].position).await.unwrap(), 3);
    assert_eq!(log.count_after(all[4].position).await.unwrap(), 0);

    // A waiting reader wakes for an append long before its own timeout runs out.
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_for_append(Duration::from_secs(120)).await })
    };
    let writer = {
        let repo = repo.clone();
        tokio::spawn(async move {
            // Keep appending until the waiter is woken: the wait may start after one append.
            for s in 1..=200 {
                append(&*repo, &format!("c{s}"), 1..=1).await;
                announce();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("wait_for_append must wake on an append")
        .unwrap();
    writer.abort();
}

#[tokio::test]
async fn postgres_feed_meets_the_contract() {
    let pool = fresh_pg().await;
    let repo = Arc::new(PostgresEventRepository::new(pool.clone()));
    let notifier =
        chaos_eventstore::pg::AppendNotifier::spawn(pool.clone(), Duration::from_millis(20));
    contract(
        repo,
        Arc::new(PgEventLog::new(pool)),
        Arc::new(move || notifier.appended()),
    )
    .await;
}

#[tokio::test]
async fn sqlite_feed_meets_the_contract() {
    let (pool, _dir) = fresh_sqlite().await;
    let repo = SqliteEventRepository::new(pool);
    let log = Arc::new(repo.log());
    contract(Arc::new(repo), log, Arc::new(|| {})).await;
}

/// The reason for the `tx_id` column: a transaction that started earlier but commits later
/// must not be skipped by a reader that already moved past later-committed rows.
#[tokio::test]
async fn postgres_reader_never_skips_a_late_committing_transaction() {
    let pool = fresh_pg().await;
    let repo = PostgresEventRepository::new(pool.clone());
    let log = PgEventLog::new(pool.clone());

    let mut slow = pool.begin().await.unwrap();
    append_in(&mut slow, "slow").await;
    append(&repo, "fast", 1..=1).await;

    // The fast row is committed, but an older transaction is still open: nothing is visible yet,
    // because handing out "fast" now would let the cursor run past "slow".
    assert!(log
        .read_after(Position::START, 10)
        .await
        .unwrap()
        .is_empty());

    slow.commit().await.unwrap();
    // Other transactions on the cluster (parallel tests) may still delay visibility: wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let rows = loop {
        let rows = log.read_after(Position::START, 10).await.unwrap();
        if rows.len() >= 2 || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let ids: Vec<&str> = rows.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["slow", "fast"],
        "global order is commit-safe transaction order"
    );
}

/// Transaction ids gain digits as a cluster ages: the reader must order them as numbers. (It once
/// sorted them as text, "1000" before "999", and paging then skipped the older transaction.)
#[tokio::test]
async fn postgres_reader_orders_transaction_ids_as_numbers() {
    let pool = fresh_pg().await;
    // Transaction ids that straddle a power of ten (so "1000" sorts before "999" as text) and
    // all lie in the past of this cluster, whatever its age: a fresh cluster has used only a
    // few thousand, a long-lived one millions. Ids above the current one would (rightly) be
    // hidden from the reader as still to come.
    let current: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&pool)
        .await
        .unwrap();
    // The largest power of ten below the newest past id (`current - 1`): `b < c` even when
    // `current - 1` is itself a power of ten (a fresh cluster at exactly 1,001 failed this).
    let boundary = 10_i64.pow((current - 2).ilog10());
    assert!(
        boundary >= 10,
        "a cluster has used more than twelve transactions: {current}"
    );
    let (a, b, c) = (boundary - 1, boundary, current - 1);
    assert!(a < b && b < c, "{a} < {b} < {c}");
    for (tx_id, aggregate_id) in [(c, "c"), (a, "a"), (b, "b")] {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata, tx_id)
             VALUES ('character', $1, 1, 'ZoneEntered', '1', '{}', '{}', $2::text::xid8)",
        )
        .bind(aggregate_id)
        .bind(tx_id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    }
    let log = PgEventLog::new(pool);
    let mut after = Position::START;
    let mut seen = Vec::new();
    // One event per page: a wrong order shows up as a skipped row.
    while let Some(event) = log.read_after(after, 1).await.unwrap().pop() {
        seen.push((event.position.tx_id, event.aggregate_id.clone()));
        after = event.position;
    }
    let id = |n: i64| u64::try_from(n).unwrap();
    assert_eq!(
        seen,
        vec![
            (id(a), "a".into()),
            (id(b), "b".into()),
            (id(c), "c".into())
        ]
    );
}

/// The backup case: a transaction that is not an event append (a `pg_dump`, an analyst's query,
/// a migration) stays open while commands append. The reader must not wait for it — only for
/// appends still in flight — and what it does hold back is counted as held back, not as nothing.
#[tokio::test]
async fn postgres_reader_waits_only_for_event_appends() {
    let pool = fresh_pg().await;
    let repo = PostgresEventRepository::new(pool.clone());
    let log = PgEventLog::new(pool.clone());

    // Another session's open transaction with an id (it wrote something), older than the appends.
    let mut backup = pool.begin().await.unwrap();
    sqlx::query("CREATE TEMP TABLE dump_progress (n int)")
        .execute(&mut *backup)
        .await
        .unwrap();
    let _: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *backup)
        .await
        .unwrap();
    append(&repo, "a", 1..=2).await;
    let rows = log.read_after(Position::START, 10).await.unwrap();
    assert_eq!(
        rows.len(),
        2,
        "an unrelated open transaction holds nothing back"
    );
    let backlog = log.backlog(Position::START).await.unwrap();
    assert_eq!((backlog.events, backlog.held_back), (2, 0));

    // An append in flight does hold back what commits after it, and says so.
    let mut slow = pool.begin().await.unwrap();
    append_in(&mut slow, "slow").await;
    append(&repo, "b", 1..=1).await;
    let after = rows.last().unwrap().position;
    assert!(log.read_after(after, 10).await.unwrap().is_empty());
    let backlog = log.backlog(after).await.unwrap();
    assert_eq!(
        (backlog.events, backlog.held_back),
        (1, 1),
        "b is committed but held back"
    );
    assert!(backlog.oldest_inflight_append.is_some());

    slow.commit().await.unwrap();
    let ids: Vec<String> = log
        .read_after(after, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.aggregate_id)
        .collect();
    assert_eq!(ids, vec!["slow", "b"]);
    backup.rollback().await.unwrap();
}

/// The horizon reads each in-flight append's transaction id from its backend's entry
/// (`pg_stat_activity.backend_xid`, published with the id itself; the `transactionid` lock it
/// once read comes a moment later, and an append caught in between was skipped: decision 39).
/// PostgreSQL copies those entries once per transaction, so a reader that computes the horizon
/// twice in one transaction must still see an append that got its id in between.
#[tokio::test]
async fn postgres_horizon_sees_an_append_that_began_since_its_last_look() {
    let pool = fresh_pg().await;
    let repo = PostgresEventRepository::new(pool.clone());
    // A transaction with an id that is not an append, open throughout: the first look has a
    // running transaction to check, so it does read (and PostgreSQL copies) the backend table.
    let mut other = pool.begin().await.unwrap();
    sqlx::query("CREATE TEMP TABLE busy (n int)")
        .execute(&mut *other)
        .await
        .unwrap();
    // A later transaction completes, so `other` is among the snapshot's running ones (`xip`
    // lists those below its xmax).
    append(&repo, "early", 1..=1).await;
    let mut reader = pool.begin().await.unwrap();
    let first = chaos_eventstore::pg::append_horizon(&mut *reader)
        .await
        .unwrap();

    let mut slow = pool.begin().await.unwrap();
    append_in(&mut slow, "slow").await;
    let slow_id: u64 = sqlx::query_scalar::<_, String>("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *slow)
        .await
        .unwrap()
        .parse()
        .unwrap();
    // A later transaction completes, so the snapshot's xmax alone is past the slow append.
    append(&repo, "fast", 1..=1).await;

    let second = chaos_eventstore::pg::append_horizon(&mut *reader)
        .await
        .unwrap();
    assert!(
        second <= slow_id,
        "the append in flight ({slow_id}) bounds the horizon: {second} (first look: {first})"
    );
    slow.rollback().await.unwrap();
    reader.rollback().await.unwrap();
    other.rollback().await.unwrap();
}
