//! A real PgBouncer in front of the test server, on a free port, in the pool mode a test asks for;
//! stopped when dropped (or when the test process dies: a watcher shell stops it).
//!
//! PgBouncer refuses to run as root, so as root it runs as the `postgres` account (as the test
//! clusters do). `auth_type = trust` with an auth file naming `postgres`: the server behind it
//! trusts local logins too.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{ConnInfo, TestDb, free_port, is_root, server_url};

/// `PGSHIFT_TEST_PGBOUNCER`, else the Debian package's binary, else `pgbouncer` on PATH.
pub fn program() -> String {
    if let Some(p) = std::env::var_os("PGSHIFT_TEST_PGBOUNCER") {
        return p.to_string_lossy().into_owned();
    }
    let debian = Path::new("/usr/sbin/pgbouncer");
    if debian.is_file() {
        debian.display().to_string()
    } else {
        "pgbouncer".into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
    /// Session pooling whose server connections are never reset (`server_reset_query =`
    /// empty): a client finds the previous client's prepared statements still there.
    SessionWithoutReset,
}

impl PoolMode {
    fn ini(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::SessionWithoutReset => "session\nserver_reset_query =",
        }
    }
}

pub struct Bouncer {
    pub port: u16,
    dir: tempfile::TempDir,
    watcher: Child,
}

impl Bouncer {
    /// Start PgBouncer; `None` (after saying why) when it is not installed outside CI. Under
    /// `CI=true` a missing PgBouncer fails the test.
    #[track_caller]
    pub fn start(mode: PoolMode) -> Option<Bouncer> {
        if !super::deps::pgbouncer() {
            return None;
        }
        let server = ConnInfo::parse(server_url()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        // A small transaction pool makes clients share server connections, as in production.
        let pool_size = match mode {
            PoolMode::Session => 20,
            PoolMode::Transaction => 2,
            PoolMode::SessionWithoutReset => 1,
        };
        std::fs::write(d.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            d.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={host} port={sport}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {d}/users.txt\n\
                 pool_mode = {mode}\ndefault_pool_size = {pool_size}\nmax_client_conn = 200\n\
                 ignore_startup_parameters = extra_float_digits,options\n\
                 logfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\n",
                host = server.host(),
                sport = server.port(),
                mode = mode.ini(),
                d = d.display(),
            ),
        )
        .unwrap();
        let runner = if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(d)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {} for the postgres account", d.display());
            format!("runuser -u postgres -- {}", program())
        } else {
            program()
        };
        // The watcher stops PgBouncer when asked (the `stop` file) or when this process is gone.
        let script = format!(
            "{runner} {d}/pgbouncer.ini >{d}/out.log 2>&1 & \
             while kill -0 $PPID 2>/dev/null && [ ! -f {d}/stop ]; do sleep 0.1; done; \
             kill -TERM $(cat {d}/pgbouncer.pid 2>/dev/null) 2>/dev/null; wait",
            d = d.display()
        );
        let watcher = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let bouncer = Bouncer { port, dir, watcher };
        bouncer.wait_ready();
        Some(bouncer)
    }

    /// A URL for `db` through this PgBouncer.
    pub fn url(&self, db: &TestDb) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, db.name)
    }

    fn log(&self) -> String {
        ["out.log", "pgbouncer.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "PgBouncer did not listen on {}:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        std::fs::write(self.dir.path().join("stop"), "").ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.watcher.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.watcher.kill().ok();
    }
}
