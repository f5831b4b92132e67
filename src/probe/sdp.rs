//! What the probe changes in an RTSP server's SDP before rtspsrc reads it.
//!
//! rtspsrc turns every media attribute into a caps field, and an `a=ssrc:<id> cname:…` attribute
//! into a field *named* after the SSRC (`ssrc-<id>-cname`). Caps field names are GLib quarks,
//! which are never freed, and servers (gst-rtsp-server, many cameras) pick a random SSRC for every
//! session: left alone, each RTSP probe of such a server would grow the monitor by a new quark
//! (about 70 bytes with its table slots) for as long as it runs (issue 9's soak: ~0.1 MB a
//! minute at 200 streams). The probe has no use for these attributes, so they are removed in
//! rtspsrc's `on-sdp` signal, which it emits before it turns the SDP into caps.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::glib::translate::ToGlibPtr;
use gstreamer::prelude::*;
use gstreamer_rtsp_server::gst_sdp;

/// Hooks every rtspsrc of the pipeline: those in the description, and any a bin creates later.
pub(super) fn strip_per_session_attributes(pipeline: &gst::Pipeline) {
    for element in pipeline.iterate_recurse().into_iter().flatten() {
        hook_if_rtspsrc(&element);
    }
    pipeline.connect_deep_element_added(|_, _, element| hook_if_rtspsrc(element));
}

fn hook_if_rtspsrc(element: &gst::Element) {
    let is_rtspsrc = element.factory().is_some_and(|f| f.name() == "rtspsrc");
    if !is_rtspsrc || element.find_property("location").is_none() {
        return;
    }
    element.connect("on-sdp", false, |args| {
        if let Some(value) = args.get(1) {
            with_sdp_mut(value, remove_ssrc_attributes);
        }
        None
    });
}

/// Runs `edit` on the SDP message the signal value points to: rtspsrc's own message, not a copy
/// (a `get::<SDPMessage>()` would copy it, and edits would be lost).
#[allow(unsafe_code)]
fn with_sdp_mut(value: &glib::Value, edit: impl FnOnce(&mut gst_sdp::SDPMessageRef)) {
    if !value.type_().is_a(gst_sdp::SDPMessage::static_type()) {
        return;
    }
    // SAFETY: the value holds a boxed GstSDPMessage (checked above); `g_value_get_boxed` returns
    // the pointer rtspsrc passed without copying. rtspsrc emits `on-sdp` synchronously from its
    // own thread before it reads the message, and documents that handlers may modify it, so no
    // one else touches it while `edit` runs. `SDPMessageRef` is a transparent wrapper of it.
    unsafe {
        let pointer =
            glib::gobject_ffi::g_value_get_boxed(value.to_glib_none().0) as *mut gst_sdp::SDPMessageRef;
        if let Some(sdp) = pointer.as_mut() {
            edit(sdp);
        }
    }
}

/// Removes the `a=ssrc:` attributes of the session and of every media.
fn remove_ssrc_attributes(sdp: &mut gst_sdp::SDPMessageRef) {
    for index in (0..sdp.attributes_len()).rev() {
        if sdp.attribute(index).is_some_and(|a| a.key() == "ssrc") {
            let _ = sdp.remove_attribute(index);
        }
    }
    for media_index in 0..sdp.medias_len() {
        let Some(media) = sdp.media_mut(media_index) else {
            continue;
        };
        for index in (0..media.attributes_len()).rev() {
            if media.attribute(index).is_some_and(|a| a.key() == "ssrc") {
                let _ = media.remove_attribute(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\na=ssrc:7 cname:x\r\n\
        m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n\
        a=ssrc:2435792375 cname:user1@host-1\r\na=ssrc:2435792375 msid:a b\r\na=framerate:15\r\n";

    #[test]
    fn only_ssrc_attributes_go() {
        gst::init().expect("GStreamer");
        let mut sdp = gst_sdp::SDPMessage::parse_buffer(SDP.as_bytes()).expect("valid SDP");
        remove_ssrc_attributes(&mut sdp);
        let text = sdp.as_text().expect("SDP text");
        assert!(!text.contains("ssrc"), "{text}");
        for kept in ["a=rtpmap:96 H264/90000", "a=control:stream=0", "a=framerate:15"] {
            assert!(text.contains(kept), "{kept} kept: {text}");
        }
    }
}
