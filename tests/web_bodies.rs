//! Request bodies against the real routes (issue 12 item 8): a body declared over the limit is
//! answered 413 at once on every route that takes one, before anything is read or
//! authenticated; a chunked body (no `Content-Length`) is read if small and refused with 413 as
//! soon as it passes the limit; a body on a GET route changes nothing. In-process through
//! `warp::test`, and over a real socket against the real server where only a socket can show it
//! (chunked framing, not waiting for 100 MB).

mod web_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use web_support::*;

const HUNDRED_MB: u64 = 100 * 1024 * 1024;
/// Every route that reads a form.
const POST_ROUTES: &[&str] = &[
    "/login",
    "/setup",
    "/logout",
    "/config",
    "/config/streams/add",
    "/config/streams/remove",
    "/config/streams/rename",
];

async fn declared(
    fixture: &Fixture,
    path: &str,
    length: u64,
    cookie: Option<&str>,
) -> warp::http::Response<bytes::Bytes> {
    let mut request = warp::test::request()
        .method("POST")
        .path(path)
        .header("host", "127.0.0.1:8000")
        .header("origin", "http://127.0.0.1:8000")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", length.to_string());
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.reply(&fixture.routes).await
}

#[tokio::test]
async fn a_hundred_megabytes_declared_is_413_on_every_route_logged_in_or_not() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    for path in POST_ROUTES {
        for cookie in [None, Some(session.cookie.as_str())] {
            let response = declared(&fixture, path, HUNDRED_MB, cookie).await;
            assert_eq!(response.status(), 413, "{path} (cookie: {})", cookie.is_some());
            let html = body(&response);
            assert!(
                html.contains("413") && html.contains("the request is too large"),
                "{path}: the usual error page: {html}"
            );
            assert!(html.contains("</html>"), "{path}: {html}");
        }
    }
    // Routes that take no body at all say so the same way, and the API in JSON.
    assert_eq!(
        declared(&fixture, "/healthz", HUNDRED_MB, None).await.status(),
        413
    );
    let api = declared(&fixture, "/api/v1/streams", HUNDRED_MB, None).await;
    assert_eq!(api.status(), 413);
    let json: serde_json::Value = serde_json::from_slice(api.body()).expect("json error");
    assert_eq!(json["error"]["status"], 413);
    assert_eq!(json["error"]["message"], "the request is too large");
    // Just over the limit is refused, at the limit is read (and then judged on its content).
    let limit = 4 * 1024 * 1024;
    assert_eq!(declared(&fixture, "/login", limit + 1, None).await.status(), 413);
    let at_limit = warp::test::request()
        .method("POST")
        .path("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; limit as usize])
        .reply(&fixture.routes)
        .await;
    assert_ne!(at_limit.status(), 413, "{}", body(&at_limit));
}

#[tokio::test]
async fn the_status_of_the_route_that_matched_wins_over_405() {
    let fixture = Fixture::new(&standard_config());
    // Used to be 405: the GET /login route's rejection outranked the POST route's.
    let wrong_type = warp::test::request()
        .method("POST")
        .path("/login")
        .header("content-type", "application/json")
        .body("{}")
        .reply(&fixture.routes)
        .await;
    assert_eq!(wrong_type.status(), 415, "{}", body(&wrong_type));
    assert!(body(&wrong_type).contains("send the form URL-encoded"));
    let bad_form = fixture
        .post("/login", None, &[("user", "a"), ("user", "b")])
        .await;
    assert_eq!(bad_form.status(), 400, "{}", body(&bad_form));
    // A method no route takes is still 405, a path no route has 404.
    let put = warp::test::request()
        .method("PUT")
        .path("/login")
        .reply(&fixture.routes)
        .await;
    assert_eq!(put.status(), 405);
    assert_eq!(fixture.get("/nowhere", None).await.status(), 404);
}

#[tokio::test]
async fn a_get_route_with_a_body_is_unaffected() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    for path in ["/healthz", "/login", "/config"] {
        let response = warp::test::request()
            .method("GET")
            .path(path)
            .header("cookie", &session.cookie)
            .body("some=body")
            .reply(&fixture.routes)
            .await;
        assert_eq!(response.status(), 200, "{path}");
    }
    // Even one declared huge: GET bodies are never read.
    let huge = warp::test::request()
        .method("GET")
        .path("/healthz")
        .header("content-length", HUNDRED_MB.to_string())
        .reply(&fixture.routes)
        .await;
    assert_eq!(huge.status(), 200);
}

/// Sends `head` then `body` (ignoring write errors: the server may answer and close early) and
/// reads the answer. The sending side stays open until the answer is in: hyper takes a client's
/// half-close as the client going away and drops the request.
async fn exchange(addr: SocketAddr, head: String, body: Vec<Vec<u8>>) -> (String, Duration) {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let (answered, answer_in) = tokio::sync::oneshot::channel::<()>();
    let writing = tokio::spawn(async move {
        let mut sent = writer.write_all(head.as_bytes()).await.is_ok();
        for piece in body {
            sent = sent && writer.write_all(&piece).await.is_ok();
        }
        let _ = (sent, writer.flush().await);
        let _ = answer_in.await;
        drop(writer);
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let read = async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    if complete(&answer) {
                        break;
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("an answer within 20 s");
    let _ = answered.send(());
    let _ = writing.await;
    (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
}

/// A whole HTTP/1.1 answer with a `Content-Length` (what the server sends for these).
fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some(head_end) = text.find("\r\n\r\n") else {
        return false;
    };
    let length = text[..head_end].lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    length.is_some_and(|length| answer.len() >= head_end + 4 + length)
}

/// `body` as HTTP/1.1 chunks of at most `size` bytes, with the closing chunk.
fn chunked(body: &[u8], size: usize) -> Vec<Vec<u8>> {
    let mut pieces: Vec<Vec<u8>> = body
        .chunks(size)
        .map(|chunk| {
            let mut piece = format!("{:x}\r\n", chunk.len()).into_bytes();
            piece.extend_from_slice(chunk);
            piece.extend_from_slice(b"\r\n");
            piece
        })
        .collect();
    pieces.push(b"0\r\n\r\n".to_vec());
    pieces
}

fn post_head(path: &str, cookie: &str, framing: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nOrigin: http://127.0.0.1:8000\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nCookie: {cookie}\r\n{framing}\r\n"
    )
}

#[tokio::test]
async fn over_a_socket_413_comes_at_once_and_chunked_bodies_are_read_up_to_the_limit() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let server = LoopbackServer::start(&fixture).await;

    // 100 MB declared, 64 KB sent: the answer does not wait for the rest.
    for path in POST_ROUTES {
        let head = post_head(
            path,
            &session.cookie,
            &format!("Content-Length: {HUNDRED_MB}\r\n"),
        );
        let (answer, took) = exchange(server.addr, head, vec![vec![b'a'; 64 * 1024]]).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(answer.contains("the request is too large"), "{path}: {answer}");
        assert!(took < Duration::from_secs(5), "{path}: took {took:?}");
    }

    // A small chunked login form is read: the user is logged in.
    let form = fixture.get("/login", None).await;
    let login_cookie = cookie_pair(&form, "sp_login_csrf").expect("login csrf cookie");
    let csrf = csrf_field(&body(&form)).expect("csrf field");
    let fields = form_body(&[
        ("csrf", &csrf),
        ("user", "admin"),
        ("password", PASSWORD),
        ("next", "/"),
    ]);
    let head = post_head("/login", &login_cookie, "Transfer-Encoding: chunked\r\n");
    let (answer, _) = exchange(server.addr, head, chunked(fields.as_bytes(), 7)).await;
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    assert!(answer.contains("sp_session="), "{answer}");

    // A chunked config edit is read and judged (here: the version is stale, so 409).
    let fields = form_body(&[
        ("csrf", &session.csrf),
        ("text", &standard_config()),
        ("version", "stale"),
    ]);
    let head = post_head("/config", &session.cookie, "Transfer-Encoding: chunked\r\n");
    let (answer, _) = exchange(server.addr, head, chunked(fields.as_bytes(), 100)).await;
    assert!(answer.starts_with("HTTP/1.1 409"), "{answer}");

    // Chunked past the limit: 413 as soon as it passes, before the 5 MB are all sent.
    let oversize = vec![b'a'; 5 * 1024 * 1024];
    for path in ["/login", "/config"] {
        let head = post_head(path, &session.cookie, "Transfer-Encoding: chunked\r\n");
        let (answer, took) = exchange(server.addr, head, chunked(&oversize, 64 * 1024)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(answer.contains("the request is too large"), "{path}: {answer}");
        assert!(took < Duration::from_secs(10), "{path}: took {took:?}");
    }

    // A GET with a chunked body answers as without one.
    let head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_string();
    let (answer, _) = exchange(server.addr, head, chunked(b"ignored=1", 4)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(server);
}
