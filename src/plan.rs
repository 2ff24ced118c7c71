//! Pure planning: catalog + applied history + requested target -> the steps to run, and drift.
//!
//! No I/O here. Every rule has a test named after it.

use std::collections::BTreeMap;

use crate::catalog::{Catalog, Revision};

/// One row of `refinery_schema_history`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    pub revision: Revision,
    pub name: String,
    pub applied_on: String,
    pub checksum: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    pub fn verb(self) -> &'static str {
        match self {
            Direction::Up => "upgrade",
            Direction::Down => "downgrade",
        }
    }
}

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSpec {
    Head,
    Revision(Revision),
    /// `+N` (up) or `-N` (down) steps from the current revision.
    Steps(Direction, u32),
}

impl TargetSpec {
    /// Parse what follows `up` or `down`: `head`, `base`, `0003`, `+2`, `-1`.
    pub fn parse(s: &str, direction: Direction) -> Result<TargetSpec, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("head") {
            return Ok(TargetSpec::Head);
        }
        let relative = match direction {
            Direction::Up => s.strip_prefix('+'),
            Direction::Down => s.strip_prefix('-'),
        };
        if let Some(n) = relative {
            return n
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .map(|n| TargetSpec::Steps(direction, n))
                .ok_or_else(|| format!("{s:?} is not a step count (e.g. +1, -2)"));
        }
        Revision::parse(s).map(TargetSpec::Revision).ok_or_else(|| {
            let sign = if direction == Direction::Up {
                "+N"
            } else {
                "-N"
            };
            format!("{s:?} is not a revision: use a version like 0003, head, base or {sign}")
        })
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub revision: Revision,
    pub name: String,
    pub direction: Direction,
    pub sql: String,
    pub no_transaction: bool,
    /// The checksum written to history for an up step.
    pub checksum: u64,
}

impl Step {
    pub fn label(&self) -> String {
        format!("{}_{}", self.revision, self.name)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub direction: Direction,
    pub from: Revision,
    pub to: Revision,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn is_destructive(&self) -> bool {
        self.direction == Direction::Down && !self.steps.is_empty()
    }
}

/// A difference between what the files say and what the database recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Drift {
    /// The up file changed after it was applied.
    ChecksumChanged {
        revision: Revision,
        name: String,
        applied: u64,
        file: u64,
    },
    /// History has a revision the catalog does not (file deleted, wrong directory, newer branch).
    MissingFile { revision: Revision, name: String },
    /// A catalog revision below the current one was never applied (merged late, out of order).
    NotApplied { revision: Revision, name: String },
}

impl Drift {
    pub fn revision(&self) -> Revision {
        match self {
            Drift::ChecksumChanged { revision, .. }
            | Drift::MissingFile { revision, .. }
            | Drift::NotApplied { revision, .. } => *revision,
        }
    }
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::ChecksumChanged {
                revision,
                name,
                applied,
                file,
            } => write!(
                f,
                "{revision}_{name}: the file changed after it was applied (checksum applied {applied}, file {file})"
            ),
            Drift::MissingFile { revision, name } => write!(
                f,
                "{revision}_{name}: applied, but no such migration file in the catalog"
            ),
            Drift::NotApplied { revision, name } => write!(
                f,
                "{revision}_{name}: below the current revision but never applied"
            ),
        }
    }
}

pub fn current(applied: &[Applied]) -> Revision {
    applied
        .iter()
        .map(|a| a.revision)
        .max()
        .unwrap_or(Revision::BASE)
}

/// Compare catalog and history. Empty means they agree.
pub fn drift(catalog: &Catalog, applied: &[Applied]) -> Vec<Drift> {
    let by_rev: BTreeMap<Revision, &Applied> = applied.iter().map(|a| (a.revision, a)).collect();
    let cur = current(applied);
    let mut out = Vec::new();
    for a in applied {
        match catalog.get(a.revision) {
            None => out.push(Drift::MissingFile {
                revision: a.revision,
                name: a.name.clone(),
            }),
            Some(m) if m.checksum != a.checksum || m.name != a.name => {
                out.push(Drift::ChecksumChanged {
                    revision: a.revision,
                    name: m.name.clone(),
                    applied: a.checksum,
                    file: m.checksum,
                })
            }
            Some(_) => {}
        }
    }
    for m in &catalog.migrations {
        if m.revision < cur && !by_rev.contains_key(&m.revision) {
            out.push(Drift::NotApplied {
                revision: m.revision,
                name: m.name.clone(),
            });
        }
    }
    out.sort_by_key(Drift::revision);
    out
}

/// Migrations in the catalog above the current revision, in order.
pub fn pending<'c>(
    catalog: &'c Catalog,
    applied: &[Applied],
) -> Vec<&'c crate::catalog::Migration> {
    let cur = current(applied);
    catalog
        .migrations
        .iter()
        .filter(|m| m.revision > cur)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("revision {0} is not in the catalog; `pgshift status` lists the known revisions")]
    UnknownRevision(Revision),
    #[error(
        "cannot upgrade to {target}: the database is already at {current}, which is above it; use `pgshift down {target}`"
    )]
    TargetBelowCurrent { current: Revision, target: Revision },
    #[error(
        "cannot downgrade to {target}: the database is at {current}, which is below it; use `pgshift up {target}`"
    )]
    TargetAboveCurrent { current: Revision, target: Revision },
    #[error(
        "asked for {asked} step(s) {direction}, but only {available} are possible from {current}"
    )]
    TooManySteps {
        direction: &'static str,
        asked: u32,
        available: usize,
        current: Revision,
    },
    #[error(
        "refusing to downgrade through {revision}_{name}: it is irreversible (no {revision}_{name}.down.sql). Nothing was run. Downgrade to {revision} or above, or write the down migration first."
    )]
    Irreversible { revision: Revision, name: String },
    #[error("the database and the migration files disagree; nothing was run:\n{}\n  Restore the files (right branch? right --migrations dir?) or, if the database is right, adopt it with `pgshift stamp`.", .0.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n"))]
    Drift(Vec<Drift>),
}

impl PlanError {
    /// Drift is an integrity problem (exit 5); the rest are requests that cannot be met.
    pub fn is_integrity(&self) -> bool {
        matches!(self, PlanError::Drift(_))
    }
}

/// Steps to go from what is applied to `target` in `direction`.
pub fn plan(
    catalog: &Catalog,
    applied: &[Applied],
    direction: Direction,
    target: TargetSpec,
) -> Result<Plan, PlanError> {
    let drift = drift(catalog, applied);
    if !drift.is_empty() {
        return Err(PlanError::Drift(drift));
    }
    let cur = current(applied);
    match direction {
        Direction::Up => plan_up(catalog, cur, target),
        Direction::Down => plan_down(catalog, applied, cur, target),
    }
}

fn plan_up(catalog: &Catalog, cur: Revision, target: TargetSpec) -> Result<Plan, PlanError> {
    let pending: Vec<_> = catalog
        .migrations
        .iter()
        .filter(|m| m.revision > cur)
        .collect();
    let take = match target {
        TargetSpec::Head => pending.len(),
        TargetSpec::Revision(t) => {
            if !catalog.contains(t) {
                return Err(PlanError::UnknownRevision(t));
            }
            if t < cur {
                return Err(PlanError::TargetBelowCurrent {
                    current: cur,
                    target: t,
                });
            }
            pending.iter().take_while(|m| m.revision <= t).count()
        }
        TargetSpec::Steps(_, n) => {
            if n as usize > pending.len() {
                return Err(PlanError::TooManySteps {
                    direction: "up",
                    asked: n,
                    available: pending.len(),
                    current: cur,
                });
            }
            n as usize
        }
    };
    let steps: Vec<Step> = pending[..take]
        .iter()
        .map(|m| Step {
            revision: m.revision,
            name: m.name.clone(),
            direction: Direction::Up,
            sql: m.up.clone(),
            no_transaction: m.no_transaction,
            checksum: m.checksum,
        })
        .collect();
    let to = steps.last().map(|s| s.revision).unwrap_or(cur);
    Ok(Plan {
        direction: Direction::Up,
        from: cur,
        to,
        steps,
    })
}

fn plan_down(
    catalog: &Catalog,
    applied: &[Applied],
    cur: Revision,
    target: TargetSpec,
) -> Result<Plan, PlanError> {
    let mut revs: Vec<Revision> = applied.iter().map(|a| a.revision).collect();
    revs.sort_unstable_by(|a, b| b.cmp(a)); // top first
    let take = match target {
        TargetSpec::Head => 0,
        TargetSpec::Revision(t) => {
            if !catalog.contains(t) {
                return Err(PlanError::UnknownRevision(t));
            }
            if t > cur {
                return Err(PlanError::TargetAboveCurrent {
                    current: cur,
                    target: t,
                });
            }
            revs.iter().take_while(|r| **r > t).count()
        }
        TargetSpec::Steps(_, n) => {
            if n as usize > revs.len() {
                return Err(PlanError::TooManySteps {
                    direction: "down",
                    asked: n,
                    available: revs.len(),
                    current: cur,
                });
            }
            n as usize
        }
    };
    let mut steps = Vec::with_capacity(take);
    for rev in &revs[..take] {
        // drift() already guaranteed every applied revision has a file.
        let Some(m) = catalog.get(*rev) else {
            return Err(PlanError::UnknownRevision(*rev));
        };
        let Some(down) = &m.down else {
            return Err(PlanError::Irreversible {
                revision: m.revision,
                name: m.name.clone(),
            });
        };
        steps.push(Step {
            revision: m.revision,
            name: m.name.clone(),
            direction: Direction::Down,
            sql: down.clone(),
            no_transaction: crate::catalog::Migration::new(m.revision, &m.name, down.clone(), None)
                .map(|d| d.no_transaction)
                .unwrap_or(false),
            checksum: m.checksum,
        });
    }
    let to = revs.get(take).copied().unwrap_or(Revision::BASE);
    Ok(Plan {
        direction: Direction::Down,
        from: cur,
        to,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Migration;

    fn catalog(revs: &[(u32, bool)]) -> Catalog {
        Catalog {
            dir: Default::default(),
            migrations: revs
                .iter()
                .map(|(v, reversible)| {
                    Migration::new(
                        Revision(*v),
                        &format!("m{v}"),
                        format!("create table t{v}();"),
                        reversible.then(|| format!("drop table t{v};")),
                    )
                    .unwrap()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn applied(c: &Catalog, upto: u32) -> Vec<Applied> {
        c.migrations
            .iter()
            .filter(|m| m.revision.0 <= upto)
            .map(|m| Applied {
                revision: m.revision,
                name: m.name.clone(),
                applied_on: String::new(),
                checksum: m.checksum,
            })
            .collect()
    }

    fn revs(p: &Plan) -> Vec<u32> {
        p.steps.iter().map(|s| s.revision.0).collect()
    }

    #[test]
    fn up_to_head_applies_all_pending_in_order() {
        let c = catalog(&[(1, true), (2, true), (3, true)]);
        let p = plan(&c, &applied(&c, 1), Direction::Up, TargetSpec::Head).unwrap();
        assert_eq!(revs(&p), vec![2, 3]);
        assert_eq!((p.from, p.to), (Revision(1), Revision(3)));
    }

    #[test]
    fn up_to_revision_stops_there() {
        let c = catalog(&[(1, true), (2, true), (3, true)]);
        let p = plan(&c, &[], Direction::Up, TargetSpec::Revision(Revision(2))).unwrap();
        assert_eq!(revs(&p), vec![1, 2]);
    }

    #[test]
    fn up_at_head_is_an_empty_plan() {
        let c = catalog(&[(1, true)]);
        let p = plan(&c, &applied(&c, 1), Direction::Up, TargetSpec::Head).unwrap();
        assert!(p.is_empty());
        assert!(!p.is_destructive());
    }

    #[test]
    fn up_by_steps_counts_pending() {
        let c = catalog(&[(1, true), (2, true), (3, true)]);
        let p = plan(
            &c,
            &applied(&c, 1),
            Direction::Up,
            TargetSpec::Steps(Direction::Up, 1),
        )
        .unwrap();
        assert_eq!(revs(&p), vec![2]);
        let e = plan(
            &c,
            &applied(&c, 1),
            Direction::Up,
            TargetSpec::Steps(Direction::Up, 3),
        )
        .unwrap_err();
        assert!(matches!(e, PlanError::TooManySteps { available: 2, .. }));
    }

    #[test]
    fn up_to_revision_below_current_is_refused() {
        let c = catalog(&[(1, true), (2, true)]);
        let e = plan(
            &c,
            &applied(&c, 2),
            Direction::Up,
            TargetSpec::Revision(Revision(1)),
        )
        .unwrap_err();
        assert_eq!(
            e,
            PlanError::TargetBelowCurrent {
                current: Revision(2),
                target: Revision(1)
            }
        );
    }

    #[test]
    fn unknown_revision_is_refused() {
        let c = catalog(&[(1, true)]);
        let e = plan(&c, &[], Direction::Up, TargetSpec::Revision(Revision(7))).unwrap_err();
        assert_eq!(e, PlanError::UnknownRevision(Revision(7)));
    }

    #[test]
    fn down_default_is_one_step_from_the_top() {
        let c = catalog(&[(1, true), (2, true), (3, true)]);
        let p = plan(
            &c,
            &applied(&c, 3),
            Direction::Down,
            TargetSpec::Steps(Direction::Down, 1),
        )
        .unwrap();
        assert_eq!(revs(&p), vec![3]);
        assert_eq!(p.to, Revision(2));
        assert!(p.is_destructive());
        assert_eq!(p.steps[0].sql, "drop table t3;");
    }

    #[test]
    fn down_to_base_removes_everything_top_first() {
        let c = catalog(&[(1, true), (2, true), (3, true)]);
        let p = plan(
            &c,
            &applied(&c, 3),
            Direction::Down,
            TargetSpec::Revision(Revision::BASE),
        )
        .unwrap();
        assert_eq!(revs(&p), vec![3, 2, 1]);
        assert_eq!(p.to, Revision::BASE);
    }

    #[test]
    fn downgrade_through_irreversible_is_refused() {
        let c = catalog(&[(1, true), (2, false), (3, true)]);
        let e = plan(
            &c,
            &applied(&c, 3),
            Direction::Down,
            TargetSpec::Revision(Revision(1)),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            PlanError::Irreversible {
                revision: Revision(2),
                ..
            }
        ));
        // Stopping above it is fine.
        let p = plan(
            &c,
            &applied(&c, 3),
            Direction::Down,
            TargetSpec::Revision(Revision(2)),
        )
        .unwrap();
        assert_eq!(revs(&p), vec![3]);
    }

    #[test]
    fn down_to_revision_above_current_is_refused() {
        let c = catalog(&[(1, true), (2, true)]);
        let e = plan(
            &c,
            &applied(&c, 1),
            Direction::Down,
            TargetSpec::Revision(Revision(2)),
        )
        .unwrap_err();
        assert!(matches!(e, PlanError::TargetAboveCurrent { .. }));
    }

    #[test]
    fn changed_checksum_is_drift_and_blocks_planning() {
        let c = catalog(&[(1, true), (2, true)]);
        let mut a = applied(&c, 2);
        a[0].checksum ^= 1;
        let d = drift(&c, &a);
        assert!(matches!(
            d[0],
            Drift::ChecksumChanged {
                revision: Revision(1),
                ..
            }
        ));
        let e = plan(&c, &a, Direction::Up, TargetSpec::Head).unwrap_err();
        assert!(e.is_integrity());
    }

    #[test]
    fn applied_revision_without_file_is_drift() {
        let c = catalog(&[(1, true)]);
        let mut a = applied(&c, 1);
        a.push(Applied {
            revision: Revision(9),
            name: "gone".into(),
            applied_on: String::new(),
            checksum: 1,
        });
        assert_eq!(
            drift(&c, &a),
            vec![Drift::MissingFile {
                revision: Revision(9),
                name: "gone".into()
            }]
        );
    }

    #[test]
    fn unapplied_revision_below_current_is_drift() {
        let c = catalog(&[(1, true), (2, true), (3, true)]);
        let a: Vec<_> = applied(&c, 3)
            .into_iter()
            .filter(|a| a.revision != Revision(2))
            .collect();
        assert_eq!(
            drift(&c, &a),
            vec![Drift::NotApplied {
                revision: Revision(2),
                name: "m2".into()
            }]
        );
    }

    #[test]
    fn target_spec_parses_relative_and_named_targets() {
        assert_eq!(
            TargetSpec::parse("+2", Direction::Up),
            Ok(TargetSpec::Steps(Direction::Up, 2))
        );
        assert_eq!(
            TargetSpec::parse("-1", Direction::Down),
            Ok(TargetSpec::Steps(Direction::Down, 1))
        );
        assert_eq!(
            TargetSpec::parse("head", Direction::Up),
            Ok(TargetSpec::Head)
        );
        assert_eq!(
            TargetSpec::parse("base", Direction::Down),
            Ok(TargetSpec::Revision(Revision::BASE))
        );
        assert_eq!(
            TargetSpec::parse("0003", Direction::Up),
            Ok(TargetSpec::Revision(Revision(3)))
        );
        assert!(TargetSpec::parse("-1", Direction::Up).is_err());
        assert!(TargetSpec::parse("+0", Direction::Up).is_err());
        assert!(TargetSpec::parse("latest", Direction::Up).is_err());
    }
}
