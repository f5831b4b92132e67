//! The single writer: a dedicated thread that owns the writing [`Store`], so probes never wait
//! on SQLite and writes never contend with each other.
//!
//! Heartbeats arrive over a channel and whatever is queued is written as one transaction.
//! Stream resolution, flushes, prunes and shutdown travel over the same channel, so they are
//! ordered with the heartbeats sent before them.
//!
//! **Disk full.** When a write fails for lack of space, the writer holds heartbeats in memory
//! (the last [`WriterOptions::disk_full_buffer`] of them, by heartbeat time, and at most
//! [`WriterOptions::disk_full_buffer_max_heartbeats`]; the oldest go first), tries again every
//! [`WriterOptions::disk_full_retry`], and once a write succeeds writes them in the order they
//! arrived, in transactions of [`WriterOptions::max_batch`], before any newer one. It logs one
//! line when the disk fills, at most one a minute while it stays full, and one when it recovers,
//! and reports its state in the status file next to the database ([`super::monitor_status`]).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::monitor_status::{filesystem_free_bytes, MonitorStatus, StatusFile, STATUS_REFRESH_WHILE_FULL_MS};
use super::write::{PruneProgress, PRUNE_CHUNK_ROWS};
use super::{Heartbeat, Store, StoreError, StreamIdentity};
use crate::clock::system_now_ms;

/// How long the writer waits before retrying a failed write.
const RETRY_DELAY: Duration = Duration::from_millis(250);
/// At most one log line this often while the disk stays full.
const DISK_FULL_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// An I/O error with less free space than this on the database's filesystem counts as a full
/// disk (SQLite reports some `ENOSPC` as `SQLITE_IOERR_*`, e.g. growing the WAL index).
const LOW_SPACE_BYTES: u64 = 1 << 20;

/// Heartbeats held while the disk is full, by default: the last 10 minutes of them.
pub const DEFAULT_DISK_FULL_BUFFER: Duration = Duration::from_secs(10 * 60);
/// Most heartbeats held while the disk is full, however long the window: a memory guard for
/// large fleets. Measured about 185 bytes each (a 136-byte struct plus its codec and message
/// strings), so 100,000 (10 minutes of 1,000 streams at 6 s) hold about 19 MB.
pub const DISK_FULL_BUFFER_MAX_HEARTBEATS: usize = 100_000;

/// Tuning of the writer thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Most heartbeats written in one transaction; more queued are written in further ones.
    pub max_batch: usize,
    /// Most raw heartbeats deleted per prune transaction; queued heartbeats are written between.
    pub prune_chunk_rows: usize,
    /// While the disk is full, heartbeats this much older than the newest held one are dropped;
    /// `None` holds none (each one that cannot be written is dropped and counted).
    pub disk_full_buffer: Option<Duration>,
    /// Most heartbeats held while the disk is full.
    pub disk_full_buffer_max_heartbeats: usize,
    /// How often held heartbeats are tried again while the disk is full.
    pub disk_full_retry: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_batch: 5_000,
            prune_chunk_rows: PRUNE_CHUNK_ROWS,
            disk_full_buffer: Some(DEFAULT_DISK_FULL_BUFFER),
            disk_full_buffer_max_heartbeats: DISK_FULL_BUFFER_MAX_HEARTBEATS,
            disk_full_retry: Duration::from_secs(5),
        }
    }
}

enum Command {
    Heartbeat(Heartbeat),
    Resolve {
        streams: Vec<StreamIdentity>,
        now_ms: i64,
        reply: Sender<Result<Vec<i64>, StoreError>>,
    },
    Flush {
        reply: Sender<()>,
    },
    Prune {
        older_than_ms: i64,
        reply: Sender<Result<usize, StoreError>>,
    },
    Shutdown {
        reply: Sender<()>,
    },
    AlertPlan(std::sync::Arc<crate::alert::AlertPlan>),
    Learned {
        stream_id: i64,
        facts: super::learned::LearnedFacts,
        now_ms: i64,
    },
    LoadLearned {
        stream_id: i64,
        // Awaited by a stream's task: a blocking reply would park one thread per stream.
        reply: tokio::sync::oneshot::Sender<Result<Option<super::learned::LearnedRow>, StoreError>>,
    },
}

/// Sends work to the writer thread. Cheap to clone; [`WriterHandle::send`] never blocks, the
/// other methods block until the writer has done what they ask (from async code, call them in
/// `spawn_blocking`).
#[derive(Debug, Clone)]
pub struct WriterHandle {
    sender: Sender<Command>,
}

/// Opens the database for writing (applying migrations) and starts the writer thread that owns
/// it. The thread ends after [`WriterHandle::shutdown`], or when every handle is dropped (after
/// writing what was queued).
pub fn spawn_writer(
    path: impl AsRef<Path>,
    options: WriterOptions,
) -> Result<(WriterHandle, JoinHandle<()>), StoreError> {
    let store = Store::open(path)?;
    let status_file = StatusFile::create(
        store.path(),
        &MonitorStatus {
            pid: std::process::id(),
            updated_ms: system_now_ms(),
            ..MonitorStatus::default()
        },
    );
    let (sender, receiver) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("store-writer".to_owned())
        .spawn(move || {
            Writer {
                store,
                options,
                batch: Vec::new(),
                prune: None,
                held: VecDeque::new(),
                newest_held_ms: i64::MIN,
                full: None,
                dropped_total: 0,
                written_back_total: 0,
                status_file,
                status_changed: false,
            }
            .run(receiver)
        })
        .map_err(StoreError::Thread)?;
    Ok((WriterHandle { sender }, thread))
}

impl WriterHandle {
    /// Queues a heartbeat. Fails only when the writer thread has stopped.
    pub fn send(&self, heartbeat: Heartbeat) -> Result<(), StoreError> {
        self.sender
            .send(Command::Heartbeat(heartbeat))
            .map_err(|_| StoreError::WriterStopped)
    }

    /// [`Store::resolve_streams`] on the writer, after the heartbeats already sent are written.
    pub fn resolve(&self, streams: &[StreamIdentity], now_ms: i64) -> Result<Vec<i64>, StoreError> {
        let (reply, response) = mpsc::channel();
        self.request(
            Command::Resolve {
                streams: streams.to_vec(),
                now_ms,
                reply,
            },
            response,
        )?
    }

    /// Waits until every heartbeat sent before has been written (or its failure logged, or, with
    /// the disk full, held in memory).
    pub fn flush(&self) -> Result<(), StoreError> {
        let (reply, response) = mpsc::channel();
        self.request(Command::Flush { reply }, response)
    }

    /// [`Store::prune`] on the writer: heartbeats queued meanwhile are written between the
    /// prune's chunks. Returns the number of raw heartbeats deleted.
    pub fn prune(&self, older_than_ms: i64) -> Result<usize, StoreError> {
        let (reply, response) = mpsc::channel();
        self.request(Command::Prune { older_than_ms, reply }, response)?
    }

    /// Confirmed states and notifications follow `plan` from the next heartbeat on (at start and
    /// after every reload).
    pub fn set_alert_plan(&self, plan: crate::alert::AlertPlan) -> Result<(), StoreError> {
        self.sender
            .send(Command::AlertPlan(std::sync::Arc::new(plan)))
            .map_err(|_| StoreError::WriterStopped)
    }

    /// Saves what the probes learned about a stream (sent only when it changed).
    pub fn save_learned(
        &self,
        stream_id: i64,
        facts: super::learned::LearnedFacts,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.sender
            .send(Command::Learned {
                stream_id,
                facts,
                now_ms,
            })
            .map_err(|_| StoreError::WriterStopped)
    }

    /// What an earlier run learned about a stream. Awaits the writer instead of blocking a
    /// thread: every stream's task asks at start, and a fleet of thousands would otherwise fill
    /// the runtime's blocking pool with threads that then linger (issue 16).
    pub async fn learned(&self, stream_id: i64) -> Result<Option<super::learned::LearnedRow>, StoreError> {
        let (reply, response) = tokio::sync::oneshot::channel();
        self.sender
            .send(Command::LoadLearned { stream_id, reply })
            .map_err(|_| StoreError::WriterStopped)?;
        response.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Writes everything queued before this call, closes the database and stops the thread;
    /// returns once that is done, so joining the thread afterwards does not wait. Heartbeats sent
    /// after this (from other handles) are dropped.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        let (reply, response) = mpsc::channel();
        self.request(Command::Shutdown { reply }, response)
    }

    fn request<T>(&self, command: Command, response: Receiver<T>) -> Result<T, StoreError> {
        self.sender.send(command).map_err(|_| StoreError::WriterStopped)?;
        response.recv().map_err(|_| StoreError::WriterStopped)
    }
}

struct Writer {
    store: Store,
    options: WriterOptions,
    batch: Vec<Heartbeat>,
    prune: Option<(PruneProgress, Sender<Result<usize, StoreError>>)>,
    /// Heartbeats waiting for disk space, in the order they arrived.
    held: VecDeque<Heartbeat>,
    /// The newest heartbeat time among those held since the disk filled.
    newest_held_ms: i64,
    /// Set while the disk is full.
    full: Option<DiskFull>,
    /// Heartbeats dropped for lack of space since the writer started.
    dropped_total: u64,
    /// Held heartbeats written once space returned, since the writer started.
    written_back_total: u64,
    status_file: StatusFile,
    /// The status file must be rewritten (the disk filled or recovered).
    status_changed: bool,
}

/// The writer's state while writes fail for lack of space.
struct DiskFull {
    since_ms: i64,
    since: Instant,
    error: String,
    next_retry: Instant,
    last_log: Instant,
    last_status: Instant,
    /// Heartbeats dropped since the disk filled.
    dropped: u64,
    /// Held heartbeats written since the disk filled (some may be written before it all fits).
    written_back: u64,
}

/// A write that stopped because the disk is full: heartbeats from `unwritten_from` on were not
/// written.
struct OutOfSpace {
    unwritten_from: usize,
    error: StoreError,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Command>) {
        let shutdown_reply = loop {
            // While a prune is under way, poll so that its chunks go on when nothing is queued.
            let first = if self.prune.is_some() {
                match receiver.try_recv() {
                    Ok(command) => Some(command),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break None,
                }
            } else if let Some(wait) = self.next_disk_full_duty() {
                // While the disk is full, wake up to retry, log and refresh the status file.
                match receiver.recv_timeout(wait) {
                    Ok(command) => Some(command),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break None,
                }
            } else {
                match receiver.recv() {
                    Ok(command) => Some(command),
                    Err(_) => break None,
                }
            };
            if let Some(shutdown) = self.handle_queued(first, &receiver) {
                break Some(shutdown);
            }
            self.write_batch();
            self.disk_full_duties();
            self.prune_step();
        };
        self.write_batch();
        self.release_held_at_shutdown();
        if let Some((progress, reply)) = self.prune.take() {
            tracing::info!(
                deleted = progress.deleted,
                "shutting down during a prune; the rest waits for the next one"
            );
            let _ = reply.send(Ok(progress.deleted));
        }
        let dropped = receiver
            .try_iter()
            .filter(|command| matches!(command, Command::Heartbeat(_)))
            .count();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "heartbeats sent after the store writer was shut down were not written"
            );
        }
        drop(self.store);
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// Handles `first` and everything queued behind it; returns the reply channel of a shutdown.
    fn handle_queued(&mut self, first: Option<Command>, receiver: &Receiver<Command>) -> Option<Sender<()>> {
        let mut next = first;
        while let Some(command) = next {
            match command {
                Command::Heartbeat(heartbeat) => {
                    self.batch.push(heartbeat);
                    if self.batch.len() >= self.options.max_batch {
                        self.write_batch();
                    }
                }
                Command::Resolve {
                    streams,
                    now_ms,
                    reply,
                } => {
                    self.write_batch();
                    let _ = reply.send(self.store.resolve_streams(&streams, now_ms));
                }
                Command::Flush { reply } => {
                    self.write_batch();
                    // What a flush waited for shows in the status file too (the counts change
                    // with every batch while the disk is full; otherwise it is rewritten only
                    // every few seconds).
                    self.status_changed |= self.full.is_some();
                    self.disk_full_duties();
                    let _ = reply.send(());
                }
                Command::Prune { older_than_ms, reply } => {
                    self.write_batch();
                    self.finish_prune();
                    match self.store.start_prune(older_than_ms) {
                        Ok(progress) => self.prune = Some((progress, reply)),
                        Err(error) => {
                            let _ = reply.send(Err(error));
                        }
                    }
                }
                Command::AlertPlan(plan) => {
                    // Heartbeats queued before the change are judged by the rules they came under.
                    self.write_batch();
                    self.store.set_alert_plan(plan);
                }
                Command::Learned {
                    stream_id,
                    facts,
                    now_ms,
                } => {
                    if let Err(e) = self.store.save_learned(stream_id, &facts, now_ms) {
                        tracing::warn!("what was learned about stream {stream_id} not saved: {e}");
                    }
                }
                Command::LoadLearned { stream_id, reply } => {
                    let _ = reply.send(self.store.learned_for(stream_id));
                }
                Command::Shutdown { reply } => return Some(reply),
            }
            next = receiver.try_recv().ok();
        }
        None
    }

    /// Runs one chunk of the prune under way, if any, and answers it when done or failed.
    fn prune_step(&mut self) {
        let Some((progress, _)) = &mut self.prune else {
            return;
        };
        let result = self
            .store
            .prune_step(progress, self.options.prune_chunk_rows.max(1));
        let done = progress.is_done();
        if let Err(error) = result {
            tracing::warn!(%error, "pruning old heartbeats failed");
            if let Some((_, reply)) = self.prune.take() {
                let _ = reply.send(Err(error));
            }
        } else if done {
            if let Some((progress, reply)) = self.prune.take() {
                tracing::info!(deleted = progress.deleted, "pruned old heartbeats");
                let _ = reply.send(Ok(progress.deleted));
            }
        }
    }

    /// Completes the prune under way before another starts.
    fn finish_prune(&mut self) {
        while self.prune.is_some() {
            self.prune_step();
        }
    }

    /// Writes the queued heartbeats (see [`write_heartbeats`]). While the disk is full they are
    /// held behind the older held ones instead; [`Writer::disk_full_duties`] writes them.
    fn write_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.batch);
        if let Some(full) = &self.full {
            let retry_due = Instant::now() >= full.next_retry;
            self.hold(batch.drain(..));
            if retry_due {
                self.write_held();
            }
            self.trim_held();
        } else if let Err(out_of_space) = write_heartbeats(&mut self.store, &batch) {
            self.disk_became_full(&out_of_space.error);
            self.hold(batch.drain(out_of_space.unwritten_from..));
            self.trim_held();
        }
        batch.clear();
        self.batch = batch;
    }

    /// Keeps heartbeats for later, behind those already held.
    fn hold(&mut self, heartbeats: impl Iterator<Item = Heartbeat>) {
        for heartbeat in heartbeats {
            self.newest_held_ms = self.newest_held_ms.max(heartbeat.ts_ms);
            self.held.push_back(heartbeat);
        }
    }

    /// Drops the oldest held heartbeats beyond the buffer's age and count limits (all of them
    /// without a buffer), counting them.
    fn trim_held(&mut self) {
        let oldest_kept_ms = match self.options.disk_full_buffer {
            Some(window) => self
                .newest_held_ms
                .saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX)),
            None => i64::MAX,
        };
        let max_held = self.options.disk_full_buffer_max_heartbeats;
        let mut dropped = 0u64;
        while let Some(oldest) = self.held.front() {
            if self.held.len() <= max_held && oldest.ts_ms >= oldest_kept_ms {
                break;
            }
            self.held.pop_front();
            dropped += 1;
        }
        self.dropped_total += dropped;
        if let Some(full) = &mut self.full {
            full.dropped += dropped;
        }
    }

    fn disk_became_full(&mut self, error: &StoreError) {
        let now = Instant::now();
        let buffer_minutes = self
            .options
            .disk_full_buffer
            .map_or(0, |window| window.as_secs() / 60);
        tracing::error!(
            %error,
            buffer_minutes,
            buffer_max = self.options.disk_full_buffer_max_heartbeats,
            "the disk is full: heartbeats are held in memory and written when space returns; \
             logging at most once a minute until then"
        );
        self.full = Some(DiskFull {
            since_ms: system_now_ms(),
            since: now,
            error: error.to_string(),
            next_retry: now + self.options.disk_full_retry,
            last_log: now,
            last_status: now,
            dropped: 0,
            written_back: 0,
        });
        self.newest_held_ms = i64::MIN;
        self.status_changed = true;
    }

    /// How long until the next of [`Writer::disk_full_duties`] is due; `None` when the disk is
    /// not full.
    fn next_disk_full_duty(&self) -> Option<Duration> {
        let full = self.full.as_ref()?;
        let refresh = Duration::from_millis(STATUS_REFRESH_WHILE_FULL_MS.unsigned_abs());
        let mut due = (full.last_log + DISK_FULL_LOG_INTERVAL).min(full.last_status + refresh);
        // With nothing held (no buffer) the next heartbeat is the retry.
        if !self.held.is_empty() {
            due = due.min(full.next_retry);
        }
        Some(due.saturating_duration_since(Instant::now()))
    }

    /// While the disk is full: tries the held heartbeats again when due, logs once a minute and
    /// refreshes the status file; also writes the status file after a change.
    fn disk_full_duties(&mut self) {
        let now = Instant::now();
        if self.full.as_ref().is_some_and(|full| now >= full.next_retry) {
            self.write_held();
        }
        let held = self.held.len();
        if let Some(full) = &mut self.full {
            if now >= full.last_log + DISK_FULL_LOG_INTERVAL {
                full.last_log = now;
                tracing::warn!(
                    held,
                    dropped = full.dropped,
                    full_for_s = full.since.elapsed().as_secs(),
                    error = %full.error,
                    "the disk is still full: heartbeats are held in memory (dropped: the oldest, beyond the buffer)"
                );
            }
            let refresh = Duration::from_millis(STATUS_REFRESH_WHILE_FULL_MS.unsigned_abs());
            if now >= full.last_status + refresh {
                self.status_changed = true;
            }
        }
        if self.status_changed {
            self.write_status();
        }
    }

    /// Writes the held heartbeats, oldest first, in transactions of `max_batch`; the disk has
    /// recovered once all are written. With none held there is nothing to learn from: the next
    /// heartbeat tells.
    fn write_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        while !self.held.is_empty() {
            let count = self.held.len().min(self.options.max_batch.max(1));
            let chunk = &self.held.make_contiguous()[..count];
            let result = write_heartbeats(&mut self.store, chunk);
            let unwritten_from = match &result {
                Ok(()) => count,
                Err(out_of_space) => out_of_space.unwritten_from,
            };
            self.held.drain(..unwritten_from);
            self.written_back_total += unwritten_from as u64;
            if let Some(full) = &mut self.full {
                full.written_back += unwritten_from as u64;
            }
            if let Err(out_of_space) = result {
                if let Some(full) = &mut self.full {
                    full.error = out_of_space.error.to_string();
                    full.next_retry = Instant::now() + self.options.disk_full_retry;
                }
                return;
            }
        }
        if let Some(full) = self.full.take() {
            let full_for_s = full.since.elapsed().as_secs();
            if full.dropped > 0 {
                tracing::warn!(
                    written_back = full.written_back,
                    lost = full.dropped,
                    full_for_s,
                    "disk space is back: held heartbeats written; the oldest were lost beyond the buffer"
                );
            } else {
                tracing::info!(
                    written_back = full.written_back,
                    lost = 0,
                    full_for_s,
                    "disk space is back: every held heartbeat written"
                );
            }
            self.newest_held_ms = i64::MIN;
            self.status_changed = true;
        }
    }

    /// At shutdown, one last try to write what is held; what still does not fit is lost.
    fn release_held_at_shutdown(&mut self) {
        if self.full.is_none() {
            return;
        }
        self.write_held();
        if self.full.is_some() {
            let lost = self.held.len();
            self.held.clear();
            self.dropped_total += lost as u64;
            if let Some(full) = &mut self.full {
                full.dropped += lost as u64;
            }
            if lost > 0 {
                tracing::error!(
                    lost,
                    "shutting down with the disk full: the heartbeats held in memory are lost"
                );
            }
        }
        self.write_status();
    }

    fn write_status(&mut self) {
        let now = Instant::now();
        if let Some(full) = &mut self.full {
            full.last_status = now;
        }
        let full = self.full.as_ref();
        let status = MonitorStatus {
            pid: std::process::id(),
            updated_ms: system_now_ms(),
            disk_full_since_ms: full.map(|full| full.since_ms),
            buffered: self.held.len() as u64,
            dropped_while_full: full.map_or(0, |full| full.dropped),
            dropped_total: self.dropped_total,
            written_back_total: self.written_back_total,
            last_error: full.map(|full| full.error.clone()),
        };
        self.status_file.write(&status);
        self.status_changed = false;
    }
}

/// Whether `error` means the disk (or the database) is full.
fn out_of_space(store: &Store, error: &StoreError) -> bool {
    error.is_disk_full()
        || (error.is_io_error()
            && filesystem_free_bytes(store.path()).is_some_and(|free| free < LOW_SPACE_BYTES))
}

/// Writes `batch` in one transaction. On a failure other than a full disk it retries once, then
/// writes the heartbeats one by one so that a single bad heartbeat (say, of an unknown stream)
/// does not cost the others; those that fail are lost and logged. A full disk stops it: the
/// heartbeats from the one that failed on are returned unwritten.
fn write_heartbeats(store: &mut Store, batch: &[Heartbeat]) -> Result<(), OutOfSpace> {
    if batch.is_empty() {
        return Ok(());
    }
    let full = |error| OutOfSpace {
        unwritten_from: 0,
        error,
    };
    match store.record(batch) {
        Ok(()) => return Ok(()),
        Err(error) if out_of_space(store, &error) => return Err(full(error)),
        Err(error) => {
            tracing::warn!(%error, heartbeats = batch.len(), "writing heartbeats failed; retrying once");
        }
    }
    std::thread::sleep(RETRY_DELAY);
    let error = match store.record(batch) {
        Ok(()) => return Ok(()),
        Err(error) if out_of_space(store, &error) => return Err(full(error)),
        Err(error) => error,
    };
    let mut lost = 0usize;
    let mut last_error = error;
    if batch.len() > 1 {
        for (index, heartbeat) in batch.iter().enumerate() {
            match store.record(std::slice::from_ref(heartbeat)) {
                Ok(()) => {}
                Err(error) if out_of_space(store, &error) => {
                    if lost > 0 {
                        tracing::error!(error = %last_error, lost, "heartbeats could not be written and are lost");
                    }
                    return Err(OutOfSpace {
                        unwritten_from: index,
                        error,
                    });
                }
                Err(error) => {
                    lost += 1;
                    last_error = error;
                }
            }
        }
    } else {
        lost = 1;
    }
    if lost > 0 {
        tracing::error!(error = %last_error, lost, "heartbeats could not be written and are lost");
    }
    Ok(())
}
