//! Backfill benchmark: a 1M-row table, one UPDATE vs `pgshift backfill` (keyset batches).
//!
//! For each scenario the table is created afresh; a concurrent writer updates random rows the
//! whole time and we record its longest wait. Reported: total time and its ratio to the single
//! UPDATE (medians of the rounds), the backfill's longest batch (from pgshift_backfill_runs), the
//! writer's max wait, and the backfill process's peak RSS (VmHWM).
//!
//! cargo bench --bench backfill            (ROWS=1000000 ROUNDS=3 by default)
//! TEST_DATABASE_URL=postgres://... picks the server (default postgres@127.0.0.1:5432).
//! REPLICA=1: the server has a streaming replica (scripts/bench_backfill_replica.sh sets one up);
//! the third scenario is then `--ignore-replica-lag` instead of `--pause 5`, so defaults vs it is
//! the replica-lag throttle's cost, and the replica waits of each run are counted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

const BATCH_SQL: &str = "UPDATE bench_items SET hash = encode(sha256(convert_to(body, 'UTF8')), 'hex') WHERE id > $1 AND id <= $2 AND hash IS NULL";
const SINGLE_SQL: &str = "UPDATE bench_items SET hash = encode(sha256(convert_to(body, 'UTF8')), 'hex') WHERE hash IS NULL";

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

async fn connect(url: &str) -> Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    c
}

/// The table, fresh: `rows` rows, none hashed, vacuumed and analyzed.
async fn fresh_table(c: &Client, rows: i64) {
    c.batch_execute(&format!(
        "DROP TABLE IF EXISTS bench_items;
         CREATE TABLE bench_items (id bigserial PRIMARY KEY, body text NOT NULL, hash text, touched int NOT NULL DEFAULT 0);
         INSERT INTO bench_items (body) SELECT 'body of item ' || g || repeat(' lorem', 1 + g % 8) FROM generate_series(1, {rows}) g;"
    ))
    .await
    .expect("create the bench table");
    // AUTOVACUUM=off keeps autovacuum away from the table, to separate its share of the cost
    // (it runs during a batched backfill, as it should, but not during one long UPDATE).
    if std::env::var("AUTOVACUUM").as_deref() == Ok("off") {
        c.batch_execute("ALTER TABLE bench_items SET (autovacuum_enabled = false)")
            .await
            .expect("autovacuum off");
    }
    for sql in ["VACUUM ANALYZE bench_items", "CHECKPOINT"] {
        c.batch_execute(sql).await.expect(sql);
    }
}

/// Updates random rows until stopped; returns (max wait, updates done).
fn writer(
    url: String,
    rows: i64,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(Duration, u64)> {
    tokio::spawn(async move {
        let c = connect(&url).await;
        let stmt = c
            .prepare("UPDATE bench_items SET touched = touched + 1 WHERE id = $1")
            .await
            .unwrap();
        let (mut max, mut n) = (Duration::ZERO, 0u64);
        while !stop.load(Ordering::SeqCst) {
            let id = fastrand::i64(1..=rows);
            let t = Instant::now();
            c.execute(&stmt, &[&id]).await.unwrap();
            max = max.max(t.elapsed());
            n += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (max, n)
    })
}

struct Measure {
    total: Duration,
    writer_max: Duration,
    batch_max_ms: Option<i64>,
    batch_p50_ms: Option<i64>,
    batches: Option<i64>,
    rss_kib: Option<u64>,
    /// `replica_wait` events the run printed (JSON lines on stderr).
    replica_waits: Option<usize>,
}

async fn single_update(url: &str, rows: i64) -> Measure {
    let c = connect(url).await;
    fresh_table(&c, rows).await;
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(url.to_string(), rows, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let n = c.execute(SINGLE_SQL, &[]).await.unwrap();
    let total = t.elapsed();
    assert_eq!(n as i64, rows);
    stop.store(true, Ordering::SeqCst);
    let (writer_max, _) = w.await.unwrap();
    Measure {
        total,
        writer_max,
        batch_max_ms: None,
        batch_p50_ms: None,
        batches: None,
        rss_kib: None,
        replica_waits: None,
    }
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn pgshift_backfill(url: &str, rows: i64, migrations: &Path, extra: &[&str]) -> Measure {
    let c = connect(url).await;
    fresh_table(&c, rows).await;
    c.batch_execute("DROP TABLE IF EXISTS pgshift_backfill_runs")
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(url.to_string(), rows, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let progress = migrations.join("progress.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgshift"))
        .args(["--json", "--database-url", url, "--migrations"])
        .arg(migrations)
        .args(["backfill", "bench"])
        .args(extra)
        .env("PGSHIFT_DATA_DIR", migrations.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&progress).expect("progress file"))
        .spawn()
        .expect("spawn pgshift");
    let mut rss = None;
    let status = loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            rss = Some(kib);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let total = t.elapsed();
    assert!(status.success(), "pgshift backfill failed");
    stop.store(true, Ordering::SeqCst);
    let (writer_max, _) = w.await.unwrap();
    let row = c
        .query_one("SELECT batch_ms_max::int8, batches, rows_done, batch_ms_p50::int8 FROM pgshift_backfill_runs WHERE name = 'bench'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(2), rows);
    Measure {
        total,
        writer_max,
        batch_max_ms: row.get(0),
        batch_p50_ms: row.get(3),
        batches: Some(row.get(1)),
        rss_kib: rss,
        replica_waits: std::fs::read_to_string(&progress)
            .ok()
            .map(|t| t.matches("\"event\":\"replica_wait\"").count()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One table row: median total, median of the per-round ratios to the single UPDATE of the same
/// round (robust to load drifting between rounds), max over rounds for the rest.
fn report(label: &str, runs: &[Measure], single: &[Measure]) {
    let total = median(runs.iter().map(|m| m.total.as_secs_f64()).collect());
    let ratio = median(
        runs.iter()
            .zip(single)
            .map(|(m, s)| m.total.as_secs_f64() / s.total.as_secs_f64())
            .collect(),
    );
    let wmax = runs.iter().map(|m| m.writer_max).max().unwrap_or_default();
    let bmax = runs.iter().filter_map(|m| m.batch_max_ms).max();
    let p50 = runs.iter().filter_map(|m| m.batch_p50_ms).max();
    let batches = runs.iter().filter_map(|m| m.batches).max();
    let rss = runs.iter().filter_map(|m| m.rss_kib).max();
    let waits: Option<usize> = runs
        .iter()
        .filter_map(|m| m.replica_waits)
        .reduce(|a, b| a + b);
    let opt = |v: Option<i64>, unit: &str| v.map_or("-".into(), |v| format!("{v}{unit}"));
    println!(
        "| {label} | {total:.2} s | {ratio:.2}× | {} | {} | {} | {} ms | {} | {} |",
        opt(batches, ""),
        opt(p50, " ms"),
        opt(bmax, " ms"),
        wmax.as_millis(),
        rss.map_or("-".into(), |r| format!("{:.1} MiB", r as f64 / 1024.0)),
        waits.map_or("-".into(), |w| w.to_string()),
    );
}

fn main() {
    let rows: i64 = env_or("ROWS", "1000000").parse().expect("ROWS");
    let rounds: usize = env_or("ROUNDS", "3").parse().expect("ROUNDS");
    let server = env_or(
        "TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    );
    let db = format!("pgshift_bench_{}", std::process::id());
    let url = match server.rfind('/') {
        Some(i) => format!("{}/{db}", &server[..i]),
        None => panic!("TEST_DATABASE_URL must end in /DBNAME"),
    };
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(migrations.join("backfills")).unwrap();
    std::fs::write(migrations.join("backfills/ORDER"), "bench\n").unwrap();
    // Engine defaults: no batch_size, pause or target_batch keys.
    std::fs::write(
        migrations.join("backfills/bench.toml"),
        format!("description = \"bench\"\ntable = \"bench_items\"\nkey = \"id\"\nbatch = \"{BATCH_SQL}\"\ncount = \"SELECT count(*) FROM bench_items WHERE hash IS NULL\"\n"),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let admin = connect(&server).await;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
        let replica = std::env::var("REPLICA").as_deref() == Ok("1");
        let (third, third_args): (&str, &[&str]) = if replica {
            ("--ignore-replica-lag", &["--ignore-replica-lag"])
        } else {
            ("--pause 5", &["--pause", "5"])
        };
        let (mut single, mut defaults, mut paused) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=rounds {
            eprintln!("round {round}/{rounds}: single UPDATE");
            single.push(single_update(&url, rows).await);
            eprintln!("round {round}/{rounds}: pgshift backfill (defaults)");
            defaults.push(pgshift_backfill(&url, rows, &migrations, &[]).await);
            eprintln!("round {round}/{rounds}: pgshift backfill {third}");
            paused.push(pgshift_backfill(&url, rows, &migrations, third_args).await);
            for (label, m) in [("single UPDATE", &single), ("defaults", &defaults), (third, &paused)] {
                if let Some(m) = m.last() {
                    eprintln!(
                        "  {label}: {:.2} s, batches {:?}, p50 {:?} ms, longest {:?} ms, writer max {} ms",
                        m.total.as_secs_f64(),
                        m.batches,
                        m.batch_p50_ms,
                        m.batch_max_ms,
                        m.writer_max.as_millis()
                    );
                }
            }
        }
        println!("\n{rows} rows, {rounds} rounds (median total time; max over rounds for the rest)\n");
        println!("| run | total (median) | vs single UPDATE (median of per-round ratios) | batches | batch p50 | longest batch | writer max wait | backfill peak RSS | replica waits |");
        println!("|---|---|---|---|---|---|---|---|---|");
        report("single UPDATE", &single, &single);
        report("pgshift backfill (defaults)", &defaults, &single);
        report(&format!("pgshift backfill {third}"), &paused, &single);
        if replica {
            // The throttle's cost: the same backfill with and without it, round by round.
            let cost = median(
                defaults
                    .iter()
                    .zip(&paused)
                    .map(|(d, i)| d.total.as_secs_f64() / i.total.as_secs_f64())
                    .collect(),
            );
            println!("\nreplica-lag throttle: defaults / --ignore-replica-lag = {cost:.2}× (median of per-round ratios)");
        }
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await.ok();
    });
}
