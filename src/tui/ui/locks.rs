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
use crate::tui::app::locks::blocked_statement;
use crate::tui::app::{App, LockRow, Pane};

pub fn draw(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let state = app.pane(Pane::Locks);
    let extra = match (app.live_conflicts, app.conflicts.len() > app.live_conflicts) {
        (0, false) => String::new(),
        (0, true) => "run between tries".to_string(),
        (n, _) => format!("{n} waiting"),
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
    // A narrow pane gives each row a second line for who and what, so the query is readable.
    let per_row = if inner.width < TWO_LINES_BELOW { 2 } else { 1 };
    let lines: Vec<Line> = window(
        state.selected,
        state.visible.len(),
        inner.height as usize / per_row,
    )
    .flat_map(|i| {
        let r = app.lock_rows[state.visible[i]];
        let selected = i == state.selected;
        let kept = app
            .kept_conflict(r.conflict)
            .map(|w| app.now.saturating_duration_since(w.seen_at).as_secs_f64());
        row(
            theme,
            &app.conflicts[r.conflict],
            r,
            kept,
            width,
            per_row == 2,
        )
        .into_iter()
        .map(move |l| cursor_style(l, selected, focused))
    })
    .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

/// Inner width below which rows take two lines.
const TWO_LINES_BELOW: u16 = 70;

/// Our runner and its monitor set `application_name` to `pgshift ...`.
fn is_ours(b: &Blocker) -> bool {
    b.application.starts_with("pgshift")
}

/// The lines of one row: a waiter or one of its blockers (`split`: who/what on a second line).
/// `kept`: this is our run's wait kept through its backoff, last seen that many seconds ago.
fn row<'a>(
    theme: &Theme,
    c: &'a Conflict,
    r: LockRow,
    kept: Option<f64>,
    width: usize,
    split: bool,
) -> Vec<Line<'a>> {
    let g = theme.glyphs();
    let (mut head, tail, indent) = match r.blocker {
        None => {
            let w = &c.waiter;
            let who = if is_ours(w) {
                theme.ours()
            } else {
                Default::default()
            };
            let waits = match kept {
                // Between tries the run waits for nothing; its blockers still hold their locks.
                Some(ago) => Span::styled(
                    format!("between tries, blockers last seen {} ago ", age(ago)),
                    theme.warn(),
                ),
                None => Span::raw(format!("waits {} for {} ", age(c.waiting_s), c.wants)),
            };
            let pid = if w.pid > 0 {
                format!("pid {} ", w.pid)
            } else {
                String::new()
            };
            let head = vec![
                Span::styled(format!("{} ", g.waiter), theme.warn()),
                Span::styled(pid, who),
                waits,
            ];
            let statement = blocked_statement(&w.query, &c.wants);
            let tail = (
                Span::styled(app_or_user(w), who),
                Span::styled(one_line(&statement, width), theme.dim()),
            );
            (head, tail, "   ")
        }
        Some(i) => {
            let Some(b) = c.blockers.get(i) else {
                return vec![];
            };
            let state = match b.xact_age_s {
                Some(s) => format!("{} {} ", b.state, age(s)),
                None => format!("{} ", b.state),
            };
            let head = vec![
                Span::raw(format!("  {} ", g.blocker)),
                Span::styled(format!("pid {} ", b.pid), theme.title(false)),
                if b.idle_in_transaction() {
                    Span::styled(format!("!{state}"), theme.error())
                } else {
                    Span::raw(state)
                },
            ];
            let tail = (
                Span::raw(app_or_user(b)),
                Span::raw(one_line(&b.query, width)),
            );
            (head, tail, "      ")
        }
    };
    let (who, query) = tail;
    if split {
        // Query first: it is what the operator judges before C/K; who follows.
        let second = vec![Span::raw(indent), query, Span::raw(" · "), who];
        vec![Line::from(head), Line::from(second)]
    } else {
        head.extend([who, Span::raw(": "), query]);
        vec![Line::from(head)]
    }
}

fn app_or_user(b: &Blocker) -> String {
    if b.application.is_empty() {
        b.user.clone()
    } else {
        format!("{} ({})", b.application, b.user)
    }
}
