//! The words, markers and colour roles of every state both shells show, in one place: the TUI
//! maps a [`Role`] to a ratatui style (`tui::ui::theme`), the CLI to an ANSI escape ([`Paint`]).
//! A leaf: the domain's state enums implement [`Marked`] next to their definitions, and nothing
//! here knows a terminal library.
//!
//! Rules both shells follow: a bad state is a word in capitals (`FAILED`, `DRIFT`, `DEGRADED`)
//! so it stands out without colour; with colour the markers are the Unicode ones, without it
//! they are plain letters ([`PLAIN`]), so state never depends on colour or emoji.

use std::fmt;

/// What a colour means. Each shell maps every role the same way (see the README's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No colour.
    Plain,
    /// Done and fine: green.
    Ok,
    /// Needs a look, not broken: bold yellow.
    Warn,
    /// Broken or refused: bold red.
    Error,
    /// Broken right now and in the way: bold red, reversed.
    Alarm,
    /// Background, stale or not applicable: dark grey.
    Dim,
    /// Where you are (current revision, titles): bold.
    Strong,
    /// pgshift's own sessions, the selected target: bold cyan.
    Accent,
    /// A production target: bold white on red.
    Production,
    /// The local throwaway cluster: bold black on yellow.
    Sandbox,
}

impl Role {
    /// Every role, for the tests that check both shells map each one.
    pub const ALL: [Role; 10] = [
        Role::Plain,
        Role::Ok,
        Role::Warn,
        Role::Error,
        Role::Alarm,
        Role::Dim,
        Role::Strong,
        Role::Accent,
        Role::Production,
        Role::Sandbox,
    ];

    /// The SGR parameters of this role (`1;31`), empty for [`Role::Plain`]. The TUI theme maps
    /// the same roles to the same colours and modifiers (tested in `tui::ui::theme`).
    pub fn sgr(self) -> &'static str {
        match self {
            Role::Plain => "",
            Role::Ok => "32",
            Role::Warn => "1;33",
            Role::Error => "1;31",
            Role::Alarm => "1;7;31",
            Role::Dim => "90",
            Role::Strong => "1",
            Role::Accent => "1;36",
            Role::Production => "1;97;41",
            Role::Sandbox => "1;30;43",
        }
    }
}

/// A state both shells show: the word for it and what its colour means.
pub trait Marked {
    fn word(&self) -> &'static str;
    fn role(&self) -> Role;
}

/// The markers of revisions, locks and the log, in both forms.
#[derive(Debug, PartialEq, Eq)]
pub struct Glyphs {
    pub applied: &'static str,
    pub pending: &'static str,
    pub unknown: &'static str,
    pub drift: &'static str,
    pub irreversible: &'static str,
    pub no_transaction: &'static str,
    pub current: &'static str,
    pub target: &'static str,
    pub waiter: &'static str,
    pub blocker: &'static str,
    pub error: &'static str,
    pub warn: &'static str,
}

pub const UNICODE: Glyphs = Glyphs {
    applied: "✓",
    pending: "·",
    unknown: "?",
    drift: "!",
    irreversible: "⊘",
    no_transaction: "⚡",
    current: "◀",
    target: "▶",
    waiter: "⏳",
    blocker: "└",
    error: "✗",
    warn: "!",
};

/// Letters: A applied, P pending, ! drift, I irreversible, N no-transaction.
pub const PLAIN: Glyphs = Glyphs {
    applied: "A",
    pending: "P",
    unknown: "?",
    drift: "!",
    irreversible: "I",
    no_transaction: "N",
    current: "<",
    target: ">",
    waiter: "W",
    blocker: "`-",
    error: "E",
    warn: "W",
};

/// Whether colours are allowed by the environment: https://no-color.org (any non-empty NO_COLOR
/// disables them).
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The Unicode markers with colour, the letters without.
pub fn glyphs(color: bool) -> &'static Glyphs {
    if color { &UNICODE } else { &PLAIN }
}

/// One fact about a revision, as a marker and a word (revisions pane, `pgshift status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisionMark {
    Applied,
    Pending,
    /// The database could not be asked (the TUI before its first status).
    Unknown,
    Drift,
    Irreversible,
    NoTransaction,
    Current,
    Target,
    OutOfOrder,
}

impl RevisionMark {
    /// The marker, or `None` for a fact shown only as a word.
    pub fn glyph(self, g: &Glyphs) -> Option<&'static str> {
        Some(match self {
            RevisionMark::Applied => g.applied,
            RevisionMark::Pending => g.pending,
            RevisionMark::Unknown => g.unknown,
            RevisionMark::Drift => g.drift,
            RevisionMark::Irreversible => g.irreversible,
            RevisionMark::NoTransaction => g.no_transaction,
            RevisionMark::Current => g.current,
            RevisionMark::Target => g.target,
            RevisionMark::OutOfOrder => return None,
        })
    }
}

impl Marked for RevisionMark {
    fn word(&self) -> &'static str {
        match self {
            RevisionMark::Applied => "applied",
            RevisionMark::Pending => "pending",
            RevisionMark::Unknown => "unknown",
            RevisionMark::Drift => "DRIFT",
            RevisionMark::Irreversible => "irreversible (no down)",
            RevisionMark::NoTransaction => "no-transaction",
            RevisionMark::Current => "current",
            RevisionMark::Target => "target",
            RevisionMark::OutOfOrder => "out of order",
        }
    }

    fn role(&self) -> Role {
        match self {
            RevisionMark::Applied => Role::Ok,
            RevisionMark::Pending | RevisionMark::Irreversible | RevisionMark::NoTransaction => {
                Role::Warn
            }
            RevisionMark::Unknown => Role::Dim,
            RevisionMark::Drift => Role::Error,
            RevisionMark::Current => Role::Strong,
            RevisionMark::Target => Role::Accent,
            RevisionMark::OutOfOrder => Role::Plain,
        }
    }
}

/// How an audited action ended, as the History pane and `pgshift history` show it: the audit
/// outcome (`db::audit::Outcome`), refined by what became of a backfill's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeMark {
    Ok,
    Failed,
    Refused,
    /// Under way (or its process died before it could say).
    Started,
    Interrupted,
    /// A backfill that ended paused: nothing failed, but the work is not done.
    Paused,
    Cancelled,
}

impl OutcomeMark {
    /// From an audit row's `outcome` and its detail's `state`: a backfill that ended paused,
    /// cancelled or interrupted is not `ok` (its audit outcome is, since nothing failed). Only
    /// pgshift writes outcomes; anything else reads as a failure, as in `db::audit`.
    pub fn of(outcome: &str, state: Option<&str>) -> OutcomeMark {
        match (outcome, state) {
            ("ok", Some("paused")) => OutcomeMark::Paused,
            ("ok", Some("cancelled")) => OutcomeMark::Cancelled,
            ("ok", Some("interrupted")) | ("interrupted", _) => OutcomeMark::Interrupted,
            ("ok", _) => OutcomeMark::Ok,
            ("refused", _) => OutcomeMark::Refused,
            ("started", _) => OutcomeMark::Started,
            _ => OutcomeMark::Failed,
        }
    }
}

impl Marked for OutcomeMark {
    fn word(&self) -> &'static str {
        match self {
            OutcomeMark::Ok => "ok",
            OutcomeMark::Failed => "FAILED",
            OutcomeMark::Refused => "REFUSED",
            OutcomeMark::Started => "started",
            OutcomeMark::Interrupted => "interrupted",
            OutcomeMark::Paused => "paused",
            OutcomeMark::Cancelled => "cancelled",
        }
    }

    fn role(&self) -> Role {
        match self {
            OutcomeMark::Ok => Role::Ok,
            OutcomeMark::Failed | OutcomeMark::Refused => Role::Error,
            OutcomeMark::Started
            | OutcomeMark::Interrupted
            | OutcomeMark::Paused
            | OutcomeMark::Cancelled => Role::Warn,
        }
    }
}

/// The CLI's colour: ANSI escapes around text when on (a terminal, no `NO_COLOR`, or
/// `--color always`), the text alone when off. JSON is never painted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Paint {
    pub color: bool,
}

impl Paint {
    pub const PLAIN: Paint = Paint { color: false };

    /// `text` in `role`'s colour. Width and alignment (`{:<12}`) apply to the text, not the escapes.
    pub fn role<T: fmt::Display>(self, role: Role, text: T) -> Painted<T> {
        Painted {
            sgr: if self.color { role.sgr() } else { "" },
            text,
        }
    }

    /// A state's word in its colour.
    pub fn word(self, m: &impl Marked) -> Painted<&'static str> {
        self.role(m.role(), m.word())
    }

    /// The markers to use: Unicode with colour, letters without (as the TUI).
    pub fn glyphs(self) -> &'static Glyphs {
        glyphs(self.color)
    }
}

/// Text and the escape that colours it; see [`Paint::role`].
pub struct Painted<T> {
    sgr: &'static str,
    text: T,
}

impl<T: fmt::Display> fmt::Display for Painted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text.to_string();
        // Nothing to colour: no escapes around an empty cell.
        if self.sgr.is_empty() || text.is_empty() {
            return f.pad(&text);
        }
        // The padding goes outside the escapes, so a coloured background stops at the text.
        let fill = f.width().unwrap_or(0).saturating_sub(text.chars().count());
        let (left, right) = match f.align() {
            Some(fmt::Alignment::Right) => (fill, 0),
            Some(fmt::Alignment::Center) => (fill / 2, fill - fill / 2),
            _ => (0, fill),
        };
        let pad = |n: usize| f.fill().to_string().repeat(n);
        let (before, after) = (pad(left), pad(right));
        write!(f, "{before}\x1b[{}m{text}\x1b[0m{after}", self.sgr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn painted_text_keeps_its_width_outside_the_escapes() {
        let on = Paint { color: true };
        assert_eq!(
            format!("[{:<6}]", on.role(Role::Error, "FAIL")),
            "[\x1b[1;31mFAIL\x1b[0m  ]"
        );
        assert_eq!(
            format!("[{:>6}]", Paint::PLAIN.role(Role::Ok, 42)),
            "[    42]"
        );
        assert_eq!(format!("{}", on.role(Role::Plain, "x")), "x");
    }

    #[test]
    fn audit_outcomes_say_what_became_of_the_work() {
        assert_eq!(OutcomeMark::of("ok", Some("paused")), OutcomeMark::Paused);
        assert_eq!(OutcomeMark::of("ok", Some("done")), OutcomeMark::Ok);
        assert_eq!(OutcomeMark::of("failed", None).word(), "FAILED");
        assert_eq!(
            OutcomeMark::of("interrupted", None),
            OutcomeMark::Interrupted
        );
        assert_eq!(OutcomeMark::of("garbage", None), OutcomeMark::Failed);
    }

    #[test]
    fn both_marker_sets_name_every_revision_fact_distinctly() {
        use RevisionMark::*;
        for g in [&UNICODE, &PLAIN] {
            let shown: Vec<_> = [
                Applied,
                Pending,
                Unknown,
                Drift,
                Irreversible,
                NoTransaction,
            ]
            .iter()
            .filter_map(|m| m.glyph(g))
            .collect();
            let mut unique = shown.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), shown.len(), "{shown:?}");
        }
        assert!(PLAIN.applied.is_ascii() && PLAIN.no_transaction.is_ascii());
    }
}
