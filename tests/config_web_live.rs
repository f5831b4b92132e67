//! The live view's settings in the config file (`web.live_seconds`, `web.live_max_cameras`,
//! `web.live_fps`): defaults, ranges, every problem with its line and field, and any value either
//! accepted within range or refused on its line.

use std::time::Duration;

use proptest::prelude::*;
use streampulse::config::{self, ConfigError, Problem};

fn parse(web: &str) -> Result<config::Config, ConfigError> {
    config::parse(
        &format!("heartbeat_seconds: 15\nweb:\n{web}"),
        std::path::Path::new("/tmp/config.yaml"),
    )
}

fn problems(web: &str) -> Vec<Problem> {
    match parse(web) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("expected problems, got {other}"),
        Ok(config) => panic!("expected problems, got {:?}", config.web),
    }
}

#[test]
fn defaults_and_accepted_values() {
    let config = parse("  listen: 127.0.0.1:8000\n").expect("valid");
    assert_eq!(config.web.live_duration, Duration::from_secs(30));
    assert_eq!(config.web.live_max_cameras, 2);
    assert_eq!(config.web.live_fps, 5);
    let config = parse("  live_seconds: 600\n  live_max_cameras: 0\n  live_fps: 30\n").expect("valid");
    assert_eq!(config.web.live_duration, Duration::from_secs(600));
    assert_eq!(config.web.live_max_cameras, 0, "0 turns the live view off");
    assert_eq!(config.web.live_fps, 30);
    let config = parse("  live_seconds: 1\n  live_fps: 1.0\n").expect("valid");
    assert_eq!(config.web.live_duration, Duration::from_secs(1));
    assert_eq!(config.web.live_fps, 1);
}

#[test]
fn every_bad_value_is_reported_with_its_line_and_field() {
    let found = problems("  live_seconds: 0\n  live_max_cameras: -1\n  live_fps: 31\n  live_secnds: 5\n");
    let at: Vec<(Option<usize>, &str)> = found.iter().map(|p| (p.line, p.field.as_str())).collect();
    assert_eq!(
        at,
        [
            (Some(3), "web.live_seconds"),
            (Some(4), "web.live_max_cameras"),
            (Some(5), "web.live_fps"),
            (Some(6), "web.live_secnds"),
        ]
    );
    assert!(
        found[0].message.contains("between 1 and 600"),
        "{}",
        found[0].message
    );
    assert!(
        found[2].message.contains("between 1 and 30"),
        "{}",
        found[2].message
    );
    assert!(
        found[3].message.contains("live_seconds"),
        "did you mean: {}",
        found[3].message
    );
    let found = problems("  live_seconds: half a minute\n  live_fps: 2.5\n");
    let at: Vec<(Option<usize>, &str)> = found.iter().map(|p| (p.line, p.field.as_str())).collect();
    assert_eq!(at, [(Some(3), "web.live_seconds"), (Some(4), "web.live_fps")]);
    let found = problems("  live_max_cameras: 65\n");
    assert_eq!(found[0].field, "web.live_max_cameras");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever is written after each key, the config either holds a value in range or is
    /// refused with a problem on that key's line; it never panics.
    #[test]
    fn any_live_value_is_in_range_or_refused_on_its_line(
        key in prop_oneof![Just("live_seconds"), Just("live_max_cameras"), Just("live_fps")],
        value in prop_oneof![
            (-1000i64..1000).prop_map(|n| n.to_string()),
            (-1.0e3f64..1.0e3).prop_map(|n| format!("{n}")),
            "[a-z ]{0,10}",
            "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
            prop::collection::vec(0u8..50, 0..3).prop_map(|v| format!("{v:?}")),
        ]
    ) {
        match parse(&format!("  {key}: {value}\n")) {
            Ok(config) => {
                let web = &config.web;
                prop_assert!((1..=600).contains(&web.live_duration.as_secs()), "{value}");
                prop_assert!(web.live_max_cameras <= 64, "{value}");
                prop_assert!((1..=30).contains(&web.live_fps), "{value}");
            }
            Err(ConfigError::Invalid { problems, .. }) => {
                prop_assert!(!problems.is_empty());
                for problem in problems {
                    prop_assert_eq!(problem.line, Some(3), "{}: {}", value, problem);
                    prop_assert_eq!(problem.field, format!("web.{key}"));
                }
            }
            Err(other) => prop_assert!(false, "{value}: {other}"),
        }
    }
}
