//! Test harness: a real PostgreSQL server and one fresh database per test.
//!
//! The server is `TEST_DATABASE_URL`, else `127.0.0.1:5432` as `postgres`, else a throwaway cluster
//! started here with the system's `initdb`/`pg_ctl` (as the `postgres` account when we are root),
//! which dies with the test process. Each [`TestDb`] is a uniquely named database, dropped after.
//! Commands run with a clean environment: no `PG*`, `DATABASE_URL` or `PGSHIFT_CONFIG` of the
//! developer's leaks in.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use pgshift::config::ConnInfo;

pub mod deps;
pub mod fault_cluster;
pub mod pgbouncer;
pub mod replica;
pub mod tls_cluster;

static SERVER: OnceLock<String> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Run a future to completion on a private runtime (tests are plain `#[test]` functions).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(f)
}

async fn can_connect(url: &str) -> bool {
    let Ok(conn) = ConnInfo::parse(url) else {
        return false;
    };
    let mut pg = conn.pg.clone();
    pg.connect_timeout(Duration::from_secs(3));
    pg.connect(tokio_postgres::NoTls).await.is_ok()
}

/// The server URL (database `postgres`), found or started once per test process.
pub fn server_url() -> &'static str {
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            return url;
        }
        let local = "postgres://postgres@127.0.0.1:5432/postgres".to_string();
        // PGSHIFT_TEST_THROWAWAY=1 exercises the fallback even when the local server is up.
        let forced = std::env::var_os("PGSHIFT_TEST_THROWAWAY").is_some();
        if !forced && block_on(can_connect(&local)) {
            return local;
        }
        start_throwaway_cluster()
    })
}

fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("no PostgreSQL server on 127.0.0.1:5432 and no /usr/lib/postgresql to start one")
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("no initdb under /usr/lib/postgresql/*/bin")
}

pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn as_server_user(program: PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Start `server` (a `postgres ...` command line) for the data in `dir`, as the server account
/// when we are root, under a shell that stops it and deletes `dir` once this test process exits.
pub fn spawn_watched_server(server: &str, dir: &Path) {
    let runner = if is_root() {
        format!("runuser -u postgres -- {server}")
    } else {
        server.to_string()
    };
    // The watcher stops the server when the test process ($PPID) is gone.
    let script = format!(
        "{runner} >{d}/server.log 2>&1 & while kill -0 $PPID 2>/dev/null; do sleep 1; done; \
         kill -INT $(head -1 {d}/data/postmaster.pid 2>/dev/null) 2>/dev/null; \
         while [ -f {d}/data/postmaster.pid ]; do sleep 0.2; done; rm -rf {d}",
        d = dir.display()
    );
    // The watcher outlives this function on purpose: it is the server's lifetime guard.
    let watcher = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::mem::forget(watcher);
}

/// `initdb` of a trust-auth UTF8 cluster into `data` (replication included), as the server
/// account when we are root.
fn initdb(data: &Path) {
    let ok = as_server_user(pg_bin().join("initdb"))
        .arg("-D")
        .arg(data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "initdb failed in {}", data.display());
}

/// initdb + a postgres child watched by a shell that stops it when this process exits.
fn start_throwaway_cluster() -> String {
    let dir = std::env::temp_dir().join(format!("pgshift-test-cluster-{}", std::process::id()));
    let port = 20000 + (std::process::id() % 20000) as u16;
    start_cluster(&dir, port, "-c max_connections=200")
}

/// A new cluster in `dir/data`, started on `port` with `options` under the exit watcher; returns
/// its `postgres` URL once it accepts connections. Runs as the `postgres` account when we are root.
pub fn start_cluster(dir: &Path, port: u16, options: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    if is_root() {
        Command::new("chown")
            .arg("postgres:")
            .arg(dir)
            .status()
            .unwrap();
    }
    initdb(&dir.join("data"));
    start_server(dir, port, options)
}

/// Start the cluster already in `dir/data` on `port` under the exit watcher, and wait for it.
pub fn start_server(dir: &Path, port: u16, options: &str) -> String {
    let server = format!(
        "{} -D {} -p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off {options}",
        pg_bin().join("postgres").display(),
        dir.join("data").display(),
        dir.display()
    );
    spawn_watched_server(&server, dir);
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !block_on(can_connect(&url)) {
        assert!(
            Instant::now() < deadline,
            "throwaway cluster did not start; see {}/server.log",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    url
}

/// First column of every row of `sql` (simple protocol, NULL as "NULL") on the database at `url`.
pub fn column_at(url: &str, sql: &str) -> Vec<String> {
    try_column_at(url, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// [`column_at`], or why the server could not be reached or answer (a cluster recovering).
pub fn try_column_at(url: &str, sql: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    let conn = ConnInfo::parse(url).unwrap();
    block_on(async {
        let (c, connection) = conn.pg.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(c.simple_query(sql)
            .await?
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some(r.get(0).unwrap_or("NULL").to_string())
                }
                _ => None,
            })
            .collect())
    })
}

/// Backfill `fill` in `migrations/backfills`: `three.v = id * 2` where NULL, 100 rows a batch
/// (tables `three (id int PRIMARY KEY, v int)`).
pub fn write_fill_backfill(migrations: &Path) {
    let dir = migrations.join("backfills");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ORDER"), "fill\n").unwrap();
    std::fs::write(
        dir.join("fill.toml"),
        "description = \"v from id\"\ntable = \"three\"\nkey = \"id\"\nbatch_size = 100\n\
         batch = \"UPDATE three SET v = id * 2 WHERE id > $1 AND id <= $2 AND v IS NULL\"\n\
         count = \"SELECT count(*) FROM three WHERE v IS NULL\"\n",
    )
    .unwrap();
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A fresh database, dropped when this goes out of scope.
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// The server's admin URL (database `postgres`), where it is created and dropped.
    pub server: String,
    /// A scratch directory for migrations, configs, data dirs.
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub fn new() -> TestDb {
        TestDb::on(server_url())
    }

    /// A fresh database on another server (a throwaway cluster of the test's own).
    pub fn on(server: &str) -> TestDb {
        let name = format!(
            "pgshift_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let admin = ConnInfo::parse(server).unwrap();
        block_on(async {
            let (c, conn) = admin.pg.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c.batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
        });
        TestDb::named(server, &name)
    }

    /// The handle of database `name` on `server` (created by the caller), dropped with it.
    fn named(server: &str, name: &str) -> TestDb {
        let admin = ConnInfo::parse(server).unwrap();
        TestDb {
            name: name.to_string(),
            url: admin.with_dbname(name).redacted(),
            server: server.to_string(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `n` fresh databases copied from `template` (which must have no open connections): many
    /// databases in the same state without migrating each (fleet tests). Created ten at a time.
    pub fn clones(template: &TestDb, n: usize) -> Vec<TestDb> {
        let dbs: Vec<TestDb> = (0..n)
            .map(|i| TestDb::named(&template.server, &format!("{}_c{i}", template.name)))
            .collect();
        let sql: Vec<String> = dbs
            .iter()
            .map(|db| format!("CREATE DATABASE {} TEMPLATE {}", db.name, template.name))
            .collect();
        on_server_ten_at_a_time(&template.server, &sql);
        dbs
    }

    /// Drop many databases at once: each DROP DATABASE waits for a checkpoint (seconds on a busy
    /// server), and concurrent drops share them.
    pub fn drop_all(dbs: Vec<TestDb>) {
        let sql: Vec<String> = dbs
            .iter()
            .map(|db| format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name))
            .collect();
        if let Some(db) = dbs.first() {
            on_server_ten_at_a_time(&db.server, &sql);
        }
    }

    /// A copy of the project's demo migrations in this test's scratch dir.
    pub fn with_demo_migrations() -> TestDb {
        let db = TestDb::new();
        copy_dir(&repo().join("migrations"), &db.migrations());
        db
    }

    pub fn migrations(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    /// Write a migration file into this test's migrations dir.
    pub fn write_migration(&self, file: &str, sql: &str) {
        std::fs::create_dir_all(self.migrations()).unwrap();
        std::fs::write(self.migrations().join(file), sql).unwrap();
    }

    pub fn conn(&self) -> ConnInfo {
        ConnInfo::parse(&self.url).unwrap()
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (c, conn) = self.conn().pg.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c
    }

    /// Run SQL on a fresh connection.
    pub fn exec(&self, sql: &str) {
        block_on(async { self.client().await.batch_execute(sql).await.unwrap() })
    }

    /// First column of every row, as text.
    pub fn column(&self, sql: &str) -> Vec<String> {
        column_at(&self.url, sql)
    }

    pub fn scalar(&self, sql: &str) -> String {
        self.column(sql)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no row from {sql}"))
    }

    /// Applied versions in refinery's history table.
    pub fn applied(&self) -> Vec<u32> {
        if self.scalar("SELECT to_regclass('refinery_schema_history') IS NOT NULL") == "f" {
            return vec![];
        }
        self.column("SELECT version FROM refinery_schema_history ORDER BY version")
            .iter()
            .map(|v| v.parse().unwrap())
            .collect()
    }

    /// `(action, outcome)` of the audit events, oldest first.
    pub fn events(&self) -> Vec<(String, String)> {
        if self.scalar("SELECT to_regclass('pgshift_events') IS NOT NULL") == "f" {
            return vec![];
        }
        self.column("SELECT action || ' ' || outcome FROM pgshift_events ORDER BY id")
            .iter()
            .map(|s| {
                let (a, o) = s.split_once(' ').unwrap();
                (a.to_string(), o.to_string())
            })
            .collect()
    }

    /// `pg_dump --schema-only` of the user's schema (pgshift's own tables excluded).
    pub fn schema_dump(&self) -> String {
        let conn = self.conn();
        let out = Command::new("pg_dump")
            .args(["--schema-only", "--no-owner", "--no-privileges"])
            .args(["-T", "refinery_schema_history", "-T", "pgshift_*"])
            .arg("-h")
            .arg(conn.host())
            .arg("-p")
            .arg(conn.port().to_string())
            .arg("-U")
            .arg(conn.user())
            .arg(&self.name)
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| {
                !l.starts_with("--")
                    && !l.starts_with("SELECT pg_catalog.set_config")
                    && !l.starts_with("\\restrict")
                    && !l.starts_with("\\unrestrict")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The pgshift binary against this database, with a clean environment.
    pub fn pgshift(&self) -> Command {
        let mut c = pgshift_bare(self.dir.path());
        c.arg("--database-url")
            .arg(&self.url)
            .arg("--migrations")
            .arg(self.migrations());
        c
    }

    /// Run pgshift with `args`; stdin is closed (not a terminal).
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.pgshift()
                .args(args)
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let server = self.server.clone();
        // Drop runs outside any runtime; use a thread with its own.
        std::thread::spawn(move || {
            block_on(async {
                let admin = ConnInfo::parse(&server).unwrap();
                if let Ok((c, conn)) = admin.pg.connect(tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .ok();
                }
            })
        })
        .join()
        .ok();
    }
}

/// Run each statement on its own connection to `server` (its admin URL), ten at a time.
fn on_server_ten_at_a_time(server: &str, statements: &[String]) {
    let admin = ConnInfo::parse(server).unwrap();
    block_on(async {
        for chunk in statements.chunks(10) {
            let runs = chunk.iter().map(|sql| {
                let pg = admin.pg.clone();
                async move {
                    let (c, conn) = pg.connect(tokio_postgres::NoTls).await.unwrap();
                    tokio::spawn(conn);
                    c.batch_execute(sql).await.unwrap();
                }
            });
            futures_util::future::join_all(runs).await;
        }
    });
}

/// The binary with the user's environment stripped and its state under `dir`.
pub fn pgshift_bare(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgshift"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("PG") || k == "DATABASE_URL" || k.starts_with("PGSHIFT") || k == "NO_COLOR"
        {
            c.env_remove(&*k);
        }
    }
    c.env("PGSHIFT_DATA_DIR", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .current_dir(dir);
    c
}

/// Run pgshift with a clean environment (plus `env`), its state in `db`'s dir, `db`'s migrations,
/// stdin closed, and no `--database-url`: the connection comes from `args` (a URL, a config file) or
/// from `env` (`PG*`).
pub fn run_bare(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = pgshift_bare(db.dir.path());
    c.arg("--migrations").arg(db.migrations()).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.stdin(Stdio::null()).output().unwrap())
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The outcome of one pgshift process.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }
}

/// A second connection holding a lock (or any open transaction) until dropped.
pub struct Holder {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub pid: i32,
}

impl Holder {
    /// Run `sql` in an open transaction on a new connection and keep it open.
    pub fn hold(db: &TestDb, sql: &str) -> Holder {
        let conn = db.conn();
        let sql = sql.to_string();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            block_on(async move {
                let mut pg = conn.pg.clone();
                pg.application_name("test blocker");
                let (c, connection) = pg.connect(tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let pid: i32 = c
                    .query_one("SELECT pg_backend_pid()", &[])
                    .await
                    .unwrap()
                    .get(0);
                c.batch_execute("BEGIN").await.unwrap();
                c.batch_execute(&sql).await.unwrap();
                pid_tx.send(pid).unwrap();
                stop_rx.await.ok();
                c.batch_execute("ROLLBACK").await.ok();
            })
        });
        let pid = pid_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("blocker did not start");
        Holder {
            stop: Some(stop_tx),
            thread: Some(thread),
            pid,
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            s.send(()).ok();
        }
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

/// Poll `f` until it returns true or `timeout` passes (no fixed sleeps in tests).
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Collects a child's stderr on a thread so a test can wait for a line while it runs.
pub struct StderrLog(std::sync::Arc<std::sync::Mutex<String>>);

impl StderrLog {
    pub fn follow(stderr: std::process::ChildStderr) -> StderrLog {
        use std::io::BufRead;
        let buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let b = buf.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut s = b.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        StderrLog(buf)
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}
