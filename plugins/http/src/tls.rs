//! TLS for `https://` servers, with rustls: the one client configuration a
//! worker process shares, and the labels TLS failures get.
//!
//! rustls rather than OpenSSL: it builds from crates.io alone (no system
//! library or headers), its connection is a plain state machine that runs
//! over a blocking socket as easily as over one whose waits go through the
//! recorder (`client::Wire`), and its in-memory session cache lives in the
//! shared `ClientConfig`, so every reconnect of every thread of the
//! process resumes the session instead of a full handshake.
//!
//! Parameters (`--set`): `tls_ca=FILE` adds the CA certificates of a PEM
//! file to the system's roots (a test environment's own CA);
//! `tls_verify=false` accepts any certificate (a self-signed server), and
//! says so once on stderr.

use std::fmt;
use std::sync::{Arc, OnceLock};

use gorgon_plugin_api::{Recorder, SetupError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::plan::Plan;
use crate::url::Scheme;

/// The shared configuration, built on first use in a process.
pub type Config = Arc<ClientConfig>;

/// The process's TLS configuration, when some server of the plan speaks
/// https; built once, from `tls_ca` and `tls_verify`.
pub fn shared_config(rec: &Recorder, plan: &Plan) -> Result<Option<Config>, SetupError> {
    static CONFIG: OnceLock<Result<Config, SetupError>> = OnceLock::new();
    let mut secure = plan
        .servers
        .iter()
        .filter(|target| target.server.scheme == Scheme::Https)
        .peekable();
    if secure.peek().is_none() {
        return Ok(None);
    }
    for target in secure {
        server_name(&target.server.host)
            .map_err(|why| SetupError::bad_input(format!("{}: {why}", target.first_use)))?;
    }
    CONFIG
        .get_or_init(|| {
            build(
                rec.param("tls_ca"),
                crate::bool_param(rec, "tls_verify", true)?,
            )
        })
        .clone()
        .map(Some)
}

/// A client configuration: TLS 1.2 and 1.3 with ring, `http/1.1` by ALPN,
/// the default in-memory session cache, and certificates checked against
/// the roots unless `verify` is false.
pub(crate) fn build(ca_file: Option<&str>, verify: bool) -> Result<Config, SetupError> {
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::failed(format!("cannot set up TLS: {e}")))?;
    let mut config = if verify {
        builder
            .with_root_certificates(roots(ca_file)?)
            .with_no_client_auth()
    } else {
        warn_once_per_run(
            "warning: tls_verify=false: the certificates of https servers are not checked; \
             anyone on the path could answer in their place",
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's roots (rustls-native-certs reads the same files OpenSSL
/// does), or Mozilla's set from webpki-roots where the system has none,
/// plus the CA certificates of `ca_file`.
fn roots(ca_file: Option<&str>) -> Result<RootCertStore, SetupError> {
    let mut roots = RootCertStore::empty();
    // Unreadable files among the system's are skipped: what matters is
    // whether any root was found.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if let Some(file) = ca_file {
        let certificates = CertificateDer::pem_file_iter(file)
            .and_then(|found| found.collect::<Result<Vec<_>, _>>())
            .map_err(|e| SetupError::bad_input(format!("cannot read tls_ca {file}: {e}")))?;
        if certificates.is_empty() {
            return Err(SetupError::bad_input(format!(
                "tls_ca {file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            )));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|e| {
                SetupError::bad_input(format!(
                    "tls_ca {file} holds a certificate rustls refuses: {e}"
                ))
            })?;
        }
    }
    if roots.is_empty() {
        return Err(SetupError::bad_input(
            "no CA certificate to check https servers against: the system has none; give one \
             with --set tls_ca=FILE, or --set tls_verify=false to skip the check",
        ));
    }
    Ok(roots)
}

/// Prints `message` on stderr once for the whole run, not once per worker
/// process: the first worker of a `gorgon run` binds an abstract Unix
/// socket named after their common parent, and the others find the name
/// taken. The socket is kept open until the process ends, and abstract
/// names leave no file behind.
fn warn_once_per_run(message: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    static MARK: OnceLock<Option<UnixListener>> = OnceLock::new();
    MARK.get_or_init(|| {
        let name = format!(
            "gorgon-http-tls-warning-{}",
            std::os::unix::process::parent_id()
        );
        let first = SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|address| UnixListener::bind_addr(&address));
        match first {
            Ok(listener) => {
                eprintln!("{message}");
                Some(listener)
            }
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => None,
            Err(_) => {
                eprintln!("{message}");
                None
            }
        }
    });
}

/// `tls_verify=false`: any certificate is accepted, but the handshake's
/// signatures are still checked against it (they prove nothing without a
/// trusted certificate, yet a broken server still fails).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a TLS exchange failed, as a result label: `tls: unknown issuer for
/// api.test`.
pub struct Failure<'a> {
    pub error: &'a rustls::Error,
    pub host: &'a str,
}

impl fmt::Display for Failure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use rustls::CertificateError as Cert;
        let host = self.host;
        match self.error {
            rustls::Error::InvalidCertificate(why) => match why {
                Cert::UnknownIssuer => write!(f, "tls: unknown issuer for {host}"),
                Cert::NotValidForName | Cert::NotValidForNameContext { .. } => {
                    write!(f, "tls: certificate not valid for {host}")
                }
                Cert::Expired | Cert::ExpiredContext { .. } => {
                    write!(f, "tls: certificate expired for {host}")
                }
                Cert::NotValidYet | Cert::NotValidYetContext { .. } => {
                    write!(f, "tls: certificate not yet valid for {host}")
                }
                Cert::BadSignature => write!(f, "tls: bad certificate signature for {host}"),
                other => write!(f, "tls: bad certificate for {host} ({other:?})"),
            },
            rustls::Error::AlertReceived(alert) => {
                write!(f, "tls: {host} sent alert {}", alert_name(*alert))
            }
            rustls::Error::InvalidMessage(_) => {
                write!(
                    f,
                    "tls: {host} does not speak TLS here (an http:// server?)"
                )
            }
            rustls::Error::NoCertificatesPresented => write!(f, "tls: {host} sent no certificate"),
            rustls::Error::PeerIncompatible(why) => {
                write!(f, "tls: {host} is incompatible ({why:?})")
            }
            other => write!(f, "tls: {}", other.to_string().to_lowercase()),
        }
    }
}

/// `HandshakeFailure` as `handshake failure`.
fn alert_name(alert: rustls::AlertDescription) -> String {
    let name = format!("{alert:?}");
    let mut words = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !words.is_empty() {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// The name the server's certificate must match, sent as SNI (an IP
/// address is matched, but never sent).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string())
        .map_err(|_| format!("`{host}` is not a host name TLS can check a certificate against"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_why_and_for_which_host() {
        let label = |error: rustls::Error| {
            Failure {
                error: &error,
                host: "api.test",
            }
            .to_string()
        };
        assert_eq!(
            label(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            )),
            "tls: unknown issuer for api.test"
        );
        assert_eq!(
            label(rustls::Error::AlertReceived(
                rustls::AlertDescription::HandshakeFailure
            )),
            "tls: api.test sent alert handshake failure"
        );
        assert_eq!(
            label(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            )),
            "tls: api.test does not speak TLS here (an http:// server?)"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_bad_input() {
        let dir = std::env::temp_dir().join(format!("gorgon-http-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = build(Some(empty.to_str().unwrap()), true).unwrap_err();
        assert!(error.is_bad_input());
        assert!(
            error.message().contains("holds no PEM certificate"),
            "{}",
            error.message()
        );
        let missing = dir.join("missing.pem");
        let error = build(Some(missing.to_str().unwrap()), true).unwrap_err();
        assert!(error.is_bad_input());
        assert!(
            error.message().starts_with("cannot read tls_ca"),
            "{}",
            error.message()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
