use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};

/// A session-level advisory lock held on a dedicated connection: it is released when this
/// process dies or its connection drops, which is what lets a standby take over.
#[derive(Debug)]
pub struct LeaderLock {
    conn: PgConnection,
    key: i64,
}

impl LeaderLock {
    /// Takes the lock if nobody holds it.
    pub async fn try_acquire(pool: &PgPool, key: i64) -> sqlx::Result<Option<Self>> {
        let options = pool.connect_options();
        let mut conn = PgConnection::connect_with(&options).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut conn)
            .await?;
        if got {
            Ok(Some(Self { conn, key }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }

    /// Confirms the lock is still ours (the connection is alive and holds it).
    pub async fn still_held(&mut self) -> bool {
        let held: sqlx::Result<bool> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
               AND pid = pg_backend_pid() AND granted
               AND ((classid::bigint << 32) | objid::bigint) = $1)",
        )
        .bind(self.key)
        .fetch_one(&mut self.conn)
        .await;
        held.unwrap_or(false)
    }

    pub async fn release(mut self) {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(self.key)
            .execute(&mut self.conn)
            .await;
        let _ = self.conn.close().await;
    }
}
