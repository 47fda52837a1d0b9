//! Connections to the team's mail servers: where they are, how to reach them (TLS,
//! STARTTLS, or plain only when configured for tests), and which certificates to trust.

use secrecy::SecretString;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`imaps://`, `smtps://`).
    Tls,
    /// Plain, then STARTTLS before anything secret is said (`imap://`, `smtp://`).
    StartTls,
    /// Plain all along: only when `allow_plain` is set (loopback test servers).
    Plain,
}

/// A server as the configuration names it: `imaps://host:993`, `smtp://host:587`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

/// Why a server URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadUrl(pub String);

impl Endpoint {
    /// Reads `scheme://host[:port]` for `imap`/`imaps` or `smtp`/`smtps`; `plain` makes
    /// `imap://` and `smtp://` plain instead of STARTTLS.
    pub fn parse(url: &str, plain: bool) -> Result<Self, BadUrl> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| BadUrl(format!("{url:?} is not a URL (imaps://host:993)")))?;
        let (security, default_port) = match scheme.to_lowercase().as_str() {
            "imaps" => (Security::Tls, 993),
            "smtps" => (Security::Tls, 465),
            "imap" => (Security::StartTls, 143),
            "smtp" => (Security::StartTls, 587),
            other => return Err(BadUrl(format!("unknown scheme {other:?} in {url:?}"))),
        };
        let security = match (security, plain) {
            (Security::StartTls, true) => Security::Plain,
            (s, _) => s,
        };
        let authority = rest.trim_end_matches('/');
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse()
                    .map_err(|_| BadUrl(format!("bad port {port:?} in {url:?}")))?,
            ),
            None => (authority, default_port),
        };
        if host.is_empty() || host.contains('/') || host.contains('@') {
            return Err(BadUrl(format!("bad host in {url:?}")));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            security,
        })
    }
}

/// Who we log in as.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    pub password: SecretString,
}

/// A byte stream to a mail server, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

/// The certificates we trust: the public roots, and an extra CA file where configured
/// (a team's own CA; the tests' self-signed server).
pub fn tls(ca_file: Option<&str>) -> Result<TlsConnector, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read the CA file {path}: {e}"))?
        {
            let cert = cert.map_err(|e| format!("a certificate in {path} cannot be read: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("a certificate in {path} is not usable: {e}"))?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Wraps `stream` in TLS for `host`.
pub async fn secure<S>(
    connector: &TlsConnector,
    host: &str,
    stream: S,
) -> std::io::Result<tokio_rustls::client::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    connector.connect(name, stream).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_say_how_to_connect() {
        assert_eq!(
            Endpoint::parse("imaps://mail.example.com", false).unwrap(),
            Endpoint {
                host: "mail.example.com".into(),
                port: 993,
                security: Security::Tls
            }
        );
        let starttls = Endpoint::parse("smtp://127.0.0.1:10587", false).unwrap();
        assert_eq!(
            (starttls.port, starttls.security),
            (10587, Security::StartTls)
        );
        let plain = Endpoint::parse("imap://127.0.0.1:10143", true).unwrap();
        assert_eq!(plain.security, Security::Plain);
        // TLS stays TLS whatever `plain` says.
        assert_eq!(
            Endpoint::parse("imaps://h:1", true).unwrap().security,
            Security::Tls
        );
        for bad in ["pop3://h", "imaps://", "imap://h:port", "mail.example.com"] {
            assert!(Endpoint::parse(bad, false).is_err(), "{bad}");
        }
    }
}
