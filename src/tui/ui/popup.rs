//! Dialogs over the screen: the confirmation (exactly the SQL that will run; a production
//! downgrade needs the revision typed), the SQL preview, help, and quit-while-running.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

use super::centered;
use super::theme::Theme;
use crate::plan::Plan;
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
            let mut body = super::gates::lines(&preview.verdict, theme, body_width(f));
            body.extend(plan_lines(plan));
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
        Popup::Backfill(d) => super::backfills::dialog_for(app, theme, f, d),
        Popup::QuitWhileRunning => {
            let body = match (&app.activity, &app.checklists.running) {
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
                    Line::from(
                        "to end so it is recorded. Ctrl-C there abandons it: the server rolls back",
                    ),
                    Line::from("the step in progress; finished steps stay applied."),
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
            };
            let prompt = vec![Line::from(
                " y / Enter close the screen · n / Esc keep watching",
            )];
            dialog(
                f,
                theme,
                Line::from(" Quit while running? "),
                body,
                0,
                prompt,
                true,
            );
        }
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
    for (i, s) in plan.steps.iter().enumerate() {
        let tx = if s.no_transaction {
            "no transaction, statement by statement"
        } else {
            "one transaction"
        };
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

fn confirm(app: &App, theme: &Theme, f: &mut Frame, c: &Confirm) {
    let production = app.target.environment.is_production();
    let mut title = vec![];
    if production {
        title.push(Span::styled(" PRODUCTION ", theme.production()));
    }
    let (heading, body, destructive) = match &c.pending {
        Pending::Migrate(preview) => {
            let plan = &preview.plan;
            let mut body = super::gates::lines(&preview.verdict, theme, body_width(f));
            body.extend(plan_lines(plan));
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
        Pending::Signal { blocker: b, signal } => {
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
            (format!(" {} pid {}? ", signal.verb(), b.pid), body, true)
        }
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
    let prompt = match &c.must_type {
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
    };
    dialog(
        f,
        theme,
        Line::from(title),
        body,
        c.scroll,
        prompt,
        destructive,
    );
}

/// A gate will refuse the confirmed run (it is checked again, and audited, when it runs).
fn refused(c: &Confirm) -> bool {
    matches!(&c.pending, Pending::Migrate(p) if p.verdict.is_refused())
}

/// The text width inside a [`dialog`] on this frame.
fn body_width(f: &Frame) -> usize {
    usize::from(centered(f.area(), 100, 1).width.saturating_sub(2))
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
    let area = centered(f.area(), 100, (body.len() + prompt.len() + 3) as u16);
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
    f.render_widget(Paragraph::new(body).scroll((scroll, 0)), text);
    f.render_widget(Paragraph::new(prompt), bottom);
}

fn help(theme: &Theme, f: &mut Frame, scroll: u16) {
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
    let area = centered(f.area(), 110, lines.len() as u16 + 3);
    f.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(theme.focus())
        .title(" Help (Esc closes, j/k scroll) ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        inner,
    );
}
