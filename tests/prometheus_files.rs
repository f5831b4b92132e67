//! The shipped Prometheus alert rules and Grafana dashboard (`packaging/prometheus/`) against
//! what `/metrics` really serves: every StreamPulse metric they query exists (so a rename cannot
//! silently break someone's alerts), the rules are well-formed (and pass `promtool check rules`
//! when `make deps` could fetch promtool), and the dashboard is valid JSON that Grafana imports.

#[path = "web_support/mod.rs"]
mod web_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use streampulse::store::{status_file_path, MonitorStatus, STATUS_FILE_BYTES};
use web_support::Fixture;
use yaml_rust2::YamlLoader;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/prometheus")
        .join(name)
}

/// Metric names in a PromQL expression that belong to StreamPulse (or the process figures).
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("streampulse_") || word.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

/// The metric names a real web server serves, with a site label set.
async fn served_names() -> BTreeSet<String> {
    let fixture = Fixture::new(&format!("site: north\n{}", web_support::standard_config()));
    // The monitor's status file, as a running monitor leaves it: the store series appear.
    let status = MonitorStatus {
        pid: std::process::id(),
        updated_ms: fixture.now_ms(),
        ..MonitorStatus::default()
    };
    let mut bytes = serde_json::to_vec(&status).expect("json");
    bytes.resize(STATUS_FILE_BYTES - 1, b' ');
    bytes.push(b'\n');
    std::fs::write(status_file_path(&fixture.db_path), bytes).expect("write status file");
    let token = fixture.token("tests");
    let text = web_support::body(&fixture.get_with_token("/metrics", &token).await);
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn alert_rules_query_only_metrics_that_exist_and_pass_promtool() {
    let served = served_names().await;
    let text = std::fs::read_to_string(shipped("streampulse-rules.yml")).expect("rules file");
    let documents = YamlLoader::load_from_str(&text).expect("rules are YAML");
    let groups = documents[0]["groups"].as_vec().expect("groups");
    let mut alerts = 0;
    for group in groups {
        for rule in group["rules"].as_vec().expect("rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            let expr = rule["expr"].as_str().expect("an expression");
            assert!(
                rule["annotations"]["summary"].as_str().is_some(),
                "{name}: a summary"
            );
            for metric in metric_names(expr) {
                assert!(
                    served.contains(&metric),
                    "{name} queries {metric}, which /metrics does not serve: {served:?}"
                );
            }
            alerts += 1;
        }
    }
    assert!(alerts >= 5, "{alerts} alerts");

    let promtool = [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/prometheus/usr/bin/promtool"),
        PathBuf::from("/usr/bin/promtool"),
    ]
    .into_iter()
    .find(|path| path.exists());
    match promtool {
        Some(promtool) => {
            let output = std::process::Command::new(promtool)
                .args(["check", "rules"])
                .arg(shipped("streampulse-rules.yml"))
                .output()
                .expect("run promtool");
            assert!(
                output.status.success(),
                "promtool check rules: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        None => {
            eprintln!("promtool not found (make deps extracts it to target/tools): rules checked here only")
        }
    }
}

#[tokio::test]
async fn the_grafana_dashboard_is_valid_json_over_metrics_that_exist() {
    let served = served_names().await;
    let text = std::fs::read_to_string(shipped("streampulse-grafana-dashboard.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(dashboard["uid"], "streampulse-fleet");
    assert!(dashboard["schemaVersion"].as_u64().is_some());
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(variables, ["datasource", "site"]);
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6);
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().expect("a panel id")),
            "unique ids"
        );
        assert!(panel["gridPos"]["w"].as_u64().is_some(), "{panel}");
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("a query");
            assert!(
                expr.contains("site=~\"$site\""),
                "every query follows the site picker: {expr}"
            );
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr}");
            for metric in names {
                assert!(
                    served.contains(&metric),
                    "panel {} queries {metric}, which /metrics does not serve",
                    panel["title"]
                );
            }
        }
    }
}
