//! A camera's TLS certificate (`tls:` per stream) for `rtsps://` and `https://` sources.
//!
//! **rtspsrc** does the handshake itself and asks its `accept-certificate` signal about any
//! certificate its validation faults; the hook decides there, on the pipeline's own connection:
//! * verify (default): a faulted certificate is refused, and its fingerprint noted for the
//!   message that tells how to pin it;
//! * pinned: rtspsrc validates against a database with no anchors, so *every* certificate
//!   faults and reaches the signal; only the pinned SHA-256 is accepted (names and issuer are
//!   not asked: that is pinning);
//! * accept any: validation flags cleared.
//!
//! **souphttpsrc** (libsoup 3) has no such signal and no way to see the peer certificate, only
//! `ssl-strict` and a CA database. A pin is therefore checked by a handshake of our own (rustls)
//! just before the pipeline starts, then souphttpsrc runs with `ssl-strict=false`. The trade-off:
//! two connections, so an attacker who can tell them apart could pass the first and intercept the
//! second; it does catch a camera whose certificate changed (a replaced camera, or an ordinary
//! interception). With verify (default) souphttpsrc checks the system CAs itself; when it fails,
//! the same handshake tells whether the certificate was the cause, and its fingerprint.
//!
//! The decision comes from the handshake (fingerprints, validation flags, rustls' certificate
//! errors), never from an error's text.

use super::{ProbeOutcome, ProbeRequest, Reason};
use crate::config::{CameraTls, Fingerprint};
use crate::url::CameraUrl;
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_rtsp_server::gio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the hook refused, for the probe's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Verification failed (`why`, e.g. "unknown or self-signed issuer").
    Untrusted { got: Fingerprint, why: String },
    /// Pinned, and the camera showed another certificate.
    Changed { expected: Fingerprint, got: Fingerprint },
}

impl Refusal {
    pub(super) fn outcome(&self) -> ProbeOutcome {
        match self {
            Refusal::Untrusted { got, why } => ProbeOutcome::down(
                Reason::Tls,
                format!(
                    "the camera's TLS certificate is not trusted ({why}); to trust this certificate, \
                     pin it in the stream's config: tls: {{fingerprint: \"{got}\"}}"
                ),
            ),
            Refusal::Changed { expected, got } => ProbeOutcome::down(
                Reason::Tls,
                format!(
                    "certificate changed: expected {expected} got {got} (if the camera was given a \
                     new certificate on purpose, pin the new fingerprint)"
                ),
            ),
        }
    }
}

/// What the rtspsrc hook saw: the refusal, if it refused.
#[derive(Debug, Default)]
pub(super) struct TlsSeen {
    refused: Mutex<Option<Refusal>>,
}

impl TlsSeen {
    pub(super) fn refusal(&self) -> Option<Refusal> {
        self.refused.lock().ok().and_then(|refused| refused.clone())
    }

    fn refuse(&self, refusal: Refusal) {
        if let Ok(mut refused) = self.refused.lock() {
            *refused = Some(refusal);
        }
    }
}

/// Applies `policy` to every rtspsrc and souphttpsrc of the pipeline, those in the description
/// and any a bin creates later.
pub(super) fn hook(pipeline: &gst::Pipeline, policy: CameraTls) -> Arc<TlsSeen> {
    let seen = Arc::new(TlsSeen::default());
    for element in pipeline.iterate_recurse().into_iter().flatten() {
        hook_element(&element, policy, &seen);
    }
    let later = Arc::clone(&seen);
    pipeline.connect_deep_element_added(move |_, _, element| hook_element(element, policy, &later));
    seen
}

fn hook_element(element: &gst::Element, policy: CameraTls, seen: &Arc<TlsSeen>) {
    let factory = element.factory().map(|factory| factory.name());
    match factory.as_deref() {
        Some("rtspsrc") => hook_rtspsrc(element, policy, seen),
        // The pin was checked before the pipeline started (`check_before_pipeline`).
        Some("souphttpsrc") if policy != CameraTls::Verify => element.set_property("ssl-strict", false),
        _ => {}
    }
}

fn hook_rtspsrc(element: &gst::Element, policy: CameraTls, seen: &Arc<TlsSeen>) {
    match policy {
        CameraTls::Verify => {}
        CameraTls::Pinned(_) => {
            // GLib always has a file database (tested below); without it only a CA-valid
            // certificate would pass unasked.
            if let Some(database) = anchorless_database() {
                element.set_property("tls-database", database);
            }
        }
        CameraTls::AcceptAny => {
            element.set_property("tls-validation-flags", gio::TlsCertificateFlags::empty())
        }
    }
    let seen = Arc::clone(seen);
    element.connect("accept-certificate", false, move |args| {
        let der = args
            .get(2)
            .and_then(|value| value.get::<gio::TlsCertificate>().ok())
            .and_then(|cert| cert.property::<Option<glib::ByteArray>>("certificate"));
        let flags = args
            .get(3)
            .and_then(|value| value.get::<gio::TlsCertificateFlags>().ok())
            .unwrap_or(gio::TlsCertificateFlags::GENERIC_ERROR);
        let Some(got) = der.map(|der| Fingerprint::of_der(&der)) else {
            return Some(false.to_value());
        };
        let accept = match policy {
            CameraTls::AcceptAny => true,
            CameraTls::Pinned(expected) if expected == got => true,
            CameraTls::Pinned(expected) => {
                seen.refuse(Refusal::Changed { expected, got });
                false
            }
            CameraTls::Verify => {
                seen.refuse(Refusal::Untrusted {
                    got,
                    why: describe_flags(flags),
                });
                false
            }
        };
        Some(accept.to_value())
    });
}

/// A TLS database that trusts nothing a camera can show: with it every certificate is "unknown
/// CA", so rtspsrc's `accept-certificate` is asked about each one (a pin must also be checked on
/// CA-valid ones). GnuTLS refuses an empty anchor file, so its one anchor is a CA made here whose
/// key was thrown away at once: nothing can be signed by it. The anchor is made once per process;
/// a database (not `Send`) per pipeline, from a temporary file GnuTLS reads while making it.
fn anchorless_database() -> Option<gio::TlsDatabase> {
    static ANCHOR: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let database = ANCHOR.get_or_init(unusable_anchor).clone().and_then(|pem| {
        let mut file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
        std::io::Write::write_all(&mut file, pem.as_bytes()).map_err(|e| e.to_string())?;
        gio::TlsFileDatabase::new(file.path()).map_err(|e| e.to_string())
    });
    match database {
        Ok(database) => Some(database.upcast()),
        Err(why) => {
            tracing::error!("a pinned rtsps:// certificate cannot be checked: {why}");
            None
        }
    }
}

fn unusable_anchor() -> Result<String, String> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let anchor = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(anchor.pem())
}

/// GLib's validation faults in words.
fn describe_flags(flags: gio::TlsCertificateFlags) -> String {
    let mut words = Vec::new();
    for (flag, word) in [
        (
            gio::TlsCertificateFlags::UNKNOWN_CA,
            "unknown or self-signed issuer",
        ),
        (
            gio::TlsCertificateFlags::BAD_IDENTITY,
            "not issued for this host name",
        ),
        (gio::TlsCertificateFlags::NOT_ACTIVATED, "not valid yet"),
        (gio::TlsCertificateFlags::EXPIRED, "expired"),
        (gio::TlsCertificateFlags::REVOKED, "revoked"),
        (gio::TlsCertificateFlags::INSECURE, "insecure algorithm"),
    ] {
        if flags.contains(flag) {
            words.push(word);
        }
    }
    if words.is_empty() {
        "validation failed".to_string()
    } else {
        words.join(", ")
    }
}

/// An `https://` camera with a pin: our own handshake checks the certificate before the pipeline
/// starts (souphttpsrc cannot). `Err` is the probe's outcome. Other cases pass untouched.
pub(super) async fn check_before_pipeline(
    request: &ProbeRequest,
    deadline: Instant,
) -> Result<(), ProbeOutcome> {
    let budget = deadline.saturating_duration_since(Instant::now());
    let (CameraTls::Pinned(expected), Some(url)) = (request.tls, request.url.as_ref()) else {
        return Ok(());
    };
    if url.scheme().as_deref() != Some("https") {
        return Ok(());
    }
    match handshake(url, Verifier::Record, budget).await {
        Handshake::Done(got) if got == expected => Ok(()),
        Handshake::Done(got) | Handshake::Refused(got, _) => {
            Err(Refusal::Changed { expected, got }.outcome())
        }
        // Not a certificate problem (refused, timed out…): the pipeline says what it is.
        Handshake::Failed => Ok(()),
    }
}

/// `down`, or, when an `https://` camera's certificate is why it failed, the outcome that says
/// so and how to pin it.
pub(super) async fn explained(request: &ProbeRequest, deadline: Instant, down: ProbeOutcome) -> ProbeOutcome {
    explain_https_failure(request, deadline).await.unwrap_or(down)
}

/// An `https://` camera verified against the system's CAs whose probe failed: when the certificate
/// is why, the outcome that says so and how to pin it.
async fn explain_https_failure(request: &ProbeRequest, deadline: Instant) -> Option<ProbeOutcome> {
    let budget = deadline.saturating_duration_since(Instant::now());
    let url = request
        .url
        .as_ref()
        .filter(|url| url.scheme().as_deref() == Some("https"))?;
    if request.tls != CameraTls::Verify || budget.is_zero() {
        return None;
    }
    match handshake(url, Verifier::System, budget).await {
        Handshake::Refused(got, why) => Some(Refusal::Untrusted { got, why }.outcome()),
        Handshake::Done(_) | Handshake::Failed => None,
    }
}

/// How [`handshake`] judges the certificate.
#[derive(Debug, Clone, Copy)]
enum Verifier {
    /// Accept any (the caller compares the fingerprint); the signatures are still checked.
    Record,
    /// The system's CAs and the URL's host name, as a browser would.
    System,
}

enum Handshake {
    Done(Fingerprint),
    /// The verifier refused this certificate, for this reason.
    Refused(Fingerprint, String),
    /// No certificate seen: not reachable, not TLS, timed out.
    Failed,
}

async fn handshake(url: &CameraUrl, verifier: Verifier, budget: Duration) -> Handshake {
    let Some((host, port)) = url.host_port() else {
        return Handshake::Failed;
    };
    let Ok(server_name) = rustls::pki_types::ServerName::try_from(host.clone()) else {
        return Handshake::Failed;
    };
    let provider = crate::tls::provider();
    let system = match verifier {
        Verifier::Record => None,
        Verifier::System => match system_verifier(&provider) {
            Some(system) => Some(system),
            None => return Handshake::Failed,
        },
    };
    let recorder = Arc::new(Recorder {
        leaf: Mutex::new(None),
        system,
        provider: Arc::clone(&provider),
    });
    let Ok(config) = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(recorder.clone())
                .with_no_client_auth()
        })
    else {
        return Handshake::Failed;
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        connector.connect(server_name.to_owned(), tcp).await
    };
    let result = tokio::time::timeout(budget, attempt).await;
    let leaf = recorder.leaf.lock().ok().and_then(|leaf| *leaf);
    match (result, leaf) {
        (Ok(Ok(_)), Some(leaf)) => Handshake::Done(leaf),
        (Ok(Err(error)), Some(leaf)) => match certificate_error(&error) {
            Some(why) => Handshake::Refused(leaf, why),
            None => Handshake::Failed,
        },
        _ => Handshake::Failed,
    }
}

/// The verifier of the system's CA bundle, built once.
fn system_verifier(
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Option<Arc<rustls::client::WebPkiServerVerifier>> {
    static ROOTS: std::sync::OnceLock<Arc<rustls::RootCertStore>> = std::sync::OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        if let Ok(certs) = rustls::pki_types::CertificateDer::pem_file_iter(crate::alert::webhook::CA_BUNDLE)
        {
            for cert in certs.flatten() {
                // One a TLS library cannot use is skipped, as every client does.
                let _ = roots.add(cert);
            }
        }
        Arc::new(roots)
    });
    rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::clone(roots), Arc::clone(provider))
        .build()
        .ok()
}

/// rustls' certificate verdict in words, when the failure was the certificate's.
fn certificate_error(error: &std::io::Error) -> Option<String> {
    use rustls::CertificateError as E;
    let rustls_error = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    let rustls::Error::InvalidCertificate(cause) = rustls_error else {
        return None;
    };
    Some(
        match cause {
            E::UnknownIssuer => "unknown or self-signed issuer",
            E::NotValidForName | E::NotValidForNameContext { .. } => "not issued for this host name",
            E::Expired | E::ExpiredContext { .. } => "expired",
            E::NotValidYet | E::NotValidYetContext { .. } => "not valid yet",
            E::Revoked => "revoked",
            _ => "validation failed",
        }
        .to_string(),
    )
}

/// Notes the leaf certificate's fingerprint, then verifies as told.
#[derive(Debug)]
struct Recorder {
    leaf: Mutex<Option<Fingerprint>>,
    system: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if let Ok(mut leaf) = self.leaf.lock() {
            *leaf = Some(Fingerprint::of_der(end_entity.as_ref()));
        }
        match &self.system {
            Some(system) => {
                system.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchorless_database_exists() {
        gst::init().expect("GStreamer");
        assert!(anchorless_database().is_some());
    }

    #[test]
    fn a_pin_takes_rtspsrc_off_the_system_cas() {
        gst::init().expect("GStreamer");
        let pipeline = gst::Pipeline::new();
        let rtspsrc = gst::ElementFactory::make("rtspsrc").build().expect("rtspsrc");
        pipeline.add(&rtspsrc).expect("added");
        let system = rtspsrc.property::<Option<gio::TlsDatabase>>("tls-database");
        hook(&pipeline, CameraTls::Pinned(Fingerprint([7; 32])));
        let pinned = rtspsrc.property::<Option<gio::TlsDatabase>>("tls-database");
        assert!(pinned.is_some(), "a database of its own");
        assert_ne!(
            pinned, system,
            "not the system's: a CA-valid certificate is asked about too"
        );
    }

    #[test]
    fn flags_in_words() {
        let flags = gio::TlsCertificateFlags::UNKNOWN_CA | gio::TlsCertificateFlags::BAD_IDENTITY;
        assert_eq!(
            describe_flags(flags),
            "unknown or self-signed issuer, not issued for this host name"
        );
        assert_eq!(
            describe_flags(gio::TlsCertificateFlags::empty()),
            "validation failed"
        );
    }

    #[test]
    fn messages_carry_ready_to_paste_fingerprints() {
        let got = Fingerprint([0xAB; 32]);
        let expected = Fingerprint([0x01; 32]);
        let untrusted = Refusal::Untrusted {
            got,
            why: "unknown or self-signed issuer".into(),
        }
        .outcome();
        assert_eq!(untrusted.reason, Some(Reason::Tls));
        assert!(
            untrusted
                .message
                .contains(&format!("tls: {{fingerprint: \"{got}\"}}")),
            "{}",
            untrusted.message
        );
        let changed = Refusal::Changed { expected, got }.outcome();
        assert!(
            changed
                .message
                .starts_with(&format!("certificate changed: expected {expected} got {got}")),
            "{}",
            changed.message
        );
    }
}
