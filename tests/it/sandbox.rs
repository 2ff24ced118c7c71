//! The sandbox: a private cluster with the demo, started when nothing is configured.

use crate::common::*;

fn sandbox_cmd(dir: &std::path::Path, args: &[&str]) -> Run {
    Run::from(
        pgshift_bare(dir)
            .args(args)
            .arg("--migrations")
            .arg(repo().join("migrations"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    )
}

/// Stops the test's sandbox even when an assertion fails half-way.
struct StopOnDrop<'a>(&'a std::path::Path);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        sandbox_cmd(self.0, &["sandbox", "stop"]);
    }
}

#[test]
fn nothing_configured_runs_the_demo_sandbox_and_stops_it_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let _stop = StopOnDrop(dir.path());
    // No subcommand and no terminal: the status of the SANDBOX is printed.
    let r = sandbox_cmd(dir.path(), &[]);
    r.ok()
        .stderr_has("SANDBOX")
        .stdout_has("current  0003_add_target_schema_tables");
    // Piped: the revisions pane's plain markers (P pending), then the name and the word.
    r.stdout_has("P 0004")
        .stdout_has("add_ingestion_run_errors             pending");
    let info = sandbox_cmd(dir.path(), &["sandbox", "url", "--json"])
        .ok()
        .json();
    assert_eq!(
        info["result"]["running"], false,
        "the sandbox we started is stopped on exit"
    );

    // `sandbox start` keeps it running, with the demo data loaded once.
    sandbox_cmd(dir.path(), &["sandbox", "start"]).ok();
    let j = sandbox_cmd(dir.path(), &["--target", "sandbox", "status", "--json"])
        .ok()
        .json();
    assert_eq!(j["result"]["environment"], "sandbox");
    assert_eq!(j["result"]["current"], 3);
    let url = sandbox_cmd(dir.path(), &["sandbox", "url"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let conn = pgshift::config::ConnInfo::parse(&url).unwrap();
    let templates = block_on(async {
        let (c, connection) = conn.pg.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let row = c
            .query_one(
                "SELECT count(*) FROM proposal_templates WHERE content_hash IS NULL",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0)
    });
    assert_eq!(templates, 50_000);
    sandbox_cmd(dir.path(), &["sandbox", "stop"])
        .ok()
        .stdout_has("sandbox stopped");
    assert_eq!(
        sandbox_cmd(dir.path(), &["sandbox", "url", "--json"]).json()["result"]["running"],
        false
    );
}

#[test]
fn configured_but_unreachable_database_is_never_replaced_by_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(
        pgshift_bare(dir.path())
            .env("DATABASE_URL", "postgres://app@127.0.0.1:1/app")
            .arg("--migrations")
            .arg(repo().join("migrations"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    r.code(3)
        .stderr_has("cannot connect to postgres://app@127.0.0.1:1/app");
    assert!(!r.stderr.contains("SANDBOX"));
    assert!(
        !dir.path().join("state/sandbox").exists(),
        "no sandbox was created"
    );
}

#[test]
fn sandbox_refuses_a_data_dir_it_did_not_create() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("state/sandbox/data")).unwrap();
    std::fs::write(dir.path().join("state/sandbox/data/PG_VERSION"), "15\n").unwrap();
    sandbox_cmd(dir.path(), &["sandbox", "start"])
        .code(1)
        .stderr_has("did not create");
    sandbox_cmd(dir.path(), &["sandbox", "reset"])
        .code(1)
        .stderr_has("no pgshift marker");
    assert!(
        dir.path().join("state/sandbox/data/PG_VERSION").is_file(),
        "untouched"
    );
}

/// Issue 12, defect 7: pgshift with nothing configured, run from a directory without
/// `migrations/`, stops before creating a cluster and says what to do (it left a running cluster
/// with no demo data and no hint).
#[test]
fn a_sandbox_from_a_directory_without_migrations_stops_cleanly_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let r = Run::from(
        pgshift_bare(dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    r.code(2)
        .stderr_has("the sandbox demo needs the demo catalog")
        .stderr_has("pass --migrations DIR")
        .stderr_has("Nothing was started");
    let state = dir.path().join("state");
    assert!(
        !state.join("sandbox").exists(),
        "no cluster was created: {:?}",
        std::fs::read_dir(&state).map(|d| d.count())
    );
}
