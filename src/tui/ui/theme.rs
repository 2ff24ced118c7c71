//! Colours, emphasis and markers in one place. Under NO_COLOR nothing is coloured: emphasis uses
//! bold/reverse/dim and every marker is a plain letter, so state never depends on colour or emoji.

use ratatui::style::{Color, Modifier, Style};

use crate::tui::app::App;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

/// The markers of the revisions pane and the log, in both forms.
pub struct Glyphs {
    pub applied: &'static str,
    pub pending: &'static str,
    pub drift: &'static str,
    pub irreversible: &'static str,
    pub no_transaction: &'static str,
    pub current: &'static str,
    pub target: &'static str,
    pub waiter: &'static str,
    pub blocker: &'static str,
    pub error: &'static str,
    pub warn: &'static str,
}

const UNICODE: Glyphs = Glyphs {
    applied: "✓",
    pending: "·",
    drift: "!",
    irreversible: "⊘",
    no_transaction: "⚡",
    current: "◀",
    target: "▶",
    waiter: "⏳",
    blocker: "└",
    error: "✗",
    warn: "!",
};

/// Letters: A applied, P pending, ! drift, I irreversible, N no-transaction.
const PLAIN: Glyphs = Glyphs {
    applied: "A",
    pending: "P",
    drift: "!",
    irreversible: "I",
    no_transaction: "N",
    current: "<",
    target: ">",
    waiter: "W",
    blocker: "`-",
    error: "E",
    warn: "W",
};

impl Theme {
    pub fn of(app: &App) -> Theme {
        Theme { color: app.color }
    }

    pub fn glyphs(&self) -> &'static Glyphs {
        if self.color { &UNICODE } else { &PLAIN }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    /// Production: red everywhere; reverse video without colour.
    pub fn production(&self) -> Style {
        let s = Style::default().add_modifier(Modifier::BOLD);
        if self.color {
            s.fg(Color::White).bg(Color::Red)
        } else {
            s.add_modifier(Modifier::REVERSED)
        }
    }

    pub fn sandbox(&self) -> Style {
        let s = Style::default().add_modifier(Modifier::BOLD);
        if self.color {
            s.fg(Color::Black).bg(Color::Yellow)
        } else {
            s.add_modifier(Modifier::REVERSED)
        }
    }

    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn alarm(&self) -> Style {
        self.error().add_modifier(Modifier::REVERSED)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        }
    }

    /// Everything on screen that is only the last known state.
    pub fn stale(&self) -> Style {
        self.dim().remove_modifier(Modifier::BOLD)
    }

    pub fn ours(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn focus(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn title(&self, focused: bool) -> Style {
        if focused {
            self.focus()
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    pub fn filter(&self) -> Style {
        self.fg(Color::Magenta)
    }

    pub fn key(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}
