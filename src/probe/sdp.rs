//! What the probe changes in an RTSP server's SDP before rtspsrc reads it.
//!
//! rtspsrc turns every media attribute into a caps field, and an `a=ssrc:<id> cname:…` attribute
//! into a field *named* after the SSRC (`ssrc-<id>-cname`). Caps field names are GLib quarks,
//! which are never freed, and servers (gst-rtsp-server, many cameras) pick a random SSRC for every
//! session: left alone, each RTSP probe of such a server would grow the monitor by a new quark
//! (about 70 bytes with its table slots) for as long as it runs (issue 9's soak: ~0.1 MB a
//! minute at 200 streams). The probe has no use for these attributes, so they are removed in
//! rtspsrc's `on-sdp` signal, which it emits before it turns the SDP into caps.
//!
//! The same signal is where relative media controls are rewritten when the camera needs them
//! appended to the stream's URL (see [`ControlForm`]): rtspsrc reads the controls after it.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::glib::translate::ToGlibPtr;
use gstreamer::prelude::*;
use gstreamer_rtsp_server::gst_sdp;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use super::learned::ControlForm;

/// What the `on-sdp` hook saw: whether the SDP's media controls are relative (so the SETUP URL
/// depends on how they are resolved, and a SETUP the camera does not answer may be the wrong form).
#[derive(Debug, Default)]
pub(super) struct SdpSeen {
    relative_controls: AtomicBool,
    /// The first video media's encoding (`H264`, `H265`, `JPEG`…), from its `a=rtpmap`.
    video_encoding: OnceLock<String>,
}

impl SdpSeen {
    pub(super) fn video_encoding(&self) -> Option<&str> {
        self.video_encoding.get().map(String::as_str)
    }

    pub(super) fn relative_controls(&self) -> bool {
        self.relative_controls.load(Ordering::Relaxed)
    }
}

/// Hooks every rtspsrc of the pipeline: those in the description, and any a bin creates later.
/// Drops per-session attributes, and with [`ControlForm::Appended`] appends relative media
/// controls to the stream's URL.
pub(super) fn hook_rtspsrc(pipeline: &gst::Pipeline, form: ControlForm) -> Arc<SdpSeen> {
    let seen = Arc::new(SdpSeen::default());
    for element in pipeline.iterate_recurse().into_iter().flatten() {
        hook_if_rtspsrc(&element, form, &seen);
    }
    let later = Arc::clone(&seen);
    pipeline.connect_deep_element_added(move |_, _, element| hook_if_rtspsrc(element, form, &later));
    seen
}

fn hook_if_rtspsrc(element: &gst::Element, form: ControlForm, seen: &Arc<SdpSeen>) {
    if !super::is_rtspsrc(element.upcast_ref()) || element.find_property("location").is_none() {
        return;
    }
    let seen = Arc::clone(seen);
    element.connect("on-sdp", false, move |args| {
        let location = args
            .first()
            .and_then(|v| v.get::<gst::Element>().ok())
            .and_then(|e| e.property::<Option<String>>("location"))
            .unwrap_or_default();
        if let Some(value) = args.get(1) {
            with_sdp_mut(value, |sdp| {
                remove_ssrc_attributes(sdp);
                if let Some(encoding) = video_encoding(sdp) {
                    let _ = seen.video_encoding.set(encoding);
                }
                let relative = has_relative_media_controls(sdp);
                seen.relative_controls.store(relative, Ordering::Relaxed);
                if relative && form == ControlForm::Appended && !location.is_empty() {
                    append_relative_controls(sdp, &location);
                }
            });
        }
        None
    });
}

/// The encoding name of the first video media's first format (`a=rtpmap:96 H264/90000` → `H264`).
fn video_encoding(sdp: &gst_sdp::SDPMessageRef) -> Option<String> {
    let media = (0..sdp.medias_len())
        .filter_map(|index| sdp.media(index))
        .find(|media| media.media() == Some("video"))?;
    let format = media.format(0)?;
    let rtpmap = (0..media.attributes_len())
        .filter_map(|index| media.attribute(index))
        .filter(|attribute| attribute.key() == "rtpmap")
        .filter_map(|attribute| attribute.value())
        .find(|value| value.split_whitespace().next() == Some(format))?;
    let encoding = rtpmap.split_whitespace().nth(1)?.split('/').next()?;
    (!encoding.is_empty()).then(|| encoding.to_ascii_uppercase())
}

/// A media control that rtspsrc resolves against a base: not an absolute URL, not `*`, and no
/// session-level control that would be the base instead.
fn is_relative_control(control: &str) -> bool {
    !control.is_empty() && control != "*" && !control.contains("://")
}

fn has_relative_media_controls(sdp: &gst_sdp::SDPMessageRef) -> bool {
    let session_base = sdp.attribute_val("control").is_some_and(|control| control != "*");
    !session_base
        && (0..sdp.medias_len()).any(|index| {
            sdp.media(index)
                .and_then(|media| media.attribute_val("control"))
                .is_some_and(is_relative_control)
        })
}

/// Rewrites each relative media control as `location/control`, the form ffmpeg sends.
fn append_relative_controls(sdp: &mut gst_sdp::SDPMessageRef, location: &str) {
    let base = location.trim_end_matches('/');
    for media_index in 0..sdp.medias_len() {
        let Some(media) = sdp.media_mut(media_index) else {
            continue;
        };
        for index in 0..media.attributes_len() {
            let Some(control) = media
                .attribute(index)
                .filter(|a| a.key() == "control")
                .and_then(|a| a.value())
                .filter(|value| is_relative_control(value))
                .map(str::to_string)
            else {
                continue;
            };
            let absolute = format!("{base}/{}", control.trim_start_matches('/'));
            let _ = media.replace_attribute(index, gst_sdp::SDPAttribute::new("control", Some(&absolute)));
        }
    }
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
    fn relative_controls_are_appended_to_the_location() {
        gst::init().expect("GStreamer");
        let mut sdp = gst_sdp::SDPMessage::parse_buffer(SDP.as_bytes()).expect("valid SDP");
        assert!(has_relative_media_controls(&sdp));
        append_relative_controls(&mut sdp, "rtsp://cam:554/live/ch1/");
        let text = sdp.as_text().expect("SDP text");
        assert!(
            text.contains("a=control:rtsp://cam:554/live/ch1/stream=0"),
            "{text}"
        );
        assert!(!has_relative_media_controls(&sdp), "now absolute");
    }

    #[test]
    fn absolute_star_and_session_based_controls_are_left_alone() {
        gst::init().expect("GStreamer");
        for (sdp_text, relative) in [
            ("a=control:rtsp://cam/live/track1", false),
            ("a=control:*", false),
            ("a=control:trackID=1", true),
        ] {
            let text = SDP.replace("a=control:stream=0", sdp_text);
            let sdp = gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).expect("valid SDP");
            assert_eq!(has_relative_media_controls(&sdp), relative, "{sdp_text}");
        }
        let session_based = SDP.replace("t=0 0\r\n", "t=0 0\r\na=control:rtsp://cam/base/\r\n");
        let sdp = gst_sdp::SDPMessage::parse_buffer(session_based.as_bytes()).expect("valid SDP");
        assert!(
            !has_relative_media_controls(&sdp),
            "the session control is the base"
        );
    }

    #[test]
    fn the_video_encoding_is_read_from_the_rtpmap() {
        gst::init().expect("GStreamer");
        let sdp = gst_sdp::SDPMessage::parse_buffer(SDP.as_bytes()).expect("valid SDP");
        assert_eq!(video_encoding(&sdp).as_deref(), Some("H264"));
        let no_rtpmap = SDP.replace("a=rtpmap:96 H264/90000\r\n", "");
        let sdp = gst_sdp::SDPMessage::parse_buffer(no_rtpmap.as_bytes()).expect("valid SDP");
        assert_eq!(video_encoding(&sdp), None);
    }

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
