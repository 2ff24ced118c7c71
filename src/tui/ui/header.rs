//! The two header lines: where we are connected (target, environment, SANDBOX, server, role) and
//! where the database stands (current → target, pending, health, runner lock).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::fit::{Part, fit};
use super::theme::Theme;
use crate::health::HealthStatus;
use crate::tui::app::{App, Health};

const SEP: &str = " │ ";

pub fn draw(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let width = area.width as usize;
    let top = identity(app, theme, width);
    // Production you cannot miss: the whole top line is the red bar.
    let top = if app.target.environment.is_production() {
        top.style(theme.production())
    } else {
        top
    };
    f.render_widget(Paragraph::new(vec![top, position(app, theme, width)]), area);
}

/// Who we are connected to. At 80 columns the environment, the target and the TLS state stay;
/// the brand, role, address and server version go first, in that order.
fn identity<'a>(app: &'a App, theme: &Theme, width: usize) -> Line<'a> {
    let t = &app.target;
    let mut parts = vec![
        Part::new(9, vec![Span::styled("pgshift ", theme.title(false))]),
        Part::new(0, vec![Span::styled(t.name.clone(), theme.title(true))]),
    ];
    let env = t.environment.as_str().to_uppercase();
    parts.push(Part::new(
        0,
        if t.environment.is_production() {
            vec![
                Span::raw(" "),
                Span::styled(format!(" {env} "), theme.production()),
            ]
        } else if t.sandbox {
            vec![Span::raw(" "), Span::styled(" SANDBOX ", theme.sandbox())]
        } else {
            vec![Span::raw(format!(" [{}]", t.environment.as_str()))]
        },
    ));
    parts.push(Part::new(
        6,
        vec![Span::raw(SEP), Span::raw(t.address.clone())],
    ));
    if let Some(s) = &app.status {
        parts.push(Part::new(
            8,
            vec![Span::raw(format!("{SEP}role {}", s.server.role))],
        ));
        parts.push(Part::new(
            5,
            vec![Span::raw(format!("{SEP}PG {}", s.server.version))],
        ));
        if s.server.read_only {
            parts.push(Part::new(1, vec![Span::styled(" READ ONLY", theme.warn())]));
        }
        if let Some(t) = &s.topology {
            // A standby is never dropped; a primary's replica lags outlast the server version.
            let rank = if t.is_standby() { 0 } else { 4 };
            parts.push(Part::new(rank, replication(t, theme)));
        }
        let tls = &s.server.tls;
        if tls.encrypted {
            parts.push(Part::new(
                0,
                vec![Span::raw(format!("{SEP}TLS {}", tls.label()))],
            ));
        } else if !tls.unix_socket {
            // Plain text over the network is worth a glance, never silent.
            parts.push(Part::new(
                0,
                vec![Span::styled(format!("{SEP}NO TLS"), theme.warn())],
            ));
        }
    }
    fit(parts, width)
}

/// ` │ STANDBY of db1:5432`, or ` │ replicas r1 0.2s, r2 12.3s` (effective replay lag; `?` when
/// the role may not see it) on a primary that has any.
fn replication<'a>(t: &crate::db::topology::Topology, theme: &Theme) -> Vec<Span<'a>> {
    if t.is_standby() {
        let of = t
            .primary
            .as_ref()
            .and_then(|p| p.address())
            .map(|a| format!(" of {a}"))
            .unwrap_or_default();
        return vec![
            Span::raw(SEP),
            Span::styled(" STANDBY ", theme.alarm()),
            Span::styled(of, theme.warn()),
        ];
    }
    if t.replicas.is_empty() {
        return vec![];
    }
    let lags: Vec<String> = t
        .replicas
        .iter()
        .map(|r| {
            let lag = r
                .effective_replay_lag()
                .map_or("?".to_string(), |d| format!("{:.1}s", d.as_secs_f64()));
            format!("{} {lag}", r.name)
        })
        .collect();
    vec![Span::raw(format!("{SEP}replicas {}", lags.join(", ")))]
}

/// Where the database stands. The runner lock's holder stays at 80 columns; "runner lock free"
/// and the pending count go first, then the tail of the health reason.
fn position<'a>(app: &'a App, theme: &Theme, width: usize) -> Line<'a> {
    let mut parts = Vec::new();
    match &app.status {
        Some(s) => {
            let target = match app.upgrade_target() {
                crate::plan::TargetSpec::Revision(r) => r,
                _ => s.head,
            };
            parts.push(Part::new(
                0,
                vec![
                    Span::raw("revision "),
                    Span::styled(format!("{} → {}", s.current, target), theme.title(false)),
                ],
            ));
            let pending = s.pending.len();
            parts.push(Part::new(
                4,
                vec![if pending == 0 {
                    Span::styled(" (up to date)", theme.ok())
                } else {
                    Span::styled(format!(" ({pending} pending)"), theme.warn())
                }],
            ));
        }
        None => parts.push(Part::new(0, vec![Span::raw("revision unknown")])),
    }
    parts.extend(health(app, theme));
    if let Some(s) = &app.status {
        // Who holds the runner lock always shows; that nobody does is the first thing to go.
        match &s.runner_lock {
            Some(h) => {
                parts.push(Part::new(
                    0,
                    vec![
                        Span::raw(SEP),
                        Span::styled(
                            format!("runner lock: pid {} {}", h.pid, h.application),
                            theme.warn(),
                        ),
                    ],
                ));
                parts.push(Part::new(
                    6,
                    vec![Span::styled(format!(" ({})", h.user), theme.warn())],
                ));
            }
            None => parts.push(Part::new(
                5,
                vec![Span::raw(SEP), Span::raw("runner lock free")],
            )),
        }
    }
    fit(parts, width)
}

/// The health word (kept) and its reason (dropped first when narrow).
fn health<'a>(app: &'a App, theme: &Theme) -> Vec<Part<'a>> {
    let word = |spans| Part::new(0, spans);
    match &app.health {
        Health::Connecting => vec![word(vec![Span::raw(SEP), Span::raw("health connecting…")])],
        // `pgshift health`'s words and colours (`crate::marks`).
        Health::Ok => vec![word(vec![
            Span::raw(SEP),
            Span::raw("health "),
            theme.word(&HealthStatus::Ok),
        ])],
        Health::Degraded(why) => vec![
            word(vec![
                Span::raw(SEP),
                Span::raw("health "),
                theme.word(&HealthStatus::Degraded),
            ]),
            Part::elastic(3, Span::styled(format!(": {why}"), theme.warn())),
        ],
        Health::Unreachable { reason, .. } => vec![
            word(vec![
                Span::raw(SEP),
                Span::raw("health "),
                Span::styled(" UNREACHABLE ", theme.alarm()),
                Span::styled(
                    format!(" retry in {}s, r now", app.retry_in_s()),
                    theme.error(),
                ),
            ]),
            Part::elastic(3, Span::styled(format!(": {reason}"), theme.error())),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;
    use crate::tls::{SslMode, TlsState, Verified};
    use crate::tui::sample;

    fn identity_text(tls: TlsState) -> (String, Vec<ratatui::style::Style>) {
        let mut app = sample::connected(Environment::Production, 2, vec![], vec![], true);
        if let Some(s) = app.status.as_mut() {
            s.server.tls = tls;
        }
        let theme = Theme::of(&app);
        let line = identity(&app, &theme, 200);
        let text = line.spans.iter().map(|s| s.content.as_ref()).collect();
        (text, line.spans.iter().map(|s| s.style).collect())
    }

    #[test]
    fn the_header_shows_a_standby_and_its_primary_in_alarm_and_replica_lags_on_a_primary() {
        use crate::db::topology::{Replica, Role, Topology, Upstream};
        let mut app = sample::connected(Environment::Production, 2, vec![], vec![], true);
        let theme = Theme::of(&app);
        let text_of = |app: &App| -> String {
            identity(app, &theme, 200)
                .spans
                .iter()
                .map(|s| s.content.to_string())
                .collect()
        };
        let standby = Topology {
            role: Role::Standby,
            replicas: vec![],
            primary: Some(Upstream {
                host: Some("db1.internal".into()),
                port: Some(5432),
                status: Some("streaming".into()),
            }),
            replay_age_s: None,
        };
        if let Some(s) = app.status.as_mut() {
            s.topology = Some(standby);
        }
        assert!(
            text_of(&app).contains("│  STANDBY  of db1.internal:5432"),
            "{}",
            text_of(&app)
        );
        let line = identity(&app, &theme, 200);
        let badge = line.spans.iter().find(|s| s.content.contains("STANDBY"));
        assert_eq!(badge.map(|s| s.style), Some(theme.alarm()));
        let replica = |name: &str, lag: Option<f64>, caught_up| Replica {
            name: name.into(),
            client_addr: None,
            state: Some("streaming".into()),
            sync_state: Some("async".into()),
            write_lag_s: lag,
            flush_lag_s: lag,
            replay_lag_s: lag,
            caught_up,
            logical: false,
        };
        if let Some(s) = app.status.as_mut() {
            s.topology = Some(Topology {
                role: Role::Primary,
                replicas: vec![
                    replica("r1", Some(0.2), false),
                    replica("r2", Some(9.0), true),
                ],
                primary: None,
                replay_age_s: None,
            });
        }
        assert!(
            text_of(&app).contains("│ replicas r1 0.2s, r2 0.0s"),
            "{}",
            text_of(&app)
        );
    }

    #[test]
    fn the_header_names_the_tls_mode_and_warns_about_plain_text_on_the_network() {
        let verified = TlsState {
            mode: SslMode::VerifyFull,
            encrypted: true,
            protocol: Some("TLSv1.3"),
            verified: Verified::Full,
            unix_socket: false,
        };
        let (text, _) = identity_text(verified);
        assert!(text.ends_with("│ TLS verify-full"), "{text}");
        let plain = TlsState {
            mode: SslMode::Prefer,
            encrypted: false,
            protocol: None,
            verified: Verified::None,
            unix_socket: false,
        };
        let (text, styles) = identity_text(plain);
        assert!(text.ends_with("│ NO TLS"), "{text}");
        let theme = Theme::of(&sample::connected(
            Environment::Production,
            2,
            vec![],
            vec![],
            true,
        ));
        assert_eq!(styles.last(), Some(&theme.warn()));
        let (text, _) = identity_text(TlsState::unix_socket());
        assert!(!text.contains("TLS"), "{text}");
    }
}
