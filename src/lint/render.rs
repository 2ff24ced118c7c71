//! Human text for lint findings (the CLI's `lint`, and the lint block of `status`, `plan`, `up`).

use std::io::Write;

use super::{Finding, MigrationLint, Severity};

/// Counts over a set of migrations: (blocking errors, allowed, warnings).
pub fn counts(lints: &[MigrationLint]) -> (usize, usize, usize) {
    let all = lints.iter().flat_map(|l| &l.findings);
    let (mut errors, mut allowed, mut warnings) = (0, 0, 0);
    for f in all {
        match (f.severity, &f.allowed) {
            (_, Some(_)) => allowed += 1,
            (Severity::Error, None) => errors += 1,
            (Severity::Warning, None) => warnings += 1,
        }
    }
    (errors, allowed, warnings)
}

/// One line of totals, e.g. `lint: 2 errors, 1 allowed, 0 warnings in 3 migration(s)`.
pub fn summary(lints: &[MigrationLint]) -> String {
    let (e, a, w) = counts(lints);
    format!(
        "lint: {e} error(s), {a} allowed, {w} warning(s) in {} migration(s)",
        lints.len()
    )
}

/// Every finding with why and the safe rewrite; `verbose` false prints one line per finding.
pub fn findings(
    out: &mut impl Write,
    lints: &[MigrationLint],
    verbose: bool,
) -> std::io::Result<()> {
    for l in lints.iter().filter(|l| !l.findings.is_empty()) {
        writeln!(out, "{}_{} ({})", l.revision, l.name, l.file)?;
        for f in &l.findings {
            finding(out, f, verbose)?;
        }
    }
    writeln!(out, "{}", summary(lints))
}

fn finding(out: &mut impl Write, f: &Finding, verbose: bool) -> std::io::Result<()> {
    let label = match (&f.allowed, f.severity) {
        (Some(_), _) => "allowed",
        (None, Severity::Error) => "ERROR",
        (None, Severity::Warning) => "warning",
    };
    writeln!(
        out,
        "  line {:<4} {label:<8} {}: {}",
        f.line, f.rule, f.statement
    )?;
    if let Some(reason) = &f.allowed {
        writeln!(out, "             allowed because: {reason}")?;
    }
    if verbose || f.allowed.is_none() && f.severity == Severity::Error {
        writeln!(out, "             why: {}", f.why)?;
        writeln!(out, "             fix: {}", f.fix)?;
    }
    Ok(())
}
