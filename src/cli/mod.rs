//! The command line: clap definitions (their doc comments are the `--help`) and dispatch to the
//! core operations. Output goes through `output`; every error maps to one exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub mod backfill;
pub mod fleet;
pub mod lint;
#[cfg(test)]
mod parity_tests;
pub mod runbook;
pub mod shell;

use crate::catalog::{Catalog, Revision};
use crate::config::{self, Loaded, Overrides, Resolved, Target};
use crate::error::{Error, ExitCode, Result};
use crate::event::{Event, Reporter, Sink};
use crate::ops::gate::{Caller, LintOverride, Policy};
use crate::ops::{self, migrate};
use crate::output::{self, Format};
use crate::plan::{Direction, TargetSpec};

/// Run PostgreSQL schema migrations and data backfills safely.
///
/// Without a subcommand on a terminal, pgshift opens its operator screen. Every action is also a
/// subcommand for scripts and CI; all take --json and exit with:
/// 0 ok, 1 operation failed, 2 usage or config error, 3 database unreachable,
/// 4 lock busy or lock retries exhausted, 5 integrity problem (drift, bad files),
/// 10 `status --check` found pending work.
#[derive(Debug, Parser)]
#[command(name = "pgshift", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Where to connect and how to behave; accepted by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file [default: $PGSHIFT_CONFIG, ./config/pgshift.toml, ~/.config/pgshift/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Named target from the config file (`sandbox` is the local demo cluster)
    #[arg(long, short = 't', global = true, value_name = "NAME")]
    pub target: Option<String>,
    /// Connect to this URL instead of a configured target (DATABASE_URL is read when no target is configured)
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Migrations directory [default: the target's `migrations`, else ./migrations]
    #[arg(long, global = true, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// Longest wait for a table lock per DDL attempt, e.g. 200ms, 1ms to 10m [default: 500ms]
    #[arg(long, global = true, value_name = "DURATION", value_parser = config::lock_timeout_arg, allow_hyphen_values = true)]
    pub lock_timeout: Option<Duration>,
    /// Longest run of one statement, e.g. 5m, up to 2147483647ms; 0 = the server's [default: the server's]
    #[arg(long, global = true, value_name = "DURATION", value_parser = config::statement_timeout_arg, allow_hyphen_values = true)]
    pub statement_timeout: Option<Duration>,
    /// Attempts per step on lock timeouts and deadlocks, 1 to 1000 [default: 10]
    #[arg(long, global = true, value_name = "N", value_parser = config::retries_arg, allow_hyphen_values = true)]
    pub retries: Option<u32>,
    /// Terminate sessions that have blocked a step this long, e.g. 30s (opt-in; each one audited).
    /// Other pgshift sessions are never terminated. [default: never]
    #[arg(long, global = true, value_name = "DURATION", value_parser = config::terminate_after_arg, allow_hyphen_values = true)]
    pub terminate_blockers_after: Option<Duration>,
    /// Do not hold backfill batches and no-transaction statements for replicas whose replay lag
    /// is above the target's max_replica_lag (default 10s); for operators who accept stale replicas
    #[arg(long, global = true)]
    pub ignore_replica_lag: bool,
    /// How long to wait for another pgshift run on the same database, 0 to 24h [default: 30s]
    #[arg(long, global = true, value_name = "DURATION", value_parser = config::lock_wait_arg, allow_hyphen_values = true)]
    pub lock_wait: Option<Duration>,
    /// One JSON document on stdout (progress as JSON lines on stderr)
    #[arg(long, global = true)]
    pub json: bool,
    /// Show times in UTC instead of local time with its zone (also `[tui] time = "utc"`)
    #[arg(long, global = true)]
    pub utc: bool,
    /// Colour the human output and the screen: auto (when stdout is a terminal and NO_COLOR is
    /// unset), always, never. --json is never coloured
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,
    /// Confirm destructive actions without asking (for scripts)
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
}

/// When to colour (ripgrep's and cargo's `--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Current revision, head, pending, drift, the runner lock holder (make alembic-status)
    #[command(
        after_help = "Examples:\n  pgshift status\n  pgshift status --check --json   # exit 10 when pending: a deploy gate"
    )]
    Status(StatusArgs),
    /// Applied migrations and the audit trail: who did what, when, with what outcome (make alembic-history)
    History(HistoryArgs),
    /// Upgrade to head, to REV, or +N steps, each in its own guarded transaction (make alembic-up)
    #[command(
        after_help = "Examples:\n  pgshift up                      # to head\n  pgshift up 0003                 # alembic upgrade 0003\n  pgshift up +1 --lock-timeout 200ms --retries 20\n\nCtrl-C cancels the running statement; its step rolls back and the run stops."
    )]
    Up(UpArgs),
    /// Downgrade one step, -N steps, to REV, or to base (DESTRUCTIVE; shows the SQL and asks) (make alembic-down)
    #[command(
        after_help = "Examples:\n  pgshift down                    # one step (make alembic-down)\n  pgshift down 0001               # alembic downgrade 0001\n  pgshift down base --yes         # everything, from a script\n\nOn a terminal you type the target revision to confirm; elsewhere --yes is required.\nA migration without a .down.sql cannot be passed: the downgrade is refused before anything runs."
    )]
    Down(DownArgs),
    /// Print exactly the steps and SQL an upgrade or downgrade would run, changing nothing (alembic --sql)
    Plan(PlanArgs),
    /// Create the next NNNN_description.up.sql and .down.sql (make alembic-new)
    New(NewArgs),
    /// Record REV as applied without running SQL, to adopt an existing database (alembic stamp)
    #[command(
        after_help = "Example: a database migrated by Alembic to 0003 (see `pgshift status`):\n  pgshift stamp 0003"
    )]
    Stamp(StampArgs),
    /// Re-approve one drifted migration's changed file after showing the diff (audited; runs no SQL)
    #[command(
        after_help = "Example: 0004's up file was reformatted after it was applied:\n  pgshift status            # shows the diff\n  pgshift accept 0004       # shows it again and asks (type 0004 on production)\n  pgshift accept 0004 --yes # from a script"
    )]
    Accept(AcceptArgs),
    /// Batched, throttled, resumable data backfills; `status`, `pause|resume|cancel NAME` (make backfill)
    Backfill(backfill::BackfillArgs),
    /// The local throwaway demo cluster
    Sandbox(SandboxArgs),
    /// The runbook's checklists: run automatic checks, confirm or skip items; recorded and resumable
    Checklist(runbook::ChecklistArgs),
    /// ok / degraded / down: database, migrations, backfills, alerts (exit 3 unreachable, 5 drift, 1 failed, 10 pending)
    Health,
    /// Migrate on application start with the runbook's log lines; starts degraded on failure (exit 0 unless --strict)
    Startup(runbook::StartupArgs),
    /// HTTP: GET /health, GET /admin/migrations, POST /admin/migrations/retry (bearer token)
    Serve(runbook::ServeArgs),
    /// Check pending migrations for locking or breaking DDL: rule, line, why, safe rewrite
    Lint(lint::LintArgs),
    /// Many databases at once: `fleet status|up|backfill|history [GROUP]`, canary first, in waves
    Fleet(fleet::FleetArgs),
    /// Open the operator screen (the default on a terminal)
    Tui,
    /// Shell completions generated from these definitions: `pgshift completions bash > ...`
    Completions(shell::CompletionsArgs),
    /// The man page (roff): `pgshift man | man -l -`
    Man,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Exit 10 when migrations are pending (for CI and deploy gates)
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How many audit events to show
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// `head` (default), a revision like 0003, or +N steps
    #[arg(default_value = "head")]
    pub to: String,
    /// Run even though lint found errors in the pending migrations (recorded in the audit)
    #[arg(long)]
    pub allow_lint: bool,
    /// Apply migrations below the applied head that were never applied (merged late from a
    /// branch) first; recorded and audited as out of order
    #[arg(long)]
    pub out_of_order: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// -N steps (default -1), a revision like 0001, or `base` to remove everything
    #[arg(default_value = "-1", allow_negative_numbers = true)]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// up or down
    pub direction: PlanDirection,
    /// Target (as for up/down); with two revisions FROM TO, planned offline without a database
    #[arg(allow_negative_numbers = true, num_args = 0..=2)]
    pub revisions: Vec<String>,
    /// Plan migrations below the applied head that were never applied first (as `up --out-of-order`)
    #[arg(long)]
    pub out_of_order: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlanDirection {
    Up,
    Down,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// What the migration does, e.g. "add index to documents"
    pub description: String,
    /// Mark it `-- pgshift: no-transaction` (for CREATE INDEX CONCURRENTLY)
    #[arg(long)]
    pub no_transaction: bool,
}

#[derive(Debug, Args)]
pub struct StampArgs {
    /// The revision the schema is already at (e.g. 0003, or base)
    pub revision: String,
}

#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// The drifted revision whose current files are right (e.g. 0004)
    pub revision: String,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub action: SandboxAction,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum SandboxAction {
    /// Create (first time: demo migrations and data) and start it; it keeps running
    Start,
    /// Stop it
    Stop,
    /// Delete it and create it afresh with the demo
    Reset,
    /// Print its connection URL
    Url,
}

/// Parse, run, exit.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let loaded = match Loaded::find(cli.global.config.as_deref()) {
        Ok(l) => l,
        Err(e) => return report_error(&cli, &e).into(),
    };
    let _log = crate::logging::init(&loaded.log_dir());
    for w in &loaded.warnings {
        tracing::warn!("{w}");
        let event = Event::Log {
            level: crate::event::Level::Warn,
            message: w.clone(),
        };
        match serde_json::to_string(&event) {
            Ok(line) if cli.global.json => eprintln!("{line}"),
            _ => eprintln!(
                "{}: {w}",
                cli.global
                    .paint_stderr()
                    .role(crate::marks::Role::Warn, "warning")
            ),
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::Failed.into();
        }
    };
    let code = match runtime.block_on(run(&cli, &loaded)) {
        Ok(code) => code,
        Err(e) => report_error(&cli, &e),
    };
    runtime.block_on(crate::db::close::settled(crate::db::close::AT_EXIT));
    code.into()
}

fn command_name(cli: &Cli) -> &'static str {
    match &cli.command {
        None | Some(Command::Tui) => "tui",
        Some(Command::Completions(_)) => "completions",
        Some(Command::Man) => "man",
        Some(Command::Status(_)) => "status",
        Some(Command::History(_)) => "history",
        Some(Command::Up(_)) => "up",
        Some(Command::Down(_)) => "down",
        Some(Command::Plan(_)) => "plan",
        Some(Command::New(_)) => "new",
        Some(Command::Stamp(_)) => "stamp",
        Some(Command::Accept(_)) => "accept",
        Some(Command::Sandbox(_)) => "sandbox",
        Some(Command::Checklist(_)) => "checklist",
        Some(Command::Health) => "health",
        Some(Command::Startup(_)) => "startup",
        Some(Command::Serve(_)) => "serve",
        Some(Command::Backfill(_)) => "backfill",
        Some(Command::Lint(_)) => "lint",
        Some(Command::Fleet(_)) => "fleet",
    }
}

fn report_error(cli: &Cli, e: &Error) -> ExitCode {
    tracing::error!("{}: {e}", command_name(cli));
    if cli.global.json {
        output::print_json(&output::json_error(command_name(cli), e));
    } else {
        eprintln!(
            "{}: {}",
            cli.global
                .paint_stderr()
                .role(crate::marks::Role::Error, "error"),
            crate::secrets::redact(&e.to_string())
        );
    }
    e.exit_code()
}

impl GlobalArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            target: self.target.clone(),
            database_url: self.database_url.clone(),
            migrations: self.migrations.clone(),
            lock_timeout: self.lock_timeout,
            statement_timeout: self.statement_timeout,
            retries: self.retries,
            lock_wait: self.lock_wait,
            ignore_replica_lag: self.ignore_replica_lag,
        }
    }

    /// `--color`: always, never, or (auto) when the stream is a terminal and NO_COLOR is unset.
    fn color_on(&self, terminal: bool) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && crate::marks::color_allowed(),
        }
    }

    /// Colour for the human output on stdout. Never with `--json`.
    pub fn paint(&self) -> crate::marks::Paint {
        crate::marks::Paint {
            color: !self.json && self.color_on(std::io::stdout().is_terminal()),
        }
    }

    /// Colour for `error:` and `warning:` on stderr (as cargo colours them), judged on stderr.
    pub fn paint_stderr(&self) -> crate::marks::Paint {
        crate::marks::Paint {
            color: self.color_on(std::io::stderr().is_terminal()),
        }
    }

    /// Colour and the clock (`--utc`, then `[tui] time`, then local time) for human output.
    pub fn look(&self, loaded: &Loaded) -> Result<output::Look> {
        Ok(output::Look {
            paint: self.paint(),
            clock: crate::clock::Clock::from_config(loaded, self.utc)?,
        })
    }

    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            Format::Human
        }
    }
}

/// Dispatch the command: the ones without a database first, then [`on_target`] for the rest.
async fn run(cli: &Cli, loaded: &Loaded) -> Result<ExitCode> {
    let g = &cli.global;
    match &cli.command {
        None => default_screen(g, loaded, Asked::Nothing).await,
        Some(Command::Tui) => default_screen(g, loaded, Asked::Screen).await,
        Some(Command::Completions(a)) => shell::completions(a, &mut std::io::stdout()),
        Some(Command::Man) => shell::man(&mut std::io::stdout()),
        Some(Command::New(a)) => new_cmd(g, a),
        Some(Command::Plan(a)) if a.revisions.len() == 2 => plan_offline(g, a),
        Some(Command::Sandbox(a)) => sandbox(g, a.action).await,
        Some(Command::Checklist(a)) => runbook::checklist(g, loaded, a).await,
        Some(Command::Health) => runbook::health(g, loaded).await,
        Some(Command::Startup(a)) => runbook::startup(g, loaded, a).await,
        Some(Command::Serve(a)) => runbook::serve(g, loaded, a).await,
        Some(Command::Lint(a)) => lint::lint(g, loaded, a).await,
        Some(Command::Fleet(a)) => fleet::command(g, loaded, a).await,
        Some(cmd) => on_target(g, loaded, cmd).await,
    }
}

/// The commands on one database: resolve the target (the sandbox's, if asked, kept up until the
/// command ends) and read its migration files, then run the command.
async fn on_target(g: &GlobalArgs, loaded: &Loaded, cmd: &Command) -> Result<ExitCode> {
    let (target, _sandbox) = resolve_target(g, loaded).await?;
    let catalog = ops::catalog(&target)?;
    match cmd {
        Command::Status(a) => status_cmd(g, loaded, &target, &catalog, a).await,
        Command::History(a) => {
            let h = ops::history::history(&target, &catalog, a.limit).await?;
            let look = g.look(loaded)?;
            emit(g, "history", &h, |out| output::history(out, &h, &look))
        }
        Command::Up(a) => up_cmd(g, loaded, &target, &catalog, a).await,
        Command::Down(a) => {
            let spec = TargetSpec::parse(&a.to, Direction::Down).map_err(Error::Usage)?;
            let req = migrate::Request::new(Direction::Down, spec, cli_policy(loaded)?);
            migrate_cmd(g, &target, &catalog, req).await
        }
        Command::Plan(a) => plan_cmd(g, loaded, &target, &catalog, a).await,
        Command::Stamp(a) => stamp(g, &target, &catalog, &a.revision).await,
        Command::Accept(a) => accept(g, &target, &catalog, &a.revision).await,
        Command::Backfill(a) => backfill::command(g, &target, &catalog, a).await,
        Command::New(_)
        | Command::Sandbox(_)
        | Command::Tui
        | Command::Completions(_)
        | Command::Man
        | Command::Checklist(_)
        | Command::Health
        | Command::Startup(_)
        | Command::Serve(_)
        | Command::Lint(_)
        | Command::Fleet(_) => unreachable!("handled by run"),
    }
}

/// `pgshift new`: the next pair of files, in the migrations directory.
fn new_cmd(g: &GlobalArgs, a: &NewArgs) -> Result<ExitCode> {
    let dir = g
        .migrations
        .clone()
        .unwrap_or_else(config::default_migrations);
    let created = ops::new::create(&dir, &a.description, a.no_transaction)?;
    emit(g, "new", &created, |out| {
        use std::io::Write;
        writeln!(
            out,
            "created {}\ncreated {}\nEdit both; until the up file has SQL, the catalog is invalid and nothing runs.",
            created.up.display(),
            created.down.display()
        )
    })
}

/// `pgshift status`: exit 5 on drift, 10 with `--check` and pending migrations.
async fn status_cmd(
    g: &GlobalArgs,
    loaded: &Loaded,
    target: &Target,
    catalog: &Catalog,
    a: &StatusArgs,
) -> Result<ExitCode> {
    let s = ops::status::status(target, catalog).await?;
    let code = if !s.drift.is_empty() {
        ExitCode::Integrity
    } else if a.check && s.is_pending() {
        ExitCode::Pending
    } else {
        ExitCode::Ok
    };
    let look = g.look(loaded)?;
    Ok(output::finish(g.format(), "status", &s, code, |out| {
        output::status(out, &s, &look)
    }))
}

/// `pgshift up`: the CLI's policy, lint findings allowed only with `--allow-lint`; a failure
/// prints its diagnosis.
async fn up_cmd(
    g: &GlobalArgs,
    loaded: &Loaded,
    target: &Target,
    catalog: &Catalog,
    a: &UpArgs,
) -> Result<ExitCode> {
    let spec = TargetSpec::parse(&a.to, Direction::Up).map_err(Error::Usage)?;
    let lint = if a.allow_lint {
        LintOverride::Allowed
    } else {
        LintOverride::No
    };
    let policy = cli_policy(loaded)?.with_lint_override(lint);
    let mut req = migrate::Request::new(Direction::Up, spec, policy);
    req.out_of_order = a.out_of_order;
    migrate_cmd(g, target, catalog, req)
        .await
        .inspect_err(|e| runbook::print_diagnosis(g, target, e))
}

/// `pgshift plan` against the database: the steps and SQL, then any lint findings.
async fn plan_cmd(
    g: &GlobalArgs,
    loaded: &Loaded,
    target: &Target,
    catalog: &Catalog,
    a: &PlanArgs,
) -> Result<ExitCode> {
    let dir = a.direction.into();
    let default = if dir == Direction::Up { "head" } else { "-1" };
    let spec = TargetSpec::parse(a.revisions.first().map_or(default, String::as_str), dir)
        .map_err(Error::Usage)?;
    let mut req = migrate::Request::new(dir, spec, cli_policy(loaded)?);
    req.out_of_order = a.out_of_order;
    let p = migrate::preview(target, catalog, &req).await?;
    let lint = ops::lint::of_plan(&p, catalog);
    let linted = lint::LintedPlan { plan: &p, lint };
    emit(g, "plan", &linted, |out| {
        output::plan(out, &p)?;
        if linted.lint.iter().any(|l| !l.findings.is_empty()) {
            use std::io::Write;
            writeln!(out)?;
            crate::lint::render::findings(out, &linted.lint, false, g.paint())?;
        }
        Ok(())
    })
}

impl From<PlanDirection> for Direction {
    fn from(d: PlanDirection) -> Self {
        match d {
            PlanDirection::Up => Direction::Up,
            PlanDirection::Down => Direction::Down,
        }
    }
}

/// Print a successful result: JSON document, or human text on stdout.
fn emit<T: serde::Serialize>(
    g: &GlobalArgs,
    command: &str,
    value: &T,
    human: impl FnOnce(&mut output::Out) -> std::io::Result<()>,
) -> Result<ExitCode> {
    Ok(output::finish(
        g.format(),
        command,
        value,
        ExitCode::Ok,
        human,
    ))
}

/// The target to use, starting the sandbox for `--target sandbox`.
pub async fn resolve_target(
    g: &GlobalArgs,
    loaded: &Loaded,
) -> Result<(Target, Option<crate::sandbox::Started>)> {
    match loaded.resolve(&g.overrides())? {
        Resolved::Target(t) => Ok((*t, None)),
        Resolved::Sandbox(o) => {
            let (t, started) = sandbox_target(&o, progress_reporter(g).reporter()).await?;
            Ok((t, Some(started)))
        }
        Resolved::Nothing => Err(Error::Usage(
            "no database configured: pass --database-url, set DATABASE_URL or PGHOST/PGDATABASE, add a target to ./config/pgshift.toml (see config/pgshift.example.toml), or try the demo with --target sandbox".into(),
        )),
    }
}

/// Start (or reuse) the sandbox and return a target for it.
pub async fn sandbox_target(
    o: &Overrides,
    reporter: &Reporter,
) -> Result<(Target, crate::sandbox::Started)> {
    let sandbox = crate::sandbox::Sandbox::locate()?;
    let migrations = o
        .migrations
        .clone()
        .unwrap_or_else(config::default_migrations);
    crate::sandbox::demo::require_catalog(&migrations)?;
    let started = sandbox.ensure(&migrations, reporter).await?;
    let mut target = sandbox.target(&migrations, crate::config::Guard::default());
    if let Some(d) = o.lock_timeout {
        target.guard.lock_timeout = d;
    }
    if let Some(r) = o.retries {
        target.guard.retries = r;
    }
    if let Some(d) = o.statement_timeout {
        target.guard.statement_timeout = Some(d).filter(|d| !d.is_zero());
    }
    if o.ignore_replica_lag {
        target.guard.max_replica_lag = None;
    }
    Ok((target, started))
}

/// A reporter printing progress on stderr (human lines, or JSON lines with --json), and the task
/// doing the printing (await it after the operation to flush).
pub fn progress_reporter(g: &GlobalArgs) -> Sink {
    printing_reporter(g, |_| false)
}

/// Like [`progress_reporter`], but events for which `to_stdout` is true are printed as plain
/// lines on stdout (without --json): `startup` puts the runbook's lines there for log matchers.
pub fn printing_reporter(g: &GlobalArgs, to_stdout: fn(&Event) -> bool) -> Sink {
    let json = g.json;
    Sink::spawn(move |e: Event| {
        if json {
            if let Ok(line) = serde_json::to_string(&e) {
                eprintln!("{line}");
            }
        } else if let Some(line) = output::event_line(&e) {
            if to_stdout(&e) {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{line}").ok();
                out.flush().ok();
            } else {
                eprintln!("{line}");
            }
        }
    })
}

/// The CLI's gate policy, with the configured checklists (see `ops::gate`).
fn cli_policy(loaded: &Loaded) -> Result<Policy> {
    let runbook = crate::runbook::Runbook::load(loaded).map_err(|e| e.to_string());
    Ok(Policy::new(Caller::Cli, runbook.into())
        .with_lint_settings(crate::lint::Settings::from_config(loaded)?))
}

async fn migrate_cmd(
    g: &GlobalArgs,
    target: &Target,
    catalog: &crate::catalog::Catalog,
    mut req: migrate::Request,
) -> Result<ExitCode> {
    let direction = req.direction;
    // Before any preview, gate or confirmation: a standby cannot take writes.
    crate::db::topology::ensure_primary(&target.conn, &req.action).await?;
    // What the gates say before anything runs (the run checks them again under the lock, refuses
    // and audits). A preview that fails is left to the run, which reports and audits the same
    // failure; a downgrade is confirmed against its exact plan, so its failure ends here.
    match migrate::preview_gated(target, catalog, &req).await {
        Ok(preview) => {
            print_lint(g, &preview.verdict);
            if direction == Direction::Down {
                if preview.plan.is_destructive() && !preview.verdict.is_refused() {
                    confirm_destructive(g, target, &preview.plan)?;
                }
                req.expect = Some((preview.plan.from, preview.plan.to));
            }
        }
        Err(e) if direction == Direction::Down => {
            migrate::record_refusal(target, &req, &e).await;
            return Err(e);
        }
        Err(_) => {}
    }
    let mut target = target.clone();
    target.guard.terminate_blockers_after = g.terminate_blockers_after;
    let target = &target;
    let (trigger, interrupt) = crate::interrupt::Interrupt::new();
    req.interrupt = interrupt;
    let on_ctrl_c = crate::interrupt::on_stop_signals(
        move |reason| {
            trigger.fire_because(reason);
            use std::io::Write;
            writeln!(
                std::io::stderr(),
                "\ninterrupt ({reason}): canceling the running statement on the server, then stopping (Ctrl-C again to quit at once)"
            )
            .ok();
        },
        // The server rolls back the open transaction when the connection drops.
        "quitting: the step in progress is rolled back by the server",
    )
    .map_err(|e| Error::io("installing the signal handlers", e))?;
    let progress = progress_reporter(g);
    let reporter = progress.reporter();
    let result = migrate::run(target, catalog, &req, reporter).await;
    on_ctrl_c.abort();
    progress.finish().await;
    let report = result?;
    let action = req.action.clone();
    emit(g, &action, &report, |out| {
        use std::io::Write;
        writeln!(out, "{}", report.summary())
    })
}

/// The lint findings of what is about to run, on stderr before it runs (a JSON line with --json).
/// The weighed findings before a run: at most ~15 lines (counts per rule, the first findings,
/// the command that lists all); with `--json`, every finding as one JSON line on stderr.
fn print_lint(g: &GlobalArgs, verdict: &crate::ops::gate::Verdict) {
    let c = crate::lint::weigh::Counts::of(&verdict.lint);
    if c.errors + c.allowed + c.warnings == 0 {
        return;
    }
    if g.json {
        let line = serde_json::json!({"event": "lint", "mode": verdict.lint_mode,
            "basis": verdict.lint_basis, "migrations": verdict.lint});
        eprintln!("{line}");
    } else {
        let all = match &g.target {
            Some(t) => format!("pgshift lint --target {t}"),
            None => "pgshift lint".into(),
        };
        let basis = verdict.lint_basis.as_deref().unwrap_or_default();
        crate::lint::render::short(&mut std::io::stderr().lock(), &verdict.lint, basis, &all).ok();
    }
}

/// Handle Ctrl-C, SIGTERM and SIGHUP alike: `first` on the first one, exit 130 (printing
/// `quit_note`) on the second (see [`crate::interrupt::on_stop_signals`]).
pub fn on_ctrl_c(
    first: impl FnOnce() + Send + 'static,
    quit_note: &'static str,
) -> Result<tokio::task::JoinHandle<()>> {
    crate::interrupt::on_stop_signals(move |_| first(), quit_note)
        .map_err(|e| Error::io("installing the signal handlers", e))
}

/// Show the SQL of a destructive plan and get a typed confirmation (or --yes).
fn confirm_destructive(g: &GlobalArgs, target: &Target, plan: &crate::plan::Plan) -> Result<()> {
    let mut err = std::io::stderr().lock();
    output::plan(&mut err, plan).ok();
    drop(err);
    if g.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "refusing to {} {} -> {} without confirmation: stdin is not a terminal. Review the SQL above and pass --yes.",
            plan.direction.verb(),
            plan.from,
            plan.to
        )));
    }
    let env = if target.environment.is_production() {
        " PRODUCTION"
    } else {
        ""
    };
    eprint!(
        "\nThis{env} downgrade of {} runs the SQL above. Type the target revision ({}) to confirm: ",
        target.name, plan.to
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::io("reading the confirmation", e))?;
    if Revision::parse(&answer) == Some(plan.to) {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "not confirmed (expected {}); nothing was run",
            plan.to
        )))
    }
}

fn plan_offline(g: &GlobalArgs, a: &PlanArgs) -> Result<ExitCode> {
    let dir = g
        .migrations
        .clone()
        .unwrap_or_else(config::default_migrations);
    let catalog = crate::catalog::Catalog::load(&dir)?;
    let parse = |s: &str| {
        Revision::parse(s).ok_or_else(|| Error::Usage(format!("{s:?} is not a revision")))
    };
    let (from, to) = (parse(&a.revisions[0])?, parse(&a.revisions[1])?);
    if !catalog.contains(from) {
        return Err(Error::Usage(format!(
            "revision {from} is not in the catalog"
        )));
    }
    // Pretend history is exactly the catalog up to FROM.
    let applied = crate::plan::Applied::catalog_through(&catalog, from);
    let p = crate::plan::plan(
        &catalog,
        &applied,
        a.direction.into(),
        TargetSpec::Revision(to),
    )
    .map_err(migrate::plan_error)?;
    emit(g, "plan", &p, |out| output::plan(out, &p))
}

async fn stamp(
    g: &GlobalArgs,
    target: &Target,
    catalog: &crate::catalog::Catalog,
    rev: &str,
) -> Result<ExitCode> {
    let rev = Revision::parse(rev)
        .ok_or_else(|| Error::Usage(format!("{rev:?} is not a revision (e.g. 0003 or base)")))?;
    let preview = ops::stamp::preview(target, catalog, rev).await?;
    if let Some(v) = &preview.alembic_version {
        eprintln!(
            "note: alembic_version holds {v}; pgshift revisions are the catalog's versions (0001, 0002, ...)."
        );
    }
    if !preview.remove.is_empty() && !g.yes {
        return Err(Error::Usage(format!(
            "stamp {rev} would remove history rows {} without running their down SQL; pass --yes if the schema really is at {rev}",
            preview
                .remove
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let progress = progress_reporter(g);
    let reporter = progress.reporter();
    let result = ops::stamp::stamp(target, catalog, rev, reporter).await;
    progress.finish().await;
    let p = result?;
    emit(g, "stamp", &p, |out| {
        use std::io::Write;
        writeln!(
            out,
            "stamped {}: recorded {} as applied, removed {} history row(s); no migration SQL was run",
            p.to,
            p.insert.len(),
            p.remove.len()
        )
    })
}

/// Show the diff, get a confirmation (typed revision on production, `--yes` from scripts), accept.
async fn accept(
    g: &GlobalArgs,
    target: &Target,
    catalog: &crate::catalog::Catalog,
    rev: &str,
) -> Result<ExitCode> {
    let rev = Revision::parse(rev)
        .ok_or_else(|| Error::Usage(format!("{rev:?} is not a revision (e.g. 0004)")))?;
    let preview = ops::accept::preview(target, catalog, rev).await?;
    let mut err = std::io::stderr().lock();
    for d in &preview.drift {
        use std::io::Write;
        writeln!(err, "{d}").ok();
        output::drift_diff(&mut err, d).ok();
    }
    drop(err);
    if !g.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Usage(format!(
                "refusing to accept {rev} without confirmation: stdin is not a terminal. Review the diff above and pass --yes."
            )));
        }
        let expected = if target.environment.is_production() {
            eprint!(
                "\nAccept the files of {rev} as applied on PRODUCTION {}? Type the revision ({rev}) to confirm: ",
                target.name
            );
            rev.to_string()
        } else {
            eprint!(
                "\nAccept the files of {rev} as applied on {}? [y/N] ",
                target.name
            );
            "y".into()
        };
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(|e| Error::io("reading the confirmation", e))?;
        let answer = answer.trim();
        let confirmed = if target.environment.is_production() {
            Revision::parse(answer) == Some(rev)
        } else {
            answer.eq_ignore_ascii_case(&expected)
        };
        if !confirmed {
            return Err(Error::Refused("not confirmed; nothing was accepted".into()));
        }
    }
    let progress = progress_reporter(g);
    let reporter = progress.reporter();
    let result = ops::accept::accept(target, catalog, &preview, reporter).await;
    progress.finish().await;
    let a = result?;
    emit(g, "accept", &a, |out| {
        use std::io::Write;
        writeln!(
            out,
            "accepted {}_{}: checksum {} -> {}; no migration SQL was run",
            a.revision, a.name, a.old_checksum, a.new_checksum
        )
    })
}

async fn sandbox(g: &GlobalArgs, action: SandboxAction) -> Result<ExitCode> {
    let sandbox = crate::sandbox::Sandbox::locate()?;
    let migrations = g
        .migrations
        .clone()
        .unwrap_or_else(config::default_migrations);
    let progress = progress_reporter(g);
    let reporter = progress.reporter();
    let result = match action {
        SandboxAction::Start => sandbox.ensure(&migrations, reporter).await.map(|_| ()),
        SandboxAction::Stop => sandbox.stop().await,
        SandboxAction::Reset => match sandbox.destroy().await {
            Ok(()) => sandbox.ensure(&migrations, reporter).await.map(|_| ()),
            Err(e) => Err(e),
        },
        SandboxAction::Url => Ok(()),
    };
    progress.finish().await;
    result?;
    let info = serde_json::json!({
        "url": sandbox.url(),
        "dir": sandbox.dir,
        "running": sandbox.is_running().await,
    });
    emit(g, "sandbox", &info, |out| {
        use std::io::Write;
        match action {
            SandboxAction::Stop => writeln!(out, "sandbox stopped ({})", sandbox.dir.display()),
            _ => writeln!(out, "{}", sandbox.url()),
        }
    })
}

/// What the operator asked for when [`default_screen`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// No subcommand: the screen on a terminal, the status otherwise.
    Nothing,
    /// `pgshift tui`: the screen, or a usage error without a terminal.
    Screen,
}

/// No subcommand: the operator screen (`pgshift tui` asks for it explicitly). When stdout or stdin
/// is not a terminal (a pipe, CI, `--json`), the status is printed instead. With nothing configured,
/// the sandbox is started (and stopped again on exit if we started it); a configured but
/// unreachable database opens the screen in its UNREACHABLE state, never the sandbox.
async fn default_screen(g: &GlobalArgs, loaded: &Loaded, asked: Asked) -> Result<ExitCode> {
    let terminal = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let screen = match asked {
        Asked::Screen => true,
        Asked::Nothing => !g.json && terminal,
    };
    if asked == Asked::Screen && !terminal {
        return Err(Error::Usage(
            "`pgshift tui` needs a terminal on stdin and stdout; use `pgshift status` in scripts"
                .into(),
        ));
    }
    let o = g.overrides();
    let progress = progress_reporter(g);
    let reporter = progress.reporter();
    let (target, started) = match loaded.resolve(&o)? {
        Resolved::Target(t) => (*t, None),
        Resolved::Sandbox(o) => {
            let (t, s) = sandbox_target(&o, reporter).await?;
            (t, Some(s))
        }
        Resolved::Nothing => {
            reporter.log(
                crate::event::Level::Info,
                "no database configured: starting the local SANDBOX with the demo",
            );
            let (t, s) = sandbox_target(&o, reporter).await?;
            (t, Some(s))
        }
    };
    progress.finish().await;
    let result = async {
        let catalog = ops::catalog(&target)?;
        if screen {
            let runbook = crate::runbook::Runbook::load(loaded).map_err(|e| e.to_string());
            // The screen follows --color too (it always runs on a terminal).
            let options = crate::tui::Options::new(loaded, &o, g.utc, g.color_on(true))?;
            return crate::tui::run(target.clone(), catalog, runbook, options).await;
        }
        let s = ops::status::status(&target, &catalog).await?;
        if target.is_sandbox() {
            eprintln!("== SANDBOX: a local throwaway cluster with demo data ==");
        }
        // The same exit code as `pgshift status`: drift is an integrity problem.
        let code = if s.drift.is_empty() {
            ExitCode::Ok
        } else {
            ExitCode::Integrity
        };
        let look = g.look(loaded)?;
        Ok(output::finish(g.format(), "status", &s, code, |out| {
            output::status(out, &s, &look)
        }))
    }
    .await;
    if started == Some(crate::sandbox::Started::Now) {
        crate::sandbox::Sandbox::locate()?.stop().await?;
    }
    result
}
