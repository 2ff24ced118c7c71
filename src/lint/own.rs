//! pgshift's own rules, on squawk's syntax tree: data changes that belong in a backfill, and
//! table rewrites (VACUUM FULL, CLUSTER) that squawk only flags for PostgreSQL 19's REPACK.

use std::collections::HashSet;

use squawk_syntax::ast::{self, AstNode};

use super::rules::{self, Severity};

const CONCURRENTLY_IN_TRANSACTION: &str = "ban-concurrent-index-creation-in-transaction";

/// (rule, byte offset of the statement, severity) for each match.
pub fn check(file: &ast::SourceFile, no_transaction: bool) -> Vec<(&'static str, usize, Severity)> {
    // A table created in this migration has no readers yet (whether or not the migration runs in
    // one transaction): filling it is part of creating it, not a backfill.
    let created: HashSet<String> = file
        .stmts()
        .filter_map(|s| match s {
            ast::Stmt::CreateTable(t) => t.table_name()?.path()?.segment().map(|s| s.text()),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for stmt in file.stmts() {
        let offset = usize::from(stmt.syntax().text_range().start());
        match &stmt {
            ast::Stmt::Update(u) => {
                let table = relation(u.relation_name());
                if !table.as_ref().is_some_and(|t| created.contains(t)) {
                    out.push((
                        rules::BACKFILL_IN_MIGRATION,
                        offset,
                        data_change_severity(u.where_clause_or_current_of().is_some()),
                    ));
                }
            }
            ast::Stmt::Delete(d) => {
                let table = relation(d.relation_name());
                if !table.as_ref().is_some_and(|t| created.contains(t)) {
                    out.push((
                        rules::BACKFILL_IN_MIGRATION,
                        offset,
                        data_change_severity(d.where_clause_or_current_of().is_some()),
                    ));
                }
            }
            ast::Stmt::Vacuum(v) if v.full_token().is_some() || has_full_option(v) => {
                out.push((rules::VACUUM_FULL_OR_CLUSTER, offset, Severity::Error));
            }
            ast::Stmt::Cluster(_) => {
                out.push((rules::VACUUM_FULL_OR_CLUSTER, offset, Severity::Error))
            }
            // Squawk assumes a one-statement file runs outside a transaction (Django does); pgshift
            // wraps every migration without the directive, where CONCURRENTLY fails outright.
            ast::Stmt::CreateIndex(i) if !no_transaction && i.concurrently_token().is_some() => {
                out.push((CONCURRENTLY_IN_TRANSACTION, offset, Severity::Error));
            }
            ast::Stmt::DropIndex(i) if !no_transaction && i.concurrently_token().is_some() => {
                out.push((CONCURRENTLY_IN_TRANSACTION, offset, Severity::Error));
            }
            _ => {}
        }
    }
    out
}

/// Without WHERE every row is rewritten: an error. With WHERE it may be a handful of rows (a
/// data fix): a warning, since lint cannot know how many rows match.
fn data_change_severity(has_where: bool) -> Severity {
    if has_where {
        rules::BACKFILL_WITH_WHERE_SEVERITY
    } else {
        Severity::Error
    }
}

fn relation(r: Option<ast::RelationName>) -> Option<String> {
    Some(r?.relation_name_ref()?.path_ref()?.segment()?.text())
}

/// `VACUUM (FULL, ANALYZE) t` spells FULL as an option.
fn has_full_option(v: &ast::Vacuum) -> bool {
    v.vacuum_option_list().is_some_and(|l| {
        l.syntax()
            .text()
            .to_string()
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .any(|w| w.eq_ignore_ascii_case("full"))
    })
}
