//! Probing one stream: a GStreamer pipeline from a template, a hard deadline, and an outcome.

pub mod cells;
mod classify;
mod diagnosis;
mod direct;
pub mod grade;
pub mod jpeg;
pub mod learned;
pub mod live;
pub mod picture;
pub mod quality;
mod run;
mod sdp;
mod session;
mod sniff;
pub mod teardown;
mod tls;

// The probe's vocabulary lives in `heartbeat`; re-exported for the probe's own modules.
pub use crate::heartbeat::{Health, ProbeOutcome, Reason, TimeoutStage};
pub use run::{
    probe, probe_with_picture, probe_with_teardown, snapshot, template_values, ProbeRequest, Snapshot,
};
pub use teardown::{Reaper, TeardownDone};

/// An object is GStreamer's RTSP source (the element the probe's RTSP handling hooks, reads
/// progress and warnings from, and sets transports on).
fn is_rtspsrc(object: &gstreamer::Object) -> bool {
    use gstreamer::prelude::*;
    object
        .downcast_ref::<gstreamer::Element>()
        .and_then(|element| element.factory())
        .is_some_and(|factory| factory.name() == "rtspsrc")
}
