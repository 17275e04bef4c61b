//! Test support: a fresh PostgreSQL database per test, so tests run in parallel against the
//! real server started by `deploy/local/services.sh`.

use cqrs_es::persist::SerializedEvent;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, SqlitePool};

/// The server's URL (`DATABASE_URL`, else the local default).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://chaos:chaos@127.0.0.1:5432/chaos".to_owned())
}

/// Creates an empty database with the event store schema and returns a pool on it.
pub async fn fresh_pg() -> PgPool {
    let admin_url = database_url();
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .expect("PostgreSQL must be running (deploy/local/services.sh up)");
    let name = format!("chaos_t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&format!("{base}/{name}"))
        .await
        .expect("connect to the test database");
    crate::pg::migrate(&pool).await.expect("migrate");
    pool
}

/// A fresh embedded event store (SQLite with the schema) in its own temporary directory, which
/// is removed when the returned guard is dropped.
pub async fn fresh_sqlite() -> (SqlitePool, TempDir) {
    let dir = TempDir(std::env::temp_dir().join(format!("chaos-t-{}", uuid::Uuid::new_v4())));
    std::fs::create_dir_all(&dir.0).expect("create the test directory");
    let pool = crate::sqlite::open(&dir.0.join("events.db"))
        .await
        .expect("open the SQLite event store");
    (pool, dir)
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A character event as cqrs-es hands it to a repository (the type is irrelevant to storage).
pub fn serialized_event(
    aggregate_id: &str,
    sequence: usize,
    payload: serde_json::Value,
    metadata: serde_json::Value,
) -> SerializedEvent {
    SerializedEvent::new(
        aggregate_id.to_owned(),
        sequence,
        "character".to_owned(),
        "ZoneEntered".to_owned(),
        "1".to_owned(),
        payload,
        metadata,
    )
}
