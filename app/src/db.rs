//! The database: one `AnyPool` over SQLite (default) or PostgreSQL, chosen by
//! `DATABASE_URL`; on SQLite, every write takes its turn on one connection of its own
//! (`begin_write`, `begin_new_work`, `writer`), and write transactions that end while
//! others wait are committed together (group commit: one sync to disk for many).
//! Every query is written once in the SQL both engines accept
//! (`$1` placeholders, `ON CONFLICT`, `RETURNING`, BIGINT epoch-millisecond times),
//! so features behave the same on either engine; only the migrations differ.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::TransactionManager;
use sqlx::any::{AnyPoolOptions, AnyTransactionManager};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/dealdesk.db?mode=rwc";

/// A connection idle longer than this is pinged before it is handed out (the database
/// may have restarted, or ended the session, meanwhile): the pool's (`before_acquire`)
/// and the kept ones (`Db::read`). One in steady use is not: sqlx pings each connection
/// given back to its pool, and a connection is kept only after a statement that went
/// well (`KeptConn`), so a ping on every hand-out would be a third round trip for each
/// one-statement use. Kept connections idle this long go back to the pool.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// How long a connection may go from kept use to kept use without going back to the
/// pool, whose ping checks it and whose lifetime limit retires it when due.
const KEEP_FOR_AT_MOST: Duration = Duration::from_secs(60);

/// How often kept connections idle past `PING_IF_IDLE_FOR` go back to the pool, and
/// those idle this long when the pool has none left to hand out (someone may be waiting
/// there).
const RELEASE_KEPT_EVERY: Duration = Duration::from_millis(100);

/// Most write transactions SQLite commits together (`Batch`): the first of them waits
/// for the others' work, so this bounds what the batch adds to its wait.
const MAX_BATCH: usize = 32;

/// How often a batch still open, with no writer waiting, is committed by its own task:
/// only when the writers its members left it open for went away (requests dropped).
const BATCH_CHECK_EVERY: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    /// Connections kept between uses (`Db::read`), so they skip the pool's ping.
    spare: Arc<Spare>,
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
    /// Writers waiting for the connection: a write transaction that ends while one
    /// waits leaves its work in the open batch, to be committed with the next ones'.
    waiting: AtomicUsize,
    /// The number of the batch open on the writer, 0 when none (the writer's own).
    open_batch: Arc<AtomicU64>,
    /// Batches committed, and the write transactions they held (`Db::write_batches`).
    commits: AtomicU64,
    committed_writes: AtomicU64,
}

/// SQLite's write connection. A write transaction on it is a savepoint in a batch: one
/// transaction of SQLite's (`BEGIN IMMEDIATE` … `COMMIT`) that holds the work of every
/// write transaction that ended while another writer waited, and is committed — one
/// sync to disk for all of them — by the first that ends with none waiting (or the
/// batch full). Each of them hears of that commit before its own `commit` returns.
#[derive(Debug)]
struct Writer {
    conn: AnyConnection,
    /// A write transaction is open on it.
    open: bool,
    /// The open write transaction is a savepoint; the first of a batch is not (undoing
    /// it is undoing the batch), which spares it two statements.
    savepoint: bool,
    batch: Option<Batch>,
    /// Batches begun so far: the number of the open one.
    batches: u64,
    /// The number of the batch open on it, 0 when none: its task looks here first.
    open_batch: Arc<AtomicU64>,
    url: String,
}

/// SQLite's transaction open on the writer, and the write transactions waiting for its
/// commit.
#[derive(Debug)]
struct Batch {
    /// Write transactions committed into it.
    members: usize,
    /// How its commit went (None until then), for its members.
    outcome: watch::Sender<Option<Result<(), Arc<str>>>>,
}

impl Writer {
    async fn connect(url: &str) -> Result<AnyConnection, sqlx::Error> {
        let mut conn = AnyConnection::connect(url).await?;
        sqlite_pragmas(&mut conn).await?;
        Ok(conn)
    }

    /// Opens a write transaction: a savepoint in the open batch, or a new batch (whose
    /// own task commits it, should its members' writers all go away).
    async fn begin(&mut self, shared: &Arc<SqliteWrites>) -> Result<(), sqlx::Error> {
        self.settle().await?;
        if self.batch.is_some() {
            (self.open, self.savepoint) = (true, true);
            return sqlx::query("SAVEPOINT write").execute(&mut self.conn).await.map(|_| ());
        }
        sqlx::query("BEGIN IMMEDIATE").execute(&mut self.conn).await?;
        (self.open, self.savepoint) = (true, false);
        self.batches += 1;
        self.batch = Some(Batch { members: 0, outcome: watch::channel(None).0 });
        self.open_batch.store(self.batches, Ordering::SeqCst);
        tokio::spawn(commit_when_left(shared.clone(), self.batches));
        Ok(())
    }

    /// Ends the open write transaction: its work stays in the batch (`keep`), or is
    /// undone. When that fails the batch is rolled back whole.
    async fn end(&mut self, keep: bool) -> Result<(), sqlx::Error> {
        if !self.savepoint && !keep {
            // The batch's first: undoing it is undoing the batch, which holds no other.
            let err = sqlx::Error::Protocol("rolled back".into());
            return self.abort(&err).await;
        }
        let ended = async {
            if !self.savepoint {
                return Ok(());
            }
            if !keep {
                sqlx::query("ROLLBACK TO write").execute(&mut self.conn).await?;
            }
            // Released at once, though the batch's COMMIT would release it: SQLite
            // journals each page a write changes for every savepoint still open, and
            // leaving them open measured slower (839-850 calls/s at 1,000/s offered,
            // against 906-955 released).
            sqlx::query("RELEASE write").execute(&mut self.conn).await.map(|_| ())
        };
        if let Err(err) = ended.await {
            self.abort(&err).await?;
            return Err(err);
        }
        self.open = false;
        if keep {
            self.batch.as_mut().expect("a write transaction is in a batch").members += 1;
        }
        Ok(())
    }

    /// Undoes a write transaction left open (dropped unfinished: its future was, or it
    /// failed to begin).
    async fn settle(&mut self) -> Result<(), sqlx::Error> {
        match self.open {
            true => self.end(false).await,
            false => Ok(()),
        }
    }

    /// Commits the open batch, if any, and tells its members how that went.
    async fn commit(&mut self, shared: &SqliteWrites) -> Result<(), sqlx::Error> {
        let Some(members) = self.batch.as_ref().map(|b| b.members) else { return Ok(()) };
        if let Err(err) = sqlx::query("COMMIT").execute(&mut self.conn).await {
            self.abort(&err).await?;
            return Err(err);
        }
        shared.commits.fetch_add(1, Ordering::Relaxed);
        shared.committed_writes.fetch_add(members as u64, Ordering::Relaxed);
        self.open_batch.store(0, Ordering::SeqCst);
        if let Some(batch) = self.batch.take() {
            batch.outcome.send_replace(Some(Ok(())));
        }
        Ok(())
    }

    /// Rolls the batch back whole, because of `err`, and tells its members. When even
    /// that fails (SQLite may have ended the transaction already, or the connection is
    /// broken) the connection is replaced: closing the old one ends whatever it held.
    async fn abort(&mut self, err: &sqlx::Error) -> Result<(), sqlx::Error> {
        self.open = false;
        let rolled_back = sqlx::query("ROLLBACK").execute(&mut self.conn).await.is_ok();
        self.open_batch.store(0, Ordering::SeqCst);
        if let Some(batch) = self.batch.take() {
            batch.outcome.send_replace(Some(Err(err.to_string().into())));
        }
        if !rolled_back {
            let old = std::mem::replace(&mut self.conn, Self::connect(&self.url).await?);
            let _ = old.close().await;
        }
        Ok(())
    }
}

/// Ends a write transaction on SQLite's writer (`keep`: committed, else rolled back),
/// on a task of its own so that no dropped future leaves the batch half-ended. With no
/// writer waiting (or the batch full) the batch is committed now; else it stays open
/// for the next writer and a committed transaction waits to hear its commit.
async fn end_in_batch(shared: Arc<SqliteWrites>, mut writer: OwnedMutexGuard<Writer>, keep: bool) -> Result<(), sqlx::Error> {
    let ended = tokio::spawn(async move {
        writer.end(keep).await?;
        let full = writer.batch.as_ref().is_some_and(|b| b.members >= MAX_BATCH);
        if shared.waiting.load(Ordering::SeqCst) == 0 || full {
            let committed = writer.commit(&shared).await;
            return if keep { committed.map(|()| None) } else { Ok(None) };
        }
        Ok(keep.then(|| writer.batch.as_ref().expect("a write transaction is in a batch").outcome.subscribe()))
    });
    let Some(mut outcome) = ended.await.map_err(|err| sqlx::Error::Io(std::io::Error::other(err)))?? else { return Ok(()) };
    let heard = outcome.wait_for(Option::is_some).await.map(|o| o.clone());
    match heard {
        Ok(Some(Ok(()))) => Ok(()),
        // Its batch was not committed: as transient as a busy database, so retried where
        // writes are.
        Ok(Some(Err(why))) => Err(sqlx::Error::Io(std::io::Error::other(format!("the write was rolled back with its batch: {why}")))),
        Ok(None) | Err(_) => Err(sqlx::Error::Io(std::io::Error::other("the write's batch ended unknown"))),
    }
}

/// A batch's own task: every `BATCH_CHECK_EVERY`, commits batch number `batch` if it is
/// still open with no writer waiting — the writers its members left it open for went
/// away, or one left its write transaction open — and ends once it is not open.
async fn commit_when_left(shared: Arc<SqliteWrites>, batch: u64) {
    loop {
        tokio::time::sleep(BATCH_CHECK_EVERY).await;
        if shared.open_batch.load(Ordering::SeqCst) != batch {
            return;
        }
        let mut writer = shared.writer.clone().lock_owned().await;
        if writer.batches != batch || writer.batch.is_none() {
            return;
        }
        if shared.waiting.load(Ordering::SeqCst) > 0 {
            continue;
        }
        // A write transaction open now, with the connection here, is one its writer left.
        let committed = match writer.settle().await {
            Ok(()) => writer.commit(&shared).await,
            Err(err) => Err(err),
        };
        if let Err(err) = committed {
            tracing::warn!(%err, "could not commit a batch of writes");
        }
        return;
    }
}

/// Counts a writer waiting for SQLite's write connection, for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A write transaction (`Db::begin_write`): use it as the connection its statements run
/// on; `commit` keeps them, and returns once they are committed. Dropped without
/// `commit` (an error, a refusal, a cancelled request) it rolls back, as sqlx's
/// transactions do.
#[must_use = "a write transaction rolls back unless committed"]
pub struct WriteTx(TxInner);

enum TxInner {
    /// On a kept connection of the pool (`Db::read`): PostgreSQL, in-memory SQLite.
    Pooled(KeptConn),
    /// Held until the transaction has ended (the next writer waits for the guard).
    Sqlite(Option<OwnedMutexGuard<Writer>>, Arc<SqliteWrites>),
    /// A pooled transaction, once ended.
    Ended,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.end(true).await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.end(false).await
    }

    /// Commits (`keep`) or rolls back. On SQLite it ends on a task of its own, which
    /// keeps the connection until then (`end_in_batch`).
    async fn end(mut self, keep: bool) -> Result<(), sqlx::Error> {
        match &mut self.0 {
            TxInner::Sqlite(writer, shared) => {
                let writer = writer.take().expect("held until the transaction ends");
                end_in_batch(shared.clone(), writer, keep).await
            }
            TxInner::Ended => unreachable!("a transaction ends once"),
            TxInner::Pooled(_) => {
                // A COMMIT or ROLLBACK that fails, or is cancelled, leaves the transaction
                // open as far as sqlx knows: the connection then goes back to the pool,
                // whose ping rolls it back or finds the connection broken (`KeptConn`'s
                // drop). Only one whose transaction ended is kept.
                let TxInner::Pooled(mut conn) = std::mem::replace(&mut self.0, TxInner::Ended) else { unreachable!("matched above") };
                let ended = if keep { AnyTransactionManager::commit(&mut conn).await } else { AnyTransactionManager::rollback(&mut conn).await };
                if ended.is_ok() {
                    conn.ended_well();
                }
                ended
            }
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let TxInner::Sqlite(writer, shared) = &mut self.0 else { return };
        let Some(writer) = writer.take() else { return };
        // Rolled back before the next writer gets the connection: its task keeps the
        // guard. Without a runtime (a process shutting down) the next `begin_write` does it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = shared.clone();
            runtime.spawn(async move {
                if let Err(err) = end_in_batch(shared, writer, false).await {
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
            TxInner::Pooled(conn) => conn,
            TxInner::Sqlite(writer, _) => &writer.as_ref().expect("held until the transaction ends").conn,
            TxInner::Ended => unreachable!("an ended transaction is gone"),
        }
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            TxInner::Pooled(conn) => conn,
            TxInner::Sqlite(writer, _) => &mut writer.as_mut().expect("held until the transaction ends").conn,
            TxInner::Ended => unreachable!("an ended transaction is gone"),
        }
    }
}

/// A connection for one write outside a transaction (`Db::writer`).
pub struct WriteConn(ConnInner);

enum ConnInner {
    /// PostgreSQL's (or an in-memory SQLite database's): a connection kept between uses,
    /// as reads' are.
    Kept(KeptConn),
    Sqlite(OwnedMutexGuard<Writer>),
}

impl WriteConn {
    /// The statements run on it ended well: a kept connection is kept again for the next
    /// use instead of going back to the pool (`KeptConn::ended_well`). Nothing to do on
    /// SQLite's writer.
    pub fn ended_well(&mut self) {
        if let ConnInner::Kept(conn) = &mut self.0 {
            conn.ended_well();
        }
    }
}

impl Deref for WriteConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.0 {
            ConnInner::Kept(conn) => &**conn,
            ConnInner::Sqlite(writer) => &writer.conn,
        }
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            ConnInner::Kept(conn) => &mut **conn,
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
            let open_batch = Arc::new(AtomicU64::new(0));
            let writer = Writer { conn, open: false, savepoint: false, batch: None, batches: 0, open_batch: open_batch.clone(), url: url.to_string() };
            let (waiting, commits, committed_writes) = (AtomicUsize::new(0), AtomicU64::new(0), AtomicU64::new(0));
            Some(Arc::new(SqliteWrites { writer: Arc::new(Mutex::new(writer)), new_work: Mutex::new(()), waiting, open_batch, commits, committed_writes }))
        } else {
            None
        };
        let spare = Arc::new(Spare { kept: std::sync::Mutex::new(Vec::new()), cap: pool_size(engine) / 2, pool: pool.clone(), pool_size: pool_size(engine) as u32 });
        tokio::spawn(release_kept(Arc::downgrade(&spare)));
        Ok(Db { pool, spare, sqlite, engine })
    }

    /// A connection for reads, outside any transaction: the one a read gave back last,
    /// when one is kept, else the pool's. Once its statements went well it is kept again
    /// for the next read (`KeptConn` says when) rather than given back to the pool, which
    /// pings every connection given back (sqlx 0.8 does so always): a round trip to
    /// PostgreSQL, or a hop to an SQLite connection's thread and back, as dear as the
    /// read itself. One kept idle for over `PING_IF_IDLE_FOR` is pinged before it is
    /// handed out, as the pool's are. Begin no sqlx transaction on it (`begin_write` is
    /// the way).
    pub async fn read(&self) -> Result<KeptConn, sqlx::Error> {
        let kept = self.spare.kept.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (conn, from_pool) = match kept {
            Some(kept) if kept.given_back.elapsed() <= PING_IF_IDLE_FOR => (kept.conn, kept.from_pool),
            Some(mut kept) => match kept.conn.ping().await {
                Ok(()) => (kept.conn, kept.from_pool),
                Err(_) => {
                    kept.conn.close_on_drop();
                    drop(kept);
                    (self.pool.acquire().await?, Instant::now())
                }
            },
            None => (self.pool.acquire().await?, Instant::now()),
        };
        Ok(KeptConn { conn: Some(conn), spare: self.spare.clone(), from_pool, sound: true, beginning: false })
    }

    /// A transaction begun (with `statement`, else BEGIN) on a kept connection: ended by
    /// `WriteTx`, it is kept again without the pool's ping.
    async fn begin_kept(&self, statement: Option<std::borrow::Cow<'static, str>>) -> Result<KeptConn, sqlx::Error> {
        let mut conn = self.read().await?;
        // Until BEGIN's answer is read: dropped before (the request went away), the
        // connection may hold a transaction sqlx does not know of (its depth is raised
        // after the answer), which its next user would write in, never committed.
        conn.beginning = true;
        AnyTransactionManager::begin(&mut conn, statement).await?;
        conn.beginning = false;
        Ok(conn)
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
                let mut writer = Self::take_writer(sqlite).await;
                // On a task of its own: a future dropped meanwhile (a request gone) leaves
                // the transaction open, and whoever takes the connection next undoes it.
                let shared = sqlite.clone();
                let begun = tokio::spawn(async move { writer.begin(&shared).await.map(|()| writer) });
                let writer = begun.await.map_err(|err| sqlx::Error::Io(std::io::Error::other(err)))??;
                Ok(WriteTx(TxInner::Sqlite(Some(writer), sqlite.clone())))
            }
            (None, Engine::Sqlite) => Ok(WriteTx(TxInner::Pooled(self.begin_kept(Some("BEGIN IMMEDIATE".into())).await?))),
            (None, Engine::Postgres) => Ok(WriteTx(TxInner::Pooled(self.begin_kept(None).await?))),
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
            Some(sqlite) => {
                // Waiting here too: writes that end meanwhile leave their batch open for it.
                let _waiting = Waiting::new(&sqlite.waiting);
                Some(sqlite.new_work.lock().await)
            }
            None => None,
        };
        self.begin_write().await
    }

    /// A connection for a write of one statement outside a transaction: on SQLite the
    /// writers' own, so it waits its turn with them instead of polling for the lock; the
    /// batch open on it is committed first (on a task of its own), and the statement is
    /// committed as it runs. On PostgreSQL a kept one, as `read`'s: kept again after a
    /// statement that ended well (`WriteConn::ended_well`), else given back to the pool.
    pub async fn writer(&self) -> Result<WriteConn, sqlx::Error> {
        let Some(sqlite) = &self.sqlite else { return Ok(WriteConn(ConnInner::Kept(self.read().await?))) };
        let mut writer = Self::take_writer(sqlite).await;
        if !writer.open && writer.batch.is_none() {
            // Nothing open on it (the usual case below saturation): nothing to end first.
            return Ok(WriteConn(ConnInner::Sqlite(writer)));
        }
        let shared = sqlite.clone();
        let ready = tokio::spawn(async move {
            writer.settle().await?;
            if let Err(err) = writer.commit(&shared).await {
                // Its members hear of it; this write is not theirs.
                tracing::warn!(%err, "could not commit a batch of writes");
            }
            Ok::<_, sqlx::Error>(writer)
        });
        Ok(WriteConn(ConnInner::Sqlite(ready.await.map_err(|err| sqlx::Error::Io(std::io::Error::other(err)))??)))
    }

    /// SQLite's write connection, when its turn comes (counted as waiting until then).
    async fn take_writer(sqlite: &SqliteWrites) -> OwnedMutexGuard<Writer> {
        let _waiting = Waiting::new(&sqlite.waiting);
        sqlite.writer.clone().lock_owned().await
    }

    /// On SQLite (a file), the batches of writes committed so far, and the write
    /// transactions they held: many per batch when writers queue (group commit).
    pub fn write_batches(&self) -> Option<(u64, u64)> {
        self.sqlite.as_ref().map(|s| (s.commits.load(Ordering::Relaxed), s.committed_writes.load(Ordering::Relaxed)))
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}

/// Connections kept between uses (`Db::read`): the last given back on top.
#[derive(Debug)]
struct Spare {
    kept: std::sync::Mutex<Vec<Kept>>,
    /// How many may be kept: the rest of the pool serves writes and everything else.
    cap: usize,
    /// The pool they are taken from, and its size.
    pool: AnyPool,
    pool_size: u32,
}

#[derive(Debug)]
struct Kept {
    conn: PoolConnection<Any>,
    given_back: Instant,
    from_pool: Instant,
}

impl Spare {
    /// Keeps `conn`, taken from the pool at `from_pool`, whose statements went well;
    /// unless it has been out of the pool `KEEP_FOR_AT_MOST`, or the pool has none
    /// left to hand out, or enough are kept: then it goes back to the pool.
    fn keep(&self, conn: PoolConnection<Any>, from_pool: Instant) {
        // With the pool out of connections someone may be waiting there, whom only a
        // connection given back to it serves (sqlx's queue). Only this one goes: giving
        // back every kept one too, at each drop, costs a ping each whenever the server is
        // saturated; those kept but idle follow from `release_kept`.
        if from_pool.elapsed() > KEEP_FOR_AT_MOST || self.pool_exhausted() {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < self.cap {
            kept.push(Kept { conn, given_back: Instant::now(), from_pool });
        }
    }

    /// Every connection of the pool is out, and none idle in it.
    fn pool_exhausted(&self) -> bool {
        self.pool.size() >= self.pool_size && self.pool.num_idle() == 0
    }

    /// Takes out the kept connections from the oldest given back on, while `take` says
    /// so: dropped (outside the lock), they go back to the pool.
    fn release(&self, take: impl Fn(&Kept) -> bool) -> Vec<Kept> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let n = kept.iter().take_while(|k| take(k)).count();
        kept.drain(..n).collect()
    }
}

/// Every `RELEASE_KEPT_EVERY`, gives the kept connections idle past `PING_IF_IDLE_FOR`
/// back to the pool, so that they shrink back to those in steady use; when the pool has
/// none left, those idle since the last time too (whoever waits there is served, though
/// no connection in use is given back). Ends with the `Db`.
async fn release_kept(spare: std::sync::Weak<Spare>) {
    loop {
        tokio::time::sleep(RELEASE_KEPT_EVERY).await;
        let Some(spare) = spare.upgrade() else { return };
        let idle_for = if spare.pool_exhausted() { RELEASE_KEPT_EVERY } else { PING_IF_IDLE_FOR };
        drop(spare.release(|k| k.given_back.elapsed() > idle_for));
    }
}

/// A connection of the pool for reads (`Db::read`), or a write transaction's on
/// PostgreSQL (`WriteTx`). Dropped, it is kept for the next read if the last statement
/// run on it ended well — run through it as the executor (`&mut conn`); a statement
/// run on the connection under it (`&mut *conn`, as a function taking an
/// `AnyConnection` does) counts only once `ended_well` is called after it. Otherwise (a
/// statement failed, or the request went away in the middle of one) it goes back to the
/// pool, whose ping reads what a cancelled statement left unread, rolls back a
/// transaction left open, and closes the connection if it is broken.
#[derive(Debug)]
pub struct KeptConn {
    conn: Option<PoolConnection<Any>>,
    spare: Arc<Spare>,
    from_pool: Instant,
    /// The last statement run on it ended well (true until one runs).
    sound: bool,
    /// A BEGIN may have been sent whose answer was not read (`Db::begin_kept`).
    beginning: bool,
}

impl KeptConn {
    /// The statements run on the connection under it (`&mut *conn`) ended well: it is
    /// kept for the next read once dropped (`Spare::keep`), unless another fails first.
    pub fn ended_well(&mut self) {
        self.sound = true;
    }

    fn conn(&mut self) -> &mut AnyConnection {
        self.conn.as_mut().expect("a kept connection until dropped")
    }
}

impl Deref for KeptConn {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.conn.as_ref().expect("a kept connection until dropped")
    }
}

impl DerefMut for KeptConn {
    /// The connection itself, for statements whose outcome it cannot see: until
    /// `ended_well`, it is not known to be sound.
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.sound = false;
        self.conn()
    }
}

/// Statements run through a kept connection: each marks it unsound until it ends well.
impl<'c> sqlx::Executor<'c> for &'c mut KeptConn {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> futures::stream::BoxStream<'e, Result<sqlx::Either<sqlx::any::AnyQueryResult, sqlx::any::AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + sqlx::Execute<'q, Any>,
    {
        use futures::StreamExt;
        self.sound = false;
        let KeptConn { conn, sound, .. } = self;
        let steps = conn.as_mut().expect("a kept connection until dropped").fetch_many(query);
        // Sound once every step came and none failed.
        futures::stream::unfold((steps, Some(sound)), |(mut steps, sound)| async move {
            match steps.next().await {
                Some(Ok(step)) => Some((Ok(step), (steps, sound))),
                Some(Err(err)) => Some((Err(err), (steps, None))),
                None => {
                    if let Some(sound) = sound {
                        *sound = true;
                    }
                    None
                }
            }
        })
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> futures::future::BoxFuture<'e, Result<Option<sqlx::any::AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + sqlx::Execute<'q, Any>,
    {
        Box::pin(async move {
            if self.conn().backend_name() == "PostgreSQL" {
                // sqlx's PostgreSQL driver returns at the first row and leaves the rest of
                // the reply, an error after that row too, to the connection's next user:
                // read to its end here, so that only a statement that ended well counts.
                use futures::TryStreamExt;
                let mut first = None;
                let mut steps = (&mut *self).fetch_many(query);
                while let Some(step) = steps.try_next().await? {
                    if let sqlx::Either::Right(row) = step {
                        first.get_or_insert(row);
                    }
                }
                return Ok(first);
            }
            self.sound = false;
            let row = self.conn().fetch_optional(query).await;
            self.sound = row.is_ok();
            row
        })
    }

    fn prepare_with<'e, 'q: 'e>(self, sql: &'q str, parameters: &'e [sqlx::any::AnyTypeInfo]) -> futures::future::BoxFuture<'e, Result<sqlx::any::AnyStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            self.sound = false;
            let statement = self.conn().prepare_with(sql, parameters).await;
            self.sound = statement.is_ok();
            statement
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> futures::future::BoxFuture<'e, Result<sqlx::Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            self.sound = false;
            let described = self.conn().describe(sql).await;
            self.sound = described.is_ok();
            described
        })
    }
}

impl Drop for KeptConn {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        if self.beginning {
            // Closed: neither kept nor pooled with a transaction sqlx does not know of.
            conn.close_on_drop();
            return;
        }
        if <AnyTransactionManager as TransactionManager>::get_transaction_depth(&conn) > 0 {
            // Unfinished: rolled back at once by the pool it goes back to, whose ping
            // sends the rollback, as sqlx's own transactions do.
            <AnyTransactionManager as TransactionManager>::start_rollback(&mut conn);
            return;
        }
        if self.sound {
            self.spare.keep(conn, self.from_pool);
        }
    }
}

/// Connections in the pool on `engine`.
fn pool_size(engine: Engine) -> usize {
    if engine == Engine::Sqlite { 8 } else { 16 }
}

/// The pool's settings on `engine`.
fn pool_options(engine: Engine) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(pool_size(engine) as u32)
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

/// A query as sqlx builds it on the `Any` driver.
pub type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// `sql`, written with parameters `$1…$params`, with each renumbered to follow `after`
/// others (`$1` becomes `$(after + 1)`): to join a statement or a batch that binds
/// `after` arguments before its own.
pub fn renumbered(sql: &str, params: usize, after: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..=at]);
        if digits > 0 {
            let n: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or(usize::MAX);
            assert!((1..=params).contains(&n), "parameter ${n} in a statement of {params}");
            out.push_str(&(n + after).to_string());
        }
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    out
}

/// Statements sent to SQLite as one batch, which its driver runs in one call to the
/// connection's thread: each statement sent alone costs a call, two thread switches.
/// Each statement is written with its own parameters `$1…$n`; the batch renumbers them
/// to follow those of the statements before it (SQLite binds `$N` to the batch's Nth
/// argument), so the statements' arguments are bound one statement after the other.
/// SQLite only: PostgreSQL takes one statement per query. sqlx calls running several
/// statements in one SQLite query deprecated: `a_batch_runs_every_statement_in_order`
/// fails if a new version stops doing it.
#[derive(Debug, Default)]
pub struct StatementBatch {
    sql: String,
    params: usize,
    statements: usize,
}

impl StatementBatch {
    /// Adds a statement written with parameters `$1…$params`.
    pub fn then(mut self, sql: &str, params: usize) -> StatementBatch {
        if self.statements > 0 {
            self.sql.push_str(";\n");
        }
        self.sql.push_str(&renumbered(sql, params, self.params));
        self.params += params;
        self.statements += 1;
        self
    }

    /// Runs the batch with its arguments bound by `bind`; each statement's rows, in order.
    pub async fn fetch<'q>(
        &'q self,
        conn: &mut AnyConnection,
        bind: impl FnOnce(AnyQuery<'q>) -> AnyQuery<'q>,
    ) -> Result<Vec<Vec<sqlx::any::AnyRow>>, sqlx::Error> {
        use futures::TryStreamExt;
        use sqlx::{Either, Executor};
        let mut statements = vec![Vec::new()];
        let mut steps = conn.fetch_many(bind(sqlx::query(&self.sql)));
        while let Some(step) = steps.try_next().await? {
            match step {
                Either::Right(row) => statements.last_mut().expect("a statement").push(row),
                // A statement ended; the next one's rows follow.
                Either::Left(_) => statements.push(Vec::new()),
            }
        }
        statements.pop();
        if statements.len() != self.statements {
            return Err(sqlx::Error::Protocol(format!("a batch of {} statements ran {}", self.statements, statements.len())));
        }
        Ok(statements)
    }
}

#[cfg(test)]
mod tests {
    use super::StatementBatch;

    #[test]
    fn a_batch_numbers_each_statements_parameters_after_those_before() {
        let batch = StatementBatch::default().then("SELECT $1, $2 WHERE x = $1", 2).then("SELECT '$', $2, $1, $10", 10).then("SELECT 1", 0);
        assert_eq!(batch.sql, "SELECT $1, $2 WHERE x = $1;\nSELECT '$', $4, $3, $12;\nSELECT 1");
        assert_eq!((batch.params, batch.statements), (12, 3));
        assert_eq!(super::renumbered("INSERT INTO t SELECT $1, $2, record.id FROM record", 2, 40), "INSERT INTO t SELECT $41, $42, record.id FROM record");
    }

    #[test]
    #[should_panic(expected = "parameter $3 in a statement of 2")]
    fn a_statement_may_not_name_more_parameters_than_it_says() {
        let _ = StatementBatch::default().then("SELECT $1, $3", 2);
    }
}
