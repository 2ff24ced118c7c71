//! Backfills against real PostgreSQL: the shipped four on seeded demo-shaped data, dry run, kill -9
//! and resume, one run at a time, pause/cancel from another process, Ctrl-C, `requires`, bad
//! definitions, uuid keys.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::*;

/// A small copy of assets/demo_data.sql: the same shapes, fewer rows.
const SEED: &str = "
INSERT INTO proposals (title, body, status, owner_email, variants)
SELECT 'Proposal ' || g, 'Body ' || g, 'draft', 'o@example.com',
       CASE g % 4
           WHEN 0 THEN jsonb_build_array(jsonb_build_object('label', 'A', 'text', 'Variant A of ' || g))
           WHEN 1 THEN jsonb_build_array('Variant A of ' || g, 'Variant B of ' || g)
           WHEN 2 THEN jsonb_build_object('A', 'Variant A of ' || g)
           ELSE '[]'::jsonb
       END
FROM generate_series(1, 2000) g;
INSERT INTO proposal_templates (name, body)
SELECT 'template-' || g, 'Dear {{customer}}, template ' || g || repeat(' lorem', 1 + g % 8)
FROM generate_series(1, 3000) g;
INSERT INTO sources (name, kind) VALUES ('legacy-import', 'upload');
INSERT INTO documents (proposal_id, title, origin)
SELECT CASE WHEN g % 20 = 0 THEN 2000 + g ELSE 1 + (g % 2000) END, 'Document ' || g,
       (ARRAY['upload', 'crawler', 'api', 'fax'])[1 + g % 4]
FROM generate_series(1, 6000) g;
ANALYZE;
";

/// The demo catalog at 0003 with the seed loaded.
fn seeded() -> TestDb {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    db.exec(SEED);
    db
}

/// A checksum of a table's rows, to prove nothing changed.
fn checksum(db: &TestDb, table: &str) -> String {
    db.scalar(&format!(
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {table} t"
    ))
}

fn checksums(db: &TestDb) -> Vec<String> {
    ["proposals", "proposal_templates", "sources", "documents"]
        .iter()
        .map(|t| checksum(db, t))
        .collect()
}

/// `action|outcome` of the audit rows, oldest first.
fn audit(db: &TestDb) -> Vec<String> {
    db.column("SELECT action || '|' || outcome FROM pgshift_events ORDER BY id")
}

/// The templates' content, without timestamps (they differ between two seeded databases).
fn templates(db: &TestDb) -> String {
    db.scalar("SELECT md5(string_agg(id || ':' || name || ':' || coalesce(content_hash, '-'), '|' ORDER BY id)) FROM proposal_templates")
}

fn run_state(db: &TestDb, name: &str) -> String {
    db.column(&format!(
        "SELECT state FROM pgshift_backfill_runs WHERE name = '{name}' ORDER BY id DESC LIMIT 1"
    ))
    .into_iter()
    .next()
    .unwrap_or_default()
}

fn rows_done(db: &TestDb, name: &str) -> i64 {
    if db.scalar("SELECT to_regclass('pgshift_backfill_runs') IS NOT NULL") == "f" {
        return 0;
    }
    db.column(&format!(
        "SELECT rows_done FROM pgshift_backfill_runs WHERE name = '{name}' ORDER BY id DESC LIMIT 1"
    ))
    .first()
    .map_or(0, |v| v.parse().unwrap())
}

/// A deliberately slow run (fixed small batches with a pause) as a child process.
fn spawn_slow(db: &TestDb, name: &str) -> Child {
    db.pgshift()
        .args([
            "backfill",
            name,
            "--batch-size",
            "40",
            "--pause",
            "40",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_progress(db: &TestDb, name: &str) {
    wait_until(
        Duration::from_secs(30),
        "the backfill to commit a few batches",
        || rows_done(db, name) >= 200,
    );
}

fn finish(child: Child) -> Run {
    Run::from(child.wait_with_output().unwrap())
}

#[test]
fn shipped_backfills_fix_the_seeded_data_in_declared_order() {
    let db = seeded();
    let orphans = db.scalar("SELECT count(*) FROM documents d WHERE NOT EXISTS (SELECT 1 FROM proposals p WHERE p.id = d.proposal_id)");
    assert_eq!(orphans, "300");
    let r = db.run(&["backfill", "--json"]);
    r.ok();
    r.stderr_has("\"event\":\"backfill_started\"")
        .stderr_has("\"event\":\"backfill_progress\"")
        .stderr_has("\"event\":\"backfill_stopped\"");
    let doc = r.json();
    let names: Vec<&str> = doc["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["hashes", "variants", "sources", "cleanup"]);
    assert!(
        doc["result"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["remaining"] == 0),
        "{doc}"
    );

    // hashes: every template hashed, and with the right hash.
    assert_eq!(
        db.scalar("SELECT count(*) FROM proposal_templates WHERE content_hash IS DISTINCT FROM encode(sha256(convert_to(body, 'UTF8')), 'hex')"),
        "0"
    );
    // variants: one shape everywhere, legacy rows converted as documented.
    assert_eq!(
        db.scalar("SELECT count(*) FROM proposals WHERE jsonb_typeof(variants) <> 'array' OR jsonb_path_exists(variants, '$[*] ? (@.type() != \"object\")')"),
        "0"
    );
    assert_eq!(
        db.scalar("SELECT variants::text FROM proposals WHERE title = 'Proposal 1'"),
        r#"[{"text": "Variant A of 1", "label": "A"}, {"text": "Variant B of 1", "label": "B"}]"#
    );
    assert_eq!(
        db.scalar("SELECT variants::text FROM proposals WHERE title = 'Proposal 2'"),
        r#"[{"text": "Variant A of 2", "label": "A"}]"#
    );
    assert_eq!(
        db.scalar("SELECT variants::text FROM proposals WHERE title = 'Proposal 3'"),
        "[]"
    );
    // sources: seeded once, every document linked to its origin's source (fax -> manual).
    assert_eq!(
        db.scalar("SELECT count(*) FROM sources WHERE name LIKE 'default-%'"),
        "4"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM documents d LEFT JOIN sources s ON s.id = d.source_id WHERE s.name IS DISTINCT FROM CASE WHEN d.origin = 'fax' THEN 'default-manual' ELSE 'default-' || d.origin END"),
        "0"
    );
    // cleanup: orphans gone, the rest kept.
    assert_eq!(db.scalar("SELECT count(*) FROM documents"), "5700");
    assert_eq!(db.scalar("SELECT count(*) FROM documents d WHERE NOT EXISTS (SELECT 1 FROM proposals p WHERE p.id = d.proposal_id)"), "0");
    // One done run each, with the counted rows; audited at start and finish.
    assert_eq!(
        db.column(
            "SELECT name || ' ' || state || ' ' || rows_done FROM pgshift_backfill_runs ORDER BY id"
        ),
        vec![
            "hashes done 3000",
            "variants done 1000",
            "sources done 6000",
            "cleanup done 300"
        ]
    );
    let events = audit(&db);
    assert!(
        events.contains(&"backfill hashes start|ok".into()),
        "{events:?}"
    );
    assert!(events.contains(&"backfill cleanup|ok".into()), "{events:?}");

    // Idempotent: a second `backfill` finds nothing to do and changes nothing.
    let before = checksums(&db);
    let again = db.run(&["backfill"]);
    again.ok().stdout_has("sources: up to date");
    assert_eq!(checksums(&db), before);
    assert_eq!(db.scalar("SELECT count(*) FROM pgshift_backfill_runs"), "4");
}

#[test]
fn dry_run_counts_previews_and_changes_nothing() {
    let db = seeded();
    let before = checksums(&db);
    let r = db.run(&["backfill", "--dry-run", "--json"]);
    r.ok();
    assert_eq!(checksums(&db), before, "a dry run must not change any row");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pgshift_backfill_runs"),
        "0",
        "a dry run records no run"
    );
    let doc = r.json();
    let results = doc["result"].as_array().unwrap();
    let cleanup = results.iter().find(|r| r["name"] == "cleanup").unwrap();
    assert_eq!(cleanup["rows_to_do"], 300);
    assert_eq!(cleanup["table_rows_estimate"], 6000);
    assert!(
        cleanup["sample"]["rows_changed"].as_i64().unwrap() > 0,
        "{cleanup}"
    );
    assert!(cleanup["batches"].as_i64().unwrap() >= 2, "{cleanup}");
    let hashes = results.iter().find(|r| r["name"] == "hashes").unwrap();
    assert!(
        hashes["preview_before"][0]["content_hash"].is_null(),
        "{hashes}"
    );
    assert_eq!(
        hashes["preview_after"][0]["content_hash"]
            .as_str()
            .unwrap()
            .len(),
        64,
        "{hashes}"
    );
    // Human output says so too.
    db.run(&["backfill", "hashes", "--dry-run"])
        .ok()
        .stdout_has("rows to do      3,000")
        .stdout_has("dry run: nothing was changed");
    assert_eq!(checksums(&db), before);
}

#[test]
fn kill_9_mid_run_then_resume_equals_an_uninterrupted_run() {
    let reference = seeded();
    reference.run(&["backfill", "hashes"]).ok();
    let expected = templates(&reference);

    let db = seeded();
    let mut child = spawn_slow(&db, "hashes");
    wait_for_progress(&db, "hashes");
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let done_at_kill = rows_done(&db, "hashes");
    assert!(
        done_at_kill > 0 && done_at_kill < 3000,
        "killed too late to test anything: {done_at_kill}"
    );
    // Exactly the committed batches are done: the cursor and the data agree.
    assert_eq!(
        db.scalar("SELECT count(*) FROM proposal_templates WHERE content_hash IS NOT NULL"),
        done_at_kill.to_string()
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM proposal_templates WHERE content_hash IS NOT NULL AND id > (SELECT cursor::int8 FROM pgshift_backfill_runs)"),
        "0"
    );
    let status = db.run(&["backfill", "status", "--json"]);
    status.ok();
    let hashes = status.json()["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "hashes")
        .cloned()
        .unwrap();
    assert_eq!(hashes["state"], "interrupted", "{hashes}");

    db.run(&["backfill", "resume", "hashes"])
        .ok()
        .stderr_has("resuming run #1 after key");
    assert_eq!(templates(&db), expected);
    assert_eq!(
        db.column("SELECT id || ' ' || state || ' ' || rows_done FROM pgshift_backfill_runs"),
        vec!["1 done 3000"],
        "one continuous run, every row counted once"
    );
}

#[test]
fn one_run_at_a_time_and_pause_resume_from_another_process() {
    let db = seeded();
    let child = spawn_slow(&db, "hashes");
    wait_for_progress(&db, "hashes");
    let before = checksum(&db, "documents");
    let second = db.run(&["backfill", "hashes"]);
    second
        .code(4)
        .stderr_has("backfill hashes is already running: pid");
    assert_eq!(db.scalar("SELECT count(*) FROM pgshift_backfill_runs"), "1");
    db.run(&["backfill", "cleanup", "--dry-run"]).ok(); // other backfills are not blocked
    assert_eq!(checksum(&db, "documents"), before);

    db.run(&["backfill", "pause", "hashes"])
        .ok()
        .stdout_has("run #1 paused after key");
    let first = finish(child);
    first.code(1);
    assert_eq!(first.json()["result"][0]["state"], "paused");
    assert_eq!(run_state(&db, "hashes"), "paused");
    let paused_at = rows_done(&db, "hashes");
    assert!(paused_at < 3000);

    db.run(&["backfill", "resume", "hashes"]).ok();
    assert_eq!(run_state(&db, "hashes"), "done");
    assert_eq!(rows_done(&db, "hashes"), 3000);
    assert_eq!(
        db.scalar("SELECT count(*) FROM proposal_templates WHERE content_hash IS NULL"),
        "0"
    );
    db.run(&["backfill", "resume", "hashes"])
        .code(1)
        .stderr_has("no paused, interrupted or failed run to resume");
    let events = audit(&db);
    assert!(
        events.contains(&"backfill hashes pause|ok".into()),
        "{events:?}"
    );
}

#[test]
fn cancel_from_another_process_stops_the_run_and_the_next_starts_afresh() {
    let db = seeded();
    let child = spawn_slow(&db, "sources");
    wait_for_progress(&db, "sources");
    db.run(&["backfill", "cancel", "sources"])
        .ok()
        .stdout_has("cancelled");
    finish(child).code(1);
    assert_eq!(run_state(&db, "sources"), "cancelled");
    db.run(&["backfill", "sources"]).ok();
    assert_eq!(
        db.column("SELECT state FROM pgshift_backfill_runs ORDER BY id"),
        vec!["cancelled", "done"]
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM documents WHERE source_id IS NULL"),
        "0"
    );
    db.run(&["backfill", "cancel", "sources"])
        .code(1)
        .stderr_has("no running, paused or failed run");
}

#[test]
fn ctrl_c_pauses_after_the_current_batch_and_says_how_to_resume() {
    let db = seeded();
    let child = db
        .pgshift()
        .args([
            "backfill",
            "variants",
            "--batch-size",
            "20",
            "--pause",
            "40",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "a few batches", || {
        rows_done(&db, "variants") >= 50
    });
    let ok = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    let r = finish(child);
    r.code(1)
        .stderr_has("pausing after the current batch")
        .stdout_has("resume with `pgshift backfill resume variants`");
    assert_eq!(run_state(&db, "variants"), "paused");
    let cursor: i64 = db
        .scalar("SELECT cursor FROM pgshift_backfill_runs")
        .parse()
        .unwrap();
    // Every row up to the cursor is converted, none after it.
    assert_eq!(
        db.scalar(&format!("SELECT count(*) FROM proposals WHERE id <= {cursor} AND jsonb_typeof(variants) <> 'array'")),
        "0"
    );
    assert_ne!(
        db.scalar(&format!("SELECT count(*) FROM proposals WHERE id > {cursor} AND jsonb_typeof(variants) <> 'array'")),
        "0"
    );
    db.run(&["backfill", "variants"]).ok(); // a plain run continues the paused one
    assert_eq!(
        db.column("SELECT state || ' ' || rows_done FROM pgshift_backfill_runs"),
        vec!["done 1000"]
    );
}

#[test]
fn requires_is_enforced_before_anything_runs() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    db.exec("INSERT INTO proposals (title, owner_email, variants) VALUES ('p', 'o@x', '[\"a\"]')");
    let r = db.run(&["backfill", "hashes"]);
    r.code(1)
        .stderr_has("requires schema revision 0003, but the database is at 0002")
        .stderr_has("pgshift up 0003");
    assert_eq!(db.scalar("SELECT count(*) FROM pgshift_backfill_runs"), "0");
    assert!(
        audit(&db).contains(&"backfill hashes|refused".into()),
        "{:?}",
        audit(&db)
    );
    // variants requires 0002: allowed.
    db.run(&["backfill", "variants"]).ok();
    assert_eq!(
        db.scalar("SELECT variants::text FROM proposals"),
        r#"[{"text": "a", "label": "A"}]"#
    );
}

fn write_backfill(db: &TestDb, name: &str, toml: &str) {
    let dir = db.migrations().join("backfills");
    std::fs::write(dir.join(format!("{name}.toml")), toml).unwrap();
}

fn custom_backfills(db: &TestDb, names: &[&str]) {
    let dir = db.migrations().join("backfills");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ORDER"), names.join("\n")).unwrap();
}

#[test]
fn bad_definitions_are_rejected_with_a_clear_message_before_anything_runs() {
    let db = seeded();
    let before = checksums(&db);
    // Checked from the files alone: every problem listed, exit 5.
    custom_backfills(&db, &["nobounds", "badreq"]);
    write_backfill(
        &db,
        "nobounds",
        "description = \"x\"\ntable = \"documents\"\nkey = \"id\"\nbatch = \"DELETE FROM documents WHERE origin = 'fax'\"\ncount = \"SELECT 1\"\n",
    );
    write_backfill(
        &db,
        "badreq",
        "description = \"x\"\ntable = \"documents\"\nkey = \"id\"\nrequires = \"0042\"\nbatch = \"DELETE FROM documents WHERE id > $1 AND id <= $2\"\ncount = \"SELECT 1\"\n",
    );
    db.run(&["backfill", "badreq"])
        .code(5)
        .stderr_has("nobounds.toml: batch statement must use $1 (exclusive lower key bound) and $2")
        .stderr_has(
            "badreq.toml: requires = \"0042\": revision 0042 is not in the migrations catalog",
        )
        .stderr_has("nothing was run");

    // Checked against the database: unknown table, unknown or unindexed key, bad SQL.
    custom_backfills(&db, &["notable", "nokey", "unindexed", "badsql"]);
    let def = |table: &str, key: &str, batch: &str| {
        format!(
            "description = \"x\"\ntable = \"{table}\"\nkey = \"{key}\"\nbatch = \"{batch}\"\ncount = \"SELECT 1\"\n"
        )
    };
    write_backfill(
        &db,
        "notable",
        &def(
            "documentz",
            "id",
            "DELETE FROM documentz WHERE id > $1 AND id <= $2",
        ),
    );
    write_backfill(
        &db,
        "nokey",
        &def(
            "documents",
            "uid",
            "DELETE FROM documents WHERE id > $1 AND id <= $2",
        ),
    );
    write_backfill(
        &db,
        "unindexed",
        &def(
            "documents",
            "source_id",
            "DELETE FROM documents WHERE source_id > $1 AND source_id <= $2",
        ),
    );
    write_backfill(
        &db,
        "badsql",
        &def(
            "documents",
            "id",
            "DELETE FROM documents WHERE idd > $1 AND id <= $2",
        ),
    );
    db.run(&["backfill", "notable"])
        .code(5)
        .stderr_has("table documentz does not exist");
    db.run(&["backfill", "nokey"])
        .code(5)
        .stderr_has("table documents has no column \"uid\"");
    db.run(&["backfill", "unindexed"])
        .code(5)
        .stderr_has("key column source_id is nullable");
    db.run(&["backfill", "badsql"])
        .code(5)
        .stderr_has("the batch statement does not prepare: column \"idd\" does not exist (42703)");
    db.run(&["backfill", "--dry-run"])
        .code(5)
        .stderr_has("table documentz does not exist");
    db.run(&["backfill", "ghost"])
        .code(2)
        .stderr_has("no backfill named \"ghost\"");
    assert_eq!(checksums(&db), before, "nothing may run");
}

#[test]
fn unindexed_key_is_rejected() {
    let db = seeded();
    custom_backfills(&db, &["unindexed"]);
    db.exec("CREATE TABLE counters (n int8 NOT NULL, v int)");
    write_backfill(
        &db,
        "unindexed",
        "description = \"x\"\ntable = \"counters\"\nkey = \"n\"\nbatch = \"UPDATE counters SET v = 1 WHERE n > $1 AND n <= $2\"\ncount = \"SELECT 1\"\n",
    );
    db.run(&["backfill", "unindexed"])
        .code(5)
        .stderr_has("key column n is not the leading column of a valid btree index");
}

#[test]
fn uuid_keys_batch_in_key_order() {
    let db = TestDb::with_demo_migrations();
    db.exec("CREATE TABLE events (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), seen int); INSERT INTO events (seen) SELECT NULL FROM generate_series(1, 500)");
    custom_backfills(&db, &["seen"]);
    write_backfill(
        &db,
        "seen",
        "description = \"mark events\"\ntable = \"events\"\nkey = \"id\"\nbatch = \"UPDATE events SET seen = 1 WHERE id > $1 AND id <= $2 AND seen IS NULL\"\ncount = \"SELECT count(*) FROM events WHERE seen IS NULL\"\n",
    );
    let r = db.run(&["backfill", "seen", "--batch-size", "7", "--json"]);
    r.ok();
    assert_eq!(r.json()["result"][0]["batches"], 72);
    assert_eq!(
        db.scalar("SELECT count(*) FROM events WHERE seen IS NULL"),
        "0"
    );
    assert_eq!(
        db.scalar("SELECT cursor = (SELECT id::text FROM events ORDER BY id DESC LIMIT 1) FROM pgshift_backfill_runs"),
        "t"
    );
}

#[test]
fn a_failing_batch_keeps_committed_batches_and_resumes_after_the_fix() {
    let db = TestDb::with_demo_migrations();
    db.exec(
        "CREATE TABLE readings (id int4 PRIMARY KEY, divisor int NOT NULL, ratio numeric);
         INSERT INTO readings SELECT g, CASE WHEN g = 150 THEN 0 ELSE 2 END FROM generate_series(1, 400) g",
    );
    custom_backfills(&db, &["ratio"]);
    write_backfill(
        &db,
        "ratio",
        "description = \"ratios\"\ntable = \"readings\"\nkey = \"id\"\nbatch = \"UPDATE readings SET ratio = 10 / divisor WHERE id > $1 AND id <= $2 AND ratio IS NULL\"\ncount = \"SELECT count(*) FROM readings WHERE ratio IS NULL\"\n",
    );
    let r = db.run(&["backfill", "ratio", "--batch-size", "50"]);
    r.code(1)
        .stderr_has("backfill ratio failed on the batch after key 100")
        .stderr_has("division by zero (22012)")
        .stderr_has("pgshift backfill resume ratio");
    assert_eq!(
        db.scalar("SELECT state || ' ' || cursor || ' ' || rows_done FROM pgshift_backfill_runs"),
        "failed 100 100"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM readings WHERE ratio IS NOT NULL"),
        "100"
    );
    let status = db.run(&["backfill", "status", "--json"]);
    let row = &status.json()["result"][0];
    assert_eq!(row["state"], "failed");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("division by zero"),
        "{row}"
    );
    assert!(audit(&db).contains(&"backfill ratio|failed".into()));

    db.exec("UPDATE readings SET divisor = 5 WHERE id = 150");
    db.run(&["backfill", "resume", "ratio"])
        .ok()
        .stderr_has("resuming run #1 after key 100");
    assert_eq!(
        db.scalar("SELECT state || ' ' || rows_done FROM pgshift_backfill_runs"),
        "done 400"
    );
    assert_eq!(db.scalar("SELECT ratio FROM readings WHERE id = 150"), "2");
}

#[test]
fn lock_timeouts_are_retried_then_reported_with_the_run_resumable() {
    let db = seeded();
    let holder = Holder::hold(
        &db,
        "SELECT 1 FROM proposal_templates WHERE id = 10 FOR UPDATE",
    );
    let r = db.run(&[
        "backfill",
        "hashes",
        "--lock-timeout",
        "100ms",
        "--retries",
        "3",
        "--json",
    ]);
    r.code(4)
        .stderr_has("\"event\":\"backfill_retry\"")
        .stderr_has("55P03")
        .stderr_has(&format!(
            "blocked by pid {} (user postgres, test blocker",
            holder.pid
        ));
    assert_eq!(r.json()["error"]["kind"], "backfill_blocked");
    assert_eq!(run_state(&db, "hashes"), "failed");
    assert_eq!(
        db.scalar("SELECT count(*) FROM proposal_templates WHERE content_hash IS NOT NULL"),
        "0"
    );
    drop(holder);
    db.run(&["backfill", "resume", "hashes"]).ok();
    assert_eq!(
        db.scalar(
            "SELECT state || ' ' || rows_done || ' ' || (retries >= 2) FROM pgshift_backfill_runs"
        ),
        "done 3000 true"
    );
}

/// The retry engine is shared with migration steps: a batch waiting on a lock names its blocker
/// on each retry and goes on once the blocker ends, as a blocked step does.
#[test]
fn a_blocked_batch_names_its_blocker_and_completes_once_it_ends() {
    let db = seeded();
    let blocker = Holder::hold(
        &db,
        "SELECT 1 FROM proposal_templates WHERE id = 10 FOR UPDATE",
    );
    let mut child = db
        .pgshift()
        .args([
            "backfill",
            "hashes",
            "--lock-timeout",
            "100ms",
            "--retries",
            "50",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = StderrLog::follow(child.stderr.take().unwrap());
    wait_until(
        Duration::from_secs(20),
        "the batch to be retried naming the blocker",
        || {
            let text = stderr.text();
            text.contains("batch attempt 1/50 failed")
                && text.contains("(55P03)")
                && text.contains(&format!("blocked by pid {}", blocker.pid))
        },
    );
    drop(blocker);
    assert!(child.wait().unwrap().success(), "{}", stderr.text());
    assert_eq!(
        db.scalar(
            "SELECT state || ' ' || rows_done || ' ' || (retries >= 1) FROM pgshift_backfill_runs"
        ),
        "done 3000 true"
    );
}

#[test]
fn rows_written_behind_the_cursor_are_reported_after_the_run() {
    let db = seeded();
    let child = spawn_slow(&db, "hashes");
    wait_for_progress(&db, "hashes");
    db.exec("UPDATE proposal_templates SET content_hash = NULL WHERE id = 1");
    let r = finish(child);
    r.ok().stderr_has("count query still finds 1 rows");
    assert_eq!(r.json()["result"][0]["remaining"], 1);
    db.run(&["backfill", "hashes"]).ok();
    assert_eq!(
        db.column("SELECT state || ' ' || rows_done FROM pgshift_backfill_runs ORDER BY id"),
        vec!["done 3000", "done 1"]
    );
}

#[test]
fn two_backfills_of_one_table_never_run_at_once() {
    let db = seeded();
    let dir = db.migrations().join("backfills");
    std::fs::write(
        dir.join("names.toml"),
        r#"description = "Template names in capitals, on the same table as hashes"
table = "public.proposal_templates"
key = "id"
batch = "UPDATE proposal_templates SET name = upper(name) WHERE id > $1 AND id <= $2 AND name <> upper(name)"
count = "SELECT count(*) FROM proposal_templates WHERE name <> upper(name)"
"#,
    )
    .unwrap();
    let order = std::fs::read_to_string(dir.join("ORDER")).unwrap();
    std::fs::write(dir.join("ORDER"), format!("{order}names\n")).unwrap();

    // Slower than spawn_slow (about 300 batches): it must outlast two refusals of 2 s grace each.
    let child = db
        .pgshift()
        .args(["backfill", "hashes", "--batch-size", "10", "--pause", "40"])
        .args(["--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_progress(&db, "hashes");
    // `public.proposal_templates` and `proposal_templates` are one table: refused, holder named.
    db.run(&["backfill", "names"])
        .code(4)
        .stderr_has("backfill names not started: another backfill is writing to table public.proposal_templates: pid")
        .stderr_has("pgshift backfill hashes");
    let refused = db.run(&["backfill", "names", "--json"]);
    refused.code(4);
    assert_eq!(refused.json()["error"]["kind"], "backfill_table_busy");
    assert_eq!(
        db.scalar("SELECT count(*) FROM proposal_templates WHERE name <> lower(name)"),
        "0",
        "the refused backfill changed nothing"
    );
    db.run(&["backfill", "cleanup", "--dry-run"]).ok(); // other tables are not blocked

    db.run(&["backfill", "pause", "hashes"]).ok();
    finish(child).code(1);
    // Once the table is free, the second one runs.
    db.run(&["backfill", "names"]).ok();
    assert_eq!(run_state(&db, "names"), "done");
    assert_eq!(
        db.scalar("SELECT count(*) FROM proposal_templates WHERE name <> upper(name)"),
        "0"
    );
}

/// Issue 12, defect 4: a dry run on a locked table waited without limit (prepare and count ran
/// without `lock_timeout`). Now every statement is bounded: it ends at once with who holds the
/// table, exit 4, and leaves no session waiting on the server.
#[test]
fn a_dry_run_on_a_locked_table_stops_at_lock_timeout_naming_the_holder() {
    let db = seeded();
    let holder = Holder::hold(
        &db,
        "LOCK TABLE proposal_templates IN ACCESS EXCLUSIVE MODE",
    );
    let started = std::time::Instant::now();
    let r = db.run(&["backfill", "hashes", "--dry-run", "--lock-timeout", "300ms"]);
    r.code(4)
        .stderr_has("lock_timeout (55P03)")
        .stderr_has(&format!("blocked by pid {}", holder.pid))
        .stderr_has("Nothing was changed");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'pgshift backfill dry-run%'"
        ),
        "0"
    );
    drop(holder);
    db.run(&["backfill", "hashes", "--dry-run"]).ok();
}
