//! Which messages one subscriber has seen: a bitmap over the expected
//! sequence numbers, so loss and duplicates are exact, not inferred.

/// What one delivery was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time for this sequence number, in order.
    New,
    /// First time, but after a higher sequence number (reordered).
    Reordered,
    /// Seen before.
    Duplicate,
    /// Not a sequence number this run published.
    OutOfRange,
}

/// Per-subscriber delivery bookkeeping.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    bits: Vec<u64>,
    expected: u64,
    highest: Option<u64>,
    /// Distinct sequence numbers seen.
    pub distinct: u64,
    /// Deliveries of a sequence number already seen.
    pub duplicates: u64,
    /// New sequence numbers that arrived after a higher one.
    pub reordered: u64,
    /// Deliveries outside `0..expected` (or without a header).
    pub out_of_range: u64,
}

impl SeqTracker {
    /// A tracker for sequence numbers `0..expected`.
    pub fn new(expected: u64) -> Self {
        let words = usize::try_from(expected.div_ceil(64)).unwrap_or(0);
        SeqTracker {
            bits: vec![0; words],
            expected,
            highest: None,
            distinct: 0,
            duplicates: 0,
            reordered: 0,
            out_of_range: 0,
        }
    }

    /// Records one delivery of `seq`.
    pub fn record(&mut self, seq: u64) -> Seen {
        if seq >= self.expected {
            self.out_of_range += 1;
            return Seen::OutOfRange;
        }
        let Ok(word) = usize::try_from(seq / 64) else {
            self.out_of_range += 1;
            return Seen::OutOfRange;
        };
        let mask = 1u64 << (seq % 64);
        let Some(w) = self.bits.get_mut(word) else {
            self.out_of_range += 1;
            return Seen::OutOfRange;
        };
        if *w & mask != 0 {
            self.duplicates += 1;
            return Seen::Duplicate;
        }
        *w |= mask;
        self.distinct += 1;
        match self.highest {
            Some(h) if seq < h => {
                self.reordered += 1;
                Seen::Reordered
            }
            _ => {
                self.highest = Some(seq);
                Seen::New
            }
        }
    }

    /// Counts a delivery whose payload had no header.
    pub fn record_malformed(&mut self) {
        self.out_of_range += 1;
    }

    /// True once every expected sequence number has been seen.
    pub fn complete(&self) -> bool {
        self.distinct == self.expected
    }

    /// Expected sequence numbers not (yet) seen.
    pub fn missing(&self) -> u64 {
        self.expected - self.distinct
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_duplicates_and_reordering() {
        let mut t = SeqTracker::new(130);
        assert_eq!(t.record(0), Seen::New);
        assert_eq!(t.record(2), Seen::New);
        assert_eq!(t.record(1), Seen::Reordered);
        assert_eq!(t.record(2), Seen::Duplicate);
        assert_eq!(t.record(129), Seen::New);
        assert_eq!(t.record(130), Seen::OutOfRange);
        assert_eq!(t.distinct, 4);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.reordered, 1);
        assert_eq!(t.out_of_range, 1);
        assert_eq!(t.missing(), 126);
        assert!(!t.complete());
    }

    #[test]
    fn complete_after_all_seen() {
        let mut t = SeqTracker::new(65);
        for s in 0..65 {
            t.record(s);
        }
        assert!(t.complete());
        assert_eq!(t.missing(), 0);
    }

    #[test]
    fn empty_run_is_complete() {
        assert!(SeqTracker::new(0).complete());
    }
}
