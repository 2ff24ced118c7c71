//! `fleet history`: the fleet runs started from this host, in a local JSON-lines file
//! (`$PGSHIFT_DATA_DIR/fleet/runs.jsonl`). Each database's own audit row (`pgshift_events`, with
//! `detail.fleet_run`) stays the record of what ran there; this file is the index that ties a
//! rollout's targets together, and it works when some of them are unreachable. A run is written
//! when it starts and again when it ends, so a rollout killed midway shows as `interrupted`.

use std::io::Write;
use std::path::PathBuf;

use super::rollout::{Rollout, Summary};
use crate::error::{Error, Result};

pub fn path() -> PathBuf {
    crate::config::state_dir().join("fleet").join("runs.jsonl")
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Line {
    Started {
        run_id: String,
        group: Option<String>,
        to: String,
        operator: String,
        at: String,
        targets: usize,
    },
    Finished {
        summary: serde_json::Value,
    },
}

fn append(line: &Line) -> Result<()> {
    let p = path();
    let write = || -> std::io::Result<()> {
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)?;
        let text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        // One write per line: concurrent rollouts on this host never interleave within a line.
        f.write_all(format!("{text}\n").as_bytes())
    };
    write().map_err(|e| Error::io(format!("recording the fleet run in {}", p.display()), e))
}

pub fn started(r: &Rollout, targets: usize) -> Result<()> {
    append(&Line::Started {
        run_id: r.id.clone(),
        group: r.group.clone(),
        to: r.to.clone(),
        operator: crate::db::operator(),
        at: crate::db::rfc3339(time::OffsetDateTime::now_utc()),
        targets,
    })
}

pub fn finished(s: &Summary) -> Result<()> {
    append(&Line::Finished {
        summary: serde_json::to_value(s).unwrap_or_default(),
    })
}

/// How a recorded fleet run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunEnd {
    /// Its summary was recorded.
    Finished,
    /// The process ended before its summary.
    Interrupted,
}

impl std::fmt::Display for RunEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            RunEnd::Finished => "finished",
            RunEnd::Interrupted => "interrupted",
        })
    }
}

/// One past fleet run, newest first in [`runs`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    pub run_id: String,
    pub group: Option<String>,
    pub to: String,
    pub operator: String,
    pub at: String,
    pub targets: usize,
    /// `finished` (with its summary) or `interrupted` (the process ended before its summary).
    pub state: RunEnd,
    pub summary: Option<serde_json::Value>,
}

/// The recorded runs, newest first (an unreadable line is skipped, and said in the log).
pub fn runs(limit: usize) -> Result<Vec<Run>> {
    let p = path();
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(format!("reading {}", p.display()), e)),
    };
    let mut out: Vec<Run> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match serde_json::from_str::<Line>(line) {
            Ok(Line::Started {
                run_id,
                group,
                to,
                operator,
                at,
                targets,
            }) => out.push(Run {
                run_id,
                group,
                to,
                operator,
                at,
                targets,
                state: RunEnd::Interrupted,
                summary: None,
            }),
            Ok(Line::Finished { summary }) => {
                let id = summary["run_id"].as_str().unwrap_or_default().to_string();
                if let Some(r) = out.iter_mut().rev().find(|r| r.run_id == id) {
                    r.state = RunEnd::Finished;
                    r.summary = Some(summary);
                }
            }
            Err(e) => tracing::warn!("{} line {}: {e}", p.display(), n + 1),
        }
    }
    out.reverse();
    out.truncate(limit);
    Ok(out)
}
