//! Login throttling: failed logins are counted per client address and per user name over a
//! sliding window; past the limit, further attempts are refused before any password is checked.
//!
//! Per client stops one machine guessing many names; per user stops many machines guessing one
//! password. Kept in memory: a restart resetting the counters costs an attacker a restart.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed logins allowed per user name within [`WINDOW_MS`].
pub const MAX_FAILURES_PER_USER: usize = 5;
/// Failed logins allowed per client address within [`WINDOW_MS`].
pub const MAX_FAILURES_PER_CLIENT: usize = 20;
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Keys remembered at most, so a flood of made-up names cannot grow memory without bound.
const MAX_KEYS: usize = 10_000;

/// The address a login attempt is counted against. A request from one of `trusted_proxies`
/// is counted against the client its `X-Forwarded-For` names: the rightmost entry that is not
/// itself a trusted proxy (entries further left were written by the client and could be forged).
/// Without a usable entry, and for any other peer, the peer's own address counts.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &warp::http::HeaderMap,
    trusted_proxies: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for entry in forwarded.into_iter().rev() {
        let Ok(address) = entry.parse::<IpAddr>() else {
            // Garbage where an address should be: stop trusting the chain here.
            return Some(peer);
        };
        if !trusted_proxies.contains(&address) {
            return Some(address);
        }
    }
    Some(peer)
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<Key, VecDeque<i64>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Client(IpAddr),
    User(String),
}

impl LoginThrottle {
    /// `Some(ms to wait)` when this client or this user name has failed too often recently.
    pub fn blocked(&self, client: Option<IpAddr>, user: &str, now_ms: i64) -> Option<i64> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut wait = None;
        let keys = client
            .map(|ip| (Key::Client(ip), MAX_FAILURES_PER_CLIENT))
            .into_iter()
            .chain([(Key::User(user.to_lowercase()), MAX_FAILURES_PER_USER)]);
        for (key, limit) in keys {
            if let Some(times) = failures.get_mut(&key) {
                while times.front().is_some_and(|&t| now_ms - t >= WINDOW_MS) {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = times.front().copied().unwrap_or(now_ms);
                    let until = oldest + WINDOW_MS - now_ms;
                    wait = Some(wait.map_or(until, |w: i64| w.max(until)));
                }
            }
        }
        wait
    }

    pub fn record_failure(&self, client: Option<IpAddr>, user: &str, now_ms: i64) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| times.back().is_some_and(|&t| now_ms - t < WINDOW_MS));
        }
        if failures.len() >= MAX_KEYS {
            // Still full of live entries: an attack in progress. Forget the oldest key rather
            // than refuse to count; the per-client key of the attacker is refreshed constantly.
            let oldest = failures
                .iter()
                .min_by_key(|(_, times)| times.back().copied().unwrap_or(i64::MIN))
                .map(|(key, _)| key.clone());
            if let Some(key) = oldest {
                failures.remove(&key);
            }
        }
        let keys = client
            .map(Key::Client)
            .into_iter()
            .chain([Key::User(user.to_lowercase())]);
        for key in keys {
            let times = failures.entry(key).or_default();
            times.push_back(now_ms);
            // More than the largest limit is never needed.
            while times.len() > MAX_FAILURES_PER_CLIENT {
                times.pop_front();
            }
        }
    }

    /// A successful login clears the user's count (not the client's: one good password must not
    /// reset a machine that is guessing other accounts).
    pub fn record_success(&self, user: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&Key::User(user.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> warp::http::HeaderMap {
        let mut headers = warp::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            warp::http::HeaderValue::from_str(value).expect("valid header"),
        );
        headers
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        let other_proxy: IpAddr = "::1".parse().expect("ip");
        let trusted = [proxy, other_proxy];
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        // Through the proxy: the client it names.
        assert_eq!(
            client_address(Some(proxy), &forwarded("192.0.2.7"), &trusted),
            ip("192.0.2.7")
        );
        // A forged entry on the left is ignored; the rightmost untrusted one counts.
        assert_eq!(
            client_address(Some(proxy), &forwarded("203.0.113.9, 192.0.2.7, ::1"), &trusted),
            ip("192.0.2.7")
        );
        // Not a trusted proxy: its header means nothing.
        assert_eq!(
            client_address(ip("192.0.2.50"), &forwarded("192.0.2.7"), &trusted),
            ip("192.0.2.50")
        );
        // No header, garbage, or only proxies: the peer.
        assert_eq!(
            client_address(Some(proxy), &warp::http::HeaderMap::new(), &trusted),
            Some(proxy)
        );
        assert_eq!(
            client_address(Some(proxy), &forwarded("unknown"), &trusted),
            Some(proxy)
        );
        assert_eq!(
            client_address(Some(proxy), &forwarded("::1"), &trusted),
            Some(proxy)
        );
        assert_eq!(client_address(None, &forwarded("192.0.2.7"), &trusted), None);
    }

    #[test]
    fn blocks_a_user_after_repeated_failures_until_the_window_passes() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        for i in 0..MAX_FAILURES_PER_USER as i64 {
            assert_eq!(throttle.blocked(Some(ip), "alice", i), None);
            throttle.record_failure(Some(ip), "alice", i);
        }
        assert_eq!(throttle.blocked(Some(ip), "Alice", 10), Some(WINDOW_MS - 10));
        assert_eq!(throttle.blocked(Some(ip), "bob", 10), None);
        assert_eq!(throttle.blocked(Some(ip), "alice", WINDOW_MS + 5), None);
    }

    #[test]
    fn blocks_a_client_guessing_many_names() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = [10, 0, 0, 9].into();
        for i in 0..MAX_FAILURES_PER_CLIENT {
            throttle.record_failure(Some(ip), &format!("user{i}"), 0);
        }
        assert!(throttle.blocked(Some(ip), "fresh", 1).is_some());
        assert!(throttle.blocked(Some([10, 0, 0, 8].into()), "fresh", 1).is_none());
        throttle.record_success("fresh");
        assert!(throttle.blocked(Some(ip), "fresh", 1).is_some());
    }
}
