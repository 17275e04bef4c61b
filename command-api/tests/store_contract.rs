//! The event store port's contract, run against every implementation: cqrs-es over postgres-es
//! (production) and over the embedded SQLite repository, each bare and behind the cache.

use std::collections::HashMap;
use std::sync::Arc;

use chaos_command_api::store::es::{PgCharacterStore, SqliteCharacterStore};
use chaos_command_api::store::{CachedStore, CharacterStore, StoreError};
use chaos_domain::ports::{FixedClock, LowestRoll};
use chaos_domain::{AccountId, Character, CharacterCommand, CharacterName, Content};
use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::testing::{fresh_pg, fresh_sqlite, TempDir};

fn decide(state: &Character, command: CharacterCommand) -> Vec<chaos_domain::CharacterEvent> {
    let content = Content::builtin().unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z")
        .unwrap()
        .to_utc();
    state
        .decide(command, &content, FixedClock(now).0, &LowestRoll)
        .unwrap()
}

async fn contract(store: Arc<dyn CharacterStore>) {
    let owner = AccountId::from_uuid(uuid::Uuid::from_u128(9));
    let id = uuid::Uuid::new_v4().to_string();

    let (fresh, version) = store.load(&id).await.unwrap();
    assert_eq!(
        (fresh.state(), version),
        (None, 0),
        "an unknown aggregate loads empty"
    );

    let create = CharacterCommand::Create {
        owner,
        name: CharacterName::parse("Cora").unwrap(),
        class: "mage".into(),
    };
    let created = decide(&fresh, create);
    let meta = HashMap::from([("idempotency_key".to_owned(), format!("{owner}:create"))]);
    assert_eq!(
        store
            .append(&id, 0, &fresh, created.clone(), meta)
            .await
            .unwrap(),
        vec![1]
    );

    // Appending on a stale version is refused, whatever the cache believes.
    let again = store.append(&id, 0, &fresh, created, HashMap::new()).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");

    let (state, version) = store.load(&id).await.unwrap();
    assert_eq!(version, 1);
    let cast = CharacterCommand::CastSkill {
        actor: owner,
        skill: "fireball".into(),
        target: None,
    };
    let events = decide(&state, cast);
    assert_eq!(events.len(), 2, "SkillCast then ExperienceGained");
    assert_eq!(
        store
            .append(&id, 1, &state, events, HashMap::new())
            .await
            .unwrap(),
        vec![2, 3]
    );

    let (state, version) = store.load(&id).await.unwrap();
    assert_eq!(version, 3);
    assert_eq!(state.state().unwrap().xp, 5);
    assert_eq!(state.state().unwrap().mana, 90);

    let keyed = store
        .by_idempotency_key(&format!("{owner}:create"))
        .await
        .unwrap();
    assert_eq!(keyed.len(), 1);
    assert_eq!(
        (keyed[0].aggregate_id.as_str(), keyed[0].sequence),
        (id.as_str(), 1)
    );
    assert!(store
        .by_idempotency_key("nobody:none")
        .await
        .unwrap()
        .is_empty());

    let history = store.history(&id, None).await.unwrap();
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec!["CharacterCreated", "SkillCast", "ExperienceGained"]
    );
    assert_eq!(
        store.history(&id, Some(2)).await.unwrap().len(),
        2,
        "history up to a version"
    );
    store.ping().await.unwrap();
}

async fn sqlite_repo() -> (SqliteEventRepository, TempDir) {
    let (pool, dir) = fresh_sqlite().await;
    (SqliteEventRepository::new(pool), dir)
}

#[tokio::test]
async fn postgres_store_meets_the_contract() {
    contract(Arc::new(PgCharacterStore::new(fresh_pg().await))).await;
}

#[tokio::test]
async fn cached_postgres_store_meets_the_contract() {
    contract(Arc::new(CachedStore::new(
        PgCharacterStore::new(fresh_pg().await),
        16,
    )))
    .await;
}

#[tokio::test]
async fn sqlite_store_meets_the_contract() {
    let (repo, _dir) = sqlite_repo().await;
    contract(Arc::new(SqliteCharacterStore::new(repo))).await;
}

#[tokio::test]
async fn cached_sqlite_store_meets_the_contract() {
    let (repo, _dir) = sqlite_repo().await;
    contract(Arc::new(CachedStore::new(
        SqliteCharacterStore::new(repo),
        16,
    )))
    .await;
}

/// Two writers deciding on the same version: exactly one wins, whichever store.
#[tokio::test]
async fn concurrent_appends_on_one_version_let_exactly_one_win() {
    let pool = fresh_pg().await;
    let a = PgCharacterStore::new(pool.clone());
    let b = CachedStore::new(PgCharacterStore::new(pool), 16);
    let owner = AccountId::from_uuid(uuid::Uuid::from_u128(3));
    let id = uuid::Uuid::new_v4().to_string();
    let create = |name: &str| CharacterCommand::Create {
        owner,
        name: CharacterName::parse(name).unwrap(),
        class: "warrior".into(),
    };
    let empty = Character::default();
    let (ra, rb) = tokio::join!(
        a.append(
            &id,
            0,
            &empty,
            decide(&empty, create("Alda")),
            HashMap::new()
        ),
        b.append(
            &id,
            0,
            &empty,
            decide(&empty, create("Brin")),
            HashMap::new()
        ),
    );
    assert_eq!(ra.is_ok() as u8 + rb.is_ok() as u8, 1, "{ra:?} {rb:?}");
    assert_eq!(a.history(&id, None).await.unwrap().len(), 1);
}
