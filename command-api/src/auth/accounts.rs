use async_trait::async_trait;
use chaos_domain::AccountId;
use sqlx::{PgPool, Row};

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub account_id: AccountId,
    pub username: String,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct StoredAccount {
    pub account_id: AccountId,
    pub password_hash: String,
    pub game_master: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountStoreError {
    #[error("username taken")]
    UsernameTaken,
    #[error("account store unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
    #[error("stored account is corrupt: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait AccountStore: Send + Sync + std::fmt::Debug {
    async fn create(&self, account: NewAccount) -> Result<(), AccountStoreError>;
    async fn find(&self, username: &str) -> Result<Option<StoredAccount>, AccountStoreError>;
}

#[derive(Debug, Clone)]
pub struct PgAccountStore {
    pool: PgPool,
}

impl PgAccountStore {
    pub async fn new(pool: PgPool) -> Result<Self, AccountStoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS accounts (
                account_id    uuid PRIMARY KEY,
                username      text NOT NULL,
                password_hash text NOT NULL,
                game_master   boolean NOT NULL DEFAULT false,
                created_at    timestamptz NOT NULL DEFAULT now()
            )",
        )
        .execute(&pool)
        .await
        .map_err(unavailable)?;
        sqlx::query(
            "CREATE UNIQUE INDEX IF NOT EXISTS accounts_username ON accounts (lower(username))",
        )
        .execute(&pool)
        .await
        .map_err(unavailable)?;
        sqlx::query(PRIVATE_ACCOUNTS)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
        Ok(Self { pool })
    }
}

/// Password hashes are the command API's alone: every grant on `accounts` to another role is
/// revoked at each start. A deployment's default privileges give the event store's readers
/// (`chaos_projectors`) every table their owner creates, and they cannot leave one out by name,
/// so a new `accounts` table came with a grant until the db-users Job ran again. Run as the
/// table's owner (the services act as it); a role that cannot revoke gets a warning.
const PRIVATE_ACCOUNTS: &str = "DO $$
DECLARE
    who text;
BEGIN
    FOR who IN
        SELECT DISTINCT g.grantee::text FROM information_schema.role_table_grants g
        JOIN pg_tables t ON t.schemaname = g.table_schema AND t.tablename = g.table_name
        WHERE g.table_schema = current_schema() AND g.table_name = 'accounts'
          AND g.grantee::text <> t.tableowner::text
    LOOP
        IF who = 'PUBLIC' THEN
            REVOKE ALL ON TABLE accounts FROM PUBLIC;
        ELSE
            EXECUTE format('REVOKE ALL ON TABLE accounts FROM %I', who);
        END IF;
    END LOOP;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'accounts: cannot revoke the grants of other roles: %', SQLERRM;
END $$";

fn unavailable(e: sqlx::Error) -> AccountStoreError {
    AccountStoreError::Unavailable(e)
}

#[async_trait]
impl AccountStore for PgAccountStore {
    async fn create(&self, account: NewAccount) -> Result<(), AccountStoreError> {
        let result = sqlx::query(
            "INSERT INTO accounts (account_id, username, password_hash) VALUES ($1, $2, $3)",
        )
        .bind(account.account_id.as_uuid())
        .bind(&account.username)
        .bind(&account.password_hash)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                Err(AccountStoreError::UsernameTaken)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn find(&self, username: &str) -> Result<Option<StoredAccount>, AccountStoreError> {
        let row = sqlx::query(
            "SELECT account_id, password_hash, game_master FROM accounts
             WHERE lower(username) = lower($1)",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|r| {
            Ok(StoredAccount {
                account_id: AccountId::from_uuid(r.try_get("account_id").map_err(unavailable)?),
                password_hash: r.try_get("password_hash").map_err(unavailable)?,
                game_master: r.try_get("game_master").map_err(unavailable)?,
            })
        })
        .transpose()
    }
}

/// Accounts in the embedded mode's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteAccountStore {
    pool: sqlx::SqlitePool,
}

impl SqliteAccountStore {
    pub async fn new(pool: sqlx::SqlitePool) -> Result<Self, AccountStoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS accounts (
                account_id    TEXT PRIMARY KEY,
                username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
                password_hash TEXT NOT NULL,
                game_master   INTEGER NOT NULL DEFAULT 0,
                created_at    TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
            )",
        )
        .execute(&pool)
        .await
        .map_err(unavailable)?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl AccountStore for SqliteAccountStore {
    async fn create(&self, account: NewAccount) -> Result<(), AccountStoreError> {
        let result = sqlx::query(
            "INSERT INTO accounts (account_id, username, password_hash) VALUES (?, ?, ?)",
        )
        .bind(account.account_id.to_string())
        .bind(&account.username)
        .bind(&account.password_hash)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(AccountStoreError::UsernameTaken)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn find(&self, username: &str) -> Result<Option<StoredAccount>, AccountStoreError> {
        let row = sqlx::query(
            "SELECT account_id, password_hash, game_master FROM accounts WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|r| {
            let id: String = r.try_get("account_id").map_err(unavailable)?;
            Ok(StoredAccount {
                account_id: AccountId::parse(&id)
                    .map_err(|e| AccountStoreError::Corrupt(e.to_string()))?,
                password_hash: r.try_get("password_hash").map_err(unavailable)?,
                game_master: r.try_get::<i64, _>("game_master").map_err(unavailable)? != 0,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deployment's default privileges hand a reader every new table; `accounts` is taken
    /// back at start, and the reader keeps the others. Against the real PostgreSQL.
    #[tokio::test]
    async fn no_other_role_reads_the_accounts() {
        let pool = chaos_eventstore::testing::fresh_pg().await;
        let reader = format!("t_reader_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE ROLE {reader} NOLOGIN"))
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(&format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {reader}"
        ))
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query("CREATE TABLE IF NOT EXISTS events_probe (id int)")
            .execute(&pool)
            .await
            .unwrap();
        let can_read = |table: &'static str| {
            let (pool, reader) = (pool.clone(), reader.clone());
            async move {
                sqlx::query_scalar::<_, bool>("SELECT has_table_privilege($1, $2, 'SELECT')")
                    .bind(reader)
                    .bind(table)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert!(
            can_read("events_probe").await,
            "the default privileges apply"
        );

        PgAccountStore::new(pool.clone()).await.unwrap();
        assert!(
            !can_read("accounts").await,
            "a new accounts table is private"
        );
        assert!(
            can_read("events_probe").await,
            "the other tables are not touched"
        );

        // Granted again by hand (a db-users run of an older script): taken back at next start.
        sqlx::query(&format!("GRANT SELECT ON accounts TO {reader}"))
            .execute(&pool)
            .await
            .unwrap();
        assert!(can_read("accounts").await);
        PgAccountStore::new(pool.clone()).await.unwrap();
        assert!(!can_read("accounts").await);

        // The role can go once nothing of it is left in the database.
        for statement in [
            format!(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM {reader}"
            ),
            format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {reader}"),
            format!("DROP ROLE {reader}"),
        ] {
            sqlx::query(&statement).execute(&pool).await.unwrap();
        }
    }
}
