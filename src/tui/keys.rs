//! The one key map. Every binding lives in [`BINDINGS`]: key handling ([`action`]), the footer
//! ([`footer`]) and the help overlay ([`help`]) all read it, so they cannot disagree.
//!
//! Adding a feature's keys (e.g. `b` backfills, `c` checklists) is one [`Action`] variant and one
//! [`Binding`] row here, plus its arm in `app::update`.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::Pane;

/// What a key asks for, before it is interpreted against the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    NextPane,
    PrevPane,
    Focus(Pane),
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Filter,
    /// The `:` command line.
    Command,
    Refresh,
    SetTarget,
    Upgrade,
    DowngradeOne,
    DowngradeTo,
    Preview,
    /// Read the row under the cursor whole (Log, History, lock rows).
    Detail,
    CancelBlocker,
    TerminateBlocker,
    /// Revisions pane: re-approve the drifted revision under the cursor (`pgshift accept`).
    Accept,
    /// Backfills pane: dry run, run, pause/resume, cancel the selected backfill.
    BackfillDryRun,
    BackfillRun,
    BackfillPauseResume,
    BackfillCancel,
    /// In a dialog: run the confirmed action (or keep the typed filter).
    Confirm,
    /// In a dialog: close it without running anything (or clear the filter).
    Dismiss,
    /// Open the checklist overlay.
    Checklists,
    /// Checklist overlay: run the selected item's automatic check.
    RunCheck,
    /// Checklist overlay: run every automatic check not done yet in the current run.
    RunAllChecks,
    /// Checklist overlay: confirm the selected item with a typed note.
    ConfirmItem,
    /// Checklist overlay: skip the selected item with a typed reason.
    SkipItem,
    /// Checklist overlay: start a fresh run of the shown checklist.
    NewRun,
    NextChecklist,
    PrevChecklist,
    /// Close the overlay (a running check goes on and is recorded).
    Close,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main screen.
    Main,
    /// An open dialog (confirmation, preview, help) or the filter prompt.
    Dialog,
    /// The checklist overlay (`c`); its note prompt takes text and only Enter/Esc act there.
    Checklist,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Main => "Main screen",
            Scope::Dialog => "Dialogs and the filter prompt",
            Scope::Checklist => "Checklist overlay (c)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const fn key(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::NONE,
    }
}

const fn special(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::NONE,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::CONTROL,
    }
}

pub struct Binding {
    pub scope: Scope,
    pub keys: &'static [Key],
    pub action: Action,
    /// One line for the help overlay.
    pub help: &'static str,
    /// A short label for the footer; `None` keeps it out of the footer (help still lists it).
    pub footer: Option<&'static str>,
}

const fn bind(
    scope: Scope,
    keys: &'static [Key],
    action: Action,
    footer: Option<&'static str>,
    help: &'static str,
) -> Binding {
    Binding {
        scope,
        keys,
        action,
        help,
        footer,
    }
}

use Scope::{Checklist, Dialog, Main};

/// Footer order is table order: the most used actions first, so a narrow terminal keeps them.
pub const BINDINGS: &[Binding] = &[
    bind(
        Main,
        &[key('u')],
        Action::Upgrade,
        Some("upgrade"),
        "Upgrade to the target revision (head when none is set); shows the plan and asks first",
    ),
    bind(
        Main,
        &[key('d')],
        Action::DowngradeOne,
        Some("down 1"),
        "Downgrade one step (destructive: shows the SQL and asks)",
    ),
    bind(
        Main,
        &[key('D')],
        Action::DowngradeTo,
        Some("down to"),
        "Downgrade to the revision under the cursor in Revisions, base included (destructive)",
    ),
    bind(
        Main,
        &[key('p')],
        Action::Preview,
        Some("plan"),
        "Preview the SQL of the planned upgrade (or downgrade to the cursor) without running it",
    ),
    bind(
        Main,
        &[key('c')],
        Action::Checklists,
        Some("checklist"),
        "Checklists: run checks, confirm or skip items (pre-deploy first; recorded)",
    ),
    bind(
        Main,
        &[key('t'), special(KeyCode::Enter)],
        Action::SetTarget,
        Some("target"),
        "Revisions: set the target revision to the row under the cursor; Log, History, Lock conflicts: Enter reads the row whole; Fleet: Enter opens the target",
    ),
    bind(
        Main,
        &[key('v')],
        Action::Detail,
        None,
        "Read the row under the cursor whole: full query, error, SQLSTATE, diagnosis, blockers (c copies it)",
    ),
    bind(
        Main,
        &[key('C')],
        Action::CancelBlocker,
        Some("cancel"),
        "Cancel the selected blocker's query (pg_cancel_backend; asks, audited)",
    ),
    bind(
        Main,
        &[key('K')],
        Action::TerminateBlocker,
        Some("kill"),
        "Terminate the selected blocker's session (pg_terminate_backend; asks, audited)",
    ),
    bind(
        Main,
        &[key('F'), key('6')],
        Action::Focus(Pane::Fleet),
        Some("fleet"),
        "Fleet pane: every target (:fleet GROUP picks a group); u rolls out to head canary first (:fleet-up REV to a revision, :fleet-backfill NAME a backfill), Enter opens a target, Esc stops launching",
    ),
    bind(
        Main,
        &[key('a')],
        Action::Accept,
        None,
        "Re-approve the drifted row's changed files (diff, asks)",
    ),
    bind(
        Main,
        &[key('/')],
        Action::Filter,
        Some("filter"),
        "Filter the focused pane (Enter keeps it, Esc clears it)",
    ),
    bind(
        Main,
        &[key(':')],
        Action::Command,
        None,
        concat!(
            "Command line: ",
            crate::tui::app::command::command_list!(),
            " (Enter runs, Esc drops)"
        ),
    ),
    bind(
        Main,
        &[key('r')],
        Action::Refresh,
        Some("refresh"),
        "Refresh status, history and locks now",
    ),
    bind(Main, &[key('?')], Action::Help, Some("help"), "This help"),
    bind(
        Main,
        &[special(KeyCode::Esc)],
        Action::Dismiss,
        None,
        "Cancel the backfill dry run in flight (on the server); else clear the pane's kept filter",
    ),
    bind(
        Main,
        &[key('q'), ctrl('c')],
        Action::Quit,
        Some("quit"),
        "Quit (asks first while an action runs)",
    ),
    bind(
        Main,
        &[special(KeyCode::Tab)],
        Action::NextPane,
        None,
        "Next pane",
    ),
    bind(
        Main,
        &[special(KeyCode::BackTab)],
        Action::PrevPane,
        None,
        "Previous pane",
    ),
    bind(
        Main,
        &[key('1')],
        Action::Focus(Pane::Revisions),
        None,
        "Revisions pane",
    ),
    bind(
        Main,
        &[key('2')],
        Action::Focus(Pane::History),
        None,
        "History pane",
    ),
    bind(
        Main,
        &[key('3')],
        Action::Focus(Pane::Locks),
        None,
        "Lock conflicts pane",
    ),
    bind(
        Main,
        &[key('4')],
        Action::Focus(Pane::Log),
        None,
        "Log pane",
    ),
    bind(
        Main,
        &[key('5')],
        Action::Focus(Pane::Backfills),
        None,
        "Backfills pane (shares the Log's place)",
    ),
    bind(
        Main,
        &[key('b')],
        Action::BackfillDryRun,
        None,
        "Backfills: dry run of the selected backfill (changes nothing; from another pane: go to Backfills)",
    ),
    bind(
        Main,
        &[key('B')],
        Action::BackfillRun,
        None,
        "Backfills: run the selected backfill (dry run first; asks with its numbers)",
    ),
    bind(
        Main,
        &[key(' ')],
        Action::BackfillPauseResume,
        None,
        "Backfills: pause the selected running backfill / resume a paused, interrupted or failed one",
    ),
    bind(
        Main,
        &[key('x')],
        Action::BackfillCancel,
        None,
        "Backfills: cancel the selected backfill's run (asks; committed batches stay)",
    ),
    bind(
        Main,
        &[key('k'), special(KeyCode::Up)],
        Action::Up,
        None,
        "Move up",
    ),
    bind(
        Main,
        &[key('j'), special(KeyCode::Down)],
        Action::Down,
        None,
        "Move down",
    ),
    bind(
        Main,
        &[special(KeyCode::PageUp)],
        Action::PageUp,
        None,
        "Page up",
    ),
    bind(
        Main,
        &[special(KeyCode::PageDown)],
        Action::PageDown,
        None,
        "Page down",
    ),
    bind(
        Main,
        &[special(KeyCode::Home)],
        Action::Home,
        None,
        "First row",
    ),
    bind(
        Main,
        &[special(KeyCode::End)],
        Action::End,
        None,
        "Last row",
    ),
    bind(
        Dialog,
        &[special(KeyCode::Enter), key('y')],
        Action::Confirm,
        None,
        "Run the action (a production downgrade needs the revision typed, then Enter)",
    ),
    bind(
        Dialog,
        &[special(KeyCode::Esc), key('n')],
        Action::Dismiss,
        None,
        "Close without running anything",
    ),
    bind(
        Dialog,
        &[key('k'), special(KeyCode::Up)],
        Action::Up,
        None,
        "Scroll the SQL up",
    ),
    bind(
        Dialog,
        &[key('j'), special(KeyCode::Down)],
        Action::Down,
        None,
        "Scroll the SQL down",
    ),
    bind(
        Dialog,
        &[ctrl('c')],
        Action::Quit,
        None,
        "Quit (asks first while an action runs)",
    ),
    bind(
        Checklist,
        &[key('r'), special(KeyCode::Enter)],
        Action::RunCheck,
        Some("run check"),
        "Run the selected item's automatic check and record the outcome",
    ),
    bind(
        Checklist,
        &[key('R')],
        Action::RunAllChecks,
        Some("run all"),
        "Run every automatic check not done yet in this run, one after the other",
    ),
    bind(
        Checklist,
        &[key('y')],
        Action::ConfirmItem,
        Some("confirm"),
        "Confirm the selected item: type a note (what you checked), Enter records it",
    ),
    bind(
        Checklist,
        &[key('s')],
        Action::SkipItem,
        Some("skip"),
        "Skip the selected item: type the reason, Enter records it",
    ),
    bind(
        Checklist,
        &[key('n')],
        Action::NewRun,
        Some("new run"),
        "Start a new run of this checklist (the unfinished one stays recorded)",
    ),
    bind(
        Checklist,
        &[key('l'), special(KeyCode::Right)],
        Action::NextChecklist,
        Some("next list"),
        "Next checklist",
    ),
    bind(
        Checklist,
        &[key('h'), special(KeyCode::Left)],
        Action::PrevChecklist,
        None,
        "Previous checklist",
    ),
    bind(
        Checklist,
        &[key('k'), special(KeyCode::Up)],
        Action::Up,
        None,
        "Previous item",
    ),
    bind(
        Checklist,
        &[key('j'), special(KeyCode::Down)],
        Action::Down,
        None,
        "Next item",
    ),
    bind(Checklist, &[key('?')], Action::Help, None, "This help"),
    bind(
        Checklist,
        &[special(KeyCode::Esc), key('q'), key('c')],
        Action::Close,
        Some("close"),
        "Close the overlay (a running check goes on and is recorded)",
    ),
    bind(
        Checklist,
        &[ctrl('c')],
        Action::Quit,
        None,
        "Quit (asks first while an action runs)",
    ),
];

/// The action bound to `ev` in `scope`, if any. Key releases (Windows, kitty) are ignored.
pub fn action(scope: Scope, ev: &KeyEvent) -> Option<Action> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    // Shift is implied by an upper-case char; BackTab already means Shift-Tab.
    let mods = match ev.code {
        KeyCode::Char(_) | KeyCode::BackTab => ev.modifiers - KeyModifiers::SHIFT,
        _ => ev.modifiers,
    };
    BINDINGS
        .iter()
        .filter(|b| b.scope == scope)
        .find(|b| b.keys.iter().any(|k| k.code == ev.code && k.mods == mods))
        .map(|b| b.action)
}

/// How a key is written in the footer and help.
pub fn label(k: &Key) -> String {
    let base = match k.code {
        KeyCode::Char(' ') => "Space".into(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        KeyCode::Up => "Up".into(),
        KeyCode::Left => "Left".into(),
        KeyCode::Right => "Right".into(),
        KeyCode::Down => "Down".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        other => format!("{other:?}"),
    };
    if k.mods.contains(KeyModifiers::CONTROL) {
        format!("Ctrl-{}", base.to_uppercase())
    } else {
        base
    }
}

/// `(keys, label)` pairs for the footer of `scope`, in table order.
pub fn footer(scope: Scope) -> Vec<(String, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| b.scope == scope)
        .filter_map(|b| Some((label(b.keys.first()?), b.footer?)))
        .collect()
}

/// `(scope, keys, description)` rows for the help overlay.
pub fn help() -> Vec<(Scope, String, &'static str)> {
    BINDINGS
        .iter()
        .map(|b| {
            (
                b.scope,
                b.keys.iter().map(label).collect::<Vec<_>>().join(" / "),
                b.help,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn every_key_is_bound_once_per_scope() {
        for scope in [Scope::Main, Scope::Dialog, Scope::Checklist] {
            let keys: Vec<&Key> = BINDINGS
                .iter()
                .filter(|b| b.scope == scope)
                .flat_map(|b| b.keys)
                .collect();
            for (i, k) in keys.iter().enumerate() {
                assert!(
                    !keys[i + 1..].contains(k),
                    "{} bound twice in {scope:?}",
                    label(k)
                );
            }
        }
    }

    #[test]
    fn upper_case_letters_arrive_with_shift_and_still_match() {
        assert_eq!(
            action(Scope::Main, &ev(KeyCode::Char('D'), KeyModifiers::SHIFT)),
            Some(Action::DowngradeTo)
        );
        assert_eq!(
            action(Scope::Main, &ev(KeyCode::Char('d'), KeyModifiers::NONE)),
            Some(Action::DowngradeOne)
        );
        assert_eq!(
            action(Scope::Main, &ev(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevPane)
        );
    }

    #[test]
    fn ctrl_c_quits_in_every_scope_but_plain_c_opens_or_closes_the_checklists() {
        assert_eq!(
            action(Scope::Main, &ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            action(
                Scope::Dialog,
                &ev(KeyCode::Char('c'), KeyModifiers::CONTROL)
            ),
            Some(Action::Quit)
        );
        assert_eq!(
            action(
                Scope::Checklist,
                &ev(KeyCode::Char('c'), KeyModifiers::CONTROL)
            ),
            Some(Action::Quit)
        );
        assert_eq!(
            action(Scope::Main, &ev(KeyCode::Char('c'), KeyModifiers::NONE)),
            Some(Action::Checklists)
        );
        assert_eq!(
            action(
                Scope::Checklist,
                &ev(KeyCode::Char('c'), KeyModifiers::NONE)
            ),
            Some(Action::Close)
        );
    }

    #[test]
    fn footer_and_help_come_from_the_table() {
        let footer = footer(Scope::Main);
        assert_eq!(footer.first(), Some(&("u".to_string(), "upgrade")));
        assert!(footer.iter().any(|(k, l)| k == "c" && *l == "checklist"));
        let overlay = super::footer(Scope::Checklist);
        assert_eq!(overlay.first(), Some(&("r".to_string(), "run check")));
        assert!(!overlay.iter().any(|(k, _)| k == "u"));
        assert!(footer.iter().any(|(k, l)| k == "q" && *l == "quit"));
        let help = help();
        assert_eq!(help.len(), BINDINGS.len());
        assert!(help.iter().any(|(_, k, _)| k == "q / Ctrl-C"));
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut e = ev(KeyCode::Char('u'), KeyModifiers::NONE);
        e.kind = KeyEventKind::Release;
        assert_eq!(action(Scope::Main, &e), None);
    }
}
