//! The Fleet pane: one row per target of the fleet (name, environment with production marked,
//! current → head, pending, state, runner lock holder, replication role and lag, and why when
//! something is wrong), the live rollout state in place of the status while a rollout runs, and
//! the selected row's note in full below. Columns drop least important first on narrow screens.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::fit::{Part, fit};
use super::theme::Theme;
use super::{cursor_style, pane_block, window};
use crate::fleet::render::{env_label, name_width, revision_span};
use crate::fleet::rollout::TargetState;
use crate::fleet::status::RowState;
use crate::output::one_line;
use crate::tui::app::{App, Fleet, FleetRow, Pane};

/// Widths of the fixed columns (the state fits `blocked by pid 1234567` and `running 12/40 (c)`).
const ENV_W: usize = 5;
const REV_W: usize = 10;
const PEND_W: usize = 4;
const STATE_W: usize = 22;
const LOCK_W: usize = 11;
const ROLE_W: usize = 10;
/// The note column is shown only with at least this much room.
const NOTE_MIN: usize = 12;
/// Lines for the selected row's note, when the pane is tall enough.
const DETAIL_H: u16 = 3;

pub fn draw(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let fl = &app.fleet;
    let state = app.pane(Pane::Fleet);
    let focused = app.focus == Pane::Fleet;
    let mut block = pane_block(app, theme, Pane::Fleet, &title(fl, app.now));
    if focused {
        let hint = if fl.running() {
            " Esc stop launching · v detail "
        } else {
            " u roll out to head · Enter open · v detail · r refresh · :fleet GROUP "
        };
        block = block.title_bottom(Line::styled(hint, theme.dim()));
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    if fl.rows.is_empty() {
        let text = match (&fl.error, fl.gathering || !fl.gathered) {
            (Some(e), _) => Line::styled(e.clone(), theme.error()),
            (None, true) => Line::styled("reading every target's status…", theme.dim()),
            (None, false) => Line::styled("no targets", theme.dim()),
        };
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), inner);
        return;
    }
    let detail_h = if inner.height >= 8 { DETAIL_H } else { 0 };
    let [head, list, detail] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(detail_h),
    ])
    .areas(inner);
    let cols = Columns::new(fl, inner.width as usize);
    f.render_widget(
        Paragraph::new(cols.line(header(), theme.title(false))),
        head,
    );
    let lines: Vec<Line> = window(state.selected, state.visible.len(), list.height as usize)
        .filter_map(|i| {
            let r = fl.rows.get(state.visible[i])?;
            Some(cursor_style(
                cols.line(cells(theme, r), Style::default()),
                i == state.selected,
                focused,
            ))
        })
        .collect();
    f.render_widget(Paragraph::new(lines), list);
    if detail_h > 0
        && let Some(r) = app.selected_fleet_row()
        && let Some(note) = note(r)
    {
        let text = Line::from(vec![
            Span::styled(format!("{}: ", r.name), theme.title(false)),
            Span::raw(note),
        ]);
        f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), detail);
    }
}

/// `all · 5 targets`, then the rollout's phase and counts, or what is being read.
fn title(fl: &Fleet, now: std::time::Instant) -> String {
    let mut t = format!(
        "{} ({})",
        crate::tui::app::fleet::group_name(fl.group.as_deref()),
        fl.rows.len()
    );
    if fl.gathering {
        t.push_str(" · reading…");
    } else if let Some(read) = fl.read_at.filter(|_| !fl.running()) {
        t.push_str(&format!(
            " · read {} ago",
            crate::text::human_duration_s(now.saturating_duration_since(read).as_secs_f64())
        ));
    }
    if fl.planning {
        t.push_str(" · planning…");
    }
    if let Some(r) = &fl.rollout {
        let (done, _, failed, _) = fl.counts();
        if r.running {
            t.push_str(&format!(" · {}", progress(fl)));
        } else if let Some(s) = &r.summary {
            t.push_str(&format!(
                " · last rollout: {done} done, {failed} failed (exit {})",
                s.exit_code as u8
            ));
        }
    }
    t
}

/// The running rollout's phase and counts: `wave 1/1: 4 target(s) · 2 done, 1 running, 0 failed`.
fn progress(fl: &Fleet) -> String {
    let (done, running, failed, _) = fl.counts();
    let r = fl.rollout.as_ref();
    let phase = r.and_then(|r| r.phase.as_deref()).unwrap_or("starting");
    let stop = if r.is_some_and(|r| r.stopping) {
        " · STOPPING"
    } else {
        ""
    };
    format!("{phase}{stop} · {done} done, {running} running, {failed} failed")
}

/// The status line while a fleet rollout runs, whatever pane is shown.
pub fn status_line(app: &App, theme: &Theme) -> Line<'static> {
    // The Fleet pane's frame says how to stop; elsewhere, where to see it.
    let hint = if app.focus == Pane::Fleet {
        ""
    } else {
        " · 6 shows it"
    };
    Line::from(vec![
        Span::styled(" fleet rollout ", theme.alarm()),
        Span::raw(format!(" {}", progress(&app.fleet))),
        Span::styled(hint, theme.dim()),
    ])
}

/// One cell per column: the text and its style.
struct Cells {
    name: String,
    env: (String, Style),
    rev: String,
    pending: String,
    state: (String, Style),
    lock: String,
    role: String,
    note: String,
}

fn header() -> Cells {
    let plain = |s: &str| s.to_string();
    Cells {
        name: plain("TARGET"),
        env: (plain("ENV"), Style::default()),
        rev: plain("REVISION"),
        pending: plain("PEND"),
        state: (plain("STATE"), Style::default()),
        lock: plain("LOCK"),
        role: plain("ROLE"),
        note: plain("NOTE"),
    }
}

fn cells(theme: &Theme, r: &FleetRow) -> Cells {
    let s = r.status.as_ref();
    let env = s.map_or(("", Style::default()), |s| {
        let label = env_label(s.environment);
        if s.environment.is_production() {
            (label, theme.production())
        } else {
            (label, Style::default())
        }
    });
    let done = r.live.as_ref().and_then(|l| match l.state {
        TargetState::Done { to, .. } => Some(to),
        _ => None,
    });
    let head = s.and_then(|s| s.head);
    let rev = match (done, s) {
        (Some(to), _) => revision_span(Some(to), head.or(Some(to))),
        (None, Some(s)) => revision_span(s.current, s.head),
        (None, None) => "?".into(),
    };
    let pending = match (done, s) {
        (Some(_), _) => "0".into(),
        (None, Some(s)) if s.state != RowState::Unreachable => s.pending.len().to_string(),
        _ => "?".into(),
    };
    let state = match (&r.live, s) {
        (Some(l), _) => {
            let label = match (&l.state, l.canary) {
                (TargetState::Waiting, true) => "canary".to_string(),
                (st, true) => format!("{} (c)", st.label()),
                (st, false) => st.label(),
            };
            (label, live_style(theme, &l.state))
        }
        (None, Some(s)) => (s.state.as_str().to_string(), status_style(theme, s.state)),
        (None, None) => ("…".into(), theme.dim()),
    };
    let lock = s
        .and_then(|s| s.runner_lock.as_ref())
        .map_or("-".into(), |h| format!("pid {}", h.pid));
    let role = s.map_or(String::new(), |s| {
        let role = match s.replication {
            Some("standby") => "STBY",
            Some(_) => "pri",
            None => "-",
        };
        match s.replica_lag_s {
            Some(lag) => format!("{role} {}", super::age(lag)),
            None => role.into(),
        }
    });
    Cells {
        name: r.name.clone(),
        env: (env.0.to_string(), env.1),
        rev,
        pending,
        state,
        lock,
        role,
        note: note(r).unwrap_or_default(),
    }
}

/// Why the row needs a look: the rollout's error or reason, else the status's.
fn note(r: &FleetRow) -> Option<String> {
    r.live
        .as_ref()
        .and_then(|l| l.state.detail())
        .or_else(|| r.status.as_ref().and_then(|s| s.error.clone()))
}

fn live_style(theme: &Theme, s: &TargetState) -> Style {
    match s {
        TargetState::Done { .. } | TargetState::Filled { .. } | TargetState::UpToDate => theme.ok(),
        TargetState::Refused { .. } | TargetState::Failed { .. } => theme.error(),
        TargetState::Blocked { .. }
        | TargetState::WaitingForLock { .. }
        | TargetState::Interrupted { .. } => theme.warn(),
        TargetState::Waiting | TargetState::Skipped { .. } => theme.dim(),
        TargetState::Starting | TargetState::Running { .. } | TargetState::Filling { .. } => {
            theme.focus()
        }
    }
}

fn status_style(theme: &Theme, s: RowState) -> Style {
    match s {
        RowState::Ok => theme.ok(),
        RowState::Pending => theme.warn(),
        RowState::Failed | RowState::Drift | RowState::Unreachable | RowState::Error => {
            theme.error()
        }
    }
}

/// The column widths for this pane: the same for the header and every row, so that `fit`
/// drops the same columns everywhere (role first, then pending, then the lock holder).
struct Columns {
    name_w: usize,
    width: usize,
    with_note: bool,
}

impl Columns {
    fn new(fl: &Fleet, width: usize) -> Columns {
        let name_w = name_width(fl.rows.iter().map(|r| r.name.as_str()));
        let fixed = name_w + ENV_W + REV_W + PEND_W + STATE_W + LOCK_W + ROLE_W + 7;
        Columns {
            name_w,
            width,
            with_note: width >= fixed + NOTE_MIN,
        }
    }

    fn line<'a>(&self, c: Cells, base: Style) -> Line<'a> {
        let w = self.name_w;
        let cell = |text: String, width: usize| format!("{text:<width$} ");
        let mut parts = vec![
            Part::new(0, vec![Span::styled(cell(one_line(&c.name, w), w), base)]),
            Part::new(
                0,
                vec![Span::styled(cell(c.env.0, ENV_W), base.patch(c.env.1))],
            ),
            Part::new(0, vec![Span::styled(cell(c.rev, REV_W), base)]),
            Part::new(
                3,
                vec![Span::styled(format!("{:>PEND_W$} ", c.pending), base)],
            ),
            Part::new(
                0,
                vec![Span::styled(
                    cell(c.state.0, STATE_W),
                    base.patch(c.state.1),
                )],
            ),
            Part::new(2, vec![Span::styled(cell(c.lock, LOCK_W), base)]),
            Part::new(4, vec![Span::styled(cell(c.role, ROLE_W), base)]),
        ];
        if self.with_note && !c.note.is_empty() {
            parts.push(Part::elastic(
                5,
                Span::styled(one_line(&c.note, self.width), base),
            ));
        }
        fit(parts, self.width)
    }
}
