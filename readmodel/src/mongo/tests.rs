//! Against the MongoDB-wire test server started by `deploy/local/services.sh` (`MONGODB_URL`;
//! SecantusDB locally), each test in a database of its own, dropped at the end.

use std::borrow::Cow;

use mongodb::bson::doc;
use mongodb::bson::oid::ObjectId;
use serde_json::json;

use super::write::Entries;
use super::*;
use crate::store::{BoardOp, LogAppend};

async fn store() -> MongoStore {
    let url = std::env::var("MONGODB_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017/?directConnection=true".into());
    let database = format!(
        "chaos_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    MongoStore::connect(&url, &database)
        .await
        .expect("the MongoDB-wire test server must be running for this test")
}

fn doc(revision: u64) -> Document {
    Document {
        revision,
        applied: revision,
        positions: [("x/1".to_owned(), revision)].into(),
        body: json!({ "rev": revision }).into(),
    }
}

fn write(key: &str, expected: u64, log: &str, board: &str, score: f64) -> CasWrite {
    CasWrite {
        key: key.to_owned(),
        expected,
        doc: doc(expected + 1),
        log: vec![LogAppend {
            key: log.to_owned(),
            score: expected + 1,
            entry: json!({ "at": 1000 + expected, "n": expected + 1 }),
        }],
        boards: vec![BoardOp::Set {
            board: board.to_owned(),
            member: key.to_owned(),
            score,
        }],
    }
}

#[tokio::test]
async fn mongo_store_meets_the_contract() {
    let store = store().await;
    crate::store::contract::run(&store, "t:").await;
    store.database().drop().await.unwrap();
}

/// What correctness needs is on `_id`: a database dropped under the projector (its collections
/// come back without the secondary indexes until the next start) still meets the contract.
#[tokio::test]
async fn the_contract_holds_without_the_secondary_indexes() {
    let store = store().await;
    store.database().drop().await.unwrap();
    crate::store::contract::run(&store, "t:").await;
    let indexes = store.logs.list_index_names().await.unwrap_or_default();
    assert_eq!(indexes, vec!["_id_".to_owned()], "only the _id index");
    store.database().drop().await.unwrap();
}

/// A crash after a document's write and before its entries': the document holds them, cannot
/// be written again until they are written, and the next writer that reads it (or `recover` at
/// start) writes them. A reader leaves them.
#[tokio::test]
async fn entries_left_pending_by_a_crash_are_completed_by_the_next_read() {
    let store = store().await;
    let writes = [write("d", 0, "log", "board", 5.0)];
    let mut won = vec![false];
    // Phase 1 only: the writer "crashed" before writing the entries.
    let entries = store
        .write_documents(&writes, &[0], &mut won)
        .await
        .unwrap();
    assert_eq!((won[0], entries.len()), (true, 1));
    let written = || async { store.logs.count_documents(doc! {}).await.unwrap() };
    assert_eq!(written().await, 0, "the entry is only in its document");
    assert_eq!(store.board_len("board", None).await.unwrap(), 0);
    // Readers see the document's log entry with it all the same.
    let pending = vec![(1, json!({ "at": 1000, "n": 1 }))];
    assert_eq!(store.log_range("log", 0, 10).await.unwrap(), pending);
    assert_eq!(
        store.log_window("log", 1000, 1001, 0, 10).await.unwrap(),
        pending
    );
    assert!(store
        .log_window("log", 0, 1000, 0, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.log_range("log", 1, 10).await.unwrap().is_empty());

    // A write on top is refused while they are pending.
    let next = write("d", 1, "log", "board", 7.0);
    let mut reader = store.clone();
    reader.writer = false;
    assert_eq!(
        reader.put_many(std::slice::from_ref(&next)).await.unwrap(),
        vec![false]
    );
    // A reader sees the document but writes nothing.
    assert_eq!(reader.get("d").await.unwrap(), Some(doc(1)));
    assert_eq!(reader.log_range("log", 0, 10).await.unwrap(), pending);
    assert_eq!(written().await, 0);

    // The writer's read completes them; then the next write goes through.
    assert_eq!(store.get("d").await.unwrap(), Some(doc(1)));
    assert_eq!(written().await, 1);
    assert_eq!(
        store.log_range("log", 0, 10).await.unwrap(),
        vec![(1, json!({ "at": 1000, "n": 1 }))]
    );
    assert_eq!(
        store.board_rank("board", "d").await.unwrap(),
        Some((0, 5.0))
    );
    assert_eq!(store.put_many(&[next]).await.unwrap(), vec![true]);
    assert_eq!(store.log_range("log", 0, 10).await.unwrap().len(), 2);
    assert_eq!(
        store.board_rank("board", "d").await.unwrap(),
        Some((0, 7.0))
    );

    // Left pending and never read again: `recover` (at start) completes it.
    let other = [write("e", 0, "log-e", "board", 1.0)];
    store.write_documents(&other, &[0], &mut won).await.unwrap();
    assert_eq!(store.recover().await.unwrap(), 1);
    assert_eq!(store.log_range("log-e", 0, 10).await.unwrap().len(), 1);
    assert_eq!(store.recover().await.unwrap(), 0, "nothing left pending");
    store.database().drop().await.unwrap();
}

/// A writer that completes its entries late (after a newer write of the same document was
/// completed, say by a reader) cannot put back an older score or a removed member.
#[tokio::test]
async fn late_board_changes_of_an_older_revision_change_nothing() {
    let store = store().await;
    let entries = |revision: i64, boards: Vec<BoardOp>| Entries {
        key: "d",
        revision,
        token: ObjectId::new(),
        logs: Cow::Owned(Vec::new()),
        boards: Cow::Owned(boards),
    };
    let set = |board: &str, score: f64| BoardOp::Set {
        board: board.into(),
        member: "d".into(),
        score,
    };
    let remove = |board: &str| BoardOp::Remove {
        board: board.into(),
        member: "d".into(),
    };
    // Revision 3 (newer) lands first: a new score on `level`, off the `woods` presence list.
    store
        .complete(&[entries(3, vec![set("level", 30.0), remove("woods")])])
        .await
        .unwrap();
    // Revision 2 arrives late: an older score and the old zone.
    store
        .complete(&[entries(2, vec![set("level", 20.0), set("woods", 2.0)])])
        .await
        .unwrap();
    assert_eq!(
        store.board_range("level", 0, 10, None).await.unwrap(),
        vec![("d".to_owned(), 30.0)]
    );
    assert_eq!(store.board_len("woods", None).await.unwrap(), 0);
    assert_eq!(store.board_rank("woods", "d").await.unwrap(), None);
    // Revision 4 applies over both.
    store
        .complete(&[entries(4, vec![set("woods", 4.0)])])
        .await
        .unwrap();
    assert_eq!(
        store.board_rank("woods", "d").await.unwrap(),
        Some((0, 4.0))
    );
    // Another document's entry for the same member is not guarded by this one's revisions.
    let mut theirs = entries(1, vec![set("level", 10.0)]);
    theirs.key = "other";
    store.complete(&[theirs]).await.unwrap();
    assert_eq!(
        store.board_rank("level", "d").await.unwrap(),
        Some((0, 10.0))
    );
    store.database().drop().await.unwrap();
}

/// Writers racing with the same expected revision: exactly one wins, and only its entries are
/// written, however the batch mixes winners and losers.
#[tokio::test]
async fn racing_writers_with_the_same_expected_revision_one_wins() {
    let store = store().await;
    let keys: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    let first: Vec<CasWrite> = keys.iter().map(|k| write(k, 0, "log", "b", 1.0)).collect();
    assert_eq!(store.put_many(&first).await.unwrap(), vec![true; 20]);
    let racer = |tag: &str| -> Vec<CasWrite> {
        keys.iter()
            .map(|k| {
                let mut w = write(k, 1, &format!("log:{k}"), "b", 2.0);
                w.log[0].entry = json!({ "by": tag });
                w
            })
            .collect()
    };
    let (a, b) = (racer("a"), racer("b"));
    let other = store.clone();
    let (won_a, won_b) = tokio::join!(store.put_many(&a), other.put_many(&b));
    let (won_a, won_b) = (won_a.unwrap(), won_b.unwrap());
    for (i, key) in keys.iter().enumerate() {
        assert!(won_a[i] ^ won_b[i], "{key}: exactly one wins");
        let winner = if won_a[i] { "a" } else { "b" };
        assert_eq!(
            store.log_range(&format!("log:{key}"), 0, 10).await.unwrap(),
            vec![(2, json!({ "by": winner }))]
        );
    }
    store.database().drop().await.unwrap();
}
