//! The broker connection's options from `mqtt:`: transport (TCP, TLS, websocket, both), the
//! system CA roots (or none checked with `tls_insecure`), credentials, last will, client id.
//! `MqttOptions`' own `Debug` prints the password, so options are never logged.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::topics::NOT_AVAILABLE;
use crate::config::{MqttConfig, MqttTransport};

/// Sent when the connection is idle, so a dead broker is noticed within about 1.5 × this.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Requests (publishes) queued for the connection; beyond that a publish is retried next round.
pub const REQUEST_CAPACITY: usize = 1_000;
/// The fleet status of a thousand streams is a few hundred KB; discovery configs arriving from
/// the broker are about 1 KB each.
const MAX_OUTGOING_BYTES: usize = 4 * 1024 * 1024;
const MAX_INCOMING_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

/// The options for `mqtt`, with `availability` as the last will (retained `offline`).
pub fn options(mqtt: &MqttConfig, availability: &str) -> Result<MqttOptions, ConnectError> {
    let client_id = mqtt
        .client_id
        .clone()
        .unwrap_or_else(|| format!("streampulse-{:08x}", rand::random::<u32>()));
    let host = if mqtt.host.contains(':') {
        format!("[{}]", mqtt.host)
    } else {
        mqtt.host.clone()
    };
    // rumqttc reads a websocket's address from a URL in place of the host; `/mqtt` is the path
    // brokers (and v2.2's paho client) use.
    let address = match mqtt.transport {
        MqttTransport::Tcp | MqttTransport::Tls => mqtt.host.clone(),
        MqttTransport::Websocket => format!("ws://{host}:{}/mqtt", mqtt.port),
        MqttTransport::TlsWebsocket => format!("wss://{host}:{}/mqtt", mqtt.port),
    };
    let mut options = MqttOptions::new(client_id, address, mqtt.port);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_request_channel_capacity(REQUEST_CAPACITY)
        .set_max_packet_size(MAX_INCOMING_BYTES, MAX_OUTGOING_BYTES)
        .set_last_will(LastWill::new(availability, NOT_AVAILABLE, QoS::AtLeastOnce, true));
    if let Some(user) = &mqtt.username {
        let password = mqtt.password.as_ref().map_or("", |password| password.expose());
        options.set_credentials(user.clone(), password);
    }
    match mqtt.transport {
        MqttTransport::Tcp => {}
        MqttTransport::Websocket => {
            options.set_transport(Transport::Ws);
        }
        MqttTransport::Tls => {
            options.set_transport(Transport::Tls(tls(mqtt.tls_insecure)?));
        }
        MqttTransport::TlsWebsocket => {
            options.set_transport(Transport::Wss(tls(mqtt.tls_insecure)?));
        }
    }
    Ok(options)
}

fn tls(insecure: bool) -> Result<TlsConfiguration, ConnectError> {
    if !insecure {
        return crate::alert::webhook::client_config()
            .map(TlsConfiguration::Rustls)
            .map_err(ConnectError::Tls);
    }
    let provider = crate::tls::provider();
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| ConnectError::Tls(error.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

/// `tls_insecure: true`: any certificate is taken (v2.2 users with a self-signed broker), but
/// the handshake's signatures are still checked against it.
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn mqtt(transport: MqttTransport, port: u16) -> MqttConfig {
        MqttConfig {
            host: "127.0.0.1".into(),
            port,
            transport,
            tls_insecure: true,
            username: Some("pulse".into()),
            password: Some(Secret::new("pw")),
            client_id: None,
            status_topic: "s".into(),
            qos: 0,
            retain: false,
            interval: Duration::from_secs(10),
            state_topics: true,
            prefix: "streampulse".into(),
            discovery: true,
            discovery_prefix: "homeassistant".into(),
        }
    }

    #[test]
    fn every_transport_builds_its_options() {
        let cases = [
            (MqttTransport::Tcp, 1883, "127.0.0.1"),
            (MqttTransport::Tls, 8883, "127.0.0.1"),
            (MqttTransport::Websocket, 8000, "ws://127.0.0.1:8000/mqtt"),
            (MqttTransport::TlsWebsocket, 8884, "wss://127.0.0.1:8884/mqtt"),
        ];
        for (transport, port, address) in cases {
            let options = options(&mqtt(transport, port), "streampulse/availability").expect("options");
            assert_eq!(options.broker_address(), (address.to_string(), port));
            assert!(options.client_id().starts_with("streampulse-"));
            let will = options.last_will().expect("a last will");
            assert_eq!(
                (will.topic.as_str(), &will.message[..]),
                ("streampulse/availability", &b"offline"[..])
            );
            assert!(will.retain);
        }
    }
}
