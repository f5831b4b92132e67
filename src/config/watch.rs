//! "Reload the config when the file changes", one way for both processes: the monitor asks every
//! few seconds, the web on each request. Polling the file's size and modification time works on
//! every filesystem and with editors that replace the file by rename; a change whose text is the
//! same as before is no change.

use super::{parse, read_text, Config, ConfigError};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A config file, loaded once and then checked for changes on demand.
#[derive(Debug)]
pub struct Watcher {
    path: PathBuf,
    /// Modification time and size at the last look (`None`: the file could not be read).
    stamp: Option<(SystemTime, u64)>,
    /// The text last read; `None` after a read failed, so the file coming back counts as a change.
    text: Option<String>,
}

impl Watcher {
    /// Reads and validates the file, and watches it from then on.
    pub fn load(path: &Path) -> Result<(Watcher, Config), ConfigError> {
        // Stamped before reading: a change while the file is read shows up at the next look.
        let stamp = file_stamp(path);
        let text = read_text(path)?;
        let config = parse(&text, path)?;
        let watcher = Watcher {
            path: path.to_path_buf(),
            stamp,
            text: Some(text),
        };
        Ok((watcher, config))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `None` when the file is unchanged since the last look; otherwise the new file validated:
    /// the config to switch to, or why it cannot be used (unreadable or invalid — the caller keeps
    /// its current config). A file that fails is reported once, not at every look.
    pub fn changed(&mut self) -> Option<Result<Config, ConfigError>> {
        let stamp = file_stamp(&self.path);
        if stamp == self.stamp {
            return None;
        }
        self.stamp = stamp;
        let text = match read_text(&self.path) {
            Ok(text) => text,
            Err(error) => {
                self.text = None;
                return Some(Err(error));
            }
        };
        if self.text.as_deref() == Some(text.as_str()) {
            return None;
        }
        let config = parse(&text, &self.path);
        self.text = Some(text);
        Some(config)
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Writes `text` and makes sure the modification time moves, whatever the filesystem's
    /// timestamp granularity.
    fn rewrite(path: &Path, text: &str) {
        let before = file_stamp(path);
        std::fs::write(path, text).expect("write config");
        let file = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open config");
        let later = before.map_or(SystemTime::now(), |(modified, _)| {
            modified + Duration::from_secs(1)
        });
        file.set_modified(later).expect("set mtime");
    }

    #[test]
    fn reports_each_change_once_and_ignores_rewrites_of_the_same_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "heartbeat_seconds: 15\n").expect("write");
        let (mut watcher, config) = Watcher::load(&path).expect("valid");
        assert_eq!(config.heartbeat, Duration::from_secs(15));
        assert!(watcher.changed().is_none());

        rewrite(&path, "heartbeat_seconds: 15\n");
        assert!(watcher.changed().is_none(), "same text is no change");

        rewrite(&path, "heartbeat_seconds: 20\n");
        let reloaded = watcher.changed().expect("a change").expect("valid");
        assert_eq!(reloaded.heartbeat, Duration::from_secs(20));
        assert!(watcher.changed().is_none());

        rewrite(&path, "heartbeat_seconds: nope\n");
        assert!(matches!(
            watcher.changed(),
            Some(Err(ConfigError::Invalid { .. }))
        ));
        assert!(watcher.changed().is_none(), "an invalid file is reported once");

        rewrite(&path, "heartbeat_seconds: 20\n");
        assert!(
            matches!(watcher.changed(), Some(Ok(_))),
            "back to valid is a change"
        );
    }

    #[test]
    fn a_vanished_file_is_reported_and_its_return_is_a_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "heartbeat_seconds: 15\n").expect("write");
        let (mut watcher, _) = Watcher::load(&path).expect("valid");
        std::fs::remove_file(&path).expect("remove");
        assert!(matches!(watcher.changed(), Some(Err(ConfigError::Read { .. }))));
        assert!(watcher.changed().is_none());
        std::fs::write(&path, "heartbeat_seconds: 15\n").expect("write");
        assert!(matches!(watcher.changed(), Some(Ok(_))));
    }

    #[test]
    fn load_refuses_an_invalid_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "streams: 3\n").expect("write");
        assert!(matches!(Watcher::load(&path), Err(ConfigError::Invalid { .. })));
        assert!(matches!(
            Watcher::load(&dir.path().join("missing.yaml")),
            Err(ConfigError::Read { .. })
        ));
    }
}
