//! The `pictures:` section: ranges of the interval, width and quality.

use std::time::Duration;

use super::super::pictures::{
    PicturesConfig, MAX_PICTURES_WIDTH, MIN_PICTURES_EVERY_SECONDS, MIN_PICTURES_WIDTH,
};
use super::super::raw::{Field, RawPictures};
use super::Check;

impl Check<'_> {
    pub(super) fn pictures(&mut self, raw: &RawPictures) -> PicturesConfig {
        let mut pictures = PicturesConfig::default();
        if let Field::Given(flag) = &raw.enabled {
            pictures.enabled = flag.value;
        }
        if let Field::Given(seconds) = &raw.every_seconds {
            match u64::try_from(seconds.value) {
                Ok(valid) if valid >= MIN_PICTURES_EVERY_SECONDS => {
                    pictures.every = Duration::from_secs(valid)
                }
                _ => self.push(
                    seconds.line,
                    "pictures.every_seconds",
                    format!("must be at least {MIN_PICTURES_EVERY_SECONDS} seconds"),
                ),
            }
        }
        if let Field::Given(width) = &raw.width {
            match u32::try_from(width.value) {
                Ok(valid) if (MIN_PICTURES_WIDTH..=MAX_PICTURES_WIDTH).contains(&valid) => {
                    pictures.width = valid
                }
                _ => self.push(
                    width.line,
                    "pictures.width",
                    format!("must be from {MIN_PICTURES_WIDTH} to {MAX_PICTURES_WIDTH} pixels"),
                ),
            }
        }
        if let Field::Given(quality) = &raw.quality {
            match u8::try_from(quality.value) {
                Ok(valid @ 1..=100) => pictures.quality = valid,
                _ => self.push(
                    quality.line,
                    "pictures.quality",
                    "must be from 1 to 100".to_string(),
                ),
            }
        }
        pictures
    }
}
