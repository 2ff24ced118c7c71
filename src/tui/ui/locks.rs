//! Live lock conflicts from the monitoring connection: each waiter, then the sessions blocking it
//! (idle in transaction called out). pgshift's own waits are highlighted. `C`/`K` act on the
//! blocker under the cursor.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use super::{age, cursor_style, pane_block, window};
use crate::db::blockers::{Blocker, Conflict};
use crate::output::one_line;
use crate::tui::app::{App, LockRow, Pane};

pub fn draw(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let state = app.pane(Pane::Locks);
    let extra = match app.conflicts.len() {
        0 => String::new(),
        n => format!("{n} waiting"),
    };
    let block = pane_block(app, theme, Pane::Locks, &extra);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if app.conflicts.is_empty() {
        let text = if app.health.is_unreachable() {
            "unknown: the database is unreachable"
        } else if app.status.is_some() {
            "no session is waiting for a lock"
        } else {
            "waiting for the monitor…"
        };
        f.render_widget(Paragraph::new(text).style(theme.dim()), inner);
        return;
    }
    let focused = app.focus == Pane::Locks;
    let width = inner.width as usize;
    let lines: Vec<Line> = window(state.selected, state.visible.len(), inner.height as usize)
        .filter_map(|i| {
            let r = app.lock_rows[state.visible[i]];
            Some(cursor_style(
                line(theme, &app.conflicts[r.conflict], r, width)?,
                i == state.selected,
                focused,
            ))
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

/// Our runner and its monitor set `application_name` to `pgshift ...`.
fn is_ours(b: &Blocker) -> bool {
    b.application.starts_with("pgshift")
}

fn line<'a>(theme: &Theme, c: &'a Conflict, r: LockRow, width: usize) -> Option<Line<'a>> {
    let g = theme.glyphs();
    match r.blocker {
        None => {
            let w = &c.waiter;
            let who = if is_ours(w) {
                theme.ours()
            } else {
                Default::default()
            };
            Some(Line::from(vec![
                Span::styled(format!("{} ", g.waiter), theme.warn()),
                Span::styled(format!("pid {} ", w.pid), who),
                Span::raw(format!("waits {} for {} ", age(c.waiting_s), c.wants)),
                Span::styled(format!("{}: ", app_or_user(w)), who),
                Span::styled(one_line(&w.query, width), theme.dim()),
            ]))
        }
        Some(i) => {
            let b = c.blockers.get(i)?;
            let mut spans = vec![
                Span::raw(format!("  {} ", g.blocker)),
                Span::styled(format!("pid {} ", b.pid), theme.title(false)),
            ];
            let state = match b.xact_age_s {
                Some(s) => format!("{} {} ", b.state, age(s)),
                None => format!("{} ", b.state),
            };
            spans.push(if b.idle_in_transaction() {
                Span::styled(format!("!{state}"), theme.error())
            } else {
                Span::raw(state)
            });
            spans.push(Span::raw(format!("{}: ", app_or_user(b))));
            spans.push(Span::raw(one_line(&b.query, width)));
            Some(Line::from(spans))
        }
    }
}

fn app_or_user(b: &Blocker) -> String {
    if b.application.is_empty() {
        b.user.clone()
    } else {
        format!("{} ({})", b.application, b.user)
    }
}
