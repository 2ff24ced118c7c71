//! Fleets against real PostgreSQL: 30 databases cloned from one prepared template on the local
//! server (plus an unreachable target), status rows and exit codes, rollouts with canaries,
//! failure limits and a runner lock held elsewhere.

use std::process::Stdio;

use crate::common::{Holder, Run, TestDb, pgshift_bare};

/// The scale: 30+ databases (plus the unreachable one).
const SIZE: usize = 30;
/// Enough for tests about one behaviour (every DROP DATABASE costs a checkpoint).
const SMALL: usize = 13;
/// Nothing listens on port 1: connection refused at once.
const GONE: &str = "postgres://postgres@127.0.0.1:1/gone";

/// `n` databases at revision 0001 of a three-step catalog, a config naming them `t00`, `t01`...
/// in groups `f` (the clones) and `fg` (the clones and an unreachable target `zz_gone`).
struct Fleet {
    template: TestDb,
    dbs: Vec<TestDb>,
}

impl Fleet {
    fn new(n: usize) -> Fleet {
        let template = TestDb::new();
        template.write_migration("0001_one.up.sql", "CREATE TABLE one (id int);");
        template.write_migration("0002_two.up.sql", "CREATE TABLE two (id int);");
        template.write_migration("0003_three.up.sql", "CREATE TABLE three (id int);");
        template.run(&["up", "0001"]).ok();
        // The clones start with no audit rows of their own.
        template.exec("TRUNCATE pgshift_events");
        let dbs = TestDb::clones(&template, n);
        let f = Fleet { template, dbs };
        f.write_config("");
        f
    }

    fn config_path(&self) -> std::path::PathBuf {
        self.template.dir.path().join("fleet.toml")
    }

    /// The targets, plus `extra` TOML (other targets, groups).
    fn write_config(&self, extra: &str) {
        let mut text = String::new();
        for (i, db) in self.dbs.iter().enumerate() {
            text.push_str(&format!(
                "[targets.t{i:02}]\nurl = \"{}\"\ngroups = [\"f\", \"fg\"]\nmigrations = \"{}\"\n",
                db.url,
                self.template.migrations().display()
            ));
        }
        text.push_str(&format!(
            "[targets.zz_gone]\nurl = \"{GONE}\"\ngroups = [\"fg\"]\nmigrations = \"{}\"\n{extra}",
            self.template.migrations().display()
        ));
        std::fs::write(self.config_path(), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(
            pgshift_bare(self.template.dir.path())
                .arg("--config")
                .arg(self.config_path())
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    }

    fn applied(&self) -> Vec<Vec<u32>> {
        self.dbs.iter().map(TestDb::applied).collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        TestDb::drop_all(std::mem::take(&mut self.dbs));
    }
}

/// The rows of a JSON result, by target name.
fn rows(r: &Run, key: &str) -> Vec<serde_json::Value> {
    r.json()["result"][key].as_array().unwrap().clone()
}

fn row<'a>(rows: &'a [serde_json::Value], target: &str) -> &'a serde_json::Value {
    rows.iter().find(|r| r["target"] == target).unwrap()
}

fn count(rows: &[serde_json::Value], state: &str) -> usize {
    rows.iter().filter(|r| r["state"] == state).count()
}

#[test]
fn fleet_status_has_a_row_per_target_and_exits_with_the_worst() {
    let f = Fleet::new(SIZE);
    f.dbs[4].exec("UPDATE refinery_schema_history SET checksum = '1' WHERE version = 1");
    let r = f.run(&["fleet", "status", "fg", "--json", "--parallel", "8"]);
    r.code(3);
    let rs = rows(&r, "targets");
    assert_eq!(rs.len(), SIZE + 1);
    assert_eq!(row(&rs, "zz_gone")["state"], "unreachable");
    assert_eq!(row(&rs, "zz_gone")["exit_code"], 3);
    assert_eq!(row(&rs, "t04")["state"], "drift");
    assert_eq!(row(&rs, "t04")["exit_code"], 5);
    let t0 = row(&rs, "t00");
    assert_eq!(
        (t0["state"].clone(), t0["current"].clone()),
        ("pending".into(), 1.into())
    );
    assert_eq!(t0["pending"], serde_json::json!([2, 3]));
    assert_eq!(count(&rs, "pending"), SIZE - 1);
    // Without the unreachable target the drift is the worst; without drift, pending is 0 or 10.
    f.run(&["fleet", "status", "f"])
        .code(5)
        .stdout_has("t04")
        .stdout_has("DRIFT");
    f.run(&["fleet", "status", "f", "--check"]).code(5);
    let human = f.run(&["fleet", "status", "fg"]);
    human
        .code(3)
        .stdout_has("zz_gone")
        .stdout_has("UNREACHABLE")
        .stdout_has("31 targets: 29 pending, 1 DRIFT, 1 UNREACHABLE");
}

#[test]
fn fleet_status_check_exits_10_while_pending_and_0_at_head() {
    let f = Fleet::new(SMALL);
    f.run(&["fleet", "status", "f"]).ok();
    f.run(&["fleet", "status", "f", "--check"]).code(10);
    f.run(&["fleet", "up", "f"]).ok();
    f.run(&["fleet", "status", "f", "--check"]).ok();
    f.run(&["fleet", "status", "nope"])
        .code(2)
        .stderr_has("known groups: f, fg");
}

#[test]
fn fleet_up_runs_the_canary_then_the_rest_each_audited_with_the_run_id() {
    let f = Fleet::new(SIZE);
    let r = f.run(&[
        "fleet",
        "up",
        "f",
        "--json",
        "--parallel",
        "8",
        "--canary",
        "t07",
    ]);
    r.ok();
    let doc = r.json();
    let run_id = doc["result"]["run_id"].as_str().unwrap().to_string();
    let ts = rows(&r, "targets");
    assert_eq!(count(&ts, "done"), SIZE);
    assert_eq!(row(&ts, "t07")["canary"], true);
    assert!(f.applied().iter().all(|a| a == &vec![1, 2, 3]));
    // The canary ran alone, before any other target started.
    let canary_done = r
        .stderr
        .find("\"target\":\"t07\",\"canary\":true,\"state\":{\"state\":\"done\"")
        .unwrap();
    let first_other = r
        .stderr
        .find("\"target\":\"t00\",\"canary\":false,\"state\":{\"state\":\"starting\"")
        .unwrap();
    assert!(canary_done < first_other, "{}", r.stderr);
    for db in &f.dbs {
        assert_eq!(
            db.column("SELECT detail->>'fleet_run' || ' ' || (detail->>'via') FROM pgshift_events WHERE action = 'up' AND outcome = 'ok'"),
            vec![format!("{run_id} fleet")]
        );
    }
    let h = f.run(&["fleet", "history", "--json"]);
    assert_eq!(h.json()["result"][0]["run_id"], run_id.as_str());
    assert_eq!(h.json()["result"][0]["state"], "finished");
    f.run(&["fleet", "history", &run_id]).ok().stdout_has("t29");
    // A second rollout finds nothing to do and runs nothing.
    let again = f.run(&["fleet", "up", "f", "--json"]);
    again.ok();
    assert_eq!(count(&rows(&again, "targets"), "up_to_date"), SIZE);
}

#[test]
fn failing_canary_stops_the_rollout_and_leaves_the_others_untouched() {
    let f = Fleet::new(SIZE);
    // 0002 cannot run on t03: its table exists there already (42P07).
    f.dbs[3].exec("CREATE TABLE two (id int)");
    let r = f.run(&["fleet", "up", "f", "--canary", "t03", "--json"]);
    r.code(1);
    let ts = rows(&r, "targets");
    assert_eq!(row(&ts, "t03")["state"], "failed");
    assert!(row(&ts, "t03")["error"].as_str().unwrap().contains("42P07"));
    assert_eq!(count(&ts, "skipped"), SIZE - 1);
    assert_eq!(r.json()["result"]["stopped"], "a canary failed");
    for (i, db) in f.dbs.iter().enumerate() {
        assert_eq!(db.applied(), vec![1], "t{i:02}");
        let events = db.events();
        if i == 3 {
            assert_eq!(events, vec![("up".into(), "failed".into())]);
        } else {
            assert!(events.is_empty(), "t{i:02} was touched: {events:?}");
        }
    }
}

#[test]
fn max_failures_stops_launching_after_k_failures() {
    let f = Fleet::new(SIZE);
    for i in [2, 5, 8, 11, 14] {
        f.dbs[i].exec("CREATE TABLE two (id int)");
    }
    // One at a time, in name order: t00..t05 run (two fail: t02, t05), then launching stops.
    let r = f.run(&[
        "fleet",
        "up",
        "f",
        "--canary-count",
        "0",
        "--parallel",
        "1",
        "--max-failures",
        "2",
        "--json",
    ]);
    r.code(1);
    let ts = rows(&r, "targets");
    assert_eq!(count(&ts, "failed"), 2);
    assert_eq!(count(&ts, "done"), 4);
    assert_eq!(count(&ts, "skipped"), SIZE - 6);
    assert_eq!(
        r.json()["result"]["stopped"],
        "the failure limit was reached"
    );
    let applied = f.applied();
    assert_eq!(applied[4], vec![1, 2, 3]);
    assert_eq!(applied[5], vec![1]);
    assert!(applied[6..].iter().all(|a| a == &vec![1]), "{applied:?}");
    // The human summary names the failures and the stop.
    let again = f.run(&[
        "fleet",
        "up",
        "f",
        "--canary-count",
        "0",
        "--parallel",
        "1",
        "--max-failures",
        "3",
    ]);
    again
        .code(1)
        .stdout_has("stopped launching")
        .stdout_has("t08: ")
        .stdout_has("42P07");
}

#[test]
fn a_target_locked_by_another_runner_is_waited_for_then_reported_with_the_holder() {
    let f = Fleet::new(SMALL);
    let holder = Holder::hold(
        &f.dbs[9],
        "SELECT pg_advisory_lock(hashtextextended('pgshift:runner:' || current_database(), 0))",
    );
    let r = f.run(&[
        "fleet",
        "up",
        "fg",
        "--lock-wait",
        "1s",
        "--max-failures",
        "5",
        "--canary-count",
        "0",
    ]);
    r.code(3)
        .stderr_has(&format!("t09: lock wait pid {}", holder.pid))
        .stdout_has("t09: another pgshift holds the runner lock")
        .stdout_has("zz_gone: cannot connect");
    // fleet status names the holder on that target's row.
    let st = f.run(&["fleet", "status", "f", "--json"]);
    assert_eq!(
        row(&rows(&st, "targets"), "t09")["runner_lock"]["pid"],
        holder.pid
    );
    let applied = f.applied();
    assert_eq!(applied[9], vec![1]);
    assert_eq!(
        applied.iter().filter(|a| *a == &vec![1, 2, 3]).count(),
        SMALL - 1
    );
    drop(holder);
    // Only the lock holder left (the unreachable target aside): exit 4 is the worst row.
    let h2 = Holder::hold(
        &f.dbs[9],
        "SELECT pg_advisory_lock(hashtextextended('pgshift:runner:' || current_database(), 0))",
    );
    f.run(&["fleet", "up", "f", "--lock-wait", "1s"]).code(4);
    drop(h2);
    f.run(&["fleet", "up", "f"]).ok();
    assert_eq!(f.dbs[9].applied(), vec![1, 2, 3]);
}

#[test]
fn a_production_fleet_needs_yes_without_a_terminal_and_nothing_runs() {
    let f = Fleet::new(SMALL);
    f.write_config("[targets.zz_gone.x]\n");
    f.run(&["fleet", "status"])
        .code(2)
        .stderr_has("unknown field");
    f.write_config("");
    // t00 is production through a group table listing it, via its own environment.
    let text = std::fs::read_to_string(f.config_path()).unwrap().replacen(
        "groups = [\"f\", \"fg\"]\n",
        "groups = [\"f\", \"fg\"]\nenvironment = \"production\"\n",
        1,
    );
    std::fs::write(f.config_path(), text).unwrap();
    f.run(&["fleet", "up", "f"])
        .code(2)
        .stderr_has("1 PRODUCTION target(s)")
        .stderr_has("--yes");
    assert!(f.applied().iter().all(|a| a == &vec![1]));
    f.run(&["fleet", "up", "f", "--target", "t00"]).code(2);
}

#[test]
fn a_group_generated_from_a_catalog_query_needs_no_entry_per_tenant() {
    let f = Fleet::new(SMALL);
    let catalog = TestDb::new();
    catalog.exec("CREATE TABLE tenants (name text, url text)");
    for (i, db) in f.dbs.iter().enumerate().take(12) {
        catalog.exec(&format!(
            "INSERT INTO tenants VALUES ('tenant{i:02}', '{}')",
            db.url
        ));
    }
    let group = format!(
        "[targets.catalog]\nurl = \"{}\"\n[groups.tenants]\ncatalog = \"catalog\"\nquery = \"SELECT name, url FROM tenants ORDER BY name\"\nmigrations = \"{}\"\nenvironment = \"staging\"\n",
        catalog.url,
        f.template.migrations().display()
    );
    f.write_config(&group);
    let r = f.run(&["fleet", "status", "tenants", "--json"]);
    r.ok();
    let rs = rows(&r, "targets");
    assert_eq!(rs.len(), 12);
    assert_eq!(row(&rs, "tenant05")["environment"], "staging");
    f.run(&["fleet", "up", "tenants", "0002"]).ok();
    assert_eq!(f.dbs[11].applied(), vec![1, 2]);
    assert_eq!(f.dbs[12].applied(), vec![1]);
    // A URL with a password is refused, and the password is never printed.
    catalog.exec("INSERT INTO tenants VALUES ('leaky', 'postgres://app:s3cret@127.0.0.1/x')");
    let bad = f.run(&["fleet", "status", "tenants"]);
    bad.code(2).stderr_has("carries a password");
    assert!(!bad.stderr.contains("s3cret") && !bad.stdout.contains("s3cret"));
}

#[test]
fn ctrl_c_stops_launching_and_running_targets_finish_their_step() {
    use crate::common::{StderrLog, wait_until};
    let f = Fleet::new(SMALL);
    f.template.write_migration(
        "0002_two.up.sql",
        "SELECT pg_sleep(1.5);\nCREATE TABLE two (id int);",
    );
    let mut child = pgshift_bare(f.template.dir.path())
        .arg("--config")
        .arg(f.config_path())
        .args([
            "fleet",
            "up",
            "f",
            "--canary-count",
            "0",
            "--parallel",
            "2",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = StderrLog::follow(child.stderr.take().unwrap());
    wait_until(
        std::time::Duration::from_secs(30),
        "two targets running 0002",
        || {
            log.text()
                .matches("\"state\":\"running\",\"step\":1")
                .count()
                >= 2
        },
    );
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: log.text(),
    };
    r.code(1);
    let ts = rows(&r, "targets");
    assert_eq!(count(&ts, "interrupted"), 2, "{ts:?}");
    assert_eq!(count(&ts, "skipped"), SMALL - 2);
    assert_eq!(r.json()["result"]["stopped"], "stopped by the operator");
    let applied = f.applied();
    // The two running targets finished 0002 (their step) and started nothing more.
    assert_eq!(
        applied.iter().filter(|a| *a == &vec![1, 2]).count(),
        2,
        "{applied:?}"
    );
    assert_eq!(applied.iter().filter(|a| *a == &vec![1]).count(), SMALL - 2);
}

#[test]
fn fleet_backfill_runs_the_normal_backfill_on_every_target_tagged_with_the_run() {
    let f = Fleet::new(SMALL);
    f.run(&["fleet", "up", "f"]).ok();
    for db in &f.dbs {
        db.exec(
            "ALTER TABLE three ADD COLUMN v int; ALTER TABLE three ADD PRIMARY KEY (id);
             INSERT INTO three SELECT g FROM generate_series(1, 300) g",
        );
    }
    crate::common::write_fill_backfill(&f.template.migrations());
    f.run(&["fleet", "backfill", "nope", "f"])
        .code(2)
        .stderr_has("no target can run backfill \"nope\"");
    let r = f.run(&[
        "fleet",
        "backfill",
        "fill",
        "f",
        "--parallel",
        "4",
        "--json",
    ]);
    r.ok();
    let ts = rows(&r, "targets");
    assert_eq!(count(&ts, "filled"), SMALL, "{ts:?}");
    let run_id = r.json()["result"]["run_id"].as_str().unwrap().to_string();
    for db in &f.dbs {
        assert_eq!(db.scalar("SELECT count(*) FROM three WHERE v IS NULL"), "0");
        assert_eq!(
            db.column("SELECT DISTINCT detail->>'fleet_run' FROM pgshift_events WHERE action LIKE 'backfill fill%'"),
            vec![run_id.clone()]
        );
    }
    // Again: every target finds nothing to do.
    let again = f.run(&["fleet", "backfill", "fill", "f", "--json"]);
    again.ok();
    assert_eq!(count(&rows(&again, "targets"), "up_to_date"), SMALL);
}
