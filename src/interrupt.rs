//! Operator interrupts (Ctrl-C, SIGTERM or SIGHUP in the CLI, a key in the TUI): the running
//! statement is canceled on the server, its step rolls back, and the run ends after writing its
//! audit row, which says what stopped it.

use std::io::Write;

use tokio::sync::watch;

/// What asked the run to stop, as the audit row and the log say it.
pub type Reason = &'static str;

/// The side that asks for the interrupt.
#[derive(Debug)]
pub struct Trigger(watch::Sender<Option<Reason>>);

impl Trigger {
    /// Interrupt on the operator's request (a key, Ctrl-C).
    pub fn fire(&self) {
        self.fire_because("the operator");
    }

    /// Interrupt, saying why (the first reason sticks).
    pub fn fire_because(&self, reason: Reason) {
        self.0.send_if_modified(|r| {
            let first = r.is_none();
            r.get_or_insert(reason);
            first
        });
    }
}

/// The side a running operation watches. `Interrupt::none()` never fires.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Option<watch::Receiver<Option<Reason>>>);

impl Interrupt {
    pub fn new() -> (Trigger, Interrupt) {
        let (tx, rx) = watch::channel(None);
        (Trigger(tx), Interrupt(Some(rx)))
    }

    pub fn none() -> Interrupt {
        Interrupt(None)
    }

    pub fn is_set(&self) -> bool {
        self.reason().is_some()
    }

    /// Why it fired, once it did.
    pub fn reason(&self) -> Option<Reason> {
        self.0.as_ref().and_then(|rx| *rx.borrow())
    }

    /// Resolves when the interrupt fires; never, for `none()` or a dropped trigger.
    pub async fn fired(&self) {
        match &self.0 {
            Some(rx) => {
                let mut rx = rx.clone();
                if rx.wait_for(Option::is_some).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }
}

/// The signals that stop a run gracefully: Ctrl-C, the usual container stop, and a closed terminal
/// (an SSH session that dropped).
const STOP_SIGNALS: [(tokio::signal::unix::SignalKind, Reason); 3] = [
    (
        tokio::signal::unix::SignalKind::interrupt(),
        "Ctrl-C (SIGINT)",
    ),
    (tokio::signal::unix::SignalKind::terminate(), "SIGTERM"),
    (tokio::signal::unix::SignalKind::hangup(), "SIGHUP"),
];

/// Handle SIGINT, SIGTERM and SIGHUP: `first(reason)` on the first one, exit 130 (printing
/// `quit_note`) on the second. The handlers are installed before this returns, so an early signal
/// is never lost to the default action (which would skip the graceful stop and its audit row).
/// Writes to stderr ignore errors: after SIGHUP the terminal may be gone.
pub fn on_stop_signals(
    first: impl FnOnce(Reason) + Send + 'static,
    quit_note: &'static str,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::signal;
    let mut streams = Vec::with_capacity(STOP_SIGNALS.len());
    for (kind, reason) in STOP_SIGNALS {
        streams.push((signal(kind)?, reason));
    }
    Ok(tokio::spawn(async move {
        let mut first = Some(first);
        loop {
            let next = futures_util::future::select_all(
                streams
                    .iter_mut()
                    .map(|(s, reason)| Box::pin(async move { s.recv().await.map(|_| *reason) })),
            );
            let (received, _, _) = next.await;
            let Some(reason) = received else { return };
            match first.take() {
                Some(f) => f(reason),
                None => {
                    writeln!(std::io::stderr(), "{quit_note}").ok();
                    std::process::exit(130);
                }
            }
        }
    }))
}
