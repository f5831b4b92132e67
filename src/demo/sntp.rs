//! A UDP SNTP responder on `127.0.0.1` whose clock is the system clock plus a chosen offset, so a
//! test can check that the monitor measures and applies an NTP offset.
//!
//! It answers NTP v3 and v4 client requests (mode 3) with a stratum-2 server reply (mode 4) that
//! echoes the client's transmit timestamp as the origin timestamp; anything else is ignored.

use super::{DemoError, ServerThread, LOOPBACK};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_DELTA_SECS: i128 = 2_208_988_800;
const NTP_PACKET_LEN: usize = 48;
const MODE_CLIENT: u8 = 3;
const MODE_SERVER: u8 = 4;
const STRATUM: u8 = 2;
/// log2 of the clock precision in seconds: about a microsecond.
const PRECISION_LOG2: i8 = -20;

/// An SNTP server on loopback. Stops on [`SntpTestServer::stop`] or drop.
#[derive(Debug)]
pub struct SntpTestServer {
    addr: SocketAddr,
    offset_ms: i64,
    thread: Option<ServerThread>,
}

impl SntpTestServer {
    /// Serves on an ephemeral port, its time being the system time + `offset_ms`.
    pub fn start(offset_ms: i64) -> Result<SntpTestServer, DemoError> {
        SntpTestServer::start_on(0, offset_ms)
    }

    /// Like [`SntpTestServer::start`] on a given UDP port (0 = ephemeral).
    pub fn start_on(port: u16, offset_ms: i64) -> Result<SntpTestServer, DemoError> {
        let addr = SocketAddr::from((LOOPBACK, port));
        let socket = std::net::UdpSocket::bind(addr).map_err(|source| DemoError::Bind { addr, source })?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let thread = ServerThread::spawn("sntp-test-server", move || serve(socket, offset_ms))?;
        Ok(SntpTestServer {
            addr,
            offset_ms,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    /// Closes the socket; later requests get an ICMP "port unreachable".
    pub fn stop(&mut self) {
        if let Some(mut thread) = self.thread.take() {
            thread.stop();
        }
    }
}

impl Drop for SntpTestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(socket: std::net::UdpSocket, offset_ms: i64) {
    let socket = match UdpSocket::from_std(socket) {
        Ok(socket) => socket,
        Err(err) => {
            tracing::error!("SNTP test server cannot use its socket: {err}");
            return;
        }
    };
    let offset_ns = i128::from(offset_ms) * 1_000_000;
    let mut request = [0u8; 512];
    loop {
        let (len, peer) = match socket.recv_from(&mut request).await {
            Ok(received) => received,
            Err(err) => {
                // ICMP errors from earlier replies surface here on some systems; keep serving.
                tracing::debug!("SNTP test server receive error: {err}");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let received_ns = unix_now_ns() + offset_ns;
        if let Some(reply) = build_reply(&request[..len], received_ns, unix_now_ns() + offset_ns) {
            if let Err(err) = socket.send_to(&reply, peer).await {
                tracing::debug!("SNTP test server cannot answer {peer}: {err}");
            }
        }
    }
}

fn unix_now_ns() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
}

/// The 64-bit NTP timestamp (seconds since 1900 in the high half, fraction in the low half).
fn ntp_timestamp(unix_ns: i128) -> u64 {
    let seconds = unix_ns.div_euclid(1_000_000_000) + NTP_UNIX_DELTA_SECS;
    let nanos = unix_ns.rem_euclid(1_000_000_000);
    let fraction = (nanos << 32) / 1_000_000_000;
    // NTP seconds wrap every 2^32 s (era rollover): keep the low 32 bits.
    let seconds = (seconds as u64) & u64::from(u32::MAX);
    (seconds << 32) | (fraction as u64 & u64::from(u32::MAX))
}

/// The server reply to a client request, or `None` if `request` is not an NTP v3/v4 client packet.
fn build_reply(request: &[u8], received_ns: i128, transmit_ns: i128) -> Option<[u8; NTP_PACKET_LEN]> {
    if request.len() < NTP_PACKET_LEN {
        return None;
    }
    let version = (request[0] >> 3) & 0x07;
    let mode = request[0] & 0x07;
    if mode != MODE_CLIENT || !(3..=4).contains(&version) {
        return None;
    }
    let mut reply = [0u8; NTP_PACKET_LEN];
    // Leap indicator 0 (no warning), the client's version, server mode.
    reply[0] = (version << 3) | MODE_SERVER;
    reply[1] = STRATUM;
    reply[2] = request[2];
    reply[3] = PRECISION_LOG2.to_be_bytes()[0];
    // Root delay and root dispersion: about a millisecond each (16.16 fixed point).
    reply[4..8].copy_from_slice(&0x0000_0042u32.to_be_bytes());
    reply[8..12].copy_from_slice(&0x0000_0042u32.to_be_bytes());
    // Reference id: the upstream server's IPv4 address at stratum 2.
    reply[12..16].copy_from_slice(&LOOPBACK.octets());
    // Reference timestamp: our clock was last set 16 s ago.
    reply[16..24].copy_from_slice(&ntp_timestamp(transmit_ns - 16_000_000_000).to_be_bytes());
    // Origin timestamp = the client's transmit timestamp.
    reply[24..32].copy_from_slice(&request[40..48]);
    reply[32..40].copy_from_slice(&ntp_timestamp(received_ns).to_be_bytes());
    reply[40..48].copy_from_slice(&ntp_timestamp(transmit_ns).to_be_bytes());
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_timestamp_of_unix_epoch_and_half_second() {
        assert_eq!(ntp_timestamp(0), (2_208_988_800u64) << 32);
        assert_eq!(ntp_timestamp(500_000_000) & 0xFFFF_FFFF, 1 << 31);
    }

    #[test]
    fn answers_v3_and_v4_clients_only() {
        let mut request = [0u8; 48];
        request[40..48].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        request[0] = (4 << 3) | 3;
        let reply = build_reply(&request, 0, 0).expect("v4 client request");
        assert_eq!(reply[0], (4 << 3) | 4);
        assert_eq!(reply[1], 2);
        assert_eq!(&reply[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
        request[0] = (3 << 3) | 3;
        assert_eq!(
            build_reply(&request, 0, 0).expect("v3 client request")[0],
            (3 << 3) | 4
        );
        request[0] = (4 << 3) | 4;
        assert!(
            build_reply(&request, 0, 0).is_none(),
            "server packets are ignored"
        );
        assert!(
            build_reply(&request[..20], 0, 0).is_none(),
            "short packets are ignored"
        );
    }
}
