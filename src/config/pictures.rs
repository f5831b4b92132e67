//! The `pictures:` section: how the monitor keeps the last clean picture of each stream (a small
//! JPEG from its own probes) for the dashboard's wall and the stream page.

use std::time::Duration;

pub const DEFAULT_PICTURES_EVERY_SECONDS: u64 = 60;
/// Below this a picture would be written on nearly every probe of a fast heartbeat.
pub const MIN_PICTURES_EVERY_SECONDS: u64 = 5;
pub const DEFAULT_PICTURES_WIDTH: u32 = 320;
pub const MIN_PICTURES_WIDTH: u32 = 64;
pub const MAX_PICTURES_WIDTH: u32 = 1280;
pub const DEFAULT_PICTURES_QUALITY: u8 = 70;

/// `pictures:`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PicturesConfig {
    pub enabled: bool,
    /// A stream's picture is rewritten at most this often (and only when it changed).
    pub every: Duration,
    /// Largest width in pixels; the aspect ratio is kept and nothing is upscaled.
    pub width: u32,
    /// JPEG quality, 1–100.
    pub quality: u8,
}

impl Default for PicturesConfig {
    fn default() -> Self {
        PicturesConfig {
            enabled: true,
            every: Duration::from_secs(DEFAULT_PICTURES_EVERY_SECONDS),
            width: DEFAULT_PICTURES_WIDTH,
            quality: DEFAULT_PICTURES_QUALITY,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, ConfigError};
    use proptest::prelude::*;
    use std::path::Path;

    fn read(section: &str) -> Result<super::PicturesConfig, Vec<(Option<usize>, String, String)>> {
        let text = format!("streams: []\npictures:\n{section}");
        match parse(&text, Path::new("/etc/streampulse/config.yaml")) {
            Ok(config) => Ok(config.pictures),
            Err(ConfigError::Invalid { problems, .. }) => Err(problems
                .into_iter()
                .map(|p| (p.line, p.field, p.message))
                .collect()),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn defaults_and_given_values() {
        let config = parse("streams: []\n", Path::new("/tmp/c.yaml")).unwrap();
        assert_eq!(config.pictures, super::PicturesConfig::default());
        let given = read("  enabled: false\n  every_seconds: 30\n  width: 640\n  quality: 85\n").unwrap();
        assert!(!given.enabled);
        assert_eq!(given.every.as_secs(), 30);
        assert_eq!((given.width, given.quality), (640, 85));
    }

    #[test]
    fn wrong_values_name_line_and_field() {
        let problems =
            read("  every_seconds: 2\n  width: 4000\n  quality: 0\n  enabeld: true\n").unwrap_err();
        let fields: Vec<(Option<usize>, &str)> = problems.iter().map(|(l, f, _)| (*l, f.as_str())).collect();
        assert_eq!(
            fields,
            vec![
                (Some(3), "pictures.every_seconds"),
                (Some(4), "pictures.width"),
                (Some(5), "pictures.quality"),
                (Some(6), "pictures.enabeld"),
            ]
        );
        assert!(problems[0].2.contains("at least 5"), "{problems:?}");
        assert!(problems[3].2.contains("did you mean \"enabled\""), "{problems:?}");
        let problems = read("  width: wide\n").unwrap_err();
        assert_eq!(problems[0].1, "pictures.width");
        let problems = parse("pictures: yes\n", Path::new("/tmp/c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(problems.contains("pictures"), "{problems}");
    }

    proptest! {
        #[test]
        fn any_number_is_accepted_in_range_or_refused_with_its_field(
            every in -10i64..100_000, width in -10i64..3000, quality in -5i64..120
        ) {
            let result = read(&format!("  every_seconds: {every}\n  width: {width}\n  quality: {quality}\n"));
            let every_ok = every >= 5;
            let width_ok = (64..=1280).contains(&width);
            let quality_ok = (1..=100).contains(&quality);
            match result {
                Ok(pictures) => {
                    prop_assert!(every_ok && width_ok && quality_ok);
                    prop_assert_eq!(pictures.every.as_secs() as i64, every);
                    prop_assert_eq!(i64::from(pictures.width), width);
                    prop_assert_eq!(i64::from(pictures.quality), quality);
                }
                Err(problems) => {
                    let fields: Vec<&str> = problems.iter().map(|(_, f, _)| f.as_str()).collect();
                    prop_assert_eq!(fields.contains(&"pictures.every_seconds"), !every_ok);
                    prop_assert_eq!(fields.contains(&"pictures.width"), !width_ok);
                    prop_assert_eq!(fields.contains(&"pictures.quality"), !quality_ok);
                }
            }
        }

        #[test]
        fn no_text_value_panics_the_reader(text in "\\PC{0,12}") {
            let quoted = text.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = read(&format!("  every_seconds: \"{quoted}\"\n  width: \"{quoted}\"\n"));
        }
    }
}
