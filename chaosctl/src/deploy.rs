//! Reaching the deployment: the event store (PostgreSQL, or the embedded `events.db`) and the
//! read-model stores (Redis, MongoDB, the embedded `readmodels.db`), each failure to connect
//! marked [`Unreachable`] (exit 3).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chaos_eventstore::group_commit::GroupCommitConfig;
use chaos_eventstore::pg::PgCheckpoints;
use chaos_eventstore::repository::Repository;
use chaos_eventstore::sqlite::SqliteEventRepository;
use chaos_eventstore::{EventLog, StoredEvent};
use chaos_projectors::runner::{FeedCheckpoint, PgCheckpoint, SqliteCheckpoint};
use chaos_readmodel::{
    DocumentStore, Keys, MongoStore, RedisStore, Served, SqliteStore, View, ViewProjection,
};
use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::cli::Model;
use crate::{Ctx, Unreachable, Usage};

/// The event store of the deployment.
#[derive(Debug, Clone)]
pub enum EventStore {
    Postgres(PgPool),
    Sqlite(SqliteEventRepository),
}

impl EventStore {
    pub async fn open(ctx: &Ctx) -> anyhow::Result<Self> {
        match &ctx.embedded {
            Some(dir) => {
                let path = existing(dir, "events.db")?;
                let pool = chaos_eventstore::sqlite::open(&path)
                    .await
                    .with_context(|| Unreachable(path.display().to_string()))?;
                Ok(Self::Sqlite(SqliteEventRepository::new(pool)))
            }
            None => Ok(Self::Postgres(pg_pool(ctx).await?)),
        }
    }

    /// The PostgreSQL pool, or a usage error naming what needs the distributed deployment.
    pub fn postgres(&self, what: &str) -> anyhow::Result<&PgPool> {
        match self {
            Self::Postgres(pool) => Ok(pool),
            Self::Sqlite(_) => Err(Usage(format!("{what}: distributed deployment only")).into()),
        }
    }

    /// As the services see it (gap repair, catch-ups).
    pub fn repository(&self) -> Repository {
        match self {
            Self::Postgres(pool) => {
                Repository::postgres(pool.clone(), GroupCommitConfig::default(), None)
            }
            Self::Sqlite(repo) => Repository::sqlite(repo.clone()),
        }
    }

    pub fn log(&self) -> Arc<dyn EventLog> {
        match self {
            Self::Postgres(pool) => Arc::new(chaos_eventstore::pg::PgEventLog::new(pool.clone())),
            Self::Sqlite(repo) => Arc::new(repo.log()),
        }
    }

    /// A named checkpoint of the global-order reader in this store.
    pub fn checkpoint(&self, name: &str) -> Arc<dyn FeedCheckpoint> {
        match self {
            Self::Postgres(pool) => Arc::new(PgCheckpoint {
                checkpoints: PgCheckpoints::new(pool.clone()),
                name: name.to_owned(),
            }),
            Self::Sqlite(repo) => Arc::new(SqliteCheckpoint {
                repo: repo.clone(),
                name: name.to_owned(),
            }),
        }
    }

    /// Every event of one stream with sequences `1..=up_to` (all if `None`), in order.
    pub async fn stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        up_to: Option<i64>,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = match self {
                Self::Postgres(pool) => {
                    chaos_eventstore::pg::history_page(
                        pool,
                        aggregate_type,
                        aggregate_id,
                        after,
                        1000,
                        up_to,
                    )
                    .await?
                }
                Self::Sqlite(repo) => {
                    repo.history_page(aggregate_type, aggregate_id, after, 1000, up_to)
                        .await?
                }
            };
            let Some(last) = page.last().map(|e| e.sequence) else {
                return Ok(out);
            };
            let full = page.len() == 1000;
            out.extend(page);
            if !full {
                return Ok(out);
            }
            after = last;
        }
    }
}

/// `dir/file`, which must exist (chaosctl never creates an embedded deployment).
pub fn existing(dir: &Path, file: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(file);
    if !path.is_file() {
        return Err(
            anyhow::anyhow!("{} does not exist", path.display()).context(Unreachable(format!(
                "the embedded data in {}",
                dir.display()
            ))),
        );
    }
    Ok(path)
}

pub async fn pg_pool(ctx: &Ctx) -> anyhow::Result<PgPool> {
    chaos_eventstore::pg::pool_options()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect(ctx.settings.database.url.expose_secret())
        .await
        .context(Unreachable("PostgreSQL (database.url)".into()))
}

/// The embedded backend's views: the Redis set and the MongoDB set in one store, the set
/// `chaos_standalone::run` projects (`chaos_readmodel::views::embedded`).
pub fn embedded_views() -> Vec<Arc<dyn View>> {
    chaos_readmodel::views::embedded()
}

/// One read model: its store, its configured layout, its views.
#[derive(Debug, Clone)]
pub struct ReadModels {
    pub model: Model,
    pub store: Arc<dyn DocumentStore>,
    /// The configured layout (the served version may differ: see [`Self::served`]).
    pub keys: Keys,
    pub views: Vec<Arc<dyn View>>,
    /// The embedded read models' store (for their checkpoints).
    pub sqlite: Option<SqliteStore>,
}

impl ReadModels {
    pub async fn open(ctx: &Ctx, model: Model) -> anyhow::Result<Self> {
        let s = &ctx.settings;
        match (model, &ctx.embedded) {
            (Model::Embedded, Some(dir)) => {
                let path = existing(dir, "readmodels.db")?;
                let store = SqliteStore::open(&path)
                    .await
                    .with_context(|| Unreachable(path.display().to_string()))?;
                Ok(Self {
                    model,
                    store: Arc::new(store.clone()),
                    keys: Keys::new(&s.embedded.key_prefix, &s.embedded.model_version),
                    views: embedded_views(),
                    sqlite: Some(store),
                })
            }
            (Model::Embedded, None) => {
                Err(Usage("the embedded read models need --embedded <data dir>".into()).into())
            }
            (_, Some(_)) => Err(Usage(format!(
                "{} is a read model of the distributed deployment; with --embedded, use `embedded`",
                model.name()
            ))
            .into()),
            (Model::Redis, None) => {
                let store = RedisStore::open(&s.redis)
                    .await
                    .context(Unreachable("Redis (redis.url)".into()))?;
                store
                    .ping()
                    .await
                    .context(Unreachable("Redis (redis.url)".into()))?;
                Ok(Self {
                    model,
                    store: Arc::new(store),
                    keys: Keys::new(&s.redis.key_prefix, &s.redis.model_version),
                    views: chaos_readmodel::views::all(),
                    sqlite: None,
                })
            }
            (Model::Mongo, None) => {
                let store = MongoStore::open(&s.mongo)
                    .await
                    .context(Unreachable("MongoDB (mongo.url)".into()))?;
                Ok(Self {
                    model,
                    store: Arc::new(store),
                    keys: Keys::new(&s.mongo.key_prefix, &s.mongo.model_version),
                    views: chaos_readmodel::views::documents(),
                    sqlite: None,
                })
            }
            (Model::Warehouse, None) => {
                Err(Usage("the warehouse is not a document read model".into()).into())
            }
        }
    }

    /// The layout served now: the version a rebuild switched to, else the configured one.
    pub async fn served(&self) -> anyhow::Result<Keys> {
        Ok(
            Served::new(self.store.clone(), self.keys.clone(), Duration::ZERO)
                .keys()
                .await?,
        )
    }

    /// A projection writing `keys` (never following the served pointer).
    pub fn projection(&self, keys: &Keys) -> ViewProjection {
        ViewProjection::new(self.store.clone(), keys.clone(), self.views.clone())
    }
}
