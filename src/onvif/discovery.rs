//! WS-Discovery (SOAP over UDP): the Probe StreamPulse sends for ONVIF video transmitters, the
//! ProbeMatches devices answer with, and the device's side of both for the simulator. In
//! production the probe goes to the multicast group [`MULTICAST`]; `discover --probe-to` sends it
//! to one address instead (unicast discovery, and loopback tests).

use super::soap::SoapError;
use super::xml::{self, Element};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// WS-Discovery's IPv4 multicast group and port.
pub const MULTICAST: &str = "239.255.255.250:3702";
/// Largest datagram read; ProbeMatches fit in one datagram.
const MAX_DATAGRAM: usize = 65_507;

const ADDRESSING_NS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
const DISCOVERY_NS: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
const NETWORK_NS: &str = "http://www.onvif.org/ver10/network/wsdl";
const PROBE_ACTION: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe";
const PROBE_MATCHES_ACTION: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches";

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot open a UDP socket for discovery: {0}")]
    Socket(std::io::Error),
    #[error("cannot send the discovery probe to {target}: {source}")]
    Send {
        target: SocketAddr,
        source: std::io::Error,
    },
}

/// A random `urn:uuid:` (version 4), for message ids and device addresses.
pub fn random_urn() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn envelope(header: &str, body: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="{a}" xmlns:d="{d}" xmlns:dn="{dn}">"#,
            "<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
        ),
        a = ADDRESSING_NS,
        d = DISCOVERY_NS,
        dn = NETWORK_NS,
        header = header,
        body = body
    )
}

/// A Probe for ONVIF NetworkVideoTransmitters with `message_id`.
pub fn probe_message(message_id: &str) -> String {
    envelope(
        &format!(
            concat!(
                r#"<a:Action s:mustUnderstand="1">{action}</a:Action><a:MessageID>{id}</a:MessageID>"#,
                "<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>",
                r#"<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"#
            ),
            action = PROBE_ACTION,
            id = xml::escape(message_id)
        ),
        "<d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe>",
    )
}

/// A received Probe (the device's side): its message id and the types asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub message_id: String,
    /// Local names of the types asked for (`NetworkVideoTransmitter`); empty: any device.
    pub types: Vec<String>,
}

fn words_local(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|word| word.rsplit(':').next().unwrap_or(word).to_string())
        .collect()
}

fn envelope_parts(text: &str) -> Result<(Element, Element), SoapError> {
    let root = xml::parse(text)?;
    if root.name != "Envelope" {
        return Err(SoapError::NotEnvelope(root.name));
    }
    let header = root.child("Header").cloned().unwrap_or_default();
    let body = root
        .child("Body")
        .cloned()
        .ok_or(SoapError::Missing("SOAP Body"))?;
    Ok((header, body))
}

pub fn parse_probe(text: &str) -> Result<Probe, SoapError> {
    let (header, body) = envelope_parts(text)?;
    let probe = body.child("Probe").ok_or(SoapError::Missing("Probe"))?;
    Ok(Probe {
        message_id: header
            .text_of("MessageID")
            .ok_or(SoapError::Missing("MessageID"))?,
        types: probe
            .text_of("Types")
            .map(|t| words_local(&t))
            .unwrap_or_default(),
    })
}

/// The device's answer to `relates_to`: itself at `xaddrs`.
pub fn probe_matches_message(
    relates_to: &str,
    endpoint: &str,
    scopes: &[String],
    xaddrs: &[String],
) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| xml::escape(s)).collect();
    let xaddrs: Vec<String> = xaddrs.iter().map(|s| xml::escape(s)).collect();
    envelope(
        &format!(
            "<a:Action>{PROBE_MATCHES_ACTION}</a:Action><a:MessageID>{}</a:MessageID><a:RelatesTo>{}</a:RelatesTo><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>",
            random_urn(),
            xml::escape(relates_to)
        ),
        &format!(
            concat!(
                "<d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>{endpoint}</a:Address></a:EndpointReference>",
                "<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>{scopes}</d:Scopes><d:XAddrs>{xaddrs}</d:XAddrs>",
                "<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches>"
            ),
            endpoint = xml::escape(endpoint),
            scopes = scopes.join(" "),
            xaddrs = xaddrs.join(" "),
        ),
    )
}

/// One device found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeMatch {
    /// The device's stable address (`urn:uuid:…`).
    pub endpoint: String,
    /// Its device service URLs.
    pub xaddrs: Vec<String>,
    pub scopes: Vec<String>,
    pub relates_to: Option<String>,
}

pub fn parse_probe_matches(text: &str) -> Result<Vec<ProbeMatch>, SoapError> {
    let (header, body) = envelope_parts(text)?;
    let matches = body
        .child("ProbeMatches")
        .ok_or(SoapError::Missing("ProbeMatches"))?;
    let relates_to = header.text_of("RelatesTo");
    Ok(matches
        .children_named("ProbeMatch")
        .map(|m| ProbeMatch {
            endpoint: m
                .child("EndpointReference")
                .and_then(|e| e.text_of("Address"))
                .unwrap_or_default(),
            xaddrs: m
                .text_of("XAddrs")
                .map(|x| x.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            scopes: m
                .text_of("Scopes")
                .map(|x| x.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            relates_to: relates_to.clone(),
        })
        .filter(|m| !m.xaddrs.is_empty())
        .collect())
}

/// Sends one Probe to `target` and gathers the devices that answer within `wait`, one entry per
/// endpoint (a device on two interfaces answers twice). Answers to other probes are ignored.
pub async fn probe(target: SocketAddr, wait: Duration) -> Result<Vec<ProbeMatch>, DiscoveryError> {
    let bind: SocketAddr = if target.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    };
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(DiscoveryError::Socket)?;
    let message_id = random_urn();
    socket
        .send_to(probe_message(&message_id).as_bytes(), target)
        .await
        .map_err(|source| DiscoveryError::Send { target, source })?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut found: BTreeMap<String, ProbeMatch> = BTreeMap::new();
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            received = socket.recv_from(&mut buffer) => received,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        let Ok((length, from)) = received else { continue };
        let text = String::from_utf8_lossy(&buffer[..length]);
        match parse_probe_matches(&text) {
            Ok(matches) => {
                for device in matches {
                    if device.relates_to.as_deref().is_some_and(|r| r != message_id) {
                        continue;
                    }
                    let key = if device.endpoint.is_empty() {
                        device.xaddrs.join(" ")
                    } else {
                        device.endpoint.clone()
                    };
                    found.entry(key).or_insert(device);
                }
            }
            Err(e) => tracing::debug!("discovery: ignored an answer from {from}: {e}"),
        }
    }
    Ok(found.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn probe_and_matches_round_trip() {
        let probe = parse_probe(&probe_message("urn:uuid:1")).unwrap();
        assert_eq!(probe.message_id, "urn:uuid:1");
        assert_eq!(probe.types, vec!["NetworkVideoTransmitter"]);
        let answer = probe_matches_message(
            "urn:uuid:1",
            "urn:uuid:dev",
            &["onvif://www.onvif.org/name/Sim".to_string()],
            &["http://127.0.0.1:8080/onvif/device_service".to_string()],
        );
        let matches = parse_probe_matches(&answer).unwrap();
        assert_eq!(matches.len(), 1);
        assert_eq!(matches[0].endpoint, "urn:uuid:dev");
        assert_eq!(
            matches[0].xaddrs,
            vec!["http://127.0.0.1:8080/onvif/device_service"]
        );
        assert_eq!(matches[0].relates_to.as_deref(), Some("urn:uuid:1"));
    }

    #[test]
    fn urns_look_like_uuids() {
        let urn = random_urn();
        assert_eq!(urn.len(), "urn:uuid:".len() + 36);
        assert_ne!(urn, random_urn());
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in ".{0,400}") {
            let _ = parse_probe(&text);
            let _ = parse_probe_matches(&text);
        }

        #[test]
        fn parsers_never_panic_on_envelopes(inner in "[<>/a-zA-Z:= \"&;#0-9]{0,200}") {
            let text = envelope(&inner, &inner);
            let _ = parse_probe(&text);
            let _ = parse_probe_matches(&text);
        }
    }
}
