//! The `:` command line (as in k9s), for the actions that have no key: `:target NAME`,
//! `:backfill NAME`, `:checklist NAME`, `:history 0004`. Unknown commands say so. Part of `update`.

use super::*;

/// The commands, for the help line and the "unknown command" message.
/// The commands, one list for the help overlay (`concat!`) and the unknown-command message.
macro_rules! command_list {
    () => {
        ":target NAME, :fleet [GROUP], :fleet-up [REV], :fleet-backfill NAME, :backfill NAME, \
         :checklist NAME, :history TEXT"
    };
}
pub(crate) use command_list;
pub const COMMANDS: &str = command_list!();

/// Keys while typing a command: text, Backspace, Enter runs it, Esc drops it.
pub(super) fn on_key(app: &mut App, ev: &KeyEvent) -> Vec<Effect> {
    use crossterm::event::{KeyCode, KeyModifiers};
    let Some(line) = app.command.as_mut() else {
        return vec![];
    };
    match ev.code {
        KeyCode::Esc => app.command = None,
        KeyCode::Enter => {
            let line = std::mem::take(line);
            app.command = None;
            return run(app, &line);
        }
        // Backspace on an empty line leaves the command line.
        KeyCode::Backspace if line.pop().is_none() => app.command = None,
        KeyCode::Char('c') if ev.modifiers.contains(KeyModifiers::CONTROL) => {
            app.command = None;
        }
        KeyCode::Char(c) if line.chars().count() < 200 => line.push(c),
        _ => {}
    }
    vec![]
}

/// Run one command line (without its `:`).
pub fn run(app: &mut App, line: &str) -> Vec<Effect> {
    let mut words = line.split_whitespace();
    let (Some(cmd), arg) = (words.next(), words.collect::<Vec<_>>().join(" ")) else {
        return vec![];
    };
    let need = |app: &mut App, what: &str| {
        app.log(
            Level::Warn,
            format!(":{cmd} needs {what} (e.g. :{cmd} {})", example(cmd)),
        );
        vec![]
    };
    match cmd {
        "target" | "t" if arg.is_empty() => need(app, "a target name from the config"),
        "target" | "t" => {
            if app.is_busy() || !app.backfills.local.is_empty() || app.fleet.running() {
                app.log(
                    Level::Warn,
                    "an action runs on this target: wait for it to end before switching targets",
                );
                return vec![];
            }
            if arg == app.target.name {
                app.log(Level::Info, format!("already on target {arg}"));
                return vec![];
            }
            app.log(Level::Info, format!("switching to target {arg}…"));
            vec![Effect::SwitchTarget(arg)]
        }
        "fleet" | "f" => super::fleet::choose_group(app, (!arg.is_empty()).then_some(arg)),
        "fleet-up" | "fu" => {
            let rev = if arg.is_empty() { "head".into() } else { arg };
            super::fleet::plan(app, super::fleet::FleetJob::Up(rev))
        }
        "fleet-backfill" | "fb" if arg.is_empty() => need(app, "a backfill name"),
        "fleet-backfill" | "fb" => super::fleet::plan(app, super::fleet::FleetJob::Backfill(arg)),
        "backfill" | "b" if arg.is_empty() => need(app, "a backfill name"),
        "backfill" | "b" => {
            app.focus = Pane::Backfills;
            select(app, Pane::Backfills, |app, i| {
                app.backfills.rows.get(i).is_some_and(|r| r.name == arg)
            })
            .then(Vec::new)
            .unwrap_or_else(|| {
                let known: Vec<String> =
                    app.backfills.rows.iter().map(|r| r.name.clone()).collect();
                app.log(
                    Level::Warn,
                    format!("no backfill named {arg} (defined: {})", known.join(", ")),
                );
                vec![]
            })
        }
        "checklist" | "c" => {
            app.checklists.wanted = (!arg.is_empty()).then_some(arg.clone());
            if let Some(pos) = app.checklists.views.iter().position(|v| v.name == arg) {
                app.checklists.shown = pos;
                app.checklists.selected = 0;
            }
            checklist::open(app)
        }
        "history" | "h" => {
            app.focus = Pane::History;
            app.pane_mut(Pane::History).filter = arg;
            app.refresh_view(Pane::History);
            app.pane_mut(Pane::History).selected = 0;
            vec![]
        }
        other => {
            app.log(
                Level::Warn,
                format!("unknown command :{other}; the commands are {COMMANDS}"),
            );
            vec![]
        }
    }
}

fn example(cmd: &str) -> &'static str {
    match cmd {
        "target" | "t" => "staging",
        "backfill" | "b" | "fleet-backfill" | "fb" => "hashes",
        _ => "…",
    }
}

/// Put `pane`'s cursor on the first visible row matching `is`; false when none does.
fn select(app: &mut App, pane: Pane, is: impl Fn(&App, usize) -> bool) -> bool {
    if !app.pane(pane).filter.is_empty() {
        app.pane_mut(pane).filter.clear();
        app.refresh_view(pane);
    }
    let pos = app.pane(pane).visible.iter().position(|i| is(app, *i));
    if let Some(pos) = pos {
        app.pane_mut(pane).selected = pos;
    }
    pos.is_some()
}
