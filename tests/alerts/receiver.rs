//! A real HTTP receiver on loopback for notification tests: hyper on its own thread and runtime,
//! recording every request; it can answer an error status for a while (a receiver that is down).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    /// The status answered; 200 unless a test makes it fail.
    status: Arc<AtomicU16>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (log, answer) = (Arc::clone(&received), Arc::clone(&status));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("address"))
                    .expect("send address");
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
                        tokio::spawn(async move {
                            let service = service_fn(move |request: Request<Incoming>| {
                                let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
                                async move {
                                    let method = request.method().to_string();
                                    let path = request.uri().to_string();
                                    let headers = request
                                        .headers()
                                        .iter()
                                        .map(|(name, value)| {
                                            (
                                                name.as_str().to_string(),
                                                value.to_str().unwrap_or("").to_string(),
                                            )
                                        })
                                        .collect();
                                    let body = request
                                        .into_body()
                                        .collect()
                                        .await
                                        .map(|b| b.to_bytes())
                                        .unwrap_or_default();
                                    let status = answer.load(Ordering::SeqCst);
                                    if status == 200 {
                                        log.lock().expect("log").push(Received {
                                            method,
                                            path,
                                            headers,
                                            body: String::from_utf8_lossy(&body).into_owned(),
                                        });
                                    }
                                    let mut response = Response::new(Full::new(Bytes::from(format!(
                                        "answer {status}: try later"
                                    ))));
                                    *response.status_mut() =
                                        hyper::StatusCode::from_u16(status).expect("status");
                                    Ok::<_, Infallible>(response)
                                }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("receiver address");
        Receiver {
            addr,
            received,
            status,
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers `status` (and records nothing) until set back to 200.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Requests answered 200 so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }
}
