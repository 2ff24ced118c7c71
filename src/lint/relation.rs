//! Which table (or index) a statement works on, and which tables it creates or renames: what the
//! weighing needs to look a finding's table up in the run and in the live database.

use squawk_syntax::ast::{self, AstNode};

pub use crate::sql::{RelKind, Relation};

/// The relation `stmt` works on: the first table or index reference in it (the altered table of
/// ALTER TABLE, the indexed table of CREATE INDEX, the dropped index of DROP INDEX...).
pub fn target_of(stmt: &ast::Stmt) -> Option<Relation> {
    stmt.syntax().descendants().find_map(|n| {
        if let Some(t) = ast::TableNameRef::cast(n.clone()) {
            from_path_ref(t.path_ref()?, RelKind::Table)
        } else if let Some(r) = ast::RelationNameRef::cast(n.clone()) {
            from_path_ref(r.path_ref()?, RelKind::Table)
        } else if let Some(i) = ast::IndexRef::cast(n.clone()) {
            from_path_ref(i.path_ref()?, RelKind::Index)
        } else {
            let t = ast::TableName::cast(n)?;
            from_path(t.path()?)
        }
    })
}

/// The table `stmt` creates (CREATE TABLE, CREATE TABLE AS).
pub fn created_by(stmt: &ast::Stmt) -> Option<Relation> {
    let name = match stmt {
        ast::Stmt::CreateTable(t) => t.table_name()?,
        ast::Stmt::CreateTableAs(t) => t.table_name()?,
        _ => return None,
    };
    from_path(name.path()?)
}

/// `ALTER TABLE old RENAME TO new`: (old, new).
pub fn renamed_by(stmt: &ast::Stmt) -> Option<(Relation, Relation)> {
    let ast::Stmt::AlterTable(a) = stmt else {
        return None;
    };
    let new = a.actions().find_map(|action| match action {
        ast::AlterTableAction::TableRenameTo(r) => from_path(r.table_name()?.path()?),
        _ => None,
    })?;
    let old = from_path_ref(
        a.table_relation_name()?.table_name_ref()?.path_ref()?,
        RelKind::Table,
    )?;
    Some((old, new))
}

fn from_path_ref(p: ast::PathRef, kind: RelKind) -> Option<Relation> {
    Some(Relation {
        schema: p.qualifier().and_then(|q| q.segment()).map(|s| s.text()),
        name: p.segment()?.text(),
        kind,
    })
}

fn from_path(p: ast::Path) -> Option<Relation> {
    Some(Relation {
        schema: p.qualifier().and_then(|q| q.segment()).map(|s| s.text()),
        name: p.segment()?.text(),
        kind: RelKind::Table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(sql: &str) -> ast::Stmt {
        squawk_syntax::SourceFile::parse(sql)
            .tree()
            .stmts()
            .next()
            .unwrap()
    }

    fn target(sql: &str) -> Option<String> {
        target_of(&first(sql)).map(|r| r.to_string())
    }

    #[test]
    fn finds_the_table_each_kind_of_statement_works_on() {
        assert_eq!(
            target("CREATE INDEX i ON app.Documents (x)").as_deref(),
            Some("app.documents")
        );
        assert_eq!(
            target("ALTER TABLE \"Docs\" ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES other (id)")
                .as_deref(),
            Some("Docs")
        );
        assert_eq!(
            target("UPDATE documents SET a = 1").as_deref(),
            Some("documents")
        );
        assert_eq!(target("DROP TABLE a, b").as_deref(), Some("a"));
        assert_eq!(
            target("VACUUM FULL documents").as_deref(),
            Some("documents")
        );
        let idx = target_of(&first("DROP INDEX documents_title_idx")).unwrap();
        assert_eq!(
            (idx.name.as_str(), idx.kind),
            ("documents_title_idx", RelKind::Index)
        );
        assert_eq!(target("SELECT 1"), None);
    }

    #[test]
    fn creates_and_renames_are_recognised() {
        let c = created_by(&first("CREATE TABLE IF NOT EXISTS s.t (id int)")).unwrap();
        assert_eq!(c.to_string(), "s.t");
        assert!(created_by(&first("CREATE TABLE t2 AS SELECT 1")).is_some());
        assert!(created_by(&first("CREATE INDEX i ON t (x)")).is_none());
        let (old, new) = renamed_by(&first("ALTER TABLE a RENAME TO b")).unwrap();
        assert_eq!((old.name.as_str(), new.name.as_str()), ("a", "b"));
        assert!(renamed_by(&first("ALTER TABLE a RENAME COLUMN x TO y")).is_none());
    }
}
