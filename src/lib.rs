//! StreamPulse: tells, minute by minute, whether every camera in a fleet really delivers video.
//!
//! Data path: config → monitor (schedule) → probe → heartbeat → store → web / status.
// No unsafe code, with two reviewed exceptions: `probe::sdp` edits rtspsrc's SDP in place, and
// `probe::direct` disconnects gst_parse's delayed link from rtspsrc.
#![deny(unsafe_code)]

pub mod alert;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod fleet;
pub mod heartbeat;
pub mod logging;
pub mod monitor;
pub mod onvif;
pub mod panics;
pub mod pictures;
pub mod pipeline;
pub mod probe;
pub mod store;
pub mod tls;
pub mod upgrade;
pub mod url;
pub mod web;
