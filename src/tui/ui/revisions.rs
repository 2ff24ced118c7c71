//! The catalog with each revision's state: applied or pending, current and target, drift,
//! irreversible, no-transaction. `base` is the first row so `D` can go there.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use super::{cursor_style, pane_block, window};
use crate::marks::{Marked, RevisionMark};
use crate::ops::status::RevisionRow;
use crate::tui::app::{App, Pane};

pub fn draw(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let state = app.pane(Pane::Revisions);
    let extra = if app.status.is_none() {
        "(files only)"
    } else {
        ""
    };
    let block = pane_block(app, theme, Pane::Revisions, extra);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let focused = app.focus == Pane::Revisions;
    let lines: Vec<Line> = window(state.selected, state.visible.len(), inner.height as usize)
        .map(|i| {
            let row = &app.revisions[state.visible[i]];
            cursor_style(
                line(app, theme, row, inner.width),
                i == state.selected,
                focused,
            )
        })
        .collect();
    // One row per revision, never wrapped: the cursor and scrolling count rows.
    let rows = lines.len() as u16;
    f.render_widget(Paragraph::new(lines), inner);
    if app.revisions.len() == 1 && state.filter.is_empty() && rows < inner.height {
        let hint = Line::styled(
            format!(
                "no migrations in {}: add one with `pgshift new \"what it does\"`",
                app.target.migrations
            ),
            theme.dim(),
        );
        let below = Rect {
            y: inner.y + rows,
            height: inner.height - rows,
            ..inner
        };
        f.render_widget(
            Paragraph::new(hint).wrap(ratatui::widgets::Wrap { trim: false }),
            below,
        );
    }
}

fn line<'a>(app: &App, theme: &Theme, r: &'a RevisionRow, width: u16) -> Line<'a> {
    let g = theme.glyphs();
    let known = app.status.is_some();
    let current = app.current() == Some(r.revision);
    let mut spans = Vec::with_capacity(8);
    // The markers and their colours are `pgshift status`'s (`crate::marks`).
    let glyph = |m: RevisionMark| m.glyph(g).unwrap_or(" ");
    let state = if !known {
        RevisionMark::Unknown
    } else if r.applied {
        RevisionMark::Applied
    } else {
        RevisionMark::Pending
    };
    let (mark, style) = if r.revision.is_base() {
        (" ", theme.dim())
    } else {
        (glyph(state), theme.role(state.role()))
    };
    spans.push(Span::styled(format!("{mark} "), style));
    spans.push(Span::styled(
        format!("{:<4} ", r.revision.to_string()),
        if current {
            theme.title(false)
        } else {
            Default::default()
        },
    ));
    // Where we are and where we go, before the name so a narrow pane never clips it.
    let (mark, style) = match (current, app.target_rev == Some(r.revision)) {
        (true, _) => (glyph(RevisionMark::Current), theme.title(false)),
        (false, true) => (glyph(RevisionMark::Target), theme.focus()),
        _ => (" ", Default::default()),
    };
    spans.push(Span::styled(format!("{mark} "), style));
    // Flag slots keep their width when absent, so names line up.
    let slot = |on: bool, m: RevisionMark| {
        let w = unicode_width(glyph(m));
        if on {
            Span::styled(glyph(m), theme.role(m.role()))
        } else {
            Span::raw(" ".repeat(w))
        }
    };
    let base = r.revision.is_base();
    spans.push(slot(r.drift, RevisionMark::Drift));
    spans.push(slot(!r.reversible && !base, RevisionMark::Irreversible));
    spans.push(slot(r.no_transaction, RevisionMark::NoTransaction));
    spans.push(Span::raw(" "));
    let name_style = if base {
        theme.dim()
    } else if current {
        theme.title(false).add_modifier(Modifier::BOLD)
    } else {
        Default::default()
    };
    // A long name is cut with an ellipsis rather than wrapped onto the next row.
    let used: usize = spans.iter().map(Span::width).sum();
    let room = (width as usize).saturating_sub(used).max(1);
    let name = if r.out_of_order && !base {
        format!("{} ({})", r.name, RevisionMark::OutOfOrder.word())
    } else {
        r.name.clone()
    };
    spans.push(Span::styled(
        crate::output::one_line(&name, room),
        name_style,
    ));
    Line::from(spans)
}

fn unicode_width(s: &str) -> usize {
    ratatui::text::Span::raw(s).width()
}
