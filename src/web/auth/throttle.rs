//! Login throttling that slows the guesser, not the account it guesses at.
//!
//! Failed password checks (logins and the reveal confirmation) are counted per client and per
//! (client, user name). Past a few free failures each further attempt from that client must wait
//! a delay that doubles with every failure, up to [`Policy::max_delay_ms`]; an attempt during the
//! delay gets `429` with `Retry-After`, its password unchecked and uncounted. Counts halve for every
//! [`Policy::relax_ms`] without a failure, so a person who mistyped is soon back to normal.
//!
//! There is deliberately no count per user name alone: that let anyone lock `bob` out by failing
//! five times as `bob` from anywhere. A client that has not been failing always has its password
//! checked, whoever is under attack. The price: many machines guessing one name each get the
//! free failures; long passwords ([`crate::store::accounts::MIN_PASSWORD_CHARS`]) and argon2 are the
//! defence there.
//!
//! A client is an IPv4 address or an IPv6 /64 (one host usually owns a whole /64, so counting
//! single IPv6 addresses would give it 2^64 fresh starts). Behind a reverse proxy every request
//! comes from the proxy: only a peer listed in `web.trusted_proxies` has its `X-Forwarded-For`
//! believed ([`client_address`]); otherwise all its clients share one count.
//!
//! Kept in memory, at most [`Policy::max_entries`] counts: a restart costs an attacker a restart.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use crate::store::accounts::MAX_USER_NAME_CHARS;

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

/// The throttle's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures from one client, whatever the names, before delays start.
    pub free_client_failures: u32,
    /// Failures from one client for one user name before delays start.
    pub free_pair_failures: u32,
    /// The first delay; each further failure doubles it.
    pub base_delay_ms: i64,
    pub max_delay_ms: i64,
    /// Each such period without a failure halves a count; a count of 0 is forgotten.
    pub relax_ms: i64,
    /// Counts kept at most, so a spray of addresses or names cannot grow memory without bound.
    pub max_entries: usize,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            free_client_failures: 10,
            free_pair_failures: 5,
            base_delay_ms: 1_000,
            max_delay_ms: 5 * 60_000,
            relax_ms: 10 * 60_000,
            max_entries: 10_000,
        }
    }
}

impl Policy {
    /// How long after its last failure a client with `failures` (of which `free` are free) waits.
    fn delay_ms(&self, failures: u32, free: u32) -> i64 {
        if failures < free {
            return 0;
        }
        let doublings = (failures - free).min(40);
        self.base_delay_ms
            .saturating_mul(1_i64 << doublings)
            .min(self.max_delay_ms)
    }
}

/// An IPv4 address, or the /64 an IPv6 address is in (IPv4-mapped IPv6 counts as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4([u8; 4]),
    V6Net([u8; 8]),
    /// No peer address known (not over TCP): one shared count.
    Unknown,
}

impl Client {
    fn of(address: Option<IpAddr>) -> Client {
        match address {
            Some(IpAddr::V4(v4)) => Client::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4.octets()),
                None => Client::V6Net(net64(v6)),
            },
            None => Client::Unknown,
        }
    }
}

fn net64(address: Ipv6Addr) -> [u8; 8] {
    let mut net = [0u8; 8];
    net.copy_from_slice(&address.octets()[..8]);
    net
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Client(Client),
    /// The user name lower-cased (`BOB` is `bob`) and cut to the longest valid name, so a
    /// megabyte of name costs no more memory than a real one.
    Pair(Client, String),
}

fn pair(client: Client, user: &str) -> Key {
    let name: String = user.chars().take(MAX_USER_NAME_CHARS).collect();
    Key::Pair(client, name.to_lowercase())
}

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    last_failure_ms: i64,
}

impl Count {
    /// The count relaxed to `now_ms`: halved per quiet [`Policy::relax_ms`].
    fn relaxed(self, now_ms: i64, policy: &Policy) -> Count {
        let quiet = now_ms.saturating_sub(self.last_failure_ms).max(0);
        let halvings = quiet / policy.relax_ms.max(1);
        let failures = if halvings >= 32 {
            0
        } else {
            self.failures >> halvings
        };
        Count {
            failures,
            // Measured from the last halving on, so relaxing never jumps a count twice.
            last_failure_ms: self
                .last_failure_ms
                .saturating_add(halvings.saturating_mul(policy.relax_ms)),
        }
    }
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    policy: Policy,
    counts: Mutex<HashMap<Key, Count>>,
}

impl LoginThrottle {
    pub fn new(policy: Policy) -> LoginThrottle {
        LoginThrottle {
            policy,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Count>> {
        // A panic elsewhere while holding the lock leaves plain counts, still usable.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `Some(ms to wait)` while this client, or this client for this user name, must wait
    /// before its next password check.
    pub fn blocked(&self, client: Option<IpAddr>, user: &str, now_ms: i64) -> Option<i64> {
        let client = Client::of(client);
        let counts = self.lock();
        let policy = &self.policy;
        let keys = [
            (Key::Client(client), policy.free_client_failures),
            (pair(client, user), policy.free_pair_failures),
        ];
        let wait = keys
            .into_iter()
            .filter_map(|(key, free)| {
                let count = counts.get(&key)?;
                let delay = policy.delay_ms(count.relaxed(now_ms, policy).failures, free);
                // No delay is no wait, even if the clock stepped back since the failure.
                let until = count.last_failure_ms.saturating_add(delay);
                (delay > 0 && until > now_ms).then(|| (until - now_ms).min(delay))
            })
            .max();
        wait
    }

    /// A wrong password from `client` for `user`.
    pub fn record_failure(&self, client: Option<IpAddr>, user: &str, now_ms: i64) {
        let client = Client::of(client);
        let mut counts = self.lock();
        let keys = [Key::Client(client), pair(client, user)];
        let new_keys = keys.iter().filter(|key| !counts.contains_key(key)).count();
        if counts.len() + new_keys > self.policy.max_entries {
            self.make_room(&mut counts, new_keys, now_ms);
        }
        for key in keys {
            let count = counts
                .get(&key)
                .map(|count| count.relaxed(now_ms, &self.policy))
                .map_or(0, |count| count.failures);
            counts.insert(
                key,
                Count {
                    failures: count.saturating_add(1),
                    last_failure_ms: now_ms,
                },
            );
        }
    }

    /// A right password: that client's count for that name is cleared. Its count over all names
    /// stays: one good password must not reset a machine that is guessing other accounts.
    pub fn record_success(&self, client: Option<IpAddr>, user: &str) {
        let client = Client::of(client);
        self.lock().remove(&pair(client, user));
    }

    /// How many counts are kept (for tests and the bound on memory).
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// Forgets relaxed-away counts, then, if still too full, the weakest tenth (fewest failures,
    /// oldest first): a machine that failed once from a sprayed address goes before the one
    /// failing all along, so spraying addresses cannot flush an attacker's own count.
    fn make_room(&self, counts: &mut HashMap<Key, Count>, needed: usize, now_ms: i64) {
        let policy = &self.policy;
        counts.retain(|_, count| count.relaxed(now_ms, policy).failures > 0);
        if counts.len() + needed <= policy.max_entries {
            return;
        }
        let excess = counts.len() + needed - policy.max_entries;
        let evict = excess.max(policy.max_entries / 10).min(counts.len());
        let mut ranked: Vec<(u32, i64, Key)> = counts
            .iter()
            .map(|(key, count)| {
                let relaxed = count.relaxed(now_ms, policy);
                (relaxed.failures, count.last_failure_ms, key.clone())
            })
            .collect();
        if evict < ranked.len() {
            ranked.select_nth_unstable_by_key(evict, |(failures, last, _)| (*failures, *last));
        }
        for (_, _, key) in ranked.into_iter().take(evict) {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: i64 = 1_000;
    const MINUTE: i64 = 60 * SECOND;

    fn forwarded(value: &str) -> warp::http::HeaderMap {
        let mut headers = warp::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            warp::http::HeaderValue::from_str(value).expect("valid header"),
        );
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("ip"))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        let other_proxy: IpAddr = "::1".parse().expect("ip");
        let trusted = [proxy, other_proxy];
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
        // Without trusted proxies nobody's header is believed.
        assert_eq!(
            client_address(Some(proxy), &forwarded("192.0.2.7"), &[]),
            Some(proxy)
        );
    }

    #[test]
    fn the_guessing_client_waits_longer_and_longer_while_others_get_in() {
        let throttle = LoginThrottle::default();
        let attacker = ip("192.0.2.66");
        let free = Policy::default().free_pair_failures;
        for _ in 0..free {
            assert_eq!(throttle.blocked(attacker, "bob", 0), None);
            throttle.record_failure(attacker, "bob", 0);
        }
        // After the free failures: 1 s, then 2 s, 4 s, … from each failure.
        let mut now = 0;
        let mut expected = SECOND;
        for _ in 0..4 {
            assert_eq!(throttle.blocked(attacker, "bob", now), Some(expected));
            assert_eq!(
                throttle.blocked(attacker, "BOB", now),
                Some(expected),
                "case folds"
            );
            now += expected;
            assert_eq!(throttle.blocked(attacker, "bob", now), None);
            throttle.record_failure(attacker, "bob", now);
            expected *= 2;
        }
        // bob himself, from anywhere else, is not held up at all.
        assert_eq!(throttle.blocked(ip("198.51.100.4"), "bob", now), None);
        // The attacker trying another name is still within its free failures per client.
        assert_eq!(throttle.blocked(attacker, "alice", now), None);
    }

    #[test]
    fn spraying_names_slows_that_client_only() {
        let throttle = LoginThrottle::default();
        let attacker = ip("10.0.0.9");
        for i in 0..20 {
            throttle.record_failure(attacker, &format!("user{i}"), 0);
        }
        let wait = throttle.blocked(attacker, "dave", 1).expect("the sprayer waits");
        assert!(wait > 60 * SECOND, "{wait}");
        assert_eq!(throttle.blocked(ip("10.0.0.8"), "dave", 1), None);
        // A good password for one name does not clear the client's count.
        throttle.record_success(attacker, "dave");
        assert!(throttle.blocked(attacker, "dave", 1).is_some());
    }

    #[test]
    fn the_delay_is_capped_and_relaxes_with_quiet_time() {
        let policy = Policy::default();
        let throttle = LoginThrottle::new(policy);
        let client = ip("192.0.2.1");
        for _ in 0..30 {
            throttle.record_failure(client, "bob", 0);
        }
        assert_eq!(throttle.blocked(client, "bob", 0), Some(policy.max_delay_ms));
        assert_eq!(throttle.blocked(client, "bob", policy.max_delay_ms), None);
        // Quiet for three relax periods: 30 failures → 3, below both free allowances.
        let later = 3 * policy.relax_ms;
        throttle.record_failure(client, "bob", later);
        assert_eq!(throttle.blocked(client, "bob", later), None, "4 failures left");
        throttle.record_failure(client, "bob", later);
        assert_eq!(throttle.blocked(client, "bob", later), Some(SECOND));
        // Long enough and everything is forgotten.
        let much_later = later + 40 * policy.relax_ms;
        throttle.record_failure(ip("192.0.2.2"), "x", much_later);
        assert_eq!(throttle.blocked(client, "bob", much_later), None);
    }

    #[test]
    fn success_clears_the_pair_and_ipv6_counts_per_64() {
        let throttle = LoginThrottle::default();
        let one = ip("2001:db8:1:2::10");
        let same_net = ip("2001:db8:1:2:ffff::1");
        for _ in 0..6 {
            throttle.record_failure(one, "bob", 0);
        }
        assert!(
            throttle.blocked(same_net, "bob", 0).is_some(),
            "one /64, one client"
        );
        assert_eq!(throttle.blocked(ip("2001:db8:1:3::10"), "bob", 0), None);
        let mapped = ip("::ffff:192.0.2.9");
        for _ in 0..6 {
            throttle.record_failure(mapped, "amy", 0);
        }
        assert!(throttle.blocked(ip("192.0.2.9"), "amy", 0).is_some());
        throttle.record_success(one, "bob");
        assert_eq!(throttle.blocked(one, "bob", 0), None);
    }

    #[test]
    fn memory_stays_bounded_and_a_spray_does_not_flush_the_attacker() {
        let policy = Policy {
            max_entries: 100,
            ..Policy::default()
        };
        let throttle = LoginThrottle::new(policy);
        let attacker = ip("192.0.2.200");
        for _ in 0..12 {
            throttle.record_failure(attacker, "bob", 0);
        }
        for i in 0..10_000u32 {
            let [a, b, c, d] = i.to_be_bytes();
            let sprayed = Some(IpAddr::from([10, b.wrapping_add(a), c, d]));
            throttle.record_failure(sprayed, &"x".repeat(1_000), SECOND);
            assert!(throttle.tracked() <= policy.max_entries);
        }
        assert!(throttle.blocked(attacker, "bob", SECOND).is_some());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Fail { client: u8, user: u8 },
        Succeed { client: u8, user: u8 },
        Check { client: u8, user: u8 },
        Wait(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<u8>(), 0u8..4).prop_map(|(client, user)| Op::Fail { client, user }),
            1 => (any::<u8>(), 0u8..4).prop_map(|(client, user)| Op::Succeed { client, user }),
            2 => (any::<u8>(), 0u8..4).prop_map(|(client, user)| Op::Check { client, user }),
            1 => (0i64..20 * MINUTE).prop_map(Op::Wait),
        ]
    }

    /// Clients 0..=255 of the sequence; `fresh` is never one of them.
    fn client_of(index: u8) -> Option<IpAddr> {
        match index % 3 {
            0 => Some(IpAddr::from([192, 0, 2, index])),
            1 => Some(IpAddr::from([0x2001, 0xdb8, u16::from(index), 0, 0, 0, 0, 1])),
            _ => (index != 2).then(|| IpAddr::from([198, 51, 100, index])),
        }
    }

    proptest! {
        /// Any sequence of attempts from any clients: no panic, memory within the bound, and a
        /// client that never failed is never held up, whoever is being attacked.
        #[test]
        fn attempts_never_lock_out_a_fresh_client(ops in prop::collection::vec(op(), 0..300)) {
            let policy = Policy { max_entries: 64, ..Policy::default() };
            let throttle = LoginThrottle::new(policy);
            let users = ["bob", "BOB", "dave", "x"];
            let fresh = Some(IpAddr::from([203, 0, 113, 77]));
            let mut now = 0i64;
            for op in ops {
                match op {
                    Op::Fail { client, user } => throttle.record_failure(client_of(client), users[usize::from(user)], now),
                    Op::Succeed { client, user } => throttle.record_success(client_of(client), users[usize::from(user)]),
                    Op::Check { client, user } => {
                        if let Some(wait) = throttle.blocked(client_of(client), users[usize::from(user)], now) {
                            prop_assert!(wait > 0 && wait <= policy.max_delay_ms);
                        }
                    }
                    Op::Wait(ms) => now += ms,
                }
                prop_assert!(throttle.tracked() <= policy.max_entries);
                for user in users {
                    prop_assert_eq!(throttle.blocked(fresh, user, now), None);
                }
            }
        }
    }
}
