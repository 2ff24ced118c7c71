//! `pgshift backfill ...`: arguments, dispatch to the core functions, and human rendering.
//! Progress goes to stderr: one line updated in place on a terminal, plain lines otherwise, JSON
//! lines with `--json`. Ctrl-C pauses after the current batch and saves the cursor.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Args;

use crate::backfill::{Control, DryRun, Ended, Mode, Options, Overview, RunReport, Shown};
use crate::catalog::Catalog;
use crate::cli::GlobalArgs;
use crate::config::Target;
use crate::error::{Error, ExitCode, Result};
use crate::event::{Event, Handle, Sink};
use crate::marks::{Paint, Role};
use crate::output::{self, human_duration_ms, one_line};
use crate::text::{count, percent};

/// Arguments of `pgshift backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Backfills to run (default: all, in the order of migrations/backfills/ORDER), or one of
    /// `status`, `pause NAME`, `resume NAME`, `cancel NAME`
    #[arg(value_name = "NAME")]
    pub words: Vec<String>,
    /// Count, preview a sample batch and estimate the duration; changes nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Keys per batch, fixed [default: the definition's, then adapted toward ~50 ms batches]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: Option<u32>,
    /// Pause between batches, in ms or with a unit (e.g. 50 or 50ms) [default: the definition's]
    #[arg(long, value_name = "MS", value_parser = pause_value)]
    pub pause: Option<Duration>,
}

pub(crate) fn pause_value(s: &str) -> std::result::Result<Duration, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Duration::from_millis)
            .map_err(|e| e.to_string());
    }
    crate::config::parse_duration(s)
}

/// What the words ask for.
#[derive(Debug, PartialEq, Eq)]
enum Action<'a> {
    Run(Vec<&'a str>),
    Status,
    Pause(&'a str),
    Resume(&'a str),
    Cancel(&'a str),
}

fn action(words: &[String]) -> Result<Action<'_>> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let one = |verb: &str| match &w[1..] {
        [name] => Ok(*name),
        _ => Err(Error::Usage(format!(
            "usage: pgshift backfill {verb} NAME (exactly one backfill)"
        ))),
    };
    Ok(match w.first().copied() {
        Some("status") if w.len() == 1 => Action::Status,
        Some("status") => {
            return Err(Error::Usage(
                "usage: pgshift backfill status (it lists every backfill)".into(),
            ));
        }
        Some("pause") => Action::Pause(one("pause")?),
        Some("resume") => Action::Resume(one("resume")?),
        Some("cancel") => Action::Cancel(one("cancel")?),
        _ => Action::Run(w),
    })
}

pub async fn command(
    g: &GlobalArgs,
    target: &Target,
    catalog: &Catalog,
    a: &BackfillArgs,
) -> Result<ExitCode> {
    let registry = crate::backfill::registry(target, catalog)?;
    let act = action(&a.words)?;
    let opts = Options {
        batch_size: a.batch_size,
        pause: a.pause,
    };
    if a.dry_run && !matches!(act, Action::Run(_)) {
        return Err(Error::Usage(
            "--dry-run goes with `pgshift backfill [NAME...]`".into(),
        ));
    }
    match act {
        Action::Status => {
            let rows = crate::backfill::overview(target, &registry).await?;
            print(g, "backfill status", &rows, true, |out| {
                status(out, &rows, g.paint())
            })
        }
        Action::Pause(name) | Action::Cancel(name) => {
            registry.get(name)?;
            let r = if matches!(act, Action::Pause(_)) {
                crate::backfill::pause(target, name).await?
            } else {
                crate::backfill::cancel(target, name).await?
            };
            let verb = if matches!(act, Action::Pause(_)) {
                "backfill pause"
            } else {
                "backfill cancel"
            };
            print(g, verb, &r, true, |out| writeln!(out, "{}", r.message))
        }
        Action::Resume(name) => run_names(g, target, &registry, &[name], &opts, Mode::Resume).await,
        Action::Run(names) => {
            let names: Vec<String> = if names.is_empty() {
                registry.names()
            } else {
                names.iter().map(|n| n.to_string()).collect()
            };
            for n in &names {
                registry.get(n)?;
            }
            if names.is_empty() {
                return Err(Error::Usage(format!(
                    "no backfills are defined in {}",
                    registry.dir.display()
                )));
            }
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            if a.dry_run {
                dry_runs(g, target, &registry, &names, &opts).await
            } else {
                run_names(g, target, &registry, &names, &opts, Mode::Run).await
            }
        }
    }
}

/// The JSON document (`ok` follows the exit code: a run that ended paused or cancelled exits 1)
/// or human text.
fn print<T: serde::Serialize>(
    g: &GlobalArgs,
    command: &str,
    value: &T,
    ok: bool,
    human: impl FnOnce(&mut output::Out) -> std::io::Result<()>,
) -> Result<ExitCode> {
    let code = if ok { ExitCode::Ok } else { ExitCode::Failed };
    Ok(output::finish(g.format(), command, value, code, human))
}

async fn dry_runs(
    g: &GlobalArgs,
    target: &Target,
    registry: &crate::backfill::Registry,
    names: &[&str],
    opts: &Options,
) -> Result<ExitCode> {
    let progress = printer(g);
    let mut results = Vec::new();
    let mut failure = None;
    for name in names {
        match crate::backfill::dry_run(target, registry, name, opts, progress.reporter()).await {
            Ok(r) => results.push(r),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    progress.finish().await;
    if let Some(e) = failure {
        return Err(e);
    }
    print(g, "backfill dry-run", &results, true, |out| {
        for r in &results {
            dry_run_text(out, r, g.paint())?;
        }
        writeln!(out, "dry run: nothing was changed")
    })
}

async fn run_names(
    g: &GlobalArgs,
    target: &Target,
    registry: &crate::backfill::Registry,
    names: &[&str],
    opts: &Options,
    mode: Mode,
) -> Result<ExitCode> {
    let control = Control::default();
    let pause = control.clone();
    // First Ctrl-C: pause after the current batch. A second one quits at once (the open batch is
    // rolled back by the server; the saved cursor is from the batch before).
    let ctrl_c = crate::cli::on_ctrl_c(
        move || {
            pause.request_pause();
            eprintln!(
                "\npausing after the current batch and saving the cursor (Ctrl-C again to quit at once)..."
            );
        },
        "quitting: the batch in progress is rolled back; resume with `pgshift backfill resume NAME`",
    )?;
    let progress = printer(g);
    let reporter = progress.reporter();
    let mut reports: Vec<RunReport> = Vec::new();
    let mut failure = None;
    for name in names {
        let r =
            crate::backfill::start(target, registry, name, opts, mode, &control, reporter).await;
        match r {
            Ok(r) => {
                let complete = r.is_complete();
                reports.push(r);
                if !complete {
                    break; // paused or cancelled: the rest waits too, as `make backfill` would stop
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    ctrl_c.abort();
    progress.finish().await;
    if let Some(e) = failure {
        return Err(e);
    }
    let ok = reports.iter().all(RunReport::is_complete);
    print(
        g,
        match mode {
            Mode::Resume => "backfill resume",
            Mode::Run => "backfill",
        },
        &reports,
        ok,
        |out| {
            for r in &reports {
                run_text(out, r, g.paint())?;
            }
            Ok(())
        },
    )
}

/// Progress on stderr: JSON lines, or human lines with the progress line redrawn in place on a
/// terminal (and printed at most every 5 s otherwise, so logs stay readable).
fn printer(g: &GlobalArgs) -> Sink {
    Sink::spawn(Printer {
        json: g.json,
        tty: std::io::stderr().is_terminal(),
        last_plain: None,
        last_wait: None,
        open_line: false,
    })
}

struct Printer {
    json: bool,
    tty: bool,
    last_plain: Option<Instant>,
    last_wait: Option<Instant>,
    /// A progress line was drawn without its newline.
    open_line: bool,
}

impl Handle for Printer {
    fn event(&mut self, e: Event) {
        let mut err = std::io::stderr().lock();
        if self.json {
            if let Ok(line) = serde_json::to_string(&e) {
                writeln!(err, "{line}").ok();
            }
            return;
        }
        let Some(line) = output::event_line(&e) else {
            return;
        };
        // A replica wait is a progress line too (redrawn in place; at most every 5 s in logs).
        let wait = matches!(e, Event::ReplicaWait { .. });
        if wait && !self.tty {
            if self
                .last_wait
                .is_some_and(|t| t.elapsed() < Duration::from_secs(5))
            {
                return;
            }
            self.last_wait = Some(Instant::now());
        }
        let progress = wait || matches!(e, Event::BackfillProgress { .. });
        if progress && self.tty {
            write!(err, "\r\x1b[2K{line}").ok();
            err.flush().ok();
            self.open_line = true;
            return;
        }
        if progress
            && !wait
            && self
                .last_plain
                .is_some_and(|t| t.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        if progress && !wait {
            self.last_plain = Some(Instant::now());
        }
        if self.open_line {
            writeln!(err).ok();
            self.open_line = false;
        }
        writeln!(err, "{line}").ok();
    }

    fn end(&mut self) {
        if self.open_line {
            writeln!(std::io::stderr()).ok();
        }
    }
}

/// How a run ended: the state in the Backfills pane's word and colour, numbers as it shows them.
fn run_text(out: &mut impl Write, r: &RunReport, paint: Paint) -> std::io::Result<()> {
    match r.state {
        Ended::UpToDate => writeln!(
            out,
            "{}: {}, nothing to do",
            r.name,
            paint.role(Role::Ok, "up to date")
        ),
        Ended::Run(state) => writeln!(
            out,
            "{}: run #{} {}: {} rows this time ({} in the run), {} batches, p50 {}, max {}, {} retries, {}{}",
            r.name,
            r.run_id.unwrap_or_default(),
            paint.word(&Shown::from(state)),
            count(r.rows),
            count(r.rows_total),
            count(r.batches),
            human_duration_ms(r.batch_ms_p50 as i64),
            human_duration_ms(r.batch_ms_max as i64),
            r.retries,
            human_duration_ms(i64::try_from(r.duration_ms).unwrap_or(i64::MAX)),
            r.next
                .as_ref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default()
        ),
    }
}

fn dry_run_text(out: &mut impl Write, r: &DryRun, paint: Paint) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {} (table {})",
        paint.role(Role::Strong, &r.name),
        r.description,
        r.table
    )?;
    writeln!(
        out,
        "  rows to do      {} (count query); table has about {} rows (pg_class)",
        count(r.rows_to_do),
        r.table_rows_estimate
            .map(count)
            .unwrap_or_else(|| "? (never analyzed)".into())
    )?;
    if let Some(id) = r.continues_run {
        writeln!(
            out,
            "  continues       run #{id} after key {}",
            r.from_key.as_deref().unwrap_or("(start)")
        )?;
    }
    match &r.sample {
        Some(s) => writeln!(
            out,
            "  sample batch    keys {} to {}: {} rows changed in {} (rolled back)",
            s.lower
                .as_deref()
                .map_or("from the first".to_string(), |l| format!("after {l}")),
            s.upper,
            count(s.rows_changed),
            human_duration_ms(s.ms.round() as i64)
        )?,
        None => writeln!(
            out,
            "  sample batch    none: no keys left after {}",
            r.from_key.as_deref().unwrap_or("(start)")
        )?,
    }
    writeln!(
        out,
        "  estimate        {} batches of {} with {} pause: about {}",
        count(r.batches),
        count(r.batch_size),
        human_duration_ms(r.pause_ms as i64),
        human_duration_ms((r.estimated_s * 1000.0).round() as i64)
    )?;
    for (label, rows) in [("before", &r.preview_before), ("after", &r.preview_after)] {
        if rows.is_empty() && r.preview_before.is_empty() {
            continue;
        }
        writeln!(out, "  preview {label}:")?;
        if rows.is_empty() {
            writeln!(out, "    (no rows)")?;
        }
        for row in rows {
            writeln!(out, "    {}", one_line(&row.to_string(), 160))?;
        }
    }
    writeln!(out)
}

/// The Backfills pane as a table: the same state words and colours, counts with separators,
/// percentages that never round up to 100 % before the end, rates per second, the same ETA.
pub(crate) fn status(out: &mut impl Write, rows: &[Overview], paint: Paint) -> std::io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "no backfills defined (migrations/backfills/)");
    }
    writeln!(
        out,
        "{:<12} {:<12} {:>24}  {:>11}  {:>7}  last error",
        "NAME", "STATE", "ROWS", "RATE", "ETA"
    )?;
    for r in rows {
        let rows_text = match (r.rows_estimate, r.fraction) {
            (Some(e), f @ Some(_)) => {
                format!("{}/{} {}", count(r.rows_done), count(e), percent(f))
            }
            _ if r.run.is_some() => count(r.rows_done),
            _ => "-".into(),
        };
        let rate = if r.state == Shown::Running && r.rate > 0.0 {
            format!("{}/s", count(r.rate.round() as i64))
        } else {
            "-".into()
        };
        writeln!(
            out,
            "{:<12} {:<12} {:>24}  {:>11}  {:>7}  {}",
            r.name,
            paint.word(&r.state),
            rows_text,
            rate,
            r.state.eta(r.eta_s),
            paint.role(
                Role::Error,
                r.last_error
                    .as_deref()
                    .map(|e| one_line(e, 60))
                    .unwrap_or_default()
            )
        )?;
        if let Some(h) = &r.holder {
            writeln!(out, "{:<12} run by {h}", "")?;
        }
        if r.state == Shown::Interrupted {
            writeln!(
                out,
                "{:<12} its process is gone; continue with `pgshift backfill resume {}`",
                "", r.name
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn progress_and_stop_events_read_as_one_line_each() {
        let progress = Event::BackfillProgress {
            name: "hashes".into(),
            rows_done: 12_000,
            rows_estimate: 50_000,
            rate: 3400.0,
            eta_s: Some(11.2),
            batch_ms_p50: 42,
            batch_ms_max: 88,
            batch_size: 5000,
            batches: 3,
            retries: 1,
        };
        assert_eq!(
            output::event_line(&progress).unwrap(),
            "backfill hashes  12,000/50,000 rows  24%  3,400/s  ETA 11s  batch p50 42ms max 88ms (size 5,000)  1 retries"
        );
        let stopped = Event::BackfillStopped {
            name: "hashes".into(),
            run_id: 7,
            state: crate::backfill::RunState::Paused,
            rows_done: 12_000,
            elapsed: Duration::from_secs(75),
            next: Some("resume with `pgshift backfill resume hashes`".into()),
        };
        assert_eq!(
            output::event_line(&stopped).unwrap(),
            "backfill hashes: run #7 paused after 12,000 rows in 1m15s; resume with `pgshift backfill resume hashes`"
        );
    }

    #[test]
    fn words_parse_into_actions() {
        assert_eq!(action(&words(&[])).unwrap(), Action::Run(vec![]));
        assert_eq!(
            action(&words(&["hashes", "cleanup"])).unwrap(),
            Action::Run(vec!["hashes", "cleanup"])
        );
        assert_eq!(action(&words(&["status"])).unwrap(), Action::Status);
        assert_eq!(
            action(&words(&["resume", "hashes"])).unwrap(),
            Action::Resume("hashes")
        );
        assert!(action(&words(&["cancel"])).is_err());
        assert!(action(&words(&["pause", "a", "b"])).is_err());
        assert_eq!(pause_value("50").unwrap(), Duration::from_millis(50));
        assert_eq!(pause_value("1s").unwrap(), Duration::from_secs(1));
    }
}
