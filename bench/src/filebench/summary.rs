//! Results of a scenario (the pace search for one N) beside its limits,
//! and the table of a run.

use serde::Serialize;

use crate::crypto_rate::Rates;
use crate::scenario::{Latency, TryReport};

/// The goal: the file rate is at least this share of the lower of
/// the two limits (the relay's raw rate, the seal/open fan-out rate).
pub const GOAL_RATIO: f64 = 0.5;

/// The lower of the known limits, MB/s.
pub fn lower_limit(fanout: Option<f64>, raw: Option<f64>) -> Option<f64> {
    match (fanout, raw) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One scenario's result.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Always `"filebench"`.
    pub bench: &'static str,
    /// Receivers besides the sender.
    pub receivers: usize,
    /// File size, bytes.
    pub size_bytes: u64,
    /// Some pace held.
    pub held: bool,
    /// The highest pace held (or the last one tried), bytes/s.
    pub pace_bps: u64,
    /// The same, 10^6 bytes/s.
    pub pace_mbps: f64,
    /// Per receiver stream (the slowest receiver), 10^6 bytes/s.
    pub file_mbps: Option<f64>,
    /// The same in MiB/s.
    pub file_mibps: Option<f64>,
    /// Seal/open fan-out stream rate, 1 sealer + N openers, MB/s.
    pub fanout_mbps: Option<f64>,
    /// The relay's raw forwarding rate per subscriber stream, 64 KiB
    /// frames, MB/s (given on the command line).
    pub raw_relay_mbps: Option<f64>,
    /// The lower of the two limits.
    pub lower_limit_mbps: Option<f64>,
    /// File rate over the lower limit.
    pub ratio: Option<f64>,
    /// Ratio ≥ 0.5.
    pub goal_met: bool,
    /// Chat during the transfer (the try that held).
    pub chat_during: Option<Latency>,
    /// Chat before it, same try.
    pub chat_baseline: Option<Latency>,
    /// Tries made.
    pub tries: usize,
    /// Why each failed try failed ("pace: reason").
    pub failures: Vec<String>,
}

impl Summary {
    /// Sums up the tries of one pace search.
    pub fn of(
        receivers: usize,
        size: u64,
        tries: &[TryReport],
        rates: &Rates,
        raw: Option<f64>,
    ) -> Summary {
        let held = tries.iter().find(|t| t.ok);
        let shown = held.or(tries.last());
        let fanout = rates.fanout_mbps(receivers);
        let lower = lower_limit(fanout, raw);
        let file_mbps = held.and_then(|t| t.file_mbps);
        let ratio = match (file_mbps, lower) {
            (Some(f), Some(l)) if l > 0.0 => Some(f / l),
            _ => None,
        };
        Summary {
            bench: "filebench",
            receivers,
            size_bytes: size,
            held: held.is_some(),
            pace_bps: shown.map_or(0, |t| t.pace_bps),
            pace_mbps: shown.map_or(0.0, |t| t.pace_mbps),
            file_mbps,
            file_mibps: held.and_then(|t| t.file_mibps),
            fanout_mbps: fanout,
            raw_relay_mbps: raw,
            lower_limit_mbps: lower,
            ratio,
            goal_met: ratio.is_some_and(|r| r >= GOAL_RATIO),
            chat_during: held.map(|t| t.chat_during.clone()),
            chat_baseline: held.map(|t| t.chat_baseline.clone()),
            tries: tries.len(),
            failures: tries
                .iter()
                .filter(|t| !t.ok)
                .map(|t| {
                    format!(
                        "{:.1} MB/s: {}",
                        t.pace_mbps,
                        t.failure.as_deref().unwrap_or("?")
                    )
                })
                .collect(),
        }
    }

    /// One human-readable line.
    pub fn human(&self) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let mut s = format!(
            "N={}: {} MB/s per receiver stream at pace {:.1} MB/s after {} tr{}; limits: \
             seal/open fan-out {} MB/s, raw relay {} MB/s; ratio {} (goal ≥ {GOAL_RATIO}: {})",
            self.receivers,
            f(self.file_mbps),
            self.pace_mbps,
            self.tries,
            if self.tries == 1 { "y" } else { "ies" },
            f(self.fanout_mbps),
            f(self.raw_relay_mbps),
            self.ratio.map_or("-".into(), |r| format!("{r:.2}")),
            if self.goal_met { "met" } else { "NOT met" },
        );
        if !self.held {
            s += "; NO PACE HELD";
        }
        s
    }
}

/// The run's table (markdown).
pub fn table(rates: &Rates, sums: &[Summary], defaults: &[TryReport]) -> String {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let chat = |l: Option<&Latency>| match l {
        Some(l) => format!("{} / {} ms", f(l.p50_ms), f(l.p99_ms)),
        None => "-".into(),
    };
    let mut s = format!(
        "seal {:.0} MB/s, open {:.0} MB/s, SHA-256 {:.0} MB/s (one thread each, 64 KiB chunks)\n\n\
         | N | pace held | file MB/s (MiB/s) | raw relay MB/s | seal/open fan-out MB/s | \
         lower limit | ratio | goal ≥ {GOAL_RATIO} | chat p50 / p99 during | chat p50 / p99 baseline |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        rates.seal_mbps, rates.open_mbps, rates.sha256_mbps
    );
    for m in sums {
        s += &format!(
            "| {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} |\n",
            m.receivers,
            if m.held {
                format!("{:.1} MB/s", m.pace_mbps)
            } else {
                "none".into()
            },
            f(m.file_mbps),
            f(m.file_mibps),
            f(m.raw_relay_mbps),
            f(m.fanout_mbps),
            f(m.lower_limit_mbps),
            m.ratio.map_or("-".into(), |r| format!("{r:.2}")),
            if m.goal_met { "met" } else { "**not met**" },
            chat(m.chat_during.as_ref()),
            chat(m.chat_baseline.as_ref()),
        );
    }
    for d in defaults {
        s += &format!(
            "| {} (default pace) | {:.1} MB/s | {} ({}) | | | | | | {} | {} |\n",
            d.receivers,
            d.pace_mbps,
            if d.ok {
                f(d.file_mbps)
            } else {
                "failed".into()
            },
            f(d.file_mibps),
            chat(Some(&d.chat_during)),
            chat(Some(&d.chat_baseline)),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto_rate::Fanout;

    #[test]
    fn the_lower_limit_is_the_smaller_known_one() {
        assert_eq!(lower_limit(Some(100.0), Some(50.0)), Some(50.0));
        assert_eq!(lower_limit(Some(100.0), None), Some(100.0));
        assert_eq!(lower_limit(None, Some(7.0)), Some(7.0));
        assert_eq!(lower_limit(None, None), None);
    }

    #[test]
    fn a_summary_takes_the_try_that_held_and_lists_the_failures() {
        let rates = Rates {
            bench: "filebench-crypto",
            chunk_bytes: 65536,
            seal_mbps: 500.0,
            open_mbps: 1000.0,
            sha256_mbps: 1500.0,
            fanout: vec![Fanout {
                openers: 10,
                chunks: 1,
                stream_mbps: 100.0,
            }],
        };
        let mut failed = TryReport::for_test(10, 200_000_000);
        failed.failure = Some("receiver 3 was disconnected".into());
        let mut held = TryReport::for_test(10, 140_000_000);
        held.ok = true;
        held.file_mbps = Some(60.0);
        let s = Summary::of(10, 1 << 20, &[failed, held], &rates, Some(80.0));
        assert!(s.held);
        assert_eq!(s.pace_bps, 140_000_000);
        assert_eq!(s.lower_limit_mbps, Some(80.0));
        assert_eq!(s.ratio, Some(0.75));
        assert!(s.goal_met);
        assert_eq!(s.failures.len(), 1);
        assert!(s.failures[0].contains("disconnected"));
        assert!(table(&rates, &[s], &[]).contains("| 10 | 140.0 MB/s | 60.0"));
    }
}
