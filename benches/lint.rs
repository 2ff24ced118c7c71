//! Lint speed: `lint_migration` on each demo migration, a larger synthetic one, and generated
//! migrations of 1, 4 and 16 MB (linear in size: 4 MB well under a second; before the line and
//! statement lookups became binary searches it was quadratic, 5 s at 4 MB and 118 s at 20 MB).
//! Targets: a typical migration <= 5 ms, 4 MB < 1 s.
//!
//! Then the weighing: `lint::weigh` of 50 pending migrations touching 50 live tables (one query)
//! next to a `SELECT 1` round trip on the same connection, on a scratch database of the server at
//! BENCH_DATABASE_URL (else postgres@127.0.0.1:5432); skipped when no server answers.
//! Run: `cargo bench --bench lint`.

use std::time::{Duration, Instant};

use pgshift::catalog::{Catalog, Migration, Revision};
use pgshift::lint::{Settings, lint_migration};

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
    weighing();
}

/// Tables (and pending migrations, one index each) of the weighing benchmark.
const WEIGH_TABLES: usize = 50;
const WEIGH_RUNS: usize = 50;

fn weighing() {
    let server = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weighing skipped: no runtime: {e}");
            return;
        }
    };
    let db = format!("pgshift_bench_lint_{}", std::process::id());
    let result = runtime.block_on(async {
        let admin = connect(&format!("{server}/postgres")).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await?;
        let measured = measure_weighing(&format!("{server}/{db}")).await;
        admin
            .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
            .await?;
        measured
    });
    if let Err(e) = result {
        eprintln!("weighing skipped: {e}");
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

async fn measure_weighing(url: &str) -> Result<(), tokio_postgres::Error> {
    let client = connect(url).await?;
    let mut setup = String::new();
    for t in 0..WEIGH_TABLES {
        setup.push_str(&format!(
            "CREATE TABLE t{t} (id bigserial PRIMARY KEY, name text); INSERT INTO t{t} (name) SELECT 'n' || g FROM generate_series(1, 1000) g; ANALYZE t{t};\n"
        ));
    }
    client.batch_execute(&setup).await?;
    let steps: Vec<Migration> = (0..WEIGH_TABLES)
        .map(|t| {
            migration(
                "index",
                format!("CREATE INDEX t{t}_name_idx ON t{t} (name);\n"),
            )
        })
        .collect();
    let refs: Vec<&Migration> = steps.iter().collect();
    let settings = Settings::default();
    let (mut weigh, mut offline, mut ping) = (Vec::new(), Vec::new(), Vec::new());
    let mut tables = 0;
    for _ in 0..WEIGH_RUNS {
        let t = Instant::now();
        client.simple_query("SELECT 1").await?;
        ping.push(t.elapsed());
        let t = Instant::now();
        match pgshift::lint::weigh(&client, &refs, &settings).await {
            Ok(w) => tables = w.tables.len(),
            Err(e) => {
                eprintln!("weigh failed: {e}");
                return Ok(());
            }
        }
        weigh.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(pgshift::lint::weigh_with(&refs, &settings, None));
        offline.push(t.elapsed());
    }
    let (w, o, p) = (median(weigh), median(offline), median(ping));
    println!(
        "weigh {WEIGH_TABLES} migrations / {tables} live tables, median of {WEIGH_RUNS}: {:.2} ms (lint alone {:.2} ms, so the query costs {:.2} ms; a SELECT 1 round trip {:.2} ms)",
        w.as_secs_f64() * 1e3,
        o.as_secs_f64() * 1e3,
        w.saturating_sub(o).as_secs_f64() * 1e3,
        p.as_secs_f64() * 1e3
    );
    Ok(())
}
