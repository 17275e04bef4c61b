//! Condition polling with a deadline: the only way these tests wait.

use std::future::Future;
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
