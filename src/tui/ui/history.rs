//! The audit trail, newest first, with the selected event's detail (error, SQLSTATE, steps) below.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::fit::{Part, fit};
use super::theme::Theme;
use super::{cursor_style, pane_block, window};
use crate::db::audit::Event;
use crate::marks::{Marked, OutcomeMark};
use crate::text::human_duration_ms;
use crate::tui::app::{App, Pane};

/// Lines kept for the detail of the selected event when the pane is tall enough.
const DETAIL_LINES: u16 = 3;

pub fn draw(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let state = app.pane(Pane::History);
    // Row times are in this zone (local unless --utc).
    let count = format!("{} events ({})", app.history.len(), app.clock.zone);
    let block = pane_block(app, theme, Pane::History, &count);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let detail_h = if inner.height > DETAIL_LINES + 2 {
        DETAIL_LINES
    } else {
        0
    };
    let [list, detail_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(detail_h)]).areas(inner);
    if let Some(e) = &app.history_error {
        f.render_widget(
            Paragraph::new(e.as_str())
                .style(theme.error())
                .wrap(Wrap { trim: true }),
            list,
        );
        return;
    }
    if app.history.is_empty() {
        f.render_widget(
            Paragraph::new("no audit events yet: pgshift has not changed this database")
                .style(theme.dim())
                .wrap(Wrap { trim: true }),
            list,
        );
        return;
    }
    let focused = app.focus == Pane::History;
    let lines: Vec<Line> = window(state.selected, state.visible.len(), list.height as usize)
        .map(|i| {
            cursor_style(
                row(app, theme, &app.history[state.visible[i]], list.width),
                i == state.selected,
                focused,
            )
        })
        .collect();
    f.render_widget(Paragraph::new(lines), list);
    if detail_h > 0
        && let Some(e) = app.selected_event()
    {
        f.render_widget(
            Paragraph::new(detail(app, theme, e))
                .style(theme.dim())
                .wrap(Wrap { trim: true }),
            detail_area,
        );
    }
}

fn rev(r: Option<crate::catalog::Revision>) -> String {
    r.map(|r| r.to_string()).unwrap_or_else(|| "-".into())
}

/// Below this width the day is dropped from the time.
const WITH_DAY: u16 = 60;

fn row<'a>(app: &App, theme: &Theme, e: &'a Event, width: u16) -> Line<'a> {
    let (word, style) = outcome(theme, e);
    let time = if width >= WITH_DAY {
        app.clock.short(&e.at)
    } else {
        app.clock.short(&e.at).split_off(6)
    };
    let mut parts = vec![
        Part::new(0, vec![Span::raw(format!("{time} "))]),
        Part::new(0, vec![Span::raw(format!("{:<6} ", e.action))]),
    ];
    if e.from_revision.is_some() || e.to_revision.is_some() {
        parts.push(Part::new(
            2,
            vec![Span::raw(format!(
                "{}→{} ",
                rev(e.from_revision),
                rev(e.to_revision)
            ))],
        ));
    }
    parts.push(Part::new(
        0,
        vec![Span::styled(format!("{word:<6}"), style)],
    ));
    // A duration is shown whole or not at all: `72ms` never becomes `72m`.
    if let Some(ms) = e.duration_ms {
        parts.push(Part::new(
            3,
            vec![Span::raw(format!(" {:>5}", human_duration_ms(ms)))],
        ));
    }
    parts.push(Part::elastic(4, Span::raw(format!(" {}", e.operator))));
    fit(parts, width as usize)
}

/// The outcome word and its style, as `pgshift history` prints it (`crate::marks`).
fn outcome(theme: &Theme, e: &Event) -> (&'static str, ratatui::style::Style) {
    let state = e.detail.get("state").and_then(|s| s.as_str());
    let mark = OutcomeMark::of(e.outcome.as_str(), state);
    (mark.word(), theme.role(mark.role()))
}

fn detail<'a>(app: &App, theme: &Theme, e: &'a Event) -> Vec<Line<'a>> {
    let mut lines = vec![Line::from(format!(
        "#{} {} as role {} at {} (Enter: all of it)",
        e.id,
        e.operator,
        e.db_role,
        app.clock.format(&e.at)
    ))];
    if let Some(err) = &e.error {
        let state = e
            .detail
            .get("sqlstate")
            .and_then(|s| s.as_str())
            .map(|s| format!("[{s}] "))
            .unwrap_or_default();
        lines.push(Line::styled(
            format!("{state}{}", crate::output::one_line(err, 300)),
            theme.error(),
        ));
    } else if let Some(pid) = e.detail.get("pid") {
        let query = e.detail.get("query").and_then(|q| q.as_str()).unwrap_or("");
        lines.push(Line::from(format!(
            "pid {pid}: {}",
            crate::output::one_line(query, 200)
        )));
    } else if let Some(steps) = e.detail.get("steps").and_then(|s| s.as_array()) {
        lines.push(Line::from(format!("{} step(s)", steps.len())));
    }
    lines
}
