//! The confirmed state of one stream: a pure state machine over its heartbeats' health, so the
//! writer can run it inside the heartbeat's transaction and tests can drive it without SQLite.
//!
//! A stream is confirmed `down` after `down_after` consecutive down probes (`degraded_after` for
//! degraded, `up_after` for up); one odd probe between never confirms anything. More than
//! `flap_changes` confirmed changes within `flap_window` make it "flapping": one notice, then no
//! change notices until it has been quiet for `flap_window`, then one "stable" notice.
//!
//! A *quiet* heartbeat (the stream muted or in a maintenance window) still moves the state on,
//! so pages show the truth, but tells nothing and counts nothing towards flapping. The first
//! heartbeat after the quiet time compares the confirmed state with the one last told before it
//! (the baseline) and tells the difference once: a camera that died inside a window and is still
//! down after it gets one "down"; one that recovered inside it gets nothing.

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
    /// The last heartbeat applied was quiet (muted or in maintenance).
    pub quiet: bool,
    /// While quiet: the confirmed state when the quiet time began, the last one told.
    pub quiet_baseline: Option<Health>,
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
    /// Applies one probe's health at `ts_ms`; returns the notice it causes, if any. A `quiet`
    /// heartbeat (muted, maintenance) moves the state but returns nothing; the first one after
    /// quiet time tells what differs from the state told before it.
    pub fn apply(&mut self, rules: &ConfirmRules, health: Health, ts_ms: i64, quiet: bool) -> Option<Notice> {
        if ts_ms <= self.last_ts_ms && self.last_ts_ms != 0 {
            return None;
        }
        self.last_ts_ms = ts_ms;
        if quiet && !self.quiet {
            self.quiet = true;
            self.quiet_baseline = self.confirmed;
        }
        let notice = self.step(rules, health, ts_ms, quiet);
        if quiet {
            return None;
        }
        if !self.quiet {
            return notice;
        }
        // A return to the state told before is under way (`up_after` > 1): wait for it rather
        // than tell a "down" that its recovery follows a probe later.
        if self.pending.is_some() && self.pending == self.quiet_baseline && !self.flapping {
            return None;
        }
        self.quiet = false;
        let baseline = self.quiet_baseline.take();
        if self.flapping {
            // Flapping was told before the quiet time; its "stable" will follow as usual.
            return notice.filter(|notice| matches!(notice, Notice::Stable { .. }));
        }
        let now = self.confirmed?;
        if Some(now) == baseline || (baseline.is_none() && now == Health::Up) {
            return None;
        }
        Some(Notice::Changed {
            from: baseline,
            to: now,
            since_ms: self.since_ms,
        })
    }

    /// The state machine proper; `quiet` changes count nothing towards flapping.
    fn step(&mut self, rules: &ConfirmRules, health: Health, ts_ms: i64, quiet: bool) -> Option<Notice> {
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
        if quiet {
            return Some(Notice::Changed {
                from: Some(from),
                to: health,
                since_ms,
            });
        }
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
            .filter_map(|&(health, ts)| state.apply(rules, health, ts, false))
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
        assert_eq!(state.apply(&rules, Down, 5, false), None);
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
    fn run_quiet(state: &mut AlertState, probes: &[(Health, i64, bool)]) -> Vec<Notice> {
        let rules = ConfirmRules::default();
        probes
            .iter()
            .filter_map(|&(health, ts, quiet)| state.apply(&rules, health, ts, quiet))
            .collect()
    }

    #[test]
    fn down_inside_quiet_time_is_told_once_after_it_when_still_down() {
        let mut state = AlertState::default();
        let notices = run_quiet(
            &mut state,
            &[
                (Up, 1, false),
                (Up, 2, true),
                (Down, 3, true),
                (Down, 4, true),
                (Down, 5, true),
                (Down, 6, false),
                (Down, 7, false),
            ],
        );
        assert_eq!(
            notices,
            vec![Notice::Changed {
                from: Some(Up),
                to: Down,
                since_ms: 3
            }]
        );
        assert!(!state.quiet);
    }

    #[test]
    fn a_recovery_inside_quiet_time_tells_nothing_and_saves_nothing_up() {
        let mut state = AlertState::default();
        let notices = run_quiet(
            &mut state,
            &[
                (Up, 1, false),
                (Down, 2, true),
                (Down, 3, true),
                (Up, 4, true),
                (Up, 5, false),
                (Down, 6, false),
            ],
        );
        assert_eq!(notices, vec![]);
        // The first probe after the window is down but not yet confirmed: nothing either.
        assert_eq!(state.pending, Some(Down));
        // A camera down before the window and back inside it: its recovery is told after it.
        let mut state = AlertState::default();
        let notices = run_quiet(
            &mut state,
            &[
                (Up, 1, false),
                (Down, 2, false),
                (Down, 3, false),
                (Up, 4, true),
                (Up, 5, false),
            ],
        );
        assert_eq!(notices.len(), 2);
        assert_eq!(
            notices[1],
            Notice::Changed {
                from: Some(Down),
                to: Up,
                since_ms: 4
            }
        );
    }

    #[test]
    fn a_recovery_under_way_when_quiet_time_ends_is_awaited_not_told_as_a_down() {
        let rules = ConfirmRules {
            up_after: 2,
            ..ConfirmRules::default()
        };
        let mut state = AlertState::default();
        let probes = [
            (Up, 1, false),
            (Up, 2, false),
            (Down, 3, true),
            (Down, 4, true),
            (Up, 5, false),
            (Up, 6, false),
            (Up, 7, false),
        ];
        let notices: Vec<Notice> = probes
            .iter()
            .filter_map(|&(health, ts, quiet)| state.apply(&rules, health, ts, quiet))
            .collect();
        assert_eq!(notices, vec![]);
        assert!(!state.quiet);
        // The recovery fails: then the down is told, once.
        let mut state = AlertState::default();
        let probes = [
            (Up, 1, false),
            (Up, 2, false),
            (Down, 3, true),
            (Down, 4, true),
            (Up, 5, false),
            (Down, 6, false),
            (Down, 7, false),
        ];
        let notices: Vec<Notice> = probes
            .iter()
            .filter_map(|&(health, ts, quiet)| state.apply(&rules, health, ts, quiet))
            .collect();
        assert_eq!(
            notices,
            vec![Notice::Changed {
                from: Some(Up),
                to: Down,
                since_ms: 3
            }]
        );
    }

    #[test]
    fn changes_in_quiet_time_do_not_count_towards_flapping() {
        let mut state = AlertState::default();
        let mut probes = vec![(Up, 1, false)];
        for ts in 2..40 {
            probes.push((if ts % 4 < 2 { Down } else { Up }, ts, true));
        }
        probes.push((Up, 40, false));
        assert_eq!(run_quiet(&mut state, &probes), vec![]);
        assert!(!state.flapping);
        assert!(state.recent_changes_ms.is_empty());
    }
}
