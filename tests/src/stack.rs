//! An isolated set of service processes for one test.
//!
//! Isolation on shared services: a fresh database `chaos_t_<id>`, the Kafka topic prefix
//! `t<id>.`, the Redis key prefix `t<id>:`, a consumer group of its own, a JWT secret of its own
//! and free ports. On success everything is removed again; after a failure (a panic) the
//! database, keys, topics and logs are left for inspection and their names are printed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chaos_domain::character::AGGREGATE_TYPE;
use chaos_domain::wallet::AGGREGATE_TYPE as WALLET;

use crate::client::{CommandApi, QueryApi};
use crate::process::{bin_dir, binary, free_port, ProcessSpec, ServiceProcess};
use crate::services::ServiceUrls;
use crate::store::EventStore;

/// How long a process may take to answer `/readyz` (debug builds on a busy 2-core machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The names one test's data lives under.
#[derive(Debug, Clone)]
pub struct Isolation {
    pub id: String,
    pub database: String,
    pub database_url: String,
    pub topic_prefix: String,
    pub redis_prefix: String,
    pub group_id: String,
    pub jwt_secret: String,
}

impl Isolation {
    pub fn new(services: &ServiceUrls) -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let database = format!("chaos_t_{id}");
        let mut url =
            reqwest::Url::parse(&services.database_url).context("DATABASE_URL is not a URL")?;
        url.set_path(&format!("/{database}"));
        Ok(Self {
            database_url: url.to_string(),
            topic_prefix: format!("t{id}."),
            redis_prefix: format!("t{id}:"),
            group_id: format!("t{id}-projector-redis"),
            jwt_secret: format!("test-secret-{}", uuid::Uuid::new_v4().simple()),
            database,
            id,
        })
    }

    /// The character events topic under this test's prefix.
    pub fn events_topic(&self) -> String {
        format!(
            "{}{}",
            self.topic_prefix,
            chaos_schemas::topic_for(AGGREGATE_TYPE)
        )
    }

    /// The wallet events topic under this test's prefix.
    pub fn wallet_topic(&self) -> String {
        format!("{}{}", self.topic_prefix, chaos_schemas::topic_for(WALLET))
    }

    /// The Redis projection's dead-letter topic under this test's prefix.
    pub fn dead_letter_topic(&self) -> String {
        format!(
            "{}{}",
            self.topic_prefix,
            chaos_schemas::dead_letter_topic("redis")
        )
    }

    /// Every topic this test's processes may create: each aggregate's, and the dead-letter
    /// topics of the projections and of every process manager.
    pub fn all_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = chaos_schemas::registry::topics()
            .iter()
            .map(|t| format!("{}{t}", self.topic_prefix))
            .collect();
        topics.push(self.dead_letter_topic());
        for projection in ["mongo", "warehouse"] {
            topics.push(format!(
                "{}{}",
                self.topic_prefix,
                chaos_schemas::dead_letter_topic(projection)
            ));
        }
        for manager in chaos_projectors::process::all() {
            topics.push(format!(
                "{}{}",
                self.topic_prefix,
                chaos_schemas::dead_letter_topic(&format!("pm-{}", manager.name()))
            ));
        }
        topics
    }
}

/// Which processes to run, and settings on top of the harness's.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Relay instances (same lock key: one active, the others standing by).
    pub relays: usize,
    pub projector: bool,
    /// `projector process-managers` (rewards: wallets opened, level-up gold).
    pub process_managers: bool,
    pub query_api: bool,
    /// `projector mongo` (profiles, careers, timelines) into a MongoDB database of the stack's
    /// own, which the query API then reads.
    pub mongo: bool,
    /// `projector warehouse` (a DuckDB file in the stack's log directory).
    pub warehouse: bool,
    /// `(binary name, CHAOS__KEY, value)` overrides, e.g.
    /// `("query-api", "CHAOS__CONSISTENCY__MAX_WAIT_MS", "500")`.
    pub env: Vec<(String, String, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            relays: 1,
            projector: true,
            process_managers: true,
            query_api: true,
            mongo: false,
            warehouse: false,
            env: Vec::new(),
        }
    }
}

impl StackOptions {
    /// The command API alone (no Kafka, no read side).
    pub fn command_api_only() -> Self {
        Self {
            relays: 0,
            projector: false,
            process_managers: false,
            query_api: false,
            mongo: false,
            warehouse: false,
            env: Vec::new(),
        }
    }

    pub fn with_env(mut self, binary: &str, key: &str, value: &str) -> Self {
        self.env
            .push((binary.to_owned(), key.to_owned(), value.to_owned()));
        self
    }
}

/// The running processes of one test, plus handles on its isolated data.
#[derive(Debug)]
pub struct Stack {
    pub services: ServiceUrls,
    pub isolation: Isolation,
    pub log_dir: PathBuf,
    pub command_api: ServiceProcess,
    pub relays: Vec<ServiceProcess>,
    pub projector: Option<ServiceProcess>,
    pub process_managers: Option<ServiceProcess>,
    pub query_api: Option<ServiceProcess>,
    pub mongo_projector: Option<ServiceProcess>,
    pub warehouse_projector: Option<ServiceProcess>,
    /// The MongoDB database of `mongo_projector` (dropped with the stack).
    pub mongo_database: Option<String>,
    store: EventStore,
}

fn kv(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

impl Stack {
    /// Creates the database, starts the processes and waits until each is ready.
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let services = ServiceUrls::from_env();
        let isolation = Isolation::new(&services)?;
        create_database(&services.database_url, &isolation.database).await?;
        let log_dir = std::env::var_os("CHAOS_E2E_LOGS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let dir = bin_dir();
                dir.parent().unwrap_or(&dir).join("e2e-logs")
            })
            .join(&isolation.id);
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        eprintln!(
            "stack {}: database {}, topic prefix {}, redis prefix {}, logs {}",
            isolation.id,
            isolation.database,
            isolation.topic_prefix,
            isolation.redis_prefix,
            log_dir.display()
        );

        let common = [
            kv("CHAOS__TELEMETRY__JSON", "true"),
            kv("CHAOS__TELEMETRY__LEVEL", "info"),
            kv("RUST_BACKTRACE", "1"),
        ];
        let spec = |name: &str, bin: &str, args: &[&str], env: Vec<(String, String)>| {
            let bind = format!("127.0.0.1:{}", free_port());
            let mut all: Vec<(String, String)> = common.to_vec();
            all.push(kv("CHAOS__HTTP__BIND", bind.clone()));
            all.extend(env);
            for (b, k, v) in &options.env {
                if b == bin {
                    all.push((k.clone(), v.clone()));
                }
            }
            Ok::<_, anyhow::Error>(ProcessSpec {
                name: name.to_owned(),
                program: binary(bin)?,
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                env: all,
                http_bind: bind,
            })
        };
        let kafka_env = || {
            vec![
                kv("CHAOS__KAFKA__BOOTSTRAP_SERVERS", &services.kafka_bootstrap),
                kv("CHAOS__KAFKA__TOPIC_PREFIX", &isolation.topic_prefix),
                kv("CHAOS__SCHEMA_REGISTRY__URL", &services.schema_registry_url),
            ]
        };

        let mut command_api = ServiceProcess::spawn(
            spec(
                "command-api",
                "command-api",
                &[],
                vec![
                    kv("CHAOS__DATABASE__URL", &isolation.database_url),
                    kv("CHAOS__DATABASE__MAX_CONNECTIONS", "16"),
                    kv("CHAOS__AUTH__JWT_SECRET", &isolation.jwt_secret),
                    // Tests drive one account hard; rate limiting has its own unit tests.
                    kv("CHAOS__RATE_LIMIT__PER_ACCOUNT_PER_SEC", "1000000"),
                    kv("CHAOS__RATE_LIMIT__BURST", "1000000"),
                    // Every test player registers and logs in from 127.0.0.1.
                    kv("CHAOS__RATE_LIMIT__AUTH_PER_IP_PER_MINUTE", "1000000"),
                    kv("CHAOS__RATE_LIMIT__AUTH_PER_IP_BURST", "1000000"),
                    kv(
                        "CHAOS__RATE_LIMIT__LOGIN_PER_USERNAME_PER_MINUTE",
                        "1000000",
                    ),
                    kv("CHAOS__RATE_LIMIT__LOGIN_PER_USERNAME_BURST", "1000000"),
                ],
            )?,
            &log_dir,
        )?;
        // The command API migrates the schema; relays would too, but one at a time is quicker.
        command_api.wait_ready(READY_TIMEOUT).await?;

        let mut relays = Vec::new();
        for i in 0..options.relays {
            let mut env = kafka_env();
            env.extend([
                kv("CHAOS__DATABASE__URL", &isolation.database_url),
                kv("CHAOS__RELAY__POLL_INTERVAL_MS", "200"),
                kv("CHAOS__RELAY__STANDBY_RETRY_MS", "200"),
            ]);
            let name = format!("relay-{}", (b'a' + i as u8) as char);
            relays.push(ServiceProcess::spawn(
                spec(&name, "relay", &[], env)?,
                &log_dir,
            )?);
        }
        // The relay creates the topic before it answers: the projector subscribes after that.
        for relay in &mut relays {
            relay.wait_ready(READY_TIMEOUT).await?;
        }
        let redis_env = || {
            vec![
                kv("CHAOS__REDIS__URL", &services.redis_url),
                kv("CHAOS__REDIS__KEY_PREFIX", &isolation.redis_prefix),
            ]
        };
        let mut projector = None;
        if options.projector {
            let mut env = kafka_env();
            env.extend(redis_env());
            env.push(kv("CHAOS__PROJECTOR__GROUP_ID", &isolation.group_id));
            // Where the read models repair gaps and rebuild from.
            env.push(kv("CHAOS__DATABASE__URL", &isolation.database_url));
            // A killed projector's partitions move to its successor once the broker gives up
            // on the dead member: after 6 s here instead of librdkafka's default 45 s.
            let config = log_dir.join("projector.toml");
            std::fs::write(
                &config,
                "[kafka.options]\n\"session.timeout.ms\" = \"6000\"\n\
                 \"heartbeat.interval.ms\" = \"500\"\n",
            )?;
            env.push(kv("CHAOS_CONFIG", config.to_string_lossy()));
            projector = Some(ServiceProcess::spawn(
                spec("projector", "projector", &["redis"], env)?,
                &log_dir,
            )?);
        }
        let mut process_managers = None;
        if options.process_managers {
            let mut env = kafka_env();
            env.extend([
                kv("CHAOS__DATABASE__URL", &isolation.database_url),
                kv(
                    "CHAOS__PROCESS_MANAGERS__GROUP_PREFIX",
                    format!("t{}-pm-", isolation.id),
                ),
            ]);
            // The ops port is `process_managers.http_bind`, not `http.bind`.
            let mut pm_spec = spec("process-managers", "projector", &["process-managers"], env)?;
            pm_spec.env.push(kv(
                "CHAOS__PROCESS_MANAGERS__HTTP_BIND",
                pm_spec.http_bind.clone(),
            ));
            let config = log_dir.join("process-managers.toml");
            std::fs::write(
                &config,
                "[kafka.options]\n\"session.timeout.ms\" = \"6000\"\n\
                 \"heartbeat.interval.ms\" = \"500\"\n",
            )?;
            pm_spec
                .env
                .push(kv("CHAOS_CONFIG", config.to_string_lossy()));
            process_managers = Some(ServiceProcess::spawn(pm_spec, &log_dir)?);
        }
        let mongo_database = options.mongo.then(|| format!("chaos_t_{}", isolation.id));
        let mongo_env = |database: &str| {
            vec![
                kv("CHAOS__MONGO__URL", crate::mongo::mongodb_url()),
                kv("CHAOS__MONGO__DATABASE", database),
            ]
        };
        let mut mongo_projector = None;
        if let Some(database) = &mongo_database {
            let mut env = kafka_env();
            env.extend(mongo_env(database));
            env.extend([
                kv("CHAOS__DATABASE__URL", &isolation.database_url),
                kv(
                    "CHAOS__MONGO__GROUP_ID",
                    format!("t{}-projector-mongo", isolation.id),
                ),
            ]);
            // The ops port is `mongo.http_bind`.
            let mut spec = spec("projector-mongo", "projector", &["mongo"], env)?;
            spec.env
                .push(kv("CHAOS__MONGO__HTTP_BIND", spec.http_bind.clone()));
            mongo_projector = Some(ServiceProcess::spawn(spec, &log_dir)?);
        }
        let mut warehouse_projector = None;
        if options.warehouse {
            let mut env = kafka_env();
            env.extend([
                kv("CHAOS__DATABASE__URL", &isolation.database_url),
                kv(
                    "CHAOS__WAREHOUSE__PATH",
                    log_dir.join("warehouse.duckdb").to_string_lossy(),
                ),
                kv(
                    "CHAOS__WAREHOUSE__PARQUET_DIR",
                    log_dir.join("parquet").to_string_lossy(),
                ),
                kv(
                    "CHAOS__WAREHOUSE__GROUP_ID",
                    format!("t{}-projector-warehouse", isolation.id),
                ),
            ]);
            // The ops port is `warehouse.http_bind`.
            let mut spec = spec("projector-warehouse", "projector", &["warehouse"], env)?;
            spec.env
                .push(kv("CHAOS__WAREHOUSE__HTTP_BIND", spec.http_bind.clone()));
            warehouse_projector = Some(ServiceProcess::spawn(spec, &log_dir)?);
        }
        let mut query_api = None;
        if options.query_api {
            let mut env = redis_env();
            if let Some(database) = &mongo_database {
                env.extend(mongo_env(database));
            }
            env.push(kv("CHAOS__AUTH__JWT_SECRET", &isolation.jwt_secret));
            query_api = Some(ServiceProcess::spawn(
                spec("query-api", "query-api", &[], env)?,
                &log_dir,
            )?);
        }
        for p in projector
            .iter_mut()
            .chain(process_managers.iter_mut())
            .chain(mongo_projector.iter_mut())
            .chain(warehouse_projector.iter_mut())
            .chain(query_api.iter_mut())
        {
            p.wait_ready(READY_TIMEOUT).await?;
        }
        let store = EventStore::connect(&isolation.database_url).await?;
        Ok(Self {
            services,
            isolation,
            log_dir,
            command_api,
            relays,
            projector,
            process_managers,
            query_api,
            mongo_projector,
            warehouse_projector,
            mongo_database,
            store,
        })
    }

    pub fn commands(&self) -> CommandApi {
        CommandApi::new(&self.command_api.base_url())
    }

    /// The query API client, reading as a game master (any private read model). Panics if the
    /// stack runs without a query API.
    pub fn queries(&self) -> QueryApi {
        let now = chrono::Utc::now().timestamp();
        let game_master = self.sign_token_with_roles(
            &uuid::Uuid::new_v4().to_string(),
            &["player", "game-master"],
            now,
            now + 3600,
        );
        self.anonymous_queries().with_token(&game_master)
    }

    /// The query API client without a token (public reads only).
    pub fn anonymous_queries(&self) -> QueryApi {
        QueryApi::new(
            &self
                .query_api
                .as_ref()
                .expect("this stack runs a query API")
                .base_url(),
        )
    }

    pub fn process_managers(&mut self) -> &mut ServiceProcess {
        self.process_managers
            .as_mut()
            .expect("this stack runs the process managers")
    }

    pub fn projector(&mut self) -> &mut ServiceProcess {
        self.projector
            .as_mut()
            .expect("this stack runs a projector")
    }

    pub fn relay(&mut self, i: usize) -> &mut ServiceProcess {
        &mut self.relays[i]
    }

    /// The event store of this test's database.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub fn events_topic(&self) -> String {
        self.isolation.events_topic()
    }

    /// A JWT for `account` signed with this stack's secret, valid from `iat` to `exp` (Unix
    /// seconds): for expired-token tests.
    pub fn sign_token(&self, account: &str, iat: i64, exp: i64) -> String {
        sign_token(&self.isolation.jwt_secret, account, iat, exp)
    }

    /// As [`Self::sign_token`], with roles (`player`, `game-master`).
    pub fn sign_token_with_roles(
        &self,
        account: &str,
        roles: &[&str],
        iat: i64,
        exp: i64,
    ) -> String {
        sign_token_with_roles(&self.isolation.jwt_secret, account, roles, iat, exp)
    }

    /// Stops the processes but leaves the database, keys, topics and logs for inspection.
    pub fn keep_for_inspection(mut self) {
        self.kill_all();
        eprintln!(
            "stack {} kept for inspection: database {}, topic prefix {}, redis prefix {}, logs {}",
            self.isolation.id,
            self.isolation.database,
            self.isolation.topic_prefix,
            self.isolation.redis_prefix,
            self.log_dir.display()
        );
        std::mem::forget(self);
    }

    fn kill_all(&mut self) {
        for p in self
            .relays
            .iter_mut()
            .chain(self.projector.iter_mut())
            .chain(self.process_managers.iter_mut())
            .chain(self.mongo_projector.iter_mut())
            .chain(self.warehouse_projector.iter_mut())
            .chain(self.query_api.iter_mut())
        {
            p.kill9();
        }
        self.command_api.kill9();
    }
}

/// A JWT in the command API's format, signed with HS256 and `secret`.
pub fn sign_token(secret: &str, account: &str, iat: i64, exp: i64) -> String {
    sign_token_with_roles(secret, account, &["player"], iat, exp)
}

/// A JWT with the given roles.
pub fn sign_token_with_roles(
    secret: &str,
    account: &str,
    roles: &[&str],
    iat: i64,
    exp: i64,
) -> String {
    let claims = serde_json::json!({
        "sub": account, "roles": roles, "iss": "chaos-world", "iat": iat, "exp": exp,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing cannot fail")
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() {
            eprintln!(
                "stack {} kept for inspection: database {}, topic prefix {}, redis prefix {}, \
                 logs {}",
                self.isolation.id,
                self.isolation.database,
                self.isolation.topic_prefix,
                self.isolation.redis_prefix,
                self.log_dir.display()
            );
            return;
        }
        let services = self.services.clone();
        let isolation = self.isolation.clone();
        let log_dir = self.log_dir.clone();
        let mongo_database = self.mongo_database.clone();
        // Drop runs inside the test's runtime: clean up on a thread with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(cleanup(&services, &isolation, mongo_database.as_deref()))?;
            let _ = std::fs::remove_dir_all(&log_dir);
            Ok::<_, anyhow::Error>(())
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("stack {}: cleanup failed: {e:#}", self.isolation.id),
            Err(_) => eprintln!("stack {}: cleanup panicked", self.isolation.id),
        }
    }
}

async fn admin_pool(url: &str) -> anyhow::Result<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .with_context(|| {
            "connecting to PostgreSQL (is `deploy/local/services.sh up` running? \
             `eval \"$(deploy/local/services.sh env)\"` sets DATABASE_URL)"
        })
}

async fn create_database(admin_url: &str, database: &str) -> anyhow::Result<()> {
    let pool = admin_pool(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE \"{database}\""))
        .execute(&pool)
        .await
        .with_context(|| format!("creating database {database}"))?;
    pool.close().await;
    Ok(())
}

async fn cleanup(
    services: &ServiceUrls,
    isolation: &Isolation,
    mongo_database: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(database) = mongo_database {
        crate::mongo::open_reader(database)
            .await?
            .database()
            .drop()
            .await?;
    }
    let pool = admin_pool(&services.database_url).await?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        isolation.database
    ))
    .execute(&pool)
    .await?;
    pool.close().await;

    let client = redis::Client::open(services.redis_url.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", isolation.redis_prefix))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await?;
    }

    crate::kafka::delete_topics(&services.kafka_bootstrap, &isolation.all_topics()).await?;
    Ok(())
}
