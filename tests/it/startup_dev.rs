//! `DEV_CREATE_TABLES` leaves an audit row whatever happens: created, failed, or refused.

use crate::common::*;

fn startup_dev(db: &TestDb, environment: &str) -> Run {
    let cfg = db.dir.path().join("pgshift.toml");
    std::fs::write(
        &cfg,
        format!(
            "[targets.main]\nurl = \"{}\"\nenvironment = \"{environment}\"\nmigrations = \"{}\"\nlock_wait = \"1s\"\n",
            db.url,
            db.migrations().display()
        ),
    )
    .unwrap();
    run_bare(
        db,
        &["--config", &cfg.display().to_string(), "startup"],
        &[("DEV_CREATE_TABLES", "true")],
    )
}

#[test]
fn dev_create_tables_that_fails_is_audited_as_failed_with_its_error() {
    let db = TestDb::new();
    db.write_migration("0001_ok.up.sql", "CREATE TABLE t1 (id int);");
    db.write_migration(
        "0002_broken.up.sql",
        "ALTER TABLE missing_table ADD COLUMN y int;",
    );
    startup_dev(&db, "development")
        .ok()
        .stderr_has("DEV_CREATE_TABLES");
    assert_eq!(db.applied(), vec![1], "the direct creation rolled back");
    let events = db.events();
    assert!(
        events.contains(&("dev_create_tables".into(), "failed".into())),
        "{events:?}"
    );
    let error = db.scalar(
        "SELECT error FROM pgshift_events WHERE action = 'dev_create_tables' ORDER BY id DESC LIMIT 1",
    );
    assert!(
        error.contains("missing_table") && error.contains("rolled back"),
        "{error}"
    );
}

#[test]
fn dev_create_tables_on_production_is_audited_as_refused() {
    let db = TestDb::new();
    db.write_migration(
        "0001_broken.up.sql",
        "ALTER TABLE missing_table ADD COLUMN y int;",
    );
    startup_dev(&db, "production")
        .ok()
        .stderr_has("refused on production");
    let events = db.events();
    assert!(
        events.contains(&("dev_create_tables".into(), "refused".into())),
        "{events:?}"
    );
}

#[test]
fn dev_create_tables_that_works_is_audited_once_as_ok() {
    let db = TestDb::new();
    db.write_migration("0001_ok.up.sql", "CREATE TABLE t1 (id int);");
    db.write_migration("0001_ok.down.sql", "DROP TABLE t1;");
    // pgshift's tables exist (created under the lock by an earlier run); history is empty.
    db.run(&["up"]).ok();
    db.run(&["down", "--yes"]).ok();
    // Another runner holds the lock: the migration cannot run, the direct creation can.
    let holder = Holder::hold(
        &db,
        "SELECT pg_advisory_lock(hashtextextended('pgshift:runner:' || current_database(), 0))",
    );
    startup_dev(&db, "development")
        .ok()
        .stdout_has("created the schema DIRECTLY");
    drop(holder);
    assert_eq!(db.applied(), vec![1]);
    let dev: Vec<_> = db
        .events()
        .into_iter()
        .filter(|(a, _)| a == "dev_create_tables")
        .collect();
    assert_eq!(dev, vec![("dev_create_tables".into(), "ok".into())]);
    assert_eq!(
        db.events().len(),
        4,
        "up, down, the failed startup, dev_create_tables"
    );
}
