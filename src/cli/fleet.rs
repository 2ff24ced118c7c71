//! `pgshift fleet ...`: arguments and printing. The work is in `fleet::status` and
//! `fleet::rollout`; this file only parses, asks and prints.

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::cli::GlobalArgs;
use crate::config::{Loaded, Target};
use crate::error::{Error, ExitCode, Result};
use crate::marks::Paint;
use crate::ops::gate::Policy;
use crate::output;

use crate::fleet::render::{
    distinct_lints, env, name_width, plan_text, revision_span, summary_table,
};
use crate::fleet::rollout::{self, FleetEvent, Planned, Summary};
use crate::fleet::status::{self, Row};
use crate::fleet::{Catalogs, group, record, worst};

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
    /// Upgrade every target of GROUP to head (or REV): the plan per target first, then the
    /// canaries, then the rest in waves; each target's run is the normal guarded, locked,
    /// audited `up`.
    #[command(
        after_help = "Examples:\n  pgshift fleet up staging\n  pgshift fleet up prod 0005 --canary eu-1 --max-failures 2 --yes\n  pgshift fleet up tenants --canary-count 3 --parallel 16 --pause-between-waves 30s\n\nA target with production environment makes the confirmation typed (the group name), or --yes.\nCtrl-C stops launching; running targets finish their current step. Ctrl-C again quits at once\n(the server rolls back the steps in progress)."
    )]
    Up(UpArgs),
    /// Run backfill NAME on every target of GROUP with the same canaries and waves; each target's
    /// run is the normal batched, resumable backfill (Ctrl-C pauses the running ones after their
    /// batch)
    #[command(
        after_help = "Examples:\n  pgshift fleet backfill hashes tenants --canary-count 2 --parallel 8\n  pgshift fleet backfill hashes prod --batch-size 500 --yes"
    )]
    Backfill(BackfillArgs),
    /// Past fleet runs started from this host, newest first; with RUN_ID, that run's targets
    History(HistoryArgs),
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The backfill (a definition in migrations/backfills/)
    pub name: String,
    /// The group (every configured target when omitted)
    pub group: Option<String>,
    #[command(flatten)]
    pub waves: WaveArgs,
    /// Keys per batch, fixed [default: the definition's, then adapted]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: Option<u32>,
    /// Pause between batches, in ms or with a unit [default: the definition's]
    #[arg(long, value_name = "MS", value_parser = super::backfill::pause_value)]
    pub pause: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The group (every configured target when omitted; a lone revision like 0005 is REV)
    pub group: Option<String>,
    /// `head` (default), a revision like 0005, or +N steps
    pub to: Option<String>,
    #[command(flatten)]
    pub waves: WaveArgs,
    /// Run even though lint found errors in the pending migrations (recorded in each audit row)
    #[arg(long)]
    pub allow_lint: bool,
}

/// Canaries, waves and when to stop: shared by `fleet up` and `fleet backfill`.
#[derive(Debug, Clone, Args)]
pub struct WaveArgs {
    /// Run this target first, alone, and stop if it fails (repeatable)
    #[arg(long, value_name = "NAME", conflicts_with = "canary_count")]
    pub canary: Vec<String>,
    /// Run the first N targets with work first and stop if any fails (0: no canary)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub canary_count: usize,
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Stop launching new targets once K have failed (the running ones finish)
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_failures: u32,
    /// Targets per wave after the canaries [default: --parallel with a pause, else all]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub wave_size: Option<u32>,
    /// Wait this long between waves, e.g. 30s (Ctrl-C during the pause stops)
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "0")]
    pub pause_between_waves: Duration,
}

impl WaveArgs {
    pub fn options(&self, g: &GlobalArgs, policy: Policy) -> rollout::Options {
        rollout::Options {
            parallel: self.pool.parallel.into(),
            max_failures: self.max_failures as usize,
            canary: if self.canary.is_empty() {
                rollout::Canary::Count(self.canary_count)
            } else {
                rollout::Canary::Named(self.canary.clone())
            },
            wave_size: self.wave_size.map(|w| w as usize),
            pause_between_waves: self.pause_between_waves,
            policy,
            terminate_blockers_after: g.terminate_blockers_after,
        }
    }
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// One run's targets and results
    pub run_id: Option<String>,
    /// How many runs to list
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
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
    #[arg(long, default_value_t = rollout::DEFAULT_PARALLEL, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// Longest wait for one target to connect and answer, e.g. 3s
    #[arg(long, default_value = rollout::DEFAULT_TIMEOUT, value_name = "DURATION", value_parser = duration)]
    pub timeout: Duration,
}

fn duration(s: &str) -> std::result::Result<Duration, String> {
    crate::config::parse_duration(s)
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
        FleetAction::Up(u) => up_cmd(g, loaded, u).await,
        FleetAction::Backfill(b) => backfill_cmd(g, loaded, b).await,
        FleetAction::History(h) => history_cmd(g, loaded, h),
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
            status_table(out, &rows, g.paint())?;
            writeln!(
                out,
                "{} in {} (exit {})",
                status_summary(&rows),
                crate::text::took(start.elapsed()),
                code as u8
            )
        },
    ))
}

/// The status table (fits 80 columns for names up to 20), then one line per row with a problem.
pub fn status_table(out: &mut impl Write, rows: &[Row], paint: Paint) -> std::io::Result<()> {
    let w = name_width(rows.iter().map(|r| r.target.as_str()));
    writeln!(
        out,
        "{:w$} {:5} {:10} {:>4} {:11} {:8} {:4} {:8} TLS",
        "TARGET", "ENV", "REVISION", "PEND", "STATE", "HEALTH", "ROLE", "LOCK"
    )?;
    for r in rows {
        let health = match r.health {
            Some(h) => paint.word(&h),
            None => paint.role(crate::marks::Role::Plain, "-"),
        };
        let lock = r
            .runner_lock
            .as_ref()
            .map_or("-".to_string(), |h| format!("pid {}", h.pid));
        let tls = r.tls.map_or("-", |t| t.label());
        writeln!(
            out,
            "{:w$} {:5} {:10} {:>4} {:11} {:8} {:4} {:8} {}",
            output::one_line(&r.target, w),
            env(paint, r.environment),
            revision_span(r.current, r.head),
            if r.state == status::RowState::Unreachable {
                "?".to_string()
            } else {
                r.pending.len().to_string()
            },
            paint.word(&r.state),
            health,
            match r.replication {
                Some("standby") => "STBY",
                Some(_) => "pri",
                None => "-",
            },
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

/// `fleet up [GROUP] [REV]`: a lone argument that reads as a revision and names no group is REV.
fn group_and_revision<'a>(
    loaded: &Loaded,
    group: Option<&'a str>,
    to: Option<&'a str>,
) -> Result<(Option<&'a str>, &'a str)> {
    match (group, to) {
        (Some(g), None)
            if crate::plan::TargetSpec::parse(g, crate::plan::Direction::Up).is_ok()
                && !group::Groups::parse(loaded)?
                    .names(loaded)
                    .iter()
                    .any(|n| n == g) =>
        {
            Ok((None, g))
        }
        (g, to) => Ok((g, to.unwrap_or("head"))),
    }
}

async fn up_cmd(g: &GlobalArgs, loaded: &Loaded, a: &UpArgs) -> Result<ExitCode> {
    let (group, to) = group_and_revision(loaded, a.group.as_deref(), a.to.as_deref())?;
    let spec =
        crate::plan::TargetSpec::parse(to, crate::plan::Direction::Up).map_err(Error::Usage)?;
    let members = members(g, loaded, group).await?;
    let catalogs = Catalogs::load(&members);
    let options = a.waves.options(g, rollout::policy(loaded, a.allow_lint));
    let planned =
        rollout::plan_all(&members, &catalogs, spec, &options, a.waves.pool.timeout).await;
    rollout::canaries(&planned, &options.canary)?;
    show_plan(g, &planned);
    let rollout = rollout::Rollout::new(group.map(str::to_string), to, rollout::Job::Migrate(spec));
    if !planned.iter().any(Planned::has_work) {
        let summary = rollout::execute(
            rollout,
            planned,
            options,
            rollout::FleetReporter::silent(),
            crate::interrupt::Interrupt::none(),
        )
        .await?;
        return Ok(print_summary(g, "fleet up", &summary));
    }
    confirm(g, group, &planned)?;
    run_rollout(g, rollout, planned, options).await
}

async fn backfill_cmd(g: &GlobalArgs, loaded: &Loaded, a: &BackfillArgs) -> Result<ExitCode> {
    let members = members(g, loaded, a.group.as_deref()).await?;
    let catalogs = Catalogs::load(&members);
    let options = a.waves.options(g, rollout::policy(loaded, false));
    let planned = rollout::plan_backfill(&members, &catalogs, &a.name);
    rollout::backfill_known(&planned, &a.name)?;
    rollout::canaries(&planned, &options.canary)?;
    show_plan(g, &planned);
    confirm(g, a.group.as_deref(), &planned)?;
    let job = rollout::Job::Backfill {
        name: a.name.clone(),
        options: crate::backfill::Options {
            batch_size: a.batch_size,
            pause: a.pause,
        },
    };
    let rollout = rollout::Rollout::new(a.group.clone(), &format!("backfill {}", a.name), job);
    run_rollout(g, rollout, planned, options).await
}

/// Run a planned rollout with Ctrl-C handling and progress on stderr; record and print it.
async fn run_rollout(
    g: &GlobalArgs,
    rollout: rollout::Rollout,
    planned: Vec<Planned>,
    options: rollout::Options,
) -> Result<ExitCode> {
    record::started(&rollout, planned.len())?;
    let rollout_job = rollout.job.clone();
    let (trigger, stop) = crate::interrupt::Interrupt::new();
    let on_ctrl_c = crate::cli::on_ctrl_c(
        move || {
            eprintln!(
                "\ninterrupt: no new targets start; running targets finish their current step or batch (Ctrl-C again to quit at once)"
            );
            trigger.fire();
        },
        "quitting: the steps in progress are rolled back by their servers",
    )?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let printer = tokio::spawn(print_progress(rx, g.json));
    let result = rollout::execute(
        rollout,
        planned,
        options,
        rollout::FleetReporter::new(tx),
        stop,
    )
    .await;
    on_ctrl_c.abort();
    printer.await.ok();
    let summary = result?;
    if let Err(e) = record::finished(&summary) {
        eprintln!("warning: {e}");
    }
    let command = match rollout_job {
        rollout::Job::Migrate(_) => "fleet up",
        rollout::Job::Backfill { .. } => "fleet backfill",
    };
    Ok(print_summary(g, command, &summary))
}

/// The plan per target on stderr (a JSON line with --json), and the lint of the steps once.
fn show_plan(g: &GlobalArgs, planned: &[Planned]) {
    let mut err = std::io::stderr().lock();
    if g.json {
        let lints = distinct_lints(planned);
        let rows: Vec<serde_json::Value> = planned.iter().map(plan_json).collect();
        let line = serde_json::json!({"event": "fleet_plan", "targets": rows, "lint": lints});
        writeln!(err, "{line}").ok();
        return;
    }
    err.write_all(plan_text(planned, g.paint_stderr()).as_bytes())
        .ok();
}

fn plan_json(p: &Planned) -> serde_json::Value {
    match &p.work {
        Ok(rollout::Work::Migrate { plan, .. }) => serde_json::json!({
            "target": p.target.name, "environment": p.target.environment,
            "from": plan.from, "to": plan.to,
            "steps": plan.steps.iter().map(|s| s.label()).collect::<Vec<_>>(),
        }),
        Ok(rollout::Work::Backfill { .. }) => serde_json::json!({
            "target": p.target.name, "environment": p.target.environment,
        }),
        Err(e) => serde_json::json!({
            "target": p.target.name, "environment": p.target.environment,
            "error": e.to_string(), "exit_code": e.exit_code() as u8,
        }),
    }
}

/// A rollout touching production needs the group name typed (or --yes); others run as `up` does.
fn confirm(g: &GlobalArgs, group: Option<&str>, planned: &[Planned]) -> Result<()> {
    let asked = rollout::Confirmation::of(group, planned);
    let (with_work, production) = (asked.with_work, asked.production);
    let Some(word) = asked.must_type().filter(|_| !g.yes) else {
        return Ok(());
    };
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "refusing a fleet rollout to {production} PRODUCTION target(s) without confirmation: stdin is not a terminal. Review the plan above and pass --yes."
        )));
    }
    eprint!(
        "\nThis rollout upgrades {with_work} target(s), {production} of them PRODUCTION. Type {word:?} to confirm: "
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the confirmation", e))?;
    if answer.trim() == word {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "not confirmed (expected {word:?}); nothing was run"
        )))
    }
}

/// Progress lines on stderr: phases, each target's end, lock waits and blockers as they change.
async fn print_progress(mut rx: tokio::sync::mpsc::UnboundedReceiver<FleetEvent>, json: bool) {
    let mut progress = crate::fleet::render::Progress::default();
    while let Some(e) = rx.recv().await {
        if json {
            if let Ok(line) = serde_json::to_string(&e) {
                eprintln!("{line}");
            }
        } else if let Some(line) = progress.line(&e) {
            eprintln!("{line}");
        }
    }
}

fn print_summary(g: &GlobalArgs, command: &str, s: &Summary) -> ExitCode {
    output::finish(g.format(), command, s, s.exit_code, |out| {
        summary_table(out, s)
    })
}

fn history_cmd(g: &GlobalArgs, loaded: &Loaded, a: &HistoryArgs) -> Result<ExitCode> {
    let look = g.look(loaded)?;
    let runs = record::runs(if a.run_id.is_some() {
        usize::MAX
    } else {
        a.limit
    })?;
    if let Some(id) = &a.run_id {
        let run = runs.into_iter().find(|r| &r.run_id == id).ok_or_else(|| {
            Error::Usage(format!(
                "no fleet run {id:?} in {}; `pgshift fleet history` lists them",
                record::path().display()
            ))
        })?;
        return Ok(output::finish(
            g.format(),
            "fleet history",
            &run,
            ExitCode::Ok,
            |out| match run
                .summary
                .clone()
                .and_then(|v| serde_json::from_value::<SummaryView>(v).ok())
            {
                Some(v) => {
                    for t in &v.targets {
                        writeln!(out, "{:24} {}", t.target, t.state)?;
                    }
                    Ok(())
                }
                None => writeln!(
                    out,
                    "{} started {} by {}: no summary (the process ended before the rollout did); each target's audit row has detail.fleet_run = {:?}",
                    run.run_id,
                    look.clock.format(&run.at),
                    run.operator,
                    run.run_id
                ),
            },
        ));
    }
    Ok(output::finish(
        g.format(),
        "fleet history",
        &runs,
        ExitCode::Ok,
        |out| {
            if runs.is_empty() {
                return writeln!(
                    out,
                    "no fleet runs recorded in {}",
                    record::path().display()
                );
            }
            for r in &runs {
                let outcome = r
                    .summary
                    .as_ref()
                    .map(|s| format!("exit {}", s["exit_code"]))
                    .unwrap_or_else(|| r.state.to_string());
                writeln!(
                    out,
                    "{}  {}  group {}  to {}  {} target(s)  by {}  {}",
                    r.run_id,
                    look.clock.format(&r.at),
                    r.group.as_deref().unwrap_or("(all)"),
                    r.to,
                    r.targets,
                    r.operator,
                    outcome
                )?;
            }
            Ok(())
        },
    ))
}

/// The part of a recorded summary `fleet history RUN_ID` prints.
#[derive(serde::Deserialize)]
struct SummaryView {
    targets: Vec<TargetView>,
}

#[derive(serde::Deserialize)]
struct TargetView {
    target: String,
    state: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_revision_is_the_target_revision_unless_a_group_has_that_name() {
        let loaded = Loaded {
            file: toml::from_str(
                "[targets.a]\nurl = \"postgres://h/a\"\ngroups = [\"prod\", \"0007\"]\n",
            )
            .unwrap(),
            path: None,
            warnings: vec![],
        };
        let split = |g: Option<&'static str>, to: Option<&'static str>| {
            group_and_revision(&loaded, g, to).unwrap()
        };
        assert_eq!(split(Some("prod"), None), (Some("prod"), "head"));
        assert_eq!(split(Some("0005"), None), (None, "0005"));
        assert_eq!(split(Some("+2"), None), (None, "+2"));
        assert_eq!(split(Some("0007"), None), (Some("0007"), "head"));
        assert_eq!(split(Some("prod"), Some("0005")), (Some("prod"), "0005"));
        assert_eq!(split(None, None), (None, "head"));
    }
}
