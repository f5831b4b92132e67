//! The RTSP test server stops cleanly while its clients are mid-session: probes that just got
//! their frame are tearing their pipelines down (TEARDOWN in flight) when the server is dropped.
//!
//! gst-rtsp-server 1.22 serving clients on its own thread pool spun forever here, printing
//! `GLib-GIO-CRITICAL g_pollable_input_stream_read_nonblocking` (issue 9). The body runs in a
//! child process under `G_DEBUG=fatal-criticals`, so the first critical aborts it, and a spin
//! without criticals fails on the timeout.

mod common;

use common::child;
use std::time::Duration;
use streampulse::demo::RtspTestServer;
use streampulse::heartbeat::Health;
use streampulse::pipeline::TemplateLibrary;
use streampulse::probe::{probe_with_teardown, ProbeRequest, Reaper};
use streampulse::url::CameraUrl;

const TEST_NAME: &str = "stopping_the_rtsp_server_while_probes_tear_down_never_spins";
/// Servers started and dropped mid-teardown.
const ROUNDS: u32 = 80;
/// Probes at once per round: more clients mid-read per stop.
const PROBES_PER_ROUND: usize = 4;
/// The child normally needs 5–15 s; a spin without criticals ends here.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn stopping_the_rtsp_server_while_probes_tear_down_never_spins() {
    if child::is_child(TEST_NAME) {
        race_rounds();
        return;
    }
    let run = child::rerun(
        TEST_NAME,
        &[("G_DEBUG", "fatal-criticals"), ("RUST_LOG", "warn")],
        CHILD_TIMEOUT,
    );
    let criticals = run.stderr.head.matches("CRITICAL").count();
    assert!(
        run.succeeded(),
        "the child {} after {:?} (signal {:?}, {} stderr lines, {criticals} criticals in the first \
         64 KiB):\n{}\n{}",
        if run.status.is_some() {
            "failed"
        } else {
            "was still running"
        },
        run.elapsed,
        run.signal(),
        run.stderr.lines,
        run.stdout.head,
        run.stderr.head,
    );
}

fn request(url: &str) -> ProbeRequest {
    ProbeRequest::new(
        Some(CameraUrl::new(url)),
        TemplateLibrary::new(None).find("rtsp").expect("shipped template"),
        Duration::from_secs(5),
    )
}

fn race_rounds() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let reaper = Reaper::new();
    let mut disposed = 0;
    for round in 0..ROUNDS {
        let server = RtspTestServer::builder()
            .shared(None)
            .start()
            .expect("rtsp server");
        let requests: Vec<ProbeRequest> = (0..PROBES_PER_ROUND)
            .map(|_| request(&server.url("/test")))
            .collect();
        let results = runtime.block_on(futures::future::join_all(
            requests
                .iter()
                .map(|request| probe_with_teardown(request, &reaper)),
        ));
        for (outcome, _teardown) in &results {
            assert_eq!(outcome.health, Health::Up, "round {round}: {outcome:?}");
        }
        disposed += results.len() as u64;
        // Teardowns have just been handed to the reaper: stop the server under them, a little
        // later each round so the stop lands on different points of the TEARDOWN exchange.
        std::thread::sleep(Duration::from_micros(u64::from(round % 5) * 500));
        drop(server);
        assert!(
            reaper.drain(Duration::from_secs(5), disposed),
            "round {round}: teardowns against the stopped server finish"
        );
    }
}
