//! The store writer with a really full disk: the database lives on a small tmpfs that a filler
//! file fills up, heartbeats go through the real writer thread, then the filler is deleted.
//!
//! Mounting needs root. CI runs as root; elsewhere these tests fail with a message saying so
//! (they never pass without having tested anything).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use streampulse::heartbeat::{Health, Heartbeat, ProbeOutcome, Reason};
use streampulse::store::{
    read_monitor_status, spawn_writer, status_file_path, MonitorStatus, Store, StreamIdentity, WriterHandle,
    WriterOptions, STATUS_FILE_BYTES,
};

/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
const SECOND: i64 = 1_000;

/// A tmpfs mounted on a temporary folder, unmounted when dropped (also when a test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "the disk-full tests mount a {size} tmpfs and need root for it (CI runs them as root): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Fills the filesystem to the last page; returns the bytes written.
    fn fill(&self) -> u64 {
        let mut file = std::fs::File::create(self.filler()).expect("create filler");
        let mut written = 0u64;
        for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
            let bytes = vec![0x55u8; chunk];
            while file.write_all(&bytes).is_ok() {
                written += chunk as u64;
            }
        }
        let _ = file.flush();
        written
    }

    fn free_space(&self) {
        std::fs::remove_file(self.filler()).expect("remove filler");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // Something still holds a file open: detach it so no mount is left behind.
            let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
        }
    }
}

/// Log lines of this test binary, for counting what the writer logs while the disk is full.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn take(&self) -> String {
        let mut bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&std::mem::take(&mut *bytes)).into_owned()
    }
}

/// One test at a time: the captured log is shared, and each test fills a filesystem.
fn serial() -> (MutexGuard<'static, ()>, Captured) {
    static LOCK: Mutex<()> = Mutex::new(());
    static LOG: OnceLock<Captured> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let log = LOG
        .get_or_init(|| {
            let log = Captured::default();
            let writer = log.clone();
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .init();
            log
        })
        .clone();
    log.take();
    (guard, log)
}

fn heartbeat(stream_id: i64, ts_ms: i64) -> Heartbeat {
    // A mix of healths so the rows say more than their times.
    let health = match (ts_ms / (5 * SECOND)) % 7 {
        3 => Health::Down,
        5 => Health::Degraded,
        _ => Health::Up,
    };
    let video = health != Health::Down;
    Heartbeat {
        stream_id,
        ts_ms,
        ntp_synced: true,
        outcome: ProbeOutcome {
            health,
            latency_ms: video.then_some(700 + (ts_ms / SECOND % 100) as u64),
            reason: match health {
                Health::Up => None,
                Health::Degraded => Some(Reason::Frozen),
                Health::Down => Some(Reason::Refused),
            },
            message: if video {
                String::new()
            } else {
                "connection refused by 10.0.0.5:554".to_owned()
            },
            codec: video.then(|| "h264".to_owned()),
            width: video.then_some(1920),
            height: video.then_some(1080),
            fps: video.then_some(15.0),
            bitrate_kbps: video.then_some(2000),
            picture: None,
        },
    }
}

fn identity(name: &str) -> StreamIdentity {
    StreamIdentity {
        config_id: None,
        name: name.to_owned(),
        url_redacted: Some(format!("rtsp://{name}/stream")),
        url_fingerprint: Some(format!("fp-{name}")),
    }
}

fn stored(db: &Path, stream_id: i64) -> Vec<Heartbeat> {
    let store = Store::open_read_only(db).expect("open read-only");
    let mut heartbeats = store
        .heartbeats(stream_id, i64::MIN, i64::MAX, usize::MAX)
        .expect("heartbeats");
    heartbeats.sort_by_key(|heartbeat| heartbeat.ts_ms);
    heartbeats
}

fn status(db: &Path) -> MonitorStatus {
    read_monitor_status(db).expect("a readable status file")
}

/// Waits until the writer has written everything back (it retries on its own).
fn wait_for_recovery(db: &Path, writer: &WriterHandle) -> MonitorStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        writer.flush().expect("flush");
        let status = status(db);
        if !status.disk_full() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "still full after space returned: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn fast_retry(options: WriterOptions) -> WriterOptions {
    WriterOptions {
        disk_full_retry: Duration::from_millis(100),
        ..options
    }
}

/// Sets up a writer on a fresh tmpfs with the given streams, one heartbeat each written at
/// `T0 - 60 s` before the disk fills.
fn writer_on_tmpfs(
    tmpfs: &Tmpfs,
    options: WriterOptions,
    names: &[&str],
) -> (PathBuf, WriterHandle, std::thread::JoinHandle<()>, Vec<i64>) {
    let db = tmpfs.path().join("streams.db");
    let (writer, thread) = spawn_writer(&db, options).expect("spawn writer");
    let identities: Vec<StreamIdentity> = names.iter().map(|name| identity(name)).collect();
    let ids = writer.resolve(&identities, T0).expect("resolve");
    for id in &ids {
        writer.send(heartbeat(*id, T0 - 60 * SECOND)).expect("send");
    }
    writer.flush().expect("flush");
    (db, writer, thread, ids)
}

#[test]
fn heartbeats_held_while_the_disk_is_full_are_all_written_when_space_returns() {
    let (_serial, log) = serial();
    let tmpfs = Tmpfs::mount("4m");
    let (db, writer, thread, ids) = writer_on_tmpfs(
        &tmpfs,
        fast_retry(WriterOptions::default()),
        &["Gate", "Yard", "Dock"],
    );
    assert_eq!(
        std::fs::metadata(status_file_path(&db))
            .expect("status file")
            .len(),
        STATUS_FILE_BYTES as u64,
        "the status file is allocated at start"
    );
    let filled = tmpfs.fill();
    assert!(filled > 3_000_000, "filler wrote {filled} bytes");
    log.take();

    // 40 rounds of one heartbeat per stream, 5 s apart, each round its own batch, over about
    // two seconds: the writer retries every 100 ms meanwhile.
    let rounds = 40;
    for round in 0..rounds {
        for id in &ids {
            writer
                .send(heartbeat(*id, T0 + round * 5 * SECOND))
                .expect("send");
        }
        writer.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in &ids {
        assert_eq!(
            stored(&db, *id).len(),
            1,
            "nothing new is in the database while the disk is full"
        );
    }
    let full = status(&db);
    let sent = rounds as u64 * ids.len() as u64;
    assert!(full.disk_full(), "{full:?}");
    assert_eq!(full.buffered, sent);
    assert_eq!(full.dropped_while_full, 0);
    assert_eq!(full.pid, std::process::id());
    assert!(
        full.last_error.as_deref().is_some_and(|e| e.contains("full")),
        "{full:?}"
    );
    let while_full = log.take();
    let lines: Vec<&str> = while_full
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line when the disk fills, none per batch or retry:\n{while_full}"
    );
    assert!(
        lines[0].contains("ERROR") && lines[0].contains("the disk is full"),
        "{while_full}"
    );
    eprintln!("while full ({sent} heartbeats held): {while_full}");

    tmpfs.free_space();
    let recovered = wait_for_recovery(&db, &writer);
    assert_eq!(recovered.buffered, 0);
    assert_eq!(recovered.written_back_total, sent);
    assert_eq!(recovered.dropped_total, 0);
    assert_eq!(recovered.last_error, None);
    for id in &ids {
        let expected: Vec<Heartbeat> = std::iter::once(heartbeat(*id, T0 - 60 * SECOND))
            .chain((0..rounds).map(|round| heartbeat(*id, T0 + round * 5 * SECOND)))
            .collect();
        assert_eq!(stored(&db, *id), expected, "every held heartbeat, in order");
    }
    let after = log.take();
    eprintln!("after recovery: {after}");
    assert!(
        after.contains("disk space is back") && after.contains(&format!("written_back={sent}")),
        "{after}"
    );
    assert!(after.contains("lost=0"), "{after}");

    // Written after recovery go straight to the database again.
    writer.send(heartbeat(ids[0], T0 + 1_000 * SECOND)).expect("send");
    writer.flush().expect("flush");
    assert_eq!(stored(&db, ids[0]).len(), rounds as usize + 2);
    writer.shutdown().expect("shutdown");
    thread.join().expect("join");
}

#[test]
fn beyond_the_buffer_window_exactly_the_oldest_heartbeats_are_dropped_and_counted() {
    let (_serial, log) = serial();
    let tmpfs = Tmpfs::mount("4m");
    let options = fast_retry(WriterOptions {
        disk_full_buffer: Some(Duration::from_secs(60)),
        ..WriterOptions::default()
    });
    let (db, writer, thread, ids) = writer_on_tmpfs(&tmpfs, options, &["Gate"]);
    tmpfs.fill();
    // Three minutes of heartbeats 5 s apart while full; the buffer keeps the last minute.
    let times: Vec<i64> = (0..36).map(|k| T0 + k * 5 * SECOND).collect();
    for chunk in times.chunks(4) {
        for ts in chunk {
            writer.send(heartbeat(ids[0], *ts)).expect("send");
        }
        writer.flush().expect("flush");
    }
    let newest = T0 + 35 * 5 * SECOND;
    let kept: Vec<i64> = times
        .iter()
        .copied()
        .filter(|ts| *ts >= newest - 60 * SECOND)
        .collect();
    assert_eq!(kept.len(), 13);
    let full = status(&db);
    assert!(full.disk_full());
    assert_eq!(full.buffered, 13);
    assert_eq!(full.dropped_while_full, 23);

    tmpfs.free_space();
    let recovered = wait_for_recovery(&db, &writer);
    assert_eq!(recovered.written_back_total, 13);
    assert_eq!(recovered.dropped_total, 23);
    let stored_times: Vec<i64> = stored(&db, ids[0]).iter().map(|h| h.ts_ms).collect();
    let expected: Vec<i64> = std::iter::once(T0 - 60 * SECOND).chain(kept).collect();
    assert_eq!(stored_times, expected, "the newest minute, nothing older");
    let logged = log.take();
    assert!(
        logged.contains("lost=23") && logged.contains("written_back=13"),
        "{logged}"
    );
    writer.shutdown().expect("shutdown");
    thread.join().expect("join");
}

#[test]
fn beyond_the_count_limit_the_oldest_heartbeats_are_dropped_and_counted() {
    let (_serial, _log) = serial();
    let tmpfs = Tmpfs::mount("4m");
    let options = fast_retry(WriterOptions {
        disk_full_buffer_max_heartbeats: 10,
        ..WriterOptions::default()
    });
    let (db, writer, thread, ids) = writer_on_tmpfs(&tmpfs, options, &["Gate", "Yard"]);
    tmpfs.fill();
    // 15 rounds of two streams: 30 heartbeats, 10 kept.
    for round in 0..15 {
        for id in &ids {
            writer
                .send(heartbeat(*id, T0 + round * 5 * SECOND))
                .expect("send");
        }
    }
    writer.flush().expect("flush");
    let full = status(&db);
    assert_eq!((full.buffered, full.dropped_while_full), (10, 20));

    tmpfs.free_space();
    let recovered = wait_for_recovery(&db, &writer);
    assert_eq!((recovered.written_back_total, recovered.dropped_total), (10, 20));
    for id in &ids {
        let times: Vec<i64> = stored(&db, *id).iter().map(|h| h.ts_ms).collect();
        let expected: Vec<i64> = std::iter::once(T0 - 60 * SECOND)
            .chain((10..15).map(|round| T0 + round * 5 * SECOND))
            .collect();
        assert_eq!(times, expected);
    }
    writer.shutdown().expect("shutdown");
    thread.join().expect("join");
}

#[test]
fn with_no_buffer_the_state_is_still_reported_and_logged_once() {
    let (_serial, log) = serial();
    let tmpfs = Tmpfs::mount("4m");
    let options = fast_retry(WriterOptions {
        disk_full_buffer: None,
        ..WriterOptions::default()
    });
    let (db, writer, thread, ids) = writer_on_tmpfs(&tmpfs, options, &["Gate"]);
    tmpfs.fill();
    for round in 0..10 {
        writer
            .send(heartbeat(ids[0], T0 + round * 5 * SECOND))
            .expect("send");
        writer.flush().expect("flush");
    }
    let full = status(&db);
    assert!(full.disk_full());
    assert_eq!((full.buffered, full.dropped_while_full), (0, 10));
    tmpfs.free_space();
    // Nothing is held, so the writer learns that space is back from the next heartbeat.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ts = T0 + 100 * SECOND;
    while status(&db).disk_full() {
        assert!(Instant::now() < deadline, "still full after space returned");
        std::thread::sleep(Duration::from_millis(150));
        writer.send(heartbeat(ids[0], ts)).expect("send");
        writer.flush().expect("flush");
        ts += 5 * SECOND;
    }
    let stored = stored(&db, ids[0]);
    assert!(stored.len() >= 2, "the heartbeat after recovery is written");
    assert_eq!(status(&db).dropped_total, 10);
    let logged = log.take();
    assert_eq!(logged.matches("the disk is full").count(), 1, "{logged}");
    writer.shutdown().expect("shutdown");
    thread.join().expect("join");
}
