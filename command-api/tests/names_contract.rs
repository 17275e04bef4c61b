//! The name registry contract, against PostgreSQL and SQLite: unique names ignoring case,
//! idempotent for the same character, and abandoned reservations taken over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chaos_command_api::names::{NameError, NameRegistry, PgNameRegistry, SqliteNameRegistry};
use chaos_command_api::store::es::{PgCharacterStore, SqliteCharacterStore};
use chaos_command_api::store::CharacterStore;
use chaos_domain::ports::LowestRoll;
use chaos_domain::{AccountId, Character, CharacterCommand, CharacterName, Content};
use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::testing::{fresh_pg, fresh_sqlite};

fn name(s: &str) -> CharacterName {
    CharacterName::parse(s).unwrap()
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Creates character `id` named `n` in the event store.
async fn create(store: &dyn CharacterStore, id: &str, n: &str) {
    let empty = Character::default();
    let command = CharacterCommand::Create {
        owner: AccountId::from_uuid(uuid::Uuid::from_u128(1)),
        name: name(n),
        class: "warrior".into(),
    };
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let events = empty
        .decide(command, &Content::builtin().unwrap(), now, &LowestRoll)
        .unwrap();
    store
        .append(id, 0, &empty, events, HashMap::new())
        .await
        .unwrap();
}

fn taken(result: Result<(), NameError>) -> bool {
    matches!(result, Err(NameError::Taken(_)))
}

/// `held`: a registry that keeps unused reservations; `lapsing`: one (same database) for which
/// every reservation is already old enough to count as abandoned.
async fn contract(
    held: Arc<dyn NameRegistry>,
    lapsing: Arc<dyn NameRegistry>,
    store: Arc<dyn CharacterStore>,
) {
    let (alda, bryn) = (id(), id());
    held.reserve(&name("Alda"), &alda).await.unwrap();
    held.reserve(&name("Alda"), &alda)
        .await
        .expect("the same character may reserve again (a retried create)");
    assert!(
        taken(held.reserve(&name("alda"), &bryn).await),
        "names ignore case"
    );
    assert!(taken(held.reserve(&name("ALDA"), &bryn).await));
    held.reserve(&name("Bryn"), &bryn).await.unwrap();

    // An unused reservation blocks the name until it is old enough...
    let (ghost, heir) = (id(), id());
    held.reserve(&name("Ghost"), &ghost).await.unwrap();
    assert!(taken(held.reserve(&name("ghost"), &heir).await));
    // ...then anyone may take it over.
    lapsing.reserve(&name("ghost"), &heir).await.unwrap();
    assert!(taken(held.reserve(&name("Ghost"), &ghost).await));

    // A reservation whose character exists is never taken over, however old.
    let (hero, pretender) = (id(), id());
    held.reserve(&name("Hero"), &hero).await.unwrap();
    create(&*store, &hero, "Hero").await;
    assert!(taken(lapsing.reserve(&name("hero"), &pretender).await));
}

#[tokio::test]
async fn postgres_names_meet_the_contract() {
    let pool = fresh_pg().await;
    let held = PgNameRegistry::new(pool.clone(), Duration::from_secs(3600))
        .await
        .unwrap();
    let lapsing = PgNameRegistry::new(pool.clone(), Duration::ZERO)
        .await
        .unwrap();
    let store = PgCharacterStore::new(pool);
    contract(Arc::new(held), Arc::new(lapsing), Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_names_meet_the_contract() {
    let (pool, _dir) = fresh_sqlite().await;
    let held = SqliteNameRegistry::new(pool.clone(), Duration::from_secs(3600))
        .await
        .unwrap();
    let lapsing = SqliteNameRegistry::new(pool.clone(), Duration::ZERO)
        .await
        .unwrap();
    let store = SqliteCharacterStore::new(SqliteEventRepository::new(pool));
    contract(Arc::new(held), Arc::new(lapsing), Arc::new(store)).await;
}

/// Many creations racing for one name: exactly one reservation wins.
#[tokio::test]
async fn racing_reservations_for_one_name_have_one_winner() {
    let pool = fresh_pg().await;
    let registry = Arc::new(
        PgNameRegistry::new(pool, Duration::from_secs(3600))
            .await
            .unwrap(),
    );
    let attempts = futures::future::join_all((0..16).map(|i| {
        let registry = registry.clone();
        async move { registry.reserve(&name("Twin"), &format!("c{i}")).await }
    }))
    .await;
    assert_eq!(
        attempts.iter().filter(|r| r.is_ok()).count(),
        1,
        "{attempts:?}"
    );
    assert!(attempts
        .iter()
        .filter(|r| r.is_err())
        .all(|r| matches!(r, Err(NameError::Taken(_)))));
}
