//! Live snapshots: one JPEG from a camera through a short-lived GStreamer pipeline.
//!
//! Cameras accept only a few clients at once, and the monitor needs one of those slots, so the
//! UI may hold at most one snapshot pipeline per camera and a small number over all cameras.
//! A request over either limit is refused at once (503) instead of queueing behind a slow camera.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{lock, WebError};
use crate::config::{Config, StreamConfig};
use crate::pipeline::TemplateLibrary;
use crate::probe::{self, ProbeRequest, Reaper};
use crate::url::redact_text;

/// Snapshot pipelines allowed at once over all cameras.
pub const DEFAULT_MAX_CONCURRENT_SNAPSHOTS: usize = 2;
/// Extra time past the stream's probe deadline before the request gives up on the pipeline
/// (JPEG encoding happens after the frame arrives).
const ENCODE_MARGIN: Duration = Duration::from_secs(3);

/// The two limits.
pub struct SnapshotGate {
    global: Arc<Semaphore>,
    busy: Arc<Mutex<HashSet<String>>>,
    reaper: OnceLock<Reaper>,
}

impl std::fmt::Debug for SnapshotGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotGate")
            .field("available", &self.global.available_permits())
            .field("busy", &*lock(&self.busy))
            .finish_non_exhaustive()
    }
}

/// Holds both slots for the life of one snapshot.
#[derive(Debug)]
pub struct SnapshotPermit {
    _global: OwnedSemaphorePermit,
    _camera: CameraSlot,
}

/// The camera's one UI pipeline slot: a snapshot or a live view holds it, never both, so the UI
/// takes at most one of a camera's few client slots (the monitor needs another).
#[derive(Debug)]
pub struct CameraSlot {
    busy: Arc<Mutex<HashSet<String>>>,
    name: String,
}

impl Drop for CameraSlot {
    fn drop(&mut self) {
        lock(&self.busy).remove(&self.name);
    }
}

impl SnapshotGate {
    pub fn new(max_concurrent: usize) -> SnapshotGate {
        SnapshotGate {
            global: Arc::new(Semaphore::new(max_concurrent.max(1))),
            busy: Arc::new(Mutex::new(HashSet::new())),
            reaper: OnceLock::new(),
        }
    }

    /// Both slots for the camera `name`, or a 503 saying which limit was hit.
    pub fn try_acquire(&self, name: &str) -> Result<SnapshotPermit, WebError> {
        let mut busy = lock(&self.busy);
        if busy.contains(name) {
            return Err(WebError::Unavailable(
                "this camera is busy (a snapshot being taken, or its live view starting or ending); \
                 try again in a few seconds"
                    .into(),
            ));
        }
        let global = Arc::clone(&self.global).try_acquire_owned().map_err(|_| {
            WebError::Unavailable(
                "too many snapshots are being taken right now; try again in a few seconds".into(),
            )
        })?;
        Ok(SnapshotPermit {
            _global: global,
            _camera: self.claim(&mut busy, name),
        })
    }

    /// The camera's slot alone, for a live view (which has its own global cap); `None` while a
    /// snapshot of the camera is being taken.
    pub fn try_camera(&self, name: &str) -> Option<CameraSlot> {
        let mut busy = lock(&self.busy);
        (!busy.contains(name)).then(|| self.claim(&mut busy, name))
    }

    fn claim(&self, busy: &mut HashSet<String>, name: &str) -> CameraSlot {
        busy.insert(name.to_string());
        CameraSlot {
            busy: Arc::clone(&self.busy),
            name: name.to_string(),
        }
    }

    /// The teardown pool, started on the first snapshot so a server nobody asks for pictures
    /// runs no GStreamer threads.
    pub(crate) fn reaper(&self) -> &Reaper {
        self.reaper.get_or_init(Reaper::new)
    }
}

/// A snapshot, or why there is none.
#[derive(Debug)]
pub enum SnapshotResult {
    Jpeg {
        jpeg: Vec<u8>,
        width: u32,
        height: u32,
    },
    /// The probe's verdict, in plain words and with credentials masked.
    Failed {
        reason: String,
        reason_code: String,
        message: String,
    },
}

/// Takes one snapshot of `stream` under its deadline, holding `permit` until done.
pub async fn take(
    gate: &SnapshotGate,
    config: &Config,
    stream: &StreamConfig,
    permit: SnapshotPermit,
) -> Result<SnapshotResult, WebError> {
    let library = TemplateLibrary::new(config.pipelines_dir.as_deref());
    let request = ProbeRequest::for_stream(stream, &library).map_err(|e| {
        WebError::Unavailable(redact_text(&format!("cannot build the snapshot pipeline: {e}")))
    })?;
    let deadline = request.timeout + ENCODE_MARGIN;
    let reaper = gate.reaper().clone();
    let result = tokio::time::timeout(deadline, probe::snapshot(&request, &reaper)).await;
    drop(permit);
    Ok(match result {
        Ok(Ok(snapshot)) => SnapshotResult::Jpeg {
            jpeg: snapshot.jpeg,
            width: snapshot.width,
            height: snapshot.height,
        },
        Ok(Err(outcome)) => {
            let reason = outcome.reason.unwrap_or(probe::Reason::Other);
            SnapshotResult::Failed {
                reason: reason.describe().to_string(),
                reason_code: reason.code().to_string(),
                message: redact_text(&outcome.message),
            }
        }
        Err(_) => SnapshotResult::Failed {
            reason: "timed out".into(),
            reason_code: "timeout".into(),
            message: format!("no picture within {} s", deadline.as_secs()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_camera_and_a_global_cap() {
        let gate = SnapshotGate::new(2);
        let first = gate.try_acquire("Gate").expect("first");
        assert!(gate.try_acquire("Gate").is_err(), "same camera twice");
        let second = gate.try_acquire("Yard").expect("second camera");
        assert!(gate.try_acquire("Dock").is_err(), "global cap");
        drop(first);
        assert!(gate.try_acquire("Gate").is_ok(), "slot returned on drop");
        let live = gate.try_camera("Yard");
        assert!(live.is_none(), "a snapshot holds the camera");
        drop(second);
        let live = gate.try_camera("Yard").expect("camera free again");
        assert!(gate.try_acquire("Yard").is_err(), "a live view holds the camera");
        drop(live);
    }
}
