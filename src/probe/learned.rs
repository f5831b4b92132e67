//! What the probes of one camera learn about it and keep for the next probe: which form of a
//! relative RTSP control URL the camera understands, and whether its RTP must come over TCP. The monitor's request for a stream lives as
//! long as the stream's task, and so does this memory; snapshots start afresh.

use std::sync::atomic::{AtomicU8, Ordering};

/// How a relative `a=control:` of the SDP is turned into the SETUP URL when the camera sent no
/// `Content-Base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ControlForm {
    /// As rtspsrc resolves it (RFC 2326: relative to the request URL, last segment dropped).
    #[default]
    AsResolved,
    /// Appended to the stream's URL, as ffmpeg, VLC and live555 do (`rtsp://h/cam1/trackID=0`).
    Appended,
}

impl ControlForm {
    pub fn other(self) -> ControlForm {
        match self {
            ControlForm::AsResolved => ControlForm::Appended,
            ControlForm::Appended => ControlForm::AsResolved,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            ControlForm::AsResolved => "control URLs resolved as RFC 2326 says",
            ControlForm::Appended => "control URLs appended to the stream URL (as ffmpeg does)",
        }
    }
}

/// How RTSP media reaches the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// As the template says (the shipped `rtsp` template: UDP first, TCP after rtspsrc's UDP
    /// timeout, 40% of the deadline).
    #[default]
    Auto,
    /// UDP media never arrived (a firewall or NAT on the way): TCP-interleaved from the start.
    Tcp,
}

/// One camera's memory, shared by the clones of its probe request.
#[derive(Debug, Default)]
pub struct CameraMemory {
    control_form: AtomicU8,
    transport: AtomicU8,
}

impl CameraMemory {
    /// The control form that last worked (the first try of the next probe).
    pub fn control_form(&self) -> ControlForm {
        match self.control_form.load(Ordering::Relaxed) {
            1 => ControlForm::Appended,
            _ => ControlForm::AsResolved,
        }
    }

    pub fn remember_control_form(&self, form: ControlForm) {
        let value = match form {
            ControlForm::AsResolved => 0,
            ControlForm::Appended => 1,
        };
        self.control_form.store(value, Ordering::Relaxed);
    }

    /// The transport the next probe starts with.
    pub fn transport(&self) -> Transport {
        match self.transport.load(Ordering::Relaxed) {
            1 => Transport::Tcp,
            _ => Transport::Auto,
        }
    }

    /// Returns whether this changed what was known.
    pub fn remember_transport(&self, transport: Transport) -> bool {
        let value = match transport {
            Transport::Auto => 0,
            Transport::Tcp => 1,
        };
        self.transport.swap(value, Ordering::Relaxed) != value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_form_that_worked() {
        let memory = CameraMemory::default();
        assert_eq!(memory.control_form(), ControlForm::AsResolved);
        memory.remember_control_form(ControlForm::Appended);
        assert_eq!(memory.control_form(), ControlForm::Appended);
        assert_eq!(memory.control_form().other(), ControlForm::AsResolved);
        assert_eq!(memory.transport(), Transport::Auto);
        assert!(memory.remember_transport(Transport::Tcp));
        assert!(!memory.remember_transport(Transport::Tcp), "no change");
        assert_eq!(memory.transport(), Transport::Tcp);
    }
}
