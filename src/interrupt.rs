//! Operator interrupts (Ctrl-C in the CLI, a key in the TUI): the running statement is canceled
//! on the server, its step rolls back, and the run ends after writing its audit row.

use tokio::sync::watch;

/// The side that asks for the interrupt.
#[derive(Debug)]
pub struct Trigger(watch::Sender<bool>);

impl Trigger {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

/// The side a running operation watches. `Interrupt::none()` never fires.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Option<watch::Receiver<bool>>);

impl Interrupt {
    pub fn new() -> (Trigger, Interrupt) {
        let (tx, rx) = watch::channel(false);
        (Trigger(tx), Interrupt(Some(rx)))
    }

    pub fn none() -> Interrupt {
        Interrupt(None)
    }

    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves when the interrupt fires; never, for `none()` or a dropped trigger.
    pub async fn fired(&self) {
        match &self.0 {
            Some(rx) => {
                let mut rx = rx.clone();
                if rx.wait_for(|set| *set).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }
}
