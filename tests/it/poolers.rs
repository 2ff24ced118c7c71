//! Connection poolers: a real PgBouncer in front of the test server. Transaction pooling cannot
//! carry a migration run (session advisory lock, SET, prepared statements): refused before
//! anything runs, exit 2. Session pooling is a plain session: everything works.

use crate::common::pgbouncer::{Bouncer, PoolMode};
use crate::common::*;

fn demo() -> TestDb {
    let db = TestDb::new();
    db.write_migration("0001_a.up.sql", "CREATE TABLE a (id int);");
    db.write_migration("0001_a.down.sql", "DROP TABLE a;");
    db.write_migration("0002_b.up.sql", "CREATE TABLE b (id int);");
    db.write_migration("0002_b.down.sql", "DROP TABLE b;");
    db
}

/// pgshift against `db` through the pooler at `url`.
fn via(db: &TestDb, url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--database-url", url];
    all.extend_from_slice(args);
    run_bare(db, &all, &[])
}

/// Advisory locks held in `db` by anyone (pooled server connections included).
fn advisory_locks(db: &TestDb) -> String {
    db.scalar(&format!(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = '{}')",
        db.name
    ))
}

#[test]
fn transaction_pooling_is_refused_before_anything_runs() {
    let Some(bouncer) = Bouncer::start(PoolMode::Transaction) else {
        return;
    };
    let db = demo();
    let url = bouncer.url(&db);
    // Several tries: without detection the outcome depended on which server connection each
    // transaction landed on (42P05, or success with the runner lock left on a pooled backend).
    for _ in 0..3 {
        let r = via(&db, &url, &["up"]);
        r.code(2)
            .stderr_has("transaction")
            .stderr_has("advisory lock")
            .stderr_has("pool_mode = session");
        assert_eq!(
            db.applied(),
            Vec::<u32>::new(),
            "nothing ran:\n{}",
            r.stderr
        );
        assert_eq!(advisory_locks(&db), "0", "no runner lock left behind");
    }
    let json = via(&db, &url, &["up", "--json"]);
    json.code(2);
    let doc = json.json();
    assert_eq!(doc["error"]["kind"], "transaction_pooler", "{doc}");
    db.run(&["up", "0001"]).ok();
    let down = via(&db, &url, &["down", "--yes"]);
    down.code(2).stderr_has("transaction");
    let stamp = via(&db, &url, &["stamp", "0002"]);
    stamp.code(2).stderr_has("transaction");
    assert_eq!(db.applied(), vec![1], "down and stamp ran nothing either");
    assert_eq!(advisory_locks(&db), "0");
}

#[test]
fn session_pooling_works_for_up_status_history_and_down() {
    let Some(bouncer) = Bouncer::start(PoolMode::Session) else {
        return;
    };
    let db = demo();
    let url = bouncer.url(&db);
    via(&db, &url, &["up"]).ok();
    assert_eq!(db.applied(), vec![1, 2]);
    let status = via(&db, &url, &["status", "--json"]);
    status.ok();
    assert_eq!(status.json()["result"]["current"], 2, "{}", status.stdout);
    via(&db, &url, &["history"]).ok();
    via(&db, &url, &["down", "--yes"]).ok();
    assert_eq!(db.applied(), vec![1]);
    via(&db, &url, &["up"]).ok();
    assert_eq!(db.applied(), vec![1, 2]);
    assert_eq!(
        advisory_locks(&db),
        "0",
        "the runner lock went with the session"
    );
}

/// A session pool that never resets its server connection hands the next client what the
/// previous one left: here a prepared statement named as pgshift names its own (`s0`; a client
/// killed mid-query leaves them so). pgshift refuses (exit 2, nothing run) and names that cause
/// besides a transaction pool.
#[test]
fn a_session_pool_without_reset_is_refused_and_the_reset_query_is_named() {
    let Some(bouncer) = Bouncer::start(PoolMode::SessionWithoutReset) else {
        return;
    };
    let db = demo();
    let url = bouncer.url(&db);
    let left = ConnInfo::parse(&url).unwrap();
    block_on(async {
        let (c, connection) = left.pg.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        c.simple_query("PREPARE s0 AS SELECT 1").await.unwrap();
    });
    let r = via(&db, &url, &["status"]);
    r.code(2)
        .stderr_has("prepared statement \"s0\" already exists")
        .stderr_has("server_reset_query = DISCARD ALL")
        .stderr_has("Nothing was run");
    assert_eq!(db.applied(), Vec::<u32>::new());
    assert_eq!(advisory_locks(&db), "0", "no runner lock left behind");
}
