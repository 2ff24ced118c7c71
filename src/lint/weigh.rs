//! Weighing: the static findings of a run's migrations, judged for this run on this database.
//!
//! - **Run context.** A table created earlier in the run (by an earlier pending migration, or
//!   earlier in the same file), or renamed from one, has no reader yet: lock and breaking findings
//!   on it become `info`. With a database, a table that does not exist on the target is new too.
//! - **Live tables.** With a database, one query reads the size and activity of every other table
//!   the findings name (`db::table_stats`). A lock finding on a table below the thresholds
//!   (`[lint] small_table_rows`, `small_table_size`) becomes `info` with its figures; above them it
//!   keeps its severity and says what is at stake: rows, size, write rate, and the estimated time
//!   the lock is held (`estimate.rs`). Breaking findings (drops, renames, type changes) keep their
//!   severity on any existing table: they are about the running code, not the size.
//! - **Baseline.** Migrations at or below `[lint] start_after` are not linted at all.
//!
//! `weigh` is the one entry point for every gate (CLI `up`, the TUI confirmation, `lint`).

use std::collections::HashMap;
use std::time::Instant;

use tokio_postgres::Client;

use super::estimate::{self, Size};
use super::relation::{RelKind, Relation};
use super::rules::{self, Kind, Severity};
use super::{Finding, MigrationLint, Settings, TableChange};
use crate::catalog::{Migration, Revision};
use crate::db::table_stats::{self, TableStats};
use crate::error::Result;

/// Whether the findings were weighed against a live database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Run context and the live size and activity of each table.
    Live,
    /// Run context only (no database was read).
    RunOnly,
    /// Each migration on its own, as the SQL says (no database).
    Static,
}

/// The findings of one run's migrations, weighed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Weighed {
    pub mode: Mode,
    /// Which weighing was done, in words (`weighed against the live database: ...`).
    pub basis: String,
    /// `[lint] start_after`, and the migrations it left out.
    pub start_after: Option<Revision>,
    pub not_linted: Vec<Revision>,
    pub migrations: Vec<MigrationLint>,
    /// The live figures read (empty unless `Live`).
    pub tables: Vec<TableStats>,
    /// How long the one statistics query took.
    pub stats_ms: Option<u64>,
}

/// Findings by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Errors nobody allowed: they refuse `up`.
    pub errors: usize,
    pub allowed: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl Counts {
    pub fn of(lints: &[MigrationLint]) -> Counts {
        let mut c = Counts::default();
        for f in lints.iter().flat_map(|l| &l.findings) {
            match (f.severity, &f.allowed) {
                (_, Some(_)) => c.allowed += 1,
                (Severity::Error, None) => c.errors += 1,
                (Severity::Warning, None) => c.warnings += 1,
                (Severity::Info, None) => c.infos += 1,
            }
        }
        c
    }
}

impl Weighed {
    pub fn counts(&self) -> Counts {
        Counts::of(&self.migrations)
    }

    /// The unallowed errors: `up` refuses to run them.
    pub fn blocking(&self) -> impl Iterator<Item = (Revision, &Finding)> {
        self.migrations
            .iter()
            .flat_map(|l| l.blocking().map(move |f| (l.revision, f)))
    }

    pub fn is_refused(&self) -> bool {
        self.blocking().next().is_some()
    }
}

/// Weigh the findings of `migrations` (a run's steps, in order) against the live database behind
/// `client`: one query, whatever the number of tables.
pub async fn weigh(
    client: &Client,
    migrations: &[&Migration],
    settings: &Settings,
) -> Result<Weighed> {
    let (lints, not_linted) = lint_run(migrations, settings);
    let wanted = wanted(&lints);
    let started = Instant::now();
    let tables = table_stats::read(client, &wanted, settings.long_transaction).await?;
    let ms = started.elapsed().as_millis() as u64;
    let mut w = finish(lints, not_linted, settings, Some(tables));
    w.basis = format!(
        "weighed against the live database: {} table(s) read in one query ({ms} ms); tables new in this run are not checked",
        w.tables.len()
    );
    w.stats_ms = Some(ms);
    Ok(w)
}

/// Weigh without a database: run context and baseline only (`live` = figures read elsewhere).
pub fn weigh_with(
    migrations: &[&Migration],
    settings: &Settings,
    live: Option<Vec<TableStats>>,
) -> Weighed {
    let (lints, not_linted) = lint_run(migrations, settings);
    finish(lints, not_linted, settings, live)
}

/// The static lint of each migration `settings` does not skip, and the skipped revisions.
pub fn lint_run(
    migrations: &[&Migration],
    settings: &Settings,
) -> (Vec<MigrationLint>, Vec<Revision>) {
    let (skipped, linted): (Vec<&&Migration>, Vec<&&Migration>) =
        migrations.iter().partition(|m| settings.skips(m.revision));
    (
        linted.into_iter().map(|m| MigrationLint::of(m)).collect(),
        skipped.into_iter().map(|m| m.revision).collect(),
    )
}

/// The relations whose live figures matter: those of lock and breaking findings on tables that
/// are not new in the run.
fn wanted(lints: &[MigrationLint]) -> Vec<Relation> {
    let mut run = RunContext::default();
    let mut out: Vec<Relation> = Vec::new();
    for l in lints {
        run.walk(l, |f, origin| {
            if origin.is_none()
                && rules::kind(&f.rule) != Kind::Always
                && let Some(t) = &f.table
            {
                out.push(t.clone());
            }
        });
    }
    out.sort();
    out.dedup();
    out
}

fn finish(
    mut lints: Vec<MigrationLint>,
    not_linted: Vec<Revision>,
    settings: &Settings,
    live: Option<Vec<TableStats>>,
) -> Weighed {
    let by_name: HashMap<(String, String), &TableStats> = live
        .iter()
        .flatten()
        .map(|s| {
            (
                (
                    s.wanted.schema.clone().unwrap_or_default(),
                    s.wanted.name.clone(),
                ),
                s,
            )
        })
        .collect();
    let mut run = RunContext::default();
    let mut weighed: Vec<(usize, usize, Verdict)> = Vec::new();
    for (li, l) in lints.iter().enumerate() {
        let mut fi = 0;
        run.walk(l, |f, origin| {
            let verdict = match (rules::kind(&f.rule), &f.table, origin) {
                (Kind::Always, _, _) | (_, None, _) => None,
                (_, Some(t), Some(origin)) => Some(Verdict::new_in_run(t, origin)),
                (kind, Some(t), None) if live.is_some() => {
                    let key = (t.schema.clone().unwrap_or_default(), t.name.clone());
                    Some(match by_name.get(&key) {
                        None => Verdict::not_on_target(t),
                        Some(stats) => Verdict::live(kind, &f.rule, f.severity, stats, settings),
                    })
                }
                _ => None,
            };
            if let Some(v) = verdict {
                weighed.push((li, fi, v));
            }
            fi += 1;
        });
    }
    for (li, fi, v) in weighed {
        if let Some(f) = lints.get_mut(li).and_then(|l| l.findings.get_mut(fi)) {
            f.severity = v.severity;
            f.weighed = Some(v.text);
            f.estimate_s = v.estimate_s;
        }
    }
    let mode = match live {
        Some(_) => Mode::Live,
        None => Mode::RunOnly,
    };
    Weighed {
        mode,
        basis:
            "weighed by the run only (no database read): tables created earlier in the run are new"
                .into(),
        start_after: settings.start_after,
        not_linted,
        migrations: lints,
        tables: live.unwrap_or_default(),
        stats_ms: None,
    }
}

/// Tables that came into being in the run so far: name -> where ("0012" or "this migration").
#[derive(Default)]
struct RunContext {
    new: HashMap<String, String>,
}

impl RunContext {
    /// Visit `l`'s findings in order with the origin of their table when it is new in the run,
    /// taking the migration's creates and renames into account as their lines pass; then keep
    /// them for the migrations after it.
    fn walk(&mut self, l: &MigrationLint, mut visit: impl FnMut(&Finding, Option<&str>)) {
        let mut events = l.tables.iter().peekable();
        let here = format!("{} (earlier in the run)", l.revision);
        for f in &l.findings {
            while let Some(e) = events.next_if(|e| e.line <= f.line) {
                self.apply(&e.change, &here);
            }
            let origin = f
                .table
                .as_ref()
                .filter(|t| t.kind == RelKind::Table)
                .and_then(|t| self.new.get(&t.name));
            visit(f, origin.map(String::as_str));
        }
        for e in events {
            self.apply(&e.change, &here);
        }
    }

    fn apply(&mut self, change: &TableChange, origin: &str) {
        match change {
            TableChange::Created(t) => {
                self.new.insert(t.name.clone(), origin.to_string());
            }
            TableChange::Renamed(old, new) => {
                if let Some(o) = self.new.get(&old.name).cloned() {
                    self.new.insert(new.name.clone(), o);
                }
            }
        }
    }
}

/// A finding's weighed severity and the words saying why.
struct Verdict {
    severity: Severity,
    text: String,
    estimate_s: Option<f64>,
}

impl Verdict {
    fn new_in_run(t: &Relation, origin: &str) -> Verdict {
        Verdict {
            severity: Severity::Info,
            text: format!("{t}: created by {origin}: no reader yet, allowed"),
            estimate_s: None,
        }
    }

    fn not_on_target(t: &Relation) -> Verdict {
        Verdict {
            severity: Severity::Info,
            text: format!("{t}: not on the target yet (new): no reader, allowed"),
            estimate_s: None,
        }
    }

    fn live(
        kind: Kind,
        rule: &str,
        severity: Severity,
        s: &TableStats,
        settings: &Settings,
    ) -> Verdict {
        let figures = figures(s);
        let waits = s.long_transactions.first().map(|t| {
            format!(
                "; pid {} has held a lock on it in a transaction open {}{}: the statement queues behind it (and everything else behind the statement, up to lock_timeout)",
                t.pid,
                crate::text::human_duration_s(t.age_s),
                if t.count > 1 {
                    format!(" (and {} more)", t.count - 1)
                } else {
                    String::new()
                }
            )
        });
        let waits_text = waits.clone().unwrap_or_default();
        let Kind::Lock { lock, work } = kind else {
            return Verdict {
                severity,
                text: format!("{figures}: in use on the target{waits_text}"),
                estimate_s: None,
            };
        };
        let size = Size {
            rows: s.rows.unwrap_or(0.0),
            heap_bytes: s.heap_bytes as f64,
            total_bytes: s.total_bytes as f64,
        };
        let est = estimate::lock_seconds(work, size);
        let small = s.rows.is_none_or(|r| r <= settings.small_table_rows as f64)
            && s.total_bytes as u64 <= settings.small_table_bytes;
        if small {
            Verdict {
                severity: if waits.is_some() {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                text: format!(
                    "{figures}: {} lock held ~{}, allowed{waits_text}",
                    lock.name(),
                    human_seconds(est)
                ),
                estimate_s: Some(est),
            }
        } else {
            Verdict {
                severity,
                text: format!(
                    "{figures}: {} would block {} for an estimated {}{waits_text}",
                    rules::lock_phrase(rule),
                    lock.blocks(),
                    human_seconds(est)
                ),
                estimate_s: Some(est),
            }
        }
    }
}

/// `documents: 4.1 M rows, 1.2 GB, ~340 writes/s`.
fn figures(s: &TableStats) -> String {
    let mut out = format!("{}: ", s.wanted);
    match s.rows {
        Some(r) => out.push_str(&format!("{} rows", human_count(r))),
        None => out.push_str("rows unknown (never analyzed)"),
    }
    out.push_str(&format!(", {}", human_bytes(s.total_bytes)));
    if let Some(w) = s.writes_per_s.filter(|w| *w >= 0.05) {
        out.push_str(&format!(", ~{} writes/s", human_rate(w)));
    }
    if s.wanted.kind == RelKind::Index {
        out.push_str(&format!(" (index of {})", s.table));
    }
    out
}

/// `812`, `12 k`, `4.1 M`.
pub fn human_count(n: f64) -> String {
    let n = n.max(0.0);
    match n {
        n if n < 10_000.0 => format!("{n:.0}"),
        n if n < 1e6 => format!("{:.0} k", n / 1e3),
        n if n < 1e9 => format!("{:.1} M", n / 1e6),
        n => format!("{:.1} G", n / 1e9),
    }
}

/// `96 kB`, `1.2 GB` (powers of 1024, as `pg_size_pretty`).
pub fn human_bytes(b: i64) -> String {
    let b = b.max(0) as f64;
    let units = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1024.0 && unit < units.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v >= 10.0 {
        format!("{v:.0} {}", units[unit])
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

fn human_rate(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.0}")
    }
}

/// `<1 ms`, `340 ms`, `41 s`, `12m05s`.
pub fn human_seconds(s: f64) -> String {
    match s {
        s if s < 0.001 => "<1 ms".into(),
        s if s < 1.0 => format!("{:.0} ms", s * 1e3),
        s if s < 60.0 => format!("{s:.0} s"),
        s => crate::text::human_duration_s(s),
    }
}

#[cfg(test)]
mod tests;
