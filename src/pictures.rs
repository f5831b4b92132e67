//! The last pictures of each stream, kept beside the database: the monitor writes them from its
//! own probes (`monitor::pictures`), the web serves them; neither ever connects to a camera for
//! them. For `streams.db` the folder is `streams.db.pictures/`, holding per store stream id
//! `{id}.jpg` + `{id}.json` (the last clean picture) and `{id}-verdict.jpg` + `{id}-verdict.json`
//! (the picture behind the last picture verdict: black, frozen, …). File names carry only the
//! numeric id, never a camera's name or URL.
//!
//! Writes are atomic (a temporary file in the same folder, then a rename; the JPEG before its
//! JSON, so a reader that finds the JSON finds its picture). Bounded: one of each per stream,
//! files of streams no longer configured are removed ([`PictureDir::prune`]), and a file over
//! [`MAX_PICTURE_BYTES`] is neither written nor served.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// No kept picture is larger: 320 px JPEGs are 10–30 KB, the widest allowed (1280) well under.
pub const MAX_PICTURE_BYTES: u64 = 512 * 1024;
/// The metadata files are tiny; anything larger is not ours.
const MAX_META_BYTES: u64 = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("picture of {0} bytes refused (at most {MAX_PICTURE_BYTES})")]
    TooLarge(usize),
    #[error("cannot write pictures in {dir}: {source}")]
    Write { dir: PathBuf, source: std::io::Error },
    #[error("cannot encode picture metadata: {0}")]
    Meta(#[from] serde_json::Error),
}

/// Which of a stream's two pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureKind {
    /// The last clean picture.
    Last,
    /// The picture behind the last picture verdict (black, frozen, …).
    Verdict,
}

impl PictureKind {
    fn stem(self, stream_id: i64) -> String {
        match self {
            PictureKind::Last => stream_id.to_string(),
            PictureKind::Verdict => format!("{stream_id}-verdict"),
        }
    }
}

/// What is known of a kept picture (its `.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PictureMeta {
    /// When the probe that saw it ran, UTC milliseconds.
    pub ts_ms: i64,
    pub width: u32,
    pub height: u32,
    /// The probe's health (`up`, `degraded`).
    pub health: String,
    /// For a verdict picture: the reason code (`black`, `frozen`, …) and its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The pictures folder of one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureDir {
    dir: PathBuf,
}

/// `<db>.pictures`, next to the database.
pub fn pictures_dir_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".pictures");
    db_path.with_file_name(name)
}

impl PictureDir {
    /// The folder beside the database at `db_path` (not created until the first write).
    pub fn beside(db_path: &Path) -> PictureDir {
        PictureDir {
            dir: pictures_dir_path(db_path),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, stream_id: i64, kind: PictureKind, extension: &str) -> PathBuf {
        self.dir.join(format!("{}.{extension}", kind.stem(stream_id)))
    }

    /// Writes a picture and then its metadata, each atomically.
    pub fn write(
        &self,
        stream_id: i64,
        kind: PictureKind,
        jpeg: &[u8],
        meta: &PictureMeta,
    ) -> Result<(), PictureError> {
        if jpeg.len() as u64 > MAX_PICTURE_BYTES {
            return Err(PictureError::TooLarge(jpeg.len()));
        }
        let json = serde_json::to_vec(meta)?;
        self.ensure_dir()?;
        self.replace(&self.file(stream_id, kind, "jpg"), jpeg)?;
        self.replace(&self.file(stream_id, kind, "json"), &json)
    }

    /// Rewrites only the metadata (a newer time for the same picture).
    pub fn write_meta(
        &self,
        stream_id: i64,
        kind: PictureKind,
        meta: &PictureMeta,
    ) -> Result<(), PictureError> {
        let json = serde_json::to_vec(meta)?;
        self.ensure_dir()?;
        self.replace(&self.file(stream_id, kind, "json"), &json)
    }

    /// The metadata of a kept picture; `None` when there is none (or it is unreadable).
    pub fn meta(&self, stream_id: i64, kind: PictureKind) -> Option<PictureMeta> {
        let bytes = read_bounded(&self.file(stream_id, kind, "json"), MAX_META_BYTES)?;
        serde_json::from_slice(&bytes).ok()
    }

    /// A kept picture with its metadata; `None` when there is none (or either file is unreadable
    /// or too large).
    pub fn read(&self, stream_id: i64, kind: PictureKind) -> Option<(Vec<u8>, PictureMeta)> {
        let meta = self.meta(stream_id, kind)?;
        let jpeg = read_bounded(&self.file(stream_id, kind, "jpg"), MAX_PICTURE_BYTES)?;
        Some((jpeg, meta))
    }

    /// Deletes the files of every stream not in `keep`, and leftover temporary files. Returns how
    /// many files went.
    pub fn prune(&self, keep: &HashSet<i64>) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let wanted = stream_of(name).is_some_and(|id| keep.contains(&id));
            if !wanted && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    fn ensure_dir(&self) -> Result<(), PictureError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| self.write_error(source))
    }

    fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), PictureError> {
        let mut temp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&self.dir)
            .map_err(|source| self.write_error(source))?;
        temp.write_all(bytes).map_err(|source| self.write_error(source))?;
        // Readable by the web's user too (the packaged units share a group).
        set_readable(temp.path());
        temp.persist(path).map_err(|e| self.write_error(e.error))?;
        Ok(())
    }

    fn write_error(&self, source: std::io::Error) -> PictureError {
        PictureError::Write {
            dir: self.dir.clone(),
            source,
        }
    }
}

#[cfg(unix)]
fn set_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640));
}

#[cfg(not(unix))]
fn set_readable(_path: &Path) {}

/// The stream id a kept file belongs to: `12.jpg`, `12.json`, `12-verdict.jpg`, `12-verdict.json`.
fn stream_of(file_name: &str) -> Option<i64> {
    let stem = file_name
        .strip_suffix(".jpg")
        .or_else(|| file_name.strip_suffix(".json"))?;
    let id = stem.strip_suffix("-verdict").unwrap_or(stem);
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

fn read_bounded(path: &Path, max: u64) -> Option<Vec<u8>> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() > max {
        return None;
    }
    std::fs::read(path).ok().filter(|bytes| bytes.len() as u64 <= max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta(ts_ms: i64) -> PictureMeta {
        PictureMeta {
            ts_ms,
            width: 320,
            height: 240,
            health: "up".into(),
            reason: None,
            message: None,
        }
    }

    #[test]
    fn writes_reads_and_prunes() {
        let temp = tempfile::tempdir().unwrap();
        let dir = PictureDir::beside(&temp.path().join("streams.db"));
        assert_eq!(dir.path(), temp.path().join("streams.db.pictures"));
        assert_eq!(dir.read(1, PictureKind::Last), None);
        dir.write(1, PictureKind::Last, b"\xff\xd8one\xff\xd9", &meta(5))
            .unwrap();
        dir.write(2, PictureKind::Verdict, b"two", &meta(6)).unwrap();
        assert_eq!(
            dir.read(1, PictureKind::Last),
            Some((b"\xff\xd8one\xff\xd9".to_vec(), meta(5)))
        );
        dir.write_meta(1, PictureKind::Last, &meta(9)).unwrap();
        assert_eq!(dir.meta(1, PictureKind::Last), Some(meta(9)));
        assert!(matches!(
            dir.write(3, PictureKind::Last, &vec![0; 600 * 1024], &meta(1)),
            Err(PictureError::TooLarge(_))
        ));
        std::fs::write(dir.path().join("stray.txt"), "x").unwrap();
        let removed = dir.prune(&HashSet::from([1]));
        assert_eq!(removed, 3, "stream 2's pair and the stray file");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec!["1.jpg", "1.json"]);
    }

    #[test]
    fn file_names_map_back_to_their_stream() {
        assert_eq!(stream_of("12.jpg"), Some(12));
        assert_eq!(stream_of("12-verdict.json"), Some(12));
        assert_eq!(stream_of("-1.jpg"), None);
        assert_eq!(stream_of(".tmp-abc"), None);
        assert_eq!(stream_of("12.jpg.tmp"), None);
    }

    proptest! {
        #[test]
        fn any_file_name_is_read_without_panicking(name in "\\PC{0,24}") {
            if let Some(id) = stream_of(&name) {
                prop_assert!(id >= 0);
                prop_assert!(name.starts_with(&id.to_string()) || name.starts_with('0'));
            }
        }
    }
}
