//! `pgshift fleet ...`: arguments and printing. The work is in `fleet::status` and
//! `fleet::rollout`; this file only parses, asks and prints.

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::cli::GlobalArgs;
use crate::config::{Environment, Loaded, Target};
use crate::error::{Error, ExitCode, Result};
use crate::output;

use super::status::{self, Row};
use super::{Catalogs, group, worst};

/// Many databases at once: status, and guarded rollouts canary first
#[derive(Debug, Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub action: FleetAction,
}

#[derive(Debug, Subcommand)]
pub enum FleetAction {
    /// One row per target of GROUP (every configured target without one): revision, pending,
    /// drift, health, runner lock holder, TLS. Exits with the worst row's code.
    #[command(
        after_help = "Examples:\n  pgshift fleet status prod\n  pgshift fleet status tenants --parallel 32 --timeout 3s --json\n\nExit code: the worst row's, in this order: 2 config error, 3 unreachable, 5 drift,\n1 failed, 4 lock busy, 10 pending (with --check), 0 ok."
    )]
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A group from the config (`groups = [...]` on targets, or a `[groups.NAME]` table)
    pub group: Option<String>,
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Exit 10 when any target has pending migrations (and nothing worse)
    #[arg(long)]
    pub check: bool,
}

/// How many targets at once and how long each may take.
#[derive(Debug, Clone, Copy, Args)]
pub struct PoolArgs {
    /// Targets worked on at once
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// Longest wait for one target to connect and answer, e.g. 3s
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = crate::cli::duration)]
    pub timeout: Duration,
}

/// Dispatch `pgshift fleet ...`.
pub async fn command(g: &GlobalArgs, loaded: &Loaded, a: &FleetArgs) -> Result<ExitCode> {
    if g.target.is_some() || g.database_url.is_some() {
        return Err(Error::Usage(
            "fleet commands work on a GROUP of configured targets; drop --target/--database-url and name the group (see `pgshift fleet status --help`)".into(),
        ));
    }
    match &a.action {
        FleetAction::Status(s) => status_cmd(g, loaded, s).await,
    }
}

async fn members(g: &GlobalArgs, loaded: &Loaded, group: Option<&str>) -> Result<Vec<Target>> {
    let members = group::members(loaded, group, &g.overrides()).await?;
    if members.is_empty() {
        return Err(Error::Usage(match group {
            Some(name) => format!("group {name:?} has no targets"),
            None => format!(
                "no targets configured in {}; add [targets.NAME] entries (see config/pgshift.example.toml)",
                loaded.path_display()
            ),
        }));
    }
    Ok(members)
}

async fn status_cmd(g: &GlobalArgs, loaded: &Loaded, a: &StatusArgs) -> Result<ExitCode> {
    let members = members(g, loaded, a.group.as_deref()).await?;
    let catalogs = Catalogs::load(&members);
    let start = std::time::Instant::now();
    let rows = status::gather(
        &members,
        &catalogs,
        status::Options {
            parallel: a.pool.parallel.into(),
            timeout: a.pool.timeout,
            check: a.check,
        },
    )
    .await;
    let code = worst(rows.iter().map(|r| r.exit_code));
    let doc = serde_json::json!({
        "group": a.group,
        "elapsed_ms": start.elapsed().as_millis() as u64,
        "targets": rows,
    });
    Ok(output::finish(
        g.format(),
        "fleet status",
        &doc,
        code,
        |out| {
            status_table(out, &rows)?;
            writeln!(
                out,
                "{} in {} ms (exit {})",
                status_summary(&rows),
                start.elapsed().as_millis(),
                code as u8
            )
        },
    ))
}

/// A short environment label for narrow tables.
pub fn env_label(e: Environment) -> &'static str {
    match e {
        Environment::Production => "PROD",
        Environment::Staging => "stage",
        Environment::Development => "dev",
        Environment::Test => "test",
        Environment::Sandbox => "sbox",
    }
}

/// `0003→0005`, `?` when unknown.
pub fn revision_span(
    current: Option<crate::catalog::Revision>,
    head: Option<crate::catalog::Revision>,
) -> String {
    let show = |r: Option<crate::catalog::Revision>| r.map_or("?".to_string(), |r| r.to_string());
    if current.is_some() && current == head {
        show(current)
    } else {
        format!("{}→{}", show(current), show(head))
    }
}

fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 24)
}

/// The status table (fits 80 columns for names up to 20), then one line per row with a problem.
pub fn status_table(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    let w = name_width(rows.iter().map(|r| r.target.as_str()));
    writeln!(
        out,
        "{:w$} {:5} {:10} {:>4} {:11} {:8} {:8} TLS",
        "TARGET", "ENV", "REVISION", "PEND", "STATE", "HEALTH", "LOCK"
    )?;
    for r in rows {
        let health = r.health.map_or("-", |h| match h {
            crate::health::HealthStatus::Ok => "ok",
            crate::health::HealthStatus::Degraded => "DEGRADED",
            crate::health::HealthStatus::Down => "DOWN",
        });
        let lock = r
            .runner_lock
            .as_ref()
            .map_or("-".to_string(), |h| format!("pid {}", h.pid));
        let tls = r.tls.map_or("-", |t| t.label());
        writeln!(
            out,
            "{:w$} {:5} {:10} {:>4} {:11} {:8} {:8} {}",
            output::one_line(&r.target, w),
            env_label(r.environment),
            revision_span(r.current, r.head),
            if r.state == status::RowState::Unreachable {
                "?".to_string()
            } else {
                r.pending.len().to_string()
            },
            r.state.as_str(),
            health,
            lock,
            tls
        )?;
    }
    let problems: Vec<&Row> = rows.iter().filter(|r| r.error.is_some()).collect();
    if !problems.is_empty() {
        writeln!(out)?;
    }
    for r in problems {
        writeln!(
            out,
            "{}: {}",
            r.target,
            output::one_line(r.error.as_deref().unwrap_or(""), 200)
        )?;
    }
    for r in rows.iter().filter(|r| r.runner_lock.is_some()) {
        if let Some(h) = &r.runner_lock {
            writeln!(out, "{}: runner lock held by {h}", r.target)?;
        }
    }
    Ok(())
}

/// `30 targets: 27 ok, 2 pending, 1 UNREACHABLE`.
pub fn status_summary(rows: &[Row]) -> String {
    use status::RowState::*;
    let parts: Vec<String> = [Ok, Pending, Failed, Drift, Unreachable, Error]
        .into_iter()
        .filter_map(|s| {
            let n = rows.iter().filter(|r| r.state == s).count();
            (n > 0).then(|| format!("{n} {}", s.as_str()))
        })
        .collect();
    format!("{} targets: {}", rows.len(), parts.join(", "))
}
