//! The warehouse over real DuckDB files in a temporary directory.

use std::path::PathBuf;

use chaos_domain::{AccountId, CharacterEvent, CharacterName, GameEvent};
use chaos_schemas::{AnyEvent, EventEnvelope, PublishedEvent};
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::rows::{self, EventRows};
use super::writer::Writer;
use super::{Warehouse, STORE_FEED};
use crate::runner::{FeedOffset, ProjectionSink, Verdict};

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("chaos-warehouse-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("warehouse.duckdb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn at(seconds: i64, millis: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + seconds, millis * 1_000_000 + 456_789)
        .unwrap()
}

fn published(character: &str, sequence: u64, event: CharacterEvent) -> PublishedEvent {
    PublishedEvent {
        envelope: EventEnvelope {
            event_id: Uuid::new_v4(),
            event_type: event.type_name().to_owned(),
            aggregate_type: "character".to_owned(),
            aggregate_id: character.to_owned(),
            sequence,
            global_position: i64::try_from(sequence).unwrap() * 10,
            occurred_at: event.occurred_at(),
            correlation_id: Some(format!("req-{sequence}")),
            causation_id: None,
            traceparent: None,
        },
        event: AnyEvent::Character(event),
    }
}

/// One character's life: one event of every type.
fn life(character: &str) -> Vec<PublishedEvent> {
    vec![
        published(
            character,
            1,
            CharacterEvent::CharacterCreated {
                owner: AccountId::from_uuid(Uuid::nil()),
                name: CharacterName::parse("Aria").unwrap(),
                class: "mage".into(),
                level: 1,
                max_hp: 80,
                max_mana: 120,
                zone: "meadow".into(),
                skills: vec!["fireball".into(), "odd \"one\", \\ [x]".into()],
                created_at: at(0, 1),
            },
        ),
        published(
            character,
            2,
            CharacterEvent::SkillCast {
                skill: "fireball".into(),
                target: None,
                hit: None,
                zone: "meadow".into(),
                mana_before: 120,
                mana_cost: 30,
                mana_after: 90,
                damage: 42,
                cooldown_until: at(13, 0),
                cast_at: at(10, 250),
            },
        ),
        published(
            character,
            3,
            CharacterEvent::ExperienceGained {
                amount: 150,
                total_xp: 150,
                source: "quest".into(),
                gained_at: at(20, 0),
            },
        ),
        published(
            character,
            4,
            CharacterEvent::LeveledUp {
                level: 2,
                max_hp: 90,
                max_mana: 135,
                skills_unlocked: vec![],
                gold_reward: 20,
                leveled_at: at(20, 0),
            },
        ),
        published(
            character,
            5,
            CharacterEvent::ZoneEntered {
                from_zone: "meadow".into(),
                to_zone: "caves".into(),
                entered_at: at(30, 0),
            },
        ),
    ]
}

async fn counts(w: &Warehouse) -> Vec<(&'static str, u64)> {
    w.counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.table, c.rows))
        .collect()
}

fn query_strings(conn: &duckdb::Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<duckdb::Result<_>>()
        .unwrap()
}

#[tokio::test]
async fn typed_tables_hold_each_events_facts() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let events = life("c-1");
    let verdicts = w.apply_batch(&events, &[]).await.unwrap();
    assert_eq!(verdicts, vec![Verdict::Applied; 5]);
    assert_eq!(
        counts(&w).await,
        vec![
            ("events", 5),
            ("characters", 1),
            ("skill_casts", 1),
            ("experience_gains", 1),
            ("level_ups", 1),
            ("zone_entries", 1),
            ("wallets", 0),
            ("currency_flows", 0),
            ("feed_offsets", 0),
        ]
    );

    let conn = w.connect().await.unwrap();
    let cast = query_strings(
        &conn,
        "SELECT concat_ws('|', event_id, character_id, sequence, skill, coalesce(target, '-'), zone,
                mana_before, mana_cost, mana_after, damage, cooldown_until, cast_at)
         FROM skill_casts",
    );
    assert_eq!(
        cast,
        vec![format!(
            "{}|c-1|2|fireball|-|meadow|120|30|90|42|2026-05-28 20:26:53|2026-05-28 20:26:50.25",
            events[1].envelope.event_id
        )]
    );
    let character = query_strings(
        &conn,
        "SELECT concat_ws('|', character_id, owner_id, name, class, level, max_hp, max_mana, zone,
                len(skills), skills[1], skills[2], created_at)
         FROM characters",
    );
    assert_eq!(
        character,
        vec![format!(
            "c-1|{}|Aria|mage|1|80|120|meadow|2|fireball|odd \"one\", \\ [x]|2026-05-28 20:26:40.001",
            Uuid::nil()
        )]
    );
    let rest = query_strings(
        &conn,
        "SELECT concat_ws('|', amount, total_xp, source, gained_at) FROM experience_gains
         UNION ALL SELECT concat_ws('|', level, max_hp, max_mana, len(skills_unlocked), leveled_at)
         FROM level_ups
         UNION ALL SELECT concat_ws('|', from_zone, to_zone, entered_at) FROM zone_entries",
    );
    assert_eq!(
        rest,
        vec![
            "150|150|quest|2026-05-28 20:27:00",
            "2|90|135|0|2026-05-28 20:27:00",
            "meadow|caves|2026-05-28 20:27:10",
        ]
    );
    // The envelope has columns; the payload is the Avro record's own fields (times in millis),
    // compared as JSON (key order is the JSON writer's business).
    let event = query_strings(
        &conn,
        "SELECT concat_ws('|', event_type, aggregate_type, aggregate_id, sequence, global_position,
                occurred_at, correlation_id, schema_version)
         FROM events WHERE sequence = 3",
    );
    assert_eq!(
        event,
        vec!["ExperienceGained|character|c-1|3|30|2026-05-28 20:27:00|req-3|1".to_owned()]
    );
    let payload: Vec<serde_json::Value> = query_strings(
        &conn,
        "SELECT payload::VARCHAR FROM events WHERE sequence = 3",
    )
    .iter()
    .map(|p| serde_json::from_str(p).unwrap())
    .collect();
    assert_eq!(
        payload,
        vec![serde_json::json!({
            "amount": 150, "total_xp": 150, "source": "quest", "gained_at": 1_780_000_020_000_i64
        })]
    );
}

#[tokio::test]
async fn replaying_a_batch_changes_nothing() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let events = life("c-1");
    let feed = "chaos.character.events";
    w.apply_batch(&events[..3], &[FeedOffset::new(feed, 0, 3)])
        .await
        .unwrap();
    let before = counts(&w).await;

    let again = w
        .apply_batch(&events[..3], &[FeedOffset::new(feed, 0, 3)])
        .await
        .unwrap();
    assert_eq!(again, vec![Verdict::Duplicate; 3]);
    assert_eq!(counts(&w).await, before);

    // An overlapping batch (a re-send after a crash) applies only what is new.
    let overlap = w
        .apply_batch(&events[1..], &[FeedOffset::new(feed, 0, 5)])
        .await
        .unwrap();
    assert_eq!(
        overlap,
        vec![
            Verdict::Duplicate,
            Verdict::Duplicate,
            Verdict::Applied,
            Verdict::Applied
        ]
    );
    assert_eq!(counts(&w).await[0], ("events", 5));
    // A replay from an older offset never moves the checkpoint back.
    w.apply_batch(&events[..1], &[FeedOffset::new(feed, 0, 1)])
        .await
        .unwrap();
    assert_eq!(
        w.offsets(feed).await.unwrap(),
        vec![FeedOffset::new(feed, 0, 5)]
    );
}

#[tokio::test]
async fn duplicates_and_conflicts_within_and_across_batches() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let events = life("c-1");
    let mut impostor = events[1].clone();
    impostor.envelope.event_id = Uuid::new_v4();
    let batch = vec![
        events[0].clone(),
        events[1].clone(),
        events[1].clone(),
        impostor.clone(),
    ];
    let verdicts = w.apply_batch(&batch, &[]).await.unwrap();
    assert_eq!(
        verdicts[..3],
        [Verdict::Applied, Verdict::Applied, Verdict::Duplicate]
    );
    assert!(matches!(&verdicts[3], Verdict::DeadLetter(r) if r.contains("sequence 2")));

    // Across batches the database's keys decide.
    let verdicts = w.apply_batch(&[impostor], &[]).await.unwrap();
    assert!(matches!(&verdicts[0], Verdict::DeadLetter(r) if r.contains("conflicts")));
    assert_eq!(
        counts(&w).await[..3],
        [("events", 2), ("characters", 1), ("skill_casts", 1)]
    );
}

#[tokio::test]
async fn offsets_commit_with_rows_or_not_at_all() {
    let dir = TempDir::new();
    let events = life("c-1");
    let feed = "chaos.character.events";
    let mut writer = Writer::open(&dir.db()).unwrap();
    let batch = |events: &[PublishedEvent]| -> Vec<Result<EventRows, String>> {
        events.iter().map(rows::event_rows).collect()
    };
    writer
        .apply(
            batch(&events[..2]),
            &[FeedOffset::new(feed, 0, 7), FeedOffset::new(feed, 3, 2)],
            Utc::now(),
        )
        .unwrap();

    // A batch that fails half-way (its last typed row cannot be appended) leaves neither its
    // rows nor its offsets behind.
    let mut failing = batch(&events[2..]);
    if let Some(Ok(rows)) = failing.last_mut() {
        rows.typed = Some((super::schema::ZONE_ENTRIES, vec![]));
    }
    let err = writer.apply(failing, &[FeedOffset::new(feed, 0, 10)], Utc::now());
    assert!(err.is_err());
    assert_eq!(writer.counts().unwrap()[0].rows, 2);
    assert_eq!(
        writer.offsets(feed).unwrap(),
        vec![FeedOffset::new(feed, 0, 7), FeedOffset::new(feed, 3, 2)]
    );
    drop(writer);

    // Committed state survives reopening; the failed batch applies cleanly when retried.
    let w = Warehouse::open(dir.db()).await.unwrap();
    let verdicts = w
        .apply_batch(&events[2..], &[FeedOffset::new(feed, 0, 10)])
        .await
        .unwrap();
    assert_eq!(verdicts, vec![Verdict::Applied; 3]);
    assert_eq!(
        w.offsets(feed).await.unwrap(),
        vec![FeedOffset::new(feed, 0, 10), FeedOffset::new(feed, 3, 2)]
    );
    assert!(w.offsets(STORE_FEED).await.unwrap().is_empty());
    w.close().await.unwrap();
}

#[tokio::test]
async fn parquet_export_reads_back() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let mut events = life("c-1");
    events.extend(life("c-2"));
    let sink: &dyn ProjectionSink = &w;
    let verdicts = sink
        .apply_batch(&events, &[FeedOffset::new(STORE_FEED, 0, 11)])
        .await
        .unwrap();
    assert_eq!(verdicts, vec![Verdict::Applied; 10]);

    let out = dir.0.join("parquet");
    let files = w.export_parquet(&out).await.unwrap();
    let exported: Vec<(&str, u64)> = files.iter().map(|f| (f.table, f.rows)).collect();
    assert_eq!(exported, counts(&w).await);

    let reader = duckdb::Connection::open_in_memory().unwrap();
    for file in &files {
        assert_eq!(file.path, out.join(format!("{}.parquet", file.table)));
        let rows: i64 = reader
            .query_row(
                &format!(
                    "SELECT count(*) FROM read_parquet('{}')",
                    file.path.display()
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(u64::try_from(rows).unwrap(), file.rows, "{}", file.table);
    }
    let casts = query_strings(
        &reader,
        &format!(
            "SELECT concat_ws('|', character_id, skill, damage, cast_at)
             FROM read_parquet('{}') ORDER BY character_id",
            out.join("skill_casts.parquet").display()
        ),
    );
    assert_eq!(
        casts,
        vec![
            "c-1|fireball|42|2026-05-28 20:26:50.25",
            "c-2|fireball|42|2026-05-28 20:26:50.25"
        ]
    );
    let skills = query_strings(
        &reader,
        &format!(
            "SELECT skills[2] FROM read_parquet('{}') LIMIT 1",
            out.join("characters.parquet").display()
        ),
    );
    assert_eq!(skills, vec!["odd \"one\", \\ [x]"]);
    // Only the finished files are left.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), super::schema::TABLES.len());
    assert!(names
        .iter()
        .all(|n| n.ends_with(".parquet") && !n.starts_with('.')));
}

#[tokio::test]
async fn a_closed_warehouse_says_so() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let other = w.clone();
    w.close().await.unwrap();
    assert!(matches!(other.ping().await, Err(super::Error::Closed)));
    let memory = Warehouse::open(":memory:").await.unwrap();
    memory.ping().await.unwrap();
}
