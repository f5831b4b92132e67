//! The email channel: one SMTP submission per notification (lettre over tokio and rustls),
//! STARTTLS or implicit TLS, login when configured, under one deadline. The message is plain
//! text: a subject line and the stream, old → new state, reason, since, the redacted URL, the
//! link and the site. Errors say what failed the way a person fixes it (refused, TLS, the
//! server's code and text), and never hold the password.

use super::transport::TransportError;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Event, Notification};
use crate::config::{EmailChannel, SmtpTls};

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot build the message: {0}")]
    Message(String),
    #[error("cannot read the CA file {0}: {1}")]
    CaFile(String, String),
    #[error("login refused by {host}: {code} {text}")]
    Auth {
        host: String,
        code: String,
        text: String,
    },
    #[error("the server answered {code}: {text}")]
    Rejected {
        code: String,
        text: String,
        permanent: bool,
    },
    #[error("SMTP exchange with {0} failed: {1}")]
    Protocol(String, String),
}

impl EmailError {
    /// A 5xx answer or a message that cannot be built will not get better by retrying.
    pub fn is_permanent(&self) -> bool {
        match self {
            EmailError::Message(_) | EmailError::CaFile(..) | EmailError::Auth { .. } => true,
            EmailError::Rejected { permanent, .. } => *permanent,
            _ => false,
        }
    }
}

/// The subject of `notification`'s mail.
pub fn subject(notification: &Notification) -> String {
    let prefix = match (notification.event, notification.new_state.as_str()) {
        (Event::Test, _) => "[StreamPulse test]",
        (Event::Flapping, _) | (_, "down") | (_, "degraded") => "[StreamPulse] ⚠",
        _ => "[StreamPulse] ✓",
    };
    format!("{prefix} {}", notification.title)
}

/// The plain-text body of `notification`'s mail.
pub fn body(notification: &Notification) -> String {
    let mut lines = vec![notification.text.clone(), String::new()];
    let mut field = |name: &str, value: &str| lines.push(format!("{name:<8} {value}"));
    field("Stream:", &notification.stream);
    field(
        "State:",
        &format!("{} → {}", notification.old_state, notification.new_state),
    );
    if let Some(reason) = &notification.reason {
        field("Reason:", reason);
    }
    if !notification.message.is_empty() {
        field("Message:", &notification.message);
    }
    field("Since:", &notification.since);
    if let Some(url) = &notification.url {
        field("URL:", url);
    }
    if let Some(link) = &notification.link {
        field("Link:", link);
    }
    if let Some(site) = &notification.site {
        field("Site:", site);
    }
    lines.push(String::new());
    lines.push("-- \nStreamPulse".to_string());
    lines.join("\n")
}

/// Submits `notification` to the channel's relay.
pub async fn send(
    channel: &EmailChannel,
    notification: &Notification,
    timeout: Duration,
) -> Result<(), EmailError> {
    let mut builder = Message::builder()
        .from(channel.from.clone())
        .subject(subject(notification))
        .header(ContentType::TEXT_PLAIN);
    for to in &channel.to {
        builder = builder.to(to.clone());
    }
    let message = builder
        .body(body(notification))
        .map_err(|error| EmailError::Message(error.to_string()))?;
    // lettre reports a name that does not resolve as any other I/O error: asked first, it is
    // told as what it is.
    match tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((channel.host.as_str(), channel.port)),
    )
    .await
    {
        Err(_) => return Err(EmailError::from(TransportError::Timeout(timeout))),
        Ok(Err(error)) => {
            return Err(EmailError::from(TransportError::Dns(
                channel.host.clone(),
                error.to_string(),
            )))
        }
        Ok(Ok(_)) => {}
    }
    let transport = transport(channel, timeout)?;
    match tokio::time::timeout(timeout, transport.send(message)).await {
        Err(_) => Err(EmailError::from(TransportError::Timeout(timeout))),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(classify(channel, &error, timeout)),
    }
}

fn transport(
    channel: &EmailChannel,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, EmailError> {
    let tls = match channel.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => Tls::Required(tls_parameters(channel)?),
        SmtpTls::Implicit => Tls::Wrapper(tls_parameters(channel)?),
    };
    // One connection per message: notifications are rare, and a pooled connection would go stale.
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(channel.host.clone())
        .port(channel.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&channel.username, &channel.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_string()));
    }
    Ok(builder.build())
}

fn tls_parameters(channel: &EmailChannel) -> Result<TlsParameters, EmailError> {
    let mut builder = TlsParameters::builder(channel.host.clone());
    if let Some(path) = &channel.ca_file {
        let shown = path.display().to_string();
        let pem =
            std::fs::read(path).map_err(|error| EmailError::CaFile(shown.clone(), error.to_string()))?;
        let certificate =
            Certificate::from_pem(&pem).map_err(|error| EmailError::CaFile(shown, error.to_string()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|error| EmailError::from(TransportError::Tls(channel.host.clone(), chain(&error))))
}

/// lettre's error as what failed: its kind (connection, TLS, an SMTP code) and the I/O error
/// underneath, never its wording.
fn classify(channel: &EmailChannel, error: &lettre::transport::smtp::Error, timeout: Duration) -> EmailError {
    let server = format!("{}:{}", channel.host, channel.port);
    if let Some(code) = error.status() {
        let code_text = code.to_string();
        let text = server_text(error);
        // 535 (and 534, 530) answer AUTH: the login is wrong, not the message.
        if matches!(code_text.as_str(), "530" | "534" | "535") {
            return EmailError::Auth {
                host: server,
                code: code_text,
                text,
            };
        }
        return EmailError::Rejected {
            code: code_text,
            text,
            permanent: error.is_permanent(),
        };
    }
    if error.is_timeout() {
        return EmailError::from(TransportError::Timeout(timeout));
    }
    // A failed handshake (STARTTLS or implicit) reaches lettre as an I/O error around rustls's.
    if error.is_tls() || find::<rustls::Error>(error).is_some() {
        return EmailError::from(TransportError::Tls(server, chain(error)));
    }
    if let Some(io) = find::<std::io::Error>(error) {
        if io.kind() == std::io::ErrorKind::ConnectionRefused {
            return EmailError::from(TransportError::Refused(server));
        }
        if io.kind() == std::io::ErrorKind::TimedOut {
            return EmailError::from(TransportError::Timeout(timeout));
        }
        return EmailError::from(TransportError::Connect(server, io.to_string()));
    }
    EmailError::Protocol(server, chain(error))
}

/// The first error of type `T` in `error`'s chain (an `io::Error`'s inner error included).
fn find<'a, T: std::error::Error + 'static>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<T>())
        {
            return Some(inner);
        }
        current = error.source();
    }
    None
}

/// The error and its causes on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        current = cause.source();
    }
    text
}

/// What the server said after its code, without lettre's framing.
fn server_text(error: &lettre::transport::smtp::Error) -> String {
    let shown = chain(error);
    // lettre shows "permanent error (535): text"; the code is reported on its own.
    match shown.split_once("): ") {
        Some((_, text)) => text.trim().to_string(),
        None => shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification() -> Notification {
        Notification {
            event: Event::Change,
            stream: "Gate".to_string(),
            site: Some("lab".to_string()),
            old_state: "up".to_string(),
            new_state: "down".to_string(),
            reason: Some("refused".to_string()),
            message: "connection refused".to_string(),
            since: "2026-11-25T09:12:00Z".to_string(),
            since_ms: 0,
            url: Some("rtsp://admin:***@cam/s".to_string()),
            link: Some("https://cams.example.org/streams/Gate".to_string()),
            title: "Gate (lab) is down".to_string(),
            text: "Gate (lab): up → down".to_string(),
        }
    }

    #[test]
    fn the_body_names_every_fact_a_person_needs() {
        let body = body(&notification());
        for line in [
            "State:   up → down",
            "Reason:  refused",
            "Since:   2026-11-25T09:12:00Z",
            "URL:     rtsp://admin:***@cam/s",
            "Link:    https://cams.example.org/streams/Gate",
            "Site:    lab",
        ] {
            assert!(body.contains(line), "{line:?} in {body}");
        }
        assert_eq!(subject(&notification()), "[StreamPulse] ⚠ Gate (lab) is down");
    }
}
