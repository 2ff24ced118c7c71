//! `accept REV`: re-approve one drifted migration after its file changed on purpose. The history
//! row takes the file's checksum (refinery's table keeps its shape, so refinery still reads it) and
//! the recorded SQL becomes the file's; nothing else changes and no migration SQL runs. Audited
//! with the old and new checksums.

use std::time::Instant;

use crate::catalog::{Catalog, Revision};
use crate::config::Target;
use crate::db::audit::{self, NewEvent, Outcome};
use crate::db::{Session, history, lock, schema, topology};
use crate::error::{Error, Result};
use crate::event::Reporter;
use crate::plan::{self, Applied, Change, Drift};

/// What accepting a revision changes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Acceptance {
    pub revision: Revision,
    pub name: String,
    /// The checksum in history now, and the file's (equal when only the down file changed).
    pub old_checksum: u64,
    pub new_checksum: u64,
    /// How the up and the down file differ from what was applied (`None`: unchanged).
    pub up: Option<Change>,
    pub down: Option<Change>,
    /// The drift being accepted, with its diffs.
    pub drift: Vec<Drift>,
}

/// Pure: what accepting `rev` would change, or why it cannot be accepted.
pub fn acceptance(catalog: &Catalog, applied: &[Applied], rev: Revision) -> Result<Acceptance> {
    let m = catalog.get(rev).ok_or_else(|| {
        Error::Usage(format!(
            "revision {rev} is not in the catalog; `pgshift status` lists the known revisions"
        ))
    })?;
    let a = applied.iter().find(|a| a.revision == rev).ok_or_else(|| {
        Error::Usage(format!(
            "{} is not applied: there is nothing to re-approve (`pgshift up` applies it)",
            m.label()
        ))
    })?;
    let drift: Vec<Drift> = plan::drift(catalog, applied)
        .into_iter()
        .filter(|d| d.revision() == rev)
        .collect();
    let mut up = None;
    let mut down = None;
    for d in &drift {
        match d {
            Drift::ChecksumChanged { change, .. } => up = Some(*change),
            Drift::DownChanged { change, .. } => down = Some(*change),
            Drift::MissingFile { .. } | Drift::NotApplied { .. } => {}
        }
    }
    if up.is_none() && down.is_none() {
        return Err(Error::Usage(format!(
            "{} has no changed file to accept: its files match what was applied",
            m.label()
        )));
    }
    Ok(Acceptance {
        revision: rev,
        name: m.name.clone(),
        old_checksum: a.checksum,
        new_checksum: m.checksum,
        up,
        down,
        drift,
    })
}

/// What `accept` would do, read without the lock (for the confirmation).
pub async fn preview(target: &Target, catalog: &Catalog, rev: Revision) -> Result<Acceptance> {
    let s = Session::connect(&target.conn, "accept").await?;
    topology::read(&s).await?.refuse_standby("accept")?;
    acceptance(catalog, &history::applied(&s).await?, rev)
}

/// Accept `rev` under the runner lock, if it is still what the operator confirmed (`expect`).
pub async fn accept(
    target: &Target,
    catalog: &Catalog,
    expect: &Acceptance,
    reporter: &Reporter,
) -> Result<Acceptance> {
    let s = Session::connect(&target.conn, "accept").await?;
    topology::read(&s).await?.refuse_standby("accept")?;
    let lock = lock::acquire_runner(&s, target.lock_wait, reporter).await?;
    schema::ensure(&lock).await?;
    let start = Instant::now();
    let result = accept_locked(&s, catalog, expect).await;
    let mut e = NewEvent::new(
        "accept",
        match &result {
            Ok(_) => Outcome::Ok,
            Err(Error::Refused(_) | Error::Usage(_)) => Outcome::Refused,
            Err(_) => Outcome::Failed,
        },
    );
    e.from = Some(expect.revision);
    e.to = Some(expect.revision);
    e.duration = start.elapsed();
    e.error = result.as_ref().err().map(ToString::to_string);
    e.detail = serde_json::json!({
        "revision": expect.revision,
        "name": expect.name,
        "old_checksum": expect.old_checksum.to_string(),
        "new_checksum": expect.new_checksum.to_string(),
        "up": expect.up,
        "down": expect.down,
        "target": target.name,
        "environment": target.environment.as_str(),
    });
    audit::record(&s, &e).await?;
    result
}

async fn accept_locked(s: &Session, catalog: &Catalog, expect: &Acceptance) -> Result<Acceptance> {
    let now = acceptance(catalog, &history::applied(s).await?, expect.revision)?;
    if (now.old_checksum, now.new_checksum, now.up, now.down)
        != (
            expect.old_checksum,
            expect.new_checksum,
            expect.up,
            expect.down,
        )
    {
        return Err(Error::Refused(format!(
            "{}_{} changed since the diff was shown (in the database or the files); nothing was accepted. Review it again.",
            expect.revision, expect.name
        )));
    }
    let Some(m) = catalog.get(expect.revision) else {
        return Err(Error::Usage(format!(
            "revision {} is not in the catalog",
            expect.revision
        )));
    };
    if !history::accept(s, m, expect.old_checksum).await? {
        return Err(Error::Refused(format!(
            "the history row of {} changed while accepting; nothing was accepted. Review it again.",
            m.label()
        )));
    }
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Migration;
    use crate::plan::Recorded;

    fn setup(up_file: &str, down_file: Option<&str>) -> (Catalog, Vec<Applied>) {
        let m =
            Migration::new(Revision(1), "t", up_file.into(), down_file.map(Into::into)).unwrap();
        let applied_m = Migration::new(Revision(1), "t", "create table t();".into(), None).unwrap();
        let a = Applied {
            revision: Revision(1),
            name: "t".into(),
            applied_on: String::new(),
            checksum: applied_m.checksum,
            recorded: Some(Recorded {
                up: "create table t();".into(),
                down: Some("drop table t;".into()),
                seq: 1,
                out_of_order: false,
            }),
        };
        let c = Catalog {
            dir: Default::default(),
            migrations: vec![m],
            scaffolds: vec![],
        };
        (c, vec![a])
    }

    #[test]
    fn accepting_names_both_checksums_and_what_changed() {
        let (c, a) = setup("create table t(id int);", Some("drop table t;"));
        let acc = acceptance(&c, &a, Revision(1)).unwrap();
        assert_eq!(acc.up, Some(Change::Content));
        assert_eq!(acc.down, None);
        assert_ne!(acc.old_checksum, acc.new_checksum);
        let (c, a) = setup("create table t();", Some("drop table t cascade;"));
        let acc = acceptance(&c, &a, Revision(1)).unwrap();
        assert_eq!((acc.up, acc.down), (None, Some(Change::Content)));
        assert_eq!(acc.old_checksum, acc.new_checksum);
    }

    #[test]
    fn a_revision_without_changed_files_is_not_accepted() {
        let (c, a) = setup("create table t();", Some("drop table t;"));
        let e = acceptance(&c, &a, Revision(1)).unwrap_err();
        assert_eq!(e.exit_code(), crate::ExitCode::Usage);
        assert!(acceptance(&c, &a, Revision(9)).is_err());
    }
}
