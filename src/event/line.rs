//! One progress event as a human line: what the CLI prints on stderr, the TUI's log pane shows and
//! the log file records.

use super::{Event, Level};
use crate::plan::Direction;
use crate::text::{human_duration_s, human_elapsed, joined};

/// One progress event as a human line on stderr.
pub fn event_line(e: &Event) -> Option<String> {
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
            "        {revision} attempt {attempt}/{attempts}: {reason}{}; retrying in {} ms",
            crate::sessions::blocked_by(blockers),
            delay.as_millis()
        ),
        Event::StepFinished {
            revision,
            elapsed,
            attempts,
        } => format!(
            "        {revision} done in {} ms{}",
            elapsed.as_millis(),
            if *attempts > 1 {
                format!(" after {attempts} attempts")
            } else {
                String::new()
            }
        ),
        Event::Log { level, message } => match level {
            Level::Info => message.clone(),
            Level::Warn => format!("warning: {message}"),
            Level::Error => message.clone(),
        },
        Event::BackfillStarted {
            name,
            run_id,
            resumed_from,
            rows_done,
            rows_estimate,
            batch_size,
        } => match resumed_from {
            Some(cursor) => format!(
                "backfill {name}: resuming run #{run_id} after key {cursor} ({rows_done} rows done, about {} to go, batch {batch_size})",
                (rows_estimate - rows_done).max(0)
            ),
            None => format!(
                "backfill {name}: run #{run_id} started, {rows_estimate} rows to do (batch {batch_size})"
            ),
        },
        Event::BackfillProgress { .. } => backfill_progress_line(e),
        Event::BackfillRetry {
            name,
            attempt,
            attempts,
            reason,
            delay,
            batch_size,
        } => format!(
            "backfill {name}: batch attempt {attempt}/{attempts} failed: {reason}; retrying in {} ms with batch {batch_size}",
            delay.as_millis()
        ),
        Event::ReplicaWait {
            name,
            revision,
            waited_s,
            ..
        } => {
            let lagging = e.lagging()?;
            let waited = format!("{waited_s:.0}s");
            match (name, revision) {
                (Some(n), _) => format!("backfill {n}: waiting for {lagging} (waited {waited})"),
                (None, Some(r)) => format!("        {r} waiting for {lagging} (waited {waited})"),
                (None, None) => format!("waiting for {lagging} (waited {waited})"),
            }
        }
        Event::BackfillStopped {
            name,
            run_id,
            state,
            rows_done,
            elapsed,
            next,
        } => format!(
            "backfill {name}: run #{run_id} {state} after {rows_done} rows in {}{}",
            human_elapsed(*elapsed),
            next.as_ref().map(|n| format!("; {n}")).unwrap_or_default()
        ),
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
    let pct = if *rows_estimate > 0 {
        (*rows_done as f64 * 100.0 / *rows_estimate as f64).min(100.0)
    } else {
        100.0
    };
    format!(
        "backfill {name}  {rows_done}/{rows_estimate} rows  {pct:.0}%  {rate:.0} rows/s  ETA {}  batch p50 {batch_ms_p50} ms max {batch_ms_max} ms (size {batch_size})  {retries} retries",
        eta_s.map(human_duration_s).unwrap_or_else(|| "?".into())
    )
}
