//! A throwaway PostgreSQL cluster a test may restart, stop or fill up: one per test that asks,
//! on a free port, stopped and deleted when the test process exits (same watcher as the others).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use super::{as_server_user, block_on, can_connect, free_port, is_root, pg_bin};

static NEXT: AtomicU16 = AtomicU16::new(0);

pub struct FaultCluster {
    pub port: u16,
    pub dir: PathBuf,
}

impl FaultCluster {
    pub fn start() -> FaultCluster {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pgshift-test-fault-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            Command::new("chown")
                .arg("postgres:")
                .arg(&dir)
                .status()
                .unwrap();
        }
        super::initdb(&dir.join("data"));
        let port = free_port();
        let server = format!(
            "{} -D {} -p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            pg_bin().join("postgres").display(),
            dir.join("data").display(),
            dir.display()
        );
        super::spawn_watched_server(&server, &dir);
        let c = FaultCluster { port, dir };
        c.wait_ready();
        c
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// First column of every row of `sql` on the cluster's `postgres` database.
    pub fn column(&self, sql: &str) -> Vec<String> {
        super::column_at(&self.url("postgres"), sql)
    }

    /// [`FaultCluster::column`], or why the cluster could not answer (it may be recovering).
    pub fn try_column(&self, sql: &str) -> Result<Vec<String>, tokio_postgres::Error> {
        super::try_column_at(&self.url("postgres"), sql)
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !block_on(can_connect(&self.url("postgres"))) {
            assert!(
                Instant::now() < deadline,
                "fault cluster not ready; see {}/server.log",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `pg_ctl restart -m fast`: sessions are terminated (57P01), the server comes back.
    pub fn restart_fast(&self) {
        let ok = as_server_user(pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["restart", "-m", "fast", "-w", "-l"])
            .arg(self.dir.join("restart.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "pg_ctl restart failed; see {}/restart.log",
            self.dir.display()
        );
        self.wait_ready();
    }
}
