//! The monitoring connection: its own session, polling status and lock conflicts about once a
//! second, so the screen stays live while the worker's connection waits on a lock. When the
//! database goes away it reports `Unreachable` and reconnects with backoff; it never gives up and
//! never takes the UI down.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc::UnboundedSender};

use super::app::{BackfillMsg, Monitor, Msg};
use super::worker::SharedCatalog;
use crate::backfill::{self, Registry};
use crate::catalog::Catalog;
use crate::config::Target;
use crate::db::{Session, blockers};
use crate::error::Error;
use crate::health;
use crate::ops::status;

/// Time between polls while connected.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// A poll slower than this counts as a lost connection (a network partition hangs, not fails).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect backoff: doubles from the first to the last.
pub const RECONNECT_FIRST: Duration = Duration::from_secs(1);
pub const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Run until the UI's receiver is gone.
pub async fn run(
    target: Arc<Target>,
    catalog: SharedCatalog,
    tx: UnboundedSender<Msg>,
    poke: Arc<Notify>,
) {
    let mut backoff = RECONNECT_FIRST;
    while !tx.is_closed() {
        let session = tokio::time::timeout(
            POLL_TIMEOUT * 2,
            Session::connect(&target.conn, "tui monitor"),
        )
        .await;
        let reason = match session {
            Ok(Ok(s)) => {
                backoff = RECONNECT_FIRST;
                match poll_loop(&s, &target, &catalog, &tx, &poke).await {
                    Some(reason) => reason,
                    None => return,
                }
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "no answer from {} within {}s",
                target.conn.redacted(),
                (POLL_TIMEOUT * 2).as_secs()
            ),
        };
        let msg = Msg::Monitor(Monitor::Unreachable {
            reason,
            retry_in_s: backoff.as_secs(),
        });
        if tx.send(msg).is_err() {
            return;
        }
        // `r` (a poke) retries at once; only a retry that waited its backoff doubles it, so `r`
        // never makes the next automatic retry wait longer.
        tokio::select! {
            _ = tokio::time::sleep(backoff) => backoff = next_backoff(backoff),
            _ = poke.notified() => {}
        }
    }
}

fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(RECONNECT_MAX)
}

/// Poll on `s` until the connection is lost (returns why) or the UI is gone (returns None).
/// The catalog is read each poll (`r` may have reloaded it); the backfill definitions with it.
async fn poll_loop(
    s: &Session,
    target: &Target,
    shared: &SharedCatalog,
    tx: &UnboundedSender<Msg>,
    poke: &Notify,
) -> Option<String> {
    let mut loaded: Option<(Arc<Catalog>, std::result::Result<Registry, String>)> = None;
    loop {
        let catalog = shared.get();
        let registry = match &loaded {
            Some((c, r)) if Arc::ptr_eq(c, &catalog) => r,
            _ => {
                let r = crate::backfill::registry(target, &catalog).map_err(|e| e.to_string());
                &loaded.insert((catalog.clone(), r)).1
            }
        };
        let polled = tokio::time::timeout(POLL_TIMEOUT, poll(s, target, &catalog)).await;
        let msg = match polled {
            Ok(Ok(m)) => m,
            Ok(Err(e @ (Error::ConnectionLost { .. } | Error::Unreachable { .. }))) => {
                return Some(e.to_string());
            }
            Ok(Err(e)) if s.client.is_closed() => return Some(e.to_string()),
            Ok(Err(e)) => Monitor::PollFailed(e.to_string()),
            Err(_) => {
                return Some(format!(
                    "the database did not answer a status poll within {}s",
                    POLL_TIMEOUT.as_secs()
                ));
            }
        };
        if tx.send(Msg::Monitor(msg)).is_err() {
            return None;
        }
        // The run table, every poll: runs from other terminals show live too.
        let backfills = match registry {
            Ok(r) if r.definitions.is_empty() => Ok(vec![]),
            Ok(r) => tokio::time::timeout(POLL_TIMEOUT, backfill::overview_on(s, r))
                .await
                .map_err(|_| "the backfill run table did not answer in time".to_string())
                .and_then(|o| o.map_err(|e| e.to_string())),
            Err(e) => Err(e.clone()),
        };
        if tx
            .send(Msg::Backfill(BackfillMsg::Overview(backfills)))
            .is_err()
        {
            return None;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = poke.notified() => {}
        }
    }
}

async fn poll(s: &Session, target: &Target, catalog: &Catalog) -> crate::Result<Monitor> {
    let status = status::status_on(s, target, catalog).await?;
    let conflicts = blockers::conflicts(s).await?;
    let observed = health::observe(s, std::time::Instant::now()).await?;
    Ok(Monitor::Snapshot {
        status: Box::new(status),
        conflicts,
        health: Box::new(health::assess(target, Ok(catalog), observed)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(next_backoff(RECONNECT_FIRST), RECONNECT_FIRST * 2);
        assert_eq!(next_backoff(RECONNECT_MAX), RECONNECT_MAX);
    }

    #[test]
    fn intervals_are_seconds_not_minutes() {
        assert_eq!(POLL_EVERY.as_millis(), 1000);
        assert!(POLL_TIMEOUT > POLL_EVERY);
        assert!(RECONNECT_FIRST < RECONNECT_MAX && RECONNECT_MAX <= Duration::from_secs(60));
    }
}
