//! Fault injection for one simulator run: added latency, a rate of 503 answers, a full outage,
//! answers slower than the client's timeout, malformed bodies and bad signatures. The relay's
//! tests use these to prove that it fails closed and tells staff what happened.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to break. Rates are probabilities in 0.0..=1.0, drawn per request from a seeded
/// generator so a run is reproducible.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Added to every answer (health included).
    pub latency: Duration,
    /// Share of signed requests answered `503 unavailable` (signed).
    pub error_rate: f64,
    /// Every request, health included, gets an unsigned `503`, as from a load balancer.
    pub outage: bool,
    /// Share of requests that wait [`FaultConfig::slow_delay`] before answering.
    pub slow_rate: f64,
    /// How long a slow answer waits; pick it past the client's timeout.
    pub slow_delay: Duration,
    /// Share of answers whose body is cut short (still correctly signed).
    pub malformed_rate: f64,
    /// Share of answers whose signature is corrupted.
    pub bad_signature_rate: f64,
    /// Seed of the generator behind the rates.
    pub seed: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            latency: Duration::ZERO,
            error_rate: 0.0,
            outage: false,
            slow_rate: 0.0,
            slow_delay: Duration::from_secs(30),
            malformed_rate: 0.0,
            bad_signature_rate: 0.0,
            seed: 1,
        }
    }
}

/// What to do to one request, decided once when it arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    pub delay: Duration,
    pub outage: bool,
    pub error: bool,
    pub malformed: bool,
    pub bad_signature: bool,
}

/// The shared, changeable fault settings of a running simulator.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<(FaultConfig, u64)>>);

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let seed = config.seed.max(1);
        Faults(Arc::new(Mutex::new((config, seed))))
    }

    pub fn set(&self, config: FaultConfig) {
        let seed = config.seed.max(1);
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = (config, seed);
    }

    pub fn get(&self) -> FaultConfig {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    /// Draws the plan of one request.
    pub fn plan(&self) -> Plan {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (config, state) = &mut *guard;
        let mut draw = |rate: f64| {
            if rate <= 0.0 {
                return false;
            }
            // xorshift64: cheap, seeded, good enough to spread faults.
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state as f64 / u64::MAX as f64) < rate
        };
        let slow = draw(config.slow_rate);
        Plan {
            delay: config.latency
                + if slow {
                    config.slow_delay
                } else {
                    Duration::ZERO
                },
            outage: config.outage,
            error: draw(config.error_rate),
            malformed: draw(config.malformed_rate),
            bad_signature: draw(config.bad_signature_rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_zero_and_one_are_exact_and_seeded_runs_repeat() {
        let none = Faults::default();
        assert_eq!(none.plan(), Plan::default());
        let all = Faults::new(FaultConfig {
            error_rate: 1.0,
            malformed_rate: 1.0,
            ..Default::default()
        });
        let plan = all.plan();
        assert!(plan.error && plan.malformed && !plan.bad_signature);
        let config = FaultConfig {
            error_rate: 0.5,
            seed: 42,
            ..Default::default()
        };
        let a: Vec<_> = {
            let f = Faults::new(config.clone());
            (0..32).map(|_| f.plan().error).collect()
        };
        let b: Vec<_> = {
            let f = Faults::new(config);
            (0..32).map(|_| f.plan().error).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|&e| e) && a.iter().any(|&e| !e));
    }
}
