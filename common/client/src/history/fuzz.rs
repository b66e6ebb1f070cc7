//! The history's fuzz entry point and seeds (feature `test-support`): a
//! stored row, sealed or plain, must never break the reader.

use super::*;

/// The fuzz entry point ([`crate::fuzzing::history_row`]): `data` as a
/// stored row's nonce and bytes, and as the plaintext of a row sealed under
/// the right key (either label). A row that opens must seal and open again
/// unchanged.
#[allow(clippy::expect_used, clippy::panic)]
pub(crate) fn fuzz_row(data: &[u8]) -> bool {
    let (keys, room, nonce) = fuzz_store();
    let Some((&mode, data)) = data.split_first() else {
        return false;
    };
    let opened = match mode % 3 {
        0 => open_row(&keys, &room, &nonce, data),
        m => {
            let label = if m == 1 { AAD_ROW } else { AAD_HISTORY };
            let sealed = seal(&mut OsRng, &keys, &aad(label, &room, &nonce), data);
            let bytes = encode_payload(&sealed, 2 * MAX_ENTRY).ok();
            bytes.and_then(|b| open_row(&keys, &room, &nonce, &b))
        }
    };
    let Some((seq, entry)) = opened else {
        return false;
    };
    let (_, nonce2, bytes) =
        seal_row(&keys, &room, seq.unwrap_or(0), &entry).expect("an entry read back seals again");
    let again = open_row(&keys, &room, &nonce2, &bytes).expect("a fresh row opens");
    assert!(again == (Some(seq.unwrap_or(0)), entry), "a row changed");
    true
}

/// The fixed keys, room tag and nonce of the fuzz target's rows (fixed, so
/// that committed seeds open on every machine).
fn fuzz_store() -> (SealKeys, [u8; 32], [u8; 16]) {
    (SealKeys::from_parts([1; 32], [2; 32]), [3; 32], [4; 16])
}

/// Seed inputs for [`fuzz_row`]: real rows (sealed as the store writes
/// them) and their plaintexts, one per kind of entry.
#[allow(clippy::expect_used)]
pub(crate) fn fuzz_seeds() -> Vec<Vec<u8>> {
    let (keys, room, nonce) = fuzz_store();
    let kinds = [
        EntryKind::Message,
        EntryKind::Own,
        EntryKind::PrivateIn,
        EntryKind::PrivateOut,
        EntryKind::File,
    ];
    let mut out = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let entry = Entry {
            at_ms: 1_700_000_000_000 + i as u64,
            kind,
            who: "alice".into(),
            fingerprint: (i % 2 == 0).then_some([9; 32]),
            text: format!("line {i} ✓"),
            path: (kind == EntryKind::File).then(|| "Downloads/report.pdf".into()),
        };
        // As stored: mode 0.
        let plain = encode_payload(
            &Row {
                seq: i as u64,
                entry: &entry,
            },
            MAX_ENTRY,
        )
        .expect("a small row encodes");
        let sealed = seal(&mut OsRng, &keys, &aad(AAD_ROW, &room, &nonce), &plain);
        let mut stored = vec![0];
        stored.extend(encode_payload(&sealed, 2 * MAX_ENTRY).expect("a row seals"));
        out.push(stored);
        // The plaintexts: mode 1 (a row), mode 2 (the older layout).
        out.push([&[1][..], &plain].concat());
        let old = encode_payload(&entry, MAX_ENTRY).expect("an entry encodes");
        out.push([&[2][..], &old].concat());
    }
    out
}
