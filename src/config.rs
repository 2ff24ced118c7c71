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
    pub retries: Option<u32>,
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
}

impl std::fmt::Debug for TargetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetConfig")
            .field("url", &self.url.as_deref().map(redact_url))
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

/// How DDL waits for locks: bounded `lock_timeout`, retried with jittered exponential backoff.
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
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            lock_timeout: Duration::from_millis(500),
            statement_timeout: None,
            retries: 10,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            terminate_blockers_after: None,
        }
    }
}

impl Guard {
    /// Delay before attempt `attempt` (1-based retry count): exponential, capped, with jitter in
    /// [50%, 100%] so that several runners do not retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff
            .saturating_mul(
                1u32.checked_shl(attempt.saturating_sub(1).min(16))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max_backoff);
        exp.mul_f64(0.5 + fastrand::f64() * 0.5)
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
    pub tls: crate::tls::TlsSettings,
}

impl ConnInfo {
    /// A URL or libpq `key=value` string; `PGSSLMODE`/`PGSSLROOTCERT` fill in TLS parameters it
    /// does not give, as in libpq.
    pub fn parse(url: &str) -> Result<ConnInfo> {
        let bad = |e: String| {
            Error::Usage(format!(
                "cannot parse database URL {}: {e}",
                redact_url(url)
            ))
        };
        let (rest, given) = crate::tls::params::split(url).map_err(bad)?;
        let pg: tokio_postgres::Config = rest.parse().map_err(|e| bad(format!("{e}")))?;
        let tls = crate::tls::TlsSettings::with_env_defaults(given).map_err(bad)?;
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

/// Strip a password from a URL-ish string before showing it.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((auth, host)) = rest.split_once('@')
    {
        let user = auth.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}@{host}");
    }
    // key=value form: drop password=...
    url.split_whitespace()
        .filter(|kv| !kv.to_ascii_lowercase().starts_with("password="))
        .collect::<Vec<_>>()
        .join(" ")
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
                    return Ok(Loaded {
                        file,
                        path: Some(path),
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

fn parse_file(text: &str) -> std::result::Result<ConfigFile, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
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
        conn.tls.mode = crate::tls::SslMode::parse(m).map_err(config_err)?;
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
            (None, Some(s)) => parse_duration(s).map_err(config_err)?,
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
    let parse = |s: &str| parse_duration(s).map_err(Error::Usage);
    if let Some(s) = &t.lock_timeout {
        g.lock_timeout = parse(s)?;
    }
    if let Some(s) = &t.statement_timeout {
        g.statement_timeout = Some(parse(s)?).filter(|d| !d.is_zero());
    }
    if let Some(r) = t.retries {
        g.retries = r;
    }
    if let Some(d) = o.lock_timeout {
        g.lock_timeout = d;
    }
    if let Some(d) = o.statement_timeout {
        g.statement_timeout = Some(d).filter(|d| !d.is_zero());
    }
    if let Some(r) = o.retries {
        g.retries = r;
    }
    if g.retries == 0 {
        return Err(Error::Usage(
            "retries must be at least 1 (the first attempt counts)".into(),
        ));
    }
    if g.lock_timeout.is_zero() {
        return Err(Error::Usage(
            "lock_timeout 0 would let DDL wait forever behind a lock and stall the app; use e.g. 500ms".into(),
        ));
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
    let tls = crate::tls::TlsSettings::with_env_defaults(Default::default())
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

/// `500ms`, `2s`, `1m`, `1h`, `0`.
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
    Ok(Duration::from_secs_f64(secs))
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
        assert_eq!(
            redact_url("postgres://app:s3cret@h/db"),
            "postgres://app@h/db"
        );
        assert_eq!(redact_url("host=h password=s3cret user=u"), "host=h user=u");
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
    fn backoff_grows_is_capped_and_jittered() {
        let g = Guard::default();
        for attempt in 1..30 {
            let d = g.delay(attempt);
            let full = g
                .backoff
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(g.max_backoff);
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
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
