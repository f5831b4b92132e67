//! The SQLite store against real database files: identities across renames, derived tables,
//! the writer thread with concurrent readers, pruning.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use streampulse::clock::HOUR_MS;
use streampulse::heartbeat::{Health, Heartbeat, ProbeOutcome, Reason, TimeoutStage};
use streampulse::store::{
    spawn_writer, Store, StoreError, StreamIdentity, Uptime, WriterOptions, SCHEMA_VERSION,
};

/// 2024-01-01T00:00:00Z: a whole hour, so test times read as offsets.
const T0: i64 = 1_704_067_200_000;
const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("streampulse.db")
}

fn identity(name: &str, url: &str) -> StreamIdentity {
    StreamIdentity {
        config_id: None,
        name: name.to_owned(),
        url_redacted: Some(format!("rtsp://{url}/stream")),
        url_fingerprint: Some(format!("fp-{url}")),
    }
}

fn with_id(config_id: &str, name: &str, url: &str) -> StreamIdentity {
    StreamIdentity {
        config_id: Some(config_id.to_owned()),
        ..identity(name, url)
    }
}

fn heartbeat(stream_id: i64, ts_ms: i64, health: Health) -> Heartbeat {
    let has_video = health != Health::Down;
    Heartbeat {
        stream_id,
        ts_ms,
        ntp_synced: true,
        outcome: ProbeOutcome {
            health,
            latency_ms: has_video.then_some(800),
            reason: match health {
                Health::Up => None,
                Health::Degraded => Some(Reason::Frozen),
                Health::Down => Some(Reason::Refused),
            },
            message: match health {
                Health::Up => String::new(),
                Health::Degraded => "picture frozen for 10 s".to_owned(),
                Health::Down => "connection refused by 10.0.0.5:554".to_owned(),
            },
            codec: has_video.then(|| "h264".to_owned()),
            width: has_video.then_some(1920),
            height: has_video.then_some(1080),
            fps: has_video.then_some(15.0),
            bitrate_kbps: has_video.then_some(2000),
            picture: None,
        },
    }
}

fn all_heartbeats(store: &Store, stream_id: i64) -> Vec<Heartbeat> {
    store
        .heartbeats(stream_id, i64::MIN, i64::MAX, usize::MAX)
        .expect("heartbeats")
}

#[test]
fn migrations_are_applied_once_and_reopening_keeps_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let mut store = Store::open(&path).expect("create");
    let ids = store
        .resolve_streams(&[identity("Lobby", "cam1")], T0)
        .expect("resolve");
    store
        .record(&[heartbeat(ids[0], T0, Health::Up)])
        .expect("record");
    drop(store);

    for _ in 0..2 {
        let store = Store::open(&path).expect("reopen");
        assert_eq!(all_heartbeats(&store, ids[0]).len(), 1);
    }
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    drop(Store::open(&path).expect("create"));
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .expect("bump");
    drop(conn);
    let error = Store::open(&path).expect_err("newer schema");
    assert!(matches!(error, StoreError::SchemaTooNew { .. }), "{error}");
    let error = Store::open_read_only(&path).expect_err("newer schema");
    assert!(error.to_string().contains("upgrade streampulse"), "{error}");
}

#[test]
fn read_only_open_of_a_missing_file_says_so_and_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let error = Store::open_read_only(&path).expect_err("missing");
    assert!(matches!(error, StoreError::NotFound { .. }));
    assert!(error.to_string().contains("does not exist"), "{error}");
    assert!(!path.exists());
}

#[test]
fn read_only_open_waits_for_a_new_file_to_be_migrated_by_its_creator() {
    // `status` (or the web server) started alongside a monitor that has created the file but
    // not migrated it yet.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    drop(rusqlite::Connection::open(&path).expect("create an empty file"));
    let creator = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(Store::open(&path).expect("migrate"));
        })
    };
    let reader = Store::open_read_only(&path).expect("waits for the migration");
    assert_eq!(reader.statuses().expect("statuses"), Vec::new());
    creator.join().expect("creator");

    // An empty file nobody migrates is still refused, after the grace period.
    let lone = dir.path().join("lone.db");
    drop(rusqlite::Connection::open(&lone).expect("create"));
    let error = Store::open_read_only(&lone).expect_err("never migrated");
    assert!(error.to_string().contains("start the monitor once"), "{error}");
}

#[test]
fn read_only_open_works_on_a_closed_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let mut store = Store::open(&path).expect("create");
    let ids = store
        .resolve_streams(&[identity("Lobby", "cam1")], T0)
        .expect("resolve");
    store
        .record(&[heartbeat(ids[0], T0, Health::Up)])
        .expect("record");
    drop(store);
    let reader = Store::open_read_only(&path).expect("read only");
    let status = reader.status_by_name("Lobby").expect("status").expect("known");
    assert_eq!(status.health, Some(Health::Up));
    assert_eq!(reader.status_by_name("Nope").expect("status"), None);
}

#[test]
fn resolving_the_same_config_again_returns_the_same_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let config = [
        identity("Lobby", "cam1"),
        with_id("gate", "Gate", "cam2"),
        identity("Yard", "cam3"),
    ];
    let first = store.resolve_streams(&config, T0).expect("resolve");
    let second = store.resolve_streams(&config, T0 + MINUTE).expect("resolve");
    assert_eq!(first, second);
    assert_eq!(first.len(), 3);
    assert_eq!(store.stream_id_by_name("Gate").expect("lookup"), Some(first[1]));
}

#[test]
fn duplicate_names_in_the_config_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let error = store
        .resolve_streams(&[identity("A", "cam1"), identity("A", "cam2")], T0)
        .expect_err("duplicate");
    assert!(matches!(error, StoreError::DuplicateName(name) if name == "A"));
}

#[test]
fn a_rename_with_the_same_url_keeps_the_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let before = store
        .resolve_streams(&[identity("Lobby", "cam1"), identity("Yard", "cam2")], T0)
        .expect("resolve");
    store
        .record(&[
            heartbeat(before[0], T0, Health::Up),
            heartbeat(before[0], T0 + MINUTE, Health::Down),
        ])
        .expect("record");

    let after = store
        .resolve_streams(
            &[identity("Entrance hall", "cam1"), identity("Yard", "cam2")],
            T0 + HOUR_MS,
        )
        .expect("resolve");
    assert_eq!(after, before, "the renamed stream keeps its id");
    assert_eq!(store.stream_id_by_name("Lobby").expect("lookup"), None);
    let status = store
        .status_by_name("Entrance hall")
        .expect("status")
        .expect("renamed stream");
    assert_eq!(status.stream_id, before[0]);
    assert_eq!(status.health, Some(Health::Down));
    assert_eq!(all_heartbeats(&store, after[0]).len(), 2);
    assert_eq!(
        store.outages(after[0], T0, T0 + HOUR_MS).expect("outages").len(),
        1
    );
}

#[test]
fn a_rename_through_an_explicit_id_keeps_the_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let before = store
        .resolve_streams(&[with_id("cam-7", "Dock", "cam7")], T0)
        .expect("resolve");
    store
        .record(&[heartbeat(before[0], T0, Health::Up)])
        .expect("record");

    // New name and new URL: only the id ties them together.
    let after = store
        .resolve_streams(&[with_id("cam-7", "Loading dock", "cam7-new")], T0 + MINUTE)
        .expect("resolve");
    assert_eq!(after, before);
    let status = store
        .status_by_name("Loading dock")
        .expect("status")
        .expect("renamed");
    assert_eq!(status.url_redacted.as_deref(), Some("rtsp://cam7-new/stream"));
    assert_eq!(all_heartbeats(&store, after[0]).len(), 1);
}

#[test]
fn an_id_matched_stream_takes_its_name_from_an_unconfigured_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let old = store
        .resolve_streams(
            &[identity("Dock", "cam1"), with_id("cam-7", "Dock 2", "cam7")],
            T0,
        )
        .expect("resolve");
    store
        .record(&[
            heartbeat(old[0], T0, Health::Up),
            heartbeat(old[1], T0, Health::Down),
        ])
        .expect("record");

    // The old "Dock" camera is gone; cam-7 is now called "Dock".
    let new = store
        .resolve_streams(&[with_id("cam-7", "Dock", "cam7")], T0 + MINUTE)
        .expect("resolve");
    assert_eq!(new, vec![old[1]]);
    let aside = format!("Dock (old #{})", old[0]);
    assert_eq!(store.stream_id_by_name(&aside).expect("lookup"), Some(old[0]));
    assert_eq!(
        store
            .status_by_name("Dock")
            .expect("status")
            .expect("dock")
            .health,
        Some(Health::Down)
    );
    assert_eq!(
        store.status_by_name(&aside).expect("status").expect("old").health,
        Some(Health::Up)
    );
}

#[test]
fn a_new_stream_with_a_used_name_gets_its_own_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let old = store
        .resolve_streams(&[with_id("north", "Gate", "cam1")], T0)
        .expect("resolve");
    store
        .record(&[heartbeat(old[0], T0, Health::Down)])
        .expect("record");

    // A different camera (different explicit id and URL) now uses the name.
    let new = store
        .resolve_streams(&[with_id("south", "Gate", "cam9")], T0 + MINUTE)
        .expect("resolve");
    assert_ne!(new[0], old[0]);
    let gate = store.status_by_name("Gate").expect("status").expect("gate");
    assert_eq!(gate.stream_id, new[0]);
    assert_eq!(gate.health, None, "the new stream has never been probed");
    assert!(all_heartbeats(&store, new[0]).is_empty());
    let aside = format!("Gate (old #{})", old[0]);
    assert_eq!(store.stream_id_by_name(&aside).expect("lookup"), Some(old[0]));
    assert_eq!(all_heartbeats(&store, old[0]).len(), 1);
    assert_eq!(store.statuses().expect("statuses").len(), 2);
}

#[test]
fn streams_can_swap_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let before = store
        .resolve_streams(&[with_id("a", "Front", "cam1"), with_id("b", "Back", "cam2")], T0)
        .expect("resolve");
    let after = store
        .resolve_streams(&[with_id("a", "Back", "cam1"), with_id("b", "Front", "cam2")], T0)
        .expect("resolve");
    assert_eq!(before, after);
    assert_eq!(store.stream_id_by_name("Back").expect("lookup"), Some(before[0]));
    assert_eq!(store.stream_id_by_name("Front").expect("lookup"), Some(before[1]));
}

#[test]
fn status_and_outages_follow_up_down_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let id = store
        .resolve_streams(&[identity("Lobby", "cam1")], T0)
        .expect("resolve")[0];
    assert_eq!(
        store
            .status_by_name("Lobby")
            .expect("status")
            .expect("lobby")
            .health,
        None
    );

    // Up for a minute, down for two, then degraded, then up.
    let timeline = [
        (0, Health::Up),
        (15, Health::Up),
        (30, Health::Up),
        (45, Health::Up),
        (60, Health::Down),
        (75, Health::Down),
        (180, Health::Down),
        (195, Health::Degraded),
        (210, Health::Up),
    ];
    let heartbeats: Vec<_> = timeline
        .iter()
        .map(|&(s, health)| heartbeat(id, T0 + s * SECOND, health))
        .collect();
    // Two batches split in the middle of the outage: state carries across transactions.
    store.record(&heartbeats[..5]).expect("record");
    let status = store.status_by_name("Lobby").expect("status").expect("lobby");
    assert_eq!(status.health, Some(Health::Down));
    assert_eq!(status.since_ms, Some(T0 + 60 * SECOND));
    assert_eq!(status.last_up_ms, Some(T0 + 45 * SECOND));
    assert_eq!(status.reason, Some(Reason::Refused));
    assert_eq!(
        status.codec.as_deref(),
        Some("h264"),
        "the last known format stays while down"
    );
    assert_eq!(status.last_latency_ms, None);
    let open = store.outages(id, T0, T0 + HOUR_MS).expect("outages");
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].start_ms, open[0].end_ms), (T0 + 60 * SECOND, None));

    store.record(&heartbeats[5..7]).expect("record");
    let status = store.status_by_name("Lobby").expect("status").expect("lobby");
    assert_eq!(status.since_ms, Some(T0 + 60 * SECOND), "still the same outage");
    assert_eq!(status.last_ts_ms, Some(T0 + 180 * SECOND));

    store.record(&heartbeats[7..]).expect("record");
    let status = store.status_by_name("Lobby").expect("status").expect("lobby");
    assert_eq!(status.health, Some(Health::Up));
    assert_eq!(status.since_ms, Some(T0 + 210 * SECOND));
    assert_eq!(status.last_up_ms, Some(T0 + 210 * SECOND));
    assert_eq!(status.last_latency_ms, Some(800));
    assert_eq!(status.reason, None);
    let closed = store.outages(id, T0, T0 + HOUR_MS).expect("outages");
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].start_ms, T0 + 60 * SECOND);
    assert_eq!(
        closed[0].end_ms,
        Some(T0 + 195 * SECOND),
        "closed by the first heartbeat with video"
    );
    assert_eq!(closed[0].reason, Some(Reason::Refused));
    assert!(store
        .outages(id, T0 + 200 * SECOND, T0 + HOUR_MS)
        .expect("outages")
        .is_empty());
    assert_eq!(
        store
            .outages(id, T0 + 100 * SECOND, T0 + 101 * SECOND)
            .expect("outages")
            .len(),
        1
    );

    let uptime = store.uptime(id, T0, T0 + HOUR_MS).expect("uptime");
    assert_eq!(
        uptime,
        Uptime {
            up: 5,
            degraded: 1,
            down: 3,
            quiet: 0
        }
    );
    let counts = store.probe_counts().expect("counts");
    assert_eq!(
        counts,
        vec![
            (id, "degraded".to_owned(), 1),
            (id, "refused".to_owned(), 3),
            (id, "up".to_owned(), 5)
        ]
    );
}

#[test]
fn a_stream_first_seen_down_opens_an_outage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let id = store
        .resolve_streams(&[identity("Lobby", "cam1")], T0)
        .expect("resolve")[0];
    let mut down = heartbeat(id, T0, Health::Down);
    down.outcome.reason = Some(Reason::Timeout(TimeoutStage::FirstFrame));
    store.record(&[down]).expect("record");
    let outages = store.outages(id, T0, T0 + 1).expect("outages");
    assert_eq!(outages.len(), 1);
    assert_eq!(outages[0].end_ms, None);
    assert_eq!(outages[0].reason, Some(Reason::Timeout(TimeoutStage::FirstFrame)));
    assert_eq!(
        store
            .status_by_name("Lobby")
            .expect("status")
            .expect("lobby")
            .last_up_ms,
        None
    );
    assert_eq!(
        store.probe_counts().expect("counts"),
        vec![(id, "timeout_first_frame".to_owned(), 1)]
    );
}

#[test]
fn a_late_heartbeat_is_counted_but_does_not_rewind_the_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let id = store
        .resolve_streams(&[identity("Lobby", "cam1")], T0)
        .expect("resolve")[0];
    store
        .record(&[heartbeat(id, T0 + MINUTE, Health::Up)])
        .expect("record");
    store.record(&[heartbeat(id, T0, Health::Down)]).expect("record");
    let status = store.status_by_name("Lobby").expect("status").expect("lobby");
    assert_eq!(status.health, Some(Health::Up));
    assert_eq!(status.last_ts_ms, Some(T0 + MINUTE));
    assert_eq!(
        store.uptime(id, T0, T0 + HOUR_MS).expect("uptime"),
        Uptime {
            up: 1,
            degraded: 0,
            down: 1,
            quiet: 0
        }
    );
}

#[test]
fn recording_the_same_heartbeat_twice_replaces_it_without_double_counting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let id = store
        .resolve_streams(&[identity("Lobby", "cam1")], T0)
        .expect("resolve")[0];
    store.record(&[heartbeat(id, T0, Health::Up)]).expect("record");
    store
        .record(&[heartbeat(id, T0, Health::Degraded)])
        .expect("record again");
    let stored = all_heartbeats(&store, id);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].outcome.health, Health::Degraded);
    assert_eq!(
        store.uptime(id, T0, T0 + HOUR_MS).expect("uptime"),
        Uptime {
            up: 0,
            degraded: 1,
            down: 0,
            quiet: 0
        }
    );
    let hourly = store.hourly(id, T0, T0 + HOUR_MS).expect("hourly");
    assert_eq!((hourly[0].up, hourly[0].degraded), (0, 1));
    assert_eq!(hourly[0].latency_avg_ms, Some(800.0));
}

#[test]
fn a_heartbeat_for_an_unknown_stream_fails_the_batch_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let id = store
        .resolve_streams(&[identity("Lobby", "cam1")], T0)
        .expect("resolve")[0];
    let error = store.record(&[heartbeat(id, T0, Health::Up), heartbeat(id + 99, T0, Health::Up)]);
    assert!(matches!(error, Err(StoreError::Sqlite(_))), "{error:?}");
    assert!(all_heartbeats(&store, id).is_empty());
    assert_eq!(
        store
            .status_by_name("Lobby")
            .expect("status")
            .expect("lobby")
            .health,
        None
    );
}

/// Heartbeats every 15 s from `from_ms` (inclusive) to `to_ms` (exclusive).
fn every_15_s(stream_id: i64, from_ms: i64, to_ms: i64, health: impl Fn(i64) -> Health) -> Vec<Heartbeat> {
    (from_ms..to_ms)
        .step_by(15_000)
        .map(|ts| heartbeat(stream_id, ts, health(ts)))
        .collect()
}

#[test]
fn uptime_counts_whole_hours_from_rollups_and_edges_from_raw_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let ids = store
        .resolve_streams(&[identity("A", "cam1"), identity("B", "cam2")], T0)
        .expect("resolve");
    // A: up, except down during the second hour's first 10 minutes. B: always degraded.
    let a = every_15_s(ids[0], T0, T0 + 3 * HOUR_MS, |ts| {
        if (T0 + HOUR_MS..T0 + HOUR_MS + 10 * MINUTE).contains(&ts) {
            Health::Down
        } else {
            Health::Up
        }
    });
    let b = every_15_s(ids[1], T0, T0 + 3 * HOUR_MS, |_| Health::Degraded);
    store.record(&a).expect("record");
    store.record(&b).expect("record");

    let whole = store.uptime(ids[0], T0, T0 + 3 * HOUR_MS).expect("uptime");
    assert_eq!(
        whole,
        Uptime {
            up: 720 - 40,
            degraded: 0,
            down: 40,
            quiet: 0
        }
    );
    assert_eq!(whole.healthy_ratio(), Some(680.0 / 720.0));

    // From 30 min into the first hour to 5 min into the second: edges only.
    let edges = store
        .uptime(ids[0], T0 + 30 * MINUTE, T0 + HOUR_MS + 5 * MINUTE)
        .expect("uptime");
    assert_eq!(
        edges,
        Uptime {
            up: 120,
            degraded: 0,
            down: 20,
            quiet: 0
        }
    );

    // An edge, a whole hour, an edge.
    let mixed = store
        .uptime(ids[0], T0 + 50 * MINUTE, T0 + 2 * HOUR_MS + MINUTE)
        .expect("uptime");
    assert_eq!(
        mixed,
        Uptime {
            up: 40 + 200 + 4,
            degraded: 0,
            down: 40,
            quiet: 0
        }
    );

    let all = store
        .uptime_all(T0 + 50 * MINUTE, T0 + 2 * HOUR_MS + MINUTE)
        .expect("uptime all");
    assert_eq!(all.len(), 2);
    assert_eq!(all[&ids[0]], mixed);
    assert_eq!(
        all[&ids[1]],
        Uptime {
            up: 0,
            degraded: 40 + 240 + 4,
            down: 0,
            quiet: 0
        }
    );
    assert_eq!(all[&ids[1]].reachable_ratio(), Some(1.0));
    assert!(store
        .uptime_all(T0 + 5 * HOUR_MS, T0 + 6 * HOUR_MS)
        .expect("empty")
        .is_empty());

    let hourly = store
        .hourly(ids[0], T0 + 30 * MINUTE, T0 + 2 * HOUR_MS)
        .expect("hourly");
    assert_eq!(hourly.len(), 2);
    assert_eq!(hourly[0].hour_ms, T0);
    assert_eq!((hourly[1].up, hourly[1].down), (200, 40));
    assert_eq!(hourly[1].latency_avg_ms, Some(800.0));
    assert_eq!(hourly[1].latency_max_ms, Some(800));

    let latest = store.heartbeats(ids[0], T0, T0 + HOUR_MS, 3).expect("heartbeats");
    let times: Vec<i64> = latest.iter().map(|h| h.ts_ms).collect();
    assert_eq!(
        times,
        vec![
            T0 + HOUR_MS - 15_000,
            T0 + HOUR_MS - 30_000,
            T0 + HOUR_MS - 45_000
        ]
    );

    let sparklines = store.recent_latencies_all(T0 + HOUR_MS, 4).expect("sparklines");
    let a_points = &sparklines[&ids[0]];
    assert_eq!(a_points.len(), 4);
    assert_eq!(
        a_points[3].0,
        T0 + 3 * HOUR_MS - 15_000,
        "oldest first, newest last"
    );
    assert!(a_points.windows(2).all(|pair| pair[0].0 < pair[1].0));
    let early = store
        .recent_latencies_all(T0 + HOUR_MS + MINUTE, 2)
        .expect("sparklines");
    assert_eq!(early[&ids[1]].len(), 2);
}

#[test]
fn prune_deletes_only_old_raw_heartbeats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let id = store
        .resolve_streams(&[identity("A", "cam1")], T0)
        .expect("resolve")[0];
    store
        .record(&every_15_s(id, T0, T0 + 3 * HOUR_MS, |_| Health::Up))
        .expect("record");
    store
        .record(&[heartbeat(id, T0 + 3 * HOUR_MS, Health::Down)])
        .expect("record");

    let cutoff = T0 + HOUR_MS + 30 * MINUTE;
    let deleted = store.prune(cutoff).expect("prune");
    assert_eq!(deleted, 360);
    let left = all_heartbeats(&store, id);
    assert_eq!(left.len(), 721 - 360);
    assert!(left.iter().all(|h| h.ts_ms >= cutoff));
    assert_eq!(store.prune(cutoff).expect("prune again"), 0);

    // Rollups, outages and the status survive.
    assert_eq!(store.hourly(id, T0, T0 + 4 * HOUR_MS).expect("hourly").len(), 4);
    assert_eq!(store.uptime(id, T0, T0 + 3 * HOUR_MS).expect("uptime").up, 720);
    assert_eq!(store.outages(id, T0, T0 + 4 * HOUR_MS).expect("outages").len(), 1);
    // A range starting in a pruned hour counts that hour whole rather than losing its edge.
    assert_eq!(
        store
            .uptime(id, T0 + HOUR_MS + 15 * MINUTE, T0 + 2 * HOUR_MS)
            .expect("uptime")
            .up,
        240
    );
    assert_eq!(
        store.status_by_name("A").expect("status").expect("a").health,
        Some(Health::Down)
    );
}

#[test]
fn prune_through_the_writer_keeps_recording_meanwhile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = WriterOptions {
        max_batch: 1_000,
        prune_chunk_rows: 50,
        ..WriterOptions::default()
    };
    let (writer, thread) = spawn_writer(db_path(&dir), options).expect("writer");
    let id = writer.resolve(&[identity("A", "cam1")], T0).expect("resolve")[0];
    for heartbeat in every_15_s(id, T0, T0 + 2 * HOUR_MS, |_| Health::Up) {
        writer.send(heartbeat).expect("send");
    }
    assert_eq!(writer.prune(T0 + HOUR_MS).expect("prune"), 240);
    writer.shutdown().expect("shutdown");
    thread.join().expect("writer thread");
    let reader = Store::open_read_only(db_path(&dir)).expect("reader");
    assert_eq!(all_heartbeats(&reader, id).len(), 240);
}

#[test]
fn a_reader_sees_the_writer_threads_commits_while_it_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (writer, thread) = spawn_writer(&path, WriterOptions::default()).expect("writer");
    let ids = writer
        .resolve(&[identity("A", "cam1"), identity("B", "cam2")], T0)
        .expect("resolve");
    let reader = Store::open_read_only(&path).expect("reader");
    assert_eq!(reader.statuses().expect("statuses").len(), 2);

    // A producer keeps sending while the reader reads.
    let producer = {
        let writer = writer.clone();
        let ids = ids.clone();
        std::thread::spawn(move || {
            for step in 0..2_000i64 {
                for &id in &ids {
                    writer
                        .send(heartbeat(id, T0 + step * 15_000, Health::Up))
                        .expect("send");
                }
                if step % 100 == 99 {
                    writer.flush().expect("flush");
                }
            }
        })
    };
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !producer.is_finished() || seen.last() != Some(&2_000) {
        assert!(
            Instant::now() < deadline,
            "the reader never saw every write: {seen:?}"
        );
        let uptime = reader
            .uptime(ids[0], T0, T0 + 2_000 * 15_000)
            .expect("read while writing");
        let count = uptime.up;
        assert!(
            seen.last().is_none_or(|&last| last <= count),
            "the reader never goes back in time"
        );
        if seen.last() != Some(&count) {
            seen.push(count);
        }
        if producer.is_finished() {
            writer.flush().expect("flush");
        }
    }
    producer.join().expect("producer");
    assert!(seen.len() > 2, "the reader saw intermediate states: {seen:?}");
    let status = reader.status_by_name("B").expect("status").expect("b");
    assert_eq!(status.last_ts_ms, Some(T0 + 1_999 * 15_000));

    writer.shutdown().expect("shutdown");
    thread.join().expect("writer thread");
    assert!(matches!(
        writer.send(heartbeat(ids[0], T0, Health::Up)),
        Err(StoreError::WriterStopped)
    ));
}

#[test]
fn shutdown_writes_everything_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (writer, thread) = spawn_writer(
        &path,
        WriterOptions {
            max_batch: 64,
            ..WriterOptions::default()
        },
    )
    .expect("writer");
    let id = writer.resolve(&[identity("A", "cam1")], T0).expect("resolve")[0];
    for step in 0..1_000 {
        writer
            .send(heartbeat(id, T0 + step * 15_000, Health::Up))
            .expect("send");
    }
    writer.shutdown().expect("shutdown");
    thread.join().expect("writer thread");
    let store = Store::open_read_only(&path).expect("reader");
    assert_eq!(all_heartbeats(&store, id).len(), 1_000);
}

#[test]
fn one_bad_heartbeat_does_not_cost_the_writer_the_rest_of_its_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (writer, thread) = spawn_writer(&path, WriterOptions::default()).expect("writer");
    let id = writer.resolve(&[identity("A", "cam1")], T0).expect("resolve")[0];
    writer.send(heartbeat(id, T0, Health::Up)).expect("send");
    writer.send(heartbeat(id + 1_000, T0, Health::Up)).expect("send");
    writer.send(heartbeat(id, T0 + 15_000, Health::Up)).expect("send");
    writer.flush().expect("flush");
    let reader = Store::open_read_only(&path).expect("reader");
    assert_eq!(all_heartbeats(&reader, id).len(), 2);
    writer.shutdown().expect("shutdown");
    thread.join().expect("writer thread");
}

/// Fleet-sized volume through batched `record()`: 200 streams, 15 s heartbeats. The span is
/// kept short enough to stay fast in debug builds; benches measure the real size.
#[test]
fn batched_recording_of_a_fleet() {
    const STREAMS: usize = 200;
    const HOURS: i64 = 3;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(db_path(&dir)).expect("open");
    let identities: Vec<_> = (0..STREAMS)
        .map(|n| identity(&format!("Camera {n:03}"), &format!("cam{n}")))
        .collect();
    let ids = store.resolve_streams(&identities, T0).expect("resolve");

    let started = Instant::now();
    let mut rows = 0usize;
    // One batch per 15 s round across the fleet, the way the writer sees it.
    for round in 0..(HOURS * HOUR_MS / 15_000) {
        let ts = T0 + round * 15_000;
        let batch: Vec<_> = ids
            .iter()
            .map(|&id| {
                heartbeat(
                    id,
                    ts,
                    if (id + round) % 97 == 0 {
                        Health::Down
                    } else {
                        Health::Up
                    },
                )
            })
            .collect();
        store.record(&batch).expect("record");
        rows += batch.len();
    }
    let elapsed = started.elapsed();
    eprintln!("recorded {rows} heartbeats in {elapsed:?}");

    let started = Instant::now();
    let all = store
        .uptime_all(T0 + 7 * MINUTE, T0 + HOURS * HOUR_MS)
        .expect("uptime all");
    let sparklines = store
        .recent_latencies_all(T0 + (HOURS - 1) * HOUR_MS, 60)
        .expect("sparklines");
    let statuses = store.statuses().expect("statuses");
    eprintln!("dashboard queries in {:?}", started.elapsed());
    assert_eq!(all.len(), STREAMS);
    assert_eq!(sparklines.len(), STREAMS);
    assert!(sparklines.values().all(|points| points.len() == 60));
    assert_eq!(statuses.len(), STREAMS);
    let total: u64 = all.values().map(Uptime::total).sum();
    assert_eq!(total as usize, rows - STREAMS * 28);
    // A sanity bound, not a benchmark (`make bench` measures): ~10 s on a quiet 2-core machine,
    // 61 s once with three builds and a soak on the same cores; row-by-row commits would take
    // many minutes.
    assert!(elapsed < Duration::from_secs(300), "recording took {elapsed:?}");
}

#[test]
fn processes_opening_a_new_database_at_once_all_succeed() {
    // The monitor and the web service start together on a fresh install: both create, switch to
    // WAL and migrate the same file at the same moment.
    for round in 0..5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(format!("race{round}.db"));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let (path, barrier) = (path.clone(), std::sync::Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|_| ())
                })
            })
            .collect();
        for opener in openers {
            opener.join().expect("thread").expect("every opener succeeds");
        }
    }
}

/// The database and its `-wal`/`-shm` hold session and token hashes: never world-readable, even
/// under a permissive umask (issue 12).
#[test]
fn database_files_are_not_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("streams.db");
    let mut store = Store::open(&db).expect("open");
    let ids = store
        .resolve_streams(
            &[StreamIdentity {
                config_id: None,
                name: "Gate".into(),
                url_redacted: None,
                url_fingerprint: None,
            }],
            0,
        )
        .expect("resolve");
    assert_eq!(ids.len(), 1);
    for name in ["streams.db", "streams.db-wal", "streams.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o007, 0, "{name} is world-accessible: {mode:o}");
    }
}

/// Whether a process other than this one could take SQLite's exclusive lock on the database
/// file: a plain `fcntl` lock on the bytes SQLite's shared locks use, asked by Python.
fn another_process_could_lock_exclusively(path: &std::path::Path) -> bool {
    let script = "import fcntl, os, sys\n\
                  fd = os.open(sys.argv[1], os.O_RDWR)\n\
                  try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 510, 0x40000002, 0)\n    print('locked')\n\
                  except OSError:\n    print('busy')\n";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 runs");
    let answer = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(answer == "locked" || answer == "busy", "{answer:?} {output:?}");
    answer == "locked"
}

#[test]
fn opening_the_store_again_keeps_the_locks_of_connections_already_open() {
    // Closing any descriptor of a file drops all of a process's POSIX locks on it. If opening
    // a second store (the web opening its accounts beside its readers) read the file outside
    // SQLite, the first connection would lose its shared lock, and another process closing its
    // last connection would checkpoint and delete the WAL this one still writes to.
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let mut first = Store::open(&path).unwrap();
    let ids = first
        .resolve_streams(&[identity("Gate", "rtsp://h/a")], 0)
        .unwrap();
    first.record(&[heartbeat(ids[0], 1_000, Health::Up)]).unwrap();
    assert!(
        !another_process_could_lock_exclusively(&path),
        "an open WAL connection holds a shared lock on the file"
    );
    let second = Store::open(&path).unwrap();
    let reader = Store::open_read_only(&path).unwrap();
    drop((second, reader));
    assert!(
        !another_process_could_lock_exclusively(&path),
        "opening the store again must not drop the first connection's lock"
    );
}
