//! The database: one `AnyPool` over SQLite (default) or PostgreSQL, chosen by
//! `DATABASE_URL`; on SQLite, every write takes its turn on one connection of its own
//! (`begin_write`, `begin_new_work`, `writer`). Every query is written once in the SQL both engines accept
//! (`$1` placeholders, `ON CONFLICT`, `RETURNING`, BIGINT epoch-millisecond times),
//! so features behave the same on either engine; only the migrations differ.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _};
use tokio::sync::{Mutex, OwnedMutexGuard};

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
    /// On SQLite (a file), where writes take their turn; None where writes take a
    /// connection of the pool (PostgreSQL, in-memory SQLite).
    sqlite: Option<Arc<SqliteWrites>>,
    pub engine: Engine,
}

#[derive(Debug)]
struct SqliteWrites {
    /// The one connection every write runs on, taken in turn (tokio's lock is fair).
    writer: Arc<Mutex<Writer>>,
    /// New work (a call's admission) waits here, one at a time, before it joins the
    /// writers' queue (`begin_new_work`).
    new_work: Mutex<()>,
}

/// SQLite's write connection, and whether a transaction is open on it.
#[derive(Debug)]
struct Writer {
    conn: AnyConnection,
    open: bool,
    url: String,
}

impl Writer {
    async fn connect(url: &str) -> Result<AnyConnection, sqlx::Error> {
        let mut conn = AnyConnection::connect(url).await?;
        sqlite_pragmas(&mut conn).await?;
        Ok(conn)
    }

    /// Ends the open transaction with `end` (COMMIT or ROLLBACK). It stays marked open
    /// when that fails, to be rolled back before the connection's next use.
    async fn end(&mut self, end: &str) -> Result<(), sqlx::Error> {
        sqlx::query(end).execute(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }

    /// Rolls back a transaction left open. When that fails (SQLite may have ended it
    /// already, or the connection is broken) the connection is replaced: closing the old
    /// one ends whatever it held.
    async fn settle(&mut self) -> Result<(), sqlx::Error> {
        if !self.open || self.end("ROLLBACK").await.is_ok() {
            return Ok(());
        }
        let old = std::mem::replace(&mut self.conn, Self::connect(&self.url).await?);
        self.open = false;
        let _ = old.close().await;
        Ok(())
    }
}

/// A write transaction (`Db::begin_write`): use it as the connection its statements run
/// on; `commit` keeps them. Dropped without `commit` (an error, a refusal, a cancelled
/// request) it rolls back, as sqlx's transactions do.
#[must_use = "a write transaction rolls back unless committed"]
pub struct WriteTx(TxInner);

enum TxInner {
    Pooled(sqlx::Transaction<'static, Any>),
    /// Held until the transaction has ended (the next writer waits for the guard).
    Sqlite(Option<OwnedMutexGuard<Writer>>),
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.end(true).await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.end(false).await
    }

    /// Commits (`keep`) or rolls back. On SQLite the transaction keeps the connection
    /// while it ends: if that fails, or this future is dropped meanwhile, dropping it
    /// rolls back.
    async fn end(mut self, keep: bool) -> Result<(), sqlx::Error> {
        if let TxInner::Sqlite(writer) = &mut self.0 {
            return writer.as_mut().expect("held until the transaction ends").end(if keep { "COMMIT" } else { "ROLLBACK" }).await;
        }
        let TxInner::Pooled(tx) = std::mem::replace(&mut self.0, TxInner::Sqlite(None)) else { unreachable!("matched above") };
        if keep { tx.commit().await } else { tx.rollback().await }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let TxInner::Sqlite(writer) = &mut self.0 else { return };
        let Some(mut writer) = writer.take().filter(|w| w.open) else { return };
        // Rolled back before the next writer gets the connection: it keeps the guard.
        // Without a runtime (a process shutting down) the next `begin_write` does it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = writer.settle().await {
                    tracing::warn!(%err, "could not end a write transaction; the next write will");
                }
            });
        }
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.0 {
            TxInner::Pooled(tx) => tx,
            TxInner::Sqlite(writer) => &writer.as_ref().expect("held until the transaction ends").conn,
        }
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            TxInner::Pooled(tx) => tx,
            TxInner::Sqlite(writer) => &mut writer.as_mut().expect("held until the transaction ends").conn,
        }
    }
}

/// A connection for one write outside a transaction (`Db::writer`).
pub struct WriteConn(ConnInner);

enum ConnInner {
    Pooled(PoolConnection<Any>),
    Sqlite(OwnedMutexGuard<Writer>),
}

impl Deref for WriteConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.0 {
            ConnInner::Pooled(conn) => conn,
            ConnInner::Sqlite(writer) => &writer.conn,
        }
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            ConnInner::Pooled(conn) => conn,
            ConnInner::Sqlite(writer) => &mut writer.conn,
        }
    }
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
        let pool = pool_options(engine).connect(url).await.map_err(DbError::Connect)?;
        // SQLite takes one writer at a time. Every write runs on one connection of its
        // own, taken in turn (tokio's lock is fair), so writers queue in order inside the
        // server instead of each holding a connection and polling for the file's lock
        // (SQLite's busy handler sleeps 1 to 100 ms between tries); reads keep the pool.
        // Being no pool's, it is not pinged after each use (sqlx's pool does that). An
        // in-memory database is one per connection, so its writes take the pool's.
        let sqlite = if engine == Engine::Sqlite && !url.contains(":memory:") {
            let conn = Writer::connect(url).await.map_err(DbError::Connect)?;
            let writer = Arc::new(Mutex::new(Writer { conn, open: false, url: url.to_string() }));
            Some(Arc::new(SqliteWrites { writer, new_work: Mutex::new(()) }))
        } else {
            None
        };
        Ok(Db { pool, sqlite, engine })
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
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match (&self.sqlite, self.engine) {
            (Some(sqlite), _) => {
                let mut writer = Self::take_writer(&sqlite.writer).await?;
                // Open, and held by the transaction, before BEGIN runs: a future dropped
                // meanwhile (a request gone) rolls back whatever BEGIN started at once.
                writer.open = true;
                let mut tx = WriteTx(TxInner::Sqlite(Some(writer)));
                if let Err(err) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *tx).await {
                    if let TxInner::Sqlite(Some(writer)) = &mut tx.0 {
                        writer.open = false;
                    }
                    return Err(err);
                }
                Ok(tx)
            }
            (None, Engine::Sqlite) => Ok(WriteTx(TxInner::Pooled(self.pool.begin_with("BEGIN IMMEDIATE").await?))),
            (None, Engine::Postgres) => Ok(WriteTx(TxInner::Pooled(self.pool.begin().await?))),
        }
    }

    /// `begin_write` for work that starts something new (a call's admission). On SQLite
    /// it lets the writes of work already under way go first: new work joins the
    /// writers' queue one at a time, so a call's usage record and reply wait behind at
    /// most one admission, not behind every call that arrived since. Once the server
    /// is overloaded, calls it has admitted finish first and new ones wait (or are shed)
    /// instead of every call waiting for the whole queue three times.
    pub async fn begin_new_work(&self) -> Result<WriteTx, sqlx::Error> {
        let _one_at_a_time = match &self.sqlite {
            Some(sqlite) => Some(sqlite.new_work.lock().await),
            None => None,
        };
        self.begin_write().await
    }

    /// A connection for a write of one statement outside a transaction: on SQLite the
    /// writers' own, so it waits its turn with them instead of polling for the lock.
    pub async fn writer(&self) -> Result<WriteConn, sqlx::Error> {
        match &self.sqlite {
            Some(sqlite) => Ok(WriteConn(ConnInner::Sqlite(Self::take_writer(&sqlite.writer).await?))),
            None => Ok(WriteConn(ConnInner::Pooled(self.pool.acquire().await?))),
        }
    }

    /// SQLite's write connection, when its turn comes, with no transaction open on it.
    async fn take_writer(writer: &Arc<Mutex<Writer>>) -> Result<OwnedMutexGuard<Writer>, sqlx::Error> {
        let mut writer = writer.clone().lock_owned().await;
        writer.settle().await?;
        Ok(writer)
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}

/// The pool's settings on `engine`.
fn pool_options(engine: Engine) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(if engine == Engine::Sqlite { 8 } else { 16 })
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
                    sqlite_pragmas(conn).await?;
                }
                Ok(())
            })
        })
}

/// Every SQLite connection's settings: WAL lets readers work during a write; the busy
/// timeout makes a writer wait for the lock (held by another process: a command-line
/// tool) instead of failing.
async fn sqlite_pragmas(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
    sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
    Ok(())
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
        .execute(&mut *db.writer().await?)
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
