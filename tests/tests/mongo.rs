//! The MongoDB projection end to end: commands -> PostgreSQL -> relay -> Kafka -> `projector
//! mongo` -> MongoDB (the SecantusDB test server locally), the documents read back from MongoDB
//! and compared with the event store:
//! - every profile and timeline equals the store (events compared by stream and sequence:
//!   nothing missing, nothing twice), the first build racing the guardian's rebuild from the
//!   store;
//! - a redelivery of everything (a new consumer group from offset 0) changes nothing;
//! - MongoDB restarted under load: the projector reports unready while it is away and resumes;
//!   a read model lost under load (the database dropped) is rebuilt by the guardian; nothing is
//!   dead-lettered.
//!
//! It stops the MongoDB service the other tests of the workspace may use, so it is one test in
//! a test binary of its own (cargo runs test binaries one at a time). Needs
//! `deploy/local/services.sh up` and the binaries.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_tests::mongo::MongoProjection;
use chaos_tests::services::repo_root;
use chaos_tests::{wait_for_more, wait_until, CommandApi, Stack, StackOptions};

const CATCH_UP: Duration = Duration::from_secs(180);

/// `deploy/local/services.sh <verb> mongo`, on the services of this run (CHAOS_STATE).
fn mongo_service(verb: &str) {
    let status = std::process::Command::new("bash")
        .arg(repo_root().join("deploy/local/services.sh"))
        .args([verb, "mongo"])
        .status()
        .expect("running services.sh");
    assert!(status.success(), "services.sh {verb} mongo failed");
}

/// Plays one character: strikes to level 2 (the rewards process manager grants gold), a trip
/// to the meadow and back, two purchases.
async fn play(api: &CommandApi, stack: &Stack, token: &str, id: &str) {
    for _ in 0..11 {
        let r = api.cast_skill(token, id, "strike", &[]).await.unwrap();
        assert!(r.status.is_success(), "{r:?}");
    }
    for zone in ["starter_meadow", "whispering_woods"] {
        let r = api.travel(token, id, zone).await.unwrap();
        assert!(r.status.is_success(), "{r:?}");
    }
    // The level-up's gold arrives through the process manager, in another process: spend once
    // the event store has it (a spend before would fairly be refused for an empty purse).
    wait_until(
        "the level-up gold in the event store",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async {
            let granted: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events WHERE aggregate_type = 'wallet' \
                 AND aggregate_id = $1 AND event_type = 'CurrencyGranted'",
            )
            .bind(id)
            .fetch_one(stack.store().pool())
            .await
            .map_err(|e| e.to_string())?;
            Ok((granted > 0).then_some(()))
        },
    )
    .await
    .unwrap();
    for n in 0..2 {
        let r = api
            .spend(token, id, 5, &format!("potion-{n}-{}", &id[..8]))
            .await
            .unwrap();
        assert!(r.status.is_success(), "{r:?}");
    }
}

/// Clients casting, travelling and spending until `stop`; refusals and 503s are ignored.
fn load(
    api: CommandApi,
    heroes: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    heroes
        .into_iter()
        .map(|(token, id)| {
            let (api, stop, accepted) = (api.clone(), stop.clone(), accepted.clone());
            tokio::spawn(async move {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let reply = match i % 25 {
                        0 => api.travel(&token, &id, "starter_meadow").await,
                        1 => api.travel(&token, &id, "whispering_woods").await,
                        n if n % 6 == 0 => {
                            api.spend(&token, &id, 1, &format!("load-{i}-{}", &id[..8]))
                                .await
                        }
                        _ => api.cast_skill(&token, &id, "strike", &[]).await,
                    };
                    match reply {
                        Ok(r) if r.status.is_success() => {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect()
}

/// Waits until the projector's metric `name` reaches `at_least`.
async fn wait_for_metric(mongo: &MongoProjection, name: &str, at_least: f64) {
    wait_until(
        &format!("{name} >= {at_least}"),
        CATCH_UP,
        Duration::from_millis(100),
        || async {
            let value = mongo.metric(name).await.map_err(|e| format!("{e:#}"))?;
            if value >= at_least {
                Ok(Some(()))
            } else {
                Err(format!("{name} = {value}"))
            }
        },
    )
    .await
    .unwrap();
}

async fn wait_for_readiness(mongo: &MongoProjection, ready: bool) {
    wait_until(
        &format!("projector mongo ready = {ready}"),
        Duration::from_secs(90),
        Duration::from_millis(100),
        || async {
            if mongo.is_ready().await == ready {
                Ok(Some(()))
            } else {
                Err(format!("ready = {}", !ready))
            }
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongo_documents_equal_the_event_store_through_redelivery_and_outages() {
    let started = Instant::now();
    let phase = |what: &str| eprintln!("[{:>6.1}s] {what}", started.elapsed().as_secs_f64());
    let options = StackOptions {
        projector: false,
        query_api: false,
        ..StackOptions::default()
    };
    let stack = Stack::start(options).await.unwrap();
    let mut mongo = MongoProjection::start(&stack).await.unwrap();
    let api = stack.commands();

    // Play: three players, two characters each.
    let mut heroes = Vec::new();
    for (p, class) in ["warrior", "mage", "ranger"].iter().enumerate() {
        let player = api.player(&format!("keeper{p}")).await.unwrap();
        for k in 0..2 {
            let c = api
                .create_character(&player.token, &format!("Scribe{p}x{k}"), class, &[])
                .await
                .unwrap()
                .answer()
                .unwrap();
            heroes.push((player.token.clone(), c.aggregate_id));
        }
    }
    let plays = heroes
        .iter()
        .map(|(token, id)| play(&api, &stack, token, id));
    futures::future::join_all(plays).await;
    phase("played: 6 characters to level 2, travelled, spent");

    let events = stack.store().all_events_settled(CATCH_UP).await.unwrap();
    let checked = mongo
        .documents_match_store(&events, CATCH_UP)
        .await
        .unwrap();
    assert_eq!(checked, heroes.len());
    assert!(
        events.iter().any(|e| e.event_type == "CurrencySpent")
            && events.iter().any(|e| e.event_type == "LeveledUp"),
        "the history has level-ups and spends"
    );
    phase(&format!(
        "every profile and timeline equals the store ({} events)",
        events.len()
    ));
    // The first start found no marker: it built from the event store beside the feed.
    assert!(
        mongo
            .metric("chaos_projector_rebuilds_total")
            .await
            .unwrap()
            >= 1.0
    );

    // Redelivery of everything: a new consumer group reads both topics from offset 0.
    let before = mongo.snapshot(&events).await.unwrap();
    mongo.restart_in_new_group(&stack).await.unwrap();
    wait_for_metric(
        &mongo,
        "chaos_projector_events_duplicate_total",
        events.len() as f64,
    )
    .await;
    assert_eq!(
        mongo
            .metric("chaos_projector_events_applied_total")
            .await
            .unwrap(),
        0.0,
        "a redelivery applies nothing"
    );
    let after = mongo.snapshot(&events).await.unwrap();
    assert!(
        before == after,
        "a redelivery changed a document or a timeline"
    );
    phase("redelivered from offset 0: nothing changed");

    // MongoDB restarted under load, then the read model lost under load.
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let clients = load(api.clone(), heroes.clone(), stop.clone(), accepted.clone());
    wait_for_more(&accepted, 200).await;
    phase("MongoDB stopped under load");
    mongo_service("down");
    wait_for_readiness(&mongo, false).await;
    wait_for_more(&accepted, 100).await; // commands keep landing in PostgreSQL meanwhile
    mongo_service("up");
    wait_for_readiness(&mongo, true).await;
    phase("MongoDB back: the projector is ready again");
    wait_for_more(&accepted, 200).await;
    let rebuilds = mongo
        .metric("chaos_projector_rebuilds_total")
        .await
        .unwrap();
    phase("the read model dropped under load");
    mongo.drop_database().await.unwrap();
    wait_for_metric(&mongo, "chaos_projector_rebuilds_total", rebuilds + 1.0).await;
    wait_for_more(&accepted, 200).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    phase(&format!(
        "load stopped: {} commands accepted",
        accepted.load(Ordering::Relaxed)
    ));

    let events = stack.store().all_events_settled(CATCH_UP).await.unwrap();
    mongo
        .documents_match_store(&events, CATCH_UP)
        .await
        .unwrap();
    phase(&format!(
        "every profile and timeline equals the store again ({} events)",
        events.len()
    ));
    assert_eq!(
        mongo
            .metric("chaos_projector_dead_letters_total")
            .await
            .unwrap(),
        0.0,
        "nothing was dead-lettered"
    );
    mongo.cleanup(&stack).await.unwrap();
}
