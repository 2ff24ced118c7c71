//! Lint speed: `lint_migration` on each demo migration, a larger synthetic one, and generated
//! migrations of 1, 4 and 16 MB (linear in size: 4 MB well under a second; before the line and
//! statement lookups became binary searches it was quadratic, 5 s at 4 MB and 118 s at 20 MB).
//! Targets: a typical migration <= 5 ms, 4 MB < 1 s. Run: `cargo bench --bench lint`.

use std::time::{Duration, Instant};

use pgshift::catalog::{Catalog, Migration, Revision};
use pgshift::lint::lint_migration;

const RUNS: usize = 200;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs of each generated large migration (each takes up to a few hundred ms).
const LARGE_RUNS: usize = 5;

fn time(m: &Migration, runs: usize) -> (Duration, Duration, usize) {
    let mut samples = Vec::with_capacity(runs);
    let mut findings = 0;
    for _ in 0..runs {
        let t = Instant::now();
        findings = std::hint::black_box(lint_migration(std::hint::black_box(m))).len();
        samples.push(t.elapsed());
    }
    let max = *samples.iter().max().unwrap_or(&Duration::ZERO);
    (median(samples), max, findings)
}

/// 40 tables, each with an index and a few ALTERs: a large release's worth of DDL.
fn synthetic() -> String {
    let mut sql = String::new();
    for i in 0..40 {
        sql.push_str(&format!(
            "CREATE TABLE t{i} (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\n\
             CREATE INDEX t{i}_name_idx ON t{i} (name);\n\
             ALTER TABLE documents ADD COLUMN c{i} text;\n\
             ALTER TABLE documents ADD CONSTRAINT k{i} CHECK (length(c{i}) < 100) NOT VALID;\n"
        ));
    }
    sql
}

/// A generated migration of about `bytes`: the statements of a large release or a squashed
/// history (tables, indexes on existing tables, renames, type changes, constraints, comments),
/// most of them with findings, so the per-finding cost shows.
fn large(bytes: usize) -> String {
    let mut sql = String::with_capacity(bytes + 1024);
    let mut i = 0;
    while sql.len() < bytes {
        sql.push_str(&format!(
            "-- step {i}: orders of tenant {i}\n\
             CREATE TABLE orders_{i} (id bigserial PRIMARY KEY, customer_id bigint NOT NULL, total numeric(12,2), note text, created_at timestamptz NOT NULL DEFAULT now());\n\
             CREATE INDEX orders_{i}_customer_idx ON orders_{i} (customer_id);\n\
             CREATE INDEX documents_c{i}_idx ON documents (title, created_at);\n\
             ALTER TABLE documents ADD COLUMN c{i} text;\n\
             ALTER TABLE documents RENAME COLUMN c{i} TO d{i};\n\
             ALTER TABLE documents ALTER COLUMN d{i} TYPE varchar(200);\n\
             ALTER TABLE documents ADD CONSTRAINT k{i} CHECK (length(d{i}) < 100);\n\
             COMMENT ON TABLE orders_{i} IS 'orders of tenant {i}; see the runbook';\n\n"
        ));
        i += 1;
    }
    sql
}

fn report(label: &str, m: &Migration, runs: usize) {
    let (med, max, n) = time(m, runs);
    println!(
        "  {:<40} {:>7} lines  median {:>9.3} ms  max {:>9.3} ms  findings {n}",
        label,
        m.up.lines().count(),
        med.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
}

fn migration(name: &str, sql: String) -> Migration {
    match Migration::new(Revision(999), name, sql, None) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("generated migration rejected: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let catalog = match Catalog::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot load {}: {e}", dir.display());
            std::process::exit(1);
        }
    };
    println!(
        "lint_migration, median and max of {RUNS} runs each ({LARGE_RUNS} for the large ones)"
    );
    for m in &catalog.migrations {
        report(&m.label(), m, RUNS);
    }
    report(
        "synthetic (40 tables, 160 statements)",
        &migration("synthetic", synthetic()),
        RUNS,
    );
    for mb in [1, 4, 16] {
        let m = migration("large", large(mb << 20));
        report(&format!("generated {mb} MB"), &m, LARGE_RUNS);
    }
}
