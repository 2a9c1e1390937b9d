//! Rate limits against floods: a keyed token bucket (per client IP, per reception link) held in
//! memory with a fixed upper bound on the number of keys, so that a flood of distinct keys
//! cannot grow memory either. Each server instance limits on its own; behind several instances
//! the effective limit is the per-instance limit times the number of instances.

use std::{
    collections::HashMap,
    hash::Hash,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};

/// How many requests a key may make: `burst` at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub burst: u32,
    pub per_minute: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A token bucket per key. Time is passed in, so tests can move it.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    quota: Quota,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Allow,
    /// Refused; a token is available again after this long.
    Deny {
        retry_after: Duration,
    },
}

impl<K: Eq + Hash + Clone> KeyedLimiter<K> {
    pub fn new(quota: Quota, max_keys: usize) -> Self {
        KeyedLimiter {
            quota,
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refill_rate(&self) -> f64 {
        f64::from(self.quota.per_minute.max(1)) / 60.0
    }

    pub fn check(&self, key: &K, now: Instant) -> Decision {
        let burst = f64::from(self.quota.burst.max(1));
        let rate = self.refill_rate();
        // A poisoned lock only means another request panicked mid-update; the map is still
        // a valid map of buckets, so keep limiting rather than failing open or closed.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.make_room(&mut buckets, now, burst, rate);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allow
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            Decision::Deny {
                retry_after: Duration::from_secs_f64(wait.max(0.0)),
            }
        }
    }

    /// Drops buckets that have refilled completely (they hold no information); if that is not
    /// enough, drops the least recently used until the map is half full. Runs only when full.
    fn make_room(&self, buckets: &mut HashMap<K, Bucket>, now: Instant, burst: f64, rate: f64) {
        buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
        if buckets.len() >= self.max_keys {
            let keep = self.max_keys / 2;
            let mut ages: Vec<(K, Instant)> = buckets
                .iter()
                .map(|(k, b)| (k.clone(), b.updated))
                .collect();
            ages.sort_by_key(|(_, t)| *t);
            let drop = ages.len().saturating_sub(keep);
            for (key, _) in ages.into_iter().take(drop) {
                buckets.remove(&key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.lock().map(|b| b.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The limits the HTTP layer applies.
#[derive(Clone)]
pub struct Limits {
    /// Opening reception links and calling server functions, per client address.
    pub per_ip: Arc<KeyedLimiter<IpAddr>>,
    /// Opening one reception link, whoever opens it (a leaked link shared widely).
    pub per_link: Arc<KeyedLimiter<String>>,
}

impl Limits {
    pub fn new(per_ip: Quota, per_link: Quota) -> Self {
        // 100 000 keys is a few megabytes at most.
        Limits {
            per_ip: Arc::new(KeyedLimiter::new(per_ip, 100_000)),
            per_link: Arc::new(KeyedLimiter::new(per_link, 100_000)),
        }
    }

    /// Generous for a clinic's patients (a waiting room behind one NAT address opens many
    /// links), tight enough that a flood from one address is cut off within seconds.
    pub fn production() -> Self {
        Limits::new(
            Quota {
                burst: 60,
                per_minute: 120,
            },
            Quota {
                burst: 120,
                per_minute: 600,
            },
        )
    }

    /// No limits (load tests on one machine; demo mode only, see config).
    pub fn unlimited() -> Self {
        let open = Quota {
            burst: u32::MAX,
            per_minute: u32::MAX,
        };
        Limits::new(open, open)
    }
}

/// The reception link a request is about: the landing page `/r/{link}` or the session start
/// `/api/r/{link}/session`.
fn link_of(path: &str) -> Option<&str> {
    let path = path.strip_prefix("/api").unwrap_or(path);
    let rest = path.strip_prefix("/r/")?;
    let id = rest.split('/').next().unwrap_or_default();
    (!id.is_empty()).then_some(id)
}

/// Which requests are limited: reception link pages and every API.
fn limited(path: &str) -> bool {
    path.starts_with("/r/") || path.starts_with("/api/")
}

pub async fn limit_requests(
    State(limits): State<Limits>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !limited(path) {
        return next.run(request).await;
    }
    let now = Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if let Some(addr) = peer
        && let Decision::Deny { retry_after } = limits.per_ip.check(&addr.ip(), now)
    {
        return too_many(retry_after);
    }
    if let Some(link) = link_of(path)
        && let Decision::Deny { retry_after } = limits.per_link.check(&link.to_owned(), now)
    {
        return too_many(retry_after);
    }
    next.run(request).await
}

fn too_many(retry_after: Duration) -> Response {
    let seconds = retry_after.as_secs().max(1);
    let body = "リクエストが多すぎます。しばらく待ってから、もう一度お試しください。\n\
                Too many requests. Please wait a moment and try again.\n";
    let mut response = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTA: Quota = Quota {
        burst: 3,
        per_minute: 60,
    };

    #[test]
    fn allows_a_burst_then_refills_at_the_rate() {
        let limiter = KeyedLimiter::new(QUOTA, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a", t0), Decision::Allow);
        }
        match limiter.check(&"a", t0) {
            Decision::Deny { retry_after } => {
                assert!(retry_after > Duration::from_millis(900), "{retry_after:?}");
                assert!(retry_after <= Duration::from_secs(1));
            }
            Decision::Allow => panic!("the fourth request in the same instant is refused"),
        }
        // Other keys are unaffected.
        assert_eq!(limiter.check(&"b", t0), Decision::Allow);
        // One token per second comes back, never more than the burst.
        assert_eq!(
            limiter.check(&"a", t0 + Duration::from_secs(1)),
            Decision::Allow
        );
        assert!(matches!(
            limiter.check(&"a", t0 + Duration::from_secs(1)),
            Decision::Deny { .. }
        ));
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a", later), Decision::Allow);
        }
        assert!(matches!(limiter.check(&"a", later), Decision::Deny { .. }));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let limiter = KeyedLimiter::new(QUOTA, 100);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let _ = limiter.check(&i, t0 + Duration::from_millis(u64::from(i)));
            assert!(limiter.len() <= 100, "{} keys", limiter.len());
        }
    }

    #[test]
    fn a_busy_key_keeps_its_state_while_idle_keys_are_dropped() {
        let limiter = KeyedLimiter::new(QUOTA, 4);
        let t0 = Instant::now();
        // Keys 1..3 use one token each, then sit idle until they have refilled.
        for k in 1..4u32 {
            let _ = limiter.check(&k, t0);
        }
        let t1 = t0 + Duration::from_secs(2);
        for _ in 0..3 {
            assert_eq!(limiter.check(&0u32, t1), Decision::Allow);
        }
        // The map is full: a new key makes room by dropping the idle ones, not the busy one.
        assert_eq!(limiter.check(&99u32, t1), Decision::Allow);
        assert!(limiter.len() <= 2, "{} keys", limiter.len());
        assert!(matches!(limiter.check(&0u32, t1), Decision::Deny { .. }));
    }

    #[test]
    fn only_link_pages_and_server_functions_are_limited() {
        assert_eq!(link_of("/r/abc"), Some("abc"));
        assert_eq!(link_of("/r/abc/start"), Some("abc"));
        assert_eq!(link_of("/r/"), None);
        assert!(limited("/api/landing"));
        assert!(!limited("/pkg/uketsuke.wasm"));
        assert!(!limited("/healthz"));
    }
}
