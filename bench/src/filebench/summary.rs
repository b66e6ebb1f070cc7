//! The runs of one room size summed up (medians), and the table of a run.
//! The comparison with magic-wormhole is made by `scripts/bench-files.sh`,
//! which measures it in the same run.

use serde::Serialize;

use crate::crypto_rate::Rates;
use crate::scenario::TryReport;

/// The goal for chat: its p99 during a transfer is at most this
/// many times its p99 without one.
pub const CHAT_GOAL: f64 = 2.0;

/// The runs of one room size.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Always `"filebench"`.
    pub bench: &'static str,
    /// Receivers besides the sender.
    pub receivers: usize,
    /// File size, bytes.
    pub size_bytes: u64,
    /// Runs made.
    pub runs: usize,
    /// Runs in which every receiver saved the file, verified.
    pub ok_runs: usize,
    /// Why each other run failed.
    pub failures: Vec<String>,
    /// Median over the runs that held: from the send to the last save, s.
    pub elapsed_s: Option<f64>,
    /// The file's size over that median: the slowest receiver, MB/s.
    pub file_mbps: Option<f64>,
    /// Median chat p50 / p99 during the transfer, ms.
    pub chat_during_p50_ms: Option<f64>,
    /// Median chat p99 during the transfer, ms.
    pub chat_during_p99_ms: Option<f64>,
    /// Median chat p50 without a transfer, ms.
    pub chat_idle_p50_ms: Option<f64>,
    /// Median chat p99 without a transfer, ms.
    pub chat_idle_p99_ms: Option<f64>,
    /// Chat p99 during over idle.
    pub chat_ratio: Option<f64>,
    /// `chat_ratio` ≤ [`CHAT_GOAL`].
    pub chat_goal_met: bool,
    /// Chat lines lost during the transfers (all runs).
    pub chat_lost: usize,
}

impl Summary {
    /// Sums up the runs of one room size.
    pub fn of(receivers: usize, size: u64, runs: &[TryReport]) -> Summary {
        let held: Vec<&TryReport> = runs.iter().filter(|t| t.ok).collect();
        let med = |f: &dyn Fn(&TryReport) -> Option<f64>| median(held.iter().filter_map(|t| f(t)));
        let elapsed_s = med(&|t| t.elapsed_s);
        let during = med(&|t| t.chat_during.p99_ms);
        let idle = med(&|t| t.chat_baseline.p99_ms);
        let chat_ratio = match (during, idle) {
            (Some(d), Some(i)) if i > 0.0 => Some(d / i),
            _ => None,
        };
        Summary {
            bench: "filebench",
            receivers,
            size_bytes: size,
            runs: runs.len(),
            ok_runs: held.len(),
            failures: runs
                .iter()
                .filter(|t| !t.ok)
                .map(|t| t.failure.clone().unwrap_or_else(|| "?".into()))
                .collect(),
            elapsed_s,
            file_mbps: elapsed_s.map(|e| size as f64 / e / 1e6),
            chat_during_p50_ms: med(&|t| t.chat_during.p50_ms),
            chat_during_p99_ms: during,
            chat_idle_p50_ms: med(&|t| t.chat_baseline.p50_ms),
            chat_idle_p99_ms: idle,
            chat_ratio,
            chat_goal_met: chat_ratio.is_some_and(|r| r <= CHAT_GOAL),
            chat_lost: runs.iter().map(|t| t.chat_during.lost).sum(),
        }
    }

    /// One human-readable line.
    pub fn human(&self) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let mut s = format!(
            "N={}: {} of {} runs held; median {} s, {} MB/s per receiver; chat p99 {} ms during, \
             {} ms idle (x{}, goal <= {CHAT_GOAL}: {})",
            self.receivers,
            self.ok_runs,
            self.runs,
            self.elapsed_s.map_or("-".into(), |v| format!("{v:.2}")),
            f(self.file_mbps),
            f(self.chat_during_p99_ms),
            f(self.chat_idle_p99_ms),
            self.chat_ratio.map_or("-".into(), |r| format!("{r:.2}")),
            if self.chat_goal_met { "met" } else { "NOT met" },
        );
        for e in &self.failures {
            s += &format!("; failed: {e}");
        }
        s
    }
}

/// The median of `v` (the mean of the middle two for an even count).
fn median(v: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = v.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// The run's table (markdown).
pub fn table(rates: &Rates, sums: &[Summary]) -> String {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let mut s = format!(
        "seal {:.0} MB/s, open {:.0} MB/s, SHA-256 {:.0} MB/s (one thread each, 64 KiB chunks)\n\n\
         | N | runs held | time (s) | file MB/s per receiver | chat p50 / p99 during | \
         chat p50 / p99 idle | p99 ratio (goal ≤ {CHAT_GOAL}) |\n\
         |---|---|---|---|---|---|---|\n",
        rates.seal_mbps, rates.open_mbps, rates.sha256_mbps
    );
    for m in sums {
        s += &format!(
            "| {} | {} of {} | {} | {} | {} / {} ms | {} / {} ms | {} {} |\n",
            m.receivers,
            m.ok_runs,
            m.runs,
            m.elapsed_s.map_or("-".into(), |v| format!("{v:.2}")),
            f(m.file_mbps),
            f(m.chat_during_p50_ms),
            f(m.chat_during_p99_ms),
            f(m.chat_idle_p50_ms),
            f(m.chat_idle_p99_ms),
            m.chat_ratio.map_or("-".into(), |r| format!("{r:.2}")),
            if m.chat_goal_met {
                "met"
            } else {
                "**not met**"
            },
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_the_runs_that_held_and_the_chat_ratio() {
        let mut runs = Vec::new();
        for (secs, during, idle) in [(2.0, 30.0, 10.0), (4.0, 10.0, 10.0), (3.0, 20.0, 10.0)] {
            let mut t = TryReport::for_test(5);
            t.ok = true;
            t.elapsed_s = Some(secs);
            t.chat_during.p99_ms = Some(during);
            t.chat_baseline.p99_ms = Some(idle);
            runs.push(t);
        }
        let mut failed = TryReport::for_test(5);
        failed.failure = Some("a member was cut".into());
        failed.elapsed_s = Some(0.1);
        runs.push(failed);
        let s = Summary::of(5, 1 << 20, &runs);
        assert_eq!((s.runs, s.ok_runs), (4, 3));
        assert_eq!(s.elapsed_s, Some(3.0), "the failed run does not count");
        assert_eq!(s.chat_ratio, Some(2.0));
        assert!(s.chat_goal_met);
        assert_eq!(s.failures, ["a member was cut"]);
        assert!(s.human().contains("failed: a member was cut"));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_middle_mean() {
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), Some(2.5));
        assert_eq!(median([f64::NAN].into_iter()), None);
    }
}
