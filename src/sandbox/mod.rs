//! The sandbox: a private PostgreSQL cluster made with the system's `initdb`/`pg_ctl` in pgshift's
//! data dir, listening only on a Unix socket inside that dir (trust auth for whoever can reach the
//! socket: the owner, and root). pgshift never touches a cluster it did not create: it only acts on
//! a data dir that carries its marker file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::process::Command;

pub mod demo;

use crate::config::{ConnInfo, Environment, Guard, Target};
use crate::error::{Error, Result};
use crate::event::{Level, Reporter};

pub const DATABASE: &str = "demo";
const MARKER: &str = "pgshift-sandbox";
const PORT: u16 = 5432;

#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Holds `data/`, the socket and the server log.
    pub dir: PathBuf,
    bin: PathBuf,
    /// Unprivileged account to run the server as when we are root.
    run_as: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Started {
    /// We started it: stop it when we exit.
    Now,
    /// It was already running (e.g. `pgshift sandbox start` earlier): leave it running.
    Already,
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `initdb` and `pg_ctl` from PATH, else the newest `/usr/lib/postgresql/*/bin`.
fn find_bin() -> Option<PathBuf> {
    let in_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p).find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    in_path.or_else(|| {
        let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| {
                let e = e.ok()?;
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((v, bin))
            })
            .collect();
        dirs.sort();
        dirs.pop().map(|(_, b)| b)
    })
}

impl Sandbox {
    /// Where the sandbox lives: `$PGSHIFT_DATA_DIR/sandbox`, else the state dir; for root (whose
    /// home the `postgres` account cannot enter) `/var/lib/pgshift/sandbox`.
    pub fn locate() -> Result<Sandbox> {
        let bin = find_bin().ok_or_else(|| {
            Error::Failed(
                "the sandbox needs PostgreSQL's initdb and pg_ctl, found neither in PATH nor under /usr/lib/postgresql/*/bin.\n  Install the server (e.g. apt-get install postgresql) or configure a database with DATABASE_URL.".into(),
            )
        })?;
        let root = is_root();
        let dir = match std::env::var_os("PGSHIFT_DATA_DIR").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d).join("sandbox"),
            None if root => PathBuf::from("/var/lib/pgshift/sandbox"),
            None => crate::config::state_dir().join("sandbox"),
        };
        let run_as = if root {
            let exists = std::process::Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if !exists {
                return Err(Error::Failed(
                    "PostgreSQL refuses to run as root and there is no `postgres` account to run the sandbox as.\n  Run pgshift as an ordinary user, or create the account: useradd --system postgres".into(),
                ));
            }
            Some("postgres".to_string())
        } else {
            None
        };
        Ok(Sandbox { dir, bin, run_as })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn conn(&self) -> ConnInfo {
        let mut pg = tokio_postgres::Config::new();
        pg.host_path(self.data());
        pg.port(PORT);
        pg.user("postgres");
        pg.dbname(DATABASE);
        ConnInfo::from_pg(pg)
    }

    pub fn url(&self) -> String {
        format!(
            "postgresql://postgres@{}:{PORT}/{DATABASE}",
            percent_path(&self.data())
        )
    }

    /// A target for the sandbox; `migrations` is the catalog it is loaded from.
    pub fn target(&self, migrations: &Path, guard: Guard) -> Target {
        Target {
            name: crate::config::SANDBOX_TARGET.into(),
            conn: self.conn(),
            environment: Environment::Sandbox,
            guard,
            lock_wait: crate::config::DEFAULT_LOCK_WAIT,
            migrations: migrations.to_path_buf(),
            scratch_url: None,
            require_checklist_hours: None,
            source: format!("sandbox in {}", self.dir.display()),
            expected_replicas: Vec::new(),
            out_of_order: false,
        }
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    async fn run(&self, mut c: Command, what: &str) -> Result<()> {
        let out = c
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| Error::io(format!("running {what}"), e))?;
        if !out.status.success() {
            return Err(Error::Failed(format!(
                "sandbox: {what} failed ({}): {}\n  See {} for the server log.",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                self.dir.join("server.log").display()
            )));
        }
        Ok(())
    }

    pub fn exists(&self) -> bool {
        self.dir.join(MARKER).is_file() && self.data().join("PG_VERSION").is_file()
    }

    pub async fn is_running(&self) -> bool {
        if !self.exists() {
            return false;
        }
        let mut c = self.command("pg_ctl");
        c.arg("status").arg("-D").arg(self.data());
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        matches!(c.status().await, Ok(s) if s.success())
    }

    fn prepare_dir(&self) -> Result<()> {
        let io = |what: &str, e| Error::io(format!("{what} {}", self.dir.display()), e);
        std::fs::create_dir_all(&self.dir).map_err(|e| io("creating", e))?;
        if let Some(parent) = self.dir.parent() {
            // The server account must be able to enter the parent.
            if self.run_as.is_some() {
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| io("setting permissions of", e))?;
            }
        }
        if let Some(user) = &self.run_as {
            let ok = std::process::Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&self.dir)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                return Err(Error::Failed(format!(
                    "sandbox: cannot hand {} to the {user} account (chown failed)",
                    self.dir.display()
                )));
            }
        }
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io("setting permissions of", e))
    }

    async fn init(&self, reporter: &Reporter) -> Result<()> {
        if self.data().exists() && !self.dir.join(MARKER).is_file() {
            return Err(Error::Refused(format!(
                "{} holds a cluster pgshift did not create; refusing to touch it. Set PGSHIFT_DATA_DIR to another place.",
                self.data().display()
            )));
        }
        self.prepare_dir()?;
        reporter.log(
            Level::Info,
            format!("sandbox: initdb in {}", self.data().display()),
        );
        let mut c = self.command("initdb");
        c.arg("-D").arg(self.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        self.run(c, "initdb").await?;
        std::fs::write(
            self.dir.join(MARKER),
            "created by pgshift; `pgshift sandbox stop` stops it\n",
        )
        .map_err(|e| Error::io("writing the sandbox marker", e))?;
        Ok(())
    }

    async fn start_server(&self) -> Result<()> {
        let data = self.data();
        let mut c = self.command("pg_ctl");
        c.arg("start")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(data.join("server.log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-c listen_addresses='' -c port={PORT} -k {} -c fsync=off -c max_connections=100",
                data.display()
            ));
        self.run(c, "pg_ctl start").await
    }

    /// Make sure the sandbox runs and holds the demo; create and load it on first use.
    pub async fn ensure(&self, migrations: &Path, reporter: &Reporter) -> Result<Started> {
        let fresh = !self.exists();
        if fresh {
            self.init(reporter).await?;
        }
        let started = if self.is_running().await {
            Started::Already
        } else {
            reporter.log(Level::Info, "sandbox: starting the cluster");
            self.start_server().await?;
            Started::Now
        };
        if fresh || !self.is_loaded().await {
            self.load_demo(migrations, reporter).await?;
        }
        Ok(started)
    }

    async fn is_loaded(&self) -> bool {
        crate::db::Session::connect(&self.conn(), "sandbox")
            .await
            .is_ok()
    }

    async fn load_demo(&self, migrations: &Path, reporter: &Reporter) -> Result<()> {
        let admin =
            crate::db::Session::connect(&self.conn().with_dbname("postgres"), "sandbox").await?;
        crate::db::database::create(&admin, DATABASE)
            .await
            .map_err(|e| Error::db("creating the sandbox database", &e))?;
        drop(admin);
        demo::load(&self.target(migrations, Guard::default()), reporter).await
    }

    pub async fn stop(&self) -> Result<()> {
        if !self.is_running().await {
            return Ok(());
        }
        let mut c = self.command("pg_ctl");
        c.arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w"]);
        self.run(c, "pg_ctl stop").await
    }

    /// Stop and delete the sandbox; only ever a directory that carries our marker.
    pub async fn destroy(&self) -> Result<()> {
        if !self.dir.exists() {
            return Ok(());
        }
        if !self.dir.join(MARKER).is_file() {
            return Err(Error::Refused(format!(
                "{} has no pgshift marker; refusing to delete it",
                self.dir.display()
            )));
        }
        self.stop().await?;
        std::fs::remove_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("deleting {}", self.dir.display()), e))
    }
}

fn percent_path(p: &Path) -> String {
    p.display().to_string().replace('/', "%2F")
}
