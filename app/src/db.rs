//! The database: one `AnyPool` over SQLite (default) or PostgreSQL, chosen by
//! `DATABASE_URL`. Every query is written once in the SQL both engines accept
//! (`$1` placeholders, `ON CONFLICT`, `RETURNING`, BIGINT epoch-millisecond times),
//! so features behave the same on either engine; only the migrations differ.

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/dealdesk.db?mode=rwc";

/// A pooled connection idle longer than this is pinged before it is handed out (the
/// database may have restarted meanwhile); one in steady use is not. Every connection is
/// also pinged as it goes back to the pool (sqlx does that always), so a ping on every
/// hand-out would be a third round trip for each one-statement use of the pool.
const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    /// Where write transactions run (`begin_write`): on SQLite one connection of its
    /// own, on PostgreSQL the pool.
    writer: AnyPool,
    pub engine: Engine,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL must start with sqlite: or postgres:, got \"{0}\"")]
    UnknownEngine(String),
    #[error("cannot create the directory for the SQLite file {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database migration failed: rebuilding usage_records: {0}")]
    Rebuild(sqlx::Error),
}

impl Db {
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(DbError::UnknownEngine(url.to_string()));
        };
        if engine == Engine::Sqlite {
            ensure_sqlite_directory(url)?;
        }
        let pool = pool_options(engine, if engine == Engine::Sqlite { 8 } else { 16 }).connect(url).await.map_err(DbError::Connect)?;
        // SQLite takes one writer at a time. Write transactions share one connection of
        // their own, so they queue in order inside the server instead of each holding a
        // connection and polling for the file's lock (SQLite's busy handler sleeps 1 to
        // 100 ms between tries); reads keep the other connections. An in-memory database
        // is one per connection, so it keeps the one pool.
        let writer = if engine == Engine::Sqlite && !url.contains(":memory:") {
            pool_options(engine, 1).connect(url).await.map_err(DbError::Connect)?
        } else {
            pool.clone()
        };
        Ok(Db { pool, writer, engine })
    }

    /// Applies the engine's migrations; the server refuses to start if this fails.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self.engine {
            Engine::Sqlite => {
                sqlx::migrate!("../migrations/sqlite").run(&self.pool).await?;
                self.widen_sqlite_operations().await.map_err(DbError::Rebuild)?;
            }
            Engine::Postgres => sqlx::migrate!("../migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }

    /// Lets SQLite's usage ledger record the operations added since its table was made
    /// (`summary`): its CHECK is widened by rebuilding the table — SQLite's documented
    /// procedure, with foreign keys off, which a migration's transaction cannot do — in
    /// one transaction, keeping every row, id and index. Does nothing once done.
    async fn widen_sqlite_operations(&self) -> Result<(), sqlx::Error> {
        self.rewrite_sqlite_usage_check("'extraction', 'title')", "'extraction', 'title', 'summary')").await.map(|_| ())
    }

    /// Rebuilds SQLite's usage_records with `from` replaced by `to` in its definition, if
    /// it has `from`; returns whether it did. (For `migrate`, and for the test that
    /// proves the rebuild keeps every row on an older database.)
    pub async fn rewrite_sqlite_usage_check(&self, from: &str, to: &str) -> Result<bool, sqlx::Error> {
        let read_table = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'usage_records'";
        let mut conn = self.pool.acquire().await?;
        let (table,): (String,) = sqlx::query_as(read_table).fetch_one(&mut *conn).await?;
        if !table.contains(from) {
            return Ok(false);
        }
        // Foreign keys are off on this connection while it works: it is closed after, never
        // handed back to the pool, whatever happens.
        let mut conn = conn.detach();
        sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut conn).await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await?;
        let done = Self::rebuild_usage_records(&mut conn, read_table, from, to).await;
        let end = if matches!(done, Ok(true)) { "COMMIT" } else { "ROLLBACK" };
        let ended = sqlx::query(end).execute(&mut conn).await;
        let _ = sqlx::Connection::close(conn).await;
        ended?;
        done
    }

    /// The rebuild itself, inside the caller's transaction: false when another instance
    /// did it first (read again under the write lock).
    async fn rebuild_usage_records(conn: &mut sqlx::AnyConnection, read_table: &str, from: &str, to: &str) -> Result<bool, sqlx::Error> {
        let (table,): (String,) = sqlx::query_as(read_table).fetch_one(&mut *conn).await?;
        if !table.contains(from) {
            return Ok(false);
        }
        let indexes: Vec<(String,)> = sqlx::query_as("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_records' AND sql IS NOT NULL")
            .fetch_all(&mut *conn)
            .await?;
        // The definition from its column list on (a renamed table's name is quoted).
        let columns = table.find('(').map_or("", |at| &table[at..]);
        let mut steps = vec![
            format!("CREATE TABLE usage_records_rebuilt {}", columns.replace(from, to)),
            "INSERT INTO usage_records_rebuilt SELECT * FROM usage_records".into(),
            "DROP TABLE usage_records".into(),
            "ALTER TABLE usage_records_rebuilt RENAME TO usage_records".into(),
        ];
        steps.extend(indexes.into_iter().map(|(sql,)| sql));
        for step in &steps {
            sqlx::query(step).execute(&mut *conn).await?;
        }
        let dangling: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check").fetch_all(&mut *conn).await?;
        if !dangling.is_empty() {
            return Err(sqlx::Error::Protocol(format!("rebuilding usage_records left foreign keys dangling in {dangling:?}")));
        }
        Ok(true)
    }

    /// A transaction that will write: on SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`, waiting up to the busy timeout), because a transaction that reads
    /// first cannot upgrade to writing once another connection has written (WAL); on
    /// PostgreSQL a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.writer.begin().await,
        }
    }

    /// A connection for a write of one statement outside a transaction: on SQLite the
    /// write transactions' own, so it waits its turn with them instead of polling for
    /// the lock.
    pub async fn writer(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
        self.writer.acquire().await
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}

/// The pool's settings on `engine`, with at most `max` connections.
fn pool_options(engine: Engine, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if engine == Engine::Sqlite {
                    // WAL lets readers work during a write; the busy timeout makes
                    // concurrent writers wait for the lock instead of failing.
                    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
}

fn ensure_sqlite_directory(url: &str) -> Result<(), DbError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|source| DbError::Directory { path: path.to_string(), source })?;
        }
    }
    Ok(())
}

/// A secret of 32 random bytes that every instance sharing this database shares: made
/// by the first instance that asks for it, read by the others.
pub async fn shared_secret(db: &Db, name: &str) -> Result<[u8; 32], sqlx::Error> {
    let fresh: String = rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect();
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(&fresh)
        .execute(&db.pool)
        .await?;
    let (stored,): (String,) = sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1").bind(name).fetch_one(&db.pool).await?;
    let mut secret = [0u8; 32];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = stored.get(i * 2..i * 2 + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or_else(|| {
            sqlx::Error::Decode(format!("server secret {name} is not 64 hex digits").into())
        })?;
    }
    Ok(secret)
}
