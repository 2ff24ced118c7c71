//! Render cost of one full frame of the operator screen with 10,000 history rows and 500 lock
//! rows (250 waiters with one blocker each), drawn into ratatui's TestBackend. Median over many
//! frames, with the cursor moving so each frame really differs.
//!
//! Run: cargo bench --bench tui_render            (target: median <= 2 ms per frame)

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use pgshift::tui::app::{Msg, update};
use pgshift::tui::{sample, ui};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const FRAMES: usize = 2000;
const WARMUP: usize = 100;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn bench(label: &str, width: u16, height: u16) {
    let mut app = sample::big(10_000, 250);
    update(&mut app, Msg::Resize { width, height });
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    // Focus the history pane so moving the cursor scrolls 10,000 rows.
    update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::NONE)),
    );
    let step = |app: &mut pgshift::tui::app::App, i: usize| {
        let code = if i % 500 < 250 {
            KeyCode::PageDown
        } else {
            KeyCode::PageUp
        };
        update(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    };
    for i in 0..WARMUP {
        step(&mut app, i);
        terminal.draw(|f| ui::draw(&app, f)).expect("draw");
    }
    let mut times = Vec::with_capacity(FRAMES);
    for i in 0..FRAMES {
        step(&mut app, i);
        let t = Instant::now();
        terminal.draw(|f| ui::draw(&app, f)).expect("draw");
        times.push(t.elapsed());
    }
    let p99 = {
        let mut v = times.clone();
        v.sort_unstable();
        v[v.len() * 99 / 100]
    };
    println!(
        "{label:>8}: median {:>7.3} ms/frame, p99 {:>7.3} ms ({FRAMES} frames; {} history rows, {} lock rows)",
        median(times).as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        app.history.len(),
        app.lock_rows.len(),
    );
}

/// The update side: loading 10,000 events (re-filtering the pane) and applying a monitor snapshot
/// with 250 conflicts, as happens about once a second.
fn bench_updates() {
    let app = sample::big(10_000, 250);
    let events = app.history.clone();
    let conflicts = app.conflicts.clone();
    let status = app.status.clone().expect("sample has a status");
    let mut app = sample::big(0, 0);
    let mut load = Vec::new();
    let mut snap = Vec::new();
    for _ in 0..50 {
        let msg = Msg::History(Ok(pgshift::ops::history::History {
            applied: vec![],
            events: events.clone(),
        }));
        let t = Instant::now();
        update(&mut app, msg);
        load.push(t.elapsed());
        let target = sample::target(pgshift::config::Environment::Production);
        let msg = sample::snapshot(
            &target,
            &sample::catalog(),
            status.clone(),
            conflicts.clone(),
            None,
        );
        let t = Instant::now();
        update(&mut app, msg);
        snap.push(t.elapsed());
    }
    println!(
        "  update: load 10,000 events median {:.3} ms; monitor snapshot with 250 conflicts median {:.3} ms",
        median(load).as_secs_f64() * 1e3,
        median(snap).as_secs_f64() * 1e3
    );
}

fn main() {
    bench_updates();
    bench("80x24", 80, 24);
    bench("120x40", 120, 40);
    bench("200x60", 200, 60);
}
