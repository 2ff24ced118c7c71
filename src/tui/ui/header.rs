//! The two header lines: where we are connected (target, environment, SANDBOX, server, role) and
//! where the database stands (current → target, pending, health, runner lock).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::tui::app::{App, Health};

const SEP: &str = " │ ";

pub fn draw(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    f.render_widget(
        Paragraph::new(vec![identity(app, theme), position(app, theme)]),
        area,
    );
}

fn identity<'a>(app: &'a App, theme: &Theme) -> Line<'a> {
    let t = &app.target;
    let mut spans = vec![
        Span::styled("pgshift ", theme.title(false)),
        Span::styled(t.name.clone(), theme.title(true)),
        Span::raw(" "),
    ];
    let env = t.environment.as_str().to_uppercase();
    if t.environment.is_production() {
        spans.push(Span::styled(format!(" {env} "), theme.production()));
    } else if t.sandbox {
        spans.push(Span::styled(" SANDBOX ", theme.sandbox()));
    } else {
        spans.push(Span::raw(format!("[{}]", t.environment.as_str())));
    }
    spans.push(Span::raw(SEP));
    spans.push(Span::raw(t.address.clone()));
    if let Some(s) = &app.status {
        spans.push(Span::raw(format!(
            "{SEP}role {}{SEP}PG {}",
            s.server.role, s.server.version
        )));
        if s.server.read_only {
            spans.push(Span::styled(" READ ONLY", theme.warn()));
        }
        let tls = &s.server.tls;
        if tls.encrypted {
            spans.push(Span::raw(format!("{SEP}TLS {}", tls.label())));
        } else if !tls.unix_socket {
            // Plain text over the network is worth a glance, never silent.
            spans.push(Span::styled(format!("{SEP}NO TLS"), theme.warn()));
        }
    }
    Line::from(spans)
}

fn position<'a>(app: &'a App, theme: &Theme) -> Line<'a> {
    let mut spans = Vec::new();
    match &app.status {
        Some(s) => {
            let target = match app.upgrade_target() {
                crate::plan::TargetSpec::Revision(r) => r,
                _ => s.head,
            };
            spans.push(Span::raw("revision "));
            spans.push(Span::styled(
                format!("{} → {}", s.current, target),
                theme.title(false),
            ));
            let pending = s.pending.len();
            spans.push(if pending == 0 {
                Span::styled(" (up to date)", theme.ok())
            } else {
                Span::styled(format!(" ({pending} pending)"), theme.warn())
            });
        }
        None => spans.push(Span::raw("revision unknown")),
    }
    spans.push(Span::raw(SEP));
    spans.push(Span::raw("health "));
    match &app.health {
        Health::Connecting => spans.push(Span::raw("connecting…")),
        Health::Ok => spans.push(Span::styled("OK", theme.ok())),
        Health::Degraded(why) => spans.push(Span::styled(format!("DEGRADED: {why}"), theme.warn())),
        Health::Unreachable { reason, retry_in_s } => {
            spans.push(Span::styled(" UNREACHABLE ", theme.alarm()));
            spans.push(Span::styled(
                format!(" retry in {retry_in_s}s, r now: {reason}"),
                theme.error(),
            ));
        }
    }
    if let Some(s) = &app.status {
        spans.push(Span::raw(SEP));
        match &s.runner_lock {
            Some(h) => spans.push(Span::styled(
                format!("runner lock: pid {} {} ({})", h.pid, h.application, h.user),
                theme.warn(),
            )),
            None => spans.push(Span::raw("runner lock free")),
        }
    }
    Line::from(spans)
}
