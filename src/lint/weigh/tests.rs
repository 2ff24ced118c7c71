//! Weighing without a database (run context, baseline) and with figures as the live query
//! returns them.

use super::*;
use crate::db::table_stats::LongTransaction;

fn m(rev: u32, sql: &str) -> Migration {
    Migration::new(Revision(rev), "m", sql.to_string(), None).unwrap()
}

fn weighed(ms: &[Migration], settings: &Settings, live: Option<Vec<TableStats>>) -> Weighed {
    let refs: Vec<&Migration> = ms.iter().collect();
    weigh_with(&refs, settings, live)
}

fn finding<'a>(w: &'a Weighed, rev: u32, rule: &str) -> &'a Finding {
    w.migrations
        .iter()
        .find(|l| l.revision == Revision(rev))
        .and_then(|l| l.findings.iter().find(|f| f.rule == rule))
        .unwrap_or_else(|| panic!("no {rule} in {rev}: {:#?}", w.migrations))
}

fn stats(name: &str, rows: f64, bytes: i64) -> TableStats {
    TableStats {
        wanted: Relation {
            schema: None,
            name: name.into(),
            kind: RelKind::Table,
        },
        table: format!("public.{name}"),
        rows: Some(rows),
        heap_bytes: bytes * 9 / 10,
        total_bytes: bytes,
        writes_per_s: Some(340.0),
        scans_per_s: Some(12.0),
        long_transactions: Vec::new(),
    }
}

#[test]
fn tables_created_earlier_in_the_run_are_new_for_lock_and_breaking_rules() {
    let ms = [
        m(1, "CREATE TABLE orders (id bigint, note text);"),
        m(
            2,
            "CREATE INDEX orders_note_idx ON orders (note);\nALTER TABLE orders RENAME COLUMN note TO remark;\nALTER TABLE orders RENAME TO purchases;",
        ),
        m(
            3,
            "ALTER TABLE purchases ALTER COLUMN remark TYPE varchar(200);",
        ),
        m(4, "CREATE INDEX documents_title_idx ON documents (title);"),
    ];
    let w = weighed(&ms, &Settings::default(), None);
    for (rev, rule) in [
        (2, "require-concurrent-index-creation"),
        (2, "renaming-column"),
        (2, "renaming-table"),
        (3, "changing-column-type"),
    ] {
        let f = finding(&w, rev, rule);
        assert_eq!(f.severity, Severity::Info, "{f:?}");
        assert!(
            f.weighed.as_deref().unwrap().contains("created by 0001"),
            "{f:?}"
        );
    }
    // Not created in the run, no database: static.
    let f = finding(&w, 4, "require-concurrent-index-creation");
    assert_eq!((f.severity, f.weighed.as_ref()), (Severity::Error, None));
    assert_eq!(w.counts().errors, 1);
    assert_eq!(w.mode, Mode::RunOnly);
}

#[test]
fn a_table_created_later_in_the_run_is_not_new_before_it_exists() {
    let ms = [
        m(1, "ALTER TABLE orders RENAME COLUMN a TO b;"),
        m(
            2,
            "CREATE TABLE orders2 (id int);\nALTER TABLE orders2 RENAME COLUMN id TO pk;",
        ),
    ];
    let w = weighed(&ms, &Settings::default(), None);
    assert_eq!(finding(&w, 1, "renaming-column").severity, Severity::Error);
    assert_eq!(finding(&w, 2, "renaming-column").severity, Severity::Info);
}

#[test]
fn start_after_leaves_the_baseline_unlinted() {
    let ms = [
        m(1, "ALTER TABLE documents RENAME COLUMN a TO b;"),
        m(2, "ALTER TABLE documents RENAME COLUMN c TO d;"),
    ];
    let settings = Settings {
        start_after: Some(Revision(1)),
        ..Settings::default()
    };
    let w = weighed(&ms, &settings, None);
    assert_eq!(w.not_linted, vec![Revision(1)]);
    assert_eq!(w.migrations.len(), 1);
    assert_eq!(w.counts().errors, 1);
}

#[test]
fn lock_findings_on_small_live_tables_are_info_with_the_figures() {
    let ms = [m(
        1,
        "CREATE INDEX documents_title_idx ON documents (title);",
    )];
    let w = weighed(
        &ms,
        &Settings::default(),
        Some(vec![stats("documents", 812.0, 96 * 1024)]),
    );
    let f = finding(&w, 1, "require-concurrent-index-creation");
    assert_eq!(f.severity, Severity::Info);
    let text = f.weighed.as_deref().unwrap();
    assert!(
        text.starts_with("documents: 812 rows, 96 kB, ~340 writes/s: SHARE lock held ~"),
        "{text}"
    );
    assert!(text.contains("allowed"), "{text}");
    assert_eq!(w.mode, Mode::Live);
}

#[test]
fn lock_findings_on_large_live_tables_stay_errors_with_what_is_at_stake() {
    let ms = [m(
        1,
        "CREATE INDEX documents_title_idx ON documents (title);",
    )];
    let w = weighed(
        &ms,
        &Settings::default(),
        Some(vec![stats("documents", 4.1e6, 1_288_490_189)]),
    );
    let f = finding(&w, 1, "require-concurrent-index-creation");
    assert_eq!(f.severity, Severity::Error);
    let text = f.weighed.as_deref().unwrap();
    assert!(
        text.starts_with("documents: 4.1 M rows, 1.2 GB, ~340 writes/s: CREATE INDEX without CONCURRENTLY would block writes for an estimated "),
        "{text}"
    );
    assert!(f.estimate_s.unwrap() > 1.0);
}

#[test]
fn thresholds_come_from_the_settings() {
    let ms = [m(
        1,
        "CREATE INDEX documents_title_idx ON documents (title);",
    )];
    let strict = Settings {
        small_table_rows: 100,
        ..Settings::default()
    };
    let w = weighed(
        &ms,
        &strict,
        Some(vec![stats("documents", 812.0, 96 * 1024)]),
    );
    assert_eq!(
        finding(&w, 1, "require-concurrent-index-creation").severity,
        Severity::Error
    );
}

#[test]
fn breaking_findings_stay_errors_on_small_existing_tables_and_vanish_on_missing_ones() {
    let ms = [m(
        1,
        "ALTER TABLE documents RENAME COLUMN title TO heading;\nALTER TABLE ghosts RENAME COLUMN a TO b;",
    )];
    let w = weighed(
        &ms,
        &Settings::default(),
        Some(vec![stats("documents", 3.0, 8192)]),
    );
    let fs = &w.migrations[0].findings;
    assert_eq!(fs[0].severity, Severity::Error);
    assert!(
        fs[0]
            .weighed
            .as_deref()
            .unwrap()
            .contains("in use on the target")
    );
    assert_eq!(fs[1].severity, Severity::Info);
    assert!(
        fs[1]
            .weighed
            .as_deref()
            .unwrap()
            .contains("not on the target")
    );
}

#[test]
fn a_small_table_held_by_a_long_transaction_is_a_warning_naming_it() {
    let ms = [m(
        1,
        "CREATE INDEX documents_title_idx ON documents (title);",
    )];
    let mut s = stats("documents", 812.0, 96 * 1024);
    s.long_transactions = vec![LongTransaction {
        pid: 4121,
        age_s: 842.0,
        count: 1,
    }];
    let w = weighed(&ms, &Settings::default(), Some(vec![s]));
    let f = finding(&w, 1, "require-concurrent-index-creation");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.weighed.as_deref().unwrap().contains("pid 4121"), "{f:?}");
}

#[test]
fn figures_read_like_pg_size_pretty() {
    assert_eq!(human_bytes(96 * 1024), "96 kB");
    assert_eq!(human_bytes(1_288_490_189), "1.2 GB");
    assert_eq!(human_bytes(500), "500 bytes");
    assert_eq!(human_count(812.0), "812");
    assert_eq!(human_count(4.1e6), "4.1 M");
    assert_eq!(human_seconds(0.0004), "<1 ms");
    assert_eq!(human_seconds(41.2), "41 s");
}

#[test]
fn the_short_summary_stays_within_15_lines_whatever_the_number_of_findings() {
    let rules = [
        "ALTER TABLE documents RENAME COLUMN a{i} TO b{i};",
        "ALTER TABLE documents ALTER COLUMN c{i} TYPE bigint;",
        "ALTER TABLE documents DROP COLUMN d{i};",
        "CREATE INDEX i{i} ON documents (e{i});",
        "ALTER TABLE documents ADD CONSTRAINT k{i} CHECK (f{i} > 0);",
        "ALTER TABLE documents ALTER COLUMN g{i} SET NOT NULL;",
        "UPDATE documents SET h{i} = 0;",
    ];
    let ms: Vec<Migration> = (1..=200)
        .map(|i| {
            let sql: String = rules
                .iter()
                .map(|r| r.replace("{i}", &i.to_string()) + "\n")
                .collect();
            m(i, &sql)
        })
        .collect();
    let w = weighed(&ms, &Settings::default(), None);
    assert_eq!(w.counts().errors, 1400);
    let mut out = Vec::new();
    crate::lint::render::short(&mut out, &w.migrations, &w.basis, "pgshift lint").unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().count() <= 14, "{text}");
    assert!(text.contains("... and 2 more rule(s)"), "{text}");
    assert!(text.contains("... and 1396 more"), "{text}");
    assert!(text.contains("`pgshift lint`"), "{text}");
}
