//! The log pane (runbook lines, step progress, retries and their blockers, errors with the next
//! step) and the one-line status of what is running right now.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use super::{cursor_style, pane_block, window};
use crate::event::Level;
use crate::tui::app::{Activity, App, Health, Pane, Purpose, STATUS_MESSAGE_FOR};

pub fn draw(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let state = app.pane(Pane::Log);
    let block = pane_block(app, theme, Pane::Log, "");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let g = theme.glyphs();
    let focused = app.focus == Pane::Log;
    let lines: Vec<Line> = window(state.selected, state.visible.len(), inner.height as usize)
        .map(|i| {
            let l = &app.log[state.visible[i]];
            let line = match l.level {
                Level::Error => Line::from(vec![
                    Span::styled(format!("{} ", g.error), theme.error()),
                    Span::styled(l.text.as_str(), theme.error()),
                ]),
                Level::Warn => Line::from(vec![
                    Span::styled(format!("{} ", g.warn), theme.warn()),
                    Span::raw(l.text.as_str()),
                ]),
                Level::Info => Line::from(format!("  {}", l.text)),
            };
            cursor_style(line, i == state.selected && focused, focused)
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

pub fn status_line(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let line = match &app.activity {
        // Typing a `:` command: the line is its prompt, whatever runs.
        _ if app.command.is_some() => Line::from(vec![
            Span::styled(
                format!(":{}_", app.command.as_deref().unwrap_or("")),
                theme.title(true),
            ),
            Span::styled(
                format!(
                    "   {} · Enter runs · Esc drops",
                    crate::tui::app::command::COMMANDS
                ),
                theme.dim(),
            ),
        ]),
        Activity::Migrating(p) => migrating_line(p, theme, area.width),
        Activity::Planning(Purpose::Preview) => Line::from(" planning (preview, nothing runs)…"),
        Activity::Planning(Purpose::Confirm) => Line::from(" planning…"),
        Activity::Signalling(pid) => Line::from(format!(" signalling pid {pid}…")),
        Activity::Idle if app.filtering => {
            Line::from(" filter: type to narrow the pane, Enter keeps it, Esc clears it")
        }
        Activity::Idle if app.fleet.running() => super::fleet::status_line(app, theme),
        Activity::Idle
            if !app.backfills.local.is_empty() || app.backfills.dry_running.is_some() =>
        {
            super::backfills::status_line(app, theme)
        }
        Activity::Idle => match &app.health {
            Health::Unreachable { .. } => Line::styled(
                " database unreachable: showing the last known state (greyed); reconnecting",
                theme.error(),
            ),
            // The newest message shows for a while, then the line says ready again.
            _ => match app.log.back() {
                Some(l) if app.now.saturating_duration_since(l.at) < STATUS_MESSAGE_FOR => {
                    Line::from(format!(" {}", l.text))
                }
                _ => Line::from(" ready"),
            },
        },
    };
    // Production you cannot miss: the status line says so before anything else.
    let line = if app.target.environment.is_production() {
        let mut spans = vec![Span::styled(" PRODUCTION ", theme.production())];
        spans.extend(line.spans);
        Line::from(spans).style(line.style)
    } else {
        line
    };
    f.render_widget(Paragraph::new(line), area);
}

/// A running migration: what, the runner lock it waits for, the step, the attempt, the blocker,
/// the statement; most important first, since a narrow terminal cuts from the right.
fn migrating_line(p: &crate::tui::app::Progress, theme: &Theme, width: u16) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!(" {} {} → {} ", p.direction.verb(), p.from, p.to),
        theme.alarm(),
    )];
    if let Some(holder) = &p.waiting_for_runner {
        spans.push(Span::styled(
            format!(" waiting for the runner lock: {holder}"),
            theme.warn(),
        ));
    }
    if let Some((i, n, label)) = &p.step {
        // The label is `0004_name`; narrow screens keep the revision (the log has the name).
        let label = if width >= 120 {
            label.as_str()
        } else {
            label.split('_').next().unwrap_or(label)
        };
        spans.push(Span::raw(format!(" step {i}/{n} {label}")));
    }
    if let Some((a, n, reason)) = &p.attempt {
        spans.push(Span::styled(
            if width >= 120 {
                format!(" · attempt {a}/{n} {reason}")
            } else {
                format!(" · try {a}/{n}")
            },
            theme.warn(),
        ));
    }
    if let Some(b) = p.blockers.first() {
        spans.push(Span::styled(
            format!(" · blocked by pid {} ({})", b.pid, b.state),
            theme.error(),
        ));
    }
    // Most important first: a narrow terminal cuts from the right.
    if let Some(stmt) = &p.statement {
        spans.push(Span::raw(format!(" · {stmt}")));
    }
    Line::from(spans)
}
