//! How pgshift leaves its connections: an idle one closes cleanly (the server log stays quiet), a
//! busy one is cut so its server stops the statement (a dead client never runs a step to its end).

use std::time::{Duration, Instant};

use pgshift::db::Session;

use crate::common::fault_cluster::FaultCluster;
use crate::common::*;

/// What the server logs when a client vanishes without saying goodbye.
const RESET_LINES: [&str; 2] = [
    "could not receive data from client",
    "unexpected EOF on client connection",
];

#[test]
fn every_command_closes_its_connections_so_the_server_log_has_no_resets() {
    let c = FaultCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("0001_a.up.sql"), "CREATE TABLE a (id int);\n").unwrap();
    std::fs::write(m.join("0001_a.down.sql"), "DROP TABLE a;\n").unwrap();
    std::fs::write(m.join("0002_b.up.sql"), "CREATE TABLE b (id int);\n").unwrap();
    std::fs::write(m.join("0002_b.down.sql"), "DROP TABLE b;\n").unwrap();
    let config = dir.path().join("pgshift.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.one]\nurl = \"{}\"\ngroups = [\"g\"]\nmigrations = \"{}\"\n",
            c.url("postgres"),
            m.display()
        ),
    )
    .unwrap();
    let commands: [&[&str]; 7] = [
        &["up", "--yes"],
        &["status"],
        &["health"],
        &["history"],
        &["down", "--yes"],
        &["plan", "up"],
        &["fleet", "status", "g"],
    ];
    for args in commands {
        let out = pgshift_bare(dir.path())
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let r = Run::from(out);
        assert!(
            matches!(r.code, 0 | 10),
            "pgshift {args:?}: {}\n{}",
            r.code,
            r.stderr
        );
    }
    assert_eq!(c.column("SELECT count(*) FROM a"), vec!["0"], "up ran");
    let log = std::fs::read_to_string(c.dir.join("server.log")).unwrap();
    for line in RESET_LINES {
        assert!(!log.contains(line), "server log has '{line}':\n{log}");
    }
}

#[test]
fn a_session_dropped_mid_statement_is_cut_and_its_backend_stops() {
    let db = TestDb::new();
    let conn = db.conn();
    block_on(async {
        let s = Session::connect(&conn, "test").await.unwrap();
        let pid = s.pid;
        let sleeping = tokio::time::timeout(
            Duration::from_millis(500),
            s.client.simple_query("SELECT pg_sleep(60)"),
        )
        .await;
        assert!(sleeping.is_err(), "the statement is still running");
        drop(s);
        // Same runtime: the close runs as in pgshift, not cut short by a runtime's end.
        let watcher = db.client().await;
        let start = Instant::now();
        loop {
            let alive: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    &[&pid],
                )
                .await
                .unwrap()
                .get(0);
            if alive == 0 {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "backend {pid} still runs its statement {:?} after the session was dropped",
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
