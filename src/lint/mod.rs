//! DDL safety lint: pure functions from a migration's up SQL to findings (rule, severity, line,
//! why it is dangerous, the safe rewrite). Squawk parses and checks the SQL; pgshift adds its own
//! rules where squawk has none. `-- pgshift: allow RULE reason` turns a finding into an allowed one.
//!
//! Only up SQL is linted: a down migration is destructive by design and is confirmed separately.

mod own;
pub mod render;
pub mod rules;

use squawk_syntax::ast::AstNode;

use crate::catalog::{Migration, Revision};
pub use rules::{RuleDoc, Severity};

/// One problem in one migration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    /// 1-based line in the up file.
    pub line: usize,
    /// The statement, on one line (shortened).
    pub statement: String,
    /// Why it is dangerous.
    pub why: String,
    /// The safe rewrite.
    pub fix: String,
    /// The reason given in `-- pgshift: allow RULE reason`, when the author accepted it.
    pub allowed: Option<String>,
}

impl Finding {
    /// An error nobody allowed: `up` refuses to run it.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Error && self.allowed.is_none()
    }
}

/// The findings of one migration, for reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationLint {
    pub revision: Revision,
    pub name: String,
    pub file: String,
    pub no_transaction: bool,
    pub findings: Vec<Finding>,
}

impl MigrationLint {
    pub fn of(m: &Migration) -> Self {
        MigrationLint {
            revision: m.revision,
            name: m.name.clone(),
            file: m.up_path.display().to_string(),
            no_transaction: m.no_transaction,
            findings: lint_migration(m),
        }
    }

    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.blocks())
    }
}

/// Lint `m`'s up SQL and apply its allow directives. Allowed findings stay in the result (marked),
/// so reports and the audit show what was accepted and why.
pub fn lint_migration(m: &Migration) -> Vec<Finding> {
    let mut findings = lint_sql(&m.up, m.no_transaction);
    for f in &mut findings {
        if let Some(a) = m.allows.iter().find(|a| a.rule == f.rule) {
            f.allowed = Some(a.reason.clone());
        }
    }
    for a in m.allows.iter().filter(|a| rules::find(&a.rule).is_none()) {
        findings.push(finding(
            rules::UNKNOWN_ALLOW,
            directive_line(&m.up, &a.rule),
            format!("-- pgshift: allow {} {}", a.rule, a.reason),
        ));
    }
    findings.sort_by_key(|f| f.line);
    findings
}

/// Lint SQL without directives. `no_transaction`: the statements run one by one outside a
/// transaction (tables created earlier in the file are then committed, existing tables).
pub fn lint_sql(sql: &str, no_transaction: bool) -> Vec<Finding> {
    let parse = squawk_syntax::SourceFile::parse(sql);
    let file = parse.tree();
    let mut linter = squawk_linter::Linter::from(rules::SQUAWK_RULES);
    linter.settings.assume_in_transaction = !no_transaction;
    let statements: Vec<(usize, usize)> = file
        .stmts()
        .map(|s| {
            let r = s.syntax().text_range();
            (usize::from(r.start()), usize::from(r.end()))
        })
        .collect();
    let statement_at = |offset: usize| {
        let (start, end) = statements
            .iter()
            .copied()
            .find(|(s, e)| (*s..=*e).contains(&offset))
            .unwrap_or((offset, offset));
        (
            start,
            crate::text::one_line(sql.get(start..end).unwrap_or(""), 160),
        )
    };
    let mut findings: Vec<Finding> = linter
        .lint(&parse, sql)
        .into_iter()
        .map(|v| {
            let (start, text) = statement_at(usize::from(v.text_range.start()));
            let mut f = finding(&v.code.to_string(), line_of(sql, start), text);
            if f.why.is_empty() {
                // A squawk rule missing from our rule book: keep squawk's own words.
                f.why = v.message;
                f.fix = v.help.unwrap_or_default();
            }
            f
        })
        .collect();
    for (rule, offset, severity) in own::check(&file, no_transaction) {
        let (start, text) = statement_at(offset);
        let mut f = finding(rule, line_of(sql, start), text);
        f.severity = severity;
        findings.push(f);
    }
    if let Some(e) = parse.errors().first() {
        let offset = usize::from(e.range().start());
        findings.push(finding(
            rules::UNPARSED_SQL,
            line_of(sql, offset),
            format!(
                "{}: {}",
                e.message(),
                crate::text::one_line(sql.get(offset..).unwrap_or(""), 80)
            ),
        ));
    }
    findings.sort_by_key(|f| f.line);
    findings.dedup_by(|a, b| a.rule == b.rule && a.line == b.line);
    findings
}

/// Whether `stmt` is a CONCURRENTLY index build, drop or reindex (which locks out no reads or
/// writes while it waits). Parsed, so a comment or string mentioning the word does not count.
pub fn runs_concurrently(stmt: &str) -> bool {
    use squawk_syntax::ast;
    squawk_syntax::SourceFile::parse(stmt)
        .tree()
        .stmts()
        .any(|s| match s {
            ast::Stmt::CreateIndex(i) => i.concurrently_token().is_some(),
            ast::Stmt::DropIndex(i) => i.concurrently_token().is_some(),
            ast::Stmt::Reindex(r) => r
                .reindex_target()
                .is_some_and(|t| t.concurrently_token().is_some()),
            _ => false,
        })
}

fn finding(rule: &str, line: usize, statement: String) -> Finding {
    let doc = rules::find(rule);
    Finding {
        rule: rule.to_string(),
        severity: doc.map_or(Severity::Warning, |d| d.severity),
        line,
        statement,
        why: doc.map(|d| d.why.to_string()).unwrap_or_default(),
        fix: doc.map(|d| d.fix.to_string()).unwrap_or_default(),
        allowed: None,
    }
}

/// 1-based line of byte `offset`, skipping leading whitespace and comment lines so the line
/// points at the statement itself.
fn line_of(sql: &str, offset: usize) -> usize {
    let mut offset = offset.min(sql.len());
    loop {
        let rest = &sql[offset..];
        let trimmed = rest.trim_start();
        offset += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            offset += trimmed.find('\n').map_or(trimmed.len(), |n| n + 1);
        } else {
            break;
        }
    }
    sql[..offset.min(sql.len())].matches('\n').count() + 1
}

fn directive_line(sql: &str, rule: &str) -> usize {
    sql.lines()
        .position(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.windows(2).any(|w| w == ["allow", rule])
        })
        .map_or(1, |i| i + 1)
}

#[cfg(test)]
mod tests;
