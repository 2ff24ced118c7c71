//! `stamp REV`: make the history say REV without running any SQL (adopting a database whose
//! schema is already right, e.g. one migrated by Alembic).

use crate::catalog::{Catalog, Revision};
use crate::config::Target;
use crate::db::audit::{self, NewEvent, Outcome};
use crate::db::{Session, history, lock, schema, topology};
use crate::error::{Error, Result};
use crate::event::Reporter;
use crate::plan::{self, Applied};

#[derive(Debug, Clone, serde::Serialize)]
pub struct StampPlan {
    pub from: Revision,
    pub to: Revision,
    /// Revisions recorded as applied without running them.
    pub insert: Vec<Revision>,
    /// History rows removed (their SQL is not run either).
    pub remove: Vec<Revision>,
    pub alembic_version: Option<String>,
}

/// Pure: which rows change so that history says exactly `rev`.
pub fn stamp_plan(catalog: &Catalog, applied: &[Applied], rev: Revision) -> Result<StampPlan> {
    if !catalog.contains(rev) {
        return Err(Error::Usage(format!(
            "revision {rev} is not in the catalog; `pgshift status` lists the known revisions"
        )));
    }
    Ok(StampPlan {
        from: plan::current(applied),
        to: rev,
        insert: catalog
            .migrations
            .iter()
            .filter(|m| m.revision <= rev && !applied.iter().any(|a| a.revision == m.revision))
            .map(|m| m.revision)
            .collect(),
        remove: applied
            .iter()
            .filter(|a| a.revision > rev)
            .map(|a| a.revision)
            .collect(),
        alembic_version: None,
    })
}

pub async fn preview(target: &Target, catalog: &Catalog, rev: Revision) -> Result<StampPlan> {
    let s = Session::connect(&target.conn, "stamp").await?;
    topology::read(&s).await?.refuse_standby("stamp")?;
    let applied = history::applied(&s).await?;
    let mut p = stamp_plan(catalog, &applied, rev)?;
    p.alembic_version = crate::ops::status::status_on(&s, target, catalog)
        .await?
        .alembic_version;
    Ok(p)
}

pub async fn stamp(
    target: &Target,
    catalog: &Catalog,
    rev: Revision,
    reporter: &Reporter,
) -> Result<StampPlan> {
    let s = Session::connect(&target.conn, "stamp").await?;
    topology::read(&s).await?.refuse_standby("stamp")?;
    let lock = lock::acquire_runner(&s, target.lock_wait, reporter).await?;
    schema::ensure(&lock).await?;
    let applied = history::applied(&s).await?;
    let p = stamp_plan(catalog, &applied, rev)?;
    let result = write(&s, catalog, &p).await;
    let mut e = NewEvent::new(
        "stamp",
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
    );
    e.from = Some(p.from);
    e.to = Some(p.to);
    e.error = result.as_ref().err().map(ToString::to_string);
    e.detail =
        serde_json::json!({ "inserted": p.insert, "removed": p.remove, "target": target.name });
    audit::record(&s, &e).await?;
    result.map(|_| p)
}

async fn write(s: &Session, catalog: &Catalog, p: &StampPlan) -> Result<()> {
    let insert: Vec<_> = p
        .insert
        .iter()
        .filter_map(|rev| catalog.get(*rev))
        .collect();
    history::stamp(s, &insert, &p.remove).await
}
