//! Real camera-like servers on loopback, for the integration tests, `streampulse demo` and the
//! benchmarks: an RTSP server (gst-rtsp-server), an MJPEG-over-HTTP server, a static file server
//! (HLS playlists, snapshot JPEGs), an SNTP responder, a TCP server that never speaks, and an
//! ONVIF device (SOAP over HTTP, WS-Discovery over UDP).
//!
//! Every server binds `127.0.0.1` (an ephemeral port unless one is given), runs on its own thread so
//! it works the same from sync code, a tokio test or the daemon, and stops on `stop()` or `Drop`,
//! closing its listening socket and every client connection — the way a camera that dies looks
//! from the network. `restart()` serves again on the same port.

pub mod mjpeg;
mod mjpeg_frames;
pub mod onvif;
pub mod rtsp;
pub mod rtsp_relay;
pub mod scenes;
pub mod sntp;
pub mod static_http;
pub mod tls_front;

pub use mjpeg::{closed_port, closed_udp_port, MjpegTestServer, SilentTcpServer};
pub use onvif::{OnvifDevice, OnvifSimulator};
pub use rtsp::{
    CustomMount, MountTransport, RtspAuthMethods, RtspTestServer, RtspTestServerBuilder, SharedMount,
};
pub use rtsp_relay::{NoBaseRtspServer, Quirk, RtspRelay, StrictSetup};
pub use sntp::SntpTestServer;
pub use static_http::StaticHttpServer;
pub use tls_front::{SelfSignedPair, TlsFront};

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::thread::JoinHandle;

/// User name every demo server accepts on its authenticated paths.
pub const DEMO_USER: &str = "demo";
/// Password every demo server accepts on its authenticated paths.
pub const DEMO_PASSWORD: &str = "s3cret!";

/// The only address the demo servers ever bind.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("GStreamer could not be initialised: {0}")]
    GstInit(String),
    #[error("GStreamer: {0}")]
    Gst(String),
    #[error("invalid mount path {0:?}: it must start with '/'")]
    MountPath(String),
    #[error("TLS: {0}")]
    Tls(String),
}

impl From<gstreamer::glib::BoolError> for DemoError {
    fn from(err: gstreamer::glib::BoolError) -> Self {
        DemoError::Gst(err.to_string())
    }
}

impl From<gstreamer::glib::Error> for DemoError {
    fn from(err: gstreamer::glib::Error) -> Self {
        DemoError::Gst(err.to_string())
    }
}

impl From<gstreamer::StateChangeError> for DemoError {
    fn from(err: gstreamer::StateChangeError) -> Self {
        DemoError::Gst(err.to_string())
    }
}

pub(crate) fn gst_init() -> Result<(), DemoError> {
    gstreamer::init().map_err(|err| DemoError::GstInit(err.to_string()))
}

/// `user:password@`, percent-encoding what a URL's userinfo may not contain literally.
pub(crate) fn userinfo(user: &str, password: &str) -> String {
    format!(
        "{}:{}@",
        encode_userinfo_part(user),
        encode_userinfo_part(password)
    )
}

fn encode_userinfo_part(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        // RFC 3986 userinfo: unreserved / sub-delims, without ':' (it separates user and password).
        let literal = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&byte);
        if literal {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A server's own thread with a single-threaded tokio runtime. Stopping it drops the runtime,
/// which drops every task spawned on it and so closes every socket those tasks own.
pub(crate) struct ServerThread {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Runs `serve()` on a new thread until `stop()`. `serve` is called on that thread, inside the
    /// runtime, so it can turn std sockets into tokio ones and spawn connection tasks.
    pub(crate) fn spawn<F, Fut>(name: &str, serve: F) -> Result<ServerThread, DemoError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        _ = serve() => {}
                        _ = shutdown_rx => {}
                    }
                });
                // Dropping the runtime here cancels the connection tasks and closes their sockets.
                drop(runtime);
            })?;
        Ok(ServerThread {
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Stops the runtime and waits until every socket it owned is closed.
    pub(crate) fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // An error means the thread already ended: nothing left to stop.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("a demo server thread panicked");
            }
        }
    }
}

impl std::fmt::Debug for ServerThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerThread")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds a TCP listener on loopback, `port` 0 meaning an ephemeral one, ready for tokio.
pub(crate) fn bind_tcp(port: u16) -> Result<std::net::TcpListener, DemoError> {
    let addr = SocketAddr::from((LOOPBACK, port));
    let listener = std::net::TcpListener::bind(addr).map_err(|source| DemoError::Bind { addr, source })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_keeps_sub_delims_and_encodes_the_rest() {
        assert_eq!(userinfo("demo", "s3cret!"), "demo:s3cret!@");
        assert_eq!(userinfo("a b", "p@ss:w/rd"), "a%20b:p%40ss%3Aw%2Frd@");
    }
}
