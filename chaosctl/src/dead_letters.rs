//! `chaosctl dead-letters list | show | redrive` (what redrive does: `chaosctl dead-letters
//! --help`, docs/operations.md).
//!
//! Distributed: the `chaos.deadletter.<projection>` topics, read from the beginning without a
//! consumer group; a dead letter's id is `<projection>:<partition>:<offset>` in its topic. Redrives
//! are recorded in the event store's database (`chaosctl_redrives`), claimed before the message is
//! produced, so each is sent once even with two operators at it. Embedded: the feeds' record in
//! `events.db` (`SqliteDeadLetters`); ids are the record's numbers.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use anyhow::Context;
use chaos_projectors::runner::{RecordedDeadLetter, SqliteDeadLetters};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::Message;
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::DeadLetterCommand;
use crate::deploy::EventStore;
use crate::{exit, Ctx, Unreachable, Usage};

/// The header a redriven copy carries: the dead letter it came from.
pub const REDRIVEN_FROM: &str = "chaos_redriven_from";

/// One dead letter, from either deployment.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: String,
    pub projection: String,
    pub reason: String,
    /// Where the event was: topic, partition, offset (distributed) or the event store's global
    /// position (embedded).
    pub source: Value,
    pub key: Option<String>,
    /// The event decoded (envelope and Avro record as JSON), if it decodes.
    pub event: Option<Value>,
    pub decode_error: Option<String>,
    pub redriven: Option<Value>,
    #[serde(skip)]
    pub payload: Option<Vec<u8>>,
    #[serde(skip)]
    pub source_topic: Option<(String, i32)>,
}

pub async fn run(ctx: &Ctx, command: DeadLetterCommand) -> anyhow::Result<u8> {
    let store = EventStore::open(ctx).await?;
    match (&store, command) {
        (EventStore::Sqlite(repo), command) => {
            let record = SqliteDeadLetters::new(repo.pool().clone()).await?;
            embedded(ctx, &store, &record, command).await
        }
        (EventStore::Postgres(pool), command) => distributed(ctx, pool, command).await,
    }
}

fn summary(entries: &[Entry]) -> String {
    let mut human = format!("{} dead letters\n", entries.len());
    for e in entries {
        let what = e
            .event
            .as_ref()
            .map(|v| {
                format!(
                    "{} {} #{}",
                    v["envelope"]["event_type"].as_str().unwrap_or("?"),
                    v["envelope"]["aggregate_id"].as_str().unwrap_or("?"),
                    v["envelope"]["sequence"]
                )
            })
            .unwrap_or_else(|| "(does not decode)".to_owned());
        let _ = writeln!(
            human,
            "{:<28} {:<10} {}  {}{}\n    reason: {}",
            e.id,
            e.projection,
            e.source,
            what,
            if e.redriven.is_some() {
                "  [redriven]"
            } else {
                ""
            },
            e.reason
        );
    }
    human
}

fn show(ctx: &Ctx, entries: &[Entry], id: &str) -> u8 {
    match entries.iter().find(|e| e.id == id) {
        Some(e) => {
            let json = serde_json::to_value(e).unwrap_or(Value::Null);
            ctx.print(
                &json,
                &format!(
                    "{}\n",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                ),
            );
            exit::OK
        }
        None => {
            eprintln!("chaosctl: no dead letter {id}");
            exit::FAILED
        }
    }
}

/// The dead letters a redrive names: ids, a projection's, or all; never one redriven already.
fn chosen<'a>(
    entries: &'a [Entry],
    ids: &[String],
    projection: Option<&str>,
) -> anyhow::Result<Vec<&'a Entry>> {
    for id in ids {
        if !entries.iter().any(|e| &e.id == id) {
            return Err(Usage(format!("no dead letter {id}")).into());
        }
    }
    Ok(entries
        .iter()
        .filter(|e| ids.is_empty() || ids.contains(&e.id))
        .filter(|e| projection.is_none_or(|p| e.projection == p))
        .collect())
}

async fn embedded(
    ctx: &Ctx,
    store: &EventStore,
    record: &SqliteDeadLetters,
    command: DeadLetterCommand,
) -> anyhow::Result<u8> {
    let projection = match &command {
        DeadLetterCommand::List { projection } => projection.clone(),
        _ => None,
    };
    let rows = record.list(projection.as_deref()).await?;
    let mut entries = Vec::with_capacity(rows.len());
    for r in &rows {
        entries.push(embedded_entry(store, r).await?);
    }
    match command {
        DeadLetterCommand::List { .. } => {
            ctx.print(&json!({ "dead_letters": entries }), &summary(&entries));
            Ok(exit::OK)
        }
        DeadLetterCommand::Show { id } => Ok(show(ctx, &entries, &id)),
        DeadLetterCommand::Redrive {
            ids,
            projection,
            all: _,
        } => {
            let mut requested = Vec::new();
            let mut skipped = Vec::new();
            for e in chosen(&entries, &ids, projection.as_deref())? {
                let id: i64 = e.id.parse().unwrap_or(0);
                if record.request_redrive(id).await? {
                    requested.push(e.id.clone());
                } else {
                    skipped.push(e.id.clone());
                }
            }
            ctx.print(
                &json!({ "requested": requested, "skipped_already_redriven": skipped }),
                &format!(
                    "redrive requested for {} dead letters ({}); {} skipped (redriven or \
                     requested before). The running backend (or its next start) applies them to \
                     their feed and records the outcome: `chaosctl --embedded DIR dead-letters \
                     list`.\n",
                    requested.len(),
                    requested.join(", "),
                    skipped.len()
                ),
            );
            Ok(exit::OK)
        }
    }
}

async fn embedded_entry(store: &EventStore, r: &RecordedDeadLetter) -> anyhow::Result<Entry> {
    let d = &r.dead;
    let stream = store
        .stream(&d.aggregate_type, &d.aggregate_id, Some(d.sequence))
        .await?;
    let (event, decode_error) = match stream.iter().find(|s| s.sequence == d.sequence) {
        Some(s) => match chaos_eventstore::publish::to_published(s) {
            Ok(e) => (Some(event_json(&e)), None),
            Err(e) => (
                Some(json!({ "stored": { "event_type": s.event_type, "payload": s.payload } })),
                Some(e.to_string()),
            ),
        },
        None => (None, Some("not in the event store".into())),
    };
    Ok(Entry {
        id: d.id.to_string(),
        projection: d.feed.clone(),
        reason: d.reason.clone(),
        source: json!({ "global_position": d.position.global_position,
                        "aggregate_type": d.aggregate_type, "aggregate_id": d.aggregate_id,
                        "sequence": d.sequence }),
        key: Some(d.aggregate_id.clone()),
        event,
        decode_error,
        redriven: (r.redrive_requested || r.redriven_at.is_some()).then(|| {
            json!({ "requested": r.redrive_requested, "at": r.redriven_at,
                    "outcome": r.redrive_outcome })
        }),
        payload: None,
        source_topic: None,
    })
}

/// A decoded event as JSON: its envelope and its Avro record.
fn event_json(e: &chaos_schemas::PublishedEvent) -> Value {
    let record = serde_json::Value::try_from(chaos_schemas::to_avro(e))
        .unwrap_or_else(|err| json!(format!("(not representable as JSON: {err})")));
    let v = &e.envelope;
    json!({
        "envelope": {
            "event_id": v.event_id.to_string(), "event_type": v.event_type,
            "aggregate_type": v.aggregate_type, "aggregate_id": v.aggregate_id,
            "sequence": v.sequence, "global_position": v.global_position,
            "occurred_at": v.occurred_at.to_rfc3339(),
        },
        "record": record,
    })
}

const REDRIVES: &str = "CREATE TABLE IF NOT EXISTS chaosctl_redrives (
    dead_letter text PRIMARY KEY,
    target      text NOT NULL,
    redriven_at timestamptz NOT NULL DEFAULT now()
)";

async fn distributed(
    ctx: &Ctx,
    pool: &sqlx::PgPool,
    command: DeadLetterCommand,
) -> anyhow::Result<u8> {
    sqlx::query(REDRIVES).execute(pool).await?;
    let settings = ctx.settings.clone();
    let raw = tokio::task::spawn_blocking(move || read_topics(&settings))
        .await?
        .context(Unreachable("Kafka (kafka.bootstrap_servers)".into()))?;
    let redriven: HashMap<String, (String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT dead_letter, target, redriven_at FROM chaosctl_redrives")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(
                |(id, target, at): (String, String, chrono::DateTime<chrono::Utc>)| {
                    (id, (target, at))
                },
            )
            .collect();
    let codec = chaos_schemas::AvroCodec::new(&ctx.settings.schema_registry.url)?;
    let mut entries = Vec::with_capacity(raw.len());
    for mut e in raw {
        if let Some(payload) = &e.payload {
            match codec.decode(payload).await {
                Ok(event) => e.event = Some(event_json(&event)),
                Err(err) => e.decode_error = Some(err.to_string()),
            }
        }
        if let Some((target, at)) = redriven.get(&e.id) {
            e.redriven = Some(json!({ "to": target, "at": at.to_rfc3339() }));
        }
        entries.push(e);
    }
    match command {
        DeadLetterCommand::List { projection } => {
            entries.retain(|e| projection.as_deref().is_none_or(|p| e.projection == p));
            ctx.print(&json!({ "dead_letters": entries }), &summary(&entries));
            Ok(exit::OK)
        }
        DeadLetterCommand::Show { id } => Ok(show(ctx, &entries, &id)),
        DeadLetterCommand::Redrive {
            ids,
            projection,
            all: _,
        } => redrive(ctx, pool, &entries, &ids, projection.as_deref()).await,
    }
}

async fn redrive(
    ctx: &Ctx,
    pool: &sqlx::PgPool,
    entries: &[Entry],
    ids: &[String],
    projection: Option<&str>,
) -> anyhow::Result<u8> {
    let mut producer = ctx.settings.kafka.client_config();
    producer
        .set("enable.idempotence", "true")
        .set("acks", "all");
    let producer: FutureProducer = producer.create()?;
    let mut sent = Vec::new();
    let mut skipped = Vec::new();
    for e in chosen(entries, ids, projection)? {
        let Some((topic, partition)) = e.source_topic.clone() else {
            skipped.push(json!({ "id": e.id, "why": "no source coordinates" }));
            continue;
        };
        let target = format!("{topic}/{partition}");
        // Claimed first: a second redrive (or a second operator) finds it and skips it.
        let claimed = sqlx::query(
            "INSERT INTO chaosctl_redrives (dead_letter, target) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(&e.id)
        .bind(&target)
        .execute(pool)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            skipped.push(json!({ "id": e.id, "why": "redriven before" }));
            continue;
        }
        let headers = OwnedHeaders::new().insert(Header {
            key: REDRIVEN_FROM,
            value: Some(e.id.as_str()),
        });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic)
            .partition(partition)
            .headers(headers);
        if let Some(k) = &e.key {
            record = record.key(k.as_bytes());
        }
        if let Some(p) = &e.payload {
            record = record.payload(p);
        }
        if let Err((err, _)) = producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
        {
            sqlx::query("DELETE FROM chaosctl_redrives WHERE dead_letter = $1")
                .bind(&e.id)
                .execute(pool)
                .await?;
            return Err(anyhow::anyhow!("producing {} to {target}: {err}", e.id)
                .context(Unreachable("Kafka (kafka.bootstrap_servers)".into())));
        }
        sent.push(json!({ "id": e.id, "to": target }));
    }
    let mut human = format!(
        "redriven {} dead letters, {} skipped\n",
        sent.len(),
        skipped.len()
    );
    for s in &sent {
        let _ = writeln!(human, "  {} -> {}", s["id"], s["to"]);
    }
    for s in &skipped {
        let _ = writeln!(human, "  {} skipped: {}", s["id"], s["why"]);
    }
    ctx.print(&json!({ "redriven": sent, "skipped": skipped }), &human);
    Ok(exit::OK)
}

/// Every message of every dead-letter topic, read to the high watermarks without a group.
fn read_topics(s: &crate::config::Settings) -> anyhow::Result<Vec<Entry>> {
    let prefix = s.kafka.topic(&chaos_schemas::dead_letter_topic(""));
    let mut out = Vec::new();
    crate::topics::read_to_end(
        s,
        "chaosctl-dead-letters",
        |topic| topic.starts_with(&prefix),
        None,
        |m| {
            let header = |name: &str| -> Option<String> {
                crate::topics::header(m, name).map(|v| String::from_utf8_lossy(v).into_owned())
            };
            let projection = m.topic()[prefix.len()..].to_owned();
            let source_topic = header("source_topic");
            let source_partition = header("source_partition").and_then(|p| p.parse::<i32>().ok());
            out.push(Entry {
                id: format!("{projection}:{}:{}", m.partition(), m.offset()),
                reason: header("reason").unwrap_or_default(),
                source: json!({ "topic": source_topic, "partition": source_partition,
                                "offset": header("source_offset").and_then(|o| o.parse::<i64>().ok()) }),
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                event: None,
                decode_error: None,
                redriven: None,
                payload: m.payload().map(<[u8]>::to_vec),
                source_topic: source_topic.zip(source_partition),
                projection,
            });
        },
    )?;
    Ok(out)
}
