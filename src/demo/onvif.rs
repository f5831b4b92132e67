//! An ONVIF device on loopback, for tests and the demo: a small HTTP/1.1 server answering the
//! SOAP calls StreamPulse makes (GetSystemDateAndTime and GetDeviceInformation without
//! authentication, GetCapabilities, GetProfiles and GetStreamUri only with a valid WS-Security
//! UsernameToken digest) and a WS-Discovery responder on UDP answering Probes with its HTTP
//! address. Its clock is the system clock plus a chosen offset. Both sockets bind `127.0.0.1` on
//! ephemeral ports.

use super::{bind_tcp, DemoError, ServerThread, LOOPBACK};
use crate::onvif::discovery;
use crate::onvif::soap;
use crate::onvif::wsse;
use crate::onvif::xml::{self, Element};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest request read; StreamPulse's are under 2 KB.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// What the simulated device says about itself.
#[derive(Debug, Clone)]
pub struct OnvifDevice {
    pub manufacturer: String,
    pub model: String,
    pub firmware_version: String,
    pub serial_number: String,
    pub user: String,
    pub password: String,
    /// Added to the system clock for GetSystemDateAndTime.
    pub clock_offset_ms: i64,
    /// What GetStreamUri answers (an RTSP URL without credentials, as cameras give it).
    pub stream_uri: String,
}

impl Default for OnvifDevice {
    fn default() -> OnvifDevice {
        OnvifDevice {
            manufacturer: "StreamPulse".to_string(),
            model: "Simulated Camera".to_string(),
            firmware_version: "1.0.0".to_string(),
            serial_number: "SIM-0001".to_string(),
            user: super::DEMO_USER.to_string(),
            password: super::DEMO_PASSWORD.to_string(),
            clock_offset_ms: 0,
            stream_uri: "rtsp://127.0.0.1:554/live".to_string(),
        }
    }
}

/// The simulator. Stops on [`OnvifSimulator::stop`] or drop.
#[derive(Debug)]
pub struct OnvifSimulator {
    http_addr: SocketAddr,
    discovery_addr: SocketAddr,
    clock_reads: Arc<AtomicU64>,
    thread: Option<ServerThread>,
}

struct State {
    device: OnvifDevice,
    http_addr: SocketAddr,
    endpoint: String,
    clock_reads: Arc<AtomicU64>,
}

impl OnvifSimulator {
    pub fn start(device: OnvifDevice) -> Result<OnvifSimulator, DemoError> {
        let listener = bind_tcp(0)?;
        let http_addr = listener.local_addr()?;
        let udp_addr = SocketAddr::from((LOOPBACK, 0));
        let udp = std::net::UdpSocket::bind(udp_addr).map_err(|source| DemoError::Bind {
            addr: udp_addr,
            source,
        })?;
        udp.set_nonblocking(true)?;
        let discovery_addr = udp.local_addr()?;
        let clock_reads = Arc::new(AtomicU64::new(0));
        let state = Arc::new(State {
            device,
            http_addr,
            endpoint: discovery::random_urn(),
            clock_reads: Arc::clone(&clock_reads),
        });
        let thread = ServerThread::spawn("onvif-simulator", move || serve(listener, udp, state))?;
        Ok(OnvifSimulator {
            http_addr,
            discovery_addr,
            clock_reads,
            thread: Some(thread),
        })
    }

    /// The HTTP (device service) address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where WS-Discovery Probes go (`discover --probe-to`).
    pub fn discovery_addr(&self) -> SocketAddr {
        self.discovery_addr
    }

    pub fn device_service_url(&self) -> String {
        format!(
            "http://{}{}",
            self.http_addr,
            crate::onvif::skew::DEVICE_SERVICE_PATH
        )
    }

    /// GetSystemDateAndTime calls answered so far.
    pub fn clock_reads(&self) -> u64 {
        self.clock_reads.load(Ordering::Relaxed)
    }

    pub fn stop(&mut self) {
        if let Some(mut thread) = self.thread.take() {
            thread.stop();
        }
    }
}

impl Drop for OnvifSimulator {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: std::net::TcpListener, udp: std::net::UdpSocket, state: Arc<State>) {
    let (listener, udp) = match (
        tokio::net::TcpListener::from_std(listener),
        tokio::net::UdpSocket::from_std(udp),
    ) {
        (Ok(listener), Ok(udp)) => (listener, udp),
        _ => {
            tracing::error!("ONVIF simulator cannot use its sockets");
            return;
        }
    };
    tokio::spawn(answer_probes(udp, Arc::clone(&state)));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(answer_http(stream, Arc::clone(&state)));
    }
}

async fn answer_probes(udp: tokio::net::UdpSocket, state: Arc<State>) {
    let mut buffer = vec![0u8; 65_536];
    loop {
        let Ok((length, from)) = udp.recv_from(&mut buffer).await else {
            continue;
        };
        let text = String::from_utf8_lossy(&buffer[..length]);
        let Ok(probe) = discovery::parse_probe(&text) else {
            continue;
        };
        if !(probe.types.is_empty() || probe.types.iter().any(|t| t == "NetworkVideoTransmitter")) {
            continue;
        }
        let scopes = vec![
            format!(
                "onvif://www.onvif.org/name/{}",
                state.device.model.replace(' ', "_")
            ),
            format!(
                "onvif://www.onvif.org/hardware/{}",
                state.device.model.replace(' ', "_")
            ),
            "onvif://www.onvif.org/type/video_encoder".to_string(),
        ];
        let xaddrs = vec![format!(
            "http://{}{}",
            state.http_addr,
            crate::onvif::skew::DEVICE_SERVICE_PATH
        )];
        let answer = discovery::probe_matches_message(&probe.message_id, &state.endpoint, &scopes, &xaddrs);
        let _ = udp.send_to(answer.as_bytes(), from).await;
    }
}

async fn answer_http(mut stream: tokio::net::TcpStream, state: Arc<State>) {
    let Some(body) = read_request(&mut stream).await else {
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    let (status, answer) = respond(&body, &state);
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/soap+xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The body of one POST, or `None` when the request is not one.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let header_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 || data.len() > MAX_REQUEST_BYTES {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&data[..header_end]).into_owned();
    if !head.starts_with("POST ") {
        return None;
    }
    let length = head
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())?;
    if length > MAX_REQUEST_BYTES {
        return None;
    }
    let mut body = data[header_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buffer[..n]);
    }
    body.truncate(length);
    String::from_utf8(body).ok()
}

/// Whether the request carries a valid token (`Some(true)`), a wrong one (`Some(false)`), or none.
fn authenticated(envelope: &Element, device: &OnvifDevice) -> Option<bool> {
    let token = wsse::username_token(envelope)?;
    Some(
        token.username == device.user
            && wsse::digest_matches(
                &token.nonce_base64,
                &token.created,
                &device.password,
                &token.password_digest,
            ),
    )
}

fn not_authorized() -> (&'static str, String) {
    (
        "400 Bad Request",
        soap::fault("ter:NotAuthorized", "Sender not Authorized"),
    )
}

fn respond(body: &str, state: &State) -> (&'static str, String) {
    let Ok(envelope) = xml::parse(body) else {
        return (
            "400 Bad Request",
            soap::fault("ter:WellFormed", "not well-formed XML"),
        );
    };
    let Some(operation) = envelope.child("Body").and_then(|b| b.children.first()) else {
        return (
            "400 Bad Request",
            soap::fault("ter:InvalidArgVal", "no operation"),
        );
    };
    let auth = authenticated(&envelope, &state.device);
    let device = &state.device;
    let ok = |body: String| ("200 OK", soap::envelope(&body, None));
    match operation.name.as_str() {
        "GetSystemDateAndTime" => {
            state.clock_reads.fetch_add(1, Ordering::Relaxed);
            ok(system_date_and_time(device.clock_offset_ms))
        }
        _ if auth == Some(false) => not_authorized(),
        "GetDeviceInformation" => ok(format!(
            concat!(
                "<tds:GetDeviceInformationResponse><tds:Manufacturer>{}</tds:Manufacturer><tds:Model>{}</tds:Model>",
                "<tds:FirmwareVersion>{}</tds:FirmwareVersion><tds:SerialNumber>{}</tds:SerialNumber>",
                "<tds:HardwareId>SIM</tds:HardwareId></tds:GetDeviceInformationResponse>"
            ),
            xml::escape(&device.manufacturer),
            xml::escape(&device.model),
            xml::escape(&device.firmware_version),
            xml::escape(&device.serial_number)
        )),
        _ if auth != Some(true) => not_authorized(),
        "GetCapabilities" => ok(format!(
            "<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>http://{}/onvif/media_service</tt:XAddr></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>",
            state.http_addr
        )),
        "GetProfiles" => ok(concat!(
            r#"<trt:GetProfilesResponse><trt:Profiles token="profile_1" fixed="true"><tt:Name>MainStream</tt:Name>"#,
            "<tt:VideoEncoderConfiguration><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>320</tt:Width>",
            "<tt:Height>240</tt:Height></tt:Resolution></tt:VideoEncoderConfiguration></trt:Profiles></trt:GetProfilesResponse>"
        )
        .to_string()),
        "GetStreamUri" => {
            if operation.text_of("ProfileToken").as_deref() != Some("profile_1") {
                return ("400 Bad Request", soap::fault("ter:NoProfile", "no such profile"));
            }
            ok(format!(
                "<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>{}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>",
                xml::escape(&device.stream_uri)
            ))
        }
        _ => ("400 Bad Request", soap::fault("ter:ActionNotSupported", "action not supported")),
    }
}

fn system_date_and_time(offset_ms: i64) -> String {
    let now_ms = crate::clock::system_now_ms() + offset_ms;
    let now = time::OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        concat!(
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType>",
            "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>",
            "<tt:UTCDateTime><tt:Time><tt:Hour>{}</tt:Hour><tt:Minute>{}</tt:Minute><tt:Second>{}</tt:Second></tt:Time>",
            "<tt:Date><tt:Year>{}</tt:Year><tt:Month>{}</tt:Month><tt:Day>{}</tt:Day></tt:Date></tt:UTCDateTime>",
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        ),
        now.hour(),
        now.minute(),
        now.second(),
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}
