//! Results: counts summed over subscribers, and the helpers every report
//! shares. Each benchmark's report is a `Serialize` struct printed as one
//! JSON object, or as one human-readable line.

use serde::Serialize;

use crate::room::SubResult;

/// Delivery counts summed over all subscribers of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SubSummary {
    /// Deliveries from the publisher, duplicates included.
    pub delivered: u64,
    /// Distinct (subscriber, sequence) pairs delivered.
    pub distinct: u64,
    /// Expected pairs never delivered.
    pub lost: u64,
    /// Repeated deliveries.
    pub duplicates: u64,
    /// Deliveries that came after a higher sequence number.
    pub reordered: u64,
    /// Deliveries with a sequence number this run never sent, or no header.
    pub bogus: u64,
    /// Deliveries from connections other than the publisher.
    pub foreign: u64,
    /// Subscribers that stopped with an error.
    pub sub_errors: u64,
    /// The first such error.
    pub first_sub_error: Option<String>,
}

impl SubSummary {
    /// Sums `results`, each expecting `messages` messages.
    pub fn of(results: &[SubResult], messages: u64) -> Self {
        let mut s = SubSummary::default();
        for r in results {
            s.delivered += r.deliveries;
            s.distinct += r.tracker.distinct;
            s.lost += messages - r.tracker.distinct.min(messages);
            s.duplicates += r.tracker.duplicates;
            s.reordered += r.tracker.reordered;
            s.bogus += r.tracker.out_of_range;
            s.foreign += r.foreign;
            if let Some(e) = &r.error {
                s.sub_errors += 1;
                s.first_sub_error.get_or_insert_with(|| e.clone());
            }
        }
        s
    }

    /// Trailing warnings for a human-readable line ("" if all went well).
    pub fn problems(&self, timed_out: bool, publisher_error: Option<&str>) -> String {
        let mut s = String::new();
        if self.bogus > 0 {
            s += &format!("; {} bogus deliveries", self.bogus);
        }
        if self.foreign > 0 {
            s += &format!("; {} deliveries from other connections", self.foreign);
        }
        if let Some(e) = &self.first_sub_error {
            s += &format!("; {} subscribers failed, first: {e}", self.sub_errors);
        }
        if let Some(e) = publisher_error {
            s += &format!("; publisher failed: {e}");
        }
        if timed_out {
            s += "; TIMED OUT (--timeout)";
        }
        s
    }
}

/// A warning for a human-readable line when room changes overtook welcomes.
pub fn early_note(peer_frames_before_welcome: u64) -> String {
    if peer_frames_before_welcome == 0 {
        String::new()
    } else {
        format!(
            "; {peer_frames_before_welcome} PeerJoined/PeerLeft frames arrived before their \
             connection's Welcome (relay ordering bug, tolerated)"
        )
    }
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
pub fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The `p`-th percentile (nearest rank) of sorted `values`.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.9), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn pct_of_zero_is_zero() {
        assert_eq!(pct(0, 0), 0.0);
        assert_eq!(pct(1, 4), 25.0);
    }
}
