//! `view`: draws `&App`, nothing else. One file per region; they share the theme and the list
//! helpers here. Only the visible window of each list is turned into lines, so a frame costs the
//! same with 10 or 10,000 history rows.

mod backfills;
mod checklist;
pub mod fit;
mod fleet;
mod footer;
mod gates;
mod header;
mod history;
mod locks;
mod log;
mod popup;
mod revisions;
pub mod theme;

pub use checklist::state_label as checklist_state_label;
pub use popup::scroll_limit;

#[cfg(test)]
mod tests;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};

use super::app::{App, Pane, Slot};
use theme::Theme;

/// Width from which the body gets the wide split (revisions narrower than history).
const WIDE: u16 = 110;

pub fn draw(app: &App, f: &mut Frame) {
    let theme = Theme::of(app);
    let [header, body, status, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(6),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    header::draw(app, &theme, f, header);
    if app.focus.slot() == Slot::Body {
        draw_pane(app, &theme, f, app.focus, body);
    } else {
        draw_slots(app, &theme, f, body);
    }
    if app.health.is_unreachable() && app.focus.slot() != Slot::Body {
        // Last known state, greyed: nothing in the body is current.
        f.buffer_mut().set_style(body, theme.stale());
    }
    log::status_line(app, &theme, f, status);
    footer::draw(app, &theme, f, footer);
    checklist::draw(app, &theme, f);
    popup::draw(app, &theme, f);
}

/// The four panes of the normal screen.
fn draw_slots(app: &App, theme: &Theme, f: &mut Frame, body: Rect) {
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
    let (left, right) = if body.width >= WIDE {
        (40, 60)
    } else {
        (50, 50)
    };
    let [rev, hist] =
        Layout::horizontal([Constraint::Percentage(left), Constraint::Percentage(right)])
            .areas(top);
    let [lock, logs] =
        Layout::horizontal([Constraint::Percentage(right), Constraint::Percentage(left)])
            .areas(bottom);
    for (slot, area) in [
        (Slot::TopLeft, rev),
        (Slot::TopRight, hist),
        (Slot::BottomLeft, lock),
        (Slot::BottomRight, logs),
    ] {
        if let Some(pane) = app.pane_in(slot) {
            draw_pane(app, theme, f, pane, area);
        }
    }
}

/// One arm per pane: a new pane is a file in this directory and a line here.
fn draw_pane(app: &App, theme: &Theme, f: &mut Frame, pane: Pane, area: Rect) {
    match pane {
        Pane::Revisions => revisions::draw(app, theme, f, area),
        Pane::History => history::draw(app, theme, f, area),
        Pane::Locks => locks::draw(app, theme, f, area),
        Pane::Log => log::draw(app, theme, f, area),
        Pane::Backfills => backfills::draw(app, theme, f, area),
        Pane::Fleet => fleet::draw(app, theme, f, area),
    }
}

/// The frame of a pane: number and title, filter, focus shown by a thick border (and colour).
pub fn pane_block<'a>(app: &App, theme: &Theme, pane: Pane, extra: &str) -> Block<'a> {
    let focused = app.focus == pane;
    let state = app.pane(pane);
    let mut title = vec![Span::styled(
        format!(" {} {} ", pane.index() + 1, pane.title()),
        theme.title(focused),
    )];
    if !extra.is_empty() {
        title.push(Span::raw(format!("{extra} ")));
    }
    if !state.filter.is_empty() || (focused && app.filtering) {
        let cursor = if focused && app.filtering { "_" } else { "" };
        title.push(Span::styled(
            format!("/{}{cursor} ", state.filter),
            theme.filter(),
        ));
    }
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(if app.target.environment.is_production() {
            // Production: every frame is red (the thick border still shows the focus).
            theme.error()
        } else if focused {
            theme.focus()
        } else {
            Style::default()
        })
        .title(Line::from(title))
}

/// The rows of a list to draw: the window of `height` rows that keeps `selected` visible.
pub fn window(selected: usize, len: usize, height: usize) -> std::ops::Range<usize> {
    if height == 0 || len == 0 {
        return 0..0;
    }
    let start = if selected >= height {
        selected + 1 - height
    } else {
        0
    };
    start..(start + height).min(len)
}

/// Mark the cursor row of a focused list.
pub fn cursor_style(line: Line<'_>, selected: bool, focused: bool) -> Line<'_> {
    if selected {
        let m = if focused {
            Modifier::REVERSED
        } else {
            Modifier::UNDERLINED
        };
        line.patch_style(Style::default().add_modifier(m))
    } else {
        line
    }
}

/// A rectangle of at most `w`×`h`, centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width.saturating_sub(2)).max(1);
    let h = h.min(area.height.saturating_sub(2)).max(1);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Seconds as `14m`, `2h03m`, `850ms` (the CLI's wording).
pub fn age(secs: f64) -> String {
    crate::output::human_duration_s(secs)
}

#[cfg(test)]
mod helper_tests {
    use super::*;

    #[test]
    fn window_keeps_the_cursor_visible() {
        assert_eq!(window(0, 100, 10), 0..10);
        assert_eq!(window(9, 100, 10), 0..10);
        assert_eq!(window(10, 100, 10), 1..11);
        assert_eq!(window(99, 100, 10), 90..100);
        assert_eq!(window(3, 4, 10), 0..4);
        assert_eq!(window(0, 0, 10), 0..0);
        assert_eq!(window(5, 10, 0), 0..0);
    }
}
