//! Fleet results as human text, the same for every front end: the CLI prints these lines and
//! the TUI's fleet pane shows them in its confirmation and log.

use std::io::Write;

use crate::config::Environment;
use crate::output;

use super::rollout::{self, FleetEvent, Planned, Summary, TargetState};

/// A short environment label for narrow tables.
pub fn env_label(e: Environment) -> &'static str {
    match e {
        Environment::Production => "PROD",
        Environment::Staging => "stage",
        Environment::Development => "dev",
        Environment::Test => "test",
        Environment::Sandbox => "sbox",
    }
}

/// The environment column: production in its colour, as the TUI's header shows it.
pub fn env(paint: crate::marks::Paint, e: Environment) -> String {
    let role = if e.is_production() {
        crate::marks::Role::Production
    } else {
        crate::marks::Role::Plain
    };
    format!("{:5}", paint.role(role, env_label(e)))
}

/// `0003→0005`, `?` when unknown.
pub fn revision_span(
    current: Option<crate::catalog::Revision>,
    head: Option<crate::catalog::Revision>,
) -> String {
    let show = |r: Option<crate::catalog::Revision>| r.map_or("?".to_string(), |r| r.to_string());
    if current.is_some() && current == head {
        show(current)
    } else {
        format!("{}→{}", show(current), show(head))
    }
}

pub fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 24)
}

/// What the operator confirms, as text (the CLI prints it, the TUI's fleet dialog shows it):
/// the plan table, then the lint of the pending steps once.
pub fn plan_text(planned: &[Planned], paint: crate::marks::Paint) -> String {
    let mut out = Vec::new();
    plan_table(&mut out, planned).ok();
    let lints = distinct_lints(planned);
    if lints.iter().any(|l| !l.findings.is_empty()) {
        writeln!(out).ok();
        crate::lint::render::findings(&mut out, &lints, false, paint).ok();
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Each pending migration's lint once, however many targets run it.
pub fn distinct_lints(planned: &[Planned]) -> Vec<crate::lint::MigrationLint> {
    let mut out: Vec<crate::lint::MigrationLint> = Vec::new();
    for l in planned.iter().flat_map(|p| p.lint()) {
        if !out
            .iter()
            .any(|o| o.revision == l.revision && o.file == l.file)
        {
            out.push(l.clone());
        }
    }
    out.sort_by_key(|l| l.revision);
    out
}

/// `TARGET ENV PLAN STEPS` per target, then the distinct steps.
pub fn plan_table(out: &mut impl Write, planned: &[Planned]) -> std::io::Result<()> {
    let w = name_width(planned.iter().map(|p| p.target.name.as_str()));
    writeln!(
        out,
        "{:w$} {:5} {:10} {:>5} NOTE",
        "TARGET", "ENV", "PLAN", "STEPS"
    )?;
    for p in planned {
        let (span, steps, note) = match &p.work {
            Ok(rollout::Work::Migrate { plan, .. }) if plan.is_empty() => {
                (plan.from.to_string(), 0, "up to date".into())
            }
            Ok(rollout::Work::Migrate { plan, .. }) => (
                format!("{}→{}", plan.from, plan.to),
                plan.steps.len(),
                p.refusal()
                    .map(|e| format!("gates refuse: {}", output::one_line(&e.to_string(), 60)))
                    .unwrap_or_default(),
            ),
            Ok(rollout::Work::Backfill { .. }) => ("-".into(), 0, "backfill".into()),
            Err(e) => (
                "?".into(),
                0,
                format!("not run: {}", output::one_line(&e.to_string(), 60)),
            ),
        };
        writeln!(
            out,
            "{:w$} {:5} {:10} {:>5} {note}",
            output::one_line(&p.target.name, w),
            env_label(p.target.environment),
            span,
            steps
        )?;
    }
    let mut steps: Vec<String> = planned
        .iter()
        .filter_map(Planned::plan)
        .flat_map(|plan| plan.steps.iter().map(|s| s.label()))
        .collect();
    steps.sort();
    steps.dedup();
    let to_run = planned
        .iter()
        .filter(|p| p.work.is_ok() && p.has_work())
        .count();
    let unplanned = planned.iter().filter(|p| p.work.is_err()).count();
    writeln!(
        out,
        "{to_run} of {} target(s) to run{}; steps: {}",
        planned.len(),
        if unplanned > 0 {
            format!(", {unplanned} without a plan (reported as failed, not run)")
        } else {
            String::new()
        },
        if steps.is_empty() {
            "none".into()
        } else {
            steps.join(", ")
        }
    )
}

/// One event as a human line, or nothing for the quiet ones.
pub fn progress_line(e: &FleetEvent) -> Option<String> {
    match e {
        FleetEvent::Planned { .. } => None,
        FleetEvent::Phase { message } => Some(format!("== {message}")),
        FleetEvent::Warning { target, message } => Some(format!("{target}: warning: {message}")),
        FleetEvent::Target { target, state, .. } => match state {
            TargetState::Done {
                from,
                to,
                steps,
                duration_ms,
            } => Some(format!(
                "{target}: {}",
                crate::ops::migrate::summary(
                    crate::plan::Direction::Up,
                    *from,
                    *to,
                    *steps,
                    *duration_ms
                )
            )),
            TargetState::Filled { rows, duration_ms } => {
                Some(format!("{target}: done, {rows} rows ({duration_ms} ms)"))
            }
            TargetState::WaitingForLock { .. }
            | TargetState::Blocked { .. }
            | TargetState::Refused { .. }
            | TargetState::Failed { .. }
            | TargetState::Interrupted { .. } => Some(format!(
                "{target}: {}{}",
                state.label(),
                state.detail().map(|d| format!(": {d}")).unwrap_or_default()
            )),
            _ => None,
        },
    }
}

/// Progress lines for a terminal: [`progress_line`], without a target's line repeated (blockers
/// are reported again on every retry; only changes are worth a line).
#[derive(Debug, Default)]
pub struct Progress {
    last: std::collections::HashMap<String, String>,
}

impl Progress {
    pub fn line(&mut self, e: &FleetEvent) -> Option<String> {
        let line = progress_line(e)?;
        if let FleetEvent::Target { target, .. } = e {
            if self.last.get(target) == Some(&line) {
                return None;
            }
            self.last.insert(target.clone(), line.clone());
        }
        Some(line)
    }
}

/// The final table: one row per target, the problems underneath, one line of totals.
pub fn summary_table(out: &mut impl Write, s: &Summary) -> std::io::Result<()> {
    let w = name_width(s.targets.iter().map(|t| t.target.as_str()));
    writeln!(
        out,
        "{:w$} {:5} {:11} {:10} {:>5} {:>8}",
        "TARGET", "ENV", "RESULT", "REVISION", "STEPS", "TIME"
    )?;
    for t in &s.targets {
        let (span, steps, time) = match &t.state {
            TargetState::Done {
                from,
                to,
                steps,
                duration_ms,
            } => (
                format!("{from}→{to}"),
                steps.to_string(),
                crate::text::human_duration_ms(*duration_ms as i64),
            ),
            TargetState::Filled { rows, duration_ms } => (
                format!("{} rows", crate::text::count(*rows)),
                String::new(),
                crate::text::human_duration_ms(*duration_ms as i64),
            ),
            _ => (String::new(), String::new(), String::new()),
        };
        let label = if t.canary {
            format!("{} (c)", t.state.label())
        } else {
            t.state.label()
        };
        writeln!(
            out,
            "{:w$} {:5} {:11} {:10} {:>5} {:>8}",
            output::one_line(&t.target, w),
            env_label(t.environment),
            output::one_line(&label, 11),
            span,
            steps,
            time
        )?;
    }
    let problems: Vec<_> = s
        .targets
        .iter()
        .filter(|t| t.state.is_failure() || matches!(t.state, TargetState::Interrupted { .. }))
        .collect();
    if !problems.is_empty() {
        writeln!(out)?;
    }
    for t in problems {
        writeln!(
            out,
            "{}: {}",
            t.target,
            output::one_line(&t.state.detail().unwrap_or_default(), 300)
        )?;
    }
    if let Some(why) = &s.stopped {
        writeln!(out, "stopped launching: {why}")?;
    }
    let count = |f: fn(&TargetState) -> bool| s.count(f);
    writeln!(
        out,
        "{}: {} done, {} up to date, {} failed, {} skipped of {} in {} (exit {})",
        s.run_id,
        count(|t| matches!(t, TargetState::Done { .. } | TargetState::Filled { .. })),
        count(|t| matches!(t, TargetState::UpToDate)),
        count(|t| t.is_failure() || matches!(t, TargetState::Interrupted { .. })),
        count(|t| matches!(t, TargetState::Skipped { .. })),
        s.targets.len(),
        crate::text::human_duration_ms(i64::try_from(s.duration_ms).unwrap_or(i64::MAX)),
        s.exit_code as u8
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_target_prints_the_upgrade_summary_line_of_pgshift_up() {
        use crate::catalog::Revision;
        let done = crate::fleet::rollout::FleetEvent::Target {
            target: "eu-1".into(),
            canary: false,
            state: crate::fleet::rollout::TargetState::Done {
                from: Revision(3),
                to: Revision(5),
                steps: 2,
                duration_ms: 41,
            },
        };
        assert_eq!(
            progress_line(&done).as_deref(),
            Some("eu-1: upgrade 0003 -> 0005: 2 step(s) in 41ms")
        );
    }
}
