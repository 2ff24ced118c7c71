//! Configuration: TOML file + environment + flags -> one resolved [`Target`].
//!
//! Raw inputs are validated first, then resolved (ripgrep's lowargs -> hiargs). Precedence for the
//! file: `--config`, `PGSHIFT_CONFIG`, `./config/pgshift.toml`, `~/.config/pgshift/config.toml`.
//! Without a target in a file, `DATABASE_URL` and the libpq `PG*` variables and `~/.pgpass` work as
//! in psql. Passwords never leave [`ConnInfo`]: its `Display` and `Debug` redact them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

pub mod tls_params;

use tls_params::{SslMode, TlsSettings};

pub const SANDBOX_TARGET: &str = "sandbox";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub default_target: Option<String>,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
    /// Sections owned by their features, kept as raw TOML here and typed by the owning module.
    pub checklists: Option<toml::Table>,
    pub backfills: Option<toml::Table>,
    pub serve: Option<toml::Table>,
    pub startup: Option<toml::Table>,
    /// The operator screen's settings (`time = "local" | "utc"`), typed by `tui::clock`.
    pub tui: Option<toml::Table>,
    /// `[lint]`: baseline and thresholds, typed by `crate::lint::Settings`.
    pub lint: Option<toml::Table>,
    /// `[groups.NAME]`: fleets of targets, typed by `fleet::group`.
    pub groups: Option<toml::Table>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub dir: Option<PathBuf>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// `postgres://user@host:port/db` or libpq `key=value` pairs.
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub dbname: Option<String>,
    /// Name of an environment variable holding the password (never the password itself).
    pub password_env: Option<String>,
    pub environment: Option<Environment>,
    pub lock_timeout: Option<String>,
    pub statement_timeout: Option<String>,
    /// Signed so that a negative value gets the range in its error, not serde's "expected u32".
    pub retries: Option<i64>,
    pub lock_wait: Option<String>,
    pub migrations: Option<PathBuf>,
    /// A database pgshift may freely create and drop databases on, for checklist rehearsals.
    pub scratch_url: Option<String>,
    /// Refuse `up` on this target without a passed pre-deploy checklist in the last N hours.
    pub require_checklist_hours: Option<u32>,
    /// libpq's sslmode: disable, prefer, require, verify-ca, verify-full (wins over the URL's).
    pub sslmode: Option<String>,
    /// PEM file of the CA certificates to trust for verify-ca/verify-full, or `system`.
    pub sslrootcert: Option<PathBuf>,
    /// Fleets this target belongs to (`pgshift fleet status prod`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Hold backfill batches and no-transaction statements while a streaming replica's replay
    /// lag is above this (default 10s; `off` never waits).
    pub max_replica_lag: Option<String>,
    /// Replicas (`application_name` in `pg_stat_replication`) that must be streaming: `health`
    /// reports an error for each one that is not.
    pub expected_replicas: Option<Vec<String>>,
    /// Apply migrations below the applied head (merged late from a branch) without asking for
    /// `--out-of-order` each time.
    pub out_of_order: Option<bool>,
}

impl std::fmt::Debug for TargetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetConfig")
            .field("url", &self.url.as_deref().map(crate::secrets::redact))
            .field("host", &self.host)
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Production,
    Staging,
    #[default]
    Development,
    Test,
    Sandbox,
}

impl Environment {
    pub fn is_production(self) -> bool {
        self == Environment::Production
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Staging => "staging",
            Environment::Development => "development",
            Environment::Test => "test",
            Environment::Sandbox => "sandbox",
        }
    }
}

/// How a run waits: DDL on locks (bounded `lock_timeout`, retried with jittered exponential
/// backoff), writes on lagging replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Guard {
    #[serde(with = "millis")]
    pub lock_timeout: Duration,
    /// `None`: the server's setting is left alone.
    #[serde(with = "opt_millis")]
    pub statement_timeout: Option<Duration>,
    /// Attempts per step, the first included.
    pub retries: u32,
    #[serde(with = "millis")]
    pub backoff: Duration,
    #[serde(with = "millis")]
    pub max_backoff: Duration,
    /// Terminate sessions that blocked a step this long (`--terminate-blockers-after`, per run
    /// only: killing sessions is a deliberate decision, never a config default).
    #[serde(with = "opt_millis")]
    pub terminate_blockers_after: Option<Duration>,
    /// Before each backfill batch and each no-transaction statement, wait while a streaming
    /// replica's replay lag is above this. `None`: never wait (`--ignore-replica-lag`, or `off`).
    #[serde(with = "opt_millis")]
    pub max_replica_lag: Option<Duration>,
}

/// The default `max_replica_lag`: read replicas at most this stale because of our writes.
pub const DEFAULT_MAX_REPLICA_LAG: Duration = Duration::from_secs(10);

impl Default for Guard {
    fn default() -> Self {
        Guard {
            lock_timeout: Duration::from_millis(500),
            statement_timeout: None,
            retries: 10,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            terminate_blockers_after: None,
            max_replica_lag: Some(DEFAULT_MAX_REPLICA_LAG),
        }
    }
}

/// Serialize a Duration as whole milliseconds (JSON output); shared by every module.
pub(crate) mod millis {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

mod opt_millis {
    pub fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
}

/// Connection parameters. Holds the password, so it never prints it.
#[derive(Clone)]
pub struct ConnInfo {
    pub pg: tokio_postgres::Config,
    /// sslmode/sslrootcert, kept here because tokio-postgres knows only part of libpq's set.
    pub tls: TlsSettings,
}

impl ConnInfo {
    /// A URL or libpq `key=value` string; `PGSSLMODE`/`PGSSLROOTCERT` fill in TLS parameters it
    /// does not give, as in libpq.
    pub fn parse(url: &str) -> Result<ConnInfo> {
        let bad = |e: String| {
            Error::Usage(format!(
                "cannot parse database URL {}: {e}",
                crate::secrets::redact(url)
            ))
        };
        let (rest, given) = tls_params::split(url).map_err(bad)?;
        let pg: tokio_postgres::Config = rest.parse().map_err(|e| bad(format!("{e}")))?;
        let tls = TlsSettings::with_env_defaults(given).map_err(bad)?;
        Ok(ConnInfo { pg, tls })
    }

    /// Parameters from code (sandbox, samples): default TLS settings.
    pub fn from_pg(pg: tokio_postgres::Config) -> ConnInfo {
        ConnInfo {
            pg,
            tls: Default::default(),
        }
    }

    pub fn host(&self) -> String {
        use tokio_postgres::config::Host;
        match self.pg.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        }
    }

    pub fn port(&self) -> u16 {
        self.pg.get_ports().first().copied().unwrap_or(5432)
    }

    pub fn dbname(&self) -> String {
        self.pg
            .get_dbname()
            .or(self.pg.get_user())
            .unwrap_or("postgres")
            .to_string()
    }

    pub fn user(&self) -> String {
        self.pg.get_user().unwrap_or("postgres").to_string()
    }

    /// A URL for humans: no password, ever.
    pub fn redacted(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.user(),
            self.host(),
            self.port(),
            self.dbname()
        )
    }

    /// The same server, another database (tests, scratch rehearsals).
    pub fn with_dbname(&self, db: &str) -> ConnInfo {
        let mut pg = self.pg.clone();
        pg.dbname(db);
        ConnInfo {
            pg,
            tls: self.tls.clone(),
        }
    }
}

impl std::fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnInfo({})", self.redacted())
    }
}

/// A database to operate on, fully resolved.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub conn: ConnInfo,
    pub environment: Environment,
    pub guard: Guard,
    /// How long to wait for another runner's advisory lock.
    pub lock_wait: Duration,
    pub migrations: PathBuf,
    pub scratch_url: Option<String>,
    pub require_checklist_hours: Option<u32>,
    /// Where this target came from, for `status` and error messages.
    pub source: String,
    /// Replicas that must be streaming (`health` errors on one that is not).
    pub expected_replicas: Vec<String>,
    /// Apply pending migrations below the applied head without `--out-of-order`.
    pub out_of_order: bool,
}

impl Target {
    pub fn is_sandbox(&self) -> bool {
        self.environment == Environment::Sandbox
    }
}

/// Flags that override the file, shared by every subcommand.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub target: Option<String>,
    pub database_url: Option<String>,
    pub migrations: Option<PathBuf>,
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub lock_wait: Option<Duration>,
    /// `--ignore-replica-lag`: never wait for lagging replicas in this run.
    pub ignore_replica_lag: bool,
}

/// What configuration was found.
#[derive(Debug)]
pub enum Resolved {
    Target(Box<Target>),
    /// Nothing configured anywhere: the TUI offers the sandbox, commands explain how to configure.
    Nothing,
    /// `--target sandbox`, or nothing configured: the caller starts the sandbox and fills the URL.
    Sandbox(Box<Overrides>),
}

#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub file: ConfigFile,
    pub path: Option<PathBuf>,
    /// Things to tell the operator about the file (a password written in it), shown as warnings.
    pub warnings: Vec<String>,
}

impl Loaded {
    /// Find and parse the config file. A file that is named explicitly must exist; an unreadable or
    /// invalid file is an error, never silently skipped.
    pub fn find(explicit: Option<&Path>) -> Result<Loaded> {
        let candidates: Vec<(PathBuf, bool)> = if let Some(p) = explicit {
            vec![(p.to_path_buf(), true)]
        } else if let Some(p) = std::env::var_os("PGSHIFT_CONFIG") {
            vec![(PathBuf::from(p), true)]
        } else {
            let mut v = vec![(PathBuf::from("config/pgshift.toml"), false)];
            if let Some(dir) = config_home() {
                v.push((dir.join("pgshift").join("config.toml"), false));
            }
            v
        };
        for (path, required) in candidates {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let file = parse_file(&text).map_err(|message| Error::Config {
                        path: path.clone(),
                        message,
                    })?;
                    let warnings = password_warnings(&file, &path);
                    return Ok(Loaded {
                        file,
                        path: Some(path),
                        warnings,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => {
                    return Err(Error::Config {
                        path,
                        message: format!("cannot read: {e}"),
                    });
                }
            }
        }
        Ok(Loaded::default())
    }

    pub fn log_dir(&self) -> PathBuf {
        self.file
            .log
            .dir
            .clone()
            .unwrap_or_else(|| state_dir().join("logs"))
    }

    /// The configured target `name`, with the flags' overrides.
    pub fn target(&self, name: &str, o: &Overrides) -> Result<Target> {
        let t = self.file.targets.get(name).ok_or_else(|| {
            let known: Vec<_> = self.file.targets.keys().map(String::as_str).collect();
            Error::Usage(format!(
                "no target named {name:?} in {}; known targets: {}",
                self.path_display(),
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        build_target(
            name,
            t,
            o,
            &format!("target {name:?} in {}", self.path_display()),
        )
    }

    /// Resolve the target to operate on.
    pub fn resolve(&self, o: &Overrides) -> Result<Resolved> {
        let from_file = |name: &str| self.target(name, o);
        if let Some(url) = &o.database_url {
            let t = TargetConfig {
                url: Some(url.clone()),
                ..Default::default()
            };
            return Ok(Resolved::Target(Box::new(build_target(
                "url",
                &t,
                o,
                "--database-url",
            )?)));
        }
        if let Some(name) = &o.target {
            if name == SANDBOX_TARGET && !self.file.targets.contains_key(name) {
                return Ok(Resolved::Sandbox(Box::new(o.clone())));
            }
            return Ok(Resolved::Target(Box::new(from_file(name)?)));
        }
        if let Some(name) = &self.file.default_target {
            return Ok(Resolved::Target(Box::new(from_file(name)?)));
        }
        match self.file.targets.len() {
            1 => {
                let name = self.file.targets.keys().next().cloned().unwrap_or_default();
                return Ok(Resolved::Target(Box::new(from_file(&name)?)));
            }
            0 => {}
            _ => {
                return Err(Error::Usage(format!(
                    "{} defines several targets ({}) and no default_target; pick one with --target NAME",
                    self.path_display(),
                    self.file
                        .targets
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        match from_env()? {
            Some((conn, source)) => Ok(Resolved::Target(Box::new(Target {
                name: "env".into(),
                conn,
                environment: Environment::Development,
                guard: guard_from(&TargetConfig::default(), o)?,
                lock_wait: o.lock_wait.unwrap_or(DEFAULT_LOCK_WAIT),
                migrations: o.migrations.clone().unwrap_or_else(default_migrations),
                scratch_url: None,
                require_checklist_hours: None,
                source,
                expected_replicas: Vec::new(),
                out_of_order: false,
            }))),
            None => Ok(Resolved::Nothing),
        }
    }

    pub fn path_display(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the config".into())
    }
}

pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);

pub fn default_migrations() -> PathBuf {
    PathBuf::from("migrations")
}

/// A password written into the config file works, but the file gets copied, committed and backed
/// up: say where it belongs instead (never quoting it).
fn password_warnings(file: &ConfigFile, path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (name, t) in &file.targets {
        for (key, value) in [("url", &t.url), ("scratch_url", &t.scratch_url)] {
            if value
                .as_deref()
                .is_some_and(crate::secrets::contains_password)
            {
                out.push(format!(
                    "target {name:?} in {}: `{key}` holds a password. Config files get copied, committed and backed up; \
                     put it in an environment variable named by password_env = \"VAR\", or in ~/.pgpass \
                     (host:port:dbname:user:secret, mode 0600), and remove it from the file.",
                    path.display()
                ));
            }
        }
    }
    out
}

fn parse_file(text: &str) -> std::result::Result<ConfigFile, String> {
    // A TOML error quotes the offending line, which may hold a URL with its password.
    let file: ConfigFile =
        toml::from_str(text).map_err(|e| crate::secrets::redact(&e.to_string()).into_owned())?;
    for (name, t) in &file.targets {
        if t.url.is_some()
            && (t.host.is_some() || t.dbname.is_some() || t.user.is_some() || t.port.is_some())
        {
            return Err(format!(
                "target {name:?}: give either `url` or host/port/user/dbname, not both"
            ));
        }
    }
    Ok(file)
}

/// A target from its config entry (a file's `[targets.NAME]`, or one a fleet group generated).
pub fn build_target(name: &str, t: &TargetConfig, o: &Overrides, source: &str) -> Result<Target> {
    let config_err = |message: String| Error::Usage(format!("{source}: {message}"));
    let mut conn = match &t.url {
        Some(url) => ConnInfo::parse(url)?,
        None => match from_env()? {
            Some((conn, _)) => conn,
            None => libpq_defaults()?,
        },
    };
    if t.host.is_some() || t.port.is_some() {
        // tokio-postgres's `host`/`port` append to the list: on top of the environment's
        // defaults they would try the local socket (or DATABASE_URL's host) first.
        conn.pg = with_server(&conn.pg, t.host.as_deref(), t.port);
    }
    if let Some(u) = &t.user {
        conn.pg.user(u);
    }
    if let Some(d) = &t.dbname {
        conn.pg.dbname(d);
    }
    if let Some(m) = &t.sslmode {
        conn.tls.mode = SslMode::parse(m).map_err(config_err)?;
    }
    if let Some(p) = &t.sslrootcert {
        conn.tls.root_cert = Some(p.clone());
    }
    if let Some(var) = &t.password_env {
        let pw = std::env::var(var)
            .map_err(|_| config_err(format!("password_env names {var}, which is not set")))?;
        conn.pg.password(pw);
    }
    fill_password_from_pgpass(&mut conn);
    Ok(Target {
        name: name.to_string(),
        conn,
        environment: t.environment.unwrap_or_default(),
        guard: guard_from(t, o).map_err(|e| config_err(e.to_string()))?,
        lock_wait: match (&o.lock_wait, &t.lock_wait) {
            (Some(d), _) => *d,
            (None, Some(s)) => LOCK_WAIT_RANGE.parse(s).map_err(config_err)?,
            (None, None) => DEFAULT_LOCK_WAIT,
        },
        migrations: o
            .migrations
            .clone()
            .or_else(|| t.migrations.clone())
            .unwrap_or_else(default_migrations),
        scratch_url: t.scratch_url.clone(),
        require_checklist_hours: t.require_checklist_hours,
        source: source.to_string(),
        expected_replicas: t.expected_replicas.clone().unwrap_or_default(),
        out_of_order: t.out_of_order.unwrap_or(false),
    })
}

/// `pg` with its host and/or port replaced (not appended), everything else kept.
fn with_server(
    pg: &tokio_postgres::Config,
    host: Option<&str>,
    port: Option<u16>,
) -> tokio_postgres::Config {
    use tokio_postgres::config::Host;
    let mut out = tokio_postgres::Config::new();
    match host {
        Some(h) => {
            out.host(h);
        }
        None => {
            for h in pg.get_hosts() {
                match h {
                    Host::Tcp(h) => out.host(h),
                    #[cfg(unix)]
                    Host::Unix(p) => out.host_path(p),
                };
            }
            for a in pg.get_hostaddrs() {
                out.hostaddr(*a);
            }
        }
    }
    match port {
        Some(p) => {
            out.port(p);
        }
        None => {
            for p in pg.get_ports() {
                out.port(*p);
            }
        }
    }
    if let Some(u) = pg.get_user() {
        out.user(u);
    }
    if let Some(p) = pg.get_password() {
        out.password(p);
    }
    if let Some(d) = pg.get_dbname() {
        out.dbname(d);
    }
    if let Some(o) = pg.get_options() {
        out.options(o);
    }
    if let Some(a) = pg.get_application_name() {
        out.application_name(a);
    }
    if let Some(t) = pg.get_connect_timeout() {
        out.connect_timeout(*t);
    }
    out.ssl_mode(pg.get_ssl_mode());
    out.target_session_attrs(pg.get_target_session_attrs());
    out
}

fn guard_from(t: &TargetConfig, o: &Overrides) -> Result<Guard> {
    let mut g = Guard::default();
    let usage = |e: String| Error::Usage(e);
    if let Some(s) = &t.lock_timeout {
        g.lock_timeout = LOCK_TIMEOUT_RANGE.parse(s).map_err(usage)?;
    }
    if let Some(s) = &t.statement_timeout {
        g.statement_timeout =
            Some(STATEMENT_TIMEOUT_RANGE.parse(s).map_err(usage)?).filter(|d| !d.is_zero());
    }
    if let Some(r) = t.retries {
        g.retries = check_retries(r).map_err(usage)?;
    }
    if let Some(s) = &t.max_replica_lag {
        g.max_replica_lag = if s.trim().eq_ignore_ascii_case("off") {
            None
        } else {
            Some(parse_duration(s).map_err(|e| {
                Error::Usage(format!("max_replica_lag: {e} (or `off` to never wait)"))
            })?)
        };
    }
    if o.ignore_replica_lag {
        g.max_replica_lag = None;
    }
    // Flags were range-checked by their parsers; checked again for callers that build Overrides
    // themselves (the TUI, tests).
    if let Some(d) = o.lock_timeout {
        g.lock_timeout = LOCK_TIMEOUT_RANGE.check(d).map_err(usage)?;
    }
    if let Some(d) = o.statement_timeout {
        g.statement_timeout =
            Some(STATEMENT_TIMEOUT_RANGE.check(d).map_err(usage)?).filter(|d| !d.is_zero());
    }
    if let Some(r) = o.retries {
        g.retries = check_retries(r).map_err(usage)?;
    }
    Ok(g)
}

/// `DATABASE_URL`, else libpq's `PG*` variables when any of them is set.
fn from_env() -> Result<Option<(ConnInfo, String)>> {
    if let Some(url) = std::env::var("DATABASE_URL").ok().filter(|s| !s.is_empty()) {
        let mut conn = ConnInfo::parse(&url)?;
        fill_password_from_pgpass(&mut conn);
        return Ok(Some((conn, "DATABASE_URL".into())));
    }
    const VARS: [&str; 5] = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER"];
    if VARS.iter().any(|v| std::env::var_os(v).is_some()) {
        let mut conn = libpq_defaults()?;
        fill_password_from_pgpass(&mut conn);
        return Ok(Some((conn, "PG* environment".into())));
    }
    Ok(None)
}

/// The connection psql would make from the environment alone.
fn libpq_defaults() -> Result<ConnInfo> {
    let env = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    let mut pg = tokio_postgres::Config::new();
    let host = env("PGHOST")
        .or_else(|| env("PGHOSTADDR"))
        .unwrap_or_else(|| {
            ["/var/run/postgresql", "/tmp"]
                .into_iter()
                .find(|d| Path::new(d).exists())
                .unwrap_or("localhost")
                .to_string()
        });
    pg.host(&host);
    pg.port(env("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432));
    let user = env("PGUSER")
        .or_else(|| env("USER"))
        .unwrap_or_else(|| "postgres".into());
    pg.dbname(env("PGDATABASE").as_deref().unwrap_or(&user));
    pg.user(&user);
    if let Some(pw) = env("PGPASSWORD") {
        pg.password(pw);
    }
    if let Some(t) = env("PGCONNECT_TIMEOUT").and_then(|t| t.parse().ok()) {
        pg.connect_timeout(Duration::from_secs(t));
    }
    let tls = TlsSettings::with_env_defaults(Default::default())
        .map_err(|e| Error::Usage(format!("PG* environment: {e}")))?;
    Ok(ConnInfo { pg, tls })
}

/// Look the password up in `PGPASSFILE` or `~/.pgpass` when none was given, as libpq does.
fn fill_password_from_pgpass(conn: &mut ConnInfo) {
    if conn.pg.get_password().is_some() {
        return;
    }
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| home_dir().map(|h| h.join(".pgpass")));
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return;
    };
    let port = conn.port().to_string();
    if let Some(pw) = pgpass_lookup(&text, &conn.host(), &port, &conn.dbname(), &conn.user()) {
        conn.pg.password(pw);
    }
}

/// Find the password in pgpass text (`host:port:db:user:password`, `*` wildcards, `\` escapes).
pub fn pgpass_lookup(text: &str, host: &str, port: &str, db: &str, user: &str) -> Option<String> {
    let host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(5);
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() != 5 {
            continue;
        }
        let ok = |f: &str, v: &str| f == "*" || f == v;
        if ok(&fields[0], host)
            && ok(&fields[1], port)
            && ok(&fields[2], db)
            && ok(&fields[3], user)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

/// `500ms`, `2s`, `1m`, `1h`, `0`. Never panics: a value too large for a `Duration` (or one that
/// is not a number) is an error, as is a negative one.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 2s, 1m)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "" => return Err(format!("{s:?} needs a unit: ms, s, m or h")),
        u => return Err(format!("{s:?}: unknown unit {u:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is far too long a duration"))
}

/// A duration in the largest unit [`parse_duration`] reads back exactly: `500ms`, `2s`, `10m`, `24h`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0".into(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// PostgreSQL keeps `lock_timeout` and `statement_timeout` in milliseconds as a C `int`: a value
/// above `INT_MAX` ms is refused by the server, so it is refused here, before anything runs.
pub const SERVER_MAX_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// The allowed range of one duration setting; its errors name the setting and the range (exit 2).
#[derive(Debug, Clone, Copy)]
pub struct DurationRange {
    pub setting: &'static str,
    pub min: Duration,
    pub max: Duration,
    /// Why `0` is refused, when it is not in the range (`None`: 0 is allowed).
    pub zero_refused: Option<&'static str>,
}

/// `lock_timeout`: DDL queued behind a lock for longer than 10 minutes already stalls every query
/// on the table; a longer wait is never what an operator means.
pub const LOCK_TIMEOUT_RANGE: DurationRange = DurationRange {
    setting: "lock_timeout",
    min: Duration::from_millis(1),
    max: Duration::from_secs(600),
    zero_refused: Some(
        "lock_timeout 0 would let DDL wait forever behind a lock and stall the app; use e.g. 500ms",
    ),
};

/// `statement_timeout`: 0 leaves the server's setting; otherwise up to the server's limit (long
/// index builds on big tables are legitimate).
pub const STATEMENT_TIMEOUT_RANGE: DurationRange = DurationRange {
    setting: "statement_timeout",
    min: Duration::ZERO,
    max: SERVER_MAX_TIMEOUT,
    zero_refused: None,
};

/// `lock_wait`: how long to wait for another pgshift run; 0 tries once.
pub const LOCK_WAIT_RANGE: DurationRange = DurationRange {
    setting: "lock_wait",
    min: Duration::ZERO,
    max: Duration::from_secs(24 * 3600),
    zero_refused: None,
};

/// `--terminate-blockers-after`: kill a blocker after this long (never 0: that is not a decision
/// an operator makes by accident).
pub const TERMINATE_AFTER_RANGE: DurationRange = DurationRange {
    setting: "terminate_blockers_after",
    min: Duration::from_millis(1),
    max: Duration::from_secs(24 * 3600),
    zero_refused: Some("terminate_blockers_after 0 would kill every blocker at once; use e.g. 30s"),
};

/// Attempts per step, the first included.
pub const RETRIES_RANGE: std::ops::RangeInclusive<u32> = 1..=1000;

impl DurationRange {
    fn allowed(&self) -> String {
        let min = if self.min.is_zero() {
            "0".to_string()
        } else {
            format_duration(self.min)
        };
        format!(
            "allowed: {min} to {}{}",
            format_duration(self.max),
            if self.max == SERVER_MAX_TIMEOUT {
                " (PostgreSQL's limit, 2147483647ms)"
            } else {
                ""
            }
        )
    }

    /// Parse and check `s`; the error names the setting and the allowed range.
    pub fn parse(&self, s: &str) -> std::result::Result<Duration, String> {
        let d =
            parse_duration(s).map_err(|e| format!("{}: {e}; {}", self.setting, self.allowed()))?;
        self.check(d)
    }

    pub fn check(&self, d: Duration) -> std::result::Result<Duration, String> {
        if d.is_zero() {
            if let Some(why) = self.zero_refused {
                return Err(format!("{why} ({})", self.allowed()));
            }
            return Ok(d);
        }
        if d < self.min.max(Duration::from_millis(1)) || d > self.max {
            return Err(format!(
                "{} {} is out of range; {}",
                self.setting,
                format_duration(d),
                self.allowed()
            ));
        }
        Ok(d)
    }
}

/// Check an attempt count; the error names the setting and the allowed range.
pub fn check_retries(r: impl Into<i64>) -> std::result::Result<u32, String> {
    let r: i64 = r.into();
    match u32::try_from(r) {
        Ok(n) if RETRIES_RANGE.contains(&n) => Ok(n),
        _ => Err(format!(
            "retries {r} is out of range; allowed: {} to {} (attempts per step, the first included)",
            RETRIES_RANGE.start(),
            RETRIES_RANGE.end()
        )),
    }
}

/// `--retries N` on the command line (clap value parser).
pub fn retries_arg(s: &str) -> std::result::Result<u32, String> {
    let r = s.trim().parse::<i64>().map_err(|_| {
        format!(
            "{s:?} is not a whole number; allowed: {} to {}",
            RETRIES_RANGE.start(),
            RETRIES_RANGE.end()
        )
    })?;
    check_retries(r)
}

/// Clap value parsers for the duration flags: parsed and range-checked before anything runs.
pub fn lock_timeout_arg(s: &str) -> std::result::Result<Duration, String> {
    LOCK_TIMEOUT_RANGE.parse(s)
}

pub fn statement_timeout_arg(s: &str) -> std::result::Result<Duration, String> {
    STATEMENT_TIMEOUT_RANGE.parse(s)
}

pub fn lock_wait_arg(s: &str) -> std::result::Result<Duration, String> {
    LOCK_WAIT_RANGE.parse(s)
}

pub fn terminate_after_arg(s: &str) -> std::result::Result<Duration, String> {
    TERMINATE_AFTER_RANGE.parse(s)
}

pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn config_home() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| home_dir().map(|h| h.join(".config")))
}

/// `$PGSHIFT_DATA_DIR`, else `$XDG_STATE_HOME/pgshift`, else `~/.local/state/pgshift`.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PGSHIFT_DATA_DIR").filter(|s| !s.is_empty()) {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_STATE_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| home_dir().map(|h| h.join(".local").join("state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("pgshift")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("500").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("5 fortnights").is_err());
    }

    #[test]
    fn target_host_and_port_replace_the_environment_defaults() {
        let t = TargetConfig {
            host: Some("db.internal".into()),
            port: Some(6432),
            user: Some("migrator".into()),
            ..Default::default()
        };
        let target = build_target("prod", &t, &Overrides::default(), "test").unwrap();
        assert_eq!(
            target.conn.pg.get_hosts(),
            &[tokio_postgres::config::Host::Tcp("db.internal".into())]
        );
        assert_eq!(target.conn.pg.get_ports(), &[6432]);
        assert_eq!(
            target.conn.redacted(),
            format!(
                "postgres://migrator@db.internal:6432/{}",
                target.conn.dbname()
            )
        );
    }

    #[test]
    fn passwords_are_redacted_everywhere() {
        let c = ConnInfo::parse("postgres://app:s3cret@db.example:6432/prod").unwrap();
        assert_eq!(c.to_string(), "postgres://app@db.example:6432/prod");
        assert!(!format!("{c:?}").contains("s3cret"));
        let e = ConnInfo::parse("host=h password='x s3cret' user=u bogus").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = ConnInfo::parse("postgres://u@h/db?password=s3cret&bogus=1").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = parse_file("[targets.p]\nurl = \"postgres://u:s3cret@h/db\n").unwrap_err();
        assert!(!e.contains("s3cret") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn pgpass_matches_with_wildcards_and_escapes() {
        let text =
            "# comment\nother:5432:*:app:nope\ndb.example:*:prod:app:pa\\:ss\n*:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(text, "db.example", "6432", "prod", "app").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            pgpass_lookup(text, "x", "1", "y", "z").as_deref(),
            Some("fallback")
        );
    }

    #[test]
    fn unknown_config_keys_are_errors() {
        let e = parse_file("[targets.prod]\nurl = \"postgres://h/db\"\nlock_timout = \"1s\"\n")
            .unwrap_err();
        assert!(e.contains("lock_timout"), "{e}");
        let e =
            parse_file("[targets.prod]\nurl = \"postgres://h/db\"\nhost = \"x\"\n").unwrap_err();
        assert!(e.contains("either `url`"), "{e}");
        let f = parse_file("[targets.prod]\nurl = \"postgres://h/db\"\nenvironment = \"production\"\n[checklists]\nx = 1\n").unwrap();
        assert!(f.targets["prod"].environment.unwrap().is_production());
    }
}
