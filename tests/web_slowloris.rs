//! Slowloris against the real `streampulse web` binary, started under
//! `prlimit --nofile=1024:1024` (the systemd default the issue measured with): 2,000 slow
//! connections, from one address and from twenty, sending a partial header a byte at a time or
//! nothing, reconnecting when closed as an attacker's tool does. `/healthz` must still answer
//! within a second, the server must stay under its file-descriptor limit, and a slow header or an
//! idle kept-alive connection must be closed after `web.header_timeout_seconds`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const SLOW_CONNECTIONS: usize = 2_000;
const HEADER_TIMEOUT_S: u64 = 3;
const PARTIAL_HEADER: &[u8] =
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// The binary under `prlimit`, and the address it listens on (read from its log).
struct Web {
    child: common::RunningChild,
    addr: SocketAddr,
}

fn start_web(dir: &std::path::Path) -> Web {
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "database: streams.db\nweb:\n  header_timeout_seconds: {HEADER_TIMEOUT_S}\n\
             streams:\n  - name: Gate\n    url: rtsp://192.0.2.1/s\n"
        ),
    )
    .expect("config");
    let mut command = std::process::Command::new("prlimit");
    command
        .args(["--nofile=1024:1024", env!("CARGO_BIN_EXE_streampulse"), "web"])
        .args(["--config", "config.yaml", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("STREAMPULSE_CONFIG")
        .env_remove("STREAMPULSE_DB")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .expect("prlimit (util-linux) runs streampulse web");
    let stderr = child.stderr.take().expect("stderr");
    let (found, listening) = std::sync::mpsc::channel();
    // Reads the log for the whole run, so the pipe never fills.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening on http://") {
                let addr = line[at + "listening on http://".len()..].trim().to_string();
                let _ = found.send(addr);
            }
            if line.contains("WARN") || line.contains("ERROR") {
                eprintln!("server: {line}");
            }
        }
    });
    let child = common::RunningChild::new(child);
    let addr = listening
        .recv_timeout(Duration::from_secs(60))
        .expect("the server says where it listens")
        .parse()
        .expect("an address");
    Web { child, addr }
}

/// `/healthz` on a new connection from 127.0.0.1: the time to a whole 200 answer.
async fn healthz(addr: SocketAddr) -> Result<Duration, String> {
    let started = Instant::now();
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        if answer.starts_with("HTTP/1.1 200") && answer.contains("\"status\"") {
            Ok(started.elapsed())
        } else {
            Err(format!("unexpected answer: {answer:?}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
}

async fn connect_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// Holds one slow connection open until `stop`, sending the partial header a byte a second
/// (`trickle`) or nothing, and opens a new one a second after the server closes it.
async fn slow_client(
    source: IpAddr,
    addr: SocketAddr,
    trickle: bool,
    stop: Arc<AtomicBool>,
    closed_by_server: Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = connect_from(source, addr).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let mut sent = 0;
        let mut buffer = [0u8; 256];
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::select! {
                read = stream.read(&mut buffer) => {
                    // End of stream, reset, or an answer (a 408): the server is done with us.
                    let _ = read;
                    closed_by_server.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    if trickle && sent < PARTIAL_HEADER.len() {
                        if stream.write_all(&PARTIAL_HEADER[sent..=sent]).await.is_err() {
                            closed_by_server.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        sent += 1;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

/// The test opens a few thousand sockets itself; a lower soft limit is raised to the hard one.
fn raise_own_fd_limit() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(4))
        .and_then(|hard| hard.parse::<u64>().ok())
        .unwrap_or(4096);
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={0}:{0}", hard.min(65_536)))
        .status()
        .expect("prlimit");
    assert!(status.success(), "cannot raise the test's own descriptor limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_within_a_second_during_two_thousand_slow_connections() {
    raise_own_fd_limit();
    let dir = tempfile::tempdir().expect("tempdir");
    let web = start_web(dir.path());
    let addr = web.addr;
    healthz(addr).await.expect("answers before the attack");

    // Half from one address (over its per-client cap), half spread over twenty (over the total
    // cap); half of each trickle a header, half send nothing.
    let stop = Arc::new(AtomicBool::new(false));
    let closed_by_server = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for index in 0..SLOW_CONNECTIONS {
        let source = if index % 2 == 0 {
            IpAddr::from([127, 0, 0, 2])
        } else {
            IpAddr::from([127, 0, 0, 3 + (index % 40 / 2) as u8])
        };
        clients.push(tokio::spawn(slow_client(
            source,
            addr,
            index % 4 < 2,
            Arc::clone(&stop),
            Arc::clone(&closed_by_server),
        )));
        if index % 100 == 99 {
            // Lets the server's backlog drain; the whole flood still opens within a second or two.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut times = Vec::new();
    let mut most_fds = 0;
    for _ in 0..5 {
        let time = healthz(addr).await.expect("/healthz answers during the attack");
        times.push(time);
        most_fds = most_fds.max(open_fds(web.child.id()));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The attack outlived the header timeout: held connections were closed and came back.
    tokio::time::sleep(Duration::from_secs(HEADER_TIMEOUT_S + 1)).await;
    for _ in 0..5 {
        let time = healthz(addr).await.expect("/healthz answers during the attack");
        times.push(time);
        most_fds = most_fds.max(open_fds(web.child.id()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    times.sort();
    let median = times[times.len() / 2];
    eprintln!(
        "/healthz under {SLOW_CONNECTIONS} slow connections: median {median:?}, slowest {:?}; \
         server fds at most {most_fds}; {} slow connections closed by the server",
        times[times.len() - 1],
        closed_by_server.load(Ordering::Relaxed)
    );
    assert!(median < Duration::from_secs(1), "median {median:?} of {times:?}");
    assert!(most_fds < 1024, "server at {most_fds} descriptors");
    assert!(
        closed_by_server.load(Ordering::Relaxed) >= SLOW_CONNECTIONS,
        "over-cap and timed-out connections are closed"
    );
    for client in clients {
        client.abort();
    }
}

#[tokio::test]
async fn a_slow_header_and_an_idle_connection_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web = start_web(dir.path());
    let addr = web.addr;

    // A header trickling in a byte every 300 ms never completes: closed after the timeout.
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    let mut buffer = [0u8; 1024];
    let mut sent = 0;
    let closed_after = loop {
        tokio::select! {
            _ = slow.read(&mut buffer) => break started.elapsed(),
            () = tokio::time::sleep(Duration::from_millis(300)) => {
                if slow.write_all(&PARTIAL_HEADER[sent % PARTIAL_HEADER.len()..=sent % PARTIAL_HEADER.len()]).await.is_err() {
                    break started.elapsed();
                }
                sent += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "slow header never closed"
        );
    };
    assert!(
        closed_after >= Duration::from_secs(HEADER_TIMEOUT_S - 1) && closed_after < Duration::from_secs(20),
        "closed after {closed_after:?}"
    );

    // A kept-alive connection that answered one request and then sits idle is closed too.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let started = Instant::now();
    let closed_after = loop {
        let read = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut buffer))
            .await
            .expect("idle connection never closed");
        match read {
            Ok(0) | Err(_) => break started.elapsed(),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    };
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(
        closed_after >= Duration::from_secs(HEADER_TIMEOUT_S - 1) && closed_after < Duration::from_secs(20),
        "closed after {closed_after:?}"
    );
    healthz(addr).await.expect("still serving");
}
