//! Latency summaries for the load generator, and CPU time read from procfs for the benches.

use std::time::Duration;

/// Percentile `p` (0..=100) of `sorted` by nearest rank; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `p50 .. p90 .. p99 .. max` in milliseconds, for printing.
pub fn summary(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "n={} p50={:.1}ms p90={:.1}ms p99={:.1}ms max={:.1}ms",
        samples.len(),
        ms(percentile(samples, 50.0)),
        ms(percentile(samples, 90.0)),
        ms(percentile(samples, 99.0)),
        ms(samples.last().copied().unwrap_or_default()),
    )
}

/// The user and system CPU time in a procfs `stat` file (`/proc/<pid>/stat`,
/// `/proc/self/task/<tid>/stat`): None where it cannot be read (no procfs, a process that
/// ended) or does not parse.
pub fn proc_cpu(stat: impl AsRef<std::path::Path>) -> Option<Duration> {
    parse_stat_cpu(&std::fs::read_to_string(stat).ok()?)
}

/// utime + stime of a `stat` line: fields 14 and 15, the 12th and 13th after the command name
/// (which is in parentheses and may hold spaces and parentheses), in clock ticks of 1/100 s
/// (USER_HZ on every Linux ABI Rust targets).
fn parse_stat_cpu(line: &str) -> Option<Duration> {
    let mut after_name = line.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = after_name.next()?.parse().ok()?;
    let stime: u64 = after_name.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_user_and_system_time_whatever_the_command_name() {
        let line = "4242 (warehouse) (x) S 1 4242 4242 0 -1 4194304 1234 0 0 0 250 37 0 0 20 0 \
                    12 0 100 0 0";
        assert_eq!(parse_stat_cpu(line), Some(Duration::from_millis(2_870)));
        assert_eq!(parse_stat_cpu("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat_cpu("no name here"), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&v, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
