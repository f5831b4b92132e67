//! A certificate resolver that notices when its PEM files change on disk (a certbot renewal, a
//! replaced self-signed pair) and serves the new pair from the next handshake on. A new pair that
//! does not load (half written, key not matching yet) leaves the old one in use, with a warning.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{load_pair, pair_fingerprint, TlsError};

/// Files are looked at (two `stat`s) at most this often, on a handshake.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies a version of a file: a replaced file (rename, certbot's symlink switch) has a
/// new inode, one rewritten in place a new time or length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
        })
    }
}

#[derive(Debug)]
struct Current {
    pair: Arc<CertifiedKey>,
    /// The files' stamps when last read, whether or not they loaded: a broken file is reported
    /// once, not on every handshake.
    stamps: (Option<Stamp>, Option<Stamp>),
    checked: Instant,
}

/// Hands out the current pair; see the module comment.
#[derive(Debug)]
pub struct ReloadingResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: Mutex<Current>,
}

impl ReloadingResolver {
    /// Loads the pair now: a server never starts with files it cannot use.
    pub fn new(cert_path: &Path, key_path: &Path) -> Result<ReloadingResolver, TlsError> {
        let stamps = (Stamp::of(cert_path), Stamp::of(key_path));
        let pair = load_pair(cert_path, key_path)?;
        Ok(ReloadingResolver {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: Mutex::new(Current {
                pair,
                stamps,
                checked: Instant::now(),
            }),
        })
    }

    /// The pair now in use.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.lock().pair)
    }

    pub fn fingerprint(&self) -> String {
        pair_fingerprint(&self.current())
    }

    /// Re-reads the files if they changed since they were last read.
    fn refresh(&self, current: &mut Current) {
        let stamps = (Stamp::of(&self.cert_path), Stamp::of(&self.key_path));
        if stamps == current.stamps {
            return;
        }
        current.stamps = stamps;
        match load_pair(&self.cert_path, &self.key_path) {
            Ok(pair) => {
                current.pair = pair;
                tracing::info!(
                    "TLS certificate {} reloaded (SHA-256 {})",
                    self.cert_path.display(),
                    pair_fingerprint(&current.pair)
                );
            }
            Err(error) => tracing::warn!(
                "TLS certificate files changed but cannot be used, keeping the previous certificate: {error}"
            ),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        // Every value behind the lock stays valid whatever panicked while holding it.
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.lock();
        if current.checked.elapsed() >= CHECK_EVERY {
            current.checked = Instant::now();
            self.refresh(&mut current);
        }
        Some(Arc::clone(&current.pair))
    }
}
