//! A camera's `tls:` mapping (`verify:`, `fingerprint:`), read for its shape only.

use super::super::tree::Node;
use super::values::Shape;
use super::{join, Field};

pub(crate) const CAMERA_TLS_KEYS: &[&str] = &["verify", "fingerprint"];

#[derive(Debug, Default)]
pub(crate) struct RawCameraTls {
    /// Line of the `tls:` key, for problems about the combination.
    pub line: Option<usize>,
    pub verify: Field<bool>,
    pub fingerprint: Field<String>,
}

impl Shape<'_> {
    pub(super) fn camera_tls(&mut self, node: &Node, line: usize, field: &str) -> RawCameraTls {
        let mut tls = RawCameraTls {
            line: Some(line),
            ..RawCameraTls::default()
        };
        let expected = "a mapping such as {fingerprint: \"sha256:AB:CD:…\"} or {verify: false}";
        if !self.is_mapping(node, line, field, expected) {
            return tls;
        }
        for (key, entry) in self.known_entries(node, field, CAMERA_TLS_KEYS) {
            let (line, value, path) = (entry.key.line, &entry.value, join(field, &key));
            match key.as_str() {
                "verify" => tls.verify = self.boolean(value, line, &path),
                "fingerprint" => {
                    tls.fingerprint =
                        self.text(value, line, &path, "a fingerprint such as \"sha256:AB:CD:…\"")
                }
                _ => {}
            }
        }
        tls
    }
}
