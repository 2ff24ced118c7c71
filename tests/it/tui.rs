//! The operator screen end to end: the real binary in tmux (80×24) against a real database, keys
//! sent with `send-keys`, the screen read with `capture-pane` until the expected text appears
//! (deadline loops, no fixed sleeps). Each test has its own tmux server socket.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

const DEADLINE: Duration = Duration::from_secs(30);

/// One tmux server (own socket) running pgshift in an 80×24 pane; killed on drop.
struct Screen {
    socket: String,
}

/// tmux is there; else skipped with a message, or a failure under `CI=true` (see `deps`).
#[track_caller]
fn tmux_available() -> bool {
    deps::tmux()
}

impl Screen {
    /// Start pgshift with `args` and a clean environment, as an operator would on a terminal.
    fn start(db: &TestDb, args: &[&str]) -> Screen {
        Screen::start_then(db, args, "")
    }

    /// [`Screen::start`], then `pgshift exited N` in the pane once pgshift ends (the pane stays).
    fn start_showing_exit(db: &TestDb, args: &[&str]) -> Screen {
        Screen::start_then(db, args, "; echo \"pgshift exited $?\"; sleep 600")
    }

    fn start_then(db: &TestDb, args: &[&str], shell_after: &str) -> Screen {
        let socket = format!("pgshift-it-{}-{}", std::process::id(), fastrand::u64(..));
        let bin = env!("CARGO_BIN_EXE_pgshift");
        let dir = db.dir.path();
        let mut cmd = vec![
            "env".to_string(),
            "-i".into(),
            format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
            format!("HOME={}", dir.display()),
            "TERM=xterm-256color".into(),
            "LANG=C.UTF-8".into(),
            format!(
                "USER={}",
                std::env::var("USER").unwrap_or_else(|_| "tester".into())
            ),
            format!("PGSHIFT_DATA_DIR={}", dir.join("state").display()),
            format!("XDG_CONFIG_HOME={}", dir.join("xdg-config").display()),
            bin.into(),
        ];
        cmd.extend(args.iter().map(|a| a.to_string()));
        let status = Command::new("tmux")
            .args([
                "-u",
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "80",
                "-y",
                "24",
                "-c",
            ])
            .arg(dir)
            .arg(shell_join(&cmd) + shell_after)
            .env("LANG", "C.UTF-8")
            .status()
            .expect("tmux new-session");
        assert!(status.success(), "tmux new-session failed");
        Screen { socket }
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-u", "-L", &self.socket]).env("LANG", "C.UTF-8");
        c
    }

    fn text(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "0"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn running(&self) -> bool {
        self.tmux()
            .args(["has-session"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn keys(&self, keys: &str) {
        let ok = self
            .tmux()
            .args(["send-keys", "-t", "0", "-l", keys])
            .status()
            .expect("send-keys");
        assert!(ok.success());
    }

    /// Wait until the screen satisfies `pred`; returns that screen, or panics showing the last one.
    #[track_caller]
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.text();
            if pred(&screen) {
                return screen;
            }
            assert!(
                self.running(),
                "pgshift exited while waiting for {what}; last screen:\n{screen}"
            );
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[track_caller]
    fn wait_text(&self, needle: &str) -> String {
        self.wait_for(needle, |s| s.contains(needle))
    }

    /// Quit with `q` and wait for the process (and so the session) to end.
    #[track_caller]
    fn quit(&self) {
        self.keys("q");
        let deadline = Instant::now() + DEADLINE;
        while self.running() {
            assert!(
                Instant::now() < deadline,
                "pgshift did not quit on q; screen:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.tmux().arg("kill-server").output().ok();
    }
}

fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn args<'a>(db: &'a TestDb, migrations: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--database-url",
        db.url.as_str(),
        "--migrations",
        migrations,
    ];
    a.extend_from_slice(extra);
    a
}

/// A database at 0003 whose upgrade to 0004 (it alters `ingestion_runs`) waits behind a session
/// holding ACCESS SHARE on that table, and a screen on which `u`, `y` has started that upgrade.
fn start_blocked_upgrade(
    db: &TestDb,
    start: fn(&TestDb, &[&str]) -> Screen,
    guard: &[&str],
) -> (Holder, Screen) {
    db.run(&["up", "0003"]).ok();
    let holder = Holder::hold(db, "LOCK TABLE ingestion_runs IN ACCESS SHARE MODE");
    let migrations = db.migrations().display().to_string();
    let screen = start(db, &args(db, &migrations, guard));
    screen.wait_for("status with 2 pending", |s| {
        s.contains("health DEGRADED") && s.contains("(2 pending)")
    });
    screen.keys("u");
    screen.wait_text("this SQL will run");
    screen.keys("y");
    (holder, screen)
}

#[test]
fn u_then_y_upgrades_to_head_and_the_header_shows_it() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    let migrations = db.migrations().display().to_string();
    let screen = Screen::start(&db, &args(&db, &migrations, &[]));
    screen.wait_for("status with 5 pending", |s| {
        s.contains("health DEGRADED") && s.contains("(5 pending)")
    });
    screen.keys("u");
    let confirm = screen.wait_text("this SQL will run");
    assert!(confirm.contains("upgrade base → 0005"), "{confirm}");
    assert!(
        confirm.contains("CREATE TABLE proposals"),
        "the exact SQL is shown:\n{confirm}"
    );
    assert_eq!(
        db.applied(),
        Vec::<u32>::new(),
        "nothing runs before the confirmation"
    );
    screen.keys("y");
    let done = screen.wait_for("head in the header", |s| {
        s.contains("revision 0005 → 0005 (up to date)")
    });
    assert!(
        done.contains("Database migrations completed"),
        "runbook line in the log:\n{done}"
    );
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    assert_eq!(db.events(), vec![("up".to_string(), "ok".to_string())]);
    assert_eq!(
        db.scalar("SELECT detail->>'via' FROM pgshift_events"),
        "tui"
    );
    screen.quit();
}

#[test]
fn a_blocked_upgrade_shows_its_blocker_in_the_lock_pane_and_k_terminates_it_audited() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    // One long lock_timeout keeps the wait (and so the conflict row) steady while keys are sent.
    let (holder, screen) = start_blocked_upgrade(
        &db,
        Screen::start,
        &["--lock-timeout", "60s", "--retries", "3"],
    );
    let pid = format!("pid {}", holder.pid);
    // The lock pane (3) lists the waiter and, under it, the blocker with its state.
    let blocked = screen.wait_for("the blocker in the lock pane", |s| {
        s.contains("Lock conflicts 1 waiting")
            && s.lines()
                .any(|l| l.contains(&pid) && l.contains("idle in transaction"))
    });
    assert!(
        blocked.contains("waits"),
        "the waiter row is shown:\n{blocked}"
    );
    assert_eq!(db.applied(), vec![1, 2, 3], "0004 must still be waiting");
    screen.keys("3");
    screen.keys("K");
    let confirm = screen.wait_text(&format!("terminate {pid}?"));
    assert!(
        confirm.contains(&format!("SELECT pg_terminate_backend({})", holder.pid)),
        "{confirm}"
    );
    assert!(
        confirm.contains("LOCK TABLE ingestion_runs"),
        "the blocker's query is shown:\n{confirm}"
    );
    screen.keys("y");
    screen.wait_for("head after the blocker is gone", |s| {
        s.contains("revision 0005 → 0005 (up to date)")
    });
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    let events = db.events();
    assert!(
        events.contains(&("terminate".into(), "ok".into())),
        "{events:?}"
    );
    assert_eq!(
        db.scalar("SELECT detail->>'pid' FROM pgshift_events WHERE action = 'terminate'"),
        holder.pid.to_string()
    );
    screen.quit();
    drop(holder);
}

#[test]
fn an_unreachable_database_opens_the_screen_unreachable_never_the_sandbox() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    let migrations = db.migrations().display().to_string();
    let screen = Screen::start(
        &db,
        &[
            "--database-url",
            "postgres://postgres@127.0.0.1:1/nowhere",
            "--migrations",
            &migrations,
        ],
    );
    let s = screen.wait_text("UNREACHABLE");
    assert!(!s.contains("SANDBOX"), "{s}");
    assert!(s.contains("127.0.0.1:1/nowhere"), "{s}");
    screen.keys("u");
    screen.wait_text("the database is unreachable: nothing");
    // Live resize: at 120 columns the footer has room for the keys dropped at 80.
    assert!(!s.contains("/ filter"), "{s}");
    let ok = screen
        .tmux()
        .args(["resize-window", "-t", "0", "-x", "120", "-y", "40"])
        .status()
        .expect("resize-window");
    assert!(ok.success());
    screen.wait_for("the wider layout", |s| {
        s.contains("/ filter") && s.lines().count() >= 39
    });
    screen.quit();
    assert!(
        !db.dir.path().join("state").join("sandbox").exists(),
        "no sandbox was created"
    );
}

#[test]
fn no_subcommand_without_a_terminal_prints_status_and_tui_refuses() {
    let db = TestDb::with_demo_migrations();
    db.run(&[])
        .ok()
        .stdout_has("current")
        .stdout_has("(5 pending)");
    db.run(&["tui"]).code(2).stderr_has("needs a terminal");
}

#[test]
fn a_lost_monitor_connection_shows_unreachable_then_reconnects_by_itself() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    let migrations = db.migrations().display().to_string();
    let screen = Screen::start(&db, &args(&db, &migrations, &[]));
    screen.wait_for("status", |s| {
        s.contains("health DEGRADED") && s.contains("(3 pending)")
    });
    // What a server restart or a DBA's pg_terminate_backend does to the monitoring connection.
    db.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name LIKE 'pgshift tui monitor%'",
    );
    screen.wait_text("database unreachable");
    let back = screen.wait_for("the reconnect", |s| {
        s.contains("database reachable again") && s.contains("health DEGRADED")
    });
    assert!(back.contains("(3 pending)"), "{back}");
    screen.quit();
}

#[test]
fn a_production_downgrade_runs_only_after_the_revision_is_typed() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    db.run(&["up"]).ok();
    let config = db.dir.path().join("pgshift.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.prod]\nurl = \"{}\"\nenvironment = \"production\"\nmigrations = \"{}\"\n",
            db.url,
            db.migrations().display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let screen = Screen::start(&db, &["--config", &config, "--target", "prod"]);
    screen.wait_for("status", |s| {
        s.contains("PRODUCTION") && s.contains("(up to date)")
    });
    screen.keys("d");
    let ask = screen.wait_text("Type 0004 and press Enter");
    assert!(
        ask.contains("DROP INDEX CONCURRENTLY IF EXISTS documents_source_id_idx"),
        "the down SQL is shown:\n{ask}"
    );
    // `y` is text here, and a wrong answer runs nothing.
    screen.keys("y");
    screen
        .tmux()
        .args(["send-keys", "-t", "0", "Enter"])
        .status()
        .unwrap();
    screen.wait_text("type 0004 exactly");
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    screen.keys("0004");
    screen
        .tmux()
        .args(["send-keys", "-t", "0", "Enter"])
        .status()
        .unwrap();
    screen.wait_for("the downgrade", |s| {
        s.contains("revision 0004 → 0005 (1 pending)")
    });
    assert_eq!(db.applied(), vec![1, 2, 3, 4]);
    assert_eq!(
        db.events().last(),
        Some(&("down".to_string(), "ok".to_string()))
    );
    screen.quit();
}

#[test]
fn quitting_during_a_blocked_upgrade_waits_for_its_audited_end() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    let (holder, screen) = start_blocked_upgrade(
        &db,
        Screen::start,
        &["--lock-timeout", "60s", "--retries", "3"],
    );
    screen.wait_text("Lock conflicts 1 waiting");
    screen.keys("q");
    screen.wait_text("Quit while running?");
    screen.keys("y");
    // The screen is gone; the run goes on, and says so.
    screen.wait_text("is still running");
    assert_eq!(db.applied(), vec![1, 2, 3]);
    drop(holder); // the blocker commits: the ALTER gets its lock
    wait_until(
        DEADLINE,
        "the upgrade to finish after the screen closed",
        || db.applied() == vec![1, 2, 3, 4, 5],
    );
    wait_until(DEADLINE, "the audit row", || {
        db.events().last() == Some(&("up".to_string(), "ok".to_string()))
    });
    let deadline = Instant::now() + DEADLINE;
    while screen.running() {
        assert!(
            Instant::now() < deadline,
            "pgshift did not exit after the run ended:\n{}",
            screen.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_run_failing_after_the_screen_closed_exits_with_its_own_code() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    // The holder stays for the whole test: the upgrade runs out of lock retries after the screen
    // closed.
    let (_holder, screen) = start_blocked_upgrade(
        &db,
        Screen::start_showing_exit,
        &["--lock-timeout", "1s", "--retries", "5"],
    );
    screen.wait_text("Lock conflicts 1 waiting");
    screen.keys("q");
    screen.wait_text("Quit while running?");
    screen.keys("y");
    screen.wait_text("is still running");
    // Lock retries exhausted: exit 4 (runner lock / lock retries), not a generic 1.
    screen.wait_text("pgshift exited 4");
    assert_eq!(db.applied(), vec![1, 2, 3]);
}

#[test]
fn c_opens_the_checklists_runs_the_rollback_check_and_confirms_an_item_with_a_note() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    // At head nothing is pending, so the rollback plan check passes without git or a scratch db.
    db.run(&["up"]).ok();
    let migrations = db.migrations().display().to_string();
    let screen = Screen::start(&db, &args(&db, &migrations, &[]));
    screen.wait_for("status at head", |s| {
        s.contains("health ok") && s.contains("(up to date)")
    });
    screen.keys("c");
    screen.wait_text("Pre-Deployment Checklist");
    // The runbook's health summary arrives on its own worker task.
    let overlay = screen.wait_text("migrations ok");
    assert!(overlay.contains("not started"), "{overlay}");
    assert!(overlay.contains("health ok"), "{overlay}");
    assert!(
        overlay.contains("r run check"),
        "the footer shows the overlay's keys:\n{overlay}"
    );
    // The cursor starts on backup; rollback-plan is the fourth item.
    screen.keys("jjj");
    screen.keys("r");
    let checked = screen.wait_text("rollback-plan passed");
    assert!(
        checked
            .lines()
            .any(|l| l.contains("passed") && l.contains("Rollback plan prepared")),
        "the row shows its new state:\n{checked}"
    );
    screen.keys("kkk");
    screen.keys("y");
    screen.wait_text("Confirm backup");
    screen.keys("backup b-2041 verified");
    screen
        .tmux()
        .args(["send-keys", "-t", "0", "Enter"])
        .status()
        .unwrap();
    let confirmed = screen.wait_text("backup confirmed: backup b-2041 verified");
    assert!(confirmed.contains("2/5 done"), "{confirmed}");
    let rows = db.column(
        "SELECT item || '|' || state || '|' || coalesce(evidence, '') FROM pgshift_checklist_runs
         WHERE checklist = 'pre-deploy' AND item <> '(run started)' ORDER BY id",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("rollback-plan|passed|"), "{rows:?}");
    assert_eq!(rows[1], "backup|confirmed|backup b-2041 verified");
    assert_eq!(
        db.scalar("SELECT count(DISTINCT run_id) FROM pgshift_checklist_runs"),
        "1",
        "both items went to the same run"
    );
    // Esc closes the overlay; the main screen's keys are back.
    screen
        .tmux()
        .args(["send-keys", "-t", "0", "Escape"])
        .status()
        .unwrap();
    screen.wait_text("u upgrade");
    screen.quit();
}

/// Demo-shaped templates for the `hashes` backfill (content_hash NULL until it runs).
const TEMPLATES: &str = "
INSERT INTO proposal_templates (name, body)
SELECT 'template-' || g, 'Dear {{customer}}, template ' || g || repeat(' lorem', 1 + g % 8)
FROM generate_series(1, 3000) g;
ANALYZE proposal_templates;
";

#[test]
fn backfills_pane_b_dry_runs_then_capital_b_runs_hashes_to_done() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    db.exec(TEMPLATES);
    let nulls = || db.scalar("SELECT count(*) FROM proposal_templates WHERE content_hash IS NULL");
    let migrations = db.migrations().display().to_string();
    let screen = Screen::start(&db, &args(&db, &migrations, &[]));
    screen.wait_text("health DEGRADED");
    screen.keys("5");
    let pane = screen.wait_for("the Backfills pane with its four backfills", |s| {
        s.contains("5 Backfills") && s.contains("cleanup") && s.contains("never run")
    });
    assert!(pane.contains("hashes"), "{pane}");
    // Select hashes by filtering the pane to it.
    screen.keys("/hashes\r");
    screen.wait_for("the filter applied", |s| {
        s.contains("/hashes") && !s.contains("cleanup")
    });

    screen.keys("b");
    let dry = screen.wait_text("Dry run: hashes (nothing was changed)");
    assert!(
        dry.contains("3,000 rows to change in proposal_templates"),
        "the count is shown:\n{dry}"
    );
    assert_eq!(nulls(), "3000", "a dry run changes nothing");
    screen.keys("n");
    screen.wait_for("the dialog closed", |s| !s.contains("Dry run: hashes"));

    screen.keys("B");
    let confirm = screen.wait_text("Run backfill hashes on");
    assert!(
        confirm.contains("3,000 rows to change"),
        "the confirmation shows the dry run's numbers:\n{confirm}"
    );
    assert_eq!(nulls(), "3000", "nothing runs before the confirmation");
    screen.keys("y");
    let done = screen.wait_for("hashes done at 100% in the pane", |s| {
        s.lines()
            .any(|l| l.contains("hashes") && l.contains("done") && l.contains("100%"))
    });
    assert!(done.contains("3,000 / 3,000 rows"), "{done}");
    assert_eq!(nulls(), "0");
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM proposal_templates WHERE content_hash = encode(sha256(convert_to(body, 'UTF8')), 'hex')"
        ),
        "3000"
    );
    assert_eq!(
        db.scalar(
            "SELECT state FROM pgshift_backfill_runs WHERE name = 'hashes' ORDER BY id DESC LIMIT 1"
        ),
        "done"
    );
    screen.quit();
}

#[test]
fn a_backfill_run_from_another_terminal_shows_live_and_space_pauses_then_resumes_it() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    db.exec(TEMPLATES);
    let migrations = db.migrations().display().to_string();
    let screen = Screen::start(&db, &args(&db, &migrations, &[]));
    screen.wait_text("health DEGRADED");
    screen.keys("5");
    screen.wait_text("never run");
    // Another terminal: small fixed batches with a pause, so it runs for several seconds.
    let cli = db
        .pgshift()
        .args([
            "backfill",
            "hashes",
            "--batch-size",
            "20",
            "--pause",
            "50",
            "--json",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pgshift backfill");
    let running = screen.wait_for("hashes running from the other terminal", |s| {
        s.lines()
            .any(|l| l.contains("hashes") && l.contains("running"))
            && s.contains("by pid")
    });
    assert!(running.contains("1 running"), "{running}");
    // hashes is the first row: Space asks its engine, in the other process, to pause.
    screen.keys(" ");
    // The pane's row, not the status line's "backfill hashes: run #1 paused ..." nor the history's
    // audit row: those come before the next poll updates the row, and a Space then would pause
    // again instead of resuming.
    screen.wait_for("hashes paused", |s| {
        s.lines()
            .any(|l| l.contains("┃hashes") && l.contains("paused"))
    });
    let out = cli
        .wait_with_output()
        .expect("the other terminal's run ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("paused"),
        "the other terminal's run was paused:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nulls = db.scalar("SELECT count(*) FROM proposal_templates WHERE content_hash IS NULL");
    assert_ne!(nulls, "0", "paused before the end");
    assert_ne!(nulls, "3000", "some batches were committed");
    // Space again resumes it from this screen, from the saved cursor, to the end.
    screen.keys(" ");
    screen.wait_for("hashes done", |s| {
        s.lines()
            .any(|l| l.contains("hashes") && l.contains("done") && l.contains("100%"))
    });
    assert_eq!(
        db.scalar("SELECT count(*) FROM proposal_templates WHERE content_hash IS NULL"),
        "0"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pgshift_backfill_runs WHERE name = 'hashes'"),
        "1",
        "one continuous run"
    );
    screen.quit();
}

#[test]
fn quitting_while_a_backfill_runs_from_the_screen_asks_then_pauses_it_and_quits() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    db.exec(TEMPLATES);
    // A deliberately slow definition: ten rows per batch, 100 ms apart.
    let dir = db.migrations().join("backfills");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ORDER"), "slowhash\n").unwrap();
    std::fs::write(
        dir.join("slowhash.toml"),
        r#"
description = "hashes, slowly"
table = "proposal_templates"
key = "id"
batch_size = 10
pause = "100ms"
target_batch = "10s"
batch = "UPDATE proposal_templates SET content_hash = md5(body) WHERE id > $1 AND id <= $2 AND content_hash IS NULL"
count = "SELECT count(*) FROM proposal_templates WHERE content_hash IS NULL"
"#,
    )
    .unwrap();
    let migrations = db.migrations().display().to_string();
    let screen = Screen::start(&db, &args(&db, &migrations, &[]));
    screen.wait_text("health DEGRADED");
    screen.keys("5");
    screen.wait_text("never run");
    screen.keys("B");
    screen.wait_text("Run backfill slowhash on");
    screen.keys("y");
    screen.wait_for("slowhash running from this screen", |s| {
        s.contains("by this screen")
    });
    screen.keys("q");
    screen.wait_text("Quit while a backfill runs?");
    assert!(screen.running(), "q alone does not quit while it runs");
    screen.keys("y");
    let deadline = Instant::now() + DEADLINE;
    while screen.running() {
        assert!(
            Instant::now() < deadline,
            "pgshift did not quit after pausing; screen:\n{}",
            screen.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        db.scalar("SELECT state FROM pgshift_backfill_runs WHERE name = 'slowhash'"),
        "paused",
        "paused with its cursor saved before quitting"
    );
    let nulls = db.scalar("SELECT count(*) FROM proposal_templates WHERE content_hash IS NULL");
    assert_ne!(nulls, "0", "paused before the end");
    // It resumes from the CLI where it stopped.
    db.run(&[
        "backfill",
        "resume",
        "slowhash",
        "--batch-size",
        "1000",
        "--pause",
        "0",
    ])
    .ok();
    assert_eq!(
        db.scalar("SELECT count(*) FROM proposal_templates WHERE content_hash IS NULL"),
        "0"
    );
}

/// A production target on `db` in a config file; returns its path.
fn production_config(db: &TestDb) -> String {
    let config = db.dir.path().join("pgshift.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.prod]\nurl = \"{}\"\nenvironment = \"production\"\nmigrations = \"{}\"\n",
            db.url,
            db.migrations().display()
        ),
    )
    .unwrap();
    config.display().to_string()
}

/// Issue 12, defect 3: the blocker stays listed (and actionable) through the backoff between
/// tries, not only while the worker waits; `K` with the pid typed (production) ends it.
#[test]
fn a_blocked_production_upgrade_keeps_its_blocker_through_retries_and_k_ends_it() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    let holder = Holder::hold(&db, "LOCK TABLE ingestion_runs IN ACCESS SHARE MODE");
    let config = production_config(&db);
    let screen = Screen::start(
        &db,
        &[
            "--config",
            &config,
            "--target",
            "prod",
            "--lock-timeout",
            "700ms",
            "--retries",
            "40",
        ],
    );
    screen.wait_for("status with 2 pending", |s| {
        s.contains("PRODUCTION") && s.contains("(2 pending)")
    });
    screen.keys("u");
    screen.wait_text("this SQL will run");
    screen.keys("y");
    let blocker_row = format!("└ pid {}", holder.pid);
    screen.wait_text(&blocker_row);
    // From now on, through three retries and their backoffs, every screen lists the blocker.
    let deadline = Instant::now() + DEADLINE;
    let mut between_tries = false;
    loop {
        let s = screen.text();
        assert!(
            s.contains(&blocker_row),
            "the blocker vanished from the lock pane:\n{s}"
        );
        between_tries |= s.contains("between tries");
        if between_tries && s.contains("try 3/40") {
            break;
        }
        assert!(Instant::now() < deadline, "no third try:\n{s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(db.applied(), vec![1, 2, 3], "0004 must still be waiting");
    // Actionable: K on the blocker (the cursor is on its waiter row: its first blocker).
    screen.keys("3");
    screen.keys("K");
    let confirm = screen.wait_text(&format!("Type {} and press Enter", holder.pid));
    assert!(
        confirm.contains(&format!("terminate pid {}?", holder.pid)),
        "{confirm}"
    );
    screen.keys(&holder.pid.to_string());
    screen
        .tmux()
        .args(["send-keys", "-t", "0", "Enter"])
        .status()
        .unwrap();
    let done = screen.wait_for("head after the blocker is gone", |s| {
        s.contains("(up to date)")
    });
    assert!(
        done.contains("its locks are released") || done.contains("0005"),
        "{done}"
    );
    assert_eq!(db.applied(), vec![1, 2, 3, 4, 5]);
    // History shows both the terminate and the run.
    screen.wait_for("the terminate and the run in History", |s| {
        s.lines()
            .any(|l| l.contains("terminate") && l.contains("ok"))
            && s.lines()
                .any(|l| l.contains("up ") && l.contains("0003→0005") && l.contains("ok"))
    });
    let events = db.events();
    assert!(
        events.contains(&("terminate".into(), "ok".into())),
        "{events:?}"
    );
    // The run's row is written when it starts (before the terminate) and finished in place.
    assert!(events.contains(&("up".into(), "ok".into())), "{events:?}");
    screen.quit();
    drop(holder);
}

/// Issue 12, defect 3: a cancel cannot release the locks of a session idle in transaction; that
/// is reported (and audited) as a failure, never as "cancel sent"; a terminate releases them.
#[test]
fn cancel_of_an_idle_in_transaction_blocker_is_checked_and_reported_as_not_releasing() {
    use pgshift::config::Environment;
    use pgshift::db::blockers::Blocker;
    use pgshift::tui::app::{Signal, Signalled};
    use pgshift::tui::worker::signal_audited;
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    let holder = Holder::hold(&db, "LOCK TABLE ingestion_runs IN ACCESS SHARE MODE");
    let mut target = pgshift::tui::sample::target(Environment::Development);
    target.conn = db.conn();
    let blocker = Blocker {
        pid: holder.pid,
        user: "postgres".into(),
        application: "test blocker".into(),
        state: "idle in transaction".into(),
        xact_age_s: Some(1.0),
        query: "LOCK TABLE ingestion_runs IN ACCESS SHARE MODE".into(),
    };
    let cancel = block_on(signal_audited(&target, &blocker, Signal::Cancel)).unwrap();
    assert!(
        matches!(&cancel, Signalled::StillHolding(state) if state.starts_with("idle in transaction")),
        "{cancel:?}"
    );
    assert_eq!(
        db.scalar("SELECT outcome || ' ' || error FROM pgshift_events WHERE action = 'cancel'"),
        format!(
            "failed cancel sent, but pid {} still holds its locks (idle in transaction)",
            holder.pid
        )
    );
    let terminate = block_on(signal_audited(&target, &blocker, Signal::Terminate)).unwrap();
    assert_eq!(terminate, Signalled::Released);
    assert_eq!(
        db.scalar("SELECT outcome FROM pgshift_events WHERE action = 'terminate'"),
        "ok"
    );
    drop(holder);
}

/// Issue 12, defect 4: `B` on a locked table, then Esc, cancels the dry run on the server (no
/// session left waiting there), and no "Run backfill?" appears when the lock goes later.
#[test]
fn esc_cancels_a_waiting_backfill_dry_run_on_the_server_and_nothing_pops_up_later() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0003"]).ok();
    db.exec(TEMPLATES);
    let holder = Holder::hold(
        &db,
        "LOCK TABLE proposal_templates IN ACCESS EXCLUSIVE MODE",
    );
    let migrations = db.migrations().display().to_string();
    // A long lock_timeout keeps the dry run waiting while Esc is sent.
    let screen = Screen::start(&db, &args(&db, &migrations, &["--lock-timeout", "60s"]));
    screen.wait_text("(2 pending)");
    screen.keys("5");
    screen.wait_text("never run");
    screen.keys("B");
    screen.wait_text("Esc cancels it");
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND application_name LIKE 'pgshift backfill dry-run%' AND wait_event_type = 'Lock'";
    wait_until(DEADLINE, "the dry run waiting on the server", || {
        db.scalar(waiting) == "1"
    });
    screen
        .tmux()
        .args(["send-keys", "-t", "0", "Escape"])
        .status()
        .unwrap();
    screen.wait_text("cancelled dry run ended");
    assert_eq!(
        db.scalar(waiting),
        "0",
        "nothing left waiting on the server"
    );
    drop(holder);
    // The lock is gone; the screen asks nothing on its own.
    let later = Instant::now() + Duration::from_secs(3);
    while Instant::now() < later {
        let s = screen.text();
        assert!(!s.contains("Run backfill"), "a dialog popped up:\n{s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    screen.quit();
}

/// A production target requiring a pre-deploy checklist (none has passed), as ./config/pgshift.toml.
fn production_requiring_a_checklist(db: &TestDb) {
    let dir = db.dir.path().join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("pgshift.toml"),
        format!(
            "[targets.main]\nurl = \"{}\"\nenvironment = \"production\"\nmigrations = \"{}\"\nlock_wait = \"5s\"\nrequire_checklist_hours = 4\n",
            db.url,
            db.migrations().display()
        ),
    )
    .unwrap();
}

#[test]
fn u_y_on_production_without_a_fresh_checklist_is_refused_and_audited() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    production_requiring_a_checklist(&db);
    let screen = Screen::start(&db, &[]);
    screen.wait_text("(5 pending)");
    screen.keys("u");
    let confirm = screen.wait_text("this SQL will run");
    assert!(
        confirm.contains("REFUSED checklist: refusing to upgrade")
            && confirm.contains("REFUSED: y records the attempt"),
        "the refusal is shown before the yes:\n{confirm}"
    );
    assert_eq!(db.events(), vec![], "a preview is not an attempt");
    screen.keys("y");
    let refused = screen.wait_for("the refusal in the log", |s| {
        !s.contains("this SQL will run") && s.contains("no pre-deploy checklist passed")
    });
    assert!(refused.contains("refusing to upgrade"), "{refused}");
    assert_eq!(db.applied(), Vec::<u32>::new(), "nothing ran");
    assert_eq!(db.events(), vec![("up".to_string(), "refused".to_string())]);
    assert_eq!(
        db.scalar("SELECT (detail->>'via') || ' ' || (detail->>'policy') FROM pgshift_events"),
        "tui tui"
    );
    screen.quit();
}

#[test]
fn after_a_failed_upgrade_with_pending_migrations_the_header_is_not_ok() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    db.run(&["up"]).ok();
    db.write_migration(
        "0006_broken.up.sql",
        "ALTER TABLE missing_table ADD COLUMN y int;",
    );
    db.write_migration(
        "0006_broken.down.sql",
        "ALTER TABLE missing_table DROP COLUMN y;",
    );
    let migrations = db.migrations().display().to_string();
    let screen = Screen::start(&db, &args(&db, &migrations, &[]));
    screen.wait_text("(1 pending)");
    screen.keys("u");
    screen.wait_text("this SQL will run");
    screen.keys("y");
    // At 80 columns the header keeps the word and drops the reason (the model test checks it is
    // "migrations failed"); before one health it said OK here.
    let failed = screen.wait_for("the failed run and a degraded header", |s| {
        s.contains("FAILED") && s.contains("health DEGRADED")
    });
    assert!(!failed.contains("health ok"), "{failed}");
    // The CLI's health says the same.
    let cli = db.run(&["health", "--json"]).json();
    assert_eq!(cli["result"]["status"], "degraded");
    assert_eq!(cli["result"]["migrations"]["state"], "failed");
    screen.quit();
}

/// Issue 12, defect 7: `r` reads the migration files again; a new one shows as pending.
#[test]
fn r_picks_up_a_new_migration_file() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    db.run(&["up"]).ok();
    let migrations = db.migrations().display().to_string();
    let screen = Screen::start(&db, &args(&db, &migrations, &[]));
    screen.wait_text("(up to date)");
    db.write_migration("0006_add_notes.up.sql", "CREATE TABLE notes (id int);");
    db.write_migration("0006_add_notes.down.sql", "DROP TABLE notes;");
    screen.keys("r");
    let s = screen.wait_for("the new file pending", |s| {
        s.contains("(1 pending)") && s.contains("0006")
    });
    assert!(s.contains("add_notes"), "{s}");
    screen.quit();
}

/// `:target NAME` opens the screen on another configured target; an unknown one says so.
#[test]
fn colon_target_switches_to_another_configured_target() {
    if !tmux_available() {
        return;
    }
    let db = TestDb::with_demo_migrations();
    db.run(&["up", "0002"]).ok();
    let config = db.dir.path().join("pgshift.toml");
    std::fs::write(
        &config,
        format!(
            "[targets.prod]\nurl = \"{url}\"\nenvironment = \"production\"\nmigrations = \"{m}\"\n\n[targets.stage]\nurl = \"{url}\"\nenvironment = \"staging\"\nmigrations = \"{m}\"\n",
            url = db.url,
            m = db.migrations().display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let screen = Screen::start(&db, &["--config", &config, "--target", "prod"]);
    screen.wait_for("prod", |s| {
        s.contains("PRODUCTION") && s.contains("(3 pending)")
    });
    screen.keys(":target nowhere\r");
    screen.wait_text(":target nowhere:");
    screen.keys(":target stage\r");
    let s = screen.wait_for("the stage target", |s| {
        s.contains("stage [staging]") && s.contains("(3 pending)")
    });
    assert!(!s.contains("PRODUCTION"), "{s}");
    screen.quit();
}

/// Checklists while the database is down: confirmations and skips are kept locally, shown in the
/// overlay, and written to the database (with when they were made) once it is back.
#[test]
fn checklist_results_kept_while_unreachable_are_recorded_when_the_database_returns() {
    use pgshift::config::Environment;
    use pgshift::runbook::{ItemState, Runbook};
    use pgshift::tui::offline::{self, Kept};
    let db = TestDb::with_demo_migrations();
    let mut target = pgshift::tui::sample::target(Environment::Production);
    target.conn = db.conn();
    let rb = Runbook::load(&pgshift::config::Loaded::default()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let kept = |item: &str, state: &str, note: &str| Kept {
        checklist: "startup-failure".into(),
        item: item.into(),
        state: state.into(),
        note: note.into(),
        operator: "alice@bastion".into(),
        at: "2026-11-24T03:10:00.000+00:00".into(),
    };
    let items: Vec<String> = rb
        .checklist("startup-failure")
        .unwrap()
        .items
        .iter()
        .map(|i| i.id.clone())
        .collect();
    offline::keep(
        state.path(),
        &target,
        &kept(&items[0], "confirmed", "logs read: disk full"),
    )
    .unwrap();
    offline::keep(
        state.path(),
        &target,
        &kept(&items[1], "skipped", "not relevant"),
    )
    .unwrap();
    let views = offline::views(state.path(), &rb, &target);
    let v = views.iter().find(|v| v.name == "startup-failure").unwrap();
    assert_eq!(v.items[0].state, ItemState::Confirmed);
    assert_eq!(v.items[1].state, ItemState::Skipped);
    assert!(
        v.items[0]
            .evidence
            .as_deref()
            .unwrap()
            .contains("kept locally")
    );
    assert!(
        !v.items[0].help.is_empty() || !v.items[1].help.is_empty(),
        "the runbook help is there"
    );
    let written = block_on(offline::flush(state.path(), &rb, &target)).unwrap();
    assert_eq!(written, 2);
    assert!(
        offline::read(state.path(), &target).is_empty(),
        "the file is gone"
    );
    let rows = db.column(
        "SELECT item || '|' || state || '|' || evidence FROM pgshift_checklist_runs
         WHERE checklist = 'startup-failure' AND item <> '(run started)' ORDER BY id",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].ends_with("|confirmed|logs read: disk full (recorded offline by alice@bastion at 2026-11-24T03:10:00.000+00:00)"),
        "{rows:?}"
    );
    assert!(rows[1].contains("|skipped|not relevant"), "{rows:?}");
}

/// The fleet pane end to end: four databases on the local server (one of them production, so the
/// confirmation is typed) and one unreachable target. `6` lists every target, `u` shows the plan
/// and, once `all` is typed, rolls out canary first; every reachable database reaches head.
#[test]
fn fleet_pane_lists_every_target_and_u_rolls_out_to_head() {
    if !tmux_available() {
        return;
    }
    let template = TestDb::new();
    template.write_migration("0001_one.up.sql", "CREATE TABLE one (id int);");
    template.write_migration("0002_two.up.sql", "CREATE TABLE two (id int);");
    template.write_migration("0003_three.up.sql", "CREATE TABLE three (id int);");
    template.run(&["up", "0001"]).ok();
    let dbs = TestDb::clones(&template, 4);
    let mut config = String::new();
    for (i, db) in dbs.iter().enumerate() {
        let env = if i == 3 { "production" } else { "staging" };
        config.push_str(&format!(
            "[targets.t{i:02}]\nurl = \"{}\"\nenvironment = \"{env}\"\nmigrations = \"{}\"\n",
            db.url,
            template.migrations().display()
        ));
    }
    config.push_str(&format!(
        "[targets.zz_gone]\nurl = \"postgres://postgres@127.0.0.1:1/gone\"\nmigrations = \"{}\"\n",
        template.migrations().display()
    ));
    let path = template.dir.path().join("fleet.toml");
    std::fs::write(&path, config).unwrap();
    let path = path.display().to_string();
    let screen = Screen::start(&template, &["--config", &path, "--target", "t00"]);
    screen.wait_for("the t00 screen", |s| s.contains("(2 pending)"));
    screen.keys("6");
    let s = screen.wait_for("every fleet row", |s| {
        s.contains("UNREACHABLE") && s.contains("t03") && s.contains("0001→0003")
    });
    for name in ["t00", "t01", "t02", "t03", "zz_gone"] {
        assert!(s.contains(name), "{name} listed:\n{s}");
    }
    assert!(s.contains("PROD"), "the production target is marked:\n{s}");
    screen.keys("u");
    let s = screen.wait_text("Type all and press Enter");
    assert!(s.contains("fleet rollout to head"), "{s}");
    assert!(
        s.contains("not run: "),
        "the unreachable target's refusal is shown first:\n{s}"
    );
    assert_eq!(dbs[0].applied(), vec![1], "nothing runs before the yes");
    screen.keys("all\r");
    let s = screen.wait_for("the rollout's end", |s| s.contains("last rollout"));
    assert!(s.contains("4 done, 1 failed"), "{s}");
    for db in &dbs {
        assert_eq!(db.applied(), vec![1, 2, 3], "{} reached head", db.name);
        assert_eq!(
            db.scalar("SELECT count(*) FROM pgshift_events WHERE action = 'up' AND detail->>'fleet_run' LIKE 'fleet-%'"),
            "1"
        );
    }
    // Enter on a row opens the normal screen on that target (as `:target t01`).
    screen.keys("j\r");
    screen.wait_for("the t01 screen", |s| {
        s.contains("t01 [staging]") && s.contains("revision 0003 → 0003")
    });
    // The Fleet pane is about the fleet: it keeps the rollout's results across the switch.
    screen.keys("F");
    screen.wait_text("last rollout: 4 done, 1 failed");
    screen.quit();
    TestDb::drop_all(dbs);
}

/// `:fleet-backfill NAME` end to end: two staging databases with rows to fill; the plan shows the
/// backfill on both, `y` runs it, each database is filled by its own batched run tagged with the
/// rollout's id.
#[test]
fn fleet_backfill_command_runs_the_backfill_on_every_target() {
    if !tmux_available() {
        return;
    }
    let template = TestDb::new();
    template.write_migration(
        "0001_three.up.sql",
        "CREATE TABLE three (id int PRIMARY KEY, v int);\n\
         INSERT INTO three SELECT g FROM generate_series(1, 300) g;",
    );
    template.run(&["up"]).ok();
    write_fill_backfill(&template.migrations());
    let dbs = TestDb::clones(&template, 2);
    let path = staging_fleet(&template, &dbs);
    let screen = Screen::start(&template, &["--config", &path, "--target", "t00"]);
    screen.wait_for("the t00 screen", |s| s.contains("t00 [staging]"));
    screen.keys(":fleet-backfill nope\r");
    screen.wait_text("no target can run backfill \"nope\"");
    screen.keys(":fleet-backfill fill\r");
    let s = screen.wait_text("y / Enter run it");
    assert!(s.contains("fleet backfill fill"), "{s}");
    for db in &dbs {
        assert_eq!(
            db.scalar("SELECT count(*) FROM three WHERE v IS NULL"),
            "300",
            "nothing runs before the yes"
        );
    }
    screen.keys("y");
    let s = screen.wait_for("the rollout's end", |s| s.contains("last rollout"));
    assert!(s.contains("2 done, 0 failed"), "{s}");
    for db in &dbs {
        assert_eq!(db.scalar("SELECT count(*) FROM three WHERE v IS NULL"), "0");
        assert_eq!(
            db.column("SELECT DISTINCT coalesce(detail->>'fleet_run' LIKE 'fleet-%', false)::text FROM pgshift_events WHERE action LIKE 'backfill fill%'"),
            vec!["true"],
            "every audit row of the backfill carries the rollout's id"
        );
    }
    screen.quit();
    TestDb::drop_all(dbs);
}

/// Quitting the screen mid-rollout does what Ctrl-C does in `pgshift fleet up`: no new target
/// starts, and pgshift stays on the terminal until the running target has finished its step (so
/// it is applied and recorded), then exits with the rollout's code. The canary's second step waits
/// on a gate the test opens after the screen has closed.
#[test]
fn quitting_mid_fleet_rollout_waits_for_the_running_target_then_exits() {
    if !tmux_available() {
        return;
    }
    let template = TestDb::new();
    template.write_migration("0001_gate.up.sql", "CREATE TABLE gate (id int);");
    template.write_migration(
        "0002_wait.up.sql",
        "CREATE TABLE two (id int);\n\
         DO $$ BEGIN WHILE NOT EXISTS (SELECT FROM gate) LOOP PERFORM pg_sleep(0.1); END LOOP; END $$;",
    );
    let dbs = TestDb::clones(&template, 2);
    let path = staging_fleet(&template, &dbs);
    let screen = Screen::start_showing_exit(&template, &["--config", &path, "--target", "t00"]);
    screen.wait_for("the t00 screen", |s| s.contains("t00 [staging]"));
    screen.keys("6");
    screen.wait_text("t01");
    screen.keys("u");
    screen.wait_text("y / Enter run it");
    screen.keys("y");
    wait_until(Duration::from_secs(20), "the canary's waiting step", || {
        dbs[0].applied() == vec![1]
            && !dbs[0]
                .column("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CREATE TABLE two%'")
                .is_empty()
    });
    screen.keys("q");
    screen.wait_text("STOPPING");
    screen.keys("q");
    screen.wait_text("waits on the terminal");
    screen.keys("y");
    screen.wait_text("waiting for the running ones");
    std::thread::sleep(Duration::from_millis(500));
    let s = screen.text();
    assert!(!s.contains("pgshift exited"), "still waiting:\n{s}");
    assert_eq!(dbs[0].applied(), vec![1], "the step is still running");
    dbs[0].exec("INSERT INTO gate VALUES (1)");
    let s = screen.wait_text("pgshift exited");
    assert!(
        s.contains("t00    stage done (c)"),
        "the summary names the target:\n{s}"
    );
    assert!(s.contains("1 skipped of 2"), "{s}");
    assert!(
        s.contains("pgshift exited 1"),
        "a stopped rollout exits 1, as the CLI's:\n{s}"
    );
    assert_eq!(
        dbs[0].applied(),
        vec![1, 2],
        "the running step finished and was recorded"
    );
    assert_eq!(dbs[1].applied(), Vec::<u32>::new(), "no new target started");
    TestDb::drop_all(dbs);
}

/// A config with one staging target `tNN` per database, all on `template`'s migrations; its path.
fn staging_fleet(template: &TestDb, dbs: &[TestDb]) -> String {
    let mut config = String::new();
    for (i, db) in dbs.iter().enumerate() {
        config.push_str(&format!(
            "[targets.t{i:02}]\nurl = \"{}\"\nenvironment = \"staging\"\nmigrations = \"{}\"\n",
            db.url,
            template.migrations().display()
        ));
    }
    let path = template.dir.path().join("fleet.toml");
    std::fs::write(&path, config).unwrap();
    path.display().to_string()
}
