//! The config loader's unit tests (file, line and field of every problem).

use super::*;

const V1: &str = "heartbeat_seconds: 15
timezone: Asia/Kolkata
streams:
  - name: GateCamera
    url: rtsp://user:pass@192.168.1.1:554/stream1
  - name: LabCam1
    url: http://192.168.1.1:9081
";

fn ok(text: &str) -> Config {
    match parse(text, Path::new("/etc/streampulse/streampulse.yaml")) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(text, Path::new("/etc/streampulse/streampulse.yaml")) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

fn lines_and_fields(problems: &[Problem]) -> Vec<(Option<usize>, String)> {
    problems.iter().map(|p| (p.line, p.field.clone())).collect()
}

#[test]
fn v1_file_loads_with_defaults() {
    let config = ok(V1);
    assert_eq!(config.heartbeat, Duration::from_secs(15));
    assert_eq!(config.timezone_name, "Asia/Kolkata");
    assert_eq!(config.probe_timeout, Duration::from_secs(10));
    assert_eq!(config.ntp_server, DEFAULT_NTP_SERVER);
    assert_eq!(config.ntp_interval, Duration::from_secs(3600));
    assert_eq!(config.max_concurrent_probes, 32);
    assert_eq!(config.database, PathBuf::from("/etc/streampulse/streams.db"));
    assert_eq!(config.pipelines_dir, None);
    assert_eq!(config.retention, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(config.web, WebConfig::default());
    let names: Vec<&str> = config.streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["GateCamera", "LabCam1"]);
    let gate = &config.streams[0];
    assert_eq!(
        gate.url.as_ref().map(CameraUrl::expose),
        Some("rtsp://user:pass@192.168.1.1:554/stream1")
    );
    assert_eq!(
        (gate.pipeline.as_str(), gate.enabled, gate.id.as_deref()),
        ("rtsp", true, None)
    );
    assert_eq!(config.streams[1].pipeline, "mjpeg");
    assert_eq!(config.streams[1].probe_timeout, Duration::from_secs(10));
}

#[test]
fn default_timeout_is_eighty_percent_of_a_short_heartbeat() {
    assert_eq!(
        default_probe_timeout(Duration::from_secs(15)),
        Duration::from_secs(10)
    );
    assert_eq!(
        default_probe_timeout(Duration::from_secs(10)),
        Duration::from_secs(8)
    );
    assert_eq!(
        default_probe_timeout(Duration::from_secs(5)),
        Duration::from_secs(4)
    );
    let config =
        ok("heartbeat_seconds: 5\nstreams:\n  - name: a\n    url: rtsp://h/\n    heartbeat_seconds: 60\n");
    assert_eq!(config.probe_timeout, Duration::from_secs(4));
    // The stream's own heartbeat sets its default timeout, not the top-level one.
    assert_eq!(config.streams[0].probe_timeout, Duration::from_secs(10));
}

#[test]
fn timeouts_must_be_shorter_than_heartbeats_where_they_apply() {
    let found = problems(
            "heartbeat_seconds: 10\nprobe_timeout_seconds: 10\nstreams:\n  - name: a\n    url: rtsp://h/\n    \
             heartbeat_seconds: 5\n    probe_timeout_seconds: 2\n  - name: b\n    url: rtsp://h/\n    heartbeat_seconds: 8\n  \
             - name: c\n    url: rtsp://h/\n    probe_timeout_seconds: 12.5\n",
        );
    assert_eq!(
        lines_and_fields(&found),
        vec![
            (Some(2), "probe_timeout_seconds".into()),
            (Some(10), "streams[1].heartbeat_seconds".into()),
            (Some(13), "streams[2].probe_timeout_seconds".into()),
        ]
    );
    assert_eq!(
        found[0].message,
        "probe timeout (10 s) must be shorter than the heartbeat (10 s)"
    );
    assert_eq!(
        found[2].message,
        "probe timeout (12.5 s) must be shorter than the heartbeat (10 s, the top-level heartbeat_seconds)"
    );
}

#[test]
fn zero_and_negative_durations_are_refused() {
    let found = problems(
        "heartbeat_seconds: 0\nprobe_timeout_seconds: -1\nmax_concurrent_probes: 0\nretention_days: -2\n\
             web:\n  session_idle_minutes: 0\n",
    );
    assert_eq!(
        lines_and_fields(&found),
        vec![
            (Some(1), "heartbeat_seconds".into()),
            (Some(2), "probe_timeout_seconds".into()),
            (Some(3), "max_concurrent_probes".into()),
            (Some(4), "retention_days".into()),
            (Some(6), "web.session_idle_minutes".into()),
        ]
    );
}

#[test]
fn retention_zero_keeps_forever_and_web_settings_apply() {
    let config = ok(
        "retention_days: 0\nweb:\n  listen: \"[::]:9000\"\n  metrics_public: true\n  \
             behind_tls: true\n  session_idle_minutes: 15\n  session_max_hours: 12\n  \
             trusted_proxies: [127.0.0.1, \"::1\"]\n",
    );
    assert_eq!(config.retention, None);
    assert_eq!(
        config.web,
        WebConfig {
            listen: "[::]:9000".into(),
            metrics_public: true,
            behind_tls: true,
            session_idle: Duration::from_secs(15 * 60),
            session_max: Duration::from_secs(12 * 3600),
            trusted_proxies: vec![
                std::net::IpAddr::from([127, 0, 0, 1]),
                std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ],
            ..WebConfig::default()
        }
    );
    assert!(config.streams.is_empty());
}

#[test]
fn disk_full_buffer_defaults_to_ten_minutes_and_zero_disables_it() {
    assert_eq!(
        ok("heartbeat_seconds: 15\n").disk_full_buffer,
        Some(Duration::from_secs(600))
    );
    assert_eq!(
        ok("disk_full_buffer_minutes: 30\n").disk_full_buffer,
        Some(Duration::from_secs(1800))
    );
    assert_eq!(ok("disk_full_buffer_minutes: 0\n").disk_full_buffer, None);
    let found = problems("disk_full_buffer_minutes: -1\n");
    assert_eq!(
        lines_and_fields(&found),
        vec![(Some(1), "disk_full_buffer_minutes".into())]
    );
    let found = problems("disk_full_buffer_minutes: 2.5\n");
    assert_eq!(
        lines_and_fields(&found),
        vec![(Some(1), "disk_full_buffer_minutes".into())]
    );
}

#[test]
fn duplicate_names_and_ids_report_every_line() {
    let found = problems(
            "streams:\n  - name: Gate\n    id: g\n    url: rtsp://h/1\n  - name: Yard\n    id: g\n    url: rtsp://h/2\n  \
             - name: Gate\n    url: rtsp://h/3\n",
        );
    assert_eq!(
        lines_and_fields(&found),
        vec![
            (Some(2), "streams[0].name".into()),
            (Some(3), "streams[0].id".into()),
            (Some(6), "streams[1].id".into()),
            (Some(8), "streams[2].name".into()),
        ]
    );
    assert_eq!(
        found[0].message,
        "stream name \"Gate\" is also used by streams[2] (line 8)"
    );
    assert_eq!(
        found[3].message,
        "stream name \"Gate\" is also used by streams[0] (line 2)"
    );
}

#[test]
fn names_must_be_printable_and_short() {
    let long = "x".repeat(MAX_NAME_CHARS + 1);
    let text = format!(
        "streams:\n  - name: \"\"\n    url: rtsp://h/\n  - name: \"a\\tb\"\n    url: rtsp://h/\n  \
             - name: {long}\n    url: rtsp://h/\n  - url: rtsp://h/\n"
    );
    let found = problems(&text);
    assert_eq!(
        lines_and_fields(&found),
        vec![
            (Some(2), "streams[0].name".into()),
            (Some(4), "streams[1].name".into()),
            (Some(6), "streams[2].name".into()),
            (Some(8), "streams[3].name".into()),
        ]
    );
    assert_eq!(
        found[1].message,
        "name \"a\\tb\" contains control characters (tabs, newlines, ...)"
    );
    assert_eq!(found[3].message, "every camera needs a name");
}

#[test]
fn urls_are_required_and_checked_without_quoting_them() {
    let found = problems(
        "streams:\n  - name: a\n  - name: b\n    url: ftp://admin:hunter2@h/\n  - name: c\n    \
             url: admin:hunter2@cam\n  - name: d\n    url: \"rtsp://admin:hunter2@:554/\"\n  - name: e\n    \
             pipeline: rtsp\n",
    );
    assert_eq!(
        lines_and_fields(&found),
        vec![
            (Some(2), "streams[0].url".into()),
            (Some(4), "streams[1].url".into()),
            (Some(6), "streams[2].url".into()),
            (Some(8), "streams[3].url".into()),
            (Some(9), "streams[4].url".into()),
        ]
    );
    let messages: Vec<&str> = found.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "every camera needs a url",
            "unsupported URL scheme \"ftp\"; expected rtsp://, rtsps://, http:// or https://",
            "not a URL: it has no scheme; expected rtsp://, rtsps://, http:// or https://",
            "the URL has no host",
            "missing url: template \"rtsp\" uses {location}",
        ]
    );
}

#[test]
fn unknown_timezone_and_template_get_suggestions() {
    let found =
        problems("timezone: Asia/Kolkatta\nstreams:\n  - name: a\n    url: rtsp://h/\n    pipeline: rtps\n");
    assert_eq!(
        found[0].message,
        "unknown timezone \"Asia/Kolkatta\"; did you mean \"Asia/Kolkata\"?"
    );
    assert_eq!(found[1].field, "streams[0].pipeline");
    assert_eq!(
        found[1].message,
        "unknown pipeline template \"rtps\"; did you mean \"rtsp\"?"
    );
}

#[test]
fn empty_file_is_one_clear_problem() {
    let err = parse("# nothing here yet\n", Path::new("cams.yaml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cams.yaml has 1 problem:\n  cams.yaml:1: the file is empty; expected settings such as \
             `heartbeat_seconds:` and a `streams:` list"
    );
}

#[test]
fn syntax_error_names_its_line() {
    let err = parse("streams:\n  - name: a\n   url: x\n", Path::new("cams.yaml")).unwrap_err();
    let ConfigError::Invalid { problems, .. } = err else {
        panic!("not Invalid")
    };
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, Some(3));
    assert!(
        problems[0].message.starts_with("YAML syntax error"),
        "{}",
        problems[0].message
    );
}

#[test]
fn problems_print_with_file_line_and_field() {
    let problem = Problem {
        line: Some(4),
        field: "streams[0].url".into(),
        message: "bad".into(),
    };
    assert_eq!(problem.to_string(), "line 4: streams[0].url: bad");
    assert_eq!(
        format_problems(Path::new("c.yaml"), &[problem]),
        "c.yaml has 1 problem:\n  c.yaml:4: streams[0].url: bad"
    );
}

#[test]
fn fingerprint_ignores_credentials_and_differs_per_location() {
    let with_password = CameraUrl::new("rtsp://user:pass@cam.example:554/stream1");
    let other_password = CameraUrl::new("rtsp://user:other@cam.example:554/stream1");
    let other_path = CameraUrl::new("rtsp://user:pass@cam.example:554/stream2");
    let fingerprint = stream_identity_fingerprint(&with_password);
    assert_eq!(fingerprint.len(), 64);
    assert!(!fingerprint.contains("pass"));
    assert_eq!(fingerprint, stream_identity_fingerprint(&other_password));
    assert_ne!(fingerprint, stream_identity_fingerprint(&other_path));
}

#[test]
fn a_top_level_transport_is_every_rtsp_streams_default() {
    let config = ok("transport: TCP
streams:
  - name: Gate
    url: rtsp://127.0.0.1/gate
  - name: Lab
    url: rtsps://127.0.0.1/lab
    transport: udp
  - name: Yard
    url: http://127.0.0.1:8080/video.mjpg
");
    let transports: Vec<_> = config
        .streams
        .iter()
        .map(|s| (s.name.as_str(), s.transport))
        .collect();
    assert_eq!(
        transports,
        [
            ("Gate", StreamTransport::Tcp),
            ("Lab", StreamTransport::Udp),
            // Not RTSP: nothing to choose, and no error for a fleet-wide setting.
            ("Yard", StreamTransport::Auto),
        ]
    );
    assert_eq!(ok(V1).streams[0].transport, StreamTransport::Auto);
}

#[test]
fn a_top_level_transport_that_is_no_transport_names_its_line() {
    let found = problems(
        "heartbeat_seconds: 15\ntransport: quic\nstreams:\n  - name: Gate\n    url: rtsp://127.0.0.1/gate\n",
    );
    assert_eq!(lines_and_fields(&found), [(Some(2), "transport".to_string())]);
    assert!(found[0].message.contains("udp, tcp or auto"), "{found:?}");
}
