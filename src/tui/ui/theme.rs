//! The TUI's side of `crate::marks`: each colour role as a ratatui style. Under NO_COLOR nothing
//! is coloured: emphasis uses bold/reverse/dim and every marker is a plain letter, so state never
//! depends on colour or emoji. The CLI maps the same roles to the same ANSI colours.

use ratatui::style::{Color, Modifier, Style};

use crate::tui::app::App;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

pub use crate::marks::Glyphs;
use crate::marks::Role;

impl Theme {
    pub fn of(app: &App) -> Theme {
        Theme { color: app.color }
    }

    pub fn glyphs(&self) -> &'static Glyphs {
        crate::marks::glyphs(self.color)
    }

    /// The style of a colour role (the CLI paints the same role in the same colour).
    pub fn role(&self, role: Role) -> Style {
        match role {
            Role::Plain => Style::default(),
            Role::Ok => self.ok(),
            Role::Warn => self.warn(),
            Role::Error => self.error(),
            Role::Alarm => self.alarm(),
            Role::Dim => self.dim(),
            Role::Strong => self.title(false),
            Role::Accent => self.ours(),
            Role::Production => self.production(),
            Role::Sandbox => self.sandbox(),
        }
    }

    /// A state's word in its style.
    pub fn word<'a>(&self, m: &impl crate::marks::Marked) -> ratatui::text::Span<'a> {
        ratatui::text::Span::styled(m.word(), self.role(m.role()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The SGR parameters a terminal would get for a ratatui style (the subset the theme uses).
    fn sgr(s: Style) -> String {
        let mut codes: Vec<String> = Vec::new();
        if s.add_modifier.contains(Modifier::BOLD) {
            codes.push("1".into());
        }
        if s.add_modifier.contains(Modifier::REVERSED) {
            codes.push("7".into());
        }
        let color = |c: Color, base: u8| match c {
            Color::Black => base.to_string(),
            Color::Red => (base + 1).to_string(),
            Color::Green => (base + 2).to_string(),
            Color::Yellow => (base + 3).to_string(),
            Color::Cyan => (base + 6).to_string(),
            Color::DarkGray => (base + 60).to_string(),
            Color::White => (base + 67).to_string(),
            other => format!("{other:?}"),
        };
        codes.extend(s.fg.map(|c| color(c, 30)));
        codes.extend(s.bg.map(|c| color(c, 40)));
        codes.join(";")
    }

    #[test]
    fn every_colour_role_is_the_same_colour_in_the_tui_and_the_cli() {
        let theme = Theme { color: true };
        for role in Role::ALL {
            assert_eq!(sgr(theme.role(role)), role.sgr(), "{role:?}");
        }
        // Without colour the TUI keeps only emphasis, the CLI nothing at all.
        let plain = Theme { color: false };
        for role in Role::ALL {
            assert_eq!(plain.role(role).fg, None, "{role:?}");
        }
    }
}
