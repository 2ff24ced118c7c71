//! A real streaming replica: a throwaway primary (the harness's own cluster helper, replication
//! allowed by its trust pg_hba) and a standby made from it with `pg_basebackup -R`, each on its own
//! free port, both stopped when the test process exits (or when the [`ReplicaSet`] is dropped).
//!
//! The standby is named `r1` (`cluster_name`, so `application_name` in `pg_stat_replication`) and
//! reports its positions every second (`wal_receiver_status_interval = 1s`), so lag shows quickly.
//! [`ReplicaSet::set_apply_delay`] sets `recovery_min_apply_delay` on the standby: WAL arrives at
//! once but each commit is replayed only that long after it happened, which is real, controllable
//! replay lag on the primary's `pg_stat_replication`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{TestDb, as_server_user, free_port, is_root, pg_bin};

static SETS: AtomicU32 = AtomicU32::new(0);

/// The standby's name in `pg_stat_replication`.
pub const STANDBY_NAME: &str = "r1";

pub struct Node {
    pub port: u16,
    pub dir: PathBuf,
}

impl Node {
    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// First column of the first row of `sql` on database `db`.
    pub fn scalar(&self, db: &str, sql: &str) -> String {
        super::column_at(&self.url(db), sql)
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// Stop the server now (fast shutdown), e.g. to make a replica disappear.
    pub fn stop(&self) {
        let pidfile = self.dir.join("data").join("postmaster.pid");
        let Ok(text) = std::fs::read_to_string(&pidfile) else {
            return;
        };
        if let Some(pid) = text.lines().next() {
            Command::new("kill").args(["-INT", pid]).status().ok();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while pidfile.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A primary and one streaming standby of it.
pub struct ReplicaSet {
    pub primary: Node,
    pub standby: Node,
    base: PathBuf,
}

impl Drop for ReplicaSet {
    fn drop(&mut self) {
        // The 2-core test machine is shared: free both servers now, not at process exit.
        self.standby.stop();
        self.primary.stop();
        std::fs::remove_dir_all(&self.base).ok();
    }
}

/// Whether `pg_basebackup` can be run: on PATH, or next to the server binaries.
fn basebackup() -> Option<PathBuf> {
    let local = pg_bin().join("pg_basebackup");
    if local.is_file() {
        return Some(local);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("pg_basebackup"))
            .find(|p| p.is_file())
    })
}

impl ReplicaSet {
    /// Start a primary and a streaming standby, or `None` (with a message) when `pg_basebackup`
    /// is not installed. Under `CI=true` a missing `pg_basebackup` fails the test instead.
    pub fn start() -> Option<ReplicaSet> {
        let Some(basebackup) = basebackup() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "pg_basebackup is not installed: the replica tests cannot run (CI=true fails instead of skipping)"
            );
            eprintln!("skipping: pg_basebackup is not installed (apt install postgresql-client)");
            return None;
        };
        let base = std::env::temp_dir().join(format!(
            "pgshift-test-replica-{}-{}",
            std::process::id(),
            SETS.fetch_add(1, Ordering::Relaxed)
        ));
        let primary = Node {
            port: free_port(),
            dir: base.join("primary"),
        };
        super::start_cluster(
            &primary.dir,
            primary.port,
            "-c wal_level=replica -c max_wal_senders=5 -c max_connections=50",
        );
        let standby = Node {
            port: free_port(),
            dir: base.join("standby"),
        };
        make_standby(&basebackup, primary.port, &standby.dir);
        super::start_server(
            &standby.dir,
            standby.port,
            &format!(
                "-c max_connections=50 -c hot_standby=on -c cluster_name={STANDBY_NAME} -c wal_receiver_status_interval=1s"
            ),
        );
        let set = ReplicaSet {
            primary,
            standby,
            base,
        };
        set.wait_streaming();
        Some(set)
    }

    /// Until the primary sees the standby streaming.
    pub fn wait_streaming(&self) {
        super::wait_until(Duration::from_secs(30), "the standby to stream", || {
            self.primary.scalar(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_stat_replication WHERE application_name = '{STANDBY_NAME}' AND state = 'streaming'"
                ),
            ) == "1"
        });
    }

    /// A fresh database on the primary (replicated to the standby).
    pub fn database(&self) -> TestDb {
        let db = TestDb::on(&self.primary.url("postgres"));
        self.wait_replayed(&db.name);
        db
    }

    /// Until the standby has the database `name` (it has replayed its creation).
    pub fn wait_replayed(&self, name: &str) {
        super::wait_until(Duration::from_secs(30), "the standby to replay", || {
            self.standby.scalar(
                "postgres",
                &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
            ) == "1"
        });
    }

    /// `recovery_min_apply_delay` on the standby (a reloadable setting): each commit is replayed
    /// only `delay` after it happened on the primary.
    pub fn set_apply_delay(&self, delay: Duration) {
        let ms = delay.as_millis();
        self.standby.scalar(
            "postgres",
            &format!("ALTER SYSTEM SET recovery_min_apply_delay = '{ms}ms'"),
        );
        self.standby.scalar("postgres", "SELECT pg_reload_conf()");
        super::wait_until(Duration::from_secs(10), "the apply delay to apply", || {
            self.standby.scalar(
                "postgres",
                "SELECT setting FROM pg_settings WHERE name = 'recovery_min_apply_delay'",
            ) == ms.to_string()
        });
    }
}

/// `pg_basebackup -R` of the primary into `dir/data` (as the server account when root).
fn make_standby(basebackup: &Path, primary_port: u16, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    if is_root() {
        Command::new("chown")
            .arg("postgres:")
            .arg(dir)
            .status()
            .unwrap();
    }
    let out = as_server_user(basebackup.to_path_buf())
        .args(["-h", "127.0.0.1", "-U", "postgres", "-R", "-X", "stream"])
        .args(["--checkpoint=fast", "--no-sync"])
        .arg("-p")
        .arg(primary_port.to_string())
        .arg("-D")
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_basebackup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
