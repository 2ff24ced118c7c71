//! `cargo bench --bench migrate`: pgshift up/status vs psql on N trivial migrations.
//!
//! Whole processes, each run on a fresh database, interleaved so machine noise hits both sides;
//! medians of RUNS. Server: BENCH_DATABASE_URL, else postgres@127.0.0.1:5432.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn server() -> String {
    std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn psql(db: &str) -> Command {
    let mut c = Command::new("psql");
    c.arg(format!("{}/{db}", server()))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]);
    c
}

fn admin(sql: &str) {
    let ok = psql("postgres")
        .arg("-c")
        .arg(sql)
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "{sql}");
}

fn fresh_db(name: &str) {
    admin(&format!("DROP DATABASE IF EXISTS {name}"));
    admin(&format!("CREATE DATABASE {name}"));
}

fn timed(c: &mut Command) -> Duration {
    let start = Instant::now();
    let out = c.stdin(Stdio::null()).output().unwrap();
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{:?}: {}",
        c,
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pgshift(db: &str, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgshift"));
    c.args(args)
        .arg("--database-url")
        .arg(format!("{}/{db}", server()))
        .arg("--migrations")
        .arg(dir)
        .env("PGSHIFT_DATA_DIR", dir.join("state"));
    c
}

fn catalog(n: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    let mut all = String::new();
    for i in 1..=n {
        let sql = format!("CREATE TABLE t_{i} (id serial primary key, v text);\n");
        std::fs::write(migrations.join(format!("{i:04}_t_{i}.up.sql")), &sql).unwrap();
        std::fs::write(
            migrations.join(format!("{i:04}_t_{i}.down.sql")),
            format!("DROP TABLE t_{i};\n"),
        )
        .unwrap();
        all.push_str(&sql);
    }
    let all_sql = dir.path().join("all.sql");
    std::fs::write(&all_sql, all).unwrap();
    (dir, all_sql)
}

fn main() {
    let db = format!("pgshift_bench_{}", std::process::id());
    println!("| N | pgshift up (median) | psql -1 -f (median) | ratio |");
    println!("|---|---|---|---|");
    let mut last = None;
    let sizes: Vec<usize> = match std::env::var("BENCH_N") {
        Ok(n) => vec![n.parse().unwrap()],
        Err(_) => vec![100, 1000],
    };
    for n in sizes {
        let (dir, all_sql) = catalog(n);
        let migrations = dir.path().join("migrations");
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            fresh_db(&db);
            ours.push(timed(&mut pgshift(&db, &migrations, &["up"])));
            fresh_db(&db);
            theirs.push(timed(psql(&db).arg("-1").arg("-f").arg(&all_sql)));
        }
        let (a, b) = (median(ours), median(theirs));
        println!(
            "| {n} | {:.3} s | {:.3} s | {:.2}x |",
            a.as_secs_f64(),
            b.as_secs_f64(),
            a.as_secs_f64() / b.as_secs_f64()
        );
        last = Some((dir, migrations));
    }
    let (_dir, migrations) = last.unwrap();

    // status at N=1000 (the database is at head after the last pgshift up... re-run to be sure).
    fresh_db(&db);
    timed(&mut pgshift(&db, &migrations, &["up"]));
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..RUNS * 2 {
        ours.push(timed(&mut pgshift(&db, &migrations, &["status"])));
        theirs.push(timed(psql(&db).arg("-c").arg("select 1")));
    }
    let (a, b) = (median(ours), median(theirs));
    println!(
        "\nstatus at N=1000: pgshift {:.1} ms, psql -c 'select 1' {:.1} ms, ratio {:.2}x",
        a.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        a.as_secs_f64() / b.as_secs_f64()
    );

    // Peak RSS of `up` at N=1000.
    fresh_db(&db);
    let mut c = Command::new("/usr/bin/time");
    c.arg("-f").arg("%M").arg(env!("CARGO_BIN_EXE_pgshift"));
    c.args([
        "up",
        "--database-url",
        &format!("{}/{db}", server()),
        "--migrations",
    ])
    .arg(&migrations);
    let out = c.stdin(Stdio::null()).output().unwrap();
    let kib: u64 = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    println!(
        "peak RSS of pgshift up at N=1000: {:.1} MiB",
        kib as f64 / 1024.0
    );
    admin(&format!("DROP DATABASE IF EXISTS {db}"));
}
