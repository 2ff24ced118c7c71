//! Secrets stay secret: a password given in any form libpq accepts never shows in stdout, stderr,
//! `--json`, the log file or the audit table, on success and on every failure path.

use crate::common::*;

/// Distinct per form, so a leak names its form.
fn secret(form: &str) -> String {
    format!("Sekr1t{form}Zz")
}

/// Everything pgshift wrote for `db`: the run's output, every log file, the audit table.
#[track_caller]
fn assert_hidden(db: &TestDb, secret: &str, runs: &[&Run]) {
    for (i, r) in runs.iter().enumerate() {
        assert!(
            !r.stdout.contains(secret),
            "run {i}: stdout shows the password:\n{}",
            r.stdout
        );
        assert!(
            !r.stderr.contains(secret),
            "run {i}: stderr shows the password:\n{}",
            r.stderr
        );
    }
    for e in std::fs::read_dir(logs(db)).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        assert!(
            !text.contains(secret),
            "log {} shows the password:\n{text}",
            e.path().display()
        );
    }
    if db.scalar("SELECT to_regclass('pgshift_events') IS NOT NULL") == "t" {
        let audit =
            db.scalar("SELECT coalesce(string_agg(t::text, E'\\n'), '') FROM pgshift_events t");
        assert!(
            !audit.contains(secret),
            "the audit table shows it:\n{audit}"
        );
    }
}

fn logs(db: &TestDb) -> std::path::PathBuf {
    db.dir.path().join("state").join("logs")
}

/// A migration that fails, so that `up` takes its error path (audit row, log, diagnosis).
fn failing_catalog(db: &TestDb) {
    db.write_migration("0001_ok.up.sql", "CREATE TABLE t1 (id int);");
    db.write_migration(
        "0002_broken.up.sql",
        "ALTER TABLE missing_table ADD COLUMN y int;",
    );
}

/// The forms libpq accepts, each with a password and a working connection to `db` (the server
/// trusts local logins, so the password is carried but not needed): `(url, secret)`.
fn working_url(db: &TestDb, form: &str) -> (String, String) {
    let c = db.conn();
    let (h, p, d) = (c.host(), c.port(), &db.name);
    let s = secret(form);
    let url = match form {
        "userinfo" => format!("postgres://postgres:{s}@{h}:{p}/{d}"),
        "query" => format!("postgres://postgres@{h}:{p}/{d}?password={s}&sslmode=disable"),
        "kvspaces" => format!("host={h} port={p} dbname={d} user=postgres password = 'a {s} b'"),
        "kvquote" => format!(r"host={h} port={p} dbname={d} user=postgres password='it\'s {s}'"),
        other => panic!("no form {other}"),
    };
    (url, s)
}

#[test]
fn passwords_in_every_form_stay_out_of_output_logs_json_and_audit_on_failure() {
    for form in ["userinfo", "query", "kvspaces", "kvquote"] {
        let db = TestDb::new();
        failing_catalog(&db);
        let (url, secret) = working_url(&db, form);
        let up = run_bare(&db, &["--database-url", &url, "up"], &[]);
        up.code(1);
        assert_eq!(db.applied(), vec![1], "{form}: the URL must have worked");
        let json = run_bare(&db, &["--database-url", &url, "up", "--json"], &[]);
        json.code(1);
        let status = run_bare(&db, &["--database-url", &url, "status", "--json"], &[]);
        status.ok();
        let history = run_bare(&db, &["--database-url", &url, "history"], &[]);
        history.ok();
        assert!(
            std::fs::read_dir(logs(&db)).unwrap().count() > 0,
            "{form}: no log file was written"
        );
        assert_hidden(&db, &secret, &[&up, &json, &status, &history]);
    }
}

#[test]
fn unparsable_connection_strings_with_passwords_are_reported_without_them() {
    let db = TestDb::new();
    let cases = [
        format!(
            "postgres://postgres@127.0.0.1:5432/x?password={}&bogus=1",
            secret("badquery")
        ),
        format!(
            "host=127.0.0.1 user=x password='a {} b' bogus",
            secret("badkv")
        ),
        format!(
            r"host=127.0.0.1 user=x password = 'a\' {}' nonsense=1",
            secret("badquote")
        ),
        format!("postgres://u:{}@h:99999/db", secret("badport")),
    ];
    for url in &cases {
        let s = url
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| w.starts_with("Sekr1t"))
            .unwrap();
        let human = run_bare(&db, &["--database-url", url, "status"], &[]);
        human.code(2).stderr_has("cannot parse database URL");
        let json = run_bare(&db, &["--database-url", url, "status", "--json"], &[]);
        json.code(2);
        assert_eq!(json.json()["error"]["kind"], "usage");
        assert_hidden(&db, s, &[&human, &json]);
    }
}

#[test]
fn a_toml_syntax_error_on_a_line_with_a_password_does_not_quote_it() {
    let db = TestDb::new();
    let s = secret("toml");
    let cfg = db.dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        format!("[targets.main]\nurl = \"postgres://app:{s}@db.example/prod\nenvironment = \"production\"\n"),
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let human = run_bare(&db, &["--config", &cfg, "status"], &[]);
    human.code(2).stderr_has("line 2");
    let json = run_bare(&db, &["--config", &cfg, "status", "--json"], &[]);
    json.code(2);
    assert_eq!(json.json()["error"]["kind"], "config");
    assert_hidden(&db, &s, &[&human, &json]);
}

#[test]
fn a_password_written_in_the_config_file_works_but_is_warned_about() {
    let db = TestDb::new();
    failing_catalog(&db);
    let s = secret("cfgfile");
    let c = db.conn();
    let cfg = db.dir.path().join("pgshift.toml");
    std::fs::write(
        &cfg,
        format!(
            "[targets.main]\nurl = \"postgres://postgres:{s}@{}:{}/{}\"\nmigrations = \"{}\"\n",
            c.host(),
            c.port(),
            db.name,
            db.migrations().display()
        ),
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let up = run_bare(&db, &["--config", &cfg, "up"], &[]);
    up.code(1)
        .stderr_has("warning: target \"main\"")
        .stderr_has("password_env")
        .stderr_has("~/.pgpass");
    assert_eq!(db.applied(), vec![1]);
    let json = run_bare(&db, &["--config", &cfg, "status", "--json"], &[]);
    json.ok();
    assert!(
        json.stderr
            .lines()
            .any(|l| l.contains("\"level\":\"warn\"") && l.contains("password_env")),
        "with --json the warning is a JSON line on stderr:\n{}",
        json.stderr
    );
    assert_hidden(&db, &s, &[&up, &json]);
}

#[test]
fn pgpassword_is_never_echoed() {
    let db = TestDb::new();
    failing_catalog(&db);
    let s = secret("pgpassword");
    let c = db.conn();
    let port = c.port().to_string();
    let env = [
        ("PGHOST", c.host()),
        ("PGPORT", port.clone()),
        ("PGUSER", "postgres".to_string()),
        ("PGDATABASE", db.name.clone()),
        ("PGPASSWORD", s.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let up = run_bare(&db, &["up", "--json"], &env);
    up.code(1);
    assert_eq!(db.applied(), vec![1]);
    // Unreachable: the connection error path.
    let mut gone = env.clone();
    gone[1] = ("PGPORT", "1");
    let down = run_bare(&db, &["status"], &gone);
    down.code(3);
    assert_hidden(&db, &s, &[&up, &down]);
}
