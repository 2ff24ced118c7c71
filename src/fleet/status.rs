//! `fleet status`: one row per target, gathered concurrently with bounded parallelism and a
//! per-target timeout. A target that cannot be asked is a row saying why, never a failure of the
//! whole command.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::catalog::Revision;
use crate::config::{Environment, Target};
use crate::db::Session;
use crate::db::lock::{self, Holder};
use crate::error::{Error, ExitCode};
use crate::health::{self, HealthStatus, MigrationState};
use crate::text::first_line;

use super::{Catalogs, bounded};

/// What one target looks like now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub target: String,
    pub environment: Environment,
    pub url: String,
    pub state: RowState,
    pub current: Option<Revision>,
    pub head: Option<Revision>,
    pub pending: Vec<Revision>,
    /// Drift, one line per revision (`0002 checksum changed ...`).
    pub drift: Vec<String>,
    pub health: Option<HealthStatus>,
    pub runner_lock: Option<Holder>,
    /// The database role pgshift connects as, and whether the server is read-only.
    pub role: Option<String>,
    pub read_only: Option<bool>,
    /// `primary` or `standby`, when the replication state could be read.
    pub replication: Option<&'static str>,
    /// A standby's replay age, or a primary's largest replica replay lag, in seconds.
    pub replica_lag_s: Option<f64>,
    pub tls: Option<crate::tls::TlsState>,
    /// Why the row is not ok: unreachable, drift, a failed last run, a bad catalog.
    pub error: Option<String>,
    /// This row's own exit code; the command exits with the worst (see [`super::worst`]).
    #[serde(with = "super::exit_number")]
    pub exit_code: ExitCode,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowState {
    /// At head, nothing pending.
    Ok,
    Pending,
    /// The last migration run failed and work is pending.
    Failed,
    Drift,
    Unreachable,
    /// Reachable, but something could not be read (bad catalog, permissions).
    Error,
}

/// `fleet status` colours its words as `pgshift status` and `health` do.
impl crate::marks::Marked for RowState {
    fn word(&self) -> &'static str {
        self.as_str()
    }

    fn role(&self) -> crate::marks::Role {
        use crate::marks::Role;
        match self {
            RowState::Ok => Role::Ok,
            RowState::Pending => Role::Warn,
            RowState::Failed | RowState::Drift | RowState::Error => Role::Error,
            RowState::Unreachable => Role::Alarm,
        }
    }
}

impl RowState {
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Ok => "ok",
            RowState::Pending => "pending",
            RowState::Failed => "FAILED",
            RowState::Drift => "DRIFT",
            RowState::Unreachable => "UNREACHABLE",
            RowState::Error => "ERROR",
        }
    }
}

/// How to gather the rows.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub parallel: usize,
    /// Longest time for one target (connect and read), after which its row says unreachable.
    pub timeout: Duration,
    /// Pending work makes the row exit 10 (as `status --check`).
    pub check: bool,
}

/// Every member's row, in the members' order.
pub async fn gather(members: &[Target], catalogs: &Catalogs, o: Options) -> Vec<Row> {
    let jobs: Vec<_> = members
        .iter()
        .map(|t| (t.clone(), catalogs.of(t)))
        .collect();
    bounded(jobs, o.parallel, move |(t, c)| async move {
        row(&t, c, o).await
    })
    .await
}

async fn row(
    target: &Target,
    catalog: Result<Arc<crate::catalog::Catalog>, crate::catalog::CatalogError>,
    o: Options,
) -> Row {
    let start = Instant::now();
    let mut r = Row {
        target: target.name.clone(),
        environment: target.environment,
        url: target.conn.redacted(),
        state: RowState::Unreachable,
        current: None,
        head: catalog.as_ref().ok().map(|c| c.head()),
        pending: vec![],
        drift: vec![],
        health: None,
        runner_lock: None,
        role: None,
        read_only: None,
        replication: None,
        replica_lag_s: None,
        tls: None,
        error: None,
        exit_code: ExitCode::Unreachable,
        elapsed_ms: 0,
    };
    // What `health` reads plus the runner lock's holder, pipelined on one connection: the
    // health observation already holds history, drift, INVALID indexes and replication.
    let probe = async {
        let s = Session::connect(&target.conn, "fleet status").await?;
        let (observed, holder) = futures_util::future::join(
            health::observe(&s, start),
            lock::holder(&s, lock::RUNNER, &lock::runner_name(&s)),
        )
        .await;
        let observed = observed?;
        let seen = Seen {
            holder: holder?,
            role: s.conn.user(),
            read_only: observed.read_only,
            tls: s.tls,
        };
        Ok::<_, Error>((health::assess(target, catalog.as_deref(), observed), seen))
    };
    match tokio::time::timeout(o.timeout, probe).await {
        Err(_) => {
            r.error = Some(format!(
                "no answer within {} (connect and read); raise --timeout if the link is slow",
                crate::output::human_duration_s(o.timeout.as_secs_f64())
            ));
        }
        Ok(Err(e)) => {
            r.exit_code = e.exit_code();
            r.state = if e.exit_code() == ExitCode::Unreachable {
                RowState::Unreachable
            } else {
                RowState::Error
            };
            r.error = Some(first_line(&e.to_string()).to_string());
        }
        Ok(Ok((h, seen))) => fill(&mut r, &h, seen, o.check),
    }
    r.elapsed_ms = start.elapsed().as_millis() as u64;
    r
}

/// Read besides the health observation.
struct Seen {
    holder: Option<Holder>,
    role: String,
    read_only: bool,
    tls: crate::tls::TlsState,
}

/// The row from what `health` judged and what else was seen on the target.
fn fill(r: &mut Row, h: &health::Health, seen: Seen, check: bool) {
    r.health = Some(h.status);
    r.current = h.migrations.current;
    r.pending = h.migrations.pending.clone();
    r.drift = h.migrations.drift.iter().map(ToString::to_string).collect();
    if let Some(t) = &h.topology {
        r.replication = Some(t.role.as_str());
        r.replica_lag_s = if t.is_standby() {
            t.replay_age_s
        } else {
            t.replicas
                .iter()
                .filter_map(|r| r.effective_replay_lag())
                .map(|d| d.as_secs_f64())
                .reduce(f64::max)
        };
    }
    r.runner_lock = seen.holder;
    r.role = Some(seen.role);
    r.read_only = Some(seen.read_only);
    r.tls = Some(seen.tls);
    r.exit_code = h.exit_code();
    if r.exit_code == ExitCode::Pending && !check {
        r.exit_code = ExitCode::Ok;
    }
    r.state = match h.migrations.state {
        _ if !h.database.reachable => RowState::Unreachable,
        MigrationState::Drift => RowState::Drift,
        MigrationState::Failed if h.migrations.catalog_error.is_some() => RowState::Error,
        MigrationState::Failed => RowState::Failed,
        MigrationState::Unknown => RowState::Error,
        MigrationState::Pending => RowState::Pending,
        MigrationState::Ok => RowState::Ok,
    };
    if r.state == RowState::Error && r.exit_code == ExitCode::Ok {
        r.exit_code = ExitCode::Failed;
    }
    r.error = match r.state {
        RowState::Ok | RowState::Pending => None,
        _ => h
            .alerts
            .first()
            .map(|a| a.message.clone())
            .or_else(|| h.database.error.clone()),
    };
}
