//! Bad numbers and names: every one is a clear usage error (exit 2, the allowed range named,
//! nothing run), never a panic and never a value the server refuses later.

use crate::common::*;

fn demo() -> TestDb {
    let db = TestDb::new();
    db.write_migration("0001_t.up.sql", "CREATE TABLE t (id int);");
    db
}

#[test]
fn absurd_durations_and_counts_on_the_command_line_are_usage_errors_with_the_range() {
    let db = demo();
    let cases: &[(&[&str], &str)] = &[
        // Panicked (exit 101) in Duration::from_secs_f64.
        (&["--lock-timeout", "99999999999999999999h"], "lock_timeout"),
        // Accepted, then every step failed on the server (above INT_MAX ms).
        (&["--lock-timeout", "1000h"], "allowed: 1ms to 10m"),
        (&["--lock-timeout", "-5s"], "allowed: 1ms to 10m"),
        (&["--lock-timeout", "0"], "wait forever"),
        (&["--statement-timeout", "1000h"], "2147483647ms"),
        (&["--statement-timeout", "-1s"], "statement_timeout"),
        (&["--retries", "-1"], "allowed: 1 to 1000"),
        (&["--retries", "0"], "allowed: 1 to 1000"),
        (&["--retries", "99999999999"], "allowed: 1 to 1000"),
        (&["--lock-wait", "-3s"], "allowed: 0 to 24h"),
        (&["--lock-wait", "100000h"], "allowed: 0 to 24h"),
        (
            &["--terminate-blockers-after", "0"],
            "terminate_blockers_after",
        ),
        (&["--lock-timeout", "NaNs"], "not a duration"),
        (&["--lock-timeout", "1e400s"], "lock_timeout"),
    ];
    for (flags, needle) in cases {
        let mut args = flags.to_vec();
        args.push("up");
        let r = db.run(&args);
        r.code(2).stderr_has(needle);
    }
    assert_eq!(db.applied(), Vec::<u32>::new(), "nothing ran");
    assert_eq!(db.events(), vec![], "nothing was even audited as started");
}

#[test]
fn absurd_numbers_in_the_config_file_are_config_errors_with_the_range() {
    let db = demo();
    let cases = [
        ("lock_timeout = \"1000h\"", "allowed: 1ms to 10m"),
        ("lock_timeout = \"99999999999999999999h\"", "lock_timeout"),
        ("statement_timeout = \"600h\"", "2147483647ms"),
        ("retries = -1", "allowed: 1 to 1000"),
        ("retries = 5000", "allowed: 1 to 1000"),
        ("lock_wait = \"-1s\"", "allowed: 0 to 24h"),
    ];
    for (line, needle) in cases {
        let cfg = db.dir.path().join("pgshift.toml");
        std::fs::write(
            &cfg,
            format!(
                "[targets.main]\nurl = \"{}\"\nmigrations = \"{}\"\n{line}\n",
                db.url,
                db.migrations().display()
            ),
        )
        .unwrap();
        let r = run_bare(
            &db,
            &["--config", &cfg.display().to_string(), "up", "--json"],
            &[],
        );
        r.code(2);
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{line}: {msg}");
    }
    assert_eq!(db.applied(), Vec::<u32>::new());
}

#[test]
fn the_largest_accepted_timeouts_are_accepted_by_the_server_too() {
    let db = demo();
    db.run(&[
        "--lock-timeout",
        "10m",
        "--statement-timeout",
        "2147483647ms",
        "--retries",
        "1000",
        "--lock-wait",
        "24h",
        "up",
    ])
    .ok();
    assert_eq!(db.applied(), vec![1]);
}

#[test]
fn a_non_ascii_user_name_runs_up_and_shows_in_application_name() {
    let db = demo();
    // 11 bytes of "pgshift up " + "x" put the 63-byte cut inside a two-byte "ü".
    let user = format!("x{}", "ü".repeat(40));
    let r = Run::from(
        db.pgshift()
            .env("USER", &user)
            .args(["up"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    r.ok();
    assert_eq!(db.applied(), vec![1]);
    let operator = db.scalar("SELECT operator FROM pgshift_events");
    assert!(operator.starts_with(&user), "{operator}");
}
