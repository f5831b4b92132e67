//! Panics that reach a person without a secret in them: a process-wide hook that prints every
//! panic with camera credentials masked, and the same masking for the monitor's supervisor, which
//! turns a stream task's panic into a heartbeat message.

use std::any::Any;

use crate::url::redact_text;

/// Replaces the default panic hook (which prints the raw message) with one that masks
/// credentials and the string fragments std's own panics quote. Call once, first thing in `main`.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let thread_name = thread.name().unwrap_or("<unnamed>");
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "an unknown place".to_string());
        let message = describe_payload(info.payload());
        eprintln!("streampulse: thread '{thread_name}' panicked at {location}: {message}");
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("{backtrace}");
        }
    }));
}

/// The panic's message, safe to print or store.
pub fn describe_payload(payload: &(dyn Any + Send)) -> String {
    let raw = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    redact_panic_message(raw)
}

/// Masks `user:password@` in URLs, and, in std's string-indexing panics ("byte index 5 is not a
/// char boundary; it is inside 'é' (bytes 4..6) of `u:%aé`"), the quoted text, which is a slice of
/// whatever was being parsed: often a password.
pub fn redact_panic_message(message: &str) -> String {
    let redacted = redact_text(message);
    let quotes_input = [
        "byte index",
        "char boundary",
        "out of range for slice",
        "out of range for string",
    ]
    .iter()
    .any(|marker| redacted.contains(marker));
    if quotes_input {
        mask_quoted(&redacted)
    } else {
        redacted
    }
}

/// `a 'b' c `d`` → ``a '…' c `…```; an unclosed quote masks to the end.
fn mask_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<char> = None;
    for c in text.chars() {
        match open {
            Some(quote) if c == quote => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None if c == '`' || c == '\'' => {
                out.push(c);
                open = Some(c);
            }
            None => out.push(c),
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_masked() {
        let message = redact_panic_message("cannot open rtsp://admin:hunter2@10.0.0.5/live");
        assert_eq!(message, "cannot open rtsp://admin:***@10.0.0.5/live");
    }

    #[test]
    fn std_string_slicing_panics_lose_the_quoted_input() {
        let password = String::from("u:%aé");
        let payload = std::panic::catch_unwind(|| password[..5].len()).expect_err("must panic");
        let message = describe_payload(payload.as_ref());
        assert!(message.contains("char boundary"), "{message}");
        assert!(!message.contains("%a"), "{message}");
        assert!(!message.contains('é'), "{message}");
    }

    #[test]
    fn other_messages_keep_their_quotes() {
        assert_eq!(
            redact_panic_message("called `Option::unwrap()` on a `None` value"),
            "called `Option::unwrap()` on a `None` value"
        );
    }

    #[test]
    fn non_string_payloads_are_described() {
        let payload: Box<dyn Any + Send> = Box::new(42_u32);
        assert_eq!(describe_payload(payload.as_ref()), "(no message)");
    }
}
