//! `history`: applied migrations and the audit trail.

use crate::catalog::Catalog;
use crate::config::Target;
use crate::db::audit::{self, Event};
use crate::db::{Session, history};
use crate::error::Result;
use crate::ops::status::RevisionRow;

#[derive(Debug, Clone, serde::Serialize)]
pub struct History {
    pub applied: Vec<RevisionRow>,
    pub events: Vec<Event>,
}

pub async fn history(target: &Target, catalog: &Catalog, limit: i64) -> Result<History> {
    let s = Session::connect(&target.conn, "history").await?;
    history_on(&s, catalog, limit).await
}

pub async fn history_on(s: &Session, catalog: &Catalog, limit: i64) -> Result<History> {
    let applied = history::applied(s).await?;
    let drift = crate::plan::drift(catalog, &applied);
    let applied = applied
        .iter()
        .rev()
        .map(|a| {
            let m = catalog.get(a.revision);
            RevisionRow {
                revision: a.revision,
                name: a.name.clone(),
                applied: true,
                applied_on: Some(a.applied_on.clone()),
                reversible: m.is_some_and(|m| m.is_reversible()),
                no_transaction: m.is_some_and(|m| m.no_transaction),
                drift: drift.iter().any(|d| d.revision() == a.revision),
                out_of_order: a.recorded.as_ref().is_some_and(|r| r.out_of_order),
            }
        })
        .collect();
    Ok(History {
        applied,
        events: audit::recent(s, limit).await?,
    })
}
