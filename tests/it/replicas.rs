//! Replicas and standbys against a real streaming replica (tests/common/replica.rs): the role and
//! replicas in `status`/`health`, writes refused on the standby, backfills held while the replica
//! lags, an expected replica that disappears.

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
