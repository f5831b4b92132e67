//! `--log-format json`: the binary's log lines on stderr are one JSON object each, with the
//! timestamp, level, message and fields a log shipper (Loki, Elasticsearch) indexes; and no
//! colour codes when stderr is not a terminal, in either format.

mod common;

use common::{wait_for, RunningChild, TestConfig, TestDir};
use serde_json::Value;
use std::time::Duration;
use streampulse::demo::SntpTestServer;

/// Runs the monitor (no streams) until its database exists, stops it with SIGTERM, and returns
/// what it wrote on stderr.
fn monitor_stderr(args_before: &[&str], env: &[(&str, &str)]) -> String {
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let dir = TestDir::new();
    let config_path = dir.write_config(&TestConfig::new(2, 1.5, sntp.port()));
    let db = dir.db_path();
    let mut args: Vec<&str> = args_before.to_vec();
    args.extend([
        "--config",
        config_path.to_str().expect("a UTF-8 path"),
        "--db",
        db.to_str().expect("a UTF-8 path"),
    ]);
    let mut command = common::command(&args);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut monitor = RunningChild::new(command.spawn().expect("start the streampulse binary"));
    wait_for(Duration::from_secs(10), || db.exists().then_some(()))
        .expect("the monitor creates its database");
    // Past start-up (the first NTP answer is immediate on loopback).
    std::thread::sleep(Duration::from_millis(500));
    monitor.signal(libc::SIGTERM);
    monitor
        .wait_timeout(Duration::from_secs(10))
        .expect("the monitor stops on SIGTERM");
    let (_, stderr) = monitor.output();
    stderr
}

fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{stderr}"))
        })
        .collect()
}

fn line_with<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    lines
        .iter()
        .find(|line| line["message"].as_str().is_some_and(|m| m.contains(message)))
        .unwrap_or_else(|| panic!("no line with {message:?} in {lines:#?}"))
}

#[test]
fn json_format_writes_one_object_per_line_with_level_message_and_fields() {
    let stderr = monitor_stderr(&["monitor", "--log-format", "json"], &[]);
    assert!(!stderr.contains('\u{1b}'), "colour codes in a pipe:\n{stderr}");
    let lines = json_lines(&stderr);
    let start = line_with(&lines, "monitoring 0 stream(s)");
    assert_eq!(start["level"], "INFO", "{start}");
    assert!(
        start["timestamp"].as_str().is_some_and(|t| t.contains('T')),
        "{start}"
    );
    assert!(
        start["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("streampulse")),
        "{start}"
    );
    // Structured fields stay fields, for queries like `probes > 0`.
    let summary = line_with(&lines, "probe summary");
    assert_eq!(summary["probes"], 0, "{summary}");
    assert!(summary["lag_p99_ms"].is_u64(), "{summary}");
}

#[test]
fn the_format_can_come_before_the_subcommand_or_from_the_environment() {
    let stderr = monitor_stderr(&["--log-format=json", "monitor"], &[]);
    line_with(&json_lines(&stderr), "monitoring 0 stream(s)");
    let stderr = monitor_stderr(&["monitor"], &[("STREAMPULSE_LOG_FORMAT", "json")]);
    line_with(&json_lines(&stderr), "all heartbeats written");
}

#[test]
fn text_format_has_no_colour_codes_outside_a_terminal() {
    let stderr = monitor_stderr(&["monitor"], &[]);
    assert!(stderr.contains("monitoring 0 stream(s)"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in a pipe:\n{stderr}");
    assert!(serde_json::from_str::<Value>(stderr.lines().next().unwrap_or("")).is_err());
}
