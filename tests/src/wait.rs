//! Condition polling with a deadline: the only way these tests wait.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Polls `check` every `interval` until it yields `Some`, or fails with the last state seen
/// (`describe`) once `timeout` has passed. `what` names the awaited condition in the error.
pub async fn wait_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("(not checked yet)");
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(state) => last = state,
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(interval).await;
    }
}

/// Waits until `accepted` (a load's count of accepted commands) has grown by `more` from now:
/// how the outage tests let the load run through each phase. Panics after two minutes.
pub async fn wait_for_more(accepted: &AtomicUsize, more: usize) {
    let target = accepted.load(Ordering::Relaxed) + more;
    wait_for_count(accepted, target, Duration::from_secs(120)).await;
}

/// Waits until `accepted` (a load's count of accepted commands) has reached `target`. Panics
/// after `timeout`.
pub async fn wait_for_count(accepted: &AtomicUsize, target: usize, timeout: Duration) {
    wait_until(
        &format!("{target} accepted commands"),
        timeout,
        Duration::from_millis(5),
        || async {
            let now = accepted.load(Ordering::Relaxed);
            if now >= target {
                Ok(Some(()))
            } else {
                Err(format!("{now} of {target}"))
            }
        },
    )
    .await
    .unwrap();
}
