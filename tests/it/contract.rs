//! The JSON contract shared by every command: `ok` is false exactly when the exit code is 1–5
//! (10, pending work, is a finding and stays ok), and `exit_code` is the process's exit code.

use crate::common::{Run, TestDb};

/// `run` exited `code`, and its JSON document says so.
#[track_caller]
fn agrees(run: &Run, code: i32) -> serde_json::Value {
    run.code(code);
    let doc = run.json();
    assert_eq!(
        doc["ok"],
        !(1..=5).contains(&code),
        "`ok` disagrees with exit {code}: {doc:#}"
    );
    assert_eq!(doc["exit_code"], code, "{doc:#}");
    doc
}

#[test]
fn ok_is_false_exactly_when_the_exit_code_is_1_to_5() {
    let db = TestDb::with_demo_migrations();

    // Pending work (10) is ok: a deploy gate, not a failure.
    agrees(&db.run(&["status", "--check", "--json"]), 10);
    agrees(&db.run(&["health", "--json"]), 10);
    agrees(&db.run(&["up", "--json"]), 0);
    agrees(&db.run(&["status", "--check", "--json"]), 0);
    agrees(&db.run(&["lint", "--json"]), 0);

    // A lint error exits 1: the document says not ok, with the findings as its result. (A rename
    // breaks running code whatever the table's size.)
    db.write_migration(
        "0006_rename_title.up.sql",
        "ALTER TABLE documents RENAME COLUMN title TO heading;\n",
    );
    db.write_migration(
        "0006_rename_title.down.sql",
        "ALTER TABLE documents RENAME COLUMN heading TO title;\n",
    );
    let lint = agrees(&db.run(&["lint", "--json"]), 1);
    assert_eq!(lint["result"]["errors"], 1, "{lint:#}");

    // Drift exits 5 from `status` and `health`, with the status still in the document.
    db.write_migration("0001_baseline.up.sql", "CREATE TABLE proposals (id int);\n");
    let status = agrees(&db.run(&["status", "--json"]), 5);
    assert!(
        status["result"]["drift"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );
    agrees(&db.run(&["health", "--json"]), 5);

    // A failure reported as an error document follows the same rule.
    agrees(&db.run(&["up", "--json"]), 5);
}
