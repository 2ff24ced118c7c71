//! The CLI's human output reads like the TUI: times in local time with their zone (UTC with
//! `--utc` or `[tui] time = "utc"`), durations with their unit, the same words, and colour only on
//! a terminal without NO_COLOR (or with `--color always`); `--json` is never coloured.

use std::process::{Command, Stdio};

use crate::common::*;

/// A zone that needs no tzdata: 5h30 east of UTC, named PGS.
const ZONE: &str = "PGS-05:30";

fn history(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = db.pgshift();
    c.arg("history").args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().unwrap())
}

/// The newest audit event's time at `offset` (`+05:30`), as the CLI shows it.
fn newest_event_at(db: &TestDb, offset: &str) -> String {
    db.scalar(&format!(
        "SELECT to_char(at AT TIME ZONE INTERVAL '{offset}', 'YYYY-MM-DD HH24:MI:SS') \
         FROM pgshift_events ORDER BY id DESC LIMIT 1"
    ))
}

#[test]
fn history_shows_local_time_with_its_zone_and_utc_with_the_flag_or_the_config_key() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    let local = history(&db, &[], &[("TZ", ZONE)]);
    local.ok();
    let at = newest_event_at(&db, "+05:30");
    local.stdout_has(&format!("{at} PGS"));
    // The applied migrations too, in the same format.
    assert!(
        local
            .stdout
            .lines()
            .filter(|l| l.starts_with("  0001") || l.starts_with("  0002"))
            .all(|l| l.ends_with(" PGS")),
        "{}",
        local.stdout
    );
    let utc = history(&db, &["--utc"], &[("TZ", ZONE)]);
    utc.ok()
        .stdout_has(&format!("{} UTC", newest_event_at(&db, "+00:00")));
    assert!(!utc.stdout.contains("PGS"), "{}", utc.stdout);
    // `[tui] time = "utc"` is the screen's switch and the CLI's.
    let config = db.dir.path().join("time.toml");
    std::fs::write(&config, "[tui]\ntime = \"utc\"\n").unwrap();
    let cfg = history(
        &db,
        &["--config", config.to_str().unwrap()],
        &[("TZ", ZONE)],
    );
    cfg.ok()
        .stdout_has(&format!("{} UTC", newest_event_at(&db, "+00:00")));
    // The raw timestamp is gone everywhere.
    assert!(!local.stdout.contains("+00:00"), "{}", local.stdout);
}

#[test]
fn history_durations_keep_their_unit_and_outcomes_use_the_screens_words() {
    let db = TestDb::new();
    db.write_migration("0001_a.up.sql", "CREATE TABLE a (id int);");
    db.write_migration("0001_a.down.sql", "DROP TABLE a;");
    db.run(&["up"]).ok();
    let out = history(&db, &[], &[]);
    out.ok();
    let events: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("audit events"))
        .skip(1)
        .filter(|l| l.starts_with("  2"))
        .collect();
    assert!(!events.is_empty(), "{}", out.stdout);
    for row in &events {
        let last = row.split_whitespace().last().unwrap_or_default();
        let unit = last.ends_with("ms") || last.ends_with('s') || last.ends_with('m');
        let number = last.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        assert!(
            unit && !number.is_empty() && number.parse::<f64>().is_ok(),
            "a duration without its unit: {row:?}"
        );
    }
    assert!(!out.stdout.contains(" ms"), "{}", out.stdout);
    // A failed run says FAILED, as the History pane does.
    db.write_migration("0002_broken.up.sql", "SELECT * FROM no_such_table;");
    db.write_migration("0002_broken.down.sql", "SELECT 1;");
    db.run(&["up"]).code(1);
    history(&db, &[], &[]).ok().stdout_has(" FAILED ");
}

#[test]
fn no_colour_when_piped_and_json_is_never_coloured_even_when_asked() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    for args in [
        &["status"][..],
        &["history"],
        &["health"],
        &["backfill", "status"],
        &["checklist"],
    ] {
        let piped = db.run(args);
        assert!(
            !piped.stdout.contains('\x1b'),
            "{args:?} piped:\n{}",
            piped.stdout
        );
    }
    let plain = db.run(&["status", "--json"]);
    let asked = db.run(&["status", "--json", "--color", "always"]);
    assert!(!asked.stdout.contains('\x1b'), "{}", asked.stdout);
    assert_eq!(plain.json(), asked.json());
}

#[test]
fn color_always_paints_the_states_in_the_screens_colours() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    let status = db.run(&["status", "--color", "always"]);
    status.ok();
    // Applied ✓ in green, pending · in bold yellow: the revisions pane's markers and colours.
    status
        .stdout_has("\x1b[32m✓\x1b[0m 0001")
        .stdout_has("\x1b[1;33m·\x1b[0m 0003")
        .stdout_has("\x1b[1;33m(3 pending)\x1b[0m");
    // `--color always` wins over NO_COLOR, as in ripgrep and cargo; `never` wins over a terminal.
    let mut c = db.pgshift();
    c.args(["status", "--color", "always"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    let forced = Run::from(c.output().unwrap());
    assert!(forced.stdout.contains("\x1b[32m"), "{}", forced.stdout);
    // Errors on stderr are coloured as cargo colours them.
    db.run(&["up", "0999", "--color", "always"])
        .code(2)
        .stderr_has("\x1b[1;31merror\x1b[0m: ");
    // Without colour the markers are the screen's letters under NO_COLOR.
    db.run(&["status"])
        .ok()
        .stdout_has("A 0001")
        .stdout_has("P 0003");
}

/// `pgshift ARGS` on a pseudo-terminal (`script`), with `env`; what it printed.
fn on_a_terminal(db: &TestDb, args: &str, env: &[(&str, &str)]) -> String {
    let bin = env!("CARGO_BIN_EXE_pgshift");
    let cmd = format!(
        "{bin} --database-url '{}' --migrations '{}' {args} < /dev/null",
        db.url,
        db.migrations().display()
    );
    // The harness's clean environment, applied to `script` (which passes it on).
    let template = pgshift_bare(db.dir.path());
    let mut script = Command::new("script");
    script
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(db.dir.path())
        .stdin(Stdio::null());
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    for (k, v) in env {
        script.env(k, v);
    }
    let out = script.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_on_a_terminal_unless_no_color_is_set_or_never_is_asked() {
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    let tty = on_a_terminal(&db, "status", &[]);
    assert!(tty.contains("\x1b[32m✓\x1b[0m"), "{tty}");
    let no_color = on_a_terminal(&db, "status", &[("NO_COLOR", "1")]);
    assert!(!no_color.contains('\x1b'), "{no_color}");
    assert!(no_color.contains("A 0001"), "{no_color}");
    let never = on_a_terminal(&db, "status --color never", &[]);
    assert!(!never.contains('\x1b'), "{never}");
}

#[test]
fn lint_findings_are_coloured_as_the_screen_colours_them_and_plain_when_piped() {
    let db = TestDb::new();
    db.exec("CREATE TABLE wide (id int, c int)");
    db.write_migration(
        "0001_rename.up.sql",
        "ALTER TABLE wide RENAME COLUMN c TO d;\n",
    );
    let coloured = db.run(&["lint", "--color", "always"]);
    coloured
        .code(1)
        .stdout_has("\x1b[1;31mERROR\x1b[0m    renaming-column");
    let piped = db.run(&["lint"]);
    piped.code(1).stdout_has("ERROR    renaming-column");
    assert!(!piped.stdout.contains('\x1b'), "{}", piped.stdout);
    // `plan` and `status` show the same findings, coloured the same way.
    db.run(&["plan", "up", "--color", "always"])
        .stdout_has("\x1b[1;31mERROR\x1b[0m");
    db.run(&["status", "--color", "always"])
        .stdout_has("\x1b[1;31mERROR\x1b[0m");
}
