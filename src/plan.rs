//! Pure planning: catalog + applied history + requested target -> the steps to run, and drift.
//!
//! No I/O here. Every rule has a test named after it.

use std::collections::BTreeMap;

use crate::catalog::{Catalog, Revision};

/// One row of `refinery_schema_history`, with what pgshift recorded when it applied it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    pub revision: Revision,
    pub name: String,
    pub applied_on: String,
    pub checksum: u64,
    /// `None` for rows written before pgshift kept the SQL, or by another tool.
    pub recorded: Option<Recorded>,
}

impl Applied {
    /// History as if exactly the catalog's migrations through `through` had been applied, with
    /// matching checksums: what a plan "from REV" and the TUI's sample screens start from.
    pub fn catalog_through(catalog: &Catalog, through: Revision) -> Vec<Applied> {
        catalog
            .migrations
            .iter()
            .filter(|m| m.revision <= through)
            .map(|m| Applied {
                revision: m.revision,
                name: m.name.clone(),
                applied_on: String::new(),
                checksum: m.checksum,
                recorded: None,
            })
            .collect()
    }
}

/// What pgshift kept when it applied a migration (`pgshift_applied_sql`): the up and down SQL as
/// applied, so drift can show what changed, and the order of application.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recorded {
    #[serde(skip)]
    pub up: String,
    /// The down file's text at apply time; `None`: there was none.
    #[serde(skip)]
    pub down: Option<String>,
    /// Order of application (increasing).
    pub seq: i64,
    /// Applied below the head that was applied then (`up --out-of-order`).
    pub out_of_order: bool,
}

/// How a file differs from what was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The SQL changed.
    Content,
    /// Only line endings or whitespace at line ends or around the text changed (CRLF vs LF).
    Whitespace,
    /// Same SQL, new migration name (refinery's checksum includes the name).
    Renamed,
    /// A down file appeared after the migration was applied.
    Added,
    /// The down file was deleted after the migration was applied.
    Removed,
    /// The applied SQL was not recorded (applied before pgshift kept it, or by another tool):
    /// only the checksum says it changed.
    Unknown,
}

impl Change {
    fn note(self) -> &'static str {
        match self {
            Change::Content => "",
            Change::Whitespace => "; whitespace or line endings only (CRLF vs LF)",
            Change::Renamed => "; the SQL is the same, the migration was renamed",
            Change::Added => "",
            Change::Removed => "",
            Change::Unknown => {
                "; no diff: the applied SQL was not recorded (applied before pgshift kept it, or by another tool)"
            }
        }
    }
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
    /// An up step's down SQL, recorded with it (drift of the down file is then visible).
    #[serde(skip)]
    pub down: Option<String>,
    /// An up step below the applied head (`--out-of-order`).
    pub out_of_order: bool,
}

impl Step {
    pub fn label(&self) -> String {
        format!("{}_{}", self.revision, self.name)
    }

    /// How it runs, for plans and confirmations.
    pub fn how(&self) -> &'static str {
        match (
            self.no_transaction,
            self.out_of_order && self.direction == Direction::Up,
        ) {
            (true, true) => "OUT OF ORDER, no transaction, statement by statement",
            (true, false) => "no transaction, statement by statement",
            (false, true) => "OUT OF ORDER, one transaction",
            (false, false) => "one transaction",
        }
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

    /// The up steps below the applied head (`--out-of-order`), as labels.
    pub fn out_of_order(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.out_of_order && s.direction == Direction::Up)
            .map(Step::label)
            .collect()
    }

    /// `out of order (below the applied head 0004, merged late): 0003_x`, when there are any.
    pub fn out_of_order_note(&self) -> Option<String> {
        let late = self.out_of_order();
        (!late.is_empty()).then(|| {
            format!(
                "OUT OF ORDER (below the applied head {}, merged late): {}",
                self.from,
                late.join(", ")
            )
        })
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
        change: Change,
        /// Applied vs file, as a unified line diff (`None` when unknown or whitespace only).
        diff: Option<String>,
    },
    /// The down file changed (or appeared, or went) after the migration was applied.
    DownChanged {
        revision: Revision,
        name: String,
        change: Change,
        diff: Option<String>,
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
            | Drift::DownChanged { revision, .. }
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
                change,
                ..
            } => write!(
                f,
                "{revision}_{name}: the up file changed after it was applied (checksum applied {applied}, file {file}){}",
                change.note()
            ),
            Drift::DownChanged {
                revision,
                name,
                change,
                ..
            } => match change {
                Change::Added => write!(
                    f,
                    "{revision}_{name}: a down file was added after the migration was applied"
                ),
                Change::Removed => write!(
                    f,
                    "{revision}_{name}: the down file was deleted after the migration was applied"
                ),
                _ => write!(
                    f,
                    "{revision}_{name}: the down file changed after the migration was applied{}",
                    change.note()
                ),
            },
            Drift::MissingFile { revision, name } => write!(
                f,
                "{revision}_{name}: applied, but no such migration file in the catalog"
            ),
            Drift::NotApplied { revision, name } => write!(
                f,
                "{revision}_{name}: below the current revision but never applied (merged late from a branch?); `pgshift up --out-of-order` applies it first (or set `out_of_order = true` on the target)"
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
                let (change, diff) = match &a.recorded {
                    Some(r) if r.up == m.up => (Change::Renamed, None),
                    Some(r) => compare(&r.up, &m.up),
                    None => (Change::Unknown, None),
                };
                out.push(Drift::ChecksumChanged {
                    revision: a.revision,
                    name: m.name.clone(),
                    applied: a.checksum,
                    file: m.checksum,
                    change,
                    diff,
                })
            }
            Some(m) => {
                if let Some(d) = down_drift(a, m) {
                    out.push(d);
                }
            }
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

/// The down file against the one recorded at apply time (nothing to say without a record).
fn down_drift(a: &Applied, m: &crate::catalog::Migration) -> Option<Drift> {
    let r = a.recorded.as_ref()?;
    let (change, diff) = match (&r.down, &m.down) {
        (None, None) => return None,
        (Some(old), Some(new)) if old == new => return None,
        (Some(old), Some(new)) => compare(old, new),
        (None, Some(new)) => (Change::Added, Some(line_diff("", new))),
        (Some(old), None) => (Change::Removed, Some(line_diff(old, ""))),
    };
    Some(Drift::DownChanged {
        revision: a.revision,
        name: m.name.clone(),
        change,
        diff,
    })
}

/// Two different texts: whitespace only, or a content change with its diff.
fn compare(applied: &str, file: &str) -> (Change, Option<String>) {
    if normalized(applied) == normalized(file) {
        (Change::Whitespace, None)
    } else {
        (Change::Content, Some(line_diff(applied, file)))
    }
}

/// Line endings as LF, no whitespace at line ends, no blank lines around the text.
fn normalized(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// Lines of diff shown at most; the rest is counted.
const DIFF_LINES: usize = 80;

/// A unified line diff, `--- applied` / `+++ file`, two lines of context, capped.
pub fn line_diff(applied: &str, file: &str) -> String {
    let text = similar::TextDiff::from_lines(applied, file)
        .unified_diff()
        .context_radius(2)
        .header("applied", "file")
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= DIFF_LINES {
        return text;
    }
    format!(
        "{}\n... {} more diff lines",
        lines[..DIFF_LINES].join("\n"),
        lines.len() - DIFF_LINES
    )
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
    #[error("the database and the migration files disagree; nothing was run:\n{}\n  Restore the files (right branch? right --migrations dir?); if a file's change is intended, `pgshift accept REV` re-approves it after showing the diff (`pgshift status` shows it too); if the database is right, adopt it with `pgshift stamp`.", .0.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n"))]
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
    plan_with(catalog, applied, direction, target, Policy::default())
}

/// How strict planning is about history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Migrations below the applied head that were never applied (merged late from a branch) are
    /// applied first by `up` (recorded as out of order) instead of being drift.
    pub out_of_order: bool,
}

/// Drift under `policy`: with `out_of_order`, a never-applied migration below the head is
/// pending work, not drift.
pub fn drift_with(catalog: &Catalog, applied: &[Applied], policy: Policy) -> Vec<Drift> {
    drift(catalog, applied)
        .into_iter()
        .filter(|d| !(policy.out_of_order && matches!(d, Drift::NotApplied { .. })))
        .collect()
}

/// Catalog migrations below the current revision that were never applied, in order.
pub fn late<'c>(catalog: &'c Catalog, applied: &[Applied]) -> Vec<&'c crate::catalog::Migration> {
    let cur = current(applied);
    catalog
        .migrations
        .iter()
        .filter(|m| m.revision < cur && !applied.iter().any(|a| a.revision == m.revision))
        .collect()
}

/// Pending work under `policy`: the late migrations first (when allowed), then those above the
/// current revision. This is the order `up` applies them in.
pub fn pending_with<'c>(
    catalog: &'c Catalog,
    applied: &[Applied],
    policy: Policy,
) -> Vec<&'c crate::catalog::Migration> {
    let mut out = if policy.out_of_order {
        late(catalog, applied)
    } else {
        Vec::new()
    };
    out.extend(pending(catalog, applied));
    out
}

/// [`plan`] under `policy`.
pub fn plan_with(
    catalog: &Catalog,
    applied: &[Applied],
    direction: Direction,
    target: TargetSpec,
    policy: Policy,
) -> Result<Plan, PlanError> {
    // A downgrade reverts applied migrations only: a never-applied one below the head (merged
    // late, or reverted out of order) has nothing to revert and does not block it.
    let drift: Vec<Drift> = drift_with(catalog, applied, policy)
        .into_iter()
        .filter(|d| !(direction == Direction::Down && matches!(d, Drift::NotApplied { .. })))
        .collect();
    if !drift.is_empty() {
        return Err(PlanError::Drift(drift));
    }
    let cur = current(applied);
    match direction {
        Direction::Up => {
            let late = if policy.out_of_order {
                late(catalog, applied)
            } else {
                Vec::new()
            };
            plan_up(catalog, cur, &late, target)
        }
        Direction::Down => plan_down(catalog, applied, cur, target),
    }
}

fn plan_up(
    catalog: &Catalog,
    cur: Revision,
    late: &[&crate::catalog::Migration],
    target: TargetSpec,
) -> Result<Plan, PlanError> {
    // Late migrations (below the head, never applied) come first, then the pending ones.
    let pending: Vec<_> = late
        .iter()
        .copied()
        .chain(catalog.migrations.iter().filter(|m| m.revision > cur))
        .collect();
    let chosen: Vec<&crate::catalog::Migration> = match target {
        TargetSpec::Head => pending,
        TargetSpec::Revision(t) => {
            if !catalog.contains(t) {
                return Err(PlanError::UnknownRevision(t));
            }
            if t < cur && !late.iter().any(|m| m.revision == t) {
                return Err(PlanError::TargetBelowCurrent {
                    current: cur,
                    target: t,
                });
            }
            // Up to t: the late ones up to t and, when t is at or above the head, the pending
            // ones up to t.
            pending.into_iter().filter(|m| m.revision <= t).collect()
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
            pending.into_iter().take(n as usize).collect()
        }
    };
    let steps: Vec<Step> = chosen
        .iter()
        .map(|m| Step {
            revision: m.revision,
            name: m.name.clone(),
            direction: Direction::Up,
            sql: m.up.clone(),
            no_transaction: m.no_transaction,
            checksum: m.checksum,
            down: m.down.clone(),
            out_of_order: m.revision < cur,
        })
        .collect();
    let to = steps
        .iter()
        .map(|s| s.revision)
        .max()
        .unwrap_or(cur)
        .max(cur);
    Ok(Plan {
        direction: Direction::Up,
        from: cur,
        to,
        steps,
    })
}

/// Applied revisions, most recently applied first: by the order recorded in pgshift's table;
/// rows without a record (applied before pgshift kept one, or by another tool) count as applied
/// before every recorded one, in version order.
pub fn by_application_desc(applied: &[Applied]) -> Vec<Revision> {
    let mut rows: Vec<&Applied> = applied.iter().collect();
    rows.sort_by_key(|a| {
        (
            a.recorded.is_some(),
            a.recorded.as_ref().map_or(0, |r| r.seq),
            a.revision,
        )
    });
    rows.iter().rev().map(|a| a.revision).collect()
}

fn plan_down(
    catalog: &Catalog,
    applied: &[Applied],
    cur: Revision,
    target: TargetSpec,
) -> Result<Plan, PlanError> {
    // Reverted in reverse order of application, so a migration applied out of order is reverted
    // where it was actually applied.
    let revs = by_application_desc(applied);
    let chosen: Vec<Revision> = match target {
        TargetSpec::Head => Vec::new(),
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
            revs.iter().copied().filter(|r| *r > t).collect()
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
            revs[..n as usize].to_vec()
        }
    };
    let mut steps = Vec::with_capacity(chosen.len());
    for rev in &chosen {
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
            down: None,
            out_of_order: applied
                .iter()
                .find(|a| a.revision == *rev)
                .and_then(|a| a.recorded.as_ref())
                .is_some_and(|r| r.out_of_order),
        });
    }
    let to = revs
        .iter()
        .filter(|r| !chosen.contains(r))
        .max()
        .copied()
        .unwrap_or(Revision::BASE);
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
        Applied::catalog_through(c, Revision(upto))
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
            recorded: None,
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

    fn recorded(a: &mut Applied, up: &str, down: Option<&str>) {
        a.recorded = Some(Recorded {
            up: up.into(),
            down: down.map(Into::into),
            seq: a.revision.0 as i64,
            out_of_order: false,
        });
    }

    #[test]
    fn changed_up_file_drift_carries_a_diff_of_applied_vs_file() {
        let c = catalog(&[(1, true)]);
        let mut a = applied(&c, 1);
        recorded(&mut a[0], "create table t0();", Some("drop table t1;"));
        a[0].checksum ^= 1;
        let d = drift(&c, &a);
        let Drift::ChecksumChanged { change, diff, .. } = &d[0] else {
            panic!("{d:?}")
        };
        assert_eq!(*change, Change::Content);
        let diff = diff.as_deref().unwrap();
        assert!(diff.contains("--- applied"), "{diff}");
        assert!(diff.contains("-create table t0();"), "{diff}");
        assert!(diff.contains("+create table t1();"), "{diff}");
    }

    #[test]
    fn line_ending_only_changes_are_reported_as_whitespace() {
        let c = catalog(&[(1, true)]);
        let mut a = applied(&c, 1);
        recorded(
            &mut a[0],
            "create table t1();\r\n\r\n",
            Some("drop table t1;"),
        );
        a[0].checksum ^= 1;
        let d = drift(&c, &a);
        assert!(
            matches!(
                &d[0],
                Drift::ChecksumChanged {
                    change: Change::Whitespace,
                    diff: None,
                    ..
                }
            ),
            "{d:?}"
        );
        assert!(d[0].to_string().contains("whitespace or line endings only"));
    }

    #[test]
    fn an_edited_down_file_is_drift_and_blocks_planning() {
        let c = catalog(&[(1, true), (2, true)]);
        let mut a = applied(&c, 2);
        recorded(
            &mut a[1],
            "create table t2();",
            Some("drop table t2 cascade;"),
        );
        let d = drift(&c, &a);
        assert_eq!(d.len(), 1, "{d:?}");
        let Drift::DownChanged { change, diff, .. } = &d[0] else {
            panic!("{d:?}")
        };
        assert_eq!(*change, Change::Content);
        assert!(diff.as_deref().unwrap().contains("+drop table t2;"));
        assert!(
            plan(&c, &a, Direction::Down, TargetSpec::Head)
                .unwrap_err()
                .is_integrity()
        );
        // A down file added after the fact, or deleted, is drift too.
        recorded(&mut a[1], "create table t2();", None);
        assert!(matches!(
            drift(&c, &a)[0],
            Drift::DownChanged {
                change: Change::Added,
                ..
            }
        ));
        let c = catalog(&[(1, true), (2, false)]);
        recorded(&mut a[1], "create table t2();", Some("drop table t2;"));
        assert!(matches!(
            drift(&c, &a)[0],
            Drift::DownChanged {
                change: Change::Removed,
                ..
            }
        ));
    }

    #[test]
    fn without_recorded_sql_drift_says_no_diff_is_possible() {
        let c = catalog(&[(1, true)]);
        let mut a = applied(&c, 1);
        a[0].checksum ^= 1;
        let d = drift(&c, &a);
        assert!(matches!(
            &d[0],
            Drift::ChecksumChanged {
                change: Change::Unknown,
                diff: None,
                ..
            }
        ));
        assert!(d[0].to_string().contains("not recorded"));
    }

    /// 1, 2, 4 applied (in that order); 3 merged late from a branch.
    fn with_late_three() -> (Catalog, Vec<Applied>) {
        let c = catalog(&[(1, true), (2, true), (3, true), (4, true), (5, true)]);
        let mut a: Vec<Applied> = applied(&c, 4)
            .into_iter()
            .filter(|a| a.revision != Revision(3))
            .collect();
        for x in &mut a {
            let m = c.get(x.revision).unwrap();
            recorded(x, &m.up, m.down.as_deref());
        }
        (c, a)
    }

    const LATE: Policy = Policy { out_of_order: true };

    #[test]
    fn a_late_migration_stays_drift_by_default_and_says_how_to_proceed() {
        let (c, a) = with_late_three();
        let e = plan(&c, &a, Direction::Up, TargetSpec::Head).unwrap_err();
        assert!(e.is_integrity());
        assert!(e.to_string().contains("--out-of-order"), "{e}");
        assert!(
            pending_with(&c, &a, Policy::default())
                .iter()
                .all(|m| m.revision != Revision(3))
        );
    }

    #[test]
    fn out_of_order_applies_late_migrations_first_marked_as_such() {
        let (c, a) = with_late_three();
        let p = plan_with(&c, &a, Direction::Up, TargetSpec::Head, LATE).unwrap();
        assert_eq!(revs(&p), vec![3, 5]);
        assert!(p.steps[0].out_of_order && !p.steps[1].out_of_order);
        assert_eq!((p.from, p.to), (Revision(4), Revision(5)));
        assert!(drift_with(&c, &a, LATE).is_empty());
        let pending: Vec<u32> = pending_with(&c, &a, LATE)
            .iter()
            .map(|m| m.revision.0)
            .collect();
        assert_eq!(pending, vec![3, 5]);
    }

    #[test]
    fn out_of_order_to_a_late_revision_applies_only_the_late_ones_up_to_it() {
        let (c, a) = with_late_three();
        let p = plan_with(
            &c,
            &a,
            Direction::Up,
            TargetSpec::Revision(Revision(3)),
            LATE,
        )
        .unwrap();
        assert_eq!(revs(&p), vec![3]);
        assert_eq!(p.to, Revision(4), "the head does not move");
        let p = plan_with(
            &c,
            &a,
            Direction::Up,
            TargetSpec::Steps(Direction::Up, 1),
            LATE,
        )
        .unwrap();
        assert_eq!(revs(&p), vec![3]);
        let e = plan_with(
            &c,
            &a,
            Direction::Up,
            TargetSpec::Revision(Revision(2)),
            LATE,
        );
        assert!(matches!(e, Err(PlanError::TargetBelowCurrent { .. })));
    }

    #[test]
    fn down_reverts_in_reverse_order_of_application() {
        let (c, mut a) = with_late_three();
        // 3 was applied out of order, after 4.
        let mut three = applied(&c, 3).pop().unwrap();
        recorded(&mut three, "create table t3();", Some("drop table t3;"));
        if let Some(r) = three.recorded.as_mut() {
            r.seq = 10;
            r.out_of_order = true;
        }
        a.push(three);
        let p = plan(
            &c,
            &a,
            Direction::Down,
            TargetSpec::Steps(Direction::Down, 1),
        )
        .unwrap();
        assert_eq!(revs(&p), vec![3]);
        assert!(p.steps[0].out_of_order);
        assert_eq!(p.to, Revision(4), "4 is still applied");
        let p = plan(&c, &a, Direction::Down, TargetSpec::Revision(Revision(1))).unwrap();
        assert_eq!(revs(&p), vec![3, 4, 2]);
        assert_eq!(p.to, Revision(1));
        // Once 3 is reverted it is late again: that does not block downgrading the rest.
        let without_three: Vec<Applied> = a
            .iter()
            .filter(|x| x.revision != Revision(3))
            .cloned()
            .collect();
        let p = plan(
            &c,
            &without_three,
            Direction::Down,
            TargetSpec::Revision(Revision(1)),
        )
        .unwrap();
        assert_eq!(revs(&p), vec![4, 2]);
        assert!(plan(&c, &without_three, Direction::Up, TargetSpec::Head).is_err());
        // Rows without a record count as applied before every recorded one.
        a[0].recorded = None;
        assert_eq!(by_application_desc(&a).last(), Some(&Revision(1)));
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
