//! `make bench-web`: how fast the web server answers with a big fleet and a long history
//! (issue 3): 1,000 streams with 7 days of 15 s heartbeats (~40 M raw rows) and 30 days of hourly
//! rollups; targets p95 < 200 ms for the dashboard and `/api/v1/streams`, < 500 ms for a stream's
//! 30-day page.
//!
//! The database is built by the product's own write path (`Store::record`, the code the monitor's
//! writer thread runs), so statuses, rollups, outages and counters are what a real monitor would
//! have left. Only the older rollup days (8–30), whose raw rows retention would have pruned, are
//! written directly as hourly rows. The built file is kept in `target/bench-web/` and reused by the
//! next run with the same shape (the web server's clock is set back to the end of its history).
//!
//! The web server then runs in this process on a loopback port and is asked over real HTTP, one
//! request at a time (warm page cache), after a cold start with the database evicted from the page
//! cache (`posix_fadvise`), and by a few clients at once. The baseline, run in the same process
//! on the same file, is what the rollups avoid: the 7-day uptime of every stream aggregated from
//! raw heartbeats. Results go to stdout and `target/bench-web-results.md`.
//!
//! Environment (all optional):
//! - `BENCH_WEB_STREAMS=1000`, `BENCH_WEB_DAYS=7` (raw heartbeats), `BENCH_WEB_HEARTBEAT_SECONDS=15`,
//!   `BENCH_WEB_ROLLUP_DAYS=30` (hourly rollups, at least the raw days).
//! - `BENCH_WEB_REQUESTS=200`: requests per endpoint in the sequential runs.
//! - `BENCH_WEB_CLIENTS=4`: clients at once in the concurrent run (0 skips it).
//! - `BENCH_WEB_REBUILD=1`: build the database again even if a matching one exists.

mod support;

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::params;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streampulse::clock::system_now_ms;
use streampulse::config;
use streampulse::fleet;
use streampulse::heartbeat::{Health, Heartbeat, ProbeOutcome, Reason, TimeoutStage};
use streampulse::monitor::{phase_for, stream_identities};
use streampulse::store::accounts::{Accounts, TokenScope};
use streampulse::store::Store;
use streampulse::web::auth::SESSION_COOKIE;
use streampulse::web::{WebOptions, WebState};
use support::{cpu_model, env_number, load_average, percentile, target_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Heartbeat ticks written per `Store::record` call: a minute of the fleet at 15 s, about what the
/// monitor's writer batches under load.
const TICKS_PER_BATCH: usize = 4;
const TARGET_DASHBOARD_P95_MS: f64 = 200.0;
const TARGET_API_P95_MS: f64 = 200.0;
const TARGET_STREAM_30D_P95_MS: f64 = 500.0;
/// Bumped when the generated history changes, so an old file is not reused.
const GENERATOR_VERSION: u32 = 1;

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; anything else (a stray `cargo test --benches`) must not start
    // a twenty-minute build of a 2 GB database.
    if !std::env::args().any(|arg| arg == "--bench") {
        eprintln!("web: a benchmark, run by `make bench-web` (cargo bench --bench web); skipped");
        return Ok(());
    }
    let settings = Settings::from_env()?;
    eprintln!("web bench: {settings:?}");
    let dir = target_dir().join("bench-web");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let fleet = Fleet::prepare(&settings, &dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let measured = runtime.block_on(measure(&settings, &fleet))?;
    let report = report(&settings, &fleet, &measured);
    print!("{report}");
    let out = target_dir().join("bench-web-results.md");
    std::fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("written to {}", out.display());
    Ok(())
}

#[derive(Debug, Clone)]
struct Settings {
    streams: usize,
    raw_days: i64,
    heartbeat_s: i64,
    rollup_days: i64,
    requests: usize,
    clients: usize,
    rebuild: bool,
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let settings = Settings {
            streams: env_number("BENCH_WEB_STREAMS", 1000)?,
            raw_days: env_number("BENCH_WEB_DAYS", 7)? as i64,
            heartbeat_s: env_number("BENCH_WEB_HEARTBEAT_SECONDS", 15)? as i64,
            rollup_days: env_number("BENCH_WEB_ROLLUP_DAYS", 30)? as i64,
            requests: env_number("BENCH_WEB_REQUESTS", 200)?,
            clients: env_number("BENCH_WEB_CLIENTS", 4)?,
            rebuild: std::env::var("BENCH_WEB_REBUILD").is_ok_and(|v| v == "1"),
        };
        if settings.streams == 0 || settings.raw_days == 0 || settings.heartbeat_s == 0 {
            bail!("BENCH_WEB_STREAMS, BENCH_WEB_DAYS and BENCH_WEB_HEARTBEAT_SECONDS must be at least 1");
        }
        if settings.rollup_days < settings.raw_days {
            bail!("BENCH_WEB_ROLLUP_DAYS must be at least BENCH_WEB_DAYS");
        }
        if settings.requests < 20 {
            bail!("BENCH_WEB_REQUESTS must be at least 20 for a p95 to mean anything");
        }
        Ok(settings)
    }

    fn heartbeat_ms(&self) -> i64 {
        self.heartbeat_s * 1000
    }
}

fn stream_name(index: usize) -> String {
    format!("cam-{index:04}")
}

/// The config the web server reads: every stream with a password in its URL (so the redaction
/// is part of what is measured). The addresses are loopback and never contacted: this benchmark
/// takes no snapshots.
fn config_text(settings: &Settings, db: &Path) -> String {
    let mut text = format!(
        "# generated by benches/web.rs\nheartbeat_seconds: {}\ntimezone: Europe/Berlin\nntp_server: 127.0.0.1:1\n\
         database: {}\nretention_days: {}\nstreams:\n",
        settings.heartbeat_s,
        db.display(),
        settings.raw_days
    );
    for index in 0..settings.streams {
        let _ = writeln!(
            text,
            "  - name: {}\n    url: rtsp://viewer:bench-secret@127.0.0.1:{}/stream1",
            stream_name(index),
            20_000 + index
        );
    }
    text
}

/// What one simulated camera does over the weeks.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Up, with a rare one-heartbeat glitch.
    Steady,
    /// Drops out several times a day for minutes.
    Flaky,
    /// Delivers video but now and then a frozen or black picture.
    Degrading,
    /// Went down for good some hours before the end, for this reason.
    Dead { since_ms: i64, reason: Reason },
}

/// One simulated camera: behaviour, typical latency and the spell it is in.
struct Camera {
    stream_id: i64,
    behaviour: Behaviour,
    base_latency_ms: f64,
    codec: &'static str,
    size: (u32, u32),
    port: usize,
    rng: StdRng,
    /// Heartbeats left in the current down or degraded spell, and its reason.
    spell_left: u32,
    spell: Option<(Health, Reason)>,
}

impl Camera {
    fn new(index: usize, stream_id: i64, end_ms: i64) -> Camera {
        let mut rng = StdRng::seed_from_u64(0x5EED_0000 + index as u64);
        let pick: f64 = rng.random();
        let behaviour = if pick < 0.88 {
            Behaviour::Steady
        } else if pick < 0.95 {
            Behaviour::Flaky
        } else if pick < 0.98 {
            Behaviour::Degrading
        } else {
            let reason = [
                Reason::Refused,
                Reason::Timeout(TimeoutStage::Connect),
                Reason::Unauthorized,
                Reason::NotFound,
            ][rng.random_range(0..4)];
            Behaviour::Dead {
                since_ms: end_ms - rng.random_range(HOUR_MS..4 * DAY_MS),
                reason,
            }
        };
        let (codec, size) = [
            ("h264", (1920, 1080)),
            ("h264", (1280, 720)),
            ("h265", (2560, 1440)),
            ("jpeg", (640, 480)),
        ][rng.random_range(0..4)];
        Camera {
            stream_id,
            behaviour,
            base_latency_ms: rng.random_range(40.0..400.0),
            codec,
            size,
            port: 20_000 + index,
            rng,
            spell_left: 0,
            spell: None,
        }
    }

    fn down_message(&self, reason: Reason) -> String {
        let address = format!("127.0.0.1:{}", self.port);
        match reason {
            Reason::Refused => format!("connection refused by {address}"),
            Reason::Timeout(TimeoutStage::Connect) => format!("no answer from {address} within 5 s"),
            Reason::Timeout(_) => "no video frame within 5 s".into(),
            Reason::Unauthorized => "the camera refused the credentials (401 Unauthorized)".into(),
            Reason::NotFound => "the camera has no stream at this path (404 Not Found)".into(),
            Reason::Frozen => "picture frozen: identical frames for 2 heartbeats".into(),
            Reason::Black => "picture black (mean luma 4)".into(),
            _ => "stream ended before the first frame".into(),
        }
    }

    /// The next heartbeat of this camera at `ts_ms`.
    fn heartbeat(&mut self, ts_ms: i64) -> Heartbeat {
        let (health, reason) = match self.behaviour {
            Behaviour::Dead { since_ms, reason } if ts_ms >= since_ms => (Health::Down, Some(reason)),
            _ => self.next_spell_step(),
        };
        let video = health != Health::Down;
        let latency_ms = video.then(|| {
            let jitter: f64 = self.rng.random_range(0.7..1.3);
            let spike = if self.rng.random::<f64>() < 0.01 { 3.0 } else { 1.0 };
            (self.base_latency_ms * jitter * spike) as u64
        });
        Heartbeat {
            stream_id: self.stream_id,
            ts_ms,
            ntp_synced: true,
            outcome: ProbeOutcome {
                health,
                latency_ms,
                reason,
                message: reason.map(|r| self.down_message(r)).unwrap_or_default(),
                codec: video.then(|| self.codec.to_string()),
                width: video.then_some(self.size.0),
                height: video.then_some(self.size.1),
                fps: None,
                bitrate_kbps: None,
                picture: None,
            },
        }
    }

    fn next_spell_step(&mut self) -> (Health, Option<Reason>) {
        if self.spell_left == 0 {
            self.spell = None;
            // (chance per heartbeat that a spell starts, mean length in heartbeats, what it is)
            let (chance, mean, kind) = match self.behaviour {
                Behaviour::Steady => (
                    1.0 / 20_000.0,
                    2.0,
                    (Health::Down, Reason::Timeout(TimeoutStage::FirstFrame)),
                ),
                Behaviour::Flaky => (1.0 / 500.0, 20.0, (Health::Down, Reason::Refused)),
                Behaviour::Degrading => (1.0 / 1_000.0, 40.0, (Health::Degraded, Reason::Frozen)),
                Behaviour::Dead { .. } => (
                    1.0 / 5_000.0,
                    4.0,
                    (Health::Down, Reason::Timeout(TimeoutStage::Connect)),
                ),
            };
            if self.rng.random::<f64>() < chance {
                // Geometric length with the given mean, at least one heartbeat.
                let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
                self.spell_left = 1 + (-u.ln() * (mean - 1.0)) as u32;
                let kind = if kind.0 == Health::Degraded && self.rng.random::<f64>() < 0.3 {
                    (Health::Degraded, Reason::Black)
                } else {
                    kind
                };
                self.spell = Some(kind);
            }
        }
        match self.spell {
            Some((health, reason)) => {
                self.spell_left -= 1;
                (health, Some(reason))
            }
            None => (Health::Up, None),
        }
    }
}

/// An hour of one stream, as `heartbeat_hourly` stores it.
#[derive(Default, Clone)]
struct HourRollup {
    hour_ms: i64,
    up: i64,
    degraded: i64,
    down: i64,
    latency_sum_ms: i64,
    latency_count: i64,
    latency_max_ms: Option<i64>,
}

/// Rollups, outages and counters of the days before the raw window, as the writer would have
/// left them once retention pruned the raw rows.
struct OldHistory<'a> {
    tx: rusqlite::Transaction<'a>,
    hours: Vec<HourRollup>,
    last_health: Vec<Option<Health>>,
    counts: Vec<std::collections::HashMap<&'static str, i64>>,
}

impl<'a> OldHistory<'a> {
    fn new(tx: rusqlite::Transaction<'a>, streams: usize) -> OldHistory<'a> {
        OldHistory {
            tx,
            hours: vec![HourRollup::default(); streams],
            last_health: vec![None; streams],
            counts: vec![Default::default(); streams],
        }
    }

    fn add(&mut self, index: usize, beat: &Heartbeat) -> Result<()> {
        let hour_ms = beat.ts_ms - beat.ts_ms.rem_euclid(HOUR_MS);
        if self.hours[index].hour_ms != hour_ms {
            self.flush_hour(index, beat.stream_id)?;
            self.hours[index] = HourRollup {
                hour_ms,
                ..HourRollup::default()
            };
        }
        let hour = &mut self.hours[index];
        match beat.outcome.health {
            Health::Up => hour.up += 1,
            Health::Degraded => hour.degraded += 1,
            Health::Down => hour.down += 1,
        }
        if let Some(latency) = beat.outcome.latency_ms {
            let latency = latency as i64;
            hour.latency_sum_ms += latency;
            hour.latency_count += 1;
            hour.latency_max_ms = Some(hour.latency_max_ms.map_or(latency, |max| max.max(latency)));
        }
        let outcome = match (beat.outcome.health, beat.outcome.reason) {
            (Health::Up, _) => "up",
            (Health::Degraded, _) => "degraded",
            (Health::Down, Some(reason)) => reason.code(),
            (Health::Down, None) => "other",
        };
        *self.counts[index].entry(outcome).or_default() += 1;
        let previous = self.last_health[index];
        if beat.outcome.health == Health::Down && previous != Some(Health::Down) {
            self.tx.execute(
                "INSERT INTO outages (stream_id, start_ms, end_ms, reason, message) VALUES (?1, ?2, NULL, ?3, ?4)",
                params![beat.stream_id, beat.ts_ms, beat.outcome.reason.map(Reason::code), beat.outcome.message],
            )?;
        } else if beat.outcome.health != Health::Down && previous == Some(Health::Down) {
            self.close_outage(beat.stream_id, beat.ts_ms)?;
        }
        self.last_health[index] = Some(beat.outcome.health);
        Ok(())
    }

    fn close_outage(&self, stream_id: i64, end_ms: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE outages SET end_ms = ?2 WHERE stream_id = ?1 AND end_ms IS NULL",
            params![stream_id, end_ms],
        )?;
        Ok(())
    }

    fn flush_hour(&mut self, index: usize, stream_id: i64) -> Result<()> {
        let hour = &self.hours[index];
        if hour.up + hour.degraded + hour.down == 0 {
            return Ok(());
        }
        self.tx
            .prepare_cached(
                "INSERT INTO heartbeat_hourly (stream_id, hour_ms, up_count, degraded_count, down_count,
                     latency_sum_ms, latency_count, latency_max_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                stream_id,
                hour.hour_ms,
                hour.up,
                hour.degraded,
                hour.down,
                hour.latency_sum_ms,
                hour.latency_count,
                hour.latency_max_ms
            ])?;
        Ok(())
    }

    /// Writes what is left and closes outages still open at `boundary_ms`: the raw window's
    /// writer starts without a status row, so it opens its own outage if the camera is still down.
    fn finish(mut self, ids: &[i64], boundary_ms: i64) -> Result<()> {
        for (index, &stream_id) in ids.iter().enumerate() {
            self.flush_hour(index, stream_id)?;
            if self.last_health[index] == Some(Health::Down) {
                self.close_outage(stream_id, boundary_ms)?;
            }
            for (outcome, count) in &self.counts[index] {
                self.tx.execute(
                    "INSERT INTO probe_counts (stream_id, outcome, count) VALUES (?1, ?2, ?3)",
                    params![stream_id, outcome, count],
                )?;
            }
        }
        // Tell the queries that raw rows before the window are gone, as retention would have.
        self.tx.execute(
            "INSERT OR REPLACE INTO store_meta (key, value) VALUES ('pruned_before_ms', ?1)",
            params![boundary_ms],
        )?;
        self.tx.commit()?;
        Ok(())
    }
}

/// The database and config the web server is measured on.
struct Fleet {
    config_path: PathBuf,
    db_path: PathBuf,
    /// Time of the newest heartbeat; the web server's clock is set just after it.
    end_ms: i64,
    build: Option<BuildStats>,
    /// The file was built by an earlier run (its build figures are that run's).
    reused: bool,
    db_bytes: u64,
    raw_rows: i64,
    rollup_rows: i64,
    outage_rows: i64,
}

struct BuildStats {
    seconds: f64,
    raw_heartbeats: u64,
    raw_seconds: f64,
}

impl BuildStats {
    /// `end_ms seconds raw_heartbeats raw_seconds`, the marker file's one line.
    fn marker(&self, end_ms: i64) -> String {
        format!(
            "{end_ms} {} {} {}",
            self.seconds, self.raw_heartbeats, self.raw_seconds
        )
    }

    fn parse_marker(text: &str) -> Option<(i64, Option<BuildStats>)> {
        let mut fields = text.split_whitespace();
        let end_ms = fields.next()?.parse().ok()?;
        let stats = (|| {
            Some(BuildStats {
                seconds: fields.next()?.parse().ok()?,
                raw_heartbeats: fields.next()?.parse().ok()?,
                raw_seconds: fields.next()?.parse().ok()?,
            })
        })();
        Some((end_ms, stats))
    }
}

impl Fleet {
    fn prepare(settings: &Settings, dir: &Path) -> Result<Fleet> {
        let stem = format!(
            "fleet-{}x{}d-{}s-r{}d-g{GENERATOR_VERSION}",
            settings.streams, settings.raw_days, settings.heartbeat_s, settings.rollup_days
        );
        let db_path = dir.join(format!("{stem}.db"));
        let done_path = dir.join(format!("{stem}.done"));
        let config_path = dir.join(format!("{stem}.yaml"));
        std::fs::write(&config_path, config_text(settings, &db_path))?;

        let reusable = !settings.rebuild && db_path.exists();
        let previous = std::fs::read_to_string(&done_path)
            .ok()
            .and_then(|text| BuildStats::parse_marker(&text));
        let (end_ms, build, reused) = match previous {
            Some((end_ms, stats)) if reusable => {
                eprintln!(
                    "reusing {} (BENCH_WEB_REBUILD=1 builds it again)",
                    db_path.display()
                );
                (end_ms, stats, true)
            }
            _ => {
                let _ = std::fs::remove_file(&done_path);
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
                }
                let (end_ms, stats) = build_database(settings, &config_path, &db_path)?;
                std::fs::write(&done_path, stats.marker(end_ms))?;
                (end_ms, Some(stats), false)
            }
        };
        let conn = rusqlite::Connection::open(&db_path)?;
        let count = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [], |row| row.get(0))?) };
        let fleet = Fleet {
            raw_rows: count("SELECT count(*) FROM heartbeats")?,
            rollup_rows: count("SELECT count(*) FROM heartbeat_hourly")?,
            outage_rows: count("SELECT count(*) FROM outages")?,
            db_bytes: file_bytes(&db_path),
            config_path,
            db_path,
            end_ms,
            build,
            reused,
        };
        eprintln!(
            "database: {} raw heartbeats, {} hourly rollups, {} outages, {:.2} GB",
            fleet.raw_rows,
            fleet.rollup_rows,
            fleet.outage_rows,
            fleet.db_bytes as f64 / 1e9
        );
        Ok(fleet)
    }
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Simulates the fleet from `rollup_days` ago until now: the older days become hourly rollups,
/// the last `raw_days` go through `Store::record`.
fn build_database(settings: &Settings, config_path: &Path, db_path: &Path) -> Result<(i64, BuildStats)> {
    let started = Instant::now();
    let config = config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let heartbeat_ms = settings.heartbeat_ms();
    let now = system_now_ms();
    let last_tick = now - now.rem_euclid(heartbeat_ms) - heartbeat_ms;
    let first_tick = last_tick - settings.rollup_days * DAY_MS;
    let raw_from = last_tick - settings.raw_days * DAY_MS;

    let mut store = Store::open(db_path)?;
    let identities = stream_identities(&config);
    let ids = store.resolve_streams(&identities, first_tick)?;
    let phases: Vec<i64> = config
        .streams
        .iter()
        .map(|s| phase_for(&s.name, Duration::from_millis(heartbeat_ms as u64)).as_millis() as i64)
        .collect();
    let mut cameras: Vec<Camera> = ids
        .iter()
        .enumerate()
        .map(|(index, &id)| Camera::new(index, id, last_tick))
        .collect();
    drop(store);

    // Days before the raw window: hourly rollups only, in one transaction on a plain connection.
    let mut conn = rusqlite::Connection::open(db_path)?;
    let mut old = OldHistory::new(conn.transaction()?, cameras.len());
    let mut tick = first_tick;
    while tick < raw_from {
        for (index, camera) in cameras.iter_mut().enumerate() {
            let beat = camera.heartbeat(tick + phases[index]);
            old.add(index, &beat)?;
        }
        tick += heartbeat_ms;
    }
    old.finish(&ids, raw_from)?;
    drop(conn);
    eprintln!(
        "rollups of {} days written in {:.0} s",
        settings.rollup_days - settings.raw_days,
        started.elapsed().as_secs_f64()
    );

    // The raw window, through the product's writer code.
    let raw_started = Instant::now();
    let mut store = Store::open(db_path)?;
    let mut batch = Vec::with_capacity(cameras.len() * TICKS_PER_BATCH);
    let mut written: u64 = 0;
    let mut next_report = raw_from + DAY_MS;
    while tick <= last_tick {
        for _ in 0..TICKS_PER_BATCH {
            if tick > last_tick {
                break;
            }
            for (index, camera) in cameras.iter_mut().enumerate() {
                batch.push(camera.heartbeat(tick + phases[index]));
            }
            tick += heartbeat_ms;
        }
        store.record(&batch)?;
        written += batch.len() as u64;
        batch.clear();
        if tick >= next_report {
            let seconds = raw_started.elapsed().as_secs_f64();
            eprintln!(
                "  raw day {} of {}: {written} heartbeats in {seconds:.0} s ({:.0}/s)",
                (tick - raw_from) / DAY_MS,
                settings.raw_days,
                written as f64 / seconds
            );
            next_report += DAY_MS;
        }
    }
    let raw_seconds = raw_started.elapsed().as_secs_f64();
    drop(store);
    let conn = rusqlite::Connection::open(db_path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let end_ms = last_tick + heartbeat_ms - 1;
    Ok((
        end_ms,
        BuildStats {
            seconds: started.elapsed().as_secs_f64(),
            raw_heartbeats: written,
            raw_seconds,
        },
    ))
}

/// Latencies of one endpoint, in milliseconds.
#[derive(Debug, Default, Clone)]
struct Timings {
    ms: Vec<f64>,
    bytes: usize,
}

impl Timings {
    fn percentile(&self, pct: f64) -> f64 {
        percentile(&self.ms, pct)
    }

    fn max(&self) -> f64 {
        self.ms.iter().copied().fold(f64::NAN, f64::max)
    }
}

/// One GET over a fresh loopback connection, as a browser without keep-alive would send it,
/// optionally asking for gzip; returns the status, the body length as sent and the time from
/// connect to the last byte.
async fn get(addr: std::net::SocketAddr, path: &str, auth: &Auth, gzip: bool) -> Result<(u16, usize, f64)> {
    let started = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(addr).await?;
    let credentials = match auth {
        Auth::Cookie(cookie) => format!("Cookie: {SESSION_COOKIE}={cookie}\r\n"),
        Auth::Bearer(token) => format!("Authorization: Bearer {token}\r\n"),
        Auth::None => String::new(),
    };
    let encoding = if gzip { "Accept-Encoding: gzip\r\n" } else { "" };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{credentials}{encoding}Connection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await?;
    let mut response = Vec::with_capacity(256 * 1024);
    socket.read_to_end(&mut response).await?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("response without a header end")?;
    let status_line = String::from_utf8_lossy(&response[..head_end.min(64)]).into_owned();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    Ok((status, response.len() - head_end - 4, elapsed))
}

#[derive(Clone)]
enum Auth {
    Cookie(String),
    Bearer(String),
    None,
}

/// What a run asks for: a label and the paths (cycled through).
struct Endpoint {
    label: &'static str,
    paths: Vec<String>,
    auth: Auth,
    gzip: bool,
}

async fn time_endpoint(addr: std::net::SocketAddr, endpoint: &Endpoint, requests: usize) -> Result<Timings> {
    let mut timings = Timings::default();
    for k in 0..requests {
        let path = &endpoint.paths[k % endpoint.paths.len()];
        let (status, bytes, ms) = get(addr, path, &endpoint.auth, endpoint.gzip).await?;
        if status != 200 {
            bail!("{} answered {status} for {path}", endpoint.label);
        }
        timings.ms.push(ms);
        timings.bytes = timings.bytes.max(bytes);
    }
    Ok(timings)
}

/// Drops the database's pages from the kernel's page cache, as after a reboot.
fn evict_from_page_cache(db: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", db.display());
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        // SAFETY: a valid open descriptor; the call only drops clean cached pages.
        let result = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if result != 0 {
            bail!("posix_fadvise({path}) failed: {result}");
        }
    }
    Ok(())
}

fn resident_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Server {
    addr: std::net::SocketAddr,
    state: Arc<WebState>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_server(fleet: &Fleet) -> Result<Server> {
    let mut options = WebOptions::new(&fleet.config_path);
    options.db_path = Some(fleet.db_path.clone());
    let state = WebState::new(options).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The history ends at `end_ms`; a reused file is older than now, so the server's clock is set
    // back (as an NTP offset would) to just after its newest heartbeat.
    state.clock().set_offset(fleet.end_ms + 2_000 - system_now_ms());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(streampulse::web::serve(
        listener,
        Arc::clone(&state),
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Server {
        addr,
        state,
        stop,
        task,
    })
}

impl Server {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

struct Measured {
    cold: Vec<(&'static str, f64, usize)>,
    warm: Vec<(&'static str, Timings)>,
    concurrent: Option<(usize, Timings)>,
    uptimes_ms: Timings,
    raw_uptime_ms: Timings,
    rss_mb: f64,
}

async fn measure(settings: &Settings, fleet: &Fleet) -> Result<Measured> {
    // A user and an API token, as `streampulse user add` and `token create` would make them.
    let (cookie, token) = {
        let accounts = Accounts::open(&fleet.db_path)?;
        let now = fleet.end_ms;
        let user_id = match accounts.add_user("bench", "bench password 123", now) {
            Ok(id) => id,
            Err(_) => accounts
                .verify_password("bench", "bench password 123")?
                .context("the bench user exists with another password")?,
        };
        let cookie = accounts.create_session(user_id, now)?;
        let token = accounts.create_token(&format!("bench-{}", system_now_ms()), TokenScope::Read, now)?;
        (cookie, token)
    };
    let page = Auth::Cookie(cookie);
    let api = Auth::Bearer(token);
    let stream_paths = |range: &str| -> Vec<String> {
        (0..settings.streams)
            .step_by(7)
            .map(|i| format!("/streams/{}?range={range}", stream_name(i)))
            .collect()
    };
    let endpoints = [
        Endpoint {
            label: "`/healthz` (HTTP floor)",
            paths: vec!["/healthz".into()],
            auth: Auth::None,
            gzip: false,
        },
        Endpoint {
            label: "dashboard `/`",
            paths: vec!["/".into()],
            auth: page.clone(),
            gzip: false,
        },
        Endpoint {
            label: "dashboard `/`, gzip",
            paths: vec!["/".into()],
            auth: page.clone(),
            gzip: true,
        },
        Endpoint {
            label: "`/api/v1/streams`",
            paths: vec!["/api/v1/streams".into()],
            auth: api.clone(),
            gzip: false,
        },
        Endpoint {
            label: "stream page, 30 days",
            paths: stream_paths("30d"),
            auth: page.clone(),
            gzip: false,
        },
        Endpoint {
            label: "stream page, 7 days",
            paths: stream_paths("7d"),
            auth: page.clone(),
            gzip: false,
        },
        Endpoint {
            label: "stream page, 24 hours",
            paths: stream_paths("24h"),
            auth: page.clone(),
            gzip: false,
        },
        Endpoint {
            label: "`/metrics`",
            paths: vec!["/metrics".into()],
            auth: api.clone(),
            gzip: false,
        },
    ];

    // Cold: a fresh server, the database out of the page cache, nothing computed yet.
    evict_from_page_cache(&fleet.db_path)?;
    let server = start_server(fleet).await?;
    let mut cold = Vec::new();
    for endpoint in [&endpoints[1], &endpoints[3], &endpoints[4]] {
        let (status, bytes, ms) = get(server.addr, &endpoint.paths[0], &endpoint.auth, false).await?;
        if status != 200 {
            bail!("{} answered {status} when cold", endpoint.label);
        }
        eprintln!("cold {}: {ms:.0} ms", endpoint.label);
        cold.push((endpoint.label, ms, bytes));
    }

    // Warm, one request at a time (the uptime cache refreshes in the background as in production).
    let mut warm = Vec::new();
    for endpoint in &endpoints {
        time_endpoint(server.addr, endpoint, 5).await?;
        let timings = time_endpoint(server.addr, endpoint, settings.requests).await?;
        eprintln!(
            "warm {}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms, {} bytes",
            endpoint.label,
            timings.percentile(50.0),
            timings.percentile(95.0),
            timings.max(),
            timings.bytes
        );
        warm.push((endpoint.label, timings));
    }

    // A few people (or dashboards left open) at once: each client alternates dashboard and API.
    let concurrent = if settings.clients > 0 {
        let mut clients = Vec::new();
        for client in 0..settings.clients {
            let (addr, page, api) = (server.addr, page.clone(), api.clone());
            let per_client = settings.requests / settings.clients.max(1) + 1;
            clients.push(tokio::spawn(async move {
                let mut timings = Timings::default();
                for k in 0..per_client {
                    let (path, auth) = if (k + client) % 2 == 0 {
                        ("/", &page)
                    } else {
                        ("/api/v1/streams", &api)
                    };
                    let (status, _, ms) = get(addr, path, auth, false).await?;
                    if status != 200 {
                        bail!("{path} answered {status} under load");
                    }
                    timings.ms.push(ms);
                }
                Ok::<_, anyhow::Error>(timings)
            }));
        }
        let mut all = Timings::default();
        for client in clients {
            all.ms.extend(client.await??.ms);
        }
        eprintln!(
            "{} clients at once (dashboard + API): p50 {:.1} ms, p95 {:.1} ms",
            settings.clients,
            all.percentile(50.0),
            all.percentile(95.0)
        );
        Some((settings.clients, all))
    } else {
        None
    };
    let rss_mb = resident_kb() as f64 / 1024.0;
    let now_ms = server.state.now_ms();
    server.stop().await;

    // What the uptime cache saves a request: the rollup aggregate over every stream, uncached.
    let db = fleet.db_path.clone();
    let uptimes_ms = tokio::task::spawn_blocking(move || -> Result<Timings> {
        let store = Store::open_read_only(&db)?;
        let mut timings = Timings::default();
        for _ in 0..10 {
            let started = Instant::now();
            let uptimes = fleet::Uptimes::query(&store, now_ms)?;
            timings.ms.push(started.elapsed().as_secs_f64() * 1000.0);
            if uptimes.week.is_empty() {
                bail!("no uptimes computed");
            }
        }
        Ok(timings)
    })
    .await??;

    // Baseline: the same 7-day uptime of every stream from raw heartbeats, as without rollups.
    let db = fleet.db_path.clone();
    let raw_uptime_ms = tokio::task::spawn_blocking(move || -> Result<Timings> {
        let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut select = conn.prepare(
            "SELECT stream_id, sum(health = 1), sum(health = 2), sum(health = 0) FROM heartbeats
             WHERE ts_ms >= ?1 AND ts_ms < ?2 GROUP BY stream_id",
        )?;
        let mut timings = Timings::default();
        for _ in 0..3 {
            let started = Instant::now();
            let rows = select
                .query_map(params![now_ms - 7 * DAY_MS, now_ms], |row| row.get::<_, i64>(1))?
                .count();
            timings.ms.push(started.elapsed().as_secs_f64() * 1000.0);
            if rows == 0 {
                bail!("the raw uptime query found no rows");
            }
        }
        Ok(timings)
    })
    .await??;
    eprintln!(
        "uptime aggregate: rollups {:.0} ms, raw heartbeats {:.0} ms",
        uptimes_ms.percentile(50.0),
        raw_uptime_ms.percentile(50.0)
    );

    Ok(Measured {
        cold,
        warm,
        concurrent,
        uptimes_ms,
        raw_uptime_ms,
        rss_mb,
    })
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

fn report(settings: &Settings, fleet: &Fleet, measured: &Measured) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Web benchmark (`make bench-web`)\n");
    let _ = writeln!(
        out,
        "{} streams, {} days of {} s heartbeats ({} raw rows), {} days of hourly rollups ({} rows), {} outages; \
         database {:.2} GB. {} cores, {} (load average {}).\n",
        settings.streams,
        settings.raw_days,
        settings.heartbeat_s,
        fleet.raw_rows,
        settings.rollup_days,
        fleet.rollup_rows,
        fleet.outage_rows,
        fleet.db_bytes as f64 / 1e9,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        load_average()
    );
    match &fleet.build {
        Some(build) => {
            let _ = writeln!(
                out,
                "{} in {:.0} s; the raw window went through `Store::record` at {:.0} heartbeats/s \
                 ({:.0}× what {} streams at {} s need).\n",
                if fleet.reused {
                    "Database reused; an earlier run built it"
                } else {
                    "Built"
                },
                build.seconds,
                build.raw_heartbeats as f64 / build.raw_seconds,
                build.raw_heartbeats as f64
                    / build.raw_seconds
                    / (settings.streams as f64 / settings.heartbeat_s as f64),
                settings.streams,
                settings.heartbeat_s
            );
        }
        None => {
            let _ = writeln!(
                out,
                "Database reused from an earlier run (its build figures were not kept).\n"
            );
        }
    }
    let _ = writeln!(
        out,
        "Sequential requests over loopback HTTP, {} per endpoint after 5 warm-up ones; the database in the \
         page cache.\n",
        settings.requests
    );
    let _ = writeln!(
        out,
        "| endpoint | p50 ms | p95 ms | max ms | body KB | target | |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---|");
    for (label, timings) in &measured.warm {
        let target = if label.starts_with("dashboard") {
            Some(TARGET_DASHBOARD_P95_MS)
        } else if label.starts_with("`/api/v1/streams") {
            Some(TARGET_API_P95_MS)
        } else if label.ends_with("30 days") {
            Some(TARGET_STREAM_30D_P95_MS)
        } else {
            None
        };
        let p95 = timings.percentile(95.0);
        let _ = writeln!(
            out,
            "| {label} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {} |",
            timings.percentile(50.0),
            p95,
            timings.max(),
            timings.bytes as f64 / 1024.0,
            target.map_or(String::new(), |t| format!("p95 < {t:.0} ms")),
            target.map_or("", |t| verdict(p95 < t)),
        );
    }
    if let Some((clients, timings)) = &measured.concurrent {
        let _ = writeln!(
            out,
            "\n{clients} clients at once, each alternating dashboard and API: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms.",
            timings.percentile(50.0),
            timings.percentile(95.0),
            timings.max()
        );
    }
    let _ = writeln!(
        out,
        "\nCold start (fresh server, database evicted from the page cache, nothing cached): {}.",
        measured
            .cold
            .iter()
            .map(|(label, ms, _)| format!("{label} {ms:.0} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rollup = measured.uptimes_ms.percentile(50.0);
    let raw = measured.raw_uptime_ms.percentile(50.0);
    let _ = writeln!(
        out,
        "\nBaseline in the same run: the 24 h + 7 d uptime of every stream from hourly rollups takes {rollup:.0} ms \
         (the web server caches it for 15 s and refreshes it in the background); the 7-day uptime alone from \
         raw heartbeats, as without rollups, takes {raw:.0} ms: rollups are {:.3} of it. The warm dashboard's p95 \
         is {:.3} of the raw aggregate.",
        rollup / raw,
        measured
            .warm
            .iter()
            .find(|(label, _)| label.starts_with("dashboard"))
            .map_or(f64::NAN, |(_, t)| t.percentile(95.0))
            / raw
    );
    let _ = writeln!(
        out,
        "\nResident memory of this process (server + client) after the runs: {:.0} MB.",
        measured.rss_mb
    );
    out
}
