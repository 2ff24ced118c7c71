//! The sandbox's demo: the catalog's first three migrations and data that makes backfills worth
//! watching, leaving later migrations pending so there is work to try.

use crate::catalog::Revision;
use crate::config::Target;
use crate::error::{Error, Result};
use crate::event::{Level, Reporter};
use crate::ops::gate::{Caller, Checklists, Policy};
use crate::ops::migrate::{self, Request};
use crate::plan::{Direction, TargetSpec};

/// The schema revision the demo data is written for.
pub const DEMO_REVISION: Revision = Revision(3);
pub const DEMO_DATA: &str = include_str!("../../assets/demo_data.sql");

/// The sandbox's demo needs the demo catalog (up to 0003) in `dir`. Checked before any cluster is
/// created or started, so a run from the wrong directory stops cleanly and says what to do.
pub fn require_catalog(dir: &std::path::Path) -> Result<()> {
    let why = match crate::catalog::Catalog::load(dir) {
        Ok(c) if c.get(DEMO_REVISION).is_some() => return Ok(()),
        Ok(_) => format!("{} has no migrations up to {DEMO_REVISION}", dir.display()),
        Err(e) => format!("no migrations here: {e}"),
    };
    Err(Error::Usage(format!(
        "the sandbox demo needs the demo catalog (migrations 0001..{DEMO_REVISION}), but {why}. Nothing was started. Run pgshift from the project directory (the one with migrations/), or pass --migrations DIR; for your own database pass --database-url or --target."
    )))
}

pub async fn load(target: &Target, reporter: &Reporter) -> Result<()> {
    let catalog = crate::ops::catalog(target)?;
    if catalog.get(DEMO_REVISION).is_none() {
        return Err(Error::Failed(format!(
            "the sandbox demo needs migrations up to {DEMO_REVISION} in {}; run pgshift from the project directory or pass --migrations",
            target.migrations.display()
        )));
    }
    let policy = Policy::new(Caller::Sandbox, Checklists::Defaults);
    let mut req = Request::new(Direction::Up, TargetSpec::Revision(DEMO_REVISION), policy);
    req.action = "sandbox".into();
    migrate::run(target, &catalog, &req, reporter).await?;
    reporter.log(
        Level::Info,
        "sandbox: loading demo data (200k documents, 50k templates)",
    );
    let s = crate::db::Session::connect(&target.conn, "sandbox").await?;
    s.client
        .batch_execute(DEMO_DATA)
        .await
        .map_err(|e| Error::db("loading the demo data", &e))?;
    Ok(())
}
