//! What a stream's probes learned (`probe::learned::CameraMemory`) and the store's copy of it:
//! restored when the stream's task starts, so a restart or a reload keeps the template and
//! transport found, and saved through the writer only when it changed.

use super::Shared;
use crate::probe::learned::CameraMemory;
use crate::store::learned::LearnedFacts;

/// Loads what an earlier task or run saved into `memory`, less a detected template when the
/// stream now names its own (the next save drops it); returns what the store now holds.
pub(super) async fn restore(
    shared: &Shared,
    stream_id: i64,
    memory: &CameraMemory,
    detects_template: bool,
) -> LearnedFacts {
    match shared.writer.learned(stream_id).await {
        Ok(Some(row)) => {
            memory.restore(&row.facts);
            if !detects_template {
                memory.remember_template(None);
            }
            row.facts
        }
        Ok(None) => LearnedFacts::default_facts(),
        Err(e) => {
            tracing::warn!("what was learned about stream {stream_id} could not be read: {e}");
            LearnedFacts::default_facts()
        }
    }
}

/// Sends `memory`'s facts to the writer when they differ from `saved` (which then follows).
pub(super) fn save_if_changed(
    shared: &Shared,
    stream_id: i64,
    memory: &CameraMemory,
    saved: &mut LearnedFacts,
    now_ms: i64,
) {
    let facts = memory.facts();
    if facts == *saved {
        return;
    }
    if let Err(e) = shared.writer.save_learned(stream_id, facts.clone(), now_ms) {
        tracing::warn!("what was learned about stream {stream_id} not saved: {e}");
        return;
    }
    *saved = facts;
}
