//! The confirmed state of one stream: a pure state machine over its heartbeats' health, so the
//! writer can run it inside the heartbeat's transaction and tests can drive it without SQLite.
//!
//! A stream is confirmed `down` after `down_after` consecutive down probes (`degraded_after` for
//! degraded, `up_after` for up); one odd probe between never confirms anything. More than
//! `flap_changes` confirmed changes within `flap_window` make it "flapping": one notice, then no
//! change notices until it has been quiet for `flap_window`, then one "stable" notice.

use serde::{Deserialize, Serialize};

use crate::heartbeat::Health;

/// `alerts.down_after` when the config gives none.
pub const DEFAULT_DOWN_AFTER: u32 = 2;
/// `alerts.up_after` when the config gives none.
pub const DEFAULT_UP_AFTER: u32 = 1;
/// `alerts.degraded_after` when the config gives none: like `down_after`.
pub const DEFAULT_DEGRADED_AFTER: u32 = 2;
/// `alerts.flap_changes` when the config gives none.
pub const DEFAULT_FLAP_CHANGES: u32 = 4;
/// `alerts.flap_minutes` when the config gives none.
pub const DEFAULT_FLAP_MINUTES: u32 = 30;

/// How many probes confirm a change, and what counts as flapping; global under `alerts:`,
/// overridable per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmRules {
    pub down_after: u32,
    pub degraded_after: u32,
    pub up_after: u32,
    pub flap_changes: u32,
    pub flap_window_ms: i64,
}

impl Default for ConfirmRules {
    fn default() -> Self {
        ConfirmRules {
            down_after: DEFAULT_DOWN_AFTER,
            degraded_after: DEFAULT_DEGRADED_AFTER,
            up_after: DEFAULT_UP_AFTER,
            flap_changes: DEFAULT_FLAP_CHANGES,
            flap_window_ms: i64::from(DEFAULT_FLAP_MINUTES) * 60_000,
        }
    }
}

impl ConfirmRules {
    /// Consecutive probes of `health` that confirm it (at least 1).
    pub fn needed(&self, health: Health) -> u32 {
        match health {
            Health::Up => self.up_after,
            Health::Degraded => self.degraded_after,
            Health::Down => self.down_after,
        }
        .max(1)
    }
}

/// One stream's confirmed state, as stored in `stream_alert_state`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// `None` until the first change is confirmed.
    pub confirmed: Option<Health>,
    /// When the confirmed state began (its first probe, not the confirming one).
    pub since_ms: i64,
    /// A health seen but not yet confirmed, how many probes in a row and since when.
    pub pending: Option<Health>,
    pub pending_count: u32,
    pub pending_since_ms: i64,
    /// The newest heartbeat applied; older ones change nothing.
    pub last_ts_ms: i64,
    pub flapping: bool,
    /// Times of the confirmed changes within the flap window, oldest first.
    pub recent_changes_ms: Vec<i64>,
}

/// What a heartbeat made of the confirmed state, to be notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A confirmed change (not sent while flapping, nor for a first `up`).
    Changed {
        from: Option<Health>,
        to: Health,
        since_ms: i64,
    },
    /// Too many changes in the window; changes go quiet.
    Flapping { to: Health, since_ms: i64 },
    /// Quiet for a whole window after flapping; says the state it settled in.
    Stable { to: Health, since_ms: i64 },
}

impl AlertState {
    /// Applies one probe's health at `ts_ms`; returns the notice it causes, if any.
    pub fn apply(&mut self, rules: &ConfirmRules, health: Health, ts_ms: i64) -> Option<Notice> {
        if ts_ms <= self.last_ts_ms && self.last_ts_ms != 0 {
            return None;
        }
        self.last_ts_ms = ts_ms;
        if self.confirmed == Some(health) {
            self.pending = None;
            self.pending_count = 0;
            return self.settle(rules, ts_ms);
        }
        if self.pending == Some(health) {
            self.pending_count = self.pending_count.saturating_add(1);
        } else {
            self.pending = Some(health);
            self.pending_count = 1;
            self.pending_since_ms = ts_ms;
        }
        if self.pending_count < rules.needed(health) {
            return self.settle(rules, ts_ms);
        }
        let from = self.confirmed;
        let since_ms = self.pending_since_ms;
        self.confirmed = Some(health);
        self.since_ms = since_ms;
        self.pending = None;
        self.pending_count = 0;
        // The first state a stream is seen in is not a change (a fresh start with every camera
        // up says nothing); a first `down` is worth telling.
        let Some(from) = from else {
            return (health != Health::Up).then_some(Notice::Changed {
                from: None,
                to: health,
                since_ms,
            });
        };
        self.recent_changes_ms.push(ts_ms);
        self.recent_changes_ms
            .retain(|&change| ts_ms - change < rules.flap_window_ms);
        if self.flapping {
            return None;
        }
        if self.recent_changes_ms.len() > rules.flap_changes as usize {
            self.flapping = true;
            return Some(Notice::Flapping { to: health, since_ms });
        }
        Some(Notice::Changed {
            from: Some(from),
            to: health,
            since_ms,
        })
    }

    /// Ends flapping once no change has been confirmed for a whole window.
    fn settle(&mut self, rules: &ConfirmRules, ts_ms: i64) -> Option<Notice> {
        let quiet_since = self.recent_changes_ms.last().copied().unwrap_or(0);
        if !self.flapping || ts_ms - quiet_since < rules.flap_window_ms {
            return None;
        }
        self.flapping = false;
        self.recent_changes_ms.clear();
        let to = self.confirmed?;
        Some(Notice::Stable {
            to,
            since_ms: self.since_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Health::{Down, Up};

    fn run(rules: &ConfirmRules, state: &mut AlertState, probes: &[(Health, i64)]) -> Vec<Notice> {
        probes
            .iter()
            .filter_map(|&(health, ts)| state.apply(rules, health, ts))
            .collect()
    }

    #[test]
    fn one_failed_probe_confirms_nothing_two_confirm_down_one_good_confirms_up() {
        let rules = ConfirmRules::default();
        let mut state = AlertState::default();
        let notices = run(
            &rules,
            &mut state,
            &[
                (Up, 1),
                (Down, 2),
                (Up, 3),
                (Down, 4),
                (Down, 5),
                (Down, 6),
                (Up, 7),
            ],
        );
        assert_eq!(
            notices,
            vec![
                Notice::Changed {
                    from: Some(Up),
                    to: Down,
                    since_ms: 4
                },
                Notice::Changed {
                    from: Some(Down),
                    to: Up,
                    since_ms: 7
                },
            ]
        );
        assert_eq!((state.confirmed, state.since_ms), (Some(Up), 7));
    }

    #[test]
    fn a_stream_first_seen_down_is_told_a_first_up_is_not() {
        let rules = ConfirmRules::default();
        let mut state = AlertState::default();
        assert_eq!(
            run(&rules, &mut state, &[(Down, 1), (Down, 2)]),
            vec![Notice::Changed {
                from: None,
                to: Down,
                since_ms: 1
            }]
        );
        let mut fresh = AlertState::default();
        assert_eq!(run(&rules, &mut fresh, &[(Up, 1), (Up, 2)]), vec![]);
    }

    #[test]
    fn older_heartbeats_change_nothing() {
        let rules = ConfirmRules::default();
        let mut state = AlertState::default();
        run(&rules, &mut state, &[(Up, 10), (Down, 11)]);
        assert_eq!(state.apply(&rules, Down, 5), None);
        assert_eq!(state.pending_count, 1);
    }

    #[test]
    fn flapping_is_told_once_then_stable_once() {
        let rules = ConfirmRules {
            down_after: 1,
            up_after: 1,
            flap_changes: 3,
            flap_window_ms: 100,
            ..ConfirmRules::default()
        };
        let mut state = AlertState::default();
        let mut probes = vec![(Up, 1)];
        for ts in 2..20 {
            probes.push((if ts % 2 == 0 { Down } else { Up }, ts));
        }
        // Then up for longer than the window.
        for ts in 20..140 {
            probes.push((Up, ts));
        }
        let notices = run(&rules, &mut state, &probes);
        let kinds: Vec<&str> = notices
            .iter()
            .map(|notice| match notice {
                Notice::Changed { .. } => "changed",
                Notice::Flapping { .. } => "flapping",
                Notice::Stable { .. } => "stable",
            })
            .collect();
        assert_eq!(kinds, vec!["changed", "changed", "changed", "flapping", "stable"]);
        assert_eq!(notices[4], Notice::Stable { to: Up, since_ms: 19 });
        assert!(!state.flapping);
    }
}
