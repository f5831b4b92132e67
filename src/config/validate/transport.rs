//! A stream's `transport:` (RTSP only), the fleet's default for it, and whether a stream's
//! template is detected.

use super::super::raw::{Field, RawStream};
use super::super::transport::{detects_template, StreamTransport};
use super::Check;
use crate::url::CameraUrl;

impl Check<'_> {
    /// The top-level `transport:` (default `auto`): every RTSP stream without its own takes it.
    pub(super) fn fleet_transport(&mut self, raw: &Field<String>) -> StreamTransport {
        let Field::Given(given) = raw else {
            return StreamTransport::Auto;
        };
        StreamTransport::parse(&given.value).unwrap_or_else(|why| {
            self.push(given.line, "transport", why);
            StreamTransport::Auto
        })
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
        let Field::Given(given) = &raw.transport else {
            let rtsp = scheme.is_some_and(|s| matches!(s.as_str(), "rtsp" | "rtsps"));
            return (if rtsp { fleet } else { StreamTransport::Auto }, detect);
        };
        let transport = match StreamTransport::parse(&given.value) {
            Ok(transport) => transport,
            Err(why) => {
                self.push(given.line, &raw.path("transport"), why);
                return (StreamTransport::Auto, detect);
            }
        };
        if let Some(scheme) = scheme.filter(|s| !matches!(s.as_str(), "rtsp" | "rtsps")) {
            self.push(
                given.line,
                &raw.path("transport"),
                format!("only RTSP streams have a transport to choose; this one is {scheme}://"),
            );
        }
        (transport, detect)
    }
}
