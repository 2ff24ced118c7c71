//! `pgshift serve`: the runbook's HTTP endpoints for a degraded application.
//!
//! - `GET /health`: the health document (200 ok/degraded, 503 down).
//! - `GET /admin/migrations`: current vs target as JSON, or an HTML page with a Retry button when
//!   the client accepts `text/html`.
//! - `POST /admin/migrations/retry`: `up` to head as audit action `retry`, through the gates of
//!   [`Caller::Serve`] (a production target's pre-deploy checklist). Needs
//!   `Authorization: Bearer <token>`; the token comes from the env var named by `[serve] token_env`
//!   (default `PGSHIFT_SERVE_TOKEN`). Without a configured token the route is disabled (403).
//!
//! Binds to 127.0.0.1 by default: these routes are for operators, not the internet. The token must
//! be at least [`MIN_TOKEN_BYTES`] long, and every request must name this server in its `Host`
//! header (the listen address, `localhost` on loopback, or a name in `[serve] hosts`): a page on
//! another site that rebinds its DNS name to this address cannot reach it (DNS rebinding).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::catalog::Catalog;
use crate::config::{Loaded, Target};
use crate::error::{Error, Result};
use crate::event::Reporter;
use crate::health::{self, HealthStatus};
use crate::ops::gate::{Caller, Checklists, Policy};
use crate::ops::migrate;
use crate::plan::{Direction, TargetSpec};
use crate::remedy as diagnose;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_TOKEN_ENV: &str = "PGSHIFT_SERVE_TOKEN";
pub const RETRY_ACTION: &str = "retry";
/// A bearer token shorter than this is guessable; `serve` refuses to start with one.
pub const MIN_TOKEN_BYTES: usize = 16;

/// The typed `[serve]` config section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to bind [default: 127.0.0.1:8080].
    pub listen: Option<String>,
    /// Environment variable holding the bearer token for mutating routes [default: PGSHIFT_SERVE_TOKEN].
    pub token_env: Option<String>,
    /// Host names this server answers to besides its listen address (e.g. the name a proxy
    /// forwards); any other `Host` header is refused.
    pub hosts: Option<Vec<String>>,
}

impl ServeConfig {
    pub fn from_loaded(loaded: &Loaded) -> Result<ServeConfig> {
        let Some(table) = &loaded.file.serve else {
            return Ok(ServeConfig::default());
        };
        toml::Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config {
                path: loaded.path.clone().unwrap_or_default(),
                message: format!("[serve]: {}", e.message()),
            })
    }

    pub fn token_env(&self) -> &str {
        self.token_env.as_deref().unwrap_or(DEFAULT_TOKEN_ENV)
    }

    /// The token, if the named variable is set and non-empty; one shorter than
    /// [`MIN_TOKEN_BYTES`] is a configuration error (exit 2), never silently accepted.
    pub fn token(&self) -> Result<Option<String>> {
        let Some(token) = std::env::var(self.token_env())
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
        else {
            return Ok(None);
        };
        if token.len() < MIN_TOKEN_BYTES {
            return Err(Error::Usage(format!(
                "{} holds a {}-byte token; the retry route needs at least {MIN_TOKEN_BYTES} bytes so that it cannot be guessed. Use e.g. `openssl rand -hex 32`.",
                self.token_env(),
                token.len()
            )));
        }
        Ok(Some(token))
    }
}

/// Bind the listen address. A malformed address or one that cannot be bound here is a usage error
/// (exit 2): it is the operator's setting that is wrong.
pub async fn bind(listen: &str) -> Result<tokio::net::TcpListener> {
    let bad = |why: String| {
        Error::Usage(format!(
            "cannot listen on {listen:?}: {why}. Give HOST:PORT, e.g. --listen 127.0.0.1:8080"
        ))
    };
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| bad("no port".into()))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad(format!(
            "{port:?} is not a port (0 to 65535) or the host is empty"
        )));
    }
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| bad(e.to_string()))
}

/// Which `Host` headers this server answers to.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    pub listen: SocketAddr,
    /// Lowercase names from `[serve] hosts`.
    pub names: Vec<String>,
}

impl HostPolicy {
    pub fn new(listen: SocketAddr, names: &[String]) -> HostPolicy {
        HostPolicy {
            listen,
            names: names.iter().map(|n| normalize_host(n)).collect(),
        }
    }

    /// The listen address itself, `localhost` when listening on loopback, any IP literal when
    /// listening on all interfaces (a rebound DNS name is never an IP literal), or a configured name.
    pub fn allows(&self, host_header: &str) -> bool {
        let host = normalize_host(host_header);
        if self.names.contains(&host) {
            return true;
        }
        let ip = self.listen.ip();
        match host.parse::<IpAddr>() {
            Ok(given) => ip.is_unspecified() || given == ip,
            Err(_) => host == "localhost" && (ip.is_loopback() || ip.is_unspecified()),
        }
    }

    fn describe(&self) -> String {
        let mut allowed = vec![self.listen.ip().to_string()];
        if self.listen.ip().is_loopback() || self.listen.ip().is_unspecified() {
            allowed.push("localhost".into());
        }
        allowed.extend(self.names.iter().cloned());
        allowed.join(", ")
    }
}

/// `Host` without its port and brackets, lowercase, without a trailing dot.
fn normalize_host(h: &str) -> String {
    let h = h.trim();
    let host = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match h.rsplit_once(':') {
            Some((host, port))
                if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                host
            }
            _ => h,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

pub struct AppState {
    pub target: Target,
    /// What the checklist gate of a retry reads.
    pub checklists: Checklists,
    pub token: Option<String>,
    pub token_env: String,
    pub hosts: HostPolicy,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(get_health))
        .route("/admin/migrations", get(get_migrations))
        .route("/admin/migrations/retry", post(post_retry))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            check_host,
        ))
        .with_state(state)
}

/// Refuse a request whose `Host` is not this server (DNS rebinding), before any route runs.
async fn check_host(State(st): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match host {
        Some(h) if st.hosts.allows(&h) => next.run(request).await,
        Some(h) => refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "Host {h:?} is not a name this server answers to (allowed: {}); refused to stop DNS rebinding. If the name is yours, add it to [serve] hosts.",
                st.hosts.describe()
            ),
        ),
        None => refuse(StatusCode::BAD_REQUEST, "a Host header is required".into()),
    }
}

/// Serve until ctrl-c / SIGTERM.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .map_err(|e| Error::io("serving HTTP", e))
}

/// A short, stable id of a token for the audit trail: the first 8 hex digits of its SHA-256. It
/// tells tokens apart (rotation, several callers) and gives nothing away about the token itself.
pub fn token_id(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    ctrl_c.await.ok();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}

/// Whether an address is loopback (anything else is reachable from the network).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

async fn get_health(State(st): State<Arc<AppState>>) -> Response {
    let h = health::check(&st.target).await;
    let code = if h.status == HealthStatus::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(h)).into_response()
}

#[derive(serde::Serialize)]
struct MigrationsView {
    target: String,
    environment: &'static str,
    status: HealthStatus,
    database_reachable: bool,
    migrations: health::MigrationsHealth,
    diagnosis: Vec<diagnose::Finding>,
    retry: &'static str,
}

async fn get_migrations(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let h = health::check(&st.target).await;
    let view = MigrationsView {
        target: h.target.clone(),
        environment: h.environment.as_str(),
        status: h.status,
        database_reachable: h.database.reachable,
        migrations: h.migrations.clone(),
        diagnosis: h.diagnosis.clone(),
        retry: "POST /admin/migrations/retry with Authorization: Bearer <token>",
    };
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        Html(page(&view, st.token.is_some(), &st.token_env)).into_response()
    } else {
        Json(view).into_response()
    }
}

/// Compare without an early exit, so the time taken says nothing about the token.
fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

fn refuse(code: StatusCode, message: String) -> Response {
    (
        code,
        Json(serde_json::json!({ "ok": false, "error": message })),
    )
        .into_response()
}

async fn post_retry(
    State(st): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Some(expected) = &st.token else {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "retry is disabled: no token configured. Set {} (or [serve] token_env) to a secret and restart `pgshift serve`; then send Authorization: Bearer <token>.",
                st.token_env
            ),
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if same_token(t, expected) => {}
        Some(_) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "wrong bearer token; nothing was run".into(),
            );
        }
        None => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "retry needs Authorization: Bearer <token>; nothing was run".into(),
            );
        }
    }
    let result = async {
        let catalog = Catalog::load(&st.target.migrations)?;
        let policy = Policy::new(Caller::Serve, st.checklists.clone());
        let mut req = migrate::Request::new(Direction::Up, TargetSpec::Head, policy);
        req.action = RETRY_ACTION.into();
        // Who asked: the audit row names the client and the token (by id, never the token).
        // (`caller` is the gate policy's front end, `serve`; this says which client.)
        req.detail["requested_by"] = serde_json::json!({
            "address": client.to_string(),
            "token_id": token_id(expected),
        });
        migrate::run(&st.target, &catalog, &req, &Reporter::silent()).await
    }
    .await;
    match result {
        Ok(report) => {
            tracing::info!("{}", migrate::COMPLETED);
            (
                StatusCode::OK,
                Json(serde_json::json!({ "ok": true, "report": report })),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!("{}: {e}", migrate::FAILED);
            let code = match e.exit_code() {
                // A gate refused (e.g. no fresh pre-deploy checklist on production): audited.
                _ if matches!(e, Error::Refused(_)) => StatusCode::FORBIDDEN,
                crate::error::ExitCode::LockBusy => StatusCode::CONFLICT,
                crate::error::ExitCode::Unreachable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let body = serde_json::json!({
                "ok": false,
                "error": crate::secrets::redact(&e.to_string()),
                "kind": e.kind(),
                "sqlstate": e.sqlstate(),
                "diagnosis": diagnose::from_error(&e, &st.target),
            });
            (code, Json(body)).into_response()
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A plain page: current vs target, the last error, and the Retry button (which sends the token
/// typed into the page as a bearer header; the page never embeds it).
fn page(v: &MigrationsView, retry_enabled: bool, token_env: &str) -> String {
    let m = &v.migrations;
    let rev = |r: Option<crate::catalog::Revision>| {
        r.map(|r| r.to_string()).unwrap_or_else(|| "unknown".into())
    };
    let mut body = format!(
        "<h1>Migrations: {}</h1>\n<p>Target <b>{}</b> ({}) — status <b>{}</b></p>\n<table>\n<tr><th>current</th><td>{}</td></tr>\n<tr><th>target (head)</th><td>{}</td></tr>\n<tr><th>state</th><td>{}</td></tr>\n<tr><th>pending</th><td>{}</td></tr>\n</table>\n",
        escape(&v.target),
        escape(&v.target),
        v.environment,
        escape(&format!("{:?}", v.status).to_lowercase()),
        rev(m.current),
        rev(m.head),
        escape(&format!("{:?}", m.state).to_lowercase()),
        escape(
            &m.pending
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    if let Some(l) = &m.last_error {
        body.push_str(&format!(
            "<h2>Last error</h2>\n<p>{} {} at {} by {}</p>\n<pre>{}</pre>\n",
            escape(&l.action),
            escape(l.outcome.as_str()),
            escape(&l.at),
            escape(&l.operator),
            escape(&l.error)
        ));
    }
    for d in &m.drift {
        body.push_str(&format!("<p>drift: {}</p>\n", escape(&d.to_string())));
    }
    for f in &v.diagnosis {
        body.push_str(&format!("<h2>Runbook: {}</h2>\n<ul>\n", escape(f.section)));
        for s in &f.solutions {
            body.push_str(&format!("<li>{}</li>\n", escape(s)));
        }
        body.push_str("</ul>\n");
    }
    if retry_enabled {
        body.push_str(RETRY_FORM);
    } else {
        body.push_str(&format!(
            "<p>Retry is disabled: set {} for <code>pgshift serve</code> to enable it.</p>\n",
            escape(token_env)
        ));
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>pgshift migrations</title></head>\n<body>\n{body}</body></html>\n"
    )
}

const RETRY_FORM: &str = r#"<form id="retry" onsubmit="retry(event)">
<label>Token <input type="password" id="token" autocomplete="off"></label>
<button type="submit">Retry Migrations</button>
</form>
<pre id="result"></pre>
<script>
async function retry(e) {
  e.preventDefault();
  const r = await fetch('/admin/migrations/retry', {method: 'POST', headers: {'Authorization': 'Bearer ' + document.getElementById('token').value}});
  document.getElementById('result').textContent = r.status + ' ' + JSON.stringify(await r.json(), null, 2);
}
</script>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(same_token("s3cret", "s3cret"));
        assert!(!same_token("s3cre", "s3cret"));
        assert!(!same_token("s3cret!", "s3cret"));
        assert!(!same_token("", "s3cret"));
        assert!(!same_token("S3cret", "s3cret"));
    }

    #[test]
    fn host_header_must_name_this_server() {
        let loopback = HostPolicy::new(
            "127.0.0.1:8080".parse().unwrap(),
            &["Migrations.Internal.".into()],
        );
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:8080",
            "LOCALHOST",
            "migrations.internal:443",
            "migrations.internal",
        ] {
            assert!(loopback.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.5:8080",
            "127.0.0.1.evil.example",
            "",
            "[::1]:8080",
        ] {
            assert!(!loopback.allows(bad), "{bad}");
        }
        let all = HostPolicy::new("0.0.0.0:8080".parse().unwrap(), &[]);
        assert!(
            all.allows("10.0.0.5:8080") && all.allows("[fe80::1]:8080") && all.allows("localhost")
        );
        assert!(!all.allows("evil.example"));
        let v6 = HostPolicy::new("[::1]:8080".parse().unwrap(), &[]);
        assert!(v6.allows("[::1]:8080") && v6.allows("localhost") && !v6.allows("127.0.0.1"));
    }

    #[test]
    fn token_ids_are_short_stable_and_not_the_token() {
        let id = token_id("s3cret-token-0123456789");
        assert_eq!(id.len(), 8);
        assert_eq!(id, token_id("s3cret-token-0123456789"));
        assert_ne!(id, token_id("s3cret-token-0123456780"));
        assert!(!"s3cret-token-0123456789".contains(&id));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<b>\"x\" & y</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;"
        );
    }
}
