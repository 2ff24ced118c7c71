//! The Backfills pane (each backfill: state, progress bar, percentage, ETA and rate when wide
//! enough; the selected one's numbers, runner and last error below) and its dialogs: the dry
//! run, the run confirmation with the dry run's numbers, cancel, and quit while a run goes on.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::popup::dialog;
use super::theme::Theme;
use super::{age, cursor_style, pane_block, window};
use crate::backfill::{DryRun, Overview, Shown};
use crate::marks::Marked;
use crate::text::{count, percent};
use crate::tui::app::{App, BackfillDialog, Pane, RowView, Stop};

/// Lines kept for the selected backfill's detail, when the pane is tall enough.
const DETAIL_MIN: u16 = 4;
/// From these inner widths on, the row also shows the ETA, then the rate.
const WITH_ETA: u16 = 44;
const WITH_RATE: u16 = 60;
const STATE_W: usize = 11;

pub fn draw(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let bf = &app.backfills;
    let state = app.pane(Pane::Backfills);
    let running = (0..bf.rows.len())
        .filter_map(|i| bf.view(i))
        .filter(|v| v.state == Shown::Running)
        .count();
    let extra = if running > 0 {
        format!("{running} running")
    } else {
        String::new()
    };
    let focused = app.focus == Pane::Backfills;
    let mut block = pane_block(app, theme, Pane::Backfills, &extra);
    if focused {
        block = block.title_bottom(Line::styled(
            " b dry-run B run Space pause x cancel ",
            theme.dim(),
        ));
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    if bf.rows.is_empty() {
        let text = match &bf.error {
            Some(e) => Line::styled(e.clone(), theme.error()),
            None => Line::styled(
                format!(
                    "no backfills: none defined in {}/backfills (README: Backfills)",
                    app.target.migrations
                ),
                theme.dim(),
            ),
        };
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
        return;
    }
    // The list as tall as its rows (keeping room for the detail), the detail below it.
    let detail_min = if inner.height >= 6 {
        DETAIL_MIN.min(inner.height / 2)
    } else {
        0
    };
    let list_h = (state.visible.len() as u16).clamp(1, inner.height - detail_min);
    let [list, detail_area] =
        Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(inner);
    let detail_h = detail_area.height;
    let name_w = bf
        .rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 16);
    let lines: Vec<Line> = window(state.selected, state.visible.len(), list.height as usize)
        .filter_map(|i| {
            let v = bf.view(state.visible[i])?;
            Some(cursor_style(
                row(theme, &v, name_w, list.width),
                i == state.selected,
                focused,
            ))
        })
        .collect();
    f.render_widget(Paragraph::new(lines), list);
    if detail_h > 0 {
        let selected = state.visible.get(state.selected).copied();
        let mut lines = Vec::new();
        if let Some(e) = &bf.error {
            lines.push(Line::styled(format!("not refreshed: {e}"), theme.warn()));
        }
        if let Some(i) = selected
            && let (Some(v), Some(r)) = (bf.view(i), bf.rows.get(i))
        {
            lines.extend(detail(theme, &v, r));
        }
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), detail_area);
    }
}

fn state_style(theme: &Theme, s: Shown) -> Style {
    theme.role(s.role())
}

/// The state as a word (`pgshift backfill status`'s), or what this screen is asking of the run.
fn state_word(v: &RowView) -> &'static str {
    match v.stopping {
        Some(Stop::Pause) => "pausing",
        Some(Stop::Cancel) => "cancelling",
        None => v.state.word(),
    }
}

fn bar(theme: &Theme, fraction: Option<f64>, width: usize) -> String {
    let (full, empty) = if theme.color {
        ('█', '░')
    } else {
        ('#', '.')
    };
    match fraction {
        Some(f) => {
            let n = ((f.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
            std::iter::repeat_n(full, n)
                .chain(std::iter::repeat_n(empty, width - n))
                .collect()
        }
        None => std::iter::repeat_n(' ', width).collect(),
    }
}

fn eta(v: &RowView) -> String {
    v.state.eta(v.eta_s)
}

fn row(theme: &Theme, v: &RowView, name_w: usize, width: u16) -> Line<'static> {
    let with_eta = width >= WITH_ETA;
    let with_rate = width >= WITH_RATE;
    let fixed = name_w
        + 1
        + STATE_W
        + 1
        + 1
        + 4
        + if with_eta { 7 } else { 0 }
        + if with_rate { 10 } else { 0 };
    let bar_w = (width as usize).saturating_sub(fixed).max(3);
    let mut spans = vec![
        Span::raw(format!("{:<name_w$} ", v.name)),
        Span::styled(
            format!("{:<STATE_W$} ", state_word(v)),
            state_style(theme, v.state),
        ),
        Span::styled(bar(theme, v.fraction, bar_w), state_style(theme, v.state)),
        Span::raw(format!(" {}", percent(v.fraction))),
    ];
    if with_eta {
        spans.push(Span::raw(format!(" {:>6}", eta(v))));
    }
    if with_rate {
        let rate = if v.rate > 0.0 && v.state == Shown::Running {
            format!("{}/s", count(v.rate.round() as i64))
        } else {
            String::new()
        };
        spans.push(Span::raw(format!(" {rate:>9}")));
    }
    Line::from(spans)
}

/// The status line while this screen runs backfills (or a dry run) and nothing else.
pub fn status_line(app: &App, theme: &Theme) -> Line<'static> {
    let bf = &app.backfills;
    let mut spans = Vec::new();
    for l in &bf.local {
        let mut text = format!(" backfill {}", l.name);
        match bf
            .rows
            .iter()
            .position(|r| r.name == l.name)
            .and_then(|i| bf.view(i))
        {
            Some(v) if v.stopping.is_some() => text.push_str(&format!(" {}…", state_word(&v))),
            Some(v) if l.run_id.is_some() => {
                text.push_str(&format!(" {}", percent(v.fraction).trim_start()));
                if l.rate.is_some() {
                    text.push_str(&format!(
                        " · {}/s · ETA {}",
                        count(v.rate.round() as i64),
                        eta(&v)
                    ));
                }
            }
            _ => text.push_str(" starting…"),
        }
        spans.push(Span::styled(text, theme.title(true)));
        if let Some(why) = &l.retrying {
            spans.push(Span::styled(format!(" · retrying {why}"), theme.warn()));
        }
        if let Some(why) = &l.waiting {
            spans.push(Span::styled(format!(" · {why}"), theme.warn()));
        }
    }
    if let Some((name, _)) = &bf.dry_running {
        spans.push(Span::raw(format!(
            " dry run of {name} (rolled back)… Esc cancels it"
        )));
    }
    Line::from(spans)
}

fn detail(theme: &Theme, v: &RowView, r: &Overview) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if v.state == Shown::NeverRun {
        lines.push(Line::from(format!(
            "{} on {}: never run; b dry run, B run",
            v.name, r.table
        )));
        lines.push(Line::styled(r.description.clone(), theme.dim()));
        return lines;
    }
    let mut numbers = format!(
        "{} / {} rows",
        count(v.rows_done),
        v.rows_estimate.map_or("?".into(), count)
    );
    if v.state == Shown::Running && v.rate > 0.0 {
        numbers.push_str(&format!(" · {}/s", count(v.rate.round() as i64)));
    }
    if matches!(v.state, Shown::Running | Shown::Paused) && v.eta_s.is_some() {
        numbers.push_str(&format!(" · ETA {}", eta(v)));
    }
    lines.push(Line::from(numbers));
    // The error before the run's numbers: on a small screen it is what the operator needs.
    if let Some(why) = &v.retrying {
        lines.push(Line::styled(format!("retrying: {why}"), theme.warn()));
    }
    if let Some(why) = &v.waiting {
        lines.push(Line::styled(why.clone(), theme.warn()));
    }
    if let Some(e) = &v.last_error {
        lines.push(Line::styled(
            format!("last error: {}", crate::output::one_line(e, 400)),
            theme.error(),
        ));
    }
    let mut run = match &r.run {
        Some(run) => format!("run #{} {}", run.id, v.state.word()),
        None => v.state.word().to_string(),
    };
    if let Some(who) = &v.runner {
        run.push_str(&format!(" by {who}"));
    }
    if let Some((p50, max)) = v.batch_ms {
        run.push_str(&format!(
            " · batch p50 {} max {}",
            crate::text::human_duration_ms(p50 as i64),
            crate::text::human_duration_ms(max as i64)
        ));
    }
    if v.retries > 0 {
        run.push_str(&format!(" · retries {}", v.retries));
    }
    lines.push(Line::from(run));
    match v.state {
        Shown::Paused | Shown::Interrupted | Shown::Failed if v.stopping.is_none() => {
            lines.push(Line::styled(
                "Space resumes from the saved cursor · x cancels",
                theme.dim(),
            ))
        }
        _ => {}
    }
    lines
}

/// What a run would do, from a dry run (shared by the dry-run dialog and the run confirmation).
pub fn dry_run_lines(d: &DryRun) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(d.description.clone())];
    lines.push(Line::from(format!(
        "{} rows to change in {} (about {} in the table)",
        count(d.rows_to_do),
        d.table,
        d.table_rows_estimate.map_or("?".into(), count)
    )));
    lines.push(Line::from(format!(
        "{} batch(es) of {}, {} ms pause: about {}",
        count(d.batches),
        count(d.batch_size),
        d.pause_ms,
        if d.estimated_s < 1.0 {
            "a second or less".to_string()
        } else {
            age(d.estimated_s)
        }
    )));
    lines.push(Line::from(match (&d.continues_run, &d.from_key) {
        (Some(id), Some(k)) => format!("continues run #{id} after key {k}"),
        (Some(id), None) => format!("continues run #{id} from the first key"),
        (None, _) => "starts at the first key".into(),
    }));
    if let Some(s) = &d.sample {
        lines.push(Line::from(format!(
            "sample batch (rolled back): keys {} .. {}: {} rows in {:.0} ms",
            s.lower.as_deref().unwrap_or("start"),
            s.upper,
            count(s.rows_changed),
            s.ms
        )));
    }
    for (title, rows) in [
        ("preview before:", &d.preview_before),
        ("preview after (rolled back):", &d.preview_after),
    ] {
        if !rows.is_empty() {
            lines.push(Line::from(title));
            lines.extend(rows.iter().map(|r| Line::from(format!("  {r}"))));
        }
    }
    lines
}

/// The prompt of a backfill confirmation: `y` (no bare Enter), or the name typed on production.
fn confirm_prompt(app: &App, theme: &Theme, name: &str, typed: &str) -> Vec<Line<'static>> {
    if app.target.environment.is_production() {
        vec![
            Line::styled(
                format!(" Type {name} and press Enter to run it. Esc cancels."),
                theme.warn(),
            ),
            Line::from(vec![
                Span::raw(" > "),
                Span::styled(format!("{typed}_"), theme.title(true)),
            ]),
        ]
    } else {
        vec![Line::from(" y run it · n / Esc cancel · j/k scroll")]
    }
}

pub fn dialog_for(app: &App, theme: &Theme, f: &mut Frame, d: &BackfillDialog) {
    match d {
        BackfillDialog::DryRun { dry, scroll } => dialog(
            f,
            theme,
            Line::from(format!(" Dry run: {} (nothing was changed) ", dry.name)),
            dry_run_lines(dry),
            *scroll,
            vec![Line::from(" Esc close · j/k scroll · B run it (asks)")],
            false,
        ),
        BackfillDialog::ConfirmRun { dry, scroll, typed } => {
            confirm_run(app, theme, f, dry, *scroll, typed)
        }
        BackfillDialog::ConfirmCancel { row, typed } => confirm_cancel(app, theme, f, row, typed),
        BackfillDialog::Quit { names } => quit(theme, f, names),
    }
}

/// Run it? The dry run's numbers, then how the run can be stopped.
fn confirm_run(app: &App, theme: &Theme, f: &mut Frame, dry: &DryRun, scroll: u16, typed: &str) {
    let mut title = vec![];
    if app.target.environment.is_production() {
        title.push(Span::styled(" PRODUCTION ", theme.production()));
    }
    title.push(Span::styled(
        format!(" Run backfill {} on {}? ", dry.name, app.target.name),
        theme.title(true),
    ));
    let mut body = dry_run_lines(dry);
    body.push(Line::from(""));
    body.push(Line::from(
        "One transaction per batch, cursor saved with it: Space pauses, x cancels,",
    ));
    body.push(Line::from(
        "committed batches stay. Audited in pgshift_events.",
    ));
    dialog(
        f,
        theme,
        Line::from(title),
        body,
        scroll,
        confirm_prompt(app, theme, &dry.name, typed),
        app.target.environment.is_production(),
    );
}

/// End the run? Where it stands and what ending it keeps.
fn confirm_cancel(app: &App, theme: &Theme, f: &mut Frame, row: &Overview, typed: &str) {
    let body = vec![
        Line::from(format!(
            "{} on {}: {}, {} / {} rows done",
            row.name,
            row.table,
            row.state.word(),
            count(row.rows_done),
            row.rows_estimate.map_or("?".into(), count)
        )),
        Line::from("A running engine (here or in another terminal) stops after its current"),
        Line::from("batch; a stopped run is closed. Committed batches stay; the next run"),
        Line::from(format!(
            "starts afresh. Same as `pgshift backfill cancel {}`; audited.",
            row.name
        )),
    ];
    // `cancel` means "go back" in every dialog; here the action is ending the run.
    dialog(
        f,
        theme,
        Line::styled(
            format!(" End the run of backfill {}? ", row.name),
            theme.error(),
        ),
        body,
        0,
        confirm_prompt(app, theme, &row.name, typed),
        true,
    );
}

/// Quit while a backfill started here runs: pause first, or quit now.
fn quit(theme: &Theme, f: &mut Frame, names: &[String]) {
    let names = names.join(", ");
    let body = vec![
        Line::from(format!("Backfill {names} runs from this screen.")),
        Line::from("y / Enter: pause after the current batch (cursor saved), then quit;"),
        Line::from(format!(
            "  resume later with Space here or `pgshift backfill resume {names}`."
        )),
        Line::from("Ctrl-C: quit now; the batch in progress rolls back and the run shows"),
        Line::from("  as interrupted (resumable)."),
    ];
    dialog(
        f,
        theme,
        Line::from(" Quit while a backfill runs? "),
        body,
        0,
        vec![Line::from(
            " y / Enter pause and quit · Ctrl-C quit now · n / Esc keep watching",
        )],
        true,
    );
}

#[cfg(test)]
#[path = "backfills_tests.rs"]
mod tests;
