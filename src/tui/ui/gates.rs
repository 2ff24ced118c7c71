//! The gates' verdict and the lint findings at the top of the `p` preview and the `u`/`d`
//! confirmation, so the operator sees what will refuse (and why) before saying yes.

use ratatui::text::Line;

use super::theme::Theme;
use crate::ops::gate::{GateState, Verdict};

/// Refusals and warnings in full (wrapped to `width`), the other gates on one line, then the lint
/// findings of the steps as `pgshift up` prints them; a blank line ends the block.
pub fn lines(verdict: &Verdict, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut quiet: Vec<String> = Vec::new();
    for g in &verdict.gates {
        let (label, style) = match g.state {
            GateState::Refused => ("REFUSED", theme.error()),
            GateState::Warned => ("warning", theme.warn()),
            GateState::Overridden => ("overridden", theme.warn()),
            GateState::Passed | GateState::Skipped => {
                quiet.push(format!("{} {}", g.gate.as_str(), g.state.as_str()));
                continue;
            }
        };
        let head = format!("{label} {}: ", g.gate.as_str());
        for (i, text) in wrap(&format!("{head}{}", g.message), width, head.len())
            .into_iter()
            .enumerate()
        {
            out.push(if i == 0 {
                Line::styled(text, style)
            } else {
                Line::from(text)
            });
        }
    }
    if !quiet.is_empty() {
        out.push(Line::styled(
            format!("gates: {}", quiet.join(", ")),
            theme.dim(),
        ));
    }
    if verdict.lint.iter().any(|l| !l.findings.is_empty()) {
        let mut text = Vec::new();
        crate::lint::render::findings(&mut text, &verdict.lint, false, crate::marks::Paint::PLAIN)
            .ok();
        for l in String::from_utf8_lossy(&text).lines() {
            out.push(Line::from(l.to_string()));
        }
    }
    if !out.is_empty() {
        out.push(Line::from(""));
    }
    out
}

/// Words into lines of at most `width` columns; continuation lines are indented by `indent`.
fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    let width = width.max(indent + 10);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        let started = !line.trim().is_empty();
        if started && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
            line = " ".repeat(indent);
        } else if started {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.trim().is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping_keeps_every_word_and_indents_continuations() {
        let w = wrap("REFUSED checklist: one two three four five six", 20, 4);
        assert_eq!(
            w,
            vec![
                "REFUSED checklist:",
                "    one two three",
                "    four five six"
            ]
        );
        for l in &w {
            assert!(l.chars().count() <= 20, "{l:?}");
        }
    }
}
