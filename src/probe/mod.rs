//! Probing one stream: a GStreamer pipeline from a template, a hard deadline, and an outcome.

mod classify;
pub mod outcome;
pub mod quality;
mod run;
pub mod teardown;

pub use outcome::{Health, ProbeOutcome, Reason, TimeoutStage};
pub use run::{probe, probe_with_teardown, snapshot, template_values, ProbeRequest, Snapshot};
pub use teardown::{Reaper, TeardownDone};
