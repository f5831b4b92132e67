//! When each stream is due. Streams are spread across the heartbeat interval by a stable hash of
//! their name, so 1,000 cameras are not all probed at second 0, and each keeps its own grid: a
//! late or slow probe never shifts the heartbeats after it.

use std::time::Duration;
use tokio::time::Instant;

/// A fixed grid `phase + k × interval` for one stream.
#[derive(Debug, Clone)]
pub struct Cadence {
    interval: Duration,
    next_due: Instant,
}

impl Cadence {
    /// The first slot is `phase` after `start`, where the phase comes from the stream's name.
    pub fn new(name: &str, interval: Duration, start: Instant) -> Cadence {
        Cadence {
            interval,
            next_due: start + phase_for(name, interval),
        }
    }

    pub fn next_due(&self) -> Instant {
        self.next_due
    }

    /// Moves to the next slot on the grid after `now`, skipping slots that were missed entirely
    /// (so an overrun costs one heartbeat, not a burst of catch-up probes).
    pub fn advance(&mut self, now: Instant) {
        self.next_due += self.interval;
        if self.next_due <= now {
            let behind = now.duration_since(self.next_due);
            let skipped = behind.as_nanos() / self.interval.as_nanos().max(1) + 1;
            self.next_due += self.interval * u32::try_from(skipped).unwrap_or(u32::MAX);
        }
    }
}

/// A stable offset in `[0, interval)` from the stream's name (FNV-1a: stable across runs and
/// builds, unlike std's randomised hasher).
pub fn phase_for(name: &str, interval: Duration) -> Duration {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let interval_ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(hash % interval_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_stable_and_inside_the_interval() {
        let interval = Duration::from_secs(15);
        let phase = phase_for("GateCamera", interval);
        assert_eq!(phase, phase_for("GateCamera", interval));
        assert!(phase < interval);
        let phases: std::collections::HashSet<_> = (0..100)
            .map(|i| phase_for(&format!("cam{i}"), interval).as_millis() / 1000)
            .collect();
        assert!(
            phases.len() >= 10,
            "100 cameras spread over most of the 15 one-second buckets"
        );
    }

    #[test]
    fn an_overrun_skips_missed_slots_but_keeps_the_grid() {
        let start = Instant::now();
        let interval = Duration::from_secs(10);
        let mut cadence = Cadence {
            interval,
            next_due: start,
        };
        cadence.advance(start + Duration::from_secs(1));
        assert_eq!(cadence.next_due(), start + interval);
        // The probe for slot 10 s ran until 35 s: slots 20 s and 30 s are gone, next is 40 s.
        cadence.advance(start + Duration::from_secs(35));
        assert_eq!(cadence.next_due(), start + Duration::from_secs(40));
    }
}
