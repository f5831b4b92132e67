//! One HTTP POST to a notification receiver: hyper's HTTP/1.1 client over a TCP (or rustls, with
//! the system's CA bundle) connection, under one deadline. Errors say what failed the way a
//! person fixes it (name not found, refused, timeout, TLS, the receiver's status and body), and
//! never hold the URL: its path may carry a secret (Telegram, Discord, Slack).

use super::transport::TransportError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::url::CameraUrl;

/// The CA bundle of Debian's `ca-certificates`, for https receivers.
pub(crate) const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// At most this much of a receiver's error answer is kept.
const BODY_EXCERPT_CHARS: usize = 200;

/// Why a POST did not get a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("bad receiver URL: {0}")]
    Url(String),
    #[error("HTTP exchange failed: {0}")]
    Http(String),
    #[error("the receiver answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("building the body failed: {0}")]
    Body(String),
}

impl SendError {
    /// A 4xx other than 408 and 429 will not get better by retrying.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Status { status, .. } if (400..500).contains(status) && *status != 408 && *status != 429)
            || matches!(self, SendError::Url(_) | SendError::Body(_))
    }
}

/// A request a channel's format built.
#[derive(Clone, PartialEq)]
pub struct Post {
    /// The full URL, secrets included: only the connection sees it.
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Post {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Post")
            .field("url", &CameraUrl::new(self.url.clone()))
            .finish_non_exhaustive()
    }
}

/// Sends `post`; `Ok` with the status on a 2xx.
pub async fn send(post: &Post, timeout: Duration) -> Result<u16, SendError> {
    tokio::time::timeout(timeout, exchange(hyper::Method::POST, post))
        .await
        .map_err(|_| SendError::from(TransportError::Timeout(timeout)))?
}

/// A GET of `request`'s URL with its headers (its body is not sent): for ping services, which
/// all take a GET (`self_check_url`).
pub async fn get(request: &Post, timeout: Duration) -> Result<u16, SendError> {
    tokio::time::timeout(timeout, exchange(hyper::Method::GET, request))
        .await
        .map_err(|_| SendError::from(TransportError::Timeout(timeout)))?
}

async fn exchange(method: hyper::Method, post: &Post) -> Result<u16, SendError> {
    let url = CameraUrl::new(post.url.clone());
    let scheme = url
        .scheme()
        .ok_or_else(|| SendError::Url("no scheme".to_string()))?;
    let (host, port) = url
        .host_port()
        .ok_or_else(|| SendError::Url("no host".to_string()))?;
    let without_credentials = url.without_credentials();
    let path_start = without_credentials.find("://").and_then(|at| {
        without_credentials[at + 3..]
            .find('/')
            .map(|slash| at + 3 + slash)
    });
    let path = path_start.map_or("/", |start| &without_credentials[start..]);
    let path = path.split('#').next().unwrap_or("/");
    let bracketed = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let target = format!("{bracketed}:{port}");
    let addresses: Vec<_> = tokio::net::lookup_host(&target)
        .await
        .map_err(|error| SendError::from(TransportError::Dns(host.clone(), error.to_string())))?
        .collect();
    let stream = connect(&addresses, &target).await?;
    let body = if method == hyper::Method::POST {
        Bytes::from(post.body.clone())
    } else {
        Bytes::new()
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host_header(&bracketed, port, &scheme));
    if let Some((user, password)) = url.credentials() {
        let pair = format!("{user}:{}", password.unwrap_or_default());
        builder = builder.header(
            hyper::header::AUTHORIZATION,
            format!("Basic {}", base64(pair.as_bytes())),
        );
    }
    for (name, value) in &post.headers {
        builder = builder.header(*name, value);
    }
    let request = builder
        .body(Full::new(body))
        .map_err(|error| SendError::Url(error.to_string()))?;
    match scheme.as_str() {
        "http" => request_over(stream, request).await,
        "https" => {
            let config =
                client_config().map_err(|error| SendError::from(TransportError::Tls(host.clone(), error)))?;
            let connector = tokio_rustls::TlsConnector::from(config);
            let name =
                ServerName::try_from(host.clone()).map_err(|error| SendError::Url(error.to_string()))?;
            let tls = connector
                .connect(name, stream)
                .await
                .map_err(|error| SendError::from(TransportError::Tls(host.clone(), error.to_string())))?;
            request_over(tls, request).await
        }
        other => Err(SendError::Url(format!("unsupported scheme {other:?}"))),
    }
}

async fn connect(addresses: &[std::net::SocketAddr], target: &str) -> Result<TcpStream, SendError> {
    let mut last = SendError::from(TransportError::Dns(target.to_string(), "no address".to_string()));
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = SendError::from(TransportError::Refused(address.to_string()));
            }
            Err(error) => {
                last = SendError::from(TransportError::Connect(address.to_string(), error.to_string()))
            }
        }
    }
    Err(last)
}

async fn request_over<S>(stream: S, request: Request<Full<Bytes>>) -> Result<u16, SendError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| SendError::Http(error.to_string()))?;
    // The connection task ends with the exchange (the request asks for no keep-alive reuse).
    let driver = tokio::spawn(connection);
    let answer = sender.send_request(request).await;
    let result = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map(|collected| collected.to_bytes())
                .unwrap_or_default();
            if (200..300).contains(&status) {
                Ok(status)
            } else {
                let text = String::from_utf8_lossy(&body);
                let excerpt: String = text.trim().chars().take(BODY_EXCERPT_CHARS).collect();
                Err(SendError::Status {
                    status,
                    body: excerpt,
                })
            }
        }
        Err(error) => Err(SendError::Http(error.to_string())),
    };
    driver.abort();
    result
}

fn host_header(host: &str, port: u16, scheme: &str) -> String {
    let default = matches!((scheme, port), ("http", 80) | ("https", 443));
    if default {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

/// The system's CA roots, read once per process.
pub(crate) fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let certs =
                CertificateDer::pem_file_iter(CA_BUNDLE).map_err(|error| format!("{CA_BUNDLE}: {error}"))?;
            for cert in certs.flatten() {
                // A certificate rustls cannot use is skipped, as every TLS client does.
                let _ = roots.add(cert);
            }
            let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                .with_safe_default_protocol_versions()
                .map_err(|error| error.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// Standard base64 with padding, for a Basic `Authorization` from the URL's userinfo.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let triple = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for (index, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if index <= chunk.len() {
                out.push(char::from(ALPHABET[((triple >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn only_4xx_that_retrying_cannot_fix_are_permanent() {
        let status = |status| SendError::Status {
            status,
            body: String::new(),
        };
        assert!(status(400).is_permanent());
        assert!(!status(429).is_permanent());
        assert!(!status(503).is_permanent());
        assert!(!SendError::from(TransportError::Timeout(Duration::from_secs(1))).is_permanent());
    }
}
