//! Everything that speaks SQL: connections, pgshift's own tables, history, audit, the runner lock,
//! guarded step execution and lock-conflict views.

pub mod apply;
pub mod audit;
pub mod backfill_batches;
pub mod backfill_runs;
pub mod blockers;
pub mod checklist_runs;
pub mod checks;
pub mod database;
pub mod fleet;
pub mod history;
pub mod indexes;
pub mod lock;
pub mod pooler;
pub mod retry;
pub mod schema;
pub mod table_stats;
pub mod terminate;
pub mod topology;

use std::time::Duration;

use tokio_postgres::Client;

use crate::config::ConnInfo;
use crate::error::{Error, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Transaction control for a `&Session` (whose client cannot lend out a `Transaction`).
pub(crate) const BEGIN: &str = "BEGIN";
pub(crate) const COMMIT: &str = "COMMIT";
pub(crate) const ROLLBACK: &str = "ROLLBACK";

/// Where a `SET` holds: the session, or the transaction (`SET LOCAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Session,
    Local,
}

/// `SET [LOCAL] setting = ms`: the one place a timeout becomes SQL. Integers from our own
/// `Duration`s, so no user text reaches it; `None` is 0, no limit; below 1 ms rounds up to 1 (0
/// would mean none).
pub(crate) fn set_timeout(scope: Scope, setting: &str, limit: Option<Duration>) -> String {
    let ms = limit.map_or(0, |d| d.as_millis().max(1));
    match scope {
        Scope::Session => format!("SET {setting} = {ms}"),
        Scope::Local => format!("SET LOCAL {setting} = {ms}"),
    }
}

/// One open connection and its backend pid.
pub struct Session {
    pub client: Client,
    pub pid: i32,
    pub conn: ConnInfo,
    /// What protects this connection (TLS mode, protocol, verification).
    pub tls: crate::tls::TlsState,
    /// Set once [`pooler::require_session`] has verified this is a real session (checked once,
    /// before the first advisory lock).
    session_verified: std::sync::atomic::AtomicBool,
    /// Runs the connection; taken when the session is dropped (see [`close`]).
    driver: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            close::start(driver);
        }
    }
}

/// Closing connections. Once its client is dropped, a connection's driver sends `Terminate` as
/// soon as the server has answered everything sent: an idle session closes at once and cleanly,
/// where cutting the socket left "could not receive data from client: Connection reset by peer"
/// in the server log for every pgshift command (200 lines per `fleet status` of 200 targets).
/// A session still waiting on a statement (a run interrupted mid-step) is cut after [`GRACE`],
/// so its server sees the client gone and rolls the step back, as before.
pub mod close {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::Notify;
    use tokio::task::JoinHandle;

    /// How long a dropped session may wait for its server's answers before the socket is cut.
    pub const GRACE: Duration = Duration::from_millis(250);
    /// How long the process waits at exit for closes under way (a little over [`GRACE`]).
    pub const AT_EXIT: Duration = Duration::from_millis(400);

    static UNDER_WAY: AtomicUsize = AtomicUsize::new(0);
    static DONE: Notify = Notify::const_new();

    pub(super) fn start(mut driver: JoinHandle<()>) {
        // Outside a runtime nothing can wait for the driver: cut it (the old behaviour).
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            driver.abort();
            return;
        };
        UNDER_WAY.fetch_add(1, Ordering::SeqCst);
        rt.spawn(async move {
            if tokio::time::timeout(GRACE, &mut driver).await.is_err() {
                driver.abort();
            }
            UNDER_WAY.fetch_sub(1, Ordering::SeqCst);
            DONE.notify_waiters();
        });
    }

    /// Wait (up to `limit`) until every dropped session has closed. Called before the runtime
    /// ends, which would otherwise cut them.
    pub async fn settled(limit: Duration) {
        let all_closed = async {
            loop {
                let done = DONE.notified();
                if UNDER_WAY.load(Ordering::SeqCst) == 0 {
                    return;
                }
                done.await;
            }
        };
        let _ = tokio::time::timeout(limit, all_closed).await;
    }
}

/// Who is running pgshift: `user@host`, for the audit table and `application_name`.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".into());
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{user}@{host}")
}

/// The login name of our uid from /etc/passwd (cron, systemd and CI often set no USER).
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2) == Some(&uid.as_str())).then(|| f[0].to_string())
    })
}

/// PostgreSQL keeps the first 63 bytes of `application_name` (NAMEDATALEN - 1).
const APPLICATION_NAME_MAX: usize = 63;

/// `application_name` so that anyone looking at `pg_stat_activity` sees who runs what.
pub fn application_name(action: &str) -> String {
    let name = format!("pgshift {action} {}", operator());
    truncate_bytes(&crate::secrets::redact(&name), APPLICATION_NAME_MAX).to_string()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary (a user name
/// like `jürgen` must not be cut inside its `ü`).
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Session {
    /// Every later statement of this session waits at most `limit` for a lock (`None`: without
    /// limit).
    pub async fn set_lock_timeout(&self, limit: Option<Duration>) -> Result<()> {
        let sql = set_timeout(Scope::Session, "lock_timeout", limit);
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::db("setting lock_timeout", &e))
    }

    pub async fn connect(conn: &ConnInfo, action: &str) -> Result<Session> {
        let mut pg = conn.pg.clone();
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(CONNECT_TIMEOUT);
        }
        pg.application_name(application_name(action));
        let limit = pg.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT);
        let mut attempt = 0;
        let (client, driver, pid, tls) = loop {
            attempt += 1;
            let (client, connection, tls) = crate::tls::open(conn, pg.clone(), limit).await?;
            let driver = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!("database connection ended: {e}");
                }
            });
            // Simple protocol: no prepared statement, so a transaction pooler cannot clash with it.
            match pooler::pid_from(&client, SESSION_SETUP)
                .await
                .map_err(|e| Error::db("reading the backend pid", &e))?
            {
                Some(pid) => break (client, driver, pid, tls),
                // Replies out of step with queries: nothing on this connection can be trusted,
                // so it is dropped before anything else is sent, and a fresh one tried once the
                // pooler has had time to finish resetting the server connection it handed us.
                None if attempt < OUT_OF_STEP_ATTEMPTS => {
                    tracing::warn!(
                        "{}: first query answered out of step (a pooler's stale reply); reconnecting",
                        conn.redacted()
                    );
                    driver.abort();
                    tokio::time::sleep(OUT_OF_STEP_PAUSE * attempt as u32).await;
                }
                None => {
                    driver.abort();
                    return Err(pooler::out_of_step(&conn.redacted(), attempt));
                }
            }
        };
        let session = Session {
            client,
            pid,
            conn: conn.clone(),
            tls,
            session_verified: Default::default(),
            driver: Some(driver),
        };
        // A transaction pool shows itself here when it moves us to another backend.
        pooler::check_stable(&session).await?;
        Ok(session)
    }

    pub async fn server_info(&self) -> Result<ServerInfo> {
        let row = self
            .client
            .query_one(SERVER_INFO_QUERY, &[])
            .await
            .map_err(|e| Error::db("reading server info", &e))?;
        Ok(ServerInfo {
            version: row.get(0),
            database: row.get(1),
            role: row.get(2),
            read_only: row.get::<_, String>(3) == "on",
            tls: self.tls,
        })
    }
}

/// Fresh connections tried when the first reply is out of step (see [`pooler::out_of_step`]).
const OUT_OF_STEP_ATTEMPTS: usize = 4;
const OUT_OF_STEP_PAUSE: Duration = Duration::from_millis(100);

/// The backend pid, and on PostgreSQL 14+ `client_connection_check_interval`: a backend whose
/// client died (kill -9, a dropped link) stops its statement within a second, rolls back and
/// releases the runner lock, instead of running a long step to its end first. Older servers
/// notice only when they next write to the client (see README, "How a run stays safe"). Set in
/// the same round trip as the pid; CASE keeps the call off servers that lack the setting.
const SESSION_SETUP: &str = "SELECT pg_backend_pid(), \
     CASE WHEN current_setting('server_version_num')::int >= 140000 \
     THEN set_config('client_connection_check_interval', '1s', false) END";

const SERVER_INFO_QUERY: &str = "SELECT current_setting('server_version'), current_database(), \
     current_user::text, current_setting('default_transaction_read_only')";

#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerInfo {
    pub version: String,
    pub database: String,
    pub role: String,
    pub read_only: bool,
    /// The connection's TLS state (`tls` in JSON: mode, encrypted, protocol, verified).
    pub tls: crate::tls::TlsState,
}

/// Format a timestamp for JSON and the audit table.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_whole_milliseconds_never_zero_unless_unlimited() {
        let ms = |m| Some(Duration::from_micros(m));
        assert_eq!(
            set_timeout(Scope::Local, "lock_timeout", ms(400)),
            "SET LOCAL lock_timeout = 1"
        );
        assert_eq!(
            set_timeout(Scope::Session, "statement_timeout", ms(2_500_000)),
            "SET statement_timeout = 2500"
        );
        assert_eq!(
            set_timeout(Scope::Session, "lock_timeout", None),
            "SET lock_timeout = 0"
        );
    }
}
