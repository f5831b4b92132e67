//! The single writer: a dedicated thread that owns the writing [`Store`], so probes never wait
//! on SQLite and writes never contend with each other.
//!
//! Heartbeats arrive over a channel and whatever is queued is written as one transaction.
//! Stream resolution, flushes, prunes and shutdown travel over the same channel, so they are
//! ordered with the heartbeats sent before them.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::write::{PruneProgress, PRUNE_CHUNK_ROWS};
use super::{Heartbeat, Store, StoreError, StreamIdentity};

/// How long the writer waits before retrying a failed write.
const RETRY_DELAY: Duration = Duration::from_millis(250);

/// Tuning of the writer thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Most heartbeats written in one transaction; more queued are written in further ones.
    pub max_batch: usize,
    /// Most raw heartbeats deleted per prune transaction; queued heartbeats are written between.
    pub prune_chunk_rows: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_batch: 5_000,
            prune_chunk_rows: PRUNE_CHUNK_ROWS,
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
    let (sender, receiver) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("store-writer".to_owned())
        .spawn(move || {
            Writer {
                store,
                options,
                batch: Vec::new(),
                prune: None,
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

    /// Waits until every heartbeat sent before has been written (or its failure logged).
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
            self.prune_step();
        };
        self.write_batch();
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

    /// Writes the queued heartbeats, retrying once. If the retry fails too, writes them one by
    /// one so that a single bad heartbeat (say, of an unknown stream) does not cost the others.
    fn write_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if let Err(error) = self.store.record(&self.batch) {
            tracing::warn!(%error, heartbeats = self.batch.len(), "writing heartbeats failed; retrying once");
            std::thread::sleep(RETRY_DELAY);
            if let Err(error) = self.store.record(&self.batch) {
                let mut lost = 0usize;
                let mut last_error = error;
                if self.batch.len() > 1 {
                    for heartbeat in &self.batch {
                        if let Err(error) = self.store.record(std::slice::from_ref(heartbeat)) {
                            lost += 1;
                            last_error = error;
                        }
                    }
                } else {
                    lost = 1;
                }
                if lost > 0 {
                    tracing::error!(error = %last_error, lost, "heartbeats could not be written and are lost");
                }
            }
        }
        self.batch.clear();
    }
}
