//! DDL safety lint: pure functions from a migration's up SQL to findings (rule, severity, line,
//! why it is dangerous, the safe rewrite). Squawk parses and checks the SQL; pgshift adds its own
//! rules where squawk has none. `-- pgshift: allow RULE reason` turns a finding into an allowed one.
//!
//! Only up SQL is linted: a down migration is destructive by design and is confirmed separately.
//!
//! The findings of a file are static (what the SQL says). [`weigh`] then weighs them for one run:
//! tables new in the run are quiet, and with a database each lock finding is weighed by the live
//! size and activity of its table.

mod estimate;
mod own;
pub mod relation;
pub mod render;
pub mod rules;
pub mod settings;
pub mod weigh;

use squawk_syntax::ast::{self, AstNode};

use crate::catalog::{Migration, Revision};
pub use relation::Relation;
pub use rules::{RuleDoc, Severity};
pub use settings::Settings;
pub use weigh::{Mode, Weighed, weigh, weigh_with};

/// One problem in one migration.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    /// The table (or index) the statement works on, when lint can tell.
    pub table: Option<Relation>,
    /// How the run or the live table weighed this finding (why its severity is what it is), e.g.
    /// `documents: 812 rows, 96 kB: SHARE lock held ~1 ms, allowed`. `None`: static.
    pub weighed: Option<String>,
    /// The estimated time the statement holds its lock, in seconds (lock findings on live tables).
    pub estimate_s: Option<f64>,
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
    /// Tables this migration creates or renames, in order (for the run context of the weighing).
    #[serde(skip)]
    pub tables: Vec<TableEvent>,
}

/// A table coming into being in a migration, at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEvent {
    pub line: usize,
    pub change: TableChange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableChange {
    Created(Relation),
    /// (old name, new name).
    Renamed(Relation, Relation),
}

impl MigrationLint {
    pub fn of(m: &Migration) -> Self {
        let a = analyse_migration(m);
        MigrationLint {
            revision: m.revision,
            name: m.name.clone(),
            file: m.up_path.display().to_string(),
            no_transaction: m.no_transaction,
            findings: a.findings,
            tables: a.tables,
        }
    }

    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.blocks())
    }
}

/// Lint `m`'s up SQL and apply its allow directives. Allowed findings stay in the result (marked),
/// so reports and the audit show what was accepted and why.
pub fn lint_migration(m: &Migration) -> Vec<Finding> {
    analyse_migration(m).findings
}

fn analyse_migration(m: &Migration) -> Analysis {
    let Analysis {
        mut findings,
        tables,
    } = analyse(&m.up, m.no_transaction);
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
    Analysis { findings, tables }
}

/// Lint SQL without directives. `no_transaction`: the statements run one by one outside a
/// transaction (tables created earlier in the file are then committed, existing tables).
pub fn lint_sql(sql: &str, no_transaction: bool) -> Vec<Finding> {
    analyse(sql, no_transaction).findings
}

/// What one parse of a file gives: its findings and the tables it creates or renames.
struct Analysis {
    findings: Vec<Finding>,
    tables: Vec<TableEvent>,
}

fn analyse(sql: &str, no_transaction: bool) -> Analysis {
    let parse = squawk_syntax::SourceFile::parse(sql);
    let file = parse.tree();
    let mut linter = squawk_linter::Linter::from(rules::SQUAWK_RULES);
    linter.settings.assume_in_transaction = !no_transaction;
    // Both lookups below run once per finding: they must not rescan the file (a 4 MB migration
    // has tens of thousands of findings).
    let statements = Statements::of(&file);
    let lines = LineIndex::new(sql);
    let statement_at = |offset: usize| {
        let (start, end, stmt) = statements.around(offset);
        (
            start,
            crate::text::one_line(sql.get(start..end).unwrap_or(""), 160),
            stmt.and_then(relation::target_of),
        )
    };
    let mut findings: Vec<Finding> = linter
        .lint(&parse, sql)
        .into_iter()
        .map(|v| {
            let (start, text, table) = statement_at(usize::from(v.text_range.start()));
            let mut f = finding(&v.code.to_string(), lines.statement_line(sql, start), text);
            f.table = table;
            if f.why.is_empty() {
                // A squawk rule missing from our rule book: keep squawk's own words.
                f.why = v.message;
                f.fix = v.help.unwrap_or_default();
            }
            f
        })
        .collect();
    for (rule, offset, severity) in own::check(&file, no_transaction) {
        let (start, text, table) = statement_at(offset);
        let mut f = finding(rule, lines.statement_line(sql, start), text);
        f.severity = severity;
        f.table = table;
        findings.push(f);
    }
    if let Some(e) = parse.errors().first() {
        let offset = usize::from(e.range().start());
        findings.push(finding(
            rules::UNPARSED_SQL,
            lines.statement_line(sql, offset),
            format!(
                "{}: {}",
                e.message(),
                crate::text::one_line(sql.get(offset..).unwrap_or(""), 80)
            ),
        ));
    }
    findings.sort_by_key(|f| f.line);
    findings.dedup_by(|a, b| a.rule == b.rule && a.line == b.line);
    let tables = statements.table_events(sql, &lines);
    Analysis { findings, tables }
}

pub use crate::sql::runs_concurrently;

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
        table: None,
        weighed: None,
        estimate_s: None,
    }
}

/// A file's statements with their byte ranges, in order, for finding the statement around an
/// offset by binary search.
struct Statements(Vec<(usize, usize, Option<ast::Stmt>)>);

impl Statements {
    fn of(file: &squawk_syntax::SourceFile) -> Self {
        Statements(
            file.stmts()
                .map(|s| {
                    let r = s.syntax().text_range();
                    (usize::from(r.start()), usize::from(r.end()), Some(s))
                })
                .collect(),
        )
    }

    /// The statement containing `offset` (ends inclusive), or the empty range at `offset`.
    fn around(&self, offset: usize) -> (usize, usize, Option<&ast::Stmt>) {
        let after = self.0.partition_point(|(start, _, _)| *start <= offset);
        after
            .checked_sub(1)
            .and_then(|i| self.0.get(i))
            .filter(|(_, end, _)| offset <= *end)
            .map_or((offset, offset, None), |(s, e, stmt)| {
                (*s, *e, stmt.as_ref())
            })
    }

    /// The tables the statements create or rename, at their lines.
    fn table_events(&self, sql: &str, lines: &LineIndex) -> Vec<TableEvent> {
        self.0
            .iter()
            .filter_map(|(start, _, stmt)| {
                let stmt = stmt.as_ref()?;
                let change = match relation::created_by(stmt) {
                    Some(t) => TableChange::Created(t),
                    None => {
                        let (old, new) = relation::renamed_by(stmt)?;
                        TableChange::Renamed(old, new)
                    }
                };
                Some(TableEvent {
                    line: lines.statement_line(sql, *start),
                    change,
                })
            })
            .collect()
    }
}

/// Start offsets of every line, so a line number costs a binary search, not a scan of the file.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(sql: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex(starts)
    }

    /// 1-based line of byte `offset`.
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|start| *start <= offset).max(1)
    }

    /// 1-based line of the statement at `offset`, skipping leading whitespace and comment lines
    /// so the line points at the statement itself.
    fn statement_line(&self, sql: &str, offset: usize) -> usize {
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
        self.line(offset)
    }
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
