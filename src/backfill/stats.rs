//! Progress arithmetic and the adaptive batch size: pure, so it is tested without a database.

use std::time::Duration;

/// Batch latencies of this session (a 1 ms histogram: memory stays flat however many batches)
/// and the totals the progress line shows.
#[derive(Debug, Clone)]
pub struct Stats {
    /// `hist[ms]` batches took `ms` milliseconds; the last bucket holds everything longer.
    hist: Vec<u32>,
    count: u64,
    max_ms: u64,
    last: Option<usize>,
    pub retries: i64,
}

/// Latencies above this share the last bucket (the max stays exact).
const HIST_MS: usize = 10_000;

impl Default for Stats {
    fn default() -> Self {
        Stats {
            hist: vec![0; HIST_MS + 1],
            count: 0,
            max_ms: 0,
            last: None,
            retries: 0,
        }
    }
}

impl Stats {
    pub fn record(&mut self, batch: Duration) {
        let ms = batch.as_millis() as u64;
        let bucket = (ms as usize).min(HIST_MS);
        self.hist[bucket] += 1;
        self.count += 1;
        self.max_ms = self.max_ms.max(ms);
        self.last = Some(bucket);
    }

    /// Replace the last latency (recorded before the commit) with the whole batch's.
    pub fn amend_last(&mut self, batch: Duration) {
        if let Some(bucket) = self.last.take() {
            self.hist[bucket] -= 1;
            self.count -= 1;
            self.record(batch);
        }
    }

    pub fn p50_ms(&self) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let mut seen = 0u64;
        let half = self.count / 2 + 1;
        for (ms, n) in self.hist.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= half {
                return ms as u64;
            }
        }
        self.max_ms
    }

    pub fn max_ms(&self) -> u64 {
        self.max_ms
    }
}

/// Rows per second over `active` time.
pub fn rate(rows: i64, active: Duration) -> f64 {
    let s = active.as_secs_f64();
    if s <= 0.0 {
        0.0
    } else {
        rows.max(0) as f64 / s
    }
}

/// Seconds left at `rate`; `None` while there is no rate yet.
pub fn eta_s(rows_done: i64, rows_estimate: i64, rate: f64) -> Option<f64> {
    if rate <= 0.0 {
        return (rows_done >= rows_estimate).then_some(0.0);
    }
    Some((rows_estimate - rows_done).max(0) as f64 / rate)
}

/// Next batch size: proportional to how far the last batch was from `target`, growing by at most
/// 1.5× and shrinking by at most 2× per batch, so one fast or slow batch (a checkpoint, a cold
/// cache) does not swing it wildly, and growth does not overshoot the target.
pub fn next_batch_size(current: i64, took: Duration, target: Duration, max: i64) -> i64 {
    let took_ms = took.as_secs_f64() * 1000.0;
    let target_ms = target.as_secs_f64() * 1000.0;
    let ideal = if took_ms < 1.0 {
        current as f64 * 1.5
    } else {
        current as f64 * target_ms / took_ms
    };
    let bounded = ideal.clamp(current as f64 / 2.0, current as f64 * 1.5);
    (bounded.round() as i64).clamp(1, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn batch_size_moves_toward_the_target_at_most_twofold() {
        assert_eq!(next_batch_size(1000, MS(60), MS(80), 1_000_000), 1333);
        assert_eq!(next_batch_size(1000, MS(10), MS(80), 1_000_000), 1500);
        assert_eq!(next_batch_size(1000, MS(100), MS(80), 1_000_000), 800);
        assert_eq!(next_batch_size(1000, MS(900), MS(80), 1_000_000), 500);
        assert_eq!(next_batch_size(1, MS(900), MS(80), 1_000_000), 1);
        assert_eq!(
            next_batch_size(900_000, MS(1), MS(80), 1_000_000),
            1_000_000
        );
    }

    #[test]
    fn rate_eta_and_percentiles() {
        assert_eq!(rate(500, Duration::from_secs(2)), 250.0);
        assert_eq!(rate(500, Duration::ZERO), 0.0);
        assert_eq!(eta_s(500, 1500, 250.0), Some(4.0));
        assert_eq!(eta_s(2000, 1500, 250.0), Some(0.0));
        assert_eq!(eta_s(0, 10, 0.0), None);
        let mut s = Stats::default();
        for ms in [30, 10, 20, 90, 40] {
            s.record(MS(ms));
        }
        assert_eq!((s.p50_ms(), s.max_ms()), (30, 90));
        s.amend_last(MS(5));
        assert_eq!((s.p50_ms(), s.max_ms()), (20, 90));
        s.record(MS(20_000));
        assert_eq!((s.p50_ms(), s.max_ms()), (30, 20_000));
    }
}
