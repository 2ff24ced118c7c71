//! Drift you can read and re-approve: the SQL as applied is kept in `pgshift_applied_sql`, drift
//! shows a diff of applied vs file for up and down files, whitespace-only changes say so, and
//! `accept REV` re-approves one migration (audited; refinery still reads its table).

use crate::common::*;

const UP: &str = "CREATE TABLE a (id int);\n";
const DOWN: &str = "DROP TABLE a;\n";

fn applied_one() -> TestDb {
    let db = TestDb::new();
    db.write_migration("0001_a.up.sql", UP);
    db.write_migration("0001_a.down.sql", DOWN);
    db.run(&["up"]).ok();
    db
}

fn checksum(db: &TestDb) -> String {
    db.scalar("SELECT checksum FROM refinery_schema_history WHERE version = 1")
}

/// refinery itself, with the files as they are now, aborting on divergent or missing
/// migrations: Ok means refinery agrees with the history table.
fn refinery_agrees(db: &TestDb, up: &str) -> Result<usize, String> {
    block_on(async {
        let mut c = db.client().await;
        let m = refinery_core::Migration::unapplied("V1__a", up).unwrap();
        refinery_core::Runner::new(&[m])
            .set_abort_divergent(true)
            .set_abort_missing(true)
            .run_async(&mut c)
            .await
            .map(|r| r.applied_migrations().len())
            .map_err(|e| e.to_string())
    })
}

#[test]
fn an_edited_up_file_shows_its_diff_and_accept_re_approves_it() {
    let db = applied_one();
    let before = checksum(&db);
    let edited = "CREATE TABLE a (id int, note text);\n";
    db.write_migration("0001_a.up.sql", edited);

    let status = db.run(&["status"]);
    status
        .code(5)
        .stdout_has("0001_a: the up file changed after it was applied")
        .stdout_has("-CREATE TABLE a (id int);")
        .stdout_has("+CREATE TABLE a (id int, note text);")
        .stdout_has("pgshift accept REV");
    let json = db.run(&["--json", "status"]);
    let d = &json.code(5).json()["result"]["drift"][0];
    assert_eq!(d["kind"], "checksum_changed");
    assert_eq!(d["change"], "content");
    assert!(
        d["diff"]
            .as_str()
            .unwrap()
            .contains("+CREATE TABLE a (id int, note text);")
    );
    assert!(
        refinery_agrees(&db, edited).is_err(),
        "refinery sees the divergence too"
    );

    // Without a terminal and without --yes: refused, nothing changed.
    db.run(&["accept", "0001"])
        .code(2)
        .stderr_has("+CREATE TABLE a (id int, note text);")
        .stderr_has("--yes");
    assert_eq!(checksum(&db), before);

    let r = db.run(&["--json", "accept", "0001", "--yes"]);
    let result = &r.ok().json()["result"];
    assert_eq!(result["old_checksum"].as_u64().unwrap().to_string(), before);
    let after = checksum(&db);
    assert_eq!(result["new_checksum"].as_u64().unwrap().to_string(), after);
    assert_ne!(after, before);
    db.run(&["status"]).ok();
    // Nothing ran: the column is not there. refinery agrees with the new checksum.
    assert_eq!(
        db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'a' AND column_name = 'note'"),
        "0"
    );
    assert_eq!(refinery_agrees(&db, edited), Ok(0));
    let audit = db.scalar(
        "SELECT outcome || ' ' || (detail->>'old_checksum') || ' ' || (detail->>'new_checksum') FROM pgshift_events WHERE action = 'accept'",
    );
    assert_eq!(audit, format!("ok {before} {after}"));
    // Accepting again: nothing left to accept.
    db.run(&["accept", "0001", "--yes"])
        .code(2)
        .stderr_has("no changed file");
}

#[test]
fn an_edited_down_file_is_drift_with_a_diff_until_accepted() {
    let db = applied_one();
    db.write_migration("0001_a.down.sql", "DROP TABLE a CASCADE;\n");
    db.run(&["status"])
        .code(5)
        .stdout_has("0001_a: the down file changed after the migration was applied")
        .stdout_has("-DROP TABLE a;")
        .stdout_has("+DROP TABLE a CASCADE;");
    // A downgrade would run SQL nobody reviewed with the migration: refused as drift.
    db.run(&["down", "--yes"]).code(5);
    assert_eq!(db.applied(), vec![1]);
    let r = db.run(&["--json", "accept", "0001", "--yes"]);
    let result = &r.ok().json()["result"];
    assert_eq!(result["down"], "content");
    assert_eq!(result["up"], serde_json::Value::Null);
    db.run(&["status"]).ok();
    db.run(&["down", "--yes"]).ok();
    assert!(db.applied().is_empty());
    // The recorded SQL goes with the history row.
    assert_eq!(db.scalar("SELECT count(*) FROM pgshift_applied_sql"), "0");
}

#[test]
fn a_line_ending_only_change_is_reported_as_such() {
    let db = applied_one();
    db.write_migration("0001_a.up.sql", &UP.replace('\n', "\r\n"));
    let r = db.run(&["--json", "status"]);
    let d = &r.code(5).json()["result"]["drift"][0];
    assert_eq!(d["change"], "whitespace");
    db.run(&["status"])
        .code(5)
        .stdout_has("whitespace or line endings only (CRLF vs LF)");
}

#[test]
fn accept_on_production_without_a_terminal_or_yes_is_refused_and_changes_nothing() {
    let db = applied_one();
    db.write_migration("0001_a.up.sql", "CREATE TABLE a (id bigint);\n");
    let before = checksum(&db);
    let cfg = db.dir.path().join("pgshift.toml");
    std::fs::write(
        &cfg,
        format!(
            "[targets.prod]\nurl = \"{}\"\nenvironment = \"production\"\nmigrations = \"{}\"\n",
            db.url,
            db.migrations().display()
        ),
    )
    .unwrap();
    // Not a terminal: refused before asking.
    let r = Run::from(
        pgshift_bare(db.dir.path())
            .arg("--config")
            .arg(&cfg)
            .args(["accept", "0001"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    r.code(2);
    assert_eq!(checksum(&db), before);
    assert!(db.events().iter().all(|(a, _)| a != "accept"));
}
