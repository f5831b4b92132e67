//! The web server's own accept loop, so that slow or idle clients cannot take it down
//! (slowloris): every connection is served by hyper's HTTP/1 with a header-read timeout (which
//! also ends kept-alive connections left idle), TLS handshakes get the same deadline, and the
//! connections held at once are capped per client address and in all.
//!
//! Over the per-client cap a new connection is closed at once. At the total cap a new connection
//! takes the place of the oldest one with no request in flight (a slow header is such a one), so
//! a flood of slow connections from many addresses cannot keep a real client out; when every
//! connection is busy, the new one is closed. An accept error (out of file descriptors) pauses
//! the loop briefly instead of spinning; refusals and errors are logged at most every 10 s.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use warp::http::{HeaderValue, Request};
use warp::Filter;

use super::lock;

/// `Strict-Transport-Security` on every answer over TLS: browsers then refuse plain HTTP to this
/// host for a year (but not its subdomains, which this server does not answer for).
const HSTS: &str = "max-age=31536000";
/// How long an accept error (EMFILE, ENFILE, ENOMEM) pauses the loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// At most one log line per kind of trouble per this.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// After the shutdown signal, requests in flight get this long to finish.
const DRAIN_LIMIT: Duration = Duration::from_secs(25);

/// Connection limits (`web.max_connections`, `web.max_connections_per_client`,
/// `web.header_timeout_seconds`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_client: usize,
    pub header_timeout: Duration,
}

/// The client's address, put on every request. warp's own `addr::remote()` only knows the
/// servers warp runs itself; [`remote_addr`] reads this first.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The client's address: from this server's accept loop, else from warp (`warp::test` sets it).
pub fn remote_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::ext::optional::<ClientAddr>()
        .and(warp::addr::remote())
        .map(|ours: Option<ClientAddr>, warps: Option<SocketAddr>| ours.map(|c| c.0).or(warps))
}

/// Serves `routes` on `listener` until `shutdown` completes, then lets requests in flight finish
/// (up to [`DRAIN_LIMIT`]). With `tls`, every connection starts with a TLS handshake and every
/// answer carries HSTS.
pub async fn run<F>(
    listener: TcpListener,
    routes: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    shutdown: F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let table = Arc::new(Table::new(limits));
    let (stop, stopping) = watch::channel(false);
    let mut refused = Quiet::default();
    let mut accept_errors = Quiet::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before we took the connection: nothing to do.
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                if let Some(suppressed) = accept_errors.note() {
                    tracing::warn!(
                        "cannot accept connections: {error} (pausing {} ms; {suppressed} more since the last report)",
                        ACCEPT_ERROR_PAUSE.as_millis()
                    );
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let Some(slot) = table.admit(peer.ip()) else {
            drop(stream);
            if let Some(suppressed) = refused.note() {
                tracing::warn!(
                    "connection from {} refused: {} connections in all or {} from one address are open \
                     and busy ({suppressed} more refused since the last report)",
                    peer.ip(),
                    limits.max_connections,
                    limits.max_per_client
                );
            }
            continue;
        };
        let connection = Connection {
            slot,
            peer,
            routes: routes.clone(),
            tls: tls.clone(),
            header_timeout: limits.header_timeout,
            stopping: stopping.clone(),
        };
        tokio::spawn(connection.serve(stream));
    }
    drop(listener);
    let _ = stop.send(true);
    if tokio::time::timeout(DRAIN_LIMIT, table.drained()).await.is_err() {
        tracing::warn!(
            "{} connections still open {} s after shutdown; closing them",
            table.open(),
            DRAIN_LIMIT.as_secs()
        );
    }
}

/// Errors of one connection that ended before it was accepted.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// One accepted connection and what it needs to be served.
struct Connection {
    slot: Slot,
    peer: SocketAddr,
    routes: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_timeout: Duration,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let evicted = Arc::clone(&self.slot.evict);
        let Some(acceptor) = self.tls.clone() else {
            return self.http(TokioIo::new(stream)).await;
        };
        let mut stopping = self.stopping.clone();
        // A handshake is part of "sending the header": same deadline, and evictable.
        let handshake = tokio::select! {
            handshake = tokio::time::timeout(self.header_timeout, acceptor.accept(stream)) => handshake,
            () = evicted.notified() => return,
            () = stopped(&mut stopping) => return,
        };
        match handshake {
            Ok(Ok(stream)) => self.http(TokioIo::new(stream)).await,
            Ok(Err(error)) => tracing::debug!(peer = %self.peer, "TLS handshake failed: {error}"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn http<I>(self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Connection {
            slot,
            peer,
            routes,
            tls,
            header_timeout,
            mut stopping,
        } = self;
        let inner = TowerToHyperService::new(warp::service(routes));
        let hsts = tls.is_some();
        let table = Arc::clone(&slot.table);
        let id = slot.id;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ClientAddr(peer));
            // Busy from the request until its answer's body is dropped (sent or abandoned).
            let busy = Busy::start(&table, id);
            let answer = hyper::service::Service::call(&inner, request);
            async move {
                let (mut parts, body) = answer.await?.into_parts();
                if hsts {
                    parts
                        .headers
                        .insert("strict-transport-security", HeaderValue::from_static(HSTS));
                }
                let body = body.map_frame(move |frame| {
                    let _ = &busy;
                    frame
                });
                Ok::<_, Infallible>(warp::http::Response::from_parts(parts, body))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true);
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let evicted = Arc::clone(&slot.evict);
        tokio::select! {
            result = connection.as_mut() => log_end(peer, result),
            // Dropping the connection closes it.
            () = evicted.notified() => tracing::debug!(%peer, "idle connection closed for a new one"),
            () = stopped(&mut stopping) => {
                connection.as_mut().graceful_shutdown();
                log_end(peer, connection.await);
            }
        }
        drop(slot);
    }
}

/// Completes once the server is shutting down.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which happens only after it sent `true`.
    let _ = stopping.wait_for(|stop| *stop).await;
}

fn log_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    match result {
        Ok(()) => {}
        Err(error) if error.is_timeout() => {
            tracing::debug!(%peer, "connection closed: header not received in time")
        }
        Err(error) => tracing::debug!(%peer, "connection ended: {error}"),
    }
}

/// The open connections: how many in all and per address, and which have no request in flight.
struct Table {
    limits: Limits,
    inner: Mutex<Inner>,
    /// Signalled when the last connection closes.
    empty: Notify,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    per_client: HashMap<IpAddr, usize>,
    /// By id, which is also the order of arrival.
    open: BTreeMap<u64, Entry>,
    /// Connections told to close that have not yet done so.
    evicting: usize,
}

struct Entry {
    ip: IpAddr,
    requests_in_flight: usize,
    evict: Arc<Notify>,
    evicted: bool,
}

/// A connection's place in the table, given back when dropped.
struct Slot {
    table: Arc<Table>,
    id: u64,
    evict: Arc<Notify>,
}

impl Table {
    fn new(limits: Limits) -> Table {
        Table {
            limits,
            inner: Mutex::new(Inner::default()),
            empty: Notify::new(),
        }
    }

    /// A slot for a new connection from `ip`, or `None` when it must be closed.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut inner = lock(&self.inner);
        if inner.per_client.get(&ip).copied().unwrap_or(0) >= self.limits.max_per_client {
            return None;
        }
        if inner.open.len() - inner.evicting >= self.limits.max_connections {
            let oldest_idle = inner
                .open
                .values_mut()
                .find(|entry| entry.requests_in_flight == 0 && !entry.evicted)?;
            oldest_idle.evicted = true;
            // A stored permit: the connection closes even if it is not waiting yet.
            oldest_idle.evict.notify_one();
            inner.evicting += 1;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let evict = Arc::new(Notify::new());
        inner.open.insert(
            id,
            Entry {
                ip,
                requests_in_flight: 0,
                evict: Arc::clone(&evict),
                evicted: false,
            },
        );
        *inner.per_client.entry(ip).or_insert(0) += 1;
        Some(Slot {
            table: Arc::clone(self),
            id,
            evict,
        })
    }

    fn release(&self, id: u64) {
        let mut inner = lock(&self.inner);
        let Some(entry) = inner.open.remove(&id) else {
            return;
        };
        if entry.evicted {
            inner.evicting -= 1;
        }
        if let Some(count) = inner.per_client.get_mut(&entry.ip) {
            *count -= 1;
            if *count == 0 {
                inner.per_client.remove(&entry.ip);
            }
        }
        if inner.open.is_empty() {
            self.empty.notify_waiters();
        }
    }

    fn set_busy(&self, id: u64, busy: bool) {
        if let Some(entry) = lock(&self.inner).open.get_mut(&id) {
            if busy {
                entry.requests_in_flight += 1;
            } else {
                entry.requests_in_flight = entry.requests_in_flight.saturating_sub(1);
            }
        }
    }

    fn open(&self) -> usize {
        lock(&self.inner).open.len()
    }

    async fn drained(&self) {
        loop {
            let notified = self.empty.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table.release(self.id);
    }
}

/// A request in flight on a connection; the connection is idle again when the last one drops.
struct Busy {
    table: Arc<Table>,
    id: u64,
}

impl Busy {
    fn start(table: &Arc<Table>, id: u64) -> Busy {
        table.set_busy(id, true);
        Busy {
            table: Arc::clone(table),
            id,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.table.set_busy(self.id, false);
    }
}

/// Rate limit for a log line: the first occurrence, then at most one per [`LOG_EVERY`] with the
/// count of those not logged.
#[derive(Default)]
struct Quiet {
    last: Option<Instant>,
    suppressed: u64,
}

impl Quiet {
    /// `Some(suppressed since the last line)` when a line should be written now.
    fn note(&mut self) -> Option<u64> {
        match self.last {
            Some(last) if last.elapsed() < LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(Instant::now());
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max_connections: usize, max_per_client: usize) -> Arc<Table> {
        Arc::new(Table::new(Limits {
            max_connections,
            max_per_client,
            header_timeout: Duration::from_secs(10),
        }))
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn one_address_is_capped_and_its_slots_come_back() {
        let table = table(10, 2);
        let first = table.admit(ip(2)).expect("first");
        let _second = table.admit(ip(2)).expect("second");
        assert!(table.admit(ip(2)).is_none(), "third from one address");
        assert!(table.admit(ip(3)).is_some(), "another address");
        drop(first);
        assert!(table.admit(ip(2)).is_some(), "a slot came back");
    }

    #[test]
    fn at_the_total_cap_the_oldest_idle_connection_makes_room() {
        let table = table(2, 10);
        let oldest = table.admit(ip(2)).expect("oldest");
        let busy = table.admit(ip(3)).expect("busy");
        let _request = Busy::start(&table, busy.id);
        let newcomer = table.admit(ip(4)).expect("takes the oldest idle slot");
        assert!(
            oldest.evicted_now(),
            "the oldest idle connection is told to close"
        );
        assert!(
            !busy.evicted_now(),
            "a connection with a request in flight is kept"
        );
        // The evicted one has not closed yet and the other two are busy or new: no more room.
        let _request = Busy::start(&table, newcomer.id);
        assert!(table.admit(ip(5)).is_none());
        drop(oldest);
        assert_eq!(table.open(), 2);
    }

    impl Slot {
        fn evicted_now(&self) -> bool {
            let permit = self.evict.notified();
            tokio::pin!(permit);
            permit.enable()
        }
    }

    #[test]
    fn log_lines_are_rate_limited_with_a_count() {
        let mut quiet = Quiet::default();
        assert_eq!(quiet.note(), Some(0));
        assert_eq!(quiet.note(), None);
        assert_eq!(quiet.note(), None);
        quiet.last = Instant::now().checked_sub(LOG_EVERY);
        assert_eq!(quiet.note(), Some(2));
    }
}
