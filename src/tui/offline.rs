//! Checklists while the database is unreachable: the startup-failure and recovery checklists are
//! needed exactly then. The overlay shows every checklist from its definition (help included);
//! confirmations and skips are kept in a local file under the state dir and written to
//! `pgshift_checklist_runs` when the database is back (the note says when they were made).
//! Automatic checks need the database and are refused meanwhile.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Target;
use crate::error::{Error, Result};
use crate::runbook::{self, ChecklistView, ItemState, Runbook};

/// One confirmation or skip made while the database was unreachable.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Kept {
    pub checklist: String,
    pub item: String,
    /// `confirmed` or `skipped`.
    pub state: String,
    pub note: String,
    pub operator: String,
    pub at: String,
}

/// Whether `e` means the database cannot be reached (so results are kept locally).
pub fn is_offline(e: &Error) -> bool {
    matches!(e, Error::Unreachable { .. } | Error::ConnectionLost { .. })
}

/// The local file for `target` (one per target name) under `dir` (the state dir).
pub fn file(dir: &Path, target: &Target) -> PathBuf {
    let safe: String = target
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    dir.join(format!("checklists-offline-{safe}.jsonl"))
}

pub fn read(dir: &Path, target: &Target) -> Vec<Kept> {
    std::fs::read_to_string(file(dir, target))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Keep one result locally (appended, so nothing earlier is lost).
pub fn keep(dir: &Path, target: &Target, kept: &Kept) -> Result<()> {
    let path = file(dir, target);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating the state dir", e))?;
    }
    let line = serde_json::to_string(kept).unwrap_or_default();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"))
        .map_err(|e| {
            Error::io(
                format!("keeping a checklist result in {}", path.display()),
                e,
            )
        })
}

/// Every checklist from its definition, with the results kept locally applied.
pub fn views(dir: &Path, rb: &Runbook, target: &Target) -> Vec<ChecklistView> {
    let kept = read(dir, target);
    rb.checklists
        .iter()
        .map(|c| {
            let mut v = ChecklistView::blank(c);
            for k in kept.iter().filter(|k| k.checklist == c.name) {
                if let Some(i) = v.items.iter_mut().find(|i| i.id == k.item) {
                    i.state = if k.state == "skipped" {
                        ItemState::Skipped
                    } else {
                        ItemState::Confirmed
                    };
                    i.operator = Some(k.operator.clone());
                    i.at = Some(k.at.clone());
                    i.evidence = Some(format!(
                        "{} (kept locally until the database is back)",
                        k.note
                    ));
                }
            }
            v
        })
        .collect()
}

/// Write the kept results to the database, oldest first, each with when it was made; the file
/// goes once all are written. Returns how many were written.
pub async fn flush(dir: &Path, rb: &Runbook, target: &Target) -> Result<usize> {
    let kept = read(dir, target);
    for (n, k) in kept.iter().enumerate() {
        let note = format!(
            "{} (recorded offline by {} at {})",
            k.note, k.operator, k.at
        );
        let written = if k.state == "skipped" {
            runbook::skip(rb, target, &k.checklist, &k.item, &note).await
        } else {
            runbook::confirm(rb, target, &k.checklist, &k.item, &note).await
        };
        if let Err(e) = written {
            // Keep what is not written yet for the next try.
            rewrite(dir, target, &kept[n..])?;
            return Err(e);
        }
    }
    if !kept.is_empty() {
        std::fs::remove_file(file(dir, target))
            .map_err(|e| Error::io("removing the written offline checklist results", e))?;
    }
    Ok(kept.len())
}

fn rewrite(dir: &Path, target: &Target, rest: &[Kept]) -> Result<()> {
    let text: String = rest
        .iter()
        .map(|k| serde_json::to_string(k).unwrap_or_default() + "\n")
        .collect();
    std::fs::write(file(dir, target), text)
        .map_err(|e| Error::io("keeping the unwritten checklist results", e))
}
