//! The generic command service on both stores (PostgreSQL, embedded SQLite): snapshots that load
//! exactly the fold of the events, idempotency, reservations across aggregates, and one instance
//! never conflicting with itself under concurrent commands to one aggregate.

use std::sync::Arc;

use chaos_domain::ports::LowestRoll;
use chaos_domain::{
    AccountId, Character, CharacterCommand, CharacterId, CharacterName, Content, Currency,
    GameAggregate, GameServices, Wallet, WalletCommand, WalletEvent,
};
use chaos_eventstore::command::{CommandMetrics, CommandSettings};
use chaos_eventstore::group_commit::GroupCommitConfig;
use chaos_eventstore::repository::Repository;
use chaos_eventstore::snapshot::{SnapshotMetrics, SnapshotPolicy};
use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::testing::{fresh_pg, fresh_sqlite, TempDir};
use chaos_eventstore::watch::WatchMetrics;
use chaos_eventstore::{CommandContext, CommandError, CommandService};

#[derive(Debug)]
struct SystemClock;
impl chaos_domain::Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

fn services() -> GameServices {
    GameServices {
        content: Arc::new(Content::builtin().unwrap()),
        clock: Arc::new(SystemClock),
        dice: Arc::new(LowestRoll),
    }
}

fn service(
    repository: Repository,
    cache: usize,
    every: u64,
) -> (CommandService, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    let service = CommandService::new(
        repository,
        services(),
        CommandSettings {
            cache_capacity: cache,
            snapshots: SnapshotPolicy { every },
            ..CommandSettings::default()
        },
        CommandMetrics::new(&registry),
        SnapshotMetrics::new(&registry),
    );
    (service, registry)
}

fn counter(registry: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> u64 {
    metric_sum(registry, name, labels, |m| {
        m.get_counter().get_value() as u64
    })
}

/// How many loads `chaos_aggregate_load_seconds` counted from `source`.
fn loads(registry: &prometheus::Registry, source: &str) -> u64 {
    metric_sum(
        registry,
        "chaos_aggregate_load_seconds",
        &[("source", source)],
        |m| m.get_histogram().get_sample_count(),
    )
}

/// `value` summed over the series of metric `name` that carry every one of `labels`.
fn metric_sum(
    registry: &prometheus::Registry,
    name: &str,
    labels: &[(&str, &str)],
    value: impl Fn(&prometheus::proto::Metric) -> u64,
) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| {
            labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            })
        })
        .map(value)
        .sum()
}

fn account(n: u128) -> AccountId {
    AccountId::from_uuid(uuid::Uuid::from_u128(n))
}

async fn pg() -> Repository {
    Repository::postgres(fresh_pg().await, GroupCommitConfig::default(), None)
}

async fn sqlite() -> (Repository, TempDir) {
    let (pool, dir) = fresh_sqlite().await;
    (Repository::sqlite(SqliteEventRepository::new(pool)), dir)
}

fn system() -> CommandContext {
    CommandContext::default()
}

async fn open_wallet(service: &CommandService, id: &str) {
    service
        .execute::<Wallet>(
            id,
            WalletCommand::Open {
                owner: account(1),
                character: CharacterId::parse(id).unwrap(),
            },
            &system(),
        )
        .await
        .unwrap();
}

fn spend(amount: u64, reference: &str) -> WalletCommand {
    WalletCommand::Spend {
        actor: account(1),
        currency: Currency::Gold,
        amount,
        sink: "vendor:test".into(),
        reference: reference.into(),
    }
}

fn grant(amount: u64, reference: String) -> WalletCommand {
    WalletCommand::Grant {
        currency: Currency::Gold,
        amount,
        source: "test".into(),
        reference,
    }
}

/// Snapshots every 7 events; 60 grants and spends; then a cold load (new service, no cache)
/// must equal the plain fold of every stored event — a snapshot mode that applied events twice
/// (cqrs-es 0.5's) would duplicate references and fail here — and must have used a snapshot.
/// A snapshot of another state version is ignored, never misread.
async fn snapshots_load_exactly_the_fold(repository: Repository) {
    let id = uuid::Uuid::new_v4().to_string();
    let (writer, _) = service(repository.clone(), 1000, 7);
    open_wallet(&writer, &id).await;
    for i in 0..60u64 {
        let command = if i % 3 == 2 {
            WalletCommand::Spend {
                actor: account(1),
                currency: Currency::Gold,
                amount: 1,
                sink: "test".into(),
                reference: format!("spend-{i}"),
            }
        } else {
            grant(i + 1, format!("grant-{i}"))
        };
        writer
            .execute::<Wallet>(&id, command, &system())
            .await
            .unwrap();
    }
    // Snapshots are written off the command path: wait for the newest (sequence 56 = 8 * 7).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let snapshot = repository.load_snapshot("wallet", &id).await.unwrap();
        if snapshot.as_ref().is_some_and(|s| s.last_sequence == 56) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot at 56: {snapshot:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let history = writer.history("wallet", &id, 0, 1000, None).await.unwrap();
    assert_eq!(history.len(), 61);
    let folded = Wallet::fold(history.iter().map(|e| {
        chaos_domain::decode_stored_json::<Wallet>(&e.event_type, &e.event_version, e.payload.get())
            .unwrap()
    }));

    let (reader, registry) = service(repository.clone(), 0, 7);
    let (loaded, version, tail) = reader.load_from_store::<Wallet>(&id).await.unwrap();
    assert_eq!(version, 61);
    assert_eq!(tail, 5, "loaded from the snapshot at 56, then 5 events");
    assert_eq!(loaded, folded);
    assert_eq!(
        counter(&registry, "chaos_snapshots_total", &[("outcome", "loaded")]),
        1
    );

    // A snapshot of another shape version (an older build's, say) is ignored.
    let mut stale = repository
        .load_snapshot("wallet", &id)
        .await
        .unwrap()
        .unwrap();
    stale.state_version += 1;
    stale.last_sequence = 1000;
    stale.payload = serde_json::json!({"not": "a wallet"});
    repository
        .save_snapshot("wallet", &id, &stale)
        .await
        .unwrap();
    let (again, version, tail) = reader.load_from_store::<Wallet>(&id).await.unwrap();
    assert_eq!((version, tail), (61, 61), "folded from the first event");
    assert_eq!(again, folded);
    assert_eq!(
        counter(
            &registry,
            "chaos_snapshots_total",
            &[("outcome", "discarded")]
        ),
        1
    );
    let balance = folded.state().unwrap().balance(Currency::Gold);
    assert!(balance > 0);
}

#[tokio::test]
async fn postgres_snapshots_load_exactly_the_fold() {
    snapshots_load_exactly_the_fold(pg().await).await;
}

#[tokio::test]
async fn sqlite_snapshots_load_exactly_the_fold() {
    let (repository, _dir) = sqlite().await;
    snapshots_load_exactly_the_fold(repository).await;
}

/// 40 concurrent commands on one aggregate through one service: every one is carried out, in
/// some order, and none had to be decided twice (the aggregate's turns, not the database's
/// unique key, kept them apart).
async fn one_instance_never_conflicts_with_itself(repository: Repository) {
    let id = uuid::Uuid::new_v4().to_string();
    let (service, registry) = service(repository, 1000, 0);
    open_wallet(&service, &id).await;
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let service = service.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            service
                .execute::<Wallet>(&id, grant(1, format!("r{i}")), &system())
                .await
                .map(|o| o.sequence)
        }));
    }
    let mut sequences = Vec::new();
    for t in tasks {
        sequences.push(t.await.unwrap().unwrap());
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (2..=41).collect::<Vec<u64>>());
    assert_eq!(
        counter(
            &registry,
            "chaos_command_conflicts_total",
            &[("aggregate", "wallet")]
        ),
        0
    );
    let (wallet, _) = service.load::<Wallet>(&id).await.unwrap();
    assert_eq!(wallet.state().unwrap().balance(Currency::Gold), 40);
}

#[tokio::test]
async fn postgres_one_instance_never_conflicts_with_itself() {
    one_instance_never_conflicts_with_itself(pg().await).await;
}

#[tokio::test]
async fn sqlite_one_instance_never_conflicts_with_itself() {
    let (repository, _dir) = sqlite().await;
    one_instance_never_conflicts_with_itself(repository).await;
}

/// Two instances (two services, no shared cache) on one new wallet: A opened it, B has it
/// cached at version 1. Returns the wallet's id, then A and B with their registries.
async fn two_instances(
    repository: Repository,
) -> (
    String,
    (CommandService, prometheus::Registry),
    (CommandService, prometheus::Registry),
) {
    let id = uuid::Uuid::new_v4().to_string();
    let (a, registry_a) = service(repository.clone(), 1000, 0);
    let (b, registry_b) = service(repository, 1000, 0);
    open_wallet(&a, &id).await;
    b.load::<Wallet>(&id).await.unwrap();
    (id, (a, registry_a), (b, registry_b))
}

/// Two instances (two services, no shared cache) on one aggregate: the loser of each race
/// decides again on the new state, so every command lands exactly once.
#[tokio::test]
async fn instances_racing_on_one_aggregate_each_land_once() {
    let (id, (a, registry_a), (b, registry_b)) = two_instances(pg().await).await;
    let mut tasks = Vec::new();
    for i in 0..30u64 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            s.execute::<Wallet>(&id, grant(1, format!("r{i}")), &system())
                .await
        }));
    }
    let mut landed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => landed += 1,
            // Eight lost races in a row are possible in principle; none may land twice.
            Err(CommandError::Conflict) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let (wallet, version) = a
        .load_from_store::<Wallet>(&id)
        .await
        .map(|(w, v, _)| (w, v))
        .unwrap();
    assert_eq!(version, 1 + landed);
    assert_eq!(wallet.state().unwrap().balance(Currency::Gold), landed);
    let conflicts = counter(&registry_a, "chaos_command_conflicts_total", &[])
        + counter(&registry_b, "chaos_command_conflicts_total", &[]);
    eprintln!("{landed} of 30 landed; {conflicts} decisions redone after a lost race");
}

/// A lost race costs one read of the winner's events, not a reload: instance B holds the wallet
/// at version 1 in its cache, instance A (a process manager elsewhere) grants first, B's grant
/// loses the race, B brings its cached state up to date with A's event and lands on top of it.
/// B's cache then equals the store's fold.
async fn a_lost_race_catches_up_from_the_cache(repository: Repository) {
    let (id, (a, _), (b, registry_b)) = two_instances(repository).await;
    a.execute::<Wallet>(&id, grant(50, "grant-a".into()), &system())
        .await
        .unwrap();
    let landed = b
        .execute::<Wallet>(&id, grant(7, "grant-b".into()), &system())
        .await
        .expect("decided again after the lost race");
    assert_eq!(landed.sequence, 3);
    assert_eq!(
        counter(&registry_b, "chaos_command_conflicts_total", &[]),
        1
    );
    assert_eq!(
        loads(&registry_b, "store"),
        1,
        "only B's first load read the store"
    );
    assert_eq!(loads(&registry_b, "catch-up"), 1);
    let (cached, version) = b.load::<Wallet>(&id).await.unwrap();
    let (stored, stored_version, _) = b.load_from_store::<Wallet>(&id).await.unwrap();
    assert_eq!(version, 3);
    assert_eq!(stored_version, 3);
    assert_eq!(cached.state().unwrap().balance(Currency::Gold), 57);
    assert_eq!(stored.state().unwrap().balance(Currency::Gold), 57);
    assert_eq!(
        loads(&registry_b, "store"),
        1,
        "the last load was the cache's"
    );
}

#[tokio::test]
async fn postgres_a_lost_race_catches_up_from_the_cache() {
    a_lost_race_catches_up_from_the_cache(pg().await).await;
}

#[tokio::test]
async fn sqlite_a_lost_race_catches_up_from_the_cache() {
    let (repository, _dir) = sqlite().await;
    a_lost_race_catches_up_from_the_cache(repository).await;
}

/// A writer whose targets others command ([`CommandSettings::refresh_cached`]: a process
/// manager) reads what was appended since its cached version before deciding, and never loses
/// the race: instance B (refreshing) holds the wallet at version 1, instance A grants 50, B's
/// spend of 30 is decided on the balance A left and lands first time; its next spend of 30 is
/// refused on the store's state, with no recheck.
async fn a_refreshing_writer_decides_on_what_others_appended(repository: Repository) {
    let (id, (a, _), _) = two_instances(repository.clone()).await;
    let registry_b = prometheus::Registry::new();
    let b = CommandService::new(
        repository,
        services(),
        CommandSettings {
            refresh_cached: true,
            ..CommandSettings::default()
        },
        CommandMetrics::new(&registry_b),
        SnapshotMetrics::new(&registry_b),
    );
    b.load::<Wallet>(&id).await.unwrap();
    a.execute::<Wallet>(&id, grant(50, "grant-a".into()), &system())
        .await
        .unwrap();
    let spent = b
        .execute::<Wallet>(&id, spend(30, "spend-1"), &system())
        .await
        .expect("decided on the refreshed balance");
    assert_eq!(spent.sequence, 3);
    match b
        .execute::<Wallet>(&id, spend(30, "spend-2"), &system())
        .await
    {
        Err(CommandError::Rule(e)) => {
            assert_eq!(chaos_domain::RuleError::code(&e), "insufficient-funds")
        }
        other => panic!("20 left, 30 asked: {other:?}"),
    }
    assert_eq!(
        counter(&registry_b, "chaos_command_conflicts_total", &[]),
        0,
        "no race lost"
    );
    assert_eq!(
        loads(&registry_b, "store"),
        1,
        "only B's first load read the store"
    );
    assert_eq!(loads(&registry_b, "catch-up"), 0, "no catch-up, no recheck");
    // Each command read the events after B's cached version: A's grant the first time, none
    // the second.
    assert_eq!(loads(&registry_b, "refresh"), 2);
    let (cached, version) = b.load::<Wallet>(&id).await.unwrap();
    let (stored, stored_version, _) = b.load_from_store::<Wallet>(&id).await.unwrap();
    assert_eq!((version, stored_version), (3, 3));
    assert_eq!(cached.state().unwrap().balance(Currency::Gold), 20);
    assert_eq!(stored.state().unwrap().balance(Currency::Gold), 20);
}

#[tokio::test]
async fn postgres_a_refreshing_writer_decides_on_what_others_appended() {
    a_refreshing_writer_decides_on_what_others_appended(pg().await).await;
}

#[tokio::test]
async fn sqlite_a_refreshing_writer_decides_on_what_others_appended() {
    let (repository, _dir) = sqlite().await;
    a_refreshing_writer_decides_on_what_others_appended(repository).await;
}

/// The command API's store watch marks an entry another writer moved past, and the next command
/// on it reads what it missed before deciding, instead of losing the race: instance B caches the
/// wallet at version 1 and watches the store; instance A (a process manager) grants 50; once
/// B's watch has seen it, B's spend of 30 lands first time on the balance A left.
#[tokio::test]
async fn the_store_watch_spares_a_command_the_race_it_would_lose() {
    let (id, (a, _), (b, registry_b)) = two_instances(pg().await).await;
    let watch = b
        .store_watch(
            std::time::Duration::from_millis(10),
            WatchMetrics::new(&registry_b),
        )
        .expect("PostgreSQL has a watch")
        .spawn()
        .await;
    // B's own append: the watch leaves B's entry alone once B has cached it.
    b.execute::<Wallet>(&id, grant(5, "grant-b".into()), &system())
        .await
        .unwrap();
    a.execute::<Wallet>(&id, grant(50, "grant-a".into()), &system())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !b
        .cache()
        .is_behind(chaos_domain::wallet::AGGREGATE_TYPE, &id)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the watch never saw A's grant"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        counter(
            &registry_b,
            "chaos_aggregate_cache_marked_behind_total",
            &[]
        ) >= 1
    );
    let spent = b
        .execute::<Wallet>(&id, spend(30, "spend-1"), &system())
        .await
        .expect("decided on the balance A left");
    assert_eq!(spent.sequence, 4);
    assert_eq!(
        counter(&registry_b, "chaos_command_conflicts_total", &[]),
        0,
        "no race lost"
    );
    assert_eq!(loads(&registry_b, "refresh"), 1);
    assert_eq!(loads(&registry_b, "catch-up"), 0);
    let (cached, version) = b.load::<Wallet>(&id).await.unwrap();
    assert_eq!(version, 4);
    assert_eq!(cached.state().unwrap().balance(Currency::Gold), 25);
    assert!(!b
        .cache()
        .is_behind(chaos_domain::wallet::AGGREGATE_TYPE, &id));
    watch.abort();
}

/// A refusal decided on cached state is checked against the store: instance B cached the wallet
/// empty, instance A (a process manager elsewhere) granted gold since; B's spend must see it.
/// A refusal that the store confirms stays a refusal.
#[tokio::test]
async fn a_refusal_on_stale_cached_state_is_decided_again_from_the_store() {
    let (id, (a, _), (b, registry_b)) = two_instances(pg().await).await;
    a.execute::<Wallet>(&id, grant(50, "grant-1".into()), &system())
        .await
        .unwrap();
    let spent = b
        .execute::<Wallet>(&id, spend(30, "spend-1"), &system())
        .await
        .expect("decided again on the store's state");
    assert_eq!(spent.sequence, 3);
    // The cached state was brought up to date with A's grant, not reloaded.
    assert_eq!(loads(&registry_b, "store"), 1);
    assert_eq!(loads(&registry_b, "catch-up"), 1);
    match b
        .execute::<Wallet>(&id, spend(30, "spend-2"), &system())
        .await
    {
        Err(CommandError::Rule(e)) => {
            assert_eq!(chaos_domain::RuleError::code(&e), "insufficient-funds")
        }
        other => panic!("20 left, 30 asked: {other:?}"),
    }
}

/// A repeated idempotency key returns the first answer and appends nothing, whether the retry
/// would now be refused or accepted again (then the store's unique key refuses it); the same key
/// with another request is refused, on the same aggregate or another.
async fn an_idempotency_key_is_applied_once(repository: Repository) {
    let (service, registry) = service(repository, 1000, 0);
    let id = uuid::Uuid::new_v4().to_string();
    let other = uuid::Uuid::new_v4().to_string();
    open_wallet(&service, &id).await;
    open_wallet(&service, &other).await;
    let keyed = |hash: &str| CommandContext {
        account: Some(account(9)),
        idempotency_key: Some("grant-once".into()),
        request_hash: Some(hash.into()),
        ..CommandContext::default()
    };
    let first = service
        .execute::<Wallet>(&id, grant(5, "a".into()), &keyed("h1"))
        .await
        .unwrap();
    assert!(!first.replayed);
    // A different grant under the same key and hash, which the wallet itself would accept (a
    // new reference), replays the first answer: the key's unique index refused the append.
    let again = service
        .execute::<Wallet>(&id, grant(5, "b".into()), &keyed("h1"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.sequence, &again.events),
        (first.sequence, &first.events)
    );
    // The same request again, which the wallet now refuses (reference "a" is spent): replayed.
    let refused_then_replayed = service
        .execute::<Wallet>(&id, grant(5, "a".into()), &keyed("h1"))
        .await
        .unwrap();
    assert!(refused_then_replayed.replayed);
    assert_eq!(refused_then_replayed.sequence, first.sequence);
    // Another aggregate under the same key and hash: the first answer, nothing appended there.
    let elsewhere = service
        .execute::<Wallet>(&other, grant(5, "a".into()), &keyed("h1"))
        .await
        .unwrap();
    assert_eq!(
        (elsewhere.aggregate_id.as_str(), elsewhere.sequence),
        (id.as_str(), first.sequence)
    );
    for target in [&id, &other] {
        assert!(matches!(
            service
                .execute::<Wallet>(target, grant(5, "c".into()), &keyed("h2"))
                .await,
            Err(CommandError::IdempotencyKeyReused)
        ));
    }
    for (wallet, expected) in [(&id, 1), (&other, 0)] {
        let history = service
            .history("wallet", wallet, 0, 100, None)
            .await
            .unwrap();
        let grants = history
            .iter()
            .filter(|e| e.event_type == "CurrencyGranted")
            .count();
        assert_eq!(grants, expected, "grants on {wallet}");
    }
    // A repeated key is not an optimistic-concurrency conflict.
    assert_eq!(
        counter(
            &registry,
            "chaos_command_conflicts_total",
            &[("aggregate", "wallet")]
        ),
        0
    );
}

#[tokio::test]
async fn postgres_an_idempotency_key_is_applied_once() {
    an_idempotency_key_is_applied_once(pg().await).await;
}

#[tokio::test]
async fn sqlite_an_idempotency_key_is_applied_once() {
    let (repository, _dir) = sqlite().await;
    an_idempotency_key_is_applied_once(repository).await;
}

/// The answer to a keyed command with several events (experience, then level-ups) is all of
/// them, and only them: found by the key on its first event, ended where the key does.
async fn a_keyed_command_answers_with_all_its_events(repository: Repository) {
    let (service, _) = service(repository.clone(), 1000, 0);
    let id = uuid::Uuid::new_v4().to_string();
    let name = format!("K{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    service
        .execute::<Character>(
            &id,
            CharacterCommand::Create {
                owner: account(3),
                name: CharacterName::parse(&name).unwrap(),
                class: "mage".into(),
            },
            &system(),
        )
        .await
        .unwrap();
    let ctx = CommandContext {
        account: Some(account(3)),
        idempotency_key: Some("levels".into()),
        request_hash: Some("h".into()),
        ..CommandContext::default()
    };
    let grant = |amount: u64| CharacterCommand::GrantExperience {
        amount,
        source: "test".into(),
    };
    let first = service
        .execute::<Character>(&id, grant(5_000), &ctx)
        .await
        .unwrap();
    assert!(first.events.len() > 2, "{:?}", first.events);
    // A later command on the same character, without the key, is not part of the answer.
    service
        .execute::<Character>(&id, grant(1), &system())
        .await
        .unwrap();
    let stored = repository
        .by_idempotency_key(&ctx.scoped_key().unwrap())
        .await
        .unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|e| e.event_type.clone())
            .collect::<Vec<_>>(),
        first.events
    );
    let again = service
        .execute::<Character>(&id, grant(5_000), &ctx)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.sequence, again.events),
        (first.sequence, first.events)
    );
}

#[tokio::test]
async fn postgres_a_keyed_command_answers_with_all_its_events() {
    a_keyed_command_answers_with_all_its_events(pg().await).await;
}

#[tokio::test]
async fn sqlite_a_keyed_command_answers_with_all_its_events() {
    let (repository, _dir) = sqlite().await;
    a_keyed_command_answers_with_all_its_events(repository).await;
}

/// Character names are reserved across aggregates, ignoring case; the same character may
/// reserve again (a retried creation).
async fn names_are_unique_across_characters(repository: Repository) {
    let (service, _) = service(repository, 1000, 0);
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let create = |name: &str| CharacterCommand::Create {
        owner: account(1),
        name: CharacterName::parse(name).unwrap(),
        class: "mage".into(),
    };
    let first = uuid::Uuid::new_v4().to_string();
    service
        .execute::<Character>(&first, create(&format!("Ari{suffix}")), &system())
        .await
        .unwrap();
    let second = uuid::Uuid::new_v4().to_string();
    let taken = service
        .execute::<Character>(&second, create(&format!("ARI{suffix}")), &system())
        .await;
    assert!(
        matches!(
            &taken,
            Err(CommandError::Taken {
                scope: "character-name",
                ..
            })
        ),
        "{taken:?}"
    );
    let (nobody, version) = service.load::<Character>(&second).await.unwrap();
    assert_eq!((nobody.exists(), version), (false, 0), "nothing appended");
}

#[tokio::test]
async fn postgres_names_are_unique_across_characters() {
    names_are_unique_across_characters(pg().await).await;
}

#[tokio::test]
async fn sqlite_names_are_unique_across_characters() {
    let (repository, _dir) = sqlite().await;
    names_are_unique_across_characters(repository).await;
}

/// Wallet events appended through the service keep their stored version and load back.
#[tokio::test]
async fn appended_events_carry_their_type_version_and_metadata() {
    let repository = pg().await;
    let (service, _) = service(repository, 0, 0);
    let id = uuid::Uuid::new_v4().to_string();
    open_wallet(&service, &id).await;
    let context = CommandContext {
        causation_id: Some("event-123".into()),
        correlation_id: Some("corr-9".into()),
        ..CommandContext::default()
    };
    service
        .execute::<Wallet>(&id, grant(7, "x".into()), &context)
        .await
        .unwrap();
    let history = service.history("wallet", &id, 1, 10, None).await.unwrap();
    let event = &history[0];
    assert_eq!(
        (
            event.event_type.as_str(),
            event.event_version.as_str(),
            event.sequence
        ),
        ("CurrencyGranted", "1", 2)
    );
    assert_eq!(event.meta().causation_id.as_deref(), Some("event-123"));
    assert_eq!(event.meta().correlation_id.as_deref(), Some("corr-9"));
    let decoded = chaos_domain::decode_stored_json::<Wallet>(
        &event.event_type,
        &event.event_version,
        event.payload.get(),
    )
    .unwrap();
    assert!(matches!(
        decoded,
        WalletEvent::CurrencyGranted { amount: 7, .. }
    ));
}
