//! The runbook's subcommands: `checklist`, `health`, `startup`, `serve`; plus the diagnosis
//! printing that `up` calls. Argument structs live here; `crate::cli` dispatches.

use std::io::Write;
use std::sync::Arc;

use clap::Args;

use crate::cli::{GlobalArgs, resolve_target};
use crate::config::{Loaded, Target};
use crate::db::checklist_runs::ItemShown;
use crate::error::{Error, ExitCode, Result};
use crate::event::{Event, Level, Sink};
use crate::health;
use crate::ops::migrate::{COMPLETED, DEGRADED, FAILED, RUNNING};
use crate::output::{self, Format, Look};
use crate::runbook::{ChecklistView, ItemState, ItemView, RunState, Runbook};
use crate::startup;

#[derive(Debug, Args)]
pub struct ChecklistArgs {
    /// Checklist name (pre-deploy, deploy-sequence, post-deploy, startup-failure, rollback,
    /// recovery-complete-failure, recovery-partial-corruption); without it, all with their state
    pub name: Option<String>,
    /// Run every automatic check not yet done in the current run (resumes an unfinished run)
    #[arg(long)]
    pub run_checks: bool,
    /// Run the automatic check of one item
    #[arg(long, value_name = "ITEM")]
    pub check: Option<String>,
    /// Confirm an item by hand (needs --note: what you checked, e.g. the backup id)
    #[arg(long, value_name = "ITEM", requires = "note")]
    pub confirm: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Skip an item (needs --reason)
    #[arg(long, value_name = "ITEM", requires = "reason")]
    pub skip: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Start a new run instead of resuming the unfinished one
    #[arg(long)]
    pub new: bool,
}

#[derive(Debug, Args)]
pub struct StartupArgs {
    /// Exit non-zero when migration fails instead of starting degraded (also `[startup] strict`)
    #[arg(long)]
    pub strict: bool,
    /// Non-production only: when migration fails, create the schema from the catalog in one transaction
    #[arg(long, env = "DEV_CREATE_TABLES", value_parser = clap::builder::FalseyValueParser::new(), default_value_t = false)]
    pub dev_create_tables: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: `[serve] listen`, else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// The typed `[startup]` config section.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StartupConfig {
    strict: Option<bool>,
}

pub async fn checklist(g: &GlobalArgs, loaded: &Loaded, a: &ChecklistArgs) -> Result<ExitCode> {
    let rb = Runbook::load(loaded)?;
    let (target, _sandbox) = resolve_target(g, loaded).await?;
    let Some(name) = &a.name else {
        if a.run_checks || a.check.is_some() || a.confirm.is_some() || a.skip.is_some() || a.new {
            return Err(Error::Usage(
                "name the checklist, e.g. `pgshift checklist pre-deploy --run-checks`".into(),
            ));
        }
        let all = crate::runbook::overview(&rb, &target).await?;
        let paint = g.paint();
        return Ok(output::finish(
            g.format(),
            "checklist",
            &all,
            ExitCode::Ok,
            |out| {
                for c in &all {
                    writeln!(
                        out,
                        "{:<28} {:<12} {}",
                        c.name,
                        paint.word(&c.state),
                        c.title
                    )?;
                }
                writeln!(
                    out,
                    "\nWalk one with `pgshift checklist NAME --run-checks`."
                )
            },
        ));
    };
    rb.checklist(name)?;
    if a.new {
        crate::runbook::start_run(&rb, &target, name).await?;
    }
    let progress = crate::cli::progress_reporter(g);
    let reporter = progress.reporter();
    let result = async {
        if let (Some(item), Some(note)) = (&a.confirm, &a.note) {
            crate::runbook::confirm(&rb, &target, name, item, note).await?;
        }
        if let (Some(item), Some(reason)) = (&a.skip, &a.reason) {
            crate::runbook::skip(&rb, &target, name, item, reason).await?;
        }
        if let Some(item) = &a.check {
            crate::runbook::run_check(&rb, &target, name, item, reporter).await?;
        }
        if a.run_checks {
            crate::runbook::run_checks(&rb, &target, name, reporter).await?;
        }
        crate::runbook::view(&rb, &target, name).await
    }
    .await;
    progress.finish().await;
    let view = result?;
    let look = g.look(loaded)?;
    let code = match view.state {
        RunState::Passed => ExitCode::Ok,
        RunState::Failed => ExitCode::Failed,
        RunState::InProgress | RunState::NotStarted => ExitCode::Pending,
    };
    Ok(output::finish(
        g.format(),
        "checklist",
        &view,
        code,
        |out| render(out, &view, &look),
    ))
}

/// Human rendering of a checklist run, in the checklist overlay's words and colours.
pub fn render(out: &mut impl Write, v: &ChecklistView, look: &Look) -> std::io::Result<()> {
    writeln!(
        out,
        "{} ({}){}: {}",
        v.title,
        v.name,
        v.run_id.map(|r| format!(" run #{r}")).unwrap_or_default(),
        look.paint.word(&v.state)
    )?;
    if !v.when.is_empty() {
        writeln!(out, "{}", v.when)?;
    }
    writeln!(out)?;
    for i in &v.items {
        render_item(out, i, look)?;
    }
    let todo: Vec<&ItemView> = v.items.iter().filter(|i| !i.state.is_done()).collect();
    if let Some(next) = todo.first() {
        writeln!(out)?;
        match next.check {
            Some(_) if next.state == ItemState::Pending => {
                writeln!(out, "next: pgshift checklist {} --run-checks", v.name)?
            }
            _ => writeln!(
                out,
                "next: pgshift checklist {} --confirm {} --note '...'  (or --skip {} --reason '...')",
                v.name, next.id, next.id
            )?,
        }
    }
    Ok(())
}

/// `passed             auto wal-archiving  Confirm WAL archiving works`: the overlay's columns.
fn render_item(out: &mut impl Write, i: &ItemView, look: &Look) -> std::io::Result<()> {
    let shown = ItemShown {
        state: i.state,
        automatic: i.check.is_some(),
    };
    let auto = if shown.automatic { "auto" } else { "    " };
    writeln!(
        out,
        "{:<18} {auto} {:<20} {}",
        look.paint.word(&shown),
        i.id,
        i.text
    )?;
    if let (Some(who), Some(at)) = (&i.operator, &i.at) {
        writeln!(
            out,
            "      {} by {who} at {}",
            i.state.as_str(),
            look.clock.format(at)
        )?;
    }
    if i.state == ItemState::Pending && !i.help.is_empty() {
        writeln!(out, "      {}", i.help)?;
    }
    if let Some(e) = &i.evidence {
        for line in e.lines().take(40) {
            writeln!(out, "      {line}")?;
        }
    }
    Ok(())
}

pub async fn health(g: &GlobalArgs, loaded: &Loaded) -> Result<ExitCode> {
    let (target, _sandbox) = resolve_target(g, loaded).await?;
    let h = health::check(&target).await;
    let look = g.look(loaded)?;
    Ok(output::finish(
        g.format(),
        "health",
        &h,
        h.exit_code(),
        |out| health::render(out, &h, look.paint, &look.clock),
    ))
}

/// A reporter for `startup`: the runbook lines on stdout (what container log matchers watch),
/// everything else on stderr. With --json, all progress goes to stderr as JSON lines.
fn startup_reporter(g: &GlobalArgs) -> Sink {
    crate::cli::printing_reporter(g, |e| {
        matches!(e, Event::Log { message, .. }
            if message == RUNNING
                || message == COMPLETED
                || message == DEGRADED
                || message.starts_with(FAILED)
                || message.contains("DEV_CREATE_TABLES=true: created"))
    })
}

pub async fn startup(g: &GlobalArgs, loaded: &Loaded, a: &StartupArgs) -> Result<ExitCode> {
    let cfg_strict = match &loaded.file.startup {
        Some(t) => toml::Value::Table(t.clone())
            .try_into::<StartupConfig>()
            .map_err(|e| Error::Config {
                path: loaded.path.clone().unwrap_or_default(),
                message: format!("[startup]: {}", e.message()),
            })?
            .strict
            .unwrap_or(false),
        None => false,
    };
    let strict = a.strict || cfg_strict;
    let progress = startup_reporter(g);
    let reporter = progress.reporter();
    // An unusable target is a failed startup too: same lines, same degraded policy.
    let (target, _sandbox) = match resolve_target(g, loaded).await {
        Ok(t) => t,
        Err(e) => {
            reporter.log(Level::Info, RUNNING);
            reporter.log(Level::Error, format!("{FAILED}: {e}"));
            reporter.log(Level::Error, DEGRADED);
            progress.finish().await;
            if strict {
                return Err(e);
            }
            let doc = serde_json::json!({ "outcome": "degraded", "error": e.to_string(), "kind": e.kind() });
            return Ok(output::finish(
                g.format(),
                "startup",
                &doc,
                ExitCode::Ok,
                |_| Ok(()),
            ));
        }
    };
    // A container stop (SIGTERM) mid-migration: cancel the step, roll it back, audit, then stop.
    let (trigger, interrupt) = crate::interrupt::Interrupt::new();
    let on_signal = crate::interrupt::on_stop_signals(
        move |reason| trigger.fire_because(reason),
        "quitting: the step in progress is rolled back by the server",
    )
    .map_err(|e| Error::io("installing the signal handlers", e))?;
    let cfg = startup::Config {
        target,
        strict,
        dev_create_tables: a.dev_create_tables,
        checklists: Runbook::load(loaded).map_err(|e| e.to_string()).into(),
        interrupt,
    };
    let outcome = startup::run(&cfg, reporter).await;
    on_signal.abort();
    progress.finish().await;
    let code = output::finish(
        g.format(),
        "startup",
        &outcome,
        outcome.exit_code(cfg.strict),
        |_| Ok(()),
    );
    if g.format() == Format::Human
        && let startup::Outcome::Degraded {
            diagnosis: Some(f), ..
        }
        | startup::Outcome::DevTablesCreated {
            diagnosis: Some(f), ..
        } = &outcome
    {
        eprint!("{f}");
    }
    Ok(code)
}

pub async fn serve(g: &GlobalArgs, loaded: &Loaded, a: &ServeArgs) -> Result<ExitCode> {
    let sc = crate::serve::ServeConfig::from_loaded(loaded)?;
    let (target, _sandbox) = resolve_target(g, loaded).await?;
    let listen = a
        .listen
        .clone()
        .or_else(|| sc.listen.clone())
        .unwrap_or_else(|| crate::serve::DEFAULT_LISTEN.into());
    let token = sc.token()?;
    let listener = crate::serve::bind(&listen).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the bound address", e))?;
    if !crate::serve::is_loopback(&addr) {
        eprintln!(
            "warning: listening on {addr}, reachable from the network; prefer 127.0.0.1 behind a proxy"
        );
    }
    eprintln!(
        "pgshift serve: listening on http://{addr} for target {} ({})",
        target.name,
        target.conn.redacted()
    );
    if token.is_none() {
        eprintln!(
            "retry is disabled: set {} to a secret token to enable POST /admin/migrations/retry",
            sc.token_env()
        );
    }
    let state = Arc::new(crate::serve::AppState {
        target,
        checklists: Runbook::load(loaded).map_err(|e| e.to_string()).into(),
        token,
        token_env: sc.token_env().to_string(),
        hosts: crate::serve::HostPolicy::new(addr, sc.hosts.as_deref().unwrap_or_default()),
    });
    crate::serve::serve(listener, state).await?;
    Ok(ExitCode::Ok)
}

/// After a failed `up`: which runbook failure it is, and that section's solutions (stderr).
pub fn print_diagnosis(g: &GlobalArgs, target: &Target, e: &Error) {
    if g.format() == Format::Human
        && let Some(f) = crate::runbook::diagnose::from_error(e, target)
    {
        eprint!("{f}");
    }
}
