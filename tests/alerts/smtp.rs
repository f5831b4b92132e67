//! A real SMTP sink on loopback for the email channel's tests: Debian's `python3-aiosmtpd`
//! (`smtp_sink.py` beside this file) as a child process, plain, STARTTLS or implicit TLS with a
//! certificate made here, with or without a login. It writes what it accepted to a file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// The Debian interpreter, which has the `python3-aiosmtpd` package (not a pyenv shim).
const PYTHON: &str = "/usr/bin/python3";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    None,
    Starttls,
    Implicit,
}

/// One message the sink accepted.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub login: Option<String>,
    /// The message as sent: headers, blank line, body (CRLF line ends).
    pub data: String,
}

impl Mail {
    /// The decoded value of header `name` (lettre encodes non-ASCII subjects).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let mut lines = self.data.split("\r\n");
        let first = lines.find(|line| line.to_ascii_lowercase().starts_with(&prefix))?;
        let mut value = first[prefix.len()..].trim().to_string();
        for line in lines.take_while(|line| line.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(line.trim());
        }
        Some(value)
    }

    /// The body, with quoted-printable soft breaks and escapes undone.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let quoted = self
            .header("content-transfer-encoding")
            .is_some_and(|encoding| encoding.eq_ignore_ascii_case("quoted-printable"));
        if !quoted {
            return body.replace("\r\n", "\n");
        }
        let joined = body.replace("=\r\n", "").replace("\r\n", "\n");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            if bytes[index] == b'=' && index + 2 < bytes.len() {
                if let Ok(byte) = u8::from_str_radix(&joined[index + 1..index + 3], 16) {
                    out.push(byte);
                    index += 3;
                    continue;
                }
            }
            out.push(bytes[index]);
            index += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<(Child, ChildStdin)>,
    tls: SinkTls,
    auth: Option<String>,
}

impl SmtpSink {
    /// A sink on a free loopback port; `auth` is `user:password`.
    pub fn start(tls: SinkTls, auth: Option<&str>) -> SmtpSink {
        SmtpSink::start_on(streampulse::demo::closed_port(), tls, auth)
    }

    pub fn start_on(port: u16, tls: SinkTls, auth: Option<&str>) -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sink = SmtpSink {
            port,
            dir,
            child: None,
            tls,
            auth: auth.map(str::to_string),
        };
        if tls != SinkTls::None {
            let pair =
                rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
            std::fs::write(sink.cert_path(), pair.cert.pem()).expect("write cert");
            std::fs::write(sink.dir.path().join("key.pem"), pair.signing_key.serialize_pem())
                .expect("write key");
        }
        sink.resume();
        sink
    }

    /// The sink's certificate, for the channel's `ca_file:`.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn out_path(&self) -> PathBuf {
        self.dir.path().join("received.jsonl")
    }

    /// Stops listening (the port is refused until [`SmtpSink::resume`]).
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Listens again on the same port, with the same certificate and login.
    pub fn resume(&mut self) {
        let mut command = Command::new(PYTHON);
        command
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/alerts/smtp_sink.py"))
            .args(["--port", &self.port.to_string()])
            .arg("--out")
            .arg(self.out_path());
        match self.tls {
            SinkTls::None => {}
            SinkTls::Starttls | SinkTls::Implicit => {
                let mode = if self.tls == SinkTls::Starttls {
                    "starttls"
                } else {
                    "implicit"
                };
                command.args(["--tls", mode]).arg("--cert").arg(self.cert_path());
                command.arg("--key").arg(self.dir.path().join("key.pem"));
            }
        }
        if let Some(auth) = &self.auth {
            command.args(["--auth", auth]);
        }
        // aiosmtpd prints a traceback for each refused TLS handshake: kept beside the mail.
        let log = std::fs::File::create(self.dir.path().join("sink.log")).expect("sink log");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{PYTHON} with aiosmtpd (apt-get install python3-aiosmtpd): {e}"));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("sink output");
        assert_eq!(
            line.trim(),
            "READY",
            "the SMTP sink did not start (is python3-aiosmtpd installed?)"
        );
        self.child = Some((child, stdin));
    }

    /// Every message accepted so far, oldest first.
    pub fn received(&self) -> Vec<Mail> {
        std::fs::read_to_string(self.out_path())
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("sink record"))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
