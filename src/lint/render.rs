//! Human text for lint findings (the CLI's `lint`, and the lint block of `status`, `plan`, `up`),
//! and the short summary a refused `up` prints.

use std::collections::BTreeMap;
use std::io::Write;

use super::weigh::Counts;
use super::{Finding, MigrationLint, Severity};

/// Counts over a set of migrations: (blocking errors, allowed, warnings). Info is not counted.
pub fn counts(lints: &[MigrationLint]) -> (usize, usize, usize) {
    let c = Counts::of(lints);
    (c.errors, c.allowed, c.warnings)
}

/// One line of totals, e.g. `lint: 2 error(s), 1 allowed, 0 warning(s), 5 info in 3 migration(s)`.
pub fn summary(lints: &[MigrationLint]) -> String {
    let c = Counts::of(lints);
    format!(
        "lint: {} error(s), {} allowed, {} warning(s), {} info in {} migration(s)",
        c.errors,
        c.allowed,
        c.warnings,
        c.infos,
        lints.len()
    )
}

/// Every finding with why and the safe rewrite; `verbose` false prints one line per finding.
/// Info findings about tables new in the run are counted, not listed (`--json` lists them).
/// Each migration's findings; the label in its colour when `paint` says so (ERROR red, warning
/// yellow, allowed grey), as the screen shows them.
pub fn findings(
    out: &mut impl Write,
    lints: &[MigrationLint],
    verbose: bool,
    paint: crate::marks::Paint,
) -> std::io::Result<()> {
    for l in lints.iter().filter(|l| !l.findings.is_empty()) {
        let (quiet, shown): (Vec<&Finding>, Vec<&Finding>) = l.findings.iter().partition(|f| {
            f.severity == Severity::Info && f.estimate_s.is_none() && f.allowed.is_none()
        });
        if shown.is_empty() && !verbose {
            continue;
        }
        writeln!(out, "{}_{} ({})", l.revision, l.name, l.file)?;
        for f in shown {
            finding(out, f, verbose, paint)?;
        }
        if !quiet.is_empty() {
            writeln!(
                out,
                "  ({} info: on tables new in this run; `--json` lists them)",
                quiet.len()
            )?;
        }
    }
    writeln!(out, "{}", summary(lints))
}

fn label(f: &Finding) -> (&'static str, crate::marks::Role) {
    use crate::marks::Role;
    match (&f.allowed, f.severity) {
        (Some(_), _) => ("allowed", Role::Dim),
        (None, Severity::Error) => ("ERROR", Role::Error),
        (None, Severity::Warning) => ("warning", Role::Warn),
        (None, Severity::Info) => ("info", Role::Plain),
    }
}

fn finding(
    out: &mut impl Write,
    f: &Finding,
    verbose: bool,
    paint: crate::marks::Paint,
) -> std::io::Result<()> {
    let (word, role) = label(f);
    writeln!(
        out,
        "  line {:<4} {:<8} {}: {}",
        f.line,
        paint.role(role, word),
        f.rule,
        f.statement
    )?;
    if let Some(w) = &f.weighed {
        writeln!(out, "             weighed: {w}")?;
    }
    if let Some(reason) = &f.allowed {
        writeln!(out, "             allowed because: {reason}")?;
    }
    if verbose || f.blocks() {
        writeln!(out, "             why: {}", f.why)?;
        writeln!(out, "             fix: {}", f.fix)?;
    }
    Ok(())
}

/// Rules and first findings shown by [`short`].
const RULES_SHOWN: usize = 5;
const FINDINGS_SHOWN: usize = 4;

/// At most 14 lines for a run that lint refuses (or that has warnings): totals and how they were
/// weighed, counts per rule, the first findings with their weighing, and the command that shows
/// everything. `--json` keeps every finding.
pub fn short(
    out: &mut impl Write,
    lints: &[MigrationLint],
    basis: &str,
    all_command: &str,
) -> std::io::Result<()> {
    let c = Counts::of(lints);
    writeln!(out, "{}", summary(lints))?;
    if !basis.is_empty() {
        writeln!(out, "  {basis}")?;
    }
    let mut per_rule: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for f in lints.iter().flat_map(|l| &l.findings) {
        let e = per_rule.entry(f.rule.as_str()).or_default();
        match (f.blocks(), f.severity) {
            (true, _) => e.0 += 1,
            (false, Severity::Warning) if f.allowed.is_none() => e.1 += 1,
            _ => e.2 += 1,
        }
    }
    let mut rules: Vec<(&str, (usize, usize, usize))> = per_rule.into_iter().collect();
    rules.sort_by_key(|(name, (e, wa, o))| (std::cmp::Reverse((*e, *wa, *o)), *name));
    for (name, (e, wa, o)) in rules.iter().take(RULES_SHOWN) {
        let parts: Vec<String> = [
            (*e, "error(s)"),
            (*wa, "warning(s)"),
            (*o, "info or allowed"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        writeln!(out, "  {name:<40} {}", parts.join(", "))?;
    }
    if rules.len() > RULES_SHOWN {
        writeln!(out, "  ... and {} more rule(s)", rules.len() - RULES_SHOWN)?;
    }
    let first: Vec<(crate::catalog::Revision, &Finding)> = lints
        .iter()
        .flat_map(|l| {
            l.findings
                .iter()
                .filter(|f| f.blocks() || f.severity == Severity::Warning && f.allowed.is_none())
                .map(move |f| (l.revision, f))
        })
        .collect();
    for (rev, f) in first.iter().take(FINDINGS_SHOWN) {
        let what = f.weighed.as_deref().unwrap_or(&f.statement);
        let line = format!("{rev} line {} {} {}: {what}", f.line, label(f).0, f.rule);
        writeln!(out, "  {}", crate::text::one_line(&line, 200))?;
    }
    if first.len() > FINDINGS_SHOWN {
        writeln!(
            out,
            "  ... and {} more error(s)/warning(s)",
            first.len() - FINDINGS_SHOWN
        )?;
    }
    if c.errors + c.warnings > 0 {
        writeln!(
            out,
            "  every finding, why and the safe rewrite: `{all_command}` (`--json` for all of them)"
        )?;
    }
    Ok(())
}
