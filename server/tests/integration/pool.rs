//! The connection pool: a connection the database dropped while it sat idle (a
//! PostgreSQL restart, an administrator ending sessions) is found out and replaced as it
//! is handed out, so the next requests are served. A connection in steady use is not
//! pinged before each use (sqlx already pings it as it goes back to the pool). On SQLite,
//! writes queue for one connection of their own, in order, new calls' admissions behind
//! the writes of calls under way; those that end while others wait are committed
//! together, and each hears how that went.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::auth::UserRole;
use app::db::Db;
use sqlx::Connection;

use crate::support::{Engine, PG_ADMIN_URL, TestApp, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_database_ended_while_idle_are_replaced() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let client = app.signed_in("pool@dealdesk.test", UserRole::Analyst).await;
    // Several requests at once: the pool opens several connections.
    let answers = futures::future::join_all((0..8).map(|_| app.post(&client, "/api/me", &[]))).await;
    assert!(answers.iter().all(|(status, _)| *status == 200), "{answers:?}");
    let database = app.db.url.rsplit('/').next().unwrap().to_string();

    let mut admin = sqlx::PgConnection::connect(PG_ADMIN_URL).await.unwrap();
    let ended: Vec<(bool,)> = sqlx::query_as("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(&database)
        .fetch_all(&mut admin)
        .await
        .unwrap();
    assert!(!ended.is_empty(), "the app held no connection to end");
    // Idle past the pool's threshold: each connection is pinged before it is handed out.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    for attempt in 0..ended.len() + 2 {
        let (status, body) = app.post(&client, "/api/me", &[]).await;
        assert_eq!(status, 200, "request {attempt} after the connections were ended: {body}");
        assert_eq!(body["email"], "pool@dealdesk.test");
    }
}

/// SQLite takes one writer at a time. Write transactions asked for while one is open
/// begin in the order they were asked for, each once the one before it has ended: none
/// is left polling for the file's lock (SQLite's busy handler sleeps up to 100 ms between
/// tries) while a later one goes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_write_transactions_begin_in_the_order_they_were_asked_for() {
    let names = ["writer 0", "writer 1", "writer 2", "writer 3", "writer 4", "writer 5"];
    let (db, order, _test_db) = writers_in_turn(&names, |_| false).await;
    assert_eq!(order, names);
    let (written,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM server_secrets WHERE value = 'written'").fetch_one(&db.pool).await.unwrap();
    assert_eq!(written, 6);
    // Each ended while the next waited: one commit for all six (and the migrations' none:
    // they take the pool). The open one's rollback left the batch to them.
    assert_eq!(db.write_batches(), Some((1, 6)), "(commits, write transactions committed)");
}

/// On a fresh SQLite database, while one write transaction is open, a writer for each
/// of `names` asks in turn, 100 ms apart (each is waiting before the next asks), as new
/// work (`begin_new_work`) where `new_work` says so; each writes a row and commits.
/// Returns the order in which they began.
async fn writers_in_turn(names: &[&'static str], new_work: fn(&str) -> bool) -> (Db, Vec<&'static str>, TestDb) {
    let (db, test_db) = migrated_sqlite().await;
    let open = db.begin_write().await.unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for &name in names {
        let (db, order) = (db.clone(), order.clone());
        writers.push(tokio::spawn(async move {
            let mut tx = if new_work(name) { db.begin_new_work().await } else { db.begin_write().await }.unwrap();
            order.lock().unwrap().push(name);
            sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, 'written')").bind(name).execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    open.rollback().await.unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    (db, order, test_db)
}

/// A write transaction dropped without a commit (an error, a refusal, a request gone)
/// leaves nothing behind, and the next writer goes ahead; so does one whose transaction
/// SQLite ended under it (its connection is replaced).
async fn unfinished_write_transactions_roll_back(engine: Engine) {
    let test_db = TestDb::create(engine).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    let write = |name: &'static str| {
        let db = db.clone();
        async move {
            let mut tx = db.begin_write().await.unwrap();
            sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, 'written')").bind(name).execute(&mut *tx).await.unwrap();
            tx
        }
    };
    drop(write("dropped").await);
    write("committed").await.commit().await.unwrap();
    write("rolled back").await.rollback().await.unwrap();
    // Ended under the transaction: its own commit fails, and the writer recovers.
    let mut tx = write("ended under it").await;
    sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
    let committed = tx.commit().await;
    // (PostgreSQL only warns of a COMMIT with no transaction open.)
    assert!(engine == Engine::Postgres || committed.is_err(), "a commit with no transaction open must fail");
    let mut tx = write("ended, then dropped").await;
    sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
    drop(tx);
    write("after").await.commit().await.unwrap();
    let mut one = db.writer().await.unwrap();
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES ('one statement', 'written')").execute(&mut *one).await.unwrap();
    drop(one);

    let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM server_secrets WHERE value = 'written' ORDER BY name").fetch_all(&db.pool).await.unwrap();
    let names: Vec<&str> = names.iter().map(|(n,)| n.as_str()).collect();
    assert_eq!(names, ["after", "committed", "one statement"]);
}

/// Reads keep their connections (`Db::read`): a read takes the connection the last read
/// gave back, at once, instead of the pool's oldest idle one after the pool's ping (sqlx
/// pings every connection given back to it: a round trip per read).
async fn a_read_takes_the_connection_the_last_read_gave_back(engine: Engine) {
    let test_db = TestDb::create(engine).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    // Three connections at once; a table only the last one given back can see.
    let (first, second, mut last) = (db.read().await.unwrap(), db.read().await.unwrap(), db.read().await.unwrap());
    sqlx::query("CREATE TEMPORARY TABLE only_here (n BIGINT)").execute(&mut last).await.unwrap();
    drop(first);
    drop(second);
    drop(last);
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..3 {
        let seen = sqlx::query("SELECT n FROM only_here").fetch_all(&mut db.read().await.unwrap()).await.map(|rows| rows.len());
        assert_eq!(seen.ok(), Some(0), "the read got another connection than the last one given back");
    }
}

/// While connections are kept for reads, every other connection of the pool is taken
/// (writes, one-off statements): whoever waits for the pool then is served at once, by
/// the kept connections going back to it, rather than waiting for its timeout.
async fn kept_connections_serve_those_waiting_for_the_pool(engine: Engine) {
    let test_db = TestDb::create(engine).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    let max = db.pool.options().get_max_connections();
    let mut reads = Vec::new();
    for _ in 0..max / 2 {
        let mut conn = db.read().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
        reads.push(conn);
    }
    // Kept (half the pool may be), and the rest of the pool taken.
    drop(reads);
    let mut taken = Vec::new();
    for _ in 0..max - max / 2 {
        taken.push(db.pool.acquire().await.unwrap());
    }
    let waited = tokio::time::timeout(Duration::from_secs(3), db.pool.acquire()).await;
    assert!(matches!(waited, Ok(Ok(_))), "a task waiting for the pool was not served while reads kept connections idle");
}

crate::on_both_engines!(unfinished_write_transactions_roll_back, a_read_takes_the_connection_the_last_read_gave_back, kept_connections_serve_those_waiting_for_the_pool);

/// A read whose kept connection the database ended (a restart, an administrator ending
/// sessions) fails once, as a pooled one does: the broken connection is not kept, and
/// the next reads take sound ones at once, not after it has idled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_a_read_found_broken_is_not_kept() {
    let test_db = TestDb::create(Engine::Postgres).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    let mut admin = sqlx::PgConnection::connect(PG_ADMIN_URL).await.unwrap();
    let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()").fetch_one(&mut db.read().await.unwrap()).await.unwrap();
    // Ended within the second a kept connection is handed out unpinged (waiting, up to
    // 5 s, for its process to exit).
    let (ended,): (bool,) = sqlx::query_as("SELECT pg_terminate_backend($1, 5000)").bind(pid).fetch_one(&mut admin).await.unwrap();
    assert!(ended, "the kept connection's process did not end");

    let broken = sqlx::query("SELECT 1").execute(&mut db.read().await.unwrap()).await;
    assert!(broken.is_err(), "the read took the kept connection, which the database had ended");
    for attempt in 0..3 {
        let read: Result<(i32,), _> = sqlx::query_as("SELECT pg_backend_pid()").fetch_one(&mut db.read().await.unwrap()).await;
        let (other,) = read.unwrap_or_else(|err| panic!("read {attempt} after the broken one failed: {err}"));
        assert_ne!(other, pid);
    }
}

/// A read given up in the middle of a statement (its request went away) leaves a
/// connection with replies still to come: it goes back to the pool, whose ping reads
/// them, and the next read takes another instead of waiting for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_given_up_midway_is_not_kept() {
    let test_db = TestDb::create(Engine::Postgres).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    let mut conn = db.read().await.unwrap();
    let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()").fetch_one(&mut conn).await.unwrap();
    let slow = sqlx::query("SELECT pg_sleep(30)").execute(&mut conn);
    assert!(tokio::time::timeout(Duration::from_millis(100), slow).await.is_err(), "the statement took under 100 ms");
    drop(conn);

    let next = async { sqlx::query_as::<_, (i32,)>("SELECT pg_backend_pid()").fetch_one(&mut db.read().await.unwrap()).await.unwrap() };
    let (next,) = tokio::time::timeout(Duration::from_secs(10), next).await.expect("the next read waited for the given-up statement's end");
    assert_ne!(next, pid, "the next read took the connection whose statement was given up");
}

/// A read of one row whose statement fails after that row (on PostgreSQL the error
/// follows the rows sent before it) leaves nothing for the next read: the statement is
/// read to its end, so its error is its own and not the next read's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_failing_after_its_first_row_leaves_no_error_behind() {
    let test_db = TestDb::create(Engine::Postgres).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    let first: Result<Option<(i32,)>, _> = sqlx::query_as("SELECT 1 / (2 - n) FROM generate_series(1, 3) n").fetch_optional(&mut db.read().await.unwrap()).await;
    assert!(first.is_err(), "the statement's error was not seen: {first:?}");
    for attempt in 0..3 {
        let next: Result<(i32,), _> = sqlx::query_as("SELECT 7").fetch_one(&mut db.read().await.unwrap()).await;
        assert_eq!(next.map_err(|err| err.to_string()), Ok((7,)), "read {attempt} after the failed statement");
    }
}

/// A write transaction given up while its BEGIN was on the way (the request went away)
/// leaves no transaction open on a connection for the next user: sqlx counts the
/// transaction only once BEGIN's answer is read, so that connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_transaction_given_up_at_begin_leaves_none_open() {
    use futures::FutureExt;
    let test_db = TestDb::create(Engine::Postgres).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    // A connection kept: the next write transaction takes it and sends BEGIN at its
    // first step, whose answer cannot have come back yet.
    sqlx::query("SELECT 1").execute(&mut db.read().await.unwrap()).await.unwrap();
    if let Some(begun) = db.begin_write().now_or_never() {
        // It began in one step (the answer was already there): nothing to give up.
        begun.unwrap().rollback().await.unwrap();
    }
    // Every connection of the pool at once, so the one it was sent on among them,
    // wherever it went.
    let mut reads = Vec::new();
    for _ in 0..db.pool.options().get_max_connections() {
        reads.push(db.read().await.unwrap());
    }
    for conn in &mut reads {
        let (first,): (i64,) = sqlx::query_as("SELECT txid_current()").fetch_one(&mut *conn).await.unwrap();
        let (second,): (i64,) = sqlx::query_as("SELECT txid_current()").fetch_one(&mut *conn).await.unwrap();
        assert_ne!(first, second, "two statements of a read ran in one transaction: one was left open on its connection");
    }
}

/// On SQLite, a write of work under way (a usage record) asked for while admissions of
/// new calls are queued goes before all of them but the one already in line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_of_work_under_way_go_before_new_work() {
    let names = ["admission 1", "admission 2", "admission 3", "record"];
    let (_, order, _test_db) = writers_in_turn(&names, |name| name != "record").await;
    assert_eq!(order, ["admission 1", "record", "admission 2", "admission 3"]);
}

/// On SQLite, a write of one statement outside a transaction waits its turn behind a
/// long write transaction, instead of polling for the lock and giving up at SQLite's
/// busy timeout (10 s) as it did while such writes took a connection of the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_single_writes_wait_their_turn_past_the_busy_timeout() {
    let (db, _test_db) = migrated_sqlite().await;
    let open = db.begin_write().await.unwrap();
    let waiting = {
        let db = db.clone();
        tokio::spawn(async move { app::db::shared_secret(&db, "waited").await })
    };
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    open.commit().await.unwrap();
    waiting.await.unwrap().expect("the write waited for the transaction to end");
}

/// A SQLite database with a table whose rows must name a parent, checked only as its
/// transaction commits (a deferred foreign key): a write that commits with a dangling
/// row fails at COMMIT, not before.
async fn with_deferred_check() -> (Db, TestDb) {
    let (db, test_db) = migrated_sqlite().await;
    let mut one = db.writer().await.unwrap();
    sqlx::query("CREATE TABLE child (id INTEGER PRIMARY KEY, parent TEXT REFERENCES server_secrets (name) DEFERRABLE INITIALLY DEFERRED)")
        .execute(&mut *one)
        .await
        .unwrap();
    drop(one);
    (db, test_db)
}

/// Starts a write on its own task once `after` ends: it inserts with `sql` and commits,
/// and tells what its commit returned.
fn write_after(db: &Db, after: tokio::sync::oneshot::Receiver<()>, sql: &'static str) -> tokio::task::JoinHandle<Result<(), sqlx::Error>> {
    let db = db.clone();
    tokio::spawn(async move {
        let mut tx = db.begin_write().await?;
        let _ = after.await;
        sqlx::query(sql).execute(&mut *tx).await?;
        tx.commit().await
    })
}

/// On SQLite, when the commit of a batch fails, every write transaction in it is told
/// so (none returns Ok for work that was not kept), nothing of the batch is kept, and
/// the next write goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_committed_together_hear_that_their_commit_failed() {
    let (db, _test_db) = with_deferred_check().await;
    let open = db.begin_write().await.unwrap();
    let (go, wait) = tokio::sync::oneshot::channel();
    let good = write_after(&db, wait, "INSERT INTO server_secrets (name, value) VALUES ('good', 'written')");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (go_bad, wait_bad) = tokio::sync::oneshot::channel();
    let bad = write_after(&db, wait_bad, "INSERT INTO child (id, parent) VALUES (1, 'nobody')");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The good write ends while the bad one waits: they share a batch, whose COMMIT fails.
    open.rollback().await.unwrap();
    go.send(()).unwrap();
    go_bad.send(()).unwrap();
    let (good, bad) = (good.await.unwrap(), bad.await.unwrap());
    assert!(bad.is_err(), "the write whose row dangles fails at commit");
    assert!(good.is_err(), "and so does the write committed in the same batch: its row was not kept");
    let (kept,): (i64,) = sqlx::query_as("SELECT (SELECT COUNT(*) FROM server_secrets WHERE value = 'written') + (SELECT COUNT(*) FROM child)").fetch_one(&db.pool).await.unwrap();
    assert_eq!(kept, 0);
    let mut tx = db.begin_write().await.unwrap();
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES ('after', 'written')").execute(&mut *tx).await.unwrap();
    tx.commit().await.expect("the next write goes ahead");
    assert_eq!(db.write_batches(), Some((1, 1)), "only the last write was committed");
}

/// On SQLite, a write transaction that left its batch open for a writer that then went
/// away (its request dropped while it waited, or once it had begun) is still committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_left_for_a_writer_that_went_away_are_committed() {
    let (db, _test_db) = migrated_sqlite().await;
    let mut first = db.begin_write().await.unwrap();
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES ('first', 'written')").execute(&mut *first).await.unwrap();
    let (_never, wait) = tokio::sync::oneshot::channel::<()>();
    let gone = write_after(&db, wait, "INSERT INTO server_secrets (name, value) VALUES ('gone', 'written')");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // It ends while the other waits, so it leaves its work in the open batch...
    let committed = tokio::spawn(first.commit());
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ...and the other goes away, having begun or not.
    gone.abort();
    let committed = tokio::time::timeout(Duration::from_secs(5), committed).await.expect("the commit is heard").unwrap();
    committed.expect("the first write was committed");
    let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM server_secrets WHERE value = 'written'").fetch_all(&db.pool).await.unwrap();
    assert_eq!(names, [("first".to_string(),)]);
}

/// On SQLite, a write transaction undone in the middle of a batch takes only its own
/// work with it: those before it in the batch and after it are committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_undone_within_a_batch_undoes_only_its_own() {
    let (db, _test_db) = migrated_sqlite().await;
    let mut first = db.begin_write().await.unwrap();
    let write = |name: &'static str, keep: bool| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin_write().await?;
            sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, 'written')").bind(name).execute(&mut *tx).await?;
            if keep { tx.commit().await } else { tx.rollback().await }
        })
    };
    // Three writers queue behind the first, in this order.
    let mut queued = Vec::new();
    for (name, keep) in [("kept", true), ("undone", false), ("last", true)] {
        queued.push(write(name, keep));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES ('first', 'written')").execute(&mut *first).await.unwrap();
    first.commit().await.unwrap();
    for writer in queued {
        writer.await.unwrap().unwrap();
    }
    let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM server_secrets WHERE value = 'written' ORDER BY name").fetch_all(&db.pool).await.unwrap();
    assert_eq!(names, [("first".to_string(),), ("kept".to_string(),), ("last".to_string(),)]);
    assert_eq!(db.write_batches(), Some((1, 3)), "one commit for the three kept");
}

/// On SQLite, the statements of a `StatementBatch` run in one query, in order, each
/// with its own arguments (written `$1…` in each, renumbered by the batch), and each
/// statement's rows come back apart. The ledger's record writes and the admission's
/// checks rely on it: sqlx calls several statements per SQLite query deprecated, so
/// this fails first if a new sqlx stops running them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_every_statement_in_order() {
    let (db, _test_db) = migrated_sqlite().await;
    let batch = app::db::StatementBatch::default()
        .then("INSERT INTO server_secrets (name, value) VALUES ($1, $2) RETURNING name", 2)
        .then("UPDATE server_secrets SET value = value || $2 WHERE name = $1", 2)
        .then("SELECT 'none' WHERE $1 = 0", 1)
        .then("SELECT value FROM server_secrets WHERE name = $1 UNION ALL SELECT $2", 2);
    let mut tx = db.begin_write().await.unwrap();
    let rows = batch.fetch(&mut tx, |q| q.bind("a").bind("first").bind("a").bind("+second").bind(1_i64).bind("a").bind("last")).await.unwrap();
    tx.commit().await.unwrap();
    use sqlx::Row;
    let text = |statement: usize| rows[statement].iter().map(|r| r.try_get::<String, _>(0).unwrap()).collect::<Vec<_>>();
    assert_eq!(rows.len(), 4, "one list of rows per statement");
    assert_eq!(text(0), ["a"]);
    assert!(rows[1].is_empty() && rows[2].is_empty(), "an update and an empty select return no rows");
    assert_eq!(text(3), ["first+second", "last"], "the update ran before the last select, with its own arguments");
}

/// A fresh SQLite database with the app's schema (dropped with the `TestDb`).
async fn migrated_sqlite() -> (Db, TestDb) {
    let test_db = TestDb::create(Engine::Sqlite).await;
    let db = Db::connect(&test_db.url).await.unwrap();
    db.migrate().await.unwrap();
    (db, test_db)
}
