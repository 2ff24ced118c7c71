//! Out-of-order migrations (merged late from a branch): drift by default with the way forward
//! named, `up --out-of-order` applies them first (recorded and audited), `down` reverts in the
//! order of application, `out_of_order = true` per target.

use crate::common::*;

fn migration(db: &TestDb, v: &str, table: &str) {
    db.write_migration(
        &format!("{v}_{table}.up.sql"),
        &format!("CREATE TABLE {table} (id int);\n"),
    );
    db.write_migration(
        &format!("{v}_{table}.down.sql"),
        &format!("DROP TABLE {table};\n"),
    );
}

/// 0001, 0002 and 0004 applied; 0003 merged afterwards.
fn with_late_three() -> TestDb {
    let db = TestDb::new();
    migration(&db, "0001", "a");
    migration(&db, "0002", "b");
    migration(&db, "0004", "d");
    db.run(&["up"]).ok();
    migration(&db, "0003", "c");
    db
}

#[test]
fn a_late_migration_is_drift_by_default_and_the_message_says_how_to_proceed() {
    let db = with_late_three();
    db.run(&["status"])
        .code(5)
        .stdout_has("0003_c: below the current revision but never applied")
        .stdout_has("pgshift up --out-of-order");
    db.run(&["up"]).code(5).stderr_has("--out-of-order");
    assert_eq!(db.applied(), vec![1, 2, 4]);
}

#[test]
fn up_out_of_order_applies_late_ones_first_recorded_and_audited_and_down_reverts_by_application() {
    let db = with_late_three();
    let plan = db.run(&["plan", "up", "--out-of-order"]);
    plan.ok()
        .stdout_has("OUT OF ORDER (below the applied head 0004, merged late): 0003_c")
        .stdout_has("-- up 0003_c (OUT OF ORDER, one transaction)");
    migration(&db, "0005", "e");
    let r = db.run(&["--json", "up", "--out-of-order"]);
    r.ok().stderr_has("0003_c");
    assert_eq!(r.json()["result"]["out_of_order"], serde_json::json!([3]));
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    assert_eq!(
        db.column("SELECT version FROM pgshift_applied_sql WHERE out_of_order ORDER BY version"),
        vec!["3"]
    );
    assert_eq!(
        db.scalar("SELECT detail->'out_of_order' FROM pgshift_events WHERE action = 'up' ORDER BY id DESC LIMIT 1"),
        "[3]"
    );
    let status = db.run(&["--json", "status"]);
    let rows = status.ok().json()["result"]["revisions"].clone();
    let late: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["out_of_order"] == true)
        .map(|r| r["revision"].clone())
        .collect();
    assert_eq!(late, vec![serde_json::json!(3)]);

    // Reverse order of application: 0005, 0003 (applied after 0004), then 0004.
    db.run(&["down", "--yes"]).ok();
    assert_eq!(db.applied(), vec![1, 2, 3, 4]);
    db.run(&["down", "--yes"]).ok();
    assert_eq!(
        db.applied(),
        vec![1, 2, 4],
        "0003 is reverted where it was applied"
    );
    db.run(&["down", "0001", "--yes"]).ok();
    assert_eq!(db.applied(), vec![1]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE tablename IN ('b', 'c', 'd', 'e')"),
        "0"
    );
}

#[test]
fn out_of_order_in_the_target_config_makes_late_ones_pending_work() {
    let db = with_late_three();
    let cfg = db.dir.path().join("pgshift.toml");
    std::fs::write(
        &cfg,
        format!(
            "[targets.main]\nurl = \"{}\"\nmigrations = \"{}\"\nout_of_order = true\n",
            db.url,
            db.migrations().display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Run::from(
            pgshift_bare(db.dir.path())
                .arg("--config")
                .arg(&cfg)
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let r = run(&["--json", "status", "--check"]);
    assert_eq!(
        r.code(10).json()["result"]["pending"],
        serde_json::json!([3])
    );
    run(&["up"]).ok();
    assert_eq!(db.applied(), vec![1, 2, 3, 4]);
    run(&["status"]).ok().stdout_has("out of order");
}
