//! A template from `pgshift new` is unfinished work, not a broken catalog: `status` shows it as
//! "empty: fill it in" and exits as usual; only `up` refuses to run past it.

use crate::common::*;

#[test]
fn a_new_scaffold_shows_in_status_and_only_up_refuses_it() {
    let db = TestDb::new();
    db.write_migration("0001_a.up.sql", "CREATE TABLE a (id int);");
    db.write_migration("0001_a.down.sql", "DROP TABLE a;");
    db.run(&["up"]).ok();
    db.run(&["new", "add b"]).ok();

    let status = db.run(&["status"]);
    status
        .ok()
        .stdout_has("empty: fill it in")
        .stdout_has("0002_add_b.up.sql");
    let json = db.run(&["status", "--json"]);
    json.ok();
    let doc = json.json();
    assert_eq!(
        doc["result"]["scaffolds"][0]["file"], "0002_add_b.up.sql",
        "{doc}"
    );
    assert_eq!(doc["result"]["current"], 1);
    db.run(&["history"]).ok();
    db.run(&["plan", "down"]).ok();

    db.run(&["up"])
        .code(5)
        .stderr_has("0002_add_b.up.sql")
        .stderr_has("empty: fill it in");
    assert_eq!(
        db.applied(),
        vec![1],
        "nothing recorded for the empty migration"
    );
    // Going down is not blocked by unfinished work above.
    db.run(&["down", "--yes"]).ok();
    assert_eq!(db.applied(), Vec::<u32>::new());

    std::fs::write(
        db.migrations().join("0002_add_b.up.sql"),
        "CREATE TABLE b (id int);",
    )
    .unwrap();
    std::fs::write(db.migrations().join("0002_add_b.down.sql"), "DROP TABLE b;").unwrap();
    db.run(&["up"]).ok();
    assert_eq!(db.applied(), vec![1, 2]);
}

#[test]
fn new_refuses_to_write_next_to_malformed_migration_file_names() {
    let db = TestDb::new();
    db.write_migration("0001_a.up.sql", "CREATE TABLE a (id int);");
    db.write_migration("0002-Add-B.up.sql", "CREATE TABLE b (id int);");
    let r = db.run(&["new", "add c", "--json"]);
    r.code(5);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("0002-Add-B.up.sql") && msg.contains("Rename"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_dir(db.migrations()).unwrap().count(),
        2,
        "nothing was written"
    );
}
