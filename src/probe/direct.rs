//! Direct decoding: for `rtspsrc ! decodebin ! appsink` (the shipped RTSP templates, and any
//! user template of that shape), the codec is known from the stream's RTP caps the moment
//! rtspsrc adds its pad, so the probe plugs `depay ! parse ! decoder` itself instead of letting
//! decodebin type-find and search the registry on every probe (about a sixth of a probe's CPU,
//! issue 16). Any other codec, or a missing element, gets a decodebin as before.

use gst::prelude::*;
use gstreamer as gst;
use gstreamer::glib;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The chains plugged without autoplugging: RTP encoding name → elements, upstream first.
const CHAINS: &[(&str, &[&str])] = &[
    ("H264", &["rtph264depay", "h264parse", "avdec_h264"]),
    ("H265", &["rtph265depay", "h265parse", "avdec_h265"]),
    ("JPEG", &["rtpjpegdepay", "jpegdec"]),
];

/// Replaces the pipeline's decodebin by a direct chain plugged when rtspsrc's video pad comes,
/// if the pipeline is `rtspsrc ! decodebin ! appsink` and nothing is linked yet (not started).
/// Returns whether it did.
pub(super) fn plug_direct_decoding(pipeline: &gst::Pipeline, sink: &gst::Element) -> bool {
    let elements: Vec<gst::Element> = pipeline.iterate_elements().into_iter().flatten().collect();
    let of_factory = |name: &str| -> Vec<&gst::Element> {
        elements
            .iter()
            .filter(|e| e.factory().is_some_and(|f| f.name() == name))
            .collect()
    };
    let (sources, decodebins) = (of_factory("rtspsrc"), of_factory("decodebin"));
    let ([source], [decodebin]) = (sources.as_slice(), decodebins.as_slice()) else {
        return false;
    };
    let unlinked =
        |element: &gst::Element, pad: &str| element.static_pad(pad).is_some_and(|pad| !pad.is_linked());
    if elements.len() != 3 || !unlinked(decodebin, "sink") || !unlinked(sink, "sink") {
        return false;
    }
    if !decodebin.src_pads().is_empty() {
        return false;
    }
    // gst_parse linked rtspsrc to the decodebin lazily: `pad-added` and `no-more-pads` handlers
    // sharing a record with a plain pointer to it. Left connected, they would try that link on
    // every probe (GStreamer warnings each time) and, once the decodebin is gone, read freed memory.
    if !forget_delayed_links(source) || pipeline.remove(*decodebin).is_err() {
        return false;
    }
    let plugged = Arc::new(AtomicBool::new(false));
    let pipeline_weak = pipeline.downgrade();
    let sink = sink.clone();
    source.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        let Some(encoding) = video_encoding(pad) else {
            return;
        };
        if plugged.swap(true, Ordering::SeqCst) {
            return;
        }
        if plug_chain(&pipeline, pad, &sink, &encoding).is_err() {
            let _ = plug_decodebin(&pipeline, pad, &sink);
        }
    });
    true
}

/// Disconnects every `pad-added` and `no-more-pads` handler of a freshly parsed `source`. Called
/// before the probe connects its own, so the only ones there are gst_parse's delayed link: one
/// handler per signal sharing one record, which the first disconnect frees, so both must go.
/// Returns whether the signals were found (they always are on an element).
#[allow(unsafe_code)]
fn forget_delayed_links(source: &gst::Element) -> bool {
    use glib::subclass::signal::SignalId;
    use glib::translate::{IntoGlib, ToGlibPtr};
    let signals =
        ["no-more-pads", "pad-added"].map(|name| SignalId::lookup(name, gst::Element::static_type()));
    // Both ids before any disconnect: one signal's handler gone and not the other's would leave a
    // handler on the freed record.
    let [Some(no_more_pads), Some(pad_added)] = signals else {
        return false;
    };
    let instance: *mut gst::ffi::GstElement = source.to_glib_none().0;
    for signal in [no_more_pads, pad_added] {
        // SAFETY: `instance` is a live GObject (borrowed from `source` for the calls). Matching
        // on the signal id alone reads no closure data, and each id found is disconnected at
        // once, so the next search cannot return it again. (`g_signal_handlers_disconnect_matched`
        // would ignore a mask without a closure, function or data.)
        unsafe {
            loop {
                let handler = glib::gobject_ffi::g_signal_handler_find(
                    instance.cast(),
                    glib::gobject_ffi::G_SIGNAL_MATCH_ID,
                    signal.into_glib(),
                    0,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
                if handler == 0 {
                    break;
                }
                glib::gobject_ffi::g_signal_handler_disconnect(instance.cast(), handler);
            }
        }
    }
    true
}

/// The RTP encoding name of a video pad (empty when the SDP gives none, as for a static payload
/// type: decodebin then); `None` for audio, application data or non-RTP pads.
fn video_encoding(pad: &gst::Pad) -> Option<String> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let structure = caps.structure(0)?;
    if structure.name() != "application/x-rtp" {
        return None;
    }
    if structure.get::<&str>("media").ok()? != "video" {
        return None;
    }
    let encoding = structure.get::<&str>("encoding-name").unwrap_or_default();
    Some(encoding.to_ascii_uppercase())
}

#[derive(Debug)]
struct NotPlugged;

/// Adds, links and starts the direct chain for `encoding`, then links `pad` to it.
fn plug_chain(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    sink: &gst::Element,
    encoding: &str,
) -> Result<(), NotPlugged> {
    let (_, names) = CHAINS
        .iter()
        .find(|(name, _)| *name == encoding)
        .ok_or(NotPlugged)?;
    let chain = names
        .iter()
        .map(|name| gst::ElementFactory::make(name).build().map_err(|_| NotPlugged))
        .collect::<Result<Vec<_>, _>>()?;
    pipeline.add_many(&chain).map_err(|_| NotPlugged)?;
    let linked =
        gst::Element::link_many(&chain).is_ok() && chain.last().is_some_and(|last| last.link(sink).is_ok());
    let started = linked && chain.iter().rev().all(|e| e.sync_state_with_parent().is_ok());
    let entered = chain
        .first()
        .and_then(|first| first.static_pad("sink"))
        .is_some_and(|sink_pad| started && pad.link(&sink_pad).is_ok());
    if entered {
        return Ok(());
    }
    for element in &chain {
        let _ = element.set_state(gst::State::Null);
        let _ = pipeline.remove(element);
    }
    Err(NotPlugged)
}

/// The fallback: a decodebin, linked to the sink once it exposes the decoded stream.
fn plug_decodebin(pipeline: &gst::Pipeline, pad: &gst::Pad, sink: &gst::Element) -> Result<(), NotPlugged> {
    let decodebin = gst::ElementFactory::make("decodebin")
        .build()
        .map_err(|_| NotPlugged)?;
    pipeline.add(&decodebin).map_err(|_| NotPlugged)?;
    let sink_weak = sink.downgrade();
    decodebin.connect_pad_added(move |_, decoded| {
        let Some(sink_pad) = sink_weak.upgrade().and_then(|s| s.static_pad("sink")) else {
            return;
        };
        if !sink_pad.is_linked() {
            let _ = decoded.link(&sink_pad);
        }
    });
    decodebin.sync_state_with_parent().map_err(|_| NotPlugged)?;
    let entry = decodebin.static_pad("sink").ok_or(NotPlugged)?;
    pad.link(&entry).map(|_| ()).map_err(|_| NotPlugged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::RtspTestServer;
    use gstreamer_app as gst_app;

    /// Runs `rtspsrc ! decodebin ! appsink` on `url` with direct decoding until the first
    /// decoded frame; the factory names of every element then in the pipeline.
    fn elements_after_first_frame(url: &str) -> Vec<String> {
        crate::pipeline::init_gstreamer().expect("gstreamer");
        let launch = format!("rtspsrc location={url} latency=0 ! decodebin ! appsink name=sink");
        let pipeline = gst::parse::launch(&launch)
            .expect("parses")
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        let sink = pipeline.by_name("sink").expect("appsink");
        let parsed_decodebin = pipeline
            .iterate_elements()
            .into_iter()
            .flatten()
            .find(|e| e.factory().is_some_and(|f| f.name() == "decodebin"))
            .expect("the template's decodebin")
            .downgrade();
        assert!(plug_direct_decoding(&pipeline, &sink), "the shape is recognised");
        // Nothing holds the set-aside decodebin: gst_parse's delayed link to it is gone too (it
        // kept only a plain pointer, and would have tried the link on every pad).
        assert!(
            parsed_decodebin.upgrade().is_none(),
            "the template's decodebin is released"
        );
        pipeline.set_state(gst::State::Playing).expect("plays");
        let appsink = sink.downcast::<gst_app::AppSink>().expect("an appsink");
        let sample = appsink.try_pull_sample(gst::ClockTime::from_seconds(20));
        let names = pipeline
            .iterate_recurse()
            .into_iter()
            .flatten()
            .filter_map(|e| e.factory().map(|f| f.name().to_string()))
            .collect();
        pipeline.set_state(gst::State::Null).expect("stops");
        let caps = sample.as_ref().and_then(|s| s.caps()).map(|c| c.to_string());
        assert!(
            caps.as_deref().is_some_and(|c| c.starts_with("video/x-raw")),
            "a decoded frame: {caps:?}"
        );
        names
    }

    /// Every element of `chain` ran, and no decodebin did.
    fn assert_direct_chain(names: &[String], chain: &[&str]) {
        for expected in chain {
            assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
        }
        assert!(
            !names.iter().any(|n| n == "decodebin"),
            "no decodebin in {names:?}"
        );
    }

    #[test]
    fn h264_is_decoded_by_the_direct_chain_without_decodebin() {
        let server = RtspTestServer::start().expect("rtsp server");
        let names = elements_after_first_frame(&server.url("/test"));
        assert_direct_chain(&names, &["rtph264depay", "h264parse", "avdec_h264"]);
    }

    #[test]
    fn motion_jpeg_over_rtsp_is_decoded_by_the_direct_chain() {
        let server = RtspTestServer::builder()
            .mount(
                "/mjpeg",
                "( videotestsrc is-live=true ! video/x-raw,format=I420,width=160,height=120,framerate=10/1 \
                 ! jpegenc ! rtpjpegpay name=pay0 pt=26 )",
            )
            .start()
            .expect("rtsp server");
        let names = elements_after_first_frame(&server.url("/mjpeg"));
        assert_direct_chain(&names, &["rtpjpegdepay", "jpegdec"]);
    }

    #[test]
    fn a_codec_without_a_direct_chain_still_decodes_through_decodebin() {
        let server = RtspTestServer::builder()
            .mount(
                "/vp8",
                "( videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1 \
                 ! vp8enc deadline=1 ! rtpvp8pay name=pay0 pt=96 )",
            )
            .start()
            .expect("rtsp server");
        let names = elements_after_first_frame(&server.url("/vp8"));
        assert!(names.iter().any(|n| n == "decodebin"), "decodebin in {names:?}");
        assert!(names.iter().any(|n| n == "vp8dec"), "vp8dec in {names:?}");
    }

    #[test]
    fn other_shapes_are_left_alone() {
        crate::pipeline::init_gstreamer().expect("gstreamer");
        for launch in [
            "rtspsrc location=rtsp://127.0.0.1:9/x ! rtph264depay ! h264parse ! avdec_h264 ! appsink name=sink",
            "souphttpsrc location=http://127.0.0.1:9/x ! decodebin ! appsink name=sink",
            "rtspsrc location=rtsp://127.0.0.1:9/x ! decodebin ! videoconvert ! appsink name=sink",
        ] {
            let pipeline = gst::parse::launch(launch)
                .expect("parses")
                .downcast::<gst::Pipeline>()
                .expect("a pipeline");
            let sink = pipeline.by_name("sink").expect("appsink");
            let before = pipeline.children().len();
            assert!(!plug_direct_decoding(&pipeline, &sink), "{launch}");
            assert_eq!(pipeline.children().len(), before, "{launch}");
        }
    }
}
