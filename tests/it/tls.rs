//! TLS against real PostgreSQL: a throwaway cluster that accepts only `hostssl` (SCRAM password,
//! certificates made at test time), and the plain local server for the no-TLS cases.

use std::path::Path;
use std::process::Stdio;

use crate::common::tls_cluster::{PASSWORD, plain_cluster, tls_cluster};
use crate::common::{Run, TestDb, pgshift_bare, repo};

/// pgshift with a clean environment, `HOME` in the scratch dir (no stray ~/.postgresql/root.crt).
fn pgshift(dir: &Path, url: &str, args: &[&str]) -> Run {
    Run::from(
        pgshift_bare(dir)
            .env("HOME", dir)
            .arg("--database-url")
            .arg(url)
            .arg("--migrations")
            .arg(repo().join("migrations"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    )
}

#[track_caller]
fn no_password(r: &Run) {
    assert!(
        !r.stdout.contains(PASSWORD) && !r.stderr.contains(PASSWORD),
        "the password leaked:\nstdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
}

fn tls_json(r: &Run) -> serde_json::Value {
    r.json()["result"]["server"]["tls"].clone()
}

#[test]
fn sslmode_disable_is_refused_by_a_tls_only_server_with_the_way_out() {
    let c = tls_cluster();
    let dir = tempfile::tempdir().unwrap();
    let r = pgshift(
        dir.path(),
        &c.url("127.0.0.1", "sslmode=disable"),
        &["status"],
    );
    r.code(3)
        .stderr_has("no encryption")
        .stderr_has("accepts only TLS connections")
        .stderr_has("sslmode=disable");
    assert!(!r.stderr.contains("Authentication failed"), "{}", r.stderr);
    no_password(&r);
}

#[test]
fn require_encrypts_without_verifying_and_status_says_so() {
    let c = tls_cluster();
    let dir = tempfile::tempdir().unwrap();
    // No sslrootcert: the test CA is trusted nowhere, and require must not care.
    let url = c.url("127.0.0.1", "sslmode=require");
    let r = pgshift(dir.path(), &url, &["status", "--json"]);
    r.ok();
    no_password(&r);
    let tls = tls_json(&r);
    assert_eq!(tls["mode"], "require", "{tls}");
    assert_eq!(tls["encrypted"], true, "{tls}");
    assert_eq!(tls["verified"], "none", "{tls}");
    assert!(
        tls["protocol"].as_str().unwrap().starts_with("TLSv1."),
        "{tls}"
    );
    let r = pgshift(dir.path(), &url, &["status"]);
    r.ok().stdout_has("tls      require (TLSv1.");
    r.stdout_has("server certificate not verified");
    no_password(&r);
}

#[test]
fn prefer_uses_tls_when_the_server_offers_it() {
    let c = tls_cluster();
    let dir = tempfile::tempdir().unwrap();
    // No sslmode at all: libpq's default, prefer.
    let r = pgshift(dir.path(), &c.url("127.0.0.1", ""), &["status", "--json"]);
    r.ok();
    let tls = tls_json(&r);
    assert_eq!(
        (tls["mode"].as_str(), tls["encrypted"].as_bool()),
        (Some("prefer"), Some(true))
    );
}

#[test]
fn verify_full_with_the_ca_as_sslrootcert_connects_verified() {
    let c = tls_cluster();
    let dir = tempfile::tempdir().unwrap();
    let query = format!("sslmode=verify-full&sslrootcert={}", c.ca.display());
    let r = pgshift(
        dir.path(),
        &c.url("localhost", &query),
        &["status", "--json"],
    );
    r.ok();
    no_password(&r);
    let tls = tls_json(&r);
    assert_eq!(tls["mode"], "verify-full", "{tls}");
    assert_eq!(tls["verified"], "full", "{tls}");
    pgshift(dir.path(), &c.url("localhost", &query), &["status"])
        .ok()
        .stdout_has("certificate and host name verified");
}

#[test]
fn verify_full_from_the_config_file_target_keys() {
    let c = tls_cluster();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgshift.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.prod]\nurl = \"postgres://postgres@localhost:{}/postgres\"\n\
             password_env = \"PGSHIFT_TEST_PW\"\nsslmode = \"verify-full\"\nsslrootcert = {:?}\n",
            c.port,
            c.ca.display().to_string()
        ),
    )
    .unwrap();
    let r = Run::from(
        pgshift_bare(dir.path())
            .env("HOME", dir.path())
            .env("PGSHIFT_TEST_PW", PASSWORD)
            .arg("--config")
            .arg(&config)
            .arg("--migrations")
            .arg(repo().join("migrations"))
            .args(["status", "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    r.ok();
    assert_eq!(tls_json(&r)["verified"], "full");
}

#[test]
fn verify_full_without_the_ca_fails_on_the_certificate() {
    let c = tls_cluster();
    let dir = tempfile::tempdir().unwrap();
    let r = pgshift(
        dir.path(),
        &c.url("localhost", "sslmode=verify-full"),
        &["status"],
    );
    r.code(3)
        .stderr_has("certificate")
        .stderr_has("not signed by a root trusted here (the system certificate store)")
        .stderr_has("sslrootcert");
    no_password(&r);
    // `sslrootcert=system` says the same explicitly; a missing file is a config error.
    let r = pgshift(
        dir.path(),
        &c.url("localhost", "sslmode=verify-full&sslrootcert=system"),
        &["status"],
    );
    r.code(3).stderr_has("(the system certificate store)");
    let r = pgshift(
        dir.path(),
        &c.url(
            "localhost",
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ),
        &["status"],
    );
    r.code(2)
        .stderr_has("sslrootcert /nonexistent/ca.pem: cannot read");
    no_password(&r);
}

#[test]
fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let c = tls_cluster();
    let dir = tempfile::tempdir().unwrap();
    // Reach the server by address under a name its certificate does not list.
    let kv = |mode: &str| {
        format!(
            "host=pgshift-elsewhere.invalid hostaddr=127.0.0.1 port={} user=postgres \
             password={PASSWORD} dbname=postgres sslmode={mode} sslrootcert='{}'",
            c.port,
            c.ca.display()
        )
    };
    let r = pgshift(dir.path(), &kv("verify-full"), &["status"]);
    r.code(3)
        .stderr_has("does not name the host \"pgshift-elsewhere.invalid\"")
        .stderr_has("verify-ca");
    no_password(&r);
    let r = pgshift(dir.path(), &kv("verify-ca"), &["status", "--json"]);
    r.ok();
    assert_eq!(tls_json(&r)["verified"], "ca");
    no_password(&r);
}

#[test]
fn sslmode_disable_on_the_plain_server_says_no_tls() {
    let db = TestDb::with_demo_migrations();
    let url = format!("{}?sslmode=disable", db.url);
    let r = Run::from(
        pgshift_bare(db.dir.path())
            .arg("--database-url")
            .arg(&url)
            .arg("--migrations")
            .arg(db.migrations())
            .args(["status", "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    r.ok();
    let tls = tls_json(&r);
    assert_eq!(tls["encrypted"], false, "{tls}");
    if tls["unix_socket"] == false {
        assert_eq!(tls["mode"], "disable", "{tls}");
    }
}

#[test]
fn require_refuses_a_server_without_tls_and_prefer_says_plain_text() {
    let c = plain_cluster();
    let dir = tempfile::tempdir().unwrap();
    let r = pgshift(
        dir.path(),
        &c.url("127.0.0.1", "sslmode=require"),
        &["status"],
    );
    r.code(3)
        .stderr_has("server does not support TLS")
        .stderr_has("sslmode=require refuses plain text");
    no_password(&r);
    let r = pgshift(
        dir.path(),
        &c.url("127.0.0.1", "sslmode=verify-full"),
        &["status"],
    );
    r.code(3)
        .stderr_has("sslmode=verify-full refuses plain text");
    no_password(&r);
    let r = pgshift(dir.path(), &c.url("127.0.0.1", ""), &["status", "--json"]);
    r.ok();
    let tls = tls_json(&r);
    assert_eq!(
        (tls["mode"].as_str(), tls["encrypted"].as_bool()),
        (Some("prefer"), Some(false))
    );
    pgshift(dir.path(), &c.url("127.0.0.1", ""), &["status"])
        .ok()
        .stdout_has("tls      none (sslmode=prefer: the server did not offer TLS, plain text)");
}

#[test]
fn pgsslmode_and_pgsslrootcert_apply_when_connecting_from_the_environment() {
    let c = tls_cluster();
    let dir = tempfile::tempdir().unwrap();
    let from_env = |mode: &str| {
        Run::from(
            pgshift_bare(dir.path())
                .env("HOME", dir.path())
                .env("PGHOST", "localhost")
                .env("PGPORT", c.port.to_string())
                .env("PGUSER", "postgres")
                .env("PGDATABASE", "postgres")
                .env("PGPASSWORD", PASSWORD)
                .env("PGSSLMODE", mode)
                .env("PGSSLROOTCERT", &c.ca)
                .arg("--migrations")
                .arg(repo().join("migrations"))
                .args(["status", "--json"])
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    };
    let r = from_env("verify-full");
    r.ok();
    assert_eq!(tls_json(&r)["verified"], "full");
    // --json: the error is a JSON document on stdout.
    let r = from_env("disable");
    r.code(3).stdout_has("accepts only TLS connections");
    assert_eq!(r.json()["ok"], false);
    no_password(&r);
    let r = from_env("verify-everything");
    r.code(2).stdout_has("PGSSLMODE: invalid sslmode");
    r.stdout_has("verify-everything");
}
