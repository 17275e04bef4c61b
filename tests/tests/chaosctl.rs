//! `chaosctl` end to end, as an operator runs it (the real binary, exit codes, `--json` output),
//! against a real stack (PostgreSQL, relay, Kafka, projectors, Redis, MongoDB) and the embedded
//! backend (the real `chaos` binary).
//!
//! The rebuild tests play some game, stop writing, let the live projection catch up (`chaosctl
//! lag` says so), then rebuild from the event store and from Kafka, and check that each rebuilt
//! version's checksum equals the live version's at the same position, that the served pointer
//! moved, the old version is gone and `verify --all` finds no difference.
//!
//! Needs `deploy/local/services.sh up` and the binaries (`cargo build --workspace --bins`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos_tests::process::{binary, free_port};
use chaos_tests::{wait_until, Stack, StackOptions};
use serde_json::{json, Value};

const CATCH_UP: Duration = Duration::from_secs(120);

/// `chaosctl` with a settings file of its own.
struct Ctl {
    config: PathBuf,
    embedded: Option<PathBuf>,
}

/// What one run printed and returned.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "chaosctl failed: {self:?}");
        self
    }
}

impl Ctl {
    fn new(dir: &Path, toml: &str, embedded: Option<PathBuf>) -> Self {
        let config = dir.join(format!("chaosctl-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&config, toml).unwrap();
        Self { config, embedded }
    }

    /// For a stack: its database, topic prefix, Redis prefix, MongoDB database, groups.
    fn for_stack(stack: &Stack, mongo_db: &str) -> Self {
        let i = &stack.isolation;
        let s = &stack.services;
        let toml = format!(
            "[database]\nurl = \"{}\"\n\
             [kafka]\nbootstrap_servers = \"{}\"\ntopic_prefix = \"{}\"\npartitions = 6\n\
             replication_factor = 1\n\
             [schema_registry]\nurl = \"{}\"\n\
             [redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\nmodel_version = \"v1\"\n\
             [mongo]\nurl = \"{}\"\ndatabase = \"{mongo_db}\"\nkey_prefix = \"{}\"\n\
             model_version = \"v1\"\n\
             [lag]\ngroup_prefixes = [\"t{}-\"]\n\
             [rebuild]\nbatch = 500\nkafka_batch = 500\ngrace_ms = 500\n\
             group_prefix = \"t{}-rebuild-\"\n",
            i.database_url,
            s.kafka_bootstrap,
            i.topic_prefix,
            s.schema_registry_url,
            s.redis_url,
            i.redis_prefix,
            mongo_url(),
            i.redis_prefix,
            i.id,
            i.id,
        );
        Self::new(&stack.log_dir, &toml, None)
    }

    async fn run(&self, args: &[&str]) -> Run {
        let mut command = tokio::process::Command::new(binary("chaosctl").unwrap());
        command.arg("--config").arg(&self.config);
        if let Some(dir) = &self.embedded {
            command.arg("--embedded").arg(dir);
        }
        let out = command
            .args(args)
            .env_remove("CHAOS_CONFIG")
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run chaosctl");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!(
            "$ chaosctl {}\n{}{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        run
    }

    /// Waits until `chaosctl lag` shows every projection caught up (and at least `min_rows`).
    /// Waits until `chaosctl lag` lists a projection named with each of `named` (a part of its
    /// name: a consumer group, an embedded checkpoint) and no projection is behind. Named, not
    /// counted: the process managers skip most events and are often first to catch up, so a
    /// count of rows could be met before the projection the test reads from reported at all.
    async fn wait_caught_up(&self, named: &[&str]) -> Value {
        wait_until(
            "every projection caught up (chaosctl lag)",
            CATCH_UP,
            Duration::from_millis(500),
            || async {
                let run = self.run(&["lag", "--json"]).await;
                if run.code != 0 {
                    return Err(run.stderr);
                }
                let lag = run.json();
                let rows = lag["projections"].as_array().cloned().unwrap_or_default();
                let behind: Vec<&Value> = rows
                    .iter()
                    .filter(|r| r["lag_events"] != json!(0))
                    .collect();
                let missing: Vec<&&str> = named
                    .iter()
                    .filter(|n| {
                        !rows
                            .iter()
                            .any(|r| r["projection"].as_str().is_some_and(|p| p.contains(**n)))
                    })
                    .collect();
                if missing.is_empty() && behind.is_empty() {
                    Ok(Some(lag))
                } else {
                    Err(format!("missing {missing:?}, behind: {behind:?}"))
                }
            },
        )
        .await
        .unwrap()
    }

    async fn checksum(&self, model: &str, version: &str) -> Value {
        self.run(&["checksum", model, "--version", version, "--json"])
            .await
            .ok()
            .json()["checksum"]
            .clone()
    }
}

/// The embedded deployment's feeds `chaosctl lag` lists (the warehouse only while the backend
/// is stopped).
const EMBEDDED: &[&str] = &["views", "pm-rewards", "pm-combat"];

fn mongo_url() -> String {
    std::env::var("MONGODB_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "mongodb://127.0.0.1:27017/?directConnection=true".into())
        .replace("\\?", "?")
}

/// Some game: players, characters of several classes, casts and travel.
async fn play(commands: &chaos_tests::CommandApi, players: usize) -> Vec<(String, String)> {
    let mut characters = Vec::new();
    for p in 0..players {
        let player = commands
            .player(&format!(
                "p{p}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            ))
            .await
            .unwrap();
        let class = ["warrior", "mage", "ranger"][p % 3];
        let created = commands
            .create_character(&player.token, &format!("Hero{p}x"), class, &[])
            .await
            .unwrap();
        assert_eq!(created.status, 201, "{created:?}");
        let id = created.answer().unwrap().aggregate_id;
        for _ in 0..3 {
            let cast = strike(commands, &player.token, &id).await;
            assert!(cast.status == 200 || cast.status == 422, "{cast:?}");
        }
        let _ = commands.travel(&player.token, &id, "ember_peaks").await;
        characters.push((id, player.token));
    }
    characters
}

async fn strike(commands: &chaos_tests::CommandApi, token: &str, id: &str) -> chaos_tests::Reply {
    commands
        .post(
            &format!("/v1/characters/{id}/cast-skill"),
            Some(token),
            &json!({"skill": "strike", "target": {"npc": "wolf"}}),
            &[],
        )
        .await
        .unwrap()
}

/// Rebuilds `model` from `from` and checks it against the live version's checksum.
async fn rebuild_matches(ctl: &Ctl, model: &str, from: &str, live: &Value, old: &str, new: &str) {
    let run = ctl
        .run(&["rebuild", model, "--from", from, "--json"])
        .await
        .ok();
    let out = run.json();
    assert_eq!(out["old_version"], json!(old));
    assert_eq!(out["new_version"], json!(new));
    assert_eq!(
        &out["checksum"], live,
        "the version rebuilt from {from} equals the live one"
    );
    assert!(out["events"].as_u64().unwrap() > 0, "{out}");
    assert!(
        run.stderr.contains("events/s"),
        "progress lines: {}",
        run.stderr
    );
    // The pointer moved, the old version is gone, the new one is consistent with the store.
    assert_eq!(ctl.checksum(model, new).await, *live);
    let gone = ctl.checksum(model, old).await;
    assert_eq!(gone["documents"], json!(0), "{old} dropped: {gone}");
    let verify = ctl
        .run(&["verify", model, "--all", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(verify["model_version"], json!(new));
    assert_eq!(verify["differences"], json!([]));
    assert!(verify["checked"].as_u64().unwrap() > 0);
}

/// Redis: rebuilt from the event store and from Kafka, each equal to the live version.
///
/// The live projector is stopped before the switch: until it follows the served version
/// (`ViewProjection::following_served`, an integrator change), its guardian would rebuild the
/// dropped old version from its missing marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rebuilds_from_store_and_kafka_equal_the_live_version() {
    let mut stack = Stack::start(StackOptions::default()).await.unwrap();
    let ctl = Ctl::for_stack(&stack, "unused");
    let characters = play(&stack.commands(), 6).await;
    ctl.wait_caught_up(&["relay", "projector-redis", "pm-rewards", "pm-combat"])
        .await;
    let (id, _) = &characters[0];
    let sheet = stack.queries().sheet(id, None).await.unwrap();
    assert_eq!(sheet.status, 200, "{sheet:?}");

    // history: the events and the folded state.
    let history = ctl
        .run(&["history", "character", id, "--json"])
        .await
        .ok()
        .json();
    let latest = history["latest"].as_u64().unwrap();
    assert!(latest >= 2, "{history}");
    assert_eq!(history["state"]["name"], json!("Hero0x"));
    let first = ctl
        .run(&["history", "character", id, "--at", "1", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(first["events"].as_array().unwrap().len(), 1);
    assert_eq!(first["state"]["level"], json!(1));
    assert_eq!(
        ctl.run(&["history", "character", "no-such-id"]).await.code,
        1
    );
    assert_eq!(ctl.run(&["history", "dragon", id]).await.code, 2);
    let stopped = ctl.run(&["relay", "stopped", "--json"]).await.ok().json();
    assert_eq!(stopped["stopped"], json!([]));
    assert_eq!(ctl.run(&["relay", "resume", "character", id]).await.code, 1);

    // relay audit: nothing missing. Then a gap made by hand (the relay killed, its checkpoint
    // moved past a new character's event, as the append horizon's bug of decision 39 did) is
    // found, and the rewind it prints repairs it.
    let audit = ctl.run(&["relay", "audit", "--json"]).await.ok().json();
    assert_eq!(audit["missing_count"], json!(0), "{audit}");
    assert!(audit["checked"].as_u64().unwrap() >= 12, "{audit}");
    stack.relay(0).kill9();
    let lost = stack
        .commands()
        .create_character(&characters[0].1, "Gapfinder", "mage", &[])
        .await
        .unwrap();
    assert_eq!(lost.status, 201, "{lost:?}");
    let lost = lost.answer().unwrap().aggregate_id;
    let pool = sqlx::PgPool::connect(&stack.isolation.database_url)
        .await
        .unwrap();
    let name = audit["checkpoint"]["name"].as_str().unwrap();
    sqlx::query(
        "UPDATE checkpoints SET (tx_id, global_position) = (SELECT tx_id, global_position
           FROM events ORDER BY tx_id DESC, global_position DESC LIMIT 1)
         WHERE name = $1",
    )
    .bind(name)
    .execute(&pool)
    .await
    .unwrap();
    let audit = ctl.run(&["relay", "audit", "--json"]).await;
    assert_eq!(audit.code, 1, "{audit:?}");
    let audit = audit.json();
    assert_eq!(audit["missing_count"], json!(1), "{audit}");
    assert_eq!(audit["missing"][0]["aggregate_id"], json!(lost), "{audit}");
    assert_eq!(audit["missing"][0]["event_type"], json!("CharacterCreated"));
    let rewind = &audit["rewind_to"];
    sqlx::query(
        "UPDATE checkpoints SET tx_id = $1::text::xid8, global_position = $2 WHERE name = $3",
    )
    .bind(rewind["tx_id"].as_str().unwrap())
    .bind(rewind["global_position"].as_i64().unwrap())
    .bind(name)
    .execute(&pool)
    .await
    .unwrap();
    stack
        .relay(0)
        .restart(Duration::from_secs(60))
        .await
        .unwrap();
    ctl.wait_caught_up(&["relay"]).await;
    let audit = ctl.run(&["relay", "audit", "--json"]).await.ok().json();
    assert_eq!(audit["missing_count"], json!(0), "{audit}");

    let live = ctl.checksum("redis", "v1").await;
    assert!(live["documents"].as_u64().unwrap() >= 6, "{live}");
    assert_eq!(
        ctl.run(&["verify", "redis", "--all"]).await.code,
        0,
        "the live version matches the store"
    );
    stack.projector().kill9();
    rebuild_matches(&ctl, "redis", "store", &live, "v1", "v2").await;
    rebuild_matches(&ctl, "redis", "kafka", &live, "v2", "v3").await;

    // A damaged document is a difference: verify exits 1 and names it.
    let redis = redis::Client::open(stack.services.redis_url.as_str()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}v3:sheet:{{{id}}}", stack.isolation.redis_prefix);
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("n")
        .arg(999)
        .query_async(&mut conn)
        .await
        .unwrap();
    let verify = ctl.run(&["verify", "redis", "--all", "--json"]).await;
    assert_eq!(verify.code, 1, "{verify:?}");
    assert!(verify.stdout.contains("applied"), "{}", verify.stdout);
}

/// MongoDB: the live `projector mongo` builds v1; rebuilds from the store and Kafka equal it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_rebuilds_from_store_and_kafka_equal_the_live_version() {
    let stack = Stack::start(StackOptions {
        query_api: false,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let mongo_db = format!("chaos_t_{}", stack.isolation.id);
    let ctl = Ctl::for_stack(&stack, &mongo_db);
    let bind = format!("127.0.0.1:{}", free_port());
    let mut projector = chaos_tests::ServiceProcess::spawn(
        chaos_tests::process::ProcessSpec {
            name: "projector-mongo".into(),
            program: binary("projector").unwrap(),
            args: vec!["mongo".into()],
            env: vec![
                ("CHAOS__TELEMETRY__JSON".into(), "true".into()),
                (
                    "CHAOS__DATABASE__URL".into(),
                    stack.isolation.database_url.clone(),
                ),
                (
                    "CHAOS__KAFKA__BOOTSTRAP_SERVERS".into(),
                    stack.services.kafka_bootstrap.clone(),
                ),
                (
                    "CHAOS__KAFKA__TOPIC_PREFIX".into(),
                    stack.isolation.topic_prefix.clone(),
                ),
                (
                    "CHAOS__SCHEMA_REGISTRY__URL".into(),
                    stack.services.schema_registry_url.clone(),
                ),
                ("CHAOS__MONGO__URL".into(), mongo_url()),
                ("CHAOS__MONGO__DATABASE".into(), mongo_db.clone()),
                (
                    "CHAOS__MONGO__KEY_PREFIX".into(),
                    stack.isolation.redis_prefix.clone(),
                ),
                (
                    "CHAOS__MONGO__GROUP_ID".into(),
                    format!("t{}-projector-mongo", stack.isolation.id),
                ),
                ("CHAOS__MONGO__HTTP_BIND".into(), bind.clone()),
            ],
            http_bind: bind,
        },
        &stack.log_dir,
    )
    .unwrap();
    projector
        .wait_ready(chaos_tests::stack::READY_TIMEOUT)
        .await
        .unwrap();
    play(&stack.commands(), 5).await;
    ctl.wait_caught_up(&[
        "relay",
        "projector-redis",
        "projector-mongo",
        "pm-rewards",
        "pm-combat",
    ])
    .await;
    let live = ctl.checksum("mongo", "v1").await;
    assert!(live["documents"].as_u64().unwrap() >= 5, "{live}");
    assert!(
        live["log_entries"].as_u64().unwrap() > 0,
        "timelines: {live}"
    );
    assert_eq!(ctl.run(&["verify", "mongo", "--all"]).await.code, 0);
    projector.kill9();
    rebuild_matches(&ctl, "mongo", "store", &live, "v1", "v2").await;
    rebuild_matches(&ctl, "mongo", "kafka", &live, "v2", "v3").await;
    let store = chaos_readmodel::MongoStore::connect(&mongo_url(), &mongo_db)
        .await
        .unwrap();
    store.database().drop().await.unwrap();
}

/// The embedded backend keeps serving while its read models are rebuilt from `events.db`;
/// once switched, the running process writes the new version (it follows the served
/// pointer), and a restart resumes from the checkpoint the rebuild left for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_rebuild_switches_the_running_backend() {
    let dir = std::env::temp_dir().join(format!("chaosctl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut backend = Embedded::start(&dir).await;
    let commands = chaos_tests::CommandApi::new(&backend.commands);
    let characters = play(&commands, 4).await;
    let ctl = Ctl::new(
        &dir,
        "[rebuild]\nbatch = 100\nkafka_batch = 100\ngrace_ms = 500\ngroup_prefix = \"x\"\n",
        Some(dir.clone()),
    );
    // views + two process managers (+ the warehouse while the backend is stopped).
    ctl.wait_caught_up(EMBEDDED).await;
    let live = ctl.checksum("embedded", "v1").await;
    assert!(live["documents"].as_u64().unwrap() >= 4, "{live}");
    assert_eq!(
        ctl.run(&["rebuild", "embedded", "--from", "kafka"])
            .await
            .code,
        2,
        "no Kafka in the embedded mode"
    );
    rebuild_matches(&ctl, "embedded", "store", &live, "v1", "v2").await;

    // The running backend now writes v2 (it follows the served version).
    let (id, token) = &characters[1];
    let cast = strike(&commands, token, id).await;
    assert_eq!(cast.status, 200, "{cast:?}");
    let after = wait_until(
        "the running backend applies the new cast to v2",
        CATCH_UP,
        Duration::from_millis(200),
        || async {
            let now = ctl.checksum("embedded", "v2").await;
            if now != live {
                Ok(Some(now))
            } else {
                Err("unchanged".to_owned())
            }
        },
    )
    .await
    .unwrap();
    let verify = ctl
        .run(&["verify", "embedded", "--all", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(verify["model_version"], json!("v2"));
    assert_eq!(verify["differences"], json!([]));
    assert_eq!(ctl.checksum("embedded", "v1").await["documents"], json!(0));

    // A restart resumes v2 from the rebuild's checkpoint; the warehouse is readable while
    // the backend is stopped.
    backend.stop();
    let lag = ctl.run(&["lag", "--json"]).await.ok().json();
    assert!(
        lag["projections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["projection"] == json!("warehouse")),
        "{lag}"
    );
    // The warehouse, rebuilt while no process holds it: the same checksum as the live file's,
    // and the live file is the rebuilt one afterwards.
    let warehouse = ctl
        .run(&["checksum", "warehouse", "--json"])
        .await
        .ok()
        .json()["checksum"]["digest"]
        .clone();
    let rebuilt = ctl
        .run(&["rebuild", "warehouse", "--from", "store", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(rebuilt["checksum"]["digest"], warehouse, "{rebuilt}");
    assert_eq!(rebuilt["switched_by"], json!("offline"));
    assert_eq!(
        ctl.run(&["checksum", "warehouse", "--json"])
            .await
            .ok()
            .json()["checksum"]["digest"],
        warehouse
    );
    let backend = Embedded::start(&dir).await;
    ctl.wait_caught_up(EMBEDDED).await;
    // And while the backend holds it: the live process switches.
    let live_switch = ctl
        .run(&["rebuild", "warehouse", "--from", "store", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(live_switch["switched_by"], json!("live"), "{live_switch}");
    let verify = ctl
        .run(&["verify", "embedded", "--all", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(verify["differences"], json!([]));
    assert_eq!(
        ctl.checksum("embedded", "v2").await["documents"],
        after["documents"]
    );
    drop(backend);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The embedded backend (`chaos`) as a child process.
struct Embedded {
    child: std::process::Child,
    commands: String,
}

impl Embedded {
    async fn start(dir: &Path) -> Self {
        let ports = (free_port(), free_port());
        let child = Command::new(binary("chaos").unwrap())
            .arg("--data-dir")
            .arg(dir)
            .env("CHAOS__COMMAND_API__BIND", format!("127.0.0.1:{}", ports.0))
            .env("CHAOS__QUERY_API__BIND", format!("127.0.0.1:{}", ports.1))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let backend = Self {
            child,
            commands: format!("http://127.0.0.1:{}", ports.0),
        };
        let url = format!("{}/readyz", backend.commands);
        let started = Instant::now();
        wait_until(
            "the embedded backend",
            Duration::from_secs(90),
            Duration::from_millis(50),
            || {
                let url = url.clone();
                async move {
                    match reqwest::get(&url).await {
                        Ok(r) if r.status().is_success() => Ok(Some(())),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await
        .unwrap();
        eprintln!("embedded backend ready in {:?}", started.elapsed());
        backend
    }

    /// SIGTERM and wait: the backend saves its checkpoints and closes its files.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Embedded dead letters: a store-fed feed records them in `events.db`; `chaosctl` lists, shows
/// and redrives them; the feed applies each redrive once and records the outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_dead_letters_are_recorded_listed_and_redriven_once() {
    use std::sync::Arc;

    use chaos_eventstore::{EventLog, Position};
    use chaos_projectors::runner::{ProjectorMetrics, SqliteDeadLetters, StoreFeed};
    use chaos_readmodel::{Keys, MemoryStore, ViewProjection};

    let dir = std::env::temp_dir().join(format!("chaosctl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut backend = Embedded::start(&dir).await;
    play(&chaos_tests::CommandApi::new(&backend.commands), 2).await;
    backend.stop();

    let pool = chaos_eventstore::sqlite::open(&dir.join("events.db"))
        .await
        .unwrap();
    let repo = chaos_eventstore::sqlite::SqliteEventRepository::new(pool.clone());
    let log = repo.log();
    let first = log.read_after(Position::START, 1).await.unwrap().remove(0);
    let first_event = chaos_eventstore::publish::to_published(&first).unwrap();
    // Views without gap repair, fed from after the store's first event: every later event of
    // that stream is a sequence gap, a dead letter.
    let projection = ViewProjection::new(
        Arc::new(MemoryStore::default()),
        Keys::new("t:", "v1"),
        chaos_readmodel::views::all(),
    );
    let recorder = Arc::new(SqliteDeadLetters::new(pool.clone()).await.unwrap());
    let feed = StoreFeed::new(
        "views",
        Arc::new(log.clone()),
        Arc::new(projection.clone()),
        ProjectorMetrics::new(&prometheus::Registry::new()),
    )
    .with_dead_letters(recorder.clone());
    let done = feed.catch_up(first.position, |_| {}).await.unwrap();
    assert!(done.dead_letters > 0, "{done:?}");

    let ctl = Ctl::new(&dir, "", Some(dir.clone()));
    let list = ctl
        .run(&["dead-letters", "list", "--json"])
        .await
        .ok()
        .json();
    let entries = list["dead_letters"].as_array().unwrap().clone();
    assert_eq!(entries.len() as u64, done.dead_letters);
    let one = &entries[0];
    assert_eq!(one["projection"], json!("views"));
    assert!(
        one["reason"].as_str().unwrap().contains("sequence gap"),
        "{one}"
    );
    assert_eq!(one["key"], json!(first.aggregate_id));
    assert_eq!(
        one["event"]["envelope"]["sequence"],
        json!(2),
        "decoded: {one}"
    );
    let id = one["id"].as_str().unwrap().to_owned();
    let shown = ctl
        .run(&["dead-letters", "show", &id, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["id"], json!(id));
    assert_eq!(ctl.run(&["dead-letters", "show", "424242"]).await.code, 1);

    // Fixed: the missing first event is applied; then everything is redriven, each once.
    projection.apply_batch(&[first_event]).await.unwrap();
    let asked = ctl
        .run(&["dead-letters", "redrive", "--projection", "views", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(asked["requested"].as_array().unwrap().len(), entries.len());
    let again = ctl
        .run(&["dead-letters", "redrive", &id, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(again["requested"], json!([]));
    assert_eq!(feed.redrive().await.unwrap(), entries.len() as u64);
    assert_eq!(feed.redrive().await.unwrap(), 0, "each once");
    let after = ctl
        .run(&["dead-letters", "list", "--json"])
        .await
        .ok()
        .json();
    for e in after["dead_letters"].as_array().unwrap() {
        assert_eq!(e["redriven"]["outcome"], json!("applied"), "{e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Redis projection's dead letters once there are at least `n`.
async fn redis_dead_letters(ctl: &Ctl, n: usize) -> Result<Option<Vec<Value>>, String> {
    let out = ctl
        .run(&["dead-letters", "list", "--projection", "redis", "--json"])
        .await;
    if out.code != 0 {
        return Err(out.stderr);
    }
    let entries = out.json()["dead_letters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if entries.len() >= n {
        Ok(Some(entries))
    } else {
        Err(format!("{} dead letters", entries.len()))
    }
}

/// Kafka dead letters: a poison message is dead-lettered by the Redis projector; chaosctl lists
/// and shows it with its source coordinates and reason, redrives it once to its source topic and
/// partition (where the projector dead-letters it again, as it still does not decode), and skips
/// it on a second redrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_dead_letters_are_listed_shown_and_redriven_once() {
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let stack = Stack::start(StackOptions {
        process_managers: false,
        query_api: false,
        ..StackOptions::default()
    })
    .await
    .unwrap();
    let ctl = Ctl::for_stack(&stack, "unused");
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.services.kafka_bootstrap)
        .create()
        .unwrap();
    let topic = stack.events_topic();
    producer
        .send(
            FutureRecord::<str, [u8]>::to(&topic)
                .key("poison")
                .payload(b"not avro at all".as_slice()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let entries = wait_until(
        "the poison message dead-lettered",
        CATCH_UP,
        Duration::from_millis(500),
        || redis_dead_letters(&ctl, 1),
    )
    .await
    .unwrap();
    let dead = &entries[0];
    assert_eq!(dead["key"], json!("poison"));
    assert_eq!(dead["source"]["topic"], json!(topic));
    assert!(
        dead["reason"].as_str().unwrap().contains("decode"),
        "{dead}"
    );
    assert!(
        dead["event"].is_null() && dead["decode_error"].is_string(),
        "{dead}"
    );
    let id = dead["id"].as_str().unwrap().to_owned();
    let shown = ctl.run(&["dead-letters", "show", &id]).await.ok();
    assert!(shown.stdout.contains("poison"), "{shown:?}");

    let sent = ctl
        .run(&["dead-letters", "redrive", &id, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(sent["redriven"].as_array().unwrap().len(), 1, "{sent}");
    // Back on its topic, still poison: dead-lettered again, under a new id.
    let entries = wait_until(
        "the redriven copy dead-lettered again",
        CATCH_UP,
        Duration::from_millis(500),
        || redis_dead_letters(&ctl, 2),
    )
    .await
    .unwrap();
    let first = entries.iter().find(|e| e["id"] == json!(id)).unwrap();
    assert!(first["redriven"]["to"].is_string(), "{first}");
    let again = ctl
        .run(&["dead-letters", "redrive", &id, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(again["redriven"], json!([]), "each once: {again}");
    assert_eq!(again["skipped"].as_array().unwrap().len(), 1);
    assert_eq!(
        ctl.run(&["dead-letters", "show", "redis:0:99999"])
            .await
            .code,
        1
    );
}
