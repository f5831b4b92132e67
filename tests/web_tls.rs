//! Built-in HTTPS (`web.tls`), end to end: the real server on a loopback port, a real TLS client
//! (tokio-rustls) trusting only the certificate under test. HSTS and `Secure` cookies over TLS;
//! `self_signed` made once and kept; replaced PEM files served to new connections, broken ones
//! not.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use streampulse::store::accounts::Accounts;
use streampulse::web::{serve_with, ServerSettings, WebOptions, WebState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "correct horse battery";

fn cheap_hasher() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(256, 1, 1, None).expect("valid argon2 parameters"),
    )
}

/// A new key and certificate for `localhost`, as PEM texts.
fn generate() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("generate");
    (made.cert.pem(), made.signing_key.serialize_pem())
}

/// Writes `text` to `path` the way certbot and editors replace files: a new file renamed over.
fn replace(path: &Path, text: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, text).expect("write");
    std::fs::rename(&temporary, path).expect("rename");
}

fn fingerprint_of_pem(pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM certificate");
    streampulse::tls::fingerprint(&der)
}

struct Server {
    addr: std::net::SocketAddr,
    db_path: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts the server of the config in `dir` on `127.0.0.1:0`, with user `admin`.
    async fn start(dir: &Path, tls: &str) -> Server {
        let config_path = dir.join("config.yaml");
        std::fs::write(
            &config_path,
            format!(
                "database: streams.db\nweb:\n{tls}streams:\n  - name: Gate\n    url: rtsp://192.0.2.1/s\n"
            ),
        )
        .expect("config");
        let state = WebState::new(WebOptions::new(&config_path)).expect("web state");
        state.set_password_hasher(cheap_hasher());
        let db_path = state.db_path().to_path_buf();
        let accounts = Accounts::open(&db_path)
            .expect("accounts")
            .with_hasher(cheap_hasher());
        if accounts.user_count().expect("count") == 0 {
            accounts
                .add_user("admin", PASSWORD, state.now_ms())
                .expect("user");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let settings = ServerSettings::new(&state, addr).expect("TLS settings");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(listener, state, settings, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            db_path,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("stops")
            .expect("server task");
    }
}

/// One answer, read to the end of a `Connection: close` exchange.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    /// SHA-256 of the certificate the server presented.
    fingerprint: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key == "set-cookie")
            .map(|(_, value)| value.as_str())
            .collect()
    }

    fn cookie_pair(&self, name: &str) -> String {
        self.cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .and_then(|c| c.split(';').next())
            .unwrap_or_else(|| panic!("no {name} cookie in {self:?}"))
            .to_string()
    }
}

/// Sends one request over TLS to `addr`, trusting only the certificates `trusted` (PEM).
async fn https(addr: std::net::SocketAddr, trusted: &[&str], request: &str) -> Result<Answer, String> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in trusted {
        roots
            .add(CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM"))
            .expect("trust anchor");
    }
    let config = rustls::ClientConfig::builder_with_provider(streampulse::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    let fingerprint = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(streampulse::tls::fingerprint)
        .unwrap_or_default();
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    // A peer that closes without close_notify still sent a whole answer.
    if let Err(error) = tls.read_to_end(&mut bytes).await {
        if error.kind() != std::io::ErrorKind::UnexpectedEof {
            return Err(error.to_string());
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(format!("no header end in {text:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or(format!("no status in {head:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_string(),
        fingerprint,
    })
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        addr.port()
    )
}

fn files_config() -> &'static str {
    "  tls:\n    cert: site.crt\n    key: site.key\n"
}

#[tokio::test]
async fn https_answers_carry_hsts_and_login_cookies_are_secure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = generate();
    std::fs::write(dir.path().join("site.crt"), &cert).expect("cert");
    std::fs::write(dir.path().join("site.key"), &key).expect("key");
    let server = Server::start(dir.path(), files_config()).await;
    let addr = server.addr;

    let health = https(addr, &[&cert], &get(addr, "/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status, 200, "{health:?}");
    assert!(health.body.contains("\"status\":\"ok\""), "{health:?}");
    assert_eq!(
        health.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    assert_eq!(health.fingerprint, fingerprint_of_pem(&cert));

    let form = https(addr, &[&cert], &get(addr, "/login"))
        .await
        .expect("login form");
    assert_eq!(form.status, 200);
    assert_eq!(form.header("strict-transport-security"), Some("max-age=31536000"));
    let pre_login = form
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("sp_login_csrf="))
        .expect("pre-login cookie")
        .to_string();
    assert!(pre_login.contains("; Secure"), "{pre_login}");
    let at = form.body.find("name=\"csrf\" value=\"").expect("csrf field") + "name=\"csrf\" value=\"".len();
    let csrf = form.body[at..].split('"').next().expect("csrf value");
    let fields = format!(
        "csrf={csrf}&user=admin&password={}&next=%2F",
        PASSWORD.replace(' ', "+")
    );
    let login = format!(
        "POST /login HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: https://localhost:{port}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nCookie: {}\r\n\
         Connection: close\r\n\r\n{fields}",
        fields.len(),
        form.cookie_pair("sp_login_csrf"),
        port = addr.port(),
    );
    let answer = https(addr, &[&cert], &login).await.expect("login");
    assert_eq!(answer.status, 303, "{answer:?}");
    assert_eq!(
        answer.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    let session = answer
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("sp_session="))
        .expect("session cookie")
        .to_string();
    assert!(session.contains("; Secure"), "{session}");
    assert!(session.contains("HttpOnly"), "{session}");

    // Plain HTTP on the TLS port gets no answer.
    let mut plain = tokio::net::TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(get(addr, "/healthz").as_bytes())
        .await
        .expect("write");
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut bytes)).await;
    assert!(!String::from_utf8_lossy(&bytes).contains("\"status\":\"ok\""));

    // A certificate the client does not trust fails the handshake.
    let (stranger, _) = generate();
    assert!(https(addr, &[&stranger], &get(addr, "/healthz")).await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn self_signed_is_made_on_first_start_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), "  tls: self_signed\n").await;
    let cert_path = dir.path().join("streams.db.web-cert.pem");
    let key_path = dir.path().join("streams.db.web-key.pem");
    assert_eq!(server.db_path, dir.path().join("streams.db"));
    let cert = std::fs::read_to_string(&cert_path).expect("certificate next to the database");
    let key = std::fs::read(&key_path).expect("key next to the database");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is private");
    }
    let first = https(server.addr, &[&cert], &get(server.addr, "/healthz"))
        .await
        .expect("trusted by its own certificate");
    assert_eq!(first.status, 200);
    assert_eq!(first.fingerprint, fingerprint_of_pem(&cert));
    server.stop().await;

    let again = Server::start(dir.path(), "  tls: self_signed\n").await;
    assert_eq!(std::fs::read_to_string(&cert_path).expect("cert"), cert, "kept");
    assert_eq!(std::fs::read(&key_path).expect("key"), key, "kept");
    let second = https(again.addr, &[&cert], &get(again.addr, "/healthz"))
        .await
        .expect("same certificate");
    assert_eq!(second.fingerprint, first.fingerprint);
    again.stop().await;
}

#[tokio::test]
async fn replaced_files_reach_new_connections_and_broken_ones_keep_the_old_pair() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert_path, key_path) = (dir.path().join("site.crt"), dir.path().join("site.key"));
    let (old_cert, old_key) = generate();
    std::fs::write(&cert_path, &old_cert).expect("cert");
    std::fs::write(&key_path, &old_key).expect("key");
    let server = Server::start(dir.path(), files_config()).await;
    let addr = server.addr;
    let (new_cert, new_key) = generate();
    let trusted = [old_cert.as_str(), new_cert.as_str()];
    let seen = https(addr, &trusted, &get(addr, "/healthz")).await.expect("old");
    assert_eq!(seen.fingerprint, fingerprint_of_pem(&old_cert));

    // Key first, then the certificate (the order certbot's hooks may use): in between, the pair
    // does not match and the old one stays.
    replace(&key_path, &new_key);
    replace(&cert_path, &new_cert);
    let wanted = fingerprint_of_pem(&new_cert);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let seen = https(addr, &trusted, &get(addr, "/healthz"))
            .await
            .expect("healthz");
        assert_eq!(seen.status, 200);
        if seen.fingerprint == wanted {
            break;
        }
        assert!(Instant::now() < deadline, "the new certificate is never served");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A broken certificate, then one whose key is not on disk: neither replaces the working pair.
    let (stranger_cert, _) = generate();
    for broken in [
        "-----BEGIN CERTIFICATE-----\ngarbage\n",
        "",
        stranger_cert.as_str(),
    ] {
        replace(&cert_path, broken);
        let until = Instant::now() + Duration::from_millis(2_500);
        while Instant::now() < until {
            let seen = https(addr, &trusted, &get(addr, "/healthz"))
                .await
                .expect("still served");
            assert_eq!(seen.fingerprint, wanted, "after writing {broken:?}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    server.stop().await;
}
