//! Lint speed: `lint_migration` on each demo migration and on a larger synthetic one.
//! Target: a typical migration lints in <= 5 ms. Run: `cargo bench --bench lint`.

use std::time::{Duration, Instant};

use pgshift::catalog::{Catalog, Migration, Revision};
use pgshift::lint::lint_migration;

const RUNS: usize = 200;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(m: &Migration) -> (Duration, Duration, usize) {
    let mut samples = Vec::with_capacity(RUNS);
    let mut findings = 0;
    for _ in 0..RUNS {
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

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let catalog = match Catalog::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot load {}: {e}", dir.display());
            std::process::exit(1);
        }
    };
    println!("lint_migration, median and max of {RUNS} runs each");
    for m in &catalog.migrations {
        let (med, max, n) = time(m);
        println!(
            "  {:<40} {:>5} lines  median {:>8.3} ms  max {:>8.3} ms  findings {n}",
            m.label(),
            m.up.lines().count(),
            med.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    let big = match Migration::new(Revision(999), "synthetic", synthetic(), None) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("synthetic migration rejected: {e}");
            std::process::exit(1);
        }
    };
    let (med, max, n) = time(&big);
    println!(
        "  {:<40} {:>5} lines  median {:>8.3} ms  max {:>8.3} ms  findings {n}",
        "synthetic (40 tables, 160 statements)",
        big.up.lines().count(),
        med.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
}
