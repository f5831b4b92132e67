//! One ONVIF device over HTTP/1.1: a SOAP POST per call on its own connection (`Connection:
//! close`), under a deadline, with WS-Security when credentials are given. Our own small HTTP
//! client: the calls are few and tiny, and a device's answer is capped in size.

use super::soap::{self, Call, DeviceInformation, Profile, SoapError};
use super::wsse;
use super::xml::MAX_DOCUMENT_BYTES;
use std::fmt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum OnvifError {
    #[error("not an http:// device address: {0}")]
    Url(String),
    #[error("cannot connect to {address}: {source}")]
    Connect { address: String, source: std::io::Error },
    #[error("no answer from {address} within {seconds} s")]
    Timeout { address: String, seconds: f64 },
    #[error("reading the answer from {address} failed: {source}")]
    Io { address: String, source: std::io::Error },
    #[error("the device refused the user name or password")]
    Unauthorized,
    #[error("the device needs a user name and password (give --user and a password)")]
    CredentialsNeeded,
    #[error("the device answered HTTP {status} without a SOAP answer")]
    Http { status: u16 },
    #[error("the device's HTTP answer is malformed: {0}")]
    Malformed(&'static str),
    #[error(transparent)]
    Soap(#[from] SoapError),
}

/// A user name and password for WS-Security. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ***)", self.user)
    }
}

/// `http://host[:port]/path`, split for a raw connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAddress {
    /// `host:port` to connect to (IPv6 in brackets).
    pub authority: String,
    /// The `Host:` header value.
    pub host_header: String,
    pub path: String,
}

impl DeviceAddress {
    pub fn parse(url: &str) -> Result<DeviceAddress, OnvifError> {
        let bad = || OnvifError::Url(crate::url::redact_url(url));
        let (scheme, rest) = url.trim().split_once("://").ok_or_else(bad)?;
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(bad());
        }
        let (hostport, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        // Device addresses carry no credentials; drop any given.
        let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
        if hostport.is_empty() || hostport.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let has_port = match hostport.strip_prefix('[') {
            Some(v6) => v6.split_once(']').ok_or_else(bad)?.1.starts_with(':'),
            None => hostport.contains(':'),
        };
        let authority = if has_port {
            hostport.to_string()
        } else {
            format!("{hostport}:80")
        };
        Ok(DeviceAddress {
            authority,
            host_header: hostport.to_string(),
            path: if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            },
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.host_header, self.path)
    }
}

/// A device's clock as read, with the local times around the request (UTC ms, from the caller's
/// clock) so the caller can allow for the round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReading {
    pub camera_utc_ms: i64,
    pub sent_ms: i64,
    pub received_ms: i64,
}

impl ClockReading {
    /// Camera minus local time at the request's midpoint: positive when the camera is ahead.
    /// The device reports whole seconds, so the offset is good to about a second.
    pub fn offset_ms(&self) -> i64 {
        let midpoint = self.sent_ms + (self.received_ms - self.sent_ms).max(0) / 2;
        self.camera_utc_ms - midpoint
    }
}

/// One ONVIF device.
#[derive(Debug, Clone)]
pub struct Device {
    address: DeviceAddress,
    credentials: Option<Credentials>,
    timeout: Duration,
    /// Added to our time to stamp WS-Security tokens in the device's time: devices refuse
    /// tokens created too far from their own clock.
    created_offset_ms: i64,
}

impl Device {
    pub fn new(url: &str, credentials: Option<Credentials>, timeout: Duration) -> Result<Device, OnvifError> {
        Ok(Device {
            address: DeviceAddress::parse(url)?,
            credentials,
            timeout,
            created_offset_ms: 0,
        })
    }

    pub fn address(&self) -> &DeviceAddress {
        &self.address
    }

    /// Stamp tokens `offset_ms` off our clock (the offset a clock reading found).
    pub fn set_created_offset_ms(&mut self, offset_ms: i64) {
        self.created_offset_ms = offset_ms;
    }

    /// Same device, another service path (the media service's XAddr may differ).
    pub fn at(&self, url: &str) -> Result<Device, OnvifError> {
        Ok(Device {
            address: DeviceAddress::parse(url)?,
            ..self.clone()
        })
    }

    fn security(&self) -> Option<String> {
        let credentials = self.credentials.as_ref()?;
        let created_ms = crate::clock::system_now_ms() + self.created_offset_ms;
        let created = time::OffsetDateTime::from_unix_timestamp(created_ms.div_euclid(1000))
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())?;
        Some(wsse::security_header(
            &credentials.user,
            &credentials.password,
            &created,
        ))
    }

    /// Sends `call` (signed when `authenticated` and credentials are set) and returns the answer.
    pub async fn call(&self, call: &Call, authenticated: bool) -> Result<String, OnvifError> {
        let security = if authenticated { self.security() } else { None };
        let body = soap::envelope(&call.body(), security.as_deref());
        let seconds = self.timeout.as_secs_f64();
        let address = self.address.authority.clone();
        match tokio::time::timeout(self.timeout, self.post(call.action(), &body)).await {
            Ok(answer) => answer,
            Err(_) => Err(OnvifError::Timeout { address, seconds }),
        }
    }

    async fn post(&self, action: &str, body: &str) -> Result<String, OnvifError> {
        let address = &self.address.authority;
        let mut stream =
            tokio::net::TcpStream::connect(address)
                .await
                .map_err(|source| OnvifError::Connect {
                    address: address.clone(),
                    source,
                })?;
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/soap+xml; charset=utf-8; action=\"{action}\"\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: StreamPulse\r\n\r\n{body}",
            self.address.path,
            self.address.host_header,
            body.len()
        );
        let io = |source| OnvifError::Io {
            address: address.clone(),
            source,
        };
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut answer = Vec::new();
        let limit = (MAX_DOCUMENT_BYTES + 64 * 1024) as u64;
        (&mut stream)
            .take(limit + 1)
            .read_to_end(&mut answer)
            .await
            .map_err(io)?;
        if answer.len() as u64 > limit {
            return Err(OnvifError::Soap(SoapError::Xml(super::xml::XmlError::TooLarge)));
        }
        let (status, text) = parse_response(&answer)?;
        let looks_soap = text.contains("Envelope");
        match status {
            200..=299 => Ok(text),
            401 | 403 => Err(OnvifError::Unauthorized),
            // Faults come with 400 or 500; let the SOAP reader turn them into errors.
            _ if looks_soap => match soap::body(&text) {
                Err(fault) if fault.is_not_authorized() => Err(OnvifError::Unauthorized),
                Err(fault) => Err(OnvifError::Soap(fault)),
                Ok(_) => Err(OnvifError::Http { status }),
            },
            _ => Err(OnvifError::Http { status }),
        }
    }

    /// Maps a NotAuthorized fault to [`OnvifError::Unauthorized`] (or "credentials needed").
    fn read<T>(&self, parsed: Result<T, SoapError>) -> Result<T, OnvifError> {
        match parsed {
            Err(e) if e.is_not_authorized() && self.credentials.is_none() => {
                Err(OnvifError::CredentialsNeeded)
            }
            Err(e) if e.is_not_authorized() => Err(OnvifError::Unauthorized),
            other => other.map_err(OnvifError::from),
        }
    }

    fn unauthorized(&self, error: OnvifError) -> OnvifError {
        match error {
            OnvifError::Unauthorized if self.credentials.is_none() => OnvifError::CredentialsNeeded,
            other => other,
        }
    }

    /// Manufacturer, model, firmware. Sent signed when credentials are set (some devices want it).
    pub async fn device_information(&self) -> Result<DeviceInformation, OnvifError> {
        let text = self
            .call(&Call::GetDeviceInformation, true)
            .await
            .map_err(|e| self.unauthorized(e))?;
        self.read(soap::device_information(&text))
    }

    /// The device's clock, unauthenticated (ONVIF allows it, and it must work when the clock
    /// is so wrong that signed requests fail). `now_ms` gives our time (NTP-corrected).
    pub async fn clock(&self, now_ms: impl Fn() -> i64) -> Result<ClockReading, OnvifError> {
        let mut sent_ms = now_ms();
        let text = match self.call(&Call::GetSystemDateAndTime, false).await {
            // Some devices want this call signed after all.
            Err(OnvifError::Unauthorized) if self.credentials.is_some() => {
                sent_ms = now_ms();
                self.call(&Call::GetSystemDateAndTime, true).await?
            }
            other => other?,
        };
        let received_ms = now_ms();
        let camera = self.read(soap::system_date_and_time(&text))?;
        let camera_utc_ms =
            i64::try_from(camera.unix_timestamp_nanos() / 1_000_000).map_err(|_| SoapError::Invalid {
                field: "UTCDateTime",
                value: camera.to_string(),
            })?;
        Ok(ClockReading {
            camera_utc_ms,
            sent_ms,
            received_ms,
        })
    }

    /// The media service's address, or this one when the device names none.
    pub async fn media_service(&self) -> Result<Device, OnvifError> {
        let text = self
            .call(&Call::GetCapabilities, true)
            .await
            .map_err(|e| self.unauthorized(e))?;
        match self.read(soap::media_xaddr(&text))? {
            Some(xaddr) => self.at(&xaddr),
            None => Ok(self.clone()),
        }
    }

    pub async fn profiles(&self) -> Result<Vec<Profile>, OnvifError> {
        let text = self
            .call(&Call::GetProfiles, true)
            .await
            .map_err(|e| self.unauthorized(e))?;
        self.read(soap::profiles(&text))
    }

    pub async fn stream_uri(&self, profile_token: &str) -> Result<String, OnvifError> {
        let call = Call::GetStreamUri {
            profile_token: profile_token.to_string(),
        };
        let text = self.call(&call, true).await.map_err(|e| self.unauthorized(e))?;
        self.read(soap::stream_uri(&text))
    }
}

/// Status and body of a raw HTTP/1.x answer (chunked or not).
fn parse_response(raw: &[u8]) -> Result<(u16, String), OnvifError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(OnvifError::Malformed("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(OnvifError::Malformed("not an HTTP/1.x status line"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(OnvifError::Malformed("no status code"))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, OnvifError> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(OnvifError::Malformed("bad chunk"))?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| OnvifError::Malformed("bad chunk size"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or(OnvifError::Malformed("truncated chunk"))?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses_split_into_authority_and_path() {
        let a = DeviceAddress::parse("http://192.0.2.1/onvif/device_service").unwrap();
        assert_eq!(
            (a.authority.as_str(), a.path.as_str()),
            ("192.0.2.1:80", "/onvif/device_service")
        );
        let a = DeviceAddress::parse("http://[::1]:8080").unwrap();
        assert_eq!((a.authority.as_str(), a.path.as_str()), ("[::1]:8080", "/"));
        assert!(DeviceAddress::parse("https://h/").is_err());
        assert!(DeviceAddress::parse("http:///x").is_err());
    }

    #[test]
    fn responses_plain_and_chunked() {
        let (status, body) = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!((status, body.as_str()), (200, "ok"));
        let (_, body) = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(body, "abc");
    }

    #[test]
    fn offset_allows_for_half_the_round_trip() {
        let reading = ClockReading {
            camera_utc_ms: 10_500,
            sent_ms: 10_000,
            received_ms: 11_000,
        };
        assert_eq!(reading.offset_ms(), 0);
        let ahead = ClockReading {
            camera_utc_ms: 310_000,
            sent_ms: 10_000,
            received_ms: 10_000,
        };
        assert_eq!(ahead.offset_ms(), 300_000);
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials {
            user: "admin".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    proptest! {
        #[test]
        fn response_parser_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_response(&raw);
        }

        #[test]
        fn chunked_parser_never_panics(body in "[0-9a-fA-F;\r\nxyz]{0,80}") {
            let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
            let _ = parse_response(raw.as_bytes());
        }

        #[test]
        fn address_parser_never_panics(url in ".{0,80}") {
            let _ = DeviceAddress::parse(&url);
        }
    }
}
