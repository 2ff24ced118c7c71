//! Dialogs over the screen: the confirmation (exactly the SQL that will run; a production
//! downgrade needs the revision typed), the SQL preview, help, and quit-while-running.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};

use super::centered;
use super::fit::wrap_all;
use super::theme::Theme;
use crate::db::blockers::{Blocker, Signal};
use crate::plan::{Drift, Plan};
use crate::tui::app::{Activity, App, Confirm, Pending, Popup};
use crate::tui::keys::{self, Scope};

pub fn draw(app: &App, theme: &Theme, f: &mut Frame) {
    let Some(popup) = &app.popup else { return };
    match popup {
        Popup::Help { scroll } => help(theme, f, *scroll),
        Popup::Preview { preview, scroll } => {
            let plan = &preview.plan;
            let title = format!(
                " Plan: {} {} → {} (preview: nothing runs) ",
                plan.direction.verb(),
                plan.from,
                plan.to
            );
            let body = preview_body(preview, theme, f.area().width);
            dialog(
                f,
                theme,
                Line::from(title),
                body,
                *scroll,
                vec![Line::from(" Esc close · j/k scroll")],
                false,
            );
        }
        Popup::Confirm(c) => confirm(app, theme, f, c),
        Popup::Detail(d) => {
            let body = detail_body(d);
            dialog(
                f,
                theme,
                Line::styled(format!(" {} ", d.title), theme.title(true)),
                body,
                d.scroll,
                vec![Line::from(DETAIL_PROMPT)],
                false,
            );
        }
        Popup::Backfill(d) => super::backfills::dialog_for(app, theme, f, d),
        Popup::QuitWhileRunning => {
            let prompt = vec![Line::from(
                " y / Enter close the screen · n / Esc keep watching",
            )];
            dialog(
                f,
                theme,
                Line::from(" Quit while running? "),
                quit_while_running_body(app),
                0,
                prompt,
                true,
            );
        }
    }
}

/// What quitting now would leave behind, for the question before it.
fn quit_while_running_body(app: &App) -> Vec<Line<'static>> {
    match (&app.activity, &app.checklists.running) {
        (Activity::Migrating(p), _) => vec![
            Line::from(format!(
                "A {} {} → {} is running.",
                p.direction.verb(),
                p.from,
                p.to
            )),
            Line::from(
                "Quitting closes the screen; pgshift then waits on the terminal for the run",
            ),
            Line::from("to end so it is recorded. Ctrl-C there abandons it: the server rolls back"),
            Line::from("the step in progress; finished steps stay applied."),
        ],
        _ if let Some(r) = app.fleet.rollout.as_ref().filter(|r| r.running) => vec![
            Line::from(format!(
                "A fleet {} is running and no longer launches new targets.",
                r.job.label()
            )),
            Line::from(format!(
                "Quitting closes the screen; pgshift then waits on the terminal for the running targets to {} so they are recorded. Ctrl-C there abandons them: their servers roll back what is in progress.",
                r.job.on_stop()
            )),
        ],
        (_, Some(run)) => vec![
            Line::from(format!(
                "The {} checklist's {} is running.",
                run.checklist,
                run.item.as_deref().unwrap_or("new run")
            )),
            Line::from("Quitting abandons it: nothing is recorded for it. An abandoned"),
            Line::from("local-testing rehearsal may leave its pgshift_scratch_* database"),
            Line::from("behind (DROP DATABASE it by hand)."),
        ],
        _ => vec![Line::from("An action is running.")],
    }
}

/// The steps of a plan and their SQL, verbatim.
pub fn plan_lines(plan: &Plan) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if plan.steps.is_empty() {
        lines.push(Line::from(format!(
            "nothing to do: the database is at {}",
            plan.from
        )));
    }
    if let Some(note) = plan.out_of_order_note() {
        lines.push(Line::from(note));
    }
    for (i, s) in plan.steps.iter().enumerate() {
        let tx = s.how();
        lines.push(Line::from(format!(
            "-- step {}/{}: {} {} ({tx})",
            i + 1,
            plan.steps.len(),
            s.direction.verb(),
            s.label()
        )));
        lines.extend(s.sql.lines().map(|l| Line::from(l.to_string())));
        lines.push(Line::from(""));
    }
    lines
}

const DETAIL_PROMPT: &str = " c copy (OSC 52) · j/k scroll · Esc close";

fn detail_body(d: &crate::tui::app::detail::Detail) -> Vec<Line<'static>> {
    d.lines.iter().map(|l| Line::from(l.clone())).collect()
}

/// A dialog's parts before drawing.
struct Content {
    title: Line<'static>,
    body: Vec<Line<'static>>,
    prompt: Vec<Line<'static>>,
    alarm: bool,
}

fn confirm(app: &App, theme: &Theme, f: &mut Frame, c: &Confirm) {
    let d = confirm_content(app, theme, c, f.area().width);
    dialog(f, theme, d.title, d.body, c.scroll, d.prompt, d.alarm);
}

fn confirm_content(app: &App, theme: &Theme, c: &Confirm, width: u16) -> Content {
    let production = match &c.pending {
        Pending::Fleet(plan) => plan.confirmation.production > 0,
        _ => app.target.environment.is_production(),
    };
    let mut title = vec![];
    if production {
        title.push(Span::styled(" PRODUCTION ", theme.production()));
    }
    let (heading, body, destructive) = match &c.pending {
        Pending::Migrate(preview) => {
            let plan = &preview.plan;
            let body = preview_body(preview, theme, width);
            (
                format!(
                    " {} {} → {} on {}: this SQL will run ",
                    plan.direction.verb(),
                    plan.from,
                    plan.to,
                    app.target.name
                ),
                body,
                plan.is_destructive(),
            )
        }
        Pending::Fleet(plan) => (
            format!(
                " fleet {}: {} ",
                plan.job.label(),
                crate::tui::app::fleet::group_name(plan.group.as_deref())
            ),
            fleet_body(plan),
            false,
        ),
        Pending::Accept { revision, drift } => (
            format!(" accept {revision} on {}? ", app.target.name),
            accept_body(drift),
            false,
        ),
        Pending::Signal { blocker, signal } => (
            format!(" {} pid {}? ", signal.verb(), blocker.pid),
            signal_body(blocker, *signal, theme),
            true,
        ),
    };
    title.push(Span::styled(
        heading,
        if destructive {
            theme.error()
        } else {
            theme.title(true)
        },
    ));
    let mut body = body;
    if let Some(note) = &c.note {
        body.insert(0, Line::from(""));
        body.insert(0, Line::styled(note.clone(), theme.warn()));
    }
    Content {
        title: Line::from(title),
        body,
        prompt: confirm_prompt(c, theme, destructive),
        alarm: destructive,
    }
}

/// Each drifted file with its diff, and what accepting does.
fn accept_body(drift: &[Drift]) -> Vec<Line<'static>> {
    let mut body = Vec::new();
    for d in drift {
        body.push(Line::from(d.to_string()));
        let mut diff = Vec::new();
        crate::output::drift_diff(&mut diff, d).ok();
        body.extend(
            String::from_utf8_lossy(&diff)
                .lines()
                .map(|l| Line::from(l.to_string())),
        );
    }
    body.push(Line::from(""));
    body.push(Line::from(
        "The files become the applied version: history takes the new checksum. No migration SQL runs; audited with both checksums.",
    ));
    body
}

/// The session about to be cancelled or terminated, and the SQL that does it.
fn signal_body(b: &Blocker, signal: Signal, theme: &Theme) -> Vec<Line<'static>> {
    let age = b
        .xact_age_s
        .map(super::age)
        .map(|a| format!(", transaction open {a}"))
        .unwrap_or_default();
    let mut body = vec![
        Line::from(format!(
            "pid {}  user {}  application {:?}",
            b.pid, b.user, b.application
        )),
        Line::from(format!("state {}{age}", b.state)),
        Line::from("query:"),
    ];
    body.extend(b.query.lines().map(|l| Line::from(format!("  {l}"))));
    body.push(Line::from(""));
    body.push(Line::from("runs:"));
    body.push(Line::styled(
        format!("  {}", signal.sql(b.pid)),
        theme.title(false),
    ));
    body.push(Line::from("The outcome is written to pgshift_events."));
    body
}

/// The dialog's last lines: the word to type on production, a refusal, or the keys.
fn confirm_prompt(c: &Confirm, theme: &Theme, destructive: bool) -> Vec<Line<'static>> {
    match &c.must_type {
        Some(want) => vec![
            Line::styled(
                format!(" Type {want} and press Enter to run it. Esc cancels."),
                theme.warn(),
            ),
            Line::from(vec![
                Span::raw(" > "),
                Span::styled(format!("{}_", c.typed), theme.title(true)),
            ]),
        ],
        None if refused(c) => vec![Line::styled(
            " REFUSED: y records the attempt (nothing runs) · n / Esc cancel · j/k scroll",
            theme.error(),
        )],
        None if destructive => vec![Line::from(" y run it · n / Esc cancel · j/k scroll")],
        None => vec![Line::from(
            " y / Enter run it · n / Esc cancel · j/k scroll",
        )],
    }
}

/// What a fleet rollout will do, as `pgshift fleet up` shows it, and how it can be stopped.
fn fleet_body(plan: &crate::tui::app::FleetPlan) -> Vec<Line<'static>> {
    let c = &plan.confirmation;
    let production = if c.production > 0 {
        format!(", {} of them PRODUCTION", c.production)
    } else {
        String::new()
    };
    use crate::tui::app::FleetJob;
    let (does, run, running) = match &plan.job {
        FleetJob::Up(_) => (
            "upgrades".to_string(),
            "the normal guarded run (its runner lock, lint and checklist gates",
            "running ones finish their step",
        ),
        FleetJob::Backfill(name) => (
            format!("runs backfill {name} on"),
            "the normal batched, resumable backfill (its locks and throttles",
            "running ones pause after their batch",
        ),
    };
    let mut body = vec![
        Line::from(format!(
            "This rollout {does} {} of {} target(s){production}: the canary (the first target with work) first, then the rest, {} at a time; no new target starts after a failure.",
            c.with_work,
            plan.targets,
            crate::fleet::rollout::DEFAULT_PARALLEL
        )),
        Line::from(format!(
            "Each target's run is {run}, an audit row tagged {}).",
            plan.id
        )),
        Line::from(""),
    ];
    body.extend(plan.text.lines().map(|l| Line::from(l.to_string())));
    body.push(Line::from(""));
    body.push(Line::from(format!(
        "While it runs, Esc (or q / Ctrl-C) stops launching new targets; {running}."
    )));
    body
}

/// How far the open dialog scrolls on a `width`×`height` screen before its last line is at the
/// bottom (`j` stops there). `None` when the dialog does not scroll.
pub fn scroll_limit(app: &App, width: u16, height: u16) -> Option<u16> {
    let theme = Theme::of(app);
    let (rows, prompt) = match app.popup.as_ref()? {
        Popup::Help { .. } => (help_lines(&theme, width).len(), 0),
        Popup::Detail(d) => (wrapped_rows(detail_body(d), width), 1),
        Popup::Preview { preview, .. } => {
            (wrapped_rows(preview_body(preview, &theme, width), width), 1)
        }
        Popup::Confirm(c) => {
            let d = confirm_content(app, &theme, c, width);
            (wrapped_rows(d.body, width), d.prompt.len())
        }
        Popup::Backfill(_) | Popup::QuitWhileRunning => return None,
    };
    // The dialog's height: its content, at most the screen less a margin, less frame and prompt.
    let shown = (rows + prompt + 3).min(height.saturating_sub(2) as usize);
    let text = shown.saturating_sub(2 + prompt) as u16;
    Some(body_scroll_limit(rows, text))
}

fn wrapped_rows(body: Vec<Line<'_>>, width: u16) -> usize {
    let inner_w = DIALOG_WIDTH.min(width.saturating_sub(2)).saturating_sub(2);
    wrap_all(&body, inner_w as usize, 2).len()
}

/// Widest a dialog gets; narrower screens get all but a column each side.
const DIALOG_WIDTH: u16 = 100;

/// A framed dialog: the body wraps (SQL and long lines are never cut; continuation lines keep
/// their indent) and scrolls, stopping at its end; the prompt stays at the bottom.
/// A gate will refuse the confirmed run (it is checked again, and audited, when it runs).
fn refused(c: &Confirm) -> bool {
    matches!(&c.pending, Pending::Migrate(p) if p.verdict.is_refused())
}

/// The text width inside a [`dialog`] on a screen `width` columns wide.
fn body_width(width: u16) -> usize {
    usize::from(DIALOG_WIDTH.min(width.saturating_sub(2)).saturating_sub(2))
}

/// A preview's body: what the gates say, then the plan's SQL.
fn preview_body(
    preview: &crate::ops::migrate::Preview,
    theme: &Theme,
    width: u16,
) -> Vec<Line<'static>> {
    let mut body = super::gates::lines(&preview.verdict, theme, body_width(width));
    body.extend(plan_lines(&preview.plan));
    body
}

pub(super) fn dialog(
    f: &mut Frame,
    theme: &Theme,
    title: Line,
    body: Vec<Line>,
    scroll: u16,
    prompt: Vec<Line>,
    alarm: bool,
) {
    let screen = f.area();
    let inner_w = DIALOG_WIDTH
        .min(screen.width.saturating_sub(2))
        .saturating_sub(2);
    let body = wrap_all(&body, inner_w as usize, 2);
    let area = centered(screen, DIALOG_WIDTH, (body.len() + prompt.len() + 3) as u16);
    f.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(if alarm { theme.error() } else { theme.focus() })
        .title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [text, bottom] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(prompt.len() as u16)])
            .areas(inner);
    let scroll = scroll.min(body_scroll_limit(body.len(), text.height));
    f.render_widget(Paragraph::new(body).scroll((scroll, 0)), text);
    f.render_widget(Paragraph::new(prompt), bottom);
}

/// The furthest a body of `rows` wrapped rows scrolls in `height` rows: its last row at the bottom.
pub fn body_scroll_limit(rows: usize, height: u16) -> u16 {
    rows.saturating_sub(height as usize).min(u16::MAX as usize) as u16
}

const HELP_WIDTH: u16 = 110;
/// Columns between a help line's indent and its description (`keys` padded to 14).
const HELP_KEYS: usize = 14;

/// The help overlay's lines, wrapped to `width` (continuations under the description column).
fn help_lines(theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let g = theme.glyphs();
    let mut lines = Vec::new();
    for scope in [Scope::Main, Scope::Checklist, Scope::Dialog] {
        lines.push(Line::styled(scope.title(), theme.title(true)));
        for (s, keys, text) in keys::help() {
            if s == scope {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {keys:<14}"), theme.title(false)),
                    Span::raw(text),
                ]));
            }
        }
        lines.push(Line::from(""));
    }
    lines.push(Line::styled("Revision markers", theme.title(true)));
    lines.push(Line::from(format!(
        "  {} applied  {} pending  {} drift  {} irreversible (no down file)  {} no-transaction",
        g.applied, g.pending, g.drift, g.irreversible, g.no_transaction
    )));
    lines.push(Line::from(format!(
        "  {} current revision  {} target revision (t / Enter sets it; u goes there)",
        g.current, g.target
    )));
    lines.push(Line::from(
        "  health: OK, DEGRADED (needs attention), UNREACHABLE (greyed: last known state)",
    ));
    let inner_w = HELP_WIDTH.min(width.saturating_sub(2)).saturating_sub(2);
    wrap_all(&lines, inner_w as usize, HELP_KEYS)
}

fn help(theme: &Theme, f: &mut Frame, scroll: u16) {
    let lines = help_lines(theme, f.area().width);
    let area = centered(f.area(), HELP_WIDTH, lines.len() as u16 + 3);
    f.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(theme.focus())
        .title(" Help (Esc closes, j/k scroll) ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let scroll = scroll.min(body_scroll_limit(lines.len(), inner.height));
    f.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
}
