//! `status`: where the database is, where the files say it should be, and what is in the way.

use crate::catalog::{Catalog, Revision};
use crate::config::Target;
use crate::db::indexes::InvalidIndex;
use crate::db::lock::{self, Holder};
use crate::db::topology::{self, Topology};
use crate::db::{self, ServerInfo, Session, history, indexes};
use crate::error::Result;
use crate::plan::{self, Applied, Drift};

#[derive(Debug, Clone, serde::Serialize)]
pub struct RevisionRow {
    pub revision: Revision,
    pub name: String,
    pub applied: bool,
    pub applied_on: Option<String>,
    pub reversible: bool,
    pub no_transaction: bool,
    pub drift: bool,
    /// Applied below the head of its time (`up --out-of-order`), or pending below the applied
    /// head (merged late: applied first by `up --out-of-order`).
    pub out_of_order: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub target: String,
    pub url: String,
    pub environment: crate::config::Environment,
    pub server: ServerInfo,
    pub current: Revision,
    pub head: Revision,
    pub pending: Vec<Revision>,
    pub revisions: Vec<RevisionRow>,
    pub drift: Vec<Drift>,
    pub runner_lock: Option<Holder>,
    pub invalid_indexes: Vec<InvalidIndex>,
    /// What an Alembic `alembic_version` table holds, when there is one.
    pub alembic_version: Option<String>,
    /// Lint of the pending migrations (what `up` would run).
    pub lint: Vec<crate::lint::MigrationLint>,
    /// Primary or standby, and the replicas streaming from it (`None` when not read).
    pub topology: Option<Topology>,
    /// Migrations with no SQL yet ("empty: fill it in"); `up` refuses while there are any.
    pub scaffolds: Vec<crate::catalog::Scaffold>,
}

impl Status {
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn irreversible_pending(&self) -> Vec<Revision> {
        self.revisions
            .iter()
            .filter(|r| !r.applied && !r.reversible)
            .map(|r| r.revision)
            .collect()
    }
}

pub async fn status(target: &Target, catalog: &Catalog) -> Result<Status> {
    let s = Session::connect(&target.conn, "status").await?;
    status_on(&s, target, catalog).await
}

/// Status on an open session (the TUI's monitor connection reuses it every tick).
pub async fn status_on(s: &Session, target: &Target, catalog: &Catalog) -> Result<Status> {
    // Independent reads, pipelined on one connection: one round trip instead of six.
    let db = lock::runner_name(s);
    let ((server, applied, runner_lock, invalid_indexes, alembic_version), topology) =
        futures_util::future::try_join(
            futures_util::future::try_join5(
                s.server_info(),
                history::applied(s),
                lock::holder(s, lock::RUNNER, &db),
                indexes::invalid(s),
                db::history::alembic_version(s),
            ),
            topology::read(s),
        )
        .await?;
    let mut status = build(
        target,
        catalog,
        server,
        &applied,
        runner_lock,
        invalid_indexes,
        alembic_version,
    );
    status.topology = Some(topology);
    Ok(status)
}

pub fn build(
    target: &Target,
    catalog: &Catalog,
    server: ServerInfo,
    applied: &[Applied],
    runner_lock: Option<Holder>,
    invalid_indexes: Vec<InvalidIndex>,
    alembic_version: Option<String>,
) -> Status {
    let policy = plan::Policy {
        out_of_order: target.out_of_order,
    };
    let drift = plan::drift_with(catalog, applied, policy);
    let pending = plan::pending_with(catalog, applied, policy)
        .iter()
        .map(|m| m.revision)
        .collect();
    let cur = plan::current(applied);
    let mut revisions: Vec<RevisionRow> = catalog
        .migrations
        .iter()
        .map(|m| {
            let a = applied.iter().find(|a| a.revision == m.revision);
            RevisionRow {
                revision: m.revision,
                name: m.name.clone(),
                applied: a.is_some(),
                applied_on: a.map(|a| a.applied_on.clone()),
                reversible: m.is_reversible(),
                no_transaction: m.no_transaction,
                drift: drift.iter().any(|d| d.revision() == m.revision),
                out_of_order: match a {
                    Some(a) => a.recorded.as_ref().is_some_and(|r| r.out_of_order),
                    None => m.revision < cur,
                },
            }
        })
        .collect();
    // Applied revisions with no file still show, so nothing is hidden from the operator.
    for a in applied.iter().filter(|a| catalog.get(a.revision).is_none()) {
        revisions.push(RevisionRow {
            revision: a.revision,
            name: a.name.clone(),
            applied: true,
            applied_on: Some(a.applied_on.clone()),
            reversible: false,
            no_transaction: false,
            drift: true,
            out_of_order: false,
        });
    }
    revisions.sort_by_key(|r| r.revision);
    Status {
        target: target.name.clone(),
        url: target.conn.redacted(),
        environment: target.environment,
        server,
        current: plan::current(applied),
        head: catalog.head(),
        pending,
        revisions,
        drift,
        runner_lock,
        invalid_indexes,
        alembic_version,
        lint: super::lint::pending_of(catalog, applied),
        topology: None,
        scaffolds: catalog.scaffolds.clone(),
    }
}
