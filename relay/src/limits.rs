//! Per-connection rate limits (token buckets) and connection admission
//! (total and per source address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `n` tokens if available at `now`; false if the bucket is short.
    pub fn take(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens even if that leaves the bucket in debt (for costs
    /// known only after the fact).
    pub fn charge(&mut self, n: f64, now: Instant) {
        self.refill(now);
        self.tokens -= n;
    }

    /// How long until the bucket is out of debt (zero if it is not).
    pub fn debt_wait(&mut self, now: Instant) -> std::time::Duration {
        self.refill(now);
        if self.tokens >= 0.0 || self.rate <= 0.0 {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_secs_f64((-self.tokens / self.rate).min(3600.0))
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The relay is at its connection limit.
    ServerFull,
    /// This address is at its connection limit.
    TooManyFromAddress,
}

/// Counts live connections, in total and per source IP.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<AdmissionState>,
}

#[derive(Debug, Default)]
struct AdmissionState {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A counted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// Limits of `max_total` connections and `max_per_ip` per address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Admission {
            max_total,
            max_per_ip,
            state: Mutex::new(AdmissionState::default()),
        })
    }

    /// Admits a connection from `ip`, or says why not. IPv6 addresses count
    /// per /64 (one subscriber's usual allocation); IPv4-mapped IPv6
    /// addresses count as their IPv4 address.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let ip = address_key(ip);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.total >= self.max_total {
            return Err(Refusal::ServerFull);
        }
        let n = s.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        *n += 1;
        s.total += 1;
        Ok(Slot {
            admission: Arc::clone(self),
            ip,
        })
    }

    /// Live connections.
    pub fn total(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

/// The address a connection counts against.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self
            .admission
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                s.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 20.0, t0);
        assert!((0..20).all(|_| b.take(1.0, t0)));
        assert!(!b.take(1.0, t0));
        let t1 = t0 + Duration::from_millis(500);
        assert!((0..5).all(|_| b.take(1.0, t1)));
        assert!(!b.take(1.0, t1));
        // Refill never exceeds the burst.
        let t2 = t1 + Duration::from_secs(100);
        assert!((0..20).all(|_| b.take(1.0, t2)));
        assert!(!b.take(1.0, t2));
    }

    #[test]
    fn charged_debt_is_repaid_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 100.0, t0);
        b.charge(300.0, t0);
        assert_eq!(b.debt_wait(t0), Duration::from_secs(2));
        assert_eq!(b.debt_wait(t0 + Duration::from_secs(2)), Duration::ZERO);
    }

    #[test]
    fn admission_counts_per_address_and_in_total() {
        let a = Admission::new(3, 2);
        let ip1: IpAddr = "127.0.0.1".parse().unwrap();
        let ip2: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = a.admit(ip1).unwrap();
        let _s2 = a.admit(ip1).unwrap();
        assert_eq!(a.admit(ip1).err(), Some(Refusal::TooManyFromAddress));
        let _s3 = a.admit(ip2).unwrap();
        assert_eq!(a.admit(ip2).err(), Some(Refusal::ServerFull));
        drop(s1);
        assert_eq!(a.total(), 2);
        let _s4 = a.admit(ip1).unwrap();
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a = Admission::new(10, 1);
        let _x = a.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert_eq!(
            a.admit("2001:db8:1:2:ffff::9".parse().unwrap()).err(),
            Some(Refusal::TooManyFromAddress)
        );
        let _y = a.admit("2001:db8:1:3::1".parse().unwrap()).unwrap();
        let _z = a.admit("10.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(
            a.admit("::ffff:10.0.0.1".parse().unwrap()).err(),
            Some(Refusal::TooManyFromAddress)
        );
    }
}
