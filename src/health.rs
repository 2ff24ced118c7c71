//! `health`: is the database reachable, is the schema where the files say, did the last migration
//! run fail, are backfills healthy. The runbook's `/health` and its alert severities. Read-only: it
//! never creates pgshift's tables.

use std::time::Instant;

use crate::catalog::{Catalog, Revision};
use crate::config::{Environment, Target};
use crate::db::audit::{self, Outcome};
use crate::db::backfill_runs::{self, RunState};
use crate::db::indexes::{self, InvalidIndex};
use crate::db::topology::{self, Topology};
use crate::db::{Session, history};
use crate::error::{Error, ExitCode, Result};
use crate::marks::{Marked, Paint, Role};
use crate::plan::{self, Drift};
use crate::remedy::{self as diagnose, Finding};
use crate::text::first_line;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Degraded,
    Down,
}

/// The TUI header and overlay and `pgshift health` show the same words in the same colours.
impl Marked for HealthStatus {
    fn word(&self) -> &'static str {
        match self {
            HealthStatus::Ok => "ok",
            HealthStatus::Degraded => "DEGRADED",
            HealthStatus::Down => "DOWN",
        }
    }

    fn role(&self) -> Role {
        match self {
            HealthStatus::Ok => Role::Ok,
            HealthStatus::Degraded => Role::Warn,
            HealthStatus::Down => Role::Alarm,
        }
    }
}

impl Marked for MigrationState {
    fn word(&self) -> &'static str {
        match self {
            MigrationState::Ok => "ok",
            MigrationState::Pending => "pending",
            MigrationState::Failed => "FAILED",
            MigrationState::Drift => "DRIFT",
            MigrationState::Unknown => "unknown",
        }
    }

    fn role(&self) -> Role {
        match self {
            MigrationState::Ok => Role::Ok,
            MigrationState::Pending => Role::Warn,
            MigrationState::Failed | MigrationState::Drift => Role::Error,
            MigrationState::Unknown => Role::Dim,
        }
    }
}

impl Marked for BackfillState {
    fn word(&self) -> &'static str {
        match self {
            BackfillState::None => "none",
            BackfillState::Finished => "finished",
            BackfillState::Running => "running",
            BackfillState::Failed => "FAILED",
            BackfillState::Unknown => "unknown",
        }
    }

    fn role(&self) -> Role {
        match self {
            BackfillState::None | BackfillState::Unknown => Role::Dim,
            BackfillState::Finished | BackfillState::Running => Role::Ok,
            BackfillState::Failed => Role::Error,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationState {
    Ok,
    Pending,
    Failed,
    Drift,
    /// The database could not be asked.
    Unknown,
}

/// The runbook's alert thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Immediate,
    Warning,
    Error,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    MigrationFailure,
    SchemaOutOfSync,
    BackfillFailure,
    DatabaseConnectivity,
    /// A streaming replica's replay lag is above the target's `max_replica_lag`.
    ReplicaLag,
    /// A replica named in `expected_replicas` is not streaming.
    ReplicaMissing,
}

impl AlertKind {
    pub fn severity(self) -> Severity {
        match self {
            AlertKind::MigrationFailure => Severity::Immediate,
            AlertKind::SchemaOutOfSync => Severity::Warning,
            AlertKind::BackfillFailure => Severity::Error,
            AlertKind::DatabaseConnectivity => Severity::Critical,
            AlertKind::ReplicaLag => Severity::Warning,
            AlertKind::ReplicaMissing => Severity::Error,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Alert {
    pub severity: Severity,
    pub kind: AlertKind,
    pub message: String,
}

impl Alert {
    fn new(kind: AlertKind, message: impl Into<String>) -> Alert {
        Alert {
            severity: kind.severity(),
            kind,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DatabaseHealth {
    pub reachable: bool,
    /// Connect plus one round trip.
    pub latency_ms: Option<u64>,
    pub version: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LastFailure {
    pub action: String,
    pub outcome: Outcome,
    pub at: String,
    pub operator: String,
    pub error: String,
    pub sqlstate: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationsHealth {
    pub state: MigrationState,
    pub current: Option<Revision>,
    pub head: Option<Revision>,
    pub pending: Vec<Revision>,
    pub drift: Vec<Drift>,
    /// The last migration run, when it failed.
    pub last_error: Option<LastFailure>,
    /// The migration files could not be read.
    pub catalog_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackfillState {
    /// No backfill ever ran here.
    None,
    Finished,
    Running,
    Failed,
    /// The runs could not be read.
    Unknown,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BackfillRun {
    pub name: String,
    pub state: RunState,
    pub rows_done: i64,
    pub last_error: Option<String>,
    pub finished: bool,
}

impl BackfillRun {
    pub fn is_failed(&self) -> bool {
        self.state == RunState::Failed
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BackfillsHealth {
    pub state: BackfillState,
    pub runs: Vec<BackfillRun>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    pub status: HealthStatus,
    pub target: String,
    pub environment: Environment,
    pub database: DatabaseHealth,
    pub migrations: MigrationsHealth,
    pub backfills: BackfillsHealth,
    /// Primary or standby and its replicas (`None` when unreachable or unreadable).
    pub topology: Option<Topology>,
    pub alerts: Vec<Alert>,
    /// The runbook failure behind a failed state, with its solutions.
    pub diagnosis: Vec<Finding>,
}

impl Health {
    /// DESIGN.md's exit codes: 3 unreachable, 5 drift or unreadable files, 1 a failed migration or
    /// backfill, 10 pending, 0 ok.
    pub fn exit_code(&self) -> ExitCode {
        if !self.database.reachable {
            return ExitCode::Unreachable;
        }
        match self.migrations.state {
            MigrationState::Drift => ExitCode::Integrity,
            MigrationState::Failed if self.migrations.catalog_error.is_some() => {
                ExitCode::Integrity
            }
            MigrationState::Failed => ExitCode::Failed,
            _ if self.backfills.state == BackfillState::Failed => ExitCode::Failed,
            _ if self
                .alerts
                .iter()
                .any(|a| a.kind == AlertKind::ReplicaMissing) =>
            {
                ExitCode::Failed
            }
            MigrationState::Pending => ExitCode::Pending,
            _ => ExitCode::Ok,
        }
    }
}

/// What health is judged from, as [`observe`] reads it on one session.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Connect (for [`check`]) or one round trip (on an open session), in ms.
    pub latency_ms: u64,
    pub version: String,
    pub read_only: bool,
    /// The applied history and the last migration run when it did not end ok; or why they could
    /// not be read.
    pub history: std::result::Result<(Vec<plan::Applied>, Option<LastFailure>), String>,
    pub invalid_indexes: Vec<InvalidIndex>,
    pub backfills: BackfillsHealth,
    /// Role and replicas; `None` when the replication state cannot be read.
    pub topology: Option<Topology>,
}

/// Check health now. Never fails: what cannot be read is reported in the result. The one health
/// computation: `pgshift health`, `/health`, the TUI header and its checklist overlay all use
/// [`observe`] and [`assess`].
pub async fn check(target: &Target) -> Health {
    let catalog = Catalog::load(&target.migrations);
    let start = Instant::now();
    let session = match Session::connect(&target.conn, "health").await {
        Ok(s) => s,
        Err(e) => return unreachable(target, &e),
    };
    match observe(&session, start).await {
        Ok(o) => assess(target, catalog.as_ref(), o),
        Err(e) => unreachable(target, &e),
    }
}

/// Read what health is judged from on `s` (`start`: when the connection attempt began). Fails
/// only when the server does not answer at all; other failures are kept in the result.
pub async fn observe(s: &Session, start: Instant) -> Result<Observed> {
    let info = s.server_info().await?;
    let latency_ms = start.elapsed().as_millis() as u64;
    let history = match history::applied(s).await {
        Ok(applied) => match last_failure(s).await {
            Ok(last) => Ok((applied, last)),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    // An unreadable INVALID-index list is not a health problem of its own.
    let invalid_indexes = indexes::invalid(s).await.unwrap_or_default();
    Ok(Observed {
        latency_ms,
        version: info.version,
        read_only: info.read_only,
        history,
        invalid_indexes,
        backfills: backfills(s).await,
        topology: topology::read(s)
            .await
            .inspect_err(|e| tracing::warn!("health: cannot read the replication state: {e}"))
            .ok(),
    })
}

/// Judge what was observed (pure).
pub fn assess(
    target: &Target,
    catalog: std::result::Result<&Catalog, &crate::catalog::CatalogError>,
    o: Observed,
) -> Health {
    let database = DatabaseHealth {
        reachable: true,
        latency_ms: Some(o.latency_ms),
        version: Some(o.version),
        error: None,
    };
    let policy = plan::Policy {
        out_of_order: target.out_of_order,
    };
    let migrations = match o.history {
        Ok((applied, last_error)) => migrations(&applied, last_error, catalog, policy),
        Err(e) => MigrationsHealth {
            state: MigrationState::Unknown,
            current: None,
            head: catalog.ok().map(Catalog::head),
            pending: vec![],
            drift: vec![],
            last_error: None,
            catalog_error: Some(e),
        },
    };
    let mut h = Health {
        status: HealthStatus::Ok,
        target: target.name.clone(),
        environment: target.environment,
        database,
        migrations,
        backfills: o.backfills,
        topology: o.topology,
        alerts: vec![],
        diagnosis: vec![],
    };
    if !o.invalid_indexes.is_empty() {
        h.alerts.push(Alert::new(
            AlertKind::SchemaOutOfSync,
            format!(
                "{} INVALID index(es) from a failed CONCURRENTLY build: {}",
                o.invalid_indexes.len(),
                crate::text::joined(
                    &o.invalid_indexes
                        .iter()
                        .map(|i| &i.index)
                        .collect::<Vec<_>>()
                )
            ),
        ));
    }
    if let Some(t) = h.topology.as_ref().filter(|t| t.is_standby()) {
        let primary = t
            .primary
            .as_ref()
            .and_then(|p| p.address())
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        h.alerts.push(Alert::new(
            AlertKind::DatabaseConnectivity,
            format!(
                "STANDBY: upgrades, downgrades and backfills are refused here; connect to the primary{primary}"
            ),
        ));
    } else if o.read_only {
        h.alerts.push(Alert::new(
            AlertKind::DatabaseConnectivity,
            "the server is read-only: migrations cannot run here",
        ));
    }
    replica_alerts(&mut h, target);
    judge(&mut h, target, catalog.err().cloned());
    h
}

impl Health {
    /// The alert an operator should read first (most severe), for one-line summaries.
    pub fn headline(&self) -> Option<&Alert> {
        let rank = |s: Severity| match s {
            Severity::Critical => 0,
            Severity::Immediate => 1,
            Severity::Error => 2,
            Severity::Warning => 3,
        };
        self.alerts.iter().min_by_key(|a| rank(a.severity))
    }
}

fn unreachable(target: &Target, e: &Error) -> Health {
    let mut h = Health {
        status: HealthStatus::Down,
        target: target.name.clone(),
        environment: target.environment,
        database: DatabaseHealth {
            reachable: false,
            latency_ms: None,
            version: None,
            error: Some(e.to_string()),
        },
        migrations: MigrationsHealth {
            state: MigrationState::Unknown,
            current: None,
            head: None,
            pending: vec![],
            drift: vec![],
            last_error: None,
            catalog_error: None,
        },
        backfills: BackfillsHealth {
            state: BackfillState::Unknown,
            runs: vec![],
            error: None,
        },
        topology: None,
        alerts: vec![Alert::new(
            AlertKind::DatabaseConnectivity,
            format!("database unreachable: {}", first_line(&e.to_string())),
        )],
        diagnosis: vec![],
    };
    h.diagnosis.extend(diagnose::from_error(e, target));
    h
}

fn migrations(
    applied: &[plan::Applied],
    last_error: Option<LastFailure>,
    catalog: std::result::Result<&Catalog, &crate::catalog::CatalogError>,
    policy: plan::Policy,
) -> MigrationsHealth {
    let current = plan::current(applied);
    let Ok(catalog) = catalog else {
        let e = catalog.err().map(ToString::to_string);
        return MigrationsHealth {
            state: MigrationState::Failed,
            current: Some(current),
            head: None,
            pending: vec![],
            drift: vec![],
            last_error,
            catalog_error: e,
        };
    };
    let drift = plan::drift_with(catalog, applied, policy);
    let pending: Vec<Revision> = plan::pending_with(catalog, applied, policy)
        .iter()
        .map(|m| m.revision)
        .collect();
    let state = if !drift.is_empty() {
        MigrationState::Drift
    } else if last_error.is_some() && !pending.is_empty() {
        MigrationState::Failed
    } else if !pending.is_empty() {
        MigrationState::Pending
    } else {
        MigrationState::Ok
    };
    MigrationsHealth {
        state,
        current: Some(current),
        head: Some(catalog.head()),
        pending,
        drift,
        last_error: if state == MigrationState::Ok {
            None
        } else {
            last_error
        },
        catalog_error: None,
    }
}

/// The last migration run, if it did not end ok.
async fn last_failure(s: &Session) -> Result<Option<LastFailure>> {
    let Some(run) = audit::last_migration_run(s).await? else {
        return Ok(None);
    };
    let mut failure = LastFailure {
        action: run.action,
        outcome: run.outcome,
        error: run.error,
        at: run.at,
        operator: run.operator,
        sqlstate: run.sqlstate,
    };
    match run.outcome {
        Outcome::Ok => return Ok(None),
        // A run under way is not a failure; one whose process is gone is.
        Outcome::Started => {
            if run.backend_pid.is_some() && run.backend_pid == audit::live_runner(s).await? {
                return Ok(None);
            }
            failure.outcome = Outcome::Interrupted;
            failure.error = audit::INTERRUPTED.into();
        }
        _ => {}
    }
    Ok(Some(failure))
}

/// Backfill runs as recorded; a missing or empty table means no backfill ran. A table whose shape
/// this build does not know is reported, not fatal.
pub async fn backfills(s: &Session) -> BackfillsHealth {
    let unknown = |e: String| BackfillsHealth {
        state: BackfillState::Unknown,
        runs: vec![],
        error: Some(e),
    };
    let runs: Vec<BackfillRun> = match backfill_runs::latest_all(s).await {
        Ok(rows) => rows
            .into_iter()
            .map(|r| BackfillRun {
                name: r.name,
                state: r.state,
                rows_done: r.rows_done,
                last_error: r.last_error,
                finished: r.finished_at.is_some(),
            })
            .collect(),
        Err(e) => return unknown(e.to_string()),
    };
    let state = if runs.is_empty() {
        BackfillState::None
    } else if runs.iter().any(BackfillRun::is_failed) {
        BackfillState::Failed
    } else if runs.iter().all(|r| r.finished) {
        BackfillState::Finished
    } else {
        BackfillState::Running
    };
    BackfillsHealth {
        state,
        runs,
        error: None,
    }
}

/// A replica lagging above `max_replica_lag` (warning), an expected replica not streaming (error).
/// Which replicas are expected is configuration (`expected_replicas`), not memory: health is a
/// one-shot read and never writes, so "it was there before" has to be said by the operator.
fn replica_alerts(h: &mut Health, target: &Target) {
    let Some(t) = &h.topology else {
        return;
    };
    if t.is_standby() {
        return;
    }
    let max = target
        .guard
        .max_replica_lag
        .unwrap_or(crate::config::DEFAULT_MAX_REPLICA_LAG);
    if let Some(l) = t.lagging(max) {
        h.alerts
            .push(Alert::new(AlertKind::ReplicaLag, l.to_string()));
    }
    for name in t.missing(&target.expected_replicas) {
        h.alerts.push(Alert::new(
            AlertKind::ReplicaMissing,
            format!(
                "expected replica {name} is not streaming (not in pg_stat_replication, or not in state streaming): check the standby and its replication connection"
            ),
        ));
    }
}

/// Status, alerts and diagnosis from what was observed.
fn judge(h: &mut Health, target: &Target, catalog_error: Option<crate::catalog::CatalogError>) {
    h.alerts.extend(migration_alert(&h.migrations));
    diagnose_into(h, target, catalog_error);
    h.alerts.extend(backfill_alert(&h.backfills));
    h.status = if !h.database.reachable {
        HealthStatus::Down
    } else if h.alerts.is_empty() {
        HealthStatus::Ok
    } else {
        HealthStatus::Degraded
    };
}

/// The alert the migration state raises, if any.
fn migration_alert(m: &MigrationsHealth) -> Option<Alert> {
    Some(match m.state {
        MigrationState::Failed => {
            let why = m
                .catalog_error
                .clone()
                .or_else(|| {
                    m.last_error.as_ref().map(|l| {
                        format!(
                            "{} {} at {}: {}",
                            l.action,
                            l.outcome,
                            l.at,
                            first_line(&l.error)
                        )
                    })
                })
                .unwrap_or_default();
            Alert::new(
                AlertKind::MigrationFailure,
                format!("migrations failed: {why}"),
            )
        }
        MigrationState::Drift => Alert::new(
            AlertKind::SchemaOutOfSync,
            format!(
                "schema out of sync with the files: {}",
                crate::text::joined(&m.drift)
            ),
        ),
        MigrationState::Pending => Alert::new(
            AlertKind::SchemaOutOfSync,
            format!(
                "{} migration(s) pending: at {}, head {}",
                m.pending.len(),
                m.current.unwrap_or(Revision::BASE),
                m.head.unwrap_or(Revision::BASE)
            ),
        ),
        MigrationState::Unknown => Alert::new(
            AlertKind::MigrationFailure,
            format!(
                "cannot read migration state: {}",
                m.catalog_error.as_deref().unwrap_or("")
            ),
        ),
        MigrationState::Ok => return None,
    })
}

/// The runbook's findings: from the catalog's error, the drift, and the last recorded failure.
fn diagnose_into(
    h: &mut Health,
    target: &Target,
    catalog_error: Option<crate::catalog::CatalogError>,
) {
    if let Some(e) = &catalog_error {
        h.diagnosis
            .extend(diagnose::from_error(&Error::Catalog(e.clone()), target));
    }
    let m = &h.migrations;
    h.diagnosis
        .extend(diagnose::from_drift(&m.drift, &target.migrations));
    if let Some(l) = &m.last_error
        && let Some(f) = diagnose::from_recorded(l.sqlstate.as_deref(), &l.error, target)
        && !h.diagnosis.contains(&f)
    {
        h.diagnosis.push(f);
    }
}

/// The alert failed backfills raise, naming each with its error.
fn backfill_alert(b: &BackfillsHealth) -> Option<Alert> {
    if b.state != BackfillState::Failed {
        return None;
    }
    let failed: Vec<String> = b
        .runs
        .iter()
        .filter(|r| r.is_failed())
        .map(|r| {
            format!(
                "{} ({})",
                r.name,
                r.last_error.as_deref().unwrap_or(r.state.as_str())
            )
        })
        .collect();
    Some(Alert::new(
        AlertKind::BackfillFailure,
        format!("backfill failed: {}", failed.join("; ")),
    ))
}

/// Human rendering, in the words and colours of the TUI's header and checklist overlay; times on
/// `clock`.
pub fn render(
    out: &mut impl std::io::Write,
    h: &Health,
    paint: Paint,
    clock: &crate::clock::Clock,
) -> std::io::Result<()> {
    writeln!(out, "status      {}", paint.word(&h.status))?;
    render_database(out, h, paint)?;
    render_migrations(out, &h.migrations, paint, clock)?;
    if let Some(t) = &h.topology {
        writeln!(out, "topology    {}", t.summary())?;
    }
    render_backfills(out, &h.backfills, paint)?;
    for a in &h.alerts {
        writeln!(
            out,
            "alert       {} {}",
            paint.role(Role::Warn, format!("[{}]", serde_plain(&a.severity))),
            a.message
        )?;
    }
    for f in &h.diagnosis {
        write!(out, "\n{f}")?;
    }
    Ok(())
}

/// The target (production in its colour) and whether its database answers.
fn render_database(out: &mut impl std::io::Write, h: &Health, paint: Paint) -> std::io::Result<()> {
    let env = h.environment.as_str();
    if h.environment.is_production() {
        writeln!(
            out,
            "target      {} {}",
            h.target,
            paint.role(Role::Production, format!("[{env}]"))
        )?;
    } else {
        writeln!(out, "target      {} [{env}]", h.target)?;
    }
    match (
        &h.database.reachable,
        &h.database.version,
        h.database.latency_ms,
    ) {
        (true, Some(v), Some(ms)) => writeln!(
            out,
            "database    reachable, PostgreSQL {v}, {}",
            crate::text::human_duration_ms(i64::try_from(ms).unwrap_or(i64::MAX))
        )?,
        _ => writeln!(
            out,
            "database    {}: {}",
            paint.role(Role::Alarm, "UNREACHABLE"),
            first_line(h.database.error.as_deref().unwrap_or(""))
        )?,
    }
    Ok(())
}

/// Where the migrations stand, with the last failure, an invalid catalog and any drift.
fn render_migrations(
    out: &mut impl std::io::Write,
    m: &MigrationsHealth,
    paint: Paint,
    clock: &crate::clock::Clock,
) -> std::io::Result<()> {
    let at = match (m.current, m.head) {
        (Some(c), Some(hd)) => format!(" (at {c}, head {hd})"),
        (Some(c), None) => format!(" (at {c})"),
        _ => String::new(),
    };
    writeln!(out, "migrations  {}{at}", paint.word(&m.state))?;
    if let Some(l) = &m.last_error {
        let outcome = crate::marks::OutcomeMark::of(l.outcome.as_str(), None);
        writeln!(
            out,
            "            last error: {} {} at {} by {}: {}",
            l.action,
            paint.word(&outcome),
            clock.format(&l.at),
            l.operator,
            paint.role(Role::Error, first_line(&l.error))
        )?;
    }
    if let Some(e) = &m.catalog_error {
        writeln!(
            out,
            "            {}",
            paint.role(Role::Error, first_line(e))
        )?;
    }
    for d in &m.drift {
        writeln!(
            out,
            "            {}: {d}",
            paint.word(&MigrationState::Drift)
        )?;
    }
    Ok(())
}

/// The backfills' state and each run, a failed one in the error colour.
fn render_backfills(
    out: &mut impl std::io::Write,
    b: &BackfillsHealth,
    paint: Paint,
) -> std::io::Result<()> {
    writeln!(out, "backfills   {}", paint.word(&b.state))?;
    for r in &b.runs {
        let role = if r.is_failed() {
            Role::Error
        } else {
            Role::Plain
        };
        writeln!(
            out,
            "            {} {} ({} rows){}",
            r.name,
            paint.role(role, &r.state),
            crate::text::count(r.rows_done),
            r.last_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// A unit enum's serde name (`"failed"` -> `failed`).
fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
