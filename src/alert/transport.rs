//! Why a channel could not reach its server (a webhook receiver, an SMTP server): the failures
//! every channel meets on the way, worded once.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("host name {0:?} not found: {1}")]
    Dns(String, String),
    #[error("connection refused by {0}")]
    Refused(String),
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
}
