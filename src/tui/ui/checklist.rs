//! The checklist overlay (`c`): which checklist (‹ › switch), its items with their recorded state
//! (or "running..." while a check runs), the selected item's help and evidence, the note prompt,
//! the last outcome. The screen's footer shows the overlay's keys from the key map meanwhile.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

use super::theme::Theme;
use super::{centered, cursor_style, window};
use crate::clock::Clock;
use crate::db::checklist_runs::ItemShown;
use crate::event::Level;
use crate::marks::Marked;
use crate::runbook::{ChecklistView, ItemView, RunState};
use crate::tui::app::{App, ChecklistState};

/// Width of the state column ("needs confirmation").
const STATE_W: usize = 18;

pub fn draw(app: &App, theme: &Theme, f: &mut Frame) {
    let c = &app.checklists;
    if !c.open {
        return;
    }
    let full = f.area();
    let area = centered(full, 118, full.height.saturating_sub(2));
    f.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(theme.focus())
        .title(Span::styled(
            format!(" Checklists on {} ", app.target.name),
            theme.title(true),
        ));
    let inner = block.inner(area).inner(ratatui::layout::Margin::new(1, 0));
    f.render_widget(block, area);
    let Some(view) = c.view() else {
        let text = match (&c.load_error, c.loading) {
            (Some(e), _) => vec![
                Line::styled("The checklists could not be loaded:", theme.error()),
                Line::from(e.clone()),
                Line::from(""),
                Line::from("Esc closes; c opens the overlay again and retries."),
            ],
            (None, _) => vec![Line::from("loading the checklists...")],
        };
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), inner);
        return;
    };
    let prompt_h = u16::from(c.prompt.is_some()) * 2;
    let [head, list, detail, prompt, notice] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(view.items.len() as u16 + 1),
        Constraint::Min(3),
        Constraint::Length(prompt_h),
        Constraint::Length(1),
    ])
    .areas(inner);
    f.render_widget(Paragraph::new(heading(c, view, theme)), head);
    items(c, view, theme, f, list);
    f.render_widget(
        Paragraph::new(details(c, &app.clock, theme)).wrap(Wrap { trim: false }),
        detail,
    );
    if let Some(p) = &c.prompt {
        let lines = vec![
            Line::styled(
                format!(
                    "{} {}: type the {}",
                    match p.kind {
                        crate::tui::app::NoteKind::Confirm => "Confirm",
                        crate::tui::app::NoteKind::Skip => "Skip",
                    },
                    p.item,
                    p.kind.prompt()
                ),
                theme.warn(),
            ),
            Line::from(vec![
                Span::raw("> "),
                Span::styled(format!("{}_", p.text), theme.title(true)),
                Span::styled("  Enter records · Esc cancels", theme.dim()),
            ]),
        ];
        f.render_widget(Paragraph::new(lines), prompt);
    }
    if let Some(n) = &c.notice {
        let style = match n.level {
            Level::Error => theme.error(),
            Level::Warn => theme.warn(),
            _ => Style::default(),
        };
        f.render_widget(
            Paragraph::new(Line::styled(n.text.clone(), style)).wrap(Wrap { trim: false }),
            notice,
        );
    }
}

fn heading<'a>(c: &ChecklistState, view: &'a ChecklistView, theme: &Theme) -> Vec<Line<'a>> {
    // `pgshift checklist`'s words and colours (`crate::marks`).
    let state = match view.run_id {
        Some(_) => view.state,
        None => RunState::NotStarted,
    };
    let run = match (state, view.run_id) {
        (RunState::NotStarted, _) | (_, None) => state.word().to_string(),
        (_, Some(id)) => format!("run #{id} {}", state.word()),
    };
    let style = theme.role(state.role());
    let done = view.items.iter().filter(|i| i.state.is_done()).count();
    vec![
        Line::from(vec![
            Span::styled(
                format!("‹ {} {}/{} › ", view.name, c.shown + 1, c.views.len()),
                theme.title(true),
            ),
            Span::styled(run, style),
            Span::raw(format!(" · {done}/{} done  ", view.items.len())),
            Span::styled(view.title.clone(), theme.title(false)),
        ]),
        Line::styled(view.when.clone(), theme.dim()),
        c.health
            .as_ref()
            .map(|h| health_line(h, theme))
            .unwrap_or_default(),
    ]
}

/// `pgshift health` in one line: status, migrations, backfills, the most severe alert.
fn health_line(h: &crate::health::Health, theme: &Theme) -> Line<'static> {
    use crate::health::MigrationState;
    let name = |v: serde_json::Value| v.as_str().unwrap_or("?").to_string();
    let m = &h.migrations;
    let pending = match m.state {
        MigrationState::Pending => format!(" ({})", m.pending.len()),
        _ => String::new(),
    };
    let mut spans = vec![
        Span::raw("health "),
        theme.word(&h.status),
        Span::raw(" · migrations "),
        theme.word(&m.state),
        Span::raw(format!("{pending} · backfills ")),
        theme.word(&h.backfills.state),
    ];
    if let Some(a) = h.alerts.first() {
        spans.push(Span::styled(
            format!(
                " · {}: {}",
                name(serde_json::to_value(a.severity).unwrap_or_default()),
                a.message
            ),
            theme.warn(),
        ));
    }
    Line::from(spans)
}

/// The state column of an item: what is recorded, or what is happening to it now.
pub fn state_label(c: &ChecklistState, view: &ChecklistView, item: &ItemView) -> &'static str {
    if c.is_running(&view.name, &item.id) {
        return "running...";
    }
    if c.is_queued(&view.name, &item.id) {
        return "queued";
    }
    ItemShown {
        state: item.state,
        automatic: item.check.is_some(),
    }
    .word()
}

/// The colour of [`state_label`]: the state's role, or what is happening to the item now.
fn state_style(theme: &Theme, c: &ChecklistState, view: &ChecklistView, item: &ItemView) -> Style {
    if c.is_running(&view.name, &item.id) {
        return theme.warn();
    }
    if c.is_queued(&view.name, &item.id) {
        return theme.dim();
    }
    let shown = ItemShown {
        state: item.state,
        automatic: item.check.is_some(),
    };
    theme.role(shown.role())
}

fn items(c: &ChecklistState, view: &ChecklistView, theme: &Theme, f: &mut Frame, area: Rect) {
    let rows = window(c.selected, view.items.len(), area.height as usize);
    let lines: Vec<Line> = rows
        .map(|i| {
            let item = &view.items[i];
            let label = state_label(c, view, item);
            let auto = if item.check.is_some() { "auto" } else { "    " };
            let line = Line::from(vec![
                Span::styled(
                    format!("{label:<STATE_W$} "),
                    state_style(theme, c, view, item),
                ),
                Span::styled(format!("{auto} "), theme.dim()),
                Span::raw(item.text.clone()),
            ]);
            cursor_style(line, i == c.selected, c.prompt.is_none())
        })
        .collect();
    f.render_widget(Paragraph::new(lines), area);
}

fn details<'a>(c: &ChecklistState, clock: &Clock, theme: &Theme) -> Vec<Line<'a>> {
    let Some(item) = c.selected_item() else {
        return vec![];
    };
    let check = match item.check {
        Some(k) => format!(
            "automatic check {}",
            serde_json::to_value(k).unwrap_or_default()
        ),
        None => "no automatic check: confirm with a note or skip with a reason".into(),
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{}: ", item.id), theme.title(false)),
        Span::styled(check.replace('"', ""), theme.dim()),
    ])];
    if !item.help.is_empty() {
        lines.push(Line::from(item.help.clone()));
    }
    match (&item.evidence, &item.operator, &item.at) {
        (Some(e), Some(who), Some(at)) => {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{} by {who} at {}: ", item.state.as_str(), clock.short(at)),
                    theme.title(false),
                ),
                Span::raw(e.lines().collect::<Vec<_>>().join(" | ")),
            ]));
        }
        _ => lines.push(Line::styled(
            " nothing recorded in this run yet",
            theme.dim(),
        )),
    }
    lines
}
