//! Gates: what may run, decided once for every front end.
//!
//! A run is gated by drift (files and history disagree), irreversible steps (a downgrade through a
//! migration without down SQL), lint (locking or breaking DDL in the steps of an upgrade) and the
//! pre-deploy checklist (production targets). Which of them a caller applies is its [`Policy`]
//! ([`Caller`] says who asks; `--allow-lint` is the one override, and it is audited). The
//! [`Verdict`] is computed before the operator confirms (for the preview) and again inside the run
//! under the runner lock, where a refusal stops the run and is audited by it.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::catalog::Catalog;
use crate::config::Target;
use crate::db::Session;
use crate::error::{Error, Result};
use crate::lint::{MigrationLint, Mode, Weighed, render};
use crate::plan::{Direction, Plan, PlanError};

/// The front end asking for a run; each applies the gates [`Policy::rule`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Caller {
    /// `pgshift up` / `down`.
    Cli,
    /// `pgshift fleet up`: each target's run gets `up`'s gates.
    Fleet,
    /// `u` / `d` / `D` on the operator screen.
    Tui,
    /// `POST /admin/migrations/retry`.
    Serve,
    /// `pgshift startup` and the library's `migrate_on_startup`.
    Startup,
    /// The `local_testing` checklist item, on a scratch copy.
    Rehearsal,
    /// The sandbox's demo migrations.
    Sandbox,
}

/// One gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    Drift,
    Irreversible,
    Lint,
    Checklist,
}

impl Gate {
    pub const ALL: [Gate; 4] = [Gate::Drift, Gate::Irreversible, Gate::Lint, Gate::Checklist];

    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Drift => "drift",
            Gate::Irreversible => "irreversible",
            Gate::Lint => "lint",
            Gate::Checklist => "checklist",
        }
    }
}

/// What a caller does with a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A failing gate refuses the run.
    Enforce,
    /// Not applied, and why.
    Skip(&'static str),
}

/// `--allow-lint`: run despite lint errors, recorded in the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LintOverride {
    #[default]
    No,
    Allowed,
}

/// What the pre-deploy checklist says about a production upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecklistAnswer {
    /// A pre-deploy run passed recently enough, for these migration files.
    Clear,
    /// No such run; the upgrade goes on with this warning.
    Warn(String),
    /// The target requires one (`require_checklist_hours`); the upgrade is refused.
    Refuse(String),
}

/// The pre-deploy checklist as the runbook keeps it (`runbook::Runbook` implements this, so `ops`
/// does not depend on the runbook, which itself runs migrations for its rehearsal). Read-only on
/// `s`: the run's worker session under the lock, or a preview's.
pub trait PreDeployChecklist: std::fmt::Debug + Send + Sync {
    fn answer<'a>(
        &'a self,
        target: &'a Target,
        s: &'a Session,
    ) -> BoxFuture<'a, Result<ChecklistAnswer>>;
}

/// The checklists the checklist gate reads.
#[derive(Debug, Clone)]
pub enum Checklists {
    Loaded(Arc<dyn PreDeployChecklist>),
    /// The configured checklists could not be loaded (or none were); on production that refuses
    /// (with `require_checklist_hours`) or warns.
    Unavailable(String),
}

impl Checklists {
    /// For callers that never apply the checklist gate (a rehearsal, the sandbox, tests).
    pub fn none() -> Checklists {
        Checklists::Unavailable("no checklists were loaded".into())
    }
}

/// Who asks, and what they bring to the gates.
#[derive(Debug, Clone)]
pub struct Policy {
    pub caller: Caller,
    pub lint_override: LintOverride,
    pub checklists: Checklists,
    /// `[lint]`: baseline and thresholds for weighing the findings (defaults without a config).
    pub lint: crate::lint::Settings,
}

impl Policy {
    pub fn new(caller: Caller, checklists: Checklists) -> Policy {
        Policy {
            caller,
            lint_override: LintOverride::No,
            checklists,
            lint: crate::lint::Settings::default(),
        }
    }

    /// The config's `[lint]` section.
    pub fn with_lint_settings(mut self, settings: crate::lint::Settings) -> Policy {
        self.lint = settings;
        self
    }

    /// `pgshift up --allow-lint` (only the CLI may override, and the audit says so).
    pub fn with_lint_override(mut self, o: LintOverride) -> Policy {
        if matches!(self.caller, Caller::Cli | Caller::Fleet) {
            self.lint_override = o;
        }
        self
    }

    /// The gate table (README "Gates"). Drift and irreversible steps refuse for every caller:
    /// `plan::plan` cannot make a plan past them.
    pub fn rule(&self, gate: Gate) -> Rule {
        use Caller::*;
        match (gate, self.caller) {
            (Gate::Drift | Gate::Irreversible, _) => Rule::Enforce,
            (Gate::Lint, Cli | Fleet | Tui) => Rule::Enforce,
            (Gate::Lint, Serve | Startup) => Rule::Skip(
                "runs what was deployed; lint belongs before the deploy (`pgshift lint` in CI, `pgshift up`)",
            ),
            (Gate::Lint, Rehearsal) => Rule::Skip("a rehearsal on a scratch copy"),
            (Gate::Lint, Sandbox) => Rule::Skip("the sandbox's demo migrations"),
            (Gate::Checklist, Cli | Fleet | Tui | Serve | Startup) => Rule::Enforce,
            (Gate::Checklist, Rehearsal) => {
                Rule::Skip("the rehearsal is itself a pre-deploy checklist item")
            }
            (Gate::Checklist, Sandbox) => Rule::Skip("the sandbox is never production"),
        }
    }
}

/// How one gate came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateState {
    Passed,
    /// Passed with a warning the operator should see.
    Warned,
    Refused,
    /// Would refuse, but the operator overrode it (`--allow-lint`); audited.
    Overridden,
    /// Not applied for this caller or this run.
    Skipped,
}

impl GateState {
    pub fn as_str(self) -> &'static str {
        match self {
            GateState::Passed => "passed",
            GateState::Warned => "warned",
            GateState::Refused => "refused",
            GateState::Overridden => "overridden",
            GateState::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GateResult {
    pub gate: Gate,
    pub state: GateState,
    pub message: String,
}

impl GateResult {
    pub fn new(gate: Gate, state: GateState, message: impl Into<String>) -> GateResult {
        GateResult {
            gate,
            state,
            message: message.into(),
        }
    }
}

/// Every gate's result for one run, and the lint findings the lint gate weighed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    pub caller: Caller,
    pub gates: Vec<GateResult>,
    /// The findings of the upgrade's steps, weighed (empty when lint was not applied).
    pub lint: Vec<MigrationLint>,
    /// How they were weighed (`live` against the target's tables, or by the run only) and in
    /// words; `None` when lint was not applied.
    pub lint_mode: Option<Mode>,
    pub lint_basis: Option<String>,
    /// Migrations `[lint] start_after` left out.
    pub not_linted: Vec<crate::catalog::Revision>,
    #[serde(skip)]
    lint_override: LintOverride,
}

impl Verdict {
    pub fn refusals(&self) -> impl Iterator<Item = &GateResult> {
        self.gates.iter().filter(|g| g.state == GateState::Refused)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &GateResult> {
        self.gates.iter().filter(|g| g.state == GateState::Warned)
    }

    pub fn is_refused(&self) -> bool {
        self.refusals().next().is_some()
    }

    pub fn get(&self, gate: Gate) -> Option<&GateResult> {
        self.gates.iter().find(|g| g.gate == gate)
    }

    /// The refusal as the run's error: every refusing gate's message (exit 1).
    pub fn refusal(&self) -> Option<Error> {
        let messages: Vec<&str> = self.refusals().map(|g| g.message.as_str()).collect();
        (!messages.is_empty()).then(|| Error::Refused(messages.join("\n")))
    }

    /// The run's audit detail: `gates` (each gate's state and message), `policy` (whose policy
    /// applied; serve's HTTP client is `requested_by`), and `lint` when lint was
    /// applied (what was allowed, and whether `--allow-lint` overrode errors).
    pub fn audit_detail(&self) -> serde_json::Value {
        let mut detail = serde_json::json!({ "gates": self.gates, "policy": self.caller });
        if self
            .get(Gate::Lint)
            .is_some_and(|g| g.state != GateState::Skipped)
        {
            let (errors, _, _) = render::counts(&self.lint);
            let allow = self.lint_override == LintOverride::Allowed;
            let noted: Vec<serde_json::Value> = self
                .lint
                .iter()
                .flat_map(|l| {
                    l.findings
                        .iter()
                        .filter(|f| f.allowed.is_some() || f.blocks())
                        .map(move |f| {
                            serde_json::json!({
                                "revision": l.revision, "rule": f.rule, "line": f.line,
                                "severity": f.severity, "allowed": f.allowed,
                                "weighed": f.weighed,
                            })
                        })
                })
                .collect();
            detail["lint"] = serde_json::json!({
                "mode": self.lint_mode,
                "counts": crate::lint::weigh::Counts::of(&self.lint),
                "not_linted": self.not_linted,
                "errors_overridden": if allow { errors } else { 0 },
                "allow_lint_flag": allow,
                "findings": noted,
            });
        }
        detail
    }
}

/// The gates over a plan that could be made (so drift and irreversibility passed). Read-only:
/// the same call serves the preview and the run under the lock (on the worker session). Lint is
/// weighed against the live tables the steps touch: one query on `s`.
pub async fn check(
    s: &Session,
    target: &Target,
    catalog: &Catalog,
    plan: &Plan,
    policy: &Policy,
) -> Result<Verdict> {
    let checklist = checklist_gate(s, target, plan, policy).await?;
    let weighed = match lint_steps(plan, catalog, policy) {
        Some(steps) => Some(crate::lint::weigh(&s.client, &steps, &policy.lint).await?),
        None => None,
    };
    Ok(verdict_weighed(plan, policy, checklist, weighed))
}

/// The verdict over `plan` given the checklist gate's result, with lint weighed by the run only
/// (no database read); the rest is pure.
pub fn verdict(plan: &Plan, catalog: &Catalog, policy: &Policy, checklist: GateResult) -> Verdict {
    let weighed = lint_steps(plan, catalog, policy)
        .map(|steps| crate::lint::weigh_with(&steps, &policy.lint, None));
    verdict_weighed(plan, policy, checklist, weighed)
}

/// The steps lint weighs: an upgrade's, when the caller's policy applies lint.
fn lint_steps<'c>(
    plan: &Plan,
    catalog: &'c Catalog,
    policy: &Policy,
) -> Option<Vec<&'c crate::catalog::Migration>> {
    match (policy.rule(Gate::Lint), plan.direction) {
        (Rule::Enforce, Direction::Up) if !plan.is_empty() => Some(
            plan.steps
                .iter()
                .filter_map(|s| catalog.get(s.revision))
                .collect(),
        ),
        _ => None,
    }
}

fn verdict_weighed(
    plan: &Plan,
    policy: &Policy,
    checklist: GateResult,
    weighed: Option<Weighed>,
) -> Verdict {
    let mut gates = vec![
        GateResult::new(
            Gate::Drift,
            GateState::Passed,
            "the migration files match the applied history",
        ),
        match plan.direction {
            Direction::Down => GateResult::new(
                Gate::Irreversible,
                GateState::Passed,
                "every step has its down SQL",
            ),
            Direction::Up => GateResult::new(
                Gate::Irreversible,
                GateState::Skipped,
                "an upgrade runs no down SQL",
            ),
        },
    ];
    let (lint, lint_mode, lint_basis, not_linted) = match weighed {
        Some(w) => (w.migrations, Some(w.mode), Some(w.basis), w.not_linted),
        None => (Vec::new(), None, None, Vec::new()),
    };
    gates.push(lint_gate(plan, policy, &lint));
    gates.push(checklist);
    Verdict {
        caller: policy.caller,
        gates,
        lint,
        lint_mode,
        lint_basis,
        not_linted,
        lint_override: policy.lint_override,
    }
}

/// The verdict for a plan `plan::plan` refused: drift and irreversible steps are gates too, so
/// their refusal is reported and audited like the others. `None` for other planning errors.
pub fn of_plan_error(e: &PlanError, policy: &Policy) -> Option<Verdict> {
    let gate = match e {
        PlanError::Drift(_) => Gate::Drift,
        PlanError::Irreversible { .. } => Gate::Irreversible,
        _ => return None,
    };
    Some(Verdict {
        caller: policy.caller,
        gates: vec![GateResult::new(gate, GateState::Refused, e.to_string())],
        lint: Vec::new(),
        lint_mode: None,
        lint_basis: None,
        not_linted: Vec::new(),
        lint_override: policy.lint_override,
    })
}

fn lint_gate(plan: &Plan, policy: &Policy, lint: &[MigrationLint]) -> GateResult {
    let skip = |why: &str| GateResult::new(Gate::Lint, GateState::Skipped, why);
    if let Rule::Skip(why) = policy.rule(Gate::Lint) {
        return skip(why);
    }
    if plan.direction == Direction::Down {
        return skip("down SQL is not linted (a downgrade is confirmed with its SQL instead)");
    }
    if plan.is_empty() {
        return skip("nothing to run");
    }
    let (errors, _, _) = render::counts(lint);
    if errors == 0 {
        // Warnings are shown with the findings; they do not hold a run up.
        return GateResult::new(Gate::Lint, GateState::Passed, render::summary(lint));
    }
    // The first few by name; the summary printed with the verdict counts them per rule, and
    // `pgshift lint` lists them all (a catalog of hundreds would make this line unreadable).
    let first: Vec<String> = lint
        .iter()
        .flat_map(|l| {
            l.blocking()
                .map(move |f| format!("{} line {}: {}", l.revision, f.line, f.rule))
        })
        .take(3)
        .collect();
    let more = errors.saturating_sub(first.len());
    let list = if more > 0 {
        vec![format!("{} and {more} more", first.join(", "))]
    } else {
        first
    };
    if policy.lint_override == LintOverride::Allowed {
        return GateResult::new(
            Gate::Lint,
            GateState::Overridden,
            format!(
                "--allow-lint overrides {errors} lint error(s) ({}); recorded in the audit",
                list.join(", ")
            ),
        );
    }
    let how = match policy.caller {
        Caller::Cli => "or pass --allow-lint (recorded in the audit)",
        _ => "or run `pgshift up --allow-lint` from a shell (recorded in the audit)",
    };
    GateResult::new(
        Gate::Lint,
        GateState::Refused,
        format!(
            "lint found {errors} error(s) in the pending migrations ({}); nothing was run. Run `pgshift lint` for why and the safe rewrite; fix the migration, add `-- pgshift: allow RULE reason`, {how}.",
            list.join(", ")
        ),
    )
}

async fn checklist_gate(
    s: &Session,
    target: &Target,
    plan: &Plan,
    policy: &Policy,
) -> Result<GateResult> {
    let result = |state, message: String| Ok(GateResult::new(Gate::Checklist, state, message));
    if let Rule::Skip(why) = policy.rule(Gate::Checklist) {
        return result(GateState::Skipped, why.into());
    }
    if !target.environment.is_production() {
        return result(GateState::Skipped, "not a production target".into());
    }
    if plan.direction == Direction::Down {
        // The runbook's rollback is its own checklist; a downgrade is confirmed by typing its revision.
        return result(
            GateState::Skipped,
            "a downgrade is confirmed by typing its revision".into(),
        );
    }
    if plan.is_empty() {
        return result(GateState::Skipped, "nothing to run".into());
    }
    let checklist = match &policy.checklists {
        Checklists::Loaded(c) => c,
        Checklists::Unavailable(why) => {
            let message = format!("cannot check the pre-deploy checklist: {why}");
            return match target.require_checklist_hours {
                Some(_) => result(
                    GateState::Refused,
                    format!("refusing to upgrade: {message}. Nothing was run."),
                ),
                None => result(GateState::Warned, message),
            };
        }
    };
    match checklist.answer(target, s).await? {
        ChecklistAnswer::Clear => result(
            GateState::Passed,
            "a pre-deploy checklist passed for these migration files".into(),
        ),
        ChecklistAnswer::Warn(m) => result(GateState::Warned, m),
        ChecklistAnswer::Refuse(m) => result(GateState::Refused, m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caller_enforces_drift_and_irreversible_steps() {
        for caller in [
            Caller::Cli,
            Caller::Tui,
            Caller::Serve,
            Caller::Startup,
            Caller::Rehearsal,
            Caller::Sandbox,
        ] {
            let p = Policy::new(caller, Checklists::none());
            assert_eq!(p.rule(Gate::Drift), Rule::Enforce, "{caller:?}");
            assert_eq!(p.rule(Gate::Irreversible), Rule::Enforce, "{caller:?}");
        }
    }

    #[test]
    fn the_operator_front_ends_and_startup_enforce_the_checklist() {
        for caller in [Caller::Cli, Caller::Tui, Caller::Serve, Caller::Startup] {
            let p = Policy::new(caller, Checklists::none());
            assert_eq!(p.rule(Gate::Checklist), Rule::Enforce, "{caller:?}");
        }
        let tui = Policy::new(Caller::Tui, Checklists::none());
        assert_eq!(tui.rule(Gate::Lint), Rule::Enforce);
        let serve = Policy::new(Caller::Serve, Checklists::none());
        assert!(matches!(serve.rule(Gate::Lint), Rule::Skip(_)));
    }

    #[test]
    fn only_the_cli_can_override_lint() {
        let tui =
            Policy::new(Caller::Tui, Checklists::none()).with_lint_override(LintOverride::Allowed);
        assert_eq!(tui.lint_override, LintOverride::No);
        let cli =
            Policy::new(Caller::Cli, Checklists::none()).with_lint_override(LintOverride::Allowed);
        assert_eq!(cli.lint_override, LintOverride::Allowed);
    }

    #[test]
    fn drift_and_irreversible_plan_errors_are_refusing_gates() {
        let p = Policy::new(Caller::Tui, Checklists::none());
        let v = of_plan_error(
            &PlanError::Irreversible {
                revision: crate::catalog::Revision(2),
                name: "x".into(),
            },
            &p,
        )
        .unwrap();
        assert!(v.is_refused());
        assert_eq!(v.gates[0].gate, Gate::Irreversible);
        assert!(
            of_plan_error(&PlanError::UnknownRevision(crate::catalog::Revision(9)), &p).is_none()
        );
    }

    fn catalog_with_a_rename_in_0002() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        for (file, sql) in [
            // t exists on the target (0001 does not create it): renaming it breaks running code.
            ("0001_ok.up.sql", "CREATE TABLE other (id int);\n"),
            ("0002_bad.up.sql", "\nALTER TABLE t RENAME TO u;\n"),
            ("0003_ok.up.sql", "ALTER TABLE u ADD COLUMN c text;\n"),
        ] {
            std::fs::write(dir.path().join(file), sql).unwrap();
        }
        let catalog = Catalog::load(dir.path()).unwrap();
        (dir, catalog)
    }

    fn lint_of(catalog: &Catalog, to: u32, policy: &Policy) -> GateResult {
        let spec = crate::plan::TargetSpec::Revision(crate::catalog::Revision(to));
        let plan = crate::plan::plan(catalog, &[], Direction::Up, spec).unwrap();
        let lint = crate::ops::lint::of_plan(&plan, catalog);
        lint_gate(&plan, policy, &lint)
    }

    #[test]
    fn lint_refuses_errors_in_the_steps_to_run_unless_the_cli_overrides() {
        let (_dir, catalog) = catalog_with_a_rename_in_0002();
        let tui = Policy::new(Caller::Tui, Checklists::none());
        let refused = lint_of(&catalog, 3, &tui);
        assert_eq!(refused.state, GateState::Refused);
        assert!(
            refused.message.contains("0002 line 2: renaming-table"),
            "{}",
            refused.message
        );
        assert!(
            refused.message.contains("from a shell"),
            "{}",
            refused.message
        );
        assert_eq!(
            lint_of(&catalog, 1, &tui).state,
            GateState::Passed,
            "0002 is not run"
        );
        let cli =
            Policy::new(Caller::Cli, Checklists::none()).with_lint_override(LintOverride::Allowed);
        assert_eq!(lint_of(&catalog, 3, &cli).state, GateState::Overridden);
        let serve = Policy::new(Caller::Serve, Checklists::none());
        assert_eq!(lint_of(&catalog, 3, &serve).state, GateState::Skipped);
    }
}
