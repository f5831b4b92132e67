//! `web.tls: self_signed`: a key and certificate made on first start and kept next to the
//! database (`<db>.web-cert.pem`, `<db>.web-key.pem`, the key 0600), so the fingerprint a user
//! accepted in the browser stays the same across restarts and upgrades.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::TlsError;

/// Where the pair for the database at `db_path` lives.
pub fn paths(db_path: &Path) -> (PathBuf, PathBuf) {
    let with = |suffix: &str| {
        let mut name = db_path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        db_path.with_file_name(name)
    };
    (with(".web-cert.pem"), with(".web-key.pem"))
}

/// The names a certificate for this machine should carry: `localhost`, the host name (and its
/// `.local` mDNS name when it has no domain), loopback, and the address listened on when it is
/// a specific one.
pub fn host_names(listen: Option<IpAddr>) -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .trim()
        .to_string();
    // A DNS name in a certificate is ASCII; anything else would make generation fail.
    if !host.is_empty() && host != "localhost" && host.bytes().all(|b| b.is_ascii_graphic()) {
        if !host.contains('.') {
            names.push(format!("{host}.local"));
        }
        names.push(host);
    }
    names.push("127.0.0.1".to_string());
    names.push("::1".to_string());
    if let Some(ip) = listen.filter(|ip| !ip.is_unspecified() && !ip.is_loopback()) {
        names.push(ip.to_string());
    }
    names
}

/// The pair's files, made now (`created`) or found from an earlier start.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub created: bool,
}

/// Returns the kept pair for `db_path`, making it first when there is none. A pair that exists
/// is never overwritten (a broken one is reported by loading it); a certificate without its key,
/// or the other way round, is replaced by a new pair.
pub fn ensure(db_path: &Path, names: &[String]) -> Result<SelfSigned, TlsError> {
    let (cert_path, key_path) = paths(db_path);
    if cert_path.exists() && key_path.exists() {
        return Ok(SelfSigned {
            cert_path,
            key_path,
            created: false,
        });
    }
    let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut params =
        rcgen::CertificateParams::new(names.to_vec()).map_err(|e| TlsError::Generate(e.to_string()))?;
    let common_name = names.get(1).or(names.first()).cloned().unwrap_or_default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("StreamPulse {common_name}"));
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    // Key first: a certificate is only ever written beside its own key.
    write_atomically(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(SelfSigned {
        cert_path,
        key_path,
        created: true,
    })
}

/// Writes through a temporary file in the same folder (made 0600 by `tempfile`) renamed into
/// place, so a crash never leaves half a key.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(failed)?;
    file.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_then_kept_with_a_private_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("streams.db");
        let names = host_names(Some("192.0.2.7".parse().expect("ip")));
        assert!(names.contains(&"192.0.2.7".to_string()), "{names:?}");
        let first = ensure(&db, &names).expect("made");
        assert!(first.created);
        assert_eq!(first.cert_path, dir.path().join("streams.db.web-cert.pem"));
        let mode = std::fs::metadata(&first.key_path)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let pair = super::super::load_pair(&first.cert_path, &first.key_path).expect("loads");
        let second = ensure(&db, &names).expect("kept");
        assert!(!second.created);
        let again = super::super::load_pair(&second.cert_path, &second.key_path).expect("loads");
        assert_eq!(
            super::super::pair_fingerprint(&pair),
            super::super::pair_fingerprint(&again)
        );
    }
}
