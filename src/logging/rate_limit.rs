//! A per-message rate limit for library log lines: a few lines per distinct message per window,
//! then one "N more suppressed" report when the window is over. Pure: the caller passes the time.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Distinct messages tracked at once; beyond that, new ones share one budget (see
/// [`Report::key`]), so a flood of ever-different messages cannot grow memory either.
pub const MAX_TRACKED: usize = 1024;

/// Lines suppressed for one key (or, with `key: None`, for messages beyond [`MAX_TRACKED`]) in a
/// window that has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<K> {
    pub key: Option<K>,
    pub suppressed: u64,
}

/// What to do with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict<K> {
    /// Write the message.
    pub emit: bool,
    /// Windows that ended since the last look, with lines suppressed in them: write these first.
    pub reports: Vec<Report<K>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    emitted: u32,
    suppressed: u64,
}

impl Window {
    fn new(now: Instant) -> Window {
        Window {
            started: now,
            emitted: 0,
            suppressed: 0,
        }
    }

    /// Counts one message; true if it may be written.
    fn admit(&mut self, limit: u32) -> bool {
        if self.emitted < limit {
            self.emitted += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

/// Allows `lines_per_window` lines per key per `window`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    window: Duration,
    lines_per_window: u32,
    windows: HashMap<K, Window>,
    /// Messages whose key found no room among the tracked ones.
    overflow: Option<Window>,
    last_sweep: Option<Instant>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(window: Duration, lines_per_window: u32) -> RateLimiter<K> {
        RateLimiter {
            window,
            lines_per_window,
            windows: HashMap::new(),
            overflow: None,
            last_sweep: None,
        }
    }

    /// Decides for one message with `key` arriving at `now`.
    pub fn check(&mut self, key: &K, now: Instant) -> Verdict<K> {
        let mut reports = Vec::new();
        // Ended windows are reported (and forgotten) at most once a window, on whatever message
        // comes next, so a spin that stops still gets its count written.
        let sweep_due = self
            .last_sweep
            .is_none_or(|last| now.saturating_duration_since(last) >= self.window);
        if sweep_due {
            self.last_sweep = Some(now);
            self.sweep(now, &mut reports);
        }
        if let Some(window) = self.windows.get_mut(key) {
            if now.saturating_duration_since(window.started) >= self.window {
                if window.suppressed > 0 {
                    reports.push(Report {
                        key: Some(key.clone()),
                        suppressed: window.suppressed,
                    });
                }
                *window = Window::new(now);
            }
            let emit = window.admit(self.lines_per_window);
            return Verdict { emit, reports };
        }
        if self.windows.len() < MAX_TRACKED {
            let mut window = Window::new(now);
            let emit = window.admit(self.lines_per_window);
            self.windows.insert(key.clone(), window);
            return Verdict { emit, reports };
        }
        let overflow = self.overflow.get_or_insert_with(|| Window::new(now));
        let emit = overflow.admit(self.lines_per_window);
        Verdict { emit, reports }
    }

    /// Reports every line suppressed so far, in windows still open too, and zeroes those counts:
    /// for a last word at shutdown.
    pub fn take_suppressed(&mut self) -> Vec<Report<K>> {
        let mut reports = Vec::new();
        for (key, window) in &mut self.windows {
            if window.suppressed > 0 {
                reports.push(Report {
                    key: Some(key.clone()),
                    suppressed: std::mem::take(&mut window.suppressed),
                });
            }
        }
        if let Some(overflow) = self.overflow.as_mut().filter(|window| window.suppressed > 0) {
            reports.push(Report {
                key: None,
                suppressed: std::mem::take(&mut overflow.suppressed),
            });
        }
        reports
    }

    /// Distinct keys tracked now.
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }

    fn sweep(&mut self, now: Instant, reports: &mut Vec<Report<K>>) {
        let window_length = self.window;
        let ended = |window: &Window| now.saturating_duration_since(window.started) >= window_length;
        self.windows.retain(|key, window| {
            if !ended(window) {
                return true;
            }
            if window.suppressed > 0 {
                reports.push(Report {
                    key: Some(key.clone()),
                    suppressed: window.suppressed,
                });
            }
            false
        });
        if self.overflow.as_ref().is_some_and(ended) {
            if let Some(overflow) = self.overflow.take().filter(|window| window.suppressed > 0) {
                reports.push(Report {
                    key: None,
                    suppressed: overflow.suppressed,
                });
            }
        }
    }
}

/// The part of a message that identifies it: digit runs (counts, ports, times, element numbers)
/// and hexadecimal addresses become `#`, so "read 12 bytes at 0x55d0c1" and "read 13 bytes at
/// 0x55e1f0" are the same message. Long messages are cut at 200 characters.
pub fn normalise(text: &str) -> String {
    const KEPT_CHARS: usize = 200;
    let mut out = String::with_capacity(text.len().min(KEPT_CHARS * 4));
    let mut chars = text.chars().peekable();
    let mut kept = 0;
    while let Some(c) = chars.next() {
        if kept >= KEPT_CHARS {
            break;
        }
        kept += 1;
        if c == '0' && chars.peek().is_some_and(|next| *next == 'x' || *next == 'X') {
            chars.next();
            while chars.peek().is_some_and(char::is_ascii_hexdigit) {
                chars.next();
            }
            out.push('#');
        } else if c.is_ascii_digit() {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('#');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn emitted(limiter: &mut RateLimiter<&'static str>, key: &'static str, at: Instant, count: u32) -> u32 {
        (0..count).filter(|_| limiter.check(&key, at).emit).count() as u32
    }

    #[test]
    fn a_few_lines_per_window_then_one_report_when_it_ends() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(MINUTE, 3);
        assert_eq!(emitted(&mut limiter, "spin", start, 10_000), 3);
        // Still the same window: nothing written, nothing reported yet.
        let later = limiter.check(&"spin", start + Duration::from_secs(59));
        assert_eq!(
            later,
            Verdict {
                emit: false,
                reports: Vec::new()
            }
        );
        // The next window starts with the count of the previous one, then writes again.
        let next = limiter.check(&"spin", start + MINUTE);
        assert!(next.emit);
        assert_eq!(
            next.reports,
            [Report {
                key: Some("spin"),
                suppressed: 9_998
            }]
        );
    }

    #[test]
    fn suppressed_counts_can_be_taken_before_the_window_ends() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(MINUTE, 2);
        assert_eq!(emitted(&mut limiter, "spin", start, 12), 2);
        assert_eq!(
            limiter.take_suppressed(),
            [Report {
                key: Some("spin"),
                suppressed: 10
            }]
        );
        assert!(limiter.take_suppressed().is_empty(), "counted once");
        // The window goes on: still no more lines until it ends.
        assert!(!limiter.check(&"spin", start + Duration::from_secs(1)).emit);
        let next = limiter.check(&"spin", start + MINUTE);
        assert!(next.emit);
        assert_eq!(
            next.reports,
            [Report {
                key: Some("spin"),
                suppressed: 1
            }]
        );
    }

    #[test]
    fn keys_have_separate_budgets() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(MINUTE, 2);
        assert_eq!(emitted(&mut limiter, "a", start, 5), 2);
        assert_eq!(emitted(&mut limiter, "b", start, 5), 2);
        assert_eq!(limiter.tracked(), 2);
    }

    #[test]
    fn a_spin_that_stopped_is_reported_on_the_next_message_of_any_kind() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(MINUTE, 1);
        assert_eq!(emitted(&mut limiter, "spin", start, 50), 1);
        let other = limiter.check(&"other", start + Duration::from_secs(61));
        assert!(other.emit);
        assert_eq!(
            other.reports,
            [Report {
                key: Some("spin"),
                suppressed: 49
            }]
        );
        // Reported once only, and the ended window is forgotten.
        assert_eq!(limiter.tracked(), 1);
        let again = limiter.check(&"other", start + Duration::from_secs(62));
        assert!(again.reports.is_empty());
    }

    #[test]
    fn a_quiet_key_reports_nothing() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(MINUTE, 5);
        assert_eq!(emitted(&mut limiter, "rare", start, 3), 3);
        let next = limiter.check(&"rare", start + 2 * MINUTE);
        assert_eq!(
            next,
            Verdict {
                emit: true,
                reports: Vec::new()
            }
        );
    }

    #[test]
    fn ever_different_keys_share_one_budget_beyond_the_tracked_limit() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(MINUTE, 2);
        let written = (0..MAX_TRACKED + 100)
            .filter(|n| limiter.check(&n.to_string(), start).emit)
            .count();
        assert_eq!(limiter.tracked(), MAX_TRACKED);
        assert_eq!(written, MAX_TRACKED + 2);
        let next = limiter.check(&"late".to_string(), start + MINUTE);
        assert!(next.emit);
        assert!(
            next.reports.contains(&Report {
                key: None,
                suppressed: 98
            }),
            "{:?}",
            next.reports
        );
    }

    #[test]
    fn numbers_and_addresses_do_not_make_a_message_distinct() {
        assert_eq!(
            normalise("read 12 bytes at 0x55d0c1aF from rtspsrc3"),
            normalise("read 7 bytes at 0x7f00 from rtspsrc12")
        );
        assert_eq!(normalise("rtspsrc3 at 0xBEEF: 404"), "rtspsrc# at #: #");
        assert_ne!(normalise("connection refused"), normalise("connection reset"));
        assert_eq!(normalise(&"é".repeat(500)).chars().count(), 200);
    }
}
