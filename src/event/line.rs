//! One progress event as a human line: what the CLI prints on stderr, the TUI's log pane shows and
//! the log file records.

use super::{Event, Level};
use crate::plan::Direction;
use crate::text::{count, human_duration_ms, human_duration_s, joined, percent, took};

/// One progress event as a human line on stderr, worded by its family.
pub fn event_line(e: &Event) -> Option<String> {
    match e {
        Event::LockBusy { .. }
        | Event::StepStarted { .. }
        | Event::Statement { .. }
        | Event::Blocked { .. }
        | Event::StepRetry { .. }
        | Event::StepFinished { .. } => step_line(e),
        Event::Log { level, message } => Some(match level {
            Level::Info | Level::Error => message.clone(),
            Level::Warn => format!("warning: {message}"),
        }),
        Event::BackfillStarted { .. }
        | Event::BackfillRetry { .. }
        | Event::BackfillStopped { .. } => backfill_line(e),
        Event::BackfillProgress { .. } => Some(backfill_progress_line(e)),
        Event::ReplicaWait { .. } => replica_wait_line(e),
    }
}

/// A migration run's lines: the runner lock, each step's start, statements, waits and end.
fn step_line(e: &Event) -> Option<String> {
    Some(match e {
        Event::LockBusy { holder } => format!("waiting for the runner lock, held by {holder}"),
        Event::StepStarted {
            index,
            total,
            revision,
            name,
            direction,
        } => {
            let arrow = if *direction == Direction::Up {
                "up  "
            } else {
                "down"
            };
            format!("[{index}/{total}] {arrow} {revision}_{name} ...")
        }
        Event::Statement { line, text, .. } => format!("        line {line}: {text}"),
        Event::Blocked { revision, blockers } => format!(
            "        {revision} waits for a lock held by {}",
            joined(blockers)
        ),
        Event::StepRetry {
            revision,
            attempt,
            attempts,
            reason,
            delay,
            blockers,
        } => format!(
            "        {revision} attempt {attempt}/{attempts}: {reason}{}; retrying in {}",
            crate::sessions::blocked_by(blockers),
            took(*delay)
        ),
        Event::StepFinished {
            revision,
            elapsed,
            attempts,
        } => format!(
            "        {revision} done in {}{}",
            took(*elapsed),
            if *attempts > 1 {
                format!(" after {attempts} attempts")
            } else {
                String::new()
            }
        ),
        _ => return None,
    })
}

/// A backfill run's start (or resume), batch retries and end; progress has its own line.
fn backfill_line(e: &Event) -> Option<String> {
    Some(match e {
        Event::BackfillStarted {
            name,
            run_id,
            resumed_from,
            rows_done,
            rows_estimate,
            batch_size,
        } => match resumed_from {
            Some(cursor) => format!(
                "backfill {name}: resuming run #{run_id} after key {cursor} ({} rows done, about {} to go, batch {})",
                count(*rows_done),
                count((rows_estimate - rows_done).max(0)),
                count(*batch_size)
            ),
            None => format!(
                "backfill {name}: run #{run_id} started, {} rows to do (batch {})",
                count(*rows_estimate),
                count(*batch_size)
            ),
        },
        Event::BackfillRetry {
            name,
            attempt,
            attempts,
            reason,
            delay,
            batch_size,
        } => format!(
            "backfill {name}: batch attempt {attempt}/{attempts} failed: {reason}; retrying in {} with batch {}",
            took(*delay),
            count(*batch_size)
        ),
        Event::BackfillStopped {
            name,
            run_id,
            state,
            rows_done,
            elapsed,
            next,
        } => format!(
            "backfill {name}: run #{run_id} {state} after {} rows in {}{}",
            count(*rows_done),
            took(*elapsed),
            next.as_ref().map(|n| format!("; {n}")).unwrap_or_default()
        ),
        _ => return None,
    })
}

/// A backfill or a migration step waiting for a lagging replica.
fn replica_wait_line(e: &Event) -> Option<String> {
    let Event::ReplicaWait {
        name,
        revision,
        waited_s,
        ..
    } = e
    else {
        return None;
    };
    let lagging = e.lagging()?;
    let waited = format!("{waited_s:.0}s");
    Some(match (name, revision) {
        (Some(n), _) => format!("backfill {n}: waiting for {lagging} (waited {waited})"),
        (None, Some(r)) => format!("        {r} waiting for {lagging} (waited {waited})"),
        (None, None) => format!("waiting for {lagging} (waited {waited})"),
    })
}

/// `backfill hashes  12000/50000 rows  24%  3400 rows/s  ETA 11s  batch p50 42 ms max 88 ms ...`
fn backfill_progress_line(e: &Event) -> String {
    let Event::BackfillProgress {
        name,
        rows_done,
        rows_estimate,
        rate,
        eta_s,
        batch_ms_p50,
        batch_ms_max,
        batch_size,
        retries,
        ..
    } = e
    else {
        return String::new();
    };
    // The Backfills pane's numbers: separators, a percentage that is not 100 % before the end.
    let fraction = if *rows_estimate > 0 {
        *rows_done as f64 / *rows_estimate as f64
    } else {
        1.0
    };
    format!(
        "backfill {name}  {}/{} rows  {}  {}/s  ETA {}  batch p50 {} max {} (size {})  {retries} retries",
        count(*rows_done),
        count(*rows_estimate),
        percent(Some(fraction)).trim_start(),
        count(rate.round() as i64),
        eta_s.map(human_duration_s).unwrap_or_else(|| "?".into()),
        human_duration_ms(*batch_ms_p50 as i64),
        human_duration_ms(*batch_ms_max as i64),
        count(*batch_size),
    )
}
