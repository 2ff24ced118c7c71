//! External programs the harness needs (tmux, pgbouncer, pg_basebackup, openssl ...).
//!
//! Outside CI a missing one skips the tests that need it, with a message saying what to install.
//! Under `CI=true` a missing one FAILS the test: a CI run that skipped the end-to-end tests must
//! not report success (`.ci/run` installs them first).

use std::process::Command;

/// Whether we run in CI (`CI=true` or `CI=1`, as GitHub Actions, GitLab and most runners set).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| matches!(v.trim(), "true" | "1" | "TRUE" | "True"))
}

/// Whether `program` runs (`program version_arg` exits 0).
pub fn runs(program: &str, version_arg: &str) -> bool {
    Command::new(program)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `true` when `program` is available. When it is not: panics under CI, otherwise prints why the
/// calling test is skipped and returns `false` (the test then returns early).
#[track_caller]
pub fn require(program: &str, version_arg: &str, needed_for: &str, install: &str) -> bool {
    if runs(program, version_arg) {
        return true;
    }
    let why = format!(
        "{program} is not installed, so {needed_for} cannot run ({install}; .ci/run installs it)"
    );
    assert!(!in_ci(), "CI=true and {why}: failing instead of skipping");
    eprintln!("SKIPPED: {why}");
    false
}

/// The `require` for tmux, shared by the end-to-end TUI tests.
#[track_caller]
pub fn tmux() -> bool {
    require(
        "tmux",
        "-V",
        "the end-to-end TUI tests",
        "apt-get install tmux",
    )
}

/// The `require` for PgBouncer, shared by the connection pooler tests.
#[track_caller]
pub fn pgbouncer() -> bool {
    require(
        &super::pgbouncer::program(),
        "--version",
        "the connection pooler tests",
        "apt-get install pgbouncer",
    )
}
