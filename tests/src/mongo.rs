//! The MongoDB projection as a test sees it: `projector mongo` run beside a [`Stack`] (its own
//! database, consumer group and dead-letter topic), its documents read straight from MongoDB,
//! and the check that they equal the event store.
//!
//! The expected documents are computed here from the stored events (their payloads, the state
//! the domain folds), not through the views' code.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use chaos_domain::Character;
use chaos_eventstore::publish::to_published;
use chaos_eventstore::StoredEvent;
use chaos_readmodel::views::{profile, timeline, ProfileDoc, TimelineDoc, TimelineEntry};
use chaos_readmodel::{Document, DocumentStore, Keys, MongoConfig, MongoStore};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::process::{binary, free_port, ProcessSpec, ServiceProcess};
use crate::stack::READY_TIMEOUT;
use crate::store::{assert_contiguous, by_aggregate, fold};
use crate::Stack;

/// The MongoDB-wire server's URL: `MONGODB_URL` (`services.sh env`), else the local default.
pub fn mongodb_url() -> String {
    std::env::var("MONGODB_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "mongodb://127.0.0.1:27017/?directConnection=true".into())
}

/// A reader of `database` on the MongoDB-wire server, as the query API reads what a test's
/// `projector mongo` wrote (its default key prefix and model version); it never completes
/// pending entries itself.
pub async fn open_reader(database: &str) -> anyhow::Result<MongoStore> {
    Ok(MongoStore::open_reader(&MongoConfig {
        url: mongodb_url().into(),
        database: database.to_owned(),
        key_prefix: "chaos:".into(),
        model_version: "v1".into(),
        ca_file: String::new(),
    })
    .await?)
}

/// `projector mongo` for one stack, and a reader of what it wrote.
#[derive(Debug)]
pub struct MongoProjection {
    pub database: String,
    pub group_id: String,
    pub projector: ServiceProcess,
    /// A reader, as the query API would be: it never completes pending entries itself.
    store: MongoStore,
    keys: Keys,
    dead_letter_topic: String,
    starts: usize,
}

/// One character's documents and timeline as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub profile: Option<Document>,
    pub timeline: Option<Document>,
    pub entries: Vec<(u64, Value)>,
}

impl MongoProjection {
    /// Starts `projector mongo` on the stack's database, topics and event store, into a
    /// database of its own, and waits until it is ready.
    pub async fn start(stack: &Stack) -> anyhow::Result<Self> {
        let id = &stack.isolation.id;
        let database = format!("chaos_t_{id}");
        let store = open_reader(&database).await?;
        let group_id = format!("t{id}-projector-mongo");
        let mut projection = Self {
            projector: spawn(stack, &database, &group_id, 1)?,
            database,
            group_id,
            store,
            keys: Keys::new("chaos:", "v1"),
            dead_letter_topic: format!(
                "{}{}",
                stack.isolation.topic_prefix,
                chaos_schemas::dead_letter_topic("mongo")
            ),
            starts: 1,
        };
        projection.projector.wait_ready(READY_TIMEOUT).await?;
        Ok(projection)
    }

    /// Replaces the projector with one in a new consumer group: it reads both topics again
    /// from the first offset (a redelivery of everything).
    pub async fn restart_in_new_group(&mut self, stack: &Stack) -> anyhow::Result<()> {
        self.projector.kill9();
        self.starts += 1;
        self.group_id = format!("t{}-projector-mongo-{}", stack.isolation.id, self.starts);
        self.projector = spawn(stack, &self.database, &self.group_id, self.starts)?;
        self.projector.wait_ready(READY_TIMEOUT).await
    }

    /// A metric of the running projector, summed over its labels (0 if absent).
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let metrics = self.projector.metrics().await?;
        Ok(crate::process::metric_value(&metrics, name).unwrap_or(0.0))
    }

    /// Whether the projector answers `/readyz` with 200 now.
    pub async fn is_ready(&self) -> bool {
        let url = format!("{}/readyz", self.projector.base_url());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .expect("an HTTP client");
        matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
    }

    /// Drops the projection's database: a read model lost while the projector runs.
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        self.store.database().drop().await?;
        Ok(())
    }

    /// What MongoDB holds for character `id`.
    pub async fn stored(&self, id: &str) -> anyhow::Result<Stored> {
        let profile = self.store.get(&self.keys.doc(profile::NAME, id)).await?;
        let timeline = self.store.get(&self.keys.doc(timeline::NAME, id)).await?;
        let log = self.keys.log(timeline::NAME, timeline::EVENTS, id);
        let mut entries = Vec::new();
        loop {
            let after = entries.last().map_or(0, |(s, _)| *s);
            let page = self.store.log_range(&log, after, 1000).await?;
            if page.is_empty() {
                break;
            }
            entries.extend(page);
        }
        Ok(Stored {
            profile,
            timeline,
            entries,
        })
    }

    /// Everything stored for the characters (and wallets) of `events`.
    pub async fn snapshot(
        &self,
        events: &[StoredEvent],
    ) -> anyhow::Result<BTreeMap<String, Stored>> {
        let ids: BTreeSet<&str> = events.iter().map(|e| e.aggregate_id.as_str()).collect();
        let mut out = BTreeMap::new();
        for id in ids {
            out.insert(id.to_owned(), self.stored(id).await?);
        }
        Ok(out)
    }

    /// Waits until every profile and timeline has applied every stored event of its character
    /// and wallet, then compares each with the store (see [`mismatches`]). Returns how many
    /// characters were checked.
    pub async fn documents_match_store(
        &self,
        events: &[StoredEvent],
        timeout: Duration,
    ) -> anyhow::Result<usize> {
        let characters = by_aggregate(events, chaos_domain::character::AGGREGATE_TYPE);
        let wallets = by_aggregate(events, chaos_domain::wallet::AGGREGATE_TYPE);
        let deadline = Instant::now() + timeout;
        let mut problems = Vec::new();
        for (id, list) in &characters {
            assert_contiguous(list)?;
            let wallet = wallets.get(id).map(Vec::as_slice).unwrap_or_default();
            assert_contiguous(wallet)?;
            let positions = BTreeMap::from([
                (format!("character/{id}"), list.len() as u64),
                (format!("wallet/{id}"), wallet.len() as u64),
            ]);
            let keys = [
                self.keys.doc(profile::NAME, id),
                self.keys.doc(timeline::NAME, id),
            ];
            loop {
                let docs = self.store.get_many(&keys).await?;
                let reached = docs.iter().all(|d| {
                    d.as_ref().is_some_and(|d| {
                        positions
                            .iter()
                            .all(|(s, n)| d.position(s) >= *n || *n == 0)
                    })
                });
                if reached {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "{id}: the MongoDB documents did not reach {positions:?}: {:?}",
                    docs.iter()
                        .map(|d| d.as_ref().map(|d| &d.positions))
                        .collect::<Vec<_>>()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let stored = self.stored(id).await?;
            problems.extend(mismatches(id, list, wallet, &stored)?);
            // The time window over the whole timeline, a page at a time, lists the same entries.
            let log = self.keys.log(timeline::NAME, timeline::EVENTS, id);
            let (from, to) = (i64::MIN, i64::MAX);
            let mut windowed = Vec::new();
            loop {
                let after = windowed.last().map_or(0, |(s, _): &(u64, Value)| *s);
                let page = self.store.log_window(&log, from, to, after, 97).await?;
                if page.is_empty() {
                    break;
                }
                windowed.extend(page);
            }
            if windowed != stored.entries {
                problems.push(format!(
                    "{id}: the timeline by time window has {} entries, by position {}",
                    windowed.len(),
                    stored.entries.len()
                ));
            }
        }
        anyhow::ensure!(
            problems.is_empty(),
            "{} MongoDB document fields differ from the event store:\n{}",
            problems.len(),
            problems[..problems.len().min(30)].join("\n")
        );
        Ok(characters.len())
    }

    /// Drops the database and the dead-letter topic (the stack removes its own topics).
    pub async fn cleanup(self, stack: &Stack) -> anyhow::Result<()> {
        self.drop_database().await?;
        crate::kafka::delete_topics(&stack.services.kafka_bootstrap, &[self.dead_letter_topic])
            .await
    }
}

/// `projector mongo` with the stack's Kafka, registry and event store.
fn spawn(
    stack: &Stack,
    database: &str,
    group_id: &str,
    start: usize,
) -> anyhow::Result<ServiceProcess> {
    let bind = format!("127.0.0.1:{}", free_port());
    let config = stack.log_dir.join("projector-mongo.toml");
    // A killed projector's partitions move to its successor after 6 s, not 45 s.
    std::fs::write(
        &config,
        "[kafka.options]\n\"session.timeout.ms\" = \"6000\"\n\
         \"heartbeat.interval.ms\" = \"500\"\n",
    )?;
    let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let services = &stack.services;
    let spec = ProcessSpec {
        name: format!("projector-mongo-{start}"),
        program: binary("projector")?,
        args: vec!["mongo".into()],
        env: vec![
            kv("CHAOS__TELEMETRY__JSON", "true"),
            kv("CHAOS__TELEMETRY__LEVEL", "info"),
            kv("RUST_BACKTRACE", "1"),
            kv("CHAOS_CONFIG", &config.to_string_lossy()),
            kv("CHAOS__KAFKA__BOOTSTRAP_SERVERS", &services.kafka_bootstrap),
            kv("CHAOS__KAFKA__TOPIC_PREFIX", &stack.isolation.topic_prefix),
            kv("CHAOS__SCHEMA_REGISTRY__URL", &services.schema_registry_url),
            kv("CHAOS__DATABASE__URL", &stack.isolation.database_url),
            kv("CHAOS__MONGO__URL", &mongodb_url()),
            kv("CHAOS__MONGO__DATABASE", database),
            kv("CHAOS__MONGO__GROUP_ID", group_id),
            kv("CHAOS__MONGO__HTTP_BIND", &bind),
        ],
        http_bind: bind,
    };
    ServiceProcess::spawn(spec, &stack.log_dir).context("starting projector mongo")
}

fn payload(e: &StoredEvent, field: &str) -> Option<Value> {
    e.payload_value().get(&e.event_type)?.get(field).cloned()
}

fn text(e: &StoredEvent, field: &str) -> String {
    payload(e, field)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn number(e: &StoredEvent, field: &str) -> u64 {
    payload(e, field)
        .and_then(|v| v.as_u64())
        .unwrap_or_default()
}

fn time(e: &StoredEvent, field: &str) -> Option<DateTime<Utc>> {
    payload(e, field)
        .and_then(|v| DateTime::parse_from_rfc3339(v.as_str()?).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Every difference between what MongoDB holds for character `id` and its stored events
/// (`character`, `wallet`: each stream in sequence order): positions and counts (nothing
/// applied twice), the profile's fields against the folded state and the payloads, and the
/// timeline's entries against the events one by one (by stream and sequence: nothing missing,
/// nothing twice, each at its global position and time).
pub fn mismatches(
    id: &str,
    character: &[StoredEvent],
    wallet: &[StoredEvent],
    stored: &Stored,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut check = |what: &str, got: String, want: String| {
        if got != want {
            out.push(format!(
                "{id} {what}: MongoDB has {got}, the store says {want}"
            ));
        }
    };
    let all: Vec<&StoredEvent> = character.iter().chain(wallet).collect();
    let total = all.len() as u64;
    let (Some(profile_doc), Some(timeline_doc)) = (&stored.profile, &stored.timeline) else {
        anyhow::bail!("{id}: profile or timeline missing");
    };
    check(
        "profile events applied",
        profile_doc.applied.to_string(),
        total.to_string(),
    );
    check(
        "timeline events applied",
        timeline_doc.applied.to_string(),
        total.to_string(),
    );

    // The profile.
    let profile: ProfileDoc = profile_doc.body.decode()?;
    let state = fold::<Character>(character)?;
    let state = state
        .state()
        .with_context(|| format!("{id} folds to no character"))?;
    let c = profile
        .character
        .as_ref()
        .with_context(|| format!("{id}: profile without its character"))?;
    let created = &character[0];
    check("name", c.name.clone(), state.name.as_str().to_owned());
    check("class", c.class.clone(), state.class.clone());
    check("level", c.level.to_string(), state.level.to_string());
    check("zone", c.zone.clone(), state.zone.clone());
    check(
        "created_at",
        format!("{:?}", Some(c.created_at)),
        format!("{:?}", time(created, "created_at")),
    );
    let mut levels = vec![(number(created, "level"), 1)];
    let mut zones: BTreeMap<String, u64> = BTreeMap::from([(text(created, "zone"), 1)]);
    let mut casts: BTreeMap<String, u64> = BTreeMap::new();
    let mut xp = 0;
    for e in character {
        match e.event_type.as_str() {
            "LeveledUp" => levels.push((number(e, "level"), e.sequence as u64)),
            "ZoneEntered" => *zones.entry(text(e, "to_zone")).or_default() += 1,
            "CharacterRespawned" if text(e, "zone") != text(e, "from_zone") => {
                *zones.entry(text(e, "zone")).or_default() += 1
            }
            "SkillCast" => *casts.entry(text(e, "skill")).or_default() += 1,
            "ExperienceGained" => xp += number(e, "amount"),
            _ => {}
        }
    }
    check(
        "level history",
        format!(
            "{:?}",
            c.level_history
                .iter()
                .map(|l| (u64::from(l.level), l.sequence))
                .collect::<Vec<_>>()
        ),
        format!("{levels:?}"),
    );
    check(
        "zones visited",
        format!(
            "{:?}",
            c.zones_visited
                .iter()
                .map(|(z, v)| (z.clone(), v.visits))
                .collect::<BTreeMap<_, _>>()
        ),
        format!("{zones:?}"),
    );
    check(
        "casts by skill",
        format!("{:?}", profile.casts_by_skill),
        format!("{casts:?}"),
    );
    check("xp gained", profile.xp_gained.to_string(), xp.to_string());
    let mut granted: BTreeMap<String, u64> = BTreeMap::new();
    let mut spent: BTreeMap<String, u64> = BTreeMap::new();
    for e in wallet {
        match e.event_type.as_str() {
            "CurrencyGranted" => {
                *granted.entry(text(e, "currency")).or_default() += number(e, "amount")
            }
            "CurrencySpent" => {
                *spent.entry(text(e, "currency")).or_default() += number(e, "amount")
            }
            _ => {}
        }
    }
    check(
        "granted",
        format!("{:?}", profile.granted),
        format!("{granted:?}"),
    );
    check(
        "spent",
        format!("{:?}", profile.spent),
        format!("{spent:?}"),
    );
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    for e in &all {
        *by_type.entry(e.event_type.clone()).or_default() += 1;
    }
    check(
        "profile events by type",
        format!("{:?}", profile.events_by_type),
        format!("{by_type:?}"),
    );

    // The timeline: the document, then the entries one by one.
    let doc: TimelineDoc = timeline_doc.body.decode()?;
    check(
        "timeline entries",
        doc.entries.to_string(),
        total.to_string(),
    );
    check(
        "timeline by type",
        format!("{:?}", doc.by_type),
        format!("{by_type:?}"),
    );
    let published = all
        .iter()
        .map(|e| to_published(e).map(|p| ((e.aggregate_type.clone(), e.sequence as u64), p)))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let times: Vec<i64> = published
        .values()
        .map(|p| p.envelope.occurred_at.timestamp_millis())
        .collect();
    check(
        "first and last times",
        format!("{:?}", (doc.first_at, doc.last_at)),
        format!(
            "{:?}",
            (
                times.iter().min().copied().unwrap_or_default(),
                times.iter().max().copied().unwrap_or_default()
            )
        ),
    );
    check(
        "timeline log length",
        stored.entries.len().to_string(),
        total.to_string(),
    );
    let mut seen = BTreeSet::new();
    let mut last_sequence: BTreeMap<String, u64> = BTreeMap::new();
    for (score, entry) in &stored.entries {
        let entry: TimelineEntry = serde_json::from_value(entry.clone())?;
        let key = (entry.aggregate_type.clone(), entry.sequence);
        if !seen.insert(key.clone()) {
            out.push(format!("{id}: {key:?} twice in the timeline"));
            continue;
        }
        let Some(p) = published.get(&key) else {
            out.push(format!(
                "{id}: {key:?} in the timeline but not in the store"
            ));
            continue;
        };
        let e = &p.envelope;
        if (
            *score,
            entry.at,
            entry.event_type.as_str(),
            entry.event_id.as_str(),
        ) != (
            e.global_position as u64,
            e.occurred_at.timestamp_millis(),
            e.event_type.as_str(),
            e.event_id.to_string().as_str(),
        ) {
            out.push(format!(
                "{id}: {key:?} stored as (score {score}, at {}, {}), the store says (position \
                 {}, at {}, {})",
                entry.at,
                entry.event_type,
                e.global_position,
                e.occurred_at.timestamp_millis(),
                e.event_type
            ));
        }
        // In score order, each stream's entries come in sequence order.
        let last = last_sequence
            .entry(entry.aggregate_type.clone())
            .or_default();
        if entry.sequence <= *last {
            out.push(format!("{id}: {key:?} after sequence {last} of its stream"));
        }
        *last = entry.sequence;
    }
    for key in published.keys() {
        if !seen.contains(key) {
            out.push(format!("{id}: {key:?} missing from the timeline"));
        }
    }
    Ok(out)
}
