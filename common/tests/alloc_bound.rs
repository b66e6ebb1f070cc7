//! Decoding never allocates past the frame limit (plus a small fixed
//! overhead), whatever lengths a hostile frame claims. A capped global allocator turns any allocation past
//! the budget into a failure (the process aborts, and the test fails).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;

use cap::Cap;

use common::wire::*;

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// The cap is process-wide: tests that set it run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Hostile bodies: every variant tag followed by length fields claiming
/// 2^32 .. 2^64-1 elements, with a little real data.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let huge_lens: [u64; 5] = [
        u64::MAX,
        1 << 40,
        1 << 32,
        (DEFAULT_MAX_FRAME as u64) * 8,
        4000,
    ];
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

fn decode_all(bodies: &[Vec<u8>], max: usize) -> usize {
    let mut errors = 0usize;
    for b in bodies {
        errors += decode_payload::<Envelope>(b, max).is_err() as usize;
        errors += decode_payload::<ClientFrame>(b, max).is_err() as usize;
        errors += decode_payload::<RelayFrame>(b, max).is_err() as usize;
        errors += decode_payload::<EpochBody>(b, max).is_err() as usize;
        errors += decode_payload::<Roster>(b, max).is_err() as usize;
        errors += decode_payload::<JoinInfo>(b, max).is_err() as usize;
        errors += decode_payload::<Announce>(b, max).is_err() as usize;
    }
    errors
}

#[test]
fn hostile_lengths_never_allocate_past_the_frame_limit() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let bodies = hostile_bodies();
    // A small limit makes the bound sharp: decoding may use the frame limit
    // plus 64 KiB of fixed overhead, never what a length field claims.
    let max = 64 * 1024;
    let budget = max + 64 * 1024;
    let baseline = ALLOC.allocated();
    ALLOC.set_limit(baseline + budget).unwrap();
    let errors = decode_all(&bodies, max);
    ALLOC.set_limit(usize::MAX).unwrap();
    println!(
        "{} hostile bodies x 7 decoders at a {} KiB limit: {errors} refused, heap budget {} KiB held",
        bodies.len(),
        max / 1024,
        budget / 1024
    );
    assert_eq!(errors, bodies.len() * 7, "every hostile body is refused");
}

#[test]
fn a_valid_frame_at_the_limit_decodes_within_the_budget() {
    // Control: the budget is not so tight that honest frames fail.
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let max = 64 * 1024;
    let f = ClientFrame::Publish {
        to: None,
        payload: vec![7u8; max_payload(max)].into(),
    };
    let body = encode_payload(&f, max).unwrap();
    let baseline = ALLOC.allocated();
    ALLOC.set_limit(baseline + max + 64 * 1024).unwrap();
    let back = decode_payload::<ClientFrame>(&body, max);
    ALLOC.set_limit(usize::MAX).unwrap();
    assert_eq!(back.unwrap(), f);
}
