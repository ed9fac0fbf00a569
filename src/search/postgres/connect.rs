//! Connecting to PostgreSQL: the URL (with the libpq options tokio-postgres does not parse
//! itself: `sslmode=verify-ca|verify-full`, `sslrootcert`, and the pooler switch
//! `pgbouncer=true`), TLS by rustls, and the small lazy pool.
//!
//! Nothing here does I/O until the first query: `Pool` is built without connecting, so a Lambda
//! cold start with `--search-url` costs microseconds, and the first search pays one connect.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;

/// Supabase's transaction pooler listens here: like `pgbouncer=true`, it forbids named
/// prepared statements and session state.
pub const POOLER_PORT: u16 = 6543;

#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("the search URL must start with postgres:// or postgresql:// (got {scheme:?})")]
    Scheme { scheme: String },
    #[error("the search URL has an invalid {key}={value:?}: {reason}")]
    Option { key: &'static str, value: String, reason: &'static str },
    #[error("the search URL is not a valid PostgreSQL URL: {0}")]
    Invalid(#[source] tokio_postgres::Error),
    #[error("cannot read sslrootcert {path}: {source}")]
    RootCert { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("sslrootcert {path} holds no certificate")]
    NoRootCert { path: PathBuf },
    #[error("TLS set-up failed: {0}")]
    Tls(#[source] rustls::Error),
    #[error("the connection pool could not be built: {0}")]
    Pool(String),
}

/// How much of the server's certificate to check, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// disable, allow, prefer, require without a root certificate: encrypt if asked, trust anything.
    None,
    /// verify-ca (and require with sslrootcert, as libpq does): the chain, not the host name.
    Chain,
    /// verify-full: the chain and the host name.
    Full,
}

/// A parsed search URL: what tokio-postgres takes, plus what we handle ourselves.
#[derive(Clone)]
pub struct PgUrl {
    pub config: tokio_postgres::Config,
    pub verify: Verify,
    pub root_cert: Option<PathBuf>,
    /// No named prepared statements, no session `SET`: a transaction-mode pooler is in between.
    pub pgbouncer: bool,
    /// The URL with its password replaced, for logs and status pages.
    pub redacted: String,
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl PgUrl {
    pub fn parse(url: &str) -> Result<PgUrl, UrlError> {
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        if scheme != "postgres" && scheme != "postgresql" {
            return Err(UrlError::Scheme { scheme: scheme.chars().take(20).collect() });
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut sslmode = "prefer".to_owned();
        let mut root_cert = None;
        let mut pgbouncer = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => sslmode = percent_decode(value),
                "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(value))),
                "pgbouncer" => {
                    pgbouncer = match value {
                        "true" | "1" | "on" => true,
                        "false" | "0" | "off" => false,
                        _ => {
                            return Err(UrlError::Option {
                                key: "pgbouncer",
                                value: value.into(),
                                reason: "expected true or false",
                            })
                        }
                    }
                }
                _ => kept.push(pair),
            }
        }
        let (ssl, verify) = match sslmode.as_str() {
            "disable" => (SslMode::Disable, Verify::None),
            "allow" | "prefer" => (SslMode::Prefer, Verify::None),
            "require" if root_cert.is_some() => (SslMode::Require, Verify::Chain),
            "require" => (SslMode::Require, Verify::None),
            "verify-ca" => (SslMode::Require, Verify::Chain),
            "verify-full" => (SslMode::Require, Verify::Full),
            _ => {
                return Err(UrlError::Option {
                    key: "sslmode",
                    value: sslmode,
                    reason: "expected disable, allow, prefer, require, verify-ca or verify-full",
                })
            }
        };
        let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        let mut config: tokio_postgres::Config = rest.parse().map_err(UrlError::Invalid)?;
        config.ssl_mode(ssl);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("snapembed");
        }
        pgbouncer |= config.get_ports().contains(&POOLER_PORT);
        Ok(PgUrl { config, verify, root_cert, pgbouncer, redacted: redact(url) })
    }

    /// The user name, for error messages.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("(default)")
    }

    /// A pool of at most `size` connections; nothing connects until the first `get`.
    pub fn pool(&self, size: usize, timeout: Duration) -> Result<Pool, UrlError> {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.tls_config()?);
        // Fast recycling: a connection the server closed (restart, idle kill) reports itself
        // closed and is replaced; the `Verified` round trip per checkout would double the
        // latency of a search.
        let manager = Manager::from_config(
            self.config.clone(),
            tls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        Pool::builder(manager)
            .max_size(size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| UrlError::Pool(e.to_string()))
    }

    fn tls_config(&self) -> Result<rustls::ClientConfig, UrlError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(UrlError::Tls)?;
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|source| UrlError::RootCert { path: path.clone(), source })?;
                for cert in certs {
                    let cert = cert.map_err(|source| UrlError::RootCert { path: path.clone(), source })?;
                    roots.add(cert).map_err(UrlError::Tls)?;
                }
                if roots.is_empty() {
                    return Err(UrlError::NoRootCert { path: path.clone() });
                }
            }
            // Compiled in, so a cold start reads no certificate store from disk.
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = match self.verify {
            Verify::Full => builder.with_root_certificates(roots).with_no_client_auth(),
            Verify::Chain | Verify::None => {
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| UrlError::Tls(rustls::Error::General(e.to_string())))?;
                let verifier = Lenient { webpki, check_chain: self.verify == Verify::Chain };
                builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
            }
        };
        Ok(config)
    }
}

/// libpq's weaker modes: `require` encrypts without checking who answers; `verify-ca` checks
/// the chain but not the host name.
#[derive(Debug)]
struct Lenient {
    webpki: Arc<WebPkiServerVerifier>,
    check_chain: bool,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.check_chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match (base.split_once("://"), base.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let at = rest.rfind('@').unwrap_or(0);
            let (auth, host) = (&rest[..at], &rest[at + 1..]);
            match auth.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => base.to_owned(),
            }
        }
        _ => base.to_owned(),
    };
    match query {
        // A password may also ride in the query string.
        Some(q) => {
            let q: Vec<&str> =
                q.split('&').map(|p| if p.starts_with("password=") { "password=***" } else { p }).collect();
            format!("{base}?{}", q.join("&"))
        }
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_options_are_ours_and_the_rest_goes_to_tokio_postgres() {
        let u = PgUrl::parse("postgres://u:p%40ss@db.example.com:5432/app?sslmode=verify-full&application_name=x")
            .unwrap();
        assert_eq!(u.verify, Verify::Full);
        assert_eq!(u.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(u.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(u.config.get_application_name(), Some("x"));
        assert!(!u.pgbouncer);
        assert_eq!(u.redacted, "postgres://u:***@db.example.com:5432/app?sslmode=verify-full&application_name=x");
    }

    #[test]
    fn pooler_mode_from_the_flag_or_supabase_port() {
        assert!(PgUrl::parse("postgres://u@h/db?pgbouncer=true").unwrap().pgbouncer);
        assert!(PgUrl::parse("postgresql://u@h:6543/db").unwrap().pgbouncer);
        assert!(!PgUrl::parse("postgresql://u@h:5432/db?pgbouncer=false").unwrap().pgbouncer);
    }

    #[test]
    fn require_with_a_root_cert_checks_the_chain_as_libpq_does() {
        let u = PgUrl::parse("postgres://u@h/db?sslmode=require&sslrootcert=%2Ftmp%2Fca.pem").unwrap();
        assert_eq!(u.verify, Verify::Chain);
        assert_eq!(u.root_cert.as_deref(), Some(std::path::Path::new("/tmp/ca.pem")));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let e = PgUrl::parse("mysql://u@h/db").unwrap_err().to_string();
        assert!(e.contains("postgres://"), "{e}");
        let e = PgUrl::parse("postgres://u@h/db?sslmode=maybe").unwrap_err().to_string();
        assert!(e.contains("sslmode") && e.contains("verify-full"), "{e}");
        let e = PgUrl::parse("postgres://u@h/db?pgbouncer=yes").unwrap_err().to_string();
        assert!(e.contains("pgbouncer"), "{e}");
        let e = PgUrl::parse("postgres://u@h:notaport/db").unwrap_err().to_string();
        assert!(e.contains("not a valid PostgreSQL URL"), "{e}");
        let e = PgUrl::parse("postgres://u@h/db?sslrootcert=/nonexistent.pem&sslmode=verify-full")
            .unwrap()
            .pool(1, Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/nonexistent.pem"), "{e}");
    }

    #[test]
    fn redaction_hides_passwords_only() {
        assert_eq!(redact("postgres://a:b@h/d"), "postgres://a:***@h/d");
        assert_eq!(redact("postgres://a@h/d?password=x&sslmode=require"), "postgres://a@h/d?password=***&sslmode=require");
        assert_eq!(redact("postgres://h/d"), "postgres://h/d");
    }
}
