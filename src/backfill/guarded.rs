//! Every statement a backfill session sends waits at most `lock_timeout` for a lock — the
//! prepare, the count and the dry run's sample included — so a locked table fails fast with who
//! holds it instead of hanging; and an in-flight dry run can be cancelled on the server.

use std::future::Future;
use std::time::Duration;

use crate::config::Target;
use crate::db::{Session, blockers};
use crate::error::{Error, Result};
use crate::interrupt::Interrupt;

/// How long a cancelled statement gets to end (and roll back) before its session closes.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// A session whose every statement waits at most the target's `lock_timeout` for a lock. The
/// batch loop still sets its own per-transaction limits on top.
pub async fn session(target: &Target, action: &str) -> Result<Session> {
    let s = Session::connect(&target.conn, action).await?;
    s.set_lock_timeout(Some(target.guard.lock_timeout)).await?;
    Ok(s)
}

/// A [`session`] for work that writes (a run, or a dry run's sample batch rolled back): refused
/// on a standby, which cannot run it. `action` says what would have run.
pub async fn writing_session(target: &Target, application: &str, action: &str) -> Result<Session> {
    let s = session(target, application).await?;
    crate::db::topology::read(&s)
        .await?
        .refuse_standby(action)?;
    Ok(s)
}

/// Run `work` on `s` until it ends or `interrupt` fires; then cancel its statement on the server
/// (waiting for it to end, so nothing stays waiting there) and say so.
pub async fn until<T>(
    s: &Session,
    interrupt: &Interrupt,
    what: &str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => r,
        _ = interrupt.fired() => {
            if let Err(e) = crate::tls::cancel(s.client.cancel_token(), &s.conn).await {
                tracing::warn!("cancel request failed: {e}");
            }
            tokio::time::timeout(CANCEL_GRACE, &mut work).await.ok();
            Err(Error::Failed(format!(
                "{what} cancelled on the server; nothing was changed"
            )))
        }
    }
}

/// A lock timeout (55P03) becomes "blocked by whom" on `table`, exit 4; other errors pass.
pub async fn explain_lock_wait(s: &Session, what: &str, table: &str, e: Error) -> Error {
    if e.sqlstate() != Some("55P03") {
        return e;
    }
    let holders = blockers::holders_of(s, table).await.unwrap_or_default();
    Error::BackfillBlocked(format!(
        "{what}: {table} stayed locked longer than lock_timeout (55P03){}. Nothing was changed. Retry when the blocker ends, or raise lock_timeout.",
        blockers::blocked_by(&holders)
    ))
}
