//! Each rule, positive and negative, on the pure lint.

use super::*;
use crate::catalog::Migration;

fn rules_of(sql: &str) -> Vec<String> {
    lint_sql(sql, false).into_iter().map(|f| f.rule).collect()
}

fn flags(rule: &str, sql: &str) {
    assert!(
        rules_of(sql).iter().any(|r| r == rule),
        "{rule} should flag:\n{sql}\ngot {:?}",
        lint_sql(sql, false)
    );
}

fn clean(rule: &str, sql: &str) {
    assert!(
        !rules_of(sql).iter().any(|r| r == rule),
        "{rule} should not flag:\n{sql}\ngot {:?}",
        lint_sql(sql, false)
    );
}

#[test]
fn create_index_needs_concurrently_on_existing_tables_only() {
    let rule = "require-concurrent-index-creation";
    flags(
        rule,
        "CREATE INDEX documents_source_idx ON documents (source_id);",
    );
    clean(
        rule,
        "CREATE TABLE t (id bigint);\nCREATE INDEX t_id_idx ON t (id);",
    );
    clean(
        rule,
        "-- pgshift: no-transaction\nCREATE INDEX CONCURRENTLY d_idx ON documents (source_id);",
    );
}

#[test]
fn concurrently_inside_a_transaction_is_flagged() {
    let rule = "ban-concurrent-index-creation-in-transaction";
    flags(
        rule,
        "CREATE INDEX CONCURRENTLY d_idx ON documents (source_id);",
    );
    flags(rule, "DROP INDEX CONCURRENTLY d_idx;");
    let no_tx: Vec<String> = lint_sql(
        "CREATE INDEX CONCURRENTLY d_idx ON documents (source_id);",
        true,
    )
    .into_iter()
    .map(|f| f.rule)
    .collect();
    assert!(no_tx.is_empty(), "{no_tx:?}");
}

#[test]
fn volatile_default_is_flagged_constant_default_is_not() {
    let rule = "adding-field-with-default";
    flags(
        rule,
        "ALTER TABLE documents ADD COLUMN token uuid DEFAULT gen_random_uuid();",
    );
    clean(
        rule,
        "ALTER TABLE proposals ADD COLUMN variants jsonb NOT NULL DEFAULT '[]'::jsonb;",
    );
    clean(
        rule,
        "ALTER TABLE documents ADD COLUMN seen_at timestamptz DEFAULT now();",
    );
}

#[test]
fn set_not_null_needs_a_validated_check_first() {
    let rule = "adding-not-nullable-field";
    flags(
        rule,
        "ALTER TABLE documents ALTER COLUMN source_id SET NOT NULL;",
    );
    clean(
        rule,
        "ALTER TABLE documents VALIDATE CONSTRAINT documents_source_id_not_null;\nALTER TABLE documents ALTER COLUMN source_id SET NOT NULL;",
    );
}

#[test]
fn foreign_key_and_check_need_not_valid() {
    flags(
        "constraint-missing-not-valid",
        "ALTER TABLE documents ADD CONSTRAINT c CHECK (length(title) > 0);",
    );
    clean(
        "constraint-missing-not-valid",
        "ALTER TABLE documents ADD CONSTRAINT c CHECK (length(title) > 0) NOT VALID;",
    );
    flags(
        "adding-foreign-key-constraint",
        "ALTER TABLE documents ADD CONSTRAINT fk FOREIGN KEY (proposal_id) REFERENCES proposals (id);",
    );
    clean(
        "adding-foreign-key-constraint",
        "ALTER TABLE documents ADD CONSTRAINT fk FOREIGN KEY (proposal_id) REFERENCES proposals (id) NOT VALID;",
    );
}

#[test]
fn column_type_change_is_flagged() {
    flags(
        "changing-column-type",
        "ALTER TABLE documents ALTER COLUMN title TYPE varchar(100);",
    );
    clean(
        "changing-column-type",
        "ALTER TABLE documents ALTER COLUMN title SET DEFAULT 'x';",
    );
}

#[test]
fn renames_are_flagged() {
    flags(
        "renaming-column",
        "ALTER TABLE documents RENAME COLUMN title TO heading;",
    );
    flags("renaming-table", "ALTER TABLE documents RENAME TO docs;");
    clean(
        "renaming-column",
        "ALTER TABLE documents ADD COLUMN heading text;",
    );
}

#[test]
fn drops_are_flagged() {
    flags(
        "ban-drop-column",
        "ALTER TABLE documents DROP COLUMN origin;",
    );
    flags("ban-drop-table", "DROP TABLE documents;");
    clean(
        "ban-drop-column",
        "ALTER TABLE documents ADD COLUMN origin2 text;",
    );
}

#[test]
fn unique_constraint_without_index_is_flagged() {
    let rule = "disallowed-unique-constraint";
    flags(
        rule,
        "ALTER TABLE documents ADD CONSTRAINT documents_title_key UNIQUE (title);",
    );
    clean(
        rule,
        "ALTER TABLE documents ADD CONSTRAINT documents_title_key UNIQUE USING INDEX documents_title_idx;",
    );
}

#[test]
fn vacuum_full_and_cluster_are_flagged_plain_vacuum_is_not() {
    let rule = rules::VACUUM_FULL_OR_CLUSTER;
    flags(rule, "VACUUM FULL documents;");
    flags(rule, "VACUUM (FULL, ANALYZE) documents;");
    flags(rule, "CLUSTER documents USING documents_pkey;");
    clean(rule, "VACUUM (ANALYZE) documents;");
}

#[test]
fn data_changes_on_existing_tables_belong_in_a_backfill() {
    let rule = rules::BACKFILL_IN_MIGRATION;
    let all = lint_sql("UPDATE documents SET origin = 'upload';", false);
    assert_eq!(all[0].rule, rule);
    assert_eq!(all[0].severity, Severity::Error);
    let some = lint_sql("UPDATE documents SET origin = 'api' WHERE id = 42;", false);
    assert_eq!(some[0].severity, Severity::Warning);
    flags(rule, "DELETE FROM documents;");
    clean(
        rule,
        "CREATE TABLE t (id bigint);\nINSERT INTO t VALUES (1);\nUPDATE t SET id = 2;",
    );
    clean(rule, "INSERT INTO documents (title) VALUES ('x');");
}

#[test]
fn begin_commit_inside_a_transactional_migration_is_flagged() {
    flags(
        "transaction-nesting",
        "BEGIN;\nALTER TABLE documents ADD COLUMN x text;\nCOMMIT;",
    );
    clean(
        "transaction-nesting",
        "ALTER TABLE documents ADD COLUMN x text;",
    );
}

#[test]
fn findings_point_at_the_statement_line_not_its_comment() {
    let f = lint_sql(
        "-- first\nSELECT 1;\n\n-- rename, sorry\nALTER TABLE documents RENAME TO docs;\n",
        false,
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].line, 5);
    assert_eq!(f[0].statement, "ALTER TABLE documents RENAME TO docs;");
    assert!(!f[0].why.is_empty() && !f[0].fix.is_empty());
}

#[test]
fn allow_directive_marks_the_finding_allowed_and_unknown_allows_are_reported() {
    let m = Migration::new(
        Revision(7),
        "drop_origin",
        "-- pgshift: allow ban-drop-column origin unused since release 42\n-- pgshift: allow ban-drop-colum typo\nALTER TABLE documents DROP COLUMN origin;\n".into(),
        None,
    )
    .unwrap();
    let f = lint_migration(&m);
    let drop = f.iter().find(|f| f.rule == "ban-drop-column").unwrap();
    assert_eq!(
        drop.allowed.as_deref(),
        Some("origin unused since release 42")
    );
    assert!(!drop.blocks());
    let typo = f.iter().find(|f| f.rule == rules::UNKNOWN_ALLOW).unwrap();
    assert_eq!(typo.line, 2);
    assert!(!f.iter().any(Finding::blocks));
}

#[test]
fn demo_catalog_lints_without_blocking_findings() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let catalog = crate::catalog::Catalog::load(&dir).unwrap();
    for m in &catalog.migrations {
        let f = lint_migration(m);
        assert!(
            f.iter().all(|f| !f.blocks()),
            "{} has blocking findings: {f:#?}",
            m.label()
        );
    }
}

#[test]
fn concurrently_is_recognised_by_parsing_not_by_the_word() {
    assert!(runs_concurrently(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x)"
    ));
    assert!(runs_concurrently("DROP INDEX CONCURRENTLY IF EXISTS i"));
    assert!(runs_concurrently("REINDEX INDEX CONCURRENTLY i"));
    assert!(!runs_concurrently(
        "CREATE INDEX i ON t (x) -- not concurrently"
    ));
    assert!(!runs_concurrently(
        "COMMENT ON TABLE t IS 'built concurrently'"
    ));
}
