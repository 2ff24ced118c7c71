//! Everything that speaks SQL: connections, pgshift's own tables, history, audit, the runner lock,
//! guarded step execution, lock-conflict views and the sandbox cluster.

pub mod apply;
pub mod audit;
pub mod blockers;
pub mod fleet;
pub mod history;
pub mod indexes;
pub mod lock;
pub mod sandbox;
pub mod schema;
pub mod terminate;

use std::time::Duration;

use tokio_postgres::Client;

use crate::config::ConnInfo;
use crate::error::{Error, Result};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One open connection and its backend pid.
pub struct Session {
    pub client: Client,
    pub pid: i32,
    pub conn: ConnInfo,
    /// What protects this connection (TLS mode, protocol, verification).
    pub tls: crate::tls::TlsState,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
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

/// `application_name` so that anyone looking at `pg_stat_activity` sees who runs what.
pub fn application_name(action: &str) -> String {
    let mut name = format!("pgshift {action} {}", operator());
    name.truncate(63);
    name
}

impl Session {
    pub async fn connect(conn: &ConnInfo, action: &str) -> Result<Session> {
        let mut pg = conn.pg.clone();
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(CONNECT_TIMEOUT);
        }
        pg.application_name(application_name(action));
        let limit = pg.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT);
        let (client, connection, tls) = crate::tls::open(conn, pg, limit).await?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("database connection ended: {e}");
            }
        });
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| Error::db("reading the backend pid", &e))?
            .get(0);
        Ok(Session {
            client,
            pid,
            conn: conn.clone(),
            tls,
            driver,
        })
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
