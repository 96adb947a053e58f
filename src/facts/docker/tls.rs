//! The engine over TCP with TLS, as the docker CLI dials it: the engine's certificate
//! checked against `ca.pem` alone, `cert.pem` and `key.pem` presented as the client
//! certificate, and never a plain-HTTP request, whatever goes wrong.
//!
//! bollard's own `connect_with_ssl` is not used: it trusts the system's roots as well
//! as `ca.pem` (the CLI trusts `ca.pem` only), reads the client key at each handshake
//! and silently sends no certificate when it cannot, cannot skip verification for a
//! context's `SkipTLSVerify`, and panics without a process-wide crypto provider. Here
//! the rustls configuration is built up front (a missing or bad file is an error naming
//! it, before any connection) and handed to hyper-rustls with `https_only`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Where the TLS material is and how it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The folder with `ca.pem`, `cert.pem` and `key.pem`.
    pub dir: PathBuf,
    /// What named the folder, for messages: `DOCKER_CERT_PATH`, or the context's store.
    pub source: String,
    /// Check the engine's certificate against `ca.pem` (off for a context's
    /// `SkipTLSVerify`, or `DOCKER_TLS` without `DOCKER_TLS_VERIFY`).
    pub verify: bool,
    /// `cert.pem` and `key.pem` must be there (`DOCKER_TLS_VERIFY`); a context's client
    /// certificate is optional, as the docker CLI reads it.
    pub client_cert_required: bool,
}

/// Reads one PEM file of the TLS material: `Ok(None)` when it is absent and optional.
fn read_pem(
    dir: &Path,
    name: &str,
    required: bool,
    source: &str,
) -> Result<Option<Vec<u8>>, String> {
    let path = dir.join(name);
    match super::config::read_small_file(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(crate::safefs::ReadError::Missing) if !required => Ok(None),
        Err(e) => Err(format!(
            "cannot read {name} ({}, from {source}): it {e}",
            path.display()
        )),
    }
}

/// The rustls client configuration for `tls`, or what is wrong with its files.
pub fn client_config(tls: &Tls) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let path = |name: &str| tls.dir.join(name).display().to_string();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if tls.verify {
        let Some(ca) = read_pem(&tls.dir, "ca.pem", true, &tls.source)? else {
            return Err(format!("cannot read ca.pem ({})", path("ca.pem")));
        };
        let certs = CertificateDer::pem_slice_iter(&ca)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("ca.pem ({}) is not PEM: {e}", path("ca.pem")))?;
        if certs.is_empty() {
            return Err(format!("ca.pem ({}) holds no certificate", path("ca.pem")));
        }
        let mut roots = RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("ca.pem ({}): {e}", path("ca.pem")))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider.clone())))
    };
    let required = tls.client_cert_required;
    let cert = read_pem(&tls.dir, "cert.pem", required, &tls.source)?;
    let key = read_pem(&tls.dir, "key.pem", required, &tls.source)?;
    match (cert, key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(_), None) => Err(format!(
            "cert.pem is there but key.pem is missing ({})",
            path("key.pem")
        )),
        (None, Some(_)) => Err(format!(
            "key.pem is there but cert.pem is missing ({})",
            path("cert.pem")
        )),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cert.pem ({}) is not PEM: {e}", path("cert.pem")))?;
            if chain.is_empty() {
                return Err(format!(
                    "cert.pem ({}) holds no certificate",
                    path("cert.pem")
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(&key)
                .map_err(|e| format!("key.pem ({}) holds no private key: {e}", path("key.pem")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("cert.pem and key.pem ({}): {e}", tls.dir.display()))
        }
    }
}

/// A client for the engine at `authority` (`host:port`) that speaks only TLS: the
/// connector refuses any URI that is not `https`, and bollard builds every request URI
/// as `https://authority/...`. Its answers are capped as on every transport
/// (`wire`).
pub fn connect(
    authority: &str,
    config: ClientConfig,
    timeout: Duration,
) -> Result<Docker, bollard::errors::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    super::wire::custom(https, format!("https://{authority}"), timeout.as_secs())
}

/// Whether a TLS problem (a refused or unverifiable handshake) is somewhere in `err`'s
/// chain; rustls errors reach us inside `std::io::Error`s, which hyper-rustls wraps once
/// more, and an `io::Error`'s `source` skips the error it wraps.
pub fn is_tls_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if is_tls_error(inner) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

/// The connection ended before any answer. Over TLS 1.3 the client's handshake is done
/// before the engine has judged its certificate, so a refusal comes either as an alert
/// on the first read (a rustls error) or, when the engine closes first, as a request
/// cancelled, a message cut short, or a stream that ends or is reset: which one depends
/// on timing, and all of them mean the handshake was refused.
pub fn closed_before_answer(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_canceled() || h.is_incomplete_message() {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
            if matches!(io.kind(), UnexpectedEof | ConnectionReset | BrokenPipe) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

/// A context's `SkipTLSVerify` (or `DOCKER_TLS` alone): the engine's certificate is not
/// checked, but the handshake's signatures still are.
#[derive(Debug)]
struct NoServerVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoServerVerification {
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
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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
