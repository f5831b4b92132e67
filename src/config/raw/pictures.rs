//! The `pictures:` section: the last pictures the monitor keeps for the dashboard.

use super::super::tree::Node;
use super::values::Shape;
use super::{join, Field};

pub(crate) const PICTURES_KEYS: &[&str] = &["enabled", "every_seconds", "width", "quality"];

#[derive(Debug, Default)]
pub(crate) struct RawPictures {
    pub enabled: Field<bool>,
    pub every_seconds: Field<i64>,
    pub width: Field<i64>,
    pub quality: Field<i64>,
}

impl Shape<'_> {
    pub(super) fn pictures(&mut self, node: &Node, line: usize) -> RawPictures {
        let mut pictures = RawPictures::default();
        if !self.is_mapping(
            node,
            line,
            "pictures",
            "a mapping of picture settings (enabled:, every_seconds:, width:, quality:)",
        ) {
            return pictures;
        }
        for (key, entry) in self.known_entries(node, "pictures", PICTURES_KEYS) {
            let line = entry.key.line;
            let value = &entry.value;
            let field = join("pictures", &key);
            match key.as_str() {
                "enabled" => pictures.enabled = self.boolean(value, line, &field),
                "every_seconds" => {
                    pictures.every_seconds = self.whole(value, line, &field, "a whole number of seconds")
                }
                "width" => pictures.width = self.whole(value, line, &field, "a width in pixels"),
                "quality" => {
                    pictures.quality = self.whole(value, line, &field, "a JPEG quality from 1 to 100")
                }
                _ => {}
            }
        }
        pictures
    }
}
