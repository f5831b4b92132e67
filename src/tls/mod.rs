//! TLS for the web server (`web.tls`): PEM certificate and key files read and checked (the config
//! check and the server share [`load_pair`]), a certificate resolver that reloads them when the
//! files change ([`ReloadingResolver`], e.g. after a certbot renewal), and the `self_signed` pair
//! made on first start and kept next to the database ([`self_signed`]).
//!
//! rustls with the ring provider; TLS 1.2 and 1.3, HTTP/1.1 only.

mod reload;
pub mod self_signed;

pub use reload::ReloadingResolver;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Which of the two files a problem is in (the config check reports it on that field's line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Cert,
    Key,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        part: Part,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate (a -----BEGIN CERTIFICATE----- block)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key (PKCS#8, RSA or EC)", path.display())]
    NoKey { path: PathBuf },
    #[error("{} is not valid PEM: {message}", path.display())]
    BadPem {
        part: Part,
        path: PathBuf,
        message: String,
    },
    #[error("the certificate in {} cannot be used: {message}", path.display())]
    BadCertificate { path: PathBuf, message: String },
    #[error("the key in {} cannot be used: {message}", path.display())]
    BadKey { path: PathBuf, message: String },
    #[error("the key in {} does not match the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

impl TlsError {
    /// The file the problem is in.
    pub fn part(&self) -> Part {
        match self {
            TlsError::Read { part, .. } | TlsError::BadPem { part, .. } => *part,
            TlsError::NoCertificate { .. } | TlsError::BadCertificate { .. } => Part::Cert,
            TlsError::NoKey { .. }
            | TlsError::BadKey { .. }
            | TlsError::Mismatch { .. }
            | TlsError::Generate(_)
            | TlsError::Write { .. }
            | TlsError::Setup(_) => Part::Key,
        }
    }
}

/// The one crypto provider every TLS object here is built with (no process-wide default is
/// installed, so nothing depends on which crate installed it first).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain (server certificate first) and its private key, and checks that
/// the key belongs to the certificate.
pub fn load_pair(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_pem = read(cert_path, Part::Cert)?;
    let key_pem = read(key_path, Part::Key)?;
    pair_from_pem(&cert_pem, cert_path, &key_pem, key_path)
}

/// [`load_pair`] on file contents already read; the paths only name them in messages.
pub fn pair_from_pem(
    cert_pem: &[u8],
    cert_path: &Path,
    key_pem: &[u8],
    key_path: &Path,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadPem {
            part: Part::Cert,
            path: cert_path.to_path_buf(),
            message: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key_path.to_path_buf(),
        },
        other => TlsError::BadPem {
            part: Part::Key,
            path: key_path.to_path_buf(),
            message: other.to_string(),
        },
    })?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::BadKey {
            path: key_path.to_path_buf(),
            message: error.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::Mismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            })
        }
        // A key type whose public half rustls cannot tell: nothing to compare, the handshake
        // itself will show a mismatch.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(Arc::new(certified)),
        Err(error) => Err(TlsError::BadCertificate {
            path: cert_path.to_path_buf(),
            message: error.to_string(),
        }),
    }
}

/// SHA-256 of the certificate's DER bytes, as browsers show it: `AB:CD:…`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The fingerprint of a pair's server certificate.
pub fn pair_fingerprint(pair: &CertifiedKey) -> String {
    pair.cert.first().map(fingerprint).unwrap_or_default()
}

/// A server config answering with whatever `resolver` hands out; HTTP/1.1 only (the server
/// speaks nothing else).
pub fn server_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Setup(error.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read(path: &Path, part: Part) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        part,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated() -> (String, String) {
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("generate");
        (pair.cert.pem(), pair.signing_key.serialize_pem())
    }

    fn check(cert: &str, key: &str) -> Result<Arc<CertifiedKey>, TlsError> {
        pair_from_pem(
            cert.as_bytes(),
            Path::new("c.pem"),
            key.as_bytes(),
            Path::new("k.pem"),
        )
    }

    #[test]
    fn a_matching_pair_loads_and_others_say_what_is_wrong() {
        let (cert, key) = generated();
        let (other_cert, other_key) = generated();
        let pair = check(&cert, &key).expect("matching pair");
        assert_eq!(pair_fingerprint(&pair).len(), 32 * 3 - 1);

        let found = check(&cert, &other_key).expect_err("mismatch");
        assert!(matches!(found, TlsError::Mismatch { .. }), "{found}");
        assert_eq!(found.part(), Part::Key);
        assert_eq!(
            found.to_string(),
            "the key in k.pem does not match the certificate in c.pem"
        );
        let found = check(&key, &key).expect_err("a key is no certificate");
        assert!(matches!(found, TlsError::NoCertificate { .. }), "{found}");
        assert_eq!(found.part(), Part::Cert);
        let found = check(&cert, &other_cert).expect_err("a certificate is no key");
        assert!(matches!(found, TlsError::NoKey { .. }), "{found}");
        let truncated = &cert[..cert.len() / 2];
        let found = check(truncated, &key).expect_err("truncated");
        assert!(
            matches!(found, TlsError::BadPem { part: Part::Cert, .. }),
            "{found}"
        );
    }

    #[test]
    fn fingerprints_are_colon_separated_upper_case_sha256() {
        let der = CertificateDer::from(b"abc".to_vec());
        assert_eq!(
            fingerprint(&der),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }
}
