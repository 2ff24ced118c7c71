//! libpq's TLS parameters, `sslmode` (all of libpq's values) and `sslrootcert`, taken out of a
//! connection string before tokio-postgres parses it: tokio-postgres knows only
//! disable/prefer/require and rejects `verify-ca`, `verify-full` and `sslrootcert` outright.

use std::path::PathBuf;

/// How hard to insist on TLS, with libpq's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, plain text otherwise (libpq's default). Not verified.
    #[default]
    Prefer,
    /// TLS or nothing; the certificate is not verified (encryption only, as in libpq).
    Require,
    /// TLS, certificate chain verified against the trusted roots; host name not checked.
    VerifyCa,
    /// TLS, chain verified and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "disable" => Ok(SslMode::Disable),
            // libpq's `allow` tries plain text first; trying TLS first is never less safe.
            "allow" | "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(format!(
                "invalid sslmode {other:?}: use disable, prefer, require, verify-ca or verify-full"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Does this mode check the certificate chain?
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS part of a connection's parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// PEM file of trusted root certificates, or `system` for the system store.
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// The mode actually enforced. As in libpq, `require` with an explicit root certificate
    /// verifies the chain (behaves as `verify-ca`).
    pub fn effective_mode(&self) -> SslMode {
        match (self.mode, &self.root_cert) {
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        }
    }

    /// Settings from the URL, falling back to `PGSSLMODE`/`PGSSLROOTCERT` as libpq does.
    pub fn with_env_defaults(given: TlsParams) -> Result<TlsSettings, String> {
        let env = TlsParams::from_env()?;
        Ok(TlsSettings {
            mode: given.mode.or(env.mode).unwrap_or_default(),
            root_cert: given.root_cert.or(env.root_cert),
        })
    }
}

/// TLS parameters as found in one place (a URL, the environment); `None` = not given there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: Option<SslMode>,
    pub root_cert: Option<PathBuf>,
}

impl TlsParams {
    pub fn from_env() -> Result<TlsParams, String> {
        let env = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        Ok(TlsParams {
            mode: env("PGSSLMODE")
                .map(|m| SslMode::parse(&m).map_err(|e| format!("PGSSLMODE: {e}")))
                .transpose()?,
            root_cert: env("PGSSLROOTCERT").map(PathBuf::from),
        })
    }

    fn take(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "sslmode" => self.mode = Some(SslMode::parse(value)?),
            "sslrootcert" => self.root_cert = Some(PathBuf::from(value)),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(format!(
                    "{key}: client certificate authentication is not supported by pgshift; \
                     authenticate with a password (password_env or ~/.pgpass) over TLS instead"
                ));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Split the TLS parameters out of a `postgres://` URL or a libpq `key=value` string; the rest is
/// returned unchanged for tokio-postgres to parse.
pub fn split(conninfo: &str) -> Result<(String, TlsParams), String> {
    let mut found = TlsParams::default();
    if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
        let Some((base, query)) = conninfo.split_once('?') else {
            return Ok((conninfo.to_string(), found));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !found.take(
                &crate::secrets::percent_decode(k),
                &crate::secrets::percent_decode(v),
            )? {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, found));
    }
    let Some(pairs) = key_values(conninfo) else {
        // Malformed: let tokio-postgres report it in its own words.
        return Ok((conninfo.to_string(), found));
    };
    let mut kept = Vec::new();
    for p in pairs {
        if !found.take(&p.key, &p.value)? {
            kept.push(&conninfo[p.start..p.end]);
        }
    }
    Ok((kept.join(" "), found))
}

struct Pair {
    key: String,
    value: String,
    /// Byte span of the whole `key = value` text.
    start: usize,
    end: usize,
}

/// libpq's `key = value` grammar: values unquoted or in single quotes, `\` escapes.
fn key_values(s: &str) -> Option<Vec<Pair>> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            return Some(out);
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s[start..i].to_string();
        skip_ws(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return None;
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            loop {
                match b.get(i)? {
                    b'\'' => break,
                    b'\\' => {
                        value.push(*b.get(i + 1)?);
                        i += 2;
                    }
                    c => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
            i += 1;
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                if b[i] == b'\\' {
                    i += 1;
                }
                value.push(*b.get(i)?);
                i += 1;
            }
        }
        out.push(Pair {
            key,
            value: String::from_utf8(value).ok()?,
            start,
            end: i,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_are_split_out_and_the_rest_kept() {
        let (rest, p) = split(
            "postgres://app:pw@db:5432/prod?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://app:pw@db:5432/prod?application_name=x");
        assert_eq!(p.mode, Some(SslMode::VerifyFull));
        assert_eq!(p.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, p) = split("postgresql://db/prod?sslmode=require").unwrap();
        assert_eq!(rest, "postgresql://db/prod");
        assert_eq!(p.mode, Some(SslMode::Require));
        let (rest, p) = split("postgres://db/prod").unwrap();
        assert_eq!(
            (rest.as_str(), p),
            ("postgres://db/prod", TlsParams::default())
        );
    }

    #[test]
    fn key_value_parameters_are_split_out_quotes_and_all() {
        let (rest, p) =
            split("host=db sslmode = verify-ca  sslrootcert='/etc/my ca\\'s.pem' dbname=prod")
                .unwrap();
        assert_eq!(rest, "host=db dbname=prod");
        assert_eq!(p.mode, Some(SslMode::VerifyCa));
        assert_eq!(p.root_cert, Some(PathBuf::from("/etc/my ca's.pem")));
        let parsed: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(parsed.get_dbname(), Some("prod"));
    }

    #[test]
    fn bad_values_and_client_certificates_are_refused_clearly() {
        let e = split("postgres://db/x?sslmode=verify_full").unwrap_err();
        assert!(e.contains("verify-full"), "{e}");
        let e = split("host=db sslcert=/c.pem").unwrap_err();
        assert!(e.contains("client certificate"), "{e}");
        assert_eq!(SslMode::parse("allow"), Ok(SslMode::Prefer));
    }

    #[test]
    fn require_with_a_root_certificate_verifies_the_chain_as_libpq_does() {
        let t = TlsSettings {
            mode: SslMode::Require,
            root_cert: Some("/ca.pem".into()),
        };
        assert_eq!(t.effective_mode(), SslMode::VerifyCa);
        assert_eq!(TlsSettings::default().effective_mode(), SslMode::Prefer);
    }
}
