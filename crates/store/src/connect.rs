//! Opening one Postgres connection, with TLS when the database URL asks for it.
//!
//! diesel-async's own `establish` always connects without TLS, so a URL with `sslmode=require`
//! could not connect at all. Every connection the store opens (the pool's, the migrations',
//! creating the database) comes through [`establish`] instead, which reads libpq's TLS
//! parameters from the URL and hands tokio-postgres a rustls connector:
//!
//! | `sslmode` | encrypted | certificate checked against the roots | host name checked |
//! |---|---|---|---|
//! | absent, `disable` | no | – | – |
//! | `prefer` | if the server offers it | only with `sslrootcert` | no |
//! | `require` | yes | only with `sslrootcert` | no |
//! | `verify-ca` | yes | yes | no |
//! | `verify-full` | yes | yes | yes |
//!
//! The roots are the PEM certificates in `sslrootcert=/path/ca.pem`; without `sslrootcert`, or
//! with `sslrootcert=system`, the public roots bundled with the binary (Mozilla's, from
//! `webpki-roots`). As in libpq, giving `sslrootcert` to `prefer` or `require` also checks the
//! chain (`verify-ca`). Unlike libpq, a URL without `sslmode` connects without TLS, as Hookline
//! always has; with `sslrootcert` but no `sslmode` it means `verify-full`, so a root certificate
//! is never silently ignored. Client certificates (`sslcert`, `sslkey`) are not supported.
//!
//! The CA file is read on every new connection, so a rotated file is picked up without a
//! restart.

use std::{fmt, path::PathBuf, sync::Arc};

use diesel::{ConnectionError, ConnectionResult};
use diesel_async::AsyncPgConnection;
use rustls::{
    client::{
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        WebPkiServerVerifier,
    },
    crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider},
    pki_types::{pem::PemObject as _, CertificateDer, ServerName, UnixTime},
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use url::Url;

/// libpq's `sslmode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// Where the trusted root certificates come from (`sslrootcert`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCerts {
    /// The public roots bundled with the binary (no `sslrootcert`, or `sslrootcert=system`).
    Bundled,
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
}

/// How a URL asks to connect: its TLS parameters, taken out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsParams {
    /// The effective mode (see the module documentation for the defaults).
    pub mode: SslMode,
    /// Whether the server's certificate chain is checked against [`TlsParams::roots`].
    pub verify_chain: bool,
    /// Whether the certificate must also name the host connected to.
    pub verify_host: bool,
    pub roots: RootCerts,
}

/// Splits a `postgres://` URL into the URL without `sslmode` and `sslrootcert` (tokio-postgres
/// refuses `sslrootcert` and knows no `verify-*` modes) and the TLS parameters they give.
pub fn split_url(url: &str) -> Result<(String, TlsParams), ConnectionError> {
    let mut parsed = Url::parse(url)
        .map_err(|e| ConnectionError::InvalidConnectionUrl(format!("bad database URL: {e}")))?;
    let mut mode = None;
    let mut root_cert = None;
    let mut rest = Vec::new();
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "sslmode" => {
                mode = Some(SslMode::parse(&value).ok_or_else(|| {
                    ConnectionError::InvalidConnectionUrl(format!(
                        "sslmode={value} in the database URL is not one of disable, prefer, \
                         require, verify-ca, verify-full"
                    ))
                })?);
            }
            "sslrootcert" => root_cert = Some(value.into_owned()),
            _ => rest.push((key.into_owned(), value.into_owned())),
        }
    }
    if mode.is_none() && root_cert.is_none() {
        // Nothing to take out: hand the URL on exactly as written.
        let params = TlsParams {
            mode: SslMode::Disable,
            verify_chain: false,
            verify_host: false,
            roots: RootCerts::Bundled,
        };
        return Ok((url.to_owned(), params));
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(rest);
    }
    let roots = match root_cert.as_deref() {
        None | Some("system") => RootCerts::Bundled,
        Some(path) => RootCerts::File(PathBuf::from(path)),
    };
    let mode = match (mode, &root_cert) {
        (Some(mode), _) => mode,
        (None, Some(_)) => SslMode::VerifyFull,
        (None, None) => SslMode::Disable,
    };
    let params = TlsParams {
        mode,
        verify_chain: matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull)
            || (mode != SslMode::Disable && root_cert.is_some()),
        verify_host: mode == SslMode::VerifyFull,
        roots,
    };
    Ok((parsed.into(), params))
}

/// Opens a connection to the database `url` names, with TLS as its `sslmode` asks.
pub async fn establish(url: &str) -> ConnectionResult<AsyncPgConnection> {
    let (rest, tls) = split_url(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| ConnectionError::InvalidConnectionUrl(error_chain(&e)))?;
    let failed = |e: tokio_postgres::Error| {
        ConnectionError::BadConnection(format!(
            "connecting to Postgres (sslmode={}): {}",
            tls.mode,
            error_chain(&e)
        ))
    };
    if tls.mode == SslMode::Disable {
        config.ssl_mode(PgSslMode::Disable);
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(failed)?;
        return AsyncPgConnection::try_from_client_and_connection(client, connection).await;
    }
    config.ssl_mode(if tls.mode == SslMode::Prefer {
        PgSslMode::Prefer
    } else {
        PgSslMode::Require
    });
    let connector = MakeRustlsConnect::new(client_config(&tls)?);
    let (client, connection) = config.connect(connector).await.map_err(failed)?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

/// `e` and its causes, joined: tokio-postgres's own message for a failed handshake is only
/// "error performing TLS handshake"; the cause says why (an unknown issuer, a wrong name).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn root_store(roots: &RootCerts) -> Result<RootCertStore, ConnectionError> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::Bundled => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        RootCerts::File(path) => {
            let bad = |what: String| {
                ConnectionError::BadConnection(format!("sslrootcert {}: {what}", path.display()))
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(bad("holds no usable PEM certificate".into()));
            }
        }
    }
    Ok(store)
}

/// The rustls client configuration for `tls`: a verifier that checks as much as the mode asks.
fn client_config(tls: &TlsParams) -> Result<ClientConfig, ConnectionError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if tls.verify_chain {
        let webpki = WebPkiServerVerifier::builder_with_provider(
            Arc::new(root_store(&tls.roots)?),
            provider.clone(),
        )
        .build()
        .map_err(|e| ConnectionError::BadConnection(format!("TLS roots: {e}")))?;
        if tls.verify_host {
            webpki
        } else {
            Arc::new(ChainOnly(webpki))
        }
    } else {
        Arc::new(Unverified(provider.clone()))
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectionError::BadConnection(format!("TLS versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// `verify-ca`: the chain must lead to a trusted root; the name in the certificate may differ
/// from the host (libpq's meaning: the CA is trusted to vouch only for database servers).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name last, after the chain, validity and usage.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a root certificate: encrypted, but any certificate is
/// accepted (libpq's meaning; it protects against eavesdropping, not against a man in the
/// middle). The handshake signature is still checked against the certificate presented.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsParams) {
        split_url(url).expect("valid URL")
    }

    #[test]
    fn a_url_without_tls_parameters_connects_in_the_clear_and_is_unchanged() {
        let (rest, tls) = split("postgres://u:p%40ss@db:5432/hookline?application_name=x");
        assert_eq!(
            rest,
            "postgres://u:p%40ss@db:5432/hookline?application_name=x"
        );
        assert_eq!(tls.mode, SslMode::Disable);
        assert!(!tls.verify_chain && !tls.verify_host);
    }

    #[test]
    fn tls_parameters_are_taken_out_and_read_as_libpq_does() {
        let (rest, tls) = split("postgres://db/h?sslmode=require&connect_timeout=3");
        assert_eq!(rest, "postgres://db/h?connect_timeout=3");
        assert_eq!(
            (tls.mode, tls.verify_chain, tls.verify_host),
            (SslMode::Require, false, false)
        );

        let (rest, tls) = split("postgres://db/h?sslmode=require&sslrootcert=/etc/ca.pem");
        assert_eq!(rest, "postgres://db/h");
        assert_eq!((tls.verify_chain, tls.verify_host), (true, false));
        assert_eq!(tls.roots, RootCerts::File("/etc/ca.pem".into()));

        let (_, tls) = split("postgres://db/h?sslmode=verify-ca");
        assert_eq!((tls.verify_chain, tls.verify_host), (true, false));
        assert_eq!(tls.roots, RootCerts::Bundled);

        let (_, tls) = split("postgres://db/h?sslmode=verify-full&sslrootcert=system");
        assert_eq!((tls.verify_chain, tls.verify_host), (true, true));
        assert_eq!(tls.roots, RootCerts::Bundled);

        let (_, tls) = split("postgres://db/h?sslrootcert=/ca.pem");
        assert_eq!(tls.mode, SslMode::VerifyFull);

        let (_, tls) = split("postgres://db/h?sslmode=disable&sslrootcert=/ca.pem");
        assert!(!tls.verify_chain);
    }

    #[test]
    fn an_unknown_sslmode_is_refused_by_name() {
        let err = split_url("postgres://db/h?sslmode=verify_full").expect_err("refused");
        assert!(err.to_string().contains("sslmode=verify_full"), "{err}");
    }
}
