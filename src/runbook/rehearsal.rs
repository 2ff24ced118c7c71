//! The "local testing" check: the pending migrations run up, down and up again on a scratch
//! database (the target's `scratch_url` server, else the target's own server), dropped afterwards.

use std::time::Instant;

use super::checks::{CheckContext, CheckOutcome, catalog};
use crate::catalog::{Catalog, Revision};
use crate::config::{ConnInfo, Environment, Target};
use crate::db::{Session, database, history};
use crate::error::{Error, Result};
use crate::event::Reporter;
use crate::ops::gate::{Caller, Checklists, Policy};
use crate::ops::migrate;
use crate::plan::{self, Direction, TargetSpec};

/// Up, down and up again of the pending migrations on a scratch database, dropped afterwards.
pub(super) async fn local_testing(cx: &CheckContext<'_>) -> Result<CheckOutcome> {
    let target = cx.target;
    let catalog = catalog(target)?;
    let s = Session::connect(&target.conn, "checklist").await?;
    let applied = history::applied(&s).await?;
    let current = plan::current(&applied);
    let drift = plan::drift(&catalog, &applied);
    if !drift.is_empty() {
        return Ok(CheckOutcome::fail(format!(
            "drift between files and database; rehearsal would not mean anything: {}",
            crate::text::joined(&drift)
        )));
    }
    if current == catalog.head() {
        return Ok(CheckOutcome::pass(format!(
            "nothing pending (at head {current}); nothing to rehearse"
        )));
    }
    let (admin, where_) = match &target.scratch_url {
        Some(url) => (ConnInfo::parse(url)?, "scratch_url"),
        None => (target.conn.clone(), "the target's server"),
    };
    let admin_session = Session::connect(&admin, "checklist scratch").await?;
    let name = format!(
        "pgshift_scratch_{}_{}",
        std::process::id(),
        fastrand::u32(..)
    );
    if let Err(e) = database::create(&admin_session, &name).await {
        return Ok(CheckOutcome::fail(format!(
            "cannot create a scratch database on {where_} ({}): {}. Set the target's scratch_url to a server where role {} may CREATE DATABASE.",
            admin.redacted(),
            crate::error::DbFailure::from_pg(&e, None),
            admin.user()
        )));
    }
    let scratch = Target {
        name: format!("scratch {name}"),
        conn: admin.with_dbname(&name),
        environment: Environment::Test,
        ..target.clone()
    };
    let started = Instant::now();
    let result = rehearse(&scratch, &catalog, current, cx.reporter).await;
    let dropped = database::drop_forced(&admin_session, &name).await;
    let drop_note = match dropped {
        Ok(()) => String::new(),
        Err(e) => format!(
            "; WARNING: could not drop scratch database {name}: {}",
            crate::error::DbFailure::from_pg(&e, None)
        ),
    };
    let took = started.elapsed().as_millis();
    Ok(match result {
        Ok(steps) => CheckOutcome::pass(format!(
            "rehearsed on scratch database {name} ({where_}) in {took} ms: {}{drop_note}",
            steps.join(", ")
        )),
        Err((done, e)) => CheckOutcome::fail(format!(
            "rehearsal failed on scratch database {name} ({where_}) after [{}]: {e}{drop_note}",
            done.join(", ")
        )),
    })
}

/// Bring the scratch database to `current`, then up to head, down to `current`, up to head.
async fn rehearse(
    scratch: &Target,
    catalog: &Catalog,
    current: Revision,
    reporter: &Reporter,
) -> std::result::Result<Vec<String>, (Vec<String>, Error)> {
    let mut done = Vec::new();
    let mut phases = Vec::new();
    if !current.is_base() {
        phases.push(("setup up", Direction::Up, TargetSpec::Revision(current)));
    }
    phases.push(("up", Direction::Up, TargetSpec::Head));
    phases.push(("down", Direction::Down, TargetSpec::Revision(current)));
    phases.push(("up again", Direction::Up, TargetSpec::Head));
    for (label, direction, spec) in phases {
        let policy = Policy::new(Caller::Rehearsal, Checklists::none());
        let mut req = migrate::Request::new(direction, spec, policy);
        req.action = format!("checklist rehearsal {label}");
        match migrate::run(scratch, catalog, &req, reporter).await {
            Ok(r) => done.push(format!(
                "{label} {} -> {} ({} step(s))",
                r.from,
                r.to,
                r.steps.len()
            )),
            Err(e) => return Err((done, e)),
        }
    }
    Ok(done)
}
