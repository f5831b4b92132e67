//! The config file as a user meets it: fixture files in `tests/data/config/`, loaded through the
//! public API, with the exact problems (line, field, message) a user would be shown.

use std::path::{Path, PathBuf};
use std::time::Duration;
use streampulse::config::{self, Config, ConfigError, Problem, WebConfig};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/config")
        .join(name)
}

fn load_ok(name: &str) -> Config {
    match config::load(&fixture(name)) {
        Ok(config) => config,
        Err(e) => panic!("{name} should load:\n{e}"),
    }
}

fn load_problems(name: &str) -> (ConfigError, Vec<Problem>) {
    match config::load(&fixture(name)) {
        Err(ConfigError::Invalid { path, problems }) => {
            assert_eq!(path, fixture(name));
            (
                ConfigError::Invalid {
                    path,
                    problems: problems.clone(),
                },
                problems,
            )
        }
        Err(other) => panic!("{name}: expected Invalid, got {other}"),
        Ok(_) => panic!("{name} should not load"),
    }
}

fn triples(problems: &[Problem]) -> Vec<(Option<usize>, &str, &str)> {
    problems
        .iter()
        .map(|p| (p.line, p.field.as_str(), p.message.as_str()))
        .collect()
}

#[test]
fn v1_file_loads_unchanged() {
    let config = load_ok("v1.yaml");
    assert_eq!(config.path, fixture("v1.yaml"));
    assert_eq!(config.heartbeat, Duration::from_secs(15));
    assert_eq!(config.timezone_name, "Asia/Kolkata");
    let streams: Vec<(&str, Option<&str>, &str, bool)> = config
        .streams
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.url.as_ref().map(|u| u.expose()),
                s.pipeline.as_str(),
                s.enabled,
            )
        })
        .collect();
    assert_eq!(
        streams,
        vec![
            (
                "GateCamera",
                Some("rtsp://user:pass@192.168.1.1:554/stream1"),
                "rtsp",
                true
            ),
            ("LabCam1", Some("http://192.168.1.1:9081"), "mjpeg", true),
        ]
    );
}

#[test]
fn v1_file_gets_the_documented_defaults() {
    let config = load_ok("v1.yaml");
    assert_eq!(config.ntp_server, "pool.ntp.org");
    assert_eq!(config.ntp_interval, Duration::from_secs(3600));
    assert_eq!(config.probe_timeout, Duration::from_secs(10));
    assert_eq!(config.max_concurrent_probes, 32);
    assert_eq!(config.database, fixture("streams.db"));
    assert_eq!(config.pipelines_dir, None);
    assert_eq!(config.retention, Some(Duration::from_secs(30 * 24 * 3600)));
    assert_eq!(config.web, WebConfig::default());
    assert_eq!(config.web.listen, "127.0.0.1:8000");
    assert_eq!(config.web.session_idle, Duration::from_secs(60 * 60));
    assert_eq!(config.web.session_max, Duration::from_secs(7 * 24 * 3600));
    for stream in &config.streams {
        assert_eq!(
            (stream.heartbeat, stream.probe_timeout),
            (config.heartbeat, config.probe_timeout)
        );
        assert_eq!(stream.id, None);
        assert!(stream.params.is_empty());
    }
}

#[test]
fn every_setting_and_per_stream_override_applies() {
    let config = load_ok("overrides.yaml");
    assert_eq!(config.heartbeat, Duration::from_secs(30));
    assert_eq!(config.timezone_name, "Europe/Berlin");
    assert_eq!(config.ntp_server, "time.example.org:1123");
    assert_eq!(config.ntp_interval, Duration::from_secs(600));
    assert_eq!(config.probe_timeout, Duration::from_millis(7500));
    assert_eq!(config.max_concurrent_probes, 4);
    assert_eq!(config.database, fixture("data/heartbeats.db"));
    assert_eq!(config.pipelines_dir, Some(fixture("pipelines")));
    assert_eq!(config.retention, Some(Duration::from_secs(90 * 24 * 3600)));
    assert_eq!(
        config.web,
        WebConfig {
            listen: "0.0.0.0:8080".into(),
            metrics_public: true,
            behind_tls: true,
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(48 * 3600),
            trusted_proxies: vec!["127.0.0.1".parse().expect("ip"), "::1".parse().expect("ip")],
            ..WebConfig::default()
        }
    );

    let gate = &config.streams[0];
    assert_eq!(
        (gate.id.as_deref(), gate.pipeline.as_str()),
        (Some("gate"), "rtsp")
    );
    assert_eq!(
        (gate.heartbeat, gate.probe_timeout),
        (Duration::from_secs(60), Duration::from_secs(20))
    );

    let lab = &config.streams[1];
    assert!(!lab.enabled);
    assert_eq!(lab.pipeline, "mjpeg");
    // Own heartbeat, top-level timeout.
    assert_eq!(
        (lab.heartbeat, lab.probe_timeout),
        (Duration::from_secs(10), Duration::from_millis(7500))
    );

    // A user template without {url} or {location}: no url needed; params kept as written.
    let desk = &config.streams[2];
    assert_eq!((desk.url.as_ref(), desk.pipeline.as_str()), (None, "usbcam"));
    let params: Vec<(&str, &str)> = desk
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(params, [("device", "/dev/video0"), ("fps", "10.50")]);
}

#[test]
fn every_mistake_is_reported_with_its_line_and_field() {
    let (_, problems) = load_problems("many_mistakes.yaml");
    let schemes = "expected rtsp://, rtsps://, http:// or https://";
    let ftp = format!("unsupported URL scheme \"ftp\"; {schemes}");
    let stream_keys =
        "name, url, id, enabled, heartbeat_seconds, probe_timeout_seconds, pipeline, transport, params, \
                       sample_seconds, quality, expect, alerts, maintenance, tls, onvif, max_clock_skew";
    let colour = format!("unknown key \"colour\" in streams[4]; known keys: {stream_keys}");
    assert_eq!(
        triples(&problems),
        vec![
            (Some(2), "heartbeat_seconds", "expected a whole number of seconds, found the text \"abc\""),
            (Some(3), "timezone", "unknown timezone \"Europe/Berln\"; did you mean \"Europe/Berlin\"?"),
            (Some(4), "probe_timeout_seconds", "must be more than 0"),
            (
                Some(5),
                "max_concurent_probes",
                "unknown key \"max_concurent_probes\" at the top level; did you mean \"max_concurrent_probes\"?",
            ),
            (Some(7), "web.listen", "expected an address such as 127.0.0.1:8000, found 8000"),
            (Some(8), "web.metrics_public", "expected true or false, found the text \"yes\" (write true or false)"),
            (Some(10), "streams[0].name", "stream name \"GateCamera\" is also used by streams[1] (line 12)"),
            (Some(12), "streams[1].name", "stream name \"GateCamera\" is also used by streams[0] (line 10)"),
            (Some(13), "streams[1].url", ftp.as_str()),
            (Some(14), "streams[2].name", "name is empty"),
            (Some(16), "streams[2].enabled", "expected true or false, found the text \"maybe\""),
            (
                Some(18),
                "streams[3].pipeline",
                "unknown pipeline template \"nosuchtemplate\"; available: hls, http-h264, libcamera, mjpeg, rtsp, \
                 rtsp-h264-v4l2, rtsp-h265, rtsp-nodecode, rtsp-tcp, rtsp-udp, snapshot, v4l2",
            ),
            (Some(22), "streams[4].probe_timeout_seconds", "probe timeout (6 s) must be shorter than the heartbeat (5 s)"),
            (Some(24), "streams[4].colour", colour.as_str()),
            (Some(25), "streams[5].url", "every camera needs a url"),
        ]
    );
}

#[test]
fn passwords_in_bad_urls_never_reach_the_error_text() {
    for name in ["secret_urls.yaml", "many_mistakes.yaml"] {
        let (error, problems) = load_problems(name);
        let shown = format!("{error}\n{error:?}");
        assert!(!shown.contains("s3cret"), "{name} leaks a password:\n{shown}");
        assert!(!problems.is_empty());
    }
    let (_, problems) = load_problems("secret_urls.yaml");
    let schemes = "expected rtsp://, rtsps://, http:// or https://";
    let ftp = format!("unsupported URL scheme \"ftp\"; {schemes}");
    let no_scheme = format!("not a URL: it has no scheme; {schemes}");
    assert_eq!(
        triples(&problems),
        vec![
            (
                Some(2),
                "heartbeat_seconds",
                "expected a whole number of seconds, found a URL"
            ),
            (Some(5), "streams[0].url", ftp.as_str()),
            (Some(7), "streams[1].url", no_scheme.as_str()),
            // streams[2] (line 9) has a raw '/' in its password: a valid URL, and still redacted.
            (Some(11), "streams[3].url", "the URL's host or port is malformed"),
            (
                Some(13),
                "streams[4].url",
                "expected a URL such as rtsp://host/path, found a list"
            ),
            (Some(14), "streams[5].url", "every camera needs a url"),
            (
                Some(15),
                "streams[5].uri",
                "unknown key \"uri\" in streams[5]; did you mean \"url\"?"
            ),
        ]
    );
}

#[test]
fn empty_file_is_an_error_that_says_so() {
    let (error, problems) = load_problems("empty.yaml");
    assert_eq!(problems.len(), 1);
    let path = fixture("empty.yaml");
    assert_eq!(
        error.to_string(),
        format!(
            "{0} has 1 problem:\n  {0}:1: the file is empty; expected settings such as `heartbeat_seconds:` \
             and a `streams:` list",
            path.display()
        )
    );
}

#[test]
fn missing_file_is_a_read_error() {
    match config::load(&fixture("no-such-file.yaml")) {
        Err(ConfigError::Read { path, source }) => {
            assert_eq!(path, fixture("no-such-file.yaml"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn parse_validates_text_as_if_it_were_the_file() {
    // What the web editor does before writing: relative paths resolve against the target file.
    let text = std::fs::read_to_string(fixture("overrides.yaml")).expect("fixture is readable");
    let config = config::parse(&text, &fixture("overrides.yaml")).expect("fixture is valid");
    assert_eq!(config.pipelines_dir, Some(fixture("pipelines")));
    let elsewhere = Path::new("/nonexistent/streampulse.yaml");
    let (line, message) = match config::parse(&text, elsewhere) {
        Err(ConfigError::Invalid { problems, .. }) => (problems[0].line, problems[0].message.clone()),
        other => panic!("expected problems, got {other:?}"),
    };
    assert_eq!(line, Some(9));
    assert_eq!(message, "/nonexistent/pipelines is not a directory");
}

#[test]
fn self_check_url_must_be_http_with_a_host_and_its_secret_path_stays_out_of_errors() {
    let path = Path::new("/etc/streampulse/config.yaml");
    let base = "ntp_server: 127.0.0.1:9\nstreams:\n  - {name: Door, url: rtsp://127.0.0.1:9/x}\n";
    let good = format!("{base}self_check_url: https://hc-ping.com/5bf66975-secret\n");
    let config = config::parse(&good, path).expect("a ping URL");
    assert_eq!(
        config.self_check_url.map(|url| url.expose().to_string()),
        Some("https://hc-ping.com/5bf66975-secret".to_string())
    );
    for bad in [
        "ftp://hc-ping.com/5bf66975-secret",
        "hc-ping.com/5bf66975-secret",
        "http:///5bf66975-secret",
    ] {
        let text = format!("{base}self_check_url: {bad}\n");
        match config::parse(&text, path) {
            Err(ConfigError::Invalid { problems, .. }) => {
                assert_eq!(
                    triples(&problems),
                    vec![(
                        Some(4),
                        "self_check_url",
                        "must be an http:// or https:// URL with a host"
                    )],
                    "{bad}"
                );
            }
            other => panic!("{bad}: expected a problem, got {other:?}"),
        }
    }
}
