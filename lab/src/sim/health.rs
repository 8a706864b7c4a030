//! The health check of a simulated machine, as an orchestrator does it on
//! a real one: the BMC answers; the OS answers over "SSH"; if it does not
//! (powered off, or panicked), the machine is power-cycled through its BMC
//! and waited for until it answers with a new boot id.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bmc::{Bmc, BmcError, PowerAction, PowerState};
use crate::sim::{bmc::boot_time, SimMachine, SimTarget};
use crate::Target;

/// Attempts of one BMC call before the health check gives up on the BMC.
const BMC_ATTEMPTS: u32 = 8;

async fn retry<T, F, Fut>(m: &SimMachine, what: &str, mut call: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, BmcError>>,
{
    let mut last = String::new();
    for attempt in 0..BMC_ATTEMPTS {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() => last = e.to_string(),
            Err(e) => return Err(format!("bmc {what}: {e}")),
        }
        let backoff = m.spec().delay(0.5 * f64::from(1u32 << attempt.min(4)));
        tokio::time::sleep(backoff).await;
    }
    Err(format!(
        "bmc {what}: no answer after {BMC_ATTEMPTS} attempts: {last}"
    ))
}

/// The boot id, when the OS answers.
async fn boot_id(t: &SimTarget) -> Result<String, String> {
    let t = t.clone();
    tokio::task::spawn_blocking(move || {
        t.exec(
            "cat /proc/sys/kernel/random/boot_id",
            Duration::from_secs(30),
        )
    })
    .await
    .map_err(|e| format!("health check task: {e}"))?
    .map_err(|e| e.to_string())
    .and_then(|o| {
        if o.success() {
            Ok(o.stdout_str().trim().to_string())
        } else {
            Err(format!("`cat boot_id` exits {:?}", o.exit))
        }
    })
}

/// Checks that `m` can take a job, power-cycling it when its OS does not
/// answer. The error says why it cannot.
pub async fn health_check(m: &Arc<SimMachine>) -> Result<(), String> {
    let bmc = m.bmc();
    let t = m.target();
    let state = retry(m, "power status", || bmc.power_status()).await?;
    let first = if state == PowerState::On {
        match boot_id(&t).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        }
    } else {
        format!("power is {state}")
    };
    // The OS does not answer: bring the machine up through its BMC.
    let action = if state == PowerState::Off {
        PowerAction::On
    } else {
        PowerAction::Cycle
    };
    retry(m, &format!("power {action}"), || bmc.power(action)).await?;
    let deadline = Instant::now() + boot_time(m) * 3 + Duration::from_secs(5);
    loop {
        match retry(m, "power status", || bmc.power_status()).await? {
            PowerState::On => match boot_id(&t).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "{} does not answer after a power {action} through its BMC ({first}): {e}",
                        m.name()
                    ))
                }
                Err(_) => {}
            },
            s if Instant::now() >= deadline => {
                return Err(format!(
                    "{}: power still {s} after power {action} through its BMC",
                    m.name()
                ))
            }
            _ => {}
        }
        tokio::time::sleep(m.spec().delay(2.0).max(Duration::from_millis(1))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{FaultLevel, SimSpec};

    #[tokio::test]
    async fn a_crashed_machine_is_power_cycled_back() {
        let m = SimMachine::new(
            "sim-health",
            SimSpec {
                faults: FaultLevel::Heavy,
                seed: 5,
                time_scale: 0.0005,
                ..SimSpec::new("riscv-sg2042")
            },
        )
        .unwrap();
        let t = m.target();
        for _ in 0..20_000 {
            let _ = t.exec("uname -r", Duration::from_secs(1));
            if m.is_crashed() {
                break;
            }
        }
        assert!(m.is_crashed());
        let before = t.boot_id();
        health_check(&m).await.unwrap();
        assert!(!m.is_crashed());
        assert_ne!(t.boot_id(), before);
        assert!(m.console_text().contains("Kernel panic"));
    }
}
