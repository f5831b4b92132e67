//! ONVIF, the little StreamPulse needs of it: WS-Discovery to find cameras (`discover`), the
//! device's identity, profiles and stream URIs, and its clock (GetSystemDateAndTime) for the
//! camera clock check. `xml` reads answers into a small tree; `soap` builds calls and reads their
//! answers; `wsse` signs calls; `client` speaks HTTP to one device; `discovery` probes over UDP;
//! `skew` turns a clock reading into what the monitor records and shows.

pub mod client;
pub mod discovery;
pub mod skew;
pub mod soap;
pub mod wsse;
pub mod xml;

pub use client::{ClockReading, Credentials, Device, OnvifError};
