//! A plain static HTTP server on loopback, as a web server in front of an HLS packager or a
//! camera's snapshot URL looks: files from one folder, each with the `Content-Type` its extension
//! calls for (`.m3u8` `application/vnd.apple.mpegurl`, `.ts` `video/mp2t`, `.jpg` `image/jpeg`,
//! `.html` `text/html`, anything else `application/octet-stream`), one request per connection.
//! A missing file is a 404; paths never leave the folder.

use super::{bind_tcp, DemoError, ServerThread, LOOPBACK};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head read.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Serves the files of a folder on `127.0.0.1`.
#[derive(Debug)]
pub struct StaticHttpServer {
    port: u16,
    root: Arc<PathBuf>,
    thread: Option<ServerThread>,
}

impl StaticHttpServer {
    /// Serves `root` on an ephemeral loopback port.
    pub fn start(root: impl Into<PathBuf>) -> Result<StaticHttpServer, DemoError> {
        let root = Arc::new(root.into());
        let listener = bind_tcp(0)?;
        let port = listener.local_addr()?.port();
        let served = Arc::clone(&root);
        let thread = ServerThread::spawn("static-http-server", move || accept_loop(listener, served))?;
        Ok(StaticHttpServer {
            port,
            root,
            thread: Some(thread),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr(), path.trim_start_matches('/'))
    }

    /// Closes the listening socket and every open connection. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut thread) = self.thread.take() {
            thread.stop();
        }
    }
}

impl Drop for StaticHttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `Content-Type` a file's name calls for.
pub fn content_type_for(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("mp4") => "video/mp4",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("html" | "htm") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn accept_loop(listener: std::net::TcpListener, root: Arc<PathBuf>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!("static HTTP test server cannot use its socket: {err}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let root = Arc::clone(&root);
                tokio::spawn(async move {
                    let _ = answer(stream, &root).await;
                });
            }
            Err(err) => {
                tracing::warn!("static HTTP test server accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let Some(target) = read_target(&mut stream).await? else {
        return Ok(());
    };
    let file = resolve(root, &target);
    let body = match &file {
        Some(path) => tokio::fs::read(path).await.ok(),
        None => None,
    };
    let (status, content_type, body) = match (file, body) {
        (Some(path), Some(body)) => ("200 OK", content_type_for(&path), body),
        _ => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

/// The request target's path, once the head has been read.
async fn read_target(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        if buffer.len() > MAX_REQUEST_BYTES {
            return Ok(None);
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let text = String::from_utf8_lossy(&buffer);
    let target = text
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("/");
    Ok(Some(target.split(['?', '#']).next().unwrap_or("/").to_string()))
}

/// The file a path names inside `root`; `None` for anything that would leave it.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for part in target.split('/').filter(|p| !p.is_empty()) {
        if part == ".." || part == "." || part.contains('\\') {
            return None;
        }
        path.push(part);
    }
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.ts"), b"x").expect("write");
        assert_eq!(resolve(dir.path(), "/a.ts"), Some(dir.path().join("a.ts")));
        assert_eq!(resolve(dir.path(), "/../a.ts"), None);
        assert_eq!(resolve(dir.path(), "/missing"), None);
        assert_eq!(
            content_type_for(Path::new("live.M3U8")),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type_for(Path::new("seg1.ts")), "video/mp2t");
        assert_eq!(content_type_for(Path::new("x.bin")), "application/octet-stream");
    }
}
