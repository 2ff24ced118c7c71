//! The key footer, built from the key map. When the terminal is narrow, entries are dropped from
//! the middle so the first actions and `? help` / `q quit` always show.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::tui::app::App;
use crate::tui::keys;

/// Entries at the end of the key map that are never dropped.
const PINNED: usize = 2;

pub fn draw(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let scope = if app.checklists.open {
        keys::Scope::Checklist
    } else {
        keys::Scope::Main
    };
    let mut entries = keys::footer(scope);
    let width = |e: &[(String, &str)]| {
        e.iter()
            .map(|(k, l)| k.chars().count() + l.chars().count() + 2)
            .sum::<usize>()
    };
    while entries.len() > PINNED + 1 && width(&entries) > area.width as usize {
        entries.remove(entries.len() - PINNED - 1);
    }
    let spans: Vec<Span> = entries
        .into_iter()
        .flat_map(|(k, l)| [Span::styled(k, theme.key()), Span::raw(format!(" {l} "))])
        .collect();
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
