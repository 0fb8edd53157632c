//! TLS to the database, as libpq does it: `sslmode` (and `sslrootcert`)
//! read from the database URL, trust roots from a CA file setting or the
//! system, one rustls client configuration per [`crate::PgTarget`], and
//! the driver's TLS failures turned into messages that say what to do.
//!
//! The modes mean what they mean to `psql`, so that a URL that works
//! there works here:
//! - `disable`: plain TCP.
//! - `prefer` (the default): TLS when the server offers it, else plain.
//! - `require`: TLS or no connection.
//! - `verify-ca`: TLS, and the certificate chain must lead to a trusted
//!   root (the host name is not checked).
//! - `verify-full`: as `verify-ca`, and the certificate must name the host
//!   of the URL.
//!
//! As in libpq, `prefer` and `require` check no certificate unless a CA
//! file is given (then they check the chain as `verify-ca` does); the
//! `verify-*` modes use the CA file, else the system's roots. The system's
//! roots come from `rustls-native-certs` (on Debian the bundle
//! `/etc/ssl/certs/ca-certificates.crt`; `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` are honoured), which is what a managed PostgreSQL with a
//! publicly trusted certificate needs and what `sslrootcert=system` means
//! to libpq. Why not webpki-roots: a municipality's own CA is added to the
//! system bundle by its administrators, not to a list compiled in.
//!
//! The crypto provider is chosen here (`ring`, as everywhere in the
//! workspace), never taken from the process default, so nothing depends
//! on who installed one first.

use std::error::Error as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::PgError;

/// Where an operator gives the CA file, for messages.
pub(crate) const CA_SETTING: &str = "database_ca_file in hub.toml, OUTPOST_HUB_DATABASE_CA_FILE or --database-ca-file (or sslrootcert= in the database URL)";

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
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

    /// What the driver itself knows: whether TLS may, or must, be used.
    pub(crate) fn driver(self) -> postgres::config::SslMode {
        match self {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        }
    }
}

/// The TLS part of a database URL, taken out of it: the driver rejects
/// `verify-ca`, `verify-full` and `sslrootcert`, so they are read here and
/// the rest of the URL is left to it.
#[derive(Debug)]
pub(crate) struct UrlTls {
    /// The URL without `sslmode` and `sslrootcert`.
    pub(crate) rest: String,
    pub(crate) mode: SslMode,
    pub(crate) root_cert: Option<String>,
}

pub(crate) fn split_url(url: &str) -> Result<UrlTls, PgError> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                let value = percent_decode(value);
                mode = SslMode::parse(&value).ok_or_else(|| {
                    PgError::Hub(outpost_hub_db::HubError::Invalid(format!(
                        "sslmode={value} in the database URL is not one PostgreSQL knows; give disable, prefer, require, verify-ca or verify-full"
                    )))
                })?;
            }
            "sslrootcert" => root_cert = Some(percent_decode(value)),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(UrlTls {
        rest,
        mode,
        root_cert,
    })
}

/// `%XX` escapes decoded (a path in `sslrootcert` may hold any byte).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the trust roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// No CA file given.
    Unset,
    /// `sslrootcert=system`: the system's roots, as with the `verify-*`
    /// modes and no file.
    System,
    File(PathBuf),
}

impl Roots {
    /// The CA file setting and the URL's `sslrootcert`, which must not
    /// name two different files.
    pub(crate) fn choose(setting: Option<&Path>, url: Option<&str>) -> Result<Roots, PgError> {
        let url = url.filter(|u| !u.is_empty());
        match (setting, url) {
            (None, None) => Ok(Roots::Unset),
            (None, Some("system")) => Ok(Roots::System),
            (None, Some(file)) => Ok(Roots::File(file.into())),
            (Some(file), None) => Ok(Roots::File(file.into())),
            (Some(file), Some(u)) if Path::new(u) == file => Ok(Roots::File(file.into())),
            (Some(file), Some(u)) => Err(PgError::Hub(outpost_hub_db::HubError::Invalid(format!(
                "two CA files for the database: sslrootcert={u} in the URL and {} in the settings; give it once",
                file.display()
            )))),
        }
    }
}

/// The connector for `mode` with `roots`: `None` when TLS is off.
pub(crate) fn connector(
    mode: SslMode,
    roots: &Roots,
) -> Result<Option<MakeRustlsConnect>, PgError> {
    if mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let store = match (roots, mode) {
        (Roots::File(path), _) => Some(read_ca_file(path)?),
        (Roots::System, _) | (Roots::Unset, SslMode::VerifyCa | SslMode::VerifyFull) => {
            Some(system_roots()?)
        }
        // libpq's `prefer` and `require` without a root file: encrypted,
        // but the server is not authenticated.
        (Roots::Unset, _) => None,
    };
    let chain = match store {
        Some(store) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| PgError::TlsSetup(e.to_string()))?,
        ),
        None => None,
    };
    let verifier = Verifier {
        chain,
        check_name: mode == SslMode::VerifyFull,
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::TlsSetup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

fn read_ca_file(path: &Path) -> Result<RootCertStore, PgError> {
    let bad = |reason: String| PgError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
        store
            .add(cert)
            .map_err(|e| bad(format!("a certificate in it is not usable: {e}")))?;
    }
    if store.is_empty() {
        return Err(bad("it holds no PEM certificate".into()));
    }
    Ok(store)
}

fn system_roots() -> Result<RootCertStore, PgError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(found.certs);
    if store.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        return Err(PgError::TlsSetup(format!(
            "no trusted root certificates found on this system{why}; install them (apt-get install ca-certificates) or give the database's CA file in {CA_SETTING}"
        )));
    }
    Ok(store)
}

/// Checks the server's certificate as the mode asks: nothing (`chain`
/// unset), the chain only (`verify-ca`, or a CA file under `prefer` /
/// `require`), or the chain and the host name (`verify-full`). The
/// handshake's signatures are always checked against the certificate
/// presented, so the peer holds its key.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
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
        // webpki checks the chain first and the name last, so a name
        // error means the chain was good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The typed error for a failed connection whose cause was TLS, or the
/// driver's error as it was.
pub(crate) fn explain(e: postgres::Error, host: &str, mode: SslMode, roots: &Roots) -> PgError {
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(r) = as_rustls(c) {
            return match r {
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => PgError::TlsHostMismatch { host: host.into() },
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                    PgError::TlsUntrusted {
                        roots: match roots {
                            Roots::File(f) => format!("the CA file {}", f.display()),
                            _ => "the system's trusted roots".into(),
                        },
                    }
                }
                rustls::Error::InvalidCertificate(other) => {
                    PgError::TlsCertificate(format!("{other:?}"))
                }
                other => PgError::TlsHandshake(other.to_string()),
            };
        }
        // tokio-postgres says so in words only (an untyped error).
        if c.to_string() == "server does not support TLS" {
            return PgError::TlsRefused { mode };
        }
        cause = c.source();
    }
    PgError::Postgres(e)
}

/// The rustls error inside `e`, bare or wrapped in an `io::Error` (as
/// tokio-rustls hands it on).
fn as_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>().or_else(|| {
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_loses_only_its_tls_parameters() {
        let u = split_url(
            "postgres://a:b@db.example:5433/hub?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            u.rest,
            "postgres://a:b@db.example:5433/hub?application_name=x&connect_timeout=3"
        );
        assert_eq!(u.mode, SslMode::VerifyFull);
        assert_eq!(u.root_cert.as_deref(), Some("/etc/ca x.pem"));
        let plain = split_url("postgres://db.example/hub").unwrap();
        assert_eq!(
            (plain.rest.as_str(), plain.mode, plain.root_cert),
            ("postgres://db.example/hub", SslMode::Prefer, None)
        );
        assert_eq!(
            split_url("postgres://h/d?sslmode=require").unwrap().rest,
            "postgres://h/d"
        );
        let err = split_url("postgres://h/d?sslmode=always").unwrap_err();
        assert!(err.to_string().contains("verify-full"), "{err}");
    }

    #[test]
    fn the_ca_file_is_given_once() {
        let f = Path::new("/etc/ca.pem");
        assert_eq!(Roots::choose(None, None).unwrap(), Roots::Unset);
        assert_eq!(Roots::choose(None, Some("system")).unwrap(), Roots::System);
        assert_eq!(Roots::choose(Some(f), None).unwrap(), Roots::File(f.into()));
        assert_eq!(
            Roots::choose(Some(f), Some("/etc/ca.pem")).unwrap(),
            Roots::File(f.into())
        );
        assert!(Roots::choose(Some(f), Some("/other.pem")).is_err());
    }

    #[test]
    fn a_missing_or_empty_ca_file_names_itself_and_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let Err(err) = connector(SslMode::VerifyFull, &Roots::File(missing.clone())) else {
            panic!("a missing CA file was accepted");
        };
        let msg = err.to_string();
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
        assert!(msg.contains("database_ca_file"), "{msg}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let Err(err) = connector(SslMode::Require, &Roots::File(empty)) else {
            panic!("a CA file without certificates was accepted");
        };
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        assert!(
            connector(SslMode::Disable, &Roots::Unset)
                .unwrap()
                .is_none()
        );
    }
}
