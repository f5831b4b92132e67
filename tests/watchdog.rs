//! The monitor watches itself, as systemd and a ping service see it: the real binary started the
//! way a `Type=notify` unit with `WatchdogSec=` starts it (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
//! `WATCHDOG_PID`), a notify socket of the test's own, a real camera, and a real HTTP receiver
//! as the `self_check_url`. (What makes the monitor unhealthy is unit-tested in
//! `monitor::watchdog`: nothing outside the process can wedge its schedule or its writer.)

mod common;
// Shared with tests/alerts.rs, which uses all of it.
#[path = "alerts/receiver.rs"]
#[allow(dead_code)]
mod receiver;

use common::{RunningChild, TestConfig, TestDir, TestStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use streampulse::demo::{closed_udp_port, MjpegTestServer};

/// The self-check URL's path stands for a healthchecks.io check UUID: a secret.
const PING_PATH: &str = "/ping/5bf66975-d4c7-4bf5-bcc8-secret";

/// Reads notify datagrams until `until` says enough or `timeout` passes.
fn collect(socket: &UnixDatagram, timeout: Duration, until: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut messages = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline && !until(&messages) {
        if let Ok(length) = socket.recv(&mut buffer) {
            messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
    }
    messages
}

fn count(messages: &[String], line: &str) -> usize {
    messages
        .iter()
        .filter(|message| message.lines().any(|l| l == line))
        .count()
}

#[test]
fn under_systemd_the_monitor_says_ready_pets_the_watchdog_calls_its_self_check_and_says_stopping() {
    let camera = MjpegTestServer::start().expect("MJPEG server");
    let pings = receiver::Receiver::start();
    let dir = TestDir::new();
    let yaml = TestConfig::new(2, 1.5, closed_udp_port())
        .stream(TestStream::new("Door", &camera.url("/")))
        .to_yaml();
    let config = dir.write_config_text(&format!("{yaml}self_check_url: \"{}\"\n", pings.url(PING_PATH)));
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");

    // As systemd starts it: WATCHDOG_PID is the monitor's own pid (`exec` keeps the shell's).
    let child = Command::new("sh")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_streampulse"))
        .args(["monitor", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        // 2 s: petted every second.
        .env("WATCHDOG_USEC", "2000000")
        .env("RUST_LOG", "debug")
        .env_remove("STREAMPULSE_CONFIG")
        .env_remove("STREAMPULSE_DB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the monitor");
    let mut monitor = RunningChild::new(child);

    let messages = collect(&socket, Duration::from_secs(60), |m| {
        count(m, "READY=1") == 1 && count(m, "WATCHDOG=1") >= 4
    });
    if count(&messages, "READY=1") != 1 {
        monitor.signal(libc::SIGKILL);
        let _ = monitor.wait_timeout(Duration::from_secs(10));
        let (_, stderr) = monitor.output();
        panic!("no READY=1 from the monitor: {messages:?}\n{stderr}");
    }
    assert!(
        count(&messages, "WATCHDOG=1") >= 4,
        "petted about every second while healthy: {messages:?}"
    );
    let ready_at = messages.iter().position(|m| m.contains("READY=1"));
    let first_pet = messages.iter().position(|m| m.contains("WATCHDOG=1"));
    assert!(ready_at < first_pet, "READY before the first pet: {messages:?}");

    let ping = common::wait_for(Duration::from_secs(30), || {
        pings.received().into_iter().find(|r| r.path == PING_PATH)
    })
    .expect("the self-check URL was called while healthy");
    assert_eq!(ping.method, "GET");

    monitor.signal(libc::SIGTERM);
    let stopping = collect(&socket, Duration::from_secs(30), |m| count(m, "STOPPING=1") == 1);
    assert_eq!(count(&stopping, "STOPPING=1"), 1, "{stopping:?}");
    let status = monitor
        .wait_timeout(Duration::from_secs(30))
        .expect("the monitor stops on SIGTERM");
    assert!(status.success(), "{status:?}");
    let (stdout, stderr) = monitor.output();
    assert!(
        stderr.contains("self-check call to http://127.0.0.1/… answered"),
        "{stderr}"
    );
    assert!(
        !format!("{stdout}{stderr}").contains("secret"),
        "the self-check URL's path was logged: {stderr}"
    );
}
