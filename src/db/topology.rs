//! Replication facts of the target: is it the primary or a standby, which replicas stream from it
//! and how far behind they are. Read once per run and on every monitor poll; shown by `status`,
//! `health` and the TUI header; used to refuse writes on a standby and to hold backfill batches
//! and no-transaction statements while a replica lags.
//!
//! Lag comes from `pg_stat_replication` (PostgreSQL's own lag tracking): `replay_lag` is how long
//! the last WAL the replica replayed took to get there. It is only measured for WAL the replica
//! has replayed, and the server keeps the last value until the replica reports twice that it is
//! fully replayed. So a replica that has replayed everything sent to it counts as caught up here,
//! whatever its last measured lag says.
//!
//! Seeing lags and the standby's upstream needs superuser or `pg_read_all_stats` (`pg_monitor`):
//! without it the server hides those columns and the lag is reported as unknown.

use std::time::{Duration, Instant};
// A fact progress events carry: it lives in the leaf `sessions`.
pub use crate::sessions::Lagging;

use super::Session;
use crate::config::ConnInfo;
use crate::error::{Error, Result};

/// The role, and whether anything streams from this server. Asked first so that the views below
/// are only read where they can have rows: a fresh backend pays about a millisecond of server CPU
/// to load each view's definition, on every target of `fleet status` and every poll.
const ROLE: &str = "SELECT pg_is_in_recovery(), EXISTS (SELECT FROM pg_stat_get_wal_senders())";

/// Each walsender: physical replicas and logical consumers (a logical slot says which).
const REPLICAS: &str = "SELECT r.application_name, host(r.client_addr), r.state, r.sync_state,
       extract(epoch FROM r.write_lag)::float8, extract(epoch FROM r.flush_lag)::float8,
       extract(epoch FROM r.replay_lag)::float8,
       coalesce(r.replay_lsn >= r.sent_lsn, false),
       coalesce(s.slot_type = 'logical', false)
FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid
ORDER BY r.application_name, r.pid";

/// On a standby: where it streams from (never the conninfo, which may hold a password) and how
/// old its last replayed transaction is.
const UPSTREAM: &str = "SELECT sender_host, sender_port, status,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
FROM pg_stat_wal_receiver";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        }
    }
}

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Replica {
    /// `application_name` of the walreceiver (the standby's `cluster_name` by default).
    pub name: String,
    pub client_addr: Option<String>,
    /// `streaming`, `catchup`, `startup`, ...; `None` when the role may not see it.
    pub state: Option<String>,
    pub sync_state: Option<String>,
    pub write_lag_s: Option<f64>,
    pub flush_lag_s: Option<f64>,
    pub replay_lag_s: Option<f64>,
    /// It has replayed everything sent to it.
    pub caught_up: bool,
    /// A logical decoding consumer (CDC), not a physical replica: never waited on.
    pub logical: bool,
}

impl Replica {
    pub fn is_streaming(&self) -> bool {
        self.state.as_deref() == Some("streaming")
    }

    /// The lag that counts for throttling: none once it has replayed everything sent to it
    /// (the server shows the last measured lag for a while after that).
    pub fn effective_replay_lag(&self) -> Option<Duration> {
        if self.caught_up {
            return Some(Duration::ZERO);
        }
        self.replay_lag_s
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    }
}

impl std::fmt::Display for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lag = |l: Option<f64>| l.map_or("-".to_string(), |s| format!("{s:.1}s"));
        write!(
            f,
            "{} ({}{}{}): write {} flush {} replay {}",
            if self.name.is_empty() {
                "(no name)"
            } else {
                &self.name
            },
            self.state.as_deref().unwrap_or("state hidden"),
            self.sync_state
                .as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default(),
            if self.logical { ", logical" } else { "" },
            lag(self.write_lag_s),
            lag(self.flush_lag_s),
            lag(self.replay_lag_s),
        )
    }
}

/// Where a standby streams from (`pg_stat_wal_receiver`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Upstream {
    pub host: Option<String>,
    pub port: Option<i32>,
    /// The walreceiver's status (`streaming`, `stopping`, ...).
    pub status: Option<String>,
}

impl Upstream {
    /// `host:port`, when the server showed both.
    pub fn address(&self) -> Option<String> {
        match (&self.host, self.port) {
            (Some(h), Some(p)) => Some(format!("{h}:{p}")),
            (Some(h), None) => Some(h.clone()),
            _ => None,
        }
    }
}

/// The target's place in replication.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Topology {
    pub role: Role,
    /// On a primary: each walsender (replicas, logical consumers).
    pub replicas: Vec<Replica>,
    /// On a standby: the server it streams from, if a walreceiver runs.
    pub primary: Option<Upstream>,
    /// On a standby: seconds since the last replayed transaction committed on the primary.
    pub replay_age_s: Option<f64>,
}

impl Topology {
    pub fn is_standby(&self) -> bool {
        self.role == Role::Standby
    }

    /// The physical streaming replica furthest behind, if it is more than `max` behind.
    pub fn lagging(&self, max: Duration) -> Option<Lagging> {
        self.replicas
            .iter()
            .filter(|r| r.is_streaming() && !r.logical)
            .filter_map(|r| Some((r, r.effective_replay_lag()?)))
            .filter(|(_, lag)| *lag > max)
            .max_by_key(|(_, lag)| *lag)
            .map(|(r, lag)| Lagging {
                replica: r.name.clone(),
                lag,
                max,
            })
    }

    /// `expected` replicas that are not streaming now.
    pub fn missing<'a>(&self, expected: &'a [String]) -> Vec<&'a str> {
        expected
            .iter()
            .filter(|e| {
                !self
                    .replicas
                    .iter()
                    .any(|r| &r.name == *e && r.is_streaming())
            })
            .map(String::as_str)
            .collect()
    }

    /// Writes go to the primary: refuse `action` on a standby, naming the primary when known.
    pub fn refuse_standby(&self, action: &str) -> Result<()> {
        if !self.is_standby() {
            return Ok(());
        }
        Err(Error::Standby {
            action: action.to_string(),
            primary: self.primary.as_ref().and_then(Upstream::address),
        })
    }

    /// One line: `primary, replicas r1 (streaming, replay 0.2s)` or `STANDBY of db1:5432`.
    pub fn summary(&self) -> String {
        match self.role {
            Role::Standby => format!(
                "STANDBY (read-only replica){}{}",
                self.primary
                    .as_ref()
                    .and_then(Upstream::address)
                    .map(|a| format!(" of {a}"))
                    .unwrap_or_default(),
                self.replay_age_s
                    .map(|s| format!(", last replayed transaction {s:.1}s old"))
                    .unwrap_or_default()
            ),
            Role::Primary if self.replicas.is_empty() => "primary, no replicas".into(),
            Role::Primary => format!(
                "primary, {} replica(s): {}",
                self.replicas.len(),
                crate::text::joined(&self.replicas)
            ),
        }
    }
}

/// The walsenders of `pg_stat_replication` (empty on a server nothing streams from).
pub async fn replicas(s: &Session) -> Result<Vec<Replica>> {
    let rows = s
        .client
        .query(REPLICAS, &[])
        .await
        .map_err(|e| Error::db("reading pg_stat_replication", &e))?;
    Ok(rows
        .iter()
        .map(|r| Replica {
            name: r.get::<_, Option<String>>(0).unwrap_or_default(),
            client_addr: r.get(1),
            state: r.get(2),
            sync_state: r.get(3),
            write_lag_s: r.get(4),
            flush_lag_s: r.get(5),
            replay_lag_s: r.get(6),
            caught_up: r.get(7),
            logical: r.get(8),
        })
        .collect())
}

/// Role, then replicas (when something streams from the server) and upstream (on a standby),
/// the two pipelined.
pub async fn read(s: &Session) -> Result<Topology> {
    let role = s
        .client
        .query_one(ROLE, &[])
        .await
        .map_err(|e| Error::db("reading pg_is_in_recovery()", &e))?;
    let (standby, senders): (bool, bool) = (role.get(0), role.get(1));
    let (replicas, upstream) = futures_util::future::try_join(
        async {
            if !senders {
                return Ok(vec![]);
            }
            replicas(s).await
        },
        async {
            if !standby {
                return Ok(None);
            }
            s.client
                .query_opt(UPSTREAM, &[])
                .await
                .map_err(|e| Error::db("reading pg_stat_wal_receiver", &e))
        },
    )
    .await?;
    Ok(Topology {
        role: if standby {
            Role::Standby
        } else {
            Role::Primary
        },
        replicas,
        primary: upstream.as_ref().map(|r| Upstream {
            host: r.get(0),
            port: r.get(1),
            status: r.get(2),
        }),
        replay_age_s: upstream.as_ref().and_then(|r| r.get(3)),
    })
}

/// Connect, and refuse `action` when the target is a standby (before anything runs).
pub async fn ensure_primary(conn: &ConnInfo, action: &str) -> Result<()> {
    let s = Session::connect(conn, action).await?;
    read(&s).await?.refuse_standby(action)
}

/// How often a wait on replica lag looks again.
pub const LAG_POLL: Duration = Duration::from_secs(1);

/// How a wait on replica lag ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEnd {
    /// No replica is above the limit (or none was).
    CaughtUp,
    /// `stop` said to stop waiting (a pause, an interrupt).
    Stopped,
}

/// The physical streaming replica above `max`, read now. A failed read is not a reason to hold
/// or fail the run: it is logged and counts as no lag.
pub async fn lagging_now(s: &Session, max: Duration) -> Option<Lagging> {
    match replicas(s).await {
        Ok(replicas) => Topology {
            role: Role::Primary,
            replicas,
            primary: None,
            replay_age_s: None,
        }
        .lagging(max),
        Err(e) => {
            tracing::warn!("reading replica lag failed, not waiting: {e}");
            None
        }
    }
}

/// Before a batch or statement: while a streaming replica's replay lag is above `max`, wait,
/// polling every [`LAG_POLL`], calling `waiting` each poll (it reports the wait) and `stop` to
/// learn whether to give up (pause, interrupt). `None` for `max` (`--ignore-replica-lag`, or
/// `max_replica_lag = "off"`) never waits. `s` must not be inside a transaction.
pub async fn wait_for_replicas<S, F>(
    s: &Session,
    max: Option<Duration>,
    mut waiting: impl FnMut(&Lagging, Duration),
    mut stop: S,
) -> WaitEnd
where
    S: FnMut() -> F,
    F: std::future::Future<Output = bool>,
{
    let Some(max) = max else {
        return WaitEnd::CaughtUp;
    };
    let start = Instant::now();
    while let Some(l) = lagging_now(s, max).await {
        waiting(&l, start.elapsed());
        if stop().await {
            return WaitEnd::Stopped;
        }
        tokio::time::sleep(LAG_POLL).await;
        if stop().await {
            return WaitEnd::Stopped;
        }
    }
    WaitEnd::CaughtUp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(name: &str, state: &str, replay: Option<f64>, caught_up: bool) -> Replica {
        Replica {
            name: name.into(),
            client_addr: Some("10.0.0.2".into()),
            state: Some(state.into()),
            sync_state: Some("async".into()),
            write_lag_s: replay,
            flush_lag_s: replay,
            replay_lag_s: replay,
            caught_up,
            logical: false,
        }
    }

    fn primary(replicas: Vec<Replica>) -> Topology {
        Topology {
            role: Role::Primary,
            replicas,
            primary: None,
            replay_age_s: None,
        }
    }

    #[test]
    fn the_replica_furthest_behind_above_the_limit_is_lagging() {
        let t = primary(vec![
            replica("r1", "streaming", Some(12.3), false),
            replica("r2", "streaming", Some(30.0), false),
            replica("r3", "streaming", Some(2.0), false),
        ]);
        let l = t.lagging(Duration::from_secs(10)).unwrap();
        assert_eq!(l.replica, "r2");
        assert_eq!(
            primary(vec![replica("r1", "streaming", Some(12.3), false)])
                .lagging(Duration::from_secs(10))
                .unwrap()
                .to_string(),
            "replica r1: replay lag 12.3s > 10s"
        );
        assert!(t.lagging(Duration::from_secs(60)).is_none());
    }

    #[test]
    fn a_caught_up_replica_is_not_lagging_whatever_its_last_measured_lag() {
        let t = primary(vec![replica("r1", "streaming", Some(40.0), true)]);
        assert!(t.lagging(Duration::from_secs(10)).is_none());
    }

    #[test]
    fn only_streaming_physical_replicas_are_waited_on() {
        let mut cdc = replica("debezium", "streaming", Some(99.0), false);
        cdc.logical = true;
        let t = primary(vec![cdc, replica("r1", "catchup", Some(99.0), false)]);
        assert!(t.lagging(Duration::from_secs(10)).is_none());
    }

    #[test]
    fn unknown_lag_does_not_count_as_lagging() {
        let t = primary(vec![replica("r1", "streaming", None, false)]);
        assert!(t.lagging(Duration::ZERO).is_none());
    }

    #[test]
    fn expected_replicas_that_do_not_stream_are_missing() {
        let t = primary(vec![
            replica("r1", "streaming", None, true),
            replica("r2", "startup", None, false),
        ]);
        let expected = vec!["r1".to_string(), "r2".to_string(), "r3".to_string()];
        assert_eq!(t.missing(&expected), vec!["r2", "r3"]);
    }

    #[test]
    fn a_standby_refuses_writes_and_names_its_primary() {
        let t = Topology {
            role: Role::Standby,
            replicas: vec![],
            primary: Some(Upstream {
                host: Some("db1.internal".into()),
                port: Some(5432),
                status: Some("streaming".into()),
            }),
            replay_age_s: Some(0.4),
        };
        let e = t.refuse_standby("up").unwrap_err();
        assert_eq!(e.exit_code(), crate::ExitCode::Usage);
        let text = e.to_string();
        assert!(text.contains("standby"), "{text}");
        assert!(text.contains("db1.internal:5432"), "{text}");
        assert!(primary(vec![]).refuse_standby("up").is_ok());
    }
}
