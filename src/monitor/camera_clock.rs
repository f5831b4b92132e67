//! Writes each camera clock reading (`onvif:` streams) to the store's `camera_clock` table on a
//! connection of its own beside the writer: a reading is not a heartbeat, and the writer's
//! queue stays heartbeats only. Opened on the first reading, so a fleet without `onvif:` never
//! opens it.

use crate::onvif::skew::ClockResult;
use crate::store::{CameraClock, Store};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub(super) struct ClockRecorder {
    db_path: PathBuf,
    store: Arc<Mutex<Option<Store>>>,
}

impl ClockRecorder {
    pub(super) fn new(db_path: PathBuf) -> ClockRecorder {
        ClockRecorder {
            db_path,
            store: Arc::new(Mutex::new(None)),
        }
    }

    /// Records `result` as the stream's latest reading, off the async workers.
    pub(super) async fn record(&self, stream: &str, stream_id: i64, result: ClockResult) {
        let (db_path, slot) = (self.db_path.clone(), Arc::clone(&self.store));
        let row = CameraClock {
            checked_at_ms: result.checked_at_ms,
            offset_ms: result.offset.as_ref().ok().copied(),
            error: result.offset.err(),
        };
        let written = tokio::task::spawn_blocking(move || {
            let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let store = match slot.as_mut() {
                Some(store) => store,
                None => slot.insert(Store::open_beside_writer(&db_path)?),
            };
            store.record_camera_clock(stream_id, &row)
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("{stream}: camera clock reading not written: {e}"),
            Err(e) => tracing::error!("{stream}: camera clock reading not written: {e}"),
        }
    }
}
