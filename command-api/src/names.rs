//! Character names are unique across the game, ignoring case.
//!
//! Uniqueness spans aggregates, so it cannot be a rule inside one character's `decide`. A
//! reservation table keyed by the lower-cased name is written just before the creating command
//! appends: the name is reserved for that character id (idempotently: a retried create reserves
//! again for the same id) or refused because another character holds it.
//!
//! A reservation whose append then never happened (the store went away between the two writes)
//! would hold the name for nobody; such a reservation — older than `abandoned_after` and whose
//! character has no events — is taken over by the next character that asks for the name.

use std::time::Duration;

use async_trait::async_trait;
use chaos_domain::character::AGGREGATE_TYPE;
use chaos_domain::CharacterName;

#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("the name {0} is taken")]
    Taken(String),
    #[error("name registry unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait NameRegistry: Send + Sync + std::fmt::Debug {
    /// Reserves `name` for `character_id`; succeeds again for the same character.
    async fn reserve(&self, name: &CharacterName, character_id: &str) -> Result<(), NameError>;
}

/// How long an unused reservation blocks its name by default.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);

fn unavailable(e: sqlx::Error) -> NameError {
    NameError::Unavailable(e.to_string())
}

fn key(name: &CharacterName) -> String {
    name.as_str().to_ascii_lowercase()
}

/// Reservations in PostgreSQL, next to the event store (whose `events` table tells an abandoned
/// reservation from a used one).
#[derive(Debug, Clone)]
pub struct PgNameRegistry {
    pool: sqlx::PgPool,
    abandoned_after: Duration,
}

impl PgNameRegistry {
    pub async fn new(pool: sqlx::PgPool, abandoned_after: Duration) -> Result<Self, NameError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS character_names (
                name_key     text PRIMARY KEY,
                name         text NOT NULL,
                character_id text NOT NULL,
                reserved_at  timestamptz NOT NULL DEFAULT now()
            )",
        )
        .execute(&pool)
        .await
        .map_err(unavailable)?;
        Ok(Self {
            pool,
            abandoned_after,
        })
    }
}

#[async_trait]
impl NameRegistry for PgNameRegistry {
    async fn reserve(&self, name: &CharacterName, character_id: &str) -> Result<(), NameError> {
        let reserved: Option<String> = sqlx::query_scalar(
            "INSERT INTO character_names AS r (name_key, name, character_id)
             VALUES ($1, $2, $3)
             ON CONFLICT (name_key) DO UPDATE
                SET name = EXCLUDED.name, character_id = EXCLUDED.character_id,
                    reserved_at = now()
                WHERE r.character_id = EXCLUDED.character_id
                   OR (r.reserved_at <= now() - make_interval(secs => $4)
                       AND NOT EXISTS (SELECT 1 FROM events e
                                       WHERE e.aggregate_type = $5
                                         AND e.aggregate_id = r.character_id))
             RETURNING character_id",
        )
        .bind(key(name))
        .bind(name.as_str())
        .bind(character_id)
        .bind(self.abandoned_after.as_secs_f64())
        .bind(AGGREGATE_TYPE)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        match reserved {
            Some(_) => Ok(()),
            None => Err(NameError::Taken(name.to_string())),
        }
    }
}

/// Reservations in the embedded mode's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteNameRegistry {
    pool: sqlx::SqlitePool,
    abandoned_after: Duration,
}

impl SqliteNameRegistry {
    pub async fn new(pool: sqlx::SqlitePool, abandoned_after: Duration) -> Result<Self, NameError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS character_names (
                name_key     TEXT PRIMARY KEY,
                name         TEXT NOT NULL,
                character_id TEXT NOT NULL,
                reserved_at  REAL NOT NULL DEFAULT (unixepoch('subsec'))
            )",
        )
        .execute(&pool)
        .await
        .map_err(unavailable)?;
        Ok(Self {
            pool,
            abandoned_after,
        })
    }
}

#[async_trait]
impl NameRegistry for SqliteNameRegistry {
    async fn reserve(&self, name: &CharacterName, character_id: &str) -> Result<(), NameError> {
        let reserved: Option<String> = sqlx::query_scalar(
            "INSERT INTO character_names AS r (name_key, name, character_id)
             VALUES (?1, ?2, ?3)
             ON CONFLICT (name_key) DO UPDATE
                SET name = excluded.name, character_id = excluded.character_id,
                    reserved_at = unixepoch('subsec')
                WHERE r.character_id = excluded.character_id
                   OR (r.reserved_at <= unixepoch('subsec') - ?4
                       AND NOT EXISTS (SELECT 1 FROM events e
                                       WHERE e.aggregate_type = ?5
                                         AND e.aggregate_id = r.character_id))
             RETURNING character_id",
        )
        .bind(key(name))
        .bind(name.as_str())
        .bind(character_id)
        .bind(self.abandoned_after.as_secs_f64())
        .bind(AGGREGATE_TYPE)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        match reserved {
            Some(_) => Ok(()),
            None => Err(NameError::Taken(name.to_string())),
        }
    }
}
