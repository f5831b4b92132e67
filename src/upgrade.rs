//! Upgrading from StreamPulse v1 (Python): the in-place upgrade the monitor does when it finds a
//! v1 database at its database path, and `streampulse import-v1` for a v1 file elsewhere. The
//! reading and writing is [`store::import_v1`]'s; this module decides which stream each v1 table
//! belongs to (from the config) and says what was done.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::monitor::stream_identities;
use crate::store::import_v1::{self, ImportReport, ImportV1Error, V1Database};
use crate::store::Store;
use crate::url::CameraUrl;

/// What the in-place upgrade did.
#[derive(Debug, Clone)]
pub struct InPlaceUpgrade {
    /// Where the v1 file (with its `-wal`/`-shm`) now is, unchanged.
    pub moved_to: PathBuf,
    pub report: ImportReport,
}

/// When `db_path` holds a v1 database: moves it aside (unchanged), creates the new database there
/// and imports every v1 heartbeat. `Ok(None)` when it is not v1 (the usual case, decided from the
/// file header without opening it).
pub fn upgrade_in_place(
    config: &Config,
    db_path: &Path,
    now_ms: i64,
) -> Result<Option<InPlaceUpgrade>, ImportV1Error> {
    if !import_v1::may_be_v1(db_path) {
        return Ok(None);
    }
    // The private copy is taken before the move; the import reads only the copy.
    let Some(v1) = V1Database::open(db_path)? else {
        return Ok(None);
    };
    let moved_to = import_v1::move_aside(db_path)?;
    let mut store = Store::open(db_path)?;
    let report = import(config, &mut store, &v1, now_ms)?;
    tracing::info!(
        "upgraded a StreamPulse v1 database: {} heartbeat(s) from {} v1 table(s) ({} of them for streams no longer configured, kept in the history) imported into {}{}; the v1 file is unchanged at {}; {}",
        report.imported,
        report.tables,
        report.unconfigured_tables,
        db_path.display(),
        skipped_note(&report),
        moved_to.display(),
        users_note(&report),
    );
    Ok(Some(InPlaceUpgrade { moved_to, report }))
}

/// `streampulse import-v1`: imports the v1 file at `v1_path` (never modified) into the database
/// at `db_path` (created when missing). Importing a file twice adds nothing.
pub fn import_file(
    config: &Config,
    db_path: &Path,
    v1_path: &Path,
    now_ms: i64,
) -> Result<ImportReport, ImportV1Error> {
    let v1 = V1Database::open(v1_path)?.ok_or_else(|| ImportV1Error::NotV1(v1_path.to_path_buf()))?;
    let mut store = Store::open(db_path)?;
    import(config, &mut store, &v1, now_ms)
}

fn import(
    config: &Config,
    store: &mut Store,
    v1: &V1Database,
    now_ms: i64,
) -> Result<ImportReport, ImportV1Error> {
    let identities = stream_identities(config);
    let ids = store.resolve_streams(&identities, now_ms)?;
    let v1_streams = v1.streams()?;
    // The same credential-free URL hash the config's streams carry: a camera renamed since v1
    // is still found by where it points.
    let fingerprints: HashMap<String, String> = v1_streams
        .iter()
        .filter_map(|s| {
            let url = CameraUrl::new(s.url.clone()?);
            Some((s.table.clone(), config::stream_identity_fingerprint(&url)))
        })
        .collect();
    let targets = store.plan_v1_targets(&v1_streams, &fingerprints, &identities, &ids, now_ms)?;
    store.import_v1(v1, &targets, now_ms)
}

/// The sentence about rows that could not be read, if any.
pub fn skipped_note(report: &ImportReport) -> String {
    if report.skipped == 0 {
        String::new()
    } else {
        format!(
            " ({} v1 row(s) skipped: unreadable time or a status other than ok/fail)",
            report.skipped
        )
    }
}

/// The sentence about v1's web users, which are never imported.
pub fn users_note(report: &ImportReport) -> String {
    format!(
        "v1's {} web user(s) were not imported, because v1 stored their passwords in plain text: create logins with the setup link `streampulse web` prints, or `streampulse user add NAME`",
        report.v1_users
    )
}
