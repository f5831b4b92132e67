//! `maintenance:` windows (top level and per stream): times that read, a length, known days.

use super::super::maintenance::{parse_days, parse_time_of_day, MaintenanceWindow, EVERY_DAY};
use super::super::raw::{Field, RawWindow};
use super::Check;

impl Check<'_> {
    pub(super) fn maintenance(&mut self, raw: &[RawWindow]) -> Vec<MaintenanceWindow> {
        raw.iter().filter_map(|window| self.window(window)).collect()
    }

    fn window(&mut self, raw: &RawWindow) -> Option<MaintenanceWindow> {
        let time = |check: &mut Self, field: &Field<String>, key: &str| match field {
            Field::Given(text) => match parse_time_of_day(&text.value) {
                Ok(minute) => Some(minute),
                Err(message) => {
                    check.push(text.line, &format!("{}.{key}", raw.path), message);
                    None
                }
            },
            Field::Missing => {
                check.push(
                    raw.line,
                    &raw.path,
                    format!("needs `{key}:` (a time such as 03:00)"),
                );
                None
            }
            Field::Invalid => None,
        };
        let from = time(self, &raw.from, "from");
        let to = time(self, &raw.to, "to");
        let days = match &raw.days {
            Field::Missing => Some(EVERY_DAY),
            Field::Invalid => None,
            Field::Given(list) if list.value.is_empty() => {
                self.push(
                    list.line,
                    &format!("{}.days", raw.path),
                    "lists no day; leave `days:` out for every day".to_string(),
                );
                None
            }
            Field::Given(list) => {
                let mut bits = Some(0u8);
                for (index, day) in list.value.iter().enumerate() {
                    match parse_days(&day.value) {
                        Ok(more) => bits = bits.map(|bits| bits | more),
                        Err(message) => {
                            self.push(day.line, &format!("{}.days[{index}]", raw.path), message);
                            bits = None;
                        }
                    }
                }
                bits
            }
        };
        let (from, to) = (from?, to?);
        if from == 1440 {
            if let Field::Given(text) = &raw.from {
                self.push(
                    text.line,
                    &format!("{}.from", raw.path),
                    "24:00 can only end a window; start it at 00:00".to_string(),
                );
            }
            return None;
        }
        if from == to {
            if let Field::Given(text) = &raw.to {
                self.push(
                    text.line,
                    &format!("{}.to", raw.path),
                    "is the same time as `from:`; a window needs a length".to_string(),
                );
            }
            return None;
        }
        Some(MaintenanceWindow {
            days: days?,
            from_minute: from,
            to_minute: to,
        })
    }
}
