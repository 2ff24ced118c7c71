//! Replicas and standbys against a real streaming replica (tests/common/replica.rs): the role and
//! replicas in `status`/`health`, writes refused on the standby, backfills held while the replica
//! lags, an expected replica that disappears.

use std::time::Duration;

use crate::common::replica::{ReplicaSet, STANDBY_NAME};
use crate::common::*;

const TABLE: &str = "CREATE TABLE items (id bigint PRIMARY KEY, v int);
INSERT INTO items SELECT g, NULL FROM generate_series(1, 3000) g;";

/// A catalog with one migration (the items table) and a backfill `fill` of `items.v`.
fn with_items(db: &TestDb) {
    db.write_migration("0001_items.up.sql", TABLE);
    db.write_migration("0001_items.down.sql", "DROP TABLE items;");
    let dir = db.migrations().join("backfills");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ORDER"), "fill\n").unwrap();
    std::fs::write(
        dir.join("fill.toml"),
        r#"description = "set v"
table = "items"
key = "id"
batch = "UPDATE items SET v = 1 WHERE id > $1 AND id <= $2 AND v IS NULL"
count = "SELECT count(*) FROM items WHERE v IS NULL"
"#,
    )
    .unwrap();
}

/// pgshift against the standby's copy of `db`.
fn on_standby(set: &ReplicaSet, db: &TestDb, args: &[&str]) -> Run {
    Run::from(
        pgshift_bare(db.dir.path())
            .arg("--database-url")
            .arg(set.standby.url(&db.name))
            .arg("--migrations")
            .arg(db.migrations())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    )
}

#[test]
fn status_shows_the_primary_with_its_replica_and_the_standby_with_its_primary() {
    let Some(set) = ReplicaSet::start() else {
        return;
    };
    let db = set.database();
    with_items(&db);
    let primary = db.run(&["--json", "status"]);
    let t = &primary.ok().json()["result"]["topology"];
    assert_eq!(t["role"], "primary");
    assert_eq!(t["replicas"][0]["name"], STANDBY_NAME);
    assert_eq!(t["replicas"][0]["state"], "streaming");
    db.run(&["status"])
        .ok()
        .stdout_has("topology primary, 1 replica(s)")
        .stdout_has(&format!("replica  {STANDBY_NAME} (streaming, async)"));

    let standby = on_standby(&set, &db, &["--json", "status"]);
    let t = &standby.ok().json()["result"]["topology"];
    assert_eq!(t["role"], "standby");
    assert_eq!(t["primary"]["port"], set.primary.port);
    on_standby(&set, &db, &["status"]).ok().stdout_has(&format!(
        "STANDBY (read-only replica) of 127.0.0.1:{}",
        set.primary.port
    ));
}

#[test]
fn up_down_stamp_and_backfill_on_a_standby_are_refused_naming_the_primary() {
    let Some(set) = ReplicaSet::start() else {
        return;
    };
    let db = set.database();
    with_items(&db);
    let primary = format!("127.0.0.1:{}", set.primary.port);
    for args in [
        &["up"][..],
        &["down", "--yes"],
        &["stamp", "0001"],
        &["backfill", "fill"],
        &["backfill", "fill", "--dry-run"],
    ] {
        let r = on_standby(&set, &db, args);
        r.code(2).stderr_has("is a standby").stderr_has(&primary);
        assert!(!r.stderr.contains("password"), "{}", r.stderr);
    }
    let r = on_standby(&set, &db, &["--json", "up"]);
    assert_eq!(r.code(2).json()["error"]["kind"], "standby");
    // Nothing ran anywhere: no history, no audit table on the primary.
    assert!(db.applied().is_empty());
    assert!(db.events().is_empty());
    // The primary takes it.
    db.run(&["up"]).ok();
    assert_eq!(db.applied(), vec![1]);
}

/// Writes a row every 100 ms on its own connection until dropped: the steady traffic a
/// production primary has, which keeps a delayed replica measurably behind.
struct Traffic {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(db: &TestDb) -> Traffic {
        db.exec("CREATE TABLE IF NOT EXISTS ticks (at timestamptz DEFAULT now())");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let conn = db.conn();
        let thread = std::thread::spawn(move || {
            block_on(async move {
                let (c, connection) = conn.pg.connect(tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    c.batch_execute("INSERT INTO ticks DEFAULT VALUES")
                        .await
                        .ok();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

/// A config file naming the primary's copy of `db` with `max_replica_lag = "1s"`.
fn config(db: &TestDb, extra: &str) -> std::path::PathBuf {
    let path = db.dir.path().join("pgshift.toml");
    std::fs::write(
        &path,
        format!(
            "[targets.main]\nurl = \"{}\"\nmigrations = \"{}\"\nmax_replica_lag = \"1s\"\n{extra}",
            db.url,
            db.migrations().display()
        ),
    )
    .unwrap();
    path
}

/// Until the primary sees r1 more than a second behind.
fn wait_for_lag(set: &ReplicaSet, db: &TestDb) {
    wait_until(Duration::from_secs(30), "replay lag above 1s", || {
        set.primary
            .scalar(
                &db.name,
                "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0) > 1.2 FROM pg_stat_replication",
            )
            == "t"
    });
}

#[test]
fn a_backfill_waits_while_the_replica_lags_and_finishes_when_it_catches_up() {
    let Some(set) = ReplicaSet::start() else {
        return;
    };
    let db = set.database();
    with_items(&db);
    db.run(&["up"]).ok();
    let cfg = config(&db, "");
    let traffic = Traffic::start(&db);
    set.set_apply_delay(Duration::from_secs(3));
    wait_for_lag(&set, &db);

    let mut child = pgshift_bare(db.dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["--json", "backfill", "fill", "--batch-size", "500"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = StderrLog::follow(child.stderr.take().unwrap());
    wait_until(Duration::from_secs(30), "the replica wait", || {
        log.text().contains("\"event\":\"replica_wait\"")
    });
    // Held: two more polls go by and not one batch is committed.
    wait_until(Duration::from_secs(10), "two more wait polls", || {
        log.text().matches("\"event\":\"replica_wait\"").count() >= 3
    });
    assert_eq!(
        db.scalar("SELECT count(*) FROM items WHERE v IS NULL"),
        "3000"
    );
    let wait_line = log
        .text()
        .lines()
        .find(|l| l.contains("replica_wait"))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap();
    assert_eq!(wait_line["name"], "fill");
    assert_eq!(wait_line["replica"], STANDBY_NAME);
    assert!(wait_line["lag_s"].as_f64().unwrap() > 1.0, "{wait_line}");
    assert_eq!(wait_line["max_s"].as_f64(), Some(1.0));

    // The replica catches up: the run continues on its own and finishes.
    set.set_apply_delay(Duration::ZERO);
    let out = child.wait_with_output().unwrap();
    drop(traffic);
    assert_eq!(out.status.code(), Some(0), "{}", log.text());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["result"][0]["state"], "done", "{doc}");
    assert_eq!(db.scalar("SELECT count(*) FROM items WHERE v IS NULL"), "0");
}

#[test]
fn ignore_replica_lag_runs_the_backfill_without_waiting() {
    let Some(set) = ReplicaSet::start() else {
        return;
    };
    let db = set.database();
    with_items(&db);
    db.run(&["up"]).ok();
    let cfg = config(&db, "");
    let _traffic = Traffic::start(&db);
    set.set_apply_delay(Duration::from_secs(3));
    wait_for_lag(&set, &db);
    let r = Run::from(
        pgshift_bare(db.dir.path())
            .arg("--config")
            .arg(&cfg)
            .args(["--json", "--ignore-replica-lag", "backfill", "fill"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    r.ok();
    assert!(!r.stderr.contains("replica_wait"), "{}", r.stderr);
    assert_eq!(db.scalar("SELECT count(*) FROM items WHERE v IS NULL"), "0");
}

#[test]
fn a_no_transaction_migration_waits_for_the_replica_between_statements() {
    let Some(set) = ReplicaSet::start() else {
        return;
    };
    let db = set.database();
    with_items(&db);
    db.run(&["up"]).ok();
    db.write_migration(
        "0002_index_items.up.sql",
        "-- pgshift: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_v_idx ON items (v);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS items_v_id_idx ON items (v, id);\n",
    );
    let cfg = config(&db, "");
    let traffic = Traffic::start(&db);
    set.set_apply_delay(Duration::from_secs(3));
    wait_for_lag(&set, &db);
    let mut child = pgshift_bare(db.dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["up"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = StderrLog::follow(child.stderr.take().unwrap());
    wait_until(Duration::from_secs(30), "the replica wait", || {
        log.text().contains(&format!(
            "0002 waiting for replica {STANDBY_NAME}: replay lag"
        ))
    });
    assert_eq!(db.applied(), vec![1], "nothing of 0002 may be recorded yet");
    set.set_apply_delay(Duration::ZERO);
    let out = child.wait_with_output().unwrap();
    drop(traffic);
    assert_eq!(out.status.code(), Some(0), "{}", log.text());
    assert_eq!(db.applied(), vec![1, 2]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'items_v%'"),
        "2"
    );
}

#[test]
fn health_warns_on_replica_lag_and_errors_when_an_expected_replica_is_gone() {
    let Some(set) = ReplicaSet::start() else {
        return;
    };
    let db = set.database();
    with_items(&db);
    db.run(&["up"]).ok();
    let cfg = config(&db, &format!("expected_replicas = [\"{STANDBY_NAME}\"]\n"));
    let health = || {
        Run::from(
            pgshift_bare(db.dir.path())
                .arg("--config")
                .arg(&cfg)
                .args(["--json", "health"])
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let kinds = |r: &Run| -> Vec<String> {
        r.json()["result"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{} {}", a["severity"], a["kind"]).replace('"', ""))
            .collect()
    };
    let r = health();
    assert_eq!(r.code(0).json()["result"]["status"], "ok");
    assert_eq!(
        r.json()["result"]["topology"]["replicas"][0]["name"],
        STANDBY_NAME
    );

    let traffic = Traffic::start(&db);
    set.set_apply_delay(Duration::from_secs(3));
    wait_for_lag(&set, &db);
    let r = health();
    assert_eq!(kinds(&r), vec!["warning replica_lag"], "{}", r.stdout);
    assert_eq!(r.code(0).json()["result"]["status"], "degraded");
    drop(traffic);

    set.standby.stop();
    wait_until(
        Duration::from_secs(30),
        "r1 to leave pg_stat_replication",
        || {
            set.primary
                .scalar("postgres", "SELECT count(*) FROM pg_stat_replication")
                == "0"
        },
    );
    let r = health();
    assert_eq!(kinds(&r), vec!["error replica_missing"], "{}", r.stdout);
    r.code(1);
}
