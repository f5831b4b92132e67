//! Log set-up: lines on stderr, level from `RUST_LOG` (default `info`). Human-readable text by
//! default, coloured only on a terminal (not in the journal) and never with `NO_COLOR` set; or,
//! with `--log-format json`, one JSON object per line for log shippers (Loki, Elasticsearch).
//!
//! GLib's log output (`g_log` through its default handler, and structured logs, via the log writer)
//! and GStreamer's debug log go through `tracing` too: redacted (camera URLs may appear in them)
//! and rate-limited per message, so a library stuck in a loop printing the same critical cannot
//! fill a Pi's journal. Fatal messages (`G_DEBUG=fatal-criticals`, `g_error`) still abort after
//! being written: GLib aborts once the writer returns.

pub mod rate_limit;

use crate::url::redact_text;
use gstreamer as gst;
use gstreamer::glib;
use rate_limit::{normalise, RateLimiter, Report};
use std::io::IsTerminal;
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};
use tracing::Level;
use tracing_subscriber::EnvFilter;

/// Lines written per distinct library message per [`WINDOW`].
pub const LINES_PER_WINDOW: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-30T10:00:00.123456Z  INFO streampulse::monitor: message`, for people.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message`, the event's other fields,
    /// `target`.
    Json,
}

/// Installs the `tracing` subscriber (text lines) and routes GLib and GStreamer logging through
/// it. Call once, early; later calls do nothing.
pub fn init() {
    init_with(LogFormat::Text);
}

/// [`init`] with the given line format.
pub fn init_with(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(colour_wanted(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).try_init(),
    };
    route_library_logs();
}

/// Colour only on a terminal, and not when `NO_COLOR` is set to anything but the empty string
/// (<https://no-color.org>).
fn colour_wanted(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Writes how many library messages were suppressed and not yet reported (their windows may
/// still be open): for a last word before the process exits.
pub fn flush_suppressed() {
    let reports = lock_limiter().take_suppressed();
    write_reports(reports);
}

/// Where a library message came from: the `tracing` target it is written under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Library {
    Glib,
    Gstreamer,
}

/// Identifies "the same message" for the rate limit.
type MessageKey = (Library, Level, String, String);

fn route_library_logs() {
    static ROUTED: Once = Once::new();
    ROUTED.call_once(|| {
        // GLib allows one writer per process; `Once` keeps this the only call.
        glib::log_set_writer_func(|level, fields| {
            let mut domain = None;
            let mut message = None;
            for field in fields {
                match field.key() {
                    "GLIB_DOMAIN" => domain = field.value_str(),
                    "MESSAGE" => message = field.value_str(),
                    _ => {}
                }
            }
            let level = glib_level(level);
            if level <= tracing::level_filters::LevelFilter::current() {
                write(
                    Library::Glib,
                    level,
                    domain.unwrap_or("default"),
                    message.unwrap_or(""),
                );
            }
            glib::LogWriterOutput::Handled
        });
        // GStreamer's debug log (only what passes `GST_DEBUG`'s thresholds reaches it).
        gst::log::add_log_function(|category, level, _file, _function, _line, object, message| {
            let Some(level) = gst_level(level) else {
                return;
            };
            if level > tracing::level_filters::LevelFilter::current() {
                return;
            }
            let Some(text) = message.get() else {
                return;
            };
            let text = match object {
                Some(object) => format!("{object}: {text}"),
                None => text.to_string(),
            };
            write(Library::Gstreamer, level, category.name(), &text);
        });
        gst::log::remove_default_log_function();
    });
}

fn glib_level(level: glib::LogLevel) -> Level {
    match level {
        glib::LogLevel::Error | glib::LogLevel::Critical => Level::ERROR,
        glib::LogLevel::Warning => Level::WARN,
        glib::LogLevel::Message | glib::LogLevel::Info => Level::INFO,
        glib::LogLevel::Debug => Level::DEBUG,
    }
}

fn gst_level(level: gst::DebugLevel) -> Option<Level> {
    match level {
        gst::DebugLevel::Error => Some(Level::ERROR),
        gst::DebugLevel::Warning | gst::DebugLevel::Fixme => Some(Level::WARN),
        gst::DebugLevel::Info => Some(Level::INFO),
        gst::DebugLevel::Debug => Some(Level::DEBUG),
        gst::DebugLevel::Log | gst::DebugLevel::Trace | gst::DebugLevel::Memdump => Some(Level::TRACE),
        _ => None,
    }
}

/// Writes one library message, redacted, unless its rate limit is used up; first writes the
/// counts of messages suppressed in windows that have ended.
fn write(library: Library, level: Level, domain: &str, message: &str) {
    let message = redact_text(message);
    let key: MessageKey = (library, level, domain.to_string(), normalise(&message));
    let verdict = lock_limiter().check(&key, Instant::now());
    write_reports(verdict.reports);
    if verdict.emit {
        emit(library, level, domain, &message);
    }
}

fn lock_limiter() -> std::sync::MutexGuard<'static, RateLimiter<MessageKey>> {
    static LIMITER: OnceLock<Mutex<RateLimiter<MessageKey>>> = OnceLock::new();
    LIMITER
        .get_or_init(|| Mutex::new(RateLimiter::new(WINDOW, LINES_PER_WINDOW)))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write_reports(reports: Vec<Report<MessageKey>>) {
    for Report { key, suppressed } in reports {
        match key {
            Some((library, level, domain, text)) => emit(
                library,
                level,
                &domain,
                &format!("{suppressed} more similar messages suppressed ({LINES_PER_WINDOW} a minute written): {text}"),
            ),
            None => tracing::warn!(
                "{suppressed} more library log messages suppressed (too many different messages)"
            ),
        }
    }
}

/// `tracing` needs the level and target at compile time: one arm per pair.
fn emit(library: Library, level: Level, domain: &str, message: &str) {
    macro_rules! at_level {
        ($target:literal) => {
            match level {
                Level::ERROR => tracing::error!(target: $target, domain, "{message}"),
                Level::WARN => tracing::warn!(target: $target, domain, "{message}"),
                Level::INFO => tracing::info!(target: $target, domain, "{message}"),
                Level::DEBUG => tracing::debug!(target: $target, domain, "{message}"),
                _ => tracing::trace!(target: $target, domain, "{message}"),
            }
        };
    }
    match library {
        Library::Glib => at_level!("glib"),
        Library::Gstreamer => at_level!("gstreamer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_levels_map_to_tracing_levels() {
        assert_eq!(glib_level(glib::LogLevel::Critical), Level::ERROR);
        assert_eq!(glib_level(glib::LogLevel::Warning), Level::WARN);
        assert_eq!(glib_level(glib::LogLevel::Message), Level::INFO);
        assert_eq!(glib_level(glib::LogLevel::Debug), Level::DEBUG);
        assert_eq!(gst_level(gst::DebugLevel::Fixme), Some(Level::WARN));
        assert_eq!(gst_level(gst::DebugLevel::Log), Some(Level::TRACE));
        assert_eq!(gst_level(gst::DebugLevel::None), None);
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some("".into())));
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(!colour_wanted(false, None));
    }
}
