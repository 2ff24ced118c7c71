//! The server-certificate check for each `sslmode`, and a record of the handshake it saw.
//!
//! `prefer`/`require` encrypt without trusting the certificate (libpq's behaviour), but the
//! handshake signature is still checked, so the key exchange really is with the holder of the
//! presented certificate. `verify-ca` checks the chain against the trusted roots; `verify-full`
//! also checks that the certificate names the host.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// Which TLS version completed a handshake (0 = none yet): how we learn that `prefer` really
/// encrypted, since tokio-postgres does not expose the stream.
#[derive(Debug, Default)]
pub struct Seen(AtomicU8);

impl Seen {
    pub fn protocol(&self) -> Option<&'static str> {
        match self.0.load(Ordering::Relaxed) {
            13 => Some("TLSv1.3"),
            12 => Some("TLSv1.2"),
            _ => None,
        }
    }

    fn record(&self, version: u8) {
        self.0.store(version, Ordering::Relaxed);
    }
}

#[derive(Debug)]
pub struct Verifier {
    /// `None`: any certificate is accepted (`prefer`, `require`).
    pub chain: Option<Arc<WebPkiServerVerifier>>,
    pub check_host: bool,
    pub algorithms: WebPkiSupportedAlgorithms,
    pub seen: Arc<Seen>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain first and the name last, so a name error means the chain
        // was good: that is all verify-ca asks for.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_host => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = verify_tls12_signature(message, cert, dss, &self.algorithms)?;
        self.seen.record(12);
        Ok(valid)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = verify_tls13_signature(message, cert, dss, &self.algorithms)?;
        self.seen.record(13);
        Ok(valid)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
