//! Rate limits: login attempts per account and per client address, uploads
//! per token (an API token, or the browser session of the upload form).
//! Each is a token bucket per key, in memory: `burst` requests at once,
//! then one more every `every`. Over the limit is 429 `rate_limited` with
//! `Retry-After` (seconds until the next request is allowed).
//!
//! The client address is the TCP peer (`ConnectInfo`, set by `certlab
//! serve`); `X-Forwarded-For` is not trusted, so behind a reverse proxy the
//! per-address limit counts the proxy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};

use crate::auth::sha256_hex;
use crate::error::WebError;

/// `burst` requests at once, then one more every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: u32,
    pub every: Duration,
}

impl Limit {
    pub const fn new(burst: u32, every: Duration) -> Limit {
        Limit { burst, every }
    }
}

/// The portal's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Login attempts naming one account (email, case ignored).
    pub login_per_account: Limit,
    /// Login attempts from one client address.
    pub login_per_client: Limit,
    /// Bundle uploads with one API token or browser session.
    pub uploads_per_token: Limit,
}

impl Default for RateLimits {
    /// 10 logins per account then one per 30 s; 30 per address then one
    /// per 10 s; 30 uploads per token then one per minute.
    fn default() -> RateLimits {
        RateLimits {
            login_per_account: Limit::new(10, Duration::from_secs(30)),
            login_per_client: Limit::new(30, Duration::from_secs(10)),
            uploads_per_token: Limit::new(30, Duration::from_secs(60)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets of one limit, by key.
#[derive(Debug)]
pub struct Limiter {
    limit: Limit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Past this many keys, full buckets are dropped (they hold no state).
const PRUNE_ABOVE: usize = 10_000;

impl Limiter {
    pub fn new(limit: Limit) -> Limiter {
        Limiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request of `key` at `now`: `Ok`, or `Err(wait)` until one is allowed.
    pub fn take_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.limit.burst.max(1));
        let every = self.limit.every.as_secs_f64();
        let refill = |b: &Bucket| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            if every > 0.0 {
                (b.tokens + elapsed / every).min(burst)
            } else {
                burst
            }
        };
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| refill(b) < burst);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = refill(bucket);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) * every))
        }
    }

    fn take(&self, key: &str, what: &str) -> Result<(), WebError> {
        self.take_at(key, Instant::now())
            .map_err(|wait| too_many(what, wait))
    }
}

/// 429 with `Retry-After` in whole seconds (at least 1).
fn too_many(what: &str, wait: Duration) -> WebError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    WebError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many {what}: try again in {secs} s"),
    )
    .with_retry_after(secs)
}

/// The limiters of one portal.
#[derive(Debug)]
pub struct Limiters {
    login_account: Limiter,
    login_client: Limiter,
    uploads: Limiter,
}

impl Limiters {
    pub fn new(limits: &RateLimits) -> Limiters {
        Limiters {
            login_account: Limiter::new(limits.login_per_account),
            login_client: Limiter::new(limits.login_per_client),
            uploads: Limiter::new(limits.uploads_per_token),
        }
    }

    /// One login attempt for `email` from `client`.
    pub fn login(&self, email: &str, client: &ClientAddr) -> Result<(), WebError> {
        self.login_client
            .take(&client.key(), "login attempts from this address")?;
        self.login_account.take(
            &email.trim().to_lowercase(),
            "login attempts for this account",
        )
    }

    /// One upload with the token or session whose sha256 is `token_digest`.
    pub fn upload(&self, token_digest: &str) -> Result<(), WebError> {
        self.uploads.take(token_digest, "uploads with this token")
    }
}

/// The sha256 of the request's bearer token (empty when there is none; the
/// request is then refused as unauthenticated anyway).
pub fn bearer_digest(headers: &HeaderMap) -> String {
    headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| sha256_hex(t.trim()))
        .unwrap_or_default()
}

/// The TCP peer's address, when the server recorded it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientAddr(pub Option<SocketAddr>);

impl ClientAddr {
    fn key(&self) -> String {
        self.0
            .map_or_else(|| "unknown".to_string(), |a| a.ip().to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_one_per_interval() {
        let l = Limiter::new(Limit::new(3, Duration::from_secs(10)));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take_at("a", t0).is_ok());
        }
        let wait = l.take_at("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        // another key has its own bucket
        assert!(l.take_at("b", t0).is_ok());
        // 4 s later: 6 s still to wait
        let wait = l.take_at("a", t0 + Duration::from_secs(4)).unwrap_err();
        assert_eq!(wait.as_secs_f64().round(), 6.0);
        assert!(l.take_at("a", t0 + Duration::from_secs(10)).is_ok());
        assert!(l.take_at("a", t0 + Duration::from_secs(10)).is_err());
        // a long pause refills to the burst, not beyond
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(l.take_at("a", later).is_ok());
        }
        assert!(l.take_at("a", later).is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let e = too_many("x", Duration::from_millis(1500));
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(2));
        assert_eq!(too_many("x", Duration::ZERO).retry_after, Some(1));
    }

    #[test]
    fn accounts_are_keyed_without_case_and_bearer_tokens_by_digest() {
        let ls = Limiters::new(&RateLimits {
            login_per_account: Limit::new(1, Duration::from_secs(60)),
            login_per_client: Limit::new(100, Duration::from_secs(60)),
            uploads_per_token: Limit::new(1, Duration::from_secs(60)),
        });
        let c = ClientAddr::default();
        assert!(ls.login("Vendor@Acme.example", &c).is_ok());
        let e = ls.login(" vendor@acme.example", &c).unwrap_err();
        assert_eq!(e.code, "rate_limited");
        assert!(ls.login("other@acme.example", &c).is_ok());
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Bearer clp_abc".parse().unwrap());
        assert_eq!(bearer_digest(&h), sha256_hex("clp_abc"));
        assert!(!format!("{:?}", ls.uploads).contains("clp_abc"));
    }
}
