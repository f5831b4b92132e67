//! The time StreamPulse stamps heartbeats with: the system clock corrected by an offset measured
//! against an NTP server, and the conversions between stored UTC milliseconds and what people read
//! or type.
//!
//! A camera fleet's recorders and this monitor must agree on "when", so the offset is measured with
//! SNTP (RFC 4330) and applied to every timestamp; the system clock itself is never changed.
//! Timestamps are stored as UTC milliseconds and turned into local time only for display.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{OffsetDateTime, UtcOffset};
use time_tz::{Offset, TimeZone};

/// Port NTP servers listen on when the configuration names none.
pub const DEFAULT_NTP_PORT: u16 = 123;
/// How long one SNTP exchange (resolution included) may take in the sync loop.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// While queries fail, retry this often (or at `interval`, if that is shorter).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("invalid NTP server address {server:?}: {reason}")]
    InvalidServer { server: String, reason: String },
    #[error("cannot resolve NTP server {server}: {source}")]
    Resolve { server: String, source: std::io::Error },
    #[error("NTP server {server}: {source}")]
    Io { server: String, source: std::io::Error },
    #[error("NTP server {server} did not answer within {timeout_ms} ms")]
    Timeout { server: String, timeout_ms: u128 },
    #[error("NTP server {server} sent an unusable answer: {reason}")]
    BadResponse { server: String, reason: String },
    #[error(
        "invalid time {input:?}: expected milliseconds since 1970-01-01 UTC or an RFC 3339 time \
         such as 2026-11-25T14:00:00Z"
    )]
    InvalidTime { input: String },
}

/// The monitor's clock: system time plus the last measured NTP offset. Shared as `Arc<Clock>`.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
    synced: AtomicBool,
}

impl Clock {
    /// The system clock, not synchronised yet (offset 0).
    pub fn new() -> Arc<Clock> {
        Arc::new(Clock::default())
    }

    /// Milliseconds since 1970-01-01 UTC: the system clock plus the offset.
    pub fn now_ms(&self) -> i64 {
        system_now_ms().saturating_add(self.offset_ms())
    }

    /// The offset added to the system clock, in milliseconds (positive: the system clock is behind).
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Whether an offset has ever been measured (or set).
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// Records a measured offset and marks the clock synchronised.
    pub fn set_offset(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
        self.synced.store(true, Ordering::Relaxed);
    }
}

/// One hour in milliseconds: the granularity of the store's rollups.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds: the span of the 24 h uptime figures.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// The system clock in UTC milliseconds, without NTP correction (one-shot commands, which do not
/// wait for an NTP answer).
pub fn system_now_ms() -> i64 {
    let millis = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(millis).unwrap_or(i64::MAX)
}

/// Splits `host`, `host:port`, `[v6]:port` or a bare IPv6 address into host and port.
fn split_host_port(server: &str) -> Result<(String, u16), ClockError> {
    let invalid = |reason: &str| ClockError::InvalidServer {
        server: server.to_string(),
        reason: reason.into(),
    };
    let server = server.trim();
    if server.is_empty() {
        return Err(invalid("empty"));
    }
    let parse_port = |port: &str| {
        port.parse::<u16>()
            .map_err(|_| invalid("the port is not a number 1-65535"))
    };
    if let Some(rest) = server.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| invalid("missing ']'"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => parse_port(port)?,
            None if after.is_empty() => DEFAULT_NTP_PORT,
            None => return Err(invalid("unexpected text after ']'")),
        };
        return Ok((host.to_string(), port));
    }
    match server.rsplit_once(':') {
        // More than one ':' and no brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => Ok((server.to_string(), DEFAULT_NTP_PORT)),
        Some((host, port)) if !host.is_empty() => Ok((host.to_string(), parse_port(port)?)),
        Some(_) => Err(invalid("missing host")),
        None => Ok((server.to_string(), DEFAULT_NTP_PORT)),
    }
}

/// A tokio UDP socket for sntpc; keeps the last I/O error, which sntpc reduces to `Network`.
struct NtpSocket {
    socket: tokio::net::UdpSocket,
    last_error: Mutex<Option<std::io::Error>>,
}

impl NtpSocket {
    fn remember(&self, err: std::io::Error) -> sntpc::Error {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(err);
        }
        sntpc::Error::Network
    }

    fn take_error(&self) -> Option<std::io::Error> {
        self.last_error.lock().ok().and_then(|mut last| last.take())
    }
}

impl sntpc::NtpUdpSocket for NtpSocket {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> sntpc::Result<usize> {
        self.socket
            .send_to(buf, addr)
            .await
            .map_err(|err| self.remember(err))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> sntpc::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf).await.map_err(|err| self.remember(err))
    }
}

fn describe_sntp_error(err: sntpc::Error) -> String {
    match err {
        sntpc::Error::IncorrectOriginTimestamp => "origin timestamp does not match the request".into(),
        sntpc::Error::IncorrectMode => "not a server reply".into(),
        sntpc::Error::UnsynchronizedClock => "the server's clock is not synchronised".into(),
        sntpc::Error::InvalidTimestamp => "invalid timestamp".into(),
        sntpc::Error::ExcessiveRootDistance => "root distance too large".into(),
        sntpc::Error::BackwardReferenceTimestamp => "reference time after transmit time".into(),
        sntpc::Error::IncorrectResponseVersion => "unsupported NTP version".into(),
        sntpc::Error::IncorrectStratumHeaders => "invalid stratum".into(),
        sntpc::Error::IncorrectPayload => "short packet".into(),
        sntpc::Error::ResponseAddressMismatch => "reply from another address".into(),
        sntpc::Error::KissOfDeath(code) => format!("kiss-o'-death {}", code.as_str()),
        other => format!("{other:?}"),
    }
}

/// Measures the offset (ms) to add to the system clock to get `server`'s time, with one SNTP
/// exchange. `server` is `host` or `host:port` (port 123 by default); `timeout` bounds the whole
/// exchange, name resolution included.
pub async fn query_offset_ms(server: &str, timeout: Duration) -> Result<i64, ClockError> {
    let timeout_error = || ClockError::Timeout {
        server: server.to_string(),
        timeout_ms: timeout.as_millis(),
    };
    tokio::time::timeout(timeout, query_offset_us(server))
        .await
        .map_err(|_| timeout_error())?
        .map(round_us_to_ms)
}

async fn query_offset_us(server: &str) -> Result<i64, ClockError> {
    let (host, port) = split_host_port(server)?;
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|source| ClockError::Resolve {
            server: server.to_string(),
            source,
        })?
        .next()
        .ok_or_else(|| ClockError::Resolve {
            server: server.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        })?;
    let io_error = |source| ClockError::Io {
        server: server.to_string(),
        source,
    };
    let bind: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = tokio::net::UdpSocket::bind(bind).await.map_err(io_error)?;
    // Connected, so an ICMP "port unreachable" comes back as an error instead of a silent wait.
    socket.connect(addr).await.map_err(io_error)?;
    let socket = NtpSocket {
        socket,
        last_error: Mutex::new(None),
    };
    let context = sntpc::NtpContext::new(sntpc::StdTimestampGen::default());
    match sntpc::get_time(addr, &socket, context).await {
        Ok(result) => Ok(result.offset()),
        Err(sntpc::Error::Network) => Err(io_error(
            socket
                .take_error()
                .unwrap_or_else(|| std::io::Error::other("network error")),
        )),
        Err(err) => Err(ClockError::BadResponse {
            server: server.to_string(),
            reason: describe_sntp_error(err),
        }),
    }
}

/// Microseconds to milliseconds, to the nearest (halves away from zero).
fn round_us_to_ms(us: i64) -> i64 {
    us / 1000 + (us % 1000) / 500
}

/// Keeps `clock` synchronised with `server` until `shutdown` turns true (or its sender is dropped).
///
/// Queries at once, then every `interval`; after a failure it retries every
/// `min(interval, RETRY_INTERVAL)`. While the server is unreachable the clock keeps its last offset
/// (or the bare system clock if it never synchronised). A run of failures logs one warning, and
/// the first success after it one info line with the offset.
pub async fn run_sync_loop(
    clock: Arc<Clock>,
    server: String,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let retry = interval.min(RETRY_INTERVAL);
    let mut failing = false;
    let mut ever_synced = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let result = tokio::select! {
            result = query_offset_ms(&server, QUERY_TIMEOUT.min(interval.max(Duration::from_millis(100)))) => result,
            changed = shutdown.changed() => {
                if changed.is_err() { return; }
                continue;
            }
        };
        let wait = match result {
            Ok(offset_ms) => {
                clock.set_offset(offset_ms);
                if failing {
                    tracing::info!("NTP server {server} reachable again: clock offset {offset_ms} ms");
                } else if !ever_synced {
                    tracing::info!("clock synchronised with NTP server {server}: offset {offset_ms} ms");
                } else {
                    tracing::debug!("NTP server {server}: clock offset {offset_ms} ms");
                }
                failing = false;
                ever_synced = true;
                interval
            }
            Err(err) => {
                if !failing {
                    if clock.is_synced() {
                        tracing::warn!(
                            "NTP server {server} unreachable: {err}; keeping the last measured offset ({} ms)",
                            clock.offset_ms()
                        );
                    } else {
                        tracing::warn!("NTP server {server} unreachable: {err}; using the system clock");
                    }
                } else {
                    tracing::debug!("NTP server {server} still unreachable: {err}");
                }
                failing = true;
                retry
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = shutdown.changed() => {
                if changed.is_err() { return; }
            }
        }
    }
}

/// `ts_ms` (UTC ms since the epoch) as local time in `tz`, e.g. `2026-11-25 20:10:05 IST`.
/// The zone is shown by its abbreviation, or as `UTC+04:00` where tzdata has only a number.
pub fn format_local(ts_ms: i64, tz: &time_tz::Tz) -> String {
    let Ok(utc) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000) else {
        return format!("{ts_ms} ms");
    };
    let offset = tz.get_offset_utc(&utc);
    let utc_offset = offset.to_utc();
    let local = utc.to_offset(utc_offset);
    let abbreviation = offset.name();
    let zone = if abbreviation.chars().next().is_some_and(char::is_alphabetic) {
        abbreviation.to_string()
    } else {
        format_utc_offset(utc_offset)
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {zone}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    )
}

fn format_utc_offset(offset: UtcOffset) -> String {
    let (hours, minutes, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!(
        "UTC{sign}{:02}:{:02}",
        hours.unsigned_abs(),
        minutes.unsigned_abs()
    )
}

/// RFC 3339 UTC text of a timestamp (`2026-11-25T14:00:00Z`), for the API and the CLI; the
/// milliseconds as a number when out of range.
pub fn iso_utc(ts_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ts_ms.to_string())
}

/// RFC 3339 text of a timestamp in `tz` with its offset (`2026-11-25T19:30:00+05:30`), for
/// exports a spreadsheet reads; the milliseconds as a number when out of range.
pub fn iso_local(ts_ms: i64, tz: &time_tz::Tz) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000)
        .ok()
        .and_then(|utc| {
            utc.to_offset(tz.get_offset_utc(&utc).to_utc())
                .format(&Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts_ms.to_string())
}

/// `15 s`, `4 min`, `3 h 5 min`, `2 d 4 h`: how long something has lasted.
pub fn human_duration(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// A time given to the API: milliseconds since the epoch (`1795615200000`) or an RFC 3339 /
/// ISO 8601 time with a zone (`2026-11-25T14:00:00Z`, `2026-11-25T19:30:00+05:30`), as UTC ms.
pub fn parse_time_param(s: &str) -> Result<i64, ClockError> {
    let input = s.trim();
    let invalid = || ClockError::InvalidTime { input: s.to_string() };
    let digits = input.strip_prefix('-').unwrap_or(input);
    if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return input.parse::<i64>().map_err(|_| invalid());
    }
    let parsed = OffsetDateTime::parse(input, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(input, &Iso8601::DEFAULT))
        .map_err(|_| invalid())?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_utc_times_read_naturally() {
        assert_eq!(human_duration(15_000), "15 s");
        assert_eq!(human_duration(240_000), "4 min");
        assert_eq!(human_duration(3 * HOUR_MS + 300_000), "3 h 5 min");
        assert_eq!(human_duration(2 * DAY_MS + 4 * HOUR_MS), "2 d 4 h");
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(1_500), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn clock_applies_offset_and_reports_sync() {
        let clock = Clock::new();
        assert!(!clock.is_synced());
        let before = system_now_ms();
        clock.set_offset(3_600_000);
        assert!(clock.is_synced());
        let now = clock.now_ms();
        assert!(
            now - before >= 3_600_000 && now - before < 3_601_000,
            "{}",
            now - before
        );
    }

    #[test]
    fn splits_server_addresses() {
        assert_eq!(split_host_port("127.0.0.1").unwrap(), ("127.0.0.1".into(), 123));
        assert_eq!(
            split_host_port("127.0.0.1:1123").unwrap(),
            ("127.0.0.1".into(), 1123)
        );
        assert_eq!(split_host_port("[::1]:999").unwrap(), ("::1".into(), 999));
        assert_eq!(split_host_port("[::1]").unwrap(), ("::1".into(), 123));
        assert_eq!(split_host_port("::1").unwrap(), ("::1".into(), 123));
        assert_eq!(
            split_host_port("ntp.example:123").unwrap(),
            ("ntp.example".into(), 123)
        );
        assert!(split_host_port("").is_err());
        assert!(split_host_port("127.0.0.1:port").is_err());
        assert!(split_host_port(":123").is_err());
    }

    #[test]
    fn rounds_microseconds() {
        assert_eq!(round_us_to_ms(3_600_000_499), 3_600_000);
        assert_eq!(round_us_to_ms(3_600_000_500), 3_600_001);
        assert_eq!(round_us_to_ms(-1_500), -2);
        assert_eq!(round_us_to_ms(-1_499), -1);
    }

    #[test]
    fn formats_in_the_display_timezone() {
        let ts = parse_time_param("2026-11-25T14:40:05Z").unwrap();
        let kolkata = time_tz::timezones::get_by_name("Asia/Kolkata").unwrap();
        assert_eq!(format_local(ts, kolkata), "2026-11-25 20:10:05 IST");
        let utc = time_tz::timezones::get_by_name("UTC").unwrap();
        assert_eq!(format_local(ts, utc), "2026-11-25 14:40:05 UTC");
        let dubai = time_tz::timezones::get_by_name("Asia/Dubai").unwrap();
        assert_eq!(format_local(ts, dubai), "2026-11-25 18:40:05 UTC+04:00");
        let new_york = time_tz::timezones::get_by_name("America/New_York").unwrap();
        assert_eq!(format_local(ts, new_york), "2026-11-25 09:40:05 EST");
        let summer = parse_time_param("2026-07-01T12:00:00Z").unwrap();
        assert_eq!(format_local(summer, new_york), "2026-07-01 08:00:00 EDT");
    }

    #[test]
    fn sync_loop_future_can_be_spawned() {
        fn assert_send<T: Send + 'static>(_: &T) {}
        let (_shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let future = run_sync_loop(
            Clock::new(),
            "127.0.0.1:1".into(),
            Duration::from_secs(1),
            shutdown_rx,
        );
        assert_send(&future);
    }

    /// Log lines written while the returned guard lives on this thread.
    fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
        #[derive(Clone)]
        struct Writer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Writer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Writer(Arc::clone(&buffer));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (buffer, tracing::subscriber::set_default(subscriber))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sync_loop_warns_once_while_unreachable_then_logs_the_recovery() {
        let (logs, _guard) = capture_logs();
        let port = crate::demo::closed_udp_port();
        let clock = Clock::new();
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run_sync_loop(
            Arc::clone(&clock),
            format!("127.0.0.1:{port}"),
            Duration::from_millis(100),
            shutdown_rx,
        ));
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!clock.is_synced());
        assert_eq!(clock.offset_ms(), 0);

        let _server = crate::demo::SntpTestServer::start_on(port, 2_500).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !clock.is_synced() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(clock.is_synced(), "the loop never reached the SNTP server");
        assert!(
            (clock.offset_ms() - 2_500).abs() <= 50,
            "offset {}",
            clock.offset_ms()
        );

        shutdown.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();

        let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
        let warnings: Vec<&str> = text.lines().filter(|line| line.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{text}");
        assert!(
            warnings[0].contains(&format!("NTP server 127.0.0.1:{port} unreachable")),
            "{text}"
        );
        assert!(warnings[0].contains("using the system clock"), "{text}");
        let recovered: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("reachable again"))
            .collect();
        assert_eq!(recovered.len(), 1, "{text}");
        assert!(recovered[0].contains("offset 2"), "{text}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sync_loop_stops_when_the_sender_is_dropped() {
        let server = crate::demo::SntpTestServer::start(-1_000).unwrap();
        let clock = Clock::new();
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run_sync_loop(
            Arc::clone(&clock),
            server.addr().to_string(),
            Duration::from_secs(3600),
            shutdown_rx,
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !clock.is_synced() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            (clock.offset_ms() + 1_000).abs() <= 50,
            "offset {}",
            clock.offset_ms()
        );
        drop(shutdown);
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn parses_time_parameters() {
        assert_eq!(parse_time_param("1795615200000").unwrap(), 1_795_615_200_000);
        assert_eq!(
            parse_time_param("2026-11-25T14:00:00Z").unwrap(),
            1_795_615_200_000
        );
        assert_eq!(
            parse_time_param("2026-11-25T19:30:00+05:30").unwrap(),
            1_795_615_200_000
        );
        assert_eq!(
            parse_time_param("2026-11-25T14:00:00.250Z").unwrap(),
            1_795_615_200_250
        );
        assert_eq!(parse_time_param(" 0 ").unwrap(), 0);
        assert_eq!(parse_time_param("-1000").unwrap(), -1000);
        for bad in ["", "yesterday", "2026-11-25", "2026-11-25T14:00:00", "12.5", "-"] {
            let err = parse_time_param(bad).unwrap_err();
            assert!(err.to_string().contains("RFC 3339"), "{bad:?}: {err}");
        }
    }
}
