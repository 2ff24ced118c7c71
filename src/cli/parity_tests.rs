//! The CLI's human output and the TUI show every state with the same word, marker and colour.
//! Each test walks every variant of a state enum (the `match` in its `every_*` makes a new
//! variant a compile error here until it is listed), renders it through both shells — the CLI's
//! text with colour on, the TUI's screen on a `TestBackend` — and compares.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use crate::backfill::Shown;
use crate::config::Environment;
use crate::marks::{Marked, OutcomeMark, Paint, RevisionMark, Role};
use crate::output::Look;
use crate::tui::app::{App, BackfillMsg, Msg, update};
use crate::tui::sample;
use crate::tui::ui::theme::Theme;

const ON: Paint = Paint { color: true };

/// Every variant, from the first along `next` (an exhaustive match).
fn every<T: Copy>(first: T, next: fn(T) -> Option<T>) -> Vec<T> {
    std::iter::successors(Some(first), |t| next(*t)).collect()
}

fn every_shown() -> Vec<Shown> {
    use Shown::*;
    every(NeverRun, |s| match s {
        NeverRun => Some(Running),
        Running => Some(Interrupted),
        Interrupted => Some(Paused),
        Paused => Some(Done),
        Done => Some(Cancelled),
        Cancelled => Some(Failed),
        Failed => None,
    })
}

fn every_outcome() -> Vec<OutcomeMark> {
    use OutcomeMark::*;
    every(Ok, |o| match o {
        Ok => Some(Failed),
        Failed => Some(Refused),
        Refused => Some(Started),
        Started => Some(Interrupted),
        Interrupted => Some(Paused),
        Paused => Some(Cancelled),
        Cancelled => None,
    })
}

fn every_revision_mark() -> Vec<RevisionMark> {
    use RevisionMark::*;
    every(Applied, |m| match m {
        Applied => Some(Pending),
        Pending => Some(Unknown),
        Unknown => Some(Drift),
        Drift => Some(Irreversible),
        Irreversible => Some(NoTransaction),
        NoTransaction => Some(Current),
        Current => Some(Target),
        Target => Some(OutOfOrder),
        OutOfOrder => None,
    })
}

fn screen(app: &App) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(160, 45)).expect("test terminal");
    t.draw(|f| crate::tui::ui::draw(app, f)).expect("draw");
    t.backend().buffer().clone()
}

/// The style of the first cell of `word` on the screen, if it is there.
fn style_of(buf: &Buffer, word: &str) -> Option<ratatui::style::Style> {
    style_after(buf, "", word)
}

/// The style of the first cell of `word` where it follows `before` on the screen.
fn style_after(buf: &Buffer, before: &str, word: &str) -> Option<ratatui::style::Style> {
    let skip = before.chars().count();
    let word = format!("{before}{word}");
    let word = word.as_str();
    let width = buf.area.width as usize;
    let cells = &buf.content;
    for row in cells.chunks(width) {
        let text: Vec<&str> = row.iter().map(|c| c.symbol()).collect();
        for x in 0..row.len() {
            let mut rest = word;
            let mut i = x;
            while !rest.is_empty() && i < row.len() {
                match rest.strip_prefix(text[i]) {
                    Some(r) if !text[i].is_empty() => rest = r,
                    _ => break,
                }
                i += 1;
            }
            if rest.is_empty() {
                return row.get(x + skip).map(|c| c.style());
            }
        }
    }
    None
}

/// `word` in `role`'s ANSI colour, as the CLI prints it with colour on.
fn ansi(role: Role, word: &str) -> String {
    ON.role(role, word).to_string()
}

fn text(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    render(&mut out).expect("render");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn every_backfill_state_has_one_word_and_colour_in_backfill_status_and_the_backfills_pane() {
    let sample = crate::tui::app::backfills::sample::rows();
    for state in every_shown() {
        let mut row = sample[1].clone();
        row.state = state;
        let cli = text(|out| super::backfill::status(out, std::slice::from_ref(&row), ON));
        assert!(
            cli.contains(&ansi(state.role(), state.word())),
            "{state:?}: {cli:?}"
        );
        let mut app = sample::connected(Environment::Staging, 3, vec![], vec![], true);
        update(
            &mut app,
            Msg::Backfill(BackfillMsg::Overview(Ok(vec![row]))),
        );
        update(
            &mut app,
            Msg::Key(crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char('5'),
                crossterm::event::KeyModifiers::NONE,
            )),
        );
        let theme = Theme { color: true };
        // The row: the name, then the state.
        let style = style_after(&screen(&app), "variants ", state.word());
        assert_eq!(
            style.map(|s| s.fg),
            Some(theme.role(state.role()).fg),
            "{state:?} on screen"
        );
    }
}

#[test]
fn every_audit_outcome_has_one_word_and_colour_in_history_and_the_history_pane() {
    for mark in every_outcome() {
        // An audit row that reads as this outcome.
        let (outcome, state) = match mark {
            OutcomeMark::Ok => ("ok", None),
            OutcomeMark::Failed => ("failed", None),
            OutcomeMark::Refused => ("refused", None),
            OutcomeMark::Started => ("started", None),
            OutcomeMark::Interrupted => ("interrupted", None),
            OutcomeMark::Paused => ("ok", Some("paused")),
            OutcomeMark::Cancelled => ("ok", Some("cancelled")),
        };
        let mut event = sample::event(7, "backfill", 3, 3, outcome);
        if let Some(s) = state {
            event.detail = serde_json::json!({ "state": s });
        }
        assert_eq!(OutcomeMark::of(event.outcome.as_str(), state), mark);
        let history = crate::ops::history::History {
            applied: vec![],
            events: vec![event.clone()],
        };
        let look = Look {
            paint: ON,
            clock: crate::clock::Clock::utc(),
        };
        let cli = text(|out| crate::output::history(out, &history, &look));
        assert!(
            cli.contains(&ansi(mark.role(), mark.word())),
            "{mark:?}: {cli:?}"
        );
        let app = sample::connected(Environment::Staging, 3, vec![event], vec![], true);
        let theme = Theme { color: true };
        assert_eq!(
            style_after(&screen(&app), "0003→0003 ", mark.word()).map(|s| s.fg),
            Some(theme.role(mark.role()).fg),
            "{mark:?} on screen"
        );
    }
}

#[test]
fn every_revision_marker_is_the_same_in_status_and_the_revisions_pane_with_and_without_colour() {
    // 0001-0003 applied, 0004 pending; 0002 drifted; the sample catalog has an irreversible and
    // a no-transaction migration.
    for color in [true, false] {
        let target = sample::target(Environment::Staging);
        let catalog = sample::catalog();
        let mut status = sample::status_at(&target, &catalog, 3);
        status.revisions[2].drift = true;
        let look = Look {
            paint: Paint { color },
            clock: crate::clock::Clock::utc(),
        };
        let cli = text(|out| crate::output::status(out, &status, &look));
        let mut app = sample::connected(Environment::Staging, 3, vec![], vec![], color);
        for r in app.revisions.iter_mut() {
            r.drift = status
                .revisions
                .iter()
                .any(|s| s.revision == r.revision && s.drift);
        }
        let buf = screen(&app);
        let g = crate::marks::glyphs(color);
        for mark in every_revision_mark() {
            let facts = &status.revisions;
            let present = match mark {
                RevisionMark::Applied => facts.iter().any(|r| r.applied),
                RevisionMark::Pending => facts.iter().any(|r| !r.applied),
                RevisionMark::Drift => facts.iter().any(|r| r.drift),
                RevisionMark::Irreversible => facts.iter().any(|r| !r.reversible),
                RevisionMark::NoTransaction => facts.iter().any(|r| r.no_transaction),
                RevisionMark::Current => true,
                // Only the screen knows a target or an unknown state, and out of order is a word.
                RevisionMark::Unknown | RevisionMark::Target | RevisionMark::OutOfOrder => false,
            };
            if !present {
                continue;
            }
            let glyph = mark.glyph(g).expect("a marker");
            let painted = if color {
                ansi(mark.role(), glyph)
            } else {
                glyph.to_string()
            };
            assert!(cli.contains(&painted), "{mark:?} {color}: {cli}");
            assert!(cli.contains(mark.word()), "{mark:?} word: {cli}");
            let theme = Theme { color };
            let on_screen = style_of(&buf, glyph);
            assert!(on_screen.is_some(), "{mark:?} {color} not on screen");
            if color && mark != RevisionMark::Current {
                assert_eq!(
                    on_screen.map(|s| s.fg),
                    Some(theme.role(mark.role()).fg),
                    "{mark:?}"
                );
            }
        }
    }
}

#[test]
fn health_words_are_the_same_in_health_and_the_header() {
    use crate::health::HealthStatus;
    for status in [HealthStatus::Ok, HealthStatus::Degraded] {
        let target = sample::target(Environment::Staging);
        let catalog = sample::catalog();
        let mut h = sample::health_at(&target, &catalog, 4, None);
        h.status = status;
        let cli = text(|out| crate::health::render(out, &h, ON, &crate::clock::Clock::utc()));
        assert!(cli.contains(&ansi(status.role(), status.word())), "{cli}");
        let up_to = if status == HealthStatus::Ok { 4 } else { 3 };
        let app = sample::connected(Environment::Staging, up_to, vec![], vec![], true);
        let theme = Theme { color: true };
        let word = style_after(&screen(&app), "health ", status.word()).map(|s| s.fg);
        assert_eq!(word, Some(theme.role(status.role()).fg), "{status:?}");
    }
}

#[test]
fn checklist_states_are_the_same_words_in_checklist_and_the_overlay() {
    use crate::db::checklist_runs::{ItemShown, ItemState};
    use crate::runbook::{ItemView, RunState};
    let every_item = every(ItemState::Pending, |s| match s {
        ItemState::Pending => Some(ItemState::Passed),
        ItemState::Passed => Some(ItemState::Failed),
        ItemState::Failed => Some(ItemState::Unverified),
        ItemState::Unverified => Some(ItemState::Confirmed),
        ItemState::Confirmed => Some(ItemState::Skipped),
        ItemState::Skipped => None,
    });
    let every_run = every(RunState::NotStarted, |s| match s {
        RunState::NotStarted => Some(RunState::InProgress),
        RunState::InProgress => Some(RunState::Failed),
        RunState::Failed => Some(RunState::Passed),
        RunState::Passed => None,
    });
    // Each item state, automatic and by hand, under each run state in turn.
    let runs = every_run.iter().cycle();
    for ((state, automatic), run) in every_item
        .iter()
        .flat_map(|s| [(*s, true), (*s, false)])
        .zip(runs)
    {
        let item = ItemView {
            id: "backup".into(),
            text: "A fresh backup exists".into(),
            help: String::new(),
            check: automatic.then_some(crate::runbook::definition::CheckKind::Health),
            state,
            operator: None,
            at: None,
            evidence: None,
        };
        let view = crate::runbook::ChecklistView {
            name: "pre-deploy".into(),
            title: "Pre-deploy".into(),
            when: String::new(),
            source: String::new(),
            run_id: Some(3),
            state: *run,
            items: vec![item.clone()],
        };
        let shown = ItemShown { state, automatic };
        let cli = text(|out| {
            super::runbook::render(
                out,
                &view,
                &Look {
                    paint: ON,
                    ..Look::default()
                },
            )
        });
        assert!(cli.contains(&ansi(shown.role(), shown.word())), "{cli}");
        assert!(
            cli.contains(&ansi(view.state.role(), view.state.word())),
            "{cli}"
        );
        let checklists = crate::tui::app::ChecklistState::default();
        assert_eq!(
            crate::tui::ui::checklist_state_label(&checklists, &view, &item),
            shown.word()
        );
    }
}

/// The text without its ANSI escapes.
fn strip(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        rest = after.find('m').map_or("", |m| &after[m + 1..]);
    }
    out.push_str(rest);
    out
}

#[test]
fn colour_adds_only_escapes_so_every_table_keeps_its_columns() {
    use crate::fleet::status::{Row, RowState};
    let off = Look::default();
    let on = Look {
        paint: ON,
        ..Look::default()
    };
    let backfills = crate::tui::app::backfills::sample::rows();
    let events = vec![
        sample::event(3, "up", 2, 3, "failed"),
        sample::event(2, "up", 0, 2, "ok"),
    ];
    let history = crate::ops::history::History {
        applied: vec![],
        events,
    };
    let target = sample::target(Environment::Production);
    let health = sample::health_at(&target, &sample::catalog(), 3, Some(sample::failed_up()));
    let fleet: Vec<Row> = every(RowState::Ok, |s| match s {
        RowState::Ok => Some(RowState::Pending),
        RowState::Pending => Some(RowState::Failed),
        RowState::Failed => Some(RowState::Drift),
        RowState::Drift => Some(RowState::Unreachable),
        RowState::Unreachable => Some(RowState::Error),
        RowState::Error => None,
    })
    .into_iter()
    .map(|state| Row {
        target: format!("t-{}", state.as_str()),
        environment: Environment::Production,
        url: "postgres://db".into(),
        state,
        current: None,
        head: None,
        pending: vec![],
        drift: vec![],
        health: (state != RowState::Unreachable).then_some(crate::health::HealthStatus::Degraded),
        runner_lock: None,
        role: None,
        read_only: None,
        replication: Some("primary"),
        replica_lag_s: None,
        tls: None,
        error: None,
        exit_code: crate::error::ExitCode::Ok,
        elapsed_ms: 3,
    })
    .collect();
    type Render<'a> = Box<dyn Fn(&mut Vec<u8>, &Look) -> std::io::Result<()> + 'a>;
    let renders: Vec<(&str, Render)> = vec![
        (
            "backfill status",
            Box::new(|out, l| super::backfill::status(out, &backfills, l.paint)),
        ),
        (
            "history",
            Box::new(|out, l| crate::output::history(out, &history, l)),
        ),
        (
            "health",
            Box::new(|out, l| crate::health::render(out, &health, l.paint, &l.clock)),
        ),
        (
            "fleet status",
            Box::new(|out, l| super::fleet::status_table(out, &fleet, l.paint)),
        ),
    ];
    for (name, render) in renders {
        let plain = text(|out| render(out, &off));
        let coloured = text(|out| render(out, &on));
        assert!(coloured.contains("\x1b["), "{name} has no colour");
        assert_eq!(strip(&coloured), plain, "{name}");
    }
}
