//! Probing one stream: a GStreamer pipeline from a template, a hard deadline, and an outcome.

mod classify;
pub mod outcome;
mod run;
pub mod teardown;

pub use outcome::{Health, ProbeOutcome, Reason, TimeoutStage};
pub use run::{probe, template_values, ProbeRequest};
pub use teardown::Reaper;
