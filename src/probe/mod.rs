//! Probing one stream: a GStreamer pipeline from a template, a hard deadline, and an outcome.

pub mod cells;
mod classify;
mod diagnosis;
pub mod grade;
pub mod jpeg;
pub mod learned;
pub mod live;
pub mod picture;
pub mod quality;
mod run;
mod sdp;
mod session;
pub mod teardown;

// The probe's vocabulary lives in `heartbeat`; re-exported for the probe's own modules.
pub use crate::heartbeat::{Health, ProbeOutcome, Reason, TimeoutStage};
pub use run::{
    probe, probe_with_picture, probe_with_teardown, snapshot, template_values, ProbeRequest, Snapshot,
};
pub use teardown::{Reaper, TeardownDone};
