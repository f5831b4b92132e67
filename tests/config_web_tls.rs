//! `web.tls` and the connection limits in the config file: the shapes accepted, the PEM files
//! checked when the config is (unreadable, no certificate, key not matching), every problem with
//! its line and field.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use streampulse::config::{self, ConfigError, Problem, WebTls};

fn parse(dir: &Path, web: &str) -> Result<config::Config, ConfigError> {
    config::parse(
        &format!("heartbeat_seconds: 15\nweb:\n{web}"),
        &dir.join("config.yaml"),
    )
}

fn problems(dir: &Path, web: &str) -> Vec<Problem> {
    match parse(dir, web) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("expected problems, got {other}"),
        Ok(config) => panic!("expected problems, got {:?}", config.web),
    }
}

fn line_and_field(problems: &[Problem]) -> Vec<(Option<usize>, String)> {
    problems.iter().map(|p| (p.line, p.field.clone())).collect()
}

/// A matching pair `name.crt` / `name.key` in `dir`.
fn pair(dir: &Path, name: &str) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("generate");
    std::fs::write(dir.join(format!("{name}.crt")), made.cert.pem()).expect("cert");
    std::fs::write(dir.join(format!("{name}.key")), made.signing_key.serialize_pem()).expect("key");
}

#[test]
fn files_and_self_signed_are_accepted_and_tls_is_off_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    pair(dir.path(), "site");
    let config = parse(dir.path(), "  tls:\n    cert: site.crt\n    key: site.key\n").expect("valid");
    assert_eq!(
        config.web.tls,
        WebTls::Files {
            cert: dir.path().join("site.crt"),
            key: dir.path().join("site.key"),
        },
        "relative to the config file's folder"
    );
    let config = parse(dir.path(), "  tls: self_signed\n").expect("valid");
    assert_eq!(config.web.tls, WebTls::SelfSigned);
    let config = parse(dir.path(), "  listen: 127.0.0.1:8000\n").expect("valid");
    assert_eq!(config.web.tls, WebTls::Off);
    assert_eq!(config.web.max_connections, 512);
    assert_eq!(config.web.max_connections_per_client, 64);
    assert_eq!(config.web.header_timeout, Duration::from_secs(10));
}

#[test]
fn bad_files_are_refused_on_the_line_of_the_file_at_fault() {
    let dir = tempfile::tempdir().expect("tempdir");
    pair(dir.path(), "a");
    pair(dir.path(), "b");
    std::fs::write(dir.path().join("empty.pem"), "").expect("write");

    let found = problems(dir.path(), "  tls:\n    cert: missing.crt\n    key: a.key\n");
    assert_eq!(line_and_field(&found), vec![(Some(4), "web.tls.cert".into())]);
    assert!(
        found[0].message.starts_with("cannot read "),
        "{}",
        found[0].message
    );
    assert!(found[0].message.contains("missing.crt"), "{}", found[0].message);

    let found = problems(dir.path(), "  tls:\n    cert: empty.pem\n    key: a.key\n");
    assert_eq!(line_and_field(&found), vec![(Some(4), "web.tls.cert".into())]);
    assert!(
        found[0].message.contains("holds no PEM certificate"),
        "{}",
        found[0].message
    );

    let found = problems(dir.path(), "  tls:\n    cert: a.crt\n    key: a.crt\n");
    assert_eq!(line_and_field(&found), vec![(Some(5), "web.tls.key".into())]);
    assert!(
        found[0].message.contains("holds no PEM private key"),
        "{}",
        found[0].message
    );

    let found = problems(dir.path(), "  tls:\n    cert: a.crt\n    key: b.key\n");
    assert_eq!(line_and_field(&found), vec![(Some(5), "web.tls.key".into())]);
    assert!(
        found[0].message.contains("does not match the certificate"),
        "{}",
        found[0].message
    );

    // The whole-file message names the file and line, like every other config error.
    let Err(error) = parse(dir.path(), "  tls:\n    cert: a.crt\n    key: b.key\n") else {
        panic!("mismatch accepted");
    };
    assert!(
        error
            .to_string()
            .contains("config.yaml:5: web.tls.key: the key in"),
        "{error}"
    );
}

/// The (line, field) of each problem expected.
type Expected = Vec<(Option<usize>, &'static str)>;

#[test]
fn bad_shapes_are_refused_with_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, Expected)] = &[
        ("  tls: true\n", vec![(Some(3), "web.tls")]),
        ("  tls: selfsigned\n", vec![(Some(3), "web.tls")]),
        ("  tls: [a.crt, a.key]\n", vec![(Some(3), "web.tls")]),
        ("  tls:\n    cert: a.crt\n", vec![(Some(3), "web.tls")]),
        ("  tls:\n    key: a.key\n", vec![(Some(3), "web.tls")]),
        (
            "  tls:\n    cert: a.crt\n    key: a.key\n    chain: c.pem\n",
            // The files are missing too: every problem is reported.
            vec![(Some(4), "web.tls.cert"), (Some(6), "web.tls.chain")],
        ),
        (
            "  tls:\n    cert: 12\n    key: \"\"\n",
            vec![(Some(4), "web.tls.cert"), (Some(5), "web.tls.key")],
        ),
        ("  max_connections: 0\n", vec![(Some(3), "web.max_connections")]),
        (
            "  max_connections_per_client: -4\n",
            vec![(Some(3), "web.max_connections_per_client")],
        ),
        (
            "  max_connections: many\n",
            vec![(Some(3), "web.max_connections")],
        ),
        (
            "  header_timeout_seconds: 0\n",
            vec![(Some(3), "web.header_timeout_seconds")],
        ),
    ];
    for (web, expected) in cases {
        let found = problems(dir.path(), web);
        let expected: Vec<(Option<usize>, String)> = expected
            .iter()
            .map(|(line, field)| (*line, field.to_string()))
            .collect();
        assert_eq!(line_and_field(&found), expected, "{web}");
    }
    let found = problems(dir.path(), "  tls: selfsigned\n");
    assert!(
        found[0].message.contains("`self_signed` or a mapping"),
        "{}",
        found[0].message
    );
    let config = parse(
        dir.path(),
        "  max_connections: 100\n  max_connections_per_client: 5\n  header_timeout_seconds: 2.5\n",
    )
    .expect("valid");
    assert_eq!(
        (config.web.max_connections, config.web.max_connections_per_client),
        (100, 5)
    );
    assert_eq!(config.web.header_timeout, Duration::from_millis(2500));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever scalar or small structure is written after `tls:`, the config either has a TLS
    /// mode or is refused with a problem on a line of the `web:` section; it never panics.
    #[test]
    fn any_tls_value_is_accepted_or_refused_with_a_line(
        value in prop_oneof![
            "[a-z_]{0,12}",
            "[ -~]{0,20}".prop_map(|s| format!("{s:?}")),
            (-5i64..5).prop_map(|n| n.to_string()),
            prop::collection::vec("[a-z]{1,6}", 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
            ("[a-z]{1,6}", "[a-z.]{0,8}").prop_map(|(k, v)| format!("{{{k}: {v}}}")),
        ]
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        match parse(dir.path(), &format!("  tls: {value}\n")) {
            Ok(config) => prop_assert!(
                config.web.tls == WebTls::SelfSigned || config.web.tls == WebTls::Off,
                "{value} -> {:?}", config.web.tls
            ),
            Err(ConfigError::Invalid { problems, .. }) => {
                prop_assert!(!problems.is_empty());
                for problem in problems {
                    prop_assert!(matches!(problem.line, Some(1..=4)), "{value}: {problem}");
                }
            }
            Err(other) => prop_assert!(false, "{value}: {other}"),
        }
    }
}
