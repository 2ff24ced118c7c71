//! Lint weighed by the run and the live database (issue 13), against real PostgreSQL: a generated
//! catalog of hundreds of migrations applies to a fresh database without `--allow-lint`; the same
//! kind of index on a loaded table is refused with its size and estimate; the estimate is checked
//! against a real index build; `[lint] start_after`; the short summary of a refused `up`.

use std::fmt::Write as _;
use std::time::Instant;

use crate::common::{Holder, TestDb};

/// Tables of the generated catalog.
const TABLES: usize = 60;

/// A realistic catalog: each table is created, then in later migrations indexed (without
/// CONCURRENTLY), given a foreign key and a CHECK (validated in place), a renamed column, a type
/// change and a NOT NULL: 5 migrations per table, 300 in all, each with a down.
fn write_catalog(db: &TestDb) -> usize {
    let mut n = 0;
    let mut add = |up: String, down: String| {
        n += 1;
        db.write_migration(&format!("{n:04}_step.up.sql"), &up);
        db.write_migration(&format!("{n:04}_step.down.sql"), &down);
    };
    for t in 0..TABLES {
        add(
            format!(
                "CREATE TABLE items_{t} (id bigserial PRIMARY KEY, parent_id bigint, name text, amount int, created_at timestamptz NOT NULL DEFAULT now());\n"
            ),
            format!("DROP TABLE items_{t};\n"),
        );
    }
    for t in 0..TABLES {
        add(
            format!("CREATE INDEX items_{t}_name_idx ON items_{t} (name);\n"),
            format!("DROP INDEX items_{t}_name_idx;\n"),
        );
        let parent = if t == 0 { 0 } else { t - 1 };
        add(
            format!(
                "ALTER TABLE items_{t} ADD CONSTRAINT items_{t}_parent_fk FOREIGN KEY (parent_id) REFERENCES items_{parent} (id);\nALTER TABLE items_{t} ADD CONSTRAINT items_{t}_amount_check CHECK (amount >= 0);\n"
            ),
            format!(
                "ALTER TABLE items_{t} DROP CONSTRAINT items_{t}_amount_check;\nALTER TABLE items_{t} DROP CONSTRAINT items_{t}_parent_fk;\n"
            ),
        );
        add(
            format!("ALTER TABLE items_{t} RENAME COLUMN name TO title;\n"),
            format!("ALTER TABLE items_{t} RENAME COLUMN title TO name;\n"),
        );
        add(
            format!(
                "ALTER TABLE items_{t} ALTER COLUMN amount TYPE bigint;\nALTER TABLE items_{t} ALTER COLUMN title SET NOT NULL;\n"
            ),
            format!(
                "ALTER TABLE items_{t} ALTER COLUMN title DROP NOT NULL;\nALTER TABLE items_{t} ALTER COLUMN amount TYPE int;\n"
            ),
        );
    }
    n
}

/// `documents` with `rows` generated rows, analyzed (as autovacuum would leave it).
fn load_documents(db: &TestDb, rows: u32) {
    db.exec(&format!(
        "CREATE TABLE documents (id bigserial PRIMARY KEY, source_id bigint, title text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO documents (source_id, title)
           SELECT g % 1000, 'document ' || g FROM generate_series(1, {rows}) g;
         ANALYZE documents;"
    ));
}

fn write_config(db: &TestDb, lint: &str) {
    let dir = db.dir.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pgshift.toml"), format!("[lint]\n{lint}")).unwrap();
}

#[test]
fn a_generated_catalog_of_hundreds_of_migrations_applies_to_a_fresh_database_without_allow_lint() {
    let db = TestDb::new();
    let n = write_catalog(&db);
    assert_eq!(n, 300);

    // Statically (no database), every one of these is a finding: the gate would cry wolf.
    let offline = crate::common::Run::from(
        crate::common::pgshift_bare(db.dir.path())
            .args(["--migrations", db.migrations().to_str().unwrap()])
            .args(["lint", "--json"])
            .output()
            .unwrap(),
    );
    offline.code(1);
    let doc = offline.json();
    assert_eq!(doc["result"]["mode"], "static");
    assert!(
        doc["result"]["errors"].as_u64().unwrap() >= 300,
        "{}",
        doc["result"]["errors"]
    );

    // Weighed for this run on the empty database: every table is new, nothing blocks.
    let live = db.run(&["lint", "--json"]);
    live.ok();
    let doc = live.json();
    assert_eq!(doc["result"]["mode"], "live");
    assert_eq!(doc["result"]["errors"], 0);
    assert!(doc["result"]["infos"].as_u64().unwrap() >= 300);
    db.run(&["lint"])
        .ok()
        .stdout_has("lint: weighed against the live database");

    // `status` and `plan` weigh by the run too: no ERROR for what `up` accepts.
    let status = db.run(&["status", "--json"]).json();
    let severities: Vec<String> = status["result"]["lint"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["findings"].as_array().unwrap().clone())
        .map(|f| f["severity"].as_str().unwrap().to_string())
        .collect();
    assert!(severities.len() >= 300);
    assert!(severities.iter().all(|s| s == "info"), "{severities:?}");
    db.run(&["plan", "up"]).ok().stdout_has("info");

    let up = db.run(&["up"]);
    up.ok();
    assert_eq!(db.applied().len(), 300);
    assert!(
        !up.stderr.contains("lint:"),
        "nothing to say about lint:\n{}",
        up.stderr
    );
}

#[test]
fn an_index_on_a_loaded_table_is_refused_with_its_size_and_estimate_and_allowed_on_a_small_one() {
    let db = TestDb::new();
    load_documents(&db, 200_000);
    db.write_migration(
        "0001_index_title.up.sql",
        "CREATE INDEX documents_title_idx ON documents (title);\n",
    );
    let refused = db.run(&["up"]);
    refused
        .code(1)
        .stderr_has("require-concurrent-index-creation")
        .stderr_has("documents: 200 k rows, ")
        .stderr_has("CREATE INDEX without CONCURRENTLY would block writes for an estimated ");
    assert!(db.applied().is_empty());
    let json = db.run(&["lint", "--json"]).json();
    let f = &json["result"]["migrations"][0]["findings"][0];
    assert_eq!(f["severity"], "error");
    assert_eq!(f["table"], "documents");
    assert!(f["estimate_s"].as_f64().unwrap() > 0.05, "{f}");
    assert_eq!(json["result"]["tables"][0]["table"], "public.documents");

    // The same migration on a small table: info with the figures, and `up` runs it.
    let small = TestDb::new();
    load_documents(&small, 800);
    small.write_migration(
        "0001_index_title.up.sql",
        "CREATE INDEX documents_title_idx ON documents (title);\n",
    );
    let lint = small.run(&["lint"]);
    lint.ok()
        .stdout_has("info")
        .stdout_has("weighed: documents: 800 rows, ")
        .stdout_has("SHARE lock held ~");
    small.run(&["up"]).ok();
    assert_eq!(small.applied(), vec![1]);
}

/// The estimate's method (src/lint/estimate.rs, README "Lint before apply") against a real build:
/// the estimate must be within a factor of 4 of the measured time (3 on a quiet machine; the rest
/// is room for the other builds and tests sharing these 2 cores).
#[test]
fn index_build_estimate_is_within_a_factor_of_a_real_build() {
    let db = TestDb::new();
    load_documents(&db, 300_000);
    db.write_migration(
        "0001_index_title.up.sql",
        "CREATE INDEX documents_title_idx ON documents (title);\n",
    );
    let json = db.run(&["lint", "--json"]).json();
    let estimate = json["result"]["migrations"][0]["findings"][0]["estimate_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("no estimate: {json:#}"));
    let started = Instant::now();
    db.exec("CREATE INDEX documents_title_idx ON documents (title)");
    let measured = started.elapsed().as_secs_f64();
    let ratio = estimate / measured;
    eprintln!("estimate {estimate:.3} s, measured {measured:.3} s, ratio {ratio:.2}");
    assert!(
        (0.25..=4.0).contains(&ratio),
        "estimate {estimate:.3} s vs measured {measured:.3} s (ratio {ratio:.2})"
    );
}

#[test]
fn start_after_leaves_the_adopted_history_unlinted() {
    let db = TestDb::new();
    // An adopted project: the table exists, the history predates pgshift.
    db.exec("CREATE TABLE legacy (a int, c int)");
    db.write_migration(
        "0001_rename.up.sql",
        "ALTER TABLE legacy RENAME COLUMN a TO b;\n",
    );
    db.write_migration("0002_add.up.sql", "ALTER TABLE legacy ADD COLUMN d text;\n");
    db.write_migration(
        "0003_rename.up.sql",
        "ALTER TABLE legacy RENAME COLUMN c TO e;\n",
    );
    db.run(&["up"])
        .code(1)
        .stderr_has("0001 line 1: renaming-column");

    write_config(&db, "start_after = \"0001\"\n");
    let lint = db.run(&["lint", "--json"]).json();
    assert_eq!(lint["result"]["not_linted"], serde_json::json!([1]));
    assert_eq!(lint["result"]["errors"], 1, "0003 is still linted");
    db.run(&["up"])
        .code(1)
        .stderr_has("0003 line 1: renaming-column");

    write_config(&db, "start_after = \"0003\"\n");
    db.run(&["lint"])
        .ok()
        .stdout_has("3 migration(s) at or below start_after = 0003 not linted");
    db.run(&["up"]).ok();
    assert_eq!(db.applied(), vec![1, 2, 3]);

    write_config(&db, "start_after = \"three\"\n");
    db.run(&["lint"]).code(2).stderr_has("start_after");
}

#[test]
fn a_refused_up_prints_at_most_15_lines_and_json_keeps_every_finding() {
    let db = TestDb::new();
    let mut columns = String::new();
    for i in 0..120 {
        write!(columns, ", c{i} int").unwrap();
    }
    db.exec(&format!("CREATE TABLE wide (id int{columns})"));
    for i in 0..120 {
        db.write_migration(
            &format!("{:04}_rename.up.sql", i + 1),
            &format!("ALTER TABLE wide RENAME COLUMN c{i} TO d{i};\nALTER TABLE wide ALTER COLUMN d{i} TYPE bigint;\n"),
        );
    }
    let refused = db.run(&["up"]);
    refused.code(1);
    let lines = refused.stderr.lines().count();
    assert!(lines <= 15, "{lines} lines:\n{}", refused.stderr);
    refused
        .stderr_has("lint: 240 error(s)")
        .stderr_has("renaming-column")
        .stderr_has("changing-column-type")
        .stderr_has("`pgshift lint`")
        .stderr_has("and 236 more");
    assert!(
        refused.stderr.lines().all(|l| l.chars().count() <= 400),
        "no line of thousands of characters:\n{}",
        refused.stderr
    );

    let json = db.run(&["up", "--json"]);
    json.code(1);
    let event: serde_json::Value = json
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "lint")
        .unwrap_or_else(|| panic!("no lint event:\n{}", json.stderr));
    assert_eq!(event["mode"], "live");
    let findings: usize = event["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["findings"].as_array().unwrap().len())
        .sum();
    assert_eq!(findings, 240);
}

#[test]
fn a_small_table_held_by_an_open_transaction_is_a_warning_naming_the_pid() {
    let db = TestDb::new();
    load_documents(&db, 100);
    write_config(&db, "long_transaction = \"0s\"\n");
    db.write_migration(
        "0001_index_title.up.sql",
        "CREATE INDEX documents_title_idx ON documents (title);\n",
    );
    let holder = Holder::hold(&db, "SELECT count(*) FROM documents");
    let lint = db.run(&["lint", "--json"]).json();
    let f = &lint["result"]["migrations"][0]["findings"][0];
    assert_eq!(f["severity"], "warning", "{f}");
    assert!(
        f["weighed"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", holder.pid)),
        "{f}"
    );
    drop(holder);
    let lint = db.run(&["lint", "--json"]).json();
    assert_eq!(
        lint["result"]["migrations"][0]["findings"][0]["severity"],
        "info"
    );
}

#[test]
fn weighing_a_table_locked_by_another_session_does_not_wait_for_the_lock() {
    let db = TestDb::new();
    load_documents(&db, 100);
    write_config(&db, "long_transaction = \"0s\"\n");
    db.write_migration(
        "0001_index_title.up.sql",
        "CREATE INDEX documents_title_idx ON documents (title);\n",
    );
    // Sizes read through the relation (pg_relation_size) would queue behind this lock.
    let holder = Holder::hold(&db, "LOCK TABLE documents IN ACCESS EXCLUSIVE MODE");
    let mut child = db
        .pgshift()
        .args(["lint", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("lint waited behind the lock of pid {}", holder.pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let run = crate::common::Run::from(child.wait_with_output().unwrap());
    let f = &run.json()["result"]["migrations"][0]["findings"][0];
    assert_eq!(f["severity"], "warning", "{f}");
    assert!(
        f["weighed"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", holder.pid)),
        "{f}"
    );
}
