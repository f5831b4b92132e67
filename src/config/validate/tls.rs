//! A camera's `tls:`: the fingerprint's spelling, and a combination that means something.

use super::super::camera_tls::{CameraTls, Fingerprint};
use super::super::raw::{Field, RawCameraTls};
use super::Check;
use crate::url::CameraUrl;

impl Check<'_> {
    /// `field` is the stream's `streams[N].tls`; `url` its URL when valid.
    pub(super) fn camera_tls(
        &mut self,
        raw: &RawCameraTls,
        field: &str,
        url: Option<&CameraUrl>,
    ) -> CameraTls {
        let Some(tls_line) = raw.line else {
            return CameraTls::Verify;
        };
        let scheme = url.and_then(CameraUrl::scheme);
        if let Some(plain) = scheme.as_deref().filter(|s| *s == "rtsp" || *s == "http") {
            self.push(
                tls_line,
                field,
                format!("applies to rtsps:// and https:// cameras only; this one uses {plain}://"),
            );
        }
        let pinned = match &raw.fingerprint {
            Field::Given(text) => match Fingerprint::parse(&text.value) {
                Ok(fingerprint) => Some(fingerprint),
                Err(why) => {
                    self.push(text.line, &format!("{field}.fingerprint"), why.to_string());
                    None
                }
            },
            Field::Missing | Field::Invalid => None,
        };
        match (&raw.verify, pinned) {
            (Field::Given(verify), Some(_)) if !verify.value => {
                self.push(
                    verify.line,
                    &format!("{field}.verify"),
                    "verify: false accepts any certificate, a fingerprint accepts only one: \
                     keep the fingerprint (safer) or drop it"
                        .to_string(),
                );
                CameraTls::AcceptAny
            }
            (_, Some(fingerprint)) => CameraTls::Pinned(fingerprint),
            (Field::Given(verify), None) if !verify.value => {
                self.notice(
                    verify.line,
                    &format!("{field}.verify"),
                    "any certificate is accepted: the connection is encrypted but the camera \
                     is not authenticated; pinning its fingerprint is safer"
                        .to_string(),
                );
                CameraTls::AcceptAny
            }
            _ => CameraTls::Verify,
        }
    }
}
