//! TLS to PostgreSQL the way psql users expect: libpq's `sslmode` values and `sslrootcert`,
//! rustls with the ring provider, roots from the system store. Every connection pgshift opens to
//! a target (sessions and cancel requests) goes through [`open`] and [`cancel`].

mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{CancelToken, Client, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

pub use crate::config::tls_params::{SslMode, TlsParams, TlsSettings};

use crate::config::ConnInfo;
use crate::diagnosis::{Diagnosis, connect_reason};
use crate::error::{Error, Result};

/// A connection's driver half, whatever `sslmode` chose.
pub type Connection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// What a session's connection actually is, for `status`, the TUI header and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TlsState {
    /// The mode enforced (libpq's `require` + `sslrootcert` shows as `verify-ca`).
    pub mode: SslMode,
    pub encrypted: bool,
    /// `TLSv1.3` / `TLSv1.2` when encrypted.
    pub protocol: Option<&'static str>,
    /// What was verified: `none`, `ca` (chain) or `full` (chain and host name).
    pub verified: Verified,
    /// A Unix-domain socket: local, never encrypted (PostgreSQL has no TLS there).
    pub unix_socket: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verified {
    None,
    Ca,
    Full,
}

impl TlsState {
    /// A Unix-socket connection (sandbox, local peer auth): TLS does not apply.
    pub fn unix_socket() -> TlsState {
        TlsState {
            mode: SslMode::Disable,
            encrypted: false,
            protocol: None,
            verified: Verified::None,
            unix_socket: true,
        }
    }

    /// Short form for headers: `verify-full`, `require`, `none`.
    pub fn label(&self) -> &'static str {
        if self.encrypted {
            self.mode.as_str()
        } else {
            "none"
        }
    }

    /// One line for `status`: what protects the connection and what does not.
    pub fn describe(&self) -> String {
        match (self.encrypted, self.verified) {
            (true, Verified::Full) => format!(
                "verify-full ({}, certificate and host name verified)",
                self.protocol.unwrap_or("TLS")
            ),
            (true, Verified::Ca) => format!(
                "verify-ca ({}, certificate chain verified, host name not checked)",
                self.protocol.unwrap_or("TLS")
            ),
            (true, Verified::None) => format!(
                "{} ({}, encrypted, server certificate not verified)",
                self.mode,
                self.protocol.unwrap_or("TLS")
            ),
            (false, _) if self.unix_socket => "none (Unix-domain socket, local)".into(),
            (false, _) if self.mode == SslMode::Disable => "none (sslmode=disable)".into(),
            (false, _) => format!(
                "none (sslmode={}: the server did not offer TLS, plain text)",
                self.mode
            ),
        }
    }
}

/// Connect with the target's TLS settings, the whole handshake bounded by `limit`.
pub async fn open(
    conn: &ConnInfo,
    mut pg: tokio_postgres::Config,
    limit: Duration,
) -> Result<(Client, Connection, TlsState)> {
    let mode = conn.tls.effective_mode();
    let unix_socket = only_unix_sockets(&pg);
    pg.ssl_mode(match mode {
        // PostgreSQL never speaks TLS on a Unix socket; libpq does not ask there either.
        _ if unix_socket => PgSslMode::Disable,
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    let seen = Arc::new(verify::Seen::default());
    let tls = connector(&conn.tls, seen.clone())?;
    let first = connect_within(&pg, tls, limit).await;
    let (client, connection) = match first {
        // libpq's `prefer` falls back to plain text when the TLS handshake itself fails.
        Err(ConnectFailure::Pg(e)) if mode == SslMode::Prefer && is_tls_failure(&e) => {
            tracing::warn!(
                "TLS handshake failed under sslmode=prefer, retrying in plain text: {e}"
            );
            pg.ssl_mode(PgSslMode::Disable);
            let tls = connector(&conn.tls, seen.clone())?;
            connect_within(&pg, tls, limit).await
        }
        other => other,
    }
    .map_err(|e| unreachable(conn, e))?;
    let protocol = if pg.get_ssl_mode() == PgSslMode::Disable {
        None
    } else {
        seen.protocol()
    };
    let encrypted = protocol.is_some();
    if !encrypted && !unix_socket && mode == SslMode::Prefer {
        // Not an error (libpq's default does the same), but never silent.
        tracing::warn!(
            "connected to {} in plain text: the server offered no TLS (sslmode=prefer)",
            conn.redacted()
        );
    }
    let state = TlsState {
        mode,
        encrypted,
        protocol,
        verified: match mode {
            SslMode::VerifyFull if encrypted => Verified::Full,
            SslMode::VerifyCa if encrypted => Verified::Ca,
            _ => Verified::None,
        },
        unix_socket,
    };
    Ok((client, connection, state))
}

/// Ask the server to cancel the running statement of `token`'s session, with the session's TLS
/// settings, so that its cancel key does not cross the network in plain text when the session
/// itself is encrypted.
pub async fn cancel(token: CancelToken, conn: &ConnInfo) -> Result<()> {
    let tls = connector(&conn.tls, Arc::default())?;
    token
        .cancel_query(tls)
        .await
        .map_err(|e| unreachable(conn, ConnectFailure::Pg(e)))
}

enum ConnectFailure {
    Pg(tokio_postgres::Error),
    TimedOut(Duration),
}

async fn connect_within(
    pg: &tokio_postgres::Config,
    tls: MakeRustlsConnect,
    limit: Duration,
) -> std::result::Result<(Client, Connection), ConnectFailure> {
    // tokio-postgres bounds only the TCP connect: a server (or proxy) that accepts and then never
    // answers the startup would hang us forever. Bound the whole handshake.
    match tokio::time::timeout(limit, pg.connect(tls)).await {
        Ok(r) => r.map_err(ConnectFailure::Pg),
        Err(_) => Err(ConnectFailure::TimedOut(limit)),
    }
}

/// A failed TLS handshake (tokio-postgres's `Kind::Tls`, not public: its message names it).
fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_none() && e.to_string().contains("TLS handshake")
}

fn only_unix_sockets(pg: &tokio_postgres::Config) -> bool {
    !pg.get_hosts().is_empty()
        && pg.get_hostaddrs().is_empty()
        && pg.get_hosts().iter().all(|h| !matches!(h, Host::Tcp(_)))
}

/// Turn a failed connect into what happened, why, and what to do next. Never shows a password:
/// only the redacted target and the driver's/server's words, which do not contain it.
fn unreachable(conn: &ConnInfo, failure: ConnectFailure) -> Error {
    let reason = match failure {
        ConnectFailure::TimedOut(limit) => format!(
            "timed out after {} ms waiting for the server's startup reply\n  {}",
            limit.as_millis(),
            Diagnosis::ConnectionTimeout.next_step()
        ),
        ConnectFailure::Pg(e) => {
            // A TLS refusal is not an authentication problem: skip the generic next step.
            let base = if tls_hint(conn, &e).is_some() && e.as_db_error().is_some() {
                crate::error::DbFailure::from_pg(&e, None).to_string()
            } else {
                connect_reason(&e)
            };
            match tls_hint(conn, &e) {
                Some(hint) => format!("{base}\n  {hint}"),
                None => base,
            }
        }
    };
    Error::Unreachable {
        target: conn.redacted(),
        reason,
    }
}

/// The TLS-specific next step for a connect failure, if TLS is why it failed.
fn tls_hint(conn: &ConnInfo, e: &tokio_postgres::Error) -> Option<String> {
    let mode = conn.tls.effective_mode();
    if let Some(db) = e.as_db_error() {
        // pg_hba.conf has `hostssl` for us but nothing that accepts plain text.
        if db.message().contains("no encryption") {
            return Some(format!(
                "The server accepts only TLS connections (pg_hba.conf `hostssl`) and this connection \
                 used sslmode={mode}. Connect with sslmode=verify-full (with sslrootcert = the \
                 server's CA if it is not in the system store) or at least sslmode=require."
            ));
        }
        return None;
    }
    if let Some(cert) = rustls_error(e) {
        return Some(certificate_hint(conn, cert));
    }
    // tokio-postgres's Display shows only the error kind; the words are in the sources.
    let mut text = e.to_string();
    let mut next = std::error::Error::source(e);
    while let Some(s) = next {
        text.push_str(&format!(": {s}"));
        next = s.source();
    }
    if text.contains("server does not support TLS") {
        return Some(format!(
            "sslmode={mode} refuses plain text, and the server (or a pooler in front of it) \
             answered that it has no TLS (ssl = off). Ask the DBA to enable TLS; only on a \
             trusted network connect with sslmode=prefer or disable."
        ));
    }
    None
}

fn certificate_hint(conn: &ConnInfo, err: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let roots = roots_source(&conn.tls);
    match err {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "The server's certificate is not signed by a root trusted here ({roots}). Set \
             sslrootcert to the CA certificate that signed it (managed databases publish theirs), \
             or use sslmode=require to encrypt without verifying the server."
        ),
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => {
            format!(
                "The server's certificate does not name the host {:?}. Connect with a host name the \
                 certificate lists, or use sslmode=verify-ca to verify the chain only.",
                conn.host()
            )
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "The server's certificate has expired: the DBA must renew it. sslmode=require would \
             connect meanwhile, without verifying the server."
                .into()
        }
        other => format!(
            "The TLS handshake failed ({other}). Check sslmode/sslrootcert ({roots}) against the \
             server's TLS setup."
        ),
    }
}

/// The rustls error under a tokio-postgres error (it sits inside an `io::Error`, whose
/// `source()` skips it, so look inside each `io::Error` too).
fn rustls_error(e: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        next = err.source();
    }
    None
}

/// The rustls connector for these settings; `seen` records the handshake it completes.
fn connector(t: &TlsSettings, seen: Arc<verify::Seen>) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mode = t.effective_mode();
    let chain = if mode.verifies() {
        let roots = Arc::new(roots(t)?);
        Some(
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| {
                    Error::Usage(format!(
                        "sslmode={mode}: cannot verify against {}: {e}",
                        roots_source(t)
                    ))
                })?,
        )
    } else {
        None
    };
    let verifier = Arc::new(verify::Verifier {
        chain,
        check_host: mode == SslMode::VerifyFull,
        algorithms: provider.signature_verification_algorithms,
        seen,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // Every connection does a full handshake, so every one is verified and observed.
    config.resumption = Resumption::disabled();
    Ok(MakeRustlsConnect::new(config))
}

/// Where trusted roots come from: `sslrootcert` (a PEM file, or `system`), else libpq's
/// `~/.postgresql/root.crt` when it exists, else the system store.
enum Roots {
    File(PathBuf),
    System,
}

fn roots_choice(t: &TlsSettings) -> Roots {
    match &t.root_cert {
        Some(p) if p.as_os_str() == "system" => Roots::System,
        Some(p) => Roots::File(p.clone()),
        None => match crate::config::home_dir().map(|h| h.join(".postgresql").join("root.crt")) {
            Some(p) if p.is_file() => Roots::File(p),
            _ => Roots::System,
        },
    }
}

fn roots_source(t: &TlsSettings) -> String {
    match roots_choice(t) {
        Roots::File(p) => format!("sslrootcert {}", p.display()),
        Roots::System => "the system certificate store".into(),
    }
}

fn roots(t: &TlsSettings) -> Result<RootCertStore> {
    let certs = match roots_choice(t) {
        Roots::File(p) => pem_certificates(&p)?,
        Roots::System => system_certificates()?,
    };
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(certs);
    Ok(store)
}

fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |why: String| Error::Usage(format!("sslrootcert {}: {why}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot read: {e}")))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// The system store, read once per process (it is a few hundred certificates).
fn system_certificates() -> Result<Vec<CertificateDer<'static>>> {
    static SYSTEM: OnceLock<std::result::Result<Vec<CertificateDer<'static>>, String>> =
        OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                return Err(format!(
                    "no trusted root certificates in the system store{}; install the \
                     ca-certificates package or set sslrootcert to a PEM file",
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", why.join("; "))
                    }
                ));
            }
            Ok(found.certs)
        })
        .clone()
        .map_err(Error::Usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(mode: SslMode, encrypted: bool, verified: Verified) -> TlsState {
        TlsState {
            mode,
            encrypted,
            protocol: encrypted.then_some("TLSv1.3"),
            verified,
            unix_socket: false,
        }
    }

    #[test]
    fn status_line_says_what_protects_the_connection() {
        let full = state(SslMode::VerifyFull, true, Verified::Full);
        assert_eq!(full.label(), "verify-full");
        assert!(full.describe().contains("host name verified"));
        let req = state(SslMode::Require, true, Verified::None);
        assert!(
            req.describe().contains("not verified"),
            "{}",
            req.describe()
        );
        let plain = state(SslMode::Prefer, false, Verified::None);
        assert_eq!(plain.label(), "none");
        assert!(plain.describe().contains("plain text"));
        assert_eq!(TlsState::unix_socket().label(), "none");
    }

    #[test]
    fn unix_sockets_never_ask_for_tls() {
        let mut pg = tokio_postgres::Config::new();
        pg.host_path("/var/run/postgresql");
        assert!(only_unix_sockets(&pg));
        pg.host("db.example");
        assert!(!only_unix_sockets(&pg));
    }

    #[test]
    fn a_missing_root_certificate_file_is_named() {
        let t = TlsSettings {
            mode: SslMode::VerifyFull,
            root_cert: Some("/nonexistent/ca.pem".into()),
        };
        let e = connector(&t, Arc::default()).err().map(|e| e.to_string());
        assert!(
            e.as_deref().unwrap_or("").contains("/nonexistent/ca.pem"),
            "{e:?}"
        );
    }
}
