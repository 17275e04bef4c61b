//! Parquet exports: hive-partitioned by day, atomic per table, read back by DuckDB itself (the
//! Python suite reads them with pyarrow).

use chrono::Duration;

use super::super::schema::{self, Kind};
use super::super::{Warehouse, STORE_FEED};
use super::{counts, life, purse, query_strings, TempDir};
use crate::runner::{FeedOffset, ProjectionSink, Verdict};

#[tokio::test]
async fn parquet_export_is_by_day_and_reads_back() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let mut events = life("c-1");
    events.extend(purse("c-1"));
    // A second character two days later.
    let mut later = life("c-2");
    for e in &mut later {
        e.envelope.occurred_at += Duration::days(2);
    }
    events.extend(later);
    let sink: &dyn ProjectionSink = &w;
    let verdicts = sink
        .apply_batch(&events, &[FeedOffset::new(STORE_FEED, 0, 99)])
        .await
        .unwrap();
    assert_eq!(verdicts, vec![Verdict::Applied; events.len()]);

    let out = dir.0.join("parquet");
    let files = w.export_parquet(&out).await.unwrap();
    let exported: Vec<(&str, u64)> = files.iter().map(|f| (f.table, f.rows)).collect();
    assert_eq!(exported, counts(&w).await);

    let reader = duckdb::Connection::open_in_memory().unwrap();
    for file in &files {
        assert_eq!(file.path, out.join(file.table));
        let glob = format!("{}/**/*.parquet", file.path.display());
        let rows: i64 = reader
            .query_row(
                &format!("SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(u64::try_from(rows).unwrap(), file.rows, "{}", file.table);
        let table = schema::CATALOGUE
            .iter()
            .find(|t| t.name == file.table)
            .unwrap();
        if matches!(table.kind, Kind::Fact { .. }) && file.rows > 0 {
            assert!(file.days >= 1, "{}", file.table);
        }
    }
    // `events` of the two characters: two days, and every file under day=YYYY-MM-DD holds that
    // day's events only.
    let events_dir = out.join("events");
    let mut days: Vec<String> = std::fs::read_dir(&events_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    days.sort();
    assert_eq!(days, vec!["day=2026-05-28", "day=2026-05-30"]);
    let wrong_day = query_strings(
        &reader,
        &format!(
            "SELECT event_id::VARCHAR FROM read_parquet('{}/**/*.parquet', hive_partitioning = true)
             WHERE strftime(occurred_at, '%Y-%m-%d') <> day::VARCHAR",
            events_dir.display()
        ),
    );
    assert!(wrong_day.is_empty(), "{wrong_day:?}");
    let skills = query_strings(
        &reader,
        &format!(
            "SELECT skills[2] FROM read_parquet('{}/data.parquet') LIMIT 1",
            out.join("characters").display()
        ),
    );
    assert_eq!(skills, vec!["odd \"one\", \\ [x]"]);

    // A second export replaces each table at once: the link moves, the previous version stays
    // until the next export, older ones go; nothing half-written is left.
    let first = std::fs::read_link(out.join("events")).unwrap();
    w.apply_batch(&life("c-3"), &[]).await.unwrap();
    w.export_parquet(&out).await.unwrap();
    let second = std::fs::read_link(out.join("events")).unwrap();
    assert_ne!(first, second);
    assert!(out.join(&first).is_dir());
    w.export_parquet(&out).await.unwrap();
    assert!(!out.join(&first).exists());
    let versions = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".events.")
        })
        .count();
    assert_eq!(versions, 2);
    let rows: i64 = reader
        .query_row(
            &format!(
                "SELECT count(*) FROM read_parquet('{}/**/*.parquet')",
                out.join("events").display()
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows as usize, events.len() + life("c-3").len());
}

#[tokio::test]
async fn an_empty_warehouse_exports_every_table_with_its_columns() {
    let dir = TempDir::new();
    let w = Warehouse::open(dir.db()).await.unwrap();
    let out = dir.0.join("parquet");
    let files = w.export_parquet(&out).await.unwrap();
    let reader = duckdb::Connection::open_in_memory().unwrap();
    for file in files {
        if file.table == "feed_offsets" {
            continue;
        }
        let columns: i64 = reader
            .query_row(
                &format!(
                    "SELECT count(*) FROM (DESCRIBE SELECT * FROM read_parquet('{}/*.parquet'))",
                    file.path.display()
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(columns > 1, "{}", file.table);
    }
}
