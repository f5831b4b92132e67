//! A library stuck in a loop cannot flood the log: GLib criticals and warnings and GStreamer debug
//! messages go through `logging::init()`'s rate limit (a few lines per message, then a count),
//! camera passwords in them are redacted, and `G_DEBUG=fatal-criticals` still aborts.
//!
//! Each body runs in a child process of this test binary, which calls `logging::init()` as the
//! `streampulse` binary does, so its stderr can be counted and its fatal end observed.

mod common;

use common::child;
use gstreamer as gst;
use gstreamer::glib;
use std::time::Duration;
use streampulse::logging::{self, LINES_PER_WINDOW};

const FLOOD: u32 = 10_000;
const SECRET: &str = streampulse::demo::DEMO_PASSWORD;

#[test]
fn ten_thousand_library_messages_print_a_handful_of_lines() {
    const NAME: &str = "ten_thousand_library_messages_print_a_handful_of_lines";
    if child::is_child(NAME) {
        flood();
        return;
    }
    let run = child::rerun(
        NAME,
        &[("G_DEBUG", ""), ("GST_DEBUG", "sp-flood:4"), ("RUST_LOG", "info")],
        Duration::from_secs(60),
    );
    let stderr = &run.stderr.head;
    assert!(run.succeeded(), "{run:#?}");
    eprintln!(
        "{} messages sent, {} lines written:\n{stderr}",
        3 * FLOOD,
        run.stderr.lines
    );
    let kinds = 3;
    let per_kind = u64::from(LINES_PER_WINDOW) + 1;
    assert!(
        run.stderr.lines <= kinds * per_kind,
        "{} lines:\n{stderr}",
        run.stderr.lines
    );
    let suppressed = u64::from(FLOOD - LINES_PER_WINDOW);
    for (what, target) in [
        ("g_pollable_input_stream_read_nonblocking", "glib"),
        ("cannot reach rtsp://demo:***@", "glib"),
        ("pad rtpbin", "gstreamer"),
    ] {
        let lines: Vec<&str> = stderr.lines().filter(|line| line.contains(what)).collect();
        assert_eq!(lines.len() as u64, per_kind, "{what}:\n{stderr}");
        assert!(lines.iter().all(|line| line.contains(target)), "{lines:#?}");
        assert!(
            lines
                .iter()
                .any(|line| line.contains(&format!("{suppressed} more similar messages suppressed"))),
            "{what}: no count of the suppressed lines:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains(SECRET),
        "a camera password was printed:\n{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes when stderr is not a terminal"
    );
}

fn flood() {
    logging::init();
    gst::init().expect("gstreamer");
    let category = gst::DebugCategory::new("sp-flood", gst::DebugColorFlags::empty(), None);
    for n in 0..FLOOD {
        // The critical GStreamer 1.22's RTSP server printed 633,305 times (issue 9).
        glib::g_critical!(
            "GLib-GIO",
            "g_pollable_input_stream_read_nonblocking: assertion 'G_IS_POLLABLE_INPUT_STREAM (stream)' failed ({})",
            n
        );
        glib::g_warning!(
            "sp-flood",
            "cannot reach rtsp://demo:{}@127.0.0.1:{}/live",
            SECRET,
            8554 + n
        );
        gst::warning!(category, "pad rtpbin{}:recv_rtp_src_0_{} not linked", n % 7, n);
    }
    logging::flush_suppressed();
}

#[test]
fn fatal_criticals_still_abort_after_being_written() {
    const NAME: &str = "fatal_criticals_still_abort_after_being_written";
    if child::is_child(NAME) {
        logging::init();
        glib::g_critical!("sp-fatal", "assertion 'stream != NULL' failed");
        unreachable!("G_DEBUG=fatal-criticals aborts on the critical");
    }
    let run = child::rerun(NAME, &[("G_DEBUG", "fatal-criticals")], Duration::from_secs(30));
    // GLib ends a fatal log with SIGTRAP (a breakpoint) or SIGABRT.
    assert!(
        matches!(run.signal(), Some(libc::SIGTRAP | libc::SIGABRT)),
        "{run:#?}"
    );
    assert!(
        run.stderr.head.contains("assertion 'stream != NULL' failed"),
        "the critical is written before the abort: {run:#?}"
    );
}
