//! Self-signed certificates for the demo cameras, and a TLS front for any loopback TCP server:
//! it terminates TLS (rustls) and relays the bytes to the server behind it, so the MJPEG server
//! becomes an `https://` camera with a self-signed certificate. [`TlsFront::replace_certificate`]
//! changes the certificate for new connections, as when a camera is given a new one.

use super::{bind_tcp, DemoError, ServerThread, LOOPBACK};
use crate::config::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

/// A self-signed certificate and its key, as a camera makes one for itself.
#[derive(Clone)]
pub struct SelfSignedPair {
    pub cert_pem: String,
    pub key_pem: String,
    /// SHA-256 of the certificate's DER bytes: what `tls: {fingerprint: …}` pins.
    pub fingerprint: Fingerprint,
}

impl std::fmt::Debug for SelfSignedPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSignedPair")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl SelfSignedPair {
    /// A new pair for `names` (DNS names or IP addresses), a new key every time.
    pub fn generate(names: &[&str]) -> Result<SelfSignedPair, DemoError> {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| DemoError::Tls(format!("cannot make a certificate: {e}")))?;
        Ok(SelfSignedPair {
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
            fingerprint: Fingerprint::of_der(made.cert.der()),
        })
    }

    /// Certificate and key in one PEM text (GLib's `TlsCertificate::from_pem` wants both).
    pub fn combined_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }

    fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, DemoError> {
        let bad = |e: &dyn std::fmt::Display| DemoError::Tls(e.to_string());
        let cert = CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).map_err(|e| bad(&e))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| bad(&e))?;
        let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(|e| bad(&e))?;
        Ok(Arc::new(config))
    }
}

/// TLS on a loopback port in front of the TCP server at `backend`.
#[derive(Debug)]
pub struct TlsFront {
    port: u16,
    config: Arc<Mutex<Arc<rustls::ServerConfig>>>,
    thread: Option<ServerThread>,
}

impl TlsFront {
    pub fn start(backend: SocketAddr, pair: &SelfSignedPair) -> Result<TlsFront, DemoError> {
        let listener = bind_tcp(0)?;
        let port = listener.local_addr()?.port();
        let config = Arc::new(Mutex::new(pair.server_config()?));
        let current = Arc::clone(&config);
        let thread = ServerThread::spawn("tls-front", move || relay_loop(listener, backend, current))?;
        Ok(TlsFront {
            port,
            config,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:PORT/path`.
    pub fn https_url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        format!("https://{}/{path}", SocketAddr::from((LOOPBACK, self.port)))
    }

    /// New connections get `pair`'s certificate.
    pub fn replace_certificate(&self, pair: &SelfSignedPair) -> Result<(), DemoError> {
        let config = pair.server_config()?;
        let mut current = self
            .config
            .lock()
            .map_err(|_| DemoError::Tls("certificate lock poisoned".into()))?;
        *current = config;
        Ok(())
    }

    pub fn stop(&mut self) {
        if let Some(mut thread) = self.thread.take() {
            thread.stop();
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn relay_loop(
    listener: std::net::TcpListener,
    backend: SocketAddr,
    config: Arc<Mutex<Arc<rustls::ServerConfig>>>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        tracing::error!("TLS front cannot use its listener");
        return;
    };
    while let Ok((client, _)) = listener.accept().await {
        let Ok(current) = config.lock().map(|config| Arc::clone(&config)) else {
            return;
        };
        tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(current);
            // A client that refuses the certificate ends its handshake here: nothing to relay.
            let Ok(mut tls) = acceptor.accept(client).await else {
                return;
            };
            let Ok(mut server) = TcpStream::connect(backend).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
        });
    }
}
