//! Other sessions on the server, as pgshift reports them: one blocking a step, the one holding the
//! runner lock, a replica lagging behind. Plain facts that `db` reads and progress events carry (a leaf, so `event` need not
//! depend on `db`).

use std::time::Duration;

/// A session that holds a lock someone else waits for.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Blocker {
    pub pid: i32,
    pub user: String,
    pub application: String,
    pub state: String,
    /// Seconds since its transaction began (None: not in a transaction).
    pub xact_age_s: Option<f64>,
    pub query: String,
}

impl Blocker {
    pub fn idle_in_transaction(&self) -> bool {
        self.state.starts_with("idle in transaction")
    }
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} (user {}", self.pid, self.user)?;
        if !self.application.is_empty() {
            write!(f, ", {}", self.application)?;
        }
        write!(f, ", {}", self.state)?;
        if let Some(age) = self.xact_age_s {
            write!(f, " {}", crate::text::human_duration_s(age))?;
        }
        // Without its trailing `;`, so the line reads well inside a sentence.
        let query = self.query.trim_end().trim_end_matches(';');
        write!(f, "): {}", crate::text::one_line(query, 120))
    }
}

/// `; blocked by pid … ; pid …` to end a sentence about a wait, or nothing when nobody blocked.
pub fn blocked_by(blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        String::new()
    } else {
        format!("; blocked by {}", crate::text::joined(blockers))
    }
}

/// Who holds an advisory lock: the session behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Holder {
    pub pid: i32,
    pub application: String,
    pub user: String,
    pub client: String,
    pub since: String,
    pub state: String,
    pub held_s: f64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}, user {}, from {}, connected {:.0}s ago, {})",
            self.pid,
            if self.application.is_empty() {
                "no application_name"
            } else {
                &self.application
            },
            self.user,
            self.client,
            self.held_s,
            self.state
        )
    }
}

/// A streaming replica above the allowed replay lag (read by `db::topology`).
#[derive(Debug, Clone, PartialEq)]
pub struct Lagging {
    pub replica: String,
    pub lag: Duration,
    pub max: Duration,
}

impl std::fmt::Display for Lagging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "replica {}: replay lag {:.1}s > {}",
            self.replica,
            self.lag.as_secs_f64(),
            limit(self.max)
        )
    }
}

/// `10s`, `2m00s`, or `0.5s` for a limit with a fraction.
fn limit(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        crate::text::human_duration_s(d.as_secs_f64())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
