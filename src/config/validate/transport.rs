//! A stream's `transport:` (RTSP only), the fleet's default for it, and whether a stream's
//! template is detected.

use super::super::raw::{Field, RawStream, Spanned};
use super::super::transport::{detects_template, has_transport, StreamTransport};
use super::Check;
use crate::url::CameraUrl;

impl Check<'_> {
    /// The top-level `transport:` (default `auto`): every RTSP stream without its own takes it.
    pub(super) fn fleet_transport(&mut self, raw: &Field<String>) -> StreamTransport {
        match raw {
            Field::Given(given) => self.parsed_transport(given, "transport").unwrap_or_default(),
            _ => StreamTransport::Auto,
        }
    }

    /// `transport:` read and checked against the URL's scheme (an RTSP stream without one takes
    /// `fleet`'s, the others `auto`), and whether the template is to be detected (an
    /// `http(s)://` stream without `pipeline:`).
    pub(super) fn transport_and_detection(
        &mut self,
        raw: &RawStream,
        url: Option<&CameraUrl>,
        fleet: StreamTransport,
    ) -> (StreamTransport, bool) {
        let scheme = url.and_then(CameraUrl::scheme);
        let detect = detects_template(scheme.as_deref(), raw.pipeline != Field::Missing);
        let rtsp = has_transport(scheme.as_deref());
        let Field::Given(given) = &raw.transport else {
            return (if rtsp { fleet } else { StreamTransport::Auto }, detect);
        };
        let Some(transport) = self.parsed_transport(given, &raw.path("transport")) else {
            return (StreamTransport::Auto, detect);
        };
        if let Some(scheme) = scheme.filter(|_| !rtsp) {
            self.push(
                given.line,
                &raw.path("transport"),
                format!("only RTSP streams have a transport to choose; this one is {scheme}://"),
            );
        }
        (transport, detect)
    }

    /// A written transport, or `None` with the problem reported at its line.
    fn parsed_transport(&mut self, given: &Spanned<String>, field: &str) -> Option<StreamTransport> {
        StreamTransport::parse(&given.value)
            .map_err(|why| self.push(given.line, field, why))
            .ok()
    }
}
