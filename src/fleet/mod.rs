//! Fleets: many databases at once, above `ops`. A group of targets ([`group`]), their status in
//! one table ([`status`]), and rollouts ([`rollout`]): canaries, then waves, through a bounded pool
//! of per-target runs, each the normal guarded run (`ops::migrate::run`) with its own runner lock,
//! gates and audit row tagged with the fleet run id. The CLI (`cli::fleet`) prints the same state
//! stream a TUI pane would draw ([`rollout::FleetEvent`]).

pub mod group;
pub mod record;
pub mod rollout;
pub mod status;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::catalog::{Catalog, CatalogError};
use crate::config::Target;
use crate::error::ExitCode;

/// Each distinct migrations directory loaded once (most fleets share one).
#[derive(Debug, Default)]
pub struct Catalogs {
    loaded: HashMap<PathBuf, Result<Arc<Catalog>, CatalogError>>,
}

impl Catalogs {
    pub fn load(members: &[Target]) -> Catalogs {
        let mut loaded = HashMap::new();
        for t in members {
            loaded
                .entry(t.migrations.clone())
                .or_insert_with(|| Catalog::load(&t.migrations).map(Arc::new));
        }
        Catalogs { loaded }
    }

    pub fn of(&self, t: &Target) -> Result<Arc<Catalog>, CatalogError> {
        self.loaded
            .get(&t.migrations)
            .cloned()
            .unwrap_or_else(|| Catalog::load(&t.migrations).map(Arc::new))
    }
}

/// Run `f` over `items` with at most `parallel` at a time, each on its own task (so TLS
/// handshakes and row decoding use every runtime thread); results in the items' order.
pub async fn bounded<T, R, F, Fut>(items: Vec<T>, parallel: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let tasks: Vec<_> = items
        .into_iter()
        .map(|item| {
            let (work, permits) = (f(item), permits.clone());
            tokio::spawn(async move {
                // The semaphore is never closed: acquiring only waits.
                let _permit = permits.acquire_owned().await;
                work.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(r) => out.push(r),
            // A panic in one target's task is a bug: surface it, as it would surface unspawned.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}

/// How bad an exit code is, for a fleet's overall code: a usage/config error in a row, then
/// unreachable, integrity (drift), failed, lock busy, pending, ok.
fn rank(code: ExitCode) -> u8 {
    match code {
        ExitCode::Ok => 0,
        ExitCode::Pending => 1,
        ExitCode::LockBusy => 2,
        ExitCode::Failed => 3,
        ExitCode::Integrity => 4,
        ExitCode::Unreachable => 5,
        ExitCode::Usage => 6,
    }
}

/// Exit codes as the numbers a script compares (`"exit_code": 3`), as in the JSON envelope.
pub(crate) mod exit_number {
    pub fn serialize<S: serde::Serializer>(
        c: &crate::error::ExitCode,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*c as u8)
    }
}

/// An error's first line, for a row: the rest (what to do next) is the same for every row.
pub fn first_line(e: &crate::error::Error) -> String {
    e.to_string().lines().next().unwrap_or("").to_string()
}

/// The worst of the rows' exit codes (ok for none).
pub fn worst(codes: impl IntoIterator<Item = ExitCode>) -> ExitCode {
    codes
        .into_iter()
        .max_by_key(|c| rank(*c))
        .unwrap_or(ExitCode::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_exits_with_its_worst_row() {
        use ExitCode::*;
        assert_eq!(worst([]), Ok);
        assert_eq!(worst([Ok, Pending, Ok]), Pending);
        assert_eq!(worst([Pending, LockBusy]), LockBusy);
        assert_eq!(worst([LockBusy, Failed, Pending]), Failed);
        assert_eq!(worst([Failed, Integrity]), Integrity);
        assert_eq!(worst([Integrity, Unreachable, Ok]), Unreachable);
        assert_eq!(worst([Unreachable, Usage]), Usage);
    }
}
