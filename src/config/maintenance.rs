//! `maintenance:` windows: recurring wall-clock times in the configured timezone during which a
//! stream's heartbeats are *quiet* (recorded and flagged, left out of uptime, never notified).
//!
//! A window is `from`–`to` on some weekdays (every day by default); `to` before `from` crosses
//! midnight and belongs to the day it starts on. Windows are wall-clock times, evaluated for each
//! heartbeat from its local time: on a spring-forward night a window inside the skipped hour does
//! not happen and one that spans it is an hour shorter; on an autumn night a window inside the
//! repeated hour covers both passes. That is what a camera that reboots "at 02:30 local time" by
//! its own clock does too.

use std::fmt;

use time::OffsetDateTime;
use time_tz::{Offset, TimeZone};

/// Day names as the config writes them, Monday first (bit 0 of [`MaintenanceWindow::days`]).
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
/// Every day of the week.
pub const EVERY_DAY: u8 = 0x7f;
/// Minutes in a day; `24:00` is allowed as the end of a window.
pub const MINUTES_PER_DAY: u16 = 1440;

/// One recurring window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// The weekdays on which the window starts, Monday = bit 0.
    pub days: u8,
    /// Minutes after local midnight: `[from_minute, to_minute)`, crossing midnight when
    /// `to_minute <= from_minute`.
    pub from_minute: u16,
    pub to_minute: u16,
}

impl MaintenanceWindow {
    /// Whether local `minute` (after midnight) of `weekday` (Monday = 0) is inside the window.
    pub fn covers_local(&self, weekday: u8, minute: u16) -> bool {
        let starts_on = |day: u8| self.days & (1 << (day % 7)) != 0;
        if self.from_minute < self.to_minute {
            starts_on(weekday) && (self.from_minute..self.to_minute).contains(&minute)
        } else {
            (starts_on(weekday) && minute >= self.from_minute)
                || (starts_on(weekday + 6) && minute < self.to_minute)
        }
    }

    /// Whether the instant `ts_ms` (UTC milliseconds) is inside the window in `tz`.
    pub fn covers(&self, ts_ms: i64, tz: &time_tz::Tz) -> bool {
        let (weekday, minute) = local_minute(ts_ms, tz);
        self.covers_local(weekday, minute)
    }
}

impl fmt::Display for MaintenanceWindow {
    /// `daily 03:00–03:15`, `mon,fri 22:00–02:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = |minute: u16| format!("{:02}:{:02}", minute / 60, minute % 60);
        let days = if self.days == EVERY_DAY {
            "daily".to_string()
        } else {
            let names: Vec<&str> = (0..7)
                .filter(|day| self.days & (1 << day) != 0)
                .map(|day| DAY_NAMES[day])
                .collect();
            names.join(",")
        };
        write!(f, "{days} {}–{}", clock(self.from_minute), clock(self.to_minute))
    }
}

/// The local weekday (Monday = 0) and minute after midnight of `ts_ms` in `tz`.
pub fn local_minute(ts_ms: i64, tz: &time_tz::Tz) -> (u8, u16) {
    let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let local = utc.to_offset(tz.get_offset_utc(&utc).to_utc());
    let minute = u16::from(local.hour()) * 60 + u16::from(local.minute());
    (local.weekday().number_days_from_monday(), minute)
}

/// `HH:MM` (or `H:MM`) as minutes after midnight; `24:00` is the end of the day.
pub fn parse_time_of_day(text: &str) -> Result<u16, String> {
    let wrong = || format!("expected a time such as 03:00 (hours 0–24, minutes 00–59), found {text:?}");
    let (hours, minutes) = text.trim().split_once(':').ok_or_else(wrong)?;
    let digits = |part: &str, most: usize| {
        (!part.is_empty() && part.len() <= most && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u16>().ok())
            .flatten()
    };
    let (Some(hours), Some(minutes)) = (
        digits(hours, 2),
        digits(minutes, 2).filter(|_| minutes.len() == 2),
    ) else {
        return Err(wrong());
    };
    if minutes > 59 || hours > 24 || (hours == 24 && minutes > 0) {
        return Err(wrong());
    }
    Ok(hours * 60 + minutes)
}

/// One `days:` item: a day (`mon`, `Monday`) or a range of days (`mon-fri`, `fri-mon`) as bits.
pub fn parse_days(text: &str) -> Result<u8, String> {
    let day = |name: &str| {
        let name = name.trim().to_ascii_lowercase();
        (0..7u8).find(|&day| DAY_NAMES[day as usize] == name || FULL_DAY_NAMES[day as usize] == name)
    };
    let wrong = || format!("expected a day such as mon or a range such as mon-fri, found {text:?}");
    match text.split_once('-') {
        None => day(text).map(|d| 1 << d).ok_or_else(wrong),
        Some((first, last)) => {
            let (Some(first), Some(last)) = (day(first), day(last)) else {
                return Err(wrong());
            };
            let mut bits = 0u8;
            let mut current = first;
            loop {
                bits |= 1 << current;
                if current == last {
                    return Ok(bits);
                }
                current = (current + 1) % 7;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn window(days: u8, from: &str, to: &str) -> MaintenanceWindow {
        MaintenanceWindow {
            days,
            from_minute: parse_time_of_day(from).unwrap(),
            to_minute: parse_time_of_day(to).unwrap(),
        }
    }

    #[test]
    fn times_and_days_read_as_written() {
        assert_eq!(parse_time_of_day("03:15"), Ok(195));
        assert_eq!(parse_time_of_day("3:05"), Ok(185));
        assert_eq!(parse_time_of_day("24:00"), Ok(1440));
        for wrong in [
            "24:01", "03:60", "3", "03:5", "", "a:00", "-1:00", "003:00", "03:00:00",
        ] {
            assert!(parse_time_of_day(wrong).is_err(), "{wrong}");
        }
        assert_eq!(parse_days("Mon"), Ok(1));
        assert_eq!(parse_days("sunday"), Ok(64));
        assert_eq!(parse_days("mon-fri"), Ok(0b001_1111));
        assert_eq!(parse_days("sat-mon"), Ok(0b110_0001));
        assert!(parse_days("someday").is_err());
    }

    #[test]
    fn a_window_across_midnight_belongs_to_the_day_it_starts() {
        // Fridays 22:00–02:00: Friday night and Saturday's small hours, not Friday's.
        let friday = 1 << 4;
        let w = window(friday, "22:00", "02:00");
        assert!(w.covers_local(4, 22 * 60));
        assert!(w.covers_local(5, 60));
        assert!(!w.covers_local(4, 60));
        assert!(!w.covers_local(5, 22 * 60));
        assert!(!w.covers_local(5, 2 * 60));
        assert_eq!(w.to_string(), "fri 22:00–02:00");
    }

    #[test]
    fn windows_follow_the_wall_clock_across_daylight_saving_changes() {
        let berlin = time_tz::timezones::get_by_name("Europe/Berlin").unwrap();
        let w = window(EVERY_DAY, "02:00", "03:00");
        // 2026-03-29: clocks jump from 02:00 to 03:00 CET→CEST; the window does not happen.
        let spring = 1_774_746_000_000; // 2026-03-29T01:00:00Z = 03:00 CEST
        assert!(!w.covers(spring - 1, berlin), "01:59:59 CET");
        assert!(!w.covers(spring, berlin));
        // 2026-10-25: 02:00–03:00 happens twice (CEST, then CET): both are covered.
        let first = 1_792_886_400_000; // 2026-10-25T00:00:00Z = 02:00 CEST
        assert!(w.covers(first, berlin));
        assert!(w.covers(first + 3_600_000, berlin), "02:00 CET");
        assert!(!w.covers(first + 7_200_000, berlin), "03:00 CET");
    }

    /// Minutes from `from` to `to`, across midnight when `to` is not later.
    fn length(from: u16, to: u16) -> i32 {
        let (from, to) = (i32::from(from), i32::from(to));
        if to > from {
            to - from
        } else {
            1440 - from + to
        }
    }

    proptest! {
        #[test]
        fn every_written_time_reads_back(hours in 0u16..24, minutes in 0u16..60) {
            prop_assert_eq!(parse_time_of_day(&format!("{hours:02}:{minutes:02}")), Ok(hours * 60 + minutes));
            prop_assert_eq!(parse_time_of_day(&format!("{hours}:{minutes:02}")), Ok(hours * 60 + minutes));
        }

        #[test]
        fn no_text_panics_the_parsers(text in "\\PC{0,12}") {
            let _ = parse_time_of_day(&text);
            let _ = parse_days(&text);
        }

        #[test]
        fn a_daily_window_covers_exactly_its_length(from in 0u16..1440, to in 1u16..=1440) {
            prop_assume!(from != to);
            let w = MaintenanceWindow { days: EVERY_DAY, from_minute: from, to_minute: to };
            let covered = (0..1440).filter(|&m| w.covers_local(2, m)).count() as i32;
            prop_assert_eq!(covered, length(from, to));
        }

        #[test]
        fn a_one_day_window_covers_its_length_over_the_week(
            day in 0u8..7, from in 0u16..1440, to in 1u16..=1440
        ) {
            prop_assume!(from != to);
            let w = MaintenanceWindow { days: 1 << day, from_minute: from, to_minute: to };
            let covered: i32 = (0..7u8)
                .map(|d| (0..1440).filter(|&m| w.covers_local(d, m)).count() as i32)
                .sum();
            prop_assert_eq!(covered, length(from, to));
            prop_assert!(w.covers_local(day, from));
        }
    }
}
