//! Rate limits against floods: keyed GCRA limiters from the `governor` crate (a DashMap of one
//! 64-bit state per key), with separate budgets per client address for the patient routes and
//! for the console, and one per reception link (a leaked link shared widely).
//!
//! The client address is the connection's peer, unless the peer is one of `trusted_proxies`:
//! then it is the right-most `X-Forwarded-For` entry that is not itself a trusted proxy (the
//! entries to its left were written by the client and prove nothing). IPv6 clients are keyed by
//! their /64, since one host commonly holds a whole /64.
//!
//! Memory: keys whose bucket has refilled carry no information and are dropped every minute
//! (`Limits::upkeep`); a limiter that reaches `MAX_KEYS` drops them at once, and if that leaves
//! it more than half full it starts afresh, so a flood of distinct keys cannot grow memory.
//! Each server instance limits on its own; behind several instances the effective limit is the
//! per-instance limit times the number of instances.

use std::{
    hash::Hash,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    state::keyed::DashMapStateStore,
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use ipnet::IpNet;

use crate::config::{Floods, RequestBudget};

/// Keys one limiter holds at most (each a few dozen bytes: some megabytes in all).
pub const MAX_KEYS: usize = 100_000;

/// The per-link budget: a clinic's whole waiting room may open one link at once.
const PER_LINK: RequestBudget = RequestBudget {
    burst: 120,
    per_minute: 600,
};

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Allow,
    /// Refused; a request is allowed again after this long.
    Deny {
        retry_after: Duration,
    },
}

type Governor<K, C> =
    RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One budget per key, or no limit at all.
pub struct KeyedLimiter<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    inner: Option<Inner<K, C>>,
    max_keys: usize,
}

struct Inner<K: Hash + Eq + Clone, C: Clock> {
    /// Replaced by a fresh limiter when a flood of recent keys fills it (governor's keyed
    /// limiter can drop refilled keys but has no way to empty itself).
    governor: RwLock<Arc<Governor<K, C>>>,
    quota: governor::Quota,
    clock: C,
    /// Held while one caller makes room, so that concurrent callers do not all sweep the map.
    making_room: Mutex<()>,
}

fn quota(budget: RequestBudget) -> governor::Quota {
    let burst = NonZeroU32::new(budget.burst).unwrap_or(NonZeroU32::MIN);
    // One request back every 60 s / per_minute (at least 1 ns).
    let period = Duration::from_secs(60) / budget.per_minute.max(1);
    governor::Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MAX))
        .allow_burst(burst)
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(budget: RequestBudget, max_keys: usize) -> Self {
        KeyedLimiter::with_clock(budget, max_keys, DefaultClock::default())
    }

    /// A limiter that allows everything.
    pub fn unlimited() -> Self {
        KeyedLimiter {
            inner: None,
            max_keys: 2,
        }
    }
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> KeyedLimiter<K, C> {
    /// A limiter on `clock` (tests pass governor's fake clock).
    pub fn with_clock(budget: RequestBudget, max_keys: usize, clock: C) -> Self {
        let quota = quota(budget);
        KeyedLimiter {
            inner: Some(Inner {
                governor: RwLock::new(Arc::new(RateLimiter::dashmap_with_clock(
                    quota,
                    clock.clone(),
                ))),
                quota,
                clock,
                making_room: Mutex::new(()),
            }),
            max_keys: max_keys.max(2),
        }
    }

    fn governor(inner: &Inner<K, C>) -> Arc<Governor<K, C>> {
        // A poisoned lock only means a panic elsewhere mid-swap; the limiter inside is whole.
        inner
            .governor
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts one request of `key`.
    pub fn check(&self, key: &K) -> Decision {
        let Some(inner) = &self.inner else {
            return Decision::Allow;
        };
        let mut governor = Self::governor(inner);
        if governor.len() >= self.max_keys {
            self.make_room(inner, &governor);
            governor = Self::governor(inner);
        }
        match governor.check_key(key) {
            Ok(()) => Decision::Allow,
            Err(not_until) => Decision::Deny {
                retry_after: not_until.wait_time_from(inner.clock.now()),
            },
        }
    }

    /// Drops the keys whose bucket is full again; if the map is still more than half full
    /// (a flood of distinct keys, all of them recent), starts afresh with an empty limiter:
    /// every budget is full again, which beats growing without bound or refusing every new
    /// client.
    fn make_room(&self, inner: &Inner<K, C>, governor: &Governor<K, C>) {
        let Ok(_guard) = inner.making_room.try_lock() else {
            return;
        };
        governor.retain_recent();
        governor.shrink_to_fit();
        if governor.len() > self.max_keys / 2 {
            tracing::warn!(
                keys = governor.len(),
                "rate limiter full of recent keys: starting its budgets afresh"
            );
            let fresh = Arc::new(RateLimiter::dashmap_with_clock(
                inner.quota,
                inner.clock.clone(),
            ));
            *inner.governor.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
    }

    /// The periodic upkeep: forget keys whose bucket is full again, give the memory back.
    pub fn upkeep(&self) {
        if let Some(inner) = &self.inner {
            let governor = Self::governor(inner);
            governor.retain_recent();
            governor.shrink_to_fit();
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |inner| Self::governor(inner).len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The limits the HTTP layer applies, and whose client a request is.
#[derive(Clone)]
pub struct Limits {
    /// Patient routes (reception links, the patient API, cancellation), per client address.
    pub patient: Arc<KeyedLimiter<IpAddr>>,
    /// The console's pages and API and the institution API, per client address.
    pub console: Arc<KeyedLimiter<IpAddr>>,
    /// Opening one reception link, whoever opens it.
    pub per_link: Arc<KeyedLimiter<String>>,
    /// Whose `X-Forwarded-For` is read.
    pub trusted_proxies: Arc<[IpNet]>,
    /// Open console event streams per session.
    pub event_streams: crate::console::events::StreamSlots,
}

impl Limits {
    /// The limits of `floods`.
    pub fn production(floods: &Floods) -> Self {
        Limits {
            patient: Arc::new(KeyedLimiter::new(floods.patient_budget, MAX_KEYS)),
            console: Arc::new(KeyedLimiter::new(floods.console_budget, MAX_KEYS)),
            per_link: Arc::new(KeyedLimiter::new(PER_LINK, MAX_KEYS)),
            trusted_proxies: floods.trusted_proxies.clone().into(),
            event_streams: crate::console::events::StreamSlots::new(
                floods.event_streams_per_session,
            ),
        }
    }

    /// No request budgets (load tests on one machine; demo mode only, see config). Client
    /// addresses and the event-stream cap still apply.
    pub fn unlimited(floods: &Floods) -> Self {
        Limits {
            patient: Arc::new(KeyedLimiter::unlimited()),
            console: Arc::new(KeyedLimiter::unlimited()),
            per_link: Arc::new(KeyedLimiter::unlimited()),
            ..Limits::production(floods)
        }
    }

    /// The periodic upkeep of every limiter (see the module's notes on memory).
    pub fn upkeep(&self) {
        self.patient.upkeep();
        self.console.upkeep();
        self.per_link.upkeep();
    }
}

/// The client address of a request, as the rate limits see it (inserted by `limit_requests`
/// into the request's extensions for handlers that want it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// An IPv4-mapped IPv6 address is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The key a client's budget is kept under: its IPv4 address, or its IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    let ip = canonical(ip);
    proxies.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`).
fn forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// The client of a request that came from `peer`: the peer itself unless it is a trusted proxy;
/// behind trusted proxies, the right-most `X-Forwarded-For` entry (over all the header's
/// lines, in order) that is not a trusted proxy. An entry that is not an address there means a
/// proxy in between is misconfigured: the peer is used, so such requests share its budget.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(peer, proxies) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = forwarded_entry(entry) else {
            return peer;
        };
        client = ip;
        if !trusted(ip, proxies) {
            break;
        }
    }
    client
}

/// Which budget a path draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Patient,
    Console,
}

/// The budget of `path`, or `None` for what is not limited (static files, probes, the
/// landing pages that are not a reception link).
pub fn budget_of(path: &str) -> Option<Budget> {
    if path.starts_with("/api/console/")
        || path == "/console"
        || path.starts_with("/console/")
        || path.starts_with("/api/v1/")
    {
        Some(Budget::Console)
    } else if path.starts_with("/r/") || path.starts_with("/api/") || path.starts_with("/cancel/") {
        Some(Budget::Patient)
    } else {
        None
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

pub async fn limit_requests(
    State(limits): State<Limits>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = peer.map(|p| client_ip(p, request.headers(), &limits.trusted_proxies));
    if let Some(ip) = client {
        request.extensions_mut().insert(ClientIp(ip));
    }
    let path = request.uri().path();
    let Some(budget) = budget_of(path) else {
        return next.run(request).await;
    };
    let api = path.starts_with("/api/");
    if let Some(ip) = client {
        let limiter = match budget {
            Budget::Patient => &limits.patient,
            Budget::Console => &limits.console,
        };
        if let Decision::Deny { retry_after } = limiter.check(&client_key(ip)) {
            return too_many(retry_after, api);
        }
    }
    if let Some(link) = link_of(path)
        && let Decision::Deny { retry_after } = limits.per_link.check(&link.to_owned())
    {
        return too_many(retry_after, api);
    }
    next.run(request).await
}

/// 429 with `Retry-After` (whole seconds, at least 1): the API's JSON error
/// `{"error":"rate_limited","message":…}`, or for pages a short text in Japanese and English.
pub fn too_many(retry_after: Duration, api: bool) -> Response {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut response = if api {
        (
            StatusCode::TOO_MANY_REQUESTS,
            Json(super::error::error_body(
                "rate_limited",
                super::error::message_of("rate_limited", StatusCode::TOO_MANY_REQUESTS),
                None,
            )),
        )
            .into_response()
    } else {
        let body = "リクエストが多すぎます。しばらく待ってから、もう一度お試しください。\n\
                    Too many requests. Please wait a moment and try again.\n";
        (StatusCode::TOO_MANY_REQUESTS, body).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    const BUDGET: RequestBudget = RequestBudget {
        burst: 3,
        per_minute: 60,
    };

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        headers
    }

    #[test]
    fn allows_a_burst_then_refills_at_the_rate() {
        let clock = FakeRelativeClock::default();
        let limiter = KeyedLimiter::with_clock(BUDGET, 10, clock.clone());
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a"), Decision::Allow);
        }
        match limiter.check(&"a") {
            Decision::Deny { retry_after } => {
                assert!(retry_after > Duration::from_millis(900), "{retry_after:?}");
                assert!(retry_after <= Duration::from_secs(1));
            }
            Decision::Allow => panic!("the fourth request in the same instant is refused"),
        }
        // Other keys are unaffected.
        assert_eq!(limiter.check(&"b"), Decision::Allow);
        // One request per second comes back, never more than the burst.
        clock.advance(Duration::from_secs(1));
        assert_eq!(limiter.check(&"a"), Decision::Allow);
        assert!(matches!(limiter.check(&"a"), Decision::Deny { .. }));
        clock.advance(Duration::from_secs(3600));
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a"), Decision::Allow);
        }
        assert!(matches!(limiter.check(&"a"), Decision::Deny { .. }));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let clock = FakeRelativeClock::default();
        let limiter = KeyedLimiter::with_clock(BUDGET, 100, clock.clone());
        for i in 0..10_000u32 {
            let _ = limiter.check(&i);
            clock.advance(Duration::from_millis(1));
            assert!(limiter.len() <= 100, "{} keys", limiter.len());
        }
    }

    #[test]
    fn upkeep_forgets_refilled_keys_and_keeps_busy_ones() {
        let clock = FakeRelativeClock::default();
        let limiter = KeyedLimiter::with_clock(BUDGET, 100, clock.clone());
        for k in 1..4u32 {
            let _ = limiter.check(&k);
        }
        clock.advance(Duration::from_secs(2));
        for _ in 0..3 {
            assert_eq!(limiter.check(&0u32), Decision::Allow);
        }
        limiter.upkeep();
        assert_eq!(limiter.len(), 1, "only the busy key is left");
        assert!(matches!(limiter.check(&0u32), Decision::Deny { .. }));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        // Two addresses of one /64 share a key (and so a budget); the next /64 does not.
        let a = client_key(ip("2001:db8:1:2:aaaa::1"));
        let b = client_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        let other = client_key(ip("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_ne!(a, other);
        // IPv4 stays whole, also when it arrives IPv4-mapped.
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(client_key(ip("192.0.2.7")), client_key(ip("192.0.2.8")));

        let limiter = KeyedLimiter::with_clock(BUDGET, 10, FakeRelativeClock::default());
        for _ in 0..3 {
            assert_eq!(limiter.check(&a), Decision::Allow);
        }
        assert!(matches!(limiter.check(&b), Decision::Deny { .. }));
        assert_eq!(limiter.check(&other), Decision::Allow);
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        let proxies = nets(&["10.0.0.0/24", "fd00::/64"]);
        // An untrusted peer: its header is ignored, whatever it says.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &xff(&["198.51.100.1"]), &proxies),
            ip("203.0.113.9")
        );
        // A trusted proxy: the right-most entry that is not a proxy. The client's own
        // (spoofed) entries to its left do not matter.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &xff(&["1.1.1.1, 198.51.100.7, 10.0.0.3"]),
                &proxies
            ),
            ip("198.51.100.7")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &xff(&["1.1.1.1", "198.51.100.8"]), &proxies),
            ip("198.51.100.8")
        );
        // Ports and IPv6 brackets; an IPv6 proxy.
        assert_eq!(
            client_ip(ip("fd00::5"), &xff(&["[2001:db8::9]:443"]), &proxies),
            ip("2001:db8::9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &xff(&["198.51.100.9:5000"]), &proxies),
            ip("198.51.100.9")
        );
        // No header (the proxy's own health check), or garbage where the proxy wrote: the peer.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &xff(&["198.51.100.1, nonsense"]), &proxies),
            ip("10.0.0.2")
        );
        // No proxies configured: never read.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &xff(&["198.51.100.1"]), &[]),
            ip("10.0.0.2")
        );
    }

    #[tokio::test]
    async fn api_refusals_are_json_with_a_message_and_retry_after() {
        let answer = too_many(Duration::from_millis(1500), true);
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers()[header::RETRY_AFTER], "2");
        assert_eq!(answer.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(answer.into_body(), 4096)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["error"], "rate_limited");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("Retry-After"))
        );
        let page = too_many(Duration::from_millis(10), false);
        assert_eq!(page.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn console_and_patient_routes_draw_on_separate_budgets() {
        assert_eq!(budget_of("/api/console/me"), Some(Budget::Console));
        assert_eq!(budget_of("/console/receptions"), Some(Budget::Console));
        assert_eq!(budget_of("/api/v1/links"), Some(Budget::Console));
        assert_eq!(budget_of("/r/abc"), Some(Budget::Patient));
        assert_eq!(budget_of("/api/session/choices"), Some(Budget::Patient));
        assert_eq!(budget_of("/cancel/abc"), Some(Budget::Patient));
        assert_eq!(budget_of("/api/landing"), Some(Budget::Patient));
        assert_eq!(budget_of("/consoles"), None);
        assert_eq!(budget_of("/pkg/uketsuke.wasm"), None);
        assert_eq!(budget_of("/healthz"), None);
        assert_eq!(link_of("/r/abc"), Some("abc"));
        assert_eq!(link_of("/api/r/abc/session"), Some("abc"));
        assert_eq!(link_of("/r/abc/start"), Some("abc"));
        assert_eq!(link_of("/r/"), None);
    }
}
