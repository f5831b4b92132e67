//! The `user` and `token` commands, run as a person or a script would: the real binary, the
//! password on standard input.

use std::io::Write;
use std::process::{Command, Stdio};

use streampulse::store::accounts::{Accounts, TokenScope};

fn streampulse(dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_streampulse"))
        .args(args)
        .args(["--config", "config.yaml"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run streampulse");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[test]
fn users_and_tokens_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("config.yaml"),
        "database: web.db\nstreams:\n  - name: Gate\n    url: rtsp://192.0.2.1/s\n",
    )
    .expect("config");

    let added = streampulse(dir.path(), &["user", "add", "alice"], "correct horse battery\n");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let short = streampulse(dir.path(), &["user", "add", "bob"], "short\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8 characters"));
    let listed = streampulse(dir.path(), &["user", "list"], "");
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "alice\tadmin\n");
    // Roles: viewers on request; the last admin can be neither demoted nor removed.
    let viewer = streampulse(
        dir.path(),
        &["user", "add", "vera", "--role", "viewer"],
        "correct horse battery\n",
    );
    assert!(
        viewer.status.success(),
        "{}",
        String::from_utf8_lossy(&viewer.stderr)
    );
    let bad_role = streampulse(
        dir.path(),
        &["user", "add", "x", "--role", "root"],
        "correct horse battery\n",
    );
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("`admin` or `viewer`"));
    let listed = streampulse(dir.path(), &["user", "list"], "");
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "alice\tadmin\nvera\tviewer\n"
    );
    for args in [
        &["user", "role", "alice", "viewer"][..],
        &["user", "remove", "alice"][..],
    ] {
        let refused = streampulse(dir.path(), args, "");
        assert!(!refused.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("last administrator"),
            "{args:?}"
        );
    }
    let help = streampulse(dir.path(), &["user", "add", "--help"], "");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--role <ROLE>"));

    let accounts = Accounts::open(&dir.path().join("web.db")).expect("accounts");
    assert!(accounts
        .verify_password("alice", "correct horse battery")
        .expect("verify")
        .is_some());
    let changed = streampulse(dir.path(), &["user", "passwd", "alice"], "battery staple horse\n");
    assert!(changed.status.success());
    assert!(accounts
        .verify_password("alice", "battery staple horse")
        .expect("verify")
        .is_some());
    assert!(accounts
        .verify_password("alice", "correct horse battery")
        .expect("verify")
        .is_none());

    let created = streampulse(dir.path(), &["token", "create", "grafana"], "");
    assert!(created.status.success());
    let token = String::from_utf8_lossy(&created.stdout).trim().to_string();
    assert!(token.starts_with("sp_"), "{token}");
    let checked = accounts.check_token(&token, 0).expect("check").expect("live");
    assert_eq!(
        (checked.name.as_str(), checked.scope),
        ("grafana", TokenScope::Read)
    );
    // `add` is `create`; `--scope admin` only when asked for.
    let created = streampulse(dir.path(), &["token", "add", "deploy", "--scope", "admin"], "");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stderr).contains("scope admin"));
    let admin = String::from_utf8_lossy(&created.stdout).trim().to_string();
    assert_eq!(
        accounts.check_token(&admin, 0).expect("check").map(|t| t.scope),
        Some(TokenScope::Admin)
    );
    let wrong = streampulse(dir.path(), &["token", "create", "x", "--scope", "root"], "");
    assert!(!wrong.status.success());
    let listed =
        String::from_utf8_lossy(&streampulse(dir.path(), &["token", "list"], "").stdout).into_owned();
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("deploy\tscope admin\tcreated "), "{listed}");
    assert!(lines[1].starts_with("grafana\tscope read\tcreated "), "{listed}");
    let help = String::from_utf8_lossy(&streampulse(dir.path(), &["token", "create", "--help"], "").stdout)
        .into_owned();
    assert!(help.contains("--scope") && help.contains("admin"), "{help}");
    let revoked = streampulse(dir.path(), &["token", "revoke", "grafana"], "");
    assert!(revoked.status.success());
    assert_eq!(accounts.check_token(&token, 0).expect("check"), None);
}
