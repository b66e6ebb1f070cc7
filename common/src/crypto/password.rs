//! The room password proof: shows the admin that a joining member knows the
//! room password, without sending anything the relay could test guesses
//! against (it travels inside the join request's X25519 seal) and bound to
//! one admin run and one request (so it cannot be replayed).
//!
//! ```text
//! k     = PBKDF2-HMAC-SHA256(password, "teamchat/v1/password" ‖ room, 600,000, 32 bytes)
//! proof = HMAC-SHA256(k, "teamchat/v1/password-proof" ‖ room ‖ join_key ‖ ephemeral ‖ SHA-256(member_key))
//! ```

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ids::RoomId;
use crate::wire::DhKey;

/// PBKDF2 iterations of the room password (OWASP 2023 for PBKDF2-SHA256).
pub const PASSWORD_ITERATIONS: u32 = 600_000;

/// The password-derived key of a room (slow: 600,000 PBKDF2 rounds). The
/// admin derives it once per room; a member once per join.
pub fn password_key(password: &[u8], room: &RoomId) -> Zeroizing<[u8; 32]> {
    let mut salt = Vec::with_capacity(20 + 16);
    salt.extend_from_slice(b"teamchat/v1/password");
    salt.extend_from_slice(room.as_bytes());
    let mut k = Zeroizing::new([0u8; 32]);
    pbkdf2_sha256(password, &salt, PASSWORD_ITERATIONS, &mut *k);
    k
}

/// PBKDF2-HMAC-SHA256 (RFC 8018) of `password` under `salt`, filling `out`.
/// The one PBKDF2 of the room password: [`password_key`] calls it, and the
/// Wycheproof vectors check it.
pub(crate) fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, out);
}

/// The proof for one join request (fast, given the key).
pub fn password_proof(
    key: &[u8; 32],
    room: &RoomId,
    join_key: &DhKey,
    ephemeral: &DhKey,
    member_key: &[u8],
) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    m.update(b"teamchat/v1/password-proof");
    m.update(room.as_bytes());
    m.update(join_key);
    m.update(ephemeral);
    m.update(&Sha256::digest(member_key));
    m.finalize().into_bytes().into()
}

/// Constant-time check of a received proof.
pub fn verify_password_proof(
    key: &[u8; 32],
    room: &RoomId,
    join_key: &DhKey,
    ephemeral: &DhKey,
    member_key: &[u8],
    proof: &[u8; 32],
) -> bool {
    password_proof(key, room, join_key, ephemeral, member_key)
        .ct_eq(proof)
        .into()
}

/// A check value of a room password's key, kept on the admin's disk after
/// a removal so that the same password is recognised (and refused for
/// approval) after a restart: `HMAC-SHA256(k, "teamchat/v1/password-check"
/// ‖ room)`. Testing a guess against it costs the 600,000 PBKDF2 rounds.
pub fn password_check(key: &[u8; 32], room: &RoomId) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    m.update(b"teamchat/v1/password-check");
    m.update(room.as_bytes());
    m.finalize().into_bytes().into()
}

/// Whether `key` is the password key `check` was made from (constant time).
pub fn password_check_matches(key: &[u8; 32], room: &RoomId, check: &[u8; 32]) -> bool {
    password_check(key, room).ct_eq(check).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_from_python_hashlib() {
        // python3: k = hashlib.pbkdf2_hmac('sha256', b'hunter2', b'teamchat/v1/password' + bytes([1]*16), 600000)
        //          hmac.new(k, b'teamchat/v1/password-proof' + bytes([1]*16) + bytes([2]*32)
        //                   + bytes([3]*32) + hashlib.sha256(b'spki').digest(), 'sha256').hexdigest()
        let room = RoomId([1; 16]);
        let k = password_key(b"hunter2", &room);
        assert_eq!(
            hex::encode(*k),
            include_str!("../../tests/data/password_key.txt").trim()
        );
        let proof = password_proof(&k, &room, &[2; 32], &[3; 32], b"spki");
        assert_eq!(
            hex::encode(proof),
            include_str!("../../tests/data/password_proof.txt").trim()
        );
        assert!(verify_password_proof(
            &k, &room, &[2; 32], &[3; 32], b"spki", &proof
        ));
    }

    #[test]
    fn proof_is_bound_to_password_room_run_request_and_key() {
        let room = RoomId([1; 16]);
        let k = password_key(b"pw", &room);
        let p = password_proof(&k, &room, &[2; 32], &[3; 32], b"spki");
        assert!(!verify_password_proof(
            &k, &room, &[9; 32], &[3; 32], b"spki", &p
        ));
        assert!(!verify_password_proof(
            &k, &room, &[2; 32], &[9; 32], b"spki", &p
        ));
        assert!(!verify_password_proof(
            &k, &room, &[2; 32], &[3; 32], b"other", &p
        ));
        let other_room = RoomId([2; 16]);
        assert!(!verify_password_proof(
            &password_key(b"pw", &other_room),
            &other_room,
            &[2; 32],
            &[3; 32],
            b"spki",
            &p
        ));
        assert!(!verify_password_proof(
            &password_key(b"pW", &room),
            &room,
            &[2; 32],
            &[3; 32],
            b"spki",
            &p
        ));
    }
}
