//! What the probes of one camera learn about it and keep for the next probe: which form of a
//! relative RTSP control URL the camera understands, whether its RTP must come over TCP, and
//! which template an `http(s)://` stream without `pipeline:` needs (from what its server said,
//! see `sniff`). The monitor's request for a stream lives as long as the stream's task, and so
//! does this memory; the monitor saves it to the store (`stream_learned`) when it changes and
//! restores it when the task starts, so a restart keeps it. Snapshots start afresh.

use crate::store::learned::LearnedFacts;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

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
    /// UDP only: never learned, only configured (`transport: udp`).
    Udp,
}

impl From<crate::config::StreamTransport> for Transport {
    /// A stream's `transport:` as the probe applies it (`Auto` follows what was learned).
    fn from(configured: crate::config::StreamTransport) -> Transport {
        match configured {
            crate::config::StreamTransport::Auto => Transport::Auto,
            crate::config::StreamTransport::Tcp => Transport::Tcp,
            crate::config::StreamTransport::Udp => Transport::Udp,
        }
    }
}

impl Transport {
    /// The value of rtspsrc's `protocols` this transport sets, if any.
    pub fn protocols(self) -> Option<&'static str> {
        match self {
            Transport::Auto => None,
            Transport::Tcp => Some("tcp"),
            Transport::Udp => Some("udp"),
        }
    }
}

/// The template an `http(s)://` stream was found to need, and what said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedTemplate {
    /// A template name (`mjpeg`, `hls`, `http-h264`, `snapshot`).
    pub template: String,
    /// Why, in words for people: "server said application/vnd.apple.mpegurl".
    pub evidence: String,
}

/// One camera's memory, shared by the clones of its probe request.
#[derive(Debug, Default)]
pub struct CameraMemory {
    control_form: AtomicU8,
    transport: AtomicU8,
    template: Mutex<Option<DetectedTemplate>>,
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

    /// Returns whether this changed what was known. Only TCP is learned; UDP is a setting.
    pub fn remember_transport(&self, transport: Transport) -> bool {
        let value = match transport {
            Transport::Auto | Transport::Udp => 0,
            Transport::Tcp => 1,
        };
        self.transport.swap(value, Ordering::Relaxed) != value
    }

    /// The template detected for this stream, if a probe found one and it still works.
    pub fn template(&self) -> Option<DetectedTemplate> {
        self.template.lock().ok().and_then(|known| known.clone())
    }

    /// `None` forgets it: the next probe asks the server again.
    pub fn remember_template(&self, detected: Option<DetectedTemplate>) {
        if let Ok(mut known) = self.template.lock() {
            *known = detected;
        }
    }

    /// What is known, as the store keeps it.
    pub fn facts(&self) -> LearnedFacts {
        let template = self.template();
        LearnedFacts {
            template: template.as_ref().map(|t| t.template.clone()),
            template_evidence: template.map(|t| t.evidence),
            transport: match self.transport() {
                Transport::Tcp => "tcp",
                Transport::Auto | Transport::Udp => "auto",
            }
            .to_string(),
            control_form: match self.control_form() {
                ControlForm::Appended => "appended",
                ControlForm::AsResolved => "as_resolved",
            }
            .to_string(),
        }
    }

    /// Takes back what an earlier run saved (unknown words are ignored: the default stands).
    pub fn restore(&self, facts: &LearnedFacts) {
        if facts.transport == "tcp" {
            self.remember_transport(Transport::Tcp);
        }
        if facts.control_form == "appended" {
            self.remember_control_form(ControlForm::Appended);
        }
        if let (Some(template), Some(evidence)) = (&facts.template, &facts.template_evidence) {
            self.remember_template(Some(DetectedTemplate {
                template: template.clone(),
                evidence: evidence.clone(),
            }));
        }
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

    #[test]
    fn facts_survive_a_save_and_restore() {
        let memory = CameraMemory::default();
        assert_eq!(memory.facts(), LearnedFacts::default_facts());
        memory.remember_transport(Transport::Tcp);
        memory.remember_control_form(ControlForm::Appended);
        memory.remember_template(Some(DetectedTemplate {
            template: "hls".into(),
            evidence: "server said application/vnd.apple.mpegurl".into(),
        }));
        let restored = CameraMemory::default();
        restored.restore(&memory.facts());
        assert_eq!(restored.facts(), memory.facts());
        assert_eq!(restored.template().map(|t| t.template), Some("hls".to_string()));
    }
}
