//! Decoding never allocates much beyond the frame limit, whatever lengths a
//! hostile frame claims. A capped global allocator turns any allocation past
//! the budget into a failure (the process aborts, and the test fails).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;

use cap::Cap;

use common::wire::*;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// Hostile bodies: every variant tag followed by length fields claiming
/// 2^32 .. 2^64-1 elements, with a little real data.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let huge_lens: [u64; 4] = [u64::MAX, 1 << 40, 1 << 32, (DEFAULT_MAX_FRAME as u64) * 8];
    for variant in 0u32..12 {
        for len in huge_lens {
            for prefix_pad in [0usize, 1, 8, 9, 16, 40, 48, 56, 64, 72, 80] {
                let mut b = variant.to_le_bytes().to_vec();
                b.extend(std::iter::repeat_n(0u8, prefix_pad));
                b.extend_from_slice(&len.to_le_bytes());
                b.extend(std::iter::repeat_n(0xabu8, 256));
                out.push(b);
                // The same length repeated: nested collections.
                let mut nested = variant.to_le_bytes().to_vec();
                for _ in 0..8 {
                    nested.extend_from_slice(&len.to_le_bytes());
                }
                out.push(nested);
            }
        }
    }
    out
}

#[test]
fn hostile_lengths_never_allocate_past_the_budget() {
    let bodies = hostile_bodies();
    let max = DEFAULT_MAX_FRAME;
    // Budget: a few frames' worth. serde pre-allocates at most 1 MiB per
    // collection whatever length is claimed; bincode checks every byte read
    // against the limit.
    let budget = 4 * max + (256 << 10);
    let baseline = ALLOC.allocated();
    ALLOC.set_limit(baseline + budget).unwrap();
    let mut errors = 0usize;
    for b in &bodies {
        errors += decode_payload::<Envelope>(b, max).is_err() as usize;
        errors += decode_payload::<ClientFrame>(b, max).is_err() as usize;
        errors += decode_payload::<RelayFrame>(b, max).is_err() as usize;
        errors += decode_payload::<EpochBody>(b, max).is_err() as usize;
        errors += decode_payload::<Roster>(b, max).is_err() as usize;
        errors += decode_payload::<JoinInfo>(b, max).is_err() as usize;
        errors += decode_payload::<Announce>(b, max).is_err() as usize;
    }
    ALLOC.set_limit(usize::MAX).unwrap();
    println!(
        "{} hostile bodies × 7 decoders: {errors} refused, peak heap {} KiB over a budget of {} KiB",
        bodies.len(),
        ALLOC.max_allocated().saturating_sub(baseline) / 1024,
        budget / 1024
    );
    assert_eq!(errors, bodies.len() * 7, "every hostile body is refused");
}
