//! Read any line whole: Enter or `v` on a Log, History or lock row opens its full text (query,
//! error, SQLSTATE, diagnosis, blocker chain) in a wrapped, scrollable dialog; `c` copies it
//! through the terminal (OSC 52, so it works over SSH). Part of `update`.

use super::*;
use crate::ops::status::RevisionRow;

/// What the detail dialog shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub title: String,
    pub lines: Vec<String>,
    pub scroll: u16,
}

impl Detail {
    /// The text `c` copies: the title and every line.
    pub fn text(&self) -> String {
        let mut t = self.title.clone();
        for l in &self.lines {
            t.push('\n');
            t.push_str(l);
        }
        t
    }
}

/// Open the detail of the row under the focused pane's cursor.
pub(super) fn open(app: &mut App) {
    let detail = match app.focus {
        Pane::Log => log_line(app),
        Pane::History => app.selected_event().map(|e| event(app, e)),
        Pane::Locks => lock_row(app),
        Pane::Revisions => app.selected_revision().map(|r| revision(r, &app.clock)),
        Pane::Backfills => app.selected_backfill().map(|r| Detail {
            title: format!("backfill {}", r.name),
            lines: vec![
                format!("table {}, {}", r.table, r.state.as_str()),
                r.description.clone(),
                format!("last error: {}", r.last_error.as_deref().unwrap_or("none")),
            ],
            scroll: 0,
        }),
        Pane::Fleet => app.selected_fleet_row().map(super::fleet::detail),
    };
    match detail {
        Some(d) => app.popup = Some(Popup::Detail(d)),
        None => app.log(Level::Warn, "nothing selected to show"),
    }
}

fn log_line(app: &App) -> Option<Detail> {
    let p = app.pane(Pane::Log);
    let i = *p.visible.get(p.selected)?;
    let first = app.log.get(i)?;
    // An error's next lines (why, what next) were logged as Info right after it: show them too.
    let mut lines = vec![first.text.clone()];
    if first.level == Level::Error {
        lines.extend(
            app.log
                .iter()
                .skip(i + 1)
                .take_while(|l| l.level == Level::Info && l.at == first.at)
                .map(|l| l.text.clone()),
        );
    }
    let level = match first.level {
        Level::Info => "info",
        Level::Warn => "warning",
        Level::Error => "error",
    };
    Some(Detail {
        title: format!("log line ({level})"),
        lines,
        scroll: 0,
    })
}

fn event(app: &App, e: &audit::Event) -> Detail {
    let rev = |r: Option<Revision>| r.map_or("-".to_string(), |r| r.to_string());
    let mut lines = vec![
        format!("when      {}", app.clock.format(&e.at)),
        format!("who       {} as role {}", e.operator, e.db_role),
        format!(
            "what      {} {} → {}: {}",
            e.action,
            rev(e.from_revision),
            rev(e.to_revision),
            crate::marks::Marked::word(&crate::marks::OutcomeMark::of(
                e.outcome.as_str(),
                e.detail.get("state").and_then(|s| s.as_str())
            ))
        ),
    ];
    if let Some(ms) = e.duration_ms {
        lines.push(format!("took      {}", crate::text::human_duration_ms(ms)));
    }
    let sqlstate = e.detail.get("sqlstate").and_then(|s| s.as_str());
    if let Some(s) = sqlstate {
        lines.push(format!("SQLSTATE  {s}"));
    }
    if let Some(err) = &e.error {
        lines.push(String::new());
        lines.push("error:".into());
        lines.extend(err.lines().map(|l| format!("  {l}")));
        let failure = crate::error::DbFailure {
            sqlstate: sqlstate.map(Into::into),
            message: err.clone(),
            detail: None,
            hint: None,
            line: None,
        };
        if let Some(next) = crate::diagnosis::next_step(&failure) {
            lines.push(String::new());
            lines.push(format!("diagnosis: {next}"));
        }
    }
    if let Some(q) = e.detail.get("query").and_then(|q| q.as_str()) {
        lines.push(String::new());
        lines.push("query:".into());
        lines.extend(q.lines().map(|l| format!("  {l}")));
    }
    lines.push(String::new());
    lines.push("detail:".into());
    let json = serde_json::to_string_pretty(&e.detail).unwrap_or_default();
    lines.extend(json.lines().map(|l| format!("  {l}")));
    Detail {
        title: format!("audit event #{}", e.id),
        lines,
        scroll: 0,
    }
}

fn lock_row(app: &App) -> Option<Detail> {
    let p = app.pane(Pane::Locks);
    let row = app.lock_rows.get(*p.visible.get(p.selected)?)?;
    let c = app.conflicts.get(row.conflict)?;
    let w = &c.waiter;
    let mut lines = vec![];
    match app.kept_conflict(row.conflict) {
        Some(kept) => lines.push(format!(
            "this screen's run, between tries; blockers last seen {} ago",
            crate::output::human_duration_s(
                app.now
                    .saturating_duration_since(kept.seen_at)
                    .as_secs_f64()
            )
        )),
        None => lines.push(format!(
            "pid {} ({}) waits {} for {}",
            w.pid,
            who(w),
            crate::output::human_duration_s(c.waiting_s),
            c.wants
        )),
    }
    let blocked = locks::blocked_statement(&w.query, &c.wants);
    if !blocked.is_empty() {
        lines.push(String::new());
        lines.push("blocked statement:".into());
        lines.extend(blocked.lines().map(|l| format!("  {l}")));
    }
    lines.push(String::new());
    lines.push(format!("blocked by {} session(s):", c.blockers.len()));
    for b in &c.blockers {
        let age = b
            .xact_age_s
            .map(|s| format!(", transaction open {}", crate::output::human_duration_s(s)))
            .unwrap_or_default();
        lines.push(format!("└ pid {} ({}) {}{age}", b.pid, who(b), b.state));
        lines.extend(b.query.lines().map(|l| format!("    {l}")));
        if b.idle_in_transaction() {
            lines.push(
                "    idle in transaction: C cannot release its locks; K terminates it".into(),
            );
        }
    }
    Some(Detail {
        title: match row.blocker.and_then(|i| c.blockers.get(i)) {
            Some(b) => format!("blocker pid {}", b.pid),
            None => format!("lock wait of pid {}", w.pid),
        },
        lines,
        scroll: 0,
    })
}

fn who(b: &Blocker) -> String {
    if b.application.is_empty() {
        format!("user {}", b.user)
    } else {
        format!("{}, user {}", b.application, b.user)
    }
}

fn revision(r: &RevisionRow, clock: &crate::clock::Clock) -> Detail {
    let yes = |b: bool, y: &str, n: &str| if b { y.to_string() } else { n.to_string() };
    Detail {
        title: format!("revision {} {}", r.revision, r.name),
        lines: vec![
            yes(r.applied, "applied", "pending"),
            r.applied_on
                .as_ref()
                .map(|a| format!("applied on {}", clock.format(a)))
                .unwrap_or_default(),
            yes(
                r.reversible,
                "reversible (has a down file)",
                "irreversible: no down file",
            ),
            yes(
                r.no_transaction,
                "no-transaction: runs statement by statement",
                "runs in one transaction",
            ),
            yes(r.drift, "DRIFT: the file changed since it was applied", ""),
        ]
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect(),
        scroll: 0,
    }
}

/// Keys in the detail dialog: j/k scroll (stopping at the end), `c` copies, Esc/Enter/q close.
pub(super) fn on_key(
    app: &mut App,
    mut d: Detail,
    action: Option<Action>,
    ev: &KeyEvent,
    limit: u16,
) -> Vec<Effect> {
    use crossterm::event::KeyCode;
    match (action, ev.code) {
        (Some(Action::Quit), _) => return input::on_action(app, Action::Quit),
        (Some(Action::Up), _) => d.scroll = d.scroll.saturating_sub(1),
        (Some(Action::Down), _) => d.scroll = d.scroll.saturating_add(1).min(limit),
        (_, KeyCode::Char('c')) => {
            let text = d.text();
            app.popup = Some(Popup::Detail(d));
            app.log(
                Level::Info,
                "copied to the clipboard (OSC 52: your terminal must allow it)",
            );
            return vec![Effect::Copy(text)];
        }
        (Some(Action::Confirm | Action::Dismiss), _) | (_, KeyCode::Char('q' | 'v')) => {
            return vec![];
        }
        _ => {}
    }
    app.popup = Some(Popup::Detail(d));
    vec![]
}
