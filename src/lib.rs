//! StreamPulse: tells, minute by minute, whether every camera in a fleet really delivers video.
//!
//! Data path: config → monitor (schedule) → probe → heartbeat → store → web / status.
#![forbid(unsafe_code)]

pub mod config;
pub mod pipeline;
pub mod probe;
pub mod url;
