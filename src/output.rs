//! All command output goes through here: one JSON document on stdout with `--json`, human text
//! otherwise; progress and messages on stderr. Human text uses the TUI's words, markers and
//! colours (`crate::marks`) and its clock (`crate::clock`): a [`Look`].

use std::io::Write;

use crate::clock::Clock;
use crate::error::{Error, ExitCode};
use crate::marks::{Marked, OutcomeMark, Paint, RevisionMark, Role};
use crate::ops::history::History;
use crate::ops::status::Status;
use crate::plan::{Direction, Plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

// The text helpers live in the leaf `text` module; re-exported for the shells.
pub use crate::text::{human_duration_ms, human_duration_s, joined, one_line};

/// How human text looks: coloured or not (`--color`, `NO_COLOR`, a terminal), and the clock
/// times are shown on (local with its zone, or UTC with `--utc` / `[tui] time = "utc"`).
#[derive(Debug, Clone, Default)]
pub struct Look {
    pub paint: Paint,
    pub clock: Clock,
}

/// The JSON document for a command that ran to the end and exits with `code`: `ok` follows
/// [`ExitCode::is_ok`], and `exit_code` is the process's exit code, so a script can read either.
pub fn json_result(
    command: &str,
    result: &impl serde::Serialize,
    code: ExitCode,
) -> serde_json::Value {
    serde_json::json!({
        "ok": code.is_ok(),
        "command": command,
        "exit_code": code as u8,
        "result": result,
    })
}

pub fn json_error(command: &str, e: &Error) -> serde_json::Value {
    serde_json::json!({
        "ok": false,
        "command": command,
        "exit_code": e.exit_code() as u8,
        "error": {
            "kind": e.kind(),
            "message": crate::secrets::redact(&e.to_string()),
            "sqlstate": e.sqlstate(),
            "diagnosis": e.diagnosis(),
            "exit_code": e.exit_code() as u8,
        }
    })
}

/// Where a command's human result goes: stdout, buffered (one write instead of one per line).
pub type Out = std::io::BufWriter<std::io::StdoutLock<'static>>;

/// Print what a command that ran to its end found, and return the code it exits with: the JSON
/// document (`ok` follows `code`), or the human text on stdout.
pub fn finish<T: serde::Serialize>(
    format: Format,
    command: &str,
    value: &T,
    code: ExitCode,
    human: impl FnOnce(&mut Out) -> std::io::Result<()>,
) -> ExitCode {
    match format {
        Format::Json => print_json(&json_result(command, value, code)),
        Format::Human => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            // A closed pipe is not worth reporting.
            human(&mut out).and_then(|()| out.flush()).ok();
        }
    }
    code
}

pub fn print_json(doc: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    serde_json::to_writer_pretty(&mut out, doc).ok();
    writeln!(out).ok();
}

pub use crate::event::line::event_line;

pub fn status(out: &mut impl Write, s: &Status, look: &Look) -> std::io::Result<()> {
    status_header(out, s, look.paint)?;
    writeln!(out)?;
    for r in &s.revisions {
        revision_row(out, r, r.revision == s.current, look)?;
    }
    if s.revisions.is_empty() {
        writeln!(out, "  (no migrations in the catalog)")?;
    }
    status_drift(out, s, look.paint)?;
    status_findings(out, s, look.paint)
}

/// Target, server, TLS, topology, current and head revision, the runner lock.
fn status_header(out: &mut impl Write, s: &Status, paint: Paint) -> std::io::Result<()> {
    let env = format!("[{}]", s.environment.as_str());
    let env_role = if s.environment.is_production() {
        Role::Production
    } else {
        Role::Plain
    };
    writeln!(
        out,
        "target   {} ({}) {}",
        s.target,
        s.url,
        paint.role(env_role, env)
    )?;
    writeln!(
        out,
        "server   PostgreSQL {}, database {}, role {}{}",
        s.server.version,
        s.server.database,
        s.server.role,
        if s.server.read_only {
            format!(", {}", paint.role(Role::Warn, "READ ONLY"))
        } else {
            String::new()
        }
    )?;
    writeln!(out, "tls      {}", s.server.tls.describe())?;
    if let Some(t) = &s.topology {
        topology(out, t)?;
    }
    let label = |rev| {
        s.revisions
            .iter()
            .find(|r| r.revision == rev)
            .map(|r| format!("{}_{}", r.revision, r.name))
            .unwrap_or_else(|| rev.to_string())
    };
    writeln!(out, "current  {}", label(s.current))?;
    // As the TUI header: "(up to date)" in green, "(N pending)" in yellow.
    let head = match s.pending.len() {
        0 => paint.role(Role::Ok, "(up to date)".to_string()),
        n => paint.role(Role::Warn, format!("({n} pending)")),
    };
    writeln!(out, "head     {} {head}", label(s.head))?;
    match &s.runner_lock {
        Some(h) => writeln!(
            out,
            "runner   {}",
            paint.role(Role::Warn, format!("lock held by {h}"))
        ),
        None => writeln!(out, "runner   lock free"),
    }
}

/// Where the database and the files disagree, with the diffs.
fn status_drift(out: &mut impl Write, s: &Status, paint: Paint) -> std::io::Result<()> {
    if s.drift.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n{}: the database and the files disagree",
        paint.word(&RevisionMark::Drift)
    )?;
    for d in &s.drift {
        writeln!(out, "  - {d}")?;
        drift_diff(out, d)?;
    }
    if s.drift.iter().any(|d| {
        matches!(
            d,
            crate::plan::Drift::ChecksumChanged { .. } | crate::plan::Drift::DownChanged { .. }
        )
    }) {
        writeln!(
            out,
            "  If a file's change is intended: `pgshift accept REV` re-approves it (audited)."
        )?;
    }
    Ok(())
}

/// Empty migrations, INVALID indexes, lint of pending migrations, an Alembic history.
fn status_findings(out: &mut impl Write, s: &Status, paint: Paint) -> std::io::Result<()> {
    if !s.scaffolds.is_empty() {
        writeln!(
            out,
            "\nempty: fill it in (no SQL yet; `up` refuses to run until these have some or are deleted):"
        )?;
        for m in &s.scaffolds {
            writeln!(out, "  - {} ({})", m.file, m.revision)?;
        }
    }
    if !s.invalid_indexes.is_empty() {
        writeln!(
            out,
            "\nINVALID indexes (left by a failed CREATE INDEX CONCURRENTLY):"
        )?;
        for i in &s.invalid_indexes {
            writeln!(
                out,
                "  - {} on {}: drop it (DROP INDEX CONCURRENTLY) or rerun the migration, which drops it first",
                i.index, i.table
            )?;
        }
    }
    if s.lint.iter().any(|l| !l.findings.is_empty()) {
        writeln!(
            out,
            "\nlint of pending migrations (`pgshift lint` for why and the safe rewrite):"
        )?;
        crate::lint::render::findings(out, &s.lint, false, paint)?;
    }
    if let Some(v) = &s.alembic_version {
        writeln!(
            out,
            "\nalembic_version holds {v}. pgshift keeps its own history; if the schema is at that Alembic revision, adopt it with `pgshift stamp {v}`."
        )?;
    }
    Ok(())
}

/// One revision of `pgshift status`: the markers of the TUI's revisions pane (state, current,
/// drift, irreversible, no-transaction), then the name and every fact as a word.
fn revision_row(
    out: &mut impl Write,
    r: &crate::ops::status::RevisionRow,
    current: bool,
    look: &Look,
) -> std::io::Result<()> {
    let paint = look.paint;
    let g = paint.glyphs();
    let glyph = |m: RevisionMark| paint.role(m.role(), m.glyph(g).unwrap_or(" "));
    let state = if r.applied {
        RevisionMark::Applied
    } else {
        RevisionMark::Pending
    };
    let here = current && !r.revision.is_base();
    let mut notes: Vec<String> = Vec::new();
    if here {
        notes.push(paint.word(&RevisionMark::Current).to_string());
    }
    notes.push(match (r.applied, &r.applied_on) {
        (true, Some(on)) => format!("{} {}", paint.word(&state), look.clock.format(on)),
        _ => paint.word(&state).to_string(),
    });
    for (on, mark) in [
        (!r.reversible, RevisionMark::Irreversible),
        (r.no_transaction, RevisionMark::NoTransaction),
        (r.out_of_order, RevisionMark::OutOfOrder),
        (r.drift, RevisionMark::Drift),
    ] {
        if on {
            notes.push(paint.word(&mark).to_string());
        }
    }
    let flag = |on: bool, m: RevisionMark| {
        if on {
            glyph(m).to_string()
        } else {
            // The slot keeps its width, so names line up (`⚡` is two columns wide).
            " ".repeat(if paint.color && m == RevisionMark::NoTransaction {
                2
            } else {
                1
            })
        }
    };
    writeln!(
        out,
        "{} {:<4} {} {}{}{} {:<36} {}",
        glyph(state),
        r.revision.to_string(),
        if here {
            glyph(RevisionMark::Current).to_string()
        } else {
            " ".into()
        },
        flag(r.drift, RevisionMark::Drift),
        flag(!r.reversible, RevisionMark::Irreversible),
        flag(r.no_transaction, RevisionMark::NoTransaction),
        r.name,
        notes.join(", ")
    )
}

/// The diff of a changed file under its drift line, indented.
pub fn drift_diff(out: &mut impl Write, d: &crate::plan::Drift) -> std::io::Result<()> {
    use crate::plan::Drift;
    if let Drift::ChecksumChanged {
        diff: Some(diff), ..
    }
    | Drift::DownChanged {
        diff: Some(diff), ..
    } = d
    {
        for line in diff.lines() {
            writeln!(out, "      {line}")?;
        }
    }
    Ok(())
}

/// `topology primary, 1 replica(s)` and one line per replica, or the standby and its primary.
fn topology(out: &mut impl Write, t: &crate::db::topology::Topology) -> std::io::Result<()> {
    if t.is_standby() {
        writeln!(
            out,
            "topology {}; up, down, stamp and backfills are refused here",
            t.summary()
        )?;
        return Ok(());
    }
    match t.replicas.len() {
        0 => writeln!(out, "topology primary, no replicas")?,
        n => writeln!(out, "topology primary, {n} replica(s)")?,
    }
    for r in &t.replicas {
        writeln!(out, "replica  {r}")?;
    }
    Ok(())
}

/// Applied migrations and audit events, newest first, as the History pane shows them: local time
/// with its zone (or UTC), the outcome word that says what became of the work, durations with
/// their unit.
pub fn history(out: &mut impl Write, h: &History, look: &Look) -> std::io::Result<()> {
    let paint = look.paint;
    writeln!(out, "applied migrations (newest first):")?;
    if h.applied.is_empty() {
        writeln!(out, "  none")?;
    }
    for r in &h.applied {
        writeln!(
            out,
            "  {}  {:<36} {}{}",
            r.revision,
            r.name,
            r.applied_on
                .as_deref()
                .map(|on| look.clock.format(on))
                .unwrap_or_default(),
            if r.drift {
                format!("  {}", paint.word(&RevisionMark::Drift))
            } else {
                String::new()
            }
        )?;
    }
    writeln!(out, "\naudit events (newest first):")?;
    if h.events.is_empty() {
        writeln!(out, "  none")?;
    }
    for e in &h.events {
        let range = match (e.from_revision, e.to_revision) {
            (Some(f), Some(t)) => format!("{f}→{t}"),
            _ => String::new(),
        };
        let state = e.detail.get("state").and_then(|s| s.as_str());
        let outcome = OutcomeMark::of(e.outcome.as_str(), state);
        writeln!(
            out,
            "  {}  {:<24} {:<9} {:<10} {:<11} {:>7}",
            look.clock.format(&e.at),
            one_line(&e.operator, 24),
            e.action,
            range,
            paint.word(&outcome),
            e.duration_ms.map(human_duration_ms).unwrap_or_default()
        )?;
        if let Some(err) = &e.error {
            writeln!(out, "      {}", paint.role(Role::Error, one_line(err, 160)))?;
        }
    }
    Ok(())
}

/// The plan, with the exact SQL that would run.
pub fn plan(out: &mut impl Write, p: &Plan) -> std::io::Result<()> {
    if p.is_empty() {
        return writeln!(out, "nothing to do: the database is at {}", p.from);
    }
    writeln!(
        out,
        "{} {} -> {}: {} step(s){}",
        p.direction.verb(),
        p.from,
        p.to,
        p.steps.len(),
        if p.is_destructive() {
            " (DESTRUCTIVE: down migrations drop schema and data)"
        } else {
            ""
        }
    )?;
    if let Some(note) = p.out_of_order_note() {
        writeln!(out, "{note}")?;
    }
    for s in &p.steps {
        let how = s.how();
        writeln!(
            out,
            "\n-- {} {} ({how})",
            if s.direction == Direction::Up {
                "up"
            } else {
                "down"
            },
            s.label()
        )?;
        writeln!(out, "{}", s.sql.trim_end())?;
    }
    Ok(())
}
